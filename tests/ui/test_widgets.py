"""The schema-type -> editor map: each Param type gets an editor that commits validated values
when editing finishes and refuses bad ones with a message."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from designer.engine.model.catalog import CATALOG, PARAM_TYPES, Param
from designer.ui.widgets import (
    EDITORS,
    BoolEditor,
    ChoiceEditor,
    FloatEditor,
    InferredIntEditor,
    IntEditor,
    IntsEditor,
    OptionalIntEditor,
    ParamEditor,
    ShapeEditor,
    editor_class,
    make_editor,
)


def test_every_param_type_has_an_editor():
    assert set(EDITORS) == set(PARAM_TYPES)
    for spec in CATALOG:  # and every parameter of every layer gets one
        for p in spec.params:
            assert issubclass(editor_class(p), ParamEditor)
            assert editor_class(p) is EDITORS[p.type] or p.inferred or p.optional


def test_editor_refinements():
    assert editor_class(CATALOG["Linear"].param_map["in_features"]) is InferredIntEditor
    assert editor_class(CATALOG["Embedding"].param_map["padding_idx"]) is OptionalIntEditor
    assert editor_class(CATALOG["Linear"].param_map["out_features"]) is IntEditor


@pytest.fixture
def edit(qtbot):
    """Make an editor, show it, and return (editor, committed values)."""
    def make(param: Param):
        editor = make_editor(param)
        qtbot.addWidget(editor)
        editor.show()
        got = []
        editor.committed.connect(got.append)
        return editor, got
    return make


def _enter(qtbot, line_edit, text):
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClick(line_edit, Qt.Key_Delete)
    qtbot.keyClicks(line_edit, text)
    qtbot.keyClick(line_edit, Qt.Key_Return)


def test_float_editor(qtbot, edit):
    editor, got = edit(CATALOG["Dropout"].param_map["p"])
    assert isinstance(editor, FloatEditor) and editor.edit.text() == "0.5"
    _enter(qtbot, editor.edit, "2.5e-1")
    _enter(qtbot, editor.edit, "1.5")  # above the maximum
    assert "at most" in editor.error or "0.999" in editor.error
    _enter(qtbot, editor.edit, "abc")
    assert "not a number" in editor.error
    _enter(qtbot, editor.edit, "0.25")  # same as the current value: nothing to commit
    assert got == [0.25] and editor.error == ""


def test_ints_editor_accepts_one_or_per_axis(qtbot, edit):
    editor, got = edit(CATALOG["Conv2d"].param_map["stride"])
    assert isinstance(editor, IntsEditor)
    _enter(qtbot, editor.edit, "2")
    _enter(qtbot, editor.edit, "(2, 1)")
    _enter(qtbot, editor.edit, "1, 2, 3")
    assert "list of 2" in editor.error
    assert got == [2, [2, 1]]
    assert editor.edit.text() == "1, 2, 3"  # kept while the user fixes it ...
    editor.edit.focus_lost.emit()  # ... and put back to the model's value when they leave
    assert editor.edit.text() == "2, 1" and editor.error == ""


def test_optional_ints_editor_empty_means_unset(qtbot, edit):
    editor, got = edit(CATALOG["MaxPool2d"].param_map["stride"])
    assert "same as kernel_size" in editor.edit.placeholderText()
    _enter(qtbot, editor.edit, "3")
    _enter(qtbot, editor.edit, "")
    assert got == [3, None]


def test_optional_int_editor(qtbot, edit):
    editor, got = edit(CATALOG["Embedding"].param_map["padding_idx"])
    _enter(qtbot, editor.edit, "0")
    _enter(qtbot, editor.edit, "-1")
    assert editor.error
    _enter(qtbot, editor.edit, "")
    assert got == [0, None]


def test_shape_and_dims_editors(qtbot, edit):
    shape, got = edit(CATALOG["Input"].param_map["shape"])
    assert isinstance(shape, ShapeEditor) and shape.edit.text() == "1, 28, 28"
    _enter(qtbot, shape.edit, "3 x 32 x 32")
    _enter(qtbot, shape.edit, "3, 0")
    assert shape.error
    assert got == [[3, 32, 32]]
    dims, got_dims = edit(CATALOG["Permute"].param_map["dims"])
    _enter(qtbot, dims.edit, "1, 1")
    assert "permutation" in dims.error
    _enter(qtbot, dims.edit, "2, 3, 1")
    assert got_dims == [[2, 3, 1]]


def test_bool_and_choice_editors(qtbot, edit):
    check, got = edit(CATALOG["Linear"].param_map["bias"])
    assert isinstance(check, BoolEditor) and check.check.isChecked()
    check.check.click()
    assert got == [False]
    combo, got_choice = edit(CATALOG["Input"].param_map["dtype"])
    assert isinstance(combo, ChoiceEditor)
    assert [combo.combo.itemText(i) for i in range(combo.combo.count())] == ["float32", "int64", "bool"]
    combo.combo.activated.emit(1)  # what a user's pick in the list emits
    assert got_choice == ["int64"]


def test_set_value_is_silent(qtbot, edit):
    editor, got = edit(CATALOG["Linear"].param_map["out_features"])
    editor.set_value(42)
    assert editor.spin.value() == 42 and editor.value() == 42 and got == []
