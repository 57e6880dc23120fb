"""Running a sweep: :class:`Sweep` asks Optuna for trials, trains each as an ordinary run and
reports its epochs back (see :mod:`designer.engine.search`). Its events are plain data that a
view reads from the sweep's thread.

Importing this module imports neither torch nor optuna; running a sweep does."""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..document.project import ProjectError, project_from_dict
from ..model.shapes import analyze
from ..train.config import validate_dataset, validate_training
from ..train.recipes import RecipeError, prepare_run, recipe_of
from ..train.runs import default_run_dir, project_stem
from .space import SearchSpace, Target, changes_of, search_space
from .storage import StorageLock, default_storage, open_storage, storage_label
from .values import apply_values, current_values

#: Complete trials before parameter importances are computed (fANOVA on two points says little).
MIN_TRIALS_FOR_IMPORTANCES = 3

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


@dataclass(frozen=True)
class SweepStarted:
    study: str
    storage: str  # the URL without its password
    trials: int  # the study's total
    existing: int  # trials the study already had when this worker started
    space: SearchSpace


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict[str, Any]  # {target label: value}
    run_dir: str | None


@dataclass(frozen=True)
class TrialProgress:
    """A trainer event (Started, Batch, Epoch, ...) of the running trial."""

    number: int
    event: Any


@dataclass(frozen=True)
class TrialFinished:
    number: int
    state: str  # complete, pruned or failed
    value: float | None  # the objective (complete trials)
    params: dict[str, Any]
    duration_s: float
    run_dir: str | None  # None: pruned before training
    message: str = ""  # why it was pruned or failed
    epoch: int | None = None  # the epoch a pruned trial stopped after


@dataclass(frozen=True)
class BestTrial:
    number: int
    value: float
    params: dict[str, Any]  # {target label: value}
    run_dir: str | None


@dataclass(frozen=True)
class SweepFinished:
    best: BestTrial | None
    reason: str  # "done", "timeout" or "stopped"
    counts: dict[str, int]  # trials of the study per state
    importances: dict[str, float] = field(default_factory=dict)



