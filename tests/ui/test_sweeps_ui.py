"""Sweeps in the window (issue 15): marking values "search" in the training settings and the
inspector (one undo step each), a small sweep on digits from the Sweeps view (table, best,
plots, History), Stop within a batch, and "Apply best" undone exactly by one undo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from designer.engine.document.project import load_project
from designer.engine.search.runner import BestTrial, apply_best
from designer.engine.search.space import search_space
from designer.ui.document import Document
from designer.ui.inspector import InspectorDock
from designer.ui.sweeps.marking import default_dimension, summary
from designer.ui.sweeps.view import SweepsPanel
from designer.ui.training.history import HistoryPanel
from designer.ui.training.panel import TrainingPanel

TEMPLATE = Path(__file__).resolve().parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"
LR = {"setting": "lr"}


@pytest.fixture
def doc(tmp_path):
    path = tmp_path / "digits.dnn.json"
    shutil.copy(TEMPLATE, path)
    d = Document(load_project(path), path)
    yield d
    d.close()


def state(doc) -> str:
    return json.dumps(doc.project.to_dict(), sort_keys=True)


def node_id(doc, name: str) -> str:
    return doc.graph.node_by_name(name).id


def test_mark_lr_in_the_training_settings(qtbot, doc):
    panel = TrainingPanel(doc)
    qtbot.addWidget(panel)
    panel.settings.enable_search(doc)
    button = panel.settings.search_buttons["lr"]
    assert "device" not in panel.settings.search_buttons  # not searchable
    assert "init_weights_min_fit" not in panel.settings.search_buttons  # a check, not training
    before = state(doc)
    qtbot.mouseClick(button, Qt.LeftButton)  # the button part: mark with a default range
    dim = doc.search_dimension(LR)
    assert dim == {"target": LR, "type": "float", "low": 0.001, "high": 0.1, "log": True}
    assert button.isChecked() and button.text() == "⚲ 1e-3..0.1"
    assert "1e-3..0.1 log" in button.toolTip()
    assert doc.undo_stack.count() == 1 and doc.undo_stack.undoText() == "Search lr"
    # edit the range in the dialog: one more step
    dialog = button.edit_range()
    dialog.low.setText("0.0001")
    dialog.high.setText("0.1")
    dialog.accept()
    assert doc.search_dimension(LR)["low"] == 0.0001
    assert doc.undo_stack.count() == 2
    # a range the setting refuses keeps the dialog open with the engine's message
    dialog = button.edit_range()
    dialog.low.setText("0")
    dialog.accept()
    assert dialog.message.isVisible() or not dialog.message.isHidden()
    assert "log range starts above 0" in dialog.message.text()
    dialog.reject()
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    assert doc.search_dimension(LR)["low"] == 0.001
    doc.undo_stack.undo()
    assert state(doc) == before and not button.isChecked() and button.text() == "⚲"
    doc.undo_stack.redo()
    assert button.isChecked() and doc.search_dimension(LR)["low"] == 0.001
    panel.shutdown()


def test_mark_out_features_in_the_inspector_and_the_canvas_tag(qtbot, doc):
    from designer.ui.canvas.view import CanvasView
    from designer.ui.sweeps.tags import SearchTags

    dock = InspectorDock(doc)
    qtbot.addWidget(dock)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    tags = SearchTags(doc, view)
    fc1 = node_id(doc, "fc1")
    dock.set_node(fc1)
    assert "in_features" not in dock.search_buttons  # inferred sizes are not searched
    button = dock.search_buttons["out_features"]
    before = state(doc)
    qtbot.mouseClick(button, Qt.LeftButton)
    target = {"network": "model", "node": "fc1", "param": "out_features"}
    # fc1 has 64 units: from half to twice, as the README says
    assert doc.search_dimension(target) == {"target": target, "type": "int", "low": 32,
                                            "high": 128, "step": 16}
    qtbot.waitUntil(lambda: fc1 in tags.tags)
    assert tags.tags[fc1].text() == "⚲ out_features 32..128 /16"
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert state(doc) == before and not dock.search_buttons["out_features"].isChecked()
    qtbot.waitUntil(lambda: fc1 not in tags.tags)
    doc.undo_stack.redo()
    assert dock.search_buttons["out_features"].isChecked()
    # a rename keeps the button working on the new name (the target is read when clicked)
    qtbot.mouseClick(dock.search_buttons["out_features"], Qt.LeftButton)  # stop searching
    assert not doc.project.search
    assert doc.undo_stack.undoText() == "Stop searching fc1.out_features"


def test_default_ranges():
    from designer.engine.train.config import TRAINING_SETTINGS

    decl = {s.key: s for s in TRAINING_SETTINGS}
    assert default_dimension(decl["lr"], 0.01) == {"type": "float", "low": 0.001, "high": 0.1,
                                                   "log": True}
    assert default_dimension(decl["optimizer"], "adam")["choices"][0] == "adam" or \
        "adam" in default_dimension(decl["optimizer"], "adam")["choices"]
    assert default_dimension(decl["batch_size"], 32) == {"type": "int", "low": 16, "high": 64,
                                                         "step": 8}
    # half to twice (not 4..32 for 16)
    assert default_dimension(decl["batch_size"], 16) == {"type": "int", "low": 8, "high": 32,
                                                         "step": 4}
    assert default_dimension(decl["epochs"], 10) == {"type": "int", "low": 5, "high": 20,
                                                     "step": 1}
    assert summary({"type": "choice", "choices": [64, 128]}) == "{64, 128}"


@pytest.fixture
def sweeps(qtbot, doc):
    panel = SweepsPanel(doc)
    qtbot.addWidget(panel)
    panel.resize(1300, 500)
    panel.show()
    yield panel
    panel.shutdown()


def _search(doc, trials: int, epochs: int = 1) -> None:
    doc.project.set_section("training", {**doc.project.training, "epochs": epochs})
    doc.set_dimension(LR, {"type": "float", "low": 0.001, "high": 0.05, "log": True})
    doc.set_search({**doc.project.search, "trials": trials, "pruner": "none"})


def test_a_small_sweep_from_the_view_then_apply_best(qtbot, doc, sweeps, tmp_path):
    assert not sweeps.start_button.isEnabled()  # nothing is searched yet
    _search(doc, trials=3)
    assert sweeps.start_button.isEnabled()
    assert sweeps.trials_spin.value() == 3 and sweeps.pruner.currentText() == "none"
    # the view's settings are the search section's: one undo step each
    sweeps.sampler.setCurrentText("random")
    sweeps.sampler.activated.emit(sweeps.sampler.currentIndex())
    assert doc.project.search["sampler"] == "random"
    assert doc.undo_stack.undoText() == "Change the sweep settings"
    with qtbot.waitSignal(sweeps.sweep_finished, timeout=180000) as blocker:
        assert sweeps.start()
        assert sweeps.stop_button.isEnabled() and not sweeps.start_button.isEnabled()
    assert blocker.args == ["done"]
    assert sweeps.table.rowCount() == 3
    states = [sweeps.table.item(r, 1).text() for r in range(3)]
    assert states == ["complete"] * 3
    assert all(sweeps.table.item(r, 3).text().startswith("lr=") for r in range(3))
    best = sweeps.best
    assert best is not None and sweeps.best_label.text().startswith(
        f"Best: trial {best.number}, val_loss {best.value:.4f}")
    assert sweeps.plots.objective.points == 3 and sweeps.plots.parallel.lines == 3
    assert sweeps.importance_label.text().startswith("Importance: lr")
    # every trial is an ordinary run in History, whose curves overlay
    history = HistoryPanel()
    qtbot.addWidget(history)
    history.set_root(tmp_path / "runs" / "digits")
    assert len(history.runs) == 3
    overlays = []
    history.overlay_changed.connect(overlays.append)
    history.select([0, 1])
    assert len(overlays[-1]) == 2 and all(c.val_loss for c in overlays[-1])
    config = json.loads((Path(best.run_dir) / "config.json").read_text())
    assert config["sweep"]["trial"] == best.number
    # Apply best: one undo step, undone exactly
    before = state(doc)
    count = doc.undo_stack.count()
    assert sweeps.apply_button.isEnabled()
    sweeps.apply_button.click()
    assert doc.project.training["lr"] == best.params["lr"] != 0.01
    assert doc.undo_stack.count() == count + 1
    doc.undo_stack.undo()
    assert state(doc) == before
    doc.undo_stack.redo()
    assert doc.project.training["lr"] == best.params["lr"]


def test_apply_best_changes_layer_params_in_one_step(qtbot, doc):
    doc.set_dimension({"network": "model", "node": "fc1", "param": "out_features"},
                      {"type": "int", "low": 16, "high": 128, "step": 16})
    doc.set_dimension(LR, {"type": "float", "low": 0.001, "high": 0.05, "log": True})
    before = state(doc)
    best = BestTrial(0, 0.3, {"lr": 0.002, "model.fc1.out_features": 32}, None)
    changes = apply_best(doc.project, best)
    doc.apply_search_values(changes)
    assert doc.project.training["lr"] == 0.002
    assert doc.graph.node_by_name("fc1").params["out_features"] == 32
    doc.undo_stack.undo()
    assert state(doc) == before


def test_stop_stops_the_sweep_within_a_batch(qtbot, doc, sweeps):
    _search(doc, trials=3, epochs=200)
    assert sweeps.start()
    qtbot.waitUntil(lambda: any(t["state"] == "running" and t["progress"].startswith("epoch")
                                for t in sweeps.trials.values()), timeout=60000)
    with qtbot.waitSignal(sweeps.sweep_finished, timeout=10000) as blocker:
        sweeps.stop_button.click()
    assert blocker.args == ["stopped"]
    assert len(sweeps.trials) == 1
    t = sweeps.trials[0]
    assert t["state"] == "failed" and "stopped" in t["message"]
    assert "stopped" in sweeps.table.item(0, 3).text()


def test_renaming_a_searched_layer_keeps_its_search_and_deleting_it_loses_nothing(qtbot):
    """Rename fc1: the search follows, one undo step puts both back. Delete it: the project
    still saves and loads (nothing lost), and the Problems say what to fix."""
    from designer.engine.document.project import project_from_json, project_to_json
    from designer.engine.document.templates import load_template
    from designer.engine.search.space import search_problems
    from designer.ui.document import Document

    doc = Document(load_template("mlp-digits"))
    try:
        target = {"network": "model", "node": "fc1", "param": "out_features"}
        doc.project.set_search({"pruner": "none", "dimensions": [
            {"target": dict(target), "type": "int", "low": 16, "high": 128, "step": 16}]})
        before = project_to_json(doc.project)
        fc1 = doc.graph.node_by_name("fc1").id
        doc.rename(fc1, "hidden")
        assert doc.project.search["dimensions"][0]["target"]["node"] == "hidden"
        assert search_problems(doc.project) == []
        doc.undo_stack.undo()
        assert project_to_json(doc.project) == before
        doc.remove_nodes([fc1])
        again = project_from_json(project_to_json(doc.project))  # loads: nothing is lost
        assert again.search == doc.project.search
        (problem,) = search_problems(again)
        assert "has no layer named" in problem.message and "fc1" in problem.message
    finally:
        doc.close()


def test_the_window_marks_half_to_twice_and_shows_the_pruners_waits(qtbot, tmp_path):
    """In the window: the ⚲ beside fc1's width marks 32..128 (half to twice its 64, as the
    README says); the Sweeps dock (View menu) shows when the pruner may start (after 3 complete
    trials, from epoch 3), each wait one undo step, and greys them out without a pruner."""
    from PySide6.QtCore import QSettings

    from designer.ui.main_window import MainWindow

    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.show()
    try:
        assert w.open_template()
        doc = w.document
        w.view.select_nodes([node_id(doc, "fc1")])
        qtbot.mouseClick(w.inspector.search_buttons["out_features"], Qt.LeftButton)
        target = {"network": "model", "node": "fc1", "param": "out_features"}
        assert doc.search_dimension(target) == {"target": target, "type": "int", "low": 32,
                                                "high": 128, "step": 16}
        menu = next(a.menu() for a in w.menuBar().actions()
                    if a.text().replace("&", "") == "View")
        action = next(a for a in menu.actions() if a.text().replace("&", "") == "Sweeps")
        if not action.isChecked():
            action.trigger()
        w.sweeps.raise_()  # its tab beside Training
        panel = w.sweeps.panel
        qtbot.waitUntil(panel.isVisible)
        assert panel.pruner.currentText() == "median"
        assert (panel.startup_spin.value(), panel.warmup_spin.value()) == (3, 2)
        assert panel.startup_spin.isEnabled() and panel.warmup_spin.isEnabled()
        count = doc.undo_stack.count()
        panel.warmup_spin.setFocus()
        panel.warmup_spin.selectAll()
        qtbot.keyClicks(panel.warmup_spin, "4")
        qtbot.keyClick(panel.warmup_spin, Qt.Key_Return)
        assert doc.project.search["warmup_epochs"] == 4
        assert doc.project.search["startup_trials"] == 3
        assert doc.undo_stack.count() == count + 1
        space = search_space(doc.project)
        assert space.pruner_text() == "median pruner (from epoch 5, once 3 trial(s) are complete)"
        panel.pruner.setCurrentText("none")
        panel.pruner.activated.emit(panel.pruner.currentIndex())
        assert not panel.startup_spin.isEnabled() and not panel.warmup_spin.isEnabled()
        doc.undo_stack.undo()
        doc.undo_stack.undo()
        assert panel.warmup_spin.value() == 2 and panel.pruner.currentText() == "median"
        w.sweeps.grab().save("/tmp/misc/sweeps-form.png")
    finally:
        w.shutdown()
