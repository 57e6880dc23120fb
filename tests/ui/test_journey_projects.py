"""Journey: two projects, one after the other. Settings set in one never appear in the other;
each trains with exactly its file's settings (missing ones: their defaults, the recipe included);
Train, Sweeps, the Summary's memory estimate and the saved file agree on every setting."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import ClassVar

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from designer.engine.document.project import load_project, project_from_dict, save_project
from designer.engine.document.templates import list_templates, load_template
from designer.engine.train.config import TRAINING_SETTINGS, effective_training, validate_dataset
from designer.ui.document import Document
from designer.ui.training.panel import TrainingPanel


@pytest.fixture
def window(make_main_window):
    return make_main_window((1280, 800))


class _Captured(QObject):
    """Stands in for a worker thread (a training run or a sweep): keeps what it was handed and
    ends at once, so a test sees exactly what Train or Start would run, without running it."""

    event = Signal(object)
    finished = Signal()
    handed: ClassVar[list] = []

    def __init__(self, handed, *args, **kwargs) -> None:
        super().__init__()
        _Captured.handed.append(handed)

    def start(self) -> None:
        self.finished.emit()

    def wait(self, *_: object) -> bool:
        return True

    def stop(self) -> None:
        pass

    def observe(self, *_: object) -> None:
        pass


@pytest.fixture
def captured(monkeypatch):
    _Captured.handed = []
    monkeypatch.setattr("designer.ui.training.panel.TrainingWorker", _Captured)
    monkeypatch.setattr("designer.ui.sweeps.view.SweepWorker", _Captured)
    return _Captured.handed


def _project_file(folder: Path, name: str, training: dict, template: str = "mlp-digits") -> Path:
    project = load_template(template)
    project.set_section("training", training)
    path = folder / f"{name}.dnn.json"
    save_project(project, path)
    return path


def _open(window, monkeypatch, path: Path) -> None:
    """File > Open… and pick ``path`` in the file dialog."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.act_open.trigger()
    assert window.document.path == path


def _open_recent(window, path: Path) -> None:
    """File > Open Recent > the file's entry."""
    window.recent_menu.aboutToShow.emit()
    action = next(a for a in window.recent_menu.actions() if a.text() == path.name)
    action.trigger()
    assert window.document.path == path


def _new(window, monkeypatch, template_id: str) -> None:
    """File > New… and pick a template in the gallery."""
    from designer.ui.gallery import NewDialog

    def pick(dialog):
        dialog.select(template_id)
        return NewDialog.Accepted

    monkeypatch.setattr(NewDialog, "exec", pick)
    window.act_new.trigger()


def _type_number(qtbot, spin, value: int) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, str(value))
    qtbot.keyClick(spin, Qt.Key_Return)


def _shown_training(panel) -> dict:
    return effective_training(panel.settings.values())


def _train_snapshot(window, captured):
    before = len(captured)
    window.act_train.trigger()
    assert len(captured) == before + 1, window.training.panel.message.text()
    return captured[-1]


def test_two_projects_never_share_settings(qtbot, window, tmp_path, monkeypatch, captured):
    first = _project_file(tmp_path, "first", load_template("mlp-digits").training)
    second = _project_file(tmp_path, "second", {})  # a file that says nothing: all defaults
    _open(window, monkeypatch, second)
    _open(window, monkeypatch, first)
    panel = window.training.panel
    # type Epochs 5 and tick Frozen BatchNorm in the first project, and save it
    _type_number(qtbot, panel.settings.editor("epochs"), 5)
    panel.settings.editor("freeze_bn_eval").click()
    window.act_save.trigger()
    saved = load_project(first).training
    assert saved["epochs"] == 5 and saved["freeze_bn_eval"] is True

    _open_recent(window, second)
    defaults = effective_training({})
    assert panel.settings.editor("epochs").value() == 10  # the default, not the 5 typed before
    assert not panel.settings.editor("freeze_bn_eval").isChecked()
    assert panel.settings.editor("batch_size").value() == 64
    assert _shown_training(panel) == defaults
    assert not window.document.is_modified()

    snap = _train_snapshot(window, captured)
    assert snap.training == defaults
    assert snap.extra_config["project"]["training"] == defaults  # the run's config.json
    # Sweeps: mark the learning rate (⚲ beside it) and press Start
    qtbot.mouseClick(panel.settings.search_buttons["lr"], Qt.LeftButton)
    qtbot.mouseClick(window.sweeps.panel.start_button, Qt.LeftButton)
    request = captured[-1]
    assert request.project.training == defaults
    # the Summary's and the status bar's memory estimates are at the file's batch size
    window.summary.show()
    window.summary.raise_()
    qtbot.waitUntil(lambda: "at batch 64" in window.summary.totals.text(), timeout=10000)
    assert "at batch 64" in window.status_memory.toolTip()
    # Save: the file, read back, trains with the same settings
    window.act_save.trigger()
    assert effective_training(load_project(second).training) == defaults

    # and back: the first project shows and trains with what was typed and saved in it
    _open_recent(window, first)
    assert panel.settings.editor("epochs").value() == 5
    assert panel.settings.editor("freeze_bn_eval").isChecked()
    snap = _train_snapshot(window, captured)
    assert snap.training == effective_training(saved)
    assert snap.training["batch_size"] == 32 and snap.training["lr"] == 0.01


