"""Run folders: where a training run writes its config, metrics history and checkpoints.

A run folder holds ``config.json`` (dataset, training, dataset metadata and a copy of the
project), ``metrics.jsonl`` (one JSON object per epoch) and ``best.pt`` / ``last.pt``
(``{"model": state_dict, "optimizer": state_dict, "epoch": n, "config": {...}, ...}``, plain
tensors and numbers only, so ``torch.load(path, weights_only=True)`` reads them).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs

from ..document.atomic import atomic_path, remove_stale_temporaries
from .recipes import DEFAULT_RECIPE, UnknownRecipe
from .recipes import get as recipe_spec
from .records import best_record, headline

CONFIG = "config.json"
METRICS = "metrics.jsonl"
BEST = "best.pt"
LAST = "last.pt"


class RunError(ValueError):
    """A run folder or checkpoint cannot be used; the message says why."""


def project_stem(path: str | os.PathLike | None, name: str = "untitled") -> str:
    """``models/mnist.dnn.json`` -> ``mnist``; unsaved projects use their (sanitised) name."""
    if path is not None:
        base = Path(path).name
        for suffix in (".dnn.json", ".json"):
            if base.endswith(suffix) and len(base) > len(suffix):
                return base[: -len(suffix)]
        return Path(base).stem or "untitled"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "untitled"
    return stem[:64]


def default_run_dir(project_path: str | os.PathLike | None, project_name: str = "untitled",
                    now: datetime | None = None) -> Path:
    """The one place the folder policy lives.

    Saved projects: ``<project folder>/runs/<project-stem>/<YYYYmmdd-HHMMSS>/``; unsaved ones go
    under the user data folder. A suffix ``-2``, ``-3``... keeps two runs in one second apart.
    """
    if project_path is not None:
        root = Path(project_path).resolve().parent / "runs"
    else:
        root = Path(platformdirs.user_data_dir("designer", appauthor=False)) / "runs"
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = root / project_stem(project_path, project_name) / stamp
    folder, k = base, 2
    while folder.exists():
        folder = base.with_name(f"{stamp}-{k}")
        k += 1
    return folder


def jsonable(value: Any) -> Any:
    """Plain JSON data: non-finite floats become null, tuples lists, tensors numbers/lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and type(value).__module__.startswith(("torch", "numpy")):
        return jsonable(value.tolist())  # a tensor or an array (torch is not imported here)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    _atomic_bytes(path, (json.dumps(jsonable(data), indent=2, ensure_ascii=False,
                                    allow_nan=False) + "\n").encode("utf-8"))


