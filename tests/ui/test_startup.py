"""The window paints before torch is imported; torch then loads in the background and the
training devices it finds join the device choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# ``designer designer/templates/mlp-digits.dnn.json`` as the CLI starts it, stopped at the main
# window's first paint; prints whether torch (or scikit-learn) was imported by then, and again once the
# background import has finished.
CHILD = r"""
import json, os, sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QMainWindow
from designer.ui import app as app_module

report = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, ev):
        if (not report and ev.type() == QEvent.Type.Paint and obj.isWidgetType()
                and isinstance(obj.window(), QMainWindow)):
            report["torch_at_paint"] = "torch" in sys.modules
            report["sklearn_at_paint"] = "sklearn" in sys.modules
            window = obj.window()
            def later():
                if window.torch_loader.devices is None:
                    return QTimer.singleShot(50, later)
                report["devices"] = window.torch_loader.devices
                report["torch_later"] = "torch" in sys.modules
                report["device_choices"] = [
                    window.training.panel.settings.editor("device").itemText(i)
                    for i in range(window.training.panel.settings.editor("device").count())]
                print(json.dumps(report), flush=True)
                os._exit(0)
            QTimer.singleShot(0, later)
        return False

qapp = app_module.make_app()
f = FirstPaint()
qapp.installEventFilter(f)
QTimer.singleShot(60000, lambda: os._exit(3))
sys.exit(app_module.run_app(sys.argv[1]))
"""


@pytest.mark.slow
def test_window_paints_before_torch_loads(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD,
                           str(ROOT / "designer" / "templates" / "mlp-digits.dnn.json")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["torch_at_paint"] is False
    assert report["sklearn_at_paint"] is False
    assert report["torch_later"] is True
    assert "cpu" in report["devices"]
    assert report["device_choices"][:2] == ["auto", "cpu"]
    assert set(report["devices"]) <= set(report["device_choices"])


def test_device_choices_grow_when_torch_reports(qtbot):
    from designer.engine.document.project import load_project
    from designer.engine.document.templates import template_path
    from designer.ui.document import Document
    from designer.ui.training.panel import TrainingPanel

    doc = Document(load_project(template_path("mlp-digits")))
    panel = TrainingPanel(doc)
    qtbot.addWidget(panel)
    combo = panel.settings.editor("device")
    before = combo.currentText()
    panel.set_devices(["cpu", "cuda", "mps"])
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items.count("cpu") == 1 and "cuda" in items and "mps" in items
    assert combo.currentText() == before
    panel.shutdown()
    doc.close()
