"""A GAN project in the window: one canvas tab per network, and the training panel trains both
networks, plots D/G losses and D(x)/D(G(z)) and shows the sample grid from the fixed noise."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings

from designer.engine.document.project import load_project
from designer.ui.document import Document
from designer.ui.main_window import MainWindow
from designer.ui.training.panel import TrainingPanel

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Ok)
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.show()
    yield w
    w.shutdown()


def test_gan_template_in_the_window_two_tabs_and_training_shows_samples(qtbot, window):
    assert window.open_template("gan-digits")
    tabs = window.network_tabs
    assert tabs.isVisible() and tabs.count() == 2
    assert [tabs.tabText(i) for i in range(2)] == ["generator", "discriminator"]
    scene = window.view.scene()

    def names():
        return {window.document.graph.nodes[i].name for i in scene.node_items}

    assert "noise" in names() and "to_image" in names()
    tabs.setCurrentIndex(1)
    assert window.document.network == "discriminator"
    qtbot.waitUntil(lambda: "logit" in names() and "noise" not in names(), timeout=5000)
    qtbot.waitUntil(lambda: window.document.analysis is not None
                    and window.document.analysis.total_params == 16_641, timeout=20000)

    # train both networks from the window's training panel
    panel = window.training.panel
    assert panel.tabs.isTabVisible(panel.tabs.indexOf(panel.recipe_view))
    panel.settings.set_values({"epochs": 2, "batch_size": 256})
    panel._on_training_edited()
    assert panel.project.training["epochs"] == 2 and panel.project.training["recipe"] == "gan"
    assert not panel.settings.editor("loss").isEnabled()  # a GAN has its own losses
    assert panel.settings.editor("lr_d").isEnabled()
    shown = []
    panel.recipe_view.samples_shown.connect(shown.append)
    with qtbot.waitSignal(panel.run_finished, timeout=90000) as blocker:
        assert panel.train()
        assert panel.tabs.currentWidget() is panel.recipe_view
    assert blocker.args == ["finished"], panel.last_error
    view = panel.recipe_view
    assert shown == [1, 2] and view.grid_epoch == 2
    assert view.grid.shape == (73, 73) and 0 <= view.grid.min() and view.grid.max() <= 1
    assert view.grid_label.pixmap() is not None and not view.grid_label.pixmap().isNull()
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert view.curve_points(key) >= 2, key
        assert np.isfinite(view.series(key).y).all()
        assert view.curve_points(f"val_{key}") == 2
    assert ((0 < view.series("d_real").y) & (view.series("d_real").y < 1)).all()
    # the run folder holds both networks and the sample grids
    run = panel.run_dir
    assert (run / "samples" / "epoch_002.png").exists()
    assert set(torch.load(run / "last.pt", weights_only=True)["model"]) == {
        "generator", "discriminator"}
    assert "Finished (completed)" in panel.log.toPlainText()
    # "best" by the lowest D + G loss would be a guess at sample quality: the run keeps
    # last.pt only, and the line under the progress bar says so and why
    assert not (run / "best.pt").exists()
    ending = panel.progress_label.text()
    assert "best.pt =" not in ending
    assert "no best.pt, last.pt only (GAN: its D and G losses do not measure sample quality)" \
        in ending
    combo = panel.evaluation.checkpoint_combo
    assert all(not combo.itemText(i).startswith("best.pt") for i in range(combo.count()))
    assert "Saved the best model" not in panel.log.toPlainText()


def test_problems_dock_shows_a_mismatch_between_the_two_networks(qtbot, window):
    assert window.open_template("gan-digits")
    window.network_tabs.setCurrentIndex(1)
    doc = window.document
    image = doc.graph.node_by_name("image")

    def messages():
        tree = window.problems.tree
        return [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]

    doc.set_params(image.id, {"shape": [1, 28, 28]})
    qtbot.waitUntil(lambda: any("generator makes samples of shape 1x8x8" in m
                                for m in messages()), timeout=20000)
    doc.undo_stack.undo()
    qtbot.waitUntil(lambda: not any("GAN:" in m for m in messages()), timeout=20000)


@pytest.fixture
def panel(qtbot, tmp_path):
    path = tmp_path / "gan-digits.dnn.json"
    shutil.copy(TEMPLATES / "gan-digits.dnn.json", path)
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    doc.close()


def test_the_fit_check_uses_the_discriminator_and_refuses_a_mismatch(qtbot, panel):
    panel.chooser.set_config({"kind": "digits", "normalize": False}, None)
    image = panel.project.networks["discriminator"].node_by_name("image")
    image.params["shape"] = [1, 28, 28]
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.train()
    assert blocker.args == ["failed"]
    assert "generator makes samples of shape 1x8x8" in panel.last_error
    assert "discriminator's Input 'image' expects 1x28x28" in panel.last_error


def test_pause_resume_and_stop_a_gan_run_from_the_panel(qtbot, panel):
    panel.settings.set_values({"epochs": 50, "batch_size": 4})
    panel._on_training_edited()
    assert panel.train()
    qtbot.waitUntil(lambda: panel.recipe_view.series("loss_d").n >= 2, timeout=30000)
    panel.pause()
    qtbot.waitUntil(lambda: "Paused in epoch 1" in panel.log.toPlainText(), timeout=5000)
    n = panel.recipe_view.series("loss_d").n
    qtbot.wait(300)
    assert panel.recipe_view.series("loss_d").n <= n + 1  # at most the report that was under way
    panel.resume()
    qtbot.waitUntil(lambda: panel.recipe_view.series("loss_d").n > n + 1, timeout=10000)
    with qtbot.waitSignal(panel.run_finished, timeout=5000) as blocker:
        panel.stop()
    assert blocker.args == ["stopped"]
    saved = torch.load(panel.run_dir / "last.pt", weights_only=True)
    assert set(saved["model"]) == {"generator", "discriminator"}


# -- a GAN run in the log, the history and the New dialog ----------------------------------------


def test_log_history_reopen_overlay_and_evaluate_for_a_gan_run(qtbot, panel):
    """The start-of-run log line gives the GAN's own settings (not the unused supervised lr); the
    history lists the run with them and its final D scores, overlays its loss per epoch, reopens
    its settings, and explains instead of evaluating (a GAN has no predictions to score)."""
    panel.settings.set_values({"epochs": 2, "batch_size": 256, "lr_d": 0.0003, "lr_g": 0.0004,
                               "d_steps": 2, "gan_loss": "minimax"})
    panel._on_training_edited()
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.train()
    assert blocker.args == ["finished"], panel.last_error
    first = next(line for line in panel.log.toPlainText().splitlines() if "Training '" in line)
    for text in ("GAN adam", "lr_d 0.0003", "lr_g 0.0004", "beta1 0.5", "d_steps 2",
                 "minimax G loss"):
        assert text in first, first
    assert "adam lr 0.001" not in first

    history = panel.history
    assert history.table.rowCount() == 1
    run = history.runs[0]
    assert run.spec.id == "gan" and not run.evaluates and run.path == panel.run_dir
    assert "lr_d 0.0003" in history.table.item(0, 1).text()
    assert history.table.item(0, 3).text().startswith("D(x) 0.")  # not "loss 1.9"
    # a GAN's D + G loss says nothing of sample quality: no best.pt, last.pt only
    assert history.table.item(0, 2).text() == "none: last.pt only"
    assert history.table.item(0, 6).text() == "complete"

    overlays = []
    history.overlay_changed.connect(overlays.append)
    history.select([0])
    curves = overlays[-1][0]
    assert curves.epochs == [1.0, 2.0] and "D + G loss" in curves.label
    assert len(curves.val_loss) == 2 and all(math.isfinite(v) for v in curves.val_loss)
    assert len(panel.plots._overlay_items) == 1  # drawn on the Curves tab's loss plot
    assert "samples folder" in history.note.text()

    # Evaluate is off, with the reason and where the sample grids are
    assert not history.evaluate_button.isEnabled()
    assert str(run.path / "samples") in history.evaluate_button.toolTip()
    assert (run.path / "samples" / "epoch_002.png").exists()
    panel.evaluate_run(run.path)  # called anyway: a message, no worker, no "does not fit"
    assert panel._eval_worker is None
    assert "no predictions to score" in panel.message.text()

    # reopen the run's settings after changing them: one undo step, still a GAN
    panel.settings.set_values({"lr_d": 0.01, "d_steps": 1})
    panel._on_training_edited()
    assert panel.project.training["lr_d"] == 0.01
    with qtbot.waitSignal(history.reopen_requested):
        history.reopen_button.click()
    t = panel.project.training
    assert (t["recipe"], t["lr_d"], t["lr_g"], t["d_steps"], t["gan_loss"]) == (
        "gan", 0.0003, 0.0004, 2, "minimax")
    assert panel.settings.values()["lr_d"] == 0.0003
    panel.document.undo_stack.undo()
    assert panel.project.training["lr_d"] == 0.01


def test_optimizer_text_supervised_and_gan():
    from designer.ui.training.history import optimizer_text

    assert optimizer_text({"optimizer": "sgd", "lr": 0.05}) == "sgd lr 0.05"
    gan = optimizer_text({"recipe": "gan", "optimizer": "sgd", "lr_d": 1e-4, "lr_g": 2e-4})
    assert gan == "GAN sgd lr_d 0.0001 lr_g 0.0002, d_steps 1, non_saturating G loss"
    assert "beta1" not in gan  # Adam's beta1 does not apply to SGD


def test_new_dialog_counts_both_networks_of_a_gan_template(qtbot):
    from designer.engine.document.templates import list_templates
    from designer.engine.model.shapes import analyze
    from designer.ui.gallery import THUMB, NewDialog

    dialog = NewDialog()
    qtbot.addWidget(dialog)
    dialog.select("gan-mnist")
    info = dialog.templates["gan-mnist"]
    networks = load_project(info.path).networks
    counts = {name: analyze(g).total_params for name, g in networks.items()}
    assert list(counts) == ["generator", "discriminator"]
    assert info.params == sum(counts.values()) == 2_043_793
    text = dialog.details.text()
    assert "2.04M (2,043,793): generator 1.51M + discriminator 534k" in text
    label = dialog.list.currentItem().text()
    assert "2.04M parameters (2 networks)" in label and "1.51M parameters" not in label
    assert "generator 1.51M + discriminator 534k" in dialog.list.currentItem().toolTip()
    # a one-network template keeps the plain count
    dialog.select("lenet5")
    assert "generator" not in dialog.details.text() and "61.7k (61,706)" in dialog.details.text()
    several = [t.id for t in list_templates() if t.networks > 1]
    assert {"gan-digits", "gan-mnist"} <= set(several)  # (a VAE's encoder + decoder join them)

    # the thumbnail draws both networks, one band each
    dialog.select("gan-mnist")
    image = dialog.list.currentItem().icon().pixmap(THUMB).toImage()
    background = image.pixelColor(0, 0)

    def drawn(y0, y1):
        return sum(image.pixelColor(x, y) != background
                   for x in range(0, image.width(), 2) for y in range(y0, y1, 2))

    half = image.height() // 2
    assert drawn(2, half - 2) > 20 and drawn(half + 2, image.height() - 2) > 20


def test_gan_curves_label_epochs_without_si_prefix(qtbot):
    """In the first epoch (x < 1) pyqtgraph's automatic SI prefix turned the axis into
    'epoch (x0.001)' with ticks 50...250."""
    from designer.engine.train.training import Batch
    from designer.ui.training.gan_view import GanView

    view = GanView()
    qtbot.addWidget(view)
    view.resize(800, 400)
    view.show()
    metrics = {"loss_d": 1.3, "loss_g": 0.7, "d_real": 0.5, "d_fake": 0.5}
    for b in range(1, 16):
        view.handle(Batch(1, b, 51, 1.3, dict(metrics), 100.0, 10.0))
    view.redraw()
    qtbot.wait(20)
    for plot in (view.loss_plot, view.score_plot):
        assert "x0.001" not in plot.getAxis("bottom").labelString()
