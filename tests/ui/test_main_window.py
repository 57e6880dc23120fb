"""The designer window: palette -> canvas, problems, status bar, files, prompts, layout memory."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QLineF, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from designer.engine.document.project import Project, load_project, save_project
from designer.engine.document.templates import template_path
from designer.engine.model.graph import Graph
from designer.ui.canvas.items import NODE_WIDTH
from designer.ui.main_window import MainWindow


class Dialogs:
    """Stands in for QMessageBox's static dialogs: records them and gives preset answers."""

    def __init__(self, monkeypatch):
        self.shown: list[tuple[str, str, str]] = []
        self.answers: list = []
        for kind in ("question", "warning", "critical", "information"):
            monkeypatch.setattr(QMessageBox, kind, self._make(kind))

    def _make(self, kind):
        def show(parent, title, text, *args, **kwargs):
            self.shown.append((kind, title, text))
            if kind == "question":
                if not self.answers:
                    raise AssertionError(f"unexpected question: {title}: {text}")
                return self.answers.pop(0)
            return QMessageBox.Ok
        return staticmethod(show)


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


def _settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs):
    windows = []

    def make() -> MainWindow:
        w = MainWindow(_settings(tmp_path), recovery_dir=tmp_path / "recovery")
        # pytest-qt closes its widgets before fixtures end: shut down first (no close prompt).
        qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()


@pytest.fixture
def window(make_window):
    return make_window()


def _wait_analysis(qtbot, w, check=lambda a: True, timeout=20000):
    qtbot.waitUntil(lambda: w.document.analysis is not None and check(w.document.analysis),
                    timeout=timeout)
    return w.document.analysis


def _node(w, name):
    return w.document.graph.node_by_name(name)


def _starter(qtbot, w):
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)


# -- palette -> canvas ---------------------------------------------------------------------------


def test_double_click_in_palette_adds_layer_at_view_centre(qtbot, window):
    _starter(qtbot, window)
    tree = window.palette.tree
    item = window.palette.item_for("Dropout")
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    before = set(window.document.graph.nodes)
    # A real double-click is press, release, then a double-click event (QTest sends only the last).
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.mouseDClick(tree.viewport(), Qt.LeftButton, pos=rect.center())
    added = set(window.document.graph.nodes) - before
    assert len(added) == 1
    node = window.document.graph.nodes[added.pop()]
    assert node.type == "Dropout"
    view = window.view
    centre = view.mapToScene(view.viewport().rect().center())
    item_rect = view.canvas_scene.node_items[node.id].sceneBoundingRect()
    # at the centre, or (a layer is there) at the nearest free spot: near it, overlapping none
    assert QLineF(item_rect.center(), centre).length() < 400
    others = [i.sceneBoundingRect() for nid, i in view.canvas_scene.node_items.items()
              if nid != node.id]
    assert not any(item_rect.intersects(o) for o in others)
    assert view.selected_node_ids() == [node.id]
    assert window.inspector.node_id == node.id
    assert window.act_undo.text() == f"&Undo Add Dropout '{node.name}'"
    window.act_undo.trigger()
    assert node.id not in window.document.graph.nodes


def _free_point(view) -> QPoint:
    """A point of the viewport where a dropped layer overlaps no other."""
    vr = view.viewport().rect()
    for y in range(vr.height() - 60, 60, -20):
        for x in range(vr.width() // 2, vr.width() - 100, 20):
            s = view.mapToScene(QPoint(x, y))
            tl = view.canvas_scene.snap(QPointF(s.x() - NODE_WIDTH / 2, s.y() - 40))
            if view.canvas_scene.free_spot(tl) == tl:
                return QPoint(x, y)
    raise AssertionError("no free spot in the view")


def test_drop_from_palette_adds_layer_where_dropped(qtbot, window):
    _starter(qtbot, window)
    tree = window.palette.tree
    mime = tree.mimeData([window.palette.item_for("Conv2d")])
    assert mime.hasFormat("application/x-designer-layer")
    view = window.view
    at = _free_point(view)
    before = set(window.document.graph.nodes)
    # What Qt delivers during a real drag: enter, move, drop (a drop alone has no target).
    enter = QDragEnterEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), move)
    assert move.isAccepted()
    drop = QDropEvent(QPointF(at), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), drop)
    added = set(window.document.graph.nodes) - before
    assert len(added) == 1
    nid = added.pop()
    assert window.document.graph.nodes[nid].type == "Conv2d"
    rect = view.canvas_scene.node_items[nid].sceneBoundingRect()
    assert rect.adjusted(-30, -30, 30, 30).contains(view.mapToScene(at))
    window.document.undo_stack.undo()
    assert nid not in window.document.graph.nodes


