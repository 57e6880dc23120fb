"""Activations."""

from __future__ import annotations

import functools
import math

from .schema import (
    MAX_DIM,
    DataFit,
    LayerError,
    MemoryUse,
    Param,
    _elementwise_macs,
    _kw,
    _no_params,
    _same_shape,
    fmt_shape,
    register,
)


def _activation(id_: str, module: str, doc: str, params: tuple[Param, ...] = (),
                args: tuple[str, ...] = (), prefix: str = "", *, keeps: str,
                inside: str = "activation", values: str = "values") -> None:
    """An element-wise activation: its size is its input's; ``keeps`` is what autograd keeps for
    its backward ("input" or "output"), ``inside`` how look-inside shows it, ``values`` what its
    output is for the data-fit check."""
    register(
        id=id_,
        display_name=id_,
        category="Activation",
        doc=doc,
        params=params,
        module_name=module,
        resolve=lambda p, ins, dts: _kw(p, *args),
        count_params=_no_params,
        infer=_same_shape,
        macs=_elementwise_macs,
        key_params=args,
        prefix=prefix or id_.lower(),
        memory=MemoryUse(keeps),
        inside=inside,
        data_fit=DataFit("input", values),
    )


def _resolve_dim(p, ins, dts, *, label):
    nd = len(ins[0]) + 1
    if not -nd <= p["dim"] < nd:
        raise LayerError(f"{label}: dim {p['dim']} is out of range for a {nd}-D input (with batch)")
    if p["dim"] in (0, -nd):
        raise LayerError(f"{label}: dim 0 is the batch; use 1 or -1")
    return {"dim": p["dim"]}


_activation("ReLU", "ReLU", "Rectified linear unit: y = max(0, x).", prefix="relu",
            keeps="output", inside="relu_like")
_activation("LeakyReLU", "LeakyReLU", "y = x if x > 0 else negative_slope * x.",
            (Param("negative_slope", "float", 0.01, "Slope for negative inputs", min=0, max=1),),
            ("negative_slope",), prefix="lrelu", keeps="input")
_activation("ELU", "ELU", "y = x if x > 0 else alpha * (exp(x) - 1).",
            (Param("alpha", "float", 1.0, "Saturation value for negative inputs", min=0,
                   max=100),), ("alpha",), keeps="input")
_activation("GELU", "GELU", "Gaussian error linear unit: y = x * Phi(x).",
            (Param("approximate", "choice", "none", "Exact, or the tanh approximation",
                   choices=("none", "tanh")),), ("approximate",), keeps="input")
_activation("Sigmoid", "Sigmoid", "Logistic function: y = 1 / (1 + exp(-x)).",
            keeps="output", values="probabilities")
_activation("Tanh", "Tanh", "Hyperbolic tangent: y = tanh(x), in (-1, 1).", keeps="output")
_activation("ReLU6", "ReLU6", "ReLU capped at 6 (MobileNetV2): y = min(max(0, x), 6).",
            prefix="relu6_", keeps="input", inside="relu_like")
_activation("SiLU", "SiLU", "Sigmoid linear unit (swish; EfficientNet): y = x * sigmoid(x).",
            keeps="input")
_activation("Hardswish", "Hardswish", "Piecewise swish (MobileNetV3): y = x * ReLU6(x + 3) / 6.",
            keeps="input")
_activation("Hardsigmoid", "Hardsigmoid",
            "Piecewise sigmoid (MobileNetV3 gates): y = ReLU6(x + 3) / 6.", keeps="input")
_activation("Mish", "Mish", "y = x * tanh(softplus(x)).", keeps="input")
_activation("SELU", "SELU", "Self-normalising ELU: y = 1.0507 * (x if x > 0 else "
            "1.67326 * (exp(x) - 1)).", keeps="input")
_activation("Softplus", "Softplus", "Smooth ReLU: y = log(1 + exp(beta * x)) / beta, and y = x "
            "where beta * x > threshold.",
            (Param("beta", "float", 1.0, "Sharpness: larger is closer to ReLU", min=0.001,
                   max=100),
             Param("threshold", "float", 20.0, "Above beta * x > threshold the output is x",
                   min=0, max=100)),
            ("beta", "threshold"), keeps="input")

