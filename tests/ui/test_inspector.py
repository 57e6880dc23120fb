"""The inspector: generated from the schema, edits become one undo step when editing finishes,
and it follows the model (undo/redo) in the other direction."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from designer.engine.document.project import Project
from designer.engine.model.graph import Graph
from designer.ui.document import Document
from designer.ui.inspector import InspectorDock
from designer.ui.widgets import InferredIntEditor, IntEditor, IntsEditor


def _project() -> Project:
    g = Graph()
    inp = g.add_node("Input", "input1", {"shape": [1, 8, 8]}, (0, 0), id="in")
    flat = g.add_node("Flatten", "flatten1", {}, (150, 0), id="flat")
    fc = g.add_node("Linear", "fc1", {"out_features": 10}, (300, 0), id="fc")
    conv = g.add_node("Conv2d", "conv1", {}, (0, 200), id="conv")
    out = g.add_node("Output", "output1", {}, (450, 0), id="out")
    g.connect(inp.id, flat.id)
    g.connect(flat.id, fc.id)
    g.connect(fc.id, out.id)
    del conv
    return Project(networks={"model": g})


@pytest.fixture
def doc(qtbot):
    d = Document(_project())
    with qtbot.waitSignal(d.analysis_updated, timeout=20000):
        pass
    yield d
    d.close()


@pytest.fixture
def inspector(qtbot, doc):
    dock = InspectorDock(doc)
    qtbot.addWidget(dock)
    dock.show()
    dock.set_node("fc")
    return dock


def _type_and_enter(qtbot, line_edit, text):
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClicks(line_edit, text)
    qtbot.keyClick(line_edit, Qt.Key_Return)


def test_form_is_generated_from_the_schema(inspector):
    assert list(inspector.editors) == ["in_features", "out_features", "bias"]
    assert isinstance(inspector.editors["in_features"], InferredIntEditor)
    spin = inspector.editors["out_features"].spin
    assert spin.minimum() == 1 and spin.maximum() == 1_000_000  # the schema's range, enforced
    inspector.set_node("conv")
    assert isinstance(inspector.editors["kernel_size"], IntsEditor)


def test_edit_is_one_undo_step_pushed_when_editing_finishes(qtbot, inspector, doc):
    spin = inspector.editors["out_features"].spin
    before = doc.undo_stack.count()
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "321")
    assert doc.graph.nodes["fc"].params["out_features"] == 10  # not per keystroke
    assert doc.undo_stack.count() == before
    qtbot.keyClick(spin, Qt.Key_Return)
    assert doc.graph.nodes["fc"].params["out_features"] == 321
    assert doc.undo_stack.count() == before + 1


def test_model_changes_and_undo_update_the_inspector(qtbot, inspector, doc):
    editor = inspector.editors["out_features"]
    doc.set_params("fc", {"out_features": 77})  # model -> widget
    assert editor.spin.value() == 77
    doc.undo_stack.undo()
    assert editor.spin.value() == 10
    doc.undo_stack.redo()
    assert editor.spin.value() == 77
    # widget -> model, then undo shows the old value again
    inspector.editors["bias"].check.click()
    assert doc.graph.nodes["fc"].params["bias"] is False
    doc.undo_stack.undo()
    assert inspector.editors["bias"].check.isChecked()


def test_inferred_size_shows_auto_and_can_be_fixed(qtbot, inspector, doc):
    editor = inspector.editors["in_features"]
    qtbot.waitUntil(lambda: editor.auto.text() == "auto (= 64)", timeout=5000)
    assert editor.auto.isChecked() and not editor.spin.isVisible()
    editor.auto.click()  # untick: fix it to the inferred size
    assert doc.graph.nodes["fc"].params["in_features"] == 64
    assert editor.spin.isVisible() and editor.spin.value() == 64
    editor.auto.click()
    assert doc.graph.nodes["fc"].params["in_features"] is None
    doc.undo_stack.undo()
    assert not editor.auto.isChecked() and editor.spin.value() == 64


def test_info_shows_shapes_and_problems_of_the_node(qtbot, inspector, doc):
    qtbot.waitUntil(lambda: "(N, 10)" in inspector.info.text(), timeout=5000)
    assert "650" in inspector.info.text()  # 64 * 10 + 10 parameters
    inspector.set_node("conv")
    qtbot.waitUntil(lambda: inspector.problems.isVisibleTo(inspector), timeout=5000)
    assert "conv1" in inspector.problems.text()


def test_invalid_value_is_refused_with_a_visible_message(qtbot, inspector, doc):
    inspector.set_node("conv")
    editor = inspector.editors["kernel_size"]
    before = doc.undo_stack.count()
    _type_and_enter(qtbot, editor.edit, "0")
    assert "got 0" in editor.error  # the schema says what it accepts
    assert inspector.param_error.isVisible() and "kernel_size" in inspector.param_error.text()
    assert doc.undo_stack.count() == before
    assert doc.graph.nodes["conv"].params["kernel_size"] == 3
    _type_and_enter(qtbot, editor.edit, "5, 3")
    assert doc.graph.nodes["conv"].params["kernel_size"] == [5, 3]
    assert editor.error == "" and not inspector.param_error.isVisible()
    assert doc.undo_stack.count() == before + 1


def test_rename_is_validated_as_you_type(qtbot, inspector, doc):
    edit = inspector.name_edit
    before = doc.undo_stack.count()
    _type_and_enter(qtbot, edit, "2fast")
    assert inspector.name_error.isVisible()
    assert "not a valid name" in inspector.name_error.text()
    assert doc.graph.nodes["fc"].name == "fc1" and doc.undo_stack.count() == before
    _type_and_enter(qtbot, edit, "flatten1")
    assert "taken" in inspector.name_error.text()
    _type_and_enter(qtbot, edit, "class")
    assert "keyword" in inspector.name_error.text()
    _type_and_enter(qtbot, edit, "classifier")
    assert not inspector.name_error.isVisible()
    assert doc.graph.nodes["fc"].name == "classifier"
    assert doc.undo_stack.count() == before + 1
    doc.undo_stack.undo()
    assert edit.text() == "fc1"


def test_removing_the_node_clears_the_inspector(qtbot, inspector, doc):
    doc.remove_nodes(["fc"])
    assert inspector.node_id is None and inspector.empty.isVisible()
    doc.undo_stack.undo()
    inspector.set_node("fc")
    assert inspector.editors["out_features"].spin.value() == 10


def test_int_editor_clamps_to_range(qtbot):
    from designer.engine.model.catalog import CATALOG

    spec = CATALOG["RNN"]
    editor = IntEditor(spec.param_map["num_layers"])
    qtbot.addWidget(editor)
    values = []
    editor.committed.connect(values.append)
    editor.show()
    editor.spin.setFocus()
    editor.spin.selectAll()
    qtbot.keyClicks(editor.spin, "70")  # the "0" would exceed the schema's maximum of 64
    qtbot.keyClick(editor.spin, Qt.Key_Return)
    assert values == [7]


def test_parameter_select_and_slice_get_their_editors(qtbot, doc):
    """Layers added for ViT and ShuffleNet (issue 11): the form follows their schema too."""
    from designer.ui.widgets import ChoiceEditor, FloatEditor, OptionalIntEditor, ShapeEditor

    g = doc.graph
    g.add_node("Parameter", "class_token", {"shape": [1, 768], "init": "zeros"}, (0, 400),
               id="tok")
    g.add_node("Select", "select1", {"index": -1}, (150, 400), id="sel")
    g.add_node("Slice", "slice1", {"end": 4}, (300, 400), id="sl")
    dock = InspectorDock(doc)
    qtbot.addWidget(dock)
    dock.set_node("tok")
    assert list(dock.editors) == ["shape", "init", "std", "value", "batch_axis"]
    assert isinstance(dock.editors["shape"], ShapeEditor)
    assert isinstance(dock.editors["init"], ChoiceEditor)
    assert isinstance(dock.editors["std"], FloatEditor)
    dock.set_node("sel")
    assert list(dock.editors) == ["dim", "index"]
    assert dock.editors["index"].spin.minimum() < 0  # counts from the end
    dock.set_node("sl")
    assert list(dock.editors) == ["dim", "start", "end", "step"]
    assert isinstance(dock.editors["end"], OptionalIntEditor)
    assert dock.editors["end"].edit.placeholderText() == "empty: to the end"