class Sweep:
    """Runs a project's search: see the module docstring.

    ``project``: the document (read once, at construction: later edits do not reach the sweep).
    ``base_dir``: the project's folder (data paths are relative to it). ``project_path``: the
    project file, whose stem names the runs folder (None: named after the project).
    ``storage``: an Optuna RDB URL (default: :func:`default_storage`); ``study_name``: default
    the project's name. ``trials``/``timeout_s``: override the search section's. ``callback``
    gets the events (in the sweep's thread). ``with_importances``: SweepFinished carries the
    parameter importances (fANOVA: imports scikit-learn, a second or two; a view can ask
    :meth:`importances` itself when it shows them). Call :meth:`run` (blocking) in any thread, or
    :meth:`start`; :meth:`stop` from any thread stops the running trial within a batch.
    """

    def __init__(self, project, base_dir: str | os.PathLike, storage: str | None = None,
                 study_name: str | None = None, *, project_path: str | os.PathLike | None = None,
                 trials: int | None = None, timeout_s: float | None = None,
                 callback: Callable[[Any], None] | None = None, dataset=None,
                 cpu_threads: int | None = None, with_importances: bool = False) -> None:
        self.space = search_space(project)
        # A frozen snapshot: the sweep never reads or writes the user's document again.
        self.project = project_from_dict(json.loads(json.dumps(project.to_dict())))
        self.base_dir = Path(base_dir)
        self.project_path = Path(project_path) if project_path is not None else None
        self.storage_url = storage or default_storage(project_path, project.name, base_dir)
        self.study_name = study_name or project.name
        self.trials = self.space.trials if trials is None else trials
        if self.space.sampler == "grid":
            self.trials = min(self.trials, self.space.grid_size() or self.trials)
        self.timeout_s = self.space.timeout_s if timeout_s is None else timeout_s
        self.callback = callback
        self.dataset = dataset
        self.cpu_threads = cpu_threads
        self.with_importances = with_importances
        self.study = None
        self.results: list[TrialFinished] = []
        self.finished: SweepFinished | None = None
        self._stop = threading.Event()
        self._trainer = None
        self._thread: threading.Thread | None = None
        self._lock: StorageLock | None = None

    # ---- control (any thread) ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop: the running trial stops before its next batch (it is marked failed, "stopped"),
        and no new trial starts."""
        self._stop.set()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="designer-sweep", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> SweepFinished | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    # ---- the run -------------------------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        if self.callback is not None:
            self.callback(event)

    def run(self) -> SweepFinished:
        """Run trials until the study has ``trials`` of them, the timeout passes or
        :meth:`stop`. Raises ValueError (DatasetError, ...) when the sweep cannot start."""
        import optuna  # deferred: optuna loads only when this runs

        from ..train.data import load_dataset  # torch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.dataset is None:  # loaded once, for every trial (the same dataset settings)
            self.dataset = load_dataset(validate_dataset(self.project.dataset), self.base_dir)
        self._lock = StorageLock(self.storage_url, self.study_name)
        try:
            return self._run(optuna)
        finally:
            self._lock.close()

    def _run(self, optuna) -> SweepFinished:
        with self._lock.held():
            storage = open_storage(self.storage_url)
            study = optuna.create_study(storage=storage, study_name=self.study_name,
                                        direction=self.space.direction, load_if_exists=True)
            existing = len(study.get_trials(deepcopy=False))
            worker = int(study.user_attrs.get("workers", 0))
            study.set_user_attr("workers", worker + 1)
        study.sampler = self._sampler(optuna, worker)
        study.pruner = self._pruner(optuna)
        self.study = study
        self._emit(SweepStarted(self.study_name, storage_label(self.storage_url), self.trials,
                                existing, self.space))
        started = time.monotonic()
        reason = "done"
        while True:
            if self._stop.is_set():
                reason = "stopped"
                break
            if self.timeout_s is not None and time.monotonic() - started >= self.timeout_s:
                reason = "timeout"
                break
            with self._lock.held():
                if len(study.get_trials(deepcopy=False)) >= self.trials:
                    break
                trial = study.ask()
            self.results.append(self._trial(optuna, study, trial))
        states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
        counts = {s: states.count(s) for s in sorted(set(states))}
        self.finished = SweepFinished(self.best(), reason, counts,
                                      self.importances() if self.with_importances else {})
        self._emit(self.finished)
        return self.finished

    def _sampler(self, optuna, worker: int):
        # Each worker of a study gets its own seed (the same seed would draw the same points).
        seed = None if self.space.seed is None else self.space.seed + worker
        if self.space.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.space.sampler == "grid":
            grid = {d.name: d.grid() for d in self.space.dimensions}
            return _Grid(grid, seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self, optuna):
        return make_pruner(optuna, self.space)

    def _suggest(self, trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for d in self.space.dimensions:
            if d.type == "choice":
                params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
            elif d.type == "int":
                params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high),
                                                   step=d.step or 1, log=d.log)
            else:
                params[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high),
                                                     log=d.log)
        return params

    def _trial(self, optuna, study, trial) -> TrialFinished:
        t0 = time.perf_counter()
        number = trial.number
        params: dict[str, Any] = {}
        run_dir: Path | None = None
        state, value, message, epoch = FAILED, None, "", None
        try:
            params = self._suggest(trial)
            copy_, why = self._prepare_copy(params)
            if why:  # pruned before training: nothing is built or written
                trial.set_user_attr("message", why)
                self._emit(TrialStarted(number, params, None))
                state, message = PRUNED, why
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                run_dir = self._new_run_dir()
                trial.set_user_attr("run_dir", str(run_dir))
                self._emit(TrialStarted(number, params, str(run_dir)))
                state, value, message, epoch = self._train(optuna, trial, copy_, params, run_dir)
                if state == COMPLETE:
                    study.tell(trial, value)
                else:
                    if message:
                        trial.set_user_attr("message", message[:2000])
                    ts = optuna.trial.TrialState
                    study.tell(trial, state=ts.PRUNED if state == PRUNED else ts.FAIL)
        except Exception as exc:  # noqa: BLE001 - one broken trial never ends the sweep
            state, value = FAILED, None
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(
                exc)
            with contextlib.suppress(Exception):
                trial.set_user_attr("message", message[:2000])
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finally:
            self._trainer = None
        done = TrialFinished(number, state, value, params, time.perf_counter() - t0,
                             str(run_dir) if run_dir else None, message, epoch)
        self._emit(done)
        return done

    def _prepare_copy(self, params: dict[str, Any]):
        """The project with the trial's values, and why it cannot train (None: it can)."""
        targets = {d.name: d.target for d in self.space.dimensions}
        try:
            trial_project = apply_values(self.project, {targets[k]: v for k, v in params.items()})
        except ProjectError as exc:
            return None, f"the values do not fit the design: {exc}"
        spec = recipe_of(trial_project)
        errors = []
        for role, graph in spec.networks(trial_project).items():
            for p in analyze(graph).errors:
                errors.append(p.message if len(spec.roles) == 1 else f"{role}: {p.message}")
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return trial_project, f"the shapes do not fit: {errors[0]}{more}"
        return trial_project, None

    def _new_run_dir(self) -> Path:
        """A new run folder beside the project's other runs, made here so that two workers
        starting in the same second never share one."""
        path = self.project_path or (self.base_dir / f"{self._stem()}.dnn.json")
        for _ in range(1000):
            folder = default_run_dir(path, self.project.name)
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
        raise OSError(f"cannot create a run folder under {folder.parent}")

    def _stem(self) -> str:
        return project_stem(None, self.project.name)

    def _train(self, optuna, trial, project, params: dict[str, Any], run_dir: Path):
        """Train one trial; returns (state, value, message, epoch pruned after)."""
        from ..train.training import Epoch, Failed, Trainer  # torch

        metric = self.space.metric
        phase, name = metric.split("_", 1)
        direction = self.space.direction
        seen: list[float] = []
        outcome: dict[str, Any] = {}

        def on_event(event: Any) -> None:
            if isinstance(event, Epoch):
                value = (event.val if phase == "val" else event.train).get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    have = ", ".join(f"{phase}_{k}" for k, v in
                                     (event.val if phase == "val" else event.train).items()
                                     if isinstance(v, (int, float)))
                    outcome["missing"] = (f"objective {metric}: the runs have no such metric "
                                          f"(they have {have or 'none'})")
                    trainer.stop()
                elif not math.isfinite(value):
                    outcome["nan"] = f"{metric} is {value} in epoch {event.epoch}"
                    trainer.stop()
                else:
                    seen.append(float(value))
                    trial.report(float(value), event.epoch)
                    if trial.should_prune():
                        outcome["pruned"] = event.epoch
                        trainer.stop()
            elif isinstance(event, Failed):
                outcome["failed"] = event.message
            self._emit(TrialProgress(trial.number, event))

        training = validate_training(project.training)
        project.folder = self.base_dir  # relative paths (training.init_weights) start there
        try:
            _, recipe = prepare_run(project, self.dataset, training, run_dir=run_dir)
        except RecipeError as exc:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # nothing was written
            return PRUNED, None, str(exc), None
        extra = {"dataset": validate_dataset(self.project.dataset), "project": project.to_dict(),
                 "project_file": str(self.project_path.resolve()) if self.project_path else None,
                 "sweep": {"study": self.study_name, "trial": trial.number, "params": params,
                           "storage": storage_label(self.storage_url)}}
        trainer = Trainer(None, self.dataset, training, run_dir=run_dir, callback=on_event,
                          recipe=recipe, extra_config=extra, cpu_threads=self.cpu_threads)
        self._trainer = trainer
        if self._stop.is_set():
            trainer.stop()
        result = trainer.run()
        if "missing" in outcome:
            return FAILED, None, outcome["missing"], None
        if "nan" in outcome:
            return FAILED, None, outcome["nan"], None
        if "pruned" in outcome:
            return PRUNED, None, f"pruned after epoch {outcome['pruned']}", outcome["pruned"]
        if result.status == "failed":
            return FAILED, None, outcome.get("failed", result.message), None
        if result.status == "stopped":
            return FAILED, None, "stopped: the sweep was stopped", None
        if not seen:
            return FAILED, None, f"no epoch reported {metric}", None
        value = min(seen) if direction == "minimize" else max(seen)
        return COMPLETE, value, "", None

    # ---- results -------------------------------------------------------------------------------

    def best(self) -> BestTrial | None:
        """The best complete trial of the study so far (every worker's), or None."""
        return best_trial(self.study) if self.study is not None else None

    def importances(self) -> dict[str, float]:
        """How much each dimension mattered (Optuna's fANOVA), {} until there are enough
        complete trials."""
        return importances(self.study) if self.study is not None else {}

    def best_changes(self) -> dict[Target, Any]:
        """The best trial's values as ``{Target: value}`` (what :func:`apply_best` gives)."""
        best = self.best()
        return changes_of(self.space, best.params) if best else {}


