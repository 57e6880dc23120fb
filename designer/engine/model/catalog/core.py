"""Core layers: Linear, and GPT-2's Conv1D (a Linear whose weight is stored transposed)."""

from __future__ import annotations

import math

from .schema import MAX_DIM, DataFit, MemoryUse, Param, Shape, _bias, _infer_size, _kw, register


def _linear_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    return p["in_features"] * p["out_features"] * math.prod(out[:-1])


def _resolve_linear(p, ins, dts):
    shape = ins[0]
    kw = _kw(p, "out_features", "bias")
    kw = {"in_features": _infer_size(p, "in_features", shape[-1], "features", "Linear"), **kw}
    return kw


register(
    id="Linear",
    display_name="Linear",
    category="Core",
    doc="Fully connected layer: y = xW^T + b, applied to the last dimension.",
    params=(
        Param("in_features", "int", None, "Size of each input sample (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("out_features", "int", 10, "Size of each output sample", min=1, max=MAX_DIM),
        Param("bias", "bool", True, "Learn an additive bias b"),
    ),
    module_name="Linear",
    resolve=_resolve_linear,
    count_params=lambda kw: kw["in_features"] * kw["out_features"] + _bias(kw, kw["out_features"]),
    infer=lambda p, ins: (*ins[0][:-1], p["out_features"]),
    macs=_linear_macs,
    key_params=("out_features",),
    prefix="fc",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_features"),
)


def _resolve_conv1d(p, ins, dts):
    n = _infer_size(p, "in_features", ins[0][-1], "features", "Conv1D")
    return {"in_features": n, "out_features": p["out_features"]}


register(
    id="Conv1D",
    display_name="Conv1D (GPT-2)",
    category="Core",
    doc="Linear, weight stored transposed: GPT-2's Conv1D (Hugging Face), y = xW + b over the "
    "last dimension, W of shape (in_features, out_features); not a convolution.",
    params=(
        Param("in_features", "int", None, "Size of each input sample (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("out_features", "int", 10, "Size of each output sample", min=1, max=MAX_DIM),
    ),
    module_name="Conv1D",
    helper_module=True,
    resolve=_resolve_conv1d,
    count_params=lambda kw: kw["in_features"] * kw["out_features"] + kw["out_features"],
    infer=lambda p, ins: (*ins[0][:-1], p["out_features"]),
    macs=_linear_macs,
    key_params=("out_features",),
    prefix="conv1d",
    memory=MemoryUse("input"),
    inside="layer",
    data_fit=DataFit("out_features"),
)


# --------------------------------------------------------------------------------------------
# Import: the torch modules and ATen ops that import as these layers (designer import)
# --------------------------------------------------------------------------------------------

from .importers import Unmapped, imports_exported, imports_module, imports_weighted_op, is_tensor


@imports_module("torch.nn.Linear", "timm.layers.linear.Linear", layers=("Linear",),
                params=("out_features", "bias"))
def _import_linear(m):
    return "Linear", {"out_features": m.out_features, "bias": m.bias is not None}


@imports_weighted_op("linear", layers=("Linear",), params=("out_features", "bias"))
def _import_aten_linear(op, p, rank):
    w = p[0] if p else None
    if not is_tensor(w) or w.dim() != 2:
        return None
    return "Linear", {"out_features": w.shape[0], "bias": (p[1] if len(p) > 1 else None)
                      is not None}


@imports_module("transformers.pytorch_utils.Conv1D", layers=("Conv1D",), params=("out_features",))
def _import_hf_conv1d(m):  # GPT-2's: weight (nx, nf), always a bias
    return "Conv1D", {"out_features": m.nf}


@imports_exported("transformers.pytorch_utils.Conv1D", layers=("Conv1D",),
                  params=("out_features",))
def _import_exported_hf_conv1d(g, rank):  # view, addmm(bias, x, weight), view
    w, b = g.own.get("weight"), g.own.get("bias")
    if g.names != ["view", "addmm", "view"] or w is None or b is None or w.dim() != 2:
        raise Unmapped("Conv1D", "a graph other than view, addmm, view on its own weights")
    return "Conv1D", {"out_features": int(w.shape[1])}
