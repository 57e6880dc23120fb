"""The document: a layer graph of nodes and edges, with change events and structural checks.

The graph is the single source of truth. Every mutation goes through a method here, which emits one
:class:`GraphEvent` (only when something really changed), so views such as the canvas and the
analyzer can follow along. No Qt here.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .blocks import MAX_BLOCK_PARAMS, block_param_to_dict, layer_spec
from .catalog import LayerSpec, attr_problem, name_problem
from .nodes import NodeKind, kind_of

if TYPE_CHECKING:
    # Imported where used: networkx takes ~0.1 s to import, a third of `designer check`, and the
    # checks of an acyclic graph (every design that can train) never need it.
    import networkx as nx

# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class Node:
    id: str
    type: str
    name: str
    params: dict[str, Any]
    pos: tuple[float, float] = (0.0, 0.0)
    # In a block: the bool block parameter that switches this layer on (off: it passes its
    # input through and holds no weights). None: always on.
    when: str | None = None
    # Not trainable: build sets requires_grad False on its weights (a block use: all of its
    # layers), so fine-tuning leaves them as they are.
    frozen: bool = False
    # The module attribute when it cannot be the name: an imported model's ``block1-0``
    # (torchvision's RegNet), which is no Python name. Build registers the layer under it, so the
    # state_dict keys stay the model's; exported code writes add_module/getattr for it. None: the
    # name is the attribute.
    attr: str | None = None
    # What the node is (Input, Output, layer or block use) and the behaviour of that kind
    # (designer.engine.model.nodes), from its type when it is made; the type string is what files save
    # (and never changes: a node of another type is another node).
    kind: NodeKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kind = kind_of(self.type)

    @property
    def module_attr(self) -> str:
        """The attribute the built module holds this layer under (outside sequential networks)."""
        return self.attr or self.name

    def copy(self) -> Node:
        """An independent copy (parameters deep-copied), every field kept."""
        return replace(self, params=_deepcopy(self.params))

    @property
    def spec(self) -> LayerSpec:
        spec = layer_spec(self.type)
        if spec is None:
            raise KeyError(self.type)
        return spec


def _same_value(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout: ``1``, ``True`` and ``1.0`` differ (a block
    parameter's value converted to its new type is a change)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _saved_params(node: Node) -> dict[str, Any]:
    """A node's parameters as a file holds them: without those left out while at their
    default (Param.saved_if_set)."""
    spec = layer_spec(node.type)
    sparse = {p.name: p.default for p in spec.params if p.saved_if_set} if spec else {}
    return _deepcopy({k: v for k, v in node.params.items() if k not in sparse or v != sparse[k]})


def is_aux_output(node: Node) -> bool:
    """An auxiliary Output: returned in training only, its loss weighted by ``aux_weight``
    (a number; anything else, such as a block parameter's reference, is refused by the checks)."""
    if not node.kind.is_output:
        return False
    weight = node.params.get("aux_weight")
    return isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight > 0


@dataclass(frozen=True)
class Edge:
    """A connection from ``src``'s output to input port ``dst_port`` of ``dst``."""

    src: str
    dst: str
    dst_port: int = 0
    src_port: int = 0


@dataclass(frozen=True)
class GraphEvent:
    """One change of the graph. ``kind`` is one of the ``GraphEvent.*`` names below."""

    kind: str
    node_id: str | None = None
    edge: Edge | None = None
    old: Any = None
    new: Any = None

    NODE_ADDED = "node_added"
    NODE_REMOVED = "node_removed"
    EDGE_ADDED = "edge_added"
    EDGE_REMOVED = "edge_removed"
    PARAMS_CHANGED = "params_changed"
    RENAMED = "renamed"
    MOVED = "moved"
    WHEN_CHANGED = "when_changed"
    FROZEN_CHANGED = "frozen_changed"
    # the network's block parameters or its sequential flag (node_id None): every node may read them
    BLOCK_CHANGED = "block_changed"


class GraphError(ValueError):
    """An edit that the graph refuses; the message says why."""


@dataclass(frozen=True)
class Problem:
    """Something wrong with the design, pinned to the nodes that cause it."""

    severity: str  # "error" or "warning"
    message: str
    node_ids: tuple[str, ...] = ()
    code: str = ""
    port: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


Listener = Callable[[GraphEvent], None]


class Observable:
    """Synchronous change events for a document model (:class:`Graph`, ``Project``), without Qt:
    each mutation method calls :meth:`_emit` once per real change, and every subscribed listener
    is called with the event. The UI relays events to Qt signals where it needs them.

    A subclass provides ``self._listeners`` (a list), set up when it is constructed."""

    _listeners: list[Callable[[Any], None]]

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Any], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: Any) -> None:
        for listener in list(self._listeners):  # a listener may unsubscribe while called
            listener(event)