def read_config(run_dir: Path) -> dict[str, Any]:
    p = Path(run_dir) / CONFIG
    try:
        config = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir}: not a run folder (no {CONFIG})") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise RunError(f"{p}: cannot read ({exc})") from None
    # Callers read sections with .get and dict(): a hand-edited or foreign file must fail here.
    if not isinstance(config, dict):
        raise RunError(f"{p}: not a run's config (expected a JSON object)")
    for key in ("dataset", "training", "project"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise RunError(f"{p}: {key}: expected an object")
    return config


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        f.flush()


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics history of a run, one dict per epoch (a torn last line is skipped)."""
    p = Path(run_dir) / METRICS
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("epoch"), int):
            out.append(rec)
    return out


def truncate_history(run_dir: Path, last_epoch: int) -> list[dict[str, Any]]:
    """Keep the history up to ``last_epoch`` (what the checkpoint a run resumes from has seen)."""
    kept = [r for r in read_history(run_dir) if r["epoch"] <= last_epoch]
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept)
    _atomic_bytes(Path(run_dir) / METRICS, text.encode("utf-8"))
    return kept


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` via a temporary file, so a crash never leaves half a checkpoint."""
    import torch  # deferred: torch loads only when this runs

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def remove_run_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what a killed run left half-written in its folder (``.last.pt.<pid>-....tmp``, up to
    the size of a checkpoint), as resuming starts. Files a live process is writing are kept."""
    run_dir = Path(run_dir)
    removed: list[Path] = []
    for name in (LAST, BEST, CONFIG, METRICS):
        removed += remove_stale_temporaries(run_dir / name)
    return removed


def read_torch_file(path: Path, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with a message a user can act on. torch's own message for
    a refused file advises re-running with ``weights_only=False``, i.e. running the file's code:
    never pass that on."""
    import torch  # deferred: torch loads only when this runs

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise RunError(f"{path}: not a checkpoint of tensors and numbers (another kind of file, "
                       "or one holding other Python objects, which designer never loads because "
                       "that could run code from the file)") from None
    except Exception as exc:  # noqa: BLE001 - truncated, empty, not a torch file at all
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{path}: not a readable checkpoint; damaged or incomplete? ({why})"
                       ) from None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu"
                    ) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code from the file ever runs)."""
    p = Path(path)
    if p.is_dir():
        p = p / LAST
    if not p.exists():
        raise RunError(f"{p}: no such checkpoint")
    state = read_torch_file(p, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise RunError(f"{p}: not a designer checkpoint (no model weights)")
    return state


def _atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# Which checkpoint is which: one story for the log, History, Evaluation and Export
# ---------------------------------------------------------------------------------------------


STOPPED = "stopped"  # config.json key: where a stopped run's last.pt was saved


def mark_stopped(run_dir: Path, epoch: int, batch: int) -> None:
    """Record in config.json that last.pt holds the weights of a run stopped in ``epoch`` after
    ``batch`` batches (not the end of an epoch). A resumed run writes its config afresh."""
    config = read_config(run_dir)
    config[STOPPED] = {"epoch": int(epoch), "batch": int(batch)}
    write_json(Path(run_dir) / CONFIG, config)


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint of a run, described the same way wherever it is offered."""

    kind: str  # "best" or "last"
    path: Path
    epoch: int | None
    figure: str  # headline(...) of its epoch
    why: str = ""  # what put these weights there

    @property
    def label(self) -> str:
        """e.g. "best.pt: epoch 9, lowest validation loss, accuracy 98.05%"."""
        parts = [f"epoch {self.epoch}" if self.epoch else None, self.why or None,
                 self.figure or None]
        return f"{self.path.name}: " + ", ".join(p for p in parts if p)


def checkpoints(run_dir: str | os.PathLike, history: list[dict[str, Any]] | None = None
                ) -> list[CheckpointInfo]:
    """The run's best.pt and last.pt that exist, with the epoch each holds and its figure."""
    run_dir = Path(run_dir)
    if history is None:
        history = read_history(run_dir)
    out = []
    best = best_record(history)
    has_val = any(isinstance(r.get("val"), dict) and r["val"] for r in history)
    best_why = _best_why(run_dir, has_val)
    last = history[-1] if history else None
    for kind, name, record, why in (("best", BEST, best, best_why),
                                    ("last", LAST, last, "the last epoch")):
        path = run_dir / name
        if path.is_file():
            epoch = record.get("epoch") if record else None
            out.append(CheckpointInfo(kind, path, epoch if isinstance(epoch, int) else None,
                                      headline(record), why))
    stopped = _stopped_at(run_dir)
    last_epoch = last.get("epoch") if last else 0
    if stopped and out and out[-1].kind == "last" and stopped[0] > (last_epoch or 0):
        # stopped mid-epoch: last.pt is the weights at that batch, no epoch's figure is theirs
        out[-1] = CheckpointInfo("last", out[-1].path, None, "",
                                 f"stopped in epoch {stopped[0]} after batch {stopped[1]}")
    return out


def _best_why(run_dir: Path, has_val: bool) -> str:
    """What put the run's best.pt there, in its recipe's words (a recipe that keeps no best.pt:
    one of an older run, which picked the lowest loss all the same, and says why it means
    little)."""
    phase = "validation" if has_val else "training"
    try:
        spec = recipe_spec(read_config(run_dir).get("recipe") or DEFAULT_RECIPE)
    except (RunError, UnknownRecipe, TypeError):
        return f"lowest {phase} loss"
    return spec.best_why(has_val) or (f"lowest {phase} {spec.loss_label or 'loss'}, which "
                                       f"says little: {spec.no_best_reason}")


def _stopped_at(run_dir: Path) -> tuple[int, int] | None:
    try:
        mark = read_config(run_dir).get(STOPPED)
    except RunError:
        return None
    if isinstance(mark, dict) and all(isinstance(mark.get(k), int) for k in ("epoch", "batch")):
        return mark["epoch"], mark["batch"]
    return None
