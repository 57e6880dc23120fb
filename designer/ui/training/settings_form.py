"""A settings form generated from the engine's declarations (``designer.engine.config``).

One map, ``EDITORS``, turns a setting type into an editor widget (../shared/STYLE.md, habit 3); the
declarations know nothing about widgets. Rows whose setting does not apply (``Setting.applies``)
are disabled, or hidden when the form is built with ``hide_inapplicable``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from designer.engine.config import Setting


class Editor:
    """Glue between one setting and its widget: read, write, and a change signal."""

    def __init__(self, setting: Setting, widget: QWidget, get: Callable[[], Any],
                 put: Callable[[Any], None], changed) -> None:
        self.setting = setting
        self.widget = widget
        self.get = get
        self.put = put
        self.changed = changed


def _int_editor(s: Setting) -> Editor:
    w = QSpinBox()
    lo = int(s.min) if s.min is not None else -(2**31)
    hi = int(min(s.max, 2**31 - 1)) if s.max is not None else 2**31 - 1
    w.setRange(lo, hi)
    w.setAccelerated(True)
    return Editor(s, w, w.value, lambda v: w.setValue(int(v)), w.valueChanged)


def _float_editor(s: Setting) -> Editor:
    # A line edit, not a spin box: learning rates span 1e-8..10 and are typed as 3e-4.
    w = QLineEdit()
    validator = QDoubleValidator(w)
    validator.setNotation(QDoubleValidator.ScientificNotation)
    if s.min is not None and s.max is not None:
        validator.setRange(float(s.min), float(s.max), 12)
    w.setValidator(validator)

    def get() -> float:
        text = w.text().strip().replace(",", ".")
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{s.title}: expected {s.describe()}, got {text!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"{s.title}: expected a finite number")
        return v

    return Editor(s, w, get, lambda v: w.setText(f"{float(v):g}"), w.editingFinished)


def _bool_editor(s: Setting) -> Editor:
    w = QCheckBox()
    return Editor(s, w, w.isChecked, lambda v: w.setChecked(bool(v)), w.toggled)


def _choice_editor(s: Setting) -> Editor:
    w = QComboBox()
    w.addItems(list(s.choices))

    def put(v: Any) -> None:
        i = w.findText(str(v))
        if i < 0:  # a value this machine cannot offer (a saved "cuda" on a CPU box): show it anyway
            w.addItem(str(v))
            i = w.count() - 1
        w.setCurrentIndex(i)

    return Editor(s, w, w.currentText, put, w.currentTextChanged)


def _text_editor(s: Setting) -> Editor:
    w = QLineEdit()
    if s.optional:
        w.setPlaceholderText("(not set)")

    def get() -> str | None:
        t = w.text()
        return None if (s.optional and not t.strip()) else t

    return Editor(s, w, get, lambda v: w.setText("" if v is None else str(v)), w.editingFinished)


def _texts_editor(s: Setting) -> Editor:
    w = QLineEdit()
    w.setPlaceholderText("comma-separated" + (" (empty: not set)" if s.optional else ""))

    def get() -> list[str] | None:
        parts = [p.strip() for p in w.text().split(",") if p.strip()]
        return None if (s.optional and not parts) else parts

    return Editor(s, w, get, lambda v: w.setText(", ".join(v or [])), w.editingFinished)


def _size_editor(s: Setting) -> Editor:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    enabled = QCheckBox()
    h, w = QSpinBox(), QSpinBox()
    for sb in (h, w):
        sb.setRange(1, 4096)
        sb.setValue(28)
    lay.addWidget(enabled)
    lay.addWidget(h)
    lay.addWidget(QLabel("×"))
    lay.addWidget(w)
    lay.addStretch(1)
    enabled.toggled.connect(h.setEnabled)
    enabled.toggled.connect(w.setEnabled)
    h.setEnabled(False)
    w.setEnabled(False)

    def get() -> list[int] | None:
        return [h.value(), w.value()] if enabled.isChecked() else None

    def put(v: Any) -> None:
        enabled.setChecked(v is not None)
        if v is not None:
            h.setValue(int(v[0]))
            w.setValue(int(v[1]))

    box.spin_height, box.spin_width, box.check = h, w, enabled  # reachable from tests
    return Editor(s, box, get, put, enabled.toggled)


# The one "setting type -> editor" map.
EDITORS: dict[str, Callable[[Setting], Editor]] = {
    "int": _int_editor,
    "float": _float_editor,
    "bool": _bool_editor,
    "choice": _choice_editor,
    "text": _text_editor,
    "texts": _texts_editor,
    "size": _size_editor,
}


class SettingsForm(QWidget):
    """A form for one section's declared settings. :meth:`values` returns the raw values typed in
    (validation is the engine's job, through ``validate_dataset``/``validate_training``)."""

    changed = Signal()

    def __init__(self, settings: tuple[Setting, ...], skip: tuple[str, ...] = (),
                 choices: dict[str, list[str]] | None = None, hide_inapplicable: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hide = hide_inapplicable
        self.rejected: list[str] = []  # values set_values could not show
        self.layout_ = QFormLayout(self)
        self.layout_.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.editors: dict[str, Editor] = {}
        self._labels: dict[str, QLabel] = {}
        self._external: dict[str, Any] = {}  # values of settings edited outside this form
        for s in settings:
            if s.key in skip:
                continue
            if choices and s.key in choices:
                s = Setting(s.key, s.type, s.default, s.doc, s.min, s.max,
                            tuple(choices[s.key]), s.optional, s.applies, s.label)
            editor = EDITORS[s.type](s)
            editor.put(s.default)
            editor.widget.setToolTip(f"{s.doc}.\nAccepts {s.describe()}; default "
                                     f"{s.default!r}.")
            label = QLabel(s.title)
            label.setToolTip(editor.widget.toolTip())
            self.layout_.addRow(label, editor.widget)
            editor.changed.connect(self._on_changed)
            self.editors[s.key] = editor
            self._labels[s.key] = label
        self._update_applicability()

    def _on_changed(self, *args) -> None:
        self._update_applicability()
        self.changed.emit()

    def set_external(self, values: dict[str, Any]) -> None:
        """Values of keys edited elsewhere (e.g. the dataset kind) that ``applies`` depends on."""
        self._external.update(values)
        self._update_applicability()

    def _current(self) -> dict[str, Any]:
        out = dict(self._external)
        for key, ed in self.editors.items():
            try:
                out[key] = ed.get()
            except ValueError:
                out[key] = None
        return out

    def _update_applicability(self) -> None:
        current = self._current()
        for key, ed in self.editors.items():
            ok = ed.setting.applies_to(current)
            if self._hide:
                ed.widget.setVisible(ok)
                self._labels[key].setVisible(ok)
            else:
                ed.widget.setEnabled(ok)
                self._labels[key].setEnabled(ok)

    def values(self) -> dict[str, Any]:
        """Every value in the form. Raises ``ValueError`` naming the field typed wrongly."""
        return {key: ed.get() for key, ed in self.editors.items()}

    def applicable_values(self) -> dict[str, Any]:
        """Only the values of settings that apply (what gets written into the project)."""
        current = self._current()
        return {k: ed.get() for k, ed in self.editors.items() if ed.setting.applies_to(current)}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values``. A value its editor cannot show (a hand-edited file with lr "fast")
        shows the default instead and is listed in ``rejected`` as "title: value" lines."""
        self.rejected: list[str] = []
        for key, value in values.items():
            ed = self.editors.get(key)
            if ed is None:
                continue
            ed.widget.blockSignals(True)
            try:
                try:
                    ed.put(value)
                except (TypeError, ValueError, OverflowError):
                    self.rejected.append(f"{ed.setting.title}: {value!r:.40}")
                    ed.put(ed.setting.default)
            finally:
                ed.widget.blockSignals(False)
        self._update_applicability()

    def editor(self, key: str) -> QWidget:
        return self.editors[key].widget

    def add_choices(self, key: str, choices: list[str]) -> None:
        """Offer more choices in a choice field (devices found once torch has loaded); the
        current value stays as it is."""
        combo = self.editors[key].widget
        combo.blockSignals(True)
        try:
            for c in choices:
                if combo.findText(c) < 0:
                    combo.addItem(c)
        finally:
            combo.blockSignals(False)
