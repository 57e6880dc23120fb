"""Training in the window: GUI responsiveness and training speed with the live plots attached.

LeNet-5 (designer/templates/lenet5.dnn.json) trains on MNIST-sized random data (uint8 images
1x32x32, the template's resized MNIST input, 10 classes), in one process, alternating:

* headless: the engine's Trainer in its own thread (``Trainer.start``), no Qt at work (the
            reference speed). Not the main thread: measured on this machine, torch's CPU kernels
            run 2-10x slower on the main thread than on any other (a raw conv2d: 29 ms vs 12 ms),
            which would flatter the window;
* window:   the TrainingPanel's Train button path (worker QThread, events to the GUI thread, plots
            redrawn from their timer), while a 10 ms precise QTimer in the GUI thread measures how
            late the event loop serves it.

Both write a run folder with checkpoints. Training speed is the trainer's own per-epoch figure
(training samples / training time of the epoch), so dataset loading and the final evaluation are
not counted. Run: ``.venv/bin/python benchmarks/bench_training_ui.py [--samples N --epochs E
--repeats R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch

PROBE_MS = 10


def make_dataset(n: int, seed: int = 0):
    from designer.engine.train.data.core import Dataset

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    n_val = n // 10
    return Dataset(name="random-mnist", task="classification", x_train=x[n_val:],
                   y_train=y[n_val:], x_val=x[:n_val], y_val=y[:n_val], sample_shape=(1, 32, 32),
                   dtype="float32", class_names=[str(i) for i in range(10)], mean=[0.5],
                   std=[0.29], scale=1 / 255)


def headless(project, ds, training, out: Path) -> list[float]:
    from designer.engine.model.build import build_model
    from designer.engine.train.training import Epoch, Trainer

    rates: list[float] = []
    trainer = Trainer(build_model(project.graph, seed=0), ds, training, run_dir=out,
                      callback=lambda e: rates.append(e.samples_per_s) if isinstance(e, Epoch)
                      else None)
    trainer.start()  # the engine's own thread: the window's run is off the main thread too
    result = trainer.join()
    assert result.status == "finished", result.message
    return rates


def windowed(app, project_path: Path, ds, training, probe_on: bool = True):
    """Train from the panel; returns epoch rates, timer lateness samples (ms), plot redraws and
    the GUI thread's share of the process's CPU time while training (load-independent)."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer, Slot

    from designer.engine.document.project import load_project
    from designer.engine.train.training import Epoch, Finished, Started
    from designer.ui.document import Document
    from designer.ui.training.panel import TrainingPanel

    class BenchPanel(TrainingPanel):
        @Slot(object)
        def _on_event(self, ev) -> None:  # still a slot of the GUI-thread panel
            super()._on_event(ev)
            on_event(ev)

    doc = Document(load_project(project_path), project_path)
    panel = BenchPanel(doc)
    panel.resize(1400, 800)
    panel.show()
    panel.settings.set_values(training)
    panel._on_training_edited()
    panel.chooser.set_dataset(ds, panel.chooser.current_key())  # as if "Load and check" ran
    settle = time.perf_counter() + 0.5  # the first layout and paint, before the user clicks Train
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.01)

    rates: list[float] = []
    late: list[float] = []
    clock = QElapsedTimer()
    state = {"measuring": False, "last": 0, "gui_cpu": 0.0, "all_cpu": 0.0}

    def on_event(ev):  # called from the panel's slot, in the GUI thread
        if isinstance(ev, Started):
            state["measuring"] = True
            clock.start()
            state["last"] = 0
            state["cpu0"] = (time.thread_time(), time.process_time())
        elif isinstance(ev, Epoch):
            rates.append(ev.samples_per_s)
        elif isinstance(ev, Finished):
            state["measuring"] = False
            state["gui_cpu"] = time.thread_time() - state["cpu0"][0]
            state["all_cpu"] = time.process_time() - state["cpu0"][1]

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
    if probe_on:
        probe.start()
    loop = QEventLoop()
    panel.run_finished.connect(lambda status: loop.quit())
    redraws0 = panel.plots.redraws
    assert panel.train()
    loop.exec()
    probe.stop()
    redraws = panel.plots.redraws - redraws0
    panel.shutdown()
    doc.close()
    panel.deleteLater()
    app.processEvents()
    return rates, late, redraws, state["gui_cpu"] / max(state["all_cpu"], 1e-9)


