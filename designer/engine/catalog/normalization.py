"""Normalisation and regularisation."""

from __future__ import annotations

from .schema import (
    MAX_DIM,
    DataFit,
    LayerError,
    MemoryUse,
    Param,
    _elementwise_macs,
    _infer_size,
    _no_params,
    _same_shape,
    register,
)


def _bn_params():
    return (
        Param("num_features", "int", None, "Channels to normalise (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=1e-12,
              max=1),
        Param("momentum", "float", 0.1, "Update rate of the running statistics", min=0, max=1),
        Param("affine", "bool", True, "Learn a scale (gamma) and shift (beta)"),
    )


def _make_bn_resolver(label: str):
    def resolve(p, ins, dts):
        n = _infer_size(p, "num_features", ins[0][0], "channels", label)
        return {"num_features": n, "eps": p["eps"], "momentum": p["momentum"],
                "affine": p["affine"]}

    return resolve


register(
    id="BatchNorm1d",
    display_name="BatchNorm1d",
    category="Normalization",
    doc="Batch normalisation of (features) or (channels, length): y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=_bn_params(),
    module_name="BatchNorm1d",
    resolve=_make_bn_resolver("BatchNorm1d"),
    count_params=lambda kw: 2 * kw["num_features"] if kw["affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    input_rank=(1, 2),
    rank_words="(features) or (channels, length)",
    key_params=(),
    prefix="bn",
    memory=MemoryUse("input"),
    inside="norm",
    data_fit=DataFit("input"),
)

register(
    id="BatchNorm2d",
    display_name="BatchNorm2d",
    category="Normalization",
    doc="Batch normalisation per channel of (channels, height, width): y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=_bn_params(),
    module_name="BatchNorm2d",
    resolve=_make_bn_resolver("BatchNorm2d"),
    count_params=lambda kw: 2 * kw["num_features"] if kw["affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=(),
    prefix="bn",
    memory=MemoryUse("input"),
    inside="norm",
    data_fit=DataFit("other"),
)


def _resolve_layernorm(p, ins, dts):
    n = _infer_size(p, "normalized_shape", ins[0][-1], "features in its last dimension", "LayerNorm")
    return {"normalized_shape": n, "eps": p["eps"], "elementwise_affine": p["elementwise_affine"]}


register(
    id="LayerNorm",
    display_name="LayerNorm",
    category="Normalization",
    doc="Layer normalisation over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=(
        Param("normalized_shape", "int", None, "Size of the last dimension (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=0, max=1),
        Param("elementwise_affine", "bool", True, "Learn a scale and shift"),
    ),
    module_name="LayerNorm",
    resolve=_resolve_layernorm,
    count_params=lambda kw: 2 * kw["normalized_shape"] if kw["elementwise_affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    key_params=(),
    prefix="ln",
    memory=MemoryUse("input"),
    inside="norm",
    data_fit=DataFit("input"),
)

def _resolve_rmsnorm(p, ins, dts):
    n = _infer_size(p, "normalized_shape", ins[0][-1], "features in its last dimension", "RMSNorm")
    return {"normalized_shape": n, "eps": p["eps"], "elementwise_affine": p["elementwise_affine"]}


register(
    id="RMSNorm",
    display_name="RMSNorm",
    category="Normalization",
    doc="Root-mean-square normalisation over the last dimension (LLaMA, Qwen2, Mistral, T5): "
    "y = x / sqrt(mean(x^2) + eps) * gamma.",
    params=(
        Param("normalized_shape", "int", None, "Size of the last dimension (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-6, "Added to the mean square for numerical stability", min=0,
              max=1),
        Param("elementwise_affine", "bool", True, "Learn a scale"),
    ),
    module_name="RMSNorm",
    resolve=_resolve_rmsnorm,
    count_params=lambda kw: kw["normalized_shape"] if kw["elementwise_affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    key_params=(),
    prefix="rms",
    memory=MemoryUse("input"),
    inside="norm",
    data_fit=DataFit("input"),
)


def _resolve_layernorm2d(p, ins, dts):
    n = _infer_size(p, "num_channels", ins[0][0], "channels", "LayerNorm2d")
    return {"normalized_shape": n, "eps": p["eps"], "elementwise_affine": p["elementwise_affine"]}


register(
    id="LayerNorm2d",
    display_name="LayerNorm2d",
    category="Normalization",
    doc="Layer normalisation over the channels at each position of (C, H, W), as ConvNeXt's "
    "LayerNorm2d: an nn.LayerNorm applied channels-last.",
    params=(
        Param("num_channels", "int", None, "Channels (auto: from the input)", min=1, max=MAX_DIM,
              inferred=True),
        Param("eps", "float", 1e-6, "Added to the variance for numerical stability", min=0, max=1),
        Param("elementwise_affine", "bool", True, "Learn a scale and shift per channel"),
    ),
    module_name="LayerNorm",
    resolve=_resolve_layernorm2d,
    apply=lambda m, xs, kw: m(xs[0].permute(0, 2, 3, 1)).permute(0, 3, 1, 2),
    code=lambda c: [f"{c.out} = {c.attr}({c.inputs[0]}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)"],
    count_params=lambda kw: 2 * kw["normalized_shape"] if kw["elementwise_affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=(),
    prefix="ln",
    # as before: what its inside keeps is not counted yet (an under-count)
    memory=MemoryUse("nothing"),
    inside="norm",
    data_fit=DataFit("other"),
)


def _resolve_groupnorm(p, ins, dts):
    c = _infer_size(p, "num_channels", ins[0][0], "channels", "GroupNorm")
    if c % p["num_groups"]:
        raise LayerError(
            f"GroupNorm: {c} channels do not split into num_groups {p['num_groups']}: pick a "
            f"group count that divides {c}"
        )
    return {"num_groups": p["num_groups"], "num_channels": c, "eps": p["eps"],
            "affine": p["affine"]}


register(
    id="GroupNorm",
    display_name="GroupNorm",
    category="Normalization",
    doc="Normalises each group of channels per sample: y = (x - mean) / sqrt(var + eps) * gamma "
    "+ beta, statistics over (C/groups, *).",
    params=(
        Param("num_groups", "int", 1, "Groups the channels are split into (must divide them)",
              min=1, max=MAX_DIM),
        Param("num_channels", "int", None, "Channels (auto: from the input)", min=1, max=MAX_DIM,
              inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=1e-12,
              max=1),
        Param("affine", "bool", True, "Learn a scale and shift per channel"),
    ),
    module_name="GroupNorm",
    resolve=_resolve_groupnorm,
    count_params=lambda kw: 2 * kw["num_channels"] if kw["affine"] else 0,
    infer=lambda p, ins: (_resolve_groupnorm(p, ins, []), ins[0])[1],
    macs=_elementwise_macs,
    key_params=("num_groups",),
    prefix="gn",
    memory=MemoryUse("input"),
    inside="norm",
    data_fit=DataFit("other"),
)

register(
    id="StochasticDepth",
    display_name="StochasticDepth",
    category="Normalization",
    doc="Drops a residual branch while training (torchvision.ops.StochasticDepth): y = x * b / (1-p), "
    "b ~ Bernoulli(1-p) per sample (row) or per batch; y = x in eval.",
    params=(
        Param("p", "float", 0.1, "Probability of dropping the branch", min=0, max=1),
        Param("mode", "choice", "row", "row: one draw per sample; batch: one for the whole batch",
              choices=("row", "batch")),
    ),
    module_name="StochasticDepth",
    helper_module=True,
    resolve=lambda p, ins, dts: {"p": p["p"], "mode": p["mode"]},
    count_params=_no_params,
    infer=_same_shape,
    macs=_elementwise_macs,
    key_params=("p", "mode"),
    prefix="drop_path",
    # as before: what its inside keeps is not counted yet (an under-count)
    memory=MemoryUse("nothing"),
    inside="layer",
    data_fit=DataFit("other"),
)

register(
    id="Dropout",
    display_name="Dropout",
    category="Normalization",
    doc="During training, zeroes each element with probability p and scales the rest by 1/(1-p).",
    params=(Param("p", "float", 0.5, "Probability of zeroing an element", min=0, max=0.999),),
    module_name="Dropout",
    resolve=lambda p, ins, dts: {"p": p["p"]},
    count_params=_no_params,
    infer=_same_shape,
    input_dtype="float",
    prefix="dropout",
    memory=MemoryUse("nothing", extra="mask"),
    inside="layer",
    data_fit=DataFit("input"),
)

