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

def _resolve_layer_scale(p, ins, dts):
    at, what = (0, "channels") if p["channels_first"] else (-1, "features in its last dimension")
    n = _infer_size(p, "dim", ins[0][at], what, "LayerScale")
    return {"dim": n, "init_values": p["init_values"], "channels_first": p["channels_first"]}


register(
    id="LayerScale",
    display_name="LayerScale",
    category="Normalization",
    doc="A learned scale per channel (CaiT, DeiT III, timm's LayerScale): y = x * gamma, over "
    "the last axis, or axis 1 with channels_first; gamma starts at init_values.",
    params=(
        Param("dim", "int", None, "Channels scaled (auto: from the input)", min=1, max=MAX_DIM,
              inferred=True),
        Param("init_values", "float", 1e-5, "The scale's initial value", min=-1e6, max=1e6),
        Param("channels_first", "bool", False, "Scale axis 1 of (C, H, W) (timm's "
              "LayerScale2d) instead of the last axis"),
    ),
    module_name="LayerScale",
    helper_module=True,
    resolve=_resolve_layer_scale,
    count_params=lambda kw: kw["dim"],
    infer=lambda p, ins: (_resolve_layer_scale(p, ins, []), ins[0])[1],
    macs=_elementwise_macs,
    key_params=("init_values",),
    prefix="ls",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("input"),
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


# --------------------------------------------------------------------------------------------
# Import: the torch modules and ops that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import (
    CONVERTERS,
    Made,
    Unmapped,
    imports_call,
    imports_exported,
    imports_module,
    imports_weighted_op,
)


@imports_module("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d",
                layers=("BatchNorm1d", "BatchNorm2d"), params=("eps", "momentum", "affine"))
def _import_batch_norm(m):
    if not m.track_running_stats or m.momentum is None:
        raise Unmapped(type(m).__name__, "batch norm without running statistics or with a "
                       "cumulative momentum")
    return type(m).__name__, {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}


@imports_weighted_op("batch_norm", "_native_batch_norm_legit_no_training",
                     "_native_batch_norm_legit", "native_batch_norm",
                     layers=("BatchNorm1d", "BatchNorm2d"), params=("eps", "momentum", "affine"))
def _import_aten_batch_norm(op, p, rank):
    # (x, weight, bias, mean, var, [training,] momentum, eps, ...); the momentum is the one the
    # module had when exported (0.1 unless set)
    def arg(i, default):
        return p[i] if i < len(p) else default

    at = 5 if op == "_native_batch_norm_legit_no_training" else 6
    momentum, eps = arg(at - 1, 0.1), arg(at, 1e-5)
    if p[2] is None or p[3] is None or momentum is None:
        raise Unmapped("batch_norm", "batch norm without running statistics or with a "
                       "cumulative momentum")
    if rank not in (2, 3, 4):
        return None
    return ("BatchNorm2d" if rank == 4 else "BatchNorm1d",
            {"eps": float(eps), "momentum": float(momentum), "affine": p[0] is not None})


@imports_module("torch.nn.LayerNorm", "torchvision.models.convnext.LayerNorm2d",
                "timm.layers.norm.LayerNorm", "timm.layers.norm.LayerNorm2d",
                layers=("LayerNorm", "LayerNorm2d"), params=("eps", "elementwise_affine"))
def _import_layer_norm(m):
    # torchvision's and timm's LayerNorm2d are an nn.LayerNorm applied channels-last; timm's
    # LayerNorm is nn.LayerNorm calling F.layer_norm itself
    layer = "LayerNorm2d" if type(m).__name__ in ("LayerNorm2d", "LayerNormAct2d") else "LayerNorm"
    if len(m.normalized_shape) != 1:
        raise Unmapped("LayerNorm", f"normalisation over {len(m.normalized_shape)} axes (the "
                       "designer normalises the last one)")
    if m.elementwise_affine and getattr(m, "bias", True) is None:
        raise Unmapped("LayerNorm", "a scale without a shift (bias=False)")
    return layer, {"eps": m.eps, "elementwise_affine": m.elementwise_affine}


@imports_module("torch.nn.RMSNorm", layers=("RMSNorm",), params=("eps", "elementwise_affine"))
def _import_rms_norm(m):
    import torch  # deferred: declaring converters needs no torch; they run with it loaded

    if len(m.normalized_shape) != 1:
        raise Unmapped("RMSNorm", f"normalisation over {len(m.normalized_shape)} axes (the "
                       "designer normalises the last one)")
    # eps=None: torch takes the input dtype's machine epsilon (float32 here)
    eps = float(torch.finfo(torch.float32).eps) if m.eps is None else float(m.eps)
    return "RMSNorm", {"eps": eps, "elementwise_affine": m.elementwise_affine}


