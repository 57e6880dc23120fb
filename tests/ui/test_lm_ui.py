"""The language model's live view: loss and perplexity curves and the samples, newest first; and a
char-lstm epoch trained from the training panel, which shows that view."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from designer.engine.document.project import load_project, save_project
from designer.engine.document.templates import with_absolute_data_path
from designer.engine.train.events import Batch, Epoch
from designer.engine.train.recipes.language_model import LmSample
from designer.ui.document import Document
from designer.ui.training.lm_view import LmView
from designer.ui.training.panel import TrainingPanel
from designer.ui.training.views import make_view

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


def _batch(epoch, batch, loss, batches=10):
    return Batch(epoch, batch, batches, loss, {"perplexity": math.exp(loss), "accuracy": 0.3},
                 100.0, 1.0)


def _epoch(epoch, val_loss):
    val = {"loss": val_loss, "perplexity": math.exp(val_loss), "accuracy": 0.4}
    return Epoch(epoch, 3, {"loss": val_loss + 0.1}, val, 0.001, 1.0, 100.0, True)


def test_the_view_is_registered_for_the_recipe(qtbot):
    view = make_view("language_model")
    qtbot.addWidget(view)
    assert isinstance(view, LmView)


def test_the_view_shows_curves_and_the_samples_newest_first(qtbot):
    view = LmView()
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    view.start()
    # running means 2.0 after 2 batches, then 1.5 after 4: the batches 3-4 averaged 1.0
    assert not view.handle(_batch(1, 2, 2.0))
    assert not view.handle(_batch(1, 4, 1.5))
    assert not view.handle(_epoch(1, 1.2))
    assert not view.handle(_batch(2, 5, 0.9))  # a new epoch starts its own running mean
    assert view.handle(LmSample(1, "The <b>", "cat sat\non the mat", 0.8))
    assert view.handle(LmSample(2, "The <b>", " dog & log", 0.5))
    assert not view.handle(Batch(1, 1, 10, 0.5, {"accuracy": 0.9}, 1.0, 1.0))  # not ours
    view.stop()
    loss = view.series("loss")
    np.testing.assert_allclose(loss.x, [0.2, 0.4, 1.5])
    np.testing.assert_allclose(loss.y, [2.0, 1.0, 0.9])
    np.testing.assert_allclose(view.series("perplexity").y, np.exp([2.0, 1.0, 0.9]))
    np.testing.assert_allclose(view.series("val_perplexity").y, [math.exp(1.2)])
    assert view.curve_points("loss") == 3 and view.curve_points("val_loss") == 1
    text = view.text.toPlainText()
    assert text.index("epoch 2 · temperature 0.5") < text.index("epoch 1 · temperature 0.8")
    assert "The <b> dog & log" in text and "The <b>cat sat\non the mat" in text  # escaped
    assert view.text.isReadOnly() and view.text.font().fixedPitch()
    shown = []
    view.sample_shown.connect(shown.append)
    view.handle(LmSample(3, "", "x", 1.0))
    assert shown == [3]
    view.clear()
    assert view.series("loss").n == 0 and view.curve_points("loss") == 0
    assert view.text.toPlainText() == "" and view.samples == []


@pytest.fixture
def panel(qtbot, tmp_path):
    path = tmp_path / "char-lstm.dnn.json"
    project = with_absolute_data_path(load_project(TEMPLATES / "char-lstm.dnn.json"), TEMPLATES)
    save_project(project, path)
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    doc.close()


def test_char_lstm_trains_one_epoch_from_the_panel(qtbot, panel):
    panel.settings.set_values({"epochs": 1, "lm_sample_length": 60})
    panel._on_training_edited()
    assert panel.project.training["recipe"] == "language_model"
    assert not panel.settings.editor("loss").isEnabled()  # next-token cross-entropy, always
    assert panel.settings.editor("lm_temperature").isEnabled()
    view = panel.recipe_view
    assert isinstance(view, LmView)
    shown = []
    view.sample_shown.connect(shown.append)
    with qtbot.waitSignal(panel.run_finished, timeout=120000) as blocker:
        assert panel.train()
    assert blocker.args == ["finished"], panel.last_error
    assert shown == [1] and len(view.samples[0].text) == 60
    assert "epoch 1 · temperature 0.8" in view.text.toPlainText()
    assert view.curve_points("loss") >= 1 and view.curve_points("val_perplexity") == 1
    assert np.isfinite(view.series("perplexity").y).all()
    sample = (panel.run_dir / "samples" / "epoch_001.txt").read_text(encoding="utf-8")
    assert sample == "The " + view.samples[0].text + "\n"
