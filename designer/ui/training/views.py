"""The live views of recipes, keyed by the recipe's ``view`` id (designer.engine.train.recipes).

The training panel always shows the shared loss/metric curves; a recipe with a ``view`` gets one
more tab, made by the factory registered here under that id. A view is a QWidget with:

``handle(event) -> bool``
    every event of the run, in the GUI thread (Batch, Epoch, the recipe's own events); write into
    buffers only and redraw from a timer; True when the event was only for this view;
``clear()``, ``start()``, ``stop()``
    a new run is about to start / has started / has ended.

Built-in views live in their own modules (gan_view, vae_view, lm_view) and register themselves
when imported; a plug-in recipe registers its view with :func:`register_view`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from PySide6.QtWidgets import QWidget

#: Modules of the built-in views, imported on first use.
BUILTIN_VIEW_MODULES = ("gan_view", "vae_view", "lm_view")

_VIEWS: dict[str, Callable[[QWidget | None], QWidget]] = {}
_loaded = False


def register_view(view_id: str, factory: Callable[[QWidget | None], QWidget]) -> None:
    if view_id in _VIEWS and _VIEWS[view_id] is not factory:
        raise ValueError(f"a view {view_id!r} is registered twice")
    _VIEWS[view_id] = factory


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_VIEW_MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise


def make_view(view_id: str, parent: QWidget | None = None) -> QWidget | None:
    """A new view for ``view_id``; None when no view is registered under it."""
    if not view_id:
        return None
    _ensure_loaded()
    factory = _VIEWS.get(view_id)
    return factory(parent) if factory is not None else None


__all__ = ["BUILTIN_VIEW_MODULES", "make_view", "register_view"]