register(
    id="QuickGELU",
    display_name="QuickGELU",
    category="Activation",
    doc="GELU approximated with a sigmoid (CLIP, Hugging Face's quick_gelu): "
    "y = x * sigmoid(1.702 * x).",
    module_name="QuickGELU",
    helper_module=True,
    resolve=lambda p, ins, dts: {},
    count_params=_no_params,
    infer=_same_shape,
    macs=_elementwise_macs,
    prefix="quick_gelu",
    memory=MemoryUse("input"),
    inside="activation",
    data_fit=DataFit("input"),
)


def _resolve_prelu(p, ins, dts):
    n, channels = p["num_parameters"], ins[0][0]
    if n not in (1, channels):
        raise LayerError(
            f"PReLU: num_parameters {n} must be 1 (one slope shared) or the number of channels, "
            f"{channels} (axis 1 of the input {fmt_shape(ins[0])}): set it to 1 or {channels}"
        )
    return {"num_parameters": n, "init": p["init"]}


register(
    id="PReLU",
    display_name="PReLU",
    category="Activation",
    doc="Leaky ReLU with a learned slope a (one, or one per channel): y = x if x > 0 else a * x.",
    params=(
        Param("num_parameters", "int", 1, "Learned slopes: 1 (shared) or the number of channels",
              min=1, max=MAX_DIM),
        Param("init", "float", 0.25, "Initial slope for negative inputs", min=0, max=1),
    ),
    module_name="PReLU",
    resolve=_resolve_prelu,
    count_params=lambda kw: kw["num_parameters"],
    infer=lambda p, ins: (_resolve_prelu(p, ins, []), ins[0])[1],
    macs=_elementwise_macs,
    key_params=("num_parameters",),
    prefix="prelu",
    memory=MemoryUse("input"),
    inside="activation",
    data_fit=DataFit("input"),
)

register(
    id="Identity",
    display_name="Identity",
    category="Core",
    doc="Passes its input through unchanged: y = x (a placeholder, e.g. a removed head).",
    module_name="Identity",
    resolve=lambda p, ins, dts: {},
    count_params=_no_params,
    infer=_same_shape,
    macs=lambda p, ins, out: 0,
    input_dtype="any",
    prefix="identity",
    memory=MemoryUse("nothing", output="view"),
    inside="layer",
    data_fit=DataFit("input"),
)

def parameter_size(kwargs: dict) -> tuple[int, ...]:
    """The stored size of a Parameter layer's tensor: (1, *shape), or shape without the batch
    axis (build, code export and old state_dicts' conversion read it here)."""
    shape = tuple(kwargs["shape"])
    return (1, *shape) if kwargs.get("batch_axis", True) else shape


register(
    id="Parameter",
    display_name="Parameter",
    category="Core",
    doc="A learnable tensor with no input (class token, position embedding, layer scale): "
    "y = W repeated over the batch, (N, *shape); W is the network's own nn.Parameter, key <name>.",
    params=(
        Param("shape", "shape", [1, 16], "The tensor's shape, without the batch dimension"),
        Param("init", "choice", "normal", "Initial values: zeros, ones, constant (value), "
              "normal(0, std), uniform(-std, std), or normal(0, std) cut to [-2, 2]",
              choices=("zeros", "ones", "constant", "normal", "uniform", "trunc_normal")),
        Param("std", "float", 0.02, "Spread of normal, uniform and trunc_normal", min=0,
              max=1e6),
        Param("value", "float", 1.0, "Every initial value, for init constant (ConvNeXt's layer "
              "scale: 1e-6)", min=-1e6, max=1e6),
        Param("batch_axis", "bool", True, "Stored as (1, *shape), as ViT's class token is; off: "
              "as shape, as ConvNeXt's layer scale (dim, 1, 1) is", saved_if_set=True),
    ),
    num_inputs=0,
    module_name="learned_tensor",
    bare_parameter=True,
    resolve=lambda p, ins, dts: {"shape": tuple(p["shape"]), "init": p["init"], "std": p["std"],
                                 "value": p["value"], "batch_axis": p["batch_axis"]},
    # expanded over the batch of the model's first input (build and codegen hand a source layer
    # that input)
    apply=lambda m, xs, kw: m.expand(xs[0].size(0), *kw["shape"]),
    code=lambda c: [(f"{c.out} = {c.attr}.expand("
                    f"{', '.join([f'{c.inputs[0]}.size(0)', *map(str, c.kwargs['shape'])])})")],
    count_params=lambda kw: math.prod(kw["shape"]),
    infer=lambda p, ins: tuple(p["shape"]),
    macs=lambda p, ins, out: 0,
    key_params=("shape", "init"),
    prefix="param",
    memory=MemoryUse("nothing", output="weight"),
    inside="layer",
    data_fit=DataFit("other"),
)

