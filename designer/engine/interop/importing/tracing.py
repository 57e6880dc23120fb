"""Probing and tracing: the model run once to record what each module receives, and one module
at a time traced with ``torch.fx`` (its submodules kept whole), shapes propagated, then mapped by
:class:`~designer.engine.interop.importing.nodes.NetBuilder`. A module fx cannot trace is exported alone
(:func:`import_exported`)."""

from __future__ import annotations

import inspect
import operator
from typing import Any

import torch
import torch.fx
from torch import nn

from ...model.catalog.importers import Unmapped
from .exported import (
    export_program,
    exported_sequential,
    graph_copy,
    is_exported,
    model_class_name,
    unflatten_program,
)
from .nodes import ImportedNet, NetBuilder
from .report import ImportReport, Unsupported, exception_source

PROBE_BATCH = 2  # the probe batch: 2, so that the batch axis can be told from the others


class OwnForwardTracer(torch.fx.Tracer):
    """Traces one module's own forward: every submodule it calls stays a call."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return True


class ModuleImporter:
    """Imports a model (``root``) module by module: :meth:`probe` records what each module
    receives, :meth:`import_module` traces one and maps it to an :class:`ImportedNet`."""

    def __init__(self, root: nn.Module, report: ImportReport, partial: bool) -> None:
        self.root = root
        self.report = report
        self.partial = partial
        self.calls: dict[int, tuple[tuple, dict]] = {}  # id(module) -> first call's (args, kwargs)
        self.outputs: dict[int, Any] = {}  # id(module) -> its output, for modules called once
        self.training_top = False  # the model's forward traced in training mode (aux outputs)
        self.batch = PROBE_BATCH  # the probe's batch size (an exported program's own)
        # fx failing on the model's own forward: (entry, error), for the torch.export fallback
        self.top_failure: tuple[Unsupported, Exception] | None = None
        # the keys of the model's several results (a ModelOutput's logits, ...), in order
        self.output_names: list[str] = []
        # id(module) -> the indexes of the tensors it is called with that have no batch axis
        # (its caller's whole tensors: a window attention's mask), for its Inputs
        self.whole_args: dict[int, set[int]] = {}

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

    def tensor_keys(self) -> dict[int, list[str]]:
        """The model's state_dict keys by the storage of their tensor (tied weights share one)."""
        if getattr(self, "_tensor_keys", None) is None:
            self._tensor_keys: dict[int, list[str]] = {}
            for key, t in self.root.state_dict(keep_vars=True).items():
                self._tensor_keys.setdefault(t.data_ptr(), []).append(key)
        return self._tensor_keys

    def lost_in_eval(self) -> bool:
        """Does the model's own forward leave a child with weights uncalled in eval mode
        (GoogLeNet's aux1, aux2: called in training only)?"""
        return any(id(c) not in self.calls and any(True for _ in c.state_dict())
                   for c in self.root.children())

    def unsupported(self, path: str, op: str, reason: str, source: str = "") -> None:
        self.report.unsupported.append(Unsupported(path, op, reason, source))

    # -- one module ------------------------------------------------------------------------

    def import_module(self, module: nn.Module, path: str, attr: str) -> ImportedNet:
        cls = model_class_name(module)
        names = [n for n, _ in module.named_children()]
        exported = is_exported(module)  # its own graph of ATen ops, nothing to trace
        sequential = (isinstance(module, nn.Sequential)
                      and type(module).forward is nn.Sequential.forward
                      and names == [str(i) for i in range(len(names))]) \
            or exported and exported_sequential(module, module.graph, names)
        net = ImportedNet(cls, attr, [], sequential)
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
                graph = graph_copy(module)
                args = _sizes_from_batch(graph, args, self.batch)
            elif listed:  # one placeholder per tensor of the list
                first = next(iter(inspect.signature(module.forward).parameters))
                graph = OwnForwardTracer().trace(module, concrete_args={
                    first: [torch.fx._symbolic_trace.PH] * len(args[0])})
            elif consts:  # numbers (WindowPartition's p): fixed to the values of this call
                graph = OwnForwardTracer().trace(module, concrete_args=consts)
                args, kwargs = _drop_constants(graph, module, consts, args, kwargs)
            elif path == "" and self.training_top:  # aux heads: traced as training runs
                was = module.training
                module.train()
                try:
                    graph = OwnForwardTracer().trace(module)
                finally:
                    module.train(was)
            else:
                graph = OwnForwardTracer().trace(module)
        except Exception as exc:  # noqa: BLE001 - every fx failure becomes a report entry
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            control = "control flow" in str(exc) or "bool" in str(exc) or "iterate" in str(exc)
            why = (f"torch.fx cannot trace its forward: data-dependent control flow (an if, a "
                   f"loop or a conversion that depends on the values of a tensor): {first}"
                   if control else f"torch.fx cannot trace its forward: {first}")
            entry = Unsupported(path, "trace", why, exception_source(exc))
            net.ok = False
            if path == "" and module is self.root:  # import_model tries torch.export then
                self.top_failure = (entry, exc)
            elif listed or consts or id(module) not in self.outputs:
                # a list, numbers or several calls: one export would not hold them
                self.report.unsupported.append(entry)
            else:  # exported alone on the input it received
                made = import_exported(module, args, kwargs, self.report, self.partial,
                                        self.batch, entry, path, attr)
                if made is not None:
                    self.report.via_export_blocks.append(path)
                    return made[1]
            return net
        if listed:
            try:
                net.list_dim = _concatenated_list(graph)
            except Unmapped as exc:
                self.unsupported(path, exc.op, exc.reason)
                net.ok = False
                return net
            args = (torch.cat(list(args[0]), net.list_dim),)
        if not exported:
            _follow_in_place(graph)
        gm = torch.fx.GraphModule(module, graph)
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        flat = list(args) + [kwargs[p.target] for p in placeholders[len(args):]
                             if p.target in kwargs]
        if len(flat) != len(placeholders) or not all(isinstance(a, torch.Tensor) for a in flat):
            entry = Unsupported(path, cls, "called with arguments that are not tensors (a list, "
                                "a number or a default value): a block takes tensors only")
            net.ok = False
            if id(module) in self.outputs and not exported:  # exported alone, as called
                made = import_exported(module, args, kwargs, self.report, self.partial,
                                       self.batch, entry, path, attr, dynamic_batch=True)
                if made is not None:
                    self.report.via_export_blocks.append(path)
                    return made[1]
                return net
            self.report.unsupported.append(entry)
            return net
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                _ShapeProp(gm, self.outputs).propagate(*flat)
        except Exception as exc:  # noqa: BLE001
            self.unsupported(path, "shapes", f"running the traced forward failed: {exc}",
                             exception_source(exc))
            net.ok = False
            return net
        finally:
            module.train(was)
        NetBuilder(self, module, path, net, graph, names).run()
        return net


