"""``designer sweep FILE``: search the parameters the project marks "search", with Optuna.

One line per trial, the best at the end; ``--apply`` writes the best values into FILE (an atomic
save, the old file kept as ``.bak``). Several processes with the same ``--storage`` and
``--study`` share the trials: together they run ``--trials`` of them. Exit status: 0 done,
1 no trial completed, 2 a file, setting or storage cannot be used, 130 stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="search hyperparameters and sizes (the project's search section)",
        description="Run the trials of the search in FILE's \"search\" section (Optuna): each "
        "trial trains a copy of the project with its values into an ordinary run folder. Several "
        "processes given the same --storage and --study share one study and together run "
        "--trials trials.")
    p.add_argument("file", help="project file (.dnn.json) with a search section")
    p.add_argument("--trials", type=int, metavar="N",
                   help="trials of the study in all, every worker's counted (default: the "
                   "search section's)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="start no new trial after S seconds (default: the search section's)")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna RDB URL (sqlite:///path.db, postgresql://user:pw@host/db); "
                   "default: runs/<project>/sweeps.db next to the project file")
    p.add_argument("--study", metavar="NAME", help="study name (default: the project's name)")
    p.add_argument("--apply", action="store_true",
                   help="write the best trial's values into FILE when the sweep ends")
    p.set_defaults(func=run)


class TrialPrinter:
    """Turns sweep events into lines: the study, one line per trial, the best."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.metric = "value"

    def __call__(self, event: Any) -> None:
        from ..engine.search.runner import COMPLETE, SweepFinished, SweepStarted, TrialFinished
        from ..engine.search.space import describe_params

        if isinstance(event, SweepStarted):
            sp = event.space
            self.metric = sp.metric
            have = f", {event.existing} already" if event.existing else ""
            self._print(f"study {event.study!r} in {event.storage}: {event.trials} trial(s) in "
                        f"all{have}; {sp.sampler} sampler, {sp.pruner_text()}, {sp.direction} "
                        f"{sp.metric}")
        elif isinstance(event, TrialFinished):
            if event.state == COMPLETE:
                what = f"{self.metric} {event.value:.4f}"
            else:
                what = event.message.splitlines()[0] if event.message else ""
            where = f"  {event.run_dir}" if event.run_dir else ""
            self._print(f"trial {event.number:<3} {event.state:<8} {what}  "
                        f"{describe_params(event.params)}  {event.duration_s:.1f}s{where}")
        elif isinstance(event, SweepFinished):
            counts = ", ".join(f"{n} {s}" for s, n in event.counts.items()) or "no trials"
            self._print(f"sweep {event.reason}: the study has {counts}")
            if event.best is None:
                self._print("best: none (no trial completed)")
            else:
                b = event.best
                self._print(f"best: trial {b.number}  {self.metric} {b.value:.4f}  "
                            f"{describe_params(b.params)}")
            if event.importances:
                self._print("importance: " + "  ".join(
                    f"{k} {v:.2f}" for k, v in event.importances.items()))

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from ..engine.document.project import ProjectError, load_project, save_project
    from ..engine.search.runner import Sweep, apply_best
    from ..engine.search.space import describe_params
    from ..engine.search.storage import storage_label
    from ..engine.search.values import apply_values

    err = sys.stderr

    def fail(msg: str, code: int = 2) -> int:
        print(f"error: {msg}", file=err)
        return code

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        return fail(str(exc))
    if not project.search:
        return fail(f"{args.file}: no search section; mark parameters to search (README: Sweeps)")
    if args.trials is not None and args.trials < 1:
        return fail("--trials: expected a positive number")
    path = Path(args.file)
    printer = TrialPrinter(sys.stdout)
    try:
        sweep = Sweep(project, path.resolve().parent, storage=args.storage,
                      study_name=args.study, project_path=path, trials=args.trials,
                      timeout_s=args.timeout, callback=printer, with_importances=True)
    except ValueError as exc:
        return fail(str(exc))
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = sweep.run()
        except Exception as exc:  # noqa: BLE001 - reported below, never a traceback
            box["error"] = exc

    import threading

    thread = threading.Thread(target=work, name="designer-sweep", daemon=True)
    thread.start()
    interrupted = False
    while thread.is_alive():  # sleep, not join(): Ctrl-C inside join() is unreliable (< 3.13)
        try:
            time.sleep(0.1)
        except KeyboardInterrupt:
            if interrupted:
                os._exit(130)
            print("\nstopping the sweep after this batch; Ctrl-C again quits at once", file=err)
            interrupted = True
            sweep.stop()
    thread.join()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, ValueError):  # DatasetError, SearchError, ...
            return fail(str(exc))
        return fail(f"{storage_label(sweep.storage_url)}: {type(exc).__name__}: {exc}")
    result = box["result"]
    if args.apply and result.best is not None:
        changes = apply_best(project, result.best)
        if changes:
            try:
                save_project(apply_values(project, changes), path)
            except (ProjectError, OSError) as exc:
                return fail(f"--apply: {exc}")
            print(f"applied to {path}: " + describe_params(
                {t.label: v for t, v in changes.items()}))
        else:
            print(f"{path} already has the best values")
    if interrupted:
        return 130
    return 0 if result.best is not None else 1
