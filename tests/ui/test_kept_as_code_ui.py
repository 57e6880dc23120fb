"""Kept-as-code layers in the window: a Function shows its program as the Python it exports (and
takes an edited program only once it is valid, as one undo step), a Tensor its values in short;
the canvas draws a program as its ops, never as a dict; the palette's Code category adds a
Function that checks; an imported model with a torch call no layer stands for opens and shows it.
"""

from __future__ import annotations

import json

import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from torch import nn

from designer.engine.document.project import Project
from designer.engine.interop.importing import import_model
from designer.engine.model.graph import Graph
from designer.ui.main_window import MainWindow
from designer.ui.widgets import NumbersEditor, ProgramEditor, numbers_text
from tests.ui.test_main_window import Dialogs, _wait_analysis

CUMSUM = {"inputs": [{"layout": "batch", "dtype": "float"}, {"layout": "whole", "dtype": "float"}],
          "steps": [{"op": "torch.cumsum", "args": [{"in": 0}, 1], "kwargs": {}},
                    {"op": "operator.add", "args": [{"step": 0}, {"in": 1}], "kwargs": {}}],
          "output": {"layout": "batch", "dtype": "float"}}


def _project() -> Project:
    """tokens -> running (cumsum, plus a constant Tensor) -> out; a buffer Tensor beside it."""
    g = Graph()
    i = g.add_node("Input", "tokens", {"shape": [4, 6]}, (0, 0))
    table = g.add_node("Tensor", "table", {"shape": [6], "stored": "constant",
                                           "data": [1, 2.5, "-inf", 0, 4, 5]}, (0, 160))
    g.add_node("Tensor", "pos", {"shape": [64], "stored": "buffer"}, (0, 320))
    fn = g.add_node("Function", "running", {"program": CUMSUM}, (220, 0))
    o = g.add_node("Output", "out", {}, (440, 0))
    g.connect(i.id, fn.id, 0)
    g.connect(table.id, fn.id, 1)
    g.connect(fn.id, o.id)
    return Project(name="kept", networks={"model": g})


class CumsumNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        x = self.fc(x)
        x = torch.cumsum(x, 1)
        return self.out(x)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    Dialogs(monkeypatch)
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.show()
    yield w
    w.shutdown()


def _select(qtbot, w, name: str):
    node = w.document.graph.node_by_name(name)
    w.view.select_nodes([node.id])
    qtbot.waitUntil(lambda: w.inspector.node_id == node.id)
    return node


def test_inspector_shows_a_function_as_code_and_a_tensor_in_short(qtbot, window):
    w = window
    w.set_project(_project(), None)
    fn = w.document.graph.node_by_name("running")
    analysis = _wait_analysis(qtbot, w, lambda a: fn.id in a.infos)
    assert not analysis.problems_for(fn.id)  # (only pos, used by nothing, has one)
    _select(qtbot, w, "running")
    editor = w.inspector.editors["program"]
    assert isinstance(editor, ProgramEditor)
    assert editor.header.text() == "2 steps: cumsum, add"
    # the exported lines, the inputs named after the layers that feed it
    assert editor.code.toPlainText() == ("running_0 = torch.cumsum(tokens, 1)\n"
                                         "running = (running_0 + table)")
    assert editor.code.isReadOnly() and editor.value() == CUMSUM
    _select(qtbot, w, "table")
    numbers = w.inspector.editors["data"]
    assert isinstance(numbers, NumbersEditor)
    assert numbers.label.text() == "6 values: 1, 2.5, -inf, 0, 4, 5"
    assert numbers.value() == [1, 2.5, "-inf", 0, 4, 5]
    _select(qtbot, w, "pos")
    assert w.inspector.editors["data"].label.text() == "empty: zeros"
    assert w.inspector.editors["stored"].combo.currentText() == "buffer"
    assert numbers_text(list(range(64))) == "64 values: 0, 1, 2, … 63"


