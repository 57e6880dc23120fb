"""Marking a parameter "search": the small ⚲ button beside a field, and its range editor.

A :class:`SearchButton` sits beside an editor in the inspector (a layer's parameter, a block
use's argument) or in the training settings form. Clicking it marks the value "search" with a
default range around the current value (one undo step, ``Document.set_dimension``); clicking it
again stops searching it; its menu's "Edit range…" opens :class:`RangeDialog` (int and float:
low, high, step, log scale; choices: the set of values), whose OK is one more undo step. The
button follows the model: it shows the range while marked, so undo and redo show up here too.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer.engine.model.graph import GraphError

#: Parameter types a sweep can vary (the engine's own list).
SEARCHABLE_TYPES = ("int", "ints", "float", "bool", "choice")
#: Training settings a sweep cannot vary.
NOT_SEARCHABLE_SETTINGS = ("recipe", "device", "init_weights_min_fit")
ACCENT = "#8e44ad"
_MARKED_CSS = (f"QToolButton {{ color: white; background: {ACCENT}; border-radius: 3px; "
               f"padding: 0 3px; }}")
_PLAIN_CSS = "QToolButton { color: #888; padding: 0 3px; }"


def searchable(param) -> bool:
    return getattr(param, "type", None) in SEARCHABLE_TYPES


def fmt(v: Any) -> str:
    """A short number: 0.0001 -> 1e-4, 0.1 -> 0.1, 64 -> 64."""
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5):
        mant, exp = f"{v:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{v:g}"


def summary(dim: dict[str, Any] | None) -> str:
    """What a dimension searches in a few characters: ``1e-4..0.1 log``, ``16..128 /16``,
    ``{64, 128}``."""
    if not dim:
        return ""
    if dim.get("type") == "choice":
        return "{" + ", ".join(fmt(c) for c in dim.get("choices", [])) + "}"
    text = f"{fmt(dim.get('low'))}..{fmt(dim.get('high'))}"
    if dim.get("step") not in (None, 1):
        text += f" /{dim['step']}"
    if dim.get("log"):
        text += " log"
    return text


def short_summary(dim: dict[str, Any]) -> str:
    """The button's few characters: ``1e-4..0.1``, ``16..128``, ``3 values``."""
    if dim.get("type") == "choice":
        n = len(dim.get("choices", []))
        return f"{n} value{'s' if n != 1 else ''}"
    return f"{fmt(dim.get('low'))}..{fmt(dim.get('high'))}"


def _plain(value: Any, param) -> Any:
    """The current value when it is a plain number of the parameter's kind (not a reference to a
    block parameter, not "auto"), else the parameter's default."""
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        value = value[0]  # ints: a sweep gives one number for every entry
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        value = param.default
        if isinstance(value, list) and value:
            value = value[0]
    return value