# -- analysis views ----------------------------------------------------------------------------


def test_status_bar_and_summary_show_totals(qtbot, window):
    _starter(qtbot, window)
    qtbot.waitUntil(lambda: window.status_params.text() == "Parameters: 4,810")
    assert window.status_valid.text() == "✔ valid"
    assert window.status_size.text() == "Size: 0.02 MB"
    assert window.status_macs.text().startswith("MACs: 4.")
    assert window.summary.row_texts() == []  # hidden behind Problems: not filled in yet
    window.summary.raise_()
    qtbot.waitUntil(lambda: len(window.summary.row_texts()) == 6)
    rows = window.summary.row_texts()
    assert [r[1] for r in rows] == ["Input", "Flatten", "Linear", "ReLU", "Linear", "Output"]
    assert rows[1][2] == "(N, 64)"
    assert rows[2][3] == "4,160"
    assert "4,810" in window.summary.totals.text()


def test_bad_graph_shows_problems_and_clears_them_once_fixed(qtbot, window):
    _starter(qtbot, window)
    fc1 = _node(window, "fc1")
    window.document.set_params(fc1.id, {"in_features": 100})
    _wait_analysis(qtbot, window, lambda a: not a.ok)
    assert window.problems.error_count == 1
    [message] = window.problems.messages()
    assert "fc1" in message and "100" in message
    assert window.status_valid.text() == "✖ 1 error"
    assert window.problems.windowTitle() == "Problems (1)"
    window.document.set_params(fc1.id, {"in_features": None})  # the fix
    _wait_analysis(qtbot, window, lambda a: a.ok)
    assert window.problems.error_count == 0 and window.problems.messages() == []
    assert window.status_valid.text() == "✔ valid"
    window.document.undo_stack.undo()  # undoing the fix brings the problem back
    _wait_analysis(qtbot, window, lambda a: not a.ok)
    assert window.problems.error_count == 1


def test_clicking_a_problem_selects_and_centres_its_node(qtbot, window):
    _starter(qtbot, window)
    relu = _node(window, "relu1")
    window.document.remove_nodes([relu.id])  # fc2 now has nothing connected
    _wait_analysis(qtbot, window, lambda a: not a.ok)
    fc2 = _node(window, "fc2")
    tree = window.problems.tree
    index = next(i for i in range(tree.topLevelItemCount())
                 if "fc2" in tree.topLevelItem(i).text(0))
    item = tree.topLevelItem(index)
    window.view.scale(2, 2)
    window.view.centerOn(-2000, -2000)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=tree.visualItemRect(item).center())
    assert window.view.selected_node_ids() == [fc2.id]
    assert window.inspector.node_id == fc2.id
    view = window.view
    node_centre = view.canvas_scene.node_items[fc2.id].sceneBoundingRect().center()
    view_centre = view.mapToScene(view.viewport().rect().center())
    assert abs(node_centre.x() - view_centre.x()) < 5 and abs(node_centre.y() - view_centre.y()) < 5