for _id, _mod, _doc, _values in (
    ("Softmax", "Softmax", "y_i = exp(x_i) / sum_j exp(x_j) along dim (probabilities).",
     "probabilities"),
    ("LogSoftmax", "LogSoftmax", "y_i = x_i - log(sum_j exp(x_j)) along dim (pairs with NLL loss).",
     "log_probabilities"),
):
    register(
        id=_id,
        display_name=_id,
        category="Activation",
        doc=_doc,
        params=(Param("dim", "int", 1, "Dimension to normalise over (1: first after the batch)",
                      min=-8, max=8),),
        module_name=_mod,
        resolve=functools.partial(_resolve_dim, label=_id),
        count_params=_no_params,
        infer=_same_shape,
        macs=_elementwise_macs,
        key_params=("dim",),
        prefix=_id.lower(),
        memory=MemoryUse("output"),
        inside="activation",
        data_fit=DataFit("input", _values),
    )


# --------------------------------------------------------------------------------------------
# Import: the torch modules and functions that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import (
    Unmapped,
    imports_call,
    imports_exported,
    imports_module,
    imports_weighted_op,
)

_PLAIN = ("ReLU", "ReLU6", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "Mish", "SELU",
          "Identity")


@imports_module(*(f"torch.nn.{name}" for name in _PLAIN), layers=_PLAIN)
def _import_plain(m):  # no parameters: the layer is the class
    return type(m).__name__, {}


@imports_module("torch.nn.GELU", layers=("GELU",), params=("approximate",))
def _import_gelu(m):
    return "GELU", {"approximate": m.approximate}


@imports_module("torch.nn.PReLU", layers=("PReLU",), params=("num_parameters", "init"))
def _import_prelu(m):
    return "PReLU", {"num_parameters": m.num_parameters, "init": float(m.init)}


@imports_weighted_op("prelu", "_prelu_kernel", layers=("PReLU",), params=("num_parameters",))
def _import_aten_prelu(op, p, rank):  # an exported PReLU: (x, weight)
    return "PReLU", {"num_parameters": int(p[0].numel())}


@imports_module("torch.nn.LeakyReLU", layers=("LeakyReLU",), params=("negative_slope",))
def _import_leaky_relu(m):
    return "LeakyReLU", {"negative_slope": m.negative_slope}


@imports_module("torch.nn.ELU", layers=("ELU",), params=("alpha",))
def _import_elu(m):
    return "ELU", {"alpha": m.alpha}


@imports_module("torch.nn.Softplus", layers=("Softplus",), params=("beta", "threshold"))
def _import_softplus(m):
    return "Softplus", {"beta": m.beta, "threshold": m.threshold}


@imports_module("torch.nn.Softmax", "torch.nn.LogSoftmax", layers=("Softmax", "LogSoftmax"),
                params=("dim",))
def _import_softmax(m):
    return type(m).__name__, {"dim": m.dim}


_FUNCTIONS = {"relu": "ReLU", "relu_": "ReLU", "relu6": "ReLU6", "sigmoid": "Sigmoid",
              "tanh": "Tanh", "silu": "SiLU", "hardswish": "Hardswish",
              "hardsigmoid": "Hardsigmoid", "gelu": "GELU", "mish": "Mish", "selu": "SELU"}


@imports_call(*_FUNCTIONS, layers=tuple(dict.fromkeys(_FUNCTIONS.values())),
              params=("approximate",))
def _import_activation_call(call):  # F.relu, torch.relu, x.relu(), aten.relu_ ...
    import torch  # deferred: declaring converters needs no torch; they run with it loaded

    t = call.target
    # F.gelu is a builtin of torch._C._nn (F.relu a Python function of torch.nn.functional)
    if not (isinstance(t, str) or call.aten or t.__module__ in ("torch.nn.functional", "torch",
                                                                "torch._C._nn", None)
            or t in (torch.relu, torch.sigmoid, torch.tanh)):
        return None  # a function of the model's own of that name
    if call.name == "gelu" and call.arg(1, "approximate", "none") != "none":
        return "GELU", {"approximate": call.arg(1, "approximate")}
    return _FUNCTIONS[call.name], {}


