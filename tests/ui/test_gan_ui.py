"""A GAN project in the window: one canvas tab per network, and the training panel trains both
networks, plots D/G losses and D(x)/D(G(z)) and shows the sample grid from the fixed noise."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings

from designer.engine.project import load_project
from designer.ui.document import Document
from designer.ui.main_window import MainWindow
from designer.ui.training.panel import TrainingPanel

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


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
    assert panel.tabs.isTabVisible(panel.tabs.indexOf(panel.gan_view))
    panel.settings.set_values({"epochs": 2, "batch_size": 256})
    panel._on_training_edited()
    assert panel.project.training["epochs"] == 2 and panel.project.training["recipe"] == "gan"
    assert not panel.settings.editor("loss").isEnabled()  # a GAN has its own losses
    assert panel.settings.editor("lr_d").isEnabled()
    shown = []
    panel.gan_view.samples_shown.connect(shown.append)
    with qtbot.waitSignal(panel.run_finished, timeout=90000) as blocker:
        assert panel.train()
        assert panel.tabs.currentWidget() is panel.gan_view
    assert blocker.args == ["finished"], panel.last_error
    view = panel.gan_view
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
    qtbot.waitUntil(lambda: panel.gan_view.series("loss_d").n >= 2, timeout=30000)
    panel.pause()
    qtbot.waitUntil(lambda: "Paused in epoch 1" in panel.log.toPlainText(), timeout=5000)
    n = panel.gan_view.series("loss_d").n
    qtbot.wait(300)
    assert panel.gan_view.series("loss_d").n <= n + 1  # at most the report that was under way
    panel.resume()
    qtbot.waitUntil(lambda: panel.gan_view.series("loss_d").n > n + 1, timeout=10000)
    with qtbot.waitSignal(panel.run_finished, timeout=5000) as blocker:
        panel.stop()
    assert blocker.args == ["stopped"]
    saved = torch.load(panel.run_dir / "last.pt", weights_only=True)
    assert set(saved["model"]) == {"generator", "discriminator"}