def test_network_tabs_switch_the_edited_network(qtbot, window):
    gen, disc = Graph(), Graph()
    gen.add_node("Input", "noise", {"shape": [16]})
    disc.add_node("Input", "image", {"shape": [1, 8, 8]})
    disc.add_node("Flatten", "flat")
    window.set_project(Project(name="gan", networks={"generator": gen, "discriminator": disc}),
                       None)
    tabs = window.network_tabs
    assert tabs.isVisible() and [tabs.tabText(i) for i in range(tabs.count())] == [
        "generator", "discriminator"]
    tabs.setCurrentIndex(1)
    assert window.document.network == "discriminator"
    assert {n.name for n in window.document.graph.nodes.values()} == {"image", "flat"}
    assert set(window.view.canvas_scene.node_items) == set(disc.nodes)
    _starter(qtbot, window)
    assert not tabs.isVisible()


# -- files ---------------------------------------------------------------------------------------


def test_a_new_design_saved_as_a_file_exports_a_model_class_of_that_name(
        qtbot, window, tmp_path, monkeypatch):
    from designer.engine.interop.codegen import model_source
    from designer.ui.gallery import blank_project

    window.set_project(blank_project(), None)  # File > New > Blank design
    assert window.document.project.name == "Untitled"
    doc = window.document
    inp, out = (doc.graph.node_by_name(n).id for n in ("input1", "output1"))
    doc.connect(inp, out)  # the simplest model: the input as it is
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "digit-net"), "")))
    window.act_save.trigger()
    assert window.document.path == tmp_path / "digit-net.dnn.json"
    assert not window.isWindowModified()
    assert load_project(window.document.path).name == "digit-net"
    assert "class DigitNet(nn.Module):" in model_source(window.document.project)
    window.document.set_project_name("Mine")  # a name the user gave stays on the next Save As
    window.save_to(tmp_path / "other.dnn.json")
    assert load_project(tmp_path / "other.dnn.json").name == "Mine"


def test_save_and_reopen_gives_the_same_graph(qtbot, window, make_window, tmp_path, monkeypatch):
    _starter(qtbot, window)
    doc = window.document
    assert window.windowTitle().startswith("MLP on digits")
    window.add_layer_at_center("Dropout")
    assert window.isWindowModified()
    target = tmp_path / "mine"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    assert window.act_save.trigger() is None
    saved = tmp_path / "mine.dnn.json"
    assert saved.exists() and doc.path == saved
    assert not window.isWindowModified()
    assert window.windowTitle() == "mine.dnn.json[*] — Designer"
    assert load_project(saved).graph.to_dict() == doc.graph.to_dict()

    other = make_window()
    assert other.open_path(saved)
    assert other.document.graph.to_dict() == doc.graph.to_dict()
    assert other.document.path == saved and not other.document.is_modified()
    assert other.recent.paths()[0] == saved.resolve()
    other.recent_menu.aboutToShow.emit()
    assert other.recent_menu.actions()[0].text() == "mine.dnn.json"


def test_unsaved_changes_prompt(qtbot, window, dialogs, tmp_path, monkeypatch):
    _starter(qtbot, window)
    other = tmp_path / "other.dnn.json"
    g = Graph()
    g.add_node("Input", "inp")
    save_project(Project(name="other", networks={"model": g}), other)
    window.add_layer_at_center("ReLU")
    before = window.document.graph.to_dict()

    dialogs.answers = [QMessageBox.Cancel]
    assert not window.open_path(other)
    assert window.document.graph.to_dict() == before
    assert dialogs.shown[-1][1] == "Unsaved changes"

    dialogs.answers = [QMessageBox.Cancel]
    assert not window.close()  # closing asks too; Cancel keeps the window
    assert window.isVisible()

    dialogs.answers = [QMessageBox.Save]  # Save, then the Save As dialog is cancelled: stay
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    assert not window.open_path(other)
    assert window.document.graph.to_dict() == before

    dialogs.answers = [QMessageBox.Discard]
    assert window.open_path(other)
    assert [n.name for n in window.document.graph.nodes.values()] == ["inp"]
    assert not window.isWindowModified()
    asked = len(dialogs.shown)
    assert window.open_path(other)  # nothing unsaved: no question
    assert len(dialogs.shown) == asked

    window.add_layer_at_center("ReLU")
    dialogs.answers = [QMessageBox.Save]
    assert window.close()
    assert [n.type for n in load_project(other).graph.nodes.values()] == ["Input", "ReLU"]


