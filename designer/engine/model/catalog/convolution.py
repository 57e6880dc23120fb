"""Convolutions: Conv1d, Conv2d, ConvTranspose2d."""

from __future__ import annotations

import math

from .schema import (
    MAX_DIM,
    DataFit,
    Infer,
    LayerError,
    MemoryUse,
    Param,
    Shape,
    _bias,
    _check_window,
    _infer_size,
    _spatial_out,
    pair,
    register,
)


def _conv_shape(dims: int, transposed: bool = False) -> Infer:
    """Exact output shape of a convolution (the formulas of the torch.nn docs)."""

    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = ins[0]
        k, s, pd, d = (pair(p[n], dims) for n in ("kernel_size", "stride", "padding", "dilation"))
        if transposed:
            op = pair(p["output_padding"], dims)
            sp = [(shape[1 + i] - 1) * s[i] - 2 * pd[i] + d[i] * (k[i] - 1) + op[i] + 1
                  for i in range(dims)]
        else:
            sp = [_spatial_out(shape[1 + i], k[i], s[i], pd[i], d[i]) for i in range(dims)]
        return (p["out_channels"], *sp)

    return infer


def _conv_count(kw: dict) -> int:
    return (kw["out_channels"] * (kw["in_channels"] // kw["groups"]) * math.prod(kw["kernel_size"])
            + _bias(kw, kw["out_channels"]))


def _convt_count(kw: dict) -> int:
    return (kw["in_channels"] * (kw["out_channels"] // kw["groups"]) * math.prod(kw["kernel_size"])
            + _bias(kw, kw["out_channels"]))


def _conv_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    k = math.prod(pair(p["kernel_size"], len(out) - 1))
    return (p["in_channels"] // p["groups"]) * k * math.prod(out)


def _convt_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    k = math.prod(pair(p["kernel_size"], len(out) - 1))
    return p["in_channels"] * (p["out_channels"] // p["groups"]) * k * math.prod(ins[0][1:])


def _make_conv_resolver(dims: int, label: str, transposed: bool = False):
    def resolve(p, ins, dts):
        shape = ins[0]
        ch = _infer_size(p, "in_channels", shape[0], "channels", label)
        k, s, pd, d = (pair(p[n], dims) for n in ("kernel_size", "stride", "padding", "dilation"))
        if ch % p["groups"] or p["out_channels"] % p["groups"]:
            raise LayerError(
                f"{label}: in_channels ({ch}) and out_channels ({p['out_channels']}) must both be "
                f"divisible by groups ({p['groups']})"
            )
        if transposed:
            op = pair(p["output_padding"], dims)
            for i in range(dims):
                if op[i] >= max(s[i], d[i]):
                    raise LayerError(f"{label}: output_padding must be smaller than stride or dilation")
                size = (shape[1 + i] - 1) * s[i] - 2 * pd[i] + d[i] * (k[i] - 1) + op[i] + 1
                if size < 1:
                    raise LayerError(f"{label}: padding is too large, the output would be empty")
        else:
            _check_window(label, shape[1:], k, s, pd, d)
        kw = {"in_channels": ch, "out_channels": p["out_channels"], "kernel_size": k, "stride": s,
              "padding": pd}
        if transposed:
            kw["output_padding"] = pair(p["output_padding"], dims)
        kw.update({"dilation": d, "groups": p["groups"], "bias": p["bias"]})
        return kw

    return resolve


def _conv_params(dims: int, default_out: int, default_k: int, transposed: bool = False):
    n = dims
    ps = [
        Param("in_channels", "int", None, "Input channels (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("out_channels", "int", default_out, "Number of filters (output channels)", min=1,
              max=MAX_DIM),
        Param("kernel_size", "ints", default_k, "Size of the filter window", min=1, max=4096,
              length=n),
        Param("stride", "ints", 1, "Step of the filter window", min=1, max=4096, length=n),
        Param("padding", "ints", 0, "Zeros added to each side of the input", min=0, max=4096,
              length=n),
    ]
    if transposed:
        ps.append(Param("output_padding", "ints", 0, "Extra size added to one side of the output",
                        min=0, max=4096, length=n))
    ps += [
        Param("dilation", "ints", 1, "Spacing between filter taps", min=1, max=4096, length=n),
        Param("groups", "int", 1, "Blocked connections from input to output channels", min=1,
              max=MAX_DIM),
        Param("bias", "bool", True, "Learn an additive bias per output channel"),
    ]
    return tuple(ps)


register(
    id="Conv1d",
    display_name="Conv1d",
    category="Convolution",
    doc="1-D convolution over (channels, length): y = W * x + b; "
    "length_out = (length + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.",
    params=_conv_params(1, 16, 3),
    module_name="Conv1d",
    resolve=_make_conv_resolver(1, "Conv1d"),
    count_params=_conv_count,
    infer=_conv_shape(1),
    macs=_conv_macs,
    input_rank=(2,),
    rank_words="(channels, length)",
    key_params=("out_channels", "kernel_size", "stride"),
    prefix="conv",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_channels"),
)

register(
    id="Conv2d",
    display_name="Conv2d",
    category="Convolution",
    doc="2-D convolution over (channels, height, width): y = W * x + b; per side "
    "out = (in + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.",
    params=_conv_params(2, 16, 3),
    module_name="Conv2d",
    resolve=_make_conv_resolver(2, "Conv2d"),
    count_params=_conv_count,
    infer=_conv_shape(2),
    macs=_conv_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("out_channels", "kernel_size", "stride", "padding"),
    prefix="conv",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_channels"),
)

register(
    id="ConvTranspose2d",
    display_name="ConvTranspose2d",
    category="Convolution",
    doc="Transposed 2-D convolution (learned upsampling); per side out = (in-1)*stride - "
    "2*padding + dilation*(kernel_size-1) + output_padding + 1.",
    params=_conv_params(2, 16, 2, transposed=True),
    module_name="ConvTranspose2d",
    resolve=_make_conv_resolver(2, "ConvTranspose2d", transposed=True),
    count_params=_convt_count,
    infer=_conv_shape(2, transposed=True),
    macs=_convt_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("out_channels", "kernel_size", "stride"),
    prefix="deconv",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_channels"),
)


# --------------------------------------------------------------------------------------------
# Import: the torch modules and ATen ops that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_module, imports_weighted_op, is_tensor, one

_CONV_PARAMS = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")


@imports_module("torch.nn.Conv1d", "torch.nn.Conv2d", layers=("Conv1d", "Conv2d"),
                params=_CONV_PARAMS)
def _import_conv(m):
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise Unmapped(type(m).__name__, f"padding {m.padding!r} / padding_mode "
                       f"{m.padding_mode!r} (the designer pads with zeros by a number)")
    return type(m).__name__, {
        "out_channels": m.out_channels, "kernel_size": one(m.kernel_size),
        "stride": one(m.stride), "padding": one(m.padding), "dilation": one(m.dilation),
        "groups": m.groups, "bias": m.bias is not None}


@imports_module("torch.nn.ConvTranspose2d", layers=("ConvTranspose2d",),
                params=(*_CONV_PARAMS, "output_padding"))
def _import_conv_transpose(m):
    return "ConvTranspose2d", {**_import_conv(m)[1], "output_padding": one(m.output_padding)}


def _weight(p):
    """The weight among an exported op's arguments after its input (``p[0]``), or None."""
    w = p[0] if p else None
    return w if is_tensor(w) else None


@imports_weighted_op("conv1d", "conv2d", layers=("Conv1d", "Conv2d"), params=_CONV_PARAMS)
def _import_aten_conv(op, p, rank):
    w = _weight(p)
    if w is None or w.dim() not in (3, 4):
        return None

    def arg(i, default):
        return p[i] if i < len(p) else default

    padding = arg(3, 0)
    if isinstance(padding, str):
        raise Unmapped(op, f"padding {padding!r} (the designer pads with zeros by a number)")
    return ("Conv1d" if w.dim() == 3 else "Conv2d",
            {"out_channels": w.shape[0], "kernel_size": one(list(w.shape[2:])),
             "stride": one(arg(2, 1)), "padding": one(padding), "dilation": one(arg(4, 1)),
             "groups": arg(5, 1), "bias": arg(1, None) is not None})


@imports_weighted_op("conv_transpose2d", layers=("ConvTranspose2d",),
                     params=(*_CONV_PARAMS, "output_padding"))
def _import_aten_conv_transpose(op, p, rank):
    w = _weight(p)
    if w is None or w.dim() != 4:
        return None

    def arg(i, default):
        return p[i] if i < len(p) else default

    groups = arg(5, 1)
    return ("ConvTranspose2d",
            {"out_channels": w.shape[1] * groups, "kernel_size": one(list(w.shape[2:])),
             "stride": one(arg(2, 1)), "padding": one(arg(3, 0)), "dilation": one(arg(6, 1)),
             "groups": groups, "bias": arg(1, None) is not None,
             "output_padding": one(arg(4, 0))})
