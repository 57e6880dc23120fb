"""Exact shape, parameter and MAC inference, pinned to the node where a problem happens.

Output shapes and parameter counts come from each catalog entry's exact formulas (the shape
formulas of the torch docs; the parameter count torch's module would have), so checking a design
never imports torch: ``import torch`` alone takes seconds, and a forward pass on meta tensors is
slow too (LSTM/GRU cost tens to hundreds of milliseconds per layer, and several ops import
torch._dynamo on first use). The tests check every formula against the real module and a real
forward pass on CPU, for each layer type, over a spread of parameters and for random graphs. A
layer declared without a formula falls back to its module built on the ``meta`` device (no memory,
no compute, weight initialisation skipped), importing torch then.

:class:`Analyzer` follows a :class:`~designer.engine.graph.Graph` through its events and, after an
edit, re-infers only the nodes downstream of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .catalog import (
    MAX_ELEMENTS,
    LayerError,
    LayerSpec,
    apply_layer,
    fmt_shape,
    make_module,
)
from .graph import Adjacency, Graph, GraphEvent, Node, Problem, check_structure

Shape = tuple[int, ...]

# A layer with more parameters than this is refused as absurd (8 GB of float32).
MAX_LAYER_PARAMS = 2_000_000_000
# The whole model, likewise: building it would need this many floats of memory.
MAX_MODEL_PARAMS = 2_000_000_000
_META_BATCH = 2  # BatchNorm in train mode refuses batch 1; eval mode is used anyway


@dataclass
class NodeInfo:
    """What inference knows about one node."""

    output_shape: Shape | None = None  # without batch; None when unknown (error upstream or here)
    dtype: str | None = None  # "float" or "int"
    params: int = 0  # trainable + buffers excluded: parameter count as torch reports it
    macs: int = 0  # multiply-accumulates per sample (an estimate for attention)
    kwargs: dict[str, Any] | None = None  # resolved constructor arguments
    input_shapes: list[Shape] = field(default_factory=list)
    error: str | None = None
    error_code: str = "shape"  # Problem.code of ``error``


@dataclass
class Analysis:
    """The result of checking a graph: per-node info and every problem found."""

    infos: dict[str, NodeInfo]
    problems: list[Problem]
    order: list[str]  # topological order of the nodes that could be ordered

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.infos.values())

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.infos.values())

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if node_id in p.node_ids]


class Analyzer:
    """Incremental checker for one graph: call :meth:`analyze` after edits."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._infos: dict[str, NodeInfo] = {}
        self._dirty: set[str] = set(graph.nodes)
        self._cache: dict[tuple, tuple[Shape, int, int]] = {}
        self._last: Analysis | None = None
        graph.subscribe(self._on_event)

    def close(self) -> None:
        self.graph.unsubscribe(self._on_event)

    def _on_event(self, ev: GraphEvent) -> None:
        if ev.kind == GraphEvent.MOVED:
            return
        if ev.kind == GraphEvent.NODE_REMOVED:
            self._infos.pop(ev.node_id, None)
            self._dirty.discard(ev.node_id)
        elif ev.node_id is not None:
            self._dirty.add(ev.node_id)
        self._last = None

    @property
    def last(self) -> Analysis | None:
        """The latest analysis if nothing changed since; None otherwise."""
        return self._last

    def analyze(self) -> Analysis:
        """Check the graph; after edits, re-infer only the edited nodes and what they feed.

        A node downstream of an edit is re-inferred only when something it reads changed: when an
        upstream node's output shape or dtype stayed the same (a Dropout rate, a conv whose padding
        compensates its kernel), the nodes behind it keep their results.
        """
        if self._last is not None:
            return self._last
        graph = self.graph
        adj = Adjacency.of(graph)
        problems = check_structure(graph, adj)
        in_cycle = {nid for p in problems if p.code == "cycle" for nid in p.node_ids}
        order = _topo_order(graph, adj, in_cycle)
        infos = self._infos
        for nid in list(infos):
            if nid not in graph.nodes:
                del infos[nid]
        dirty = {nid for nid in self._dirty if nid in graph.nodes}
        for nid in order:
            old = infos.get(nid)
            if nid not in dirty and old is not None:
                continue
            ins = adj.preds[nid]
            info = self._infer_node(graph.nodes[nid], [infos.get(e.src) for e in ins])
            infos[nid] = info
            if old is None or _changed(old, info):
                dirty.update(adj.succs[nid])
        ordered = set(order)
        for nid in graph.nodes:
            if nid not in ordered:  # in or after a cycle: unknown
                infos[nid] = NodeInfo()
        # Nodes left out of the order now must be inferred again once the cycle is gone.
        self._dirty = {nid for nid in graph.nodes if nid not in ordered}

        for nid in order:
            info = infos[nid]
            if info.error:
                problems.append(Problem("error", info.error, (nid,), info.error_code))
        total = sum(infos[nid].params for nid in order)
        if total > MAX_MODEL_PARAMS:
            biggest = sorted((n for n in order if infos[n].params),
                             key=lambda n: -infos[n].params)[:3]
            names = ", ".join(graph.nodes[n].name for n in biggest)
            problems.append(Problem(
                "error", f"The model would have {total:,} parameters ({total * 4 / 1e9:.1f} GB as "
                f"float32), more than designer builds ({MAX_MODEL_PARAMS:,}): shrink the largest "
                f"layers ({names})", tuple(biggest), "too_large"))
        self._last = Analysis(dict(infos), problems, order)
        return self._last

    # -- one node --------------------------------------------------------------------------------

    def _infer_node(self, node: Node, upstream: list[NodeInfo | None]) -> NodeInfo:
        spec = node.spec
        label = f"{spec.display_name} '{node.name}'"
        if node.type == "Input":
            shape = tuple(node.params["shape"])
            dtype = "int" if node.params.get("dtype") == "int64" else "float"
            return NodeInfo(shape, dtype)
        # A layer without inputs (Parameter) is resolved with no input shapes.
        source = spec.num_inputs == 0 and not spec.variadic
        if not source and (not upstream or any(u is None or u.output_shape is None
                                               for u in upstream)):
            return NodeInfo()  # the structural check or an upstream node reports the cause
        if spec.variadic and len(upstream) < spec.min_inputs:
            return NodeInfo()
        if not spec.variadic and len(upstream) != spec.num_inputs:
            return NodeInfo()
        in_shapes = [u.output_shape for u in upstream]
        in_dtypes = [u.dtype for u in upstream]
        info = NodeInfo(input_shapes=in_shapes)
        try:
            _check_input_kind(spec, in_shapes, in_dtypes)
            kwargs = spec.resolve(node.params, in_shapes, in_dtypes) if spec.resolve else {}
            out, nparams, macs = self._shape_params_macs(spec, node.params, kwargs, in_shapes,
                                                         in_dtypes)
        except LayerError as exc:
            info.error = _pin(str(exc), spec, label)
            return info
        except (RuntimeError, ValueError, TypeError, IndexError, ArithmeticError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shapes = ", ".join(fmt_shape(s) for s in in_shapes)
            info.error = f"{label} cannot process input {shapes}: {first}"
            return info
        except Exception as exc:  # noqa: BLE001
            # a bug in a catalog entry: report it on the node, never stop the checker
            info.error = (f"designer could not check {label} ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); this is a bug, please report it")
            info.error_code = "internal_error"
            return info
        if any(s < 1 for s in out):
            info.error = (f"{label} would produce an empty output {fmt_shape(out)}: "
                          "change its parameters or the input size")
            return info
        if math.prod(out) > MAX_ELEMENTS:
            info.error = f"{label} would produce {math.prod(out):,} values per sample, too many"
            return info
        if nparams > MAX_LAYER_PARAMS:
            info.error = (f"{label} would have {nparams:,} parameters "
                          f"({nparams * 4 / 1e9:.1f} GB): reduce its sizes")
            return info
        info.output_shape = out
        info.dtype = spec.output_dtype or ("float" if spec.input_dtype == "float" or not in_dtypes
                                           else in_dtypes[0])
        info.kwargs = kwargs
        info.params = nparams
        info.macs = macs
        return info

    def _shape_params_macs(self, spec: LayerSpec, params: dict, kwargs: dict,
                           in_shapes: list[Shape], in_dtypes: list[str]) -> tuple[Shape, int, int]:
        key = (spec.id, _freeze(params), _freeze(kwargs), tuple(in_shapes), tuple(in_dtypes))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        module = None
        if spec.module_name is None:
            nparams = 0
        elif spec.count_params is not None:
            nparams = int(spec.count_params(kwargs))
        else:
            module = make_module(spec, kwargs, device="meta")
            nparams = sum(p.numel() for p in module.parameters())
        if spec.infer is not None:
            out = tuple(int(s) for s in spec.infer(params, in_shapes))
        else:
            import torch

            xs = [torch.empty((_META_BATCH, *s), device="meta",
                              dtype=torch.long if d == "int" else torch.float32)
                  for s, d in zip(in_shapes, in_dtypes)]
            if module is None and spec.module_name is not None:
                module = make_module(spec, kwargs, device="meta")
            if module is not None:
                module.eval()
            with torch.no_grad():
                y = apply_layer(spec, module, xs, kwargs)
            out = tuple(int(s) for s in y.shape[1:])
        merged = {**params, **kwargs}
        macs = int(spec.macs(merged, in_shapes, out)) if spec.macs else 0
        result = (out, nparams, macs)
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = result
        return result


def analyze(graph: Graph) -> Analysis:
    """One-shot check of a graph (structure and shapes)."""
    analyzer = Analyzer(graph)
    try:
        return analyzer.analyze()
    finally:
        analyzer.close()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_input_kind(spec: LayerSpec, shapes: list[Shape], dtypes: list[str]) -> None:
    name = spec.display_name
    if spec.input_dtype == "float" and "int" in dtypes:
        raise LayerError(f"{name} receives integer token ids: put an Embedding before it, or set "
                         "the Input's dtype to float32")
    if spec.input_dtype == "int" and "float" in dtypes:
        raise LayerError(f"{name} needs integer token ids, but receives float values: set the "
                         "Input's dtype to int64 and feed it token ids")
    if spec.input_rank is not None:
        for s in shapes:
            if len(s) not in spec.input_rank:
                raise LayerError(
                    f"{name} expects input {spec.rank_words} but receives {fmt_shape(s)}: "
                    f"add a Reshape before it or change the Input shape"
                )


def _pin(message: str, spec: LayerSpec, label: str) -> str:
    """Put the node's name into a message that starts with the layer type."""
    for prefix in (spec.display_name, spec.id):
        if message.startswith(prefix):
            rest = message[len(prefix):]
            return label + (rest if rest.startswith((" ", ":")) else ": " + rest)
    return f"{label}: {message}"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _changed(old: NodeInfo, new: NodeInfo) -> bool:
    """Whether the nodes fed by this one could see a difference."""
    return old.output_shape != new.output_shape or old.dtype != new.dtype


def _topo_order(graph: Graph, adj: Adjacency, in_cycle: set[str]) -> list[str]:
    """Kahn's algorithm in insertion order; nodes in or behind a cycle are left out."""
    blocked = adj.reachable(in_cycle) if in_cycle else set()
    indeg = {nid: 0 for nid in graph.nodes if nid not in blocked}
    for nid in indeg:
        indeg[nid] = sum(1 for e in adj.preds[nid] if e.src not in blocked)
    ready = [nid for nid, d in indeg.items() if d == 0]
    order: list[str] = []
    i = 0
    while i < len(ready):
        nid = ready[i]
        i += 1
        order.append(nid)
        for s in adj.succs[nid]:
            if s in indeg:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
    return order