def test_load_error_shows_a_message_and_keeps_the_design(qtbot, window, dialogs, tmp_path):
    _starter(qtbot, window)
    before = window.document.graph.to_dict()
    bad = tmp_path / "bad.dnn.json"
    bad.write_text('{"format_version": 1, "networks": [{"nodes": [{"id": "a", "type": "Nope", '
                   '"name": "n"}]}]}')
    assert not window.open_path(bad)
    kind, _title, text = dialogs.shown[-1]
    assert kind == "critical" and "Nope" in text and "nodes[0].type" in text
    assert window.document.graph.to_dict() == before
    assert window.document.path is None


def test_template_file_opens_as_a_new_design(qtbot, window):
    assert window.open_path(template_path("lenet5"))
    assert window.document.path is None  # Save must not overwrite the template
    assert window.windowTitle().startswith("LeNet-5")


def test_new_from_gallery(qtbot, window, monkeypatch):
    from designer.ui.gallery import NewDialog

    def fake_exec(dialog):
        dialog.select("cnn-mnist")
        return NewDialog.Accepted

    monkeypatch.setattr(NewDialog, "exec", fake_exec)
    assert window.new_file()
    assert window.document.project.name == "CNN on MNIST"
    assert window.document.path is None and not window.document.is_modified()


def test_geometry_and_dock_layout_are_remembered(qtbot, make_window, tmp_path):
    w = make_window()
    w.resize(780, 590)  # the offscreen screen is 800x600: restoreGeometry keeps windows on it
    w.summary.hide()
    w.shutdown()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    assert settings.value("window/state") is not None
    again = make_window()
    assert (again.size().width(), again.size().height()) == (780, 590)
    assert not again.summary.isVisible()
    assert again.palette.isVisible()


