"""Journeys of issue 24, "Use them", in the window: File > Import model… a tiny Hugging Face
BERT classifier (or GPT-2) with its weights, a CSV of texts (or a text file) in the dataset
settings, "Make the design fit" (which cuts the data to the 16 token ids the imported model
takes: the design is left as it is), Train. The CLI's journeys are in
tests/engine/test_hf_journeys.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from designer.ui.import_dialog import ImportDialog
from tests.engine.test_hf_journeys import BERT_CONFIG, GPT2_CONFIG, STORY, reviews
from tests.ui.test_main_window import Dialogs, _wait_analysis
from tests.ui.test_weights_ui import set_setting

pytest.importorskip("transformers")


@pytest.fixture
def window(make_main_window, monkeypatch):
    Dialogs(monkeypatch)
    return make_main_window((1400, 900))


def _import(qtbot, w, spec: str, config: tuple[str, ...], project_file: Path) -> None:
    """File > Import model… ``spec`` with ``config`` and its weights, saved as ``project_file``."""
    seen = []

    def fill_in_the_dialog():
        (dialog,) = [d for d in QApplication.topLevelWidgets()
                     if isinstance(d, ImportDialog) and d.isVisible()]
        seen.append(dialog)
        QTimer.singleShot(180000, dialog.reject)  # never hang the run on a failure
        dialog.spec.setEditText(spec)
        dialog.config.setText(" ".join(config))
        dialog.weights.setChecked(True)
        dialog.project_file.setText(str(project_file))
        qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
        close_when_done()

    def close_when_done():
        if seen[0].result_ is None:
            QTimer.singleShot(50, close_when_done)
        else:
            seen[0].buttons.button(QDialogButtonBox.Close).click()

    QTimer.singleShot(0, fill_in_the_dialog)
    w.act_import.trigger()  # the dialog's exec() returns once it is closed
    (dialog,) = seen
    assert dialog.result_.report.ok, dialog.report.toPlainText()
    assert w.document.path == project_file
    _wait_analysis(qtbot, w, timeout=60000)
    assert w.document.graph.inputs()[0].params == {"shape": [16], "dtype": "int64"}


def _choose_data(qtbot, w, kind: str, path: Path) -> None:
    """The dataset settings: ``kind`` and the file, then "Load and check"; the verdict asks for
    the dataset's sequence length, and "Make the design fit" sets it (the data loads again)."""
    panel = w.training.panel
    chooser = panel.chooser
    chooser.kind_combo.setCurrentIndex(chooser.kind_combo.findData(kind))
    chooser.path_edit.setText(str(path))
    chooser.path_edit.editingFinished.emit()
    qtbot.mouseClick(chooser.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: chooser.fix_button.isVisible(), timeout=30000)
    key = "max_length" if kind == "csv_text" else "seq_length"
    assert f"set dataset.{key} to 16" in chooser.fit_label.text()
    graph_before = w.document.graph.to_dict()
    steps = w.document.undo_stack.count()
    qtbot.mouseClick(chooser.fix_button, Qt.LeftButton)
    assert w.document.project.dataset[key] == 16
    assert w.document.undo_stack.count() == steps + 1  # one undo step
    assert w.document.graph.to_dict() == graph_before  # the design is left as it is
    assert f"Changed the dataset settings to fit the design: {key} 16" in panel.log.toPlainText()
    qtbot.waitUntil(lambda: chooser.loaded_dataset() is not None
                    and chooser.loaded_dataset().sample_shape == (16,), timeout=30000)
    qtbot.waitUntil(lambda: not chooser.fix_button.isVisible(), timeout=10000)
    assert "✖" not in chooser.fit_label.text(), chooser.fit_label.text()


def _train(qtbot, w) -> list[dict]:
    panel = w.training.panel
    with qtbot.waitSignal(panel.run_finished, timeout=120000) as ended:
        w.act_train.trigger()
    log = panel.log.toPlainText()
    assert ended.args == ["finished"], log[-3000:] + panel.message.text()
    history = [json.loads(line)
               for line in (panel.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [h["train"]["loss"] for h in history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    return history


def test_fine_tune_an_imported_bert_on_a_csv_of_texts_in_the_window(qtbot, window, tmp_path):
    w = window
    (tmp_path / "proj").mkdir()
    project_file = tmp_path / "proj" / "bert.dnn.json"
    _import(qtbot, w, "transformers:BertForSequenceClassification", BERT_CONFIG, project_file)
    data = reviews(tmp_path / "reviews.csv")
    _choose_data(qtbot, w, "csv_text", data)
    chooser = w.training.panel.chooser
    assert "51 training + 13 validation samples of 16 int64, 2 classes" in chooser.info.text()
    for key, value in (("epochs", 4), ("batch_size", 8), ("lr", 0.003)):
        set_setting(qtbot, w, key, value)
    history = _train(qtbot, w)
    assert history[-1]["val"]["accuracy"] > 0.5  # above chance on two balanced classes
    log = w.training.panel.log.toPlainText()
    assert "initial weights bert.weights.pt: loaded 25 of 25 tensors" in log


def test_train_an_imported_gpt2_with_the_language_model_recipe_in_the_window(
        qtbot, window, tmp_path):
    w = window
    (tmp_path / "proj").mkdir()
    project_file = tmp_path / "proj" / "gpt2.dnn.json"
    _import(qtbot, w, "transformers:GPT2LMHeadModel", GPT2_CONFIG, project_file)
    panel = w.training.panel
    recipe = panel.settings.editor("recipe")
    i = recipe.findText("language_model")
    recipe.setCurrentIndex(i)
    recipe.activated.emit(i)  # as a person's choice in the list
    assert w.document.project.training["recipe"] == "language_model"
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    _choose_data(qtbot, w, "text", story)
    # the model's vocabulary (100) is larger than the text's (17): a warning, the head is kept
    assert "the model scores 100 tokens at each position" in panel.chooser.fit_label.text()
    for key, value in (("epochs", 3), ("batch_size", 8), ("lr", 0.003),
                       ("lm_sample_length", 40)):
        set_setting(qtbot, w, key, value)
    history = _train(qtbot, w)
    assert history[-1]["val"]["loss"] < math.log(17)  # better than guessing among 17 tokens
    assert "initial weights gpt2.weights.pt: loaded 17 of 17 tensors" in panel.log.toPlainText()
    view = panel.recipe_view
    assert [s.epoch for s in view.samples] == [1, 2, 3]
    assert len(view.samples[-1].text) == 40 and set(view.samples[-1].text) <= set(STORY)
