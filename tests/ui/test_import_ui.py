"""File > Import model…, File > Load weights… and the "trainable" checkbox: the dialog imports
torchvision's resnet18 off the GUI thread and opens it as a new design; a model fx cannot trace
shows its report; weights that do not fit are reported and change nothing; freezing is one undo
step and shows a lock on the canvas. Nothing is downloaded (weights=None)."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from torch import nn

from designer.engine.interop.importing import save_weights
from designer.engine.model.blocks import BLOCK
from designer.ui.main_window import MainWindow
from tests.ui.test_main_window import Dialogs, _wait_analysis

pytest.importorskip("torchvision")


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


@pytest.fixture
def window(qtbot, tmp_path, dialogs):
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.show()
    yield w
    w.shutdown()


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class AuxStage(nn.Module):
    """RegNet's attribute names (block1-0) and GoogLeNet's training-only head, in small."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("block1-0", nn.Linear(4, 8))
        self.aux = nn.Linear(8, 3)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(getattr(self, "block1-0")(x))
        if self.training:
            return self.head(x), self.aux(x)
        return self.head(x)


def _import(qtbot, w, spec: str, shape: str = "3,32,32", **checks):
    dialog = w.make_import_dialog()
    qtbot.addWidget(dialog)
    dialog.spec.setEditText(spec)
    dialog.shape.setText(shape)
    for name, on in checks.items():
        getattr(dialog, name).setChecked(on)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=120000)
    assert not dialog.is_running()
    return dialog


def test_import_dialog_opens_resnet18_as_a_new_design(qtbot, window):
    w = window
    dialog = _import(qtbot, w, "torchvision:resnet18")
    assert dialog.result_.report.ok, dialog.report.toPlainText()
    assert "11,689,512 parameters" in dialog.report.toPlainText()
    doc = w.document
    assert doc.path is None and not doc.is_modified()  # a new untitled document
    assert doc.project.name == "resnet18"
    model = doc.project.networks["model"]
    uses = [n for n in model.nodes.values() if n.type == BLOCK]
    assert len(uses) == 4 and {"BasicBlock", "BasicBlock_2"} <= set(doc.project.networks)
    analysis = _wait_analysis(qtbot, w, timeout=60000)
    assert analysis.ok
    assert analysis.total_params == 11_689_512
    assert set(w.view.scene().node_items) == set(model.nodes)  # blocks are one box each


def test_a_model_fx_cannot_trace_shows_the_report_and_opens_nothing(qtbot, window):
    w = window
    before = w.document.project
    dialog = _import(qtbot, w, "tests.ui.test_import_ui:Branchy", shape="4")
    assert dialog.result_.project is None
    text = dialog.report.toPlainText()
    assert text.startswith("Import failed") and "Unsupported" in text
    assert "control flow" in text or "data-dependent" in text or "symbolically traced" in text
    assert "Not imported" in dialog.status.text()
    assert w.document.project is before


def test_a_file_spec_with_weights_saves_them_beside_the_project(qtbot, window, tmp_path):
    w = window
    src = tmp_path / "tiny.py"
    src.write_text("import torch.nn as nn\n\nclass Tiny(nn.Sequential):\n"
                   "    def __init__(self):\n        super().__init__(nn.Linear(4, 3), nn.ReLU())\n",
                   encoding="utf-8")
    dialog = w.make_import_dialog()
    qtbot.addWidget(dialog)
    assert not dialog.project_file.isEnabled()
    dialog.spec.setEditText(f"{src}:Tiny")
    dialog.shape.setText("4")
    dialog.weights.setChecked(True)
    assert not dialog.start()  # where the project goes is asked first
    assert "Project file" in dialog.status.text()
    dialog.project_file.setText(str(tmp_path / "tiny.dnn.json"))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=60000)
    assert dialog.result_.report.ok
    assert (tmp_path / "tiny.weights.pt").is_file()
    assert w.document.path == tmp_path / "tiny.dnn.json"
    assert w.document.project.training["init_weights"] == "tiny.weights.pt"


def test_import_with_weights_into_a_folder_not_made_yet(qtbot, window, tmp_path, monkeypatch):
    """The README's walk-through types `proj/r18.dnn.json` as the project file: the folder is made
    (it was "the import failed: RuntimeError: Parent directory proj does not exist")."""
    w = window
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "tiny.py"
    src.write_text("import torch.nn as nn\n\nclass Tiny(nn.Sequential):\n"
                   "    def __init__(self):\n        super().__init__(nn.Linear(4, 3))\n",
                   encoding="utf-8")
    dialog = w.make_import_dialog()
    qtbot.addWidget(dialog)
    dialog.spec.setEditText(f"{src}:Tiny")
    dialog.shape.setText("4")
    qtbot.mouseClick(dialog.weights, Qt.LeftButton)
    qtbot.keyClicks(dialog.project_file, "proj/tiny.dnn.json")
    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=60000)
    assert dialog.result_.project is not None, dialog.report.toPlainText()
    assert (tmp_path / "proj" / "tiny.weights.pt").is_file()
    assert (tmp_path / "proj" / "tiny.dnn.json").is_file()
    assert w.document.project.training["init_weights"] == "tiny.weights.pt"