def test_keyboard_shortcuts(qtbot, window):
    _starter(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    view = window.view
    view.setFocus()
    fc2 = _node(window, "fc2")
    view.select_nodes([fc2.id])
    n = len(window.document.graph.nodes)
    qtbot.keyClick(view, Qt.Key_D, Qt.ControlModifier)
    assert len(window.document.graph.nodes) == n + 1
    qtbot.keyClick(view, Qt.Key_Delete)
    assert len(window.document.graph.nodes) == n
    qtbot.keyClick(view, Qt.Key_Z, Qt.ControlModifier)
    assert len(window.document.graph.nodes) == n + 1
    qtbot.keyClick(view, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert len(window.document.graph.nodes) == n
    qtbot.keyClick(view, Qt.Key_Z, Qt.ControlModifier)
    qtbot.keyClick(view, Qt.Key_Y, Qt.ControlModifier)
    assert len(window.document.graph.nodes) == n
    # Typing in a text field never edits the design.
    window.palette.search.setFocus()
    qtbot.keyClicks(window.palette.search, "f")
    qtbot.keyClick(window.palette.search, Qt.Key_Backspace)
    assert len(window.document.graph.nodes) == n


# -- designer [FILE] -----------------------------------------------------------------------------


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """Point the default QSettings and the recovery folder into tmp_path (never the user's)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for scope in (QSettings.UserScope, QSettings.SystemScope):
        QSettings.setPath(QSettings.NativeFormat, scope, str(tmp_path / "config"))
        QSettings.setPath(QSettings.IniFormat, scope, str(tmp_path / "config"))
    return tmp_path


def _run_app_and_capture(monkeypatch, path):
    """Run ``run_app`` with an event loop that returns at once; report what the window showed."""
    from designer.ui import app as app_module

    seen = {}

    def fake_exec(self=None):
        [w] = [w for w in QApplication.topLevelWidgets()
               if isinstance(w, MainWindow) and w.isVisible()]
        seen.update(project=w.document.project.name, path=w.document.path,
                    recovery=str(w.autosave.directory), settings=w.settings.fileName())
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app_module.run_app(path) == 0
    return seen


def test_run_app_opens_the_starter_template(qtbot, user_dirs, monkeypatch, dialogs):
    seen = _run_app_and_capture(monkeypatch, None)
    assert seen["project"].startswith("MLP on digits") and seen["path"] is None
    assert seen["recovery"].startswith(str(user_dirs))
    assert seen["settings"].startswith(str(user_dirs))


def test_run_app_opens_the_given_file(qtbot, user_dirs, monkeypatch, dialogs, tmp_path):
    g = Graph()
    g.add_node("Input", "inp")
    target = tmp_path / "given.dnn.json"
    save_project(Project(name="given", networks={"model": g}), target)
    seen = _run_app_and_capture(monkeypatch, str(target))
    assert seen["project"] == "given" and seen["path"] == target


def test_run_app_with_a_bad_file_says_so_and_opens_the_starter(qtbot, user_dirs, monkeypatch,
                                                               dialogs, tmp_path):
    seen = _run_app_and_capture(monkeypatch, str(tmp_path / "missing.dnn.json"))
    assert dialogs.shown[-1][0] == "critical" and "no such file" in dialogs.shown[-1][2]
    assert seen["project"].startswith("MLP on digits")


def test_file_and_view_shortcuts(qtbot, window, monkeypatch, tmp_path):
    from designer.ui.gallery import NewDialog

    _starter(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    view = window.view
    view.setFocus()
    calls = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "k.dnn.json"), "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: calls.append("open") or ("", "")))
    monkeypatch.setattr(NewDialog, "exec", lambda self: calls.append("new") or 0)
    qtbot.keyClick(view, Qt.Key_S, Qt.ControlModifier)
    assert (tmp_path / "k.dnn.json").exists() and window.document.path == tmp_path / "k.dnn.json"
    qtbot.keyClick(view, Qt.Key_O, Qt.ControlModifier)
    qtbot.keyClick(view, Qt.Key_N, Qt.ControlModifier)
    assert calls == ["open", "new"]
    view.resetTransform()
    view.scale(3, 3)
    qtbot.keyClick(view, Qt.Key_F)
    assert view.transform().m11() < 3


def test_snap_to_grid_is_a_remembered_view_option(qtbot, make_window):
    w = make_window()
    assert w.act_snap.isChecked() and w.view.canvas_scene.snap_to_grid
    w.act_snap.trigger()
    assert not w.view.canvas_scene.snap_to_grid
    w.shutdown()
    again = make_window()
    assert not again.act_snap.isChecked() and not again.view.canvas_scene.snap_to_grid


def test_first_fit_follows_the_window_layout_until_the_user_zooms(make_window, qtbot):
    """The start-up fit ran before the docks were laid out (on a viewport of the wrong size):
    the starter network showed at ~0.36x, below the zoom where layer names are drawn."""
    from designer.ui.canvas.items import DETAIL_ZOOM

    w = make_window()
    w.open_template()
    qtbot.wait(100)  # the deferred fit and dock sizing
    assert w.view.transform().m11() >= DETAIL_ZOOM
    w.view.zoom_by(0.5)
    zoomed = w.view.transform().m11()
    w.resize(w.width() - 100, w.height() - 50)
    qtbot.wait(50)
    assert w.view.transform().m11() == pytest.approx(zoomed)  # the user's zoom is kept


def test_a_resize_after_an_edit_keeps_the_canvas_still(make_window, qtbot):
    """The refit on resize ends with the first edit: a dock growing while the user builds the
    network (the inspector filling, Train enlarging the training dock) must not move the canvas."""
    w = make_window()
    w.open_template()
    qtbot.wait(100)
    w.document.add_node("ReLU", (3000.0, 2000.0))
    before = w.view.transform().m11()
    w.resize(w.width() - 100, w.height() - 50)
    qtbot.wait(50)
    assert w.view.transform().m11() == pytest.approx(before)
