"""The node canvas: drops, wiring with the mouse, moving, deleting, clipboard, problems, zoom.

Mouse gestures are sent to the view's viewport with qtbot; every check then compares the scene's
items with the model, in both directions (gesture -> model, model/undo -> items).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from designer.engine.document.project import load_project
from designer.ui.canvas import LAYER_MIME, CanvasView, EdgeItem, NodeItem
from designer.ui.canvas.items import ERROR_COLOR
from designer.ui.document import Document

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


@pytest.fixture
def doc(qtbot):
    d = Document()
    yield d
    d.close()


@pytest.fixture
def view(qtbot, doc):
    v = CanvasView(doc)
    v.resize(1000, 700)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    v.resetTransform()
    v.centerOn(400, 150)
    return v


def _assert_items_match_model(view: CanvasView) -> None:
    scene, graph = view.canvas_scene, view.document.graph
    assert set(scene.node_items) == set(graph.nodes)
    assert set(scene.edge_items) == set(graph.edges)
    for nid, item in scene.node_items.items():
        assert (item.pos().x(), item.pos().y()) == graph.nodes[nid].pos
    for edge, item in scene.edge_items.items():
        dst = scene.node_items[edge.dst]
        assert (item.end_point - dst.input_anchor(edge.dst_port)).manhattanLength() < 0.5


def _vp(view: CanvasView, scene_point: QPointF) -> QPoint:
    return view.mapFromScene(scene_point)


def _drag(qtbot, view, start: QPoint, end: QPoint, steps: int = 6) -> None:
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=end)


def _two_nodes(doc):
    a = doc.add_node("Input", (100, 100), {"shape": [8]}, name="inp")
    b = doc.add_node("Linear", (450, 120), {"out_features": 4}, name="fc")
    return a, b


def _drop(view, type_id: str, pos: QPoint) -> QDropEvent:
    mime = QMimeData()
    mime.setData(LAYER_MIME, type_id.encode("utf-8"))
    ev = QDropEvent(QPointF(pos), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    view.dropEvent(ev)
    return ev


# -- drops and quick add ------------------------------------------------------------------------


def test_drop_from_palette_adds_a_layer_under_the_cursor(view, doc):
    pos = QPoint(300, 200)
    ev = _drop(view, "Conv2d", pos)
    assert ev.isAccepted()
    (nid,) = doc.graph.nodes
    node = doc.graph.nodes[nid]
    assert node.type == "Conv2d"
    assert view.canvas_scene.node_items[nid].sceneBoundingRect().contains(view.mapToScene(pos))
    assert view.selected_node_ids() == [nid]
    assert doc.undo_stack.undoText() == "Add Conv2d 'conv1'"
    doc.undo_stack.undo()
    assert not view.canvas_scene.node_items


def test_drop_of_other_data_is_refused(view, doc):
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"NotALayer")
    ev = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    view.dropEvent(ev)
    text = QMimeData()
    text.setText("Linear")
    view.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, text, Qt.LeftButton, Qt.NoModifier))
    assert not doc.graph.nodes


def test_tab_quick_add_filters_and_adds(qtbot, view, doc):
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Tab)
    popup = view._quick_add
    assert popup is not None and popup.isVisible()
    qtbot.keyClicks(popup.search, "batchnorm 2")
    assert popup.visible_ids() == ["BatchNorm2d"]
    qtbot.keyClick(popup.search, Qt.Key_Return)
    assert not popup.isVisible()
    assert [n.type for n in doc.graph.nodes.values()] == ["BatchNorm2d"]


# -- wiring with the mouse ------------------------------------------------------------------------


def test_connect_by_dragging_output_to_input(qtbot, view, doc):
    a, b = _two_nodes(doc)
    items = view.canvas_scene.node_items
    start = _vp(view, items[a].output.scenePos())
    end = _vp(view, items[b].inputs[0].scenePos())
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    qtbot.mouseMove(vp, start + QPoint(40, 10))
    assert view._wire is not None  # the live line follows the cursor
    qtbot.mouseMove(vp, end)
    assert items[b].inputs[0].highlight == "ok"
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=end)
    assert [(e.src, e.dst, e.dst_port) for e in doc.graph.edges] == [(a, b, 0)]
    assert view._wire is None
    _assert_items_match_model(view)
    doc.undo_stack.undo()
    assert not doc.graph.edges
    _assert_items_match_model(view)


def test_refused_target_says_why_and_connects_nothing(qtbot, view, doc, monkeypatch):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    c = doc.add_node("ReLU", (450, 350), name="act")
    doc.connect(b, c)
    shown = []
    monkeypatch.setattr("designer.ui.canvas.view.QToolTip.showText",
                        lambda pos, text, *args: shown.append(text))
    items = view.canvas_scene.node_items
    # act -> fc would close a cycle fc -> act -> fc.
    start = _vp(view, items[c].output.scenePos())
    end = _vp(view, items[b].inputs[0].scenePos())
    messages = []
    view.message.connect(messages.append)
    _drag(qtbot, view, start, end)
    assert items[b].inputs[0].highlight is None  # cleared after release
    assert any("already connected" in t or "cycle" in t for t in shown), shown
    assert messages and "Cannot connect" in messages[0]
    assert len(doc.graph.edges) == 2


def test_drag_edge_end_off_disconnects_and_onto_another_input_rewires(qtbot, view, doc):
    a, b = _two_nodes(doc)
    c = doc.add_node("ReLU", (450, 350), name="act")
    doc.connect(a, b)
    items = view.canvas_scene.node_items
    # Pick up the connected input port of fc and drop it on act's input: rewire, one step.
    start = _vp(view, items[b].inputs[0].scenePos())
    _drag(qtbot, view, start, _vp(view, items[c].inputs[0].scenePos()))
    assert [(e.src, e.dst) for e in doc.graph.edges] == [(a, c)]
    assert doc.undo_stack.undoText().startswith("Reconnect")
    _assert_items_match_model(view)
    # Grab the arrow end of the edge and drop it in empty space: disconnect.
    edge_item = next(iter(view.canvas_scene.edge_items.values()))
    end = edge_item.end_point
    start = _vp(view, end - QPointF(6, 0))
    _drag(qtbot, view, start, _vp(view, end + QPointF(-120, 160)))
    assert not doc.graph.edges
    _assert_items_match_model(view)
    doc.undo_stack.undo()
    assert [(e.src, e.dst) for e in doc.graph.edges] == [(a, c)]
    _assert_items_match_model(view)


def test_variadic_merge_shows_one_free_port_more_than_connected(view, doc):
    a, b = _two_nodes(doc)
    add = doc.add_node("Add", (800, 100))
    item = view.canvas_scene.node_items[add]
    assert len(item.inputs) == 2
    doc.connect(a, add, 0)
    doc.connect(b, add, 1)
    assert len(item.inputs) == 3
    doc.undo_stack.undo()
    assert len(item.inputs) == 2


# -- moving, selecting, deleting ----------------------------------------------------------------------


def test_dragging_a_node_moves_it_in_one_undo_step(qtbot, view, doc):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    count = doc.undo_stack.count()
    item = view.canvas_scene.node_items[b]
    start = _vp(view, item.sceneBoundingRect().center() + QPointF(0, -20))
    _drag(qtbot, view, start, start + QPoint(83, 47), steps=10)
    node = doc.graph.nodes[b]
    assert node.pos != (450.0, 120.0)
    assert node.pos[0] % 10 == 0 and node.pos[1] % 10 == 0  # snapped to the grid
    assert doc.undo_stack.count() == count + 1
    assert doc.undo_stack.undoText() == "Move 'fc'"
    _assert_items_match_model(view)  # the edge followed
    doc.undo_stack.undo()
    assert doc.graph.nodes[b].pos == (450.0, 120.0)
    _assert_items_match_model(view)


def test_rubber_band_selects_and_delete_removes_in_one_step(qtbot, view, doc):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    far = doc.add_node("ReLU", (100, 600))
    before = doc.graph.to_dict()
    r = view.canvas_scene.nodes_rect()
    start = _vp(view, QPointF(60, 60))
    end = _vp(view, QPointF(700, 300))
    assert r.isValid()
    _drag(qtbot, view, start, end)
    assert set(view.selected_node_ids()) == {a, b}
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Delete)
    assert list(doc.graph.nodes) == [far] and not doc.graph.edges
    _assert_items_match_model(view)
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    _assert_items_match_model(view)


def test_selected_edge_is_deleted(qtbot, view, doc):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    item = next(iter(view.canvas_scene.edge_items.values()))
    item.setSelected(True)
    view.delete_selection()
    assert not doc.graph.edges and len(doc.graph.nodes) == 2
    assert doc.undo_stack.undoText() == "Delete connection"


def test_selection_signal_and_select_nodes(qtbot, view, doc):
    _, b = _two_nodes(doc)
    with qtbot.waitSignal(view.selection_changed) as sig:
        view.select_nodes([b])
    assert sig.args == [[b]]
    view.center_on_node(b)
    centre = view.mapToScene(view.viewport().rect().center())
    assert view.canvas_scene.node_items[b].sceneBoundingRect().contains(centre)


# -- clipboard ------------------------------------------------------------------------------------------


def test_copy_paste_and_duplicate_keep_inner_edges(qtbot, view, doc):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    view.select_nodes([a, b])
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_C, Qt.ControlModifier)
    assert QApplication.clipboard().mimeData().hasFormat("application/x-designer-nodes")
    qtbot.keyClick(view, Qt.Key_V, Qt.ControlModifier)
    assert len(doc.graph.nodes) == 4 and len(doc.graph.edges) == 2
    pasted = view.selected_node_ids()
    assert len(pasted) == 2 and not set(pasted) & {a, b}
    qtbot.keyClick(view, Qt.Key_D, Qt.ControlModifier)
    assert len(doc.graph.nodes) == 6 and len(doc.graph.edges) == 3
    _assert_items_match_model(view)
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert set(doc.graph.nodes) == {a, b}
    _assert_items_match_model(view)


def test_paste_of_foreign_text_reports_instead_of_crashing(view, doc):
    messages = []
    view.message.connect(messages.append)
    QApplication.clipboard().setText('{"format": "designer-nodes", "nodes": 5}')
    assert view.paste() == []
    assert messages and "Cannot paste" in messages[0]
    QApplication.clipboard().setText("hello")
    assert view.paste() == []
    assert not doc.graph.nodes


# -- analysis on the canvas -------------------------------------------------------------------------------


def test_problems_show_a_red_outline_and_clear_once_fixed(qtbot, view, doc):
    a, b = _two_nodes(doc)
    out = doc.add_node("Output", (800, 120))
    doc.connect(b, out)
    with qtbot.waitSignal(doc.analysis_updated, timeout=10_000):
        pass
    item = view.canvas_scene.node_items[b]
    assert item.problems, "fc has nothing connected to its input"
    qtbot.mouseMove(view.viewport(), _vp(view, item.sceneBoundingRect().center()))
    assert item.isUnderMouse()
    assert "nothing connected" in item.toolTip()
    assert _outline_has_red(view, item)
    with qtbot.waitSignal(doc.analysis_updated, timeout=10_000):
        doc.connect(a, b)
    assert not item.problems
    assert not _outline_has_red(view, item)
    assert "out_features" not in item.toolTip() and "Linear" in item.toolTip()
    edge_item = view.canvas_scene.edge_items[next(e for e in doc.graph.edges if e.dst == out)]
    assert edge_item.label == "(4,)"
    assert item._shape_text == "(4,)" and item._count_text == "36 params"


def _outline_has_red(view, item: NodeItem) -> bool:
    image = view.grab().toImage()
    rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    y = rect.top() + 3 + 22 + 6  # below the header, above the input port
    red = ERROR_COLOR
    for x in range(rect.left() - 3, rect.left() + 4):
        c = image.pixelColor(x, y)
        if abs(c.red() - red.red()) < 40 and c.green() < 110 and c.blue() < 110:
            return True
    return False


def test_template_opens_with_shapes_on_edges(qtbot):
    doc = Document(load_project(TEMPLATES / "mlp-digits.dnn.json"))
    try:
        v = CanvasView(doc)
        qtbot.addWidget(v)
        with qtbot.waitSignal(doc.analysis_updated, timeout=10_000):
            pass
        labels = {item.label for item in v.canvas_scene.edge_items.values()}
        assert "(64,)" in labels and "?" not in labels
        assert all(not i.problems for i in v.canvas_scene.node_items.values())
    finally:
        doc.close()


# -- view navigation ---------------------------------------------------------------------------------------


def test_wheel_zooms_around_the_cursor(qtbot, view, doc):
    from PySide6.QtGui import QWheelEvent

    cursor = QPointF(700, 300)
    before = view.mapToScene(cursor.toPoint())
    ev = QWheelEvent(cursor, QPointF(view.viewport().mapToGlobal(cursor.toPoint())), QPoint(0, 0),
                     QPoint(0, 240), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)
    assert view.transform().m11() > 1.3
    after = view.mapToScene(cursor.toPoint())
    assert (after - before).manhattanLength() < 2.0


def test_middle_button_pans(qtbot, view):
    vp = view.viewport()
    before = view.mapToScene(QPoint(500, 350))
    qtbot.mousePress(vp, Qt.MiddleButton, pos=QPoint(500, 350))
    qtbot.mouseMove(vp, QPoint(400, 300))
    qtbot.mouseRelease(vp, Qt.MiddleButton, pos=QPoint(400, 300))
    after = view.mapToScene(QPoint(500, 350))
    assert (after - before - QPointF(100, 50)).manhattanLength() < 2.0


def test_fit_to_view_shows_every_node(view, doc):
    ids = [doc.add_node("ReLU", (x, y)) for x, y in [(-400, -100), (500, 200), (0, 0)]]
    view.fit_to_view()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for nid in ids:
        assert visible.contains(view.canvas_scene.node_items[nid].sceneBoundingRect())


def test_fit_never_zooms_out_past_readable_names(view, doc):
    from designer.ui.canvas.items import DETAIL_ZOOM
    from designer.ui.canvas.view import FIT_MIN_ZOOM

    first = doc.add_node("Input", (-2000, -500))
    far = doc.add_node("ReLU", (3000, 900))
    view.fit_to_view()
    assert view.transform().m11() == FIT_MIN_ZOOM > DETAIL_ZOOM  # names and ports drawn
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    # the start of the design shows; the rest is a scroll away
    assert visible.contains(view.canvas_scene.node_items[first].sceneBoundingRect())
    assert not visible.contains(view.canvas_scene.node_items[far].sceneBoundingRect())


def test_auto_layout_then_undo_moves_items(view, doc):
    a, b = _two_nodes(doc)
    doc.connect(a, b)
    doc.move_nodes({b: ((450.0, 120.0), (-300.0, 500.0))})
    view.auto_layout()
    assert doc.graph.nodes[a].pos[0] < doc.graph.nodes[b].pos[0]
    _assert_items_match_model(view)
    doc.undo_stack.undo()
    assert doc.graph.nodes[b].pos == (-300.0, 500.0)
    _assert_items_match_model(view)


def test_switching_network_rebuilds_items(qtbot):
    from designer.engine.document.project import Project
    from designer.engine.model.graph import Graph

    g1, g2 = Graph(), Graph()
    g1.add_node("ReLU", id="r")
    g2.add_node("Tanh", id="t")
    g2.add_node("Sigmoid", id="s")
    doc = Document(Project(networks={"generator": g1, "discriminator": g2}))
    try:
        v = CanvasView(doc)
        qtbot.addWidget(v)
        assert set(v.canvas_scene.node_items) == {"r"}
        doc.set_network("discriminator")
        assert set(v.canvas_scene.node_items) == {"t", "s"}
        assert all(isinstance(i, (NodeItem, EdgeItem)) for i in v.canvas_scene.items()
                   if i.parentItem() is None)
    finally:
        doc.close()


def test_space_drag_pans_and_escape_cancels_a_wire(qtbot, view, doc):
    a, b = _two_nodes(doc)
    vp = view.viewport()
    view.setFocus()
    before = view.mapToScene(QPoint(500, 350))
    qtbot.keyPress(view, Qt.Key_Space)
    _drag(qtbot, view, QPoint(500, 350), QPoint(440, 330))
    qtbot.keyRelease(view, Qt.Key_Space)
    after = view.mapToScene(QPoint(500, 350))
    assert (after - before - QPointF(60, 20)).manhattanLength() < 2.0
    assert not doc.graph.edges and view.selected_node_ids() == []  # panning selects nothing

    items = view.canvas_scene.node_items
    start = _vp(view, items[a].output.scenePos())
    qtbot.mousePress(vp, Qt.LeftButton, pos=start)
    qtbot.mouseMove(vp, _vp(view, items[b].inputs[0].scenePos()))
    assert items[b].inputs[0].highlight == "ok"
    qtbot.keyClick(view, Qt.Key_Escape)
    assert view._wire is None and items[b].inputs[0].highlight is None
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=_vp(view, items[b].inputs[0].scenePos()))
    assert not doc.graph.edges
    assert doc.undo_stack.count() == 2  # the two adds only


def test_dropping_a_wire_on_a_node_body_uses_its_first_free_input(qtbot, view, doc):
    a, b = _two_nodes(doc)
    items = view.canvas_scene.node_items
    start = _vp(view, items[a].output.scenePos())
    body = _vp(view, items[b].sceneBoundingRect().center() + QPointF(20, 0))
    _drag(qtbot, view, start, body)
    assert [(e.src, e.dst, e.dst_port) for e in doc.graph.edges] == [(a, b, 0)]


def test_right_click_selects_the_node_and_offers_its_edit_actions(qtbot, view, doc):
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QContextMenuEvent

    _, b = _two_nodes(doc)
    pos = _vp(view, view.canvas_scene.node_items[b].sceneBoundingRect().center())
    seen = []

    def grab_menu():
        menu = QApplication.activePopupWidget()
        seen.extend(a.text() for a in menu.actions() if a.isEnabled() and a.text())
        menu.close()

    QTimer.singleShot(50, grab_menu)
    view.contextMenuEvent(QContextMenuEvent(QContextMenuEvent.Mouse, pos,
                                            view.viewport().mapToGlobal(pos)))
    assert view.selected_node_ids() == [b]
    assert "Delete" in seen and "Duplicate" in seen and any("Add Layer" in t for t in seen)


def test_dragging_one_of_several_selected_nodes_moves_them_all_in_one_step(qtbot, view, doc):
    a, b = _two_nodes(doc)
    c = doc.add_node("ReLU", (450, 350), name="act")
    view.select_nodes([a, b])
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, Qt.ControlModifier,
                     _vp(view, view.canvas_scene.node_items[c].sceneBoundingRect().center()))
    assert set(view.selected_node_ids()) == {a, b, c}  # Ctrl+click adds to the selection
    before = {nid: doc.graph.nodes[nid].pos for nid in (a, b, c)}
    start = _vp(view, view.canvas_scene.node_items[a].sceneBoundingRect().center() + QPointF(0, -20))
    _drag(qtbot, view, start, start + QPoint(40, 60))
    after = {nid: doc.graph.nodes[nid].pos for nid in (a, b, c)}
    shifts = {(after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in before}
    assert shifts == {(40.0, 60.0)}  # all moved by the same snapped offset
    assert doc.undo_stack.undoText() == "Move 3 layers"
    doc.undo_stack.undo()
    assert {nid: doc.graph.nodes[nid].pos for nid in (a, b, c)} == before
    _assert_items_match_model(view)


def test_port_tooltips_say_what_flows(qtbot, view, doc):
    a, b = _two_nodes(doc)
    with qtbot.waitSignal(doc.analysis_updated, timeout=10_000):
        doc.connect(a, b)
    items = view.canvas_scene.node_items
    assert items[a].output.tooltip_text().startswith("output of 'inp': (8,)")
    assert "receives (8,)" in items[b].inputs[0].tooltip_text()
    assert "Drag away to disconnect" in items[b].inputs[0].tooltip_text()
