"""Benchmark: the designer canvas with a 500-node graph (offscreen, no display needed).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_ui.py [--nodes 500] [--frames 60]

The graph is ``bench_check.conv_linear_graph`` (residual conv blocks whose shapes all differ, then a
Linear/ReLU/Dropout stack), laid out left to right with the canvas's auto-layout. Measured:

* open: ``Document`` + ``CanvasView`` built and shown (items for every node and edge), then the
  first paint (``QWidget.grab()`` of the whole view at fit-to-view zoom, every node visible);
* first shapes: until the first analysis reaches the canvas (it runs on the worker thread, so
  the window is usable meanwhile; this includes torch's start-up in a fresh process);
* drag frame: one mouse-move event while dragging a node (the item moves, the model is updated,
  the attached edges follow) plus a synchronous repaint of the viewport, at 100% zoom and at
  fit-to-view zoom (all 500 nodes and their edges painted each frame);
* edit to update: from a parameter edit to updated shapes and problems painted on the canvas:
  an edit in the middle of the conv stack (everything after it changes shape), and the worst
  case, the Input shape (every node changes). Edits come 200 ms apart, so the debounce's leading
  edge checks each one at once; edits back to back also wait out ``ANALYSIS_DELAY_MS``. Also the
  GUI thread's longest stall while the worker analyses (gaps between ticks of a 1 ms timer);
* bulk edits: duplicate or delete all 501 nodes as one undo step, undo them, auto-layout.

Targets (issue 5): open < 1 s, drag frame < 16 ms, edit to update < 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_check import conv_linear_graph
from PySide6.QtCore import (
    QElapsedTimer,
    QEvent,
    QEventLoop,
    QObject,
    QPoint,
    QPointF,
    Qt,
    QTimer,
)
from PySide6.QtGui import QTransform
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.engine.document.project import Project
from designer.ui.canvas import CanvasView
from designer.ui.document import ANALYSIS_DELAY_MS, Document, layered_positions


def wait_for(signal, timeout_ms: int = 60_000) -> float:
    """Run the event loop until ``signal`` fires; returns the perf_counter time it fired."""
    loop = QEventLoop()
    fired: list[float] = []

    def done(*_):
        fired.append(time.perf_counter())
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    if not fired:
        raise RuntimeError("timed out waiting for the signal")
    return fired[0]


class PaintCounter(QObject):
    """Counts paint events of a widget (to show that a measured frame really painted)."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Paint:
            self.count += 1
        return False


