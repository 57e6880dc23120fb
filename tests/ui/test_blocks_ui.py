"""Blocks in the window (issue 13): group, ungroup and make unique as one undo step each, a
block's definition opened from its use with a breadcrumb, the palette's Blocks section, the
inspector's forms for a use, references and block parameters, and a use's shape and parameter
count on its node following an edit inside its definition."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDropEvent

from designer.engine.document.templates import load_template
from designer.engine.model.graph import GraphError
from designer.ui.canvas import BLOCK_MIME, CanvasView
from designer.ui.document import Document
from designer.ui.inspector import InspectorDock
from designer.ui.main_window import MainWindow
from designer.ui.palette import PaletteDock


def _dump(project) -> str:
    return json.dumps(project.to_dict(), sort_keys=True)


@pytest.fixture
def doc(qtbot):
    d = Document(load_template("resnet18"))
    yield d
    d.close()


@pytest.fixture
def view(qtbot, doc):
    v = CanvasView(doc)
    qtbot.addWidget(v)
    v.resize(900, 600)
    v.show()
    return v


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.set_project(load_template("resnet18"), None)
    w.show()
    yield w
    w.shutdown()


def _id(graph, name: str) -> str:
    return graph.node_by_name(name).id


def _round_trip(doc, before: str, after: str) -> None:
    """Undo restores the project exactly, redo re-applies exactly, and again."""
    for _ in range(2):
        doc.undo_stack.undo()
        assert _dump(doc.project) == before
        doc.undo_stack.redo()
        assert _dump(doc.project) == after


# -- group, ungroup, make unique -------------------------------------------------------------------


def test_group_is_one_undo_step_and_the_canvas_follows(qtbot, doc, view):
    g = doc.graph
    before, steps = _dump(doc.project), doc.undo_stack.count()
    stem = [_id(g, n) for n in ("conv1", "bn1", "relu", "maxpool")]
    view.select_nodes(stem)
    use = view.group_selection("Stem")
    assert use is not None and doc.undo_stack.count() == steps + 1
    assert "Stem" in doc.project.networks and g.nodes[use].params["block"] == "Stem"
    assert set(view.canvas_scene.node_items) == set(g.nodes)  # the canvas followed the events
    assert len(view.canvas_scene.edge_items) == len(g.edges)
    assert view.selected_node_ids() == [use]
    after = _dump(doc.project)
    _round_trip(doc, before, after)
    doc.undo_stack.undo()
    assert set(view.canvas_scene.node_items) == set(doc.graph.nodes)
    assert all(nid in view.canvas_scene.node_items for nid in stem)
    # the use's output shape matches what the stem gave (after a check)
    doc.undo_stack.redo()
    a = doc.analyze_now()
    assert a.infos[use].output_shape == (64, 56, 56) and not a.errors
    assert a.total_params == 11_689_512


def test_a_refused_group_changes_nothing_and_says_why(qtbot, doc, view):
    messages = []
    view.message.connect(messages.append)
    before, steps = _dump(doc.project), doc.undo_stack.count()
    view.select_nodes([_id(doc.graph, "image"), _id(doc.graph, "conv1")])
    assert view.group_selection("Stem") is None
    assert "Input" in messages[-1] and messages[-1].startswith("Cannot group")
    assert _dump(doc.project) == before and doc.undo_stack.count() == steps


def test_ungroup_and_make_unique_are_one_undo_step_each(qtbot, doc, view):
    g = doc.graph
    before = _dump(doc.project)
    view.select_nodes([_id(g, "layer1")])
    added = view.ungroup_selection()
    assert len(added) > 0 and g.node_by_name("layer1") is None
    assert set(view.canvas_scene.node_items) == set(g.nodes)
    assert sorted(view.selected_node_ids()) == sorted(added)
    after = _dump(doc.project)
    _round_trip(doc, before, after)
    doc.undo_stack.undo()
    assert _dump(doc.project) == before

    view.select_nodes([_id(g, "layer4")])
    name = view.make_unique_selection()
    assert name == "BasicBlock2" and g.node_by_name("layer4").params["block"] == name
    assert list(doc.project.networks)[:3] == ["resnet18", "BasicBlock", "BasicBlock2"]
    _round_trip(doc, before, _dump(doc.project))


# -- opening a definition ----------------------------------------------------------------------------


def test_double_click_opens_the_definition_and_esc_goes_back(qtbot, window):
    doc, view = window.document, window.view
    assert not window.breadcrumb.isVisible()
    item = view.canvas_scene.node_items[_id(doc.graph, "layer2")]
    view.centerOn(item)
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=pos)
    assert doc.network == "BasicBlock"
    assert window.breadcrumb.isVisible()
    assert window.breadcrumb.text() == "resnet18 › layer2 (BasicBlock)"
    assert set(view.canvas_scene.node_items) == set(doc.project.networks["BasicBlock"].nodes)
    view.open_block(_id(doc.graph, "downsample"))  # deeper: the nested Downsample
    assert doc.network == "Downsample"
    assert window.breadcrumb.text() == \
        "resnet18 › layer2 (BasicBlock) › downsample (Downsample)"
    window.breadcrumb.buttons[1].click()  # back to BasicBlock by its breadcrumb
    assert doc.network == "BasicBlock"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Escape)
    assert doc.network == "resnet18" and not window.breadcrumb.isVisible()
    assert window.network_tabs.tabText(window.network_tabs.currentIndex()) == "resnet18"


# -- what a block node shows ---------------------------------------------------------------------------


def test_a_use_shows_block_args_repeat_shape_and_params(qtbot, doc, view):
    g = doc.graph
    layer2 = view.canvas_scene.node_items[_id(g, "layer2")]
    assert layer2.title == "layer2" and "BasicBlock" in layer2._header
    assert layer2._repeat_text == "× 2"
    assert "planes=128" in " ".join(layer2._param_lines)
    assert "first: stride=2 downsample" in layer2._param_lines
    with qtbot.waitSignal(doc.analysis_updated, timeout=10000):
        pass
    assert layer2.shape_text == "(128, 28, 28)" and layer2._count_text == "526k params"
    # an edit inside the definition: the use's params follow (through the worker)
    bb = doc.project.networks["BasicBlock"]
    with qtbot.waitSignal(doc.analysis_updated, timeout=10000):
        bb.set_params(_id(bb, "conv2"), {"kernel_size": 1, "padding": 0})
    assert layer2._count_text == "263k params"


def test_a_layer_switched_by_when_says_so(qtbot, doc, view):
    doc.set_network("BasicBlock")
    item = view.canvas_scene.node_items[_id(doc.graph, "downsample")]
    assert item._param_lines[0].startswith("when downsample")
    doc.set_when(_id(doc.graph, "downsample"), None)
    assert not item._param_lines or not item._param_lines[0].startswith("when")
    doc.undo_stack.undo()
    assert item._param_lines[0].startswith("when downsample")


# -- the palette's Blocks section ------------------------------------------------------------------------


def test_palette_lists_blocks_and_a_drop_makes_a_use(qtbot, doc, view):
    palette = PaletteDock(None, doc)
    qtbot.addWidget(palette)
    assert palette.block_names() == ["BasicBlock", "Downsample"]
    doc.set_network("BasicBlock")  # resnet18 uses BasicBlock: offering it would make a cycle
    assert palette.block_names() == ["Downsample"]
    doc.set_network("resnet18")
    doc.rename_network("Downsample", "Shortcut")
    assert palette.block_names() == ["BasicBlock", "Shortcut"]
    doc.add_network("Extra")
    assert "Extra" in palette.block_names()
    doc.undo_stack.undo()
    assert "Extra" not in palette.block_names()

    mime = palette.tree.mimeData([palette.block_item("BasicBlock")])
    assert bytes(mime.data(BLOCK_MIME)).decode() == "BasicBlock"
    n = len(doc.graph.nodes)
    ev = QDropEvent(QPointF(QPoint(300, 200)), Qt.CopyAction, mime, Qt.LeftButton,
                    Qt.NoModifier)
    view.dropEvent(ev)
    assert len(doc.graph.nodes) == n + 1
    (new,) = view.selected_node_ids()
    node = doc.graph.nodes[new]
    assert node.type == "Block" and node.params["block"] == "BasicBlock"
    assert node.name == "basic_block"
    doc.undo_stack.undo()
    assert len(doc.graph.nodes) == n


# -- the inspector ----------------------------------------------------------------------------------------


@pytest.fixture
def inspector(qtbot, doc):
    dock = InspectorDock(doc)
    qtbot.addWidget(dock)
    dock.show()
    return dock


def test_inspector_edits_a_use_args_first_and_repeat(qtbot, doc, inspector):
    g = doc.graph
    use = _id(g, "layer2")
    inspector.set_node(use)
    assert inspector.block_combo.currentText() == "BasicBlock"
    assert set(inspector.arg_editors) == {"planes", "stride", "downsample"}
    assert inspector.arg_editors["planes"].value() == 128
    assert inspector.first_checks["stride"].isChecked()
    assert inspector.first_editors["stride"].value() == 2
    assert not inspector.first_checks["planes"].isChecked()

    before = _dump(doc.project)
    inspector.arg_editors["planes"].spin.setValue(96)
    assert g.nodes[use].params["args"] == {"planes": 96}
    inspector.editors["repeat"].spin.setValue(3)
    assert g.nodes[use].params["repeat"] == 3
    inspector.first_checks["planes"].click()  # the first copy takes its own planes
    assert g.nodes[use].params["first"]["planes"] == 96
    inspector.first_editors["planes"].spin.setValue(80)
    assert g.nodes[use].params["first"]["planes"] == 80
    inspector.first_checks["stride"].click()  # untick: the same as the others again
    assert "stride" not in g.nodes[use].params["first"]
    for _ in range(5):
        doc.undo_stack.undo()
    assert _dump(doc.project) == before
    assert inspector.arg_editors["planes"].value() == 128  # the form follows undo


def test_inspector_sets_a_reference_and_the_switch(qtbot, doc, inspector):
    doc.set_network("BasicBlock")
    g = doc.graph
    conv = _id(g, "conv2")
    inspector.set_node(conv)
    editor = inspector.editors["out_channels"]
    assert editor.ref_edit.isVisibleTo(editor) and editor.ref_edit.text() == "=planes"
    editor.ref_edit.setText("=planes*4")
    editor.ref_edit.editingFinished.emit()
    assert g.nodes[conv].params["out_channels"] == {"ref": "planes", "mul": 4}
    editor.ref_edit.setText("=width")  # not a block parameter: refused, nothing changes
    editor.ref_edit.editingFinished.emit()
    assert "no parameter 'width'" in editor.error
    assert g.nodes[conv].params["out_channels"] == {"ref": "planes", "mul": 4}
    # typing "=" in a plain field switches it to a reference
    pad = inspector.editors["padding"]
    pad.field.setFocus()
    qtbot.keyClicks(pad.field, "=")
    assert pad.ref_edit.isVisibleTo(pad) and pad.ref_edit.text() == "="
    pad.ref_edit.setText("=stride")
    pad.ref_edit.editingFinished.emit()
    assert g.nodes[conv].params["padding"] == {"ref": "stride"}
    # the switch: "always" or a bool block parameter
    combo = inspector.when_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["always", "downsample"]
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert g.nodes[conv].when == "downsample"
    for _ in range(3):
        doc.undo_stack.undo()
    assert g.nodes[conv].params["out_channels"] == {"ref": "planes"}
    assert g.nodes[conv].params["padding"] == 1 and g.nodes[conv].when is None
    assert editor.ref_edit.text() == "=planes"


def test_inspector_declares_block_params_and_sequential(qtbot, doc, inspector):
    doc.set_network("Downsample")
    g = doc.graph
    panel = inspector.network_panel
    inspector.set_node(None)
    assert panel.isVisibleTo(inspector) and panel.table.rowCount() == 2
    assert panel.sequential.isChecked()
    before = _dump(doc.project)
    panel.add_button.click()
    assert [p.name for p in g.block_params] == ["planes", "stride", "param1"]
    panel.table.item(2, 0).setText("groups")  # rename it in the table
    assert g.block_params[2].name == "groups"
    panel.table.item(2, 2).setText("oops")  # a refused default: a message, nothing changes
    assert panel.error.isVisibleTo(panel) and g.block_params[2].default == 1
    panel.table.setCurrentCell(2, 0)
    panel.remove_button.click()
    assert [p.name for p in g.block_params] == ["planes", "stride"]
    panel.sequential.click()
    assert g.sequential is False
    for _ in range(4):
        doc.undo_stack.undo()
    assert _dump(doc.project) == before
    assert panel.table.rowCount() == 2 and panel.sequential.isChecked()


def test_a_definition_opened_from_a_use_is_checked_as_that_use_feeds_it(qtbot, doc):
    """Opened from layer4, BasicBlock receives 256x14x14 and planes 512, stride 2 (its first
    copy), not its own defaults; a problem only some uses have shows on the layer inside when
    the definition is opened from one of them, in the live (worker) check too."""
    main = doc.graph
    doc.open_block(_id(main, "layer4"))
    assert doc.network == "BasicBlock"
    block = doc.graph
    a = doc.analyze_now()
    assert a.infos[_id(block, "input")].output_shape == (256, 14, 14)
    assert a.infos[_id(block, "conv1")].output_shape == (512, 7, 7)
    assert a.infos[_id(block, "downsample")].params == 256 * 512 + 2 * 512


def test_a_problem_of_one_use_shows_inside_when_opened_from_it(qtbot):
    """Block 'Halve' reshapes its Linear's width into [2, -1]: fine for width 4 (its default
    and use 'a'), impossible for width 3 (use 'b'). Checked on its own it is fine; opened from 'b'
    the error is on the Reshape inside, in the worker's check and in analyze_now alike."""
    from designer.engine.document.project import Project
    from designer.engine.model.blocks import block_param
    from designer.engine.model.graph import Graph

    block = Graph()
    block.set_block_params([block_param("width", "int", 4, min=1)])
    block.add_node("Input", "inp", {"shape": [8]}, id="inp")
    block.add_node("Linear", "fc", {"out_features": {"ref": "width"}}, id="fc")
    block.add_node("Reshape", "halve", {"shape": [2, -1]}, id="halve")
    block.add_node("Flatten", "flat", {}, id="flat")
    block.add_node("Output", "out", None, id="out")
    for src, dst in (("inp", "fc"), ("fc", "halve"), ("halve", "flat"), ("flat", "out")):
        block.connect(src, dst)
    main = Graph()
    main.add_node("Input", "x_in", {"shape": [8]}, id="x_in")
    main.add_node("Block", "a", {"block": "Halve", "args": {"width": 4}}, id="a")
    main.add_node("Linear", "mid", {"out_features": 8}, id="mid")
    main.add_node("Block", "b", {"block": "Halve", "args": {"width": 3}}, id="b")
    main.add_node("Output", "y", None, id="y")
    for src, dst in (("x_in", "a"), ("a", "mid"), ("mid", "b"), ("b", "y")):
        main.connect(src, dst)
    d = Document(Project("p", "", {"main": main, "Halve": block}))
    try:
        top = d.analyze_now()
        assert [p.node_ids for p in top.errors] == [("b",)]  # pinned to the use in the network
        assert "used as 'b'" in top.errors[0].message
        d.open_block("a")
        assert d.analyze_now().ok
        d.go_up()
        d.open_block("b")
        inside = d.analyze_now()
        assert [p.node_ids for p in inside.errors] == [("halve",)]
        d._schedule_analysis(0)
        qtbot.waitUntil(lambda: d.analysis is not None and [
            p.node_ids for p in d.analysis.errors] == [("halve",)], timeout=10000)
        d.go_up()
        d.switch_network("Halve") if hasattr(d, "switch_network") else None
    finally:
        d.close()


