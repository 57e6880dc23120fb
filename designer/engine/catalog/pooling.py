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