def redraw_cost(app, old_style: bool, frames: int = 150) -> list[float]:
    """CPU ms of one plot update (setData + the paint it causes) at 1000x400, feeding 5 batch
    points per frame. ``old_style``: grid lines and a growing x range, as first written."""
    from designer.ui.training.plots import TrainingPlots

    p = TrainingPlots()
    p.resize(1000, 400)
    if old_style:
        for plot in p._plots.values():
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.enableAutoRange(y=True)
        p._y_managed = dict.fromkeys(p._y_managed, False)
    else:
        p.set_epochs(frames * 5 // 100 + 1)
    p.show()
    app.processEvents()
    costs = []
    rng = np.random.default_rng(0)
    for k in range(frames):
        for i in range(5):
            j = k * 5 + i
            p.add_batch(j / 100, 1 / (1 + j / 50) + 0.1 * rng.random())
        if k % 20 == 19:
            p.add_epoch(k / 20, 0.5, 0.6, 0.7, 0.8, 1e-3)
        t = time.thread_time()
        p._redraw()
        app.processEvents()
        costs.append((time.thread_time() - t) * 1e3)
    p.deleteLater()
    app.processEvents()
    return costs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's "
                    "default, one per core)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from designer.engine.document.project import load_project, save_project
    from designer.ui.app import make_app

    app = make_app()  # as the designer runs: garbage collected on the GUI thread only
    tmp = Path(tempfile.mkdtemp(prefix="bench-training-ui-"))
    project = load_project(ROOT / "designer" / "templates" / "lenet5.dnn.json")
    project_path = tmp / "lenet5.dnn.json"
    save_project(project, project_path)
    ds = make_dataset(args.samples)
    training = {**project.training, "epochs": args.epochs, "batch_size": args.batch_size,
                "device": "cpu"}
    for old in (True, False):
        c = redraw_cost(app, old)
        print(f"plot update CPU ({'grid + growing x range' if old else 'as shipped'}): median "
              f"{np.median(c):.1f} ms, p90 {np.percentile(c, 90):.1f} ms")
    print(f"LeNet-5, {ds.n_train:,} training + {ds.n_val:,} validation samples of 1x32x32, "
          f"batch {args.batch_size}, {args.epochs} epochs per run, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")

    head_rates, win_rates, lateness, redraws, gui_share = [], [], [], [], []
    quiet_rates = []  # the window without the probe timer (it wakes the GUI 100 times a second)
    quiet_share = []
    # warm-up (first-call costs of torch and Qt), not counted
    headless(project, ds, {**training, "epochs": 1}, tmp / "warm")
    for r in range(args.repeats):
        h = headless(project, ds, training, tmp / f"headless-{r}")
        w, late, draws, share = windowed(app, project_path, ds, training)
        q, _, _, qshare = windowed(app, project_path, ds, training, probe_on=False)
        quiet_rates += q
        quiet_share.append(qshare)
        head_rates += h
        win_rates += w
        lateness += late
        redraws.append(draws)
        gui_share.append(share)
        print(f"repeat {r + 1}: headless {statistics.mean(h):,.0f} samples/s, window "
              f"{statistics.mean(w):,.0f} samples/s ({statistics.mean(q):,.0f} without the "
              f"probe), timer lateness p99 "
              f"{np.percentile(late, 99):.1f} ms over {len(late)} ticks, {draws} redraws, GUI "
              f"thread {share:.1%} of the CPU time, load {os.getloadavg()[0]:.1f}", flush=True)
    h, w = statistics.median(head_rates), statistics.median(win_rates)
    lat = np.asarray(lateness)
    print(f"median epoch speed: headless {h:,.0f} samples/s, window {w:,.0f} samples/s, "
          f"ratio {w / h:.3f} (target >= 0.95)")
    print(f"GUI timer lateness ({PROBE_MS} ms timer, {len(lat)} ticks): median "
          f"{np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, p99 "
          f"{np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms (target p99 < 30 ms)")
    qm = statistics.median(quiet_rates)
    print(f"window without the probe timer: median {qm:,.0f} samples/s, ratio {qm / h:.3f}")
    ratios = [w_ / h_ for h_, w_ in zip(head_rates, win_rates)]
    print(f"per-repeat ratios (window/headless, same repeat): "
          f"{', '.join(f'{r_:.2f}' for r_ in ratios)}; median {statistics.median(ratios):.3f}")
    print(f"GUI thread share of the process's CPU while training (probe timer included): "
          f"median {statistics.median(gui_share):.1%}, max {max(gui_share):.1%}; without the "
          f"probe: median {statistics.median(quiet_share):.1%}")
    print(f"plot redraws per run: {redraws}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
