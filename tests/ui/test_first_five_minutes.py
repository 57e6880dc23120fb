"""What a newcomer meets first: Train on the toolbar and F5, a fit status that follows the design
and the dataset, a clean training view for a new design, layers that never land on each other,
and the keyboard shortcuts listed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from designer.ui.gallery import blank_project
from designer.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.resize(1400, 900)
    w.show()
    w.open_template()  # the starter (mlp-digits), as at start-up
    qtbot.waitUntil(lambda: w.document.analysis is not None)
    yield w
    w.shutdown()


def _fit_text(window) -> str:
    return window.training.panel.chooser.fit_label.text()


def _wait_fit(qtbot, window, text: str) -> None:
    qtbot.waitUntil(lambda: text in _fit_text(window), timeout=20000)


def test_toolbar_and_run_menu_have_train_stop_and_export(window):
    toolbar = [a.text().replace("&", "") for a in window.toolbar.actions() if a.text()]
    for name in ("New…", "Open…", "Save", "Train", "Pause", "Stop", "Export…"):
        assert name in toolbar
    assert window.act_train.shortcut() == QKeySequence("F5")
    assert window.act_stop.shortcut() == QKeySequence("Shift+F5")
    assert window.act_train.isEnabled() and not window.act_stop.isEnabled()
    menus = {m.title().replace("&", ""): m for m in window.menuBar().findChildren(type(
        window.recent_menu)) if m.title()}
    assert window.act_train in menus["Run"].actions() and window.act_stop in menus["Run"].actions()
    assert window.act_export in menus["File"].actions()


def test_f5_trains_and_shift_f5_stops(qtbot, window):
    panel = window.training.panel
    panel.settings.set_values({"epochs": 50, "batch_size": 2})  # long enough to stop
    panel._on_training_edited()
    window.training.hide()
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key_F5)
    qtbot.waitUntil(lambda: panel.run_state == "running", timeout=5000)
    # Train brings the training view forward, and the actions follow the run
    assert window.training.isVisible()
    assert not window.act_train.isEnabled() and window.act_stop.isEnabled()
    qtbot.waitUntil(lambda: panel.worker is not None and panel.worker.trainer is not None
                    and panel.worker.trainer.batches_done > 0, timeout=30000)
    with qtbot.waitSignal(panel.run_finished, timeout=15000) as ended:
        qtbot.keyClick(window.view, Qt.Key_F5, Qt.ShiftModifier)
    assert ended.args == ["stopped"]
    assert window.act_train.isEnabled() and not window.act_stop.isEnabled()


def test_train_with_an_error_shows_the_training_view_with_the_message(qtbot, window):
    doc = window.document
    fc1 = doc.graph.node_by_name("fc1")
    doc.set_params(fc1.id, {"in_features": 100})  # disagrees with its input (64)
    qtbot.waitUntil(lambda: doc.analysis is not None and not doc.analysis.ok)
    window.training.hide()
    assert window.train() is False
    assert window.training.isVisible()
    assert window.training.panel.message.isVisible()
    assert "fc1" in window.training.panel.message.text()


def test_fit_status_follows_the_design_after_new_and_input_edits(qtbot, window, monkeypatch):
    _wait_fit(qtbot, window, "fit this dataset")  # the starter fits digits (checked unasked)
    # File > New > blank design: its Input takes the digits' shape; only layers are missing
    window.set_project(blank_project(), None)
    qtbot.waitUntil(lambda: window.document.analysis is not None)
    _wait_fit(qtbot, window, "The Input fits this dataset")  # not the starter's verdict
    assert "Whether the Output fits shows once the design has no errors" in _fit_text(window)
    # back to the starter, then break its Input: the status follows the edit
    window.open_template()
    _wait_fit(qtbot, window, "fit this dataset")
    doc = window.document
    image = next(n for n in doc.graph.nodes.values() if n.type == "Input")
    doc.set_params(image.id, {"shape": [1, 28, 28]})
    _wait_fit(qtbot, window, "✖")
    assert "fit this dataset" not in _fit_text(window)
    assert window.training.panel.chooser.fix_button.isVisible()
    doc.undo_stack.undo()
    _wait_fit(qtbot, window, "fit this dataset")


def test_new_design_starts_with_a_clean_training_view(qtbot, window, monkeypatch):
    panel = window.training.panel
    panel.settings.set_values({"epochs": 1})
    panel._on_training_edited()
    with qtbot.waitSignal(panel.run_finished, timeout=60000):
        window.act_train.trigger()
    qtbot.waitUntil(lambda: panel.evaluation.result is not None, timeout=30000)
    panel.show_message("a failure banner from the old design")
    assert panel.plots.curve_points("val_loss") == 1 and panel.log.toPlainText()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Discard)
    window.set_project(blank_project(), None)
    assert panel.plots.curve_points("val_loss") == 0
    assert panel.plots.curve_points("batch_loss") == 0
    assert panel.evaluation.result is None and panel.model is None
    assert panel.log.toPlainText() == ""
    assert not panel.message.isVisible()
    assert panel.progress_label.text() == "Ready." and panel.progress.value() == 0
    assert not panel.evaluation.try_it.image_button.isEnabled()


def test_new_while_training_asks_to_stop_first(qtbot, window, monkeypatch):
    panel = window.training.panel
    panel.settings.set_values({"epochs": 50, "batch_size": 2})
    panel._on_training_edited()
    window.act_train.trigger()
    qtbot.waitUntil(lambda: panel.run_state == "running")
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.Cancel)
    assert window.maybe_save("starting a new design") is False
    assert panel.run_state == "running" and "Stop it" in asked[0]
    answers = [QMessageBox.Yes, QMessageBox.Discard]  # stop the run; discard the edits
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    assert window.maybe_save("starting a new design") is True
    assert panel.run_state == "idle"


def test_palette_double_click_twice_never_stacks_layers(window):
    before = set(window.document.graph.nodes)
    a = window.add_layer_at_center("Dropout")
    b = window.add_layer_at_center("Dropout")
    c = window.view.add_layer_at("ReLU", window.view.canvas_scene.node_items[a]
                                 .sceneBoundingRect().topRight())  # Tab over a's output port
    assert {a, b, c} == set(window.document.graph.nodes) - before
    items = window.view.canvas_scene.node_items
    rects = {nid: items[nid].sceneBoundingRect() for nid in window.document.graph.nodes}
    for nid in (a, b, c):
        for other, r in rects.items():
            if other != nid:
                assert not rects[nid].adjusted(-10, -10, 10, 10).intersects(r), (nid, other)


def test_status_bar_shows_training_memory_and_follows_the_batch_size(qtbot, window):
    label = window.status_memory
    qtbot.waitUntil(lambda: label.text().startswith("Training memory: ~"))
    before = label.text()
    panel = window.training.panel
    panel.settings.set_values({"batch_size": 4096})
    panel._on_training_edited()
    qtbot.waitUntil(lambda: label.text() != before)
    assert "batch 4096" in label.toolTip()


def test_keyboard_shortcuts_are_listed_from_the_actions(qtbot, window):
    rows = dict(window.shortcut_rows())
    assert rows["F5"] == "Train" and rows["Shift+F5"] == "Stop"
    assert rows["Ctrl+E"] == "Export" and rows["F1"] == "Keyboard Shortcuts"
    assert "Tab" in rows and "Quick add" in rows["Tab"]
    from designer.ui.shortcuts import ShortcutsDialog

    dialog = ShortcutsDialog(window.shortcut_rows(), window)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(window.shortcut_rows())


def test_log_follows_new_lines_unless_scrolled_up(window):
    panel = window.training.panel
    panel.resize(1200, 600)
    for i in range(300):
        panel.append_log(f"line {i}")
    bar = panel.log.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()
    bar.setValue(0)  # the user scrolls up to read
    panel.append_log("one more")
    assert bar.value() == 0


def test_a_run_that_fails_before_starting_names_no_run_folder(qtbot, window, tmp_path):
    panel = window.training.panel
    panel.chooser.set_config({"kind": "csv", "path": str(tmp_path / "missing.csv"),
                              "target_column": "y"}, tmp_path)
    panel._on_dataset_edited()
    with qtbot.waitSignal(panel.run_finished, timeout=30000) as ended:
        assert panel.train()
    assert ended.args == ["failed"]
    log = panel.log.toPlainText()
    assert "missing.csv" in log and "run folder" not in log
    assert panel.run_dir is not None and not panel.run_dir.exists()


def test_cancel_at_the_save_question_leaves_the_run_going(qtbot, window, monkeypatch):
    panel = window.training.panel
    panel.settings.set_values({"epochs": 50, "batch_size": 2})
    panel._on_training_edited()  # an unsaved edit
    window.act_train.trigger()
    qtbot.waitUntil(lambda: panel.run_state == "running")
    answers = [QMessageBox.Yes, QMessageBox.Cancel]  # stop the run; then cancel at "save?"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    assert window.maybe_save("opening another file") is False
    assert not answers and panel.run_state == "running"


def test_a_run_that_does_not_stop_in_time_stays_out_of_the_next_design(qtbot, window,
                                                                        monkeypatch):
    import time as _time

    from designer.engine.train import data

    real = data.load_dataset

    def slow(*args, **kwargs):  # a download: it checks no stop flag
        _time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "load_dataset", slow)
    panel = window.training.panel
    panel.chooser.set_config({"kind": "synthetic", "name": "moons"})  # not loaded yet
    panel._on_dataset_edited()
    assert panel.train()
    old = panel.worker
    panel.stop_and_wait(timeout_ms=100)  # gives up waiting: the load goes on
    assert panel.run_state == "idle" and old.isRunning()
    panel.reset_view()
    qtbot.waitUntil(lambda: not old.isRunning(), timeout=20000)
    qtbot.wait(100)  # its queued events and finished arrive now
    assert panel.progress_label.text() == "Ready." and panel.log.toPlainText() == ""
    assert panel.run_state == "idle"


def test_f5_and_ctrl_s_use_the_number_just_typed_into_a_field(qtbot, window, tmp_path):
    """Type 1 into Epochs and press F5 without Enter: the run trains 1 epoch (it trained the old
    10 while the field showed 1, as F5 leaves the focus where it is); Ctrl+S saves it too."""
    panel = window.training.panel
    window.training.show()
    window.activateWindow()
    spin = panel.settings.editor("epochs")
    assert spin.value() != 1
    qtbot.mouseClick(spin.lineEdit(), Qt.LeftButton)
    qtbot.waitUntil(spin.hasFocus)
    spin.selectAll()
    qtbot.keyClicks(spin, "1")
    assert window.document.project.training.get("epochs") != 1  # not committed yet
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as ended:
        qtbot.keyClick(spin, Qt.Key_F5)
    assert ended.args == ["finished"]
    assert "(1 epochs," in panel.log.toPlainText()
    assert window.document.project.training["epochs"] == 1

    qtbot.keyClicks(spin, "\b2")  # 2, again not confirmed, then Ctrl+S
    window.document.path = tmp_path / "p.dnn.json"
    qtbot.keyClick(spin, Qt.Key_S, Qt.ControlModifier)
    from designer.engine.document.project import load_project

    assert load_project(tmp_path / "p.dnn.json").training["epochs"] == 2
