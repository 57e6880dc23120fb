"""Shape manipulation."""

from __future__ import annotations

import math
from typing import Any

from .schema import (
    MAX_DIM,
    DataFit,
    LayerError,
    MemoryUse,
    Param,
    Shape,
    _elementwise_macs,
    _no_params,
    fmt_shape,
    pair,
    register,
)

register(
    id="Flatten",
    display_name="Flatten",
    category="Shape",
    doc="Flattens axes start_dim..end_dim into one (axis 0 is the batch); by default everything "
    "but the batch: (C, H, W) -> (C*H*W); start_dim 2: (C, H, W) -> (C, H*W).",
    params=(
        Param("start_dim", "int", 1, "First axis flattened (1 is the first after the batch)",
              min=1, max=8, saved_if_set=True),
        Param("end_dim", "int", -1, "Last axis flattened (negative: from the end)", min=-8,
              max=8, saved_if_set=True),
    ),
    module_name="Flatten",
    count_params=_no_params,
    resolve=lambda p, ins, dts: _resolve_flatten(p, ins[0]),
    infer=lambda p, ins: _flatten_shape(p, ins[0]),
    input_dtype="any",
    prefix="flatten",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _flatten_axes(p: dict, shape: Shape) -> tuple[int, int]:
    """The first and last axis flattened, counted with the batch as 0."""
    if not shape:
        raise LayerError("Flatten receives a single number per sample, shape (), which "
                         "nn.Flatten refuses: remove the Flatten, or use a Reshape to [1]")
    rank = len(shape) + 1
    start, end = p.get("start_dim", 1), p.get("end_dim", -1)
    last = end + rank if end < 0 else end
    if not 1 <= start < rank or not start <= last < rank:
        raise LayerError(
            f"Flatten from axis {start} to {end}, but the input {fmt_shape(shape)} has axes "
            f"1..{rank - 1} (axis 0 is the batch): pick start_dim <= end_dim among them"
        )
    return start, last


def _resolve_flatten(p: dict, shape: Shape) -> dict:
    _flatten_axes(p, shape)
    return {"start_dim": p.get("start_dim", 1), "end_dim": p.get("end_dim", -1)}


def _flatten_shape(p: dict, shape: Shape) -> Shape:
    start, last = _flatten_axes(p, shape)
    return (*shape[:start - 1], math.prod(shape[start - 1:last]), *shape[last:])


def _reshape_target(p: dict, shape: Shape) -> Shape:
    target = list(p["shape"])
    total = math.prod(shape)
    if -1 in target:
        known = math.prod(v for v in target if v != -1)
        if total % known:
            raise LayerError(
                f"Reshape cannot fit {total} elements {fmt_shape(shape)} into "
                f"{fmt_shape(target)}: the other sizes must multiply to a divisor of {total}"
            )
        target[target.index(-1)] = total // known
    if math.prod(target) != total:
        raise LayerError(
            f"Reshape receives {total} elements {fmt_shape(shape)} but the target shape "
            f"{fmt_shape(target)} holds {math.prod(target)}: change the target so the sizes multiply "
            f"to {total}"
        )
    return tuple(target)


register(
    id="Reshape",
    display_name="Reshape",
    category="Shape",
    doc="Reshapes each sample to a new shape with the same number of elements (one size may be -1).",
    params=(Param("shape", "shape", [1, 28, 28], "Target shape without the batch dimension",
                  allow_minus_one=True),),
    resolve=lambda p, ins, dts: {"shape": _reshape_target(p, ins[0])},
    apply=lambda m, xs, kw: xs[0].reshape(xs[0].shape[0], *kw["shape"]),
    code=lambda c: [
        (f"{c.out} = {c.inputs[0]}.reshape({c.inputs[0]}.size(0), "
         f"{', '.join(str(v) for v in c.kwargs['shape'])})")
    ],
    infer=lambda p, ins: _reshape_target(p, ins[0]),
    input_dtype="any",
    key_params=("shape",),
    prefix="reshape",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _resolve_permute(p, ins, dts):
    if len(p["dims"]) != len(ins[0]):
        raise LayerError(
            f"Permute has dims {p['dims']} for {len(p['dims'])} axes, but receives "
            f"{fmt_shape(ins[0])} with {len(ins[0])}: list each of the axes 1..{len(ins[0])} once"
        )
    return {"dims": (0, *p["dims"])}


register(
    id="Permute",
    display_name="Permute",
    category="Shape",
    doc="Reorders the non-batch axes, numbered from 1: dims [2, 1] turns (L, C) into (C, L).",
    params=(Param("dims", "dims", [2, 1], "New order of the axes 1..n (axis 0 is the batch)"),),
    resolve=_resolve_permute,
    apply=lambda m, xs, kw: xs[0].permute(*kw["dims"]),
    code=lambda c: [f"{c.out} = {c.inputs[0]}.permute({', '.join(map(str, c.kwargs['dims']))})"],
    infer=lambda p, ins: tuple(ins[0][d - 1] for d in _resolve_permute(p, ins, [])["dims"][1:]),
    input_dtype="any",
    key_params=("dims",),
    prefix="permute",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _axis(label: str, p: dict, shape: Shape) -> int:
    """The non-batch axis ``p["dim"]`` (numbered from 1), checked against the input."""
    d = p["dim"]
    if not 1 <= d <= len(shape):
        raise LayerError(
            f"{label} along axis {d}, but the input {fmt_shape(shape)} has axes 1..{len(shape)} "
            f"(axis 0 is the batch): set dim to one of them"
        )
    return d


def _resolve_select(p, ins, dts):
    d = _axis("Select", p, ins[0])
    size, i = ins[0][d - 1], p["index"]
    if not -size <= i < size:
        raise LayerError(
            f"Select: index {i} is outside axis {d} of size {size} (input {fmt_shape(ins[0])}): "
            f"use an index from 0 to {size - 1}, or from -{size} to -1 counting from the end"
        )
    return {"dim": d, "index": i}


def _index_text(dim: int, item: str) -> str:
    """``[:, item]``: indexing of axis ``dim`` (numbered with the batch as 0) in exported code."""
    return "[" + ", ".join([":"] * dim + [item]) + "]"


def _index(dim: int, item: Any) -> tuple:
    return (slice(None),) * dim + (item,)


register(
    id="Select",
    display_name="Select",
    category="Shape",
    doc="Takes one position along a non-batch axis and drops that axis: y = x[:, index] for "
    "dim 1 (ViT's class token), (L, E) -> (E); a negative index counts from the end.",
    params=(
        Param("dim", "int", 1, "Axis to select along (1 is the first after the batch)", min=1,
              max=8),
        Param("index", "int", 0, "Position along that axis (negative: from the end)",
              min=-MAX_DIM, max=MAX_DIM),
    ),
    resolve=_resolve_select,
    apply=lambda m, xs, kw: xs[0][_index(kw["dim"], kw["index"])],
    code=lambda c: [f"{c.out} = {c.inputs[0]}{_index_text(c.kwargs['dim'], str(c.kwargs['index']))}"],
    infer=lambda p, ins: tuple(s for i, s in enumerate(ins[0])
                               if i != _resolve_select(p, ins, [])["dim"] - 1),
    input_dtype="any",
    key_params=("dim", "index"),
    prefix="select",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _resolve_slice(p, ins, dts):
    d = _axis("Slice", p, ins[0])
    size = ins[0][d - 1]
    start, end, step = p["start"], p["end"], p["step"]
    n = len(range(*slice(start, end, step).indices(size)))
    if n < 1:
        shown = f"{start}:{'' if end is None else end}" + (f":{step}" if step != 1 else "")
        raise LayerError(
            f"Slice keeps nothing: [{shown}] of axis {d} (size {size}, input "
            f"{fmt_shape(ins[0])}) is empty: "
            f"choose start and end so that start < end within 0..{size} (negative values count "
            f"from the end)"
        )
    return {"dim": d, "start": start, "end": end, "step": step, "_size": n}


def _slice_text(kw: dict) -> str:
    start = "" if kw["start"] == 0 else str(kw["start"])
    end = "" if kw["end"] is None else str(kw["end"])
    return f"{start}:{end}" + (f":{kw['step']}" if kw["step"] != 1 else "")


def _slice_shape(p, ins):
    kw = _resolve_slice(p, ins, [])
    out = list(ins[0])
    out[kw["dim"] - 1] = kw["_size"]
    return tuple(out)


register(
    id="Slice",
    display_name="Slice",
    category="Shape",
    doc="Keeps a range along a non-batch axis, as Python slicing: y = x[:, start:end:step] for "
    "dim 1; (C, H, W) -> (C/2, H, W) with start 0, end C/2 (ShuffleNet's channel split).",
    params=(
        Param("dim", "int", 1, "Axis to slice (1 is the first after the batch)", min=1, max=8),
        Param("start", "int", 0, "First position kept (negative: from the end)", min=-MAX_DIM,
              max=MAX_DIM),
        Param("end", "int", None, "Position after the last one kept, negative from the end "
              "(empty: to the end)", min=-MAX_DIM, max=MAX_DIM, optional=True),
        Param("step", "int", 1, "Keep every step-th position", min=1, max=MAX_DIM),
    ),
    resolve=_resolve_slice,
    apply=lambda m, xs, kw: xs[0][_index(kw["dim"], slice(kw["start"], kw["end"], kw["step"]))],
    code=lambda c: [f"{c.out} = {c.inputs[0]}{_index_text(c.kwargs['dim'], _slice_text(c.kwargs))}"],
    infer=_slice_shape,
    input_dtype="any",
    key_params=("dim", "start", "end"),
    prefix="slice",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("other"),
)


def _resolve_mean(p, ins, dts):
    d = p["dim"]
    if not 1 <= d <= len(ins[0]):
        raise LayerError(
            f"Mean over axis {d}, but the input {fmt_shape(ins[0])} has axes 1..{len(ins[0])} "
            f"(axis 0 is the batch)"
        )
    return {"dim": d, "keepdim": p.get("keepdim", False)}


def _mean_shape(p, ins):
    d = _resolve_mean(p, ins, [])["dim"] - 1
    if p.get("keepdim", False):
        return tuple(1 if i == d else s for i, s in enumerate(ins[0]))
    return tuple(s for i, s in enumerate(ins[0]) if i != d)


register(
    id="Mean",
    display_name="Mean (pool over axis)",
    category="Shape",
    doc="Averages over one non-batch axis, e.g. pooling over time: (L, E) -> (E) with dim 1; "
    "with keepdim the axis stays, of size 1: (L, E) -> (1, E).",
    params=(Param("dim", "int", 1, "Axis to average over (1 is the first after the batch)", min=1,
                  max=8),
            Param("keepdim", "bool", False, "Keep the averaged axis, of size 1",
                  saved_if_set=True)),
    resolve=_resolve_mean,
    apply=lambda m, xs, kw: xs[0].mean(dim=kw["dim"], keepdim=kw["keepdim"]),
    code=lambda c: [(f"{c.out} = {c.inputs[0]}.mean(dim={c.kwargs['dim']}"
                     f"{', keepdim=True' if c.kwargs['keepdim'] else ''})")],
    infer=_mean_shape,
    macs=lambda p, ins, out: math.prod(ins[0]),
    key_params=("dim",),
    prefix="mean",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

def _pad_shape(p, ins):
    left, right, top, bottom = pair(p["padding"], 4)
    c, h, w = ins[0]
    if h + top + bottom < 1 or w + left + right < 1:
        raise LayerError(f"ConstantPad2d: padding {list(pair(p['padding'], 4))} leaves nothing of "
                         f"the input {fmt_shape(ins[0])}")
    return (c, h + top + bottom, w + left + right)


register(
    id="ConstantPad2d",
    display_name="ConstantPad2d",
    category="Shape",
    doc="Pads (channels, height, width) with a constant: padding (left, right, top, bottom), "
    "or one number for every side (ZeroPad2d: value 0).",
    params=(
        Param("padding", "ints", 1, "Values added on the left, right, top and bottom", min=0,
              max=4096, length=4),
        Param("value", "float", 0.0, "The value padded with", min=-1e6, max=1e6),
    ),
    module_name="ConstantPad2d",
    resolve=lambda p, ins, dts: (_pad_shape(p, ins), {"padding": pair(p["padding"], 4),
                                                       "value": p["value"]})[1],
    count_params=_no_params,
    infer=_pad_shape,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("padding",),
    prefix="pad",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Upsample",
    display_name="Upsample",
    category="Shape",
    doc="Upsamples (channels, height, width) by a factor: nearest copies pixels, bilinear "
    "interpolates; out = floor(in * scale_factor).",
    params=(
        Param("scale_factor", "float", 2.0, "Multiplier for height and width", min=0.01, max=64),
        Param("mode", "choice", "nearest", "Interpolation", choices=("nearest", "bilinear")),
    ),
    module_name="Upsample",
    resolve=lambda p, ins, dts: {"scale_factor": p["scale_factor"], "mode": p["mode"]},
    count_params=_no_params,
    # torch truncates size * scale_factor (a meta forward of interpolate imports torch._dynamo:
    # seconds on first use)
    infer=lambda p, ins: (ins[0][0], *(int(v * p["scale_factor"]) for v in ins[0][1:])),
    input_rank=(3,),
    rank_words="(channels, height, width)",
    macs=_elementwise_macs,
    prefix="upsample",
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)


# --------------------------------------------------------------------------------------------
# Import: the torch modules, functions and methods that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import (
    SAME,
    Made,
    Pieces,
    Unmapped,
    axis,
    imports_call,
    imports_module,
    one,
)


def _flatten_params(rank, start_dim=0, end_dim=-1):
    """A flatten of a tensor of ``rank`` (with the batch): start and end as the layer's, the
    defaults left out (saved files keep their Flatten as it was)."""
    start, last = axis(start_dim, rank), axis(end_dim, rank)
    if start < 1:
        raise Unmapped("flatten", "a flatten across the batch")
    if last < start:
        raise Unmapped("flatten", f"flatten from dim {start_dim} to {end_dim}")
    return _sparse_flatten(start, -1 if last == rank - 1 else last)


def _sparse_flatten(start: int, end: int) -> dict:
    """Flatten's parameters without those at their default (as saved files hold them)."""
    return {k: v for k, v in (("start_dim", start), ("end_dim", end))
            if v != {"start_dim": 1, "end_dim": -1}[k]}


@imports_module("torch.nn.Flatten", layers=("Flatten",), params=("start_dim", "end_dim"))
def _import_flatten(m):  # the input's rank is not known here: the layer checks the axes
    if m.start_dim < 1:
        raise Unmapped("Flatten", f"a flatten from dim {m.start_dim} (across the batch, or "
                       "counted from the end)")
    return "Flatten", _sparse_flatten(m.start_dim, m.end_dim)


@imports_call("flatten", layers=("Flatten",), params=("start_dim", "end_dim"))
def _import_flatten_call(call):  # torch.flatten(x) flattens the batch too, x.flatten(1) not
    got = {**dict(zip(("start_dim", "end_dim"), call.args[1:])), **call.kwargs}
    if not isinstance(got.get("start_dim", 0), int) or not isinstance(got.get("end_dim", -1), int):
        return None  # flatten over named dims
    return "Flatten", _flatten_params(call.rank, **got)


@imports_call("view", "reshape", layers=("Reshape",), params=("shape",))
def _import_reshape_call(call):
    if call.out_shape[0] != call.batch:
        raise Unmapped(call.name, "a reshape across the batch")
    return "Reshape", {"shape": list(call.out_shape[1:])}


@imports_module("torchvision.ops.misc.Permute", layers=("Permute",), params=("dims",))
def _import_permute(m):
    dims = list(m.dims)
    if dims[0] != 0:
        raise Unmapped("Permute", "a permutation that moves the batch axis")
    return "Permute", {"dims": dims[1:]}


@imports_call("permute", layers=("Permute",), params=("dims",))
def _import_permute_call(call):
    args = call.args
    dims = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
    dims = [axis(d, call.rank) for d in (dims or call.kwargs["dims"])]
    if dims[0] != 0:
        raise Unmapped(call.name, "a permutation that moves the batch axis")
    return "Permute", {"dims": dims[1:]}


@imports_call("transpose", "swapaxes", "swapdims", layers=("Permute",), params=("dims",))
def _import_transpose_call(call):
    rank = call.rank
    a, b = (axis(d, rank) for d in call.args[1:3])
    if min(a, b) < 1:
        raise Unmapped(call.name, "a transpose with the batch axis")
    dims = list(range(rank))
    dims[a], dims[b] = b, a
    return "Permute", {"dims": dims[1:]}


@imports_call("expand_as", layers=())
def _import_expand_as_call(call):  # y.expand_as(x) where y is x's size already: y itself
    if call.in_shape is not None and call.in_shape == call.out_shape:
        return SAME
    return None  # a broadcast: no layer (a merge broadcasts its inputs itself)


@imports_call("select", layers=("Select",), params=("dim", "index"))
def _import_select_call(call):  # aten.select.int(x, dim, index)
    if not call.aten:
        return None
    d = axis(call.args[1], call.rank)
    if d < 1:
        raise Unmapped(call.name, "a select along the batch")
    return "Select", {"dim": d, "index": call.args[2]}


@imports_call("slice", layers=("Slice",), params=("dim", "start", "end", "step"))
def _import_slice_call(call):  # aten.slice.Tensor(x, dim, start, end, step)
    if not call.aten:
        return None
    args = call.args
    d = axis(args[1] if len(args) > 1 else 0, call.rank)
    start, end = (args[2] if len(args) > 2 else None), (args[3] if len(args) > 3 else None)
    step = args[4] if len(args) > 4 else 1
    if d < 1:
        raise Unmapped(call.name, "a slice along the batch")
    if start in (None, 0) and (end is None or end >= call.in_shape[d]) and step == 1:
        return SAME  # the whole axis (x[:, :])
    if end is not None and end >= call.in_shape[d]:
        end = None
    return "Slice", {"dim": d, "start": start or 0, "end": end, "step": step}


@imports_call("getitem", layers=("Select", "Slice"), params=("dim", "index", "start", "end",
                                                             "step"))
def _import_index_call(call):  # x[:, 0], x[:, 1:]
    index = call.args[1] if isinstance(call.args[1], tuple) else (call.args[1],)
    full = slice(None)
    picks = [(d, i) for d, i in enumerate(index) if i != full]
    if len(picks) != 1 or picks[0][0] < 1 or Ellipsis in index:
        raise Unmapped("getitem", f"indexing {index} (one axis after the batch only)")
    d, i = picks[0]
    if isinstance(i, int):
        return "Select", {"dim": d, "index": i}
    if isinstance(i, slice) and all(isinstance(v, int | None) for v in (i.start, i.stop, i.step)):
        return "Slice", {"dim": d, "start": i.start or 0, "end": i.stop, "step": i.step or 1}
    raise Unmapped("getitem", f"indexing {index}")


def _slices(dim, sizes):
    """One Slice per piece of an axis cut into ``sizes``."""
    steps, start = [], 0
    for size in sizes:
        steps.append(("Slice", {"dim": dim, "start": start, "end": start + size, "step": 1}))
        start += size
    return Pieces(steps)


@imports_call("chunk", layers=("Slice",), params=("dim", "start", "end", "step"), pieces=True)
def _import_chunk_call(call):  # x.chunk(n, dim): each piece used is a Slice
    n = call.arg(1, "chunks")
    dim = axis(call.arg(2, "dim", 0), call.rank)
    if dim < 1:
        raise Unmapped("chunk", "chunks along the batch")
    sizes = [s[dim] for s in call.out_shapes]
    if len(sizes) != n:
        raise Unmapped("chunk", "an uneven chunk")
    return _slices(dim, sizes)


@imports_call("split", "split_with_sizes", layers=("Slice",),
              params=("dim", "start", "end", "step"), pieces=True)
def _import_split_call(call):  # x.split(n, dim), torch.split(x, [a, b], dim): each piece a Slice
    sections = call.args[1] if len(call.args) > 1 else next(
        (call.kwargs[k] for k in ("split_size_or_sections", "split_size", "split_sizes")
         if k in call.kwargs), None)
    if not isinstance(sections, (int, list, tuple)) or not call.out_shapes:
        return None
    dim = axis(call.arg(2, "dim", 0), call.rank)
    if dim < 1:
        raise Unmapped("split", "a split along the batch")
    return _slices(dim, [s[dim] for s in call.out_shapes])


@imports_call("unbind", layers=("Select",), params=("dim", "index"), pieces=True)
def _import_unbind_call(call):  # x.unbind(dim): each piece used is a Select
    dim = axis(call.arg(1, "dim", 0), call.rank)
    if dim < 1:
        raise Unmapped("unbind", "an unbind along the batch")
    if not call.out_shapes:
        return None
    return Pieces([("Select", {"dim": dim, "index": i}) for i in range(call.in_shape[dim])])


@imports_call("mean", layers=("Mean", "Reshape", "AdaptiveAvgPool2d"),
              params=("dim", "keepdim", "shape", "output_size"))
def _import_mean_call(call):
    dims = call.arg(1, "dim")
    if dims is None:
        raise Unmapped("mean", "a mean over every axis")
    rank = call.rank
    dims = sorted({axis(d, rank) for d in ([dims] if isinstance(dims, int) else dims)},
                  reverse=True)
    if dims[-1] < 1:
        raise Unmapped("mean", "a mean over the batch")
    if call.arg(2, "keepdim", False):
        if rank == 4 and dims == [3, 2]:  # squeeze-and-excitation's x.mean((2, 3), keepdim=True)
            return "AdaptiveAvgPool2d", {"output_size": 1}  # the same values, bit for bit
        return [("Mean", {"dim": d, "keepdim": True}) for d in dims]
    steps = []
    if len(dims) > 1 and dims == list(range(rank - 1, rank - 1 - len(dims), -1)):
        # trailing axes (x.mean([2, 3])): flattened and averaged at once, in torch's order
        kept = list(call.in_shape[1:dims[-1]])
        steps.append(Made("Reshape", {"shape": [*kept, -1]}, "{label}_flat"))
        dims = [dims[-1]]
    return steps + [("Mean", {"dim": d}) for d in dims]


@imports_module("torch.nn.ConstantPad2d", "torch.nn.ZeroPad2d", layers=("ConstantPad2d",),
                params=("padding", "value"))
def _import_constant_pad(m):
    if min(m.padding) < 0:
        raise Unmapped(type(m).__name__, "a negative padding (a crop)")
    if not math.isfinite(float(m.value)):  # -inf before a max pool: kept as code
        raise Unmapped(type(m).__name__, "a padding value that is not a finite number")
    return "ConstantPad2d", {"padding": one(m.padding), "value": float(m.value)}


@imports_call("pad", "constant_pad_nd", layers=("ConstantPad2d",), params=("padding", "value"))
def _import_pad_call(call):  # F.pad(x, (l, r, t, b), value=v) on (N, C, H, W); aten's
    pad = call.arg(1, "pad")
    if call.name == "constant_pad_nd":  # (x, pad, value)
        mode, value = "constant", call.arg(2, "value", None)
    else:
        mode, value = call.arg(2, "mode", "constant"), call.arg(3, "value", None)
    if call.rank != 4 or mode != "constant" or not isinstance(pad, (list, tuple)) \
            or len(pad) not in (2, 4) or not all(isinstance(v, int) for v in pad):
        return None  # other modes, other ranks, sizes computed in forward
    if min(pad) < 0:
        raise Unmapped("pad", "a negative padding (a crop)")
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise Unmapped("pad", "a padding value that is not a finite number")
    return "ConstantPad2d", {"padding": one([*pad, 0, 0][:4]),
                             "value": float(value or 0.0)}


@imports_module("torch.nn.Upsample", layers=("Upsample",), params=("scale_factor", "mode"))
def _import_upsample(m):
    if m.size is not None or m.mode not in ("nearest", "bilinear") or m.align_corners:
        raise Unmapped("Upsample", "a fixed size, align_corners or a mode other than nearest "
                       "and bilinear")
    scale = one(m.scale_factor)
    if isinstance(scale, list):
        raise Unmapped("Upsample", "different scale factors per axis")
    return "Upsample", {"scale_factor": float(scale), "mode": m.mode}
