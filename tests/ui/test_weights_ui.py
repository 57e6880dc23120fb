"""Initial weights in the window (issue 22): a project saved with its weights beside it trains
from them whatever the working directory (the run's project keeps the project file's folder), and
File > Load weights… takes a file that fits in part, saying what starts fresh, and refuses one
that fills less than training.init_weights_min_fit."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from designer.engine.interop.importing import save_weights
from designer.engine.model.build import build_model
from tests.ui.test_main_window import Dialogs, _wait_analysis


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


@pytest.fixture
def window(make_main_window, dialogs):
    return make_main_window()


def set_setting(qtbot, w, key: str, value) -> None:
    """Enter a training setting in the Training view's form, as a person does."""
    field = w.training.panel.settings.editor(key)
    if hasattr(field, "setChecked"):  # a checkbox
        if field.isChecked() != bool(value):
            field.click()
    elif hasattr(field, "setValue"):  # a spin box
        field.setValue(int(value))
    else:  # a line edit: type, then Enter
        field.selectAll()
        qtbot.keyClicks(field, str(value))
        qtbot.keyClick(field, Qt.Key_Return)
    assert w.document.project.training.get(key) == value


def _train(qtbot, w) -> str:
    """Press Train and wait for the run's end; returns the log."""
    panel = w.training.panel
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as ended:
        w.act_train.trigger()
    log = panel.log.toPlainText()
    assert ended.args == ["finished"], log[-2000:]
    return log


def test_imported_weights_train_from_the_project_folder_also_after_reopening(
        qtbot, window, tmp_path, monkeypatch):
    w = window
    monkeypatch.chdir(tmp_path)  # the working directory is not the project's folder
    src = tmp_path / "tiny.py"
    src.write_text("import torch.nn as nn\n\n\ndef make():\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n", encoding="utf-8")
    (tmp_path / "proj").mkdir()
    dialog = w.make_import_dialog()
    qtbot.addWidget(dialog)
    dialog.spec.setEditText(f"{src}:make")
    dialog.shape.setText("1,8,8")
    dialog.weights.setChecked(True)  # "Import its weights"
    dialog.project_file.setText(str(tmp_path / "proj" / "tiny.dnn.json"))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=60000)
    assert w.document.path == tmp_path / "proj" / "tiny.dnn.json"
    assert w.document.project.training["init_weights"] == "tiny.weights.pt"
    _wait_analysis(qtbot, w)
    set_setting(qtbot, w, "epochs", 1)
    log = _train(qtbot, w)
    assert "initial weights tiny.weights.pt: loaded 2 of 2 tensors" in log

    assert w.save()
    assert w.open_path(tmp_path / "proj" / "tiny.dnn.json", ask=False)
    _wait_analysis(qtbot, w)
    log = _train(qtbot, w)
    assert "initial weights tiny.weights.pt: loaded 2 of 2 tensors" in log
    assert "no such weights file" not in log


def test_load_weights_fitting_in_part_says_what_starts_fresh(qtbot, window, dialogs, tmp_path,
                                                              monkeypatch):
    w = window
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)
    assert w.document.project.folder is None  # a template opens as an unsaved design
    assert w.save_to(tmp_path / "p.dnn.json")
    assert w.document.project.folder == tmp_path.resolve()  # relative paths start here now
    state = build_model(w.document.project.networks["model"]).state_dict()
    state["fc2.weight"], state["fc2.bias"] = torch.zeros(5, 64), torch.zeros(5)  # 5 classes
    save_weights(state, tmp_path / "other.pt")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "other.pt"), "")))

    # the threshold is a training setting in the form: at 90% the file (86.5%) is refused
    set_setting(qtbot, w, "init_weights_min_fit", 0.9)
    w.act_load_weights.trigger()
    kind, title, text = dialogs.shown[-1]
    assert (kind, title) == ("warning", "The weights do not fit the design")
    assert text.startswith("other.pt fills only 86.49% of the design's parameters (2 tensors "
                           "fit), less than training.init_weights_min_fit (90%)")
    assert "fc2.weight: the file [5, 64], the design [10, 64]" in text
    assert not w.document.project.training.get("init_weights")

    set_setting(qtbot, w, "init_weights_min_fit", 0.5)
    w.act_load_weights.trigger()
    kind, title, text = dialogs.shown[-1]
    assert (kind, title) == ("information", "The weights fit in part")
    assert "other.pt: loaded 2 of 4 tensors (4,160 of 4,810 parameters, 86.49%)" in text
    assert "Start fresh, another shape in the file (2):\n  fc2.bias: the file [5], the design " \
           "[10]\n  fc2.weight: the file [5, 64], the design [10, 64]" in text
    assert w.document.project.training["init_weights"] == "other.pt"


def test_train_refuses_weights_that_fit_nothing_with_a_clear_message(qtbot, window, tmp_path):
    w = window
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)
    assert w.save_to(tmp_path / "p.dnn.json")
    save_weights({"encoder.weight": torch.zeros(64, 64)}, tmp_path / "foreign.pt")
    set_setting(qtbot, w, "init_weights", "foreign.pt")  # typed into "Initial weights"
    panel = w.training.panel
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as ended:
        w.act_train.trigger()
    assert ended.args == ["failed"]
    text = panel.message.text()
    assert "training.init_weights: " in text and "foreign.pt fits nothing in the design: no " \
        "tensor matches by name and shape (the file has encoder.weight; the design has fc1.bias" \
        in text and "nothing was loaded" in text
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("last.pt"))
