"""The GAN recipe's events and metric names, as plain data (no torch): the window imports them
before torch is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


__all__ = ["GAN_METRIC_KEYS", "GAN_METRIC_LABELS", "GanSamples"]
