"""Undo commands: every user edit of the document is one :class:`QUndoCommand`.

Each command changes the engine :class:`~designer.engine.graph.Graph` only through its methods, so
undo and redo fire the same model events as the original edit and every view follows by itself.
A command that removes something records where it was (its index in ``graph.edges`` or in
``graph.nodes``) and puts it back at that very place, so undo restores ``graph.to_dict()`` exactly.
Several edits that form one gesture (deleting a selection, pasting) are children of one parent
command: Qt redoes children in order and undoes them in reverse.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from designer.engine.graph import Edge, Graph, Node


def _reinsert_edge(graph: Graph, edge: Edge, index: int) -> None:
    """Connect ``edge`` again (emitting the event) and move it back to ``index`` in the edge list."""
    graph.connect(edge.src, edge.dst, edge.dst_port, check=False)
    edges = graph.edges
    if 0 <= index < len(edges) - 1:
        edges.pop()  # connect appended it
        edges.insert(index, edge)


def _reinsert_node(graph: Graph, node: Node, index: int) -> None:
    """Restore a removed node (emitting the event) at position ``index`` of ``graph.nodes``."""
    graph.restore_node(node)
    nodes = graph.nodes
    if 0 <= index < len(nodes) - 1:
        items = list(nodes.items())
        last = items.pop()
        items.insert(index, last)
        nodes.clear()  # reorder in place: listeners keep the same dict object
        nodes.update(items)


class MacroCommand(QUndoCommand):
    """Several commands that form one gesture: redone in order, undone in reverse.

    The children are kept in a Python list rather than as Qt child commands: PySide neither keeps
    a Python child command alive once it is given a Qt parent (a collected child crashes redo) nor
    leaves its deletion to the parent alone (a double free at exit).
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.commands: list[QUndoCommand] = []

    def add(self, command: QUndoCommand) -> QUndoCommand:
        self.commands.append(command)
        return command

    def redo(self) -> None:
        for command in self.commands:
            command.redo()

    def undo(self) -> None:
        for command in reversed(self.commands):
            command.undo()


class GraphCommand(QUndoCommand):
    """Base class: a command acting on one graph (the network that was current when it was made)."""

    def __init__(self, graph: Graph, text: str, parent: MacroCommand | None = None) -> None:
        super().__init__(text)
        self.graph = graph
        if parent is not None:
            parent.add(self)


class AddNodeCommand(GraphCommand):
    """Add one node with a fixed id; undo removes it (it has no edges by then)."""

    def __init__(self, graph: Graph, type_id: str, name: str, params: dict[str, Any],
                 pos: tuple[float, float], node_id: str, text: str | None = None,
                 parent: MacroCommand | None = None) -> None:
        super().__init__(graph, text or f"Add {type_id} '{name}'", parent)
        self.type_id, self.name, self.params = type_id, name, dict(params)
        self.pos, self.node_id = (float(pos[0]), float(pos[1])), node_id
        self._node: Node | None = None

    def redo(self) -> None:
        if self._node is None:
            self._node = self.graph.add_node(self.type_id, self.name, self.params, self.pos,
                                             id=self.node_id)
        else:
            self.graph.restore_node(self._node)

    def undo(self) -> None:
        self.graph.remove_node(self.node_id)


class RemoveNodeCommand(GraphCommand):
    """Remove one node whose edges were already removed by sibling commands."""

    def __init__(self, graph: Graph, node_id: str, parent: MacroCommand | None = None) -> None:
        node = graph.node(node_id)
        super().__init__(graph, f"Delete {node.type} '{node.name}'", parent)
        self.node_id = node_id
        self._node: Node | None = None
        self._index = -1

    def redo(self) -> None:
        self._index = list(self.graph.nodes).index(self.node_id)
        self._node, edges = self.graph.remove_node(self.node_id)
        assert not edges, "edges must be removed by DisconnectCommand children first"

    def undo(self) -> None:
        assert self._node is not None
        _reinsert_node(self.graph, self._node, self._index)


class ConnectCommand(GraphCommand):
    """Add one edge; the caller checked it with ``graph.can_connect`` before pushing."""

    def __init__(self, graph: Graph, src: str, dst: str, dst_port: int,
                 parent: MacroCommand | None = None) -> None:
        text = (f"Connect '{graph.node(src).name}' to '{graph.node(dst).name}'"
                if src in graph.nodes and dst in graph.nodes else "Connect")
        super().__init__(graph, text, parent)
        self.edge = Edge(src, dst, dst_port)

    def redo(self) -> None:
        self.graph.connect(self.edge.src, self.edge.dst, self.edge.dst_port, check=False)

    def undo(self) -> None:
        self.graph.disconnect(self.edge)


class DisconnectCommand(GraphCommand):
    """Remove one edge; undo puts it back at the same place in the edge list."""

    def __init__(self, graph: Graph, edge: Edge, parent: MacroCommand | None = None) -> None:
        names = graph.nodes
        text = (f"Disconnect '{names[edge.src].name}' from '{names[edge.dst].name}'"
                if edge.src in names and edge.dst in names else "Disconnect")
        super().__init__(graph, text, parent)
        self.edge = edge
        self._index = -1

    def redo(self) -> None:
        self._index = self.graph.edges.index(self.edge)
        self.graph.disconnect(self.edge)

    def undo(self) -> None:
        _reinsert_edge(self.graph, self.edge, self._index)


class MoveNodesCommand(GraphCommand):
    """Move nodes from old to new positions (one drag gesture, or an auto-layout).

    During a drag the canvas already moved the nodes in the model, so the first redo usually
    changes nothing; ``Graph.move`` emits nothing when a position is unchanged.
    """

    def __init__(self, graph: Graph, moves: dict[str, tuple[tuple[float, float], tuple[float, float]]],
                 text: str | None = None, parent: MacroCommand | None = None) -> None:
        if text is None:
            if len(moves) == 1:
                nid = next(iter(moves))
                text = f"Move '{graph.node(nid).name}'"
            else:
                text = f"Move {len(moves)} layers"
        super().__init__(graph, text, parent)
        self.moves = {nid: ((float(o[0]), float(o[1])), (float(n[0]), float(n[1])))
                      for nid, (o, n) in moves.items()}

    def redo(self) -> None:
        for nid, (_, new) in self.moves.items():
            self.graph.move(nid, new)

    def undo(self) -> None:
        for nid, (old, _) in self.moves.items():
            self.graph.move(nid, old)


class SetParamsCommand(GraphCommand):
    """Change parameters of one node; ``old`` and ``new`` hold only the keys that change."""

    def __init__(self, graph: Graph, node_id: str, old: dict[str, Any], new: dict[str, Any],
                 parent: MacroCommand | None = None) -> None:
        node = graph.node(node_id)
        keys = ", ".join(new)
        super().__init__(graph, f"Change {keys} of '{node.name}'", parent)
        self.node_id, self.old, self.new = node_id, dict(old), dict(new)

    def redo(self) -> None:
        self.graph.set_params(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.set_params(self.node_id, self.old)


class RenameCommand(GraphCommand):
    def __init__(self, graph: Graph, node_id: str, new_name: str,
                 parent: MacroCommand | None = None) -> None:
        old = graph.node(node_id).name
        super().__init__(graph, f"Rename '{old}' to '{new_name}'", parent)
        self.node_id, self.old_name, self.new_name = node_id, old, new_name

    def redo(self) -> None:
        self.graph.rename(self.node_id, self.new_name)

    def undo(self) -> None:
        self.graph.rename(self.node_id, self.old_name)
