"""Layers that torch.nn lacks, as small ``nn.Module`` classes.

Each class here is self-contained (it uses ``torch`` and ``nn`` only): code export copies its
source text into ``model.py`` when a design uses it, so the exported model needs neither designer
nor torchvision, and the engine and the exported file run the same code.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Randomly drops a residual branch while training (torchvision.ops.StochasticDepth): each
    sample's ("row") or the whole batch's ("batch") input is zeroed with probability p and the
    kept ones are scaled by 1 / (1 - p); identity in eval mode."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


class LearnedTensor(nn.Module):
    """A learnable tensor that takes no input (ViT's class token and position embedding,
    ConvNeXt's layer scale): ``forward(batch_size)`` returns ``weight`` repeated over the batch as
    a view, shape (batch_size, *shape).

    init: "zeros", "ones", "constant" (every value ``value``), "normal" (mean 0, std ``std``),
    "uniform" (from -std to std) or "trunc_normal" (normal with std ``std``, cut to [-2, 2] as
    ``nn.init.trunc_normal_`` does by default)."""

    def __init__(self, shape: tuple[int, ...], init: str = "normal", std: float = 0.02,
                 value: float = 1.0) -> None:
        super().__init__()
        self.init, self.std, self.value = init, std, value
        self.weight = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        w = self.weight
        if self.init == "zeros":
            nn.init.zeros_(w)
        elif self.init == "ones":
            nn.init.ones_(w)
        elif self.init == "constant":
            nn.init.constant_(w, self.value)
        elif self.init == "normal":
            nn.init.normal_(w, std=self.std)
        elif self.init == "uniform":
            nn.init.uniform_(w, -self.std, self.std)
        elif self.init == "trunc_normal":
            nn.init.trunc_normal_(w, std=self.std)
        else:
            raise ValueError(f"unknown init {self.init!r}")

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.weight.expand(batch_size, *self.weight.shape)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.weight.shape)}, init={self.init!r}"


# Classes code export may copy into model.py, by name.
HELPER_CLASSES = ("StochasticDepth", "LearnedTensor")
