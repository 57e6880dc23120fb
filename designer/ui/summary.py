"""The model summary: one row per layer (name, type, output shape, parameters, MACs, activation
memory per sample) and totals, like the summary printout of a model, with parameter memory and
the training estimate at the project's batch size (:mod:`designer.engine.model.memory`). Rows follow the
data flow (topological order)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..engine.model.graph import Graph
from ..engine.model.memory import estimate, fmt_bytes, status_text, training_batch
from ..engine.model.shapes import Analysis

COLUMNS = ("Layer", "Type", "Output shape", "Parameters", "MACs", "Activations")
_ID_ROLE = Qt.UserRole + 1
_ID_ROLE_INT = int(_ID_ROLE)
_DISPLAY = int(Qt.DisplayRole.value)
_ALIGN = int(Qt.TextAlignmentRole.value)
_RIGHT = int((Qt.AlignRight | Qt.AlignVCenter).value)


def human(n: float) -> str:
    """1234567 -> "1.23M"."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def shape_text(shape, batched: bool = True) -> str:
    """An output shape with the batch axis shown as N: ``(N, 64)``; "?" when unknown. Not
    ``batched`` (a Tensor layer's whole tensor): the shape as it is, ``(64,)``."""
    if shape is None:
        return "?"
    if not batched:
        return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    return "(N, " + ", ".join(str(s) for s in shape) + ")"


def summary_rows(graph: Graph, analysis: Analysis | None, memory: dict[str, int] | None = None
                 ) -> list[tuple[str, str, str, int, int, str, int | None]]:
    """(name, type, output shape, params, macs, node id, activation bytes per sample or None) per
    layer, in data-flow order. ``memory``: activation bytes by node id (see
    :func:`designer.engine.model.memory.estimate`)."""
    order = list(analysis.order) if analysis is not None else []
    ids = [i for i in order if i in graph.nodes] + [i for i in graph.nodes if i not in order]
    memory = memory or {}
    rows = []
    for nid in ids:
        node = graph.nodes[nid]
        info = analysis.infos.get(nid) if analysis is not None else None
        known = info is not None and info.output_shape is not None
        rows.append((node.name, node.spec.display_name,
                     shape_text(info.output_shape if info else None,
                                info.batched if info else True),
                     info.params if info else 0, info.macs if info else 0, nid,
                     memory.get(nid) if known else None))
    return rows


def activation_text(n: int | None) -> str:
    """Activation bytes per sample; "-" for a view (no new memory), "?" when unknown."""
    if n is None:
        return "?"
    return fmt_bytes(n) if n else "-"


class SummaryModel(QAbstractTableModel):
    """The rows of :func:`summary_rows` as a table model (cheap to reset for large designs)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, str, str, int, int, str, int | None]] = []
        self._texts: list[tuple[str, ...]] = []

    def set_rows(self, rows) -> None:
        self.beginResetModel()
        self.rows = rows
        # Display texts are made once here: data() is called thousands of times per reset.
        self._texts = [(r[0], r[1], r[2], f"{r[3]:,}", human(r[4]), activation_text(r[6]))
                       for r in rows]
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == _DISPLAY:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        # Roles compared as plain ints: PySide enum comparisons cost microseconds each.
        role = int(role) if not isinstance(role, int) else role
        if role == _DISPLAY:
            return self._texts[index.row()][index.column()]
        if role == _ALIGN:
            return _RIGHT if index.column() >= 3 else None
        if role == _ID_ROLE_INT:
            return self.rows[index.row()][5]
        return None


class SummaryDock(QDockWidget):
    node_activated = Signal(str)  # node id of a clicked row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Summary", parent)
        self.setObjectName("SummaryDock")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.model = SummaryModel(self)
        self.table = QTableView(body)
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setResizeContentsPrecision(60)  # measure ~the visible rows, not 1000 (big designs)
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
        self.table.clicked.connect(self._on_clicked)

    def show_analysis(self, graph: Graph, analysis: Analysis | None,
                      training: dict | None = None) -> None:
        """Show a design's rows and totals; ``training`` (the project's training settings) gives
        the batch size and optimizer of the training-memory estimate."""
        est = None
        if analysis is not None:
            est = estimate(graph, analysis, training_batch(training), training, "cpu")
        memory = {m.node_id: m.output for m in est.layers} if est is not None else None
        self.model.set_rows(summary_rows(graph, analysis, memory))
        total = analysis.total_params if analysis is not None else 0
        macs = analysis.total_macs if analysis is not None else 0
        text = (f"Total parameters: {total:,}    MACs per sample: {human(macs)}    "
                f"Size: {total * 4 / 1e6:.2f} MB (float32)")
        if est is not None and analysis.ok:
            text += (f"\nMemory: {status_text(est)}; weights, gradients and optimizer state "
                     f"{fmt_bytes(est.param_state)}")
        self.totals.setText(text)

    def row_texts(self) -> list[list[str]]:
        m = self.model
        return [[m.data(m.index(r, c)) for c in range(len(COLUMNS))] for r in range(m.rowCount())]

    def _on_clicked(self, index: QModelIndex) -> None:
        nid = self.model.data(index, _ID_ROLE)
        if nid:
            self.node_activated.emit(nid)


__all__ = ["COLUMNS", "SummaryDock", "SummaryModel", "activation_text", "human", "shape_text",
           "summary_rows"]
