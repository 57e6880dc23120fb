"""The inspector: a form generated from the selected layer's parameter schema.

Editors come from the schema-type map in :mod:`designer.ui.widgets`. An edit becomes one undo
command on the document when the field's editing finishes; the form then follows the model (so an
undo shows up here too). Sizes that inference fills in are shown as "auto (= 1600)" from the latest
analysis, with the option to fix them. Renames are checked as you type (a valid identifier, not
taken) and refused with a visible message.

Blocks (:mod:`designer.engine.model.blocks`): a block use shows its block, repeat, one editor per
parameter its definition declares (``args``) and a collapsible "First copy" group (``first``:
values only the first copy takes). Inside a definition, a layer's parameter may be set to a block
parameter by typing ``=planes`` or ``=planes*4``, and a "switch on by" choice names the bool block
parameter that switches the layer on. With nothing selected the inspector shows the network
itself: its block parameters and whether its modules are numbered like ``nn.Sequential``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.model.blocks import BLOCK_PARAM_TYPES, BLOCK_SPEC, layer_spec, used_by
from ..engine.model.catalog import name_problem
from ..engine.model.graph import GraphError
from ..engine.model.nodes import kind_of
from ..engine.model.shapes import Analysis
from .summary import human, shape_text
from .sweeps.marking import SearchButton, searchable
from .widgets import ParamEditor, guard_wheel, make_editor

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
        self._form_key: tuple | None = None
        self.editors: dict[str, ParamEditor] = {}
        self.arg_editors: dict[str, ParamEditor] = {}  # a block use: its block's parameters
        self.first_editors: dict[str, ParamEditor] = {}
        self.first_checks: dict[str, QCheckBox] = {}
        self.block_combo: QComboBox | None = None
        self.when_combo: QComboBox | None = None
        self.trainable_check: QCheckBox | None = None
        self.first_toggle: QToolButton | None = None
        self.first_host: QWidget | None = None
        # the ⚲ beside each searchable field: {param or arg name: button} (designer.ui.sweeps)
        self.search_buttons: dict[str, SearchButton] = {}

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(8, 8, 8, 8)

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
        # An imported layer whose module attribute is no name (RegNet's block1-0): shown, kept
        self.attr_label = QLabel()
        self.attr_label.setObjectName("module_attr")
        self.attr_label.setWordWrap(True)
        self.attr_label.hide()
        panel.addWidget(self.title)
        panel.addWidget(self.doc_label)
        panel.addLayout(name_form)
        panel.addWidget(self.attr_label)
        for w in (self.name_error, _rule(), self.form_host, self.param_error, _rule(), self.info,
                  self.problems):
            panel.addWidget(w)
        self.network_panel = NetworkPanel(document)
        # several layers selected: one "trainable" box for them all (one undo step)
        self.multi_ids: list[str] = []
        self.multi_trainable = QCheckBox("trainable")
        self.multi_trainable.setObjectName("multi_trainable")
        self.multi_trainable.setToolTip("Freeze (untick) or make trainable (tick) every selected "
                                        "layer and block use at once; shaded: some of each")
        self.multi_trainable.clicked.connect(self._on_multi_trainable_clicked)
        self.multi_trainable.hide()
        self._layout.addWidget(self.empty)
        self._layout.addWidget(self.multi_trainable)
        self._layout.addWidget(self.node_panel)
        self._layout.addWidget(self.network_panel)
        # a stretch, not AlignTop, keeps the panels at the top: an aligned item gets its size
        # hint's height, too short once word-wrapped problems need more lines, and the form's
        # rows ("First copy") were crushed to make room
        self._layout.addStretch(1)
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
        self.multi_ids = []
        self.multi_trainable.hide()
        if node_id is None:
            self.node_id, self._type, self._form_key = None, None, None
            self._clear_form()
            self.node_panel.hide()
            self.empty.setText("Select a layer on the canvas to see and edit its settings.")
            self.empty.show()
            self.network_panel.show()
            self.network_panel.refresh()
            return
        node = graph.nodes[node_id]
        key = self._key_of(node_id)
        rebuild = key != self._form_key
        self.node_id, self._type, self._form_key = node_id, node.type, key
        self.empty.hide()
        self.network_panel.hide()
        self.node_panel.show()
        if rebuild:
            self._build_form(node.type)
            if node.type not in ("Input", "Output"):
                self._add_trainable_row()
            self._set_name_error("")
            self.param_error.hide()
        self._refresh()

    def set_selection(self, node_ids: list[str]) -> None:
        """Follow the canvas selection: one node is shown; several show what they share (their
        trainable box); none clear the form."""
        if len(node_ids) == 1:
            self.set_node(node_ids[0])
        else:
            self.set_node(None)
            if node_ids:
                self.empty.setText(f"{len(node_ids)} layers selected. Select one to edit it.")
                self.multi_ids = list(node_ids)
                self._refresh_multi()

    def _multi_weights(self) -> list:
        graph = self.document.graph
        return [graph.nodes[nid] for nid in self.multi_ids if nid in graph.nodes
                and graph.nodes[nid].type not in ("Input", "Output")]

    def _refresh_multi(self) -> None:
        nodes = self._multi_weights()
        box = self.multi_trainable
        box.setVisible(bool(nodes))
        if not nodes:
            return
        frozen = sum(n.frozen for n in nodes)
        box.setText(f"trainable ({len(nodes) - frozen} of {len(nodes)})")
        if 0 < frozen < len(nodes):
            box.setCheckState(Qt.PartiallyChecked)
        else:
            box.setTristate(False)
            box.setChecked(frozen == 0)

    def _on_multi_trainable_clicked(self) -> None:
        on = self.multi_trainable.checkState() == Qt.Checked
        self.document.set_frozen_many([n.id for n in self._multi_weights()], not on)
        self._refresh_multi()

    # -- form ----------------------------------------------------------------------------------

    def _clear_form(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        self.search_buttons = {}
        self.arg_editors, self.first_editors, self.first_checks = {}, {}, {}
        self.block_combo = self.when_combo = self.first_toggle = self.first_host = None
        self.trainable_check = None

    def _host_refs(self) -> list[str] | None:
        """The block parameters a field of the current network may refer to (None: the network
        is not a block: it neither declares parameters nor is used by another network)."""
        doc = self.document
        graph = doc.graph
        if graph.block_params or used_by(doc.project.networks, doc.network):
            return [p.name for p in graph.block_params]
        return None

    def _definition(self, node) -> Any:
        return node.kind.definition(node, self.document.project.networks)

    def _key_of(self, node_id: str) -> tuple:
        """What the form's rows depend on: rebuilt only when this changes."""
        graph = self.document.graph
        node = graph.nodes[node_id]
        definition = self._definition(node)
        inner = tuple(definition.block_params) if definition is not None else ()
        return (node_id, node.type, node.kind.block_name(node.params),
                inner, tuple(graph.block_params), self._host_refs() is not None)

    def _build_form(self, type_id: str) -> None:
        self._clear_form()
        spec = layer_spec(type_id)
        if kind_of(type_id).is_block:
            self._build_block_form()
            return
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
            if not editor.shows_error:
                editor.error_changed.connect(partial(self._show_param_error, param.name))
            label = QLabel(param.name)
            label.setToolTip(param.doc)
            if editor.wide:  # a program's code: the dock's full width, under its name
                self.form.addRow(label)
                self.form.addRow(self._with_search(editor, param, "param"))
            else:
                self.form.addRow(label, self._with_search(editor, param, "param"))
            self.editors[param.name] = editor
        refs = self._host_refs()
        if refs is not None:
            for editor in self.editors.values():
                editor.enable_refs(refs)
            if type_id not in ("Input", "Output"):
                self._add_when_row()

    def _with_search(self, editor: ParamEditor, param, kind: str) -> QWidget:
        """The editor, with a ⚲ button beside it when a sweep can vary the value (a number or a
        choice; not a size inference fills in)."""
        if not searchable(param) or param.inferred:
            return editor
        row = QWidget(self.form_host)
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(3)
        editor.setParent(row)
        box.addWidget(editor, 1)

        def target(_name=param.name, _kind=kind) -> dict:
            node = self.document.graph.nodes.get(self.node_id)
            return {"network": self.document.network, "node": node.name if node else "",
                    _kind: _name}

        button = SearchButton(self.document, target, param, editor.value, row)
        button.error.connect(self._show_search_error)
        box.addWidget(button)
        self.search_buttons[param.name] = button
        return row

    def _show_search_error(self, message: str) -> None:
        if message:
            self.param_error.setText(message)
            self.param_error.show()
        else:
            self.param_error.hide()

    def _add_trainable_row(self) -> None:
        check = self.trainable_check = QCheckBox("trainable", self.form_host)
        check.setObjectName("trainable")
        check.setToolTip("Unticked: frozen. Training leaves its weights as they are (not in the "
                         "optimizer; a block use: all of its layers), e.g. a pretrained backbone "
                         "while the head fine-tunes. Frozen layers show a lock on the canvas.")
        check.clicked.connect(self._on_trainable_clicked)
        self.form.insertRow(0, check)  # first, for every kind of node: always in one place

    def _on_trainable_clicked(self, on: bool) -> None:
        if self.node_id is None:
            return
        try:
            self.document.set_frozen(self.node_id, not on)
        except GraphError as exc:
            self._report(exc)

    def _add_when_row(self) -> None:
        combo = self.when_combo = QComboBox(self.form_host)
        combo.setObjectName("when")
        combo.addItem("always", None)
        for p in self.document.graph.block_params:
            if p.type == "bool":
                combo.addItem(p.name, p.name)
        combo.setToolTip("Switch this layer on by a true/false block parameter: when it is "
                         "false at a use, the layer passes its input through and holds no weights")
        combo.activated.connect(self._on_when_chosen)
        guard_wheel(combo)
        label = QLabel("switch on by")
        label.setToolTip(combo.toolTip())
        self.form.addRow(label, combo)

    def _build_block_form(self) -> None:
        doc = self.document
        node = doc.graph.nodes[self.node_id]
        self.title.setText(f"<b>Block</b> <span style='color:gray'>(a use of "
                           f"{node.params.get('block')})</span>")
        self.doc_label.setText(BLOCK_SPEC.doc + " Double-click it on the canvas to open its "
                               "definition.")
        combo = self.block_combo = QComboBox(self.form_host)
        combo.setObjectName("param_block")
        combo.setToolTip(BLOCK_SPEC.param_map["block"].doc)
        combo.activated.connect(self._on_block_chosen)
        guard_wheel(combo)
        self.form.addRow(QLabel("block"), combo)
        repeat = make_editor(BLOCK_SPEC.param_map["repeat"], self.form_host)
        repeat.setObjectName("param_repeat")
        repeat.committed.connect(partial(self._on_param_committed, "repeat"))
        repeat.error_changed.connect(partial(self._show_param_error, "repeat"))
        self.form.addRow(QLabel("repeat"), repeat)
        self.editors["repeat"] = repeat
        definition = self._definition(node)
        params = definition.block_params if definition is not None else ()
        refs = self._host_refs()
        if params:
            head = QLabel(f"<b>Parameters of {node.params.get('block')}</b>")
            self.form.addRow(head)
        for p in params:
            editor = make_editor(p, self.form_host)
            editor.setObjectName(f"arg_{p.name}")
            if refs is not None:
                editor.enable_refs(refs)
            editor.committed.connect(partial(self._on_arg_committed, "args", p.name))
            editor.error_changed.connect(partial(self._show_param_error, p.name))
            label = QLabel(p.name)
            label.setToolTip(p.doc)
            self.form.addRow(label, self._with_search(editor, p, "arg"))
            self.arg_editors[p.name] = editor
        if not params:
            note = QLabel("Its definition declares no parameters.")
            note.setStyleSheet("color: palette(mid);")
            self.form.addRow(note)
            return
        toggle = self.first_toggle = QToolButton(self.form_host)
        toggle.setObjectName("first_toggle")
        toggle.setText("First copy")
        toggle.setCheckable(True)
        toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.RightArrow)
        toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        toggle.setToolTip(BLOCK_SPEC.param_map["first"].doc + "; unticked: the same as the "
                          "others")
        self.form.addRow(toggle)
        host = self.first_host = QWidget(self.form_host)
        inner = QFormLayout(host)
        inner.setContentsMargins(12, 0, 0, 0)
        for p in params:
            row = QWidget(host)
            box = QHBoxLayout(row)
            box.setContentsMargins(0, 0, 0, 0)
            check = QCheckBox(row)
            check.setObjectName(f"first_set_{p.name}")
            check.setToolTip(f"The first copy takes its own {p.name}")
            editor = make_editor(p, row)
            editor.setObjectName(f"first_{p.name}")
            if refs is not None:
                editor.enable_refs(refs)
            box.addWidget(check)
            box.addWidget(editor, 1)
            check.clicked.connect(lambda on, _n=p.name: self._on_first_checked(_n, bool(on)))
            editor.committed.connect(partial(self._on_arg_committed, "first", p.name))
            inner.addRow(QLabel(p.name), row)
            self.first_editors[p.name] = editor
            self.first_checks[p.name] = check
        self.form.addRow(host)
        toggle.toggled.connect(self._on_first_toggled)
        self._on_first_toggled(bool(node.params.get("first")))

    def _on_first_toggled(self, open_: bool) -> None:
        if self.first_toggle is None or self.first_host is None:
            return
        self.first_toggle.blockSignals(True)
        self.first_toggle.setChecked(open_)
        self.first_toggle.blockSignals(False)
        self.first_toggle.setArrowType(Qt.DownArrow if open_ else Qt.RightArrow)
        self.first_host.setVisible(open_)

    def _refresh_block(self, node) -> None:
        doc = self.document
        combo = self.block_combo
        if combo is not None:
            names = doc.block_choices()
            current = node.params.get("block")
            if current not in names:
                names = [current, *names]
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([str(n) for n in names])
            combo.setCurrentIndex(names.index(current))
            combo.blockSignals(False)
        definition = self._definition(node)
        defaults = {p.name: p.default for p in definition.block_params} if definition else {}
        args = node.params.get("args") or {}
        first = node.params.get("first") or {}
        for name, editor in self.arg_editors.items():
            value = args.get(name, defaults.get(name))
            if editor.value() != value or editor.error:
                editor.set_value(value)
        for name, editor in self.first_editors.items():
            on = name in first
            value = first[name] if on else args.get(name, defaults.get(name))
            self.first_checks[name].setChecked(on)
            editor.setEnabled(on)
            if editor.value() != value or editor.error:
                editor.set_value(value)

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
        self.attr_label.setVisible(bool(node.attr))
        if node.attr:
            self.attr_label.setText(f"module attribute: {node.attr} (the imported model's "
                                    "name for it, kept in its weights' keys)")
        inputs = self._input_names(node.id)
        for name, editor in self.editors.items():
            editor.set_context(inputs, node.name)
            if editor.value() != node.params.get(name) or editor.error:
                editor.set_value(node.params.get(name))
        if node.kind.is_block:
            self._refresh_block(node)
        for button in self.search_buttons.values():
            button.refresh()
        if self.trainable_check is not None:
            self.trainable_check.setChecked(not node.frozen)
        if self.when_combo is not None:
            i = self.when_combo.findData(node.when)
            if i < 0 and node.when:  # a parameter no longer declared (or not a bool): keep it
                self.when_combo.addItem(f"{node.when} (not a true/false parameter)", node.when)
                i = self.when_combo.count() - 1
            self.when_combo.setCurrentIndex(max(i, 0))
        self._show_analysis(getattr(self.document, "analysis", None))

    def _input_names(self, node_id: str) -> list[str]:
        """The names of the layers feeding ``node_id``, by input port (``in2`` for a free one)."""
        graph = self.document.graph
        by_port = {e.dst_port: graph.nodes[e.src].name for e in graph.in_edges(node_id)
                   if e.src in graph.nodes}
        top = max(by_port) + 1 if by_port else 0
        return [by_port.get(i, f"in{i}") for i in range(top)]

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
            rows.append(("Output", shape_text(info.output_shape, info.batched)))
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

    def _report(self, exc: Exception) -> None:
        self.param_error.setText(str(exc))
        self.param_error.show()
        self._refresh()

    def _on_arg_committed(self, field: str, name: str, value: Any) -> None:
        """A block parameter's value at this use (``args``) or for its first copy (``first``)."""
        node = self.document.graph.nodes.get(self.node_id) if self.node_id else None
        if node is None:
            return
        values = dict(node.params.get(field) or {})
        values[name] = value
        try:
            self.document.set_params(self.node_id, {field: values})
        except GraphError as exc:
            self._report(exc)
            return
        self.param_error.hide()

    def _on_first_checked(self, name: str, on: bool) -> None:
        node = self.document.graph.nodes.get(self.node_id) if self.node_id else None
        if node is None:
            return
        first = dict(node.params.get("first") or {})
        if on:
            first[name] = self.first_editors[name].value()
        else:
            first.pop(name, None)
        try:
            self.document.set_params(self.node_id, {"first": first})
        except GraphError as exc:
            self._report(exc)

    def _on_block_chosen(self, index: int) -> None:
        if self.node_id is None or self.block_combo is None:
            return
        try:
            self.document.set_params(self.node_id, {"block": self.block_combo.itemText(index)})
        except GraphError as exc:
            self._report(exc)

    def _on_when_chosen(self, index: int) -> None:
        if self.node_id is None or self.when_combo is None:
            return
        try:
            self.document.set_when(self.node_id, self.when_combo.itemData(index))
        except GraphError as exc:
            self._report(exc)

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
            self.network_panel.refresh()
            if self.multi_ids:
                self._refresh_multi()
            return
        node = self.document.graph.nodes.get(self.node_id)
        if node is None:
            self.set_node(None)
        elif self._key_of(self.node_id) != self._form_key:
            self.set_node(self.node_id)
        else:
            self._refresh()

    @Slot(object)
    def _on_analysis(self, analysis: Analysis) -> None:
        self._show_analysis(analysis)

    @Slot(str)
    def _on_network_changed(self, _name: str) -> None:
        self.set_node(None)


