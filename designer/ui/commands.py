"""Undo commands: every user edit of the document is one :class:`QUndoCommand`.

Each command changes the engine :class:`~designer.engine.model.graph.Graph` and
:class:`~designer.engine.document.project.Project` only through their methods, never by assigning their
attributes, so undo and redo fire the same model events as the original edit and every view
follows by itself. A command that removes something records where it was (its index in
``graph.edges``, ``graph.nodes`` or ``project.networks``) and has the model put it back at that
very place, so undo restores ``graph.to_dict()`` and ``project.to_dict()`` exactly.
Several edits that form one gesture (deleting a selection, pasting) are children of one parent
command: Qt redoes children in order and undoes them in reverse.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from designer.engine.document.project import Project
from designer.engine.model.graph import Edge, Graph, Node


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
        self.graph.restore_node(self._node, self._index)


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
        self.graph.restore_edge(self.edge, self._index)


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


# -- the project: its networks, name and description ----------------------------------------------


class AddNetworkCommand(QUndoCommand):
    """Add a network (a graph, empty or given) under ``name``; undo removes it, redo puts the very
    same graph back, so commands made on it in between stay valid."""

    def __init__(self, project: Project, name: str, graph: Graph | None = None,
                 index: int | None = None, parent: MacroCommand | None = None) -> None:
        super().__init__(f"Add network '{name}'")
        self.project, self.name, self.index = project, name, index
        self.graph = graph if graph is not None else Graph()
        if parent is not None:
            parent.add(self)

    def redo(self) -> None:
        self.project.add_network(self.name, self.graph, self.index)

    def undo(self) -> None:
        self.project.remove_network(self.name)


class RemoveNetworkCommand(QUndoCommand):
    """Remove a network; undo puts the same graph back at its place among the networks."""

    def __init__(self, project: Project, name: str, parent: MacroCommand | None = None) -> None:
        super().__init__(f"Delete network '{name}'")
        self.project, self.name = project, name
        self._graph: Graph | None = None
        self._index = -1
        if parent is not None:
            parent.add(self)

    def redo(self) -> None:
        self._graph, self._index = self.project.remove_network(self.name)

    def undo(self) -> None:
        assert self._graph is not None
        self.project.add_network(self.name, self._graph, self._index)


class RenameNetworkCommand(QUndoCommand):
    """Rename a network, keeping its place among the networks."""

    def __init__(self, project: Project, old: str, new: str,
                 parent: MacroCommand | None = None) -> None:
        super().__init__(f"Rename network '{old}' to '{new}'")
        self.project, self.old_name, self.new_name = project, old, new
        if parent is not None:
            parent.add(self)

    def redo(self) -> None:
        self.project.rename_network(self.old_name, self.new_name)

    def undo(self) -> None:
        self.project.rename_network(self.new_name, self.old_name)


class SetProjectTextCommand(QUndoCommand):
    """Change the project's ``name`` or ``description``."""

    def __init__(self, project: Project, field: str, value: str,
                 parent: MacroCommand | None = None) -> None:
        if field not in ("name", "description"):
            raise ValueError(f"a project has no text field {field!r}")
        super().__init__(f"Rename the project to '{value}'" if field == "name"
                         else "Change the project's description")
        self.project, self.field = project, field
        self.old, self.new = getattr(project, field), value
        if parent is not None:
            parent.add(self)

    def _set(self, value: str) -> None:
        if self.field == "name":
            self.project.set_name(value)
        else:
            self.project.set_description(value)

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


# -- blocks: a network's block parameters, switches, and whole-network edits ----------------------