def test_every_new_template_trains_with_its_own_settings_recipe_included(
        qtbot, window, monkeypatch, captured):
    """New > char-lstm, New > ResNet-18, New > LSTM sentiment: the recipe, the weight decay and
    every other setting are the last template's own; nothing of the ones before stays."""
    panel = window.training.panel
    for template_id in ("char-lstm", "gan-digits", "resnet18", "lstm-sentiment"):
        _new(window, monkeypatch, template_id)
        expected = effective_training(load_template(template_id).training)
        assert _shown_training(panel) == expected, template_id
        assert window.document.training_settings() == expected
    assert panel.settings.editor("recipe").currentText() == "supervised"
    qtbot.waitUntil(lambda: window.document.analysis is not None)
    snap = _train_snapshot(window, captured)
    assert snap.training == expected
    assert snap.training["recipe"] == "supervised" and snap.training["weight_decay"] == 0.0
    assert snap.training["lr"] == 0.003 and snap.training["lr_g"] == effective_training({})["lr_g"]
    assert "language model" not in panel.message.text()


def test_a_project_trains_with_its_file_settings_after_another(qtbot, window, tmp_path,
                                                                monkeypatch):
    """One real run (1 epoch, digits): after a project with other settings typed, the next one
    trains with its file's settings, as its run's config.json records."""
    other = _project_file(tmp_path, "other", load_template("mlp-digits").training)
    tiny = _project_file(tmp_path, "tiny", {"epochs": 1, "batch_size": 512})
    _open(window, monkeypatch, tiny)
    _open(window, monkeypatch, other)
    panel = window.training.panel
    _type_number(qtbot, panel.settings.editor("epochs"), 3)
    _type_number(qtbot, panel.settings.editor("seed"), 7)
    panel.settings.editor("freeze_bn_eval").click()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Discard)
    _open_recent(window, tiny)  # "Save the changes?" Discard
    qtbot.waitUntil(lambda: window.document.analysis is not None)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as ended:
        window.act_train.trigger()
    assert ended.args == ["finished"]
    config = json.loads((panel.run_dir / "config.json").read_text())
    expected = effective_training({"epochs": 1, "batch_size": 512})
    assert {k: config["training"][k] for k in expected} == expected
    assert "after 1 epoch(s)" in panel.progress_label.text()


def _every_ordered_pair(ids: list[str]) -> list[str]:
    """A walk through ``ids`` in which every ordered pair (a, b), a != b, appears as two
    consecutive steps (an Eulerian circuit of the complete directed graph, Hierholzer)."""
    left = {a: [b for b in ids if b != a] for a in ids}
    stack, walk = [ids[0]], []
    while stack:
        node = stack[-1]
        if left[node]:
            stack.append(left[node].pop())
        else:
            walk.append(stack.pop())
    return walk[::-1]


def _other_values(training: dict) -> dict:
    """A value different from the default and the file's for every training setting (the
    recipe stays: a project's networks are made for it)."""
    out = {}
    for s in TRAINING_SETTINGS:
        now = training[s.key]
        if s.key == "recipe":
            continue
        if s.type == "bool":
            out[s.key] = not now
        elif s.type == "choice":
            out[s.key] = next(c for c in reversed(s.choices) if c not in (now, s.default))
        elif s.type == "int":
            out[s.key] = next(v for v in (7, 3, s.min) if v != now and s.min <= v <= s.max)
        elif s.type == "float":
            out[s.key] = next(v for v in (0.0123, 0.5, s.max) if v != now and s.min <= v <= s.max)
        elif s.type == "text":
            out[s.key] = "leaked.pt" if now != "leaked.pt" else "other.pt"
    return out


def test_every_template_after_every_other_shows_and_runs_only_its_own(qtbot, captured):
    """Open every template after every other one (each ordered pair once), with different
    values typed into every training and dataset setting of the one before: the form, Train's
    settings and the dataset are each time exactly the file's."""
    ids = [t.id for t in list_templates()]
    projects = {i: load_template(i).to_dict() for i in ids}
    doc = Document(project_from_dict(projects[ids[0]]))
    panel = TrainingPanel(doc)
    qtbot.addWidget(panel)
    walk = _every_ordered_pair(ids)
    assert len(walk) == len(ids) * (len(ids) - 1) + 1
    try:
        for before, now in itertools.pairwise(walk):
            # the one before: every setting changed by hand
            panel.settings.set_values(_other_values(doc.training_settings()))
            panel._on_training_edited()
            panel.chooser.form.set_values({"val_fraction": 0.37, "split_seed": 7,
                                           "normalize": False})
            panel.chooser._on_edit()
            doc.replace_project(project_from_dict(projects[now]), None)
            panel.reset_view()
            expected = effective_training(projects[now]["training"])
            where = f"{now} after {before}"
            assert _shown_training(panel) == expected, where
            assert panel.train(), f"{where}: {panel.message.text()}"  # what Train hands a run
            snap = captured[-1]
            assert snap.training == expected, where
            assert not doc.is_modified(), where  # nothing was written into the new one
            assert validate_dataset(snap.dataset) == validate_dataset(
                projects[now]["dataset"]), where
    finally:
        panel.chooser.wait()
        panel.shutdown()
        doc.close()
