"""torch.export: an ExportedProgram unflattened into its module tree of ATen graphs, and the
modules of such a tree that are one catalog layer (through the converters of
:mod:`designer.engine.model.catalog.importers`)."""

from __future__ import annotations

import itertools
import operator
from typing import Any

import torch
import torch.fx
from torch import nn

from ...model.catalog.importers import CONVERTERS, Converter, ExportedGraph

# --------------------------------------------------------------------------------------------
# torch.export: an ExportedProgram unflattened into its module tree of ATen graphs
# --------------------------------------------------------------------------------------------


def _exported_types() -> tuple[type, ...]:
    try:
        from torch.export.unflatten import InterpreterModule, UnflattenedModule
    except ImportError:  # pragma: no cover - older torch
        return ()
    return (InterpreterModule, UnflattenedModule)


def is_exported(m: nn.Module) -> bool:
    """A module of an unflattened ExportedProgram: it holds its own fx ``graph`` of ATen ops."""
    return isinstance(m, _exported_types()) and isinstance(getattr(m, "graph", None),
                                                           torch.fx.Graph)


def aten_name(t: Any) -> str | None:
    """An ATen op's name without overload and in-place mark (``aten.relu_.default`` ->
    ``relu``, ``aten._unsafe_view`` -> ``view``); None for anything else."""
    if not isinstance(t, torch._ops.OpOverload):
        return None
    name = t.overloadpacket.__name__
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return {"_unsafe_view": "view", "_softmax": "softmax", "_log_softmax": "log_softmax",
            "alias": "detach", "lift_fresh_copy": "clone"}.get(name, name)


ATEN_IGNORED = ("_assert_tensor_metadata", "_assert_scalar", "sym_size", "sym_numel",
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
    ty = module.type_name() if is_exported(module) else None
    return str(ty).rsplit(".", 1)[-1] if ty else type(module).__name__


def graph_copy(module: nn.Module) -> torch.fx.Graph:
    """A copy of an exported module's graph (shape propagation writes into node meta)."""
    graph = torch.fx.Graph()
    out = graph.graph_copy(module.graph, {})
    graph.output(out)
    return graph


def exported_sequential(module: nn.Module, graph: torch.fx.Graph, names: list[str]) -> bool:
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


def weighted_op_layer(module: nn.Module, rank: int | None
                      ) -> tuple[Converter, tuple[str, dict]] | None:
    """A child of an unflattened program whose graph is one parameterised op on its own
    parameters (``aten.conv2d(x, self.weight, ...)``): its converter and the catalog layer
    (type, params) it is. None when it is not such a module (it then becomes a block)."""
    graph = module.graph
    own = dict(module.state_dict(keep_vars=True))
    if not own or any(True for _ in module.children()):
        return None
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    attrs = {n.name: n.target for n in graph.nodes if n.op == "get_attr"}
    ops = [n for n in graph.nodes if n.op == "call_function"
           and aten_name(n.target) not in ATEN_IGNORED
           and not (n.target is operator.getitem and n.args[1] == 0)]
    if len(phs) != 1 or len(ops) != 1 or any(t not in own for t in attrs.values()):
        return None
    op = ops[0]
    name = aten_name(op.target)
    # the input is the op's first argument; an embedding's is its second, after the table
    at = 1 if name == "embedding" else 0
    if len(op.args) <= at or op.args[at] is not phs[0] or phs[0] in op.args[at + 1:]:
        return None
    used = {attrs[a.name] for a in op.args if isinstance(a, torch.fx.Node) and a.name in attrs}
    if set(own) - used - {"num_batches_tracked"}:
        return None  # state the op does not use: a block shows what uses it
    conv = CONVERTERS.get("weighted_op", name or "")
    if conv is None:
        return None
    view = ExportedGraph("", ops, [name], phs, own, attrs)
    args = view.op_args(op)  # the arguments after the first
    if at:  # the table, then what follows the input
        first = op.args[0]
        args = [own[attrs[first.name]] if isinstance(first, torch.fx.Node)
                and first.name in attrs else first, *args[1:]]
    made = conv.run(name, args, rank)
    return (conv, made) if made is not None else None


def exported_layer(module: nn.Module, rank: int | None
                   ) -> tuple[Converter, tuple[str, dict]] | None:
    """An unflattened child whose class (``type_name()``) the catalog has as one layer while
    export decomposed its forward into several ATen ops (nn.MultiheadAttention, torchvision's
    LayerNorm2d): its converter and that layer (type, params), made from the child's own
    parameters and its graph's constants. None for other classes."""
    kind = str(module.type_name() or "")
    conv = CONVERTERS.get("exported", kind)
    if conv is None:
        return None
    graph = module.graph
    ops = [n for n in graph.nodes if n.op == "call_function"
           and aten_name(n.target) not in ATEN_IGNORED]
    view = ExportedGraph(kind, ops, [aten_name(n.target) for n in ops],
                         [n for n in graph.nodes if n.op == "placeholder"],
                         dict(module.state_dict(keep_vars=True)),
                         {n.name: n.target for n in graph.nodes if n.op == "get_attr"})
    made = conv.run(view, rank)
    return (conv, made) if made is not None else None


def _batch_shapes(model: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """torch.export's dynamic_shapes making axis 0 of every tensor argument one symbolic batch
    size (by forward's parameter names), or None when the arguments do not bind."""
    import inspect

    try:
        bound = inspect.signature(model.forward).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    batch = torch.export.Dim("batch", min=2, max=1 << 16)

    def spec(v: Any) -> Any:
        return {0: batch} if isinstance(v, torch.Tensor) and v.dim() > 0 else None

    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out[name] = {k: spec(v) for k, v in value.items()}
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = tuple(spec(v) for v in value)
        else:
            out[name] = spec(value)
    return out


def export_program(model: nn.Module, *args: Any, dynamic_batch: bool = False,
                   **kwargs: Any) -> Any:
    """``torch.export.export(model, args, kwargs, strict=False)`` in eval mode. With
    ``dynamic_batch`` the first axis of each tensor argument is a symbolic batch size, so sizes
    the model computes from it stay computed (a design kept as code runs at any batch); when
    export cannot keep it symbolic, the program is made for the given batch."""
    was = model.training
    model.eval()
    try:
        shapes = _batch_shapes(model, args, kwargs) if dynamic_batch else None
        if shapes is not None:
            try:
                return torch.export.export(model, args, kwargs or None, strict=False,
                                           dynamic_shapes=shapes)
            except Exception:  # noqa: BLE001, S110 - the model fixes its batch: as given then
                pass
        return torch.export.export(model, args, kwargs or None, strict=False)
    finally:
        model.train(was)