def test_an_error_in_the_import_is_said_once(qtbot, window, monkeypatch):
    """An exception the import did not expect: the report and the status name it, and say
    "failed" once (they said "Import failed: the import failed: RuntimeError: ...")."""
    from designer.ui import import_dialog

    def broken(request):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_dialog, "run_import", broken)
    dialog = window.make_import_dialog()
    qtbot.addWidget(dialog)
    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=10000)
    assert dialog.report.toPlainText() == "Import failed: RuntimeError: disk on fire"
    assert "Not imported" in dialog.status.text() and "disk on fire" in dialog.status.text()
    assert "failed" not in dialog.status.text()


def test_load_weights_that_do_not_fit_changes_nothing(qtbot, window, dialogs, tmp_path):
    w = window
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)
    save_weights({"nope.weight": torch.zeros(2, 2)}, tmp_path / "bad.pt")
    before = dict(w.document.project.training)
    assert not w.load_weights_file(tmp_path / "bad.pt")
    _kind, title, text = dialogs.shown[-1]
    assert title == "The weights do not fit the design"
    assert "Missing from the file" in text and "In the file but not in the design" in text
    assert "nope.weight" in text
    assert w.document.project.training == before and not w.document.is_modified()


def test_load_weights_that_fit_set_init_weights_in_one_undo_step(qtbot, window, tmp_path):
    from designer.engine.model.build import build_model

    w = window
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)
    w.save_to(tmp_path / "p.dnn.json")
    (tmp_path / "w").mkdir()
    save_weights(build_model(w.document.project.networks[w.document.network]).state_dict(),
                 tmp_path / "w" / "good.pt")
    assert w.load_weights_file(tmp_path / "w" / "good.pt")
    assert w.document.project.training["init_weights"] == "w/good.pt"  # relative to the project
    w.document.undo_stack.undo()
    assert not w.document.project.training.get("init_weights")


def test_trainable_checkbox_freezes_with_undo_and_shows_a_lock(qtbot, window):
    w = window
    assert w.open_template("mlp-digits")
    _wait_analysis(qtbot, w)
    doc = w.document
    node = next(n for n in doc.graph.nodes.values() if n.type not in ("Input", "Output"))
    w.inspector.set_node(node.id)
    check = w.inspector.trainable_check
    assert check is not None and check.isChecked()
    item = w.view.scene().node_items[node.id]
    assert not item.frozen
    check.click()
    assert doc.graph.nodes[node.id].frozen and item.frozen and not check.isChecked()
    assert "Frozen" in item.tooltip_text()
    assert doc.undo_stack.undoText().startswith("Freeze")
    doc.undo_stack.undo()
    assert not doc.graph.nodes[node.id].frozen and not item.frozen and check.isChecked()
    doc.undo_stack.redo()
    assert item.frozen
    check.click()  # trainable again: one more step
    assert not doc.graph.nodes[node.id].frozen
    inp = next(n for n in doc.graph.nodes.values() if n.type == "Input")
    w.inspector.set_node(inp.id)
    assert w.inspector.trainable_check is None  # an input has no weights


def test_pretrained_without_a_network_says_so(monkeypatch):
    """Nothing is downloaded: torchvision's download is stood in for by the error it raises
    offline."""
    from urllib.error import URLError

    from designer.engine.services import model_import
    from designer.ui.import_dialog import OFFLINE, ImportRequest, run_import

    def offline(spec, pretrained=False, input_shape=None, config=None):
        assert pretrained
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(model_import, "load_spec", offline)
    result = run_import(ImportRequest("torchvision:resnet18", (3, 32, 32), weights=True,
                                      pretrained=True))
    assert result.project is None and result.error.startswith(OFFLINE)


def test_a_definition_opened_from_a_frozen_use_shows_its_layers_locked(qtbot, window):
    from designer.engine.document.templates import load_template

    w = window
    w.set_project(load_template("resnet18"), None)
    doc = w.document
    use = next(n for n in doc.graph.nodes.values() if n.type == BLOCK)
    other = next(n for n in doc.graph.nodes.values() if n.type == BLOCK and n.id != use.id
                 and n.params.get("block") == use.params.get("block"))
    doc.set_frozen(use.id, True)
    doc.open_block(use.id)
    items = w.view.scene().node_items.values()
    assert items and all(i.frozen_by_use and not i.frozen for i in items)
    assert doc.go_up(0)
    doc.open_block(other.id)  # the same definition from a trainable use: no lock
    assert not any(i.frozen_by_use for i in w.view.scene().node_items.values())


