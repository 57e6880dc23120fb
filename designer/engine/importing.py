"""Import an existing PyTorch model into an editable design (``designer import``).

:func:`import_model` traces a module with ``torch.fx``, one module at a time: the module's own
``forward`` is traced with every submodule it calls kept whole. A submodule the catalog can
represent (``nn.Conv2d``, ``nn.ReLU``, torchvision's ``StochasticDepth`` ...) becomes that layer;
any other submodule becomes a **block use** whose network is the submodule imported the same way,
named after its class (``BasicBlock``). Instances with the same structure share one definition;
the values that differ between them (channels, stride) become block parameters, and instances
that differ in structure (a ResNet stage's first block with its ``downsample``) get a definition
each (``BasicBlock``, ``BasicBlock_2``). An ``nn.Sequential`` numbered 0, 1, ... becomes a
sequential network, so the built design's state_dict keys are the module's own
(``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``). A submodule called with a list of
tensors that its forward concatenates at once (DenseNet's ``_DenseLayer``) takes one tensor: the
caller concatenates the list with a Concat layer.

Functions and operators (``torch.flatten``, ``F.relu``, ``+``, ``+=``, ``torch.cat``,
``x.mean(...)``, ``x[:, 0]``, ``view``/``reshape``/``permute``/``transpose``/``chunk``) map to
catalog layers; a bare parameter (ViT's class token, ConvNeXt's layer scale) becomes a
Parameter layer, the network's own tensor as in the module. A child whose attribute is no name
(RegNet's ``block1-0``) keeps it as the layer's module attribute (``Node.attr``), so every key
of the module's state_dict is the design's. Reshapes hold the sizes of the input shape the model
was imported for. Children that only training mode calls (GoogLeNet's aux heads) make the
model's own forward be traced in training mode: its extra results become auxiliary Outputs
(training only, loss weight :data:`AUX_WEIGHT`).

An ``ExportedProgram`` (a ``.pt2`` file, or ``torch.export`` run on the model when fx cannot
trace its own forward, e.g. a branch on a shape) is unflattened to the model's module tree, and
each module's ATen graph is mapped the same way: one op on a module's own weights is that catalog
layer, a module of a class the catalog has whose forward export decomposed (nn.MultiheadAttention,
LayerNorm2d) is that layer, ATen ops map as their torch functions, and the keys stay the model's.
A block whose own forward fx cannot trace is exported alone on the input it received, the same way
(``ImportReport.via_export_blocks``).

Nothing is dropped silently: every op, module or weight that cannot be mapped is an
:class:`Unsupported` entry of the :class:`ImportReport` with its module path and the source line
fx recorded; ``torch.fx`` failing on data-dependent control flow is one entry that says so.
:func:`import_model` raises :class:`ImportFailed` carrying the report, or with ``partial=True``
stops each network at its first unsupported part.

:func:`load_weights` loads a state_dict file (``torch.load(weights_only=True)``) into a built
design by key and reports missing, unexpected and shape-mismatched keys.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import operator
import re
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn

from .blocks import BLOCK, block_param
from .catalog import attr_problem, name_problem
from .graph import Graph
from .layout import wrapped_positions
from .nodes import kind_of
from .project import Project
from .weights import WeightsFit, match_weights, read_weights

_PROBE_BATCH = 2  # the probe batch: 2, so that the batch axis can be told from the others
# An auxiliary output's loss weight: the model does not say; GoogLeNet's paper used 0.3.
AUX_WEIGHT = 0.3


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass
class Unsupported:
    """One part of the model with no designer equivalent: where (``path``, the module path, ""
    for the top), what (``op``), why (``reason``) and the source line fx recorded."""

    path: str
    op: str
    reason: str
    source: str = ""

    def __str__(self) -> str:
        where = self.path or "(top)"
        return f"{where}: {self.op}: {self.reason}" + (f" [{self.source}]" if self.source else "")


@dataclass
class ImportReport:
    """What an import did: the model, the input shape, the blocks made, the keys whose name or
    shape differ in the design, and everything that could not be mapped."""

    model: str
    input_shape: list[int]
    unsupported: list[Unsupported] = field(default_factory=list)
    blocks: dict[str, int] = field(default_factory=dict)  # network -> uses
    layers: int = 0
    parameters: int = 0
    partial: bool = False
    # The layers feeding auxiliary outputs -> their loss weight: the model returns them in
    # training mode only (GoogLeNet's aux heads), each an Output with that aux_weight.
    aux_outputs: dict[str, float] = field(default_factory=dict)
    # torch.fx could not trace the model's forward (why): it was imported through torch.export,
    # its branches as the input shape takes them
    via_export: str = ""
    # the blocks (module paths) whose own forward torch.fx could not trace: each exported alone
    # on the input it received, so made for this input shape as well
    via_export_blocks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsupported

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        if self.ok:
            aux = (f", {len(self.aux_outputs)} auxiliary outputs (training only)"
                   if self.aux_outputs else "")
            via = (" (through torch.export, for this input shape: torch.fx cannot trace its "
                   "forward)" if self.via_export else "")
            if self.via_export_blocks:
                via += (f" ({', '.join(self.via_export_blocks)} through torch.export, for this "
                        "input shape: torch.fx cannot trace their forward)")
            return (f"{self.model}: {self.layers} layers, {len(self.blocks)} block definitions, "
                    f"{self.parameters:,} parameters{aux}{via}")
        lines = [f"{self.model}: {len(self.unsupported)} part(s) have no designer layer:"]
        lines += [f"- {u}" for u in self.unsupported[:30]]
        if len(self.unsupported) > 30:
            lines.append(f"- and {len(self.unsupported) - 30} more (see the report)")
        return "\n".join(lines)


class ImportFailed(ValueError):
    """The model cannot be imported whole; ``report`` lists what could not be mapped."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report


class _Unmapped(Exception):
    def __init__(self, op: str, reason: str) -> None:
        super().__init__(reason)
        self.op, self.reason = op, reason


# --------------------------------------------------------------------------------------------
# Modules the catalog represents: class -> (type, params)
# --------------------------------------------------------------------------------------------


def _one(v: Any) -> Any:
    """An int for a tuple of equal ints, else a list (catalog ``ints`` values)."""
    if isinstance(v, (tuple, list)):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def _conv(m: nn.Module) -> dict:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise _Unmapped(type(m).__name__, f"padding {m.padding!r} / padding_mode "
                        f"{m.padding_mode!r} (the designer pads with zeros by a number)")
    return {"out_channels": m.out_channels, "kernel_size": _one(m.kernel_size),
            "stride": _one(m.stride), "padding": _one(m.padding), "dilation": _one(m.dilation),
            "groups": m.groups, "bias": m.bias is not None}


def _conv_t(m: nn.Module) -> dict:
    return {**_conv(m), "output_padding": _one(m.output_padding)}


def _bn(m: nn.Module) -> dict:
    if not m.track_running_stats or m.momentum is None:
        raise _Unmapped(type(m).__name__, "batch norm without running statistics or with a "
                        "cumulative momentum")
    return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}


def _pool(m: nn.Module) -> dict:
    if _one(getattr(m, "dilation", 1)) != 1 or getattr(m, "return_indices", False):
        raise _Unmapped(type(m).__name__, "dilation or return_indices")
    out = {"kernel_size": _one(m.kernel_size), "stride": _one(m.stride),
           "padding": _one(m.padding), "ceil_mode": bool(m.ceil_mode)}
    if isinstance(m, nn.AvgPool2d):
        if m.divisor_override is not None:
            raise _Unmapped("AvgPool2d", "divisor_override")
        out["count_include_pad"] = m.count_include_pad
    return out


def _layer_norm(m: nn.Module) -> dict:
    if len(m.normalized_shape) != 1:
        raise _Unmapped("LayerNorm", f"normalisation over {len(m.normalized_shape)} axes (the "
                        "designer normalises the last one)")
    if m.elementwise_affine and getattr(m, "bias", True) is None:
        raise _Unmapped("LayerNorm", "a scale without a shift (bias=False)")
    return {"eps": m.eps, "elementwise_affine": m.elementwise_affine}


def _flatten(start_dim: int = 1, end_dim: int = -1) -> dict:
    if start_dim != 1 or end_dim != -1:
        raise _Unmapped("flatten", f"flatten from dim {start_dim} to {end_dim} (the designer "
                        "flattens all but the batch)")
    return {}


def _mha(m: nn.Module) -> dict:
    if not m.batch_first or not m._qkv_same_embed_dim or m.bias_k is not None \
            or m.add_zero_attn:
        raise _Unmapped("MultiheadAttention", "not batch_first, separate key/value sizes, "
                        "bias_k or add_zero_attn")
    return {"num_heads": m.num_heads, "dropout": m.dropout, "bias": m.in_proj_bias is not None}


