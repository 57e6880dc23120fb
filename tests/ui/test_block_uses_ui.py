"""Block uses in the window (issue 22, items 7, 9 and 11): a use shows exactly its definition's
Inputs as ports, the inspector's "First copy" rows keep their height when the use has an error,
and changing a block parameter's type converts its default and every use's value (or says why
not), as one undo step."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings

from designer.engine.document.project import Project
from designer.engine.document.templates import load_template
from designer.engine.model.graph import Graph
from designer.engine.model.shapes import analyze
from designer.ui.canvas import CanvasView
from designer.ui.document import Document
from designer.ui.inspector import InspectorDock
from designer.ui.main_window import MainWindow


def _dump(project) -> str:
    return json.dumps(project.to_dict(), sort_keys=True)


def _id(graph, name: str) -> str:
    return graph.node_by_name(name).id


@pytest.fixture
def doc(qtbot):
    d = Document(load_template("resnet18"))
    yield d
    d.close()


def two_input_project() -> Project:
    """A block 'Merge' with two Inputs (added), used once with both fed."""
    merge = Graph()
    a = merge.add_node("Input", "a", {"shape": [4]})
    b = merge.add_node("Input", "b", {"shape": [4]})
    add = merge.add_node("Add", "add", {})
    out = merge.add_node("Output", "out")
    merge.connect(a.id, add.id, 0)
    merge.connect(b.id, add.id, 1)
    merge.connect(add.id, out.id)
    model = Graph()
    x = model.add_node("Input", "features", {"shape": [4]})
    fc = model.add_node("Linear", "fc", {"out_features": 4})
    use = model.add_node("Block", "merge", {"block": "Merge"})
    y = model.add_node("Output", "result")
    model.connect(x.id, fc.id)
    model.connect(x.id, use.id, 0)
    model.connect(fc.id, use.id, 1)
    model.connect(use.id, y.id)
    return Project(name="two inputs", networks={"model": model, "Merge": merge})


def test_a_use_has_exactly_its_definitions_inputs_as_ports(qtbot, doc):
    view = CanvasView(doc)
    qtbot.addWidget(view)
    items = view.canvas_scene.node_items
    layer2 = items[_id(doc.graph, "layer2")]
    assert len(layer2.inputs) == 1  # BasicBlock has one Input: no empty extra port
    use = doc.add_node("Block", (0.0, 900.0), {"block": "BasicBlock"})
    assert len(items[use].inputs) == 1  # unconnected: still its one Input
    why = doc.graph.can_connect(_id(doc.graph, "maxpool"), use, 1)
    assert why == "block1 has no input port 2: block 'BasicBlock' has 1 Input(s)"
    assert doc.graph.can_connect(_id(doc.graph, "maxpool"), use, 0) is None

    two = Document(two_input_project())
    try:
        view2 = CanvasView(two)
        qtbot.addWidget(view2)
        merge = view2.canvas_scene.node_items[_id(two.graph, "merge")]
        assert len(merge.inputs) == 2 and all(p.connected for p in merge.inputs)
        two.set_network("Merge")  # a third Input in the definition: the use shows three
        two.add_node("Input", (0.0, 300.0), {"shape": [4]})
        two.set_network("model")
        merge = view2.canvas_scene.node_items[_id(two.graph, "merge")]
        assert len(merge.inputs) == 3
    finally:
        two.close()


def test_first_copy_rows_keep_their_height_when_the_use_has_an_error(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.set_project(load_template("resnet18"), None)
    w.resize(1600, 1000)
    w.show()
    doc = w.document
    use = _id(doc.graph, "layer2")
    doc.set_params(use, {"first": {"stride": 2}})  # no downsample: the Add inside fails
    w.view.select_nodes([use])
    qtbot.waitUntil(lambda: w.inspector.problems.isVisible(), timeout=10000)
    assert "layer2.0" in w.inspector.problems.text()
    qtbot.waitUntil(lambda: doc.analysis is not None and not doc.analysis.ok, timeout=10000)
    if not w.inspector.first_toggle.isChecked():  # a use with first-copy values opens it itself
        w.inspector.first_toggle.click()  # open "First copy"

    def laid_out() -> bool:  # the inspector as it is now (a late analysis may rebuild it)
        editors = list(w.inspector.first_editors.values())
        return bool(editors) and all(e.isVisible() and e.height() > 0 for e in editors)

    qtbot.waitUntil(laid_out, timeout=5000)
    for name, editor in w.inspector.first_editors.items():
        assert editor.height() >= editor.minimumSizeHint().height() > 10, name
        check = w.inspector.first_checks[name]
        assert check.height() >= check.minimumSizeHint().height(), name
    w.inspector.grab().save(str(tmp_path / "inspector.png"))


def _retype(panel, row: int, type_: str) -> None:
    combo = panel.table.cellWidget(row, 1)
    combo.setCurrentText(type_)
    combo.activated.emit(combo.currentIndex())


def test_a_parameter_type_change_converts_the_default_and_every_use(qtbot, doc):
    inspector = InspectorDock(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    model = doc.graph
    layer2 = _id(model, "layer2")
    doc.set_network("BasicBlock")
    panel = inspector.network_panel
    inspector.set_node(None)
    panel.add_button.click()  # param1: int, default 1
    assert doc.graph.block_params[3].name == "param1"
    doc.set_network("resnet18")
    doc.set_params(layer2, {"args": {"planes": 128, "param1": 0},
                            "first": {"stride": 2, "downsample": True, "param1": 1}})
    doc.set_network("BasicBlock")
    before = _dump(doc.project)

    _retype(panel, 3, "bool")  # int -> bool: 1 is true, a use's 0 is false
    block = doc.graph
    assert block.block_params[3].type == "bool" and block.block_params[3].default is True
    assert panel.table.item(3, 2).text() == "true"
    params = model.nodes[layer2].params
    assert params["args"]["param1"] is False and params["first"]["param1"] is True
    assert not [p for p in analyze(model).problems if "param1" in p.message]
    doc.undo_stack.undo()  # one step: the declaration and the uses together
    assert _dump(doc.project) == before

    _retype(panel, 1, "bool")  # stride: layer2's first copy passes 2, no true/false
    assert panel.error.isVisibleTo(panel)
    assert "'layer2' in resnet18 gives its first copy 2" in panel.error.text()
    assert _dump(doc.project) == before and panel.table.cellWidget(1, 1).currentText() == "int"

    _retype(panel, 0, "float")  # planes: 64 -> 64.0 and the uses' values too
    assert doc.graph.block_params[0].default == 64.0
    assert model.nodes[layer2].params["args"]["planes"] == 128.0
    _retype(panel, 0, "int")
    assert doc.graph.block_params[0].default == 64
    assert isinstance(model.nodes[layer2].params["args"]["planes"], int)
