"""The first five minutes, measured: launch to first paint, ``designer check``, and the starter
template trained in the window against ``designer train``, with and without a busy core.

Every figure is a fresh process, as a user starts them, alternated in one run so that the ratios
compare like with like:

* ``import torch``: ``python -c "import torch"`` wall time, the yardstick of the targets;
* launch: ``python -m designer designer/templates/mlp-digits.dnn.json`` until the main window's
  first paint (an event filter installed before :func:`designer.ui.app.run_app` prints the moment and
  whether torch was loaded by then, then ends the process);
* check: ``python -m designer check mlp-digits``;
* CLI: ``python -m designer train mlp-digits --epochs E``; window: the real MainWindow with the
  starter, its Train action pressed (the user's path: worker QThread, live plots, redraw timer).
  Speed is the trainer's own figure over the epochs after the first (training samples / training
  time), so start-up and the final evaluation are not counted;
* busy: a background ``python -c "while True: pass"`` keeps one of the cores busy meanwhile (a
  browser, an indexer).

Run: ``.venv/bin/python benchmarks/bench_first_run.py [--repeats 5] [--epochs 20]``
(offscreen Qt; ``--xvfb`` uses the DISPLAY that is set instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "designer" / "templates" / "mlp-digits.dnn.json"
SETTLE_S = 3.0  # a user reads the window for a few seconds before pressing Train


# --------------------------------------------------------------------------------------------
# children (run in their own process)
# --------------------------------------------------------------------------------------------


def child_paint() -> None:
    """``designer FILE`` as the CLI runs it, ending at the main window's first paint."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QMainWindow

    from designer.ui import app as app_module

    class FirstPaint(QObject):
        def eventFilter(self, obj, ev):
            if (ev.type() == QEvent.Type.Paint and obj.isWidgetType()
                    and isinstance(obj.window(), QMainWindow)):
                print(json.dumps({"painted": time.time(), "torch": "torch" in sys.modules}),
                      flush=True)
                os._exit(0)
            return False

    qapp = app_module.make_app()
    f = FirstPaint()
    qapp.installEventFilter(f)
    app_module.run_app(str(STARTER))


def child_window(epochs: int) -> None:
    """The starter in the real window, Train pressed; prints how the run ended. The run folder
    (and its metrics.jsonl) goes under $XDG_DATA_HOME, which the parent sets."""
    from PySide6.QtCore import QEventLoop, QTimer

    from designer.ui.app import make_app
    from designer.ui.main_window import MainWindow

    qapp = make_app()
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    window.open_template()
    panel = window.training.panel
    values = dict(panel.settings.values())
    values["epochs"] = epochs
    panel.settings.set_values(values)
    panel._on_training_edited()
    settle = time.perf_counter() + SETTLE_S  # the user looks at the window, then presses Train
    while time.perf_counter() < settle:
        qapp.processEvents()
        time.sleep(0.01)
    loop = QEventLoop()
    ended = []
    panel.run_finished.connect(lambda status: (ended.append(status), loop.quit()))
    pressed = {}

    def first_batch():  # "Preparing...": from the press to the first batch done
        trainer = panel.worker.trainer if panel.worker is not None else None
        if trainer is not None and trainer.batches_done > 0:
            pressed["prepare_s"] = time.perf_counter() - pressed["t"]
        else:
            QTimer.singleShot(2, first_batch)

    def press():
        pressed["t"] = time.perf_counter()
        window.act_train.trigger() if hasattr(window, "act_train") else panel.train()
        first_batch()

    QTimer.singleShot(0, press)
    loop.exec()
    print(json.dumps({"status": ended, "prepare_s": pressed.get("prepare_s")}), flush=True)
    os._exit(0)


# --------------------------------------------------------------------------------------------
# the parent
# --------------------------------------------------------------------------------------------


