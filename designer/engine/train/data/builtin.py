"""Datasets that need no file and no network: scikit-learn's digits, and seeded synthetic sets."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DIGITS_SHAPE
from .core import Dataset, DatasetError, channel_stats, split_indices


def finish_images(name: str, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any],
                  class_names: list[str], scale: float, task: str = "classification",
                  preprocessing: dict[str, Any] | None = None) -> Dataset:
    """Split images ``(N, C, H, W)`` and attach their normalisation: ``standardize`` fits mean
    and std per channel on the training split; ``minus_one_one`` maps the scaled values' [0, 1]
    to [-1, 1] with mean = std = 0.5 per channel (torchvision's ``Normalize((0.5,) * C,
    (0.5,) * C)``).

    uint8 images stay uint8 (scaled and normalised per batch); float images are normalised once.
    """
    train, val = split_indices(x.shape[0], cfg["val_fraction"], cfg["split_seed"])
    x_train, x_val = x[train], x[val]
    mean = std = None
    mode = cfg.get("normalization", "standardize") if cfg["normalize"] else "none"
    if mode == "minus_one_one":
        mean, std = [0.5] * x.shape[1], [0.5] * x.shape[1]
    elif mode == "standardize":
        mean, std = channel_stats(x_train, scale)
    ds = Dataset(name=name, task="classification", x_train=x_train, y_train=y[train],
                 x_val=x_val, y_val=y[val], sample_shape=tuple(x.shape[1:]), dtype="float32",
                 class_names=class_names, mean=mean, std=std, scale=scale,
                 preprocessing={**(preprocessing or {}), "normalization": mode},
                 augment_crop_padding=cfg["augment_crop_padding"],
                 augment_hflip=cfg["augment_hflip"])
    if x.dtype != torch.uint8:  # small float sets: preprocess once, store ready tensors
        ds.x_train = _normalized(ds, x_train)
        ds.x_val = _normalized(ds, x_val)
    return with_task(ds, task)


def _normalized(ds: Dataset, x: torch.Tensor) -> torch.Tensor:
    x = x.float() * ds.scale
    if ds.mean is not None:
        view = (1, len(ds.mean)) + (1,) * (x.dim() - 2)
        x = (x - torch.tensor(ds.mean).view(view)) / torch.tensor(ds.std).view(view)
    return x.contiguous()


def with_task(ds: Dataset, task: str) -> Dataset:
    """Switch a classification image set to reconstruction (targets are the inputs)."""
    if task in ("auto", ds.task):
        return ds
    if task == "reconstruction":
        ds.task = "reconstruction"
        ds.y_train, ds.y_val = ds.x_train, ds.x_val
        ds.class_names = None
        return ds
    raise DatasetError(f"dataset.task: {ds.name} is a {ds.task} dataset; it cannot be used for "
                       f"{task} (choose auto, {ds.task} or reconstruction)")


def load_digits(cfg: dict[str, Any]) -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, values 0..16 -> [0, 1]."""
    images, target = _digits_arrays()
    x = torch.from_numpy(images.astype(np.float32)).reshape(-1, *DIGITS_SHAPE)
    y = torch.from_numpy(target.astype(np.int64))
    return finish_images("digits", x, y, cfg, [str(i) for i in range(10)], scale=1 / 16,
                         task=cfg["task"], preprocessing={"source": "sklearn.load_digits",
                                                          "value_range": [0, 16]})


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits table shipped inside scikit-learn, read without importing scikit-learn
    (its import takes seconds); falls back to ``sklearn.datasets.load_digits``."""
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
            if path.exists():
                table = np.loadtxt(path, delimiter=",", dtype=np.float32)
                if table.shape == (1797, 65):
                    return table[:, :64], table[:, 64]
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise DatasetError("the digits dataset comes with scikit-learn; install it "
                           "(pip install scikit-learn)") from None
    bunch = sk_digits()
    return bunch.data, bunch.target


#: The synthetic sets: two classification (moons, spirals), two regression (linear, sine).
SYNTHETIC_SETS = ("moons", "spirals", "linear", "sine")


def synthetic_points(name, n, noise, seed, linear_w=2.0, linear_b=0.5):
    """Seeded points of a synthetic set: (x, y, class names or None, task), the same in the
    designer and in an exported train.py (which carries this function)."""
    rng = np.random.default_rng(seed)
    classes = None
    if name == "moons":
        from sklearn.datasets import make_moons  # deferred: sklearn loads only when this runs

        xs, ys = make_moons(n_samples=n, noise=noise, random_state=seed)
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.int64)
        classes, task = ["0", "1"], "classification"
    elif name == "spirals":
        arms = 3
        per = [n // arms + (1 if i < n % arms else 0) for i in range(arms)]
        pts, labels = [], []
        for k in range(arms):
            r = np.linspace(0.0, 1.0, per[k])
            t = np.linspace(k * 4.0, (k + 1) * 4.0, per[k]) + rng.normal(0, 1, per[k]) * noise
            pts.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
            labels.append(np.full(per[k], k))
        x = torch.tensor(np.concatenate(pts), dtype=torch.float32)
        y = torch.tensor(np.concatenate(labels), dtype=torch.int64)
        classes, task = [f"arm {k}" for k in range(arms)], "classification"
    elif name == "linear":
        xs = rng.uniform(-1.0, 1.0, (n, 1))
        ys = linear_w * xs + linear_b + rng.normal(0.0, 1.0, (n, 1)) * noise
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
        task = "regression"
    else:  # sine
        xs = rng.uniform(-math.pi, math.pi, (n, 1))
        ys = np.sin(xs) + rng.normal(0.0, 1.0, (n, 1)) * noise
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
        task = "regression"
    return x, y, classes, task


def load_synthetic(cfg: dict[str, Any]) -> Dataset:
    """Seeded 2-D classification (moons, spirals) or 1-D regression (linear, sine).

    Synthetic inputs are already centred and of unit scale, so they are not normalised (the
    linear set's learned weight and bias are then exactly its w and b).
    """
    name, n, noise, seed = cfg["name"], cfg["n_samples"], cfg["noise"], cfg["seed"]
    if name not in SYNTHETIC_SETS:  # validated earlier; kept for direct callers
        raise DatasetError(f"unknown synthetic dataset {name!r}")
    x, y, class_names, task = synthetic_points(name, n, noise, seed, cfg["linear_w"],
                                               cfg["linear_b"])
    if cfg["task"] not in ("auto", task):
        raise DatasetError(f"dataset.task: the synthetic {name} set is a {task} dataset, not "
                           f"{cfg['task']}")
    train, val = split_indices(n, cfg["val_fraction"], cfg["split_seed"])
    pre = {"source": f"synthetic {name}", "n_samples": n, "noise": noise, "seed": seed}
    if name == "linear":
        pre.update(w=cfg["linear_w"], b=cfg["linear_b"])
    return Dataset(name=name, task=task, x_train=x[train], y_train=y[train], x_val=x[val],
                   y_val=y[val], sample_shape=tuple(x.shape[1:]), dtype="float32",
                   class_names=class_names, preprocessing=pre)
