"""The open document: a project, its undo stack, and live shape analysis.

:class:`Document` is what the window and the canvas work on. Every edit is a method here that
checks the request, raises :class:`~designer.engine.model.graph.GraphError` with the reason when it is
refused, and otherwise pushes ONE undo command (``designer.ui.commands``) whose text says what it
did ("Add Linear 'fc1'"). The engine graph and project stay the single source of truth: their
events are re-emitted as :attr:`Document.graph_event` and :attr:`Document.project_event` (and
:attr:`Document.settings_changed`) so views follow edits, undo and redo alike.

After an edit, shapes and problems are re-checked after a short pause (debounced), on a worker
thread, and announced through :attr:`Document.analysis_updated`.
"""

from __future__ import annotations

import copy as _copy
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QUndoStack

from designer.engine.document.project import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_NETWORKS,
    Project,
    ProjectEvent,
)
from designer.engine.model.blocks import (
    BLOCK,
    block_param,
    convert_value,
    deep_version,
    free_network_name,
    group,
    layer_spec,
    make_unique,
    networks_state,
    retyped_uses,
    ungroup,
)
from designer.engine.model.catalog import name_problem
from designer.engine.model.graph import Adjacency, Edge, Graph, GraphError, GraphEvent
from designer.engine.model.layout import (  # noqa: F401  (re-exported: the layout is in the engine)
    LAYOUT_DX,
    LAYOUT_DY,
    layered_positions,
)
from designer.engine.model.nodes import kind_of
from designer.engine.model.schema import Param
from designer.engine.model.shapes import Analysis

from .analysis_worker import AnalysisThread
from .commands import (
    AddNetworkCommand,
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MacroCommand,
    MoveNodesCommand,
    NetworksCommand,
    RemoveNetworkCommand,
    RemoveNodeCommand,
    RenameCommand,
    RenameNetworkCommand,
    SetBlockParamsCommand,
    SetFrozenCommand,
    SetParamsCommand,
    SetProjectTextCommand,
    SetSearchCommand,
    SetSequentialCommand,
    SetTrainingValuesCommand,
    SetWhenCommand,
)

#: Debounce of the shape check: edits closer together than this are checked once, at the end.
ANALYSIS_DELAY_MS = 50
#: Clipboard format written by :meth:`Document.copy` (also the MIME type on the system clipboard).
CLIPBOARD_MIME = "application/x-designer-nodes"
CLIPBOARD_FORMAT = "designer-nodes"
MAX_PASTE_NODES = 2000

Pos = tuple[float, float]


