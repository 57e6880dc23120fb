"""What the training panel shows is the open project's, now: no data summary, error colour,
failure banner, plot axes or metric name left over from before; settings that do not apply are
not shown; the fit is the trained (top) network's whatever the canvas shows; a CSV column the
file lacks is named, never silently replaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from designer.engine.document.project import load_project, project_from_dict
from designer.engine.document.templates import load_template
from designer.ui.document import Document
from designer.ui.training.panel import TrainingPanel

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"
RED = "#c62828"


@pytest.fixture
def make_panel(qtbot, tmp_path):
    made = []

    def make(template: str = "mlp-digits") -> TrainingPanel:
        path = tmp_path / f"{template}.dnn.json"
        shutil.copy(TEMPLATES / f"{template}.dnn.json", path)
        doc = Document(load_project(path), path)
        panel = TrainingPanel(doc)
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        made.append((panel, doc))
        return panel

    yield make
    for panel, doc in made:
        panel.chooser.wait()
        panel.shutdown()
        doc.close()


def _open(panel, template: str) -> None:
    """What New/Open does to the panel: another project in the same document."""
    panel.document.replace_project(project_from_dict(load_template(template).to_dict()), None)
    panel.reset_view()


def _load(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: not panel.chooser.is_loading())  # a load already on its way
    with qtbot.waitSignal(panel.chooser.loaded, timeout=30000):
        qtbot.mouseClick(panel.chooser.load_button, Qt.LeftButton)


def _shown(widget, form) -> bool:
    return widget.isVisibleTo(form)


# -- item 18: nothing of the project or run before stays on screen ------------------------------

def test_the_data_summary_is_the_open_projects(qtbot, make_panel):
    panel = make_panel()
    qtbot.waitUntil(lambda: not panel.chooser.is_loading())
    _load(qtbot, panel)
    assert "1,617" in panel.chooser.info.text() or "digits" in panel.chooser.info.text()
    _open(panel, "char-lstm")  # a text file, not loaded yet
    assert panel.chooser.info.text() == "No dataset loaded yet."
    assert "Not checked yet" in panel.chooser.fit_label.text()


def test_a_failed_load_is_red_and_the_fit_says_why_it_is_not_checked(qtbot, make_panel):
    panel = make_panel()
    chooser = panel.chooser
    qtbot.waitUntil(lambda: not chooser.is_loading())  # the digits, checked unasked
    chooser.set_config({"kind": "csv", "path": "nowhere.csv"}, panel._base_dir())
    qtbot.mouseClick(chooser.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not chooser.is_loading() and "nowhere.csv" in chooser.info.text())
    assert RED in chooser.info.styleSheet()
    assert chooser.fit_label.text().startswith("Not checked: the data could not be loaded")
    assert RED in chooser.fit_label.styleSheet()
    panel._recheck_fit()  # a later check (the design was edited) says the same
    assert chooser.fit_label.text().startswith("Not checked: the data could not be loaded")


def test_the_failure_banner_goes_once_the_data_is_changed(qtbot, make_panel, tmp_path):
    panel = make_panel()
    panel.chooser.set_config({"kind": "csv", "path": "data.csv"}, panel._base_dir())
    with qtbot.waitSignal(panel.run_finished, timeout=30000) as ended:
        assert panel.train()
    assert ended.args == ["failed"] and panel.message.isVisible()
    (tmp_path / "table.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n"
                                                             for i in range(40)))
    edit = panel.chooser.path_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "table.csv")
    qtbot.keyClick(edit, Qt.Key_Return)  # the folder fixed: the old failure is not this data's
    assert not panel.message.isVisible()


def test_the_failure_banner_goes_once_the_folder_is_fixed_and_loads(qtbot, make_panel, tmp_path):
    panel = make_panel()
    panel.chooser.set_config({"kind": "csv", "path": "data.csv"}, panel._base_dir())
    with qtbot.waitSignal(panel.run_finished, timeout=30000) as ended:
        assert panel.train()
    assert ended.args == ["failed"] and panel.message.isVisible()
    (tmp_path / "data.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n"
                                                            for i in range(40)))
    _load(qtbot, panel)  # the same settings, the file now there: "Load and check"
    assert not panel.message.isVisible()


def test_a_load_already_on_its_way_when_a_run_fails_leaves_the_banner(qtbot, make_panel):
    """The data's own load, started before the run failed (on another cause: its weights),
    ends after the failure: the banner stays; only a load started after it clears it."""
    from designer.engine.train.events import Failed

    panel = make_panel()
    qtbot.waitUntil(lambda: not panel.chooser.is_loading())
    with qtbot.waitSignal(panel.chooser.loaded, timeout=30000):
        panel.chooser.load()  # on its way; its result is delivered after the failure below
        panel._on_event(Failed("training.init_weights: w.pt fits nothing in the design", ""))
    assert panel.message.isVisible() and "fits nothing" in panel.message.text()
    _load(qtbot, panel)  # "Load and check" pressed after the failure: the data loads now
    assert not panel.message.isVisible()


def test_a_folder_chosen_with_browse_is_loaded_and_checked_at_once(
        qtbot, make_panel, tmp_path, monkeypatch):
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    for c, name in enumerate(("cats", "dogs")):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (200 * c, 40, 90)).save(tmp_path / "photos" / name / f"{i}.png")
    panel = make_panel()
    chooser = panel.chooser
    qtbot.waitUntil(lambda: not chooser.is_loading())
    chooser.kind_combo.setCurrentIndex(chooser.kind_combo.findData("image_folder"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(tmp_path / "photos")))
    with qtbot.waitSignal(chooser.loaded, timeout=30000) as loaded:
        qtbot.mouseClick(chooser.browse_button, Qt.LeftButton)  # no "Load and check" needed
    assert loaded.args[0].class_names == ["cats", "dogs"]
    assert panel.document.project.dataset["path"] == "photos"  # relative to the project
    qtbot.waitUntil(lambda: chooser.fix_button.isVisible())  # the digits MLP does not fit


def test_empty_plots_keep_no_axes_of_before_and_curves_keep_their_metric(qtbot, make_panel):
    panel = make_panel()
    plots = panel.plots
    plots.set_epochs(30)
    for e in range(1, 31):
        plots.add_epoch(e, 40.0 + e, 41.0 + e, 0.5, 0.6, 0.1)
    plots.stop()  # draws
    assert plots.metric_plot.getAxis("left").labelText == "accuracy"
    # a regression dataset loaded over a classification run's curves: the axis keeps its name
    panel.chooser.set_config({"kind": "synthetic", "name": "linear", "n_samples": 100})
    _load(qtbot, panel)
    assert plots.metric_plot.getAxis("left").labelText == "accuracy"
    _open(panel, "linear-regression")
    (_, x1), (_, y1) = plots.loss_plot.viewRange()
    assert x1 <= 2 and y1 <= 2, "the empty loss plot still shows the last run's axes"
    _load(qtbot, panel)  # now the curves are empty: the name follows the data
    assert plots.metric_plot.getAxis("left").labelText == "R²"


# -- item 21: settings that do not apply are not shown ------------------------------------------

def test_settings_that_do_not_apply_are_hidden(qtbot, make_panel):
    panel = make_panel()
    chooser, form = panel.chooser, panel.chooser.form
    chooser.set_config({"kind": "synthetic", "name": "linear"})
    assert _shown(form.editor("linear_w"), form)
    chooser.set_config({"kind": "digits"})  # the next project's data
    assert not _shown(form.editor("linear_w"), form) and not _shown(form.editor("linear_b"), form)
    assert "linear_w" not in chooser.config()
    chooser.set_config({"kind": "text", "path": "t.txt"})
    assert not _shown(form.editor("linear_w"), form)
    _open(panel, "char-lstm")  # a language model computes its own loss
    settings = panel.settings
    assert not _shown(settings.editor("loss"), settings)
    assert _shown(settings.editor("lm_temperature"), settings)
    _open(panel, "mlp-digits")
    assert _shown(settings.editor("loss"), settings)
    assert not _shown(settings.editor("lm_temperature"), settings)


# -- item 5: the fit is the trained network's ---------------------------------------------------

def test_the_fit_and_its_fix_are_the_top_networks_with_a_block_open(qtbot, make_panel,
                                                                      monkeypatch):
    panel = make_panel("resnet-mini")
    doc = panel.document
    block_before = doc.project.networks["ResidualBlock"].to_dict()
    combo = panel.chooser.kind_combo
    combo.setCurrentIndex(combo.findData("digits"))  # the user picks Digits
    assert doc.project.dataset["kind"] == "digits"
    doc.open_block(doc.graph.node_by_name("b1").id)  # double-click b1: its definition shows
    assert doc.network == "ResidualBlock" and doc.trained_network == "model"
    _load(qtbot, panel)
    qtbot.waitUntil(lambda: "image" in panel.chooser.fit_label.text(), timeout=10000)
    assert panel.chooser.fix_button.isVisibleTo(panel)
    qtbot.mouseClick(panel.chooser.fix_button, Qt.LeftButton)
    image = doc.project.networks["model"].node_by_name("image")
    assert image.params["shape"] == [1, 8, 8]
    assert doc.project.networks["ResidualBlock"].to_dict() == block_before
    assert "fit this dataset" in panel.chooser.fit_label.text()
    handed = []
    monkeypatch.setattr("designer.ui.training.panel.TrainingWorker",
                        lambda snapshot, *a, **k: handed.append(snapshot) or _NoRun())
    panel.train()
    assert handed[0].network == "model"  # Train trains the top network too
    assert handed[0].graph.to_dict() == doc.project.networks["model"].to_dict()


class _NoRun:
    class _Sig:
        def connect(self, *_):
            pass

    event = finished = _Sig()

    def start(self):
        pass

    def stop(self):
        pass

    def wait(self, *_):
        return True


# -- item 19: a CSV column the file lacks --------------------------------------------------------

def test_a_target_column_the_csv_lacks_is_named_not_replaced(qtbot, make_panel, tmp_path):
    (tmp_path / "iris.csv").write_text("f1,f2,f3,f4\n" + "".join(
        f"{i},{i % 5},{i % 7},{i % 2}\n" for i in range(30)))
    panel = make_panel()
    chooser = panel.chooser
    qtbot.waitUntil(lambda: not chooser.is_loading())  # the digits, checked unasked
    chooser.set_config({"kind": "csv", "path": "iris.csv", "target_column": "species",
                        "feature_columns": ["f1", "f2", "f3", "f4"]}, panel._base_dir())
    assert chooser.config()["target_column"] == "species"  # not silently the last column
    said = "dataset.target_column: iris.csv has no column 'species' (columns: f1, f2, f3, f4)"
    assert chooser.info.text() == said and RED in chooser.info.styleSheet()
    qtbot.mouseClick(chooser.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: chooser.info.text() != "Loading…")
    assert said in chooser.info.text()
    assert "also the target column" not in chooser.info.text()
    chooser.target_combo.setCurrentText("f4")  # the user picks a column that exists
    assert "species" not in chooser.info.text()
