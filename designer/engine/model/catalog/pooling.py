"""Pooling: max, average and adaptive pooling."""

from __future__ import annotations

import math

from .schema import (
    DataFit,
    Infer,
    MemoryUse,
    Param,
    Shape,
    _check_window,
    _no_params,
    _spatial_out,
    pair,
    register,
)


def _pool_shape(dims: int) -> Infer:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = ins[0]
        k = pair(p["kernel_size"], dims)
        s = pair(p["stride"], dims) if p["stride"] is not None else k
        pd = pair(p["padding"], dims)
        return (*shape[:-dims], *(_spatial_out(shape[-dims + i], k[i], s[i], pd[i],
                                               ceil=p["ceil_mode"])
                                  for i in range(dims)))

    return infer


def _pool_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    """Each output value reads one kernel window (comparisons or additions)."""
    return math.prod(out) * math.prod(pair(p["kernel_size"], len(out) - 1))


def _make_pool_resolver(label: str, dims: int):
    def resolve(p, ins, dts):
        k = pair(p["kernel_size"], dims)
        s = pair(p["stride"], dims) if p["stride"] is not None else k
        pd = pair(p["padding"], dims)
        _check_window(label, ins[0][1:], k, s, pd, ceil=p["ceil_mode"])
        kw = {"kernel_size": k, "stride": s, "padding": pd, "ceil_mode": p["ceil_mode"]}
        if "count_include_pad" in p:
            kw["count_include_pad"] = p["count_include_pad"]
        return kw

    return resolve


_CEIL_MODE = Param("ceil_mode", "bool", False,
                   "Round the output size up: a last, partial window is kept")


def _pool_params():
    return (
        Param("kernel_size", "ints", 2, "Size of the pooling window", min=1, max=4096, length=2),
        Param("stride", "ints", None, "Step of the window (empty: same as kernel_size)", min=1,
              max=4096, length=2, optional=True),
        Param("padding", "ints", 0, "Padding added to each side", min=0, max=2048, length=2),
        _CEIL_MODE,
    )


def _pool1d_params():
    return (
        Param("kernel_size", "ints", 2, "Size of the pooling window", min=1, max=4096, length=1),
        Param("stride", "ints", None, "Step of the window (empty: same as kernel_size)", min=1,
              max=4096, length=1, optional=True),
        Param("padding", "ints", 0, "Padding added to each side", min=0, max=2048, length=1),
        _CEIL_MODE,
    )


register(
    id="MaxPool1d",
    display_name="MaxPool1d",
    category="Pooling",
    doc="Max over sliding windows along the length: y = max over window of x; "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=_pool1d_params(),
    module_name="MaxPool1d",
    resolve=_make_pool_resolver("MaxPool1d", 1),
    count_params=_no_params,
    infer=_pool_shape(1),
    macs=_pool_macs,
    input_rank=(2,),
    rank_words="(channels, length)",
    key_params=("kernel_size",),
    prefix="pool",
    memory=MemoryUse("input", extra="indices"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="MaxPool2d",
    display_name="MaxPool2d",
    category="Pooling",
    doc="Max over sliding 2-D windows: y = max over window of x; per side "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=_pool_params(),
    module_name="MaxPool2d",
    resolve=_make_pool_resolver("MaxPool2d", 2),
    count_params=_no_params,
    infer=_pool_shape(2),
    macs=_pool_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("kernel_size",),
    prefix="pool",
    memory=MemoryUse("input", extra="indices"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="AvgPool2d",
    display_name="AvgPool2d",
    category="Pooling",
    doc="Average over sliding 2-D windows: y = mean over window of x; per side "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=(*_pool_params(),
            Param("count_include_pad", "bool", True,
                  "Padding zeros count in each average (off: divide by the real values only)")),
    module_name="AvgPool2d",
    resolve=_make_pool_resolver("AvgPool2d", 2),
    count_params=_no_params,
    infer=_pool_shape(2),
    macs=_pool_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("kernel_size",),
    prefix="avgpool",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="AdaptiveAvgPool2d",
    display_name="AdaptiveAvgPool2d",
    category="Pooling",
    doc="Average pooling to a fixed output size (1 = global average pooling).",
    params=(Param("output_size", "ints", 1, "Output height and width", min=1, max=4096, length=2),),
    module_name="AdaptiveAvgPool2d",
    resolve=lambda p, ins, dts: {"output_size": pair(p["output_size"], 2)},
    count_params=_no_params,
    infer=lambda p, ins: (ins[0][0], *pair(p["output_size"], 2)),
    macs=lambda p, ins, out: math.prod(ins[0]),
    input_rank=(3,),
    rank_words="(channels, height, width)",
    prefix="gap",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("other"),
)


# --------------------------------------------------------------------------------------------
# Import: the torch modules and functions that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_call, imports_module, one

_POOL_PARAMS = ("kernel_size", "stride", "padding", "ceil_mode")


@imports_module("torch.nn.MaxPool1d", "torch.nn.MaxPool2d", "torch.nn.AvgPool2d",
                layers=("MaxPool1d", "MaxPool2d", "AvgPool2d"),
                params=(*_POOL_PARAMS, "count_include_pad"))
def _import_pool(m):
    layer = type(m).__name__
    if one(getattr(m, "dilation", 1)) != 1 or getattr(m, "return_indices", False):
        raise Unmapped(layer, "dilation or return_indices")
    out = {"kernel_size": one(m.kernel_size), "stride": one(m.stride),
           "padding": one(m.padding), "ceil_mode": bool(m.ceil_mode)}
    if layer == "AvgPool2d":
        if m.divisor_override is not None:
            raise Unmapped("AvgPool2d", "divisor_override")
        out["count_include_pad"] = m.count_include_pad
    return layer, out


@imports_call("max_pool2d", "avg_pool2d", layers=("MaxPool2d", "AvgPool2d"),
              params=(*_POOL_PARAMS, "count_include_pad"))
def _import_pool_call(call):  # F.max_pool2d / F.avg_pool2d (torch.*)
    what = call.name
    names = (("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
             if what == "max_pool2d" else
             ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
              "divisor_override"))
    got = {**dict(zip(names, call.args[1:])), **call.kwargs}
    if one(got.get("dilation", 1)) != 1 or got.get("return_indices", False) \
            or got.get("divisor_override") is not None:
        raise Unmapped(what, "pooling with dilation, return_indices or divisor_override")
    k = got["kernel_size"]
    stride = got.get("stride")
    params = {"kernel_size": one(k), "stride": one(k if stride is None or stride == [] else stride),
              "padding": one(got.get("padding", 0)), "ceil_mode": bool(got.get("ceil_mode", False))}
    if what == "avg_pool2d":
        params["count_include_pad"] = bool(got.get("count_include_pad", True))
    return ("MaxPool2d" if what == "max_pool2d" else "AvgPool2d"), params


@imports_module("torch.nn.AdaptiveAvgPool2d", layers=("AdaptiveAvgPool2d",),
                params=("output_size",))
def _import_adaptive_avg_pool(m):
    return "AdaptiveAvgPool2d", {"output_size": one(m.output_size)}


@imports_call("adaptive_avg_pool2d", layers=("AdaptiveAvgPool2d",), params=("output_size",))
def _import_adaptive_avg_pool_call(call):
    return "AdaptiveAvgPool2d", {"output_size": one(call.arg(1, "output_size"))}


@imports_call("adaptive_max_pool2d", layers=())
def _import_adaptive_max_pool_call(call):
    raise Unmapped(call.name, "adaptive max pooling (the catalog has no AdaptiveMaxPool2d)")
