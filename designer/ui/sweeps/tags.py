"""The canvas shows what a sweep searches: a small tag above each layer (or block use) with a
searched value, ``⚲ out_features 16..128 /16``, under its box (the top is the "Look inside"
overlay's). The tags are child items of the canvas's node
items (they move with them) kept by this observer: the canvas itself knows nothing of sweeps."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from ..canvas.items import NODE_WIDTH
from .marking import ACCENT, summary

TAG_GAP = 3.0


class SearchTags(QObject):
    """Keeps one tag per node with searched values on ``view``'s scene."""

    def __init__(self, document, view, parent: QObject | None = None) -> None:
        super().__init__(parent or view)
        self.document, self.view = document, view
        self.tags: dict[str, QGraphicsSimpleTextItem] = {}  # node id: its tag
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # after the scene has handled the same event
        self._timer.timeout.connect(self.refresh)
        document.settings_changed.connect(self._schedule)
        document.network_changed.connect(self._schedule)
        document.graph_event.connect(self._schedule)
        self.refresh()

    @Slot()
    def _schedule(self, *_) -> None:
        self._timer.start()

    def texts(self) -> dict[str, str]:
        """{node id: tag text} of the current network."""
        doc = self.document
        search = doc.project.search or {}
        first = next(iter(doc.project.networks))
        graph = doc.graph
        out: dict[str, list[str]] = {}
        for d in search.get("dimensions", []):
            t = d.get("target", {})
            if "setting" in t or t.get("network", first) != doc.network:
                continue
            node = graph.node_by_name(t.get("node", "")) or graph.nodes.get(t.get("node", ""))
            if node is None:
                continue
            out.setdefault(node.id, []).append(f"{t.get('param') or t.get('arg')} {summary(d)}")
        return {nid: "⚲ " + "; ".join(parts) for nid, parts in out.items()}

    @Slot()
    def refresh(self) -> None:
        scene = self.view.canvas_scene
        wanted = self.texts()
        for nid in list(self.tags):
            tag = self.tags[nid]
            item = scene.node_items.get(nid)
            try:
                stale = nid not in wanted or item is None or tag.parentItem() is not item
                if stale and tag.scene() is not None:
                    tag.scene().removeItem(tag)
            except RuntimeError:  # the scene rebuilt: the node item and its tag are gone
                stale = True
            if stale:
                del self.tags[nid]
        for nid, text in wanted.items():
            item = scene.node_items.get(nid)
            if item is None:
                continue
            tag = self.tags.get(nid)
            if tag is None:
                tag = QGraphicsSimpleTextItem(item)
                font = QFont(tag.font())
                font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
                tag.setFont(font)
                tag.setBrush(QBrush(QColor(ACCENT)))
                tag.setZValue(2)
                self.tags[nid] = tag
            if tag.text() != text:
                tag.setText(text if len(text) <= 40 else text[:39] + "…")
                tag.setToolTip(text)
            rect = tag.boundingRect()
            bottom = item.boundingRect().bottom() - 3.0  # the box, without its selection margin
            tag.setPos(max(0.0, NODE_WIDTH - rect.width()), bottom + TAG_GAP)