def _env(xvfb: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not xvfb:
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wall(cmd: list[str], env) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def first_paint(env) -> tuple[float, bool]:
    t = time.time()
    out = subprocess.run([sys.executable, __file__, "--child-paint"], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    info = json.loads(out.strip().splitlines()[-1])
    return info["painted"] - t, info["torch"]


def _speed(metrics: Path) -> float:
    """Samples per second over the epochs after the first (whose first batches warm up)."""
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    records = records[1:] or records
    n = statistics.median(r["samples_per_s"] * r["time_s"] for r in records)
    return n * len(records) / sum(r["time_s"] for r in records)


def cli_speed(env, epochs: int, out: Path) -> float:
    subprocess.run([sys.executable, "-m", "designer", "train", str(STARTER), "--epochs",
                    str(epochs), "--out", str(out)], env=env, check=True, capture_output=True,
                   timeout=600)
    return _speed(next(out.rglob("metrics.jsonl")))


PREPARE: list[float] = []  # seconds from pressing Train to the first batch, per window run


def window_speed(env, epochs: int, data_home: Path) -> float:
    out = subprocess.run([sys.executable, __file__, "--child-window", "--epochs", str(epochs)],
                         env={**env, "XDG_DATA_HOME": str(data_home)}, check=True,
                         capture_output=True, text=True, timeout=600)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    metrics = list(data_home.rglob("metrics.jsonl"))
    if len(metrics) != 1:
        raise SystemExit(f"the window's run ended {info['status']} with {len(metrics)} run "
                         f"folders in {data_home}")
    PREPARE.append(info["prepare_s"])
    return _speed(metrics[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--xvfb", action="store_true", help="use the DISPLAY set (default offscreen)")
    ap.add_argument("--skip-launch", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--child-paint", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-window", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_paint:
        return child_paint()
    if args.child_window:
        return child_window(args.epochs)

    env = _env(args.xvfb)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.skip_launch:
        torch_t, paint_t, check_t, torch_at_paint = [], [], [], []
        wall([sys.executable, "-c", "import torch"], env)  # warm the file cache
        for _ in range(args.repeats):
            torch_t.append(wall([sys.executable, "-c", "import torch"], env))
            p, loaded = first_paint(env)
            paint_t.append(p)
            torch_at_paint.append(loaded)
            check_t.append(wall([sys.executable, "-m", "designer", "check", "mlp-digits"], env))
        t = statistics.median(torch_t)
        print(f"import torch: median {t:.2f} s ({', '.join(f'{x:.2f}' for x in torch_t)})")
        print(f"launch to first paint: median {statistics.median(paint_t):.2f} s "
              f"({', '.join(f'{x:.2f}' for x in paint_t)}), ratio "
              f"{statistics.median(paint_t) / t:.2f}x import torch (target <= 0.6); torch loaded "
              f"at first paint: {any(torch_at_paint)}")
        print(f"designer check mlp-digits: median {statistics.median(check_t):.2f} s "
              f"({', '.join(f'{x:.2f}' for x in check_t)}), ratio "
              f"{statistics.median(check_t) / t:.2f}x import torch (target <= 0.25)", flush=True)
    if args.skip_training:
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    for busy in (False, True):
        hog = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None)
        try:
            cli, win = [], []
            for r in range(args.repeats):
                cli.append(cli_speed(env, args.epochs, tmp / f"cli-{busy}-{r}"))
                win.append(window_speed(env, args.epochs, tmp / f"win-{busy}-{r}"))
                print(f"  {'busy' if busy else 'quiet'} repeat {r + 1}: CLI {cli[-1]:,.0f}, "
                      f"window {win[-1]:,.0f} samples/s, load {os.getloadavg()[0]:.1f}",
                      flush=True)
        finally:
            if hog:
                hog.kill()
                hog.wait()
        ratios = [w / c for c, w in zip(cli, win)]
        print(f"starter, {'one core busy' if busy else 'quiet'}: CLI median "
              f"{statistics.median(cli):,.0f} samples/s, window median "
              f"{statistics.median(win):,.0f} samples/s, window/CLI per repeat "
              f"{', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f} "
              f"(target >= 0.9)", flush=True)
        print(f"  Train pressed {SETTLE_S:.0f} s after the window opened: first batch done after "
              f"{', '.join(f'{x:.2f}' for x in PREPARE)} s", flush=True)
        PREPARE.clear()


if __name__ == "__main__":
    main()
