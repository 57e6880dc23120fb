"""The services the CLI and the window share (designer.engine.services): importing a model into a
project with its weights, and exporting a project. The CLI reaches each service; tests/ui checks
that the window reaches the same ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from designer import cli
from designer.engine.document.project import load_project
from designer.engine.interop.export import ExportError
from designer.engine.services import export_project, model_import

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


def _spy(monkeypatch, module, name: str) -> list[dict]:
    """Record each call of ``module.name`` (and still make it)."""
    calls: list[dict] = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


def _tiny_file(folder: Path) -> Path:
    src = folder / "tiny.py"
    src.write_text("from torch import nn\n\n\ndef make():\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n", encoding="utf-8")
    return src


def test_the_cli_import_goes_through_the_import_service(tmp_path, monkeypatch, capsys):
    calls = _spy(monkeypatch, model_import, "import_to_project")
    out = tmp_path / "net.dnn.json"
    code = cli.main(["import", f"{_tiny_file(tmp_path)}:make", "-o", str(out), "--input-shape",
                     "1,8,8", "--weights"])
    assert code == 0, capsys.readouterr()
    assert len(calls) == 1 and calls[0]["weights_beside"] == out
    assert f"weights: {tmp_path / 'net.weights.pt'}" in capsys.readouterr().out
    assert load_project(out).training["init_weights"] == "net.weights.pt"


def test_import_to_project_writes_the_weights_beside_the_project(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    model.train()
    done = model_import.import_to_project(model, "tiny", (1, 8, 8),
                                          weights_beside=tmp_path / "new" / "t.dnn.json")
    assert done.report.ok and not model.training  # imported in eval mode
    assert done.weights_file == tmp_path / "new" / "t.weights.pt"
    assert done.project.training["init_weights"] == "t.weights.pt"
    state = torch.load(done.weights_file, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    without = model_import.import_to_project(model, "tiny", (1, 8, 8))
    assert without.weights_file is None and "init_weights" not in without.project.training


def test_weights_that_cannot_be_written_keep_the_import_report(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(model_import.WeightsNotWritten) as caught:
        model_import.import_to_project(model, "tiny", (1, 8, 8),
                                       weights_beside=tmp_path / "afile" / "t.dnn.json")
    assert isinstance(caught.value, OSError) and caught.value.report.ok
    assert str(caught.value) == str(caught.value.error)


def test_a_failed_import_returns_its_report_and_no_project():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: fx cannot trace it
                return self.fc(x)
            return x

    done = model_import.import_to_project(Branchy(), "branchy", (4,))
    assert done.project is None and not done.report.ok and done.weights_file is None


def test_parse_shape_and_spec_errors_say_what_to_write():
    assert model_import.parse_shape("3x32x32") == (3, 32, 32)
    with pytest.raises(ValueError, match="expected positive sizes"):
        model_import.parse_shape("3,0")
    with pytest.raises(ValueError, match="expected torchvision:NAME"):
        model_import.load_spec("nothing-here")


def test_the_cli_export_goes_through_the_export_service(tmp_path, monkeypatch, capsys):
    calls = _spy(monkeypatch, export_project, "export_files")
    out = tmp_path / "out"
    assert cli.main(["export", str(TEMPLATES / "mlp-digits.dnn.json"), "-o", str(out)]) == 0
    assert len(calls) == 1 and calls[0].get("code", True) is True
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "train.py"]


def test_export_files_without_the_code_writes_only_the_rest(tmp_path):
    from designer.engine.model.build import build_model

    project = load_project(TEMPLATES / "mlp-digits.dnn.json")
    state = tmp_path / "state.pt"
    torch.save(build_model(project.graph, seed=0).state_dict(), state)
    written = export_project.export_files(project, tmp_path / "w", code=False, weights=state)
    assert [p.name for p in written] == ["weights.pt"]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["weights.pt"]


def test_resolve_weights_finds_the_latest_run_or_says_there_is_none(tmp_path):
    path = tmp_path / "p.dnn.json"
    assert export_project.resolve_weights(None, path, "p") is None
    assert export_project.resolve_weights("run1", path, "p") == "run1"
    with pytest.raises(ExportError, match="no trained run of this project"):
        export_project.resolve_weights("latest", path, "p")
    run = tmp_path / "runs" / "p" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"")
    assert export_project.resolve_weights("latest", path, "p") == run


def test_the_cli_train_goes_through_the_train_service(tmp_path, monkeypatch, capsys):
    from designer.engine.document.project import Project, save_project
    from designer.engine.services import train_project

    from .helpers import chain

    calls = _spy(monkeypatch, train_project, "prepare_trainer")
    g = chain(("Flatten", {}), ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    path = save_project(Project(name="tiny", networks={"model": g}, dataset={"name": "digits"},
                                training={"epochs": 1}), tmp_path / "tiny.dnn.json",
                        backup=False)
    out = tmp_path / "run"
    assert cli.main(["train", str(path), "--out", str(out), "--device", "cpu"]) == 0, (
        capsys.readouterr().err)
    assert len(calls) == 1 and calls[0]["run_dir"] == out and calls[0]["resume"] is False
    assert calls[0]["extra_config"]["project_file"] == str(path.resolve())
    assert (out / "last.pt").is_file()
