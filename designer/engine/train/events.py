"""What a training run reports, as plain data (no torch): the trainer's events and download
progress (a recipe's own events live in its package: designer.engine.train.recipes.gan.events).

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


Event = Any
EventCallback = Callable[[Event], None]


# ---- inside the network (designer.engine.train.inside): small summaries of every layer ---------------


@dataclass(frozen=True)
class Histogram:
    """Counts of the finite values in equal-width bins: ``counts[i]`` holds
    ``edges[i] <= v < edges[i + 1]`` (the last bin includes its right edge), as
    ``numpy.histogram(v, bins=edges)`` counts. ``edges``: ``(bins + 1,)`` float32 spanning the
    values' range; ``counts``: ``(bins,)`` int64 (numpy arrays)."""

    edges: Any
    counts: Any


@dataclass(frozen=True)
class LayerSummary:
    """One layer (module) of one network at one moment of training.

    ``path``: the module path inside its network (``layer1.0.conv1`` inside blocks); ``node``: the
    node id in the graph that made it (inside a block: in the block's graph), None for a module
    not built from a design. ``kind``: ``layer``, ``activation``, ``norm``, ``attention`` or
    ``recurrent``. Weights and gradients are those of all the layer's parameters together (weight
    and bias), the gradients as the optimizer used them. ``update_ratio``: norm of the change of
    the parameters over the optimizer step / their norm before it. ``out_grad_norm``: norm of the
    loss's gradient with respect to the layer's output (what backprop carries to the layer).
    ``dead_fraction``: for ReLU-like layers, the fraction of output units (elements of one
    sample's output) that are zero for every sample of the batch (NaN for other layers).
    ``frozen``: the layer has parameters and none of them trains (so it has no gradient).
    Missing values are None (histograms) or NaN (numbers)."""

    network: str
    path: str
    node: str | None
    type: str
    kind: str
    weights: Histogram | None
    grads: Histogram | None
    activations: Histogram | None
    weight_norm: float
    grad_norm: float
    update_ratio: float
    out_grad_norm: float
    act_mean: float
    act_std: float
    dead_fraction: float
    nonfinite_weights: int
    nonfinite_grads: int
    nonfinite_activations: int
    frozen: bool = False


@dataclass(frozen=True)
class InsideSummary:
    """Every observed layer after one training batch (every k batches and each epoch's last).

    ``layers`` by key ``"<network>.<path>"`` (``model.fc1``, ``generator.layer1.0.conv1``), in
    forward-program order; ``step``: batches done in the whole run."""

    epoch: int
    batch: int
    step: int
    layers: dict[str, LayerSummary]


@dataclass(frozen=True)
class LayerView:
    """What one layer made of one sample (numpy float32 ``data``).

    ``kind``: ``maps`` (C, H, W feature maps: the first channels, average-pooled when large),
    ``vector`` (F,), ``sequence`` (T, F: a recurrent layer's hidden state over time),
    ``attention`` (heads, L, S attention weights) or ``flat`` (anything else, flattened).
    ``shape``: the full per-sample shape before capping; ``note`` says what was cut."""

    kind: str
    data: Any
    shape: tuple[int, ...]
    note: str = ""


@dataclass(frozen=True)
class InsideSample:
    """One sample through every network in eval mode, taken with each summary.

    ``index``: the validation sample (None: a sample given by the caller); ``inputs`` by network
    (what it was fed: the sample, or fixed noise for a network that takes noise); ``outputs`` and
    ``attention`` by layer key as in :class:`InsideSummary`; ``notes``: what could not be shown;
    ``classes``: the dataset's class names (classification), for the output's bars."""

    epoch: int
    batch: int
    step: int
    index: int | None
    inputs: dict[str, Any]
    outputs: dict[str, LayerView]
    attention: dict[str, LayerView]
    notes: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
