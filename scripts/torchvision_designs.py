"""Write designer projects for torchvision's classification models.

    .venv/bin/python scripts/torchvision_designs.py resnet18 out/        # out/resnet18.dnn.json
    .venv/bin/python scripts/torchvision_designs.py --size 96 vgg11_bn out/

The torchvision model is built with ``weights=None`` (nothing is downloaded) and traced with
``torch.fx``; torch.nn modules and a few torchvision ones (StochasticDepth, ConvNeXt's
LayerNorm2d, ViT's EncoderBlock) stay whole as leaves. Each leaf, bare parameter and traced
function call is mapped to designer layers through the tables below, named after its module
path (``layer1.0.conv1`` -> ``layer1_0_conv1``), so the engine model's state_dict keys follow
from torchvision's by :func:`design_key`. Shape propagation on a sample of the size being drawn
gives reshapes their sizes and drops values that only feed arguments (sizes, shape asserts), so
a design is drawn for one input size. Whatever cannot be mapped raises :class:`Unmapped` naming
the op and its path; what the catalog lacks (a layer type, a parameter) is listed by
:func:`missing`, so callers can tell "not yet in the catalog" from "cannot be drawn".
"""

from __future__ import annotations

import argparse
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch
import torch.fx
from torch import nn

from designer.engine.document.project import Project, save_project
from designer.engine.model.catalog import CATALOG, name_problem
from designer.engine.model.graph import Graph
from designer.engine.model.layout import wrapped_positions

# The models of issue 11 ("Op coverage").
MODELS = ("resnet18", "vgg11_bn", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
          "squeezenet1_0", "shufflenet_v2_x0_5", "convnext_tiny", "vit_b_16", "regnet_y_400mf")