def test_an_imported_module_attribute_and_aux_output_show_in_the_inspector(qtbot, window):
    w = window
    dialog = _import(qtbot, w, "tests.ui.test_import_ui:AuxStage", shape="4")
    text = dialog.report.toPlainText()
    assert dialog.result_.report.ok, text
    assert "Auxiliary outputs" in text and "fed by aux: loss weight 0.3" in text
    _wait_analysis(qtbot, w)
    graph = w.document.graph
    block = graph.node_by_name("block1_0")
    assert block.attr == "block1-0"
    w.inspector.set_node(block.id)
    label = w.inspector.attr_label
    assert label.isVisibleTo(w.inspector) and "block1-0" in label.text()
    (aux,) = [n for n in graph.outputs() if n.params["aux_weight"] > 0]
    item = w.view.scene().node_items[aux.id]
    assert any("aux_weight=0.3" in line for line in item._param_lines)
    main = next(n for n in graph.outputs() if n is not aux)
    assert not any("aux_weight" in line for line in w.view.scene().node_items[main.id]._param_lines)
    w.inspector.set_node(aux.id)
    assert not w.inspector.attr_label.isVisibleTo(w.inspector)
    assert "aux_weight" in w.inspector.editors


def test_the_dialog_imports_through_the_service_the_cli_uses(qtbot, window, tmp_path,
                                                             monkeypatch):
    """File > Import model… and ``designer import`` share designer.engine.services.model_import:
    the dialog's import (with weights) is that service's, and it still saves the weights."""
    from designer.engine.services import model_import

    calls = []
    real = model_import.import_to_project

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_import, "import_to_project", recording)
    src = tmp_path / "tiny.py"
    src.write_text("import torch.nn as nn\n\nclass Tiny(nn.Sequential):\n"
                   "    def __init__(self):\n        super().__init__(nn.Linear(4, 3), nn.ReLU())\n",
                   encoding="utf-8")
    dialog = window.make_import_dialog()
    qtbot.addWidget(dialog)
    dialog.spec.setEditText(f"{src}:Tiny")
    dialog.shape.setText("4")
    dialog.weights.setChecked(True)
    dialog.project_file.setText(str(tmp_path / "tiny.dnn.json"))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result_ is not None, timeout=60000)
    assert len(calls) == 1 and calls[0]["weights_beside"] == tmp_path / "tiny.dnn.json"
    assert (tmp_path / "tiny.weights.pt").is_file()
    assert "Weights written to" in dialog.report.toPlainText()
    assert window.document.project.training["init_weights"] == "tiny.weights.pt"


def test_weights_that_cannot_be_written_are_said_with_the_report(tmp_path):
    from designer.ui.import_dialog import ImportRequest, run_import

    src = tmp_path / "tiny.py"
    src.write_text("import torch.nn as nn\n\ndef make():\n    return nn.Sequential(nn.Linear(4, 3))\n",
                   encoding="utf-8")
    (tmp_path / "afile").write_text("not a folder")
    result = run_import(ImportRequest(f"{src}:make", (4,), weights=True,
                                      project_file=tmp_path / "afile" / "t.dnn.json"))
    assert result.project is None and result.report is not None and result.report.ok
    assert result.error.startswith("the weights could not be written: ")


def test_the_dialog_report_shows_each_cause_once_with_its_places():
    """A cause repeated in every block is one line with its count (the report listed each
    instance), and an import with code kept says how much of it is editable."""
    from designer.engine.interop.importing import ImportReport, Unsupported
    from designer.ui.import_dialog import ImportResult, report_text

    entries = [Unsupported(f"blocks.{i}", "cumsum", "no designer layer for this function")
               for i in range(7)]
    text = report_text(ImportResult(report=ImportReport("Many", [8], unsupported=entries)))
    assert text.startswith("Import failed: Many: 7 part(s) have no designer layer:")
    (line,) = [x for x in text.splitlines() if "cumsum" in x]
    assert "(7 places: blocks.0, blocks.1, blocks.2, blocks.3, blocks.4, ...)" in line
    report = ImportReport("Net", [8], layers=5, parameters=10, functions=2, editable_layers=1,
                          editable_parameters=10, outputs={"logits": "its output 'logits'",
                                                           "hidden": "its output 'hidden'"})
    text = report_text(ImportResult(project=object(), report=report))
    assert "5 layers (1 editable, 2 kept as code), 10 parameters." in text
    assert "  logits: its output 'logits'" in text