def test_canvas_draws_a_program_as_its_ops(qtbot, window):
    w = window
    w.set_project(_project(), None)
    items = w.view.scene().node_items
    graph = w.document.graph
    running = items[graph.node_by_name("running").id]
    assert running._param_lines == ["cumsum, add"]
    assert len(running.inputs) == 2  # the program's inputs, no spare port to connect a third
    assert "running_0 = torch.cumsum(in0, 1)" in running.tooltip_text()
    table = " ".join(items[graph.node_by_name("table").id]._param_lines)
    assert "shape=6" in table and "{" not in table


def test_a_program_edited_as_json_applies_only_when_valid_and_undoes(qtbot, window):
    w = window
    w.set_project(_project(), None)
    node = _select(qtbot, w, "running")
    editor = w.inspector.editors["program"]
    stack = w.document.undo_stack
    before = stack.count()
    editor.edit_button.click()
    assert not editor.code.isReadOnly() and json.loads(editor.code.toPlainText()) == CUMSUM
    for text, why in (('{"steps": [', "not JSON"),
                      (editor.code.toPlainText().replace("torch.cumsum", "torch.load"),
                       "files, global state")):
        editor.code.setPlainText(text)
        editor.apply_button.click()
        assert why in editor.message.text() and editor.message.isVisibleTo(editor)
        assert stack.count() == before and node.params["program"] == CUMSUM
    editor.code.setPlainText(editor.code.toPlainText().replace("torch.load", "torch.cumprod"))
    editor.apply_button.click()
    assert stack.count() == before + 1 and editor.message.isHidden()
    assert node.params["program"]["steps"][0]["op"] == "torch.cumprod"
    assert editor.code.isReadOnly() and "torch.cumprod(tokens, 1)" in editor.code.toPlainText()
    stack.undo()
    assert node.params["program"] == CUMSUM
    assert "torch.cumsum(tokens, 1)" in editor.code.toPlainText()


def test_rename_of_a_function_undoes_and_redoes(qtbot, window):
    w = window
    w.set_project(_project(), None)
    node = _select(qtbot, w, "running")
    edit = w.inspector.name_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "summed")
    qtbot.keyClick(edit, Qt.Key_Return)
    assert node.name == "summed"
    editor = w.inspector.editors["program"]
    assert editor.code.toPlainText().endswith("summed = (summed_0 + table)")
    w.document.undo_stack.undo()
    assert node.name == "running" and edit.text() == "running"
    assert "running = " in editor.code.toPlainText()
    w.document.undo_stack.redo()
    assert node.name == "summed"


def test_palette_code_category_adds_a_function_that_checks(qtbot, window):
    w = window
    tree = w.palette.tree
    item = w.palette.item_for("Function")
    assert item.parent().text(0) == "Code"
    assert w.palette.item_for("Tensor").parent() is item.parent()
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.mouseDClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
    graph = w.document.graph
    fn = next(n for n in graph.nodes.values() if n.type == "Function")
    assert fn.params["program"]["steps"][0]["op"] == "method.clone"
    w.document.connect(graph.node_by_name("input1").id, fn.id)
    w.document.connect(fn.id, graph.node_by_name("output1").id)
    analysis = _wait_analysis(qtbot, w, lambda a: fn.id in a.infos)
    assert analysis.ok and not analysis.problems_for(fn.id)
    item = w.view.scene().node_items[fn.id]
    assert item._param_lines == ["clone"] and len(item.inputs) == 1


def test_an_imported_model_with_a_torch_call_opens_in_the_window(qtbot, window):
    w = window
    project, report = import_model(CumsumNet(), (8,))
    assert report.functions == 1
    w.set_project(project, None)
    _wait_analysis(qtbot, w, lambda a: a.ok)
    fn = next(n for n in w.document.graph.nodes.values() if n.type == "Function")
    _select(qtbot, w, fn.name)
    editor = w.inspector.editors["program"]
    assert f"{fn.name} = torch.cumsum(fc, 1)" in editor.code.toPlainText()
    assert editor.header.text() == "1 step: cumsum"
    assert w.view.scene().node_items[fn.id]._param_lines == ["cumsum"]
    assert w.inspector.problems.isHidden()
