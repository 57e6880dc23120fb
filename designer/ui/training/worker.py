"""The background run: a QThread around the engine's :class:`~designer.engine.train.training.Trainer`.

The worker gets a frozen snapshot at Train time (``graph.copy()``, the dataset and training
sections, the project folder) and never touches live objects (../shared/STYLE.md, habit 8). In its
thread it loads the dataset (unless the panel already holds it), checks that the design fits,
builds the model, runs the trainer and finally evaluates the trained model on the validation split.

Every event, the engine's own and the few added here (:class:`DatasetReady`, :class:`Evaluated`),
goes out through the ``event`` signal. Connect it to a slot of a QObject that lives in the GUI
thread: a lambda or plain function connected to it would run in the worker thread
(../shared/GUI_TESTING.md).
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal

from designer.engine.model.graph import Graph
from designer.engine.threads import training_threads, use_training_threads
from designer.engine.train.evaluation import EvaluationResult, evaluate_run
from designer.engine.train.events import Failed

# Batch reports from the trainer: 10 a second feed the curves and the progress bar smoothly; the
# panel's redraw timer decides how often they are drawn.
BATCH_EVENT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class DatasetReady:
    """The worker loaded the dataset (the panel keeps it for the next run and "try it")."""

    dataset: Any
    key: str


@dataclass(frozen=True)
class Evaluated:
    """The trained model's predictions on the validation split, and the model itself (on the CPU,
    in eval mode) for "try it"."""

    result: EvaluationResult
    model: Any
    dataset: Any
    checkpoint: str = "last"  # whose weights: "last" (the model as training left it) or "best"
    run_dir: Path | None = None


@dataclass(frozen=True)
class RunSnapshot:
    """Everything a run needs, captured when Train is pressed."""

    graph: Graph  # a copy: edits in the window do not reach it (the network trained)
    dataset: dict[str, Any]
    training: dict[str, Any]
    base_dir: Path | None
    run_dir: Path | None
    extra_config: dict[str, Any]
    dataset_key: str = ""
    # The whole project, copied, for recipes that train several networks (None: ``graph`` alone);
    # ``network``: the name of ``graph`` in it.
    project: Any = None
    network: str | None = None

    def run_project(self):
        """The project the recipe trains: the snapshot's copy, or one holding ``graph``."""
        if self.project is not None:
            return self.project
        from designer.engine.document.project import Project

        return Project("untitled", "", {self.network or "model": self.graph},
                       dict(self.dataset), dict(self.training), {})


