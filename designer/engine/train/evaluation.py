"""Evaluation numbers: confusion matrix, per-class report, predictions on the validation split,
"try it" predictors, and scoring a finished run's checkpoint (:func:`evaluate_run`).

No Qt: the window shows an :class:`EvaluationResult` (``designer.ui.training.evaluation``) and
``designer evaluate`` prints one. torch is imported inside the functions that need it, so
importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..document.project import project_from_dict
from . import runs
from .run_history import spec_of


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    ok = (y_true >= 0) & (y_true < n_classes) & (y_pred >= 0) & (y_pred < n_classes)
    idx = y_true[ok] * n_classes + y_pred[ok]
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def class_report(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1,
            "support": support.astype(np.int64)}


@dataclass
class EvaluationResult:
    """What a finished model does on the validation split."""

    task: str  # "classification" | "regression" | "reconstruction"
    class_names: list[str] = field(default_factory=list)
    y_true: np.ndarray | None = None  # (N,) class indices, or (N, D) targets
    y_pred: np.ndarray | None = None  # (N,) predicted indices, or (N, D) predictions
    confidence: np.ndarray | None = None  # (N,) probability of the predicted class
    samples: np.ndarray | None = None  # (M, ...) inputs of M validation samples, mistakes first
    confusion: np.ndarray | None = None
    sample_index: np.ndarray | None = None  # which validation samples ``samples`` are

    @property
    def accuracy(self) -> float | None:
        if self.task != "classification" or self.y_true is None or len(self.y_true) == 0:
            return None
        return float(np.mean(self.y_true == self.y_pred))


def evaluate_model(model, inputs, targets, task: str, class_names: list[str] | None = None,
                   batch_size: int = 256, device: str = "cpu", keep_samples: int = 256,
                   should_stop: Callable[[], bool] | None = None) -> EvaluationResult:
    """Run ``model`` (eval mode, no grad) over tensors ``inputs``/``targets`` and collect predictions.

    Works on the caller's thread; the worker calls it on its own frozen model after a run.
    """
    import torch  # deferred: torch loads only when this runs

    was_training = model.training
    model.eval()
    preds, conf, outs = [], [], []
    n = len(inputs)
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                if should_stop is not None and should_stop():
                    break
                xb = inputs[i:i + batch_size].to(device)
                out = model(xb)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                out = out.float().cpu()
                if task == "classification":
                    if out.ndim == 1:  # a single logit: binary classification
                        p1 = torch.sigmoid(out)
                        probs = torch.stack([1 - p1, p1], dim=1)
                    elif out.shape[-1] == 1 and out.ndim == 2:
                        p1 = torch.sigmoid(out[:, 0])
                        probs = torch.stack([1 - p1, p1], dim=1)
                    else:
                        probs = torch.softmax(out.reshape(out.shape[0], -1), dim=1)
                    c, p = probs.max(dim=1)
                    preds.append(p.numpy())
                    conf.append(c.numpy())
                else:
                    outs.append(out.reshape(out.shape[0], -1).numpy())
    finally:
        model.train(was_training)
    if task == "classification":
        y_pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
        y_true = targets[:len(y_pred)].detach().cpu().numpy().astype(np.int64).ravel()
        names = list(class_names or [])
        k = max(len(names), int(y_true.max(initial=-1)) + 1, int(y_pred.max(initial=-1)) + 1)
        if len(names) < k:
            names += [str(i) for i in range(len(names), k)]
        order = mistakes_first(y_true, y_pred, keep_samples)
        samples = inputs[torch.as_tensor(order, dtype=torch.long)].detach().cpu().numpy()
        return EvaluationResult(task, names, y_true, y_pred,
                                np.concatenate(conf) if conf else np.zeros(0),
                                samples, confusion_matrix(y_true, y_pred, k), order)
    y_pred = np.concatenate(outs) if outs else np.zeros((0, 1))
    t = targets[:len(y_pred)].detach().cpu().numpy().reshape(len(y_pred), -1)
    order = np.arange(min(keep_samples, len(y_pred)))
    return EvaluationResult(task, [], t, y_pred, None,
                            inputs[:len(order)].detach().cpu().numpy(), None, order)


def evaluate_dataset(model, ds, batch_size: int = 512, keep_samples: int = 256,
                     should_stop: Callable[[], bool] | None = None) -> EvaluationResult:
    """:func:`evaluate_model` over an engine ``Dataset``'s validation split (prepared batches,
    on the dataset's device). Shown samples are un-normalised so images look like images."""
    import torch  # deferred: torch loads only when this runs

    n = ds.n_val
    idx = torch.arange(n, device=ds.device)
    xs, ys = [], []
    for start in range(0, n, batch_size):
        x, y = ds.batch("val", idx[start:start + batch_size])
        xs.append(x)
        ys.append(y)
    inputs = torch.cat(xs) if xs else torch.zeros((0, *ds.sample_shape))
    targets = torch.cat(ys) if ys else torch.zeros(0)
    res = evaluate_model(model, inputs, targets, ds.task, ds.class_names, batch_size=batch_size,
                         device=str(ds.device), keep_samples=keep_samples,
                         should_stop=should_stop)
    if res.samples is not None and ds.mean is not None and res.samples.ndim >= 3:
        view = (1, len(ds.mean)) + (1,) * (res.samples.ndim - 2)
        mean = np.asarray(ds.mean, dtype=np.float32).reshape(view)
        std = np.asarray(ds.std, dtype=np.float32).reshape(view)
        res.samples = res.samples * std + mean
    return res


