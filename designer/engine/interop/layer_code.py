"""How one layer is written in model.py: its constructor call with the arguments that differ from
torch's defaults, and the names generated code reserves."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..model.catalog import LayerSpec, module_kwargs
from ..model.pysource import literal

MODULE_ATTRS = frozenset(dir(nn.Module())) | frozenset(dir(nn.Module))
# Sequence arguments that torch accepts as one int when every entry is the same.
COLLAPSIBLE = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding",
                          "output_size"})
# Constructors whose signature is ``*args, **kwargs``: their defaults, written out here.
VARARG_DEFAULTS: dict[str, dict[str, Any]] = {
    "RNN": {"num_layers": 1, "nonlinearity": "tanh", "bias": True, "batch_first": False,
            "dropout": 0.0, "bidirectional": False},
    "LSTM": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
             "bidirectional": False},
    "GRU": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
            "bidirectional": False},
}
VARARG_REQUIRED = {"RNN": ("input_size", "hidden_size"), "LSTM": ("input_size", "hidden_size"),
                    "GRU": ("input_size", "hidden_size")}



# --------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------


def _signature(spec: LayerSpec) -> tuple[list[str], dict[str, Any]]:
    """Required positional parameter names and keyword defaults of the layer's constructor."""
    if spec.id in VARARG_DEFAULTS:
        return list(VARARG_REQUIRED[spec.id]), dict(VARARG_DEFAULTS[spec.id])
    required: list[str] = []
    defaults: dict[str, Any] = {}
    try:
        params = list(inspect.signature(spec.module.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtin without a signature
        return [], {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            defaults[p.name] = p.default
    return required, defaults


def same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an odd default that cannot be compared
        return False


class _Expr(str):
    """Source text written as is (a block parameter, an ``__init__`` argument), not as a literal."""


def _source(value: Any) -> str:
    return str(value) if isinstance(value, _Expr) else literal(value)


def constructor(spec: LayerSpec, kwargs: dict[str, Any], exprs: dict[str, str] | None = None
                ) -> str:
    """``nn.Conv2d(1, 20, 5)``: required arguments by position, the rest by keyword, defaults left
    out (except a layer's key settings when it has no required arguments, e.g. ``Dropout(p=0.5)``).

    ``exprs`` gives source text for some arguments (``planes``, ``planes * 4``): written as is and
    never left out as a default, since its value changes from one use of a block to another."""
    exprs = exprs or {}
    kw: dict[str, Any] = {}
    for key, value in module_kwargs(kwargs).items():
        if key in exprs:
            value = _Expr(exprs[key])
        elif key in COLLAPSIBLE and isinstance(value, (tuple, list)) and value and all(
            v == value[0] for v in value
        ):
            value = value[0]
        elif isinstance(value, list):
            value = tuple(value)
        kw[key] = value
    required, defaults = _signature(spec)
    args: list[str] = []
    positional = True
    for name in required:
        if positional and name in kw:
            args.append(_source(kw.pop(name)))
        else:
            positional = False
    # A layer with no required argument shows its numeric setting: Dropout(p=0.5).
    keep = {k for k in spec.key_params if isinstance(kw.get(k), float)} if not required else set()
    for key, value in kw.items():
        if (not isinstance(value, _Expr) and key in defaults and same_value(value, defaults[key])
                and key not in keep):
            continue
        args.append(f"{key}={_source(value)}")
    return f"{spec.code_class}({', '.join(args)})"

