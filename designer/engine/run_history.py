"""Run history: what the run folders of a project say, read without Qt or torch.

Run folders live beside the project (``<project folder>/runs/<project>/<timestamp>/``, see
:func:`designer.engine.runs.default_run_dir`); each holds ``config.json`` and ``metrics.jsonl``.
A :class:`RunRecord` is one folder's start time, settings, metrics history, duration, status and
checkpoints; the History tab lists them and ``designer runs`` prints them.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .runs import RunError, checkpoints, default_run_dir, headline, read_config, read_history

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


def optimizer_text(training: dict[str, Any]) -> str:
    """How a run optimizes, in a few words. A GAN has two learning rates (lr_d, lr_g), Adam's
    beta1, D steps per G step and a generator loss; its ``lr`` is not used, so it is not shown."""
    from .config import defaults

    t = {**defaults("training"), **training}
    opt = str(t.get("optimizer", "?"))
    if not is_gan(t):
        return f"{opt} lr {_g(t.get('lr'))}"
    parts = [f"GAN {opt} lr_d {_g(t.get('lr_d'))} lr_g {_g(t.get('lr_g'))}"]
    if opt in ("adam", "adamw"):
        parts.append(f"beta1 {_g(t.get('beta1'))}")
    parts.append(f"d_steps {t.get('d_steps')}")
    parts.append(f"{t.get('gan_loss')} G loss")
    return ", ".join(parts)


def is_gan(training: dict[str, Any]) -> bool:
    """Whether a run's training section names the GAN recipe (what ``recipes.is_gan`` said
    before the recipe registry; the recipe's own words are to replace this and its callers)."""
    from .recipes import recipe_id

    return recipe_id(training) == "gan"


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
    final: str = ""  # the last epoch's headline figure ("accuracy 97.77%")

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
    def is_gan(self) -> bool:
        """A GAN run: its checkpoint holds two networks and it has no predictions to evaluate."""
        return is_gan(self.training) or any("loss_d" in r for r in self.history)

    def last_scores(self) -> str:
        """A GAN run's final D(x) and D(G(z)) (validation if kept, else training), e.g.
        ``D(x) 0.72, D(G(z)) 0.52``; empty if none were recorded."""
        for r in reversed(self.history):
            for phase in ("val", "train"):
                real, fake = _num(r.get(f"{phase}_d_real")), _num(r.get(f"{phase}_d_fake"))
                if real is not None and fake is not None:
                    return f"D(x) {real:.2f}, D(G(z)) {fake:.2f}"
        return ""

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
                     headline(raw[-1]) if raw else "")


def list_runs(root: Path | None) -> list[RunRecord]:
    """Every run folder directly under ``root``, newest first."""
    if root is None or not root.is_dir():
        return []
    runs = [r for p in root.iterdir() if p.is_dir() and (r := read_run(p)) is not None]
    runs.sort(key=lambda r: (r.started or datetime.min, r.path.name), reverse=True)
    return runs


def gan_evaluate_note(run_dir: Path) -> str:
    """Why a GAN run has no Evaluate, and where to look instead."""
    return ("A GAN run has no predictions to score: its generator makes samples from noise. "
            "Its sample grids (one per epoch) are in " + str(Path(run_dir) / "samples"))


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
