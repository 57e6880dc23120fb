"""Run history without Qt: run folders made by a real ``designer train`` read back as records,
listed newest first, their texts (settings, duration, optimizer), deleting, and ``designer runs``
(which never imports torch)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from designer.cli import main
from designer.engine.train.run_history import (
    delete_run,
    duration_text,
    finite_or_nan,
    flat_record,
    list_runs,
    optimizer_text,
    read_run,
    runs_root,
)

from .test_no_torch import run_guarded
from .test_train_cli import digits_project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project with two real runs (1 epoch at lr 0.005, then 2 at lr 0.01) and a stray folder."""
    folder = tmp_path_factory.mktemp("history")
    path = digits_project(folder)
    assert main(["train", str(path), "--epochs", "1", "--device", "cpu"]) == 0
    assert main(["train", str(path), "--epochs", "2", "--lr", "0.01", "--device", "cpu"]) == 0
    (folder / "runs" / "tiny" / "not-a-run").mkdir()
    return path


def test_runs_root_is_beside_the_project(project):
    assert runs_root(project, "whatever") == project.parent.resolve() / "runs" / "tiny"


def test_runs_are_read_from_their_folders_newest_first(project):
    runs = list_runs(runs_root(project, "tiny digits"))
    assert len(runs) == 2  # the stray folder is no run
    new, old = runs
    assert new.started >= old.started
    assert (new.training["epochs"], old.training["epochs"]) == (2, 1)
    assert new.status == "complete" and len(new.history) == 2
    assert new.summary() == "digits, adam lr 0.01, bs 64, 2 ep"
    assert new.metric_name() == "accuracy" and new.evaluates and new.spec.id == "supervised"
    assert new.duration_s is not None and new.duration_s > 0
    assert new.final.startswith("accuracy ") and new.final.endswith("%")
    best, last = new.checkpoint("best"), new.checkpoint("last")
    assert best.path.name == "best.pt" and last.path.name == "last.pt" and last.epoch == 2
    assert new.history[-1]["val_accuracy"] == pytest.approx(
        float(new.final.split()[1].rstrip("%")) / 100, abs=1e-4)


def test_read_run_of_something_else_is_none(tmp_path):
    assert read_run(tmp_path) is None
    (tmp_path / "config.json").write_text("[1, 2]")
    assert read_run(tmp_path) is None
    assert list_runs(tmp_path / "missing") == [] and list_runs(None) == []


def test_a_run_without_status_is_told_by_its_epochs(tmp_path):
    run = tmp_path / "20260101-120000"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"training": {"epochs": 5}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train": {"loss": 1.0},
                                                   "time_s": 2.0}) + "\n")
    rec = read_run(run)
    assert rec.status == "ended at 1/5" and rec.duration_s == 2.0
    assert rec.started == datetime(2026, 1, 1, 12, 0, 0)
    assert rec.checkpoints == [] and rec.final == "loss 1 (training)"


def test_flat_record_and_numbers():
    assert flat_record({"epoch": 1, "train": {"loss": 2.0}, "validation": {"accuracy": 0.5}}) == {
        "epoch": 1, "train_loss": 2.0, "val_accuracy": 0.5}
    assert finite_or_nan(1) == 1.0
    assert all(finite_or_nan(v) != finite_or_nan(v) for v in (None, "x", True, float("inf")))


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (0.61, "0.6 s"), (42.4, "42 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


def test_optimizer_text_supervised_and_gan():
    assert optimizer_text({"optimizer": "sgd", "lr": 0.1}) == "sgd lr 0.1"
    gan = optimizer_text({"recipe": "gan", "optimizer": "adam", "lr_d": 2e-4, "lr_g": 1e-4})
    assert gan.startswith("GAN adam lr_d 0.0002 lr_g 0.0001, beta1 ")


def test_a_gan_run_reads_as_a_gan(tmp_path):
    """The run's recipe (config.json) decides how it reads: a GAN's headline is its final D(x)
    and D(G(z)), and it has no predictions to evaluate."""
    run = tmp_path / "20260101-120000"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"recipe": "gan", "training": {"recipe": "gan"}}))
    (run / "metrics.jsonl").write_text(json.dumps(
        {"epoch": 1, "train": {"loss_d": 1.0, "d_real": 0.72, "d_fake": 0.5}, "val": {}}) + "\n")
    rec = read_run(run)
    assert rec.spec.id == "gan" and not rec.evaluates
    assert rec.final == "D(x) 0.72, D(G(z)) 0.50"
    assert "no predictions to score" in rec.no_evaluation_note()
    assert str(run / "samples") in rec.no_evaluation_note()


def test_delete_run_only_deletes_run_folders_of_the_root(tmp_path):
    root = tmp_path / "runs"
    run = root / "20260101-120000"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    rec = read_run(run)
    with pytest.raises(ValueError, match="nothing deleted"):
        delete_run(rec, tmp_path)
    delete_run(rec, root)
    assert not run.exists()


