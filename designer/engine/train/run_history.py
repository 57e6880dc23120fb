"""Run history: what the run folders of a project say, read without Qt or torch.

Run folders live beside the project (``<project folder>/runs/<project>/<timestamp>/``, see
:func:`designer.engine.train.runs.default_run_dir`); each holds ``config.json`` and ``metrics.jsonl``.
A :class:`RunRecord` is one folder's start time, settings, metrics history, duration, status and
checkpoints; the History tab lists them and ``designer runs`` prints them.
"""

from __future__ import annotations

import itertools
import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model.design_diff import design_changes, settings_changes
from .config import defaults
from .recipes import get_or_default, recipe_id
from .runs import RunError, checkpoints, default_run_dir, read_config, read_history

# metric name -> whether higher is better
_METRICS = (("accuracy", True), ("r2", True), ("f1", True), ("mae", False), ("mse", False),
            ("loss", False))


def flat_record(rec: dict[str, Any]) -> dict[str, Any]:
    """One metrics record with nested phases flattened: ``{"val": {"loss": 1}}`` -> ``val_loss``."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict) and k in ("train", "val", "validation"):
            prefix = "val" if k == "validation" else k
            for kk, vv in v.items():
                out[f"{prefix}_{kk}"] = vv
        else:
            out[k] = v
    return out


def spec_of(training_or_config: dict[str, Any]):
    """The recipe spec a run (its config.json, or its training section) names; a recipe this
    designer does not know (a missing plug-in) reads as supervised."""
    source = training_or_config
    if isinstance(source.get("recipe"), str) and "training" in source:  # a config.json
        rid = source["recipe"]
    else:
        rid = recipe_id(source.get("training", source))
    return get_or_default(rid)


def optimizer_text(training: dict[str, Any]) -> str:
    """How a run optimizes, in a few words, as its recipe says it (a GAN: two learning rates,
    Adam's beta1, D steps per G step and its generator loss)."""
    t = {**defaults("training"), **training}
    return spec_of(t).describe_optimizer(t)


def _g(v: Any) -> str:
    return f"{v:g}" if _num(v) is not None else str(v)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class RunRecord:
    """What the history shows of one run folder."""

    path: Path
    started: datetime | None
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float | None = None
    status: str = ""
    checkpoints: list[Any] = field(default_factory=list)  # runs.CheckpointInfo: best, last
    final: str = ""  # the recipe's headline of the last epoch ("accuracy 97.77%", "D(x) 0.72, ...")
    # what differs from the run before it (design_changes); None: the first run, or one of the
    # two did not record its design
    changes: list[str] | None = None

    def checkpoint(self, kind: str):
        """The run's ``best`` or ``last`` CheckpointInfo, or None."""
        return next((c for c in self.checkpoints if c.kind == kind), None)

    @property
    def training(self) -> dict[str, Any]:
        t = self.config.get("training")
        return t if isinstance(t, dict) else {}

    @property
    def dataset(self) -> dict[str, Any]:
        d = self.config.get("dataset")
        return d if isinstance(d, dict) else {}

    @property
    def spec(self):
        """The run's recipe (designer.engine.train.recipes)."""
        return spec_of(self.config)

    @property
    def evaluates(self) -> bool:
        """Whether the run's model makes predictions to evaluate (a GAN's or VAE's does not)."""
        return self.spec.evaluates

    def no_evaluation_note(self) -> str:
        return self.spec.no_evaluation_note(self.path)

    def metric_name(self) -> str | None:
        """The headline metric: validation accuracy for classification, R2 (or MAE) else."""
        keys = set().union(*(r.keys() for r in self.history)) if self.history else set()
        for name, _ in _METRICS:
            if f"val_{name}" in keys:
                return name
        return None

    def summary(self) -> str:
        """The run's settings in a line: dataset, optimizer, batch size, epochs, scheduler."""
        t = self.training
        ds = self.dataset
        data = ds.get("name") or ds.get("kind") or "?"
        parts = [str(data), optimizer_text(t), f"bs {t.get('batch_size', '?')}",
                 f"{t.get('epochs', '?')} ep"]
        if t.get("scheduler") not in (None, "none"):
            parts.append(str(t["scheduler"]))
        return ", ".join(parts)


def finite_or_nan(v: Any) -> float:
    """A metrics value as a float for a curve: NaN when it is missing or not a finite number."""
    n = _num(v)
    return math.nan if n is None else n


def _started(path: Path, config: dict[str, Any]) -> datetime | None:
    for key in ("started", "started_at", "start_time"):
        v = config.get(key)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v)
            except ValueError:
                pass
    stamp = path.name.split("-")
    try:
        return datetime.strptime("-".join(stamp[:2]), "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def read_run(path: Path) -> RunRecord | None:
    """A run folder's record, or None when ``path`` is not a readable run folder."""
    try:
        config = read_config(path)
    except RunError:
        return None
    if not isinstance(config, dict):
        return None
    raw = read_history(path)
    history = [flat_record(r) for r in raw]
    started = _started(path, config)
    duration = _num(history[-1].get("elapsed_s")) if history else None  # the run's wall time
    times = [v for r in history if (v := _num(r.get("time_s"))) is not None]  # per epoch
    if duration is None and times:  # a run from before elapsed_s was recorded
        duration = sum(times)
    if duration is None and history:
        try:
            duration = max(0.0, (path / "metrics.jsonl").stat().st_mtime
                           - (path / "config.json").stat().st_mtime)
        except OSError:
            duration = None
    status = str(config.get("status", "")) if isinstance(config.get("status"), str) else ""
    if not status:
        planned = (config.get("training") or {}).get("epochs") if isinstance(
            config.get("training"), dict) else None
        done = max((int(r["epoch"]) for r in history), default=0)
        if isinstance(planned, int) and planned > 0:
            status = "complete" if done >= planned else f"ended at {done}/{planned}"
    return RunRecord(path, started, config, history, duration, status, checkpoints(path, raw),
                     spec_of(config).headline(raw))


def list_runs(root: Path | None) -> list[RunRecord]:
    """Every run folder directly under ``root``, newest first, each with what differs from the
    run before it (``changes``)."""
    if root is None or not root.is_dir():
        return []
    runs = [r for p in root.iterdir() if p.is_dir() and (r := read_run(p)) is not None]
    runs.sort(key=lambda r: (r.started or datetime.min, r.path.name), reverse=True)
    for run, before in itertools.pairwise(runs):
        run.changes = run_changes(before.config, run.config)
    return runs


# ---------------------------------------------------------------------------------------------
# What differs between two runs
# ---------------------------------------------------------------------------------------------


def run_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str] | None:
    """What differs between two runs' config.json: the design first, then the dataset and
    training settings. None when either run did not record its design."""
    pa, pb = before.get("project"), after.get("project")
    if not isinstance(pa, dict) or not isinstance(pb, dict):
        return None
    return (design_changes(pa, pb) + settings_changes(before.get("dataset"), after.get("dataset"))
            + settings_changes(before.get("training"), after.get("training")))


def runs_root(project_path: Path | None, project_name: str) -> Path:
    """The folder holding this project's run folders (the engine's policy, one level up)."""
    return default_run_dir(project_path, project_name).parent


def delete_run(run: RunRecord, root: Path) -> None:
    """Delete a run folder; refuses anything that is not a run folder inside ``root``."""
    path = run.path.resolve()
    if path.parent != root.resolve() or not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder of this project; nothing deleted")
    shutil.rmtree(path)


def duration_text(s: float | None) -> str:
    """A run's duration for people: "0.6 s", "42 s", "3 min 05 s", "2 h 07 min"."""
    if s is None:
        return ""
    if s < 10:  # a starter run takes under a second: not "0 s"
        return f"{s:.1f} s"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