# Hugging Face's RMSNorms that are nn.RMSNorm (weight, and eps as variance_epsilon), in float32:
# x * rsqrt(mean(x^2, -1) + eps) * weight. (Gemma's scales by 1 + weight: not these.)
_HF_RMS_NORMS = tuple(f"transformers.models.{m}.modeling_{m}.{cls}" for m, cls in (
    ("llama", "LlamaRMSNorm"), ("qwen2", "Qwen2RMSNorm"), ("qwen3", "Qwen3RMSNorm"),
    ("qwen2_moe", "Qwen2MoeRMSNorm"), ("qwen3_moe", "Qwen3MoeRMSNorm"),
    ("mistral", "MistralRMSNorm"), ("mixtral", "MixtralRMSNorm"), ("phi3", "Phi3RMSNorm"),
    ("granite", "GraniteRMSNorm"), ("t5", "T5LayerNorm"), ("mt5", "MT5LayerNorm"),
))


@imports_module(*_HF_RMS_NORMS, layers=("RMSNorm",), params=("eps", "elementwise_affine"))
def _import_hf_rms_norm(m):
    if tuple(m.weight.shape) != (m.weight.numel(),):
        raise Unmapped(type(m).__name__, "a weight of more than one axis")
    return "RMSNorm", {"eps": float(m.variance_epsilon), "elementwise_affine": True}


@imports_exported(*_HF_RMS_NORMS, layers=("RMSNorm",), params=("eps", "elementwise_affine"))
def _import_exported_hf_rms_norm(g, rank):  # [to], pow 2, mean(-1), add eps, rsqrt, mul ...
    names = [n for n in g.names if n not in ("to", "_to_copy")]
    adds = [op for op, n in zip(g.ops, g.names) if n == "add"]
    w = g.own.get("weight")
    if names != ["pow", "mean", "add", "rsqrt", "mul", "mul"] or w is None or w.dim() != 1 \
            or len(adds) != 1 or not isinstance(adds[0].args[1], float):
        raise Unmapped(g.type_name.rsplit(".", 1)[-1], "a graph other than an RMSNorm's")
    return "RMSNorm", {"eps": adds[0].args[1], "elementwise_affine": True}


@imports_module("timm.layers.norm.RmsNorm", layers=("RMSNorm",),
                params=("eps", "elementwise_affine"))
def _import_timm_rms_norm(m):  # rms_norm(x, shape, weight, eps): x * rsqrt(mean(x^2) + eps) * w
    if len(m.normalized_shape) != 1 or getattr(m, "_fast_norm", False):
        raise Unmapped("RmsNorm", "normalisation over several axes, or a fast norm")
    return "RMSNorm", {"eps": float(m.eps), "elementwise_affine": m.elementwise_affine}


@imports_weighted_op("layer_norm", layers=("LayerNorm",), params=("eps", "elementwise_affine"))
def _import_aten_layer_norm(op, p, rank):  # (x, normalized_shape, weight, bias, eps)
    shape = p[0] if p else []
    w, b = (p[1] if len(p) > 1 else None), (p[2] if len(p) > 2 else None)
    if len(shape) != 1:
        raise Unmapped("LayerNorm", f"normalisation over {len(shape)} axes (the designer "
                       "normalises the last one)")
    if w is not None and b is None:
        raise Unmapped("LayerNorm", "a scale without a shift (bias=False)")
    return "LayerNorm", {"eps": float(p[3] if len(p) > 3 else 1e-5),
                         "elementwise_affine": w is not None}


@imports_exported("torchvision.models.convnext.LayerNorm2d", "timm.layers.norm.LayerNorm2d",
                  layers=("LayerNorm2d",), params=("eps", "elementwise_affine"))
def _import_exported_layer_norm2d(g, rank):  # channels-last layer_norm between two permutes
    ops, phs = g.ops, g.placeholders
    if g.names != ["permute", "layer_norm", "permute"] or len(phs) != 1 \
            or ops[0].args != (phs[0], [0, 2, 3, 1]) or ops[2].args != (ops[1], [0, 3, 1, 2]) \
            or ops[1].args[0] is not ops[0]:
        raise Unmapped("LayerNorm2d", "a graph other than permute, layer_norm, permute")
    found = _import_aten_layer_norm("layer_norm", g.op_args(ops[1]), rank)
    return found and ("LayerNorm2d", found[1])


# Hugging Face's ConvNeXt LayerNorms: nn.LayerNorm, applied channels-last (LayerNorm2d) when
# their data_format is channels_first
_HF_CONVNEXT_NORMS = (
    "transformers.models.convnext.modeling_convnext.ConvNextLayerNorm",
    "transformers.models.convnextv2.modeling_convnextv2.ConvNextV2LayerNorm",
    "transformers.models.dinov3_convnext.modeling_dinov3_convnext.DINOv3ConvNextLayerNorm",
)


@imports_module(*_HF_CONVNEXT_NORMS, layers=("LayerNorm", "LayerNorm2d"),
                params=("eps", "elementwise_affine"))
def _import_hf_convnext_norm(m):
    params = _import_layer_norm(m)[1]
    return ("LayerNorm2d" if m.data_format == "channels_first" else "LayerNorm"), params


@imports_exported(*_HF_CONVNEXT_NORMS, layers=("LayerNorm2d",),
                  params=("eps", "elementwise_affine"))