def make_predictor(model, ds) -> tuple[Callable[[str, str], list[str]], bool, bool]:
    """A "try it" function for a trained model and its dataset's preprocessing.

    Returns ``(predict, takes_images, takes_rows)``. ``predict("image", path)`` reads an image
    file, converts and resizes it like the dataset's images (values in [0, 1], then the dataset's
    normalisation); ``predict("row", text)`` parses one CSV row of numbers (standardised like the
    training features) or, for text datasets, tokenises the text.
    """
    import torch  # deferred: torch loads only when this runs

    shape = tuple(ds.sample_shape)
    images = len(shape) == 3 and shape[0] in (1, 3) and ds.dtype == "float32"
    rows = len(shape) == 1
    names = list(ds.class_names or [])
    vocab = list(ds.vocab) if ds.vocab is not None else None
    mean = None if ds.mean is None else np.asarray(ds.mean, dtype=np.float32)
    std = None if ds.std is None else np.asarray(ds.std, dtype=np.float32)
    task = ds.task

    def run(x: np.ndarray) -> list[str]:
        t = torch.from_numpy(x).unsqueeze(0)
        model.eval()
        with torch.no_grad():
            out = model(t)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.float().reshape(1, -1)[0]
        if task == "classification":
            if out.numel() == 1:
                p1 = float(torch.sigmoid(out[0]))
                probs = torch.tensor([1 - p1, p1])
            else:
                probs = torch.softmax(out, 0)
            top = torch.topk(probs, min(3, probs.numel()))
            return [f"{names[i] if i < len(names) else i}: {p:.1%}"
                    for p, i in zip(top.values.tolist(), top.indices.tolist())]
        vals = ", ".join(f"{v:.4g}" for v in out[:8].tolist())
        return [f"prediction: {vals}" + (" …" if out.numel() > 8 else "")]

    def predict(kind: str, value: str) -> list[str]:
        if kind == "image":
            if not images:
                raise ValueError("this model does not take images")
            from PIL import Image, UnidentifiedImageError  # deferred: PIL loads only when this runs

            try:
                with Image.open(value) as im:
                    im = im.convert("L" if shape[0] == 1 else "RGB")
                    im = im.resize((shape[2], shape[1]), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as exc:
                raise ValueError(f"cannot read {Path(value).name} as an image: {exc}") from None
            a = a[None] if a.ndim == 2 else np.transpose(a, (2, 0, 1))
            if mean is not None and len(mean) == a.shape[0]:
                a = (a - mean[:, None, None]) / std[:, None, None]
            return run(np.ascontiguousarray(a, dtype=np.float32))
        if kind == "row":
            if not rows:
                raise ValueError("this model does not take table rows")
            if vocab is not None:
                from designer.engine.train.data import (
                    tokenize,  # deferred: torch loads only when this runs
                )
                from designer.engine.train.data.tabular import (
                    encode,  # deferred: torch loads only when this runs
                )

                index = {t: i for i, t in enumerate(vocab)}
                ids = np.asarray(encode(tokenize(value), index, shape[0]), dtype=np.int64)
                return run(ids)
            parts = [p.strip() for p in value.replace(";", ",").replace("\t", ",").split(",")]
            try:
                nums = np.asarray([float(p) for p in parts if p], dtype=np.float32)
            except ValueError:
                raise ValueError(f"expected {shape[0]} numbers separated by commas") from None
            if len(nums) != shape[0]:
                raise ValueError(f"expected {shape[0]} numbers (one per feature column), "
                                 f"got {len(nums)}")
            if not np.all(np.isfinite(nums)):
                raise ValueError("the row holds a value that is not a finite number")
            if mean is not None and len(mean) == len(nums):
                nums = (nums - mean) / std
            return run(nums)
        raise ValueError(f"unknown input kind {kind!r}")

    return predict, images, rows


def mistakes_first(y_true: np.ndarray, y_pred: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the samples to show: wrong predictions first, then right ones, in order."""
    idx = np.arange(min(len(y_true), len(y_pred)))
    wrong = idx[y_true[idx] != y_pred[idx]]
    right = idx[y_true[idx] == y_pred[idx]]
    return np.concatenate([wrong, right])[:limit]


def regression_metrics(result: EvaluationResult) -> dict[str, float]:
    """MSE, MAE and R² (over all output values) of a regression or reconstruction result."""
    if result.y_true is None or result.y_pred is None or not result.y_true.size:
        return {}
    t = np.asarray(result.y_true, dtype=np.float64).ravel()
    p = np.asarray(result.y_pred, dtype=np.float64).ravel()
    n = min(len(t), len(p))
    t, p = t[:n], p[:n]
    ok = np.isfinite(t) & np.isfinite(p)
    if not ok.any():
        return {}
    t, p = t[ok], p[ok]
    out = {"mse": float(np.mean((t - p) ** 2)), "mae": float(np.mean(np.abs(t - p)))}
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot > 0:
        out["r2"] = 1 - float(np.sum((t - p) ** 2)) / ss_tot
    return out


def _project_dir(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """The folder a run's relative dataset paths are relative to: the project file's folder
    (``designer train`` records it), else the one above ``runs/<project>/<run>``."""
    project_file = config.get("project_file")
    if isinstance(project_file, str) and project_file:
        return Path(project_file).parent
    parents = Path(run_dir).resolve().parents
    if len(parents) > 2 and parents[1].name == "runs":
        return parents[2]
    return None


def evaluate_run(run_dir: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                 checkpoint: str = "best") -> tuple[EvaluationResult, Any, Any, str]:
    """Score a finished run's ``best.pt`` or ``last.pt`` (the other when that one is missing) on
    the run's own dataset settings; returns ``(result, model in eval mode, dataset, kind)``.

    The design is the copy of the project stored in the run's ``config.json``, so later edits do
    not matter; the checkpoint loads with ``weights_only=True``. ``base_dir``: the folder relative
    dataset paths start from (None: the run's project folder). Raises ``ValueError`` (``RunError``,
    ``ProjectError``...) with a message for the user.
    """
    from ..model.build import build_model  # deferred: torch loads only when this runs
    from .data import load_dataset  # deferred: torch loads only when this runs

    run_dir = Path(run_dir)
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', not {checkpoint!r}")
    config = runs.read_config(run_dir)
    spec = spec_of(config)
    if not spec.evaluates:
        raise ValueError(f"{run_dir.name} is a {spec.id} run: "
                         f"{spec.no_evaluation_note(run_dir)}")
    project = project_from_dict(config.get("project"))  # ProjectError names what is wrong
    kind = checkpoint
    ckpt = run_dir / (runs.BEST if kind == "best" else runs.LAST)
    if not ckpt.exists():
        kind = "last" if kind == "best" else "best"
        ckpt = run_dir / (runs.BEST if kind == "best" else runs.LAST)
    state = runs.load_checkpoint(ckpt)
    model = build_model(project.graph)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"the checkpoint does not fit the run's design: "
                         f"{str(exc).splitlines()[0]}") from None
    if base_dir is None:
        base_dir = _project_dir(run_dir, config)
    ds = load_dataset(config.get("dataset") or project.dataset, base_dir)
    result = evaluate_dataset(model, ds)
    return result, model.eval(), ds, kind
