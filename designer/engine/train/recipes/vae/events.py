"""The VAE recipe's events and metric names, as plain data (no torch): the window imports them
before torch is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The recipe's metrics, in the order a step reports them.
VAE_METRIC_KEYS = ("loss", "recon", "kl")
VAE_METRIC_LABELS = {"loss": "total", "recon": "reconstruction", "kl": "KL"}


@dataclass(frozen=True)
class VaeSamples:
    """What a VAE run shows after an epoch (numpy arrays only).

    ``reconstructions``: a grid of validation images, each followed by its reconstruction (pairs
    side by side, 4 pairs a row); ``samples``: a grid of images decoded from the fixed noise;
    ``latent``: ``(N, 2)`` validation means when the latent is 2-D (else None), ``labels`` their
    class indices (None without classes) and ``class_names`` the names of those classes. Grids
    are ``(height, width)`` (one channel) or ``(height, width, 3)``, values in [0, 1]."""

    epoch: int
    reconstructions: Any
    samples: Any
    latent: Any = None
    labels: Any = None
    class_names: tuple[str, ...] = ()
    sample_path: str | None = None  # the PNG of the sample grid, when one was written


__all__ = ["VAE_METRIC_KEYS", "VAE_METRIC_LABELS", "VaeSamples"]