def test_pasting_a_use_that_would_contain_itself_is_refused(qtbot, doc):
    """Copy layer1 (a BasicBlock use) and paste it into BasicBlock itself: refused, nothing
    changes; pasted into the main network it is a plain second use."""
    data = doc.copy([_id(doc.graph, "layer1")])
    doc.open_block(_id(doc.graph, "layer1"))
    before = _dump(doc.project)
    with pytest.raises(GraphError, match="contain itself"):
        doc.paste(data)
    assert _dump(doc.project) == before
    doc.go_up()
    (new,) = doc.paste(data)
    assert doc.graph.nodes[new].params["block"] == "BasicBlock"


@pytest.fixture
def starter(qtbot):
    d = Document(load_template("mlp-digits"))
    yield d
    d.close()


def test_the_starter_shows_no_empty_blocks_section_and_no_block_set_up(qtbot, starter):
    """A newcomer's first screen: no empty "Blocks" palette section and no block-parameter
    table in the inspector (a link opens it); with blocks (resnet18), the section shows."""
    from designer.ui.inspector import NetworkPanel
    from designer.ui.palette import PaletteDock

    palette = PaletteDock(None, starter)
    qtbot.addWidget(palette)
    assert palette._blocks_cat.isHidden()
    panel = NetworkPanel(starter)
    qtbot.addWidget(panel)
    assert panel.details.isHidden() and not panel.show_details.isHidden()
    panel.show_details.click()
    assert not panel.details.isHidden()


def test_a_project_with_blocks_shows_them_in_the_palette(qtbot, doc):
    from designer.ui.palette import PaletteDock

    palette = PaletteDock(None, doc)
    qtbot.addWidget(palette)
    assert not palette._blocks_cat.isHidden() and palette.block_names()