class StallMeter:
    """Measures the GUI thread's longest gap between 1 ms timer ticks (a frozen frame shows here)."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.worst = 0.0

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def start(self) -> None:
        self.worst = 0.0
        self.clock.start()
        self.last = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def drag_frames(app: QApplication, view: CanvasView, node_id: str, frames: int,
                full: bool) -> list[float]:
    """Press on a node and move it ``frames`` times. Each frame is the move event plus either the
    event processing Qt does next (the scene's dirty regions painted: a real frame) or, with
    ``full``, a synchronous repaint of the whole viewport (an upper bound)."""
    item = view.canvas_scene.node_items[node_id]
    vp = view.viewport()
    grip = item.sceneBoundingRect().center()
    if view.transform().m11() >= 0.5:
        grip += QPointF(0, -15)  # on the text, away from the ports
    start = view.mapFromScene(grip)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, start)
    app.processEvents()
    counter = PaintCounter(vp)
    times = []
    for i in range(1, frames + 1):
        # Back and forth in steps of 12 pixels (more than the 10-unit snapping grid at zoom <= 1,
        # so every frame really moves the node), staying inside the viewport.
        leg = i % 40
        p = start + QPoint(12 * (leg if leg <= 20 else 40 - leg), (7 * i) % 40)
        t0 = time.perf_counter()
        QTest.mouseMove(vp, p)
        if full:
            vp.repaint()
        else:
            app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, p)
    vp.removeEventFilter(counter)
    app.processEvents()
    if counter.count < frames:
        print(f"  (only {counter.count} paints for {frames} frames)")
    return times


def edit_to_update(app, doc: Document, edit, repeat: int, stall: StallMeter,
                   pause_ms: int = 200) -> tuple[list[float], float]:
    """Time from ``edit(i)`` to the canvas showing the new analysis (painted)."""
    view = doc.bench_view
    times = []
    worst_stall = 0.0
    for i in range(repeat):
        # A pause first, as between two edits of a person: the check then starts at once
        # (leading edge of the debounce). Edits in a quick burst wait for the burst to end.
        QTest.qWait(pause_ms)
        stall.start()
        t0 = time.perf_counter()
        edit(i)
        wait_for(doc.analysis_updated)
        view.viewport().repaint()  # the canvas items were updated in the signal; paint them
        times.append((time.perf_counter() - t0) * 1000)
        worst_stall = max(worst_stall, stall.stop())
    return times, worst_stall


def fmt(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"median {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms   max {values[-1]:6.1f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--edits", type=int, default=8)
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    graph, marks = conv_linear_graph(args.nodes)
    for nid, pos in layered_positions(graph).items():
        graph.move(nid, pos)
    project = Project(name="bench", networks={"model": graph})
    print(f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges")

    t0 = time.perf_counter()
    doc = Document(project)
    view = CanvasView(doc)
    view.resize(1400, 900)
    view.show()
    view.fit_to_view()
    t_built = time.perf_counter()
    view.grab()
    t_painted = time.perf_counter()
    print(f"open: Document + CanvasView built {1000 * (t_built - t0):7.1f} ms; "
          f"first paint (grab, all nodes visible) {1000 * (t_painted - t_built):7.1f} ms; "
          f"total {1000 * (t_painted - t0):7.1f} ms")
    stall = StallMeter()
    app.processEvents()  # the window's own first paint and layout, measured above
    stall.start()
    t_first = wait_for(doc.analysis_updated)
    first_stall = stall.stop()
    stall.start()
    QTest.qWait(500)
    idle_stall = stall.stop()
    print(f"first shapes on the canvas {1000 * (t_first - t0):7.1f} ms after opening "
          f"(worker thread; longest GUI-thread stall meanwhile {first_stall:5.1f} ms, "
          f"idle for comparison {idle_stall:5.1f} ms); {len(doc.analysis.problems)} problems")
    doc.bench_view = view

    # Drag a node in the middle of the graph at 100% zoom (full detail) and at 25% (about 150
    # nodes on screen, drawn as simplified boxes below the canvas's detail zoom).
    mid = marks["mid"]
    for zoom in (1.0, 0.25):
        for full in (False, True):
            view.setTransform(QTransform.fromScale(zoom, zoom))
            view.center_on_node(mid)
            app.processEvents()
            count = doc.undo_stack.count()
            times = drag_frames(app, view, mid, args.frames, full)
            assert doc.undo_stack.count() == count + 1, "the drag was not recorded"
            what = "whole viewport repainted" if full else "dirty regions painted   "
            print(f"drag frame, zoom {zoom:4.0%}, {what}: {fmt(times)}")
    view.fit_to_view()
    app.processEvents()
    t0 = time.perf_counter()
    for _ in range(10):
        view.viewport().repaint()
    print(f"whole-viewport repaint at fit-to-view (zoom {view.transform().m11():.3f}, all "
          f"{len(doc.graph.nodes)} nodes on screen): {(time.perf_counter() - t0) * 100:.1f} ms")

    view.setTransform(QTransform())
    view.center_on_node(mid)
    app.processEvents()
    mid_node = doc.graph.nodes[mid]
    base = mid_node.params["out_channels"]
    times, worst = edit_to_update(
        app, doc, lambda i: doc.set_params(mid, {"out_channels": base + 1 + i % 2}), args.edits,
        stall)
    print(f"edit to update, mid conv:     {fmt(times)}  (GUI stall max {worst:.1f} ms)")
    times, worst = edit_to_update(
        app, doc, lambda i: doc.set_params(mid, {"out_channels": base + 1 + i % 2}), args.edits,
        stall, pause_ms=0)
    print(f"  same, edits back to back:   {fmt(times)}  (each waits out the "
          f"{ANALYSIS_DELAY_MS} ms debounce)")
    inp = marks["input"]
    times, worst = edit_to_update(
        app, doc, lambda i: doc.set_params(inp, {"shape": [3, 32 + 4 * ((i + 1) % 2), 32]}), args.edits,
        stall)
    print(f"edit to update, Input shape:  {fmt(times)}  (every node re-inferred; "
          f"GUI stall max {worst:.1f} ms)")

    # Bulk edits on the whole graph: one undo step each, items following the model's events.
    def timed(label: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        app.processEvents()
        print(f"{label:<34} {1000 * (time.perf_counter() - t0):7.0f} ms")

    view.fit_to_view()
    timed("select all + duplicate (one step)", lambda: (view._select_all(),
                                                         view.duplicate_selection()))
    timed("  undo the duplicate", doc.undo_stack.undo)
    timed("select all + delete (one step)", lambda: (view._select_all(), view.delete_selection()))
    timed("  undo the delete", doc.undo_stack.undo)
    timed("auto-layout", doc.auto_layout)
    doc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
