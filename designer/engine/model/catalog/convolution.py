"""Convolutions: Conv1d, Conv2d, ConvTranspose2d, and timm's Conv2dSame and StdConv2d."""

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


def _same_pad(size: int, k: int, s: int, d: int) -> int:
    """The padding TensorFlow's "SAME" adds to an axis of ``size`` (both sides together)."""
    return max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)


def _same_padded(p, shape: Shape) -> Shape:
    """The input's shape once padded as SAME pads it."""
    k, s, d = (pair(p[n], 2) for n in ("kernel_size", "stride", "dilation"))
    return (shape[0], *(shape[1 + i] + _same_pad(shape[1 + i], k[i], s[i], d[i])
                        for i in range(2)))


def _resolve_conv_same(p, ins, dts):
    kw = _make_conv_resolver(2, "Conv2dSame")({**p, "padding": 0}, [_same_padded(p, ins[0])],
                                               dts)
    del kw["padding"]
    return kw


def _conv_same_shape(p, ins):
    return _conv_shape(2)({**p, "padding": 0}, [_same_padded(p, ins[0])])


register(
    id="Conv2dSame",
    display_name="Conv2dSame",
    category="Convolution",
    doc="2-D convolution padded as TensorFlow's SAME (timm's tf_ ports): out = ceil(in / "
    "stride), the odd pixel of padding at the bottom and right.",
    params=tuple(p for p in _conv_params(2, 16, 3) if p.name != "padding"),
    module_name="Conv2dSame",
    helper_module=True,
    resolve=_resolve_conv_same,
    count_params=_conv_count,
    infer=_conv_same_shape,
    macs=_conv_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("out_channels", "kernel_size", "stride"),
    prefix="conv",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_channels"),
)


def _resolve_std_conv(p, ins, dts):
    return {**_make_conv_resolver(2, "StdConv2d")(p, ins, dts), "eps": p["eps"]}


register(
    id="StdConv2d",
    display_name="StdConv2d",
    category="Convolution",
    doc="2-D convolution with weight standardisation (BiT's ResNet-V2): each filter is "
    "normalised to mean 0, variance 1 (plus eps) before use.",
    params=(*_conv_params(2, 16, 3),
            Param("eps", "float", 1e-6, "Added to each filter's variance", min=0, max=1)),
    module_name="StdConv2d",
    helper_module=True,
    resolve=_resolve_std_conv,
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


def _resolve_scaled_std_conv(p, ins, dts):
    return {**_make_conv_resolver(2, "ScaledStdConv2d")(p, ins, dts), "gamma": p["gamma"],
            "eps": p["eps"]}


register(
    id="ScaledStdConv2d",
    display_name="ScaledStdConv2d",
    category="Convolution",
    doc="2-D convolution with scaled weight standardisation (NFNets): each filter standardised, "
    "times a learned gain and gamma / sqrt(fan-in).",
    params=(*_conv_params(2, 16, 3),
            Param("gamma", "float", 1.0, "Scale of the standardised filters (the activation's "
                  "gain)", min=0, max=1e6),
            Param("eps", "float", 1e-6, "Added to each filter's variance", min=0, max=1)),
    module_name="ScaledStdConv2d",
    helper_module=True,
    resolve=_resolve_scaled_std_conv,
    count_params=lambda kw: _conv_count(kw) + kw["out_channels"],
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


@imports_module("timm.layers.conv2d_same.Conv2dSame", layers=("Conv2dSame",),
                params=("out_channels", "kernel_size", "stride", "dilation", "groups", "bias"))
def _import_timm_conv_same(m):  # padded for its input in forward; its own padding is 0
    made = _import_conv(m)[1]
    if made.pop("padding") != 0:
        raise Unmapped("Conv2dSame", "a padding of its own besides SAME's")
    return "Conv2dSame", made


@imports_module("timm.layers.std_conv.StdConv2d", layers=("StdConv2d",),
                params=(*_CONV_PARAMS, "eps"))
def _import_timm_std_conv(m):
    return "StdConv2d", {**_import_conv(m)[1], "eps": float(m.eps)}


@imports_module("timm.layers.std_conv.ScaledStdConv2d", layers=("ScaledStdConv2d",),
                params=(*_CONV_PARAMS, "gamma", "eps"))
def _import_timm_scaled_std_conv(m):  # it keeps gamma / sqrt(fan-in) as its scale
    return "ScaledStdConv2d", {**_import_conv(m)[1], "eps": float(m.eps),
                               "gamma": float(m.scale * m.weight[0].numel() ** 0.5)}