class Unmapped(ValueError):
    """Ops of the torchvision model have no designer layer; the message names each kind of op,
    where it first occurs and how often. ``kind`` groups occurrences of one op."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or message


@dataclass
class Layer:
    """One designer node to be: its type, parameters, name, inputs and torchvision module path."""

    type: str
    params: dict[str, Any]
    name: str
    inputs: list[str] = field(default_factory=list)
    module_path: str | None = None
    broadcast: bool = False  # a merge whose inputs differ in shape (squeeze-excitation's gate)
    keys: dict[str, str] = field(default_factory=dict)  # torchvision state_dict key -> engine's


@dataclass
class Design:
    """A traced model as designer layers, in topological order (Input first, Output last)."""

    model_name: str
    layers: list[Layer]
    size: int = 224  # the input height and width it was traced for (reshapes depend on it)

    @property
    def types(self) -> set[str]:
        return {layer.type for layer in self.layers}

    @property
    def key_map(self) -> dict[str, str]:
        """torchvision module path -> node name, for modules that hold parameters or buffers."""
        return {layer.module_path: layer.name for layer in self.layers if layer.module_path}

    @property
    def keys(self) -> dict[str, str]:
        """torchvision state_dict key -> engine model state_dict key."""
        return {k: v for layer in self.layers for k, v in layer.keys.items()}


def torchvision_model(name: str, size: int = 224) -> nn.Module:
    """A randomly initialised torchvision model (``weights=None``: no download); a vision
    transformer is built for ``size x size`` images (its position embedding depends on it)."""
    import torchvision

    extra = {"image_size": size} if name.startswith("vit_") else {}
    return torchvision.models.get_model(name, weights=None, **extra)


# --------------------------------------------------------------------------------------------
# Module and function tables
# --------------------------------------------------------------------------------------------


def _pair(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def _conv(m: nn.Conv2d) -> tuple[str, dict]:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise Unmapped(f"Conv2d with padding {m.padding!r} / padding_mode {m.padding_mode!r}")
    return "Conv2d", {"in_channels": m.in_channels, "out_channels": m.out_channels,
                      "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
                      "padding": _pair(m.padding), "dilation": _pair(m.dilation),
                      "groups": m.groups, "bias": m.bias is not None}


def _bn(m: nn.BatchNorm2d) -> tuple[str, dict]:
    if not m.track_running_stats or m.momentum is None:
        raise Unmapped("BatchNorm2d without running statistics or with a cumulative momentum")
    return "BatchNorm2d", {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                           "affine": m.affine}


def _max_pool(m: nn.MaxPool2d) -> tuple[str, dict]:
    if _pair(m.dilation) != 1:
        raise Unmapped(f"MaxPool2d with dilation {m.dilation}")
    params = {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
              "padding": _pair(m.padding)}
    if m.ceil_mode:
        params["ceil_mode"] = True  # only set when used: the catalog learns ceil_mode later
    return "MaxPool2d", params


def _linear(m: nn.Linear) -> tuple[str, dict]:
    return "Linear", {"in_features": m.in_features, "out_features": m.out_features,
                      "bias": m.bias is not None}


def _stochastic_depth(m: nn.Module) -> tuple[str, dict]:
    return "StochasticDepth", {"p": m.p, "mode": m.mode}


def _no_params(type_: str):
    return lambda m: (type_, {})


def _module_table() -> dict[type, Any]:
    from torchvision.ops import StochasticDepth

    table: dict[type, Any] = {
        nn.Conv2d: _conv,
        nn.BatchNorm2d: _bn,
        nn.MaxPool2d: _max_pool,
        nn.AdaptiveAvgPool2d: lambda m: ("AdaptiveAvgPool2d", {"output_size": _pair(m.output_size)}),
        nn.Linear: _linear,
        nn.Dropout: lambda m: ("Dropout", {"p": m.p}),
        nn.Flatten: lambda m: _flatten_args(m.start_dim, m.end_dim),
        nn.GELU: lambda m: ("GELU", {"approximate": m.approximate}),
        StochasticDepth: _stochastic_depth,
    }
    for cls in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                nn.Mish, nn.SELU, nn.Identity):
        table[cls] = _no_params(cls.__name__)
    return table


def _flatten_args(start_dim: int = 0, end_dim: int = -1) -> tuple[str, dict]:
    if start_dim != 1 or end_dim != -1:
        raise Unmapped(f"flatten from dim {start_dim} to {end_dim} (designer flattens all but "
                       f"the batch)")
    return "Flatten", {}


def _function(node: torch.fx.Node) -> tuple[str, dict]:
    """The designer layer for a traced call_function / call_method node whose layer needs no
    shapes (those that do are handled in :func:`trace`)."""
    t, args, kw = node.target, node.args, node.kwargs
    if t in (operator.add, torch.add) or t == "add":
        return "Add", {}
    if t in (operator.mul, torch.mul) or t == "mul":
        return "Multiply", {}
    if t in (torch.flatten,) or t == "flatten":
        return _flatten_args(*args[1:], **kw)
    if t is torch.nn.functional.adaptive_avg_pool2d:
        size = args[1] if len(args) > 1 else kw["output_size"]
        return "AdaptiveAvgPool2d", {"output_size": _pair(size)}
    if t in (torch.relu, torch.nn.functional.relu) or t == "relu":
        return "ReLU", {}
    if t is torch.cat:
        dim = args[1] if len(args) > 1 else kw.get("dim", 0)
        if dim < 1:
            raise Unmapped(f"torch.cat along dim {dim}")
        return "Concat", {"dim": dim}
    what = getattr(t, "__name__", str(t))
    raise Unmapped(f"{what} (at {node.name})", kind=what)


# --------------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------------


def node_name(path: str) -> str:
    """A designer node name for a module path: ``layer1.0.conv1`` -> ``layer1_0_conv1``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", path)
    if not name[:1].isalpha():
        name = "m_" + name
    return name


def _special_leaves() -> tuple[type, ...]:
    """torchvision modules kept whole and drawn by :func:`trace` itself: StochasticDepth (one
    layer), ConvNeXt's LayerNorm2d (Permute, LayerNorm, Permute) and ViT's EncoderBlock (one
    TransformerEncoderLayer)."""
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.models.vision_transformer import EncoderBlock
    from torchvision.ops import StochasticDepth

    return StochasticDepth, LayerNorm2d, EncoderBlock


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _special_leaves()) or super().is_leaf_module(m, qualname)


