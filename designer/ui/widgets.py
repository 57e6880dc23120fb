"""The "schema type -> editor widget" map: one editor class per ``Param`` type.

Like pyqtgraph's parameter tree, the schema (:class:`designer.engine.model.schema.Param`: layer
parameters and dataset/training settings alike) knows nothing about widgets; this module maps each
type to an editor. The inspector and the training panel's settings forms are built from it.

Every editor shows a value with :meth:`ParamEditor.set_value` (silently) and emits
:attr:`ParamEditor.committed` once, with the new, validated value, when the user *finishes* an edit
(Enter, focus leaving the field, a click on a check box or a choice in a list), never per keystroke.
A value the schema refuses is not committed: the field turns red and says why (:attr:`error`).

Inside a block's definition a parameter may take the value of a block parameter:
:meth:`ParamEditor.enable_refs` lets the user type ``=planes`` or ``=planes*4`` (typing ``=`` in
any field switches it to a reference), committed as ``{"ref": "planes", "mul": 4}``
(:func:`designer.engine.model.blocks.parse_ref`); a field holding a reference shows ``=planes*4``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase, QPainter
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.model.blocks import parse_ref
from ..engine.model.program import ProgramError, program_code, program_summary
from ..engine.model.schema import REF_TYPES, Param, is_ref

_INT32_MAX = 2**31 - 1
_ERROR_STYLE = "QLineEdit, QSpinBox { border: 1px solid #d33; background: #fff0f0; }"


class ElidedLabel(QLabel):
    """One line of status text that never widens its window: narrower than its text, it ends
    in "…", the whole text in its tooltip (a progress line beside Inside on a laptop screen)."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("Ready…")),
                     hint.height())

    def paintEvent(self, event) -> None:
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.ElideRight, rect.width())
        painter = QPainter(self)
        self.style().drawItemText(painter, rect, int(self.alignment()), self.palette(),
                                  self.isEnabled(), text, self.foregroundRole())


