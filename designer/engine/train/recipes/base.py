"""The training side of a recipe: what the one trainer loop calls (torch is imported on use).

The :class:`~designer.engine.train.training.Trainer` owns the loop (epochs, batches, pause/stop, the
non-finite-loss check, checkpoints, resuming); a :class:`Recipe` owns the networks, optimizers and
the step. This module imports no torch at import time, so a recipe module can declare its
settings and checks beside its step and still be read when a design is only checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...lazy import torch


@dataclass
class TrainContext:
    """What a recipe gets to set itself up: the device, settings, dataset and the loss guard."""

    device: Any  # torch.device
    config: dict[str, Any]
    dataset: Any  # data.core.Dataset
    mixed_precision: bool
    guard: Callable[[Any], None]  # call with each training loss before backward

    def autocast(self):
        if self.mixed_precision:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()


@dataclass
class StepOutput:
    loss: Any  # detached scalar tensor
    output: Any  # detached model output (supervised) or a vector of metric values, for metrics


class Recipe:
    """Owns the networks, optimizers and step of one way of training.

    The trainer calls :meth:`setup` once, then :meth:`train_step` per training batch and
    :meth:`eval_step` per validation batch, :meth:`end_epoch` after each epoch, and
    :meth:`state_dict` / :meth:`load_state_dict` for checkpoints (the dict must hold only
    tensors, numbers, strings, lists and dicts so it loads with ``weights_only=True``).
    ``name`` is the recipe's id in the registry (checkpoints record it).
    """

    name = "recipe"
    sample_dir = None  # a recipe that draws previews writes them here when set (Path)
    #: Lines for the run's log (Started.notes), e.g. which initial weights loaded.
    notes: tuple[str, ...] = ()
    #: More to record in the run's config.json (JSON values), e.g. ``{"init_weights": ...}``.
    record: dict[str, Any] | None = None

    def setup(self, ctx: TrainContext) -> None:
        raise NotImplementedError

    def modules(self) -> dict[str, Any]:
        raise NotImplementedError

    def train_step(self, x, y) -> StepOutput:
        raise NotImplementedError

    def eval_step(self, x, y) -> StepOutput:
        raise NotImplementedError

    def end_epoch(self, monitored_loss: float | None) -> None:
        pass

    def lr(self) -> float:
        return float("nan")

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def set_train(self, training: bool) -> None:
        for m in self.modules().values():
            m.train(training)

    def metrics(self, dataset, device, full: bool):
        """The accumulator of one phase: ``update(loss, output, y)``, ``running()``,
        ``compute()`` and ``count``, fed with this recipe's :class:`StepOutput`. A recipe whose
        output is not a prediction of ``y`` brings its own (see :class:`MeanMetrics`)."""
        from ..metrics import MetricAccumulator  # deferred: torch loads only when this runs

        return MetricAccumulator(dataset.task, dataset.num_classes, device, full=full)


class MeanMetrics:
    """Sample-weighted means of a vector of per-batch values (``StepOutput.output``), one per
    name in ``keys``, with no device sync until read. ``derived`` adds values computed from the
    means (e.g. a GAN's ``loss = loss_d + loss_g``, a language model's perplexity)."""

    def __init__(self, keys: Sequence[str], device,
                 derived: Callable[[dict[str, float]], dict[str, float]] | None = None) -> None:
        self.keys = tuple(keys)
        self._fdt = torch.float32 if getattr(device, "type", "") == "mps" else torch.float64
        self.sums = torch.zeros(len(self.keys), dtype=self._fdt, device=device)
        self.count = 0
        self.derived = derived

    def update(self, loss, output, target) -> None:
        n = target.shape[0]
        with torch.no_grad():
            self.sums += output.detach().to(self._fdt) * n
        self.count += n

    def running(self) -> dict[str, float]:
        if not self.count:
            return {}
        out = dict(zip(self.keys, (self.sums / self.count).tolist()))
        if self.derived is not None:
            out = {**self.derived(out), **out}
        return out

    def compute(self) -> dict[str, Any]:
        return self.running()


__all__ = ["MeanMetrics", "Recipe", "StepOutput", "TrainContext"]
