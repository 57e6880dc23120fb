"""The node canvas widget: a QGraphicsView over :class:`CanvasScene` that turns mouse and keyboard
gestures into document edits.

Gestures: drop a layer from the palette (MIME ``application/x-designer-layer``, data = the layer
type id in UTF-8); drag from an output port to an input port to connect (a live wire follows the
cursor; a refused target says why in a tooltip); drag an edge's arrow end to another input to
rewire it, or off into empty space to disconnect; rubber-band select; drag nodes (one undo step
per drag, recorded on release); wheel to zoom around the cursor; middle button or space+drag to
pan; Tab for a quick-add search (wired after the selected layer); Delete, Ctrl+C/V/D, F to fit.
A wire dropped on a connected input replaces the wire there. Keyboard: arrows walk the wires,
C connects the two selected layers, Ctrl+F finds one by name; Freeze / Make Trainable / Freeze
Layers Before This act on the selection, each one undo step.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCursor,
    QKeySequence,
    QPainter,
    QTransform,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGraphicsView,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from designer.engine.model.catalog import CATALOG
from designer.engine.model.graph import Adjacency, Edge, GraphError

from ..document import CLIPBOARD_MIME, Document
from .items import NODE_WIDTH, EdgeItem, NodeItem, PortItem, WireItem
from .scene import CanvasScene

#: MIME type the palette provides when a layer is dragged; the data is the type id (UTF-8).
LAYER_MIME = "application/x-designer-layer"
#: MIME type of a block dragged from the palette's Blocks section; the data is the network's name.
BLOCK_MIME = "application/x-designer-block"
MIN_ZOOM, MAX_ZOOM = 0.01, 3.0
#: F (fit) never zooms out below this: names and ports are drawn from DETAIL_ZOOM (0.4) up.
FIT_MIN_ZOOM = 0.45


class CanvasView(QGraphicsView):
    """The canvas. Public API used by the main window:

    ``selection_changed(list)`` selected node ids; ``selected_node_ids()``, ``select_nodes(ids)``,
    ``center_on_node(id)``, ``fit_to_view()``, ``delete_selection()``, ``copy_selection()``,
    ``paste()``, ``duplicate_selection()``, ``auto_layout()``, ``open_quick_add()``,
    ``set_snap_to_grid(bool)``, ``zoom_by(factor)``, ``freeze_selection(bool)``,
    ``freeze_before_selection()``, ``connect_selection()``, ``find_layer(name)``,
    ``step_selection(key)``; ``message(str)`` reports a refused edit for the status bar.
    """

    selection_changed = Signal(list)
    message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.canvas_scene = CanvasScene(document, self)
        self.setScene(self.canvas_scene)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setCacheMode(QGraphicsView.CacheBackground)

        self._wire: WireItem | None = None
        self._wire_from: PortItem | None = None  # the fixed end while connecting
        self._rewire: Edge | None = None  # the edge being moved (its input end follows the cursor)
        self._target: PortItem | None = None
        # A node drag in progress: scene point pressed and where the dragged nodes started.
        self._drag_origin: QPointF | None = None
        self._drag_start: dict[str, tuple[float, float]] = {}
        self._dragged = False
        self._click_node: str | None = None
        self._panning: QPoint | None = None
        self._space = False
        self._paste_count = 0
        self._quick_add: QuickAddPopup | None = None
        # the selected node ids in the order they were selected (the last: the current layer,
        # which arrow keys move from; Connect wires the first into the second)
        self._order: list[str] = []
        # True from a fit until the user zooms, pans or edits: a resize then fits again (the first
        # fit runs before the window has laid out its docks, on a viewport of the wrong size).
        # An edit ends it, so a dock resizing during editing never moves the canvas under the
        # mouse.
        self._fitted = False

        self.canvas_scene.selectionChanged.connect(self._on_selection_changed)
        document.network_changed.connect(self._on_network_changed)
        document.graph_event.connect(self._on_graph_event)
        self._make_actions()

    # -- public API ------------------------------------------------------------------------------

    def selected_node_ids(self) -> list[str]:
        return self.canvas_scene.selected_node_ids()

    def select_nodes(self, ids) -> None:
        self._order = [nid for nid in dict.fromkeys(ids) if nid in self.canvas_scene.node_items]
        wanted = set(ids)
        scene = self.canvas_scene
        scene.blockSignals(True)
        try:
            scene.clearSelection()
            for nid in wanted:
                item = scene.node_items.get(nid)
                if item is not None:
                    item.setSelected(True)
        finally:
            scene.blockSignals(False)
        self._on_selection_changed()

    def center_on_node(self, node_id: str) -> None:
        item = self.canvas_scene.node_items.get(node_id)
        if item is not None:
            self.centerOn(item.sceneBoundingRect().center())

    def fit_to_view(self) -> None:
        rect = self.canvas_scene.nodes_rect()
        if rect.isNull():
            self.setTransform(QTransform())
            self.centerOn(0, 0)
            return
        rect = rect.adjusted(-60, -60, 60, 60)
        self.fitInView(rect, Qt.KeepAspectRatio)
        if self.transform().m11() > 1.25:  # a tiny graph should not be blown up
            self.setTransform(QTransform.fromScale(1.25, 1.25))
            self.centerOn(rect.center())
        elif self.transform().m11() < FIT_MIN_ZOOM:
            # Fitted whole, a big design would be boxes without names or ports: show its start
            # (the inputs) at a zoom where it can be read, and let the user scroll or zoom out.
            self.setTransform(QTransform.fromScale(FIT_MIN_ZOOM, FIT_MIN_ZOOM))
            half_w = self.viewport().width() / 2 / FIT_MIN_ZOOM
            half_h = self.viewport().height() / 2 / FIT_MIN_ZOOM
            self.centerOn(min(rect.center().x(), rect.left() + half_w),
                          min(rect.center().y(), rect.top() + half_h))
        self._fitted = True

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit_to_view()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the scene point under ``anchor`` (view coords) in place."""
        self._fitted = False
        current = self.transform().m11()
        factor = max(MIN_ZOOM / current, min(MAX_ZOOM / current, factor))
        if abs(factor - 1.0) < 1e-6:
            return
        if anchor is None:
            self.scale(factor, factor)
            return
        before = self.mapToScene(anchor.toPoint())
        old = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.NoAnchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor.toPoint())
        delta = after - before
        self.translate(delta.x(), delta.y())
        self.setTransformationAnchor(old)

    def set_snap_to_grid(self, on: bool) -> None:
        self.canvas_scene.snap_to_grid = bool(on)

    def delete_selection(self) -> None:
        nodes = self.selected_node_ids()
        edges = self.canvas_scene.selected_edges()
        if nodes or edges:
            self.document.remove(nodes, edges)

    def copy_selection(self) -> dict | None:
        ids = self.selected_node_ids()
        if not ids:
            return None
        data = self.document.copy(ids)
        mime = QMimeData()
        text = json.dumps(data)
        mime.setData(CLIPBOARD_MIME, text.encode("utf-8"))
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
        self._paste_count = 0
        return data

    def paste(self) -> list[str]:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return []
        raw = bytes(mime.data(CLIPBOARD_MIME)) if mime.hasFormat(CLIPBOARD_MIME) else None
        if raw is None:
            text = mime.text()
            if not text.lstrip().startswith("{"):
                return []
            raw = text.encode("utf-8")
        try:
            data = json.loads(raw.decode("utf-8"))
            self._paste_count += 1
            step = 30.0 * self._paste_count
            ids = self.document.paste(data, (step, step))
        except (ValueError, GraphError) as exc:
            self.message.emit(f"Cannot paste: {exc}")
            return []
        self.select_nodes(ids)
        return ids

    def duplicate_selection(self) -> list[str]:
        ids = self.selected_node_ids()
        if not ids:
            return []
        new = self.document.duplicate(ids)
        self.select_nodes(new)
        return new

    def auto_layout(self) -> None:
        self.document.auto_layout()
        self.fit_to_view()

    def add_layer_at(self, type_id: str, scene_pos: QPointF, after: str | None = None
                     ) -> str | None:
        """Add a layer centred at ``scene_pos`` (or at the nearest free spot, if another layer is
        there) and select it (drops, quick add, palette); ``after``: wired from that layer."""
        top_left = self.canvas_scene.free_spot(
            self.canvas_scene.snap(QPointF(scene_pos.x() - NODE_WIDTH / 2, scene_pos.y() - 40)))
        try:
            nid = self.document.add_node(type_id, (top_left.x(), top_left.y()), after=after)
        except GraphError as exc:
            self.message.emit(str(exc))
            return None
        self.select_nodes([nid])
        return nid

    def add_block_at(self, block: str, scene_pos: QPointF) -> str | None:
        """Add a use of network ``block`` at ``scene_pos`` (a drop from the palette's Blocks)."""
        top_left = self.canvas_scene.free_spot(
            self.canvas_scene.snap(QPointF(scene_pos.x() - NODE_WIDTH / 2, scene_pos.y() - 40)))
        try:
            nid = self.document.add_block_use(block, (top_left.x(), top_left.y()))
        except GraphError as exc:
            self.message.emit(str(exc))
            return None
        self.select_nodes([nid])
        return nid

    def add_block_at_center(self, block: str) -> str | None:
        return self.add_block_at(block, self.mapToScene(self.viewport().rect().center()))

    def add_layer_at_center(self, type_id: str) -> str | None:
        return self.add_layer_at(type_id, self.mapToScene(self.viewport().rect().center()))

    def open_quick_add(self, view_pos: QPoint | None = None) -> QuickAddPopup:
        """Show the quick-add search at ``view_pos`` (default: right of the one selected layer,
        which the new layer is then wired after; else the cursor, or the view centre)."""
        anchor = self._quick_add_anchor()
        scene_pos = None
        if view_pos is None and anchor is not None:
            box = self.canvas_scene.node_items[anchor].sceneBoundingRect()
            scene_pos = QPointF(box.right() + 80 + NODE_WIDTH / 2, box.top() + 40)
            view_pos = self.mapFromScene(QPointF(box.right() + 20, box.top()))
            if not self.viewport().rect().contains(view_pos):
                view_pos = self.viewport().rect().center()
        if view_pos is None:
            view_pos = self.mapFromGlobal(QCursor.pos())
            if not self.viewport().rect().contains(view_pos):
                view_pos = self.viewport().rect().center()
        if scene_pos is None:
            scene_pos = self.mapToScene(view_pos)
        if self._quick_add is None:
            self._quick_add = QuickAddPopup(self)
            self._quick_add.chosen.connect(self._on_quick_add_chosen)
        self._quick_add.anchor = anchor
        self._quick_add.open_at(self.viewport().mapToGlobal(view_pos), scene_pos)
        return self._quick_add

    def _quick_add_anchor(self) -> str | None:
        """The one selected layer with an output: a quick-added layer is wired after it."""
        ids = self.selected_node_ids()
        graph = self.document.graph
        if len(ids) == 1 and ids[0] in graph.nodes and graph.nodes[ids[0]].spec.has_output:
            return ids[0]
        return None

    # -- actions -----------------------------------------------------------------------------------

    def _make_actions(self) -> None:
        def act(text, shortcut, slot):
            a = QAction(text, self)
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WidgetShortcut)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.delete_action = act("Delete", QKeySequence.Delete, self.delete_selection)
        self.backspace_action = act("Delete", Qt.Key_Backspace, self.delete_selection)
        self.copy_action = act("Copy", QKeySequence.Copy, self.copy_selection)
        self.paste_action = act("Paste", QKeySequence.Paste, self.paste)
        self.duplicate_action = act("Duplicate", "Ctrl+D", self.duplicate_selection)
        self.fit_action = act("Fit to view", "F", self.fit_to_view)
        self.select_all_action = act("Select all", QKeySequence.SelectAll, self._select_all)
        self.group_action = act("Group into Block…", "Ctrl+G", lambda: self.group_selection())
        self.ungroup_action = act("Ungroup Block", "Ctrl+Shift+G", lambda: self.ungroup_selection())
        self.make_unique_action = act("Make Block Unique", "", lambda: self.make_unique_selection())
        self.open_block_action = act("Open Block Definition", "", lambda: self.open_selected_block())
        self.freeze_action = act("Freeze", "Ctrl+Shift+F", lambda: self.freeze_selection(True))
        self.unfreeze_action = act("Make Trainable", "Ctrl+Shift+U",
                                   lambda: self.freeze_selection(False))
        self.freeze_before_action = act("Freeze Layers Before This", "Ctrl+Shift+B",
                                        lambda: self.freeze_before_selection())
        self.connect_action = act("Connect", "C", lambda: self.connect_selection())
        self.find_action = act("Find Layer…", QKeySequence.Find, lambda: self.find_layer())
        for action, tip in (
                (self.freeze_action, ("Make the selected layers and block uses not trainable: "
                                     "training leaves their weights as they are (one undo "
                                     "step)")),
                (self.unfreeze_action, "Make the selected layers and block uses trainable again"),
                (self.freeze_before_action, ("Freeze every layer upstream of the selected one "
                                            "(e.g. a pretrained backbone before its head)")),
                (self.connect_action, ("Wire the output of the first selected layer into a free "
                                      "input of the second (one layer selected: choose the "
                                      "other by name)")),
                (self.find_action, "Select a layer by its name and show it"),
                (self.group_action, ("Turn the selected layers into a block (a network of this "
                                    "project) and put one use of it in their place")),
                (self.ungroup_action, "Put the layers of the selected block use in its place"),
                (self.make_unique_action, ("Give the selected use its own copy of its block, to "
                                          "change it alone")),
                (self.open_block_action, "Show the selected use's definition (Esc: back)")):
            action.setStatusTip(tip)

    # -- freezing ----------------------------------------------------------------------------------

    def freeze_selection(self, frozen: bool = True) -> int:
        """Freeze (or make trainable) every selected layer and block use: one undo step."""
        graph = self.document.graph
        ids = [nid for nid in self.selected_node_ids()
               if graph.nodes[nid].type not in ("Input", "Output")]
        verb = "Freeze" if frozen else "Make trainable"
        if not ids:
            self.message.emit(f"{verb}: select the layers or block uses (Inputs and Outputs "
                              "hold no weights)")
            return 0
        count = self.document.set_frozen_many(ids, frozen)
        state = "frozen" if frozen else "trainable"
        if count:
            self.message.emit(f"{count} layer{'s' if count != 1 else ''} {state}")
        else:
            self.message.emit(f"The selected layers are {state} already")
        return count

    def freeze_before_selection(self) -> int:
        """Freeze every layer upstream of the selected ones (not those): one undo step."""
        ids = self.selected_node_ids()
        if not ids:
            self.message.emit("Freeze before: select the first layer that keeps training")
            return 0
        graph = self.document.graph
        before = self.document.layers_before(ids)
        name = graph.nodes[ids[0]].name if len(ids) == 1 else f"{len(ids)} selected layers"
        if not before:
            self.message.emit(f"Nothing before '{name}' holds weights to freeze")
            return 0
        todo = [nid for nid in before if not graph.nodes[nid].frozen]
        count = self.document.set_frozen_many(
            todo, True, text=f"Freeze the {len(todo)} layers before '{name}'")
        self.message.emit(f"Froze {count} layer{'s' if count != 1 else ''} before '{name}'"
                          if count else f"Everything before '{name}' is frozen already")
        return count

    # -- keyboard: connect, find, move the selection along the wires -----------------------------

    def _free_input(self, node_id: str) -> int | None:
        """The input a keyboard connection goes to: the first free one, else the only one
        (its wire is replaced); None when the node takes no input."""
        item = self.canvas_scene.node_items.get(node_id)
        if item is None or not item.inputs:
            return None
        free = next((p.index for p in item.inputs if not p.connected), None)
        return free if free is not None or len(item.inputs) != 1 else 0

    def connect_selection(self) -> bool:
        """Connect (C): the output of the first selected layer into a free input of the second;
        with one layer selected, ask which layer it feeds. One undo step."""
        order = [nid for nid in self._order if nid in self.document.graph.nodes]
        if len(order) == 1:
            dst = self.ask_connect_target(order[0])
            if dst is None:
                return False
            order.append(dst)
        if len(order) != 2:
            self.message.emit("Connect: select two layers (the first selected feeds the second)"
                              ", or one and choose the other")
            return False
        src, dst = order
        port = self._free_input(dst)
        graph = self.document.graph
        if port is None:
            self.message.emit(f"Cannot connect: '{graph.nodes[dst].name}' takes no input")
            return False
        try:
            self.document.connect(src, dst, port, replace=True)
        except GraphError as exc:
            self.message.emit(f"Cannot connect: {exc}")
            return False
        self.select_nodes([dst])
        self.message.emit(f"Connected '{graph.nodes[src].name}' to '{graph.nodes[dst].name}'")
        return True

    def connect_targets(self, src: str) -> list[str]:
        """The layers that ``src`` could feed (a free input, or the only one)."""
        doc = self.document
        out = []
        for nid in doc.graph.nodes:
            port = self._free_input(nid)
            if port is not None and doc.can_connect(src, nid, port, replace=True) is None:
                out.append(nid)
        return out

    def ask_connect_target(self, src: str) -> str | None:
        """Which layer ``src`` feeds (a dialog listing the possible ones; tests replace it)."""
        graph = self.document.graph
        targets = self.connect_targets(src)
        if not targets:
            self.message.emit(f"Cannot connect: '{graph.nodes[src].name}' can feed no other layer")
            return None
        names = [graph.nodes[nid].name for nid in targets]
        name, ok = QInputDialog.getItem(self, "Connect", f"Connect '{graph.nodes[src].name}' "
                                        "to:", names, 0, True)
        return targets[names.index(name)] if ok and name in names else None

    def ask_layer_name(self) -> str | None:
        """A layer's name to find (a dialog; tests replace it)."""
        names = [n.name for n in self.document.graph.nodes.values()]
        name, ok = QInputDialog.getItem(self, "Find Layer", "Layer:", names, 0, True)
        return name.strip() if ok and name.strip() else None

    def find_layer(self, name: str | None = None) -> str | None:
        """Select the layer called ``name`` (asked when None) and scroll to it (Ctrl+F)."""
        if name is None:
            name = self.ask_layer_name()
            if name is None:
                return None
        graph = self.document.graph
        node = graph.node_by_name(name)
        if node is None:  # a unique start of a name will do
            matches = [n for n in graph.nodes.values()
                       if n.name.lower().startswith(name.lower())]
            node = matches[0] if len(matches) == 1 else None
        if node is None:
            self.message.emit(f"No layer is called '{name}'")
            return None
        self.select_nodes([node.id])
        self.reveal_node(node.id)
        return node.id

    def reveal_node(self, node_id: str) -> None:
        """Scroll just enough to show ``node_id`` (a keyboard move, a quick-added layer)."""
        item = self.canvas_scene.node_items.get(node_id)
        if item is not None:
            self._fitted = False
            self.ensureVisible(item, 40, 40)

    def step_selection(self, key: int, extend: bool = False) -> str | None:
        """Arrow keys: Right/Left select the next layer downstream/upstream along the wires,
        Up/Down the nearest layer above/below; with ``extend`` (Shift) the selection grows.
        Nothing selected: the first Input (or the top-left layer)."""
        graph = self.document.graph
        items = self.canvas_scene.node_items
        if not items:
            return None
        current = next((nid for nid in reversed(self._order) if nid in items), None)
        if current is None:
            inputs = [n.id for n in graph.inputs() if n.id in items]
            target = inputs[0] if inputs else min(items, key=lambda n: (items[n].y(), items[n].x()))
        else:
            here = items[current].sceneBoundingRect().center()

            def centre(nid):
                return items[nid].sceneBoundingRect().center()

            adj = Adjacency.of(graph)
            if key == Qt.Key_Right:
                cands = [nid for nid in adj.succs.get(current, []) if nid in items]
                target = min(cands, key=lambda n: (abs(centre(n).y() - here.y()), centre(n).x()),
                             default=None)
            elif key == Qt.Key_Left:
                cands = [e.src for e in adj.preds.get(current, []) if e.src in items]
                target = cands[0] if cands else None
            else:
                sign = -1 if key == Qt.Key_Up else 1
                cands = [nid for nid in items if nid != current
                         and (centre(nid).y() - here.y()) * sign > 1]
                target = min(cands, key=lambda n: abs(centre(n).y() - here.y())
                             + 2 * abs(centre(n).x() - here.x()), default=None)
            if target is None:
                return None
        if extend:
            self.select_nodes([nid for nid in self._order if nid != target] + [target])
        else:
            self.select_nodes([target])
        self.reveal_node(target)
        return target

    # -- blocks ------------------------------------------------------------------------------------

    def _selected_use(self) -> str | None:
        ids = self.selected_node_ids()
        graph = self.document.graph
        if len(ids) == 1 and ids[0] in graph.nodes and graph.nodes[ids[0]].kind.is_block:
            return ids[0]
        return None

    def ask_block_name(self, default: str) -> str | None:
        """The name of a new block (a dialog; tests replace it)."""
        name, ok = QInputDialog.getText(self, "Group into Block", "Name of the new block:",
                                        QLineEdit.Normal, default)
        return name.strip() if ok and name.strip() else None

    def group_selection(self, name: str | None = None) -> str | None:
        """Group the selected layers into a new block (Ctrl+G); returns the use's id."""
        ids = self.selected_node_ids()
        if not ids:
            self.message.emit("Cannot group: select the layers to group into a block")
            return None
        if name is None:
            name = self.ask_block_name(self.document.free_block_name("Block"))
            if name is None:
                return None
        try:
            use = self.document.group(ids, name)
        except GraphError as exc:
            self.message.emit(f"Cannot group: {exc}")
            return None
        self.select_nodes([use])
        self.message.emit(f"Grouped {len(ids)} layers into block '{name}' "
                          "(double-click it to open)")
        return use

    def ungroup_selection(self) -> list[str]:
        use = self._selected_use()
        if use is None:
            self.message.emit("Cannot ungroup: select one block use")
            return []
        try:
            added = self.document.ungroup(use)
        except GraphError as exc:
            self.message.emit(f"Cannot ungroup: {exc}")
            return []
        self.select_nodes(added)
        return added

    def make_unique_selection(self) -> str | None:
        use = self._selected_use()
        if use is None:
            self.message.emit("Make unique: select one block use")
            return None
        try:
            name = self.document.make_unique(use)
        except GraphError as exc:
            self.message.emit(f"Cannot make unique: {exc}")
            return None
        self.message.emit(f"The use now has its own block '{name}'")
        return name

    def open_selected_block(self) -> bool:
        use = self._selected_use()
        return use is not None and self.open_block(use)

    def open_block(self, use_id: str) -> bool:
        try:
            self.document.open_block(use_id)
        except GraphError as exc:
            self.message.emit(f"Cannot open: {exc}")
            return False
        return True

    def _select_all(self) -> None:
        self.select_nodes(list(self.canvas_scene.node_items))

    # -- selection ---------------------------------------------------------------------------------

    @Slot()
    def _on_selection_changed(self) -> None:
        ids = self.selected_node_ids()
        now = set(ids)
        items = self.canvas_scene.node_items
        kept = [nid for nid in self._order if nid in now]
        # newly selected ones (a Ctrl+click, a rubber band) follow, left to right
        new = sorted(now - set(kept), key=lambda nid: (items[nid].x(), items[nid].y()))
        self._order = kept + new
        self.selection_changed.emit(ids)

    def selection_order(self) -> list[str]:
        """The selected node ids in the order they were selected (the last is current)."""
        return list(self._order)

    @Slot(str)
    def _on_graph_event(self, _event) -> None:
        self._fitted = False

    def _on_network_changed(self, name: str) -> None:
        QTimer.singleShot(0, self.fit_to_view)

    # -- drops from the palette ------------------------------------------------------------------------

    def _layer_from_mime(self, mime: QMimeData) -> str | None:
        if mime is None or not mime.hasFormat(LAYER_MIME):
            return None
        type_id = bytes(mime.data(LAYER_MIME)).decode("utf-8", "replace").strip()
        return type_id if type_id in CATALOG else None

    def _block_from_mime(self, mime: QMimeData) -> str | None:
        if mime is None or not mime.hasFormat(BLOCK_MIME):
            return None
        name = bytes(mime.data(BLOCK_MIME)).decode("utf-8", "replace").strip()
        return name if name in self.document.project.networks else None

    def dragEnterEvent(self, event) -> None:
        if self._layer_from_mime(event.mimeData()) or self._block_from_mime(event.mimeData()):
            event.setDropAction(Qt.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._layer_from_mime(event.mimeData()) or self._block_from_mime(event.mimeData()):
            event.setDropAction(Qt.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        event.accept()

    def dropEvent(self, event) -> None:
        block = self._block_from_mime(event.mimeData())
        if block:
            event.setDropAction(Qt.CopyAction)
            event.accept()
            self.add_block_at(block, self.mapToScene(event.position().toPoint()))
            self.setFocus()
            return
        type_id = self._layer_from_mime(event.mimeData())
        if not type_id:
            event.ignore()
            return
        event.setDropAction(Qt.CopyAction)
        event.accept()
        self.add_layer_at(type_id, self.mapToScene(event.position().toPoint()))
        self.setFocus()

    # -- mouse ----------------------------------------------------------------------------------------

    def _port_at(self, view_pos: QPoint, want_output: bool | None = None) -> PortItem | None:
        """The port nearest the cursor within a few pixels. Over a node's body, only that node's
        own ports count (a port of a node underneath must not steal the press)."""
        tol = max(3.0, min(6.0, 8.0 * self.transform().m11()))
        area = QRectF(view_pos.x() - tol, view_pos.y() - tol, 2 * tol, 2 * tol).toRect()
        ports = [i for i in self.items(area) if isinstance(i, PortItem)
                 and (want_output is None or i.is_output == want_output)]
        if not ports:
            return None
        top = self.itemAt(view_pos)
        if isinstance(top, PortItem):
            return top if top in ports else None
        if isinstance(top, NodeItem):
            ports = [p for p in ports if p.node_item is top]
        scene_pos = self.mapToScene(view_pos)
        return min(ports, key=lambda p: (p.scenePos() - scene_pos).manhattanLength(), default=None)

    def _port_on_node(self, view_pos: QPoint, want_output: bool) -> PortItem | None:
        """Dropping a wire on a node's body: its output, or its first free input."""
        node = self._node_at(view_pos)
        if node is None:
            return None
        if want_output:
            return node.output
        free = next((p for p in node.inputs if not p.connected), None)
        # every input taken: a layer with one input has its wire replaced
        return free if free is not None or len(node.inputs) != 1 else node.inputs[0]

    def _edge_end_at(self, view_pos: QPoint) -> Edge | None:
        """An edge whose input end (arrow head) is near ``view_pos``: the grip for rewiring."""
        scene_pos = self.mapToScene(view_pos)
        tolerance = 12.0 / max(self.transform().m11(), 0.1)
        for item in self.items(QRectF(view_pos.x() - 12, view_pos.y() - 12, 24, 24).toRect()):
            if isinstance(item, EdgeItem):
                end = item.end_point
                if (end - scene_pos).manhattanLength() <= tolerance * 1.5:
                    return item.edge
        return None

    def mousePressEvent(self, event) -> None:
        pos = event.position().toPoint()
        if event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton and self._space):
            self._panning = pos
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.LeftButton:
            port = self._port_at(pos)
            if port is not None:
                edge = None
                if not port.is_output and port.connected:
                    edge = next((e for e in self.document.graph.in_edges(port.node_id)
                                 if e.dst_port == port.index), None)
                if edge is not None:
                    self._start_rewire(edge)
                else:
                    self._start_wire(port)
                self._update_wire(pos)
                event.accept()
                return
            edge = self._edge_end_at(pos)
            if edge is not None and self._port_at(pos) is None:
                self._start_rewire(edge)
                self._update_wire(pos)
                event.accept()
                return
        node_item = self._node_at(pos) if event.button() == Qt.LeftButton else None
        toggle = event.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier)
        if node_item is None or toggle:
            super().mousePressEvent(event)  # rubber band, edge selection, Ctrl/Shift+click toggles
            return
        # A press on a node selects it (keeping a selection it belongs to) and may start a drag.
        if not node_item.isSelected():
            self.select_nodes([node_item.node_id])
        nodes = self.document.graph.nodes
        self._drag_origin = self.mapToScene(pos)
        self._drag_start = {nid: nodes[nid].pos for nid in self.selected_node_ids() if nid in nodes}
        self._click_node = node_item.node_id
        self._dragged = False
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        pos = event.position().toPoint()
        if event.button() == Qt.LeftButton and self._port_at(pos) is None:
            node = self._node_at(pos)
            graph = self.document.graph
            if node is not None and graph.nodes.get(node.node_id) is not None \
                    and graph.nodes[node.node_id].kind.is_block:
                self.open_block(node.node_id)  # double-click a block: open its definition
                event.accept()
                return
        # The second press of a quick double click arrives here, not in mousePressEvent; it must
        # still start a wire or a drag like any press.
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position().toPoint()
        if self._panning is not None:
            delta = pos - self._panning
            self._panning = pos
            self._fitted = False
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        if self._wire is not None:
            self._update_wire(pos)
            event.accept()
            return
        if self._drag_origin is not None and event.buttons() & Qt.LeftButton:
            self._drag_nodes(self.mapToScene(pos))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._panning is not None and event.button() in (Qt.MiddleButton, Qt.LeftButton):
            self._panning = None
            self.viewport().setCursor(Qt.OpenHandCursor if self._space else Qt.ArrowCursor)
            event.accept()
            return
        if self._wire is not None and event.button() == Qt.LeftButton:
            self._update_wire(event.position().toPoint())
            self._finish_wire()
            event.accept()
            return
        if event.button() == Qt.LeftButton and self._drag_origin is not None:
            self._drag_nodes(self.mapToScene(event.position().toPoint()))
            before, self._drag_origin, self._drag_start = self._drag_start, None, {}
            nodes = self.document.graph.nodes
            moves = {nid: (old, nodes[nid].pos) for nid, old in before.items()
                     if nid in nodes and nodes[nid].pos != old}
            if moves:
                self.document.move_nodes(moves)  # one undo step for the whole drag
            elif not self._dragged and self._click_node is not None:
                self.select_nodes([self._click_node])  # a plain click selects just this node
            self._click_node = None
            event.accept()
            return
        super().mouseReleaseEvent(event)
        event.accept()  # the view handled it (rubber band, a click on empty canvas)

    def _node_at(self, view_pos: QPoint) -> NodeItem | None:
        item = self.itemAt(view_pos)
        while item is not None and not isinstance(item, NodeItem):
            if isinstance(item, (PortItem, EdgeItem)):
                return None
            item = item.parentItem()
        return item

    def _drag_nodes(self, scene_pos: QPointF) -> None:
        """Move the dragged nodes in the model (live, no undo step yet); items follow its events.
        The grab offset is kept and each node's top-left corner snaps to the grid."""
        origin = self._drag_origin
        if origin is None or not self._drag_start:
            return
        dx, dy = scene_pos.x() - origin.x(), scene_pos.y() - origin.y()
        if not self._dragged and abs(dx) + abs(dy) < 3 / max(self.transform().m11(), 0.05):
            return  # a click, not a drag
        self._dragged = True
        graph = self.document.graph
        snap = self.canvas_scene.snap
        for nid, (x, y) in self._drag_start.items():
            if nid in graph.nodes:
                p = snap(QPointF(x + dx, y + dy))
                graph.move(nid, (p.x(), p.y()))

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return
        self.zoom_by(1.0015 ** delta, event.position())
        event.accept()

    def contextMenuEvent(self, event) -> None:
        """Right click: the edit actions for the clicked selection, plus adding a layer there."""
        node = self._node_at(event.pos())
        if node is not None and not node.isSelected():
            self.select_nodes([node.node_id])
        menu = QMenu(self)
        has_selection = bool(self.selected_node_ids() or self.canvas_scene.selected_edges())
        for action in (self.copy_action, self.duplicate_action, self.delete_action):
            action.setEnabled(has_selection)
            menu.addAction(action)
        menu.addAction(self.paste_action)
        menu.addSeparator()
        use = self._selected_use()
        self.group_action.setEnabled(bool(self.selected_node_ids()))
        menu.addAction(self.group_action)
        if use is not None:
            for action in (self.open_block_action, self.ungroup_action, self.make_unique_action):
                menu.addAction(action)
        menu.addSeparator()
        self.sync_freeze_actions()
        for action in (self.freeze_action, self.unfreeze_action, self.freeze_before_action):
            menu.addAction(action)
        menu.addSeparator()
        add = menu.addAction("Add Layer Here…\tTab")
        add.triggered.connect(lambda: self.open_quick_add(event.pos()))
        layout = menu.addAction("Auto-Layout")
        layout.triggered.connect(self.auto_layout)
        menu.addAction(self.fit_action)
        menu.exec(event.globalPos())
        for action in (self.copy_action, self.duplicate_action, self.delete_action,
                       self.group_action, self.freeze_action, self.unfreeze_action,
                       self.freeze_before_action):
            action.setEnabled(True)
        event.accept()

    def sync_freeze_actions(self) -> None:
        """Enable Freeze when a selected layer is trainable, Make Trainable when one is frozen."""
        nodes = self.document.graph.nodes
        weights = [nodes[nid] for nid in self.selected_node_ids()
                   if nodes[nid].type not in ("Input", "Output")]
        self.freeze_action.setEnabled(any(not n.frozen for n in weights))
        self.unfreeze_action.setEnabled(any(n.frozen for n in weights))
        self.freeze_before_action.setEnabled(bool(self.selected_node_ids()))

    # -- wiring -------------------------------------------------------------------------------------

    def _start_wire(self, port: PortItem) -> None:
        self._wire_from = port
        self._rewire = None
        self._wire = WireItem()
        self.canvas_scene.addItem(self._wire)

    def _start_rewire(self, edge: Edge) -> None:
        src_item = self.canvas_scene.node_items.get(edge.src)
        if src_item is None or src_item.output is None:
            return
        self._wire_from = src_item.output
        self._rewire = edge
        item = self.canvas_scene.edge_items.get(edge)
        if item is not None:
            item.setVisible(False)
        self._wire = WireItem()
        self.canvas_scene.addItem(self._wire)

    def _wire_reason(self, target: PortItem, fixed: PortItem | None = None,
                     rewire: Edge | None = None) -> str | None:
        """Why the wire from ``fixed`` cannot end at ``target`` (None if it can)."""
        if fixed is None:
            fixed, rewire = self._wire_from, self._rewire
        assert fixed is not None
        if target.is_output == fixed.is_output:
            return ("connect an output (right side) to an input (left side)" if fixed.is_output
                    else "connect this input to an output (right side of a layer)")
        src, dst = (fixed, target) if fixed.is_output else (target, fixed)
        # a wire dropped on a connected input replaces the wire there (one undo step)
        if rewire is not None:
            return self.document.can_reconnect(rewire, src.node_id, dst.node_id, dst.index,
                                               replace=True)
        return self.document.can_connect(src.node_id, dst.node_id, dst.index, replace=True)

    def _update_wire(self, view_pos: QPoint) -> None:
        fixed = self._wire_from
        if self._wire is None or fixed is None:
            return
        scene_pos = self.mapToScene(view_pos)
        target = self._port_at(view_pos, want_output=not fixed.is_output)
        if target is None:
            target = self._port_at(view_pos) or self._port_on_node(view_pos, not fixed.is_output)
        if target is not None and target is fixed:
            target = None
        if target is not self._target:
            if self._target is not None:
                self._target.set_highlight(None)
            self._target = target
        anchor = fixed.scenePos()
        reason = None
        end = scene_pos
        if target is not None:
            reason = self._wire_reason(target)
            target.set_highlight("bad" if reason else "ok")
            end = target.scenePos()
            self._wire.set_valid(reason is None)
            if reason:
                QToolTip.showText(self.viewport().mapToGlobal(view_pos), reason, self.viewport())
            else:
                QToolTip.hideText()
        else:
            self._wire.set_valid(None)
            QToolTip.hideText()
        if fixed.is_output:
            self._wire.set_ends(anchor, end)
        else:
            self._wire.set_ends(end, anchor)

    def _finish_wire(self) -> None:
        fixed, target, edge = self._wire_from, self._target, self._rewire
        if self._wire is not None:
            self.canvas_scene.removeItem(self._wire)
        self._wire, self._wire_from, self._rewire, self._target = None, None, None, None
        if target is not None:
            target.set_highlight(None)
        QToolTip.hideText()
        if edge is not None:
            item = self.canvas_scene.edge_items.get(edge)
            if item is not None:
                item.setVisible(True)
        if fixed is None:
            return
        try:
            if target is None:
                if edge is not None:  # dragged an edge end off into empty space
                    self.document.disconnect(edge)
                return
            reason = self._wire_reason(target, fixed, edge)
            if reason:
                self.message.emit(f"Cannot connect: {reason}")
                return
            src, dst = (fixed, target) if fixed.is_output else (target, fixed)
            if edge is not None:
                self.document.reconnect(edge, src.node_id, dst.node_id, dst.index, replace=True)
            else:
                self.document.connect(src.node_id, dst.node_id, dst.index, replace=True)
        except GraphError as exc:
            self.message.emit(f"Cannot connect: {exc}")

    # -- keyboard ---------------------------------------------------------------------------------------

    #: The keys and gestures handled below (not actions), for Help > Keyboard Shortcuts.
    KEYS = (("Tab", ("Quick add: search for a layer and add it (wired after the selected "
                     "layer, next to it); in the search, Esc goes back to the canvas, Tab on")),
            ("Shift+Tab", "Leave the canvas for the previous panel"),
            ("Right / Left", "Select the next layer downstream / upstream along the wires"),
            ("Up / Down", "Select the nearest layer above / below"),
            ("Shift+arrow", "Add that layer to the selection (then C connects the two)"),
            ("+ / -, wheel", "Zoom in / out around the cursor"),
            ("Space + drag, middle button drag", "Pan"),
            ("Esc", "Cancel the connection being drawn; else back up out of an opened block"),
            ("Double-click a block", "Open its definition (the path shows above the canvas)"),
            ("Drag from an output to an input", "Connect two layers"),
            ("Drag a connected input away", "Disconnect (drop on another input: move it)"))

    def focusNextPrevChild(self, next: bool) -> bool:
        if next:
            return False  # Tab opens the quick-add search (keyPressEvent) instead
        return super().focusNextPrevChild(next)  # Shift+Tab leaves the canvas

    def leave_focus(self, forward: bool = True) -> None:
        """Move the keyboard focus to the next (previous) widget after the canvas."""
        QGraphicsView.focusNextPrevChild(self, forward)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key_Tab and not event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            self.open_quick_add()
            event.accept()
            return
        if key in (Qt.Key_Left, Qt.Key_Right, Qt.Key_Up, Qt.Key_Down) and self._wire is None \
                and not event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            self.step_selection(key, extend=bool(event.modifiers() & Qt.ShiftModifier))
            event.accept()
            return
        if key == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.OpenHandCursor)
            event.accept()
            return
        if key == Qt.Key_Escape and self._wire is not None:
            self._cancel_wire()
            event.accept()
            return
        if key == Qt.Key_Escape and self.document.trail:
            self.document.go_up()  # back to the network that uses this block
            event.accept()
            return
        if key in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom_by(1.2)
            return
        if key == Qt.Key_Minus:
            self.zoom_by(1 / 1.2)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False
            if self._panning is None:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def _cancel_wire(self) -> None:
        """Escape while connecting: drop the live wire, change nothing."""
        edge = self._rewire
        if self._wire is not None:
            self.canvas_scene.removeItem(self._wire)
        if self._target is not None:
            self._target.set_highlight(None)
        self._wire, self._wire_from, self._rewire, self._target = None, None, None, None
        if edge is not None and edge in self.canvas_scene.edge_items:
            self.canvas_scene.edge_items[edge].setVisible(True)
        QToolTip.hideText()

    @Slot(str, QPointF)
    def _on_quick_add_chosen(self, type_id: str, scene_pos: QPointF) -> None:
        anchor = self._quick_add.anchor if self._quick_add is not None else None  # gone: unwired
        nid = self.add_layer_at(type_id, scene_pos, after=anchor)
        if nid is not None:
            self.reveal_node(nid)
        self.setFocus()


