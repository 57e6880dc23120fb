"""Modules imported on first use.

A recipe module declares its settings and checks (needed to validate a file and to check a design,
which must not cost the seconds of ``import torch``) next to its training step (which needs torch).
It writes ``from ..lazy import torch, F`` and uses ``torch.randn(...)`` in its methods as usual:
the real module is imported the first time an attribute is read. Decorators such as
``@torch.no_grad()`` run at class definition, so recipe modules use ``with torch.no_grad():``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module until an attribute is read, then forwards to the imported module."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


torch = LazyModule("torch")
nn = LazyModule("torch.nn")
F = LazyModule("torch.nn.functional")

__all__ = ["F", "LazyModule", "nn", "torch"]
