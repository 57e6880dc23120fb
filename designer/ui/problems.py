"""The problems dock: every error and warning of the current network, pinned to its layers.

Clicking (or pressing Enter on) a problem emits :attr:`ProblemsDock.problem_activated` with the
node ids it names; the main window selects those nodes and centres the view on the first.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from ..engine.model.graph import Graph
from ..engine.model.shapes import Analysis

_IDS_ROLE = Qt.UserRole + 1


class ProblemsDock(QDockWidget):
    problem_activated = Signal(list)  # node ids of the clicked problem (may be empty)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.setObjectName("ProblemsDock")
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Problem", "Layer"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, self.tree.header().ResizeMode.ResizeToContents)
        self.setWidget(self.tree)
        self.tree.itemClicked.connect(self._on_item)
        self.tree.itemActivated.connect(self._on_item)
        self._count = (0, 0)

    @property
    def error_count(self) -> int:
        return self._count[0]

    @property
    def warning_count(self) -> int:
        return self._count[1]

    def messages(self) -> list[str]:
        return [self.tree.topLevelItem(i).text(0) for i in range(self.tree.topLevelItemCount())
                if self.tree.topLevelItem(i).data(0, _IDS_ROLE) is not None]

    def show_analysis(self, graph: Graph, analysis: Analysis | None) -> None:
        """List the problems of ``analysis`` (node ids no longer in ``graph`` are skipped)."""
        self.tree.clear()
        problems = list(analysis.problems) if analysis is not None else []
        errors = sum(1 for p in problems if p.is_error)
        self._count = (errors, len(problems) - errors)
        style = self.style()
        icons = {
            "error": style.standardIcon(QStyle.SP_MessageBoxCritical),
            "warning": style.standardIcon(QStyle.SP_MessageBoxWarning),
        }
        # Errors first, in the order the analysis found them.
        for p in sorted(problems, key=lambda p: not p.is_error):
            ids = [i for i in p.node_ids if i in graph.nodes]
            names = ", ".join(graph.nodes[i].name for i in ids)
            item = QTreeWidgetItem([p.message, names or "(design)"])
            item.setIcon(0, icons.get(p.severity, icons["warning"]))
            item.setToolTip(0, p.message + ("\nClick to show the layer." if ids else ""))
            item.setData(0, _IDS_ROLE, ids)
            self.tree.addTopLevelItem(item)
        if analysis is not None and not problems:
            item = QTreeWidgetItem(["No problems: every shape checks out.", ""])
            item.setIcon(0, style.standardIcon(QStyle.SP_DialogApplyButton))
            item.setFlags(Qt.ItemIsEnabled)
            self.tree.addTopLevelItem(item)
        title = "Problems"
        if errors:
            title += f" ({errors})"
        self.setWindowTitle(title)

    def show_failure(self, message: str) -> None:
        """The checker itself failed (a bug, not the design's): say so above the problems
        listed, until the next check succeeds."""
        text = (f"{message}. This is a bug in Designer, not a problem of your design; the "
                "details are in the log (stderr). The next edit checks again.")
        item = QTreeWidgetItem([text, "(checker)"])
        item.setIcon(0, self.style().standardIcon(QStyle.SP_MessageBoxCritical))
        item.setToolTip(0, text)
        item.setData(0, _IDS_ROLE, [])
        self.tree.insertTopLevelItem(0, item)
        self.setWindowTitle("Problems (checker failed)")

    def _on_item(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        ids = item.data(0, _IDS_ROLE)
        if ids:
            self.problem_activated.emit(list(ids))


__all__ = ["ProblemsDock"]
