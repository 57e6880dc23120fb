"""A sweep driven outside the designer: the exported train.py accepts the searched values, and
with a trial's values it trains the model the designer's trial trains (first epoch bit-equal);
model.py's class takes the searched sizes, with the sizes that follow them as expressions; a
value the model cannot be built with is refused with the argument's name. The exported code runs
where ``designer`` cannot be imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import Project, load_project
from designer.engine.interop.codegen import model_source, search_arguments
from designer.engine.interop.export import export_project
from designer.engine.search.values import apply_values
from designer.engine.train.data import load_dataset
from designer.engine.train.events import Epoch
from designer.engine.train.recipes import prepare_run
from designer.engine.train.recipes.supervised.script import train_source
from designer.engine.train.training import Trainer
from tests.engine.helpers import chain

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"

DRIVER = r'''
import os, sys
sys.modules["designer"] = None  # the exported code must not need designer
import torch
torch.set_num_threads(1)
here = os.getcwd()
sys.path.insert(0, here)
import train
model = train.main(sys.argv[1:])
torch.save(model.state_dict(), os.path.join(here, "trained.pt"))
'''

LR = {"target": {"setting": "lr"}, "type": "float", "low": 0.0001, "high": 0.1, "log": True}
FC1 = {"target": {"network": "model", "node": "fc1", "param": "out_features"}, "type": "int",
       "low": 16, "high": 128, "step": 16}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    (folder / "driver.py").write_text(DRIVER)
    return subprocess.run([sys.executable, "-I", "driver.py", *args], cwd=folder,
                          capture_output=True, text=True, timeout=300, env=_env(), check=False)


def _digits(search: list[dict]) -> Project:
    project = load_project(TEMPLATES / "mlp-digits.dnn.json")
    project.training.update({"device": "cpu", "epochs": 1})
    project.search = {"dimensions": search}
    return project


def _module(source: str) -> dict:
    scope: dict = {}
    exec(compile(source, "model.py", "exec"), scope)  # noqa: S102 - our own exported code
    return scope


def test_train_py_with_a_trials_values_trains_the_designers_trial(tmp_path):
    project = _digits([LR, FC1, {"target": {"setting": "weight_decay"}, "type": "float",
                                 "low": 0.0, "high": 0.01}])
    out = tmp_path / "export"
    export_project(project, out)
    src = re.sub(r"\s", "", (out / "train.py").read_text())  # whatever the formatter wrapped
    assert '"--fc1-out-features",type=int,default=64' in src
    assert '"--weight-decay",type=float,default=0.0' in src
    assert src.count('"--lr"') == 1  # train.py had it already
    assert "def __init__(self, fc1_out_features=64):" in (out / "model.py").read_text()
    assert "nn.Linear(fc1_out_features, 10)" in (out / "model.py").read_text()

    done = _run(out, "--lr", "0.02", "--fc1-out-features", "32", "--weight-decay", "0.001",
                "--epochs", "1", "--out", "ck", "--log-interval", "1000")
    assert done.returncode == 0, done.stderr[-3000:]

    trial = apply_values(project, {"lr": 0.02, "model.fc1.out_features": 32,
                                   "weight_decay": 0.001})
    ds = load_dataset(trial.dataset)
    epochs: list[Epoch] = []
    _, recipe = prepare_run(trial, ds, run_dir=tmp_path / "run")
    result = Trainer(None, ds, trial.training, recipe=recipe, run_dir=tmp_path / "run",
                     cpu_threads=1, callback=lambda e: epochs.append(e) if isinstance(
                         e, Epoch) else None).run()
    assert result.status == "finished", result.message
    mine = recipe.model.state_dict()
    trained = torch.load(out / "trained.pt", weights_only=True)
    assert list(trained) == list(mine)
    assert trained["fc1.weight"].shape == (32, 64)
    for k, v in mine.items():
        assert torch.equal(trained[k], v), k
    e = epochs[0]
    line = next(x for x in done.stdout.splitlines() if x.startswith("Epoch 1:"))
    assert f"train loss {e.train['loss']:.4f}" in line
    assert f"val loss {e.val['loss']:.4f}" in line
    assert f"val accuracy {e.val['accuracy']:.4f}" in line
    # load() builds the trial's model from train.py's checkpoint
    model = _module((out / "model.py").read_text())["load"](str(out / "ck" / "last.pt"))
    assert model.fc1.out_features == 32


def test_without_arguments_the_defaults_are_the_projects_run(tmp_path):
    project = _digits([FC1])
    plain = load_project(TEMPLATES / "mlp-digits.dnn.json")
    plain.training.update({"device": "cpu", "epochs": 1})
    a, b = tmp_path / "searched", tmp_path / "plain"
    export_project(project, a)
    export_project(plain, b)
    assert "--fc1-out-features" not in (b / "train.py").read_text()
    for d in (a, b):
        done = _run(d, "--epochs", "1", "--out", "ck", "--log-interval", "1000")
        assert done.returncode == 0, done.stderr[-3000:]
    sa = torch.load(a / "trained.pt", weights_only=True)
    sb = torch.load(b / "trained.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sb)


def test_a_searched_block_argument_is_an_argument_of_the_model_class():
    project = load_project(TEMPLATES / "resnet-mini.dnn.json")
    project.search = {"dimensions": [{"target": {"network": "model", "node": "b2",
                                                 "arg": "channels"},
                                      "type": "choice", "choices": [32, 48]}]}
    [arg] = search_arguments(project)
    assert (arg.name, arg.flag, arg.default) == ("b2_channels", "--b2-channels", 32)
    source = model_source(project)
    assert "def __init__(self, b2_channels=32):" in source
    assert "ResidualBlock(in_channels=b2_channels, channels=64" in source  # b3 follows it
    scope = _module(source)
    cls = scope["MiniResNetCIFAR10"]
    from designer.engine.model.build import build_model

    for value in (32, 48):
        want = build_model(apply_values(project, {"model.b2.args.channels": value}).networks[
            "model"])
        got = cls(b2_channels=value)
        assert sum(p.numel() for p in got.parameters()) == sum(
            p.numel() for p in want.parameters())
        assert got(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert "--b2-channels" in train_source(project, TEMPLATES)


def test_a_value_the_model_cannot_be_built_with_is_refused(tmp_path):
    """A kernel size changes the flattened size in a way no expression of it covers: the model
    keeps its literal, and train.py refuses other kernels before training, naming the flag."""
    g = chain(("Conv2d", {"out_channels": 4, "kernel_size": 3}), ("Flatten", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    project = Project(name="small cnn", networks={"model": g},
                      dataset={"kind": "digits"}, training={"epochs": 1, "device": "cpu"})
    conv = next(n.name for n in g.nodes.values() if n.type == "Conv2d")
    project.search = {"dimensions": [{"target": {"network": "model", "node": conv,
                                                 "param": "kernel_size"},
                                      "type": "int", "low": 1, "high": 5}]}
    flag = f"--{conv.replace('_', '-')}-kernel-size"
    out = tmp_path / "export"
    export_project(project, out)
    assert flag in (out / "train.py").read_text()
    done = _run(out, flag, "5", "--epochs", "1", "--out", "ck", "--dry-run")
    assert done.returncode != 0
    assert f"cannot be built with {flag} 5" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "ck" / "last.pt").exists()
    ok = _run(out, flag, "3", "--epochs", "1", "--out", "ck", "--dry-run")
    assert ok.returncode == 0, ok.stderr[-3000:]


@pytest.mark.parametrize("tid,setting", [("gan-digits", "d_steps"), ("vae-digits", "weight_decay"),
                                         ("char-lstm", "weight_decay")])
def test_every_recipe_accepts_its_searched_settings(tid, setting):
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    project.search = {"dimensions": [
        {"target": {"setting": setting}, "type": "choice",
         "choices": [1, 2] if setting == "d_steps" else [0.0, 0.5]}]}
    from designer.engine.train.recipes import recipe_of

    src = recipe_of(project).train_source(project, TEMPLATES)
    compile(src, "train.py", "exec")
    src = re.sub(r"\s", "", src)
    flag = "--" + setting.replace("_", "-")
    assert f'"{flag}"' in src
    assert f"cfg.update({setting}=args.{setting})" in src


def test_a_searched_optimizer_keeps_the_settings_another_choice_needs(tmp_path):
    """Searching adam against sgd: train.py's CONFIG keeps sgd's momentum and nesterov (they
    apply under sgd only), so `--optimizer sgd` runs."""
    project = _digits([{"target": {"setting": "optimizer"}, "type": "choice",
                        "choices": ["adam", "sgd"]}])
    source = train_source(project, format=False)
    assert "'momentum': 0.9" in source and "'nesterov': False" in source
    plain = train_source(load_project(TEMPLATES / "mlp-digits.dnn.json"), format=False)
    assert "'momentum': 0.9" not in plain  # without the search Adam's CONFIG has no momentum
    (tmp_path / "train.py").write_text(source)
    (tmp_path / "model.py").write_text(model_source(project))
    proc = _run(tmp_path, "--optimizer", "sgd", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
