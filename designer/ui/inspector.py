"""The inspector: a form generated from the selected layer's parameter schema.

Editors come from the schema-type map in :mod:`designer.ui.widgets`. An edit becomes one undo
command on the document when the field's editing finishes; the form then follows the model (so an
undo shows up here too). Sizes that inference fills in are shown as "auto (= 1600)" from the latest
analysis, with the option to fix them. Renames are checked as you type (a valid identifier, not
taken) and refused with a visible message.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..engine.catalog import CATALOG, name_problem
from ..engine.graph import GraphError
from ..engine.shapes import Analysis
from .summary import human, shape_text
from .widgets import ParamEditor, make_editor

_ERROR_CSS = "color: #c0392b;"
_NAME_ERROR_CSS = "QLineEdit { border: 1px solid #d33; background: #fff0f0; }"


class InspectorDock(QDockWidget):
    """Shows and edits one node of the document's current network."""

    def __init__(self, document, parent: QWidget | None = None) -> None:
        super().__init__("Inspector", parent)
        self.setObjectName("InspectorDock")
        self.document = document
        self.node_id: str | None = None
        self._type: str | None = None
        self.editors: dict[str, ParamEditor] = {}

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self._layout.setAlignment(Qt.AlignTop)

        self.empty = QLabel("Select a layer on the canvas to see and edit its settings.")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: palette(mid);")
        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.title.setWordWrap(True)
        self.doc_label = QLabel()
        self.doc_label.setWordWrap(True)
        self.doc_label.setStyleSheet("color: #555;")

        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The layer's name: becomes the attribute name in exported code")
        self.name_error = QLabel()
        self.name_error.setWordWrap(True)
        self.name_error.setStyleSheet(_ERROR_CSS)
        self.name_error.hide()

        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.param_error = QLabel()
        self.param_error.setWordWrap(True)
        self.param_error.setStyleSheet(_ERROR_CSS)
        self.param_error.hide()

        self.info = QLabel()
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(_ERROR_CSS)

        # Everything about one node lives in node_panel, hidden when nothing is selected.
        self.node_panel = QWidget()
        panel = QVBoxLayout(self.node_panel)
        panel.setContentsMargins(0, 0, 0, 0)
        name_form = QFormLayout()
        name_form.setContentsMargins(0, 0, 0, 0)
        name_form.addRow("name", self.name_edit)
        panel.addWidget(self.title)
        panel.addWidget(self.doc_label)
        panel.addLayout(name_form)
        for w in (self.name_error, _rule(), self.form_host, self.param_error, _rule(), self.info,
                  self.problems):
            panel.addWidget(w)
        self._layout.addWidget(self.empty)
        self._layout.addWidget(self.node_panel)
        scroll.setWidget(self._body)
        self.setWidget(scroll)

        self.name_edit.textEdited.connect(self._on_name_edited)
        self.name_edit.editingFinished.connect(self._on_name_finished)
        document.changed.connect(self._on_document_changed)
        document.analysis_updated.connect(self._on_analysis)
        if hasattr(document, "network_changed"):
            document.network_changed.connect(self._on_network_changed)
        self.set_node(None)

    # -- selection -----------------------------------------------------------------------------

    def set_node(self, node_id: str | None) -> None:
        """Show ``node_id`` of the current network (None: nothing selected)."""
        graph = self.document.graph
        if node_id is not None and node_id not in graph.nodes:
            node_id = None
        if node_id is None:
            self.node_id, self._type = None, None
            self._clear_form()
            self.node_panel.hide()
            self.empty.setText("Select a layer on the canvas to see and edit its settings.")
            self.empty.show()
            return
        node = graph.nodes[node_id]
        rebuild = node_id != self.node_id or node.type != self._type
        self.node_id, self._type = node_id, node.type
        self.empty.hide()
        self.node_panel.show()
        if rebuild:
            self._build_form(node.type)
            self._set_name_error("")
            self.param_error.hide()
        self._refresh()

    def set_selection(self, node_ids: list[str]) -> None:
        """Follow the canvas selection: one node is shown, several or none clear the form."""
        if len(node_ids) == 1:
            self.set_node(node_ids[0])
        else:
            self.set_node(None)
            if node_ids:
                self.empty.setText(f"{len(node_ids)} layers selected. Select one to edit it.")

    # -- form ----------------------------------------------------------------------------------

    def _clear_form(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}

    def _build_form(self, type_id: str) -> None:
        self._clear_form()
        spec = CATALOG[type_id]
        self.title.setText(f"<b>{spec.display_name}</b> <span style='color:gray'>"
                           f"({spec.category})</span>")
        self.doc_label.setText(spec.doc)
        if not spec.params:
            note = QLabel("This layer has no settings.")
            note.setStyleSheet("color: palette(mid);")
            self.form.addRow(note)
        for param in spec.params:
            editor = make_editor(param, self.form_host)
            editor.setObjectName(f"param_{param.name}")
            editor.committed.connect(partial(self._on_param_committed, param.name))
            editor.error_changed.connect(partial(self._show_param_error, param.name))
            label = QLabel(param.name)
            label.setToolTip(param.doc)
            self.form.addRow(label, editor)
            self.editors[param.name] = editor

    def _refresh(self) -> None:
        """Show the model's values (name, parameters) and the latest analysis."""
        node = self.document.graph.nodes.get(self.node_id) if self.node_id else None
        if node is None:
            return
        # Keep a rejected name on screen while the user is still fixing it.
        editing = self.name_edit.hasFocus() and self.name_error.isVisible()
        if not editing and self.name_edit.text() != node.name:
            self.name_edit.setText(node.name)
            self._set_name_error("")
        for name, editor in self.editors.items():
            if editor.value() != node.params.get(name) or editor.error:
                editor.set_value(node.params.get(name))
        self._show_analysis(getattr(self.document, "analysis", None))

    def _show_analysis(self, analysis: Analysis | None) -> None:
        if self.node_id is None:
            return
        info = analysis.infos.get(self.node_id) if analysis is not None else None
        kwargs = (info.kwargs or {}) if info is not None else {}
        for name, editor in self.editors.items():
            if editor.param.inferred:
                value = kwargs.get(name)
                editor.set_inferred(value if isinstance(value, int) else None)
        if info is None:
            self.info.setText("<i>Checking shapes…</i>" if analysis is None else "")
        else:
            rows = []
            if info.input_shapes:
                rows.append(("Input", ", ".join(shape_text(s) for s in info.input_shapes)))
            rows.append(("Output", shape_text(info.output_shape)))
            rows.append(("Parameters", f"{info.params:,}"))
            rows.append(("MACs", human(info.macs)))
            self.info.setText("<table>" + "".join(
                f"<tr><td style='padding-right:10px'><b>{k}</b></td><td>{v}</td></tr>"
                for k, v in rows) + "</table>")
        problems = analysis.problems_for(self.node_id) if analysis is not None else []
        self.problems.setText("\n".join(f"• {p.message}" for p in problems))
        self.problems.setVisible(bool(problems))

    # -- edits ---------------------------------------------------------------------------------

    def _on_param_committed(self, name: str, value: Any) -> None:
        if self.node_id is None:
            return
        try:
            self.document.set_params(self.node_id, {name: value})
        except GraphError as exc:
            self.param_error.setText(str(exc))
            self.param_error.show()
            node = self.document.graph.nodes.get(self.node_id)
            if node is not None:
                self.editors[name].set_value(node.params.get(name))
            return
        self.param_error.hide()

    def _show_param_error(self, name: str, message: str) -> None:
        if message:
            self.param_error.setText(f"{name}: {message}")
            self.param_error.show()
        elif self.param_error.text().startswith(f"{name}:"):
            self.param_error.hide()

    def _name_problem(self, text: str) -> str | None:
        why = name_problem(text)
        if why:
            return why
        other = self.document.graph.node_by_name(text)
        if other is not None and other.id != self.node_id:
            return f"the name {text!r} is taken by another layer"
        return None

    def _on_name_edited(self, text: str) -> None:
        self._set_name_error(self._name_problem(text) or "")

    def _on_name_finished(self) -> None:
        if self.node_id is None:
            return
        node = self.document.graph.nodes.get(self.node_id)
        text = self.name_edit.text().strip()
        if node is None or text == node.name:
            self._set_name_error("")
            return
        why = self._name_problem(text)
        if why:
            self._set_name_error(why)
            return
        try:
            self.document.rename(self.node_id, text)
        except GraphError as exc:
            self._set_name_error(str(exc))
            return
        self._set_name_error("")

    def _set_name_error(self, message: str) -> None:
        self.name_error.setText(message)
        self.name_error.setVisible(bool(message))
        self.name_edit.setStyleSheet(_NAME_ERROR_CSS if message else "")

    # -- model signals -------------------------------------------------------------------------

    @Slot()
    def _on_document_changed(self) -> None:
        if self.node_id is None:
            return
        node = self.document.graph.nodes.get(self.node_id)
        if node is None:
            self.set_node(None)
        elif node.type != self._type:
            self.set_node(self.node_id)
        else:
            self._refresh()

    @Slot(object)
    def _on_analysis(self, analysis: Analysis) -> None:
        self._show_analysis(analysis)

    @Slot(str)
    def _on_network_changed(self, _name: str) -> None:
        self.set_node(None)


def _rule() -> QFrame:
    line = QFrame()
    line.setObjectName("rule")
    line.setFrameShape(QFrame.HLine)
    line.setFrameShadow(QFrame.Sunken)
    return line


__all__ = ["InspectorDock"]