def _module_table() -> dict[type, tuple[str, Callable[[nn.Module], dict]]]:
    none: Callable[[nn.Module], dict] = lambda m: {}
    table: dict[type, tuple[str, Callable[[nn.Module], dict]]] = {
        nn.Conv1d: ("Conv1d", _conv), nn.Conv2d: ("Conv2d", _conv),
        nn.ConvTranspose2d: ("ConvTranspose2d", _conv_t),
        nn.Linear: ("Linear", lambda m: {"out_features": m.out_features,
                                         "bias": m.bias is not None}),
        nn.BatchNorm1d: ("BatchNorm1d", _bn), nn.BatchNorm2d: ("BatchNorm2d", _bn),
        nn.LayerNorm: ("LayerNorm", _layer_norm),
        nn.GroupNorm: ("GroupNorm", lambda m: {"num_groups": m.num_groups, "eps": m.eps,
                                               "affine": m.affine}),
        nn.MaxPool1d: ("MaxPool1d", _pool), nn.MaxPool2d: ("MaxPool2d", _pool),
        nn.AvgPool2d: ("AvgPool2d", _pool),
        nn.AdaptiveAvgPool2d: ("AdaptiveAvgPool2d",
                               lambda m: {"output_size": _one(m.output_size)}),
        nn.Dropout: ("Dropout", lambda m: {"p": m.p}),
        nn.Flatten: ("Flatten", lambda m: _flatten(m.start_dim, m.end_dim)),
        nn.GELU: ("GELU", lambda m: {"approximate": m.approximate}),
        nn.LeakyReLU: ("LeakyReLU", lambda m: {"negative_slope": m.negative_slope}),
        nn.ELU: ("ELU", lambda m: {"alpha": m.alpha}),
        nn.Softplus: ("Softplus", lambda m: {"beta": m.beta, "threshold": m.threshold}),
        nn.Softmax: ("Softmax", lambda m: {"dim": m.dim}),
        nn.LogSoftmax: ("LogSoftmax", lambda m: {"dim": m.dim}),
        nn.MultiheadAttention: ("MultiheadAttention", _mha),
        nn.Upsample: ("Upsample", _upsample),
    }
    for cls in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                nn.Mish, nn.SELU, nn.Identity):
        table[cls] = (cls.__name__, none)
    try:
        from torchvision.ops import StochasticDepth
        from torchvision.ops.misc import Permute
    except ImportError:  # torchvision is optional
        return table
    table[StochasticDepth] = ("StochasticDepth", lambda m: {"p": m.p, "mode": m.mode})
    table[Permute] = ("Permute", _permute_module)

    def swin_attention(m: nn.Module) -> dict:  # torchvision's ShiftedWindowAttention(V2)
        cls, dim = type(m).__name__, m.qkv.in_features
        v2 = hasattr(m, "cpb_mlp")
        if type(m.qkv) is not nn.Linear or type(m.proj) is not nn.Linear \
                or m.qkv.out_features != 3 * dim or m.proj.in_features != dim \
                or m.proj.out_features != dim or len(m.window_size) != 2 \
                or len(m.shift_size) != 2 or any(s >= w for s, w in zip(m.shift_size,
                                                                          m.window_size)):
            raise _Unmapped(cls, "projections other than Linear(dim, 3 dim) and Linear(dim, "
                            "dim), or a shift not smaller than the window")
        if v2 and [type(x) for x in m.cpb_mlp] != [nn.Linear, nn.ReLU, nn.Linear] \
                or v2 and (m.cpb_mlp[0].out_features != 512 or m.cpb_mlp[2].bias is not None):
            raise _Unmapped(cls, "a position-bias MLP other than Linear(2, 512), ReLU, "
                            "Linear(512, heads, bias=False)")
        return {"window_size": _one(list(m.window_size)), "shift_size": _one(list(m.shift_size)),
                "num_heads": m.num_heads, "qkv_bias": m.qkv.bias is not None,
                "proj_bias": m.proj.bias is not None,
                "attention_dropout": float(m.attention_dropout), "dropout": float(m.dropout)}

    def patch_merging(m: nn.Module) -> dict:  # torchvision's PatchMerging(V2)
        width = (4 if type(m).__name__ == "PatchMerging" else 2) * m.dim  # V2 norms after
        n = m.norm
        if type(n) is not nn.LayerNorm or tuple(n.normalized_shape) != (width,) \
                or not n.elementwise_affine or n.bias is None \
                or type(m.reduction) is not nn.Linear or m.reduction.bias is not None:
            raise _Unmapped(type(m).__name__, "a norm layer other than nn.LayerNorm (with scale "
                            "and shift), the designer's PatchMerging uses")
        return {"eps": n.eps}

    try:  # Swin's window attention and patch merging, as whole layers
        from torchvision.models import swin_transformer as swin
    except ImportError:  # pragma: no cover - older torchvision
        swin = None
    if swin is not None:
        for cls_ in (swin.ShiftedWindowAttention, swin.ShiftedWindowAttentionV2):
            table[cls_] = (cls_.__name__, swin_attention)
        for cls_ in (swin.PatchMerging, swin.PatchMergingV2):
            table[cls_] = (cls_.__name__, patch_merging)
    try:
        from torchvision.models.convnext import LayerNorm2d
    except ImportError:  # pragma: no cover - older torchvision
        return table
    table[LayerNorm2d] = ("LayerNorm2d", _layer_norm)  # an nn.LayerNorm applied channels-last
    try:
        from torchvision.models.maxvit import RelativePositionalMultiHeadAttention as RelPos
    except ImportError:  # pragma: no cover - older torchvision
        return table
    table[RelPos] = ("RelativePositionAttention", _rel_attention)
    return table


def _rel_attention(m: nn.Module) -> dict:
    if m.size * m.size != m.max_seq_len or m.n_heads * m.head_dim != m.to_qkv.in_features:
        raise _Unmapped(type(m).__name__, "a window that is not square or heads that do not "
                        "split the features")
    return {"head_dim": m.head_dim, "window_size": m.size}


def _upsample(m: nn.Module) -> dict:
    if m.size is not None or m.mode not in ("nearest", "bilinear") or m.align_corners:
        raise _Unmapped("Upsample", "a fixed size, align_corners or a mode other than nearest "
                        "and bilinear")
    scale = _one(m.scale_factor)
    if isinstance(scale, list):
        raise _Unmapped("Upsample", "different scale factors per axis")
    return {"scale_factor": float(scale), "mode": m.mode}


def _permute_module(m: nn.Module) -> dict:
    dims = list(m.dims)
    if dims[0] != 0:
        raise _Unmapped("Permute", "a permutation that moves the batch axis")
    return {"dims": dims[1:]}


# --------------------------------------------------------------------------------------------
# torch.export: an ExportedProgram unflattened into its module tree of ATen graphs
# --------------------------------------------------------------------------------------------


def _exported_types() -> tuple[type, ...]:
    try:
        from torch.export.unflatten import InterpreterModule, UnflattenedModule
    except ImportError:  # pragma: no cover - older torch
        return ()
    return (InterpreterModule, UnflattenedModule)


def _is_exported(m: nn.Module) -> bool:
    """A module of an unflattened ExportedProgram: it holds its own fx ``graph`` of ATen ops."""
    return isinstance(m, _exported_types()) and isinstance(getattr(m, "graph", None),
                                                           torch.fx.Graph)


def _aten(t: Any) -> str | None:
    """An ATen op's name without overload and in-place mark (``aten.relu_.default`` ->
    ``relu``, ``aten._unsafe_view`` -> ``view``); None for anything else."""
    if not isinstance(t, torch._ops.OpOverload):
        return None
    name = t.overloadpacket.__name__
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return {"_unsafe_view": "view", "_softmax": "softmax", "_log_softmax": "log_softmax",
            "alias": "detach", "lift_fresh_copy": "clone"}.get(name, name)


_ATEN_IGNORED = ("_assert_tensor_metadata", "_assert_scalar", "sym_size", "sym_numel",
                 "sym_stride", "sym_constrain_range_for_size", "_assert_async")


def unflatten_program(ep: Any) -> nn.Module:
    """``torch.export.unflatten(ep)``: the program's module tree with the original names (so the
    original state_dict keys), each module an fx graph of ATen ops. The example input's shape
    (batch first) is kept on it for :func:`import_model` and :func:`example_input_shape`."""
    module = torch.export.unflatten(ep)
    flat = [t for t in torch.utils._pytree.tree_leaves(ep.example_inputs or ())
            if isinstance(t, torch.Tensor)]
    if len(flat) == 1:
        module.designer_example_shape = tuple(int(s) for s in flat[0].shape)
    return module


def example_input_shape(module: Any) -> tuple[int, ...] | None:
    """One sample's shape (no batch) of an ExportedProgram's (or its unflattened module's)
    example input, when it has exactly one tensor input; else None."""
    if isinstance(module, torch.export.ExportedProgram):
        module = unflatten_program(module)
    shape = getattr(module, "designer_example_shape", None)
    return tuple(shape[1:]) if shape else None


def model_class_name(module: nn.Module) -> str:
    """The class a module had before export (``type_name()``: torchvision...BasicBlock)."""
    ty = module.type_name() if _is_exported(module) else None
    return str(ty).rsplit(".", 1)[-1] if ty else type(module).__name__


def _graph_copy(module: nn.Module) -> torch.fx.Graph:
    """A copy of an exported module's graph (shape propagation writes into node meta)."""
    graph = torch.fx.Graph()
    out = graph.graph_copy(module.graph, {})
    graph.output(out)
    return graph


def _exported_sequential(module: nn.Module, graph: torch.fx.Graph, names: list[str]) -> bool:
    """An exported nn.Sequential: children 0, 1, ... called in a chain, nothing else."""
    if not names or names != [str(i) for i in range(len(names))]:
        return False
    nodes = [n for n in graph.nodes if n.op != "output"]
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    if isinstance(out, (tuple, list)) and len(out) == 1:
        out = out[0]
    if len(nodes) != len(names) + 1 or nodes[0].op != "placeholder" or out is not nodes[-1]:
        return False
    return all(n.op == "call_module" and n.target == str(i) and n.args == (prev,) and not n.kwargs
               for i, (prev, n) in enumerate(itertools.pairwise(nodes)))


