"""What a training run reports, as plain data (no torch): the trainer's events, download progress
and a GAN's sample previews.

They live apart from the trainer so that the window can import them, and draw itself, before torch
is loaded (importing torch takes seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Started:
    run_dir: str | None
    device: str
    epochs: int
    start_epoch: int  # epochs already done (resumed runs)
    batches_per_epoch: int
    n_train: int
    n_val: int
    mixed_precision: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Batch:
    epoch: int
    batch: int  # batches done in this epoch
    batches: int
    loss: float  # running mean over the epoch so far
    metrics: dict[str, float]
    samples_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Epoch:
    epoch: int
    epochs: int
    train: dict[str, Any]
    val: dict[str, Any]
    lr: float
    time_s: float
    samples_per_s: float
    best: bool  # this epoch improved the monitored loss


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    kind: str  # "best" or "last"
    epoch: int


@dataclass(frozen=True)
class Paused:
    epoch: int
    batch: int


@dataclass(frozen=True)
class Resumed:
    epoch: int
    batch: int


@dataclass(frozen=True)
class Finished:
    epochs_done: int
    reason: str  # "completed" or "early stopping"
    best_epoch: int | None
    best_loss: float | None
    final: dict[str, Any]  # the last epoch's validation (or training) metrics
    run_dir: str | None
    time_s: float


@dataclass(frozen=True)
class Stopped:
    epoch: int
    batch: int
    epochs_done: int
    run_dir: str | None


@dataclass(frozen=True)
class Failed:
    message: str
    traceback: str
    epoch: int | None = None
    batch: int | None = None
    run_dir: str | None = None


@dataclass(frozen=True)
class DownloadProgress:
    """A download is under way: ``done`` of ``total`` bytes of ``file`` (total 0: unknown)."""

    dataset: str
    file: str
    done: int
    total: int


@dataclass(frozen=True)
class GanSamples:
    """Samples from the fixed noise after an epoch (epoch 0: before training).

    ``images``: ``(N, C, H, W)`` float32 in [0, 1] (fakes mapped back from [-1, 1]); ``grid``:
    those images tiled into one picture, ``(height, width)`` for one channel or
    ``(height, width, 3)`` for colour (numpy arrays)."""

    epoch: int
    images: Any
    grid: Any


#: The GAN recipe's metrics, in the order its views show them.
GAN_METRIC_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")
GAN_METRIC_LABELS = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)",
                     "d_fake": "D(G(z))"}

Event = Any
EventCallback = Callable[[Event], None]
