"""The canvas scene: turns document model events into graphics items.

Like orange-canvas-core's scene, it listens to the model (``Document.graph_event``) and creates,
updates or removes items; it never changes items on its own, and it changes nothing in the model:
gestures are the view's business (a node drag moves nodes in the model live and is recorded as
one undo step on release; the model's ``moved`` events bring the items along).
"""

from __future__ import annotations

import math
from collections import defaultdict

from PySide6.QtCore import QPointF, QRectF, Slot
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene

from designer.engine.model.blocks import input_count
from designer.engine.model.catalog import fmt_shape
from designer.engine.model.graph import Edge, GraphEvent, Problem
from designer.engine.model.layout import NODE_SIZE
from designer.engine.model.shapes import Analysis

from ..document import Document
from .items import EdgeItem, NodeItem

GRID = 20.0
SNAP = 10.0
SCENE_EXTENT = 100_000.0
BACKGROUND = QColor("#f6f7f9")
GRID_MINOR = QColor("#e9ecf0")
GRID_MAJOR = QColor("#dde1e7")


class CanvasScene(QGraphicsScene):
    """Items for the current network of a :class:`Document`, kept in step with its events."""

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.snap_to_grid = True
        self.node_items: dict[str, NodeItem] = {}
        self.edge_items: dict[Edge, EdgeItem] = {}
        self._edges_at: dict[str, set[Edge]] = defaultdict(set)
        # the Inside overlay's marks by node id: (colour or None, badge, tip); see set_marks
        self.marks: dict[str, tuple] = {}
        self.setSceneRect(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT)
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        document.graph_event.connect(self._on_graph_event)
        document.network_changed.connect(self._on_network_changed)
        document.analysis_updated.connect(self._on_analysis)
        self.rebuild()

    # -- building ------------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Drop every item and build them again from the model (new network or project)."""
        for item in list(self.node_items.values()) + list(self.edge_items.values()):
            self.removeItem(item)
        self.node_items.clear()
        self.edge_items.clear()
        self._edges_at.clear()
        graph = self.document.graph
        connected: dict[str, set[int]] = defaultdict(set)
        feeding: set[str] = set()
        for edge in graph.edges:
            connected[edge.dst].add(edge.dst_port)
            feeding.add(edge.src)
        for node in graph.nodes.values():
            item = self._add_node_item(node.id, connected.get(node.id, set()))
            if item.output is not None:
                item.output.set_connected(node.id in feeding)
        for edge in graph.edges:
            self._add_edge_item(edge)
            self._place_edge(edge)
        if self.document.analysis is not None:
            self._on_analysis(self.document.analysis)

    def _add_node_item(self, node_id: str, connected: set[int] = frozenset()) -> NodeItem:
        graph = self.document.graph
        node = graph.nodes[node_id]
        item = NodeItem(node, connected, input_count(graph.library, node))
        self.node_items[node_id] = item
        self.addItem(item)
        analysis = self.document.analysis
        if analysis is not None:
            item.set_analysis(analysis.infos.get(node_id), analysis.problems_for(node_id))
        if node_id in self.marks:
            item.set_mark(*self.marks[node_id])
        if self.document.trail and self._opened_from_frozen_use():
            item.set_frozen_by_use(True)
        return item

    def _opened_from_frozen_use(self) -> bool:
        """The current network is a block definition opened from a use that is frozen (or
        from inside one): its layers are frozen in that use."""
        networks = self.document.project.networks
        for network, use_id in self.document.trail:
            use = networks[network].nodes.get(use_id) if network in networks else None
            if use is not None and use.frozen:
                return True
        return False

    def set_marks(self, marks: dict[str, tuple]) -> None:
        """The Inside overlay: ``(QColor | None, badge, tip)`` per node id; nodes left out lose
        theirs (an empty dict clears the overlay)."""
        self.marks = dict(marks)
        for node_id, item in self.node_items.items():
            item.set_mark(*self.marks.get(node_id, (None, "", "")))

    def _add_edge_item(self, edge: Edge) -> None:
        item = EdgeItem(edge)
        self.edge_items[edge] = item
        self._edges_at[edge.src].add(edge)
        self._edges_at[edge.dst].add(edge)
        analysis = self.document.analysis
        if analysis is not None:
            item.set_label(_edge_label(analysis, edge))
        self.addItem(item)

    def _remove_edge_item(self, edge: Edge) -> None:
        item = self.edge_items.pop(edge, None)
        if item is not None:
            self.removeItem(item)
        self._edges_at[edge.src].discard(edge)
        self._edges_at[edge.dst].discard(edge)

    def _sync_node(self, node_id: str) -> None:
        """Refresh a node's text and ports from the model, then the edges attached to it."""
        item = self.node_items.get(node_id)
        node = self.document.graph.nodes.get(node_id)
        if item is None or node is None:
            return
        connected = {e.dst_port for e in self._edges_at[node_id] if e.dst == node_id}
        item.block_inputs = input_count(self.document.graph.library, node)
        item.sync_from_model(node, connected)
        if item.output is not None:
            item.output.set_connected(any(e.src == node_id for e in self._edges_at[node_id]))
        self._update_edges_of(node_id)

    def _sync_ports(self, node_id: str) -> None:
        """After an edge came or went: the node's port marks (and a merge's port count)."""
        item = self.node_items.get(node_id)
        if item is None:
            return
        edges = self._edges_at[node_id]
        if item.set_ports({e.dst_port for e in edges if e.dst == node_id},
                          any(e.src == node_id for e in edges)):
            self._update_edges_of(node_id)  # the ports moved

    def _update_edges_of(self, node_id: str) -> None:
        for edge in self._edges_at.get(node_id, ()):
            self._place_edge(edge)

    def _place_edge(self, edge: Edge) -> None:
        item = self.edge_items.get(edge)
        src, dst = self.node_items.get(edge.src), self.node_items.get(edge.dst)
        if item is None or src is None or dst is None:
            return
        item.set_ends(src.output_anchor(), dst.input_anchor(edge.dst_port))

    # -- model events ----------------------------------------------------------------------------------

    @Slot(object)
    def _on_graph_event(self, ev: GraphEvent) -> None:
        kind = ev.kind
        if kind == GraphEvent.MOVED:
            item = self.node_items.get(ev.node_id)
            if item is not None:
                item.sync_pos(ev.new)
                self._update_edges_of(ev.node_id)
        elif kind == GraphEvent.NODE_ADDED:
            if ev.node_id not in self.node_items:
                self._add_node_item(ev.node_id)  # a new or restored node has no edges yet
        elif kind == GraphEvent.NODE_REMOVED:
            item = self.node_items.pop(ev.node_id, None)
            if item is not None:
                self.removeItem(item)
            for edge in list(self._edges_at.pop(ev.node_id, ())):
                self._remove_edge_item(edge)
        elif kind == GraphEvent.EDGE_ADDED:
            self._add_edge_item(ev.edge)
            self._sync_ports(ev.edge.dst)
            self._sync_ports(ev.edge.src)
            self._place_edge(ev.edge)
        elif kind == GraphEvent.EDGE_REMOVED:
            self._remove_edge_item(ev.edge)
            self._sync_ports(ev.edge.dst)
            self._sync_ports(ev.edge.src)
        elif kind in (GraphEvent.PARAMS_CHANGED, GraphEvent.RENAMED, GraphEvent.WHEN_CHANGED,
                      GraphEvent.FROZEN_CHANGED):
            self._sync_node(ev.node_id)

    @Slot(str)
    def _on_network_changed(self, name: str) -> None:
        self.rebuild()

    @Slot(object)
    def _on_analysis(self, analysis: Analysis) -> None:
        by_node: dict[str, list[Problem]] = defaultdict(list)
        for p in analysis.problems:
            for nid in p.node_ids:
                by_node[nid].append(p)
        for nid, item in self.node_items.items():
            item.set_analysis(analysis.infos.get(nid), by_node.get(nid, []))
        for edge, item in self.edge_items.items():
            item.set_label(_edge_label(analysis, edge))

    # -- gestures from items ----------------------------------------------------------------------------

    def snap(self, pos: QPointF) -> QPointF:
        """``pos`` on the snapping grid (when snapping is on)."""
        if not self.snap_to_grid:
            return pos
        return QPointF(round(pos.x() / SNAP) * SNAP, round(pos.y() / SNAP) * SNAP)

    # -- queries -----------------------------------------------------------------------------------------

    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def free_spot(self, top_left: QPointF, margin: float = 24.0, rings: int = 12) -> QPointF:
        """Where a new layer wanted at ``top_left`` goes: there if it overlaps no layer (nor
        comes within ``margin`` of one, which keeps ports clear), else the nearest free spot on
        a grid of node-sized steps around it (a second double-click in the palette, or Tab over
        a port, never stacks a layer on another)."""
        w, h = NODE_SIZE
        taken = [item.sceneBoundingRect().adjusted(-margin, -margin, margin, margin)
                 for item in self.node_items.values()]

        def free(p: QPointF) -> bool:
            r = QRectF(p.x(), p.y(), w, h)
            return not any(r.intersects(t) for t in taken)

        if free(top_left):
            return top_left
        step_x, step_y = w + margin * 2, h + margin
        for ring in range(1, rings + 1):
            cells = [(i, j) for i in range(-ring, ring + 1) for j in range(-ring, ring + 1)
                     if max(abs(i), abs(j)) == ring]
            # nearest first; at equal distance below, then to the right (the way designs grow)
            cells.sort(key=lambda c: (math.hypot(c[0] * step_x, c[1] * step_y), -c[1], -c[0]))
            for i, j in cells:
                p = self.snap(QPointF(top_left.x() + i * step_x, top_left.y() + j * step_y))
                if free(p):
                    return p
        return top_left

    def nodes_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.node_items.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    # -- background ---------------------------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, BACKGROUND)
        scale = painter.worldTransform().m11()
        if scale < 0.25:
            return  # lines this dense would just be grey noise
        step = GRID if scale >= 0.5 else GRID * 5
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x < rect.right():
            (major if round(x / GRID) % 5 == 0 else minor).append((x, True))
            x += step
        y = top
        while y < rect.bottom():
            (major if round(y / GRID) % 5 == 0 else minor).append((y, False))
            y += step
        for lines, color in ((minor, GRID_MINOR), (major, GRID_MAJOR)):
            pen = QPen(color, 0)  # cosmetic: one pixel at any zoom
            painter.setPen(pen)
            for v, vertical in lines:
                if vertical:
                    painter.drawLine(QPointF(v, rect.top()), QPointF(v, rect.bottom()))
                else:
                    painter.drawLine(QPointF(rect.left(), v), QPointF(rect.right(), v))


def _edge_label(analysis: Analysis, edge: Edge) -> str:
    info = analysis.infos.get(edge.src)
    if info is None or info.output_shape is None:
        return "?"
    return fmt_shape(info.output_shape)