@imports_call("hardtanh", layers=("ReLU6",))
def _import_hardtanh_call(call):  # F.hardtanh(x, 0, 6): ReLU6
    args, kw = call.args, call.kwargs
    if args[1:3] == (0.0, 6.0) or (kw.get("min_val"), kw.get("max_val")) == (0.0, 6.0):
        return "ReLU6", {}
    return None


@imports_call("softmax", "log_softmax", layers=("Softmax", "LogSoftmax"), params=("dim",))
def _import_softmax_call(call):
    dim = call.arg(1, "dim")
    if dim is None:
        raise Unmapped(call.name, "softmax without dim")
    return ("Softmax" if call.name == "softmax" else "LogSoftmax"), {"dim": dim}


# Hugging Face's activation classes (transformers.activations, its ACT2CLS), each the layer it
# computes; through torch.export too, where most of them are several ATen ops.
_HF_ACTIVATIONS = {
    "GELUActivation": ("GELU", {"approximate": "none"}),  # F.gelu (or its erf formula)
    "NewGELUActivation": ("GELU", {"approximate": "tanh"}),  # the tanh formula, written out
    "FastGELUActivation": ("GELU", {"approximate": "tanh"}),
    "GELUTanh": ("GELU", {"approximate": "tanh"}),
    "PytorchGELUTanh": ("GELU", {"approximate": "tanh"}),
    "QuickGELUActivation": ("QuickGELU", {}),
    "SiLUActivation": ("SiLU", {}),
    "MishActivation": ("Mish", {}),
    "LinearActivation": ("Identity", {}),
}
_HF_ACTIVATION_PATHS = tuple(f"transformers.activations.{name}" for name in _HF_ACTIVATIONS)
_HF_ACTIVATION_LAYERS = tuple(dict.fromkeys(layer for layer, _ in _HF_ACTIVATIONS.values()))


def _hf_activation(path: str) -> tuple[str, dict]:
    layer, params = _HF_ACTIVATIONS[path.rsplit(".", 1)[-1]]
    return layer, dict(params)


@imports_module(*_HF_ACTIVATION_PATHS, layers=_HF_ACTIVATION_LAYERS, params=("approximate",))
def _import_hf_activation(m):
    return _hf_activation(type(m).__name__)


@imports_exported(*_HF_ACTIVATION_PATHS, layers=_HF_ACTIVATION_LAYERS, params=("approximate",))
def _import_exported_hf_activation(g, rank):
    if g.own:
        return None  # not the class's own forward
    return _hf_activation(g.type_name)


# timm's activation classes (timm.layers.activations, made by create_act_layer where torch has
# no class of that name): the layer each computes
_TIMM_ACTIVATIONS = {
    "GELU": ("GELU", {"approximate": "none"}), "GELUTanh": ("GELU", {"approximate": "tanh"}),
    "QuickGELU": ("QuickGELU", {}), "Swish": ("SiLU", {}), "Mish": ("Mish", {}),
    "Sigmoid": ("Sigmoid", {}), "Tanh": ("Tanh", {}), "HardSwish": ("Hardswish", {}),
    "HardSigmoid": ("Hardsigmoid", {}),
}


@imports_module(*(f"timm.layers.activations.{name}" for name in _TIMM_ACTIVATIONS),
                layers=tuple(dict.fromkeys(layer for layer, _ in _TIMM_ACTIVATIONS.values())),
                params=("approximate",))
def _import_timm_activation(m):
    layer, params = _TIMM_ACTIVATIONS[type(m).__name__]
    return layer, dict(params)


@imports_module("timm.layers.activations.PReLU", layers=("PReLU",),
                params=("num_parameters", "init"))
def _import_timm_prelu(m):
    return _import_prelu(m)


@imports_exported(*(f"timm.layers.activations.{name}" for name in _TIMM_ACTIVATIONS),
                  layers=tuple(dict.fromkeys(layer for layer, _ in _TIMM_ACTIVATIONS.values())),
                  params=("approximate",))
def _import_exported_timm_activation(g, rank):  # several ATen ops for hard_swish, quick_gelu ...
    if g.own:
        return None
    layer, params = _TIMM_ACTIVATIONS[g.type_name.rsplit(".", 1)[-1]]
    return layer, dict(params)
