"""The training panel: one-click training of the digits template, stop, failures, the fit fix,
settings as undo commands, and the live plot buffers."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from designer.engine.document.project import load_project
from designer.ui.document import Document
from designer.ui.training.panel import TrainingPanel
from designer.ui.training.plots import SeriesBuffer, TrainingPlots

TEMPLATE = Path(__file__).resolve().parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"


@pytest.fixture
def panel(qtbot, tmp_path):
    """The panel on a saved copy of the digits template (runs go under tmp_path/runs)."""
    path = tmp_path / "mlp-digits.dnn.json"
    shutil.copy(TEMPLATE, path)
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    doc.close()


def set_training(panel, **values):
    panel.settings.set_values(values)
    panel._on_training_edited()


def test_train_the_digits_template_from_the_panel(qtbot, panel, tmp_path):
    set_training(panel, epochs=2, batch_size=32)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.train()
        assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    assert blocker.args == ["finished"]
    assert panel.worker is None and panel.train_button.isEnabled()
    plots = panel.plots
    assert plots.curve_points("batch_loss") >= 2
    assert plots.curve_points("smooth_loss") >= 2
    assert plots.curve_points("train_loss") == 2 and plots.curve_points("val_loss") == 2
    assert plots.curve_points("val_metric") == 2 and plots.curve_points("lr") == 2
    assert 0.5 < plots.series("val_metric").y[-1] <= 1.0
    cm = panel.evaluation.confusion.matrix
    assert cm.shape == (10, 10) and cm.sum() == 359  # the digits validation split
    assert panel.evaluation.report.rowCount() == 11
    assert panel.evaluation.try_it.image_button.isEnabled()
    # the run is in the history, beside the project
    assert len(panel.history.runs) == 1
    run = panel.history.runs[0]
    assert run.path.parent.parent == tmp_path / "runs"
    assert "Finished (completed)" in panel.log.toPlainText()
    # one story: the line under the progress bar, History, Evaluation and Export name the same
    # checkpoints with the same figures
    best, last = run.checkpoint("best"), run.checkpoint("last")
    assert last.epoch == 2 and run.final == last.figure and last.figure.startswith("accuracy")
    ending = panel.progress_label.text()
    assert ending.startswith("Finished after 2 epoch(s) in ")
    assert f"last epoch: {last.figure}" in ending
    assert f"best.pt = epoch {best.epoch} (lowest validation loss): {best.figure}" in ending
    assert panel.evaluation.shown_checkpoint() == "last"  # the model as training left it
    combo = panel.evaluation.checkpoint_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [best.label, last.label]
    dialog = panel.open_export_dialog()
    offered = [dialog.run_combo.itemText(i) for i in range(dialog.run_combo.count())]
    assert [o.split(" – ", 1)[1] for o in offered] == [best.label, last.label]
    assert dialog.run_combo.itemData(1) == str(last.path)
    dialog.close()
    # the Evaluation tab's Model choice scores best.pt instead
    with qtbot.waitSignal(panel.evaluation_ready, timeout=60000):
        combo.activated.emit(0)
    qtbot.waitUntil(lambda: panel._eval_worker is None)
    assert panel.evaluation.shown_checkpoint() == "best"
    assert "Evaluation of best.pt" in panel.log.toPlainText()


def test_stop_in_the_middle_of_an_epoch_ends_within_a_second(qtbot, panel):
    set_training(panel, epochs=20, batch_size=2)  # ~720 batches per epoch
    panel.train()
    qtbot.waitUntil(lambda: panel.plots.series("batch_loss").n >= 3, timeout=30000)
    assert panel.plots.series("train_loss").n == 0  # still in the first epoch
    with qtbot.waitSignal(panel.run_finished, timeout=5000) as blocker:
        t0 = time.perf_counter()
        panel.stop()
    elapsed = time.perf_counter() - t0
    assert blocker.args == ["stopped"]
    assert elapsed < 1.0, f"stop took {elapsed:.2f} s"
    assert "Stopped in epoch 1" in panel.log.toPlainText()


def test_pause_and_resume(qtbot, panel):
    # Several epochs, so the run cannot finish before the pause lands on a fast machine, and a
    # generous wait for the pause itself on a loaded one.
    set_training(panel, epochs=4, batch_size=8)
    panel.train()
    qtbot.waitUntil(lambda: panel.plots.series("batch_loss").n >= 2, timeout=30000)
    panel.pause()
    qtbot.waitUntil(lambda: panel.resume_button.isEnabled(), timeout=20000)
    n = panel.plots.series("batch_loss").n
    qtbot.wait(300)
    assert panel.plots.series("batch_loss").n <= n + 1  # at most one report in flight
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        panel.resume()
    assert blocker.args == ["finished"]


def test_an_error_in_the_worker_shows_a_message_and_the_window_still_works(
        qtbot, panel, monkeypatch):
    from designer.engine.train import training

    def boom(self, x, y):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (32x64 and 100x64)")

    monkeypatch.setattr(training.SupervisedRecipe, "train_step", boom)
    set_training(panel, epochs=1, batch_size=64)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        panel.train()
    assert blocker.args == ["failed"]
    assert panel.message.isVisible()
    assert "mat1 and mat2" in panel.message.text()
    assert "Traceback" in panel.log.toPlainText()

    # an exception outside the trainer (building it) is caught by the worker too
    monkeypatch.undo()

    def broken_init(self, *a, **k):
        raise RuntimeError("cannot build the trainer")

    monkeypatch.setattr(training.Trainer, "__init__", broken_init)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        panel.train()
    assert blocker.args == ["failed"]
    assert "cannot build the trainer" in panel.message.text()

    # the panel still works: the next run trains normally and clears the message
    monkeypatch.undo()
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        panel.train()
    assert blocker.args == ["finished"]
    assert not panel.message.isVisible()


def test_edits_during_training_do_not_touch_the_running_model(qtbot, panel):
    doc = panel.document
    set_training(panel, epochs=1, batch_size=64)
    fc1 = doc.graph.node_by_name("fc1")
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        panel.train()
        doc.set_params(fc1.id, {"out_features": 17})  # the window stays editable
    assert blocker.args == ["finished"]
    assert panel.model.fc1.out_features == 64  # trained on the snapshot
    assert doc.graph.node(fc1.id).params["out_features"] == 17


def test_bad_settings_are_refused_with_a_message(qtbot, panel):
    panel.chooser.set_config({"kind": "csv", "path": None})
    assert not panel.train()
    assert "dataset.path" in panel.message.text()
    assert panel.worker is None


def test_a_missing_dataset_file_fails_cleanly(qtbot, panel):
    panel.chooser.set_config({"kind": "csv", "path": "nowhere.csv"}, panel._base_dir())
    with qtbot.waitSignal(panel.run_finished, timeout=30000) as blocker:
        assert panel.train()
    assert blocker.args == ["failed"]
    assert "nowhere.csv" in panel.message.text()


def test_make_the_design_fit_is_one_undo_step(qtbot, panel):
    doc = panel.document
    inp = doc.graph.inputs()[0]
    fc2 = doc.graph.node_by_name("fc2")
    doc.set_params(inp.id, {"shape": [1, 4, 4]})
    doc.set_params(fc2.id, {"out_features": 3})
    steps = doc.undo_stack.count()
    with qtbot.waitSignal(panel.chooser.loaded, timeout=30000):
        panel.chooser.load()
    qtbot.waitUntil(lambda: panel.chooser.fix_button.isVisible(), timeout=5000)
    assert "1x8x8" in panel.chooser.fit_label.text()
    panel.chooser.fix_button.click()
    assert doc.graph.node(inp.id).params["shape"] == [1, 8, 8]
    assert doc.graph.node(fc2.id).params["out_features"] == 10  # found after the input fix
    assert doc.undo_stack.count() == steps + 1
    assert doc.undo_stack.undoText() == "Make the design fit the dataset"
    assert "fit this dataset" in panel.chooser.fit_label.text()
    doc.undo_stack.undo()
    assert doc.graph.node(inp.id).params["shape"] == [1, 4, 4]
    assert doc.graph.node(fc2.id).params["out_features"] == 3


def test_settings_edits_are_undo_commands(qtbot, panel):
    doc = panel.document
    before = dict(doc.project.training)
    panel.settings.editor("epochs").setValue(7)
    assert doc.project.training["epochs"] == 7
    assert doc.is_modified()
    doc.undo_stack.undo()
    assert doc.project.training.get("epochs") == before.get("epochs")
    assert panel.settings.values()["epochs"] == before.get("epochs", 10)
    doc.undo_stack.redo()
    assert panel.settings.values()["epochs"] == 7


def test_device_choice_lists_only_what_is_available(panel):
    import torch

    combo = panel.settings.editor("device")
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items[:2] == ["auto", "cpu"]
    assert ("cuda" in items) == torch.cuda.is_available()


# -- the plot widget -------------------------------------------------------------------------


def test_series_buffer_grows_and_finds_nearest():
    b = SeriesBuffer(capacity=2)
    for i in range(100):
        b.append(i * 0.5, i)
    b.extend([50, 51], [7, 8])
    assert len(b) == 102 and b.x[-1] == 51
    assert b.value_near(10.2) == (10.0, 20.0)
    assert b.value_near(-3) == (0.0, 0.0)
    b.clear()
    assert b.value_near(1) is None


def test_plots_redraw_from_a_timer_not_per_point(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.start()
    for i in range(2000):
        plots.add_batch(i / 100, math.exp(-i / 500))
    assert plots.curve_points("batch_loss") == 0  # nothing drawn yet: the timer draws
    qtbot.waitUntil(lambda: plots.curve_points("batch_loss") == 2000, timeout=2000)
    assert plots.redraws <= 2
    plots.add_batch(20.0, float("nan"))  # a diverging loss is drawn as a gap, not an error
    plots.add_epoch(1, 0.5, 0.6, 0.8, 0.7, 1e-3)
    plots.stop()
    assert plots.curve_points("batch_loss") == 2001
    assert plots.series("smooth_loss").n == 2000  # NaN does not poison the smoothed curve
    text = plots.show_values_at(1.0)
    assert "validation (epoch) (loss) 0.6000" in text
    for p in (plots.loss_plot, plots.metric_plot, plots.lr_plot):
        assert p.clipToViewMode()
        assert p.ctrl.downsampleCheck.isChecked() or p.ctrl.autoDownsampleCheck.isChecked()


def test_overlays_add_and_remove_curves(qtbot):
    from designer.ui.training.plots import RunCurves

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    n0 = len(plots.loss_plot.listDataItems())
    plots.set_overlays([RunCurves("a", [1, 2], [1.0, 0.5], [1.1, 0.6], [0.5, 0.7]),
                        RunCurves("b", [1], [0.9], [], [])])
    assert len(plots.loss_plot.listDataItems()) == n0 + 2
    assert len(plots.metric_plot.listDataItems()) > n0 - 4
    plots.set_overlays([])
    assert len(plots.loss_plot.listDataItems()) == n0
    np.testing.assert_equal(len(plots._overlay_items), 0)


def test_hand_edited_wrong_types_show_defaults_and_a_message(qtbot, tmp_path):
    """A file with "lr": "fast" or "val_fraction": "x" loads; filling the form raised
    ValueError inside the document slot (a traceback, the form left half filled)."""
    import json

    data = json.loads(TEMPLATE.read_text())
    data["training"]["lr"] = "fast"
    data["dataset"]["val_fraction"] = "x"
    path = tmp_path / "odd.dnn.json"
    path.write_text(json.dumps(data))
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    try:
        assert p.settings.editor("lr").text() == "0.001"
        assert p.chooser.form.editor("val_fraction").text() == "0.2"
        text = p.message.text()
        assert "fast" in text and "'x'" in text
        assert p._training_values()["lr"] == 0.001  # Train writes what the form shows
    finally:
        p.shutdown()
        doc.close()