class SetWhenCommand(GraphCommand):
    """Switch a layer on by a bool block parameter (``None``: always on)."""

    def __init__(self, graph: Graph, node_id: str, when: str | None,
                 parent: MacroCommand | None = None) -> None:
        node = graph.node(node_id)
        super().__init__(graph, f"Switch '{node.name}' on by {when}" if when
                         else f"Keep '{node.name}' always on", parent)
        self.node_id, self.old, self.new = node_id, node.when, when

    def redo(self) -> None:
        self.graph.set_when(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.set_when(self.node_id, self.old)


class SetFrozenCommand(GraphCommand):
    """Make a layer or block use not trainable (frozen) or trainable again."""

    def __init__(self, graph: Graph, node_id: str, frozen: bool,
                 parent: MacroCommand | None = None) -> None:
        node = graph.node(node_id)
        super().__init__(graph, f"Freeze '{node.name}'" if frozen
                         else f"Make '{node.name}' trainable", parent)
        self.node_id, self.old, self.new = node_id, node.frozen, bool(frozen)

    def redo(self) -> None:
        self.graph.set_frozen(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.set_frozen(self.node_id, self.old)


class SetBlockParamsCommand(GraphCommand):
    """Declare, edit or remove the network's block parameters (the whole tuple before/after)."""

    def __init__(self, graph: Graph, params: tuple[Any, ...], text: str,
                 parent: MacroCommand | None = None) -> None:
        super().__init__(graph, text, parent)
        self.old, self.new = tuple(graph.block_params), tuple(params)

    def redo(self) -> None:
        self.graph.set_block_params(self.new)

    def undo(self) -> None:
        self.graph.set_block_params(self.old)


class SetSequentialCommand(GraphCommand):
    """Number the network's modules like ``nn.Sequential`` (or by name again)."""

    def __init__(self, graph: Graph, sequential: bool, parent: MacroCommand | None = None) -> None:
        super().__init__(graph, "Number the modules like nn.Sequential" if sequential
                         else "Name the modules by layer name", parent)
        self.old, self.new = graph.sequential, bool(sequential)

    def redo(self) -> None:
        self.graph.set_sequential(self.new)

    def undo(self) -> None:
        self.graph.set_sequential(self.old)


class NetworksCommand(QUndoCommand):
    """A whole-network edit already made (group, ungroup, make unique): holds the project's networks
    before and after (``designer.engine.model.blocks.networks_state``) and restores one or the other in
    place. Only networks that differ are touched, so views of the others see no events. The first
    redo does nothing: the edit was made by the engine function before the command was pushed."""

    def __init__(self, project: Project, before: list, after: list, text: str) -> None:
        super().__init__(text)
        self.project, self.before, self.after = project, before, after
        self._done = True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        _restore_changed(self.project, self.after)

    def undo(self) -> None:
        _restore_changed(self.project, self.before)


def _restore_changed(project: Project, state: list) -> None:
    from designer.engine.model.blocks import restore_networks

    wanted = [name for name, _ in state]
    for name in [n for n in project.networks if n not in wanted]:
        project.remove_network(name)
    for index, (name, graph) in enumerate(state):
        live = project.networks.get(name)
        if live is None:
            project.add_network(name, graph.copy(), index)
        elif live.to_dict() != graph.to_dict():
            live.assign(graph)
    if list(project.networks) != wanted:  # not expected: the engine's restore also orders them
        restore_networks(project, state)


# -- sweeps: the project's search section and applying a trial's values ------------------------


class SetSearchCommand(QUndoCommand):
    """Replace the project's ``search`` section (``Project.set_search``: it announces the change
    with ``settings_changed`` "search"); ``{}`` removes it."""

    def __init__(self, project: Project, search: dict[str, Any], text: str,
                 parent: MacroCommand | None = None) -> None:
        super().__init__(text)
        import copy

        self.project = project
        self.old, self.new = copy.deepcopy(project.search), copy.deepcopy(search)
        if parent is not None:
            parent.add(self)

    def redo(self) -> None:
        self.project.set_search(self.new)

    def undo(self) -> None:
        self.project.set_search(self.old)


class SetTrainingValuesCommand(QUndoCommand):
    """Set some training settings (the rest of the section kept); undo puts the whole section
    back as it was (``Project.set_section``)."""

    def __init__(self, project: Project, values: dict[str, Any],
                 parent: MacroCommand | None = None) -> None:
        super().__init__("Change " + ", ".join(values))
        import copy

        self.project = project
        self.old = copy.deepcopy(project.training)
        self.new = {**copy.deepcopy(project.training), **copy.deepcopy(values)}
        if parent is not None:
            parent.add(self)

    def redo(self) -> None:
        self.project.set_section("training", self.new)

    def undo(self) -> None:
        self.project.set_section("training", self.old)
