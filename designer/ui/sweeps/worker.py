"""The background sweep: a QThread driving the engine's :class:`~designer.engine.search.runner.Sweep`.

The worker gets a frozen copy of the project when Start is pressed and never touches the live
document (../shared/STYLE.md, habit 8). In its thread it loads the dataset once, then runs one
engine ``Sweep`` per parallel worker (each in a Python thread of its own, all on one study: the
engine's lock makes them together run exactly the study's number of trials). While they run it
computes the parameter importances after each finished trial once enough trials are complete
(Optuna's fANOVA imports scikit-learn: never on the GUI thread).

Every event goes out through the ``event`` signal: the engine's (SweepStarted, TrialStarted,
TrialProgress, TrialFinished, SweepFinished) and :class:`Importances`, :class:`SweepFailed`.
Connect it to a slot of a QObject living in the GUI thread (../shared/GUI_TESTING.md).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal

from designer.engine.search.runner import (
    COMPLETE,
    MIN_TRIALS_FOR_IMPORTANCES,
    Sweep,
    SweepFinished,
    TrialFinished,
    TrialProgress,
    best_trial,
    importances,
)
from designer.engine.search.storage import open_storage

#: Batch reports of the running trials forwarded at most this often (the view shows progress).
PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Importances:
    values: dict[str, float]  # {dimension label: share}, largest first
    complete: int  # complete trials they were computed from


@dataclass(frozen=True)
class SweepFailed:
    """The sweep could not start or a worker crashed (a message for the view)."""

    message: str


@dataclass(frozen=True)
class SweepRequest:
    """Everything a sweep needs, captured at Start."""

    project: Any  # a copy (project_from_dict of the document's to_dict)
    base_dir: Path
    project_path: Path | None
    study: str
    workers: int = 1
    storage: str | None = None


class SweepWorker(QThread):
    event = Signal(object)

    def __init__(self, request: SweepRequest, parent=None) -> None:
        super().__init__(parent)
        self.request = request
        self.sweeps: list = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._complete = 0
        self._last_progress = 0.0
        self.storage_url: str | None = None
        self.finished_event = None  # the SweepFinished the view shows at the end

    # -- control (GUI thread) ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop: each running trial stops before its next batch; no new trial starts."""
        self._stop.set()
        with self._lock:
            for s in self.sweeps:
                s.stop()
        self._wake.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the thread ----------------------------------------------------------------------------

    def _on_engine_event(self, event: Any) -> None:
        """Called in a sweep thread: forward (batch reports thinned), count complete trials."""
        from designer.engine.train.events import Batch

        if isinstance(event, TrialProgress) and isinstance(event.event, Batch):
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL_S:
                return
            self._last_progress = now
        if isinstance(event, TrialFinished):
            if event.state == COMPLETE:
                with self._lock:
                    self._complete += 1
            self._wake.set()
        if isinstance(event, SweepFinished):
            # Several workers each finish; the view shows the last, built here from the study.
            return
        self.event.emit(event)

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a message in the view, never a dead window
            text = str(exc) if isinstance(exc, ValueError) else (
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            self.event.emit(SweepFailed(text))

    def _run(self) -> None:
        from designer.engine.threads import cpu_count
        from designer.engine.train.config import validate_dataset
        from designer.engine.train.data import load_dataset

        req = self.request
        dataset = load_dataset(validate_dataset(req.project.dataset), req.base_dir)
        if self._stop.is_set():
            return
        workers = max(1, req.workers)
        # torch threads: the cores shared among the workers (at least one each)
        threads = max(1, (cpu_count() - 1) // workers)
        with self._lock:
            for _ in range(workers):
                self.sweeps.append(Sweep(
                    req.project, req.base_dir, storage=req.storage, study_name=req.study,
                    project_path=req.project_path, callback=self._on_engine_event,
                    dataset=dataset, cpu_threads=threads))
        self.storage_url = self.sweeps[0].storage_url
        errors: list[BaseException] = []

        def work(sweep) -> None:
            try:
                sweep.run()
            except BaseException as exc:  # noqa: BLE001 - reported once all have ended
                errors.append(exc)
                self._wake.set()

        pool = []
        for i, sweep in enumerate(self.sweeps):
            if self._stop.is_set():
                break
            if i:
                time.sleep(0.05)  # let the first create the study before the others load it
            t = threading.Thread(target=work, args=(sweep,), name=f"designer-sweep-{i}",
                                 daemon=True)
            t.start()
            pool.append(t)
        shown = 0
        while any(t.is_alive() for t in pool):
            self._wake.wait(0.25)
            self._wake.clear()
            with self._lock:
                complete = self._complete
            if complete >= MIN_TRIALS_FOR_IMPORTANCES and complete > shown and not \
                    self._stop.is_set():
                shown = complete
                self._emit_importances(complete)
        for t in pool:
            t.join()
        if errors and not any(s.finished for s in self.sweeps):
            raise errors[0]
        self._finish()

    def _study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.load_study(study_name=self.request.study,
                                 storage=open_storage(self.storage_url))

    def _emit_importances(self, complete: int) -> None:
        try:
            found = importances(self._study())
        except Exception:  # noqa: BLE001 - importances are a bonus; the trials matter
            return
        if found:
            self.event.emit(Importances(found, complete))

    def _finish(self) -> None:
        study = self._study()
        states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
        counts = {s: states.count(s) for s in sorted(set(states))}
        reasons = [s.finished.reason for s in self.sweeps if s.finished is not None]
        reason = ("stopped" if self._stop.is_set() or "stopped" in reasons
                  else "timeout" if "timeout" in reasons else "done")
        found = {}
        try:  # from MIN_TRIALS_FOR_IMPORTANCES complete trials on, as the view says
            found = importances(study)
        except Exception:  # noqa: BLE001 - importances are a bonus; the trials matter
            found = {}
        self.finished_event = SweepFinished(best_trial(study), reason, counts, found)
        self.event.emit(self.finished_event)
