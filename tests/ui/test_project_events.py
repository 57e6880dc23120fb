"""Views follow the project's change events, not the undo stack: the training panel's form after
undo and redo of a settings edit, its hand-over to another document, and the window's network
tabs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from designer.engine.document.project import Project, load_project
from designer.engine.model.graph import Graph
from designer.ui.document import Document
from designer.ui.training.panel import SetSettingsCommand, TrainingPanel

TEMPLATE = Path(__file__).resolve().parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"


@pytest.fixture
def panel(qtbot, tmp_path):
    path = tmp_path / "mlp-digits.dnn.json"
    shutil.copy(TEMPLATE, path)
    doc = Document(load_project(path), path)
    p = TrainingPanel(doc)
    qtbot.addWidget(p)
    yield p
    p.shutdown()
    doc.close()


def test_undo_and_redo_of_a_settings_edit_refresh_the_form_through_the_event(qtbot, panel):
    doc = panel.document
    before = panel.settings.values()["epochs"]
    panel.settings.editor("epochs").setValue(before + 4)
    assert doc.project.training["epochs"] == before + 4
    doc.undo_stack.indexChanged.disconnect()  # only the project's event may refresh the form
    with qtbot.waitSignal(doc.settings_changed) as sig:
        doc.undo_stack.undo()
    assert sig.args == ["training"]
    assert panel.settings.values()["epochs"] == before
    doc.undo_stack.redo()
    assert panel.settings.values()["epochs"] == before + 4


def test_a_settings_change_made_elsewhere_shows_in_the_form(qtbot, panel):
    doc = panel.document
    training = dict(doc.project.training, epochs=11)
    doc.undo_stack.push(SetSettingsCommand(doc.project, "training", training, "Elsewhere"))
    assert panel.settings.values()["epochs"] == 11
    doc.project.set_section("training", dict(training, epochs=12))  # without the stack, too
    assert panel.settings.values()["epochs"] == 12


def test_the_settings_command_goes_through_the_model(qtbot, panel):
    doc = panel.document
    events = []
    doc.project.subscribe(events.append)
    dataset = dict(doc.project.dataset, seed=5)
    doc.undo_stack.push(SetSettingsCommand(doc.project, "dataset", dataset, "Change dataset"))
    doc.undo_stack.undo()
    assert [(e.kind, e.key) for e in events] == [("settings_changed", "dataset")] * 2
    assert "seed" not in doc.project.dataset or doc.project.dataset["seed"] != 5


def test_the_panel_stops_observing_a_document_it_left(qtbot, panel):
    old = panel.document
    other = Document(Project(training={"epochs": 3}))
    try:
        panel.set_document(other)
        assert panel.settings.values()["epochs"] == 3
        old.project.set_section("training", dict(old.project.training, epochs=21))
        assert panel.settings.values()["epochs"] == 3
        other.project.set_section("training", {"epochs": 4})
        assert panel.settings.values()["epochs"] == 4
        panel.set_document(None)
        other.project.set_section("training", {"epochs": 6})  # no callback into the panel
        assert panel.settings.values()["epochs"] == 4
    finally:
        other.close()


def test_a_deleted_panel_gets_no_callbacks(qtbot):
    doc = Document(Project(training={"epochs": 3}))
    try:
        p = TrainingPanel(doc)
        p.shutdown()
        p.deleteLater()
        qtbot.wait(10)
        from PySide6.QtCore import QCoreApplication, QEvent

        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        doc.project.set_section("training", {"epochs": 5})  # must not raise
    finally:
        doc.close()


def test_window_tabs_follow_network_events(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from designer.ui.main_window import MainWindow

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(window, before_close_func=lambda win: win.shutdown())
    doc = window.document
    tabs = window.network_tabs

    def names():
        return [tabs.tabText(i) for i in range(tabs.count())]

    first = doc.network
    doc.add_network("critic", Graph())
    assert names() == [first, "critic"]
    doc.rename_network("critic", "disc")
    assert names() == [first, "disc"]
    tabs.setCurrentIndex(1)
    assert doc.network == "disc"
    doc.undo_stack.undo()  # the rename
    assert names() == [first, "critic"] and doc.network == "critic"
    doc.undo_stack.undo()  # the addition of the shown network
    assert names() == [first] and doc.network == first and tabs.currentIndex() == 0