class Graph(Observable):
    """Nodes and edges of one network. Mutate only through the methods; each emits an event."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._listeners: list[Listener] = []
        # As a block (designer.engine.model.blocks): the parameters its layers may refer to, and
        # whether its modules are numbered like nn.Sequential's.
        self.block_params: tuple[Any, ...] = ()
        self.sequential = False
        # The networks of the project this graph belongs to (set by the Project): where its
        # block uses find their definitions. None for a graph on its own.
        self.library: dict[str, Graph] | None = None
        self.version = 0  # counts the changes that can alter shapes (not moves)

    def _emit(self, event: GraphEvent) -> None:
        if event.kind != GraphEvent.MOVED:
            self.version += 1
        super()._emit(event)

    # -- queries -------------------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"no node with id {node_id!r}") from None

    def node_by_name(self, name: str) -> Node | None:
        for n in self.nodes.values():
            if n.name == name:
                return n
        return None

    def in_edges(self, node_id: str) -> list[Edge]:
        return sorted((e for e in self.edges if e.dst == node_id), key=lambda e: e.dst_port)

    def out_edges(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def inputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind.is_input]

    def outputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind.is_output]

    def main_outputs(self) -> list[Node]:
        """The Outputs forward returns in every mode (not the training-only auxiliary ones)."""
        return [n for n in self.outputs() if not is_aux_output(n)]

    def unique_name(self, prefix: str) -> str:
        taken = {n.name for n in self.nodes.values()}
        for i in itertools.count(1):
            name = f"{prefix}{i}"
            if name not in taken:
                return name
        raise AssertionError  # pragma: no cover

    def to_nx(self) -> nx.MultiDiGraph:
        import networkx as nx  # deferred: networkx loads only when this runs

        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            g.add_edge(e.src, e.dst, port=e.dst_port)
        return g

    def topological_order(self) -> list[str]:
        """Node ids in an order where every edge points forward (ties broken by insertion order)."""
        import networkx as nx  # deferred: networkx loads only when this runs

        index = {nid: i for i, nid in enumerate(self.nodes)}
        return list(nx.lexicographical_topological_sort(self.to_nx(), key=index.__getitem__))

    def downstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and everything reachable from them."""
        return Adjacency.of(self).reachable(node_ids)

    # -- mutations -----------------------------------------------------------------------------

    def add_node(self, type: str, name: str | None = None, params: dict | None = None,
                 pos: tuple[float, float] = (0.0, 0.0), id: str | None = None,
                 attr: str | None = None) -> Node:
        spec = layer_spec(type)
        if spec is None:
            raise GraphError(f"unknown layer type {type!r}")
        try:
            full = spec.validate_params(params or {})
        except ValueError as exc:
            raise GraphError(f"{type}: {exc}") from None
        if name is None:
            name = self.unique_name(spec.prefix)
        else:
            self._check_name(name)
        if attr is not None:
            self._check_attr(attr, name)
        node_id = id or uuid.uuid4().hex[:12]
        if node_id in self.nodes:
            raise GraphError(f"a node with id {node_id!r} already exists")
        node = Node(node_id, type, name, full, _position(pos), attr=attr)
        self.nodes[node_id] = node
        self._emit(GraphEvent(GraphEvent.NODE_ADDED, node_id, new=node))
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges (emitted as edge events first); returns both for undo."""
        node = self.node(node_id)
        removed = [e for e in self.edges if node_id in (e.src, e.dst)]
        for e in removed:
            self.disconnect(e)
        del self.nodes[node_id]
        self._emit(GraphEvent(GraphEvent.NODE_REMOVED, node_id, old=node))
        return node, removed

    def restore_node(self, node: Node, index: int | None = None) -> None:
        """Put back a node removed earlier (undo), keeping its id; with ``index``, at that place
        in :attr:`nodes` (where it was), so that undo restores :meth:`to_dict` exactly."""
        if node.id in self.nodes:
            raise GraphError(f"a node with id {node.id!r} already exists")
        if index is None or not 0 <= index < len(self.nodes):
            self.nodes[node.id] = node
        else:
            items = list(self.nodes.items())
            items.insert(index, (node.id, node))
            self.nodes.clear()  # reorder in place: whoever holds the dict sees the change
            self.nodes.update(items)
        self._emit(GraphEvent(GraphEvent.NODE_ADDED, node.id, new=node))

    def restore_edge(self, edge: Edge, index: int | None = None) -> None:
        """Put back an edge removed earlier (undo), unchecked; with ``index``, at that place in
        :attr:`edges`, so that undo restores :meth:`to_dict` exactly."""
        if edge.src not in self.nodes or edge.dst not in self.nodes:
            raise GraphError("both ends must be nodes of this graph")
        if edge in self.edges:
            raise GraphError("that edge already exists")
        if index is None or not 0 <= index < len(self.edges):
            self.edges.append(edge)
        else:
            self.edges.insert(index, edge)
        self._emit(GraphEvent(GraphEvent.EDGE_ADDED, edge.dst, edge=edge))

    def can_connect(self, src: str, dst: str, dst_port: int = 0) -> str | None:
        """Why an edge src -> dst:dst_port cannot be made, or None if it can."""
        if src not in self.nodes or dst not in self.nodes:
            return "both ends must be nodes of this graph"
        s, d = self.nodes[src], self.nodes[dst]
        if not s.spec.has_output:
            return f"{s.name} is an Output and has no output port"
        if src == dst:
            return "a layer cannot feed itself"
        spec = d.spec
        if spec.variadic:
            if dst_port < 0 or dst_port > 63:
                return f"{d.name} has no input port {dst_port}"
            ports = d.kind.input_count(d, self.library)  # a block use: its definition's Inputs
            if ports is not None and dst_port >= ports:
                return (f"{d.name} has no input port {dst_port + 1}: block "
                        f"{d.params.get('block')!r} has {ports} Input(s)")
        elif not 0 <= dst_port < spec.num_inputs:
            if spec.num_inputs == 0:
                what = "an Input" if d.kind.is_input else f"a {spec.display_name}"
                return f"{d.name} is {what} and takes no inputs"
            return f"{d.name} has no input port {dst_port}"
        if any(e.dst == dst and e.dst_port == dst_port for e in self.edges):
            return f"input {dst_port + 1} of {d.name} is already connected; disconnect it first"
        if any(e.src == src and e.dst == dst for e in self.edges):
            return f"{s.name} already feeds {d.name}"
        if src in Adjacency.of(self).reachable([dst]):
            return f"connecting {s.name} to {d.name} would make a cycle"
        return None

    def connect(self, src: str, dst: str, dst_port: int = 0, check: bool = True) -> Edge:
        """Add an edge. With ``check`` the edge is refused (GraphError) when :meth:`can_connect` says no."""
        if check:
            why = self.can_connect(src, dst, dst_port)
            if why:
                raise GraphError(why)
        elif src not in self.nodes or dst not in self.nodes:
            raise GraphError("both ends must be nodes of this graph")
        edge = Edge(src, dst, dst_port)
        if edge in self.edges:
            raise GraphError("that edge already exists")
        self.edges.append(edge)
        self._emit(GraphEvent(GraphEvent.EDGE_ADDED, dst, edge=edge))
        return edge

    def disconnect(self, edge: Edge) -> None:
        try:
            self.edges.remove(edge)
        except ValueError:
            raise GraphError("no such edge") from None
        self._emit(GraphEvent(GraphEvent.EDGE_REMOVED, edge.dst, edge=edge))

    def set_params(self, node_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some parameters (validated); returns the old values of those that changed."""
        node = self.node(node_id)
        merged = {**node.params, **changes}
        try:
            full = node.spec.validate_params(merged)
        except ValueError as exc:
            raise GraphError(f"{node.name}: {exc}") from None
        old = {k: node.params.get(k) for k in changes
               if not _same_value(node.params.get(k), full[k])}
        if not old:
            return {}
        new = {k: full[k] for k in old}
        node.params = full
        self._emit(GraphEvent(GraphEvent.PARAMS_CHANGED, node_id, old=old, new=new))
        return old

    def rename(self, node_id: str, name: str) -> str:
        node = self.node(node_id)
        if node.name == name:
            return name
        self._check_name(name)
        old = node.name
        node.name = name
        self._emit(GraphEvent(GraphEvent.RENAMED, node_id, old=old, new=name))
        return old

    def move(self, node_id: str, pos: tuple[float, float]) -> None:
        node = self.node(node_id)
        pos = _position(pos)
        if node.pos == pos:
            return
        old, node.pos = node.pos, pos
        self._emit(GraphEvent(GraphEvent.MOVED, node_id, old=old, new=pos))

    def set_when(self, node_id: str, when: str | None) -> str | None:
        """Switch a layer on by a bool block parameter (None: always on); returns the old one."""
        node = self.node(node_id)
        if when is not None and (not isinstance(when, str) or not when.isidentifier()):
            raise GraphError(f"{node.name}: 'when' names a bool block parameter, got {when!r}")
        if node.kind.is_port and when is not None:
            raise GraphError(f"{node.name}: an {node.type} cannot be switched off")
        old = node.when
        if old != when:
            node.when = when
            self._emit(GraphEvent(GraphEvent.WHEN_CHANGED, node_id, old=old, new=when))
        return old

    def set_frozen(self, node_id: str, frozen: bool) -> bool:
        """Mark a layer or block use not trainable (True) or trainable; returns the old value."""
        node = self.node(node_id)
        old = node.frozen
        if bool(frozen) != old:
            node.frozen = bool(frozen)
            self._emit(GraphEvent(GraphEvent.FROZEN_CHANGED, node_id, old=old, new=node.frozen))
        return old

    def set_block_params(self, params: tuple[Any, ...] | list[Any]) -> tuple[Any, ...]:
        """Declare the block parameters (designer.engine.model.blocks.block_param); returns the old."""
        params = tuple(params)
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise GraphError("two block parameters have the same name")
        if len(params) > MAX_BLOCK_PARAMS:
            raise GraphError(f"a block declares at most {MAX_BLOCK_PARAMS} parameters")
        old = self.block_params
        if params != old:
            self.block_params = params
            self._emit(GraphEvent(GraphEvent.BLOCK_CHANGED, None, old=old, new=params))
        return old

    def set_sequential(self, sequential: bool) -> bool:
        old = self.sequential
        if bool(sequential) != old:
            self.sequential = bool(sequential)
            self._emit(GraphEvent(GraphEvent.BLOCK_CHANGED, None, old=old, new=self.sequential))
        return old

    def _check_name(self, name: str) -> None:
        why = name_problem(name)
        if why:
            raise GraphError(why)
        if self.node_by_name(name) is not None:
            raise GraphError(f"the name {name!r} is taken by another layer")
        if any(n.attr == name for n in self.nodes.values()):
            raise GraphError(f"the name {name!r} is another layer's module attribute")

    def _check_attr(self, attr: str, name: str) -> None:
        why = attr_problem(attr)
        if why:
            raise GraphError(f"{name}: {why}")
        if any(attr in (n.name, n.attr) for n in self.nodes.values()):
            raise GraphError(f"{name}: the module attribute {attr!r} is taken by another layer")
        head = attr.split(".", 1)[0]
        if "." in attr and any(head in (n.name, n.attr) for n in self.nodes.values()):
            raise GraphError(f"{name}: {head!r}, the list holding {attr!r}, is another layer")

    def assign(self, other: Graph) -> None:
        """Make this graph equal to ``other`` in place, through events (edges and nodes removed,
        then ``other``'s added in its order): what undo of a whole-network edit (group, ungroup)
        uses, so that every view follows."""
        for e in list(self.edges):
            self.disconnect(e)
        for nid in list(self.nodes):
            self.remove_node(nid)
        self.set_block_params(other.block_params)
        self.set_sequential(other.sequential)
        for n in other.nodes.values():
            self.restore_node(n.copy())
        for e in other.edges:
            self.restore_edge(e)

    # -- copying -------------------------------------------------------------------------------

    def copy(self) -> Graph:
        """An independent copy with the same ids and no listeners (a frozen snapshot)."""
        g = Graph()
        for n in self.nodes.values():
            g.nodes[n.id] = n.copy()
        g.edges = list(self.edges)
        g.block_params = self.block_params
        g.sequential = self.sequential
        return g

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodes": [
                {"id": n.id, "type": n.type, "name": n.name, "params": _saved_params(n),
                 "pos": [n.pos[0], n.pos[1]], **({"when": n.when} if n.when else {}),
                 **({"frozen": True} if n.frozen else {}),
                 **({"attr": n.attr} if n.attr else {})}
                for n in self.nodes.values()
            ],
            "edges": [{"src": e.src, "dst": e.dst, "dst_port": e.dst_port} for e in self.edges],
        }
        if self.block_params:
            out["params"] = [block_param_to_dict(p) for p in self.block_params]
        if self.sequential:
            out["sequential"] = True
        return out