class NetworkPanel(QWidget):
    """The current network itself (shown when no layer is selected): the parameters it takes as
    a block, which its layers refer to with ``=name``, and the ``sequential`` numbering. Each
    edit is one undo step (``Document.set_block_params`` / ``set_sequential``)."""

    COLUMNS = ("name", "type", "default", "min", "max", "choices")

    def __init__(self, document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.title.setWordWrap(True)
        note = QLabel("Block parameters: values each use of this network sets (its layers take "
                      "them by typing =name in a field).")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setObjectName("block_params")
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(110)
        self.table.setMaximumHeight(220)
        # never wider than the dock (its labels wrap); a wide table scrolls instead
        self.table.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.add_button = QPushButton("Add parameter")
        self.remove_button = QPushButton("Remove")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        self.sequential = QCheckBox("sequential (modules numbered 0, 1, …)")
        self.sequential.setToolTip("Name this network's modules by position, as nn.Sequential "
                                   "does (downsample.0, downsample.1), instead of by layer name")
        self.sequential.setObjectName("sequential")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(_ERROR_CSS)
        self.error.hide()
        # The block set-up shows where it matters (the network is used as a block, or already
        # declares parameters): on the starter it would be the first thing a newcomer reads.
        self.details = QWidget(self)
        inner = QVBoxLayout(self.details)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(note)
        inner.addWidget(self.table)
        inner.addLayout(buttons)
        inner.addWidget(self.error)
        inner.addWidget(self.sequential)
        self.show_details = QPushButton("Use as a block: parameters…")
        self.show_details.setObjectName("show_block_params")
        self.show_details.setToolTip("Declare the values each use of this network as a block "
                                     "sets (Edit > Group into Block makes a block of a selection)")
        self.show_details.setFlat(True)
        self.show_details.setStyleSheet("text-align: left; color: #1a73e8;")
        self._opened = False
        self.show_details.clicked.connect(self._open_details)
        for w in (_rule(), self.title, self.show_details, self.details):
            lay.addWidget(w)
        self._filling = False
        self.table.itemChanged.connect(self._on_item_changed)
        self.add_button.clicked.connect(self.add_param)
        self.remove_button.clicked.connect(self.remove_selected)
        self.sequential.clicked.connect(self._on_sequential)
        self.refresh()

    def refresh(self) -> None:
        """Show the model's block parameters (after any edit, undo included)."""
        graph = self.document.graph
        uses = used_by(self.document.project.networks, self.document.network)
        where = (f" (used as a block {len(uses)} time{'s' if len(uses) != 1 else ''})"
                 if uses else "")
        self.title.setText(f"<b>Network '{self.document.network}'</b>{where}")
        wanted = bool(uses or graph.block_params or graph.sequential or self._opened)
        self.details.setVisible(wanted)
        self.show_details.setVisible(not wanted)
        self._filling = True
        self.table.setRowCount(len(graph.block_params))
        for row, p in enumerate(graph.block_params):
            values = (p.name, p.type, _text_of(p.default), _text_of(p.min), _text_of(p.max),
                      ", ".join(p.choices))
            for col, text in enumerate(values):
                if col == 1:
                    combo = self.table.cellWidget(row, 1)
                    if not isinstance(combo, QComboBox):
                        combo = QComboBox()
                        combo.addItems(list(BLOCK_PARAM_TYPES))
                        combo.activated.connect(lambda _i: self._commit("Change block parameters"))
                        guard_wheel(combo)
                        self.table.setCellWidget(row, 1, combo)
                    combo.blockSignals(True)
                    combo.setCurrentText(text)
                    combo.blockSignals(False)
                    continue
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, col, item)
                item.setText(text)
                item.setToolTip(p.doc if col == 0 else "")
        self._filling = False
        self.sequential.setChecked(graph.sequential)

    def _open_details(self) -> None:
        self._opened = True
        self.refresh()

    def _rows(self) -> list[dict]:
        out = []
        for row in range(self.table.rowCount()):
            def cell(col: int, _row=row) -> str:
                item = self.table.item(_row, col)
                return item.text().strip() if item is not None else ""

            combo = self.table.cellWidget(row, 1)
            type_ = combo.currentText() if isinstance(combo, QComboBox) else "int"
            old = self.document.graph.block_params
            doc = old[row].doc if row < len(old) else ""
            default = _parse_default(type_, cell(2), cell(5))
            if row < len(old) and old[row].type != type_ and cell(2) == _text_of(old[row].default):
                default = old[row].default  # only the type changed: the document converts it
            out.append({"name": cell(0), "type": type_,
                        "default": default,
                        "min": _parse_number(cell(3)), "max": _parse_number(cell(4)),
                        "choices": [c.strip() for c in cell(5).split(",") if c.strip()],
                        "doc": doc})
        return out

    def _commit(self, text: str) -> None:
        try:
            self.document.set_block_params(self._rows(), text)
        except (GraphError, ValueError) as exc:
            self.error.setText(str(exc))
            self.error.show()
            self.refresh()
            return
        self.error.hide()
        self.refresh()

    def _on_item_changed(self, _item) -> None:
        if not self._filling:
            self._commit("Change block parameters")

    def add_param(self) -> None:
        taken = {p.name for p in self.document.graph.block_params}
        name = next(f"param{i}" for i in range(1, 100) if f"param{i}" not in taken)
        params = [dict(r) for r in self._rows()]
        params.append({"name": name, "type": "int", "default": 1})
        try:
            self.document.set_block_params(params, f"Add block parameter '{name}'")
        except GraphError as exc:
            self.error.setText(str(exc))
            self.error.show()
        self.refresh()

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not rows:
            row = self.table.currentRow()
            rows = [row] if row >= 0 else []
        if not rows:
            return
        params = [p for i, p in enumerate(self.document.graph.block_params) if i not in rows]
        names = ", ".join(self.document.graph.block_params[i].name for i in rows)
        self.document.set_block_params(params, f"Remove block parameter {names}")
        self.refresh()

    def _on_sequential(self, on: bool) -> None:
        self.document.set_sequential(on)


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_number(text: str) -> Any:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _parse_default(type_: str, text: str, choices: str) -> Any:
    if type_ == "bool":
        return text.lower() in ("true", "yes", "1", "on")
    if type_ == "choice":
        return text or (choices.split(",")[0].strip() if choices else "")
    if type_ == "float":
        return float(_parse_number(text) or 0.0)
    value = _parse_number(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return 0 if value is None else value


def _rule() -> QFrame:
    line = QFrame()
    line.setObjectName("rule")
    line.setFrameShape(QFrame.HLine)
    line.setFrameShadow(QFrame.Sunken)
    return line


__all__ = ["InspectorDock"]