def default_dimension(param, value: Any) -> dict[str, Any]:
    """A sensible first range around the current value: a float ten times either way on a log
    scale, an int from half to twice (in steps of a quarter when that is a whole number), every
    choice; always inside the parameter's own limits."""
    kind = param.type
    if kind == "bool":
        return {"type": "choice", "choices": [False, True]}
    if kind == "choice":
        return {"type": "choice", "choices": list(param.choices)}
    v = _plain(value, param)
    lo_lim = param.min if param.min is not None else -math.inf
    hi_lim = param.max if param.max is not None else math.inf
    if kind == "float":
        v = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
        if v > 0:
            low, high = max(v / 10, lo_lim), min(v * 10, hi_lim)
            if low <= 0:
                low = v / 10
            return {"type": "float", "low": _round(low), "high": _round(high), "log": True}
        low, high = max(0.0, lo_lim), min(1.0, hi_lim)
        return {"type": "float", "low": low, "high": high, "log": False}
    v = int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 1
    low = int(max(max(1, v // 2), lo_lim))
    high = int(min(max(v * 2, low + 1), hi_lim))
    step = 1
    if v >= 8 and v % 4 == 0:
        step = v // 4  # half (v/2) and twice (2v) are whole steps from v
        low += (-low) % step  # the first multiple of the step from half (or the limit) on
        high = low + ((high - low) // step) * step
    return {"type": "int", "low": low, "high": max(high, low), "step": step}


def _round(x: float) -> float:
    return float(f"{x:.3g}")


class SearchButton(QToolButton):
    """The ⚲ beside a field: click to search it (or stop), its menu to edit the range.

    ``target`` is the engine's target dict (or a function giving it: a layer's name may change);
    ``param`` the parameter's declaration (it decides the
    kind of range); ``value`` gives the field's current value (the default range centres on it).
    """

    changed = Signal()
    error = Signal(str)

    def __init__(self, document, target: dict[str, Any], param, value, parent=None) -> None:
        super().__init__(parent)
        self.document, self._target, self.param, self._value = document, target, param, value
        name = param.name
        self.setObjectName(f"search_{name}")
        self.setPopupMode(QToolButton.MenuButtonPopup)
        self.setCheckable(True)
        self.setFocusPolicy(Qt.NoFocus)
        menu = QMenu(self)
        self.edit_action = menu.addAction("Edit range…", self.edit_range)
        self.remove_action = menu.addAction("Stop searching", self.unmark)
        self.setMenu(menu)
        self.clicked.connect(self._on_clicked)
        self.dialog: RangeDialog | None = None
        self.refresh()

    @property
    def target(self) -> dict[str, Any]:
        return self._target() if callable(self._target) else self._target

    def dimension(self) -> dict[str, Any] | None:
        return self.document.search_dimension(self.target)

    def refresh(self) -> None:
        dim = self.dimension()
        self.blockSignals(True)
        self.setChecked(dim is not None)
        self.blockSignals(False)
        if dim is None:
            self.setText("⚲")
            self.setStyleSheet(_PLAIN_CSS)
            self.setToolTip("Search this value in a sweep: click to mark it with a range around "
                            "its value (the arrow: edit the range)")
        else:
            text = summary(dim)
            self.setText("⚲ " + short_summary(dim))
            self.setStyleSheet(_MARKED_CSS)
            self.setToolTip(f"Searched in sweeps: {text}\nClick to stop searching it; the "
                            "arrow: edit the range")
        # room for the text and the menu arrow (a style sheet's button would elide it)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance(self.text()) + 26)
        self.remove_action.setEnabled(dim is not None)

    def _on_clicked(self, checked: bool) -> None:
        if checked:
            self.mark()
        else:
            self.unmark()

    def mark(self, dimension: dict[str, Any] | None = None) -> bool:
        value = self._value() if callable(self._value) else self._value
        dim = dimension or default_dimension(self.param, value)
        return self._set(dim)

    def unmark(self) -> bool:
        return self._set(None)

    def _set(self, dim: dict[str, Any] | None) -> bool:
        return not self._try(dim)

    def _try(self, dim: dict[str, Any] | None) -> str:
        """Apply ``dim`` (None: stop searching); the refusal's message, or ""."""
        try:
            self.document.set_dimension(self.target, dim)
        except GraphError as exc:
            self.error.emit(str(exc))
            self.refresh()
            return str(exc)
        self.error.emit("")
        self.refresh()
        self.changed.emit()
        return ""

    def edit_range(self) -> RangeDialog:
        """Open the range editor (not modal: the window stays usable); OK applies it."""
        value = self._value() if callable(self._value) else self._value
        dim = self.dimension() or default_dimension(self.param, value)
        self.dialog = RangeDialog(self.param, dim, self._try, self.window())
        self.dialog.open()
        return self.dialog


class RangeDialog(QDialog):
    """Edit one dimension: low, high, step and log scale for numbers, or the set of choices.
    ``apply(dimension)`` returns "" when it took it, else why not (shown here; the dialog stays
    open)."""

    def __init__(self, param, dim: dict[str, Any], apply, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param, self._apply = param, apply
        self.setWindowTitle(f"Search range of {param.name}")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        lay.addLayout(form)
        self.choice_mode = param.type in ("bool", "choice")
        self.low = QLineEdit()
        self.high = QLineEdit()
        self.step = QLineEdit()
        self.log = QCheckBox("log scale (every factor of 10 as likely)")
        self.choices = QLineEdit()
        self.choices.setPlaceholderText("values separated by commas")
        is_range = dim.get("type") in ("int", "float")
        if is_range:
            self.low.setText(fmt(dim.get("low")) if dim.get("type") == "float"
                             else str(dim.get("low")))
            self.high.setText(fmt(dim.get("high")) if dim.get("type") == "float"
                              else str(dim.get("high")))
            self.step.setText(str(dim.get("step") or 1))
            self.log.setChecked(bool(dim.get("log")))
        else:
            self.choices.setText(", ".join(_choice_text(c) for c in dim.get("choices", [])))
        if not self.choice_mode:
            form.addRow("low", self.low)
            form.addRow("high", self.high)
            if param.type in ("int", "ints"):
                form.addRow("step", self.step)
            form.addRow("", self.log)
            note = QLabel("…or instead a set of values:")
            note.setStyleSheet("color: #555;")
            form.addRow(note)
            if is_range:
                self.choices.clear()
        form.addRow("choices", self.choices)
        if self.choice_mode and param.type == "choice":
            hint = QLabel("Any of: " + ", ".join(param.choices))
            hint.setWordWrap(True)
            hint.setStyleSheet("color: #555;")
            form.addRow(hint)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.hide()
        lay.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def dimension(self) -> dict[str, Any]:
        """The dimension the fields describe (ValueError: a field is not a number)."""
        if self.choice_mode or self.choices.text().strip():
            return {"type": "choice", "choices": [_parse_choice(t, self.param)
                                                  for t in self.choices.text().split(",")
                                                  if t.strip()]}
        if self.param.type == "float":
            out = {"type": "float", "low": _number(self.low.text(), float, "low"),
                   "high": _number(self.high.text(), float, "high")}
        else:
            out = {"type": "int", "low": _number(self.low.text(), int, "low"),
                   "high": _number(self.high.text(), int, "high"),
                   "step": _number(self.step.text() or "1", int, "step")}
        if self.log.isChecked():
            out["log"] = True
        return out

    def accept(self) -> None:
        try:
            dim = self.dimension()
        except ValueError as exc:
            self._show(str(exc))
            return
        why = self._apply(dim)
        if why:
            self._show(why)
            return
        super().accept()

    def _show(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()


def _number(text: str, kind, what: str):
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text.strip()!r} is not a number") from None
    if kind is int:
        if not value.is_integer():
            raise ValueError(f"{what}: expected a whole number, got {text.strip()}")
        return int(value)
    return value


def _choice_text(c: Any) -> str:
    if isinstance(c, bool):
        return "true" if c else "false"
    return fmt(c) if isinstance(c, float) else str(c)


def _parse_choice(text: str, param) -> Any:
    t = text.strip()
    if param.type == "bool":
        return t.lower() in ("true", "yes", "1", "on")
    if param.type in ("int", "ints"):
        return _number(t, int, "choice")
    if param.type == "float":
        return _number(t, float, "choice")
    return t
