"""The layer palette: every catalog layer by category, search, tooltips, drag data, activation;
plus one real drag and drop onto the canvas under Xvfb, driven by xdotool."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from designer.engine.model.catalog import CATALOG
from designer.ui.palette import LAYER_MIME, PaletteDock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def palette(qtbot):
    dock = PaletteDock()
    qtbot.addWidget(dock)
    dock.show()
    return dock


def test_every_layer_is_listed_under_its_category(palette):
    tree = palette.tree
    shown = {}
    for i in range(tree.topLevelItemCount()):
        cat = tree.topLevelItem(i)
        shown[cat.text(0)] = [cat.child(j).data(0, Qt.UserRole + 1) for j in range(cat.childCount())]
    assert shown == {c: [s.id for s in specs] for c, specs in CATALOG.categories().items()}


def test_tooltip_shows_the_doc_line(palette):
    for spec in CATALOG:
        assert html.escape(spec.doc, quote=False) in palette.item_for(spec.id).toolTip(0)


def test_search_filters_layers_and_categories(qtbot, palette):
    qtbot.keyClicks(palette.search, "conv")
    visible = palette.visible_type_ids()
    assert {"Conv1d", "Conv2d", "ConvTranspose2d"} <= set(visible)
    assert "ReLU" not in visible and "LSTM" not in visible
    qtbot.keyClicks(palette.search, "transpose")  # every word must match
    assert palette.visible_type_ids() == ["ConvTranspose2d"]
    palette.search.clear()
    assert len(palette.visible_type_ids()) == len(CATALOG)
    qtbot.keyClicks(palette.search, "no such layer")
    assert palette.visible_type_ids() == []
    tree = palette.tree
    assert all(tree.topLevelItem(i).isHidden() for i in range(tree.topLevelItemCount()))


def test_enter_in_search_adds_the_first_match(qtbot, palette):
    got = []
    palette.layer_activated.connect(got.append)
    qtbot.keyClicks(palette.search, "lstm")
    qtbot.keyClick(palette.search, Qt.Key_Return)
    assert got == ["LSTM"]


def test_double_click_activates_a_layer_and_not_a_category(qtbot, palette):
    got = []
    palette.layer_activated.connect(got.append)
    tree = palette.tree
    for target in (palette.item_for("GELU"), tree.topLevelItem(0)):
        tree.scrollToItem(target)
        rect = tree.visualItemRect(target)
        qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
        qtbot.mouseDClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
    assert got == ["GELU"]


def test_drag_data_carries_the_layer_type(palette):
    tree = palette.tree
    assert tree.mimeTypes()[0] == LAYER_MIME  # (and BLOCK_MIME for the Blocks section)
    mime = tree.mimeData([palette.item_for("BatchNorm2d")])
    assert bytes(mime.data(LAYER_MIME)).decode("utf-8") == "BatchNorm2d"
    assert tree.mimeData([tree.topLevelItem(0)]) is None  # categories cannot be dragged


# -- one real drag and drop ----------------------------------------------------------------------

_DRAG = textwrap.dedent("""
    import json, subprocess, sys, tempfile, time
    from PySide6.QtCore import QPoint, QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from designer.ui.main_window import MainWindow
    tmp = tempfile.mkdtemp()
    w = MainWindow(QSettings(tmp + "/s.ini", QSettings.IniFormat), recovery_dir=tmp + "/rec")
    w.resize(1200, 800)
    w.move(0, 0)
    w.show()
    w.open_template()
    deadline = time.time() + 20
    while time.time() < deadline and (not w.isExposed() if hasattr(w, "isExposed") else False):
        app.processEvents()
    for _ in range(50):
        app.processEvents(); time.sleep(0.02)
    tree = w.palette.tree
    item = w.palette.item_for("Dropout")
    tree.scrollToItem(item)
    app.processEvents()
    src = tree.viewport().mapToGlobal(tree.visualItemRect(item).center())
    view = w.view
    # a spot of the canvas where no layer is (a drop onto a layer goes to the nearest free spot)
    from PySide6.QtCore import QPointF
    from designer.ui.canvas.items import NODE_WIDTH
    def free(p):
        s = view.mapToScene(p)
        tl = view.canvas_scene.snap(QPointF(s.x() - NODE_WIDTH / 2, s.y() - 40))
        return view.canvas_scene.free_spot(tl) == tl
    view.scale(0.6, 0.6)  # zoomed out: room beside the fitted template (the bottom panels
    for _ in range(5):     # take a third of the window's height)
        app.processEvents()
    vr = view.viewport().rect()
    target = next(QPoint(x, y) for y in range(vr.height() - 60, 60, -20)
                  for x in range(vr.width() // 2, vr.width() - 100, 20) if free(QPoint(x, y)))
    dst = view.viewport().mapToGlobal(target)
    before = set(w.document.graph.nodes)
    xdo = subprocess.Popen(["xdotool", "mousemove", str(src.x()), str(src.y()), "sleep", "0.3",
                            "mousedown", "1", "sleep", "0.2",
                            "mousemove", str(src.x() + 20), str(src.y() + 5), "sleep", "0.2",
                            "mousemove", str(dst.x()), str(dst.y()), "sleep", "0.3",
                            "mouseup", "1"])
    result = {}
    def poll():
        added = set(w.document.graph.nodes) - before
        if added or time.time() > deadline2:
            nid = added.pop() if added else None
            if nid:
                rect = view.canvas_scene.node_items[nid].sceneBoundingRect()
                drop = view.mapToScene(target)
                result.update(type=w.document.graph.nodes[nid].type,
                              near=rect.adjusted(-30, -30, 30, 30).contains(drop))
            xdo.wait(10)
            w.shutdown()
            print("RESULT " + json.dumps(result))
            app.quit()
    deadline2 = time.time() + 20
    timer = QTimer(); timer.timeout.connect(poll); timer.start(50)
    app.exec()
""")


@pytest.mark.slow
def test_real_drag_from_palette_onto_canvas_under_xvfb(tmp_path):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed (scripts/install-system-deps.sh)")
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1440x900x24",
                             "-nolisten", "tcp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        display = xvfb.stdout.readline().decode().strip()
        if not display:
            pytest.skip("Xvfb did not start")
        env = dict(os.environ, DISPLAY=f":{display}", QT_QPA_PLATFORM="xcb",
                   PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(tmp_path))
        proc = subprocess.run([sys.executable, "-c", _DRAG], check=False, env=env,
                              capture_output=True, text=True, timeout=120)
        if "could not load the Qt platform plugin" in proc.stderr:
            pytest.skip("Qt's xcb platform plugin cannot load (libxcb-cursor0 missing?)")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-2000:]
        result = json.loads(lines[-1][len("RESULT "):])
        assert result == {"type": "Dropout", "near": True}
    finally:
        xvfb.terminate()
        xvfb.wait(10)
