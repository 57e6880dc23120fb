"""The path above the canvas when a block's definition is open:
``resnet18 › layer2 (BasicBlock) › downsample (Downsample)``. Each entry but the last is a
button that goes back up to it (Esc goes up one). It reads the document's trail, and follows the
document's network changes and renames."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from ..document import Document

SEPARATOR = "›"


class BreadcrumbBar(QWidget):
    """Hidden at the top of a design; shows the path while a block's definition is open."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("BreadcrumbBar")
        self.document = document
        self.setAutoFillBackground(True)
        self.setStyleSheet("#BreadcrumbBar { background: #eef1f5; border-bottom: 1px solid #d5dae1; }"
                           "QToolButton { border: none; color: #1a73e8; padding: 2px 4px; }"
                           "QToolButton:hover { text-decoration: underline; }")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 3, 8, 3)
        self._layout.setSpacing(2)
        self.buttons: list[QToolButton] = []
        document.network_changed.connect(self.refresh)
        document.project_event.connect(lambda _e: self.refresh())
        document.graph_event.connect(self._on_graph_event)
        self.refresh()

    def text(self) -> str:
        """The path as shown, e.g. ``resnet18 › layer2 (BasicBlock)``."""
        return f" {SEPARATOR} ".join(self.document.breadcrumb())

    @Slot()
    def refresh(self, *_args) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()  # gone now, not at the next turn of the event loop
                item.widget().deleteLater()
        self.buttons = []
        parts = self.document.breadcrumb()
        trail = self.document.trail
        self.setVisible(bool(trail))
        if not trail:
            return
        for level, part in enumerate(parts):
            if level:
                sep = QLabel(SEPARATOR, self)
                sep.setStyleSheet("color: #7f8a99;")
                self._layout.addWidget(sep)
            if level < len(parts) - 1:
                button = QToolButton(self)
                button.setText(part)
                button.setCursor(Qt.PointingHandCursor)
                button.setToolTip("Back to this network" + (" (Esc)" if level == len(parts) - 2
                                                            else ""))
                button.clicked.connect(partial(self.document.go_up, level))
                self._layout.addWidget(button)
                self.buttons.append(button)
            else:
                label = QLabel(f"<b>{part}</b>", self)
                self._layout.addWidget(label)
        self._layout.addStretch(1)
        hint = QLabel("Esc: back", self)
        hint.setStyleSheet("color: #7f8a99;")
        self._layout.addWidget(hint)

    @Slot(object)
    def _on_graph_event(self, event) -> None:
        # a rename of a layer on the path does not reach the current network's events; cheap to
        # redo the whole bar on the rare events that matter here
        if event.kind == "renamed" and self.document.trail:
            self.refresh()
