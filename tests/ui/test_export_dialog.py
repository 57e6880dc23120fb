"""The export dialog: highlighted previews of model.py and train.py, and writing the chosen files
through the export engine."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from designer.engine.document.project import load_project
from designer.ui.training.export_dialog import ExportDialog
from designer.ui.training.highlighter import PythonHighlighter

TEMPLATE = Path(__file__).resolve().parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"


@pytest.fixture(scope="module")
def project():
    return load_project(TEMPLATE)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, project):
    """A real run folder: one short epoch of the template on digits."""
    from designer.engine.model.build import build_model
    from designer.engine.train.data import load_dataset
    from designer.engine.train.training import Trainer

    out = tmp_path_factory.mktemp("runs") / "run1"
    ds = load_dataset(project.dataset)
    result = Trainer(build_model(project.graph, seed=0), ds,
                     {**project.training, "epochs": 1, "batch_size": 128}, run_dir=out).run()
    assert result.status == "finished", result.message
    return out


def make(qtbot, project, **kw):
    d = ExportDialog(copy.deepcopy(project), TEMPLATE.parent, **kw)
    qtbot.addWidget(d)
    return d


def test_preview_shows_both_files_highlighted(qtbot, project):
    d = make(qtbot, project)
    assert set(d.editors) == {"model.py", "train.py"}
    model = d.source("model.py")
    assert "class " in model and "nn.Module" in model and "def forward" in model
    assert "def main" in d.source("train.py")
    d.show()
    qtbot.wait(10)
    doc = d.editors["model.py"].document()
    hl = d.highlighters[0]
    import_line = next(b for b in _blocks(doc) if b.text().startswith("import torch"))
    assert hl.format_name_at(import_line, 0) == "keyword"
    comment = next(b for b in _blocks(doc) if b.text().startswith("#"))
    assert hl.format_name_at(comment, 0) == "comment"


def _blocks(doc):
    b = doc.firstBlock()
    while b.isValid():
        yield b
        b = b.next()


def test_highlighter_strings_comments_and_triple_quotes(qtbot):
    from PySide6.QtWidgets import QPlainTextEdit

    ed = QPlainTextEdit()
    qtbot.addWidget(ed)
    hl = PythonHighlighter(ed.document())
    ed.setPlainText('x = "a # not a comment"  # comment\n"""doc\nstill doc\n"""\ndef f(): pass\n')
    blocks = list(_blocks(ed.document()))
    assert hl.format_name_at(blocks[0], 6) == "string"
    assert hl.format_name_at(blocks[0], 26) == "comment"
    assert hl.format_name_at(blocks[2], 0) == "string"  # inside the triple-quoted string
    assert hl.format_name_at(blocks[4], 0) == "keyword"
    assert hl.format_name_at(blocks[4], 4) == "defname"


def test_export_code_and_weights(qtbot, project, run_dir, tmp_path):
    d = make(qtbot, project, runs=[("run 1", run_dir)])
    assert d.weights_check.isChecked()
    d.folder_edit.setText(str(tmp_path / "out"))
    written = d.export()
    names = sorted(p.name for p in written)
    assert names == ["model.py", "train.py", "weights.pt"]
    assert (tmp_path / "out" / "model.py").read_text() == d.source("model.py")
    assert "Wrote 3 file(s)" in d.status.text()


def test_weights_only_leaves_the_code_out(qtbot, project, run_dir, tmp_path):
    d = make(qtbot, project, runs=[("run 1", run_dir)])
    d.code_check.setChecked(False)
    d.folder_edit.setText(str(tmp_path / "w"))
    assert [p.name for p in d.export()] == ["weights.pt"]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["weights.pt"]


def test_onnx_when_the_extra_is_installed(qtbot, project, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    d = make(qtbot, project)
    assert not d.weights_check.isEnabled()  # no runs yet
    d.onnx_check.setChecked(True)
    d.folder_edit.setText(str(tmp_path / "o"))
    assert "model.onnx" in [p.name for p in d.export()]


def test_nothing_chosen_and_bad_designs_are_refused(qtbot, project, tmp_path):
    d = make(qtbot, project)
    d.code_check.setChecked(False)
    d.folder_edit.setText(str(tmp_path / "none"))
    assert d.export() == []
    assert "Nothing chosen" in d.status.text()
    assert not (tmp_path / "none").exists()

    broken = copy.deepcopy(project)
    g = broken.graph
    g.disconnect(g.in_edges(g.node_by_name("fc2").id)[0])
    d2 = make(qtbot, broken)
    assert d2.preview_error.isVisibleTo(d2)
    assert "fc2" in d2.preview_error.text()
    assert not d2.export_button.isEnabled()


def test_unwritable_folder_gives_a_message(qtbot, project, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    d = make(qtbot, project)
    d.folder_edit.setText(str(blocker / "sub"))
    assert d.export() == []
    assert d.status.text().startswith("Export failed")


def test_the_dialog_exports_through_the_service_the_cli_uses(qtbot, project, run_dir, tmp_path,
                                                             monkeypatch):
    """The dialog and ``designer export`` share designer.engine.services.export_project."""
    from designer.engine.services import export_project

    calls = []
    real = export_project.export_files

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(export_project, "export_files", recording)
    d = make(qtbot, project, runs=[("run 1", run_dir)])
    d.code_check.setChecked(False)
    d.folder_edit.setText(str(tmp_path / "w"))
    assert [p.name for p in d.export()] == ["weights.pt"]
    assert len(calls) == 1 and calls[0]["code"] is False
    assert calls[0]["weights"] == str(run_dir)
