"""One real drag and drop, from a palette list onto the canvas, under Xvfb driven by xdotool.

pytest-qt cannot start a platform drag (QDrag.exec blocks), so the other tests send QDropEvents;
this one checks the real gesture end to end: a QListWidget that provides the layer MIME type, the
CanvasView, the X server's drag protocol. The app computes the screen coordinates (mapToGlobal)
and prints them; the test moves the pointer with xdotool. Skips when Xvfb or xdotool is missing
(``scripts/install-system-deps.sh`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

APP = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QMimeData, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QHBoxLayout, QListWidget, QWidget
    from designer.ui.canvas import LAYER_MIME, CanvasView
    from designer.ui.document import Document

    class Palette(QListWidget):
        def mimeTypes(self):
            return [LAYER_MIME]

        def mimeData(self, items):
            data = QMimeData()
            data.setData(LAYER_MIME, items[0].text().encode("utf-8"))
            return data

    app = QApplication(sys.argv)
    doc = Document()
    window = QWidget()
    layout = QHBoxLayout(window)
    palette = Palette()
    palette.addItems(["Linear", "ReLU"])
    palette.setDragEnabled(True)
    palette.setFixedWidth(180)
    view = CanvasView(doc)
    layout.addWidget(palette)
    layout.addWidget(view)
    window.resize(900, 600)
    window.move(0, 0)
    window.show()

    def report():
        rect = palette.visualItemRect(palette.item(0))
        src = palette.viewport().mapToGlobal(rect.center())
        dst = view.viewport().mapToGlobal(view.viewport().rect().center())
        print(json.dumps({"src": [src.x(), src.y()], "dst": [dst.x(), dst.y()]}), flush=True)

    def poll():
        if doc.graph.nodes or poll.ticks > 150:
            print(json.dumps({"types": [n.type for n in doc.graph.nodes.values()],
                              "undo": doc.undo_stack.undoText()}), flush=True)
            doc.close()
            app.quit()
        poll.ticks += 1

    poll.ticks = 0
    QTimer.singleShot(800, report)
    timer = QTimer()
    timer.timeout.connect(poll)
    QTimer.singleShot(800, lambda: timer.start(100))
    app.exec()
    """
)


def _start_xvfb() -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a display number it picks itself (-displayfd), so parallel runs never clash."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        proc.wait()
        pytest.skip("Xvfb did not start")
    return proc, f":{number}"


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                    reason="needs Xvfb and xdotool (scripts/install-system-deps.sh)")
def test_real_drag_from_palette_adds_a_node(tmp_path):
    xvfb, display = _start_xvfb()
    app = None
    try:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "PYTHONPATH": str(ROOT)}
        script = tmp_path / "dnd_app.py"
        script.write_text(APP)
        app = subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = app.stdout.readline()
        if not line:
            err = app.stderr.read()
            if "could not connect to display" in err or "xcb" in err:
                pytest.skip(f"Qt cannot use the xcb platform here: {err.strip()[-300:]}")
            raise AssertionError(f"the app did not start: {err[-2000:]}")
        coords = json.loads(line)
        (sx, sy), (dx, dy) = coords["src"], coords["dst"]
        subprocess.run(
            ["xdotool", "mousemove", str(sx), str(sy), "sleep", "0.2", "mousedown", "1",
             "sleep", "0.2", "mousemove", str(sx + 20), str(sy + 5), "sleep", "0.2",
             "mousemove", str((sx + dx) // 2), str(dy), "sleep", "0.2",
             "mousemove", str(dx), str(dy), "sleep", "0.3", "mouseup", "1"],
            env=env, check=True, timeout=20)
        out, err = app.communicate(timeout=30)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["types"] == ["Linear"], err[-2000:]
        assert result["undo"] == "Add Linear 'fc1'"
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait()
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()
