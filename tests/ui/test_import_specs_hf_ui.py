"""File > Import model… with the Hugging Face specs: the Config field and an empty input shape
reach the shared spec parser, a timm model imports off the GUI thread, and --pretrained without a
network is worded per library. Nothing is downloaded."""

from __future__ import annotations

import pytest

from designer.engine.services import model_import
from designer.ui.import_dialog import ImportDialog, ImportRequest, run_import


@pytest.fixture
def dialog(qtbot):
    d = ImportDialog(models=["resnet18"])
    qtbot.addWidget(d)
    return d


def test_config_and_the_models_own_input_reach_the_request(dialog):
    dialog.spec.setEditText("timm:resnet10t")
    assert dialog.shape.text() == ""  # the untouched 3,224,224: the model's own input instead
    dialog.config.setText("num_classes=3 'hidden_act=gelu tanh'")
    dialog.weights.setChecked(True)
    assert dialog.pretrained.isEnabled()  # timm's own download, when ticked
    dialog.project_file.setText("/tmp/x.dnn.json")
    request = dialog.request()
    assert request.shape is None
    assert request.config.values == {"num_classes": 3, "hidden_act": "gelu tanh"}
    dialog.config.setText("num_classes")
    assert not dialog.start()
    assert "expected key=value" in dialog.status.text()


def test_a_timm_model_imports_in_the_window(qtbot, dialog):
    pytest.importorskip("timm")
    dialog.spec.setEditText("timm:resnet10t")
    dialog.config.setText("num_classes=3")
    dialog.shape.setText("3,32,32")
    with qtbot.waitSignal(dialog.imported, timeout=120000) as opened:
        assert dialog.start()
    project, saved = opened.args
    assert saved is None and project.name == "resnet10t"
    assert dialog.result_.report.ok and "Imported" in dialog.status.text()


def test_pretrained_offline_names_the_library(monkeypatch):
    def offline(spec, pretrained=False, input_shape=None, config=None):
        raise model_import.PretrainedUnavailable("transformers", OSError("couldn't connect"))

    monkeypatch.setattr(model_import, "load_spec", offline)
    result = run_import(ImportRequest("transformers:BertModel@bert-base-uncased", None,
                                      weights=True, pretrained=True))
    assert result.project is None
    assert result.error == model_import.offline_message("transformers", window=True)
    assert result.error.startswith("transformers' pretrained weights could not be downloaded "
                                   "(no network?). Import without them, or load a state_dict "
                                   "file later with File > Load weights…")
