"""Freezing several layers at once (issue #22 item 3): one undo step for the selection, "freeze
everything before this layer", the inspector with several layers selected, the status bar's
trainable count and the frozen look, the same for every kind of node."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QContextMenuEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QFormLayout

from designer.engine.document.project import Project
from designer.engine.model.graph import Graph
from designer.ui.canvas import CanvasView
from designer.ui.canvas.items import FROZEN_FILL, NODE_FILL
from designer.ui.document import Document
from designer.ui.inspector import InspectorDock


@pytest.fixture
def view(canvas_view):
    return canvas_view((500, 200))


def _chain(doc):
    """image -> fc1 -> act -> fc2 -> out, plus a Parameter layer feeding nothing."""
    ids = {
        "inp": doc.add_node("Input", (0, 100), {"shape": [8]}, name="image"),
        "fc1": doc.add_node("Linear", (220, 100), {"out_features": 16}, name="fc1"),
        "act": doc.add_node("ReLU", (440, 100), name="act"),
        "fc2": doc.add_node("Linear", (660, 100), {"out_features": 4}, name="fc2"),
        "out": doc.add_node("Output", (880, 100), name="out"),
    }
    for a, b in (("inp", "fc1"), ("fc1", "act"), ("act", "fc2"), ("fc2", "out")):
        doc.connect(ids[a], ids[b])
    return ids


def test_freezing_several_layers_is_one_undo_step(doc):
    ids = _chain(doc)
    count = doc.undo_stack.count()
    changed = doc.set_frozen_many([ids["inp"], ids["fc1"], ids["act"], ids["fc2"]], True)
    assert changed == 3  # the Input holds no weights: left alone
    assert [doc.graph.nodes[i].frozen for i in ("fc1", "act", "fc2") for i in [ids[i]]] == [
        True, True, True]
    assert doc.undo_stack.count() == count + 1
    assert doc.undo_stack.undoText() == "Freeze 3 layers"
    doc.undo_stack.undo()
    assert not any(n.frozen for n in doc.graph.nodes.values())
    doc.undo_stack.redo()
    assert doc.set_frozen_many([ids["fc1"], ids["act"]], False) == 2
    assert doc.undo_stack.undoText() == "Make 2 layers trainable"
    assert [n.name for n in doc.graph.nodes.values() if n.frozen] == ["fc2"]


def test_layers_before_are_the_ancestors_along_the_wires(doc):
    ids = _chain(doc)
    side = doc.add_node("Linear", (440, 300), {"out_features": 3}, name="side")
    doc.connect(ids["fc1"], side)  # a branch beside the path: not before fc2
    assert doc.layers_before([ids["fc2"]]) == [ids["fc1"], ids["act"]]
    assert doc.layers_before([ids["fc1"]]) == []  # only the Input before it
    assert side not in doc.layers_before([ids["out"]])


def test_freeze_before_this_freezes_the_backbone_in_one_step(qtbot, view, doc):
    ids = _chain(doc)
    view.select_nodes([ids["fc2"]])
    messages = []
    view.message.connect(messages.append)
    count = doc.undo_stack.count()
    view.freeze_before_action.trigger()
    assert {n.name for n in doc.graph.nodes.values() if n.frozen} == {"fc1", "act"}
    assert doc.undo_stack.count() == count + 1
    assert messages[-1] == "Froze 2 layers before 'fc2'"
    doc.undo_stack.undo()
    assert not any(n.frozen for n in doc.graph.nodes.values())


def test_freeze_is_offered_in_the_right_click_menu_for_the_selection(qtbot, view, doc):
    ids = _chain(doc)
    view.select_nodes([ids["fc1"], ids["act"], ids["fc2"]])
    pos = view.mapFromScene(view.canvas_scene.node_items[ids["act"]].sceneBoundingRect().center())
    seen = {}

    def use_menu():
        menu = QApplication.activePopupWidget()
        try:
            seen.update({a.text(): a for a in menu.actions() if a.text()})
            seen["enabled"] = [a.text() for a in menu.actions() if a.isEnabled() and a.text()]
            if "Freeze" in seen:
                seen["Freeze"].trigger()
        finally:
            menu.close()  # a menu left open would block the test

    QTimer.singleShot(50, use_menu)
    view.contextMenuEvent(QContextMenuEvent(QContextMenuEvent.Mouse, pos,
                                            view.viewport().mapToGlobal(pos)))
    assert "Freeze" in seen["enabled"] and "Freeze Layers Before This" in seen["enabled"]
    assert "Make Trainable" not in seen["enabled"]  # nothing selected is frozen yet
    assert set(view.selected_node_ids()) == {ids["fc1"], ids["act"], ids["fc2"]}  # kept
    assert {n.name for n in doc.graph.nodes.values() if n.frozen} == {"fc1", "act", "fc2"}
    assert doc.undo_stack.undoText() == "Freeze 3 layers"


def test_inspector_with_several_layers_selected_freezes_them_all(qtbot, doc):
    ids = _chain(doc)
    dock = InspectorDock(doc)
    qtbot.addWidget(dock)
    dock.show()
    dock.set_selection([ids["inp"], ids["fc1"], ids["act"]])
    box = dock.multi_trainable
    assert box.isVisible() and box.text() == "trainable (2 of 2)" and box.isChecked()
    count = doc.undo_stack.count()
    qtbot.mouseClick(box, Qt.LeftButton)
    assert doc.graph.nodes[ids["fc1"]].frozen and doc.graph.nodes[ids["act"]].frozen
    assert doc.undo_stack.count() == count + 1
    assert box.text() == "trainable (0 of 2)" and not box.isChecked()
    doc.set_frozen(ids["act"], False)  # the box follows the model: some of each
    assert box.checkState() == Qt.PartiallyChecked
    qtbot.mouseClick(box, Qt.LeftButton)  # shaded -> ticked: all trainable
    assert not any(n.frozen for n in doc.graph.nodes.values())
    dock.set_selection([ids["fc2"]])
    assert not box.isVisible()


def test_the_trainable_box_is_first_in_the_form_for_every_kind_of_node(qtbot):
    inner = Graph()
    i = inner.add_node("Input", "feat", {"shape": [4]}, (0, 0)).id
    lin = inner.add_node("Linear", "lin", {"out_features": 4}, (200, 0)).id
    o = inner.add_node("Output", "res", {}, (400, 0)).id
    inner.connect(i, lin)
    inner.connect(lin, o)
    doc = Document(Project(networks={"model": Graph(), "Block": inner}))
    try:
        kinds = {
            "Linear": doc.add_node("Linear", (0, 0), {"out_features": 3}),
            "Parameter": doc.add_node("Parameter", (0, 200), {"shape": [3]}),
            "Block": doc.add_block_use("Block", (300, 0)),
        }
        dock = InspectorDock(doc)
        qtbot.addWidget(dock)
        for kind, nid in kinds.items():
            dock.set_node(nid)
            item = dock.form.itemAt(0, QFormLayout.SpanningRole)
            assert item is not None and item.widget() is dock.trainable_check, kind
    finally:
        doc.close()


def _fill_at(view: CanvasView, node_id: str) -> QColor:
    """The colour of a node's body, painted at the view's zoom."""
    item = view.canvas_scene.node_items[node_id]
    rect = item.sceneBoundingRect()
    image = QImage(view.viewport().size(), QImage.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    view.render(painter)
    painter.end()
    spot = view.mapFromScene(QPointF(rect.left() + 12, rect.bottom() - 8))
    return image.pixelColor(spot)


@pytest.mark.parametrize("zoom", [1.0, 0.25])
def test_frozen_nodes_of_every_kind_look_the_same_at_every_zoom(qtbot, view, doc, zoom):
    inner = Graph()
    i = inner.add_node("Input", "feat", {"shape": [8]}, (0, 0)).id
    o = inner.add_node("Output", "res", {}, (300, 0)).id
    inner.connect(i, o)
    doc.add_network("Block", inner)
    nodes = [doc.add_node("Linear", (0, 0), {"out_features": 3}),
             doc.add_node("Parameter", (260, 0), {"shape": [3]}),
             doc.add_block_use("Block", (520, 0))]
    view.resetTransform()
    view.scale(zoom, zoom)
    view.centerOn(350, 60)
    plain = {_fill_at(view, nid).name() for nid in nodes}
    assert plain == {NODE_FILL.name()}
    doc.set_frozen_many(nodes, True)
    for nid in nodes:
        assert view.canvas_scene.node_items[nid].frozen
    frozen = {_fill_at(view, nid).name() for nid in nodes}
    assert frozen == {FROZEN_FILL.name()}
