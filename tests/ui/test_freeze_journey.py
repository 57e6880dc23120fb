"""A person freezes the backbone of a template in the window (issue #22 items 3, 10, 23): picks
layers with the mouse and the keyboard, freezes them from the Edit menu, reads the trainable
count in the status bar, undoes in one step, freezes everything before the head from the
right-click menu, then drops a wire on a connected input, which replaces it (one undo step)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication


@pytest.fixture
def window(qtbot, make_main_window):
    w = make_main_window()
    qtbot.waitExposed(w)
    return w


def _centre(view, node_id):
    return view.mapFromScene(view.canvas_scene.node_items[node_id].sceneBoundingRect().center())


def _status_after_analysis(qtbot, w, text):
    qtbot.waitUntil(lambda: w.status_params.text() == text, timeout=20000)


def test_freeze_a_backbone_from_the_menus_then_replace_a_wire(qtbot, window):
    w = window
    assert w.open_template("cnn-mnist")
    qtbot.waitUntil(lambda: w.document.analysis is not None, timeout=20000)
    _status_after_analysis(qtbot, w, "Parameters: 431,080")
    view, doc = w.view, w.document
    ids = {n.name: n.id for n in doc.graph.nodes.values()}
    vp = view.viewport()

    # pick conv1 with the mouse, add conv2 with Ctrl+click and relu2 with Shift+Right
    view.center_on_node(ids["pool1"])
    qtbot.mouseClick(vp, Qt.LeftButton, pos=_centre(view, ids["conv1"]))
    qtbot.mouseClick(vp, Qt.LeftButton, Qt.ControlModifier, _centre(view, ids["conv2"]))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Right, Qt.ShiftModifier)
    assert {doc.graph.nodes[i].name for i in view.selected_node_ids()} == {
        "conv1", "conv2", "relu2"}
    assert w.inspector.multi_trainable.text() == "trainable (3 of 3)"

    # Edit > Freeze: one step; the status bar counts what still trains
    edit = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Edit")
    edit.aboutToShow.emit()
    freeze = next(a for a in edit.actions() if a.text() == "Freeze")
    assert freeze.isEnabled()
    edit.aboutToHide.emit()
    count = doc.undo_stack.count()
    freeze.trigger()
    assert {n.name for n in doc.graph.nodes.values() if n.frozen} == {"conv1", "conv2", "relu2"}
    assert doc.undo_stack.count() == count + 1
    assert w.inspector.multi_trainable.text() == "trainable (0 of 3)"
    _status_after_analysis(qtbot, w, "Parameters: 431,080 (405,510 trainable)")
    assert view.canvas_scene.node_items[ids["conv2"]].frozen

    w.act_undo.trigger()  # one step back: all three trainable again
    assert not any(n.frozen for n in doc.graph.nodes.values())
    _status_after_analysis(qtbot, w, "Parameters: 431,080")

    # right-click fc1 > Freeze Layers Before This
    pos = _centre(view, ids["fc1"])
    chosen = []

    def use_menu():
        menu = QApplication.activePopupWidget()
        try:
            action = next((a for a in menu.actions() if a.text() == "Freeze Layers Before This"),
                          None)
            if action is not None and action.isEnabled():
                chosen.append(action.text())
                action.trigger()
        finally:
            menu.close()

    QTimer.singleShot(50, use_menu)
    view.contextMenuEvent(QContextMenuEvent(QContextMenuEvent.Mouse, pos, vp.mapToGlobal(pos)))
    assert chosen
    assert {n.name for n in doc.graph.nodes.values() if n.frozen} == {
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten"}
    assert "Froze 7 layers before 'fc1'" in w.statusBar().currentMessage()
    _status_after_analysis(qtbot, w, "Parameters: 431,080 (405,510 trainable)")
    w.act_undo.trigger()
    assert not any(n.frozen for n in doc.graph.nodes.values())

    # drop a wire from pool1 on relu2's input (fed by conv2): replaced, one undo step
    items = view.canvas_scene.node_items
    start = view.mapFromScene(items[ids["pool1"]].output.scenePos())
    end = view.mapFromScene(items[ids["relu2"]].inputs[0].scenePos())
    index = doc.undo_stack.index()
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    for i in range(1, 7):
        qtbot.mouseMove(vp, start + (end - start) * (i / 6))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=end)
    feeds = {doc.graph.nodes[e.src].name for e in doc.graph.edges if e.dst == ids["relu2"]}
    assert feeds == {"pool1"}
    assert doc.undo_stack.index() == index + 1
    w.act_undo.trigger()
    feeds = {doc.graph.nodes[e.src].name for e in doc.graph.edges if e.dst == ids["relu2"]}
    assert feeds == {"conv2"}

    # Help > Keyboard Shortcuts lists the new keys (generated from the actions)
    rows = {what: keys for keys, what in w.shortcut_rows()}
    assert rows["Freeze"] == "Ctrl+Shift+F" and rows["Make Trainable"] == "Ctrl+Shift+U"
    assert rows["Connect"] == "C" and rows["Find Layer"] == "Ctrl+F"
    assert "Right / Left" in dict(w.shortcut_rows())
