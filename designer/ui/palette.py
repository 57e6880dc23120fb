"""The layer palette: every catalog entry by category, with a search box.

Drag a layer onto the canvas (the drag carries :data:`LAYER_MIME` with the layer type id), or
double-click it (or press Enter) to add it at the centre of the view. Tooltips show the layer's
one-line doc. Everything shown comes from :data:`designer.engine.model.catalog.CATALOG`, plus a
"Blocks" section: the project's other networks (those that would not make a block contain
itself), dragged as :data:`BLOCK_MIME` with the network's name; it follows the document's
networks as they are added, removed and renamed.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.model.blocks import layer_spec
from ..engine.model.catalog import CATALOG, LayerSpec
from .canvas import BLOCK_MIME, LAYER_MIME
from .canvas.items import category_color

# LAYER_MIME: the MIME type of a dragged layer (data: the type id in UTF-8), defined once by the
# canvas that accepts it.

_TYPE_ROLE = Qt.UserRole + 1
_BLOCK_ROLE = Qt.UserRole + 2
BLOCKS_CATEGORY = "Blocks"


def layer_tooltip(spec: LayerSpec) -> str:
    return f"<b>{spec.display_name}</b> ({spec.category})<br>{_escape(spec.doc)}" \
           "<br><i>Drag onto the canvas, or double-click to add.</i>"


def _swatch(category: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(Qt.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing)
    color = category_color(category)
    p.setPen(color.darker(130))
    p.setBrush(color)
    p.drawRoundedRect(1, 1, 10, 10, 2, 2)
    p.end()
    return QIcon(pix)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class LayerTree(QTreeWidget):
    """The tree of categories and layers; drags carry :data:`LAYER_MIME`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragOnly)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setUniformRowHeights(True)
        self.setAnimated(False)

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, BLOCK_MIME]

    def mimeData(self, items) -> QMimeData | None:
        blocks = [it.data(0, _BLOCK_ROLE) for it in items if it.data(0, _BLOCK_ROLE)]
        if blocks:
            data = QMimeData()
            data.setData(BLOCK_MIME, blocks[0].encode("utf-8"))
            data.setText(blocks[0])
            return data
        type_ids = [it.data(0, _TYPE_ROLE) for it in items if it.data(0, _TYPE_ROLE)]
        if not type_ids:
            return None
        data = QMimeData()
        data.setData(LAYER_MIME, type_ids[0].encode("utf-8"))
        data.setText(type_ids[0])
        return data


