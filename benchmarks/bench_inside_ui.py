"""Inside in the window: how late the GUI thread serves a 10 ms timer while the Inside panel and
the gradient overlay update from a run that captures often.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_inside_ui.py [--epochs 20]
        [--every 2]

The LeNet-like design on 8x8 digits (as bench_inside.py) trains from the TrainingPanel's Train
path (worker QThread, events to the GUI thread) with an InsidePanel and a CanvasView with the
gradient overlay wired as the main window wires them, conv1 selected, and the panel's tab switched
every 300 ms (sample feature maps, histograms, curves) so every kind of view redraws. Captures
every ``--every`` (5) batches within the default time budget, or with ``--stress`` every
``--every`` batches whatever it costs (far more often than a user's run: 10 a second).
``--tab N`` stays on one tab; ``--off`` is the reference without Inside. A precise 10 ms QTimer in the GUI thread records its lateness from Started to
Finished. Reported: captures and redraws, lateness median / p95 / p99 / max (target p99 < 30 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np

PROBE_MS = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--stress", action="store_true",
                    help="no time budget: capture every --every batches whatever it costs")
    ap.add_argument("--tab", type=int, default=None,
                    help="stay on this tab (0 sample, 1 histograms, 2 curves) instead of cycling")
    ap.add_argument("--off", action="store_true",
                    help="the reference: no Inside panel, overlay or observing")
    args = ap.parse_args()

    from bench_inside import lenet_digits
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer, Slot
    from PySide6.QtWidgets import QApplication

    from designer.engine.document.project import Project, save_project
    from designer.engine.train.data import load_dataset
    from designer.engine.train.events import Finished, Started
    from designer.engine.train.inside import InsideOptions
    from designer.ui.canvas.view import CanvasView
    from designer.ui.document import Document
    from designer.ui.inside.overlay import InsideOverlay
    from designer.ui.inside.panel import InsidePanel
    from designer.ui.training.panel import TrainingPanel

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="bench-inside-ui-"))
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp / "config"))
    graph = lenet_digits()
    path = tmp / "lenet.dnn.json"
    save_project(Project("lenet-digits", networks={"model": graph}, dataset={"name": "digits"},
                         training={"epochs": args.epochs, "batch_size": 32}), path)
    ds = load_dataset({"name": "digits"})
    from designer.engine.document.project import load_project

    doc = Document(load_project(path), path)
    doc.analyze_now()
    late: list[float] = []
    clock = QElapsedTimer()
    state = {"measuring": False, "last": 0}

    class BenchPanel(TrainingPanel):
        @Slot(object)
        def _on_event(self, ev) -> None:
            super()._on_event(ev)
            if isinstance(ev, Started):
                state["measuring"], state["last"] = True, 0
                clock.start()
            elif isinstance(ev, Finished):
                state["measuring"] = False

    training = BenchPanel(doc)
    training.resize(1000, 600)
    training.show()
    inside = InsidePanel(doc)
    budget = None if args.stress else InsideOptions().overhead
    inside.options = lambda: InsideOptions(every=args.every, overhead=budget, sample=0)
    inside.resize(1000, 600)
    view = CanvasView(doc)
    view.resize(1000, 600)
    view.show()
    overlay = InsideOverlay(doc, view, inside.store)
    overlay.set_enabled(True)
    spent: dict[str, list[float]] = {"panel redraw": [], "overlay refresh": [],
                                     "event slot": []}

    def timed(name, fn):
        def run(*a):
            t = time.perf_counter()
            out = fn(*a)
            spent[name].append((time.perf_counter() - t) * 1e3)
            return out
        return run

    inside.redraw = timed("panel redraw", inside.redraw)
    inside.timer.timeout.disconnect()
    inside.timer.timeout.connect(inside.redraw)
    overlay.refresh = timed("overlay refresh", overlay.refresh)
    inside.handle = timed("event slot", inside.handle)
    training.inside_event.connect(inside.handle)
    training.run_started.connect(lambda: inside.start_live(training.run_dir))
    inside.observe_requested.connect(training.set_inside)
    if not args.off:
        inside.show()
    conv = next(n.id for n in doc.graph.nodes.values() if n.type == "Conv2d")
    inside.set_selection([conv])
    training.chooser.set_dataset(ds, training.chooser.current_key())
    redraws = {"n": 0}
    inside.redrawn.connect(lambda: redraws.__setitem__("n", redraws["n"] + 1))
    flip = QTimer()
    flip.setInterval(300)
    flip.timeout.connect(lambda: inside.tabs.setCurrentIndex((inside.tabs.currentIndex() + 1) % 3))
    if args.tab is None:
        flip.start()
    else:
        inside.tabs.setCurrentIndex(args.tab)
    settle = time.perf_counter() + 0.5
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.01)

    def tick():
        if not state["measuring"]:
            return
        now = clock.nsecsElapsed()
        if state["last"]:
            late.append((now - state["last"]) / 1e6 - PROBE_MS)
        state["last"] = now

    probe = QTimer()
    probe.setTimerType(Qt.PreciseTimer)
    probe.setInterval(PROBE_MS)
    probe.timeout.connect(tick)
    probe.start()
    loop = QEventLoop()
    training.run_finished.connect(lambda status: loop.quit())
    assert training.train()
    loop.exec()
    probe.stop()
    flip.stop()
    lat = np.asarray(late)
    print(f"LeNet-like on digits, {args.epochs} epochs, captures every {args.every} batches "
          f"{'(no time budget)' if args.stress else f'within {budget:.0%} of the time'}: "
          f"{inside.store.captures} captures, {redraws['n']} panel redraws, overlay on")
    print(f"GUI timer lateness ({PROBE_MS} ms timer, {len(lat)} ticks): median "
          f"{np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, p99 "
          f"{np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms (target p99 < 30 ms)")
    for name, ms in spent.items():
        if ms:
            print(f"{name}: {len(ms)} calls, median {np.median(ms):.2f} ms, p99 "
                  f"{np.percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")
    training.shutdown()
    doc.close()


if __name__ == "__main__":
    main()