def _import_exported_hf_convnext_norm(g, rank):  # channels_last: one layer_norm (weighted op)
    return _import_exported_layer_norm2d(g, rank) if g.names != ["layer_norm"] else None


@imports_module("torch.nn.GroupNorm", "timm.layers.norm.GroupNorm", "timm.layers.norm.GroupNorm1",
                layers=("GroupNorm",),
                params=("num_groups", "eps", "affine"))
def _import_group_norm(m):
    return "GroupNorm", {"num_groups": m.num_groups, "eps": m.eps, "affine": m.affine}


@imports_weighted_op("group_norm", layers=("GroupNorm",), params=("num_groups", "eps", "affine"))
def _import_aten_group_norm(op, p, rank):  # (x, num_groups, weight, bias, eps)
    def arg(i, default):
        return p[i] if i < len(p) else default

    return "GroupNorm", {"num_groups": arg(0, 1), "eps": float(arg(3, 1e-5)),
                         "affine": arg(1, None) is not None}


# timm's norms followed by their activation (norm_act.py: BatchNormAct2d in 31 families): the
# norm on its own weights, then ``drop`` (nn.Identity) and ``act``: the norm layer keeps the
# module's name (its keys stay <name>.weight ...), the activation is a layer after it.
_NORM_ACTS = {"BatchNormAct2d": "BatchNorm2d", "GroupNormAct": "GroupNorm",
              "LayerNormAct": "LayerNorm", "LayerNormAct2d": "LayerNorm2d"}
_ACT_LAYERS = ("ReLU", "ReLU6", "SiLU", "GELU", "Hardswish", "Hardsigmoid", "LeakyReLU", "ELU",
               "Mish", "Sigmoid", "Tanh", "SELU", "QuickGELU")


@imports_module(*(f"timm.layers.norm_act.{cls}" for cls in _NORM_ACTS),
                layers=(*dict.fromkeys(_NORM_ACTS.values()), *_ACT_LAYERS),
                params=("eps", "momentum", "affine", "num_groups", "elementwise_affine",
                        "approximate", "negative_slope", "alpha"))
def _import_timm_norm_act(m):
    import torch  # deferred: declaring converters needs no torch; they run with it loaded

    cls = type(m).__name__
    if getattr(m, "_fast_norm", False) or type(m.drop) is not torch.nn.Identity:
        raise Unmapped(cls, "a fast norm or a drop layer after the norm")
    if _NORM_ACTS[cls] == "BatchNorm2d":
        if not m.track_running_stats or m.momentum is None:
            raise Unmapped(cls, "batch norm without running statistics or with a cumulative "
                           "momentum")
        norm = ("BatchNorm2d", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine})
    elif _NORM_ACTS[cls] == "GroupNorm":
        norm = _import_group_norm(m)
    else:
        norm = _import_layer_norm(m)
    if type(m.act) is torch.nn.Identity:
        return norm
    conv = CONVERTERS.for_module(m.act)
    act = conv.run(m.act) if conv is not None else None
    if not isinstance(act, tuple) or act[0] not in _ACT_LAYERS \
            or any(True for _ in m.act.state_dict()):
        raise Unmapped(cls, f"its activation {type(m.act).__name__} is not one of "
                       f"{', '.join(_ACT_LAYERS)}")
    return [norm, Made(act[0], act[1], "{label}_act")]


@imports_module("timm.layers.layer_scale.LayerScale", "timm.layers.layer_scale.LayerScale2d",
                layers=("LayerScale",), params=("init_values", "channels_first"))
def _import_timm_layer_scale(m):
    return "LayerScale", {"init_values": float(m.init_values),
                          "channels_first": type(m).__name__ == "LayerScale2d"}


@imports_exported("timm.layers.layer_scale.LayerScale", "timm.layers.layer_scale.LayerScale2d",
                  layers=("LayerScale",), params=("channels_first",))
def _import_exported_timm_layer_scale(g, rank):  # x * gamma (gamma.view(1, -1, 1, 1))
    gamma = g.own.get("gamma")
    if set(g.own) != {"gamma"} or gamma.dim() != 1 or g.names[-1:] != ["mul"] \
            or not set(g.names) <= {"mul", "view"}:
        raise Unmapped("LayerScale", "a graph other than x * gamma")
    return "LayerScale", {"channels_first": g.type_name.endswith("LayerScale2d")}


@imports_module("torchvision.ops.StochasticDepth", layers=("StochasticDepth",),
                params=("p", "mode"))
def _import_stochastic_depth(m):
    return "StochasticDepth", {"p": m.p, "mode": m.mode}


@imports_module("torch.nn.Dropout", layers=("Dropout",), params=("p",))
def _import_dropout(m):
    return "Dropout", {"p": m.p}


@imports_call("dropout", layers=("Dropout",), params=("p",))
def _import_dropout_call(call):
    import torch  # deferred: declaring converters needs no torch; they run with it loaded

    if not (call.target is torch.nn.functional.dropout or call.aten):  # not x.dropout()
        return None
    return "Dropout", {"p": call.arg(1, "p", 0.5)}
