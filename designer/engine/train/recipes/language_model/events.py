"""The language-model recipe's events, as plain data (no torch): the window imports them before
torch is loaded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LmSample:
    """Text the model wrote after an epoch: ``prompt`` + ``text`` (the continuation; a word-level
    continuation starts with a space), sampled at ``temperature``."""

    epoch: int
    prompt: str
    text: str
    temperature: float


__all__ = ["LmSample"]
