"""The model summary: one row per layer (name, type, output shape, parameters, MACs) and totals,
like the summary printout of a model. Rows follow the data flow (topological order)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.graph import Graph
from ..engine.shapes import Analysis

COLUMNS = ("Layer", "Type", "Output shape", "Parameters", "MACs")
_ID_ROLE = Qt.UserRole + 1


def human(n: float) -> str:
    """1234567 -> "1.23M"."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def shape_text(shape) -> str:
    """An output shape with the batch axis shown as N: ``(N, 64)``; "?" when unknown."""
    if shape is None:
        return "?"
    return "(N, " + ", ".join(str(s) for s in shape) + ")"


def summary_rows(graph: Graph, analysis: Analysis | None) -> list[tuple[str, str, str, int, int, str]]:
    """(name, type, output shape, params, macs, node id) per layer, in data-flow order."""
    order = list(analysis.order) if analysis is not None else []
    ids = [i for i in order if i in graph.nodes] + [i for i in graph.nodes if i not in order]
    rows = []
    for nid in ids:
        node = graph.nodes[nid]
        info = analysis.infos.get(nid) if analysis is not None else None
        rows.append((node.name, node.spec.display_name,
                     shape_text(info.output_shape if info else None),
                     info.params if info else 0, info.macs if info else 0, nid))
    return rows


class SummaryDock(QDockWidget):
    node_activated = Signal(str)  # node id of a clicked row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Summary", parent)
        self.setObjectName("SummaryDock")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, len(COLUMNS), body)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.Fixed)
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.totals = QLabel(body)
        self.totals.setContentsMargins(6, 2, 6, 4)
        self.totals.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.table)
        layout.addWidget(self.totals)
        self.setWidget(body)
        self.table.cellClicked.connect(self._on_cell)

    def show_analysis(self, graph: Graph, analysis: Analysis | None) -> None:
        rows = summary_rows(graph, analysis)
        self.table.setRowCount(len(rows))
        right = Qt.AlignRight | Qt.AlignVCenter
        for r, (name, type_, shape, params, macs, nid) in enumerate(rows):
            cells = [name, type_, shape, f"{params:,}", human(macs)]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(_ID_ROLE, nid)
                if c >= 3:
                    item.setTextAlignment(right)
                self.table.setItem(r, c, item)
        total = analysis.total_params if analysis is not None else 0
        macs = analysis.total_macs if analysis is not None else 0
        self.totals.setText(f"Total parameters: {total:,}    MACs per sample: {human(macs)}    "
                            f"Size: {total * 4 / 1e6:.2f} MB (float32)")

    def row_texts(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(len(COLUMNS))]
                for r in range(self.table.rowCount())]

    def _on_cell(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.node_activated.emit(item.data(_ID_ROLE))


__all__ = ["COLUMNS", "SummaryDock", "human", "shape_text", "summary_rows"]
