"""A settings form generated from the engine's declarations (``designer.engine.train.config``).

Each row's editor comes from the one "schema type -> editor" map of :mod:`designer.ui.widgets`
(../shared/STYLE.md, habit 3), the one the inspector uses: a setting is the same schema class as
a layer parameter. Rows whose setting does not apply (``Setting.applies``) are disabled, and hidden too
when the form is built with ``hide_inapplicable``.

:meth:`SettingsForm.enable_search` adds the sweeps' ⚲ button beside every training setting a
sweep can vary (``designer.ui.sweeps.marking``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QWidget

from designer.engine.train.config import Setting

from ..widgets import ChoiceEditor, ParamEditor, make_editor


class SettingsForm(QWidget):
    """A form for one section's declared settings. :meth:`values` returns the values shown, each
    checked by its declaration as it was entered (a refused entry turns its field red); the
    section as a whole is the engine's to check (``validate_dataset``/``validate_training``)."""

    changed = Signal()

    def __init__(self, settings: tuple[Setting, ...], skip: tuple[str, ...] = (),
                 choices: dict[str, list[str]] | None = None, hide_inapplicable: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hide = hide_inapplicable
        self.rejected: list[str] = []  # values set_values could not show
        self.layout_ = QFormLayout(self)
        self.layout_.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.layout_.setRowWrapPolicy(QFormLayout.WrapLongRows)  # narrow: a field under its label
        self.editors: dict[str, ParamEditor] = {}
        self._labels: dict[str, QLabel] = {}
        self._external: dict[str, Any] = {}  # values of settings edited outside this form
        self._rows: dict[str, QWidget] = {}
        self.search_buttons: dict[str, QWidget] = {}  # setting key: its ⚲ (enable_search)
        self._search_document = None
        for s in settings:
            if s.key in skip:
                continue
            if choices and s.key in choices:
                s = replace(s, choices=tuple(choices[s.key]))
            editor = make_editor(s, self)
            label = QLabel(s.title)
            label.setToolTip(f"{s.doc}.\nAccepts {s.describe()}; default {s.default!r}.")
            row = QWidget(self)  # the editor, and the sweeps' ⚲ once search is enabled
            box = QHBoxLayout(row)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(3)
            editor.setParent(row)
            box.addWidget(editor, 1)
            self._rows[s.key] = row
            self.layout_.addRow(label, row)
            editor.committed.connect(self._on_changed)
            self.editors[s.key] = editor
            self._labels[s.key] = label
        self._update_applicability()

    def _on_changed(self, *args) -> None:
        self._update_applicability()
        self.changed.emit()

    def set_external(self, values: dict[str, Any], replace: bool = False) -> None:
        """Values of keys edited elsewhere (e.g. the dataset kind) that ``applies`` depends on;
        ``replace``: these are all of them (a key left out no longer has a value)."""
        if replace:
            self._external.clear()
        self._external.update(values)
        self._update_applicability()

    def _current(self) -> dict[str, Any]:
        out = dict(self._external)
        out.update((key, ed.value()) for key, ed in self.editors.items())
        return out

    def _update_applicability(self) -> None:
        current = self._current()
        for key, ed in self.editors.items():
            ok = ed.param.applies_to(current)
            if self._hide:
                ed.setVisible(ok)
                self._rows[key].setVisible(ok)
                self._labels[key].setVisible(ok)
            ed.setEnabled(ok)
            self._labels[key].setEnabled(ok)

    def values(self) -> dict[str, Any]:
        """Every value in the form. Raises ``ValueError`` naming the field typed wrongly."""
        for ed in self.editors.values():
            if ed.error:
                raise ValueError(f"{ed.param.title}: {ed.error}")
        return {key: ed.value() for key, ed in self.editors.items()}

    def applicable_values(self) -> dict[str, Any]:
        """Only the values of settings that apply (what gets written into the project)."""
        current = self._current()
        return {k: v for k, v in current.items()
                if k in self.editors and self.editors[k].param.applies_to(current)}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values``. A value its editor cannot show (a hand-edited file with lr "fast")
        shows the default instead and is listed in ``rejected`` as "title: value" lines."""
        self.rejected: list[str] = []
        for key, value in values.items():
            ed = self.editors.get(key)
            if ed is None:
                continue
            try:  # set_value shows a value without committing it
                ed.set_value(value)
            except (TypeError, ValueError, OverflowError, IndexError):
                self.rejected.append(f"{ed.param.title}: {value!r:.40}")
                ed.set_value(ed.param.default)
        self._update_applicability()

    def show_section(self, values: dict[str, Any]) -> None:
        """Show a whole section (a project just opened, undo): every setting takes its value in
        ``values`` or, when missing, its default, so nothing shown before stays on screen."""
        self.set_values({**{key: ed.param.default for key, ed in self.editors.items()},
                         **(values or {})})

    def editor(self, key: str) -> QWidget:
        """The input widget of a setting (a spin box, a line edit, a combo box...)."""
        return self.editors[key].field

    def enable_search(self, document) -> None:
        """Put a ⚲ beside each setting a sweep can vary: marking it (a range around its value,
        editable) writes the document's search section, one undo step each."""
        from designer.engine.train.config import TRAINING_SETTINGS

        from ..sweeps.marking import NOT_SEARCHABLE_SETTINGS, SearchButton, searchable

        if self._search_document is not None:
            return
        self._search_document = document
        training = {s.key for s in TRAINING_SETTINGS}
        for key, ed in self.editors.items():
            if key not in training or key in NOT_SEARCHABLE_SETTINGS or not searchable(ed.param):
                continue
            button = SearchButton(document, {"setting": key}, ed.param, ed.value, self._rows[key])
            self._rows[key].layout().addWidget(button)
            self.search_buttons[key] = button
        document.settings_changed.connect(self._refresh_search)
        document.network_changed.connect(self._refresh_search)
        document.changed.connect(self._refresh_search)

    def _refresh_search(self, *_: Any) -> None:
        for button in self.search_buttons.values():
            button.refresh()

    def add_choices(self, key: str, choices: list[str]) -> None:
        """Offer more choices in a choice field (devices found once torch has loaded); the
        current value stays as it is."""
        editor = self.editors[key]
        assert isinstance(editor, ChoiceEditor), key
        editor.add_choices(choices)
