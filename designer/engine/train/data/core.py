"""The in-memory dataset every loader produces, and the pieces they share.

A :class:`Dataset` holds ready tensors for the training and validation splits plus what a model
and an exporter need to know about them: the sample shape and dtype, the task, the class names,
and the exact preprocessing (scale, mean/std, vocabulary) so exported code can repeat it.

Batches are taken by index from these tensors (no DataLoader: on 2 cores a loop over pre-made
tensors is 1.5-5x faster). Images from byte sources stay uint8 in memory and are scaled and
normalised per batch, which keeps CIFAR-sized sets at a quarter of the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..events import DownloadProgress


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says why and what to do."""


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass
class Dataset:
    """Train/validation tensors plus their metadata.

    ``x_*``: inputs, float32 (or uint8 images, scaled by ``scale`` and normalised per batch) or
    int64 token ids. ``y_*``: int64 class indices (classification), float32 targets (regression)
    or the inputs themselves (reconstruction).
    """

    name: str
    task: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    sample_shape: tuple[int, ...]
    dtype: str  # "float32" or "int64": the dtype the model's Input receives
    class_names: list[str] | None = None
    mean: list[float] | None = None  # per channel (images) or per feature (tabular)
    std: list[float] | None = None
    scale: float = 1.0  # raw values are multiplied by this before normalisation
    preprocessing: dict[str, Any] = field(default_factory=dict)
    vocab: list[str] | None = None
    augment_crop_padding: int = 0
    augment_hflip: bool = False
    _norm: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    # ---- sizes and description ---------------------------------------------------------------

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    @property
    def target_shape(self) -> tuple[int, ...]:
        """Shape of one target: () for a class index, else the regression/reconstruction shape."""
        return tuple(self.y_train.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def describe(self) -> str:
        """One line for people: "digits: 1,437 + 360 samples of 1x8x8 float32, 10 classes"."""
        shape = "x".join(map(str, self.sample_shape))
        if self.task == "classification":
            what = f"{self.num_classes} classes"
        elif self.task == "language_model":
            what = f"next-token prediction over {self.num_classes:,} tokens"
        else:
            what = f"{self.task} target {'x'.join(map(str, self.target_shape)) or 'scalar'}"
        return (f"{self.name}: {self.n_train:,} training + {self.n_val:,} validation samples of "
                f"{shape} {self.dtype}, {what}")

    def info(self) -> dict[str, Any]:
        """Metadata as plain JSON data (written to a run's config.json, read by export)."""
        return {
            "name": self.name, "task": self.task, "sample_shape": list(self.sample_shape),
            "dtype": self.dtype, "target_shape": list(self.target_shape),
            "class_names": self.class_names, "n_train": self.n_train, "n_val": self.n_val,
            "normalization": ({"scale": self.scale, "mean": self.mean, "std": self.std}
                              if self.mean is not None or self.scale != 1.0 else None),
            "preprocessing": self.preprocessing,
            "vocab": self.vocab,
        }

    # ---- batches ------------------------------------------------------------------------------

    def to(self, device: torch.device | str) -> Dataset:
        """A copy whose tensors live on ``device`` (shares them when already there)."""
        device = torch.device(device)
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "x_val")}
        for k, xk in (("y_train", "x_train"), ("y_val", "x_val")):
            y = getattr(self, k)
            moved[k] = moved[xk] if y is getattr(self, xk) else y.to(device)
        out = Dataset(**{**{f: getattr(self, f) for f in self.__dataclass_fields__
                            if f != "_norm"}, **moved})
        return out

    def _normalizer(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.mean is None:
            return None
        if self._norm is None or self._norm[0].device != self.device:
            channels = len(self.mean)
            view = (1, channels) + (1,) * (len(self.sample_shape) - 1)
            mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(view)
            std = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(view)
            self._norm = (mean, 1.0 / std)
        return self._norm

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw stored values -> model input (scale, normalise). A no-op for stored floats."""
        if x.dtype != torch.uint8:
            return x
        x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        norm = self._normalizer()
        if norm is not None:
            x = (x - norm[0]) * norm[1]
        return x

    def batch(self, split: str, idx: torch.Tensor, augment: bool = False,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for sample indices ``idx`` of ``"train"`` or ``"val"``."""
        xs, ys = (self.x_train, self.y_train) if split == "train" else (self.x_val, self.y_val)
        x = self.prepare(xs[idx])
        if augment and (self.augment_crop_padding or self.augment_hflip) and x.dim() == 4:
            x = augment_images(x, self.augment_crop_padding, self.augment_hflip, generator)
        # reconstruction: the target is the (augmented) input itself
        return x, (x if ys is xs else ys[idx])

    @property
    def augments(self) -> bool:
        return bool(self.augment_crop_padding or self.augment_hflip) and len(self.sample_shape) == 3


def augment_images(x: torch.Tensor, crop_padding: int, hflip: bool,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding and random left-right flip of a batch ``(N, C, H, W)``.

    Done on tensors for the whole batch at once, on the batch's device. ``generator`` is a CPU
    generator (the random draws are tiny and moved to the device).
    """
    n, c, h, w = x.shape
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(n, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[bi, ci, rows, cols]
    if hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into training and validation indices."""
    if n < 2:
        raise DatasetError(f"the dataset has {n} sample(s); at least 2 are needed")
    n_val = round(n * val_fraction)
    if val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    return perm[n_val:], perm[:n_val]


def channel_stats(x: torch.Tensor, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of images ``(N, C, ...)`` (after ``scale``), in float64."""
    n, c = x.shape[0], x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, n, 4096):  # chunks keep the float64 copy small
        chunk = x[start:start + 4096].to(torch.float64) * scale
        flat = chunk.transpose(0, 1).reshape(c, -1)
        total += flat.sum(1)
        total_sq += (flat * flat).sum(1)
        count += flat.shape[1]
    mean = total / max(count, 1)
    var = (total_sq / max(count, 1) - mean * mean).clamp_min(0)
    std = var.sqrt()
    std[std < 1e-8] = 1.0
    return [float(v) for v in mean], [float(v) for v in std]


def feature_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-column mean and std of a table ``(N, F)``; constant columns get std 1."""
    x64 = x.to(torch.float64)
    mean = x64.mean(0)
    std = x64.std(0, unbiased=False) if x.shape[0] > 1 else torch.ones_like(mean)
    std[~torch.isfinite(std) | (std < 1e-12)] = 1.0
    return [float(v) for v in mean], [float(v) for v in std]


def apply_stats(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    view = (1, len(mean)) + (1,) * (x.dim() - 2)
    m = torch.tensor(mean, dtype=torch.float32).view(view)
    s = torch.tensor(std, dtype=torch.float32).view(view)
    return ((x - m) / s).contiguous()


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover
