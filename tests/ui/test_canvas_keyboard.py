"""Wiring replaces what it lands on (issue #22 item 10) and the canvas from the keyboard (item
23): arrows walk the wires, C connects, Ctrl+F finds a layer, Tab's quick add no longer traps
the focus and wires the new layer after the selected one, in view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from designer.ui.canvas import CanvasView


@pytest.fixture
def view(canvas_view):
    return canvas_view((450, 250))


def _vp(view, p: QPointF) -> QPoint:
    return view.mapFromScene(p)


def _drag(qtbot, view, start: QPoint, end: QPoint, steps: int = 6) -> None:
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    for i in range(1, steps + 1):
        qtbot.mouseMove(vp, start + (end - start) * (i / steps))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=end)


def _edges(doc):
    names = {nid: n.name for nid, n in doc.graph.nodes.items()}
    return sorted((names[e.src], names[e.dst], e.dst_port) for e in doc.graph.edges)


def _three(doc):
    a = doc.add_node("Input", (100, 100), {"shape": [8]}, name="inp")
    b = doc.add_node("Linear", (450, 120), {"out_features": 4}, name="fc")
    c = doc.add_node("Linear", (100, 350), {"out_features": 8}, name="other")
    doc.connect(a, b)
    return a, b, c


# -- item 10: a wire dropped on a connected input replaces the old one ---------------------------


def test_wire_dropped_on_a_connected_input_replaces_it_in_one_step(qtbot, view, doc):
    _a, b, c = _three(doc)
    items = view.canvas_scene.node_items
    count = doc.undo_stack.count()
    messages = []
    view.message.connect(messages.append)
    _drag(qtbot, view, _vp(view, items[c].output.scenePos()),
          _vp(view, items[b].inputs[0].scenePos()))
    assert not messages  # no "disconnect it first"
    assert _edges(doc) == [("other", "fc", 0)]
    assert doc.undo_stack.count() == count + 1
    assert doc.undo_stack.undoText() == "Connect 'other' to 'fc' (replacing its wire)"
    assert set(view.canvas_scene.edge_items) == set(doc.graph.edges)
    doc.undo_stack.undo()
    assert _edges(doc) == [("inp", "fc", 0)]
    assert set(view.canvas_scene.edge_items) == set(doc.graph.edges)
    # dropped on the node's body: its only input is replaced too
    _drag(qtbot, view, _vp(view, items[c].output.scenePos()),
          _vp(view, items[b].sceneBoundingRect().center() + QPointF(20, 0)))
    assert _edges(doc) == [("other", "fc", 0)]


def test_moving_a_wire_end_onto_a_connected_input_replaces_that_wire(qtbot, view, doc):
    _a, b, c = _three(doc)
    d = doc.add_node("ReLU", (450, 350), name="act")
    doc.connect(c, d)
    items = view.canvas_scene.node_items
    # pick up fc's connected input (the wire from inp) and drop it on act's (from other)
    _drag(qtbot, view, _vp(view, items[b].inputs[0].scenePos()),
          _vp(view, items[d].inputs[0].scenePos()))
    assert _edges(doc) == [("inp", "act", 0)]
    doc.undo_stack.undo()
    assert _edges(doc) == [("inp", "fc", 0), ("other", "act", 0)]


def test_replacing_still_refuses_a_cycle(doc):
    _a, b, c = _three(doc)
    doc.connect(b, c)  # fc -> other: other -> fc would close a loop
    assert "cycle" in doc.can_connect(c, b, 0, replace=True)
    assert doc.can_connect(c, b, 0) is not None  # without replace: occupied, as before


# -- item 23: the keyboard ---------------------------------------------------------------------


def _line(doc):
    ids = [doc.add_node("Input", (0, 100), {"shape": [8]}, name="inp")]
    for i, x in enumerate((250, 500, 750), start=1):
        ids.append(doc.add_node("Linear", (x, 100), {"out_features": 8}, name=f"fc{i}"))
        doc.connect(ids[-2], ids[-1])
    ids.append(doc.add_node("ReLU", (250, 400), name="side"))
    return ids


def test_arrow_keys_walk_the_wires_and_shift_extends(qtbot, view, doc):
    inp, fc1, fc2, _fc3, side = _line(doc)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Right)  # nothing selected: the Input
    assert view.selected_node_ids() == [inp]
    qtbot.keyClick(view, Qt.Key_Right)
    qtbot.keyClick(view, Qt.Key_Right)
    assert view.selected_node_ids() == [fc2]
    qtbot.keyClick(view, Qt.Key_Left)
    assert view.selected_node_ids() == [fc1]
    qtbot.keyClick(view, Qt.Key_Down)  # the nearest layer below
    assert view.selected_node_ids() == [side]
    qtbot.keyClick(view, Qt.Key_Up)
    qtbot.keyClick(view, Qt.Key_Right, Qt.ShiftModifier)
    assert set(view.selected_node_ids()) == {fc1, fc2}
    assert view.selection_order() == [fc1, fc2]


def test_c_connects_the_first_selected_into_the_second(qtbot, view, doc):
    _inp, fc1, _fc2, fc3, side = _line(doc)
    view.setFocus()
    view.select_nodes([fc3, side])  # fc3 first: it feeds side
    count = doc.undo_stack.count()
    qtbot.keyClick(view, Qt.Key_C)
    assert ("fc3", "side", 0) in _edges(doc)
    assert doc.undo_stack.count() == count + 1
    assert view.selected_node_ids() == [side]
    # one layer selected: C asks which layer it feeds (the dialog lists those it can)
    extra = doc.add_node("Linear", (500, 400), {"out_features": 2}, name="extra")
    asked = []

    def choose(src):
        asked.append(view.connect_targets(src))
        return extra

    view.ask_connect_target = choose
    view.select_nodes([side])
    qtbot.keyClick(view, Qt.Key_C)
    assert extra in asked[0] and fc1 not in asked[0]  # fc1 -> ... -> side: a cycle
    assert ("side", "extra", 0) in _edges(doc)
    doc.undo_stack.undo()
    assert ("side", "extra", 0) not in _edges(doc)


def test_ctrl_f_finds_a_layer_by_name_and_shows_it(qtbot, view, doc):
    _inp, _fc1, _fc2, _fc3, _side = _line(doc)
    far = doc.add_node("ReLU", (4000, 3000), name="faraway")
    view.ask_layer_name = lambda: "faraway"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_F, Qt.ControlModifier)
    assert view.selected_node_ids() == [far]
    rect = view.canvas_scene.node_items[far].sceneBoundingRect()
    assert view.viewport().rect().contains(_vp(view, rect.center()))
    messages = []
    view.message.connect(messages.append)
    assert view.find_layer("nothing") is None and "No layer" in messages[-1]
    assert view.find_layer("fa") == far  # a unique start will do


def test_quick_add_wires_after_the_selected_layer_and_keeps_it_in_view(qtbot, view, doc):
    _inp, _fc1, _fc2, fc3, _side = _line(doc)
    view.select_nodes([fc3])
    view.setFocus()
    added = []
    for query in ("relu", "dropout"):
        count = doc.undo_stack.count()
        qtbot.keyClick(view, Qt.Key_Tab)
        popup = view._quick_add
        assert popup.isVisible()
        qtbot.keyClicks(popup.search, query)
        qtbot.keyClick(popup.search, Qt.Key_Return)
        (nid,) = view.selected_node_ids()
        added.append(nid)
        assert doc.undo_stack.count() == count + 1  # added and wired: one step
        item = view.canvas_scene.node_items[nid]
        assert view.viewport().rect().contains(_vp(view, item.sceneBoundingRect().center()))
        assert view.hasFocus()
    relu, drop = (doc.graph.nodes[n] for n in added)
    assert ("fc3", relu.name, 0) in _edges(doc) and (relu.name, drop.name, 0) in _edges(doc)
    assert relu.pos[0] > doc.graph.nodes[fc3].pos[0] and drop.pos[0] > relu.pos[0]
    doc.undo_stack.undo()
    assert drop.id not in doc.graph.nodes and (relu.name, drop.name, 0) not in _edges(doc)


def test_tab_does_not_trap_the_focus_in_the_canvas(qtbot, doc):
    from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

    host = QWidget()
    qtbot.addWidget(host)
    before, view, after = QLineEdit(host), CanvasView(doc, host), QLineEdit(host)
    box = QVBoxLayout(host)
    for w in (before, view, after):
        box.addWidget(w)
    host.resize(800, 600)
    host.show()
    qtbot.waitExposed(host)
    host.activateWindow()
    view.setFocus()
    qtbot.waitUntil(view.hasFocus)
    qtbot.keyClick(view, Qt.Key_Tab)  # Tab in the canvas: the quick-add search
    popup = view._quick_add
    assert popup.isVisible()
    qtbot.keyClick(popup.search, Qt.Key_Escape)  # Esc: back to the canvas, nothing added
    assert not popup.isVisible() and not doc.graph.nodes
    qtbot.waitUntil(view.hasFocus)
    qtbot.keyClick(view, Qt.Key_Tab)
    qtbot.keyClick(popup.search, Qt.Key_Tab)  # Tab again: on to the next field
    assert not popup.isVisible()
    qtbot.waitUntil(after.hasFocus)
    view.setFocus()
    qtbot.waitUntil(view.hasFocus)
    qtbot.keyClick(view, Qt.Key_Backtab, Qt.ShiftModifier)  # Shift+Tab: the field before
    qtbot.waitUntil(before.hasFocus)
    assert not popup.isVisible()