class QuickAddPopup(QFrame):
    """Tab's search box: type to filter layers by name, id or category; Enter adds the layer."""

    chosen = Signal(str, QPointF)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Add layer…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setMinimumHeight(220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(260, 300)
        self._scene_pos = QPointF()
        self.anchor: str | None = None  # the layer the chosen one is wired after
        for spec in CATALOG:
            item = QListWidgetItem(f"{spec.display_name}    ·  {spec.category}")
            item.setData(Qt.UserRole, spec.id)
            item.setData(Qt.UserRole + 1, f"{spec.display_name} {spec.id} {spec.category}".lower())
            item.setToolTip(spec.doc)
            self.list.addItem(item)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._accept_current)
        self.list.itemActivated.connect(lambda item: self._accept(item))
        self.search.installEventFilter(self)

    def open_at(self, global_pos: QPoint, scene_pos: QPointF) -> None:
        self._scene_pos = scene_pos
        self.search.clear()
        self._filter("")
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hay = item.data(Qt.UserRole + 1)
            hidden = not all(w in hay for w in words)
            item.setHidden(hidden)
            if not hidden and first is None:
                first = item
        if first is not None:
            self.list.setCurrentItem(first)

    def visible_ids(self) -> list[str]:
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def eventFilter(self, obj, event) -> bool:
        from PySide6.QtCore import QEvent

        if obj is self.search and event.type() == QEvent.KeyPress:
            key = event.key()
            if key in (Qt.Key_Down, Qt.Key_Up):
                rows = [i for i in range(self.list.count()) if not self.list.item(i).isHidden()]
                if rows:
                    cur = self.list.currentRow()
                    idx = rows.index(cur) if cur in rows else -1
                    idx = min(len(rows) - 1, idx + 1) if key == Qt.Key_Down else max(0, idx - 1)
                    self.list.setCurrentRow(rows[idx])
                return True
            if key == Qt.Key_Escape:  # back to the canvas
                self.hide()
                self.parentWidget().setFocus()
                return True
            if key in (Qt.Key_Tab, Qt.Key_Backtab):  # on to the next panel: focus is not trapped
                self.hide()
                self.parentWidget().leave_focus(key == Qt.Key_Tab
                                                and not event.modifiers() & Qt.ShiftModifier)
                return True
        return super().eventFilter(obj, event)

    def _accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self._accept(item)

    def _accept(self, item: QListWidgetItem) -> None:
        self.hide()
        self.chosen.emit(item.data(Qt.UserRole), self._scene_pos)