def test_designer_runs_prints_every_run_newest_last(project, capsys):
    assert main(["runs", str(project)]) == 0
    out = capsys.readouterr().out
    runs = list_runs(runs_root(project, "tiny digits"))
    assert out.startswith("2 run(s) of tiny digits in ")
    folders = [line.split("folder:", 1)[1].strip() for line in out.splitlines()
               if line.strip().startswith("folder:")]
    assert folders == [str(r.path) for r in reversed(runs)]
    assert "settings: digits, adam lr 0.005, bs 64, 1 ep" in out
    assert f"best.pt:  epoch 2, {runs[0].checkpoint('best').figure}" in out
    assert "complete  2 epoch(s)" in out


def test_designer_runs_of_a_project_without_runs_and_of_no_project(tmp_path, capsys):
    path = digits_project(tmp_path)
    assert main(["runs", str(path)]) == 0
    assert capsys.readouterr().out.startswith("No runs of tiny digits yet")
    assert main(["runs", str(tmp_path / "missing.dnn.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_designer_runs_does_not_import_torch(project):
    proc = run_guarded("""
        from designer.cli import main
        import designer.engine.train.evaluation
        assert main(["runs", sys.argv[1]]) == 0
        assert "torch" not in sys.modules
    """, str(project))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 run(s) of tiny digits" in proc.stdout


def test_design_changes_name_each_difference_by_layer():
    """What History's "changes" column says between two runs' designs: a width, a layer added
    or removed, a new wire, a frozen layer, a block parameter; positions are no change; with
    several networks each line names its network; then the settings that differ."""
    from designer.engine.model.design_diff import design_changes
    from designer.engine.train.run_history import run_changes

    def net(name, nodes, edges):
        return {"name": name, "nodes": nodes, "edges": [
            {"src": a, "dst": b, "dst_port": 0} for a, b in edges]}

    def node(i, type_, **params):
        return {"id": i, "type": type_, "name": i, "params": params, "pos": [0, 0]}

    a = {"networks": [net("model", [node("x", "Input", shape=[4]), node("fc1", "Linear",
                                                                        out_features=64),
                                    node("relu1", "ReLU"), node("y", "Output")],
                          [("x", "fc1"), ("fc1", "relu1"), ("relu1", "y")])]}
    b = {"networks": [net("model", [node("x", "Input", shape=[4]), node("fc1", "Linear",
                                                                        out_features=32),
                                    node("drop", "Dropout", p=0.5), node("y", "Output")],
                          [("x", "fc1"), ("fc1", "drop"), ("drop", "y"), ("x", "y")])]}
    b["networks"][0]["nodes"][0]["pos"] = [100, 5]  # moved: not a change
    b["networks"][0]["nodes"][1]["frozen"] = True
    assert design_changes(a, b) == ["- relu1 (ReLU)", "+ drop (Dropout)",
                                    "fc1.out_features 64 \u2192 32", "fc1 frozen",
                                    "wire + x \u2192 y"]
    assert design_changes(a, a) == []
    two = {"networks": [*a["networks"], net("critic", [node("x", "Input")], [])]}
    assert design_changes(a, two) == ["+ network critic"]
    assert design_changes(two, {"networks": [b["networks"][0], two["networks"][1]]})[0] == \
        "model: - relu1 (ReLU)"
    # a run's config.json: the design, then dataset and training settings
    ca = {"project": a, "dataset": {"name": "digits"}, "training": {"lr": 0.01, "epochs": 2}}
    cb = {"project": a, "dataset": {"name": "digits"}, "training": {"lr": 0.001, "epochs": 2}}
    assert run_changes(ca, cb) == ["lr 0.01 \u2192 0.001"]
    assert run_changes(ca, {"training": {}}) is None  # no design recorded: unknown


def test_list_runs_compares_each_run_with_the_one_before(tmp_path):
    """Two run folders whose designs differ in fc1's width: the newer says so, the older is the
    first (nothing to compare with)."""
    from designer.engine.document.project import Project

    for stamp, width in (("20260101-100000", 64), ("20260102-100000", 32)):
        p = Project("p", networks={"model": _mlp(width)})
        (tmp_path / stamp).mkdir()
        (tmp_path / stamp / "config.json").write_text(json.dumps(
            {"project": p.to_dict(), "training": {"lr": 0.01}, "dataset": {"name": "digits"}}))
    new, old = list_runs(tmp_path)
    assert new.changes == ["fc1.out_features 64 \u2192 32"] and old.changes is None


def _mlp(width):
    from designer.engine.model.graph import Graph

    g = Graph()
    x = g.add_node("Input", params={"shape": [4]}).id
    fc = g.add_node("Linear", params={"out_features": width}).id
    y = g.add_node("Output").id
    g.connect(x, fc)
    g.connect(fc, y)
    return g


def test_a_templates_description_is_stale_once_its_design_changes():
    """The starter's description says "64 ReLU units": it goes with the template's design, not
    with a changed one; a description the user wrote is always theirs."""
    from designer.engine.document.templates import load_template, stale_description
    from designer.engine.interop.codegen import model_source

    p = load_template("mlp-digits")
    assert stale_description(p) is None and "64 ReLU units" in model_source(p, format=False)
    p.graph.node_by_name("fc1").params["out_features"] = 32
    assert stale_description(p) == ["fc1.out_features 64 \u2192 32"]
    source = model_source(p, format=False)
    assert "64 ReLU units" not in source and "fc1.out_features 64 -> 32" in source
    p.description = "My own notes: 64 ReLU units"
    assert stale_description(p) is None and "My own notes" in model_source(p, format=False)