class _WheelGuard(QObject):
    """Event filter: a combo or spin box without keyboard focus leaves the wheel alone. The event
    is ignored, so Qt hands it on to the parents: the scroll area around a form scrolls instead
    of the field the pointer passes changing its value."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            event.ignore()
            return True
        return False


_wheel_guard: _WheelGuard | None = None


def guard_wheel(root: QWidget) -> None:
    """Only a focused combo or spin box takes the wheel: ``root`` (when it is one) and every combo
    and spin box inside it get a strong focus policy (a click or Tab focuses them, the wheel
    never does) and pass an unfocused wheel on. Call it again for widgets added later; it is
    harmless on widgets already guarded."""
    global _wheel_guard
    if _wheel_guard is None:
        _wheel_guard = _WheelGuard(QCoreApplication.instance())
    boxes = root.findChildren(QComboBox) + root.findChildren(QAbstractSpinBox)
    if isinstance(root, (QComboBox, QAbstractSpinBox)):
        boxes.append(root)
    for box in boxes:
        box.setFocusPolicy(Qt.StrongFocus)
        box.installEventFilter(_wheel_guard)  # installed once: Qt moves a repeat to the front


class ParamEditor(QWidget):
    """Base class: an editor for one parameter. Subclasses build the widgets."""

    committed = Signal(object)  # the new value, already validated by the schema
    error_changed = Signal(str)  # "" when the field is fine
    wide = False  # True: a form lays it out under its label, the form's full width
    shows_error = False  # True: it says why a value is refused itself (a form need not)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self._value: Any = param.default
        self.error = ""
        self.field: QWidget = self  # the input widget a form lays out and tests reach
        self.ref_names: list[str] | None = None  # block parameters a reference may name
        self.ref_edit: _LineEdit | None = None
        self._inner: list[QWidget] = []
        self.setToolTip(f"{param.doc}\nAccepts {param.describe()}.")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)

    # -- what callers use ----------------------------------------------------------------------

    def value(self) -> Any:
        """The value last shown or committed (the model's view of this field)."""
        return self._value

    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting :attr:`committed`; clears any error."""
        self._value = value
        self._set_error("")
        if is_ref(value):
            self._show_ref(value)
            return
        self._hide_ref()
        self._show(value)

    # -- references to block parameters -------------------------------------------------------

    def enable_refs(self, names: list[str]) -> bool:
        """Let this field take a block parameter's value (``=name`` or ``=name*k``); ``names``
        are the parameters the block declares. False for types that cannot be references."""
        if self.param.type not in REF_TYPES:
            return False
        self.ref_names = list(names)
        if self.ref_edit is None:
            lay = self.layout()
            self._inner = [lay.itemAt(i).widget() for i in range(lay.count())
                           if lay.itemAt(i).widget() is not None]
            self.ref_edit = _LineEdit(self)
            self.ref_edit.setObjectName("ref_edit")
            self.ref_edit.setPlaceholderText("=name or =name*4 (empty: a number)")
            self.ref_edit.hide()
            lay.addWidget(self.ref_edit, 1)
            self.ref_edit.editingFinished.connect(self._on_ref_finished)
            self.ref_edit.focus_lost.connect(self._on_ref_focus_lost)
            for w in self._inner + [getattr(self.field, "lineEdit", lambda: None)()]:
                if w is not None:
                    w.installEventFilter(self)
        self.setToolTip(self.toolTip().split("\n\nType =")[0]
                        + "\n\nType = and a block parameter's name to take its value "
                          f"({', '.join(self.ref_names) or 'declare block parameters first'}).")
        if is_ref(self._value):
            self._show_ref(self._value)
        return True

    def eventFilter(self, obj, event) -> bool:
        if (self.ref_edit is not None and event.type() == QEvent.KeyPress
                and event.text() == "="):
            self.start_ref()
            return True
        return super().eventFilter(obj, event)

    def start_ref(self, text: str = "=") -> None:
        """Switch the field to a reference being typed (what typing ``=`` does)."""
        if self.ref_edit is None:
            return
        for w in self._inner:
            w.hide()
        self.ref_edit.show()
        self.ref_edit.setText(text)
        self.ref_edit.setFocus()

    def _show_ref(self, value: dict) -> None:
        if self.ref_edit is None:  # refs not enabled: show the text, read-only
            self.enable_refs([])
        for w in self._inner:
            w.hide()
        self.ref_edit.show()
        mul = value.get("mul", 1)
        self.ref_edit.setText(f"={value['ref']}" + (f"*{mul}" if mul != 1 else ""))

    def _hide_ref(self) -> None:
        if self.ref_edit is None or not self.ref_edit.isVisibleTo(self):
            return
        self.ref_edit.hide()
        for w in self._inner:
            if not getattr(w, "_hidden_by_editor", False):
                w.show()
        self._after_ref_hidden()

    def _after_ref_hidden(self) -> None:
        """Subclasses whose widgets hide themselves (an "auto" size) fix them up here."""

    def _on_ref_finished(self) -> None:
        assert self.ref_edit is not None
        text = self.ref_edit.text().strip()
        if text in ("", "="):  # a plain value again: the default until the user sets one
            value = self.param.default if not is_ref(self.param.default) else None
            self._set_error("")
            self._hide_ref()
            if value != self._value:
                self._value = value
                self._show(value)
                self.committed.emit(value)
            return
        ref = parse_ref(text)
        if ref is None:
            self._set_error(f"{text!r} is not a reference: type =name or =name*4")
            return
        if self.ref_names is not None and ref["ref"] not in self.ref_names:
            known = ", ".join(self.ref_names) or "none: declare them in the network's settings"
            self._set_error(f"the block has no parameter {ref['ref']!r} (its parameters: {known})")
            return
        self._set_error("")
        if ref != self._value:
            self._value = ref
            self.committed.emit(ref)
        self._show_ref(ref)

    def _on_ref_focus_lost(self) -> None:
        if self.error:
            self.set_value(self._value)
        elif self.ref_edit is not None and not is_ref(self._value) and \
                self.ref_edit.text().strip() in ("", "="):
            self._hide_ref()

    def set_inferred(self, value: Any) -> None:
        """The value inference computed for an ``inferred`` parameter (None: unknown)."""

    def set_context(self, input_names: list[str], out_name: str) -> None:
        """The names of the layers feeding this node, by port, and the node's own name: an
        editor that writes the node as code (a program) names its variables after them."""

    # -- for subclasses ------------------------------------------------------------------------

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def _commit(self, raw: Any) -> None:
        """Validate ``raw``; emit :attr:`committed` if valid and different, else show the error."""
        try:
            value = self.param.validate(raw)
        except ValueError as exc:
            self._set_error(str(exc))
            return
        self._set_error("")
        if value == self._value:
            self._show(value)  # normalise the text, e.g. "3,3" -> "3, 3"
            return
        self._value = value
        self._show(value)
        self.committed.emit(value)

    def _set_error(self, message: str) -> None:
        if message == self.error:
            return
        self.error = message
        self.setStyleSheet(_ERROR_STYLE if message else "")
        tip = f"{self.param.doc}\nAccepts {self.param.describe()}."
        self.setToolTip(f"{message}\n\n{tip}" if message else tip)
        self.error_changed.emit(message)


class _LineEdit(QLineEdit):
    """A line edit that reports focus-out even when the text did not change (to revert errors)."""

    focus_lost = Signal()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.focus_lost.emit()


class TextEditor(ParamEditor):
    """Free text parsed into a value: lists of ints, floats, optional ints."""

    placeholder = ""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.edit = self.field = _LineEdit(self)
        self.edit.setPlaceholderText(self._placeholder())
        self.layout().addWidget(self.edit)
        self.edit.editingFinished.connect(self._on_finished)
        self.edit.focus_lost.connect(self._on_focus_lost)
        self.set_value(param.default)

    def _placeholder(self) -> str:
        return self.placeholder

    def _on_finished(self) -> None:
        text = self.edit.text().strip()
        try:
            raw = self.parse(text)
        except ValueError as exc:
            self._set_error(str(exc))
            return
        self._commit(raw)

    def _on_focus_lost(self) -> None:
        # Leaving a refused entry puts the model's value back (as a spin box does).
        if self.error:
            self.set_value(self._value)

    def _show(self, value: Any) -> None:
        self.edit.setText(self.format(value))

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def format(self, value: Any) -> str:
        raise NotImplementedError


def _parse_ints(text: str) -> list[int]:
    parts = [p for p in text.replace("(", " ").replace(")", " ").replace("[", " ")
             .replace("]", " ").replace(",", " ").replace("x", " ").split()]
    if not parts:
        raise ValueError("enter one or more whole numbers")
    out = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            raise ValueError(f"{p!r} is not a whole number") from None
    return out


def _format_ints(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


class IntsEditor(TextEditor):
    """``ints``: one integer ("3") or one per axis ("3, 5")."""

    def _placeholder(self) -> str:
        if self.param.optional:
            return "empty: " + _empty_meaning(self.param)
        return "e.g. 3" if self.param.length == 1 else f"e.g. 3 or {', '.join(['3'] * self.param.length)}"

    def parse(self, text: str) -> Any:
        if not text:
            return None
        values = _parse_ints(text)
        if len(values) == 1:
            return values[0]
        return values

    def format(self, value: Any) -> str:
        return _format_ints(value)


class ShapeEditor(TextEditor):
    """``shape`` and ``dims``: a list of integers ("1, 28, 28")."""

    def _placeholder(self) -> str:
        return "e.g. 2, 1" if self.param.type == "dims" else "e.g. 1, 28, 28"

    def parse(self, text: str) -> Any:
        if not text:
            raise ValueError(f"enter {self.param.describe()}")
        return _parse_ints(text)

    def format(self, value: Any) -> str:
        return _format_ints(value)


class FloatEditor(TextEditor):
    """``float``: any finite number in range ("0.1", "1e-4")."""

    def _placeholder(self) -> str:
        return self.param.describe()

    def parse(self, text: str) -> Any:
        if not text:
            raise ValueError(f"enter {self.param.describe()}")
        try:
            return float(text.replace(",", "."))  # a decimal comma typed as in many locales
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None

    def format(self, value: Any) -> str:
        return "" if value is None else f"{value:g}"


class OptionalIntEditor(TextEditor):
    """``int`` with ``optional``: empty means "not set"."""

    def _placeholder(self) -> str:
        return "empty: " + _empty_meaning(self.param)

    def parse(self, text: str) -> Any:
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None

    def format(self, value: Any) -> str:
        return "" if value is None else str(value)


class LineEditor(TextEditor):
    """``text``: one line (a path, a column name); empty is "not set" when ``optional``."""

    def _placeholder(self) -> str:
        return "(not set)" if self.param.optional else ""

    def parse(self, text: str) -> Any:
        return None if self.param.optional and not text else text

    def format(self, value: Any) -> str:
        return "" if value is None else str(value)


class TextsEditor(TextEditor):
    """``texts``: comma-separated ("age, height"); empty is "not set" when ``optional``."""

    def _placeholder(self) -> str:
        return "comma-separated" + (" (empty: not set)" if self.param.optional else "")

    def parse(self, text: str) -> Any:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return None if self.param.optional and not parts else parts

    def format(self, value: Any) -> str:
        if isinstance(value, str) or not isinstance(value, (list, tuple, type(None))):
            raise ValueError(f"not a list of texts: {value!r:.40}")
        return ", ".join(value or [])


def _empty_meaning(param: Param) -> str:
    doc = param.doc
    if "(empty:" in doc:
        return doc.split("(empty:", 1)[1].split(")", 1)[0].strip()
    return "not set"


class IntEditor(ParamEditor):
    """``int``: a spin box limited to the schema's range; commits on Enter or focus out."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = self.field = QSpinBox(self)
        lo = -_INT32_MAX if param.min is None else max(int(param.min), -_INT32_MAX)
        hi = _INT32_MAX if param.max is None else min(int(param.max), _INT32_MAX)
        self.spin.setRange(lo, hi)
        self.spin.setKeyboardTracking(False)
        self.spin.setAccelerated(True)
        guard_wheel(self.spin)
        self.layout().addWidget(self.spin, 1)
        # Without keyboard tracking a value changes only when editing finishes (Enter, focus
        # out) or by a step (arrows, wheel): each is one commit, never one per keystroke.
        self.spin.valueChanged.connect(self._commit)
        self.spin.editingFinished.connect(lambda: self._commit(self.spin.value()))
        self.set_value(param.default)

    def _show(self, value: Any) -> None:
        if value is not None:
            self.spin.blockSignals(True)
            self.spin.setValue(int(value))
            self.spin.blockSignals(False)


class InferredIntEditor(IntEditor):
    """``int`` with ``inferred``: "auto (= 1600)" from the input, or a fixed value.

    Unticking "auto" fixes the parameter to the size inference found (or the spin box's value),
    ticking it again hands the size back to inference.
    """

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        self._inferred: int | None = None
        self.auto = QCheckBox("auto")
        super().__init__(param, parent)
        self.auto.setToolTip("Take this size from the layer's input (untick to fix a value)")
        self.layout().insertWidget(0, self.auto)
        self.auto.clicked.connect(self._on_auto_clicked)
        self._show(self._value)

    def set_inferred(self, value: Any) -> None:
        self._inferred = value
        if not is_ref(self._value):
            self._show(self._value)

    def _after_ref_hidden(self) -> None:
        self._show(self._value)

    def _on_auto_clicked(self, checked: bool) -> None:
        if checked:
            self._commit(None)
        else:
            fixed = self._inferred if self._inferred is not None else self.spin.value()
            self._commit(fixed)

    def _show(self, value: Any) -> None:
        is_auto = value is None
        self.auto.setChecked(is_auto)
        self.auto.setText(
            "auto" if not is_auto else
            f"auto (= {self._inferred})" if self._inferred is not None else "auto (= ?)"
        )
        self.spin.setVisible(not is_auto)
        if not is_auto:
            super()._show(value)
        elif self._inferred is not None:
            super()._show(self._inferred)


class BoolEditor(ParamEditor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = self.field = QCheckBox(self)
        self.layout().addWidget(self.check)
        self.check.toggled.connect(lambda checked: self._commit(bool(checked)))
        self.set_value(param.default)

    def _show(self, value: Any) -> None:
        self.check.blockSignals(True)
        self.check.setChecked(bool(value))
        self.check.blockSignals(False)


class ChoiceEditor(ParamEditor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.combo = self.field = QComboBox(self)
        self.combo.addItems(list(param.choices))
        guard_wheel(self.combo)
        self.layout().addWidget(self.combo)
        self.combo.activated.connect(lambda i: self._commit(self.combo.itemText(i)))
        self.set_value(param.default)

    def _show(self, value: Any) -> None:
        i = self.combo.findText(str(value)) if value is not None else -1
        if i < 0 and isinstance(value, str):
            # a value this machine cannot offer (a saved "cuda" on a CPU box): show it anyway
            self.add_choices([value])
            i = self.combo.count() - 1
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(i)
        self.combo.blockSignals(False)

    def add_choices(self, choices: list[str]) -> None:
        """Offer more choices (devices found once torch has loaded); the value stays."""
        new = [c for c in choices if c not in self.param.choices]
        if new:
            self.param = replace(self.param, choices=self.param.choices + tuple(new))
        self.combo.blockSignals(True)
        for c in choices:
            if self.combo.findText(c) < 0:
                self.combo.addItem(c)
        self.combo.blockSignals(False)


class SizeEditor(ParamEditor):
    """``size``: a tick for "set" and two spin boxes, height x width."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = QCheckBox(self)
        self.spin_height, self.spin_width = QSpinBox(self), QSpinBox(self)
        self.layout().addWidget(self.check)
        for i, spin in enumerate((self.spin_height, self.spin_width)):
            spin.setRange(1, 4096)
            spin.setValue(28)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._on_edited)
            self.layout().addWidget(spin)
            if i == 0:
                self.layout().addWidget(QLabel("×", self))
        self.layout().addStretch(1)
        guard_wheel(self)
        self.check.toggled.connect(self._on_edited)
        self.set_value(param.default)

    def _on_edited(self, *_: Any) -> None:
        on = self.check.isChecked()
        self.spin_height.setEnabled(on)
        self.spin_width.setEnabled(on)
        self._commit([self.spin_height.value(), self.spin_width.value()] if on else None)

    def _show(self, value: Any) -> None:
        for w in (self.check, self.spin_height, self.spin_width):
            w.blockSignals(True)
        try:
            self.check.setChecked(value is not None)
            if value is not None:
                self.spin_height.setValue(int(value[0]))
                self.spin_width.setValue(int(value[1]))
            self.spin_height.setEnabled(value is not None)
            self.spin_width.setEnabled(value is not None)
        finally:
            for w in (self.check, self.spin_height, self.spin_width):
                w.blockSignals(False)


def _parse_scalar(text: str) -> Any:
    ref = parse_ref(text)
    if ref is not None:
        return ref
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _format_scalar(value: Any) -> str:
    if is_ref(value):
        mul = value.get("mul", 1)
        return f"={value['ref']}" + (f"*{mul}" if mul != 1 else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class ValuesEditor(TextEditor):
    """``values`` (a block use's arguments): ``planes=128, downsample=true, width=planes*2``.
    The inspector's block-use form gives each declared parameter its own editor instead; this
    one serves any other ``values`` field."""

    def _placeholder(self) -> str:
        return "name=value, … (empty: none)"

    def parse(self, text: str) -> Any:
        out: dict[str, Any] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, eq, value = part.partition("=")
            if not eq or not name.strip() or not value.strip():
                raise ValueError(f"{part!r}: write name=value")
            value = value.strip()
            out[name.strip()] = _parse_scalar("=" + value if value[0].isalpha()
                                              and value.lower() not in ("true", "false",
                                                                        "yes", "no")
                                              and parse_ref("=" + value) else value)
        return out

    def format(self, value: Any) -> str:
        if not isinstance(value, dict):
            return ""
        return ", ".join(f"{k}={_format_scalar(v).lstrip('=')}" for k, v in value.items())


class ProgramEditor(ParamEditor):
    """``program`` (a Function layer's torch calls): shown as the Python it exports, one line per
    step, its inputs named after the layers that feed it, under "3 steps: flatten, transpose".

    "Edit as JSON" turns the box into the program's JSON; "Apply" commits it once
    :func:`~designer.engine.model.program.check_program` accepts it (one undo step, as any other
    edit), and a refused program changes nothing: the message under the box says why."""

    LINES = 8  # the box's most lines of code; longer programs scroll
    wide = shows_error = True

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self._inputs: list[str] = []
        self._out = "out"
        self.editing = False
        box = QWidget(self)
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(3)
        self.header = QLabel(box)
        self.header.setObjectName("program_header")
        self.header.setWordWrap(True)
        self.code = self.field = QPlainTextEdit(box)
        self.code.setObjectName("program_code")
        self.code.setReadOnly(True)
        self.code.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.code.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.message = QLabel(box)
        self.message.setObjectName("program_error")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.hide()
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.edit_button = QToolButton(box)
        self.edit_button.setText("Edit as JSON")
        self.edit_button.setToolTip("Change the calls: the program as JSON (inputs, steps, "
                                    "output), applied once it is a valid program")
        self.apply_button, self.cancel_button = QToolButton(box), QToolButton(box)
        self.apply_button.setText("Apply")
        self.apply_button.setToolTip("Use this program (once it is valid; Edit > Undo takes "
                                     "it back)")
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Leave the program as it was")
        for b in (self.edit_button, self.apply_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        col.addWidget(self.header)
        col.addWidget(self.code)
        col.addWidget(self.message)
        col.addLayout(buttons)
        self.layout().addWidget(box, 1)
        self.edit_button.clicked.connect(self.start_edit)
        self.apply_button.clicked.connect(self.apply_edit)
        self.cancel_button.clicked.connect(lambda: self.set_value(self._value))
        self.set_value(param.default)

    def set_context(self, input_names: list[str], out_name: str) -> None:
        if (list(input_names), out_name) != (self._inputs, self._out):
            self._inputs, self._out = list(input_names), out_name
            if not self.editing:
                self._show(self._value)

    def code_text(self, program: Any) -> str:
        """The program as its exported forward lines (the JSON when it cannot be written so)."""
        try:
            n_in = len(program["inputs"])
            names = [self._inputs[i] if i < len(self._inputs) else f"in{i}" for i in range(n_in)]
            return "\n".join(program_code(program, names, self._out))
        except (ProgramError, KeyError, IndexError, TypeError, ValueError):
            return json.dumps(program, indent=1)

    def _show(self, value: Any) -> None:
        self.editing = False
        self.code.setReadOnly(True)
        steps = value.get("steps", []) if isinstance(value, dict) else []
        n = len(steps)
        self.header.setText(f"{n} step{'s' if n != 1 else ''}: "
                            f"{program_summary(value) if isinstance(value, dict) else '?'}")
        self.code.setPlainText(self.code_text(value) if isinstance(value, dict) else "")
        self._fit_height(self.code.blockCount())
        self.edit_button.show()
        self.apply_button.hide()
        self.cancel_button.hide()

    def _fit_height(self, lines: int) -> None:
        """As high as ``lines`` lines of code (2 to :attr:`LINES`) and a horizontal scroll bar."""
        lines = min(max(lines, 2), self.LINES)
        self.code.setFixedHeight(int(
            self.code.fontMetrics().lineSpacing() * lines + 2 * self.code.frameWidth()
            + 2 * self.code.document().documentMargin()
            + self.code.horizontalScrollBar().sizeHint().height()))

    def start_edit(self) -> None:
        """Show the program as JSON, editable, with Apply and Cancel."""
        self.editing = True
        self.code.setPlainText(program_json(self._value))
        self._fit_height(self.LINES)
        self.code.setReadOnly(False)
        self.edit_button.hide()
        self.apply_button.show()
        self.cancel_button.show()
        self.code.setFocus()

    def apply_edit(self) -> None:
        """Commit the JSON in the box when it is a valid program; else say why and keep it."""
        try:
            raw = json.loads(self.code.toPlainText())
        except json.JSONDecodeError as exc:
            self._set_error(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
            return
        self._commit(raw)

    def _set_error(self, message: str) -> None:
        super()._set_error(message)
        self.message.setText(message)
        self.message.setVisible(bool(message))


def program_json(program: Any) -> str:
    """A program as JSON to read and edit: one line per input and per step."""
    if not isinstance(program, dict) or set(program) != {"inputs", "steps", "output"} or \
            not all(isinstance(program[k], list) for k in ("inputs", "steps")):
        return json.dumps(program, indent=1)

    def items(values: list) -> str:
        return ",\n".join(f"  {json.dumps(v)}" for v in values)

    return (f'{{"inputs": [\n{items(program["inputs"])}],\n'
            f' "steps": [\n{items(program["steps"])}],\n'
            f' "output": {json.dumps(program["output"])}}}')


class NumbersEditor(ParamEditor):
    """``numbers`` (a constant tensor's values, flat): a read-only summary, "64 values: 0, 1, 2,
    … 63"."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.label = self.field = QLabel(self)
        self.label.setObjectName("numbers_summary")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.layout().addWidget(self.label, 1)
        self.set_value(param.default)

    def _show(self, value: Any) -> None:
        self.label.setText(numbers_text(value, _empty_meaning(self.param)))


def numbers_text(values: Any, empty: str = "none") -> str:
    """A flat list of numbers in short: "64 values: 0, 1, 2, … 63"."""
    if not isinstance(values, (list, tuple)) or not values:
        return f"empty: {empty}"

    def one(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    n = len(values)
    shown = ", ".join(one(v) for v in values) if n <= 6 else \
        ", ".join(one(v) for v in values[:3]) + ", … " + one(values[-1])
    return f"{n} value{'s' if n != 1 else ''}: {shown}"


#: The map: Param.type -> editor class (layer parameters and settings alike). ``int`` is
#: refined by :func:`editor_class`.
EDITORS: dict[str, type[ParamEditor]] = {
    "int": IntEditor,
    "float": FloatEditor,
    "bool": BoolEditor,
    "choice": ChoiceEditor,
    "ints": IntsEditor,
    "shape": ShapeEditor,
    "dims": ShapeEditor,
    "text": LineEditor,
    "texts": TextsEditor,
    "size": SizeEditor,
    "values": ValuesEditor,
    "program": ProgramEditor,
    "numbers": NumbersEditor,
}


def editor_class(param: Param) -> type[ParamEditor]:
    """The editor class for a parameter: the type's entry, refined for inferred/optional ints."""
    if param.type == "int" and param.inferred:
        return InferredIntEditor
    if param.type == "int" and param.optional:
        return OptionalIntEditor
    return EDITORS[param.type]


def make_editor(param: Param, parent: QWidget | None = None) -> ParamEditor:
    """A new editor for ``param`` showing its default."""
    return editor_class(param)(param, parent)


__all__ = ["EDITORS", "ElidedLabel", "NumbersEditor", "ParamEditor", "ProgramEditor",
           "ValuesEditor", "editor_class", "guard_wheel", "make_editor", "numbers_text", "program_json"]