def _layer_norm(m: nn.LayerNorm) -> tuple[str, dict]:
    if len(m.normalized_shape) != 1:
        raise Unmapped(f"LayerNorm over {len(m.normalized_shape)} axes")
    if m.elementwise_affine and m.bias is None:
        raise Unmapped("LayerNorm with a scale but no shift")
    return "LayerNorm", {"normalized_shape": m.normalized_shape[0], "eps": m.eps,
                         "elementwise_affine": m.elementwise_affine}


# ViT's EncoderBlock is torch's TransformerEncoderLayer (norm_first, GELU) under other names:
# its state_dict keys, relative to the block, renamed.
_ENCODER_BLOCK_KEYS = {"ln_1.": "norm1.", "self_attention.": "self_attn.", "ln_2.": "norm2.",
                       "mlp.0.": "linear1.", "mlp.3.": "linear2."}


def _encoder_block(m: nn.Module) -> tuple[str, dict]:
    attention, mlp = m.self_attention, m.mlp
    p = m.dropout.p
    if {attention.dropout, mlp[2].p, mlp[4].p} != {p} or not isinstance(mlp[1], nn.GELU) \
            or mlp[1].approximate != "none" or m.ln_1.eps != m.ln_2.eps:
        raise Unmapped("an EncoderBlock unlike TransformerEncoderLayer (dropouts, GELU, eps)",
                       kind="EncoderBlock")
    return "TransformerEncoderLayer", {
        "nhead": attention.num_heads, "dim_feedforward": mlp[0].out_features, "dropout": p,
        "activation": "gelu", "norm_first": True, "layer_norm_eps": m.ln_1.eps}