def _aten_layer(module: nn.Module, rank: int | None) -> tuple[str, dict] | None:
    """A child of an unflattened program whose graph is one parameterised op on its own
    parameters (``aten.conv2d(x, self.weight, ...)``): the catalog layer (type, params) it is.
    None when it is not such a module (it then becomes a block)."""
    graph = module.graph
    own = dict(module.state_dict(keep_vars=True))
    if not own or any(True for _ in module.children()):
        return None
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    attrs = {n.name: n.target for n in graph.nodes if n.op == "get_attr"}
    ops = [n for n in graph.nodes if n.op == "call_function"
           and _aten(n.target) not in _ATEN_IGNORED
           and not (n.target is operator.getitem and n.args[1] == 0)]
    if len(phs) != 1 or len(ops) != 1 or ops[0].args[:1] != (phs[0],) \
            or any(t not in own for t in attrs.values()):
        return None
    op = ops[0]
    used = {attrs[a.name] for a in op.args[1:] if isinstance(a, torch.fx.Node) and a.name in attrs}
    if set(own) - used - {"num_batches_tracked"}:
        return None  # state the op does not use: a block shows what uses it
    return _aten_params(_aten(op.target), _op_args(op, attrs, own), rank)


def _op_args(op: torch.fx.Node, attrs: dict[str, str], own: dict[str, Any]) -> list[Any]:
    """An op's arguments after its input, a module's own tensors in place of their get_attr."""
    return [own[attrs[a.name]] if isinstance(a, torch.fx.Node) and a.name in attrs else a
            for a in op.args[1:]]


def _aten_params(name: str | None, p: list[Any], rank: int | None) -> tuple[str, dict] | None:
    """The catalog layer (type, params) of one parameterised ATen op ``name`` whose arguments
    after its input are ``p`` (:func:`_op_args`), on an input of ``rank``; None: no such layer."""

    def arg(i: int, default: Any) -> Any:
        return p[i] if i < len(p) else default

    w = p[0] if p else None
    if name in ("conv1d", "conv2d") and isinstance(w, torch.Tensor) and w.dim() in (3, 4):
        padding = arg(3, 0)
        if isinstance(padding, str):
            raise _Unmapped(name, f"padding {padding!r} (the designer pads with zeros by a "
                            "number)")
        return ("Conv1d" if w.dim() == 3 else "Conv2d",
                {"out_channels": w.shape[0], "kernel_size": _one(list(w.shape[2:])),
                 "stride": _one(arg(2, 1)), "padding": _one(padding),
                 "dilation": _one(arg(4, 1)), "groups": arg(5, 1),
                 "bias": arg(1, None) is not None})
    if name == "conv_transpose2d" and isinstance(w, torch.Tensor) and w.dim() == 4:
        groups = arg(5, 1)
        return ("ConvTranspose2d",
                {"out_channels": w.shape[1] * groups, "kernel_size": _one(list(w.shape[2:])),
                 "stride": _one(arg(2, 1)), "padding": _one(arg(3, 0)),
                 "dilation": _one(arg(6, 1)), "groups": groups,
                 "bias": arg(1, None) is not None, "output_padding": _one(arg(4, 0))})
    if name == "linear" and isinstance(w, torch.Tensor) and w.dim() == 2:
        return "Linear", {"out_features": w.shape[0], "bias": arg(1, None) is not None}
    if name in ("batch_norm", "_native_batch_norm_legit_no_training",
                "_native_batch_norm_legit", "native_batch_norm"):
        # (x, weight, bias, mean, var, [training,] momentum, eps, ...); the momentum is the one
        # the module had when exported (0.1 unless set)
        at = 5 if name == "_native_batch_norm_legit_no_training" else 6
        momentum, eps = arg(at - 1, 0.1), arg(at, 1e-5)
        if p[2] is None or p[3] is None or momentum is None:
            raise _Unmapped("batch_norm", "batch norm without running statistics or with a "
                            "cumulative momentum")
        if rank not in (2, 3, 4):
            return None
        return ("BatchNorm2d" if rank == 4 else "BatchNorm1d",
                {"eps": float(eps), "momentum": float(momentum), "affine": w is not None})
    if name == "layer_norm":  # (x, normalized_shape, weight, bias, eps)
        shape, w, b = arg(0, []), arg(1, None), arg(2, None)
        if len(shape) != 1:
            raise _Unmapped("LayerNorm", f"normalisation over {len(shape)} axes (the designer "
                            "normalises the last one)")
        if w is not None and b is None:
            raise _Unmapped("LayerNorm", "a scale without a shift (bias=False)")
        return "LayerNorm", {"eps": float(arg(3, 1e-5)), "elementwise_affine": w is not None}
    if name == "group_norm":  # (x, num_groups, weight, bias, eps)
        return "GroupNorm", {"num_groups": arg(0, 1), "eps": float(arg(3, 1e-5)),
                             "affine": arg(1, None) is not None}
    return None


_MHA_STATE = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}


def _exported_layer(module: nn.Module, rank: int | None) -> tuple[str, dict] | None:
    """An unflattened child whose class (``type_name()``) the catalog has as one layer while
    export decomposed its forward into several ATen ops (nn.MultiheadAttention, torchvision's
    LayerNorm2d): that layer (type, params), made from the child's own parameters and its
    graph's constants. None for other classes."""
    kind = str(module.type_name() or "")
    graph = module.graph
    own = dict(module.state_dict(keep_vars=True))
    attrs = {n.name: n.target for n in graph.nodes if n.op == "get_attr"}
    ops = [n for n in graph.nodes if n.op == "call_function"
           and _aten(n.target) not in _ATEN_IGNORED]
    names = [_aten(n.target) for n in ops]
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    if kind == "torchvision.models.convnext.LayerNorm2d":  # channels-last layer_norm
        if names != ["permute", "layer_norm", "permute"] or len(phs) != 1 \
                or ops[0].args != (phs[0], [0, 2, 3, 1]) or ops[2].args != (ops[1], [0, 3, 1, 2]) \
                or ops[1].args[0] is not ops[0]:
            raise _Unmapped("LayerNorm2d", "a graph other than permute, layer_norm, permute")
        found = _aten_params("layer_norm", _op_args(ops[1], attrs, own), rank)
        return found and ("LayerNorm2d", found[1])
    if kind != "torch.nn.modules.activation.MultiheadAttention":
        return None
    sdpa = [n for n, name in zip(ops, names) if name == "scaled_dot_product_attention"]
    w = own.get("in_proj_weight")
    first = ops[0] if ops else None
    # batch_first: the input is transposed to (L, N, E) first and the output back at the end
    batch_first = len(phs) == 1 and first is not None and _aten(first.target) == "transpose" \
        and first.args[0] is phs[0] and sorted(first.args[1:3]) == [0, 1]
    if len(sdpa) != 1 or w is None or set(own) - _MHA_STATE or w.shape[0] != 3 * w.shape[1] \
            or ("in_proj_bias" in own) != ("out_proj.bias" in own) or not batch_first \
            or any(a is not None for a in sdpa[0].args[3:4]) or sdpa[0].kwargs.get("attn_mask") \
            is not None or sdpa[0].kwargs.get("is_causal", False) or len(phs) != 1:
        raise _Unmapped("MultiheadAttention", "not batch_first self-attention without a mask, "
                        "separate key/value sizes, bias_k or add_zero_attn")
    dropout = sdpa[0].args[4] if len(sdpa[0].args) > 4 else sdpa[0].kwargs.get("dropout_p", 0.0)
    return "MultiheadAttention", {"num_heads": int(sdpa[0].args[0].meta["val"].shape[1]),
                                  "dropout": float(dropout), "bias": "in_proj_bias" in own}


def export_program(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``torch.export.export(model, args, kwargs, strict=False)`` in eval mode."""
    was = model.training
    model.eval()
    try:
        return torch.export.export(model, args, kwargs or None, strict=False)
    finally:
        model.train(was)


# --------------------------------------------------------------------------------------------
# One traced module -> a raw network
# --------------------------------------------------------------------------------------------


@dataclass
class _Layer:
    name: str
    type: str
    params: dict[str, Any]
    inputs: list[str]
    child: _Net | None = None  # a block use: the imported submodule
    attr: str | None = None  # the module attribute when it cannot be the name (block1-0)


@dataclass
class _Net:
    """A module imported as one network, before blocks are shared."""

    cls: str  # the module's class name
    attr: str  # its attribute in the parent ("" for the top)
    layers: list[_Layer]
    sequential: bool
    ok: bool = True
    network: str = ""  # the definition it uses, once shared
    list_dim: int | None = None  # called with a list of tensors, concatenated along this axis
    args: dict[str, Any] = field(default_factory=dict)


class _Tracer(torch.fx.Tracer):
    """Traces one module's own forward: every submodule it calls stays a call."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return True


def _source(node: torch.fx.Node | None) -> str:
    """The last user frame of the stack fx recorded for a node: ``file:line: code``."""
    text = getattr(node, "stack_trace", None) or ""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [f for f in re.findall(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', text)
              if not f[0].startswith(torch_dir)]
    if not frames:
        return ""
    f, line, _fn, code = frames[-1]
    return f"{f}:{line}: {code.strip()}"


def _exception_source(exc: BaseException) -> str:
    """Where a tracing error happened in the model's own code (the last frame outside torch)."""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(torch_dir) and f.filename != __file__]
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename}:{f.lineno}: {(f.line or '').strip()}"


def _meta(node: Any):
    from torch.fx.passes.shape_prop import TensorMetadata

    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return meta if isinstance(meta, TensorMetadata) else None