def _position(pos: Any) -> tuple[float, float]:
    """A canvas position as two finite floats (NaN or infinity could not be saved)."""
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, IndexError):
        raise GraphError(f"a position is two numbers, got {pos!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > 1e7 or abs(y) > 1e7:
        raise GraphError(f"a position must be two numbers within ±10,000,000, got {pos!r}")
    return x, y


def _deepcopy(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else dict(v) if isinstance(v, dict) else v
            for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# Structural checks (networkx)
# --------------------------------------------------------------------------------------------


@dataclass
class Adjacency:
    """Edges indexed by node, built once per check in O(nodes + edges)."""

    preds: dict[str, list[Edge]]  # incoming edges per node, sorted by input port
    succs: dict[str, list[str]]  # target node per outgoing edge (a node may repeat)

    @classmethod
    def of(cls, graph: Graph) -> Adjacency:
        preds: dict[str, list[Edge]] = {nid: [] for nid in graph.nodes}
        succs: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
        for e in graph.edges:
            if e.src in succs and e.dst in preds:
                preds[e.dst].append(e)
                succs[e.src].append(e.dst)
        for ins in preds.values():
            if len(ins) > 1:
                ins.sort(key=lambda e: e.dst_port)
        return cls(preds, succs)

    def reachable(self, start: Iterable[str], backwards: bool = False) -> set[str]:
        """``start`` and every node reachable from it (against the edges with ``backwards``)."""
        seen: set[str] = set()
        stack = [n for n in start if n in self.preds]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if backwards:
                stack.extend(e.src for e in self.preds[n])
            else:
                stack.extend(self.succs[n])
        return seen

    def cycles(self, limit: int = 50) -> list[list[str]]:
        """One cycle through each group of nodes that feed each other (at most ``limit``).

        A quick Kahn pass settles the common acyclic case without networkx; otherwise networkx
        finds the strongly connected components and one concrete cycle in each. (Listing every
        simple cycle can take exponential time, so it is not done.)
        """
        indeg = {nid: len(ins) for nid, ins in self.preds.items()}
        ready = [nid for nid, d in indeg.items() if d == 0]
        done = 0
        while ready:
            nid = ready.pop()
            done += 1
            for s in self.succs[nid]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        if done == len(indeg):
            return []
        import networkx as nx  # deferred: networkx loads only when this runs

        g = nx.DiGraph()
        g.add_nodes_from(n for n, d in indeg.items() if d > 0)
        g.add_edges_from((src, dst) for src, dsts in self.succs.items() for dst in dsts
                         if indeg[src] > 0 and indeg[dst] > 0)
        order = {nid: i for i, nid in enumerate(self.preds)}
        out: list[list[str]] = []
        for comp in sorted(nx.strongly_connected_components(g),
                           key=lambda c: min(order[n] for n in c)):
            start = min(comp, key=order.__getitem__)
            if len(comp) == 1 and not g.has_edge(start, start):
                continue
            cycle = [u for u, _ in nx.find_cycle(g.subgraph(comp), source=start)]
            out.append(cycle)
            if len(out) >= limit:
                break
        return out


def check_structure(graph: Graph, adjacency: Adjacency | None = None) -> list[Problem]:
    """Cycles, unconnected or over-connected ports, unreachable nodes, missing Input/Output,
    duplicate names. Each problem names the nodes to fix and says what to change.

    A problem is reported where it starts, once: a missing connection is one error on the layer
    whose input is empty (naming the layer that probably belongs there); the layers it cuts off
    from the input, and those left leading nowhere, get one quieter warning each group instead of
    an error per layer (issue 18: one removed wire used to give an error on every layer).

    Runs in O(nodes + edges) on an acyclic graph without missing connections, so it can follow
    every edit on the canvas.
    """
    problems: list[Problem] = []
    nodes = graph.nodes
    adj = adjacency or Adjacency.of(graph)
    input_ids: list[str] = []
    output_ids: list[str] = []
    for n in nodes.values():
        kind = n.kind
        if kind.is_input:
            input_ids.append(n.id)
        elif kind.is_output:
            output_ids.append(n.id)
    # A layer without inputs that is not an Input (Parameter) is a source of data of its own.
    sources = [n.id for n in nodes.values() if n.spec.num_inputs == 0 and not n.spec.variadic]
    from_input = adj.reachable(sources)
    to_output = adj.reachable(output_ids, backwards=True)

    if not input_ids:
        problems.append(Problem("error", "The design has no Input layer: add one from the palette "
                                "and set the shape of one sample", (), "no_input"))
    if not output_ids:
        problems.append(Problem("error", "The design has no Output layer: add one and connect the "
                                "last layer to it", (), "no_output"))
    elif all(is_aux_output(nodes[o]) for o in output_ids):
        problems.append(Problem("error", "Every Output is auxiliary (aux_weight > 0, returned in "
                                "training only): set one's aux_weight to 0, the main output",
                                tuple(output_ids), "no_output"))

    seen: dict[str, str] = {}
    for n in nodes.values():
        if n.name in seen:
            problems.append(Problem("error", f"Two layers are named {n.name!r}: rename one",
                                    (seen[n.name], n.id), "duplicate_name"))
        else:
            seen[n.name] = n.id

    in_cycle: set[str] = set()
    for cycle in adj.cycles():
        in_cycle.update(cycle)
        names = " -> ".join(nodes[c].name for c in cycle + cycle[:1])
        problems.append(Problem("error", f"Cycle: {names}. Remove one of these connections; "
                                "data must flow one way", tuple(cycle), "cycle"))

    # Layers with data that go nowhere: what probably belongs in an empty input.
    loose_ends = [nid for nid in nodes if nid in from_input and not adj.succs[nid]
                  and nodes[nid].spec.has_output]
    missing: list[str] = []  # layers with an empty input, in graph order
    for n in nodes.values():
        spec = n.spec
        ins = adj.preds[n.id]
        if spec.variadic:
            if len(ins) < spec.min_inputs:
                missing.append(n.id)
                problems.append(Problem(
                    "error", f"{spec.display_name} '{n.name}' needs at least {spec.min_inputs} "
                    f"inputs but has {len(ins)}: "
                    + _what_to_connect(graph, adj, n.id, loose_ends, "connect more layers to it"),
                    (n.id,), "too_few_inputs"))
            counts: dict[int, int] = {}
            for e in ins:
                counts[e.dst_port] = counts.get(e.dst_port, 0) + 1
            for port, count in counts.items():
                if count > 1:
                    problems.append(Problem(
                        "error", f"Input {port + 1} of '{n.name}' has {count} connections: "
                        "keep one", (n.id,), "too_many_inputs", port))
        else:
            counts = {port: 0 for port in range(spec.num_inputs)}
            for e in ins:
                if e.dst_port in counts:
                    counts[e.dst_port] += 1
                else:
                    problems.append(Problem(
                        "error", f"'{n.name}' has no input port {e.dst_port + 1} "
                        f"(a {spec.display_name} takes {spec.num_inputs}): remove that connection",
                        (n.id,), "bad_port", e.dst_port))
            for port, count in counts.items():
                if count == 0:
                    if not missing or missing[-1] != n.id:
                        missing.append(n.id)
                    what = f"input {port + 1}" if spec.num_inputs > 1 else "its input"
                    problems.append(Problem(
                        "error", f"{spec.display_name} '{n.name}' has nothing connected to {what}: "
                        + _what_to_connect(graph, adj, n.id, loose_ends,
                                           "connect a layer to it or delete it"),
                        (n.id,), "unconnected_input", port))
                elif count > 1:
                    problems.append(Problem(
                        "error", f"{spec.display_name} '{n.name}' has {count} connections into one "
                        "input: use an Add or Concat layer to merge them", (n.id,),
                        "too_many_inputs", port))
        if not spec.has_output and adj.succs[n.id]:
            problems.append(Problem("error", f"Output '{n.name}' cannot feed other layers: remove "
                                    "its outgoing connections", (n.id,), "output_has_edges"))

    if input_ids and output_ids:
        problems += _reachability(graph, adj, from_input, to_output, missing, in_cycle)
    return problems


def _names(graph: Graph, node_ids: Iterable[str], limit: int = 5) -> str:
    """'a', 'b' and 'c' (at most ``limit`` names, then how many more)."""
    names = [f"'{graph.nodes[n].name}'" for n in node_ids]
    if len(names) > limit:
        names = names[:limit - 1] + [f"{len(names) - limit + 1} more"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _what_to_connect(graph: Graph, adj: Adjacency, node_id: str, loose_ends: list[str],
                     otherwise: str) -> str:
    """The fix for an empty input: the layers whose output goes nowhere and could feed this one
    without making a cycle (usually the other end of a removed wire), or ``otherwise``."""
    if not loose_ends:
        return otherwise
    after = adj.reachable([node_id])
    fits = [nid for nid in loose_ends if nid not in after]
    if not fits:
        return otherwise
    if len(fits) == 1:
        return f"connect {_names(graph, fits)} to it (its output goes nowhere), or delete it"
    return f"connect one of {_names(graph, fits, 3)} to it, or delete it"


def _reachability(graph: Graph, adj: Adjacency, from_input: set[str], to_output: set[str],
                  missing: list[str], in_cycle: set[str]) -> list[Problem]:
    """Layers cut off from every Input, and layers that lead to no Output.

    Being cut off is always the consequence of an empty input or a cycle further up (a layer
    without inputs is an Input, a source such as a Parameter, or has an empty one), which is
    already an error: the layers
    it cuts off share one warning naming it. A layer that leads to no Output is its own error
    unless a missing connection on the way to an Output explains it: then only the loose end (the
    layer whose output goes nowhere, probably the other end of that connection) gets a warning.
    """
    nodes = graph.nodes
    problems: list[Problem] = []
    causes: dict[str, set[str]] = {}  # cut-off layer -> the errors upstream that cut it off
    for root in [*missing, *(n for n in nodes if n in in_cycle)]:
        if root in from_input:
            continue
        for nid in adj.reachable([root]):
            if nid not in from_input:
                causes.setdefault(nid, set()).add(root)
    groups: dict[tuple[str, ...], list[str]] = {}
    for n in nodes:
        if n in from_input:
            continue
        roots = causes.get(n, set())
        if n in roots:
            continue  # the layer with the empty input (or in the cycle): its own error says it
        if not roots:  # cannot happen in a graph (see above); never let it pass quietly
            problems.append(Problem(
                "error", f"'{nodes[n].name}' is cut off from every Input: connect it to the data "
                "path or delete it", (n,), "unreachable_from_input"))
            continue
        groups.setdefault(tuple(r for r in nodes if r in roots), []).append(n)
    for roots, cut in groups.items():
        verb = "gets" if len(cut) == 1 else "get"
        until = ("the cycle is broken" if all(r in in_cycle for r in roots)
                 else f"{_names(graph, roots)} {'is' if len(roots) == 1 else 'are'} connected")
        problems.append(Problem(
            "warning", f"Not reachable from the input: {_names(graph, cut)} {verb} no data until "
            f"{until}", tuple(cut), "unreachable_from_input"))

    on_the_way = [r for r in missing if r in to_output]  # empty inputs on a path to an Output
    behind = [adj.reachable([r]) for r in on_the_way]
    loose: list[str] = []  # explained layers whose output goes nowhere: the other wire ends
    for n in nodes:
        if n not in from_input or n in to_output:
            continue
        if nodes[n].spec.bare_parameter and not adj.succs[n] and nodes[n].spec.num_inputs == 0 \
                and nodes[n].params.get("stored") in ("parameter", "buffer"):
            continue  # a tensor of the model forward never reads (num_batches_tracked): kept
        if any(n not in after for after in behind):
            # Explained by the missing connection; the layers before a loose end lead nowhere
            # only because it does, so it alone is named.
            if not adj.succs[n]:
                loose.append(n)
        else:
            problems.append(Problem(
                "error", f"'{nodes[n].name}' does not lead to any Output, so it is never used: "
                "connect it onward or delete it", (n,), "unreachable_to_output"))
    if loose:
        one = len(loose) == 1
        problems.append(Problem(
            "warning", f"{_names(graph, loose)} {'leads' if one else 'lead'} to no Output: "
            f"connect {'it' if one else 'them'} onward, e.g. to {_names(graph, on_the_way, 3)}",
            tuple(loose), "unreachable_to_output"))
    return problems