class PaletteDock(QDockWidget):
    """Dock with the search box and the layer tree. Emits :attr:`layer_activated` with a type id."""

    layer_activated = Signal(str)
    block_activated = Signal(str)  # a network's name (the Blocks section)

    def __init__(self, parent: QWidget | None = None, document=None) -> None:
        super().__init__("Layers", parent)
        self.setObjectName("PaletteDock")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        self.search = QLineEdit(body)
        self.search.setPlaceholderText("Search layers (e.g. conv, norm, attention)")
        self.search.setClearButtonEnabled(True)
        self.tree = LayerTree(body)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.setWidget(body)

        self._items: dict[str, QTreeWidgetItem] = {}
        for category, specs in CATALOG.categories().items():
            icon = _swatch(category)
            cat = QTreeWidgetItem(self.tree, [category])
            cat.setFlags(Qt.ItemIsEnabled)
            font = cat.font(0)
            font.setBold(True)
            cat.setFont(0, font)
            for spec in specs:
                item = QTreeWidgetItem(cat, [spec.display_name])
                item.setIcon(0, icon)  # the colour of the layer's header on the canvas
                item.setData(0, _TYPE_ROLE, spec.id)
                item.setToolTip(0, layer_tooltip(spec))
                item.setStatusTip(0, spec.doc)
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                self._items[spec.id] = item
        self._blocks_cat: QTreeWidgetItem | None = None
        self._block_items: dict[str, QTreeWidgetItem] = {}
        self.document = document
        if document is not None:
            self._blocks_cat = QTreeWidgetItem([BLOCKS_CATEGORY])
            self.tree.insertTopLevelItem(0, self._blocks_cat)
            self._blocks_cat.setFlags(Qt.ItemIsEnabled)
            font = self._blocks_cat.font(0)
            font.setBold(True)
            self._blocks_cat.setFont(0, font)
            self._blocks_cat.setToolTip(0, "The networks of this project, to use as a layer")
            self._blocks_cat.setHidden(True)  # until the project has a network to offer
            document.project_event.connect(lambda _e: self.refresh_blocks())
            document.network_changed.connect(lambda _n: self.refresh_blocks())
            document.changed.connect(self.refresh_blocks)
            self.refresh_blocks()
        self.tree.expandAll()

        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_match)
        self.tree.itemActivated.connect(self._on_activated)  # double-click or Enter

    def item_for(self, type_id: str) -> QTreeWidgetItem:
        return self._items[type_id]

    def block_names(self) -> list[str]:
        """The blocks listed (in project order)."""
        return list(self._block_items)

    def block_item(self, name: str) -> QTreeWidgetItem:
        return self._block_items[name]

    def refresh_blocks(self) -> None:
        """List the networks a use in the current network may instantiate (only if that list
        changed: a rebuild would interrupt a drag)."""
        if self.document is None or self._blocks_cat is None:
            return
        names = self.document.block_choices()
        if names == list(self._block_items):
            return
        cat = self._blocks_cat
        cat.takeChildren()
        self._block_items = {}
        icon = _swatch(BLOCKS_CATEGORY)
        for name in names:
            item = QTreeWidgetItem(cat, [name])
            item.setIcon(0, icon)
            item.setData(0, _BLOCK_ROLE, name)
            graph = self.document.project.networks[name]
            params = ", ".join(p.name for p in graph.block_params)
            item.setToolTip(0, f"<b>{_escape(name)}</b> (a network of this project)<br>"
                               + (f"Parameters: {_escape(params)}<br>" if params else "")
                               + "<i>Drag onto the canvas, or double-click, to use it as a "
                                 "layer.</i>")
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
            self._block_items[name] = item
        cat.setHidden(not names)
        cat.setExpanded(True)
        if self.search.text():
            self.filter(self.search.text())

    def visible_type_ids(self) -> list[str]:
        return [tid for tid, it in self._items.items() if not it.isHidden()]

    def filter(self, text: str) -> None:
        """Show layers whose name, id, category or doc contains every word of ``text``."""
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            cat = self.tree.topLevelItem(i)
            shown = 0
            for j in range(cat.childCount()):
                item = cat.child(j)
                block = item.data(0, _BLOCK_ROLE)
                if block:
                    hay = f"{block} {BLOCKS_CATEGORY} block".lower()
                else:
                    spec = layer_spec(item.data(0, _TYPE_ROLE))
                    hay = f"{spec.id} {spec.display_name} {spec.category} {spec.doc}".lower()
                match = all(w in hay for w in words)
                item.setHidden(not match)
                shown += match
            cat.setHidden(shown == 0)
            cat.setExpanded(True)
        first = self._first_visible()
        if first is not None and words:
            self.tree.setCurrentItem(first)

    def _first_visible(self) -> QTreeWidgetItem | None:
        for tid in self.visible_type_ids():
            return self._items[tid]
        return None

    def _add_first_match(self) -> None:
        current = self.tree.currentItem()
        if current is None or current.isHidden() or not current.data(0, _TYPE_ROLE):
            current = self._first_visible()
        if current is not None:
            self.layer_activated.emit(current.data(0, _TYPE_ROLE))

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        block = item.data(0, _BLOCK_ROLE)
        if block:
            self.block_activated.emit(block)
            return
        type_id = item.data(0, _TYPE_ROLE)
        if type_id:
            self.layer_activated.emit(type_id)


__all__ = ["BLOCK_MIME", "LAYER_MIME", "LayerTree", "PaletteDock", "layer_tooltip"]