def _axis(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


def _snake(text: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", text).lower()


_ALIASES = ("contiguous", "clone", "detach")
_ADD = (operator.add, operator.iadd, torch.add)
_MUL = (operator.mul, operator.imul, torch.mul)


class _Importer:
    def __init__(self, root: nn.Module, report: ImportReport, partial: bool) -> None:
        self.root = root
        self.report = report
        self.partial = partial
        self.table = _module_table()
        self.calls: dict[int, tuple[tuple, dict]] = {}  # id(module) -> first call's (args, kwargs)
        self.outputs: dict[int, Any] = {}  # id(module) -> its output, for modules called once
        self.training_top = False  # the model's forward traced in training mode (aux outputs)
        self.batch = _PROBE_BATCH  # the probe's batch size (an exported program's own)
        # fx failing on the model's own forward: (entry, error), for the torch.export fallback
        self.top_failure: tuple[Unsupported, Exception] | None = None

    # -- probing: the inputs each module receives ------------------------------------------

    def probe(self, *args: Any, training: bool = False, **kwargs: Any) -> Any:
        """Run the model once on ``args`` (``kwargs``) and record each module's first call and
        output. In eval mode; ``training``: again in training mode, for the modules only that
        mode calls (aux heads), with every buffer (BatchNorm statistics) put back afterwards."""
        hooks = []
        counts: dict[int, int] = {}
        known = set(self.calls)

        def hook(module, args, kwargs):  # lists are copied: DenseNet appends to its list
            if id(module) not in known:
                args = tuple(list(a) if isinstance(a, list) else a for a in args)
                self.calls.setdefault(id(module), (args, kwargs))

        def after(module, args, output):
            if id(module) not in known:
                counts[id(module)] = counts.get(id(module), 0) + 1
                self.outputs.setdefault(id(module), output)

        for m in self.root.modules():
            hooks.append(m.register_forward_pre_hook(hook, with_kwargs=True))
            hooks.append(m.register_forward_hook(after))
        was = self.root.training
        saved = {k: v.clone() for k, v in self.root.state_dict().items()} if training else None
        self.root.train(training)
        try:
            with torch.no_grad():
                out = self.root(*args, **kwargs)
        finally:
            self.root.train(was)
            if saved is not None:
                self.root.load_state_dict(saved)
            for h in hooks:
                h.remove()
        # a module called once need not run again while its parent's shapes are propagated
        self.outputs = {k: v for k, v in self.outputs.items()
                        if k in known or counts.get(k) == 1}
        return out

    def lost_in_eval(self) -> bool:
        """Does the model's own forward leave a child with weights uncalled in eval mode
        (GoogLeNet's aux1, aux2: called in training only)?"""
        return any(id(c) not in self.calls and any(True for _ in c.state_dict())
                   for c in self.root.children())

    def unsupported(self, path: str, op: str, reason: str, source: str = "") -> None:
        self.report.unsupported.append(Unsupported(path, op, reason, source))

    # -- one module ------------------------------------------------------------------------

    def import_module(self, module: nn.Module, path: str, attr: str) -> _Net:
        cls = model_class_name(module)
        names = [n for n, _ in module.named_children()]
        exported = _is_exported(module)  # its own graph of ATen ops, nothing to trace
        sequential = (isinstance(module, nn.Sequential)
                      and type(module).forward is nn.Sequential.forward
                      and names == [str(i) for i in range(len(names))]) \
            or exported and _exported_sequential(module, module.graph, names)
        net = _Net(cls, attr, [], sequential)
        call = self.calls.get(id(module))
        if call is None:
            self.unsupported(path, cls, "never called when the model runs")
            net.ok = False
            return net
        args, kwargs = call
        listed = len(args) == 1 and not kwargs and isinstance(args[0], (list, tuple)) \
            and len(args[0]) > 0 and all(isinstance(a, torch.Tensor) for a in args[0]) \
            and not exported
        consts = {} if listed or exported else _constant_args(module, args, kwargs)
        if consts and id(module) not in self.outputs:
            self.unsupported(path, cls, "called more than once with numbers as arguments: "
                             "each call would need a block of its own")
            net.ok = False
            return net
        try:
            if exported:
                graph = _graph_copy(module)
            elif listed:  # one placeholder per tensor of the list
                first = next(iter(inspect.signature(module.forward).parameters))
                graph = _Tracer().trace(module, concrete_args={
                    first: [torch.fx._symbolic_trace.PH] * len(args[0])})
            elif consts:  # numbers (WindowPartition's p): fixed to the values of this call
                graph = _Tracer().trace(module, concrete_args=consts)
                args, kwargs = _drop_constants(graph, module, consts, args, kwargs)
            elif path == "" and self.training_top:  # aux heads: traced as training runs
                was = module.training
                module.train()
                try:
                    graph = _Tracer().trace(module)
                finally:
                    module.train(was)
            else:
                graph = _Tracer().trace(module)
        except Exception as exc:  # noqa: BLE001 - every fx failure becomes a report entry
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            control = "control flow" in str(exc) or "bool" in str(exc) or "iterate" in str(exc)
            why = (f"torch.fx cannot trace its forward: data-dependent control flow (an if, a "
                   f"loop or a conversion that depends on the values of a tensor): {first}"
                   if control else f"torch.fx cannot trace its forward: {first}")
            entry = Unsupported(path, "trace", why, _exception_source(exc))
            net.ok = False
            if path == "" and module is self.root:  # import_model tries torch.export then
                self.top_failure = (entry, exc)
            elif listed or consts or id(module) not in self.outputs:
                # a list, numbers or several calls: one export would not hold them
                self.report.unsupported.append(entry)
            else:  # exported alone on the input it received
                made = _import_exported(module, args, kwargs, self.report, self.partial,
                                        self.batch, entry, path, attr)
                if made is not None:
                    self.report.via_export_blocks.append(path)
                    return made[1]
            return net
        if listed:
            try:
                net.list_dim = _concatenated_list(graph)
            except _Unmapped as exc:
                self.unsupported(path, exc.op, exc.reason)
                net.ok = False
                return net
            args = (torch.cat(list(args[0]), net.list_dim),)
        gm = torch.fx.GraphModule(module, graph)
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        flat = list(args) + [kwargs[p.target] for p in placeholders[len(args):]
                             if p.target in kwargs]
        if len(flat) != len(placeholders) or not all(isinstance(a, torch.Tensor) for a in flat):
            self.unsupported(path, cls, "called with arguments that are not tensors (a list, "
                             "a number or a default value): a block takes tensors only")
            net.ok = False
            return net
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                _ShapeProp(gm, self.outputs).propagate(*flat)
        except Exception as exc:  # noqa: BLE001
            self.unsupported(path, "shapes", f"running the traced forward failed: {exc}",
                             _exception_source(exc))
            net.ok = False
            return net
        finally:
            module.train(was)
        _NetBuilder(self, module, path, net, graph, names).run()
        return net


def _constant_args(module: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call that are plain numbers (or None, a string): forward's parameter
    name -> value. A block takes tensors; such values are fixed in the trace instead."""
    try:
        names = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return {}
    plain = (bool, int, float, str, type(None))
    out = {names[i]: a for i, a in enumerate(args) if i < len(names) and isinstance(a, plain)}
    out.update({k: v for k, v in kwargs.items() if isinstance(v, plain)})
    return out


def _drop_constants(graph: torch.fx.Graph, module: nn.Module, consts: dict[str, Any],
                    args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Remove the placeholders fx keeps for ``concrete_args`` (with the check that each has its
    fixed value); the call's arguments without them."""
    names = list(inspect.signature(module.forward).parameters)
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    for name, ph in zip(names, phs):
        if name not in consts:
            continue
        for check in list(ph.users):  # eq(p, value) -> _assert(eq, ...)
            for user in list(check.users):
                graph.erase_node(user)
            graph.erase_node(check)
        graph.erase_node(ph)
    args = tuple(a for i, a in enumerate(args) if i >= len(names) or names[i] not in consts)
    return args, {k: v for k, v in kwargs.items() if k not in consts}


def _concatenated_list(graph: torch.fx.Graph) -> int:
    """A forward traced with a list of tensors whose only use is ``torch.cat(list, dim)``
    (DenseNet's layers): rewritten in place to take the concatenation, one tensor; returns
    ``dim``. The caller concatenates the list with a Concat layer."""
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    users = {u for p in phs for u in p.users}
    cat = next(iter(users)) if len(users) == 1 else None
    if cat is None or cat.op != "call_function" or cat.target is not torch.cat \
            or list(cat.args[0]) != phs or any(len(p.users) != 1 for p in phs):
        raise _Unmapped("list", "called with a list of tensors used other than concatenated "
                        "at once (torch.cat): a block takes tensors")
    dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    if not isinstance(dim, int) or dim == 0:
        raise _Unmapped("list", f"a list concatenated along axis {dim}")
    with graph.inserting_before(phs[0]):
        x = graph.placeholder("x")
    cat.replace_all_uses_with(x)
    graph.erase_node(cat)
    for p in phs:
        graph.erase_node(p)
    info = getattr(graph._codegen, "pytree_info", None)
    out = next(n for n in graph.nodes if n.op == "output")
    if info is not None and info.out_spec is not None and info.out_spec.is_leaf() \
            and isinstance(out.args[0], (list, tuple)) and len(out.args[0]) == 1:
        out.args = (out.args[0][0],)  # the one tensor returned, flattened by pytree tracing
    graph._codegen = torch.fx.graph.CodeGen()  # plain arguments again
    return dim


def _shape_prop_class() -> type:
    from torch.fx.passes.shape_prop import ShapeProp

    class ShapePropRecorded(ShapeProp):
        """Shape propagation that takes a submodule's output from the probe run instead of
        running it again (each level would otherwise run the whole model once more)."""

        def __init__(self, gm: torch.fx.GraphModule, outputs: dict[int, Any]) -> None:
            super().__init__(gm)
            self.recorded = outputs

        def call_module(self, target, args, kwargs):
            out = self.recorded.get(id(self.fetch_attr(target)))
            return out if out is not None else super().call_module(target, args, kwargs)

    return ShapePropRecorded


def _ShapeProp(gm: torch.fx.GraphModule, outputs: dict[int, Any]):
    return _shape_prop_class()(gm, outputs)


def _single_layer(net: _Net) -> tuple[str, dict] | None:
    """An imported network that is one layer between its input and its output (an exported
    ReLU's ``aten.relu``), or nothing between them (Identity): that layer's (type, params)."""
    if not net.ok or net.list_dim is not None:
        return None
    layers = net.layers
    if [la.type for la in layers] == ["Input", "Output"] and layers[1].inputs == [layers[0].name]:
        return "Identity", {}
    if len(layers) != 3 or layers[0].type != "Input" or layers[2].type != "Output":
        return None
    mid = layers[1]
    if mid.child is not None or mid.type == "Parameter" or kind_of(mid.type).is_block \
            or mid.inputs != [layers[0].name] or layers[2].inputs != [mid.name]:
        return None
    return mid.type, dict(mid.params)


class _NetBuilder:
    """Maps the nodes of one traced module to designer layers."""

    def __init__(self, imp: _Importer, module: nn.Module, path: str, net: _Net,
                 graph: torch.fx.Graph, children: list[str]) -> None:
        self.imp, self.module, self.path, self.net, self.graph = imp, module, path, net, graph
        self.by_fx: dict[str, str] = {}
        self.used: set[str] = set(children) if not net.sequential else set()
        self.used |= {n for n, _ in module.named_parameters(recurse=False)}
        self.chunks: dict[str, tuple[str, int, list[int]]] = {}
        self.called: set[str] = set()
        self.stopped = False
        self.named: set[str] = set()  # children already drawn under their own name
        self.attention: str | None = None

    def fresh(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "layer"
        if not base[0].isalpha():
            base = "m_" + base
        name, i = base, 1
        while name in self.used or name_problem(name):
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def sub(self, target: str) -> str:
        return f"{self.path}.{target}" if self.path else target

    def label(self, node: torch.fx.Node) -> str:
        """A layer's name for an op: an exported graph's node names count through the whole
        program (add__3), so they lose the count and the in-place mark (add)."""
        if not _is_exported(self.module):
            return node.name
        return re.sub(r"_*\d*$", "", node.name) or node.name

    def run(self) -> None:
        net = self.net
        for node in self.graph.nodes:
            if self.stopped:
                break
            try:
                made = self.map(node)
            except _Unmapped as exc:
                target = node.target if node.op in ("call_module", "get_attr") else ""
                self.imp.unsupported(self.sub(target) if target else self.path, exc.op,
                                     exc.reason, _source(node))
                self.fail(node)
                continue
            except KeyError:  # fed by a value that could not be mapped: reported there
                self.fail(node, report=False)
                continue
            if made is None:
                continue
            if isinstance(made, str):
                self.by_fx[node.name] = made
                continue
            net.layers += made
            self.by_fx[node.name] = made[-1].name
            if made[-1].child is not None and not made[-1].child.ok:
                self.fail(node, report=False, keep=True)
        # weights of children never called are lost: report them (parameter-free ones are not)
        for name, child in self.module.named_children():
            if name not in self.called and not isinstance(child, (nn.ModuleList, nn.ModuleDict)) \
                    and any(True for _ in child.state_dict()) and not self.stopped:
                self.imp.unsupported(self.sub(name), type(child).__name__,
                                     "never called in forward: its weights would be lost")
                net.ok = False

    def fail(self, node: torch.fx.Node, report: bool = True, keep: bool = False) -> None:
        self.net.ok = False
        if not keep:
            self.by_fx.pop(node.name, None)
        if self.imp.partial:
            self.stopped = True
            layers = self.net.layers
            if keep:  # the use is whole but its block is not: stop before it
                layers.pop()
            last = next((la.name for la in reversed(layers) if la.type != "Output"), None)
            if last is not None:
                layers.append(_Layer(self.fresh("output"), "Output", {}, [last]))

    def sources(self, node: torch.fx.Node) -> list[str]:
        out: list[str] = []
        for a in node.args:
            items = a if isinstance(a, (list, tuple)) else [a]
            out += [self.by_fx[x.name] for x in items
                    if isinstance(x, torch.fx.Node) and _meta(x) is not None]
        return out

    def map(self, node: torch.fx.Node) -> list[_Layer] | str | None:
        if node.op == "placeholder":
            shape = list(_meta(node).shape[1:]) if _meta(node) is not None else []
            # an exported module's input is named after what fed it (max_pool2d): "input"
            plain = node.name == "x" or _is_exported(self.module) and sum(
                n.op == "placeholder" for n in self.graph.nodes) == 1
            return [_Layer(self.fresh("input" if plain else node.name), "Input",
                           {"shape": shape}, [])]
        if node.op == "output":
            value = node.args[0]
            if _is_exported(self.module) and isinstance(value, (tuple, list)) \
                    and len(value) == 1:  # an exported program returns a flat tuple
                value = value[0]
            if isinstance(value, torch.fx.Node) and value.op == "call_function" \
                    and isinstance(value.target, type) and issubclass(value.target, tuple) \
                    and not value.kwargs:  # a named tuple made in forward (GoogLeNetOutputs)
                value = tuple(value.args)
            if self.path == "" and self.imp.training_top and isinstance(value, (tuple, list)) \
                    and len(value) > 1 and all(isinstance(v, torch.fx.Node)
                                               and _meta(v) is not None for v in value):
                # training's (main, aux2, aux1): the main output, then auxiliary ones
                main = _Layer(self.fresh("output"), "Output", {}, [self.by_fx[value[0].name]])
                aux = [_Layer(self.fresh("aux_output"), "Output", {"aux_weight": AUX_WEIGHT},
                              [self.by_fx[v.name]]) for v in value[1:]]
                self.imp.report.aux_outputs = {a.inputs[0]: AUX_WEIGHT for a in aux}
                return [main, *aux]
            if not isinstance(value, torch.fx.Node) or _meta(value) is None:
                raise _Unmapped("output", "returns something other than one tensor (a tuple, a "
                                "list or a dict): a design's network returns one tensor")
            return [_Layer(self.fresh("output"), "Output", {}, [self.by_fx[value.name]])]
        if node.op == "call_module":
            return self.call_module(node)
        if node.op == "get_attr":
            return self.get_attr(node)
        return self.function(node)

    def call_module(self, node: torch.fx.Node) -> list[_Layer]:
        target = node.target
        module = self.module.get_submodule(target)
        cls = model_class_name(module)
        if "." in target:
            made = self.module_list_use(node)
            if made is not None:
                return made
            raise _Unmapped(cls, f"calls {target}, a module inside a child module (the designer "
                            "keeps each module's calls inside it)")
        has_state = any(True for _ in module.state_dict())
        if target in self.called and has_state:
            raise _Unmapped(cls, "called more than once: weights shared between two places")
        self.called.add(target)
        attr = None
        if self.net.sequential:
            name = self.fresh(_snake(cls))
        elif target in self.named or name_problem(target):
            if has_state and target not in self.named:  # its keys must stay: an attribute apart
                why = attr_problem(target)
                if why:
                    raise _Unmapped(cls, f"the attribute name {target!r} can be neither a layer's "
                                    f"name ({name_problem(target)}) nor its module attribute "
                                    f"({why}): its state_dict keys would change")
                attr = target
            name = self.fresh(target)
        else:
            name = target
            self.named.add(target)
        entry = self.imp.table.get(type(module))
        if entry is None and _is_exported(module):  # one op on its own weights: that layer
            call = self.imp.calls.get(id(module))
            first = call[0][0] if call and call[0] else None
            rank = first.dim() if isinstance(first, torch.Tensor) else None
            found = _exported_layer(module, rank) or _aten_layer(module, rank)
            if found is not None:
                entry = (found[0], lambda m: found[1])
        if entry is not None:
            type_, make = entry
            params = make(module)
            srcs = self.sources(node)
            if type_ == "MultiheadAttention" and not _is_exported(module):
                srcs = self.self_attention(node)
            if len(srcs) != 1 or node.kwargs and type_ != "MultiheadAttention":
                raise _Unmapped(cls, "called with several tensors or keyword arguments")
            return [_Layer(name, type_, params, srcs, attr=attr)]
        if type(module).forward is nn.Module.forward or isinstance(module, nn.ModuleList):
            raise _Unmapped(cls, "a container without a forward of its own")
        child = self.imp.import_module(module, self.sub(target), target)
        srcs = self.sources(node)
        if not srcs:
            raise _Unmapped(cls, "takes no tensor input")
        if _is_exported(module) and len(srcs) == 1 and not has_state:
            layer = _single_layer(child)  # an exported ReLU, MaxPool2d ...: that layer
            if layer is not None:
                return [_Layer(name, layer[0], layer[1], srcs, attr=attr)]
        if child.list_dim is not None and len(srcs) > 1:  # the list it concatenates, as a layer
            cat = _Layer(self.fresh(f"{target}_input"), "Concat", {"dim": child.list_dim}, srcs)
            return [cat, _Layer(name, BLOCK, {}, [cat.name], child, attr)]
        return [_Layer(name, BLOCK, {}, srcs, child, attr)]

    def module_list_chains(self) -> dict[str, list[torch.fx.Node]]:
        """The nn.ModuleList children whose items are all called once, in order, as a chain
        (``for layer in self.layers: x = layer(x)``): attribute -> the calls, in order."""
        if getattr(self, "_chains", None) is not None:
            return self._chains
        self._chains: dict[str, list[torch.fx.Node]] = {}
        calls: dict[str, list[torch.fx.Node]] = {}
        for n in self.graph.nodes:
            if n.op == "call_module" and "." in n.target:
                calls.setdefault(n.target.split(".", 1)[0], []).append(n)
        for head, nodes in calls.items():
            child = getattr(self.module, head, None)
            if not isinstance(child, nn.ModuleList) or type(child) is not nn.ModuleList \
                    or len(nodes) != len(child) \
                    or [n.target for n in nodes] != [f"{head}.{i}" for i in range(len(child))]:
                continue
            first = nodes[0]
            ok = len(first.args) == 1 and isinstance(first.args[0], torch.fx.Node) \
                and not first.kwargs
            for a, b in itertools.pairwise(nodes):
                ok = ok and b.args == (a,) and not b.kwargs and set(a.users) == {b}
            if ok:
                self._chains[head] = nodes
        return self._chains

    def module_list_use(self, node: torch.fx.Node) -> list[_Layer] | str | None:
        """A call of an item of an nn.ModuleList chain: the whole list as one block use named
        after the list, whose network is sequential (its keys are the list's: ``layers.0.*``);
        the later items' calls are that use. None: not such a chain."""
        head = node.target.split(".", 1)[0]
        nodes = self.module_list_chains().get(head)
        if nodes is None or self.net.sequential or name_problem(head):
            return None
        if node is not nodes[0]:  # the same use: only its last item's output is used outside
            return head if head in self.called else None
        if head in self.named:
            return None
        items = getattr(self.module, head)
        seq = nn.Sequential(*items)  # the same modules: their probed calls and outputs hold
        seq.training = items.training  # import_module restores this mode on the items
        self.keep = [*getattr(self, "keep", []), seq]  # keep id(seq) unique while importing
        call = self.imp.calls.get(id(items[0]))
        if call is not None:
            self.imp.calls[id(seq)] = call
        self.called.add(head)
        self.named.add(head)
        child = self.imp.import_module(seq, self.sub(head), head)
        srcs = self.sources(node)
        if len(srcs) != 1:
            raise _Unmapped("ModuleList", "its first item takes no tensor input")
        return [_Layer(head, BLOCK, {}, srcs, child)]

    def self_attention(self, node: torch.fx.Node) -> list[str]:
        q, k, v = (list(node.args) + [node.kwargs.get(n) for n in ("key", "value")])[:3] \
            if len(node.args) < 3 else node.args[:3]
        extra = {k_: v_ for k_, v_ in node.kwargs.items() if k_ not in ("key", "value")}
        if not (q is k is v) or extra.get("need_weights", True) or \
                any(extra.get(n) is not None for n in ("attn_mask", "key_padding_mask")) \
                or any(u.op != "call_function" or u.target is not operator.getitem
                       or (u.args[1] != 0 and u.users) for u in node.users):
            raise _Unmapped("MultiheadAttention", "attention other than self-attention with "
                            "need_weights=False and no mask, whose output [0] is used")
        self.attention = node.name
        return [self.by_fx[q.name]]

    def get_attr(self, node: torch.fx.Node) -> list[_Layer] | None:
        try:
            tensor = self.module.get_parameter(node.target)
        except AttributeError:
            if not any(_meta(u) is not None for u in node.users):
                return None
            raise _Unmapped("get_attr", f"{node.target} is a buffer or constant tensor used in "
                            "forward (only learnable parameters become Parameter layers)")
        if "." in node.target:
            raise _Unmapped("get_attr", f"{node.target} belongs to a child module")
        ranks = {len(_meta(u).shape) for u in node.users if _meta(u) is not None}
        if ranks == {tensor.dim()} and tensor.shape[0] == 1:  # ViT's class_token (1, 1, d)
            shape, batch_axis = list(tensor.shape[1:]), True
        elif ranks == {tensor.dim() + 1}:  # ConvNeXt's layer_scale (d, 1, 1) times (N, d, h, w)
            shape, batch_axis = list(tensor.shape), False
        else:
            raise _Unmapped("get_attr", f"{node.target} used at ranks {sorted(ranks)}, not as a "
                            "per-sample tensor")
        # the layer's name is the parameter's key (or its module attribute, as for a module)
        attr = None if not name_problem(node.target) else node.target
        if attr is not None and attr_problem(attr):
            raise _Unmapped("get_attr", f"the parameter name {node.target!r} can name neither a "
                            f"layer nor an attribute ({attr_problem(attr)})")
        name = node.target if attr is None else self.fresh(node.target)  # reserved in __init__
        return [_Layer(name, "Parameter", {"shape": shape, "init": "zeros",
                                           "batch_axis": batch_axis}, [], attr=attr)]

    def function(self, node: torch.fx.Node) -> list[_Layer] | str | None:
        t, args, kw = node.target, node.args, node.kwargs
        aten = _aten(t)  # an ATen op of an exported program: named as its torch function
        what = aten or getattr(t, "__name__", str(t))
        if aten in _ATEN_IGNORED:
            return None
        if aten == "add" and kw.get("alpha", 1) != 1:
            raise _Unmapped("add", "add with alpha (x + alpha * y)")
        out = _meta(node)
        x = args[0] if args else None
        src = self.by_fx.get(x.name) if isinstance(x, torch.fx.Node) else None
        if what == "getitem" and isinstance(x, torch.fx.Node) \
                and x.name == self.attention:
            return self.by_fx[x.name]
        if aten == "split" and isinstance(args[1] if len(args) > 1 else None, int):
            dim = _axis(args[2] if len(args) > 2 else kw.get("dim", 0), len(_meta(x).shape))
            if dim < 1:
                raise _Unmapped("split", "a split along the batch")
            self.chunks[node.name] = (self.by_fx[x.name], dim,
                                      [m.shape[dim] for m in node.meta["tensor_meta"]])
            return None
        if what == "chunk":
            n = args[1] if len(args) > 1 else kw["chunks"]
            dim = _axis(args[2] if len(args) > 2 else kw.get("dim", 0), len(_meta(x).shape))
            if dim < 1:
                raise _Unmapped("chunk", "chunks along the batch")
            sizes = [m.shape[dim] for m in node.meta["tensor_meta"]]
            if len(sizes) != n:
                raise _Unmapped("chunk", "an uneven chunk")
            self.chunks[node.name] = (self.by_fx[x.name], dim, sizes)
            return None
        if out is None:  # sizes, shape checks: values that only feed arguments
            if what in ("_assert", "size", "dim", "getattr", "getitem", "eq", "floordiv", "mul",
                        "add", "sub", "_assert_scalar") or t in (operator.getitem,):
                return None
            if any(_meta(u) is not None for u in node.users) or not node.users:
                raise _Unmapped(what, "a value that is not one tensor")
            return None
        if what == "getitem" and x.name in self.chunks:
            source, dim, sizes = self.chunks[x.name]
            start = sum(sizes[: args[1]])
            return [_Layer(self.fresh(self.label(node)), "Slice",
                           {"dim": dim, "start": start, "end": start + sizes[args[1]], "step": 1},
                           [source])]
        if t in _ADD or what in ("add", "add_", "__iadd__"):
            return self.merge(node, "Add", what)
        if t in _MUL or what in ("mul", "mul_"):
            return self.merge(node, "Multiply", what)
        if t is torch.cat or what == "cat":
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            rank = len(out.shape)
            dim = _axis(dim, rank)
            if dim < 1:
                raise _Unmapped("cat", "concatenation along the batch")
            srcs = self.sources(node)
            if len(srcs) == 1:  # one tensor (an exported DenseNet layer's first call): itself
                return srcs[0]
            return [_Layer(self.fresh("concat"), "Concat", {"dim": dim}, srcs)]
        if _meta(x) is None:
            raise _Unmapped(what, "an operation on something other than a tensor")
        if src is None:
            raise KeyError(x.name)
        rank = len(_meta(x).shape)
        if what in _ALIASES:
            return src
        if what in ("dropout",) and (t is torch.nn.functional.dropout or aten):
            p = args[1] if len(args) > 1 else kw.get("p", 0.5)
            return self.one(node, "Dropout", {"p": p}, src)
        simple = {"relu": "ReLU", "relu_": "ReLU", "relu6": "ReLU6", "sigmoid": "Sigmoid",
                  "tanh": "Tanh", "silu": "SiLU", "hardswish": "Hardswish",
                  "hardsigmoid": "Hardsigmoid", "gelu": "GELU", "mish": "Mish", "selu": "SELU"}
        if what in simple and (isinstance(t, str) or aten or t.__module__ in (
                "torch.nn.functional", "torch", None) or t in (torch.relu, torch.sigmoid,
                                                                torch.tanh)):
            if what == "gelu" and kw.get("approximate", "none") != "none":
                return self.one(node, "GELU", {"approximate": kw["approximate"]}, src)
            return self.one(node, simple[what], {}, src)
        if what == "hardtanh" and (args[1:3] == (0.0, 6.0) or
                                   (kw.get("min_val"), kw.get("max_val")) == (0.0, 6.0)):
            return self.one(node, "ReLU6", {}, src)
        if what == "flatten":
            return self.one(node, "Flatten", _flatten(*args[1:], **kw), src)
        if what == "adaptive_avg_pool2d":
            size = args[1] if len(args) > 1 else kw["output_size"]
            return self.one(node, "AdaptiveAvgPool2d", {"output_size": _one(size)}, src)
        if what in ("max_pool2d", "avg_pool2d"):  # F.max_pool2d / F.avg_pool2d (torch.*)
            names = (("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      "return_indices") if what == "max_pool2d" else
                     ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override"))
            got = {**dict(zip(names, args[1:])), **kw}
            if _one(got.get("dilation", 1)) != 1 or got.get("return_indices", False) \
                    or got.get("divisor_override") is not None:
                raise _Unmapped(what, "pooling with dilation, return_indices or "
                                "divisor_override")
            k = got["kernel_size"]
            stride = got.get("stride")
            params = {"kernel_size": _one(k),
                      "stride": _one(k if stride is None or stride == [] else stride),
                      "padding": _one(got.get("padding", 0)),
                      "ceil_mode": bool(got.get("ceil_mode", False))}
            if what == "avg_pool2d":
                params["count_include_pad"] = bool(got.get("count_include_pad", True))
            return self.one(node, "MaxPool2d" if what == "max_pool2d" else "AvgPool2d", params,
                            src)
        if what == "adaptive_max_pool2d":
            raise _Unmapped(what, "adaptive max pooling (the catalog has no AdaptiveMaxPool2d)")
        if what in ("softmax", "log_softmax"):
            dim = args[1] if len(args) > 1 else kw.get("dim")
            if dim is None:
                raise _Unmapped(what, "softmax without dim")
            return self.one(node, "Softmax" if what == "softmax" else "LogSoftmax",
                            {"dim": dim}, src)
        if what in ("view", "reshape"):
            if out.shape[0] != self.imp.batch:
                raise _Unmapped(what, "a reshape across the batch")
            return self.one(node, "Reshape", {"shape": list(out.shape[1:])}, src)
        if what == "permute":
            dims = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
            dims = [_axis(d, rank) for d in (dims or kw["dims"])]
            if dims[0] != 0:
                raise _Unmapped(what, "a permutation that moves the batch axis")
            return self.one(node, "Permute", {"dims": dims[1:]}, src)
        if what in ("transpose", "swapaxes", "swapdims"):
            a, b = (_axis(d, rank) for d in args[1:3])
            if min(a, b) < 1:
                raise _Unmapped(what, "a transpose with the batch axis")
            dims = list(range(rank))
            dims[a], dims[b] = b, a
            return self.one(node, "Permute", {"dims": dims[1:]}, src)
        if what == "expand":
            layer = next((la for la in self.net.layers if la.name == src), None)
            if layer is None or layer.type != "Parameter" \
                    or tuple(out.shape[1:]) != tuple(_meta(x).shape[1:]):
                raise _Unmapped(what, "expand other than a parameter over the batch")
            return src
        if what == "mean":
            return self.mean(node, src, rank)
        if what == "getitem":
            return self.index(node, src)
        if aten == "select":  # aten.select.int(x, dim, index)
            d = _axis(args[1], rank)
            if d < 1:
                raise _Unmapped(what, "a select along the batch")
            return self.one(node, "Select", {"dim": d, "index": args[2]}, src)
        if aten == "slice":  # aten.slice.Tensor(x, dim, start, end, step)
            d = _axis(args[1] if len(args) > 1 else 0, rank)
            start, end = (args[2] if len(args) > 2 else None), (args[3] if len(args) > 3 else None)
            step = args[4] if len(args) > 4 else 1
            if d < 1:
                raise _Unmapped(what, "a slice along the batch")
            if start in (None, 0) and (end is None or end >= _meta(x).shape[d]) and step == 1:
                return src  # the whole axis (x[:, :])
            if end is not None and end >= _meta(x).shape[d]:
                end = None
            return self.one(node, "Slice", {"dim": d, "start": start or 0, "end": end,
                                            "step": step}, src)
        raise _Unmapped(what, "no designer layer for this function")

    def one(self, node: torch.fx.Node, type_: str, params: dict, src: str) -> list[_Layer]:
        return [_Layer(self.fresh(self.label(node)), type_, params, [src])]

    def merge(self, node: torch.fx.Node, type_: str, what: str) -> list[_Layer]:
        srcs = self.sources(node)
        if len(srcs) != 2 or not all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
            raise _Unmapped(what, f"{what} with a number (the designer's {type_} merges tensors)")
        return [_Layer(self.fresh(self.label(node)), type_, {}, srcs)]

    def mean(self, node: torch.fx.Node, src: str, rank: int) -> list[_Layer]:
        x = node.args[0]
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is None:
            raise _Unmapped("mean", "a mean over every axis")
        dims = sorted({_axis(d, rank) for d in ([dims] if isinstance(dims, int) else dims)},
                      reverse=True)
        keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if keep or dims[-1] < 1:
            raise _Unmapped("mean", "a mean keeping its axes or over the batch")
        layers, prev = [], src
        if len(dims) > 1 and dims == list(range(rank - 1, rank - 1 - len(dims), -1)):
            # trailing axes (x.mean([2, 3])): flattened and averaged at once, in torch's order
            kept = list(_meta(x).shape[1:dims[-1]])
            layers.append(_Layer(self.fresh(self.label(node) + "_flat"), "Reshape",
                                 {"shape": [*kept, -1]}, [prev]))
            prev, dims = layers[-1].name, [dims[-1]]
        for d in dims:
            layers.append(_Layer(self.fresh(self.label(node)), "Mean", {"dim": d}, [prev]))
            prev = layers[-1].name
        return layers

    def index(self, node: torch.fx.Node, src: str) -> list[_Layer]:
        index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        full = slice(None)
        picks = [(d, i) for d, i in enumerate(index) if i != full]
        if len(picks) != 1 or picks[0][0] < 1 or Ellipsis in index:
            raise _Unmapped("getitem", f"indexing {index} (one axis after the batch only)")
        d, i = picks[0]
        if isinstance(i, int):
            return self.one(node, "Select", {"dim": d, "index": i}, src)
        if isinstance(i, slice) and all(isinstance(v, int | None) for v in (i.start, i.stop,
                                                                             i.step)):
            return self.one(node, "Slice", {"dim": d, "start": i.start or 0, "end": i.stop,
                                            "step": i.step or 1}, src)
        raise _Unmapped("getitem", f"indexing {index}")


# --------------------------------------------------------------------------------------------
# Sharing definitions: instances with one structure -> one block with parameters
# --------------------------------------------------------------------------------------------


def _height(net: _Net) -> int:
    return 1 + max((_height(la.child) for la in net.layers if la.child), default=-1)


def _skeleton(net: _Net) -> str:
    """The structure of a network without the values that may differ between uses."""
    parts = [net.cls, str(net.sequential)]
    for la in net.layers:
        if la.child is not None:
            keys = sorted(la.child.args)
            parts.append(f"{la.name}|{la.attr}|Block|{la.child.network}|{keys}|{la.inputs}")
        elif la.type == "Input":
            parts.append(f"{la.name}|Input|{la.inputs}")
        else:
            values = {k: v for k, v in la.params.items() if not _scalar(v)}
            parts.append(f"{la.name}|{la.attr}|{la.type}|{sorted(la.params)}|{values}|"
                         f"{la.inputs}")
    return "\n".join(parts)


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, bool)


def _slots(net: _Net) -> dict[tuple[str, str, str], Any]:
    """The values that may become block parameters: (layer, where, key) -> value."""
    out: dict[tuple[str, str, str], Any] = {}
    for la in net.layers:
        if la.child is not None:
            out.update({(la.name, "args", k): v for k, v in la.child.args.items()})
        elif la.type not in ("Input", "Output"):
            out.update({(la.name, "params", k): v for k, v in la.params.items() if _scalar(v)})
    return out


def _param_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    return "float"


def _share(top: _Net, project_networks: dict[str, Graph], report: ImportReport) -> None:
    """Give every net below ``top`` a definition: the same structure shares one network, values
    that differ become block parameters bound by each use's ``args``."""
    nets: list[_Net] = []

    def collect(n: _Net) -> None:
        for la in n.layers:
            if la.child is not None:
                collect(la.child)
        nets.append(n)

    collect(top)
    nets.pop()  # the top is the model itself
    by_height: dict[int, list[_Net]] = {}
    for n in nets:
        by_height.setdefault(_height(n), []).append(n)
    taken = {"model"}
    for h in sorted(by_height):
        groups: dict[str, list[_Net]] = {}
        for n in by_height[h]:
            groups.setdefault(_skeleton(n), []).append(n)
        for members in groups.values():
            first = members[0]
            base = first.cls.lstrip("_")  # torchvision's private classes: _DenseLayer
            if base == "Sequential" or name_problem(base):
                base = re.sub(r"[^A-Za-z0-9_]", "_", first.attr.title().replace("_", "")) \
                    or "Sequential"
                if not base[0].isalpha() or name_problem(base):
                    base = "Sequential"
            name, i = base, 2
            while name in taken or name_problem(name):
                name, i = f"{base}_{i}", i + 1
            taken.add(name)
            values = [_slots(m) for m in members]
            differ = [s for s in values[0] if any(v.get(s) != values[0][s] for v in values[1:])]
            # slots with the same values at every use share one parameter (planes); an integer
            # multiple of another is a reference with mul (a bottleneck's planes * 4)
            declared: dict[str, tuple[list[Any], str]] = {}
            refs: dict[tuple[str, str, str], dict] = {}
            for s in differ:
                col = [v[s] for v in values]
                hit = next((p for p, (c, _) in declared.items() if c == col), None)
                if hit is not None:
                    refs[s] = {"ref": hit}
                    continue
                if _param_type(col) == "int":
                    for p, (c, t) in declared.items():
                        if t == "int" and all(b and a % b == 0 for a, b in zip(col, c)):
                            mul = {a // b for a, b in zip(col, c)}
                            if len(mul) == 1 and mul != {1}:
                                refs[s] = {"ref": p, "mul": mul.pop()}
                                break
                    if s in refs:
                        continue
                pname = s[2] if s[2] not in declared else f"{s[0]}_{s[2]}"
                j = 2
                while pname in declared:
                    pname, j = f"{s[0]}_{s[2]}_{j}", j + 1
                declared[pname] = (col, _param_type(col))
                refs[s] = {"ref": pname}
            graph = _graph(first, refs)
            if declared:
                try:
                    graph.set_block_params([block_param(p, t, c[0]) for p, (c, t)
                                            in declared.items()])
                except ValueError:  # a name exported code reserves: one definition per variant
                    graph = None
            if graph is None:  # pragma: no cover - rare names
                declared, refs = {}, {}
                graph = _graph(first, refs)
            graph.sequential = first.sequential
            project_networks[name] = graph
            report.blocks[name] = len(members)
            for k, m in enumerate(members):
                m.network = name
                m.args = {p: c[k] for p, (c, t) in declared.items()}


def _graph(net: _Net, refs: dict[tuple[str, str, str], dict]) -> Graph:
    g = Graph()
    for la in net.layers:
        if la.child is not None:
            args = {k: refs.get((la.name, "args", k), v) for k, v in la.child.args.items()}
            params = {"block": la.child.network, **({"args": args} if args else {})}
        else:
            params = {k: refs.get((la.name, "params", k), v) for k, v in la.params.items()}
        g.add_node(la.type, la.name, params, id=la.name, attr=la.attr)
        for port, src in enumerate(la.inputs):
            g.connect(src, la.name, port)
    return g


# --------------------------------------------------------------------------------------------
# The public functions
# --------------------------------------------------------------------------------------------


def import_model(module: Any, input_shape: tuple[int, ...] | list[int] | None, name: str = "",
                 partial: bool = False) -> tuple[Project, ImportReport]:
    """An editable design of ``module`` for inputs of ``input_shape`` (one sample, no batch),
    and the report of the import. Raises :class:`ImportFailed` listing what cannot be mapped,
    unless ``partial``: then each network stops at its first unsupported part.

    ``module`` may be a ``torch.export.ExportedProgram`` (or :func:`unflatten_program`'s module):
    its ATen graphs are mapped instead of tracing, and ``input_shape`` None means its example
    input's. When torch.fx cannot trace the model's own forward (control flow on a shape), the
    model is exported (``torch.export.export(strict=False)`` on the probe input) and imported so.
    """
    source = module
    if isinstance(module, torch.export.ExportedProgram):
        module = unflatten_program(module)
    example = getattr(module, "designer_example_shape", None) if _is_exported(module) else None
    if input_shape is None:
        if example is None:
            raise ValueError("no input shape given and the model holds no example input")
        input_shape = example[1:]
    name = name or model_class_name(module)
    report = ImportReport(name, [int(s) for s in input_shape], partial=partial)
    imp = _Importer(module, report, partial)
    if example is not None and list(example[1:]) == list(input_shape):
        imp.batch = example[0]  # an exported program runs at its own batch size
    x = torch.randn(imp.batch, *input_shape)
    try:
        imp.probe(x)
        if imp.lost_in_eval():  # heads that run in training only (GoogLeNet's aux1, aux2)
            out = imp.probe(x, training=True)
            # only when training returns more tensors than eval's one (else the child is unused
            # and reported as such, and training-only branches are not baked into the design)
            imp.training_top = isinstance(out, tuple) and len(out) > 1 and all(
                isinstance(t, torch.Tensor) for t in out)
    except Exception as exc:  # noqa: BLE001
        made = (f" (the exported program was made for inputs of shape {list(example[1:])})"
                if example is not None else "")
        report.unsupported.append(Unsupported("", "forward", f"the model does not run on inputs "
                                              f"of shape {list(input_shape)}{made}: {exc}",
                                              _exception_source(exc)))
        raise ImportFailed(report) from None
    top = imp.import_module(module, "", "")
    if imp.top_failure is not None:  # fx cannot trace the model's forward: torch.export can?
        imp, top = _export_fallback(module, x, report, partial, imp.top_failure)
        module = imp.root
    if report.unsupported and not partial:
        raise ImportFailed(report)
    networks: dict[str, Graph] = {}
    _share(top, networks, report)
    model = _graph(top, {})
    model.sequential = top.sequential
    ordered = {"model": model, **dict(reversed(list(networks.items())))}
    for g in ordered.values():
        for nid, pos in wrapped_positions(g).items():
            g.move(nid, pos)
    for n in model.inputs():
        n.params["shape"] = [int(s) for s in input_shape]
    report.layers = sum(len(g.nodes) for g in ordered.values())
    report.parameters = sum(p.numel() for p in module.parameters())
    what = f"{type(source).__module__}.{type(source).__qualname__}"
    if isinstance(source, torch.export.ExportedProgram) or _is_exported(source):
        what = f"an ExportedProgram of {model_class_name(module)}"
    project = Project(name=name, description=f"Imported from {what} for inputs of shape "
                      f"{list(input_shape)} by designer import.", networks=ordered)
    return project, report


def _export_fallback(model: nn.Module, x: torch.Tensor, report: ImportReport, partial: bool,
                     failure: tuple[Unsupported, Exception]) -> tuple[_Importer, _Net]:
    """torch.fx could not trace the model's own forward: export it on the probe input (its
    branches taken for that input's shape) and import the unflattened program. When export
    fails too, the report says both failed."""
    entry, _fx_error = failure
    made = _import_exported(model, (x,), {}, report, partial, x.shape[0], entry)
    if made is None:
        return _Importer(model, report, partial), _Net(type(model).__name__, "", [], False, False)
    report.via_export = entry.reason
    return made


def _import_exported(model: nn.Module, args: tuple, kwargs: dict, report: ImportReport,
                     partial: bool, batch: int, entry: Unsupported, path: str = "",
                     attr: str = "") -> tuple[_Importer, _Net] | None:
    """``model`` (the whole model, or a block at ``path``) exported on the input it receives
    (``args``, ``kwargs``), unflattened and imported: an importer of the program and the net,
    named after the model's class. The unflattened module tree has the model's names, so a
    block's keys stay its own. None when export fails or its program does not run: ``entry``
    (fx's failure) then says so too and is in the report."""
    try:
        unflat = unflatten_program(export_program(model, *args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow, unsupported ops
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        entry.reason += f"; torch.export failed too ({type(exc).__name__}: {first})"
        report.unsupported.append(entry)
        return None
    imp = _Importer(unflat, report, partial)
    imp.batch = batch
    try:
        imp.probe(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        entry.reason += f"; its torch.export program does not run: {exc}"
        report.unsupported.append(entry)
        return None
    net = imp.import_module(unflat, path, attr)
    net.cls = model_class_name(model)
    return imp, net


def build_design(project: Project, network: str = "model", device: str | None = None
                 ) -> nn.Module:
    """The built model of one network of a project (on the meta device: structure only)."""
    from .build import build_model

    graph = project.networks[network]
    if device == "meta":
        with torch.device("meta"):
            return build_model(graph)
    return build_model(graph)


#: What loading a state_dict into a design found (:class:`designer.engine.weights.WeightsFit`).
WeightsReport = WeightsFit


def check_state_dict(model: nn.Module, state: dict[str, Any]) -> WeightsReport:
    """The state_dict matched against the design by name and shape (nothing loaded)."""
    return match_weights(model, state)


class _NeedsPickle(Exception):  # not a RuntimeError: torch.export.load swallows those
    pass


@contextlib.contextmanager
def _tensors_only():
    """While loading a .pt2 file: every ``torch.load`` is weights-only and the other ways
    torch.export's loader unpickles (torchbind and opaque objects) refuse. torch.export.load
    falls back to ``torch.load(weights_only=False)`` when a weights-only load fails: here that
    fallback raises :class:`_NeedsPickle` instead. (Patched on the torch module, restored
    after: a load elsewhere at that moment is only held to weights-only as well.)"""
    import pickle

    real_load = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        wanted = kwargs.pop("weights_only", None)
        try:
            return real_load(*args, weights_only=True, **kwargs)
        except pickle.UnpicklingError:
            if wanted is False:  # torch asked to unpickle: refused
                raise _NeedsPickle("a weights-only load failed") from None
            raise

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NeedsPickle("a pickled object")

    patched: list[tuple[Any, str, Any]] = [(torch, "load", load),
                                           (torch._C, "_pickle_load_obj", refuse)]
    try:
        from torch.export.pt2_archive import _package
        patched.append((_package, "pickle", type("NoPickle", (), {"loads": staticmethod(refuse)})))
    except ImportError:  # pragma: no cover - older torch
        pass
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patched if hasattr(obj, attr)]
    for obj, attr, new in patched:
        if hasattr(obj, attr):
            setattr(obj, attr, new)
    try:
        yield
    finally:
        for obj, attr, old in saved:
            setattr(obj, attr, old)


def load_program(path: str | Path) -> Any:
    """The ExportedProgram of a ``.pt2`` file (``torch.export.save``), read as tensors and
    program text only: a file whose weights, constants or example inputs would need unpickling
    is refused (ValueError), as :func:`read_weights` refuses such state_dicts."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with _tensors_only():
            return torch.export.load(str(path))
    except _NeedsPickle:
        raise ValueError(f"{path} holds objects other than tensors: not loaded, it would need "
                         "unpickling (only tensors and the program are read from a .pt2 file)"
                         ) from None
    except Exception as exc:  # noqa: BLE001 - not a .pt2 archive, a newer format ...
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ValueError(f"{path}: not an ExportedProgram file torch.export can load ({first})"
                         ) from None


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> WeightsReport:
    """Load a state_dict file into a built design by key. With ``strict`` nothing is loaded
    unless every key matches (ValueError with the report's message); otherwise the matching
    keys are loaded and the report says what was not."""
    from .build import upgrade_state_dict

    state = upgrade_state_dict(model, read_weights(path))
    report = check_state_dict(model, state)
    if strict and not report.ok:
        raise ValueError(f"{path} does not fit the design: {report.message()}")
    bad = {k for k, *_ in report.mismatched}
    model.load_state_dict({k: v for k, v in state.items() if k not in bad
                           and k not in report.unexpected}, strict=False)
    return report


def save_weights(state: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write tensors only (no code, no pickled objects), loadable with ``weights_only=True``.
    A folder that does not exist yet is made (``proj/r18.weights.pt`` for a new project)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone().contiguous() for k, v in state.items()}, path)
    return path


def weights_path(project_file: str | Path) -> Path:
    """``<stem>.weights.pt`` beside a project file (``net.dnn.json`` -> ``net.weights.pt``)."""
    p = Path(project_file)
    stem = p.name[: -len(".dnn.json")] if p.name.endswith(".dnn.json") else p.stem
    return p.with_name(f"{stem}.weights.pt")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ImportFailed", "ImportReport", "Unsupported", "WeightsReport", "build_design",
           "check_state_dict", "count_parameters", "example_input_shape", "export_program",
           "import_model", "load_program", "load_weights", "model_class_name", "read_weights",
           "save_weights", "unflatten_program", "weights_path"]