class TrainingWorker(QThread):
    """Runs one snapshot. ``pause``, ``resume`` and ``stop`` may be called from the GUI thread;
    the trainer honours them within one batch."""

    event = Signal(object)

    def __init__(self, snapshot: RunSnapshot, dataset=None, evaluate: bool = True,
                 parent=None, inside=None) -> None:
        super().__init__(parent)
        self.inside = inside  # inside.InsideOptions while the Inside panel observes, else None
        self.snapshot = snapshot
        self.dataset = dataset
        self.evaluate = evaluate
        self.trainer = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = False
        self.result = None  # the trainer's Result once the run ends
        self.cpu_threads = 1  # torch's intra-op threads for the run, set in the thread

    # -- control (GUI thread) --------------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self.trainer is not None:
                self.trainer.resume()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self.trainer is not None:
                self.trainer.stop()

    def observe(self, options) -> None:
        """Watch inside the layers with ``options`` (inside.InsideOptions), or stop (None); a
        trainer not made yet gets it when it is."""
        with self._lock:
            self.inside = options
            if self.trainer is not None:
                self._apply_inside(self.trainer)

    def _apply_inside(self, trainer) -> None:
        if self.inside is None:
            trainer.stop_observing()
        else:
            trainer.observe(self.inside)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            # Leave a core to the GUI thread and one to the rest of the machine (engine.threads:
            # torch's default collapsed 20-30x here whenever another process was busy).
            self.cpu_threads = use_training_threads(training_threads(gui=True))
            self._run()
        except Exception as exc:  # noqa: BLE001 - anything left becomes a message, never a crash
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.event.emit(Failed(msg, traceback.format_exc()))

    def _load_dataset(self):
        """The snapshot's dataset (loaded once, then reused); None after reporting a failure."""
        from designer.engine.train.data import load_dataset

        if self.dataset is not None:
            return self.dataset
        snap = self.snapshot
        try:
            ds = load_dataset(snap.dataset, snap.base_dir, progress=self.event.emit)
        except ValueError as exc:  # DatasetError: missing files, offline, bad columns
            self.event.emit(Failed(str(exc), ""))
            return None
        except MemoryError:
            self.event.emit(Failed("the dataset does not fit in memory", ""))
            return None
        self.dataset = ds
        self.event.emit(DatasetReady(ds, snap.dataset_key))
        return ds

    def _run(self) -> None:
        from designer.engine.services.train_project import prepare_trainer
        from designer.engine.train.recipes import RecipeError

        snap = self.snapshot
        ds = self._load_dataset()
        if ds is None:
            return
        if self._stop.is_set():
            return self._stopped_early()
        # The one preparation step the CLI uses too (designer.engine.services.train_project):
        # the project's recipe checks the design against the data and builds its networks.
        try:
            spec, recipe, trainer = prepare_trainer(
                snap.run_project(), ds, snap.training, run_dir=snap.run_dir,
                callback=self.event.emit, network=snap.network, extra_config=snap.extra_config,
                batch_event_interval=BATCH_EVENT_INTERVAL_S, cpu_threads=self.cpu_threads)
        except RecipeError as exc:
            self.event.emit(Failed(str(exc), ""))
            return
        result = self._run_trainer(trainer)
        model = spec.trained_model(recipe) if spec.evaluates else None
        if (self.evaluate and model is not None and result.status in ("finished", "stopped")
                and result.epochs_done and ds.n_val and not self._stop.is_set()):
            self._evaluate(model, ds, trainer)

    def _run_trainer(self, trainer):
        """Publish the trainer (so pause/stop reach it), apply a pause or stop that arrived
        while it was being prepared, and run it to the end."""
        with self._lock:
            self.trainer = trainer
            self._apply_inside(trainer)
            if self._paused:
                trainer.pause()
            if self._stop.is_set():
                trainer.stop()
        self.result = trainer.run()
        return self.result

    def _stopped_early(self) -> None:
        from designer.engine.train.events import Stopped

        self.event.emit(Stopped(0, 0, 0, None))

    def _evaluate(self, model, ds, trainer) -> None:
        import torch

        from designer.engine.train.evaluation import evaluate_dataset

        device = getattr(trainer, "device", torch.device("cpu"))
        try:
            result = evaluate_dataset(model, ds.to(device), should_stop=self._stop.is_set)
        except Exception as exc:  # noqa: BLE001 - evaluation is extra; a failure must not crash
            self.event.emit(Failed(f"evaluation after training failed: {exc}",
                                   traceback.format_exc()))
            return
        model = model.to("cpu").eval()
        self.event.emit(Evaluated(result, model, ds, "last", self.snapshot.run_dir))


class EvaluateRunWorker(QThread):
    """Evaluates a past run's best.pt or last.pt (the other when that one is missing) on the run's
    own dataset settings.

    The design comes from the copy of the project stored in the run's ``config.json``, so later
    edits do not matter; the checkpoint loads with ``weights_only=True``."""

    event = Signal(object)

    def __init__(self, run_dir: Path, base_dir: Path | None, checkpoint: str = "best",
                 parent=None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.base_dir = base_dir
        self.checkpoint = checkpoint  # "best" or "last" (the other one if that is missing)

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a message, never a crash
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.event.emit(Failed(f"cannot evaluate {self.run_dir.name}: {msg}",
                                   traceback.format_exc()))

    def _run(self) -> None:
        result, model, ds, kind = evaluate_run(self.run_dir, self.base_dir, self.checkpoint)
        self.event.emit(Evaluated(result, model, ds, kind, self.run_dir))