class Document(QObject):
    """A project being edited: the current network's graph, undo stack, file path and analysis.

    Signals:
      ``changed``           any change of the model or of the saved state (update title/unsaved mark)
      ``analysis_updated``  an :class:`~designer.engine.model.shapes.Analysis` of the current network,
                            after a debounced re-check (and once after construction)
      ``analysis_failed``   a message when the checker itself failed (a bug, not a design problem)
      ``path_changed``      the file path (``Path`` or ``None``)
      ``network_changed``   the current network's name; also after :meth:`replace_project`
                            (views rebuild everything on it)
      ``graph_event``       each :class:`~designer.engine.model.graph.GraphEvent` of the current graph,
                            emitted synchronously as the model changes
      ``project_event``     each :class:`~designer.engine.document.project.ProjectEvent` of the project
                            (settings, networks added/removed/renamed, name, description),
                            synchronously; the current network is already valid when it comes
      ``settings_changed``  the section ("dataset" or "training") whose settings changed
    """

    changed = Signal()
    analysis_updated = Signal(object)
    analysis_failed = Signal(str)
    path_changed = Signal(object)
    network_changed = Signal(str)
    graph_event = Signal(object)
    project_event = Signal(object)
    settings_changed = Signal(str)

    def __init__(self, project: Project | None = None, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project = project if project is not None else _blank_project()
        self.path: Path | None = Path(path) if path is not None else None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.indexChanged.connect(self._on_stack_changed)
        self.undo_stack.cleanChanged.connect(self._on_stack_changed)
        self._network = next(iter(self.project.networks))
        self._trail: list[tuple[str, str]] = []
        self._library_bound: list[Graph] = []
        self._bound: Graph | None = None
        self._bound_project: Project | None = None
        self._analysis: Analysis | None = None
        self._generation = 0
        self._analysis_thread = AnalysisThread(self)
        self._analysis_thread.ready.connect(self._on_analysis_ready)
        self._analysis_thread.error.connect(self._on_analysis_error)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ANALYSIS_DELAY_MS)
        self._timer.timeout.connect(self._request_analysis)
        self._since_request = QElapsedTimer()  # time since the last request (leading edge)
        self._closed = False
        app = QCoreApplication.instance()
        if app is not None:  # a thread still running at exit would abort the interpreter
            app.aboutToQuit.connect(self.close)
        self._bind(self.graph)
        self._bind_project(self.project)
        self._timer.start(0)

    # -- state -----------------------------------------------------------------------------------

    @property
    def graph(self) -> Graph:
        """The current network's graph (the model every view shows)."""
        return self.project.networks[self._network]

    @property
    def network(self) -> str:
        """The current network's name (a GAN project holds several networks)."""
        return self._network

    def set_network(self, name: str) -> None:
        """Show and edit another network of the project."""
        if name not in self.project.networks:
            raise GraphError(f"the project has no network named {name!r}")
        if name == self._network:
            return
        self._trail.clear()
        self._show_network(name)

    def _show_network(self, name: str) -> None:
        self._network = name
        self._bind(self.graph)
        self._analysis = None
        self.network_changed.emit(name)
        self._schedule_analysis(0)

    @property
    def trained_network(self) -> str:
        """The network Train trains and the dataset's fit is checked against: the top of the
        breadcrumb, whichever block definition the canvas shows."""
        return self._trail[0][0] if self._trail else self._network

    def training_settings(self) -> dict[str, Any]:
        """The project's complete training settings as a run uses them: the file's values,
        defaults for the rest (``designer.engine.train.config.effective_training``). Train, Sweeps,
        the memory estimates and the settings form all read them here."""
        from designer.engine.train.config import effective_training

        return effective_training(self.project.training)

    @property
    def analysis(self) -> Analysis | None:
        """The latest analysis of the current network, or None before the first one arrives."""
        return self._analysis

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, path: Path | str | None) -> None:
        """The document was written to ``path``: remember it and mark the current state clean."""
        new = Path(path) if path is not None else None
        self.undo_stack.setClean()
        self.project.folder = new.resolve().parent if new is not None else None
        if new != self.path:
            self.path = new
            self.path_changed.emit(new)
        self.changed.emit()

    def replace_project(self, project: Project, path: Path | str | None = None) -> None:
        """Start over with another project (New/Open): clears undo history, rebuilds views."""
        self.undo_stack.clear()
        self.project = project
        self._bind_project(project)
        self._network = next(iter(project.networks))
        self._trail.clear()
        self._bind(self.graph)
        self._analysis = None
        new = Path(path) if path is not None else None
        self.path = new
        project.folder = new.resolve().parent if new is not None else None
        self.path_changed.emit(new)
        self.network_changed.emit(self._network)
        self.changed.emit()
        self._schedule_analysis(0)

    @Slot()
    def close(self) -> None:
        """Stop the analysis thread; call before dropping the document (the window does)."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        if self._bound is not None:
            self._bound.unsubscribe(self._on_graph_event)
            self._bound = None
        if self._bound_project is not None:
            self._bound_project.unsubscribe(self._on_project_event)
            self._bound_project = None
        for g in self._library_bound:
            g.unsubscribe(self._on_library_event)
        self._library_bound = []
        self._analysis_thread.stop()

    # -- edits (each one undo step) ----------------------------------------------------------------

    def add_node(self, type_id: str, pos: Pos = (0.0, 0.0), params: dict | None = None,
                 name: str | None = None, after: str | None = None) -> str:
        """Add a layer of type ``type_id`` at ``pos``; returns the new node's id. With ``after``
        (a node id) the new layer is wired from that node's output, in the same undo step, when
        the two can be connected (quick add from the keyboard)."""
        spec = layer_spec(type_id)
        if spec is None:
            raise GraphError(f"unknown layer type {type_id!r}")
        if kind_of(type_id).is_block:
            self._check_block((params or {}).get("block"))
        try:
            full = spec.validate_params(params or {})
        except ValueError as exc:
            raise GraphError(f"{spec.display_name}: {exc}") from None
        graph = self.graph
        if name is None:
            name = graph.unique_name(spec.prefix)
        else:
            self._check_new_name(name)
        node_id = _new_id(graph)
        text = f"Add {spec.display_name} '{name}'"
        src = graph.nodes.get(after) if after is not None else None
        if src is None or not src.spec.has_output or not (spec.variadic or spec.num_inputs):
            self.undo_stack.push(AddNodeCommand(graph, type_id, name, full, pos, node_id,
                                                text=text))
            return node_id
        macro = MacroCommand(f"{text} after '{src.name}'")
        AddNodeCommand(graph, type_id, name, full, pos, node_id, text=text, parent=macro)
        ConnectCommand(graph, src.id, node_id, 0, macro)
        self.undo_stack.push(macro)
        return node_id

    def remove_nodes(self, node_ids: Iterable[str]) -> None:
        """Delete nodes and their edges as one step; undo restores them exactly."""
        self.remove(node_ids, ())

    def remove(self, node_ids: Iterable[str], edges: Iterable[Edge] = ()) -> None:
        """Delete nodes (with their edges) and further edges as one step (the canvas's Delete)."""
        graph = self.graph
        ids = [nid for nid in dict.fromkeys(node_ids) if nid in graph.nodes]
        idset = set(ids)
        extra = set(edges)
        doomed = [e for e in graph.edges if e.src in idset or e.dst in idset or e in extra]
        if not ids and not doomed:
            return
        if len(ids) == 1:
            n = graph.nodes[ids[0]]
            text = f"Delete {n.spec.display_name} '{n.name}'"
        elif ids:
            text = f"Delete {len(ids)} layers"
        else:
            text = "Delete connection" if len(doomed) == 1 else f"Delete {len(doomed)} connections"
        macro = MacroCommand(text)
        for e in doomed:
            DisconnectCommand(graph, e, macro)
        for nid in ids:
            RemoveNodeCommand(graph, nid, macro)
        self.undo_stack.push(macro)

    def add_network(self, name: str, graph: Graph | None = None, index: int | None = None) -> None:
        """Add a network (an empty graph unless given) to the project, one step; GraphError says
        why not. The current network stays current."""
        why = self.project.network_name_problem(name)
        if why is None and len(self.project.networks) >= MAX_NETWORKS:
            why = f"a project holds at most {MAX_NETWORKS} networks"
        if why:
            raise GraphError(why)
        self.undo_stack.push(AddNetworkCommand(self.project, name, graph, index))

    def remove_network(self, name: str) -> None:
        """Delete a network, one step (the first remaining one becomes current if it was)."""
        if name not in self.project.networks:
            raise GraphError(f"the project has no network named {name!r}")
        if len(self.project.networks) == 1:
            raise GraphError("a project holds at least one network")
        self.undo_stack.push(RemoveNetworkCommand(self.project, name))

    def rename_network(self, old: str, new: str) -> None:
        """Rename a network, one step; it keeps its place (and stays current if it was)."""
        if old not in self.project.networks:
            raise GraphError(f"the project has no network named {old!r}")
        if new == old:
            return
        why = self.project.network_name_problem(new)
        if why:
            raise GraphError(why)
        self.undo_stack.push(RenameNetworkCommand(self.project, old, new))

    def set_project_name(self, name: str) -> None:
        """Rename the project (the document, not a file), one step."""
        _check_text("name", name, MAX_NAME)
        if name != self.project.name:
            self.undo_stack.push(SetProjectTextCommand(self.project, "name", name))

    def set_description(self, text: str) -> None:
        """Change the project's description, one step."""
        _check_text("description", text, MAX_DESCRIPTION)
        if text != self.project.description:
            self.undo_stack.push(SetProjectTextCommand(self.project, "description", text))

    def can_connect(self, src_id: str, dst_id: str, dst_port: int = 0,
                    replace: bool = False) -> str | None:
        """Why ``src -> dst:dst_port`` cannot be made (for hover feedback), or None if it can.
        With ``replace`` an input that is already connected counts as free (its wire would be
        replaced)."""
        occupant = self._occupant(dst_id, dst_port) if replace else None
        if occupant is not None:
            return self.can_reconnect(occupant, src_id, dst_id, dst_port)
        return self.graph.can_connect(src_id, dst_id, dst_port)

    def connect(self, src_id: str, dst_id: str, dst_port: int = 0,
                replace: bool = False) -> None:
        """Connect ``src``'s output to input ``dst_port`` of ``dst``; GraphError says why not.
        With ``replace`` a wire already on that input is replaced, in the same undo step (a
        wire dropped on a connected input on the canvas)."""
        occupant = self._occupant(dst_id, dst_port) if replace else None
        if occupant is not None:
            if occupant.src == src_id:
                return  # that very wire is there already
            self._replace_wire((occupant,), src_id, dst_id, dst_port)
            return
        why = self.graph.can_connect(src_id, dst_id, dst_port)
        if why:
            raise GraphError(why)
        self.undo_stack.push(ConnectCommand(self.graph, src_id, dst_id, dst_port))

    def _occupant(self, dst_id: str, dst_port: int) -> Edge | None:
        """The edge that ends at input ``dst_port`` of ``dst`` (None: the input is free)."""
        return next((e for e in self.graph.edges if e.dst == dst_id and e.dst_port == dst_port),
                    None)

    def _replace_wire(self, old: tuple[Edge, ...], src_id: str, dst_id: str,
                      dst_port: int) -> None:
        """Remove the edges ``old`` and connect ``src -> dst:dst_port``, one undo step."""
        graph = self.graph
        i = [graph.edges.index(e) for e in old]
        # Check against the graph without the old edges (they are put back untouched).
        for e in old:
            graph.edges.remove(e)
        try:
            why = graph.can_connect(src_id, dst_id, dst_port)
        finally:
            for k, e in sorted(zip(i, old, strict=True), key=lambda t: t[0]):
                graph.edges.insert(k, e)
        if why:
            raise GraphError(why)
        src, dst = graph.node(src_id).name, graph.node(dst_id).name
        macro = MacroCommand(f"Reconnect '{src}' to '{dst}'" if len(old) > 1
                             else f"Connect '{src}' to '{dst}' (replacing its wire)")
        for e in old:
            DisconnectCommand(graph, e, macro)
        ConnectCommand(graph, src_id, dst_id, dst_port, macro)
        self.undo_stack.push(macro)

    def can_reconnect(self, edge: Edge, src_id: str, dst_id: str, dst_port: int,
                      replace: bool = False) -> str | None:
        """Like :meth:`can_connect`, as if ``edge`` were already gone (it is being moved); with
        ``replace``, as if the wire on the target input were gone too."""
        graph = self.graph
        if edge not in graph.edges:
            return "no such connection"
        if (edge.src, edge.dst, edge.dst_port) == (src_id, dst_id, dst_port):
            return None
        gone = [edge]
        occupant = self._occupant(dst_id, dst_port) if replace else None
        if occupant is not None and occupant != edge:
            gone.append(occupant)
        where = sorted((graph.edges.index(e), e) for e in gone)
        # Check against the graph without the old edge: it may occupy the very port we aim at.
        # Taking it out of the list briefly emits nothing and is restored before returning.
        for _i, e in where:
            graph.edges.remove(e)
        try:
            return graph.can_connect(src_id, dst_id, dst_port)
        finally:
            for i, e in where:
                graph.edges.insert(i, e)

    def reconnect(self, edge: Edge, src_id: str, dst_id: str, dst_port: int,
                  replace: bool = False) -> None:
        """Move an existing edge to another end (dragging an edge end to a new port), one step;
        with ``replace`` a wire already on the target input is removed in that same step."""
        graph = self.graph
        if edge not in graph.edges:
            raise GraphError("no such connection")
        if (edge.src, edge.dst, edge.dst_port) == (src_id, dst_id, dst_port):
            return
        occupant = self._occupant(dst_id, dst_port) if replace else None
        if occupant is not None and occupant != edge:
            self._replace_wire((edge, occupant), src_id, dst_id, dst_port)
            return
        why = self.can_reconnect(edge, src_id, dst_id, dst_port)
        if why:
            raise GraphError(why)
        macro = MacroCommand(f"Reconnect '{graph.node(src_id).name}' to '{graph.node(dst_id).name}'")
        DisconnectCommand(graph, edge, macro)
        ConnectCommand(graph, src_id, dst_id, dst_port, macro)
        self.undo_stack.push(macro)

    def disconnect(self, edge: Edge) -> None:
        """Remove one edge."""
        if edge not in self.graph.edges:
            raise GraphError("no such connection")
        self.undo_stack.push(DisconnectCommand(self.graph, edge))

    def move_nodes(self, moves: dict[str, tuple[Pos, Pos]], text: str | None = None) -> None:
        """Record one move gesture: ``{node_id: (old_pos, new_pos)}``. Nodes may already be at the
        new position (the canvas moves them live while dragging); undo puts them back."""
        graph = self.graph
        moves = {nid: (tuple(o), tuple(n)) for nid, (o, n) in moves.items()
                 if nid in graph.nodes and tuple(o) != tuple(n)}
        if not moves:
            return
        self.undo_stack.push(MoveNodesCommand(graph, moves, text))

    def set_params(self, node_id: str, changes: dict[str, Any], network: str | None = None) -> None:
        """Change parameters of a node (validated first; GraphError says what is wrong), of the
        current network or of ``network``."""
        graph = self.graph if network is None else self.project.networks[network]
        node = graph.node(node_id)
        if node.kind.is_block and "block" in changes and changes["block"] != node.params.get("block"):
            self._check_block(changes["block"])
        try:
            full = node.spec.validate_params({**node.params, **changes})
        except ValueError as exc:
            raise GraphError(f"{node.name}: {exc}") from None
        new = {k: full[k] for k in changes if full[k] != node.params.get(k)}
        if not new:
            return
        old = {k: _copy.deepcopy(node.params.get(k)) for k in new}
        self.undo_stack.push(SetParamsCommand(graph, node_id, old, new))

    def rename(self, node_id: str, name: str) -> None:
        """Rename a node; GraphError when the name is not an identifier or is taken."""
        node = self.graph.node(node_id)
        if node.name == name:
            return
        self._check_new_name(name)
        search = _search_renamed(self.project.search, self._network, node.name, name,
                                 next(iter(self.project.networks)))
        if search is None:
            self.undo_stack.push(RenameCommand(self.graph, node_id, name))
            return
        # a searched layer keeps its search under its new name: the same undo step
        macro = MacroCommand(f"Rename '{node.name}' to '{name}'")
        RenameCommand(self.graph, node_id, name, macro)
        SetSearchCommand(self.project, search, "search", macro)
        self.undo_stack.push(macro)

    def copy(self, node_ids: Iterable[str]) -> dict[str, Any]:
        """Clipboard data (JSON-able) for the given nodes and the edges between them."""
        graph = self.graph
        ids = [nid for nid in dict.fromkeys(node_ids) if nid in graph.nodes]
        idset = set(ids)
        return {
            "format": CLIPBOARD_FORMAT,
            "version": 1,
            "nodes": [{"id": n.id, "type": n.type, "name": n.name,
                       "params": _copy.deepcopy(n.params), "pos": [n.pos[0], n.pos[1]]}
                      for n in (graph.nodes[i] for i in ids)],
            "edges": [{"src": e.src, "dst": e.dst, "dst_port": e.dst_port}
                      for e in graph.edges if e.src in idset and e.dst in idset],
        }

    def paste(self, data: Any, offset: Pos = (30.0, 30.0), text: str | None = None) -> list[str]:
        """Add the nodes of clipboard ``data`` (from :meth:`copy`) with new ids and free names,
        shifted by ``offset``, with their inner edges, as one step. Returns the new ids.
        Data that is not a valid clipboard raises GraphError saying what is wrong."""
        nodes, edges = _parse_clipboard(data)
        if not nodes:
            return []
        allowed = None
        for n in nodes:  # a pasted block use must not make a block contain itself
            if kind_of(n["type"]).is_block:
                allowed = self.block_choices() if allowed is None else allowed
                block = (n.get("params") or {}).get("block")
                if block not in allowed:
                    raise GraphError(
                        f"'{n['name']}' uses block {block!r}, which cannot be used in "
                        f"{self._network!r}: " + ("it would contain itself" if block in
                                                  self.project.networks else
                                                  "it is not a network of this project"))
        graph = self.graph
        taken = {n.name for n in graph.nodes.values()}
        id_map: dict[str, str] = {}
        used_ids = set(graph.nodes)
        macro = MacroCommand(text or (f"Paste {len(nodes)} layers" if len(nodes) > 1
                                      else f"Paste '{nodes[0]['name']}'"))
        for n in nodes:
            name = _free_name(n["name"], taken, layer_spec(n["type"]).prefix)
            taken.add(name)
            nid = _new_id(graph, used_ids)
            used_ids.add(nid)
            id_map[n["id"]] = nid
            pos = (n["pos"][0] + offset[0], n["pos"][1] + offset[1])
            AddNodeCommand(graph, n["type"], name, n["params"], pos, nid, parent=macro)
        types = {id_map[n["id"]]: n["type"] for n in nodes}
        for src, dst, port in _pastable_edges(types, edges, id_map):
            ConnectCommand(graph, src, dst, port, macro)
        self.undo_stack.push(macro)
        return [id_map[n["id"]] for n in nodes]

    def duplicate(self, node_ids: Iterable[str]) -> list[str]:
        """Copy and paste in one step, keeping the edges among the duplicated nodes."""
        data = self.copy(node_ids)
        n = len(data["nodes"])
        if not n:
            return []
        text = f"Duplicate {n} layers" if n > 1 else f"Duplicate '{data['nodes'][0]['name']}'"
        return self.paste(data, (30.0, 30.0), text=text)

    def auto_layout(self) -> None:
        """Arrange nodes left to right by their layer in the graph (one undo step)."""
        graph = self.graph
        targets = layered_positions(graph)
        moves = {nid: (graph.nodes[nid].pos, pos) for nid, pos in targets.items()
                 if graph.nodes[nid].pos != pos}
        if moves:
            self.undo_stack.push(MoveNodesCommand(graph, moves, "Auto-layout"))


    # -- blocks (designer.engine.model.blocks) -------------------------------------------------------------

    def block_choices(self, network: str | None = None) -> list[str]:
        """The networks a use in ``network`` (default: the current one) may instantiate: every
        other network, except those that use ``network`` themselves (a definition cycle)."""
        host = network or self._network
        lib = self.project.networks
        return [name for name in lib if name != host
                and host not in {n for n, _, _ in deep_version(lib, name)}]

    def _check_block(self, name: Any) -> None:
        if not isinstance(name, str) or name not in self.project.networks:
            known = ", ".join(repr(n) for n in self.project.networks)
            raise GraphError(f"{name!r} is not a network of this project (its networks: {known})")
        if name not in self.block_choices():
            raise GraphError(f"'{self._network}' cannot use '{name}' as a block: "
                             f"'{name}' uses '{self._network}' (a block cannot contain itself)")

    def add_block_use(self, block: str, pos: Pos = (0.0, 0.0)) -> str:
        """Add a use of network ``block`` (a palette drop), named after it; returns its id."""
        self._check_block(block)
        from designer.engine.model.blocks import _snake

        base = _snake(block)
        name = base if self.graph.node_by_name(base) is None else self.graph.unique_name(base)
        return self.add_node(BLOCK, pos, {"block": block}, name=name)

    def free_block_name(self, base: str = "Block") -> str:
        return free_network_name(self.project, base)

    def group(self, node_ids: Iterable[str], name: str) -> str:
        """Group layers of the current network into a new block ``name`` (one step); returns the
        id of the use put in their place. GraphError (nothing changed) says why not."""
        ids = [nid for nid in dict.fromkeys(node_ids) if nid in self.graph.nodes]
        if len(self.project.networks) >= MAX_NETWORKS:
            raise GraphError(f"a project holds at most {MAX_NETWORKS} networks")
        use = self._whole_network_edit(
            f"Group {len(ids)} layers into block '{name}'",
            lambda: group(self.project, self._network, ids, name))
        return use

    def ungroup(self, use_id: str) -> list[str]:
        """Put the layers of a block use in its place (one step); returns their ids."""
        node = self.graph.node(use_id)
        return self._whole_network_edit(
            f"Ungroup '{node.name}'", lambda: ungroup(self.project, self._network, use_id))

    def make_unique(self, use_id: str) -> str:
        """Give a use its own copy of its block (one step); returns the copy's name."""
        node = self.graph.node(use_id)
        if len(self.project.networks) >= MAX_NETWORKS:
            raise GraphError(f"a project holds at most {MAX_NETWORKS} networks")
        return self._whole_network_edit(
            f"Make '{node.name}' unique", lambda: make_unique(self.project, self._network, use_id))

    def _whole_network_edit(self, text: str, edit):
        from designer.engine.model.blocks import restore_networks

        before = networks_state(self.project)
        network = self._network
        try:
            result = edit()
        except (GraphError, ValueError) as exc:
            if [(n, g.to_dict()) for n, g in before] != [
                    (n, g.to_dict()) for n, g in self.project.networks.items()]:
                restore_networks(self.project, before)  # a refusal changes nothing
            if self._network != network and network in self.project.networks:
                self._show_network(network)
            raise GraphError(str(exc)) from None
        self.undo_stack.push(NetworksCommand(self.project, before,
                                             networks_state(self.project), text))
        return result

    def set_when(self, node_id: str, when: str | None) -> None:
        """Switch a layer of a block on by a bool block parameter (None: always), one step."""
        node = self.graph.node(node_id)
        if when is not None:
            bools = [p.name for p in self.graph.block_params if p.type == "bool"]
            if when not in bools:
                raise GraphError(f"'{when}' is not a true/false parameter of this block "
                                 f"(its true/false parameters: {', '.join(bools) or 'none'})")
            if node.type in ("Input", "Output"):
                raise GraphError(f"an {node.type} cannot be switched off")
        if when != node.when:
            self.undo_stack.push(SetWhenCommand(self.graph, node_id, when))

    def set_init_weights(self, path: str | None) -> None:
        """``training.init_weights``: the weights training starts from (None: the design's own
        initial weights), one undo step."""
        if self.project.training.get("init_weights") != path:
            self.undo_stack.push(SetTrainingValuesCommand(self.project, {"init_weights": path}))

    def set_frozen(self, node_id: str, frozen: bool) -> None:
        """Make a layer or block use not trainable (``frozen``) or trainable, one undo step."""
        node = self.graph.node(node_id)
        if node.type in ("Input", "Output"):
            raise GraphError(f"an {node.type} has no weights to freeze")
        if bool(frozen) != node.frozen:
            self.undo_stack.push(SetFrozenCommand(self.graph, node_id, frozen))

    def set_frozen_many(self, node_ids: Iterable[str], frozen: bool,
                        text: str | None = None) -> int:
        """Freeze (or make trainable) several layers and block uses as one undo step; Inputs and
        Outputs (no weights) and nodes already so are left alone. Returns how many changed."""
        graph = self.graph
        ids = [nid for nid in dict.fromkeys(node_ids) if nid in graph.nodes
               and graph.nodes[nid].type not in ("Input", "Output")
               and graph.nodes[nid].frozen != bool(frozen)]
        if not ids:
            return 0
        if len(ids) == 1 and text is None:
            self.set_frozen(ids[0], frozen)
            return 1
        what = f"{len(ids)} layer{'s' if len(ids) != 1 else ''}"
        macro = MacroCommand(text or (f"Freeze {what}" if frozen else f"Make {what} trainable"))
        for nid in ids:
            SetFrozenCommand(graph, nid, frozen, macro)
        self.undo_stack.push(macro)
        return len(ids)

    def layers_before(self, node_ids: Iterable[str]) -> list[str]:
        """Every layer and block use upstream of ``node_ids`` in the current network (their
        ancestors along the wires, not themselves; no Inputs), in the network's order: what
        "Freeze Layers Before This" freezes."""
        graph = self.graph
        start = [nid for nid in node_ids if nid in graph.nodes]
        before = Adjacency.of(graph).reachable(start, backwards=True) - set(start)
        return [nid for nid in graph.nodes if nid in before
                and graph.nodes[nid].type not in ("Input", "Output")]

    def set_block_params(self, params: Iterable[Any], text: str = "Change block parameters"
                         ) -> None:
        """Declare the current network's block parameters (Params or dicts), one step. A
        parameter whose type changes keeps its meaning: its default and every use's value are
        converted (1 -> true), or GraphError says which value has none in the new type."""
        out = []
        before = {p.name: p for p in self.graph.block_params}
        for p in params:
            if isinstance(p, dict):
                try:
                    default = p.get("default")
                    prev = before.get(p.get("name"))
                    if prev is not None and prev.type != p.get("type"):
                        try:
                            default = convert_value(default, Param(
                                str(p.get("name")), p.get("type"), None, "", p.get("min"),
                                p.get("max"), tuple(p.get("choices") or ()), layer=True))
                        except ValueError as exc:
                            raise ValueError(f"cannot make {prev.name} a {p.get('type')} "
                                             f"parameter: its default {exc}") from None
                    p = block_param(p.get("name"), p.get("type"), default,
                                    p.get("doc", ""), p.get("min"), p.get("max"),
                                    tuple(p.get("choices") or ()))
                except ValueError as exc:
                    raise GraphError(str(exc)) from None
            out.append(p)
        names = [p.name for p in out]
        if len(set(names)) != len(names):
            raise GraphError("two block parameters have the same name")
        if tuple(out) == tuple(self.graph.block_params):
            return
        try:
            uses = retyped_uses(self.project.networks, self._network,
                                tuple(self.graph.block_params), tuple(out))
        except ValueError as exc:
            raise GraphError(str(exc)) from None
        if not uses:
            self.undo_stack.push(SetBlockParamsCommand(self.graph, tuple(out), text))
            return
        macro = MacroCommand(text)  # the declaration and the uses' values change together
        SetBlockParamsCommand(self.graph, tuple(out), text, parent=macro)
        for net, node_id, update in uses:
            graph = self.project.networks[net]
            old = {k: graph.nodes[node_id].params.get(k) for k in update}
            SetParamsCommand(graph, node_id, old, update, parent=macro)
        self.undo_stack.push(macro)

    def set_sequential(self, on: bool) -> None:
        if bool(on) != self.graph.sequential:
            self.undo_stack.push(SetSequentialCommand(self.graph, bool(on)))

    # -- sweeps: what is searched, and a trial's values -------------------------------------------

    def set_search(self, search: dict[str, Any], text: str = "Change the search") -> None:
        """Replace the project's search section (one undo step); GraphError says what is wrong
        (the engine's message, starting with the place within the section)."""
        from designer.engine.search.space import SearchError, search_from_dict

        if search == self.project.search:
            return
        if search:
            try:
                search_from_dict(search, self.project.networks)
            except SearchError as exc:
                raise GraphError(f"search.{str(exc).lstrip('.')}") from None
        self.undo_stack.push(SetSearchCommand(self.project, search, text))

    def search_dimension(self, target: dict[str, Any]) -> dict[str, Any] | None:
        """The dimension of the search section that varies ``target`` (None: not searched)."""
        for d in self.project.search.get("dimensions", []) if self.project.search else []:
            if _same_target(d.get("target", {}), target, self.project):
                return d
        return None

    def set_dimension(self, target: dict[str, Any], dimension: dict[str, Any] | None) -> None:
        """Search ``target`` with ``dimension`` (``{"type": ..., "low": ...}``, the target added
        here), or stop searching it (None): one undo step. The last dimension removed removes
        the section (a search needs at least one)."""
        search = _copy.deepcopy(self.project.search) if self.project.search else {}
        dims = [d for d in search.get("dimensions", [])
                if not _same_target(d.get("target", {}), target, self.project)]
        label = _target_label(target)
        if dimension is None:
            if len(dims) == len(search.get("dimensions", [])):
                return
            text = f"Stop searching {label}"
        else:
            old = self.search_dimension(target)
            entry = {"target": dict(target), **{k: v for k, v in dimension.items()
                                                if k != "target"}}
            if old is not None:
                index = search["dimensions"].index(old)
                dims.insert(index, entry)
                text = f"Change the search range of {label}"
            else:
                dims.append(entry)
                text = f"Search {label}"
        if dims:
            search["dimensions"] = dims
        else:
            search = {}
        self.set_search(search, text)

    def apply_search_values(self, changes: dict, text: str = "Apply the best trial") -> None:
        """Write a trial's values (``{Target: value}``, what ``sweeps.apply_best`` gives) into
        the design and the training settings as ONE undo step. Checked first as a file would
        be (``sweeps.apply_values``): GraphError names a value that does not fit."""
        from designer.engine.document.project import ProjectError
        from designer.engine.search.space import find_node
        from designer.engine.search.values import apply_values

        if not changes:
            return
        try:
            apply_values(self.project, changes)
        except ProjectError as exc:
            raise GraphError(str(exc)) from None
        macro = MacroCommand(text)
        settings = {t.setting: v for t, v in changes.items() if t.setting is not None}
        if settings:
            SetTrainingValuesCommand(self.project, settings, parent=macro)
        per_node: dict[tuple[str, str], dict[str, Any]] = {}
        for t, v in changes.items():
            if t.setting is not None:
                continue
            graph = self.project.networks[t.network]
            node = find_node(graph, t.node)
            new = per_node.setdefault((t.network, node.id), {})
            if t.param is not None:
                new[t.param] = v
            else:
                args = new.setdefault("args", _copy.deepcopy(node.params.get("args") or {}))
                args[t.arg] = v
        for (network, node_id), new in per_node.items():
            graph = self.project.networks[network]
            node = graph.node(node_id)
            old = {k: _copy.deepcopy(node.params.get(k)) for k in new}
            macro.add(SetParamsCommand(graph, node_id, old, new))
        self.undo_stack.push(macro)

    # -- opening a block's definition (the breadcrumb) -------------------------------------------

    @property
    def trail(self) -> list[tuple[str, str]]:
        """How the current network was reached: (network, use id) for each block opened."""
        return list(self._trail)

    def breadcrumb(self) -> list[str]:
        """``["resnet18", "layer2 (BasicBlock)", "downsample (Downsample)"]``: the path shown
        above the canvas (one entry when no block was opened)."""
        if not self._trail:
            return [self._network]
        parts = [self._trail[0][0]]
        for net, use_id in self._trail:
            g = self.project.networks.get(net)
            node = g.nodes.get(use_id) if g is not None else None
            if node is None:
                parts.append("?")
            else:
                parts.append(f"{node.name} ({node.params.get('block')})")
        return parts

    def open_block(self, use_id: str) -> None:
        """Show the definition of a block use; the breadcrumb remembers the way back."""
        node = self.graph.node(use_id)
        if not node.kind.is_block:
            raise GraphError(f"'{node.name}' is not a block")
        block = node.params.get("block")
        if block not in self.project.networks:
            raise GraphError(f"block {block!r} is not a network of this project")
        self._trail.append((self._network, use_id))
        self._show_network(block)

    def go_up(self, level: int | None = None) -> bool:
        """Back to breadcrumb entry ``level`` (default: one up); False when at the top."""
        if not self._trail:
            return False
        level = len(self._trail) - 1 if level is None else max(0, level)
        if level >= len(self._trail):
            return False
        network, _ = self._trail[level]
        del self._trail[level:]
        if network in self.project.networks:
            self._show_network(network)
        else:
            self._trail.clear()
            self._show_network(next(iter(self.project.networks)))
        return True

    # -- analysis ---------------------------------------------------------------------------------

    def analyze_now(self) -> Analysis:
        """Check the current graph synchronously on this thread (tests, export) and announce it."""
        from designer.engine.model.shapes import Analyzer

        from .analysis_worker import use_context

        self._timer.stop()
        snapshot = self.snapshot()
        values, inputs = (use_context(snapshot.library, snapshot.trail) if snapshot.trail
                          else (None, None))
        result = Analyzer(snapshot, values, inputs, subscribe=False).analyze()
        self._on_analysis_ready(self._generation, result)
        return result

    def snapshot(self) -> Graph:
        """A frozen copy of the current network whose ``library`` holds frozen copies of every
        network of the project (its block uses find their definitions there)."""
        library = {name: g.copy() for name, g in self.project.networks.items()}
        for g in library.values():
            g.library = library
        current = library[self._network]
        # a definition opened from a use is checked as that use feeds it (its values, its
        # input shapes): a problem of the use shows on the layer inside that causes it
        current.trail = list(self._trail)
        return current

    def _schedule_analysis(self, delay: int = ANALYSIS_DELAY_MS) -> None:
        """The model changed: results of older snapshots are stale from now on.

        Debounced on both edges: the first edit after a quiet spell is checked as soon as control
        returns to the event loop (so all events of one command are seen together), and edits
        that follow within ``delay`` ms restart the timer, so a burst is checked once at its end.
        """
        self._generation += 1
        if self._closed:
            return
        if self._timer.isActive():
            if self._timer.interval() != 0:
                self._timer.start(delay)  # still in a burst: wait for quiet
            return
        quiet = self._since_request.elapsed() if self._since_request.isValid() else delay + 1
        self._timer.start(0 if quiet > delay else delay)

    @Slot()
    def _request_analysis(self) -> None:
        if self._closed:
            return
        self._since_request.start()
        self._analysis_thread.submit(self._generation, self.snapshot())

    @Slot(int, object)
    def _on_analysis_ready(self, generation: int, analysis: Analysis) -> None:
        if generation != self._generation or self._closed:
            return  # stale: the graph changed since this snapshot was taken
        self._analysis = analysis
        self.analysis_updated.emit(analysis)

    @Slot(int, str)
    def _on_analysis_error(self, generation: int, message: str) -> None:
        if generation == self._generation and not self._closed:
            self.analysis_failed.emit(message)

    # -- plumbing -----------------------------------------------------------------------------------

    def _bind(self, graph: Graph) -> None:
        if self._bound is not None:
            self._bound.unsubscribe(self._on_graph_event)
        self._bound = graph
        graph.subscribe(self._on_graph_event)

    def _on_graph_event(self, event: GraphEvent) -> None:
        self.graph_event.emit(event)
        if event.kind != GraphEvent.MOVED:
            self._schedule_analysis()

    def _bind_project(self, project: Project) -> None:
        if self._bound_project is not None:
            self._bound_project.unsubscribe(self._on_project_event)
        self._bound_project = project
        project.subscribe(self._on_project_event)
        self._bind_library()

    def _bind_library(self) -> None:
        """Listen to every network: an edit inside a block changes the shapes of its uses."""
        for g in self._library_bound:
            g.unsubscribe(self._on_library_event)
        self._library_bound = list(self.project.networks.values())
        for g in self._library_bound:
            g.subscribe(self._on_library_event)

    def _on_library_event(self, event: GraphEvent) -> None:
        if event.kind != GraphEvent.MOVED:
            self._schedule_analysis()

    def _on_project_event(self, event: ProjectEvent) -> None:
        kind = event.kind
        if kind in (ProjectEvent.NETWORK_ADDED, ProjectEvent.NETWORK_REMOVED,
                    ProjectEvent.NETWORK_RENAMED):
            self._bind_library()
            self._schedule_analysis()
        if kind == ProjectEvent.NETWORK_RENAMED:
            self._trail = [(event.new if net == event.old else net, use)
                           for net, use in self._trail]
        if kind == ProjectEvent.NETWORK_RENAMED and event.old == self._network:
            self._network = event.new  # the same graph under its new name: nothing to rebind
        elif kind == ProjectEvent.NETWORK_REMOVED and event.key == self._network:
            # The shown network is gone (undoing its addition, say): show the main one first,
            # so that observers of the event below find a valid current network.
            self._trail.clear()
            self._show_network(next(iter(self.project.networks)))
        elif kind == ProjectEvent.NETWORK_REMOVED and any(
                net == event.key for net, _ in self._trail):
            self._trail.clear()
        self.project_event.emit(event)
        if kind == ProjectEvent.SETTINGS_CHANGED:
            self.settings_changed.emit(event.key)

    @Slot()
    def _on_stack_changed(self, *_: Any) -> None:
        self.changed.emit()

    def _check_new_name(self, name: str) -> None:
        why = name_problem(name)
        if why:
            raise GraphError(why)
        if self.graph.node_by_name(name) is not None:
            raise GraphError(f"the name {name!r} is taken by another layer")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _target_label(target: dict[str, Any]) -> str:
    if "setting" in target:
        return str(target["setting"])
    if "param" in target:
        return f"{target.get('node')}.{target['param']}"
    return f"{target.get('node')}.{target.get('arg')}"


def _same_target(a: dict[str, Any], b: dict[str, Any], project: Project) -> bool:
    """Whether two search targets name the same thing (a missing network is the first one)."""
    first = next(iter(project.networks))
    norm = [{**t, "network": t.get("network", first)} if "setting" not in t else dict(t)
            for t in (a, b)]
    return norm[0] == norm[1]


def _blank_project() -> Project:
    return Project()


def _check_text(what: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        raise GraphError(f"the project's {what} is text, got {type(value).__name__}")
    if len(value) > limit:
        raise GraphError(f"the project's {what} is longer than {limit:,} characters")


def _new_id(graph: Graph, taken: set[str] | None = None) -> str:
    taken = taken if taken is not None else set(graph.nodes)
    while True:
        nid = uuid.uuid4().hex[:12]
        if nid not in taken:
            return nid


_TRAILING_DIGITS = re.compile(r"(.*?)(\d+)")  # fullmatch: "$" would match before a final newline


def _free_name(name: str, taken: set[str], prefix: str) -> str:
    """``name`` if free, else the same stem with the next free number (fc1 -> fc2)."""
    if name not in taken:
        return name
    m = _TRAILING_DIGITS.fullmatch(name)
    stem = m.group(1) if m and m.group(1) else (name if not m else prefix)
    i = int(m.group(2)) + 1 if m and m.group(1) else 1
    while f"{stem}{i}" in taken:
        i += 1
    return f"{stem}{i}"


def _parse_clipboard(data: Any) -> tuple[list[dict], list[dict]]:
    """Validate clipboard data; it may come from another program, so trust nothing."""
    if not isinstance(data, dict) or data.get("format") != CLIPBOARD_FORMAT:
        raise GraphError("the clipboard does not hold designer layers")
    nodes, edges = data.get("nodes"), data.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise GraphError("clipboard data: expected lists of nodes and edges")
    if len(nodes) > MAX_PASTE_NODES:
        raise GraphError(f"clipboard data: {len(nodes)} layers is more than {MAX_PASTE_NODES}")
    out_nodes: list[dict] = []
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        where = f"clipboard layer {i + 1}"
        if not isinstance(n, dict):
            raise GraphError(f"{where}: expected an object")
        spec = layer_spec(n.get("type")) if isinstance(n.get("type"), str) else None
        if spec is None:
            raise GraphError(f"{where}: unknown layer type {n.get('type')!r}")
        nid = n.get("id")
        if not isinstance(nid, str) or nid in seen:
            raise GraphError(f"{where}: missing or repeated id")
        seen.add(nid)
        name = n.get("name")
        if not isinstance(name, str) or name_problem(name):
            name = spec.prefix + "1"
        try:
            params = spec.validate_params(n.get("params", {}))
        except ValueError as exc:
            raise GraphError(f"{where} ({spec.display_name}): {exc}") from None
        pos = n.get("pos", [0.0, 0.0])
        if (not isinstance(pos, (list, tuple)) or len(pos) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and abs(v) < 1e7 for v in pos)):
            pos = [0.0, 0.0]
        out_nodes.append({"id": nid, "type": spec.id, "name": name, "params": params,
                          "pos": [float(pos[0]), float(pos[1])]})
    out_edges: list[dict] = []
    for e in edges:
        if (isinstance(e, dict) and isinstance(e.get("src"), str) and isinstance(e.get("dst"), str)
                and isinstance(e.get("dst_port", 0), int) and not isinstance(e.get("dst_port", 0), bool)
                and 0 <= e.get("dst_port", 0) < 64):
            out_edges.append({"src": e["src"], "dst": e["dst"], "dst_port": e.get("dst_port", 0)})
    return out_nodes, out_edges


def _pastable_edges(types: dict[str, str], edges: list[dict],
                    id_map: dict[str, str]) -> list[tuple[str, str, int]]:
    """The clipboard edges that may be made among freshly pasted nodes (``types``: new id ->
    layer type), in O(edges): the same rules as ``Graph.can_connect``, which would cost
    O(nodes + edges) per edge. Pasted nodes touch nothing else, so only their own edges matter."""
    out: list[tuple[str, str, int]] = []
    taken_ports: set[tuple[str, int]] = set()
    pairs: set[tuple[str, str]] = set()
    for e in edges:
        src, dst, port = id_map.get(e["src"]), id_map.get(e["dst"]), e["dst_port"]
        if src is None or dst is None or src == dst:
            continue
        s_spec, d_spec = layer_spec(types[src]), layer_spec(types[dst])
        if not s_spec.has_output:
            continue
        if not (0 <= port < 64 if d_spec.variadic else 0 <= port < d_spec.num_inputs):
            continue
        if (dst, port) in taken_ports or (src, dst) in pairs:
            continue
        taken_ports.add((dst, port))
        pairs.add((src, dst))
        out.append((src, dst, port))
    import networkx as nx  # 0.13 s to import: only when pasting, not at start-up

    g = nx.DiGraph()
    g.add_edges_from((s, d) for s, d, _ in out)
    if nx.is_directed_acyclic_graph(g):
        return out
    # Hand-made clipboard data with a cycle: keep edges in order while they keep it acyclic.
    g = nx.DiGraph()
    kept = []
    for s, d, port in out:
        if g.has_node(s) and g.has_node(d) and nx.has_path(g, d, s):
            continue
        g.add_edge(s, d)
        kept.append((s, d, port))
    return kept


def _search_renamed(search: dict[str, Any], network: str, old: str, new: str, first: str
                    ) -> dict[str, Any] | None:
    """The project's search section with the layer ``old`` of ``network`` renamed ``new`` in
    its targets (a target without a network names the ``first``); None when none names it."""
    if not search or not isinstance(search.get("dimensions"), list):
        return None
    out = _copy.deepcopy(search)
    changed = False
    for dim in out["dimensions"]:
        target = dim.get("target") if isinstance(dim, dict) else None
        if not isinstance(target, dict) or target.get("node") != old:
            continue
        if target.get("network", first) != network:
            continue
        target["node"] = new
        changed = True
    return out if changed else None
