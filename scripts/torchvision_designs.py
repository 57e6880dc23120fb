"""Write designer projects for torchvision's classification models.

    .venv/bin/python scripts/torchvision_designs.py resnet18 out/        # out/resnet18.dnn.json
    .venv/bin/python scripts/torchvision_designs.py --size 96 vgg11_bn out/

The torchvision model is built with ``weights=None`` (nothing is downloaded) and traced with
``torch.fx``; torch.nn modules (and torchvision's StochasticDepth) stay whole as leaves. Each
leaf and each traced function call is mapped to one designer layer through the tables below,
named after its module path (``layer1.0.conv1`` -> ``layer1_0_conv1``), so the engine model's
state_dict keys follow from torchvision's by :func:`design_key`. Whatever cannot be mapped
raises :class:`Unmapped` naming the op and its path; a layer type the catalog lacks is reported
by :func:`required_types`, so callers can tell "not yet in the catalog" from "cannot be drawn".
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

from designer.engine.catalog import CATALOG, name_problem
from designer.engine.graph import Graph
from designer.engine.layout import wrapped_positions
from designer.engine.project import Project, save_project

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


@dataclass
class Design:
    """A traced model as designer layers, in topological order (Input first, Output last)."""

    model_name: str
    layers: list[Layer]

    @property
    def types(self) -> set[str]:
        return {layer.type for layer in self.layers}

    @property
    def key_map(self) -> dict[str, str]:
        """torchvision module path -> node name, for modules that hold parameters or buffers."""
        return {layer.module_path: layer.name for layer in self.layers if layer.module_path}


def torchvision_model(name: str) -> nn.Module:
    """A randomly initialised torchvision model (``weights=None``: no download)."""
    import torchvision

    return torchvision.models.get_model(name, weights=None)


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
    """The designer layer for a traced call_function / call_method node."""
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


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        from torchvision.ops import StochasticDepth

        return isinstance(m, StochasticDepth) or super().is_leaf_module(m, qualname)


def trace(model_name: str, model: nn.Module | None = None) -> Design:
    """The designer layers of a torchvision model (raises :class:`Unmapped` listing every kind of
    op that has no designer layer)."""
    from torch.fx.passes.shape_prop import ShapeProp

    model = model if model is not None else torchvision_model(model_name)
    graph = _Tracer().trace(model)
    # Shapes of every traced value, to tell merges that broadcast (in eval mode, so that running
    # statistics stay as they are; 224 because ViT accepts nothing else)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ShapeProp(torch.fx.GraphModule(model, graph)).propagate(torch.zeros(1, 3, 224, 224))
    model.train(was_training)
    table = _module_table()
    layers: list[Layer] = []
    by_fx: dict[str, str] = {}  # fx node name -> designer node name
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
            out += [by_fx[x.name] for x in items if isinstance(x, torch.fx.Node)]
        return out

    def layer(node: torch.fx.Node) -> Layer:
        if node.op == "placeholder":
            return Layer("Input", {}, fresh("image"))
        if node.op == "output":
            return Layer("Output", {}, fresh("logits"), [by_fx[node.args[0].name]])
        if node.op == "call_module":
            module = model.get_submodule(node.target)
            make = table.get(type(module))
            if make is None:
                kind = type(module).__name__
                raise Unmapped(f"{kind} (at {node.target})", kind=kind)
            type_, params = make(module)
            has_state = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
            if has_state and node_name(node.target) in used:
                raise Unmapped(f"{node.target}: a module with weights used twice")
            return Layer(type_, params, fresh(node_name(node.target)), sources(node),
                         node.target if has_state else None)
        if node.op in ("call_function", "call_method"):
            type_, params = _function(node)
            shapes = {tuple(a.meta["tensor_meta"].shape) for a in node.all_input_nodes}
            return Layer(type_, params, fresh(node.name), sources(node),
                         broadcast=type_ in ("Add", "Multiply") and len(shapes) > 1)
        # get_attr: a bare parameter (ViT's class token, ConvNeXt's layer scale)
        raise Unmapped(f"a bare parameter (at {node.target})", kind="get_attr")

    unmapped: dict[str, list] = {}  # kind -> [first message, count]
    for node in graph.nodes:
        try:
            made = layer(node)
        except Unmapped as exc:
            unmapped.setdefault(exc.kind, [str(exc), 0])[1] += 1
            by_fx[node.name] = node.name
            continue
        except KeyError:  # fed by an op that could not be mapped: reported there
            by_fx[node.name] = node.name
            continue
        layers.append(made)
        by_fx[node.name] = made.name
    if unmapped:
        raise Unmapped("no designer layer for " + "; ".join(
            first + (f" and {n - 1} more" if n > 1 else "") for first, n in unmapped.values()))
    return Design(model_name, layers)


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
    from designer.engine.shapes import analyze

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


def design_graph(design: Design, size: int = 224, channels: int = 3) -> Graph:
    """The designer graph of a traced model for ``channels x size x size`` images, laid out."""
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
    design = trace(model_name, model)
    return Project(
        name=model_name,
        description=f"torchvision.models.{model_name} (weights=None), drawn layer by layer by "
        f"scripts/torchvision_designs.py for {size}x{size} RGB images.",
        networks={"model": design_graph(design, size)},
    )


def design_key(design: Design, key: str) -> str:
    """The engine model's state_dict key for a torchvision key (``layer1.0.conv1.weight`` ->
    ``layer1_0_conv1.weight``)."""
    path, _, leaf = key.rpartition(".")
    return f"{design.key_map[path]}.{leaf}"


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
            lacks = missing(trace(name))
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
