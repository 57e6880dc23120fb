"""Merges: layers with two or more inputs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from .schema import DataFit, LayerError, MemoryUse, Param, Shape, fmt_shape, register


def _broadcast(label: str, ins: list[Shape]) -> Shape:
    """The shape of an element-wise merge under torch's broadcasting rules, applied to the
    non-batch axes: equal ranks, and on each axis equal sizes or a 1 that stretches
    ((16, 8, 8) * (16, 1, 1) is squeeze-and-excitation). Ranks must agree because every input
    also carries the batch axis in front: a lower rank would line the batch up with a feature axis."""
    out = list(ins[0])
    for i, s in enumerate(ins[1:], start=1):
        if len(s) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(s, out)):
            raise LayerError(
                f"{label} needs inputs whose shapes match or broadcast (each size equal, or 1 in "
                f"one of them), but input 1 is {fmt_shape(ins[0])} and input {i + 1} is "
                f"{fmt_shape(s)}: make the branches agree (e.g. a 1x1 Conv2d or Linear on the "
                f"skip path)"
            )
        out = [max(a, b) if 1 in (a, b) else a for a, b in zip(out, s)]
    return tuple(out)


def _resolve_concat(p, ins, dts):
    d = p["dim"]
    rank = len(ins[0])
    if not 1 <= d <= rank:
        raise LayerError(
            f"Concat along axis {d}, but the inputs have axes 1..{rank} (axis 0 is the batch)"
        )
    for i, s in enumerate(ins):
        if len(s) != rank or any(a != b for j, (a, b) in enumerate(zip(s, ins[0])) if j != d - 1):
            raise LayerError(
                f"Concat along axis {d} needs the other sizes to agree, but input 1 is "
                f"{fmt_shape(ins[0])} and input {i + 1} is {fmt_shape(s)}"
            )
    return {"dim": d}


def _concat_shape(p, ins):
    d = _resolve_concat(p, ins, [])["dim"] - 1
    out = list(ins[0])
    out[d] = sum(s[d] for s in ins)
    return tuple(out)


register(
    id="Add",
    display_name="Add",
    category="Merge",
    doc="Element-wise sum of two or more inputs (residual connections): y = a + b; sizes of 1 "
    "broadcast as in torch: (C, H, W) + (C, 1, 1) -> (C, H, W).",
    variadic=True,
    resolve=lambda p, ins, dts: (_broadcast("Add", ins), {})[1],
    apply=lambda m, xs, kw: _fold(xs, lambda a, b: a + b),
    code=lambda c: [f"{c.out} = {' + '.join(c.inputs)}"],
    infer=lambda p, ins: _broadcast("Add", ins),
    macs=lambda p, ins, out: math.prod(out) * (len(ins) - 1),
    prefix="add",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Multiply",
    display_name="Multiply",
    category="Merge",
    doc="Element-wise product of two or more inputs (gating): y = a * b; sizes of 1 broadcast "
    "as in torch: (C, H, W) * (C, 1, 1) -> (C, H, W).",
    variadic=True,
    resolve=lambda p, ins, dts: (_broadcast("Multiply", ins), {})[1],
    apply=lambda m, xs, kw: _fold(xs, lambda a, b: a * b),
    code=lambda c: [f"{c.out} = {' * '.join(c.inputs)}"],
    infer=lambda p, ins: _broadcast("Multiply", ins),
    macs=lambda p, ins, out: math.prod(out) * (len(ins) - 1),
    prefix="mul",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Scale",
    display_name="Scale",
    category="Core",
    doc="Multiplies by a constant, or divides by it: y = x * factor (NFNet's beta, attention's "
    "1 / sqrt(d)); with divide, y = x / factor.",
    params=(Param("factor", "float", 1.0, "The constant", min=-1e12, max=1e12),
            Param("divide", "bool", False, "Divide by the factor instead of multiplying")),
    resolve=lambda p, ins, dts: _resolve_scale(p),
    apply=lambda m, xs, kw: xs[0] / kw["factor"] if kw["divide"] else xs[0] * kw["factor"],
    code=lambda c: [(f"{c.out} = {c.inputs[0]} {'/' if c.kwargs['divide'] else '*'} "
                     f"{c.kwargs['factor']!r}")],
    infer=lambda p, ins: (_resolve_scale(p), ins[0])[1],
    macs=lambda p, ins, out: math.prod(out),
    key_params=("factor",),
    prefix="scale",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("input"),
)


def _resolve_scale(p: dict) -> dict:
    if p["divide"] and p["factor"] == 0:
        raise LayerError("Scale divides by 0: set factor to another number, or turn divide off")
    return {"factor": float(p["factor"]), "divide": p["divide"]}


register(
    id="Subtract",
    display_name="Subtract",
    category="Merge",
    doc="Element-wise difference: the first input minus the others, y = a - b; sizes of 1 "
    "broadcast as in torch: (C, H, W) - (C, 1, 1) -> (C, H, W).",
    variadic=True,
    resolve=lambda p, ins, dts: (_broadcast("Subtract", ins), {})[1],
    apply=lambda m, xs, kw: _fold(xs, lambda a, b: a - b),
    code=lambda c: [f"{c.out} = {' - '.join(c.inputs)}"],
    infer=lambda p, ins: _broadcast("Subtract", ins),
    macs=lambda p, ins, out: math.prod(out) * (len(ins) - 1),
    prefix="sub",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Concat",
    display_name="Concat",
    category="Merge",
    doc="Joins two or more inputs along an axis (1 = channels/features); the other sizes must agree.",
    params=(Param("dim", "int", 1, "Axis to join along (1 is the first after the batch)", min=1,
                  max=8),),
    variadic=True,
    resolve=_resolve_concat,
    apply=lambda m, xs, kw: _cat(xs, kw["dim"]),
    code=lambda c: [f"{c.out} = torch.cat(({', '.join(c.inputs)}), dim={c.kwargs['dim']})"],
    infer=_concat_shape,
    key_params=("dim",),
    prefix="concat",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _cat(xs: list[torch.Tensor], dim: int) -> torch.Tensor:
    import torch  # deferred: torch loads only when this runs

    return torch.cat(xs, dim=dim)


def _fold(xs: list[torch.Tensor], op: Callable) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out


# --------------------------------------------------------------------------------------------
# Import: the operators and functions that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import SAME, Made, Unmapped, axis, imports_call


def _merge(call, layer):
    if call.tensor_inputs() != 2 or not all(call.is_tensor(a) for a in call.args[:2]):
        raise Unmapped(call.name, f"{call.name} with a number (the designer's {layer} merges "
                       "tensors)")
    return layer, {}


@imports_call("add", "iadd", "add_", "__iadd__", layers=("Add",), inputs="all")
def _import_add_call(call):  # x + y, x += y, torch.add, aten.add
    if call.aten and call.kwargs.get("alpha", 1) != 1:
        raise Unmapped("add", "add with alpha (x + alpha * y)")
    return _merge(call, "Add")


@imports_call("sub", "isub", "sub_", layers=("Subtract",), inputs="all")
def _import_sub_call(call):  # x - y, x -= y, torch.sub, aten.sub
    if call.kwargs.get("alpha", 1) != 1 or len(call.args) > 2:
        raise Unmapped("sub", "sub with alpha (x - alpha * y)")
    return _merge(call, "Subtract")


def _number(call) -> float | None:
    """The number a call applies to its one tensor (``x * 0.5``, ``2 * x``), or None."""
    nums = [a for a in call.args[:2] if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if call.tensor_inputs() != 1 or len(nums) != 1 or len(call.args) != 2:
        return None
    return float(nums[0])


@imports_call("mul", "imul", "mul_", layers=("Multiply", "Scale"), params=("factor",),
              inputs="all")
def _import_mul_call(call):  # x * y, x *= y, torch.mul, aten.mul; x * 0.5: Scale
    factor = _number(call)
    if factor is not None:
        return "Scale", {"factor": factor}
    return _merge(call, "Multiply")


@imports_call("truediv", "div", "itruediv", "div_", layers=("Scale",),
              params=("factor", "divide"))
def _import_div_call(call):  # x / 8.0, torch.div(x, 8.0), aten.div: Scale dividing
    factor = _number(call)
    if factor is None or not call.is_tensor(call.args[0]) or call.kwargs.get("rounding_mode"):
        return None  # a tensor by a tensor, a number by a tensor: no layer
    if factor == 0:
        raise Unmapped(call.name, "a division by 0")
    return "Scale", {"factor": factor, "divide": True}


@imports_call("cat", layers=("Concat",), params=("dim",), inputs="all")
def _import_cat_call(call):
    dim = axis(call.arg(1, "dim", 0), len(call.out_shape))
    if dim < 1:
        raise Unmapped("cat", "concatenation along the batch")
    if call.tensor_inputs() == 1:  # one tensor (an exported DenseNet layer's first call): itself
        return SAME
    return Made("Concat", {"dim": dim}, "concat")
