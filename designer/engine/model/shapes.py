"""Exact shape, parameter and MAC inference, pinned to the node where a problem happens.

Output shapes and parameter counts come from each catalog entry's exact formulas (the shape
formulas of the torch docs; the parameter count torch's module would have), so checking a design
never imports torch: ``import torch`` alone takes seconds, and a forward pass on meta tensors is
slow too (LSTM/GRU cost tens to hundreds of milliseconds per layer, and several ops import
torch._dynamo on first use). The tests check every formula against the real module and a real
forward pass on CPU, for each layer type, over a spread of parameters and for random graphs. A
layer declared without a formula falls back to its module built on the ``meta`` device (no memory,
no compute, weight initialisation skipped), importing torch then.

:class:`Analyzer` follows a :class:`~designer.engine.model.graph.Graph` through its events and, after an
edit, re-infers only the nodes downstream of it. It is a
:class:`~designer.engine.model.interpreter.GraphInterpreter`: an Input gives its declared shape, a layer
its catalog formula, a block use its definition inferred on the incoming shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .blocks import MAX_DEPTH, bind, bound_values, deep_version
from .catalog import (
    MAX_ELEMENTS,
    LayerError,
    LayerSpec,
    apply_layer,
    fmt_shape,
    make_module,
)
from .graph import Adjacency, Graph, GraphEvent, Node, Problem, check_structure
from .interpreter import GraphInterpreter, topological_order

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
    batched: bool = True  # the tensor has the batch axis in front (a Tensor layer's has none)


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


def trainable_params(graph: Graph, analysis: Analysis) -> int:
    """The parameters training updates: :attr:`Analysis.total_params` less those of frozen
    layers and block uses (``Node.frozen``), counted through each use's copies down to the
    layers frozen inside its definition (as build's ``requires_grad`` leaves them)."""
    total = 0
    for nid, info in analysis.infos.items():
        node = graph.nodes.get(nid)
        if node is None or node.frozen:
            continue
        kwargs = info.kwargs or {}
        if "_copies" in kwargs:  # a block use: its definition's layers, copy by copy
            total += sum(trainable_params(kwargs["_graph"], inner)
                         for _values, inner in kwargs["_copies"])
        else:
            total += info.params
    return total


class Analyzer(GraphInterpreter):
    """Incremental checker for one graph: call :meth:`analyze` after edits.

    As a block (designer.engine.model.blocks): ``values`` are the block parameters' values at a use
    (None: their defaults), ``inputs`` the ``(shape, dtype)`` each Input receives there (None: the
    shapes the Inputs declare), ``stack`` the blocks being expanded around it (a cycle check).
    Block uses are re-inferred when their definition (or a block inside it) changes.
    """

    def __init__(self, graph: Graph, values: dict[str, Any] | None = None,
                 inputs: list[tuple[Shape, str]] | None = None, stack: tuple[str, ...] = (),
                 subscribe: bool = True) -> None:
        super().__init__(graph)
        self._infos: dict[str, NodeInfo] = {}
        self.env = self._infos  # the interpreter's results are the node infos
        self._rerun: set[str] = set()
        self._methods: dict[str, Any] = {}  # node type -> the method of its kind
        self._dirty: set[str] = set(graph.nodes)
        self._cache: dict[tuple, tuple[Shape, int, int]] = {}
        self._last: Analysis | None = None
        self._use_keys: dict[str, tuple] = {}  # block use -> what it was inferred from
        self.values = values
        self._bound: dict[str, Any] = {}
        self.inputs = inputs
        self.stack = stack
        self._subscribed = subscribe
        if subscribe:
            graph.subscribe(self._on_event)

    def close(self) -> None:
        if self._subscribed:
            self.graph.unsubscribe(self._on_event)

    def _on_event(self, ev: GraphEvent) -> None:
        if ev.kind == GraphEvent.MOVED:
            return
        if ev.kind == GraphEvent.BLOCK_CHANGED:  # any layer may refer to a block parameter
            self._dirty = set(self.graph.nodes)
        elif ev.kind == GraphEvent.NODE_REMOVED:
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
        graph = self.graph
        uses = self._stale_uses()
        if self._last is not None and not uses:
            return self._last
        self._dirty.update(uses)
        self._bound, value_problems = self._block_values()
        adj = Adjacency.of(graph)
        problems = check_structure(graph, adj) + value_problems
        in_cycle = {nid for p in problems if p.code == "cycle" for nid in p.node_ids}
        order = topological_order(graph, adj, in_cycle)
        infos = self._infos
        for nid in list(infos):
            if nid not in graph.nodes:
                del infos[nid]
        self.adjacency, self.order = adj, order
        self._rerun = {nid for nid in self._dirty if nid in graph.nodes}
        self.run(self._rerun)
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

    # -- blocks ----------------------------------------------------------------------------------

    def _block_values(self) -> tuple[dict[str, Any], list[Problem]]:
        """The block parameters' values this graph is analysed with."""
        if not self.graph.block_params and not self.values:
            return {}, []
        values, problems = bound_values(self.graph, self.values)
        return values, [Problem("error", f"Block parameters: {m}", (), "block_args")
                        for m in problems]

    def _stale_uses(self) -> set[str]:
        """Block uses whose definition (or a block nested in it) changed since inferred."""
        if not self._use_keys:
            return set()
        library = self.graph.library or {}
        stale = set()
        for nid, key in self._use_keys.items():
            node = self.graph.nodes.get(nid)
            if node is None:
                continue
            if deep_version(library, node.params.get("block")) != key:
                stale.add(nid)
        return stale

    def _infer_block(self, node: Node, params: dict[str, Any], upstream: list[NodeInfo]
                     ) -> NodeInfo:
        """A block use: the definition inferred on the incoming shapes, once per copy."""
        label = f"Block '{node.name}'"
        name = params["block"]
        library = self.graph.library or {}
        self._use_keys[node.id] = deep_version(library, name)
        info = NodeInfo(input_shapes=[u.output_shape for u in upstream])
        definition = library.get(name)
        if definition is None:
            known = ", ".join(repr(n) for n in library) or "none"
            info.error = (f"{label} uses block {name!r}, which is not a network of this project "
                          f"(its networks: {known}): choose one of them")
            info.error_code = "block_missing"
            return info
        if name in self.stack or definition is self.graph:
            chain = " -> ".join([*self.stack, name]) if name in self.stack else name
            info.error = (f"{label}: block definitions form a cycle ({chain} -> ...): a block "
                          "cannot contain itself")
            info.error_code = "block_cycle"
            return info
        if len(self.stack) >= MAX_DEPTH:
            info.error = f"{label}: blocks nest more than {MAX_DEPTH} deep"
            info.error_code = "block_depth"
            return info
        ins, outs = definition.inputs(), definition.outputs()
        # several Outputs: the use returns them as a tuple (an imported module's results, taken
        # by index by Function layers); its shape is the first's
        if len(outs) != 1 and (params["repeat"] > 1 or not outs
                               or any(o.params.get("aux_weight") for o in outs)):
            info.error = (f"{label}: block {name!r} has {len(outs)} Outputs; a block repeated "
                          "or with auxiliary Outputs has exactly one")
            return info
        if outs[0].params.get("aux_weight"):
            info.error = (f"{label}: the Output of block {name!r} is auxiliary (aux_weight "
                          f"{outs[0].params['aux_weight']}): auxiliary outputs belong to the "
                          "trained network, not to a block used as a layer; set it to 0")
            return info
        if len(upstream) != len(ins):
            names = ", ".join(repr(n.name) for n in ins)
            info.error = (f"{label} has {len(upstream)} input(s) connected, but block {name!r} "
                          f"takes {len(ins)} (its Inputs {names})")
            info.error_code = "block_inputs"
            return info
        repeat = params["repeat"]
        if repeat > 1 and len(ins) != 1:
            info.error = f"{label}: only a block with one Input can be repeated"
            return info
        base, problems = bound_values(definition, params.get("args"))
        first, first_problems = bound_values(definition, {**params.get("args", {}),
                                                          **params.get("first", {})})
        for m in problems + [m for m in first_problems if m not in problems]:
            info.error = f"{label}: {m}"
            info.error_code = "block_args"
            return info
        flows = [(u.output_shape, u.dtype) for u in upstream]
        copies = []
        total_params = total_macs = 0
        frozen = definition
        for i in range(repeat):
            values = first if i == 0 else base
            frozen, inner = _expand(definition, name, values, flows, (*self.stack, name))
            where = f"{node.name}.{i}" if repeat > 1 else node.name
            if not inner.ok:
                first_error = inner.errors[0]
                info.error = (f"in block {name!r} used as {where!r}: {first_error.message}")
                info.error_code = first_error.code or "block_inside"
                return info
            out_info = inner.infos[outs[0].id]
            flows = [(out_info.output_shape, out_info.dtype)]
            copies.append((values, inner))
            total_params += inner.total_params
            total_macs += inner.total_macs
        info.output_shape, info.dtype = flows[0]
        info.params, info.macs = total_params, total_macs
        info.kwargs = {"_block": name, "_graph": frozen, "_copies": copies}
        return info

    # -- one node, by kind ------------------------------------------------------------------------

    def run_node(self, node: Node, upstream: list[NodeInfo | None]) -> NodeInfo:
        """Infer one node; when its shape or dtype changed, the nodes it feeds run again."""
        old = self._infos.get(node.id)
        method = self._methods.get(node.type)
        if method is None:  # by type: this runs for every node of every check
            method = self._methods[node.type] = getattr(type(self), node.kind.method)
        info = method(self, node, upstream)
        if old is None or _changed(old, info):
            self._rerun.update(self.adjacency.succs[node.id])
        return info

    def input(self, node: Node, upstream: list[NodeInfo | None]) -> NodeInfo:
        if self.inputs is not None:  # a block's Input receives what its use is fed
            index = [n.id for n in self.graph.inputs()].index(node.id)
            if index < len(self.inputs):
                shape, dtype = self.inputs[index]
                return NodeInfo(tuple(shape), dtype)
        shape = tuple(node.params["shape"])
        dtype = "int" if node.params.get("dtype") in ("int64", "bool") else "float"
        return NodeInfo(shape, dtype)

    def block(self, node: Node, upstream: list[NodeInfo | None]) -> NodeInfo:
        params, settled = self._bound_params(node, upstream, arguments=True)
        if settled is not None:
            return settled
        if not upstream or any(u is None or u.output_shape is None for u in upstream):
            return NodeInfo()
        return self._infer_block(node, params, upstream)

    def _bound_params(self, node: Node, upstream: list[NodeInfo | None], arguments: bool = False
                      ) -> tuple[dict[str, Any], NodeInfo | None]:
        """The node's parameters with this network's block parameters bound (``arguments``: it
        passes values on, a block use), and the result when that already decides it (a refused
        reference; switched off by ``when``)."""
        params = node.params
        if self._bound or arguments or any(isinstance(v, dict) and "ref" in v
                                                            for v in params.values()):
            params, why = _bind_params(node, self._bound)
            if why:
                return params, NodeInfo(error=f"{_label(node)}: {why}", error_code="block_ref")
        if node.when is not None:
            label = _label(node)
            on = self._bound.get(node.when)
            if not isinstance(on, bool):
                return params, NodeInfo(
                    error=f"{label} is switched on by {node.when!r}, which is not a bool "
                    f"parameter of this block: declare it, or clear 'when'",
                    error_code="block_ref")
            if not on:  # switched off: the input passes through
                if len(upstream) != 1 or upstream[0] is None or upstream[0].output_shape is None:
                    return params, NodeInfo() if len(upstream) == 1 else NodeInfo(
                        error=f"{label} can be switched off only with one input",
                        error_code="block_ref")
                u = upstream[0]
                return params, NodeInfo(u.output_shape, u.dtype, input_shapes=[u.output_shape],
                                        kwargs={"_disabled": True})
        return params, None

    def layer(self, node: Node, upstream: list[NodeInfo | None]) -> NodeInfo:
        """A catalog layer (and an Output): its shape rule on the incoming shapes."""
        params = node.params
        if self._bound or node.when is not None or any(isinstance(v, dict) and "ref" in v
                                                       for v in params.values()):
            params, settled = self._bound_params(node, upstream)
            if settled is not None:
                return settled
        spec = node.spec
        label = f"{spec.display_name} '{node.name}'"
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
            kwargs = spec.resolve(params, in_shapes, in_dtypes) if spec.resolve else {}
            out, nparams, macs = self._shape_params_macs(spec, params, kwargs, in_shapes,
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
        if spec.batched_of is not None:
            info.batched = spec.batched_of(params)
        if spec.output_dtype_of is not None:
            info.dtype = spec.output_dtype_of(params)
        else:
            info.dtype = spec.output_dtype or ("float" if spec.input_dtype == "float"
                                               or not in_dtypes else in_dtypes[0])
        info.kwargs = kwargs
        info.params = nparams
        info.macs = macs
        return info

    output = layer  # an Output passes its input on, by its catalog entry

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
            import torch  # deferred: torch loads only when this runs

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


# The inside of block uses, by definition, version, values and incoming shapes: uses with the same
# settings (a ViT's 12 encoder blocks) share one analysis, and an edit inside a definition
# re-infers each distinct use once. Each holds a frozen copy of the definition it was inferred
# from: an analysis outlives the graph's next edit (the window's latest one, while the checker
# thread already syncs its replica of the definition for the next), and the memory estimate, the
# builder and ungrouping read the definition beside the inner analysis, so the two must agree.
_EXPANSIONS: dict[tuple, tuple[Graph, Analysis]] = {}
_MAX_EXPANSIONS = 4096
_DEFINITIONS: dict[tuple, Graph] = {}  # one frozen copy per version of a definition


def _expand(definition: Graph, name: str, values: dict[str, Any],
            flows: list[tuple[Shape, str]], stack: tuple[str, ...]) -> tuple[Graph, Analysis]:
    """The definition as inferred (a frozen copy) and its analysis for these values and
    incoming shapes."""
    key = (name, deep_version(definition.library or {}, name) if definition.library else
           (id(definition), definition.version), _freeze(values), tuple(flows), stack)
    hit = _EXPANSIONS.get(key)
    if hit is not None:
        return hit
    inner = Analyzer(definition, values, flows, stack, subscribe=False).analyze()
    if len(_EXPANSIONS) >= _MAX_EXPANSIONS:
        _EXPANSIONS.clear()
        _DEFINITIONS.clear()
    frozen = _DEFINITIONS.get(key[:2])  # the same for every value and shape it is used with
    if frozen is None:
        frozen = _DEFINITIONS[key[:2]] = definition.copy()
    _EXPANSIONS[key] = (frozen, inner)
    return _EXPANSIONS[key]


def _bind_params(node: Node, values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The node's parameters with references to block parameters replaced and checked."""
    spec = node.spec
    out = dict(node.params)
    declared = spec.param_map
    for k, v in node.params.items():
        if k in node.kind.argument_fields and isinstance(v, dict):
            try:  # a nested use passes on the values of the block around it
                out[k] = {a: bind(x, values) for a, x in v.items()}
            except KeyError as exc:
                return out, (f"{k}: refers to block parameter {exc.args[0]!r}, which this "
                             "network does not declare")
            except TypeError as exc:
                return out, f"{k}: {exc}"
            continue
        if not (isinstance(v, dict) and "ref" in v):
            continue
        try:
            bound = bind(v, values)
        except KeyError:
            return out, (f"{k} refers to block parameter {v['ref']!r}, which this network does "
                         f"not declare: add it to the block's parameters, or set a value")
        except TypeError as exc:
            return out, f"{k}: {exc}"
        try:
            out[k] = declared[k].validate(bound) if k in declared else bound
        except ValueError as exc:
            return out, f"{k} = {v['ref']} ({_short_value(bound)}): {exc}"
    return out, None


def _label(node: Node) -> str:
    """How a message names a node: ``Linear 'fc1'``."""
    return f"{node.spec.display_name} '{node.name}'"


def _short_value(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 40 else text[:37] + "..."


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