def _sizes_from_batch(graph: torch.fx.Graph, args: tuple, batch: int) -> tuple:
    """An unflattened module called with sizes beside its tensors (the symbolic batch size its
    parent read off a tensor): each size placeholder becomes that size read off the module's first
    tensor input (``x.size(0)``, times a factor), so the module takes tensors only. Returns the
    call's tensor arguments."""
    phs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(phs) != len(args) or not any(isinstance(a, int) for a in args):
        return args
    first = next((p for p, a in zip(phs, args) if isinstance(a, torch.Tensor) and a.dim()
                  and a.shape[0] == batch), None)
    if first is None:
        return args
    for ph, a in zip(phs, args):
        if not isinstance(a, int) or isinstance(a, bool) or a % batch:
            continue
        with graph.inserting_after(first):
            size = graph.call_function(torch.ops.aten.sym_size.int, (first, 0))
        value = size
        if a != batch:
            with graph.inserting_after(size):
                value = graph.call_function(operator.mul, (size, a // batch))
        ph.replace_all_uses_with(value)
        graph.erase_node(ph)
    return tuple(a for a in args if not (isinstance(a, int) and not isinstance(a, bool)
                                         and a % batch == 0))


_IN_PLACE_OPERATORS = {"iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow",
                       "imatmul", "iand", "ior", "ixor"}


def _follow_in_place(graph: torch.fx.Graph) -> None:
    """A traced forward that changes a tensor in place (``out.mul_(gain)``, ``x += y``) goes on
    using that tensor's node; the design runs each call on its own, so the uses after the call
    take the call's result instead."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        if node.op == "call_method":
            name = str(node.target)
            in_place = name.endswith("_") and not name.endswith("__")
        elif node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            in_place = name in _IN_PLACE_OPERATORS or (
                name.endswith("_") and not name.endswith("__") and getattr(
                    node.target, "__module__", "") in ("torch", "torch._C._nn",
                                                       "torch.nn.functional")
                and node.kwargs.get("inplace", True) is not False)
        else:
            continue
        first = node.args[0] if node.args else None
        if not in_place or not isinstance(first, torch.fx.Node):
            continue
        after = order[node]
        first.replace_all_uses_with(node, delete_user_cb=lambda u, after=after, node=node:
                                    u is not node and order.get(u, -1) > after)


def output_names(out: Any) -> list[str]:
    """The keys of a model's several tensor results (a ModelOutput or dict), in order."""
    if isinstance(out, dict):
        return [str(k) for k, v in out.items() if isinstance(v, torch.Tensor)]
    return []


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
        raise Unmapped("list", "called with a list of tensors used other than concatenated "
                        "at once (torch.cat): a block takes tensors")
    dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    if not isinstance(dim, int) or dim == 0:
        raise Unmapped("list", f"a list concatenated along axis {dim}")
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
    from torch.fx.passes.shape_prop import ShapeProp  # deferred: torch loads only when this runs

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



def import_exported(model: nn.Module, args: tuple, kwargs: dict, report: ImportReport,
                     partial: bool, batch: int, entry: Unsupported, path: str = "",
                     attr: str = "", dynamic_batch: bool = False
                     ) -> tuple[ModuleImporter, ImportedNet] | None:
    """``model`` (the whole model, or a block at ``path``) exported on the input it receives
    (``args``, ``kwargs``), unflattened and imported: an importer of the program and the net,
    named after the model's class. The unflattened module tree has the model's names, so a
    block's keys stay its own. None when export fails or its program does not run: ``entry``
    (fx's failure) then says so too and is in the report."""
    try:
        unflat = unflatten_program(export_program(model, *args, dynamic_batch=dynamic_batch,
                                                  **kwargs))
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow, unsupported ops
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        entry.reason += f"; torch.export failed too ({type(exc).__name__}: {first})"
        report.unsupported.append(entry)
        return None
    imp = ModuleImporter(unflat, report, partial)
    imp.batch = batch
    try:
        imp.output_names = output_names(imp.probe(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001
        entry.reason += f"; its torch.export program does not run: {exc}"
        report.unsupported.append(entry)
        return None
    net = imp.import_module(unflat, path, attr)
    net.cls = model_class_name(model)
    return imp, net

