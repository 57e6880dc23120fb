"""The document: a layer graph of nodes and edges, with change events and structural checks.

The graph is the single source of truth. Every mutation goes through a method here, which emits one
:class:`GraphEvent` (only when something really changed), so views such as the canvas and the
analyzer can follow along. No Qt here.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import networkx as nx

from .catalog import CATALOG, LayerSpec, name_problem

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

    @property
    def spec(self) -> LayerSpec:
        return CATALOG[self.type]


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


class Graph:
    """Nodes and edges of one network. Mutate only through the methods; each emits an event."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._listeners: list[Listener] = []

    # -- events --------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: GraphEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

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
        return [n for n in self.nodes.values() if n.type == "Input"]

    def outputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == "Output"]

    def unique_name(self, prefix: str) -> str:
        taken = {n.name for n in self.nodes.values()}
        for i in itertools.count(1):
            name = f"{prefix}{i}"
            if name not in taken:
                return name
        raise AssertionError  # pragma: no cover

    def to_nx(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            g.add_edge(e.src, e.dst, port=e.dst_port)
        return g

    def topological_order(self) -> list[str]:
        """Node ids in an order where every edge points forward (ties broken by insertion order)."""
        index = {nid: i for i, nid in enumerate(self.nodes)}
        return list(nx.lexicographical_topological_sort(self.to_nx(), key=index.__getitem__))

    def downstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and everything reachable from them."""
        g = self.to_nx()
        out: set[str] = set()
        for nid in node_ids:
            if nid in g:
                out.add(nid)
                out |= nx.descendants(g, nid)
        return out

    # -- mutations -----------------------------------------------------------------------------

    def add_node(self, type: str, name: str | None = None, params: dict | None = None,
                 pos: tuple[float, float] = (0.0, 0.0), id: str | None = None) -> Node:
        spec = CATALOG.get(type)
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
        node_id = id or uuid.uuid4().hex[:12]
        if node_id in self.nodes:
            raise GraphError(f"a node with id {node_id!r} already exists")
        node = Node(node_id, type, name, full, (float(pos[0]), float(pos[1])))
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

    def restore_node(self, node: Node) -> None:
        """Put back a node removed earlier (undo), keeping its id."""
        if node.id in self.nodes:
            raise GraphError(f"a node with id {node.id!r} already exists")
        self.nodes[node.id] = node
        self._emit(GraphEvent(GraphEvent.NODE_ADDED, node.id, new=node))

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
        elif not 0 <= dst_port < spec.num_inputs:
            if spec.num_inputs == 0:
                return f"{d.name} is an Input and takes no inputs"
            return f"{d.name} has no input port {dst_port}"
        if any(e.dst == dst and e.dst_port == dst_port for e in self.edges):
            return f"input {dst_port + 1} of {d.name} is already connected; disconnect it first"
        if any(e.src == src and e.dst == dst for e in self.edges):
            return f"{s.name} already feeds {d.name}"
        g = self.to_nx()
        if nx.has_path(g, dst, src):
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
        old = {k: node.params.get(k) for k in changes if node.params.get(k) != full[k]}
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
        pos = (float(pos[0]), float(pos[1]))
        if node.pos == pos:
            return
        old, node.pos = node.pos, pos
        self._emit(GraphEvent(GraphEvent.MOVED, node_id, old=old, new=pos))

    def _check_name(self, name: str) -> None:
        why = name_problem(name)
        if why:
            raise GraphError(why)
        if self.node_by_name(name) is not None:
            raise GraphError(f"the name {name!r} is taken by another layer")

    # -- copying -------------------------------------------------------------------------------

    def copy(self) -> "Graph":
        """An independent copy with the same ids and no listeners (a frozen snapshot)."""
        g = Graph()
        for n in self.nodes.values():
            g.nodes[n.id] = Node(n.id, n.type, n.name, _deepcopy(n.params), n.pos)
        g.edges = list(self.edges)
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {"id": n.id, "type": n.type, "name": n.name, "params": _deepcopy(n.params),
                 "pos": [n.pos[0], n.pos[1]]}
                for n in self.nodes.values()
            ],
            "edges": [{"src": e.src, "dst": e.dst, "dst_port": e.dst_port} for e in self.edges],
        }


def _deepcopy(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# Structural checks (networkx)
# --------------------------------------------------------------------------------------------


def check_structure(graph: Graph) -> list[Problem]:
    """Cycles, unconnected or over-connected ports, unreachable nodes, missing Input/Output,
    duplicate names. Each problem names the nodes to fix and says what to change."""
    problems: list[Problem] = []
    nodes = graph.nodes
    g = graph.to_nx()

    if not graph.inputs():
        problems.append(Problem("error", "The design has no Input layer: add one from the palette "
                                "and set the shape of one sample", (), "no_input"))
    if not graph.outputs():
        problems.append(Problem("error", "The design has no Output layer: add one and connect the "
                                "last layer to it", (), "no_output"))

    seen: dict[str, str] = {}
    for n in nodes.values():
        if n.name in seen:
            problems.append(Problem("error", f"Two layers are named {n.name!r}: rename one",
                                    (seen[n.name], n.id), "duplicate_name"))
        else:
            seen[n.name] = n.id

    simple = nx.DiGraph(g)
    for cycle in nx.simple_cycles(simple):
        names = " -> ".join(nodes[c].name for c in cycle + cycle[:1])
        problems.append(Problem("error", f"Cycle: {names}. Remove one of these connections; "
                                "data must flow one way", tuple(cycle), "cycle"))
        if len(problems) > 50:
            break

    for n in nodes.values():
        spec = n.spec
        ins = graph.in_edges(n.id)
        if spec.variadic:
            ports = [e.dst_port for e in ins]
            if len(ins) < spec.min_inputs:
                problems.append(Problem(
                    "error", f"{spec.display_name} '{n.name}' needs at least {spec.min_inputs} "
                    f"inputs but has {len(ins)}: connect more layers to it", (n.id,), "too_few_inputs"))
            for p in sorted(set(ports)):
                if ports.count(p) > 1:
                    problems.append(Problem(
                        "error", f"Input {p + 1} of '{n.name}' has {ports.count(p)} connections: "
                        "keep one", (n.id,), "too_many_inputs", p))
        else:
            for port in range(spec.num_inputs):
                count = sum(1 for e in ins if e.dst_port == port)
                if count == 0:
                    what = f"input {port + 1}" if spec.num_inputs > 1 else "its input"
                    problems.append(Problem(
                        "error", f"{spec.display_name} '{n.name}' has nothing connected to {what}: "
                        "connect a layer to it or delete it", (n.id,), "unconnected_input", port))
                elif count > 1:
                    problems.append(Problem(
                        "error", f"{spec.display_name} '{n.name}' has {count} connections into one "
                        "input: use an Add or Concat layer to merge them", (n.id,),
                        "too_many_inputs", port))
            for e in ins:
                if e.dst_port >= spec.num_inputs:
                    problems.append(Problem(
                        "error", f"'{n.name}' has no input port {e.dst_port + 1} "
                        f"(a {spec.display_name} takes {spec.num_inputs})", (n.id,),
                        "bad_port", e.dst_port))
        if not spec.has_output and graph.out_edges(n.id):
            problems.append(Problem("error", f"Output '{n.name}' cannot feed other layers",
                                    (n.id,), "output_has_edges"))

    input_ids = [n.id for n in graph.inputs()]
    output_ids = [n.id for n in graph.outputs()]
    if input_ids and output_ids:
        from_input: set[str] = set()
        for i in input_ids:
            from_input |= {i} | nx.descendants(g, i)
        to_output: set[str] = set()
        for o in output_ids:
            to_output |= {o} | nx.ancestors(g, o)
        for n in nodes.values():
            if n.id not in from_input and n.type != "Input":
                problems.append(Problem(
                    "error", f"'{n.name}' is cut off from every Input: connect it to the data path "
                    "or delete it", (n.id,), "unreachable_from_input"))
            elif n.id not in to_output:
                problems.append(Problem(
                    "error", f"'{n.name}' does not lead to any Output, so it is never used: connect it "
                    "onward or delete it", (n.id,), "unreachable_to_output"))
    return problems