class _Grid:
    """Optuna's GridSampler, minus its ``study.stop()`` when the grid is done (that only works
    inside ``study.optimize``; the sweep stops by counting trials)."""

    def __new__(cls, grid: dict[str, list[Any]], seed: int | None):
        from optuna.samplers import GridSampler  # deferred: optuna loads only when this runs

        class Grid(GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                return None

        return Grid(grid, seed=seed)


def best_trial(study) -> BestTrial | None:
    try:
        t = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    params = dict(t.params)  # named by the targets' labels
    return BestTrial(t.number, float(t.value), params, t.user_attrs.get("run_dir"))


def make_pruner(optuna, space: SearchSpace):
    """The study's pruner: none before ``space.startup_trials`` trials are complete, and never
    in a trial's first ``space.warmup_epochs`` epochs (trials report their epochs as steps 1,
    2, ...)."""
    first = space.warmup_epochs + 1  # the first epoch a trial can be pruned after
    if space.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=space.startup_trials,
                                           n_warmup_steps=first)
    if space.pruner == "successive_halving":
        return _after_startup(optuna, optuna.pruners.SuccessiveHalvingPruner(min_resource=first),
                              space.startup_trials)
    return optuna.pruners.NopPruner()


def _after_startup(optuna, inner, startup_trials: int):
    """``inner``, asked only once ``startup_trials`` trials are complete (successive halving
    has no such wait of its own)."""

    class AfterStartup(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            done = study.get_trials(deepcopy=False,
                                    states=(optuna.trial.TrialState.COMPLETE,))
            return len(done) >= startup_trials and inner.prune(study, trial)

    return AfterStartup()


def importances(study) -> dict[str, float]:
    """Each parameter's importance (fANOVA), from MIN_TRIALS_FOR_IMPORTANCES complete trials on
    ({} before)."""
    import optuna  # deferred: optuna loads only when this runs

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCES:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal": the numbers say so
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):  # one distinct value, ...
        return {}
    return {k: float(v) for k, v in found.items()}


def apply_best(project, best: BestTrial | None) -> dict[Target, Any]:
    """The changes ``{Target: value}`` that give ``project`` the best trial's values (only those
    that differ); the caller applies them (the window as one undo step, the CLI with
    :func:`apply_values`)."""
    if best is None:
        return {}
    space = search_space(project)
    now = current_values(project, space)
    return {t: v for t, v in changes_of(space, best.params).items() if now.get(t) != v
            or type(now.get(t)) is not type(v)}


def load_best(project, storage: str | None = None, study_name: str | None = None, *,
              project_path: str | os.PathLike | None = None,
              base_dir: str | os.PathLike | None = None) -> BestTrial | None:
    """The best trial of a project's study (stored as :class:`Sweep` stores it), or None."""
    import optuna  # deferred: optuna loads only when this runs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage(project_path, project.name, base_dir)
    study = optuna.load_study(study_name=study_name or project.name, storage=open_storage(url))
    return best_trial(study)
