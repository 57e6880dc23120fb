"""One walk over a network that every pass shares, dispatching each node on its kind.

As torch.fx's ``Interpreter`` (``run`` walks the graph, ``run_node`` dispatches to
``placeholder``/``call_module``/``output``), :class:`GraphInterpreter` walks a
:class:`~designer.engine.model.graph.Graph` in topological order and calls, for each node, the method
named by its kind (:mod:`.nodes`): :meth:`~GraphInterpreter.input`,
:meth:`~GraphInterpreter.output`, :meth:`~GraphInterpreter.layer` or
:meth:`~GraphInterpreter.block`, with the results of the nodes feeding it (in port order). A pass
(shape inference, build, the model-class writer, the memory estimate, look-inside) subclasses it
and overrides the methods of the kinds it treats apart; each falls back to
:meth:`~GraphInterpreter.node`.

:meth:`~GraphInterpreter.run_node` dispatches anything that has a ``kind``: a graph's nodes, or
the steps of a built forward program (:class:`designer.engine.model.build.Step`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from .graph import Adjacency, Graph


class GraphInterpreter:
    """Walks ``graph`` in topological order; subclasses override the per-kind methods.

    ``env`` holds each node's result by node id (what the nodes it feeds receive as ``args``).
    ``order`` fixes the walk (an analysis's order); None: :func:`topological_order`, computed
    when :meth:`run` first needs it, as is ``adjacency``. ``graph`` None: a pass that only
    dispatches (:meth:`run_node` on the steps of a forward program)."""

    def __init__(self, graph: Graph | None, order: Iterable[str] | None = None,
                 adjacency: Adjacency | None = None) -> None:
        self.graph = graph
        self.adjacency = adjacency
        self.order = list(order) if order is not None else None
        self.env: dict[str, Any] = {}

    def run(self, rerun: set[str] | None = None) -> dict[str, Any]:
        """Run every node in order; returns :attr:`env`.

        With ``rerun`` the run is incremental: a node outside it that already has a result
        keeps it. :meth:`run_node` may add to ``rerun`` while the walk goes on (the nodes fed by
        one whose result changed)."""
        if self.adjacency is None:
            self.adjacency = Adjacency.of(self.graph)
        if self.order is None:
            self.order = topological_order(self.graph, self.adjacency)
        nodes, preds, env = self.graph.nodes, self.adjacency.preds, self.env
        for nid in self.order:
            if rerun is not None and nid not in rerun and nid in env:
                continue
            env[nid] = self.run_node(nodes[nid], [env.get(e.src) for e in preds[nid]])
        return env

    def run_node(self, node: Any, args: list[Any]) -> Any:
        """The result of one node (or step): the method of its kind."""
        return getattr(self, node.kind.method)(node, args)

    # -- one method per kind; each defaults to node() -------------------------------------------

    def input(self, node: Any, args: list[Any]) -> Any:
        """An Input (``args`` is empty)."""
        return self.node(node, args)

    def output(self, node: Any, args: list[Any]) -> Any:
        """An Output (``args``: what feeds it)."""
        return self.node(node, args)

    def layer(self, node: Any, args: list[Any]) -> Any:
        """A catalog layer."""
        return self.node(node, args)

    def block(self, node: Any, args: list[Any]) -> Any:
        """A block use: another network of the project used as one layer."""
        return self.node(node, args)

    def node(self, node: Any, args: list[Any]) -> Any:
        """What a kind without a method of its own gives: nothing."""
        return None


def topological_order(graph: Graph, adj: Adjacency | None = None,
                      in_cycle: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Node ids in an order where every edge points forward, by Kahn's algorithm always taking
    the ready node added to the graph first (so a branch runs where it was added: torchvision's
    BasicBlock registers conv1 ... bn2 before its downsample, and a block written in that order
    builds its modules, and its state_dict, in that order); nodes in or behind a cycle
    (``in_cycle``) are left out."""
    adj = adj if adj is not None else Adjacency.of(graph)
    blocked = adj.reachable(in_cycle) if in_cycle else set()
    index = {nid: i for i, nid in enumerate(graph.nodes)}
    indeg = {nid: 0 for nid in graph.nodes if nid not in blocked}
    for nid in indeg:
        indeg[nid] = sum(1 for e in adj.preds[nid] if e.src not in blocked)
    ready = [(index[nid], nid) for nid, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, nid = heapq.heappop(ready)
        order.append(nid)
        for s in adj.succs[nid]:
            if s in indeg:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, (index[s], s))
    return order


__all__ = ["GraphInterpreter", "topological_order"]
