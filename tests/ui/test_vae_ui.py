"""The VAE's live view: fed with synthetic events it draws the loss curves, both image grids and
the latent scatter coloured by class; from the training panel, the template trains an epoch and
the view shows what the run sent."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from designer.engine.document.project import load_project
from designer.engine.train.events import Batch, Epoch
from designer.engine.train.recipes.vae import VaeSamples
from designer.ui.document import Document
from designer.ui.training.panel import TrainingPanel
from designer.ui.training.vae_view import VaeView
from designer.ui.training.views import make_view

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


def samples(epoch, latent=True):
    rng = np.random.default_rng(epoch)
    return VaeSamples(epoch, rng.random((73, 73), dtype=np.float32),
                      rng.random((73, 73), dtype=np.float32),
                      rng.normal(size=(50, 2)).astype(np.float32) if latent else None,
                      np.arange(50) % 10 if latent else None,
                      tuple(str(i) for i in range(10)) if latent else ())


@pytest.fixture
def view(qtbot):
    v = make_view("vae")
    assert isinstance(v, VaeView)
    qtbot.addWidget(v)
    v.resize(1000, 600)
    v.show()
    yield v
    v.stop()


def test_view_draws_curves_grids_and_the_latent_scatter(qtbot, view):
    view.start()
    for epoch in (1, 2):
        for b in (5, 10):
            m = {"recon": 30.0 - epoch - b / 10, "kl": 1.0 + b / 10}
            assert view.handle(Batch(epoch, b, 10, m["recon"] + m["kl"], m, 100.0, 1.0)) is False
        shown = []
        view.samples_shown.connect(shown.append)
        assert view.handle(samples(epoch)) is True
        assert shown == [epoch]
        val = {"loss": 28.0, "recon": 26.0, "kl": 2.0}
        assert view.handle(Epoch(epoch, 2, val, val, 0.002, 1.0, 100.0, True)) is False
    qtbot.waitUntil(lambda: view.curve_points("recon") == 4 and view.scatter_points() == 50,
                    timeout=3000)
    for key in ("loss", "recon", "kl"):
        assert view.curve_points(key) == 4 and view.curve_points(f"val_{key}") == 2
    # the curves show the mean of the batches since the last report, the total is recon + KL
    assert view.series("recon").y[1] == pytest.approx((28.0 * 10 - 28.5 * 5) / 5)
    np.testing.assert_allclose(view.series("loss").y,
                               view.series("recon").y + view.series("kl").y)
    assert view.grid_epoch == 2
    for label in (view.recon_label, view.samples_label):
        assert label.pixmap() is not None and not label.pixmap().isNull()
    assert "epoch 2" in view.samples_caption.text()
    # one colour per class, and a legend with the class names
    brushes = {b.color().name() for b in view.scatter.data["brush"]}
    assert len(brushes) == 10
    assert view.latent_plot.isVisible() and len(view.latent_legend.items) == 10
    # a latent of more than two dimensions: no scatter
    view.handle(samples(3, latent=False))
    view.redraw()
    assert not view.latent_plot.isVisible() and view.scatter_points() == 0
    # clear: empty again
    view.clear()
    assert view.curve_points("recon") == 0 and view.grid_epoch == 0
    assert view.samples_label.pixmap() is None or view.samples_label.pixmap().isNull()
    assert "appear here" in view.samples_label.text()


def test_events_of_other_recipes_are_ignored(view):
    assert view.handle(Batch(1, 1, 2, 0.5, {"accuracy": 0.5}, 1.0, 1.0)) is False
    view.redraw()
    assert view.curve_points("recon") == 0


@pytest.fixture
def panel(qtbot, tmp_path):
    path = tmp_path / "vae-digits.dnn.json"
    shutil.copy(TEMPLATES / "vae-digits.dnn.json", path)
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    doc.close()


def test_the_template_trains_an_epoch_from_the_panel(qtbot, panel):
    assert isinstance(panel.recipe_view, VaeView)
    assert panel.tabs.tabText(panel.tabs.indexOf(panel.recipe_view)) == "VAE"
    panel.settings.set_values({"epochs": 1})
    panel._on_training_edited()
    assert panel.project.training["recipe"] == "vae"
    assert not panel.settings.editor("loss").isEnabled()  # the VAE has its own loss
    assert panel.settings.editor("vae_beta").isEnabled()
    shown = []
    panel.recipe_view.samples_shown.connect(shown.append)
    with qtbot.waitSignal(panel.run_finished, timeout=90000) as blocker:
        assert panel.train()
        assert panel.tabs.currentWidget() is panel.recipe_view
    assert blocker.args == ["finished"], panel.last_error
    view = panel.recipe_view
    assert shown == [1] and view.grid_epoch == 1
    assert view.last.samples.shape == (73, 73) and view.last.latent.shape[1] == 2
    qtbot.waitUntil(lambda: view.scatter_points() == view.last.latent.shape[0], timeout=3000)
    for key in ("loss", "recon", "kl"):
        assert view.curve_points(key) >= 1 and np.isfinite(view.series(key).y).all()
        assert view.curve_points(f"val_{key}") == 1
    run = panel.run_dir
    assert (run / "samples" / "epoch_001.png").exists()
    assert set(torch.load(run / "last.pt", weights_only=True)["model"]) == {"encoder", "decoder"}
    assert "Finished (completed)" in panel.log.toPlainText()