def _rename(key: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _meta(node: Any):
    """The shape-propagation metadata of a node's tensor result, or None for anything else
    (sizes, booleans, a tuple of tensors)."""
    from torch.fx.passes.shape_prop import TensorMetadata

    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return meta if isinstance(meta, TensorMetadata) else None


def _axis(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


_ALIASES = ("contiguous", "clone")  # no-ops on values
_PROBE_BATCH = 2  # shape propagation runs on a batch of 2, so the batch axis can be told apart


def trace(model_name: str, model: nn.Module | None = None, size: int = 224) -> Design:
    """The designer layers of a torchvision model for ``size x size`` RGB images (raises
    :class:`Unmapped` listing every kind of op that has no designer layer). Reshapes carry the
    sizes of the traced input (ShuffleNet's channel shuffle), so a design is drawn for one size."""
    from torch.fx.passes.shape_prop import ShapeProp

    model = model if model is not None else torchvision_model(model_name, size)
    graph = _Tracer().trace(model)
    # The shape of every traced value: merges that broadcast, reshape sizes (in eval mode, so
    # that running statistics stay as they are)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(torch.fx.GraphModule(model, graph)).propagate(
                torch.zeros(_PROBE_BATCH, 3, size, size))
    except Exception as exc:  # ViT asserts its image size
        raise Unmapped(f"{model_name} does not take {size}x{size} images: "
                       f"{str(exc).splitlines()[0]}", kind="size") from exc
    finally:
        model.train(was_training)
    table = _module_table()
    table[nn.LayerNorm] = _layer_norm
    _, layer_norm_2d, encoder_block = _special_leaves()
    layers: list[Layer] = []
    by_fx: dict[str, str] = {}  # fx node name -> designer node name
    chunks: dict[str, tuple[str, int, list[int]]] = {}  # chunk node -> (source, dim, sizes)
    used: set[str] = set()

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in used or name_problem(name):
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    def sources(node: torch.fx.Node) -> list[str]:
        out: list[str] = []
        for a in node.args:
            items = a if isinstance(a, (list, tuple)) else [a]
            out += [by_fx[x.name] for x in items if _meta(x) is not None]
        return out

    def state_keys(module: nn.Module, path: str, name: str,
                   rename: dict[str, str] | None = None) -> dict[str, str]:
        return {f"{path}.{k}": f"{name}.{_rename(k, rename or {})}" for k in module.state_dict()}

    def shaped(node: torch.fx.Node, type_: str, params: dict, src: str) -> list[Layer]:
        return [Layer(type_, params, fresh(node.name), [src])]

    def tensor_function(node: torch.fx.Node) -> list[Layer] | str | None:
        """Layers for a function or method on tensors, the designer node it aliases (a str),
        or None for a value that only feeds arguments (sizes, shape asserts)."""
        t, args = node.target, node.args
        what = getattr(t, "__name__", str(t))
        out = _meta(node)
        x = args[0] if args else None
        src = by_fx.get(x.name) if isinstance(x, torch.fx.Node) else None
        if what == "chunk":  # a tuple of tensors: its getitems are Slices
            n = args[1] if len(args) > 1 else node.kwargs["chunks"]
            dim = _axis(args[2] if len(args) > 2 else node.kwargs.get("dim", 0),
                        len(_meta(x).shape))
            if dim < 1:
                raise Unmapped(f"chunk along the batch (at {node.name})", kind="chunk")
            sizes = [m.shape[dim] for m in node.meta["tensor_meta"]]
            assert len(sizes) == n
            chunks[node.name] = (src, dim, sizes)
            return None
        if out is None:
            return None
        if what == "getitem" and x.name in chunks:
            source, dim, sizes = chunks[x.name]
            start = sum(sizes[: args[1]])
            return [Layer("Slice", {"dim": dim, "start": start, "end": start + sizes[args[1]],
                                    "step": 1}, fresh(node.name), [source])]
        if _meta(x) is None:  # torch.cat of a list
            return [Layer(*_function(node), fresh(node.name), sources(node))]
        rank = len(_meta(x).shape)
        if what in _ALIASES:
            return src
        if what == "expand":  # ViT's class token over the batch: what a Parameter node does
            if not any(la.name == src and la.type == "Parameter" for la in layers) \
                    or tuple(out.shape[1:]) != tuple(_meta(x).shape[1:]):
                raise Unmapped(f"expand (at {node.name})", kind="expand")
            return src
        if what in ("view", "reshape"):
            if out.shape[0] != _PROBE_BATCH:
                raise Unmapped(f"{what} across the batch (at {node.name})", kind=what)
            return shaped(node, "Reshape", {"shape": list(out.shape[1:])}, src)
        if what == "permute":
            dims = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
            dims = [_axis(d, rank) for d in (dims or node.kwargs["dims"])]
            if dims[0] != 0:
                raise Unmapped(f"permute across the batch (at {node.name})", kind=what)
            return shaped(node, "Permute", {"dims": dims[1:]}, src)
        if what == "transpose":
            a, b = (_axis(d, rank) for d in args[1:3])
            if min(a, b) < 1:
                raise Unmapped(f"transpose across the batch (at {node.name})", kind=what)
            dims = list(range(rank))
            dims[a], dims[b] = b, a
            return shaped(node, "Permute", {"dims": dims[1:]}, src)
        if what == "mean":
            dims = args[1] if len(args) > 1 else node.kwargs["dim"]
            dims = sorted({_axis(d, rank) for d in ([dims] if isinstance(dims, int) else dims)},
                          reverse=True)  # the last axis first, so the others keep their number
            if node.kwargs.get("keepdim") or dims[-1] < 1:
                raise Unmapped(f"mean keeping axes or over the batch (at {node.name})", kind=what)
            out_layers, prev = [], src
            if len(dims) > 1 and dims == list(range(rank - 1, rank - 1 - len(dims), -1)):
                # the trailing axes (ShuffleNet's x.mean([2, 3])): flattened into one and averaged
                # at once, which sums in torch's order (one Mean per axis differs by ~1e-7)
                kept = list(_meta(x).shape[1:dims[-1]])
                out_layers.append(Layer("Reshape", {"shape": [*kept, -1]},
                                        fresh(node.name + "_flat"), [prev]))
                prev, dims = out_layers[-1].name, [dims[-1]]
            for d in dims:
                out_layers.append(Layer("Mean", {"dim": d}, fresh(node.name), [prev]))
                prev = out_layers[-1].name
            return out_layers
        if what == "getitem":  # x[:, 0] (ViT's class token out of the sequence)
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            full = slice(None)
            picks = [(d, i) for d, i in enumerate(index) if i != full]
            if len(picks) != 1 or picks[0][0] < 1 or Ellipsis in index:
                raise Unmapped(f"indexing {index} (at {node.name})", kind="getitem")
            d, i = picks[0]
            if isinstance(i, int):
                return shaped(node, "Select", {"dim": d, "index": i}, src)
            if isinstance(i, slice) and not isinstance(i.step, int | None):
                raise Unmapped(f"indexing {index} (at {node.name})", kind="getitem")
            return shaped(node, "Slice", {"dim": d, "start": i.start or 0, "end": i.stop,
                                          "step": i.step or 1}, src)
        type_, params = _function(node)
        shapes = {tuple(_meta(a).shape) for a in node.all_input_nodes if _meta(a) is not None}
        return [Layer(type_, params, fresh(node.name), sources(node),
                      broadcast=type_ in ("Add", "Multiply") and len(shapes) > 1)]

    def module_layers(node: torch.fx.Node) -> list[Layer]:
        path = node.target
        module = model.get_submodule(path)
        base = node_name(path)
        if base in used and any(True for _ in module.state_dict()):
            raise Unmapped(f"{path}: a module with weights used twice")
        if isinstance(module, layer_norm_2d):  # LayerNorm over the channels of (C, H, W)
            type_, params = _layer_norm(module)
            to_last = Layer("Permute", {"dims": [2, 3, 1]}, fresh(base + "_channels_last"),
                            sources(node))
            norm = Layer(type_, params, fresh(base), [to_last.name], path,
                         keys=state_keys(module, path, base))
            back = Layer("Permute", {"dims": [3, 1, 2]}, fresh(base + "_channels_first"),
                         [norm.name])
            return [to_last, norm, back]
        if isinstance(module, encoder_block):
            type_, params = _encoder_block(module)
            name = fresh(base)
            return [Layer(type_, params, name, sources(node), path,
                          keys=state_keys(module, path, name, _ENCODER_BLOCK_KEYS))]
        make = table.get(type(module))
        if make is None:
            kind = type(module).__name__
            raise Unmapped(f"{kind} (at {path})", kind=kind)
        type_, params = make(module)
        name = fresh(base)
        keys = state_keys(module, path, name)
        return [Layer(type_, params, name, sources(node), path if keys else None, keys=keys)]

    def parameter(node: torch.fx.Node) -> list[Layer]:
        """A bare parameter (ViT's class token and position embedding, ConvNeXt's layer scale):
        a Parameter node whose tensor is stored as torchvision stores it (key unchanged)."""
        tensor = model.get_parameter(node.target)
        ranks = {len(_meta(u).shape) for u in node.users if _meta(u) is not None}
        if ranks == {tensor.dim()} and tensor.shape[0] == 1:
            shape, batch_axis = list(tensor.shape[1:]), True
        elif ranks == {tensor.dim() + 1}:
            shape, batch_axis = list(tensor.shape), False
        else:
            raise Unmapped(f"a bare parameter used at ranks {sorted(ranks)} (at {node.target})",
                           kind="get_attr")
        name = fresh(node_name(node.target))
        return [Layer("Parameter", {"shape": shape, "init": "zeros", "std": 0.02,
                                    "batch_axis": batch_axis}, name, [],
                      node.target, keys={node.target: name})]

    unmapped: dict[str, list] = {}  # kind -> [first message, count]
    for node in graph.nodes:
        try:
            if node.op == "placeholder":
                made: Any = [Layer("Input", {}, fresh("image"))]
            elif node.op == "output":
                made = [Layer("Output", {}, fresh("logits"), [by_fx[node.args[0].name]])]
            elif node.op == "call_module":
                made = module_layers(node)
            elif node.op == "get_attr":
                made = parameter(node)
            else:
                made = tensor_function(node)
        except Unmapped as exc:
            unmapped.setdefault(exc.kind, [str(exc), 0])[1] += 1
            by_fx[node.name] = node.name
            continue
        except KeyError:  # fed by an op that could not be mapped: reported there
            by_fx[node.name] = node.name
            continue
        if made is None:
            continue
        if isinstance(made, str):
            by_fx[node.name] = made
            continue
        layers += made
        by_fx[node.name] = made[-1].name
    if unmapped:
        raise Unmapped("no designer layer for " + "; ".join(
            first + (f" and {n - 1} more" if n > 1 else "") for first, n in unmapped.values()))
    return Design(model_name, layers, size)


def missing(design: Design) -> list[str]:
    """What the model needs that the catalog cannot do yet, sorted: layer types
    (``StochasticDepth``), parameters (``MaxPool2d.ceil_mode``) and broadcasting merges
    (``Multiply broadcasting``). Empty when the design can be drawn today."""
    out: set[str] = set()
    for layer in design.layers:
        spec = CATALOG.get(layer.type)
        if spec is None:
            out.add(layer.type)
            continue
        out.update(f"{layer.type}.{k}" for k in layer.params if k not in spec.param_map)
        if layer.broadcast and not _broadcasts(layer.type):
            out.add(f"{layer.type} broadcasting")
    return sorted(out)


def _broadcasts(merge: str) -> bool:
    """Whether the catalog's ``merge`` (Add, Multiply) accepts a (C, H, W) and a (C, 1, 1) input."""
    from designer.engine.model.shapes import analyze

    g = Graph()
    a = g.add_node("Input", "a", {"shape": [4, 3, 3]})
    b = g.add_node("Input", "b", {"shape": [4, 1, 1]})
    m = g.add_node(merge, "m")
    o = g.add_node("Output", "o")
    g.connect(a.id, m.id, 0)
    g.connect(b.id, m.id, 1)
    g.connect(m.id, o.id)
    return analyze(g).ok


# --------------------------------------------------------------------------------------------
# Designs and weights
# --------------------------------------------------------------------------------------------


def design_graph(design: Design, size: int | None = None, channels: int = 3) -> Graph:
    """The designer graph of a traced model for ``channels x size x size`` images (the size it
    was traced for), laid out."""
    size = design.size if size is None else size
    if size != design.size and "Reshape" in design.types:
        raise ValueError(f"{design.model_name} was traced for {design.size}x{design.size} images "
                         f"and its reshapes hold those sizes: trace it again for {size}")
    g = Graph()
    for layer in design.layers:
        params = dict(layer.params)
        if layer.type == "Input":
            params = {"shape": [channels, size, size]}
        g.add_node(layer.type, layer.name, params, id=layer.name)
        for port, src in enumerate(layer.inputs):
            g.connect(src, layer.name, port)
    for nid, pos in wrapped_positions(g).items():
        g.move(nid, pos)
    return g


def design_project(model_name: str, size: int = 224, model: nn.Module | None = None) -> Project:
    """A designer project drawing torchvision's ``model_name`` for ``size x size`` RGB images."""
    design = trace(model_name, model, size)
    return Project(
        name=model_name,
        description=f"torchvision.models.{model_name} (weights=None), drawn layer by layer by "
        f"scripts/torchvision_designs.py for {size}x{size} RGB images.",
        networks={"model": design_graph(design, size)},
    )


def design_key(design: Design, key: str) -> str:
    """The engine model's state_dict key for a torchvision key (``layer1.0.conv1.weight`` ->
    ``layer1_0_conv1.weight``)."""
    return design.keys[key]


def copy_state(design: Design, source: nn.Module, target: nn.Module) -> None:
    """Copy torchvision's state_dict into the engine model, strictly: every key of both sides is
    used exactly once and shapes agree (AssertionError otherwise)."""
    src = source.state_dict()
    mapped = {design_key(design, k): v for k, v in src.items()}
    assert len(mapped) == len(src), "two torchvision keys map to one engine key"
    want = target.state_dict()
    assert set(mapped) == set(want), (sorted(set(mapped) ^ set(want)))[:10]
    for k, v in mapped.items():
        assert v.shape == want[k].shape, (k, tuple(v.shape), tuple(want[k].shape))
    target.load_state_dict(mapped, strict=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(MODELS), help="torchvision model names")
    ap.add_argument("out", type=Path, help="folder for the .dnn.json files")
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    args = ap.parse_intermixed_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for name in args.models:
        try:
            lacks = missing(trace(name, size=args.size))
            if lacks:
                print(f"{name}: skipped, the catalog lacks {', '.join(lacks)}")
                continue
            path = save_project(design_project(name, args.size), args.out / f"{name}.dnn.json",
                                backup=False)
        except Unmapped as exc:
            print(f"{name}: cannot be drawn: {exc}")
            status = 1
            continue
        print(f"{name}: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
