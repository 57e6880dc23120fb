"""The GAN: templates, the checks between the two networks, the recipe on the shared trainer
(finite losses, previews, pause/stop/NaN/resume), `designer train`/`check`, and export (model.py
equal to the built networks in a fresh interpreter without designer; train.py runs offline)."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from designer.cli import main as cli_main
from designer.engine.document.project import load_project, save_project
from designer.engine.interop.export import export_project, load_state_dict
from designer.engine.model.build import build_model
from designer.engine.model.shapes import analyze
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes import cross_network_problems
from designer.engine.train.recipes.gan.checks import gan_problems
from designer.engine.train.recipes.gan.training import GanError, GanSamples, make_grid, prepare_gan
from designer.engine.train.training import NAN_HINT, Batch, Epoch, Paused, Resumed, Stopped, Trainer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"
GAN_IDS = ("gan-digits", "gan-mnist")


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"kind": "digits", "normalize": False, "val_fraction": 0.1})


def project(tid="gan-digits"):
    return load_project(TEMPLATES / f"{tid}.dnn.json")


def fast(p, **overrides):
    return {**p.training, "device": "cpu", "epochs": 1, "batch_size": 64, **overrides}


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


class ReferenceGenerator(nn.Module):
    """The issue's generator, written by hand with the template's layer names."""

    def __init__(self):
        super().__init__()
        widths = [100, 128, 256, 512, 1024]
        for i in range(4):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))
            setattr(self, f"bn{i + 1}", nn.BatchNorm1d(widths[i + 1]))
        self.fc5 = nn.Linear(1024, 784)

    def forward(self, z):
        for i in range(1, 5):
            z = getattr(self, f"bn{i}")(nn.functional.leaky_relu(getattr(self, f"fc{i}")(z), 0.2))
        return torch.tanh(self.fc5(z)).view(-1, 1, 28, 28)


def test_gan_mnist_is_exactly_the_issues_networks():
    p = project("gan-mnist")
    assert list(p.networks) == ["generator", "discriminator"] and p.training["recipe"] == "gan"
    g, d = p.networks["generator"], p.networks["discriminator"]
    assert analyze(g).total_params == 1_510_288
    assert analyze(d).total_params == 784 * 512 + 512 + 512 * 256 + 256 + 256 + 1
    ref = ReferenceGenerator()
    assert sum(t.numel() for t in ref.parameters()) == 1_510_288
    model = build_model(g, seed=0)
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval()
    ref.eval()
    z = torch.randn(5, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(z), ref(z))
    assert [n.type for n in d.nodes.values()] == [
        "Input", "Flatten", "Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear", "Output"]
    assert all(n.params["negative_slope"] == 0.2 for n in d.nodes.values() if n.type == "LeakyReLU")
    assert p.dataset["name"] == "MNIST" and p.dataset["normalize"] is False


@pytest.mark.parametrize("tid", GAN_IDS)
def test_gan_templates_check_clean_and_are_generated(tid, capsys):
    assert cli_main(["check", str(TEMPLATES / f"{tid}.dnn.json")]) == 0
    out = capsys.readouterr().out
    assert "Network: generator" in out and "Network: discriminator" in out and "OK: no errors" in out
    p = project(tid)
    assert cross_network_problems(p) == []
    for graph in p.networks.values():
        assert analyze(graph).problems == []
        # laid out in bands: an edge goes right along its band or wraps down to a later one
        assert len({n.pos for n in graph.nodes.values()}) == len(graph.nodes)
        for e in graph.edges:
            src, dst = graph.nodes[e.src].pos, graph.nodes[e.dst].pos
            assert src[0] < dst[0] or src[1] < dst[1]
    spec = importlib.util.spec_from_file_location("make_gan_templates",
                                                  ROOT / "scripts" / "make_gan_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = TEMPLATES / f"{tid}.dnn.json"
    assert module.outputs()[path] == path.read_text(encoding="utf-8"), \
        "run scripts/make_gan_templates.py"


# --------------------------------------------------------------------------------------------
# The checks between the two networks
# --------------------------------------------------------------------------------------------


def messages(p):
    return [(x.severity, x.message) for x in cross_network_problems(p)]


def test_shape_mismatch_between_generator_and_discriminator_is_an_error(tmp_path, capsys):
    p = project("gan-mnist")
    image = next(n for n in p.networks["discriminator"].nodes.values() if n.type == "Input")
    image.params["shape"] = [1, 8, 8]
    (sev, msg), = messages(p)
    assert sev == "error"
    assert "generator makes samples of shape 1x28x28" in msg
    assert "discriminator's Input 'image' expects 1x8x8" in msg
    assert "set that Input's shape to [1, 28, 28]" in msg
    path = save_project(p, tmp_path / "bad.dnn.json")
    assert cli_main(["check", str(path)]) == 1
    assert "generator makes samples of shape 1x28x28" in capsys.readouterr().out
    assert cli_main(["check", "--json", str(path)]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["problems"][0]["code"] == "gan_shape"


def test_discriminator_must_give_one_logit_and_names_the_layer():
    p = project()
    fc3 = next(n for n in p.networks["discriminator"].nodes.values() if n.name == "fc3")
    fc3.params["out_features"] = 10
    (sev, msg), = messages(p)
    assert sev == "error" and "one logit" in msg and "set out_features of 'fc3' to 1" in msg


def test_missing_networks_and_style_warnings():
    p = project()
    p.networks = {"model": p.networks["generator"]}
    (sev, msg), = messages(p)
    assert sev == "error" and "named 'generator' and 'discriminator'" in msg
    # Sigmoid at the end of D, no Tanh at the end of G: warnings that say what to change
    p = project()
    g = p.networks["generator"]
    next(n for n in g.nodes.values() if n.type == "Tanh").type = "Sigmoid"
    d = p.networks["discriminator"]
    sig = d.add_node("Sigmoid", name="prob")
    out = next(n for n in d.nodes.values() if n.type == "Output")
    (edge,) = d.in_edges(out.id)
    d.disconnect(edge)
    d.connect(edge.src, sig.id)
    d.connect(sig.id, out.id)
    found = messages(p)
    assert {s for s, _ in found} == {"warning"}
    assert any("ends in a Sigmoid ('prob')" in m and "remove it" in m for _, m in found)
    assert any("ends in Sigmoid ('tanh')" in m and "end it in Tanh" in m for _, m in found)
    # two networks named like a GAN but trained supervised: a hint, not an error
    p = project()
    p.training["recipe"] = "supervised"
    (sev, msg), = messages(p)
    assert sev == "warning" and "set training.recipe to gan" in msg


def test_a_gan_that_does_not_fit_the_dataset_is_refused_with_the_reason(digits):
    p = project("gan-mnist")
    with pytest.raises(GanError, match=r"dataset's samples are 1x8x8 but the discriminator's "
                                       r"Input 'image' takes 1x28x28: set its shape to \[1, 8, 8\]"):
        prepare_gan(p.networks, digits, fast(p))


# --------------------------------------------------------------------------------------------
# The recipe on the shared trainer
# --------------------------------------------------------------------------------------------


def test_recipe_trains_on_digits_with_finite_losses_and_a_sample_grid_each_epoch(digits, tmp_path):
    p = project()
    events = []
    recipe = prepare_gan(p.networks, digits, fast(p, epochs=2), callback=events.append)
    before = {k: {n: t.clone() for n, t in m.state_dict().items()}
              for k, m in recipe.modules().items()}
    result = Trainer(None, digits, fast(p, epochs=2), recipe=recipe, callback=events.append,
                     run_dir=tmp_path / "run", batch_event_interval=0).run()
    assert result.status == "finished", result.message
    for epoch in result.history:
        for phase in ("train", "val"):
            m = epoch[phase]
            assert set(m) == {"loss", "loss_d", "loss_g", "d_real", "d_fake"}
            assert all(np.isfinite(v) for v in m.values()), m
            assert 0 < m["d_real"] < 1 and 0 < m["d_fake"] < 1
            assert m["loss"] == pytest.approx(m["loss_d"] + m["loss_g"])
    for k, m in recipe.modules().items():  # both networks learned
        changed = [n for n, t in m.state_dict().items() if not torch.equal(t, before[k][n])]
        assert changed, k
    batches = [e for e in events if isinstance(e, Batch)]
    assert batches and {"loss_d", "loss_g", "d_real", "d_fake"} <= set(batches[0].metrics)
    samples = [e for e in events if isinstance(e, GanSamples)]
    assert [s.epoch for s in samples] == [1, 2]
    assert samples[0].images.shape == (64, 1, 8, 8) and samples[0].grid.shape == (73, 73)
    assert 0 <= samples[-1].images.min() and samples[-1].images.max() <= 1
    assert not np.array_equal(samples[0].images, samples[1].images)
    # the order of events: samples come before the epoch they belong to is announced
    kinds = [type(e).__name__ for e in events if isinstance(e, (GanSamples, Epoch))]
    assert kinds == ["GanSamples", "Epoch", "GanSamples", "Epoch"]
    # the checkpoint holds both networks, loads with weights_only, and export reads it
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert set(state["model"]) == {"generator", "discriminator"} and state["recipe"] == "gan"
    g = load_state_dict(tmp_path / "run" / "last.pt", "generator")
    assert torch.equal(g["fc1.weight"], recipe.generator.state_dict()["fc1.weight"].cpu())


def test_the_preview_noise_is_fixed_and_the_same_for_the_same_seed(digits):
    p = project()
    a = prepare_gan(p.networks, digits, fast(p))
    b = prepare_gan(p.networks, digits, fast(p))
    for r in (a, b):
        Trainer(None, digits, fast(p), recipe=r).run()
    assert torch.equal(a.fixed_noise, b.fixed_noise)
    np.testing.assert_array_equal(a.last_samples.images, b.last_samples.images)


def test_pause_resume_stop_and_resume_from_the_checkpoint(digits, tmp_path):
    p = project()
    cfg = fast(p, epochs=3, batch_size=8)
    events = []
    recipe = prepare_gan(p.networks, digits, cfg)

    def on_event(ev):
        events.append(ev)
        if isinstance(ev, Batch) and ev.batch >= 3 and not any(isinstance(e, Paused)
                                                               for e in events):
            trainer.pause()
        elif isinstance(ev, Paused):
            trainer.resume()
        elif isinstance(ev, Resumed):
            trainer.stop()

    trainer = Trainer(None, digits, cfg, recipe=recipe, callback=on_event,
                      run_dir=tmp_path / "run", batch_event_interval=0)
    result = trainer.run()
    assert result.status == "stopped"
    assert [type(e).__name__ for e in events if isinstance(e, (Paused, Resumed, Stopped))] == [
        "Paused", "Resumed", "Stopped"]
    stopped = next(e for e in events if isinstance(e, Stopped))
    assert stopped.epoch == 1 and stopped.batch <= 5
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["stopped_at_batch"] == stopped.batch
    weights = recipe.generator.state_dict()
    for k, v in saved["model"]["generator"].items():
        assert torch.equal(v, weights[k])
    # resume: a new recipe continues from last.pt
    cfg2 = {**cfg, "epochs": 1, "batch_size": 64}
    again = prepare_gan(p.networks, digits, cfg2)
    res = Trainer(None, digits, cfg2, recipe=again, run_dir=tmp_path / "run", resume=True).run()
    assert res.status == "finished" and res.epochs_done == 1


def test_a_nan_loss_stops_with_the_hint(digits):
    p = project()
    recipe = prepare_gan(p.networks, digits, fast(p))
    recipe.real = lambda x: x * float("nan")  # a broken batch
    result = Trainer(None, digits, fast(p), recipe=recipe).run()
    assert result.status == "failed"
    assert "NaN or infinite in epoch 1, batch 1" in result.message and NAN_HINT in result.message


def test_minimax_loss_and_several_d_steps_train_too(digits):
    p = project()
    cfg = fast(p, gan_loss="minimax", d_steps=2, optimizer="sgd", momentum=0.5)
    recipe = prepare_gan(p.networks, digits, cfg)
    result = Trainer(None, digits, cfg, recipe=recipe).run()
    assert result.status == "finished", result.message
    m = result.history[0]["train"]
    assert m["loss_g"] < 0 and np.isfinite(m["loss_d"])  # minimax: G minimises log(1 - D(G(z)))
    assert isinstance(recipe.opt_d, torch.optim.SGD)


def test_make_grid_tiles_grey_colour_and_vector_samples():
    g = make_grid(np.ones((5, 1, 4, 3)), pad=1)
    assert g.shape == (2 * 5 + 1, 3 * 4 + 1) and g[1, 1] == 1.0 and g[0, 0] == 0.5
    assert make_grid(np.zeros((4, 3, 2, 2))).shape == (7, 7, 3)
    assert make_grid(np.zeros((4, 10))).shape == (2 * 2 + 1, 2 * 11 + 1)


def test_designer_train_cli_runs_a_gan_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(["train", str(TEMPLATES / "gan-digits.dnn.json"), "--epochs", "1",
                     "--device", "cpu", "--batch-size", "128", "--lr", "0.001", "--out",
                     str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "epoch 1/1  train D " in err and "D(G(z))" in err
    assert (out / "samples" / "epoch_001.png").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "gan"
    assert config["training"]["lr_d"] == config["training"]["lr_g"] == 0.001  # --lr: both


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

DRIVER = r'''
import importlib.util, json, sys
sys.modules["designer"] = None  # the exported code must not need designer
import torch
torch.set_num_threads(1)
root = sys.argv[1]
spec = importlib.util.spec_from_file_location("model", root + "/model.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
out = {}
for name, cls in (("generator", mod.Generator), ("discriminator", mod.Discriminator)):
    net = cls()
    net.load_state_dict(torch.load(f"{root}/{name}.pt", weights_only=True))
    net.eval()
    with torch.no_grad():
        y = net(torch.load(f"{root}/{name}_x.pt", weights_only=True))
    torch.save(y, f"{root}/{name}_y.pt")
models = mod.load(root + "/weights.pt")
out["load"] = sorted(models)
json.dump(out, open(root + "/out.json", "w"))
'''


def _randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * 0.5)


def _env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_exported_model_py_equals_both_built_networks_without_designer(tmp_path):
    p = project("gan-mnist")
    out = tmp_path / "export"
    export_project(p, out)
    source = (out / "model.py").read_text()
    assert "class Generator(nn.Module)" in source and "class Discriminator(nn.Module)" in source
    built = {}
    for i, (name, graph) in enumerate(p.networks.items()):
        model = build_model(graph).eval()
        _randomize(model, i)
        shape = graph.inputs()[0].params["shape"]
        x = torch.randn((3, *shape), generator=torch.Generator().manual_seed(i))
        torch.save(model.state_dict(), out / f"{name}.pt")
        torch.save(x, out / f"{name}_x.pt")
        with torch.no_grad():
            built[name] = model(x)
    torch.save({k: torch.load(out / f"{k}.pt", weights_only=True) for k in built},
               out / "weights.pt")
    (out / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, "-I", str(out / "driver.py"), str(out)], cwd=out,
                          capture_output=True, text=True, timeout=120, env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, y in built.items():
        got = torch.load(out / f"{name}_y.pt", weights_only=True)
        assert (got - y).abs().max().item() == 0, name
    assert json.loads((out / "out.json").read_text())["load"] == ["discriminator", "generator"]


def test_exported_gan_train_py_runs_offline_on_digits(tmp_path):
    p = project("gan-digits")
    out = tmp_path / "export"
    paths = export_project(p, out, project_dir=TEMPLATES)
    assert out / "train.py" in paths
    src = (out / "train.py").read_text()
    imports = [ast.unparse(n) for n in ast.walk(ast.parse(src))
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "from model import Discriminator, Generator" in imports
    assert not any("designer" in i or "distributed" in i for i in imports)
    run = ("import sys, runpy; sys.modules['designer'] = None; sys.path.insert(0, '.'); "
           "sys.argv = ['train.py', '--epochs', '1', '--dry-run', '--out', 'ck']; "
           "runpy.run_path('train.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-E", "-s", "-c", run], cwd=out, capture_output=True,
                          text=True, timeout=120, env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 1: train D " in done.stdout
    saved = torch.load(out / "ck" / "last.pt", weights_only=True)
    assert set(saved["model"]) == {"generator", "discriminator"} and saved["epoch"] == 1
    assert (out / "ck" / "samples_epoch_001.png").exists()
    # model.py's load() reads train.py's checkpoint
    spec = importlib.util.spec_from_file_location("exported_gan_model", out / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nets = mod.load(out / "ck" / "last.pt")
    assert torch.equal(nets["generator"].state_dict()["fc1.weight"],
                       saved["model"]["generator"]["fc1.weight"])
    # the designer reads train.py's checkpoint as weights for a new export
    export_project(p, tmp_path / "again", weights=out / "ck")
    both = torch.load(tmp_path / "again" / "weights.pt", weights_only=True)
    assert set(both) == {"generator", "discriminator"}


def test_gan_problems_accepts_precomputed_analyses():
    p = project()
    analyses = {k: analyze(g) for k, g in p.networks.items()}
    assert gan_problems(p.networks, analyses) == []
    q = copy.deepcopy(p)
    assert gan_problems(q.networks) == []


def test_a_gan_that_cannot_fit_in_memory_is_refused_before_building(monkeypatch):
    from designer.engine.document.templates import load_template
    from designer.engine.train.data import compat, load_dataset
    from designer.engine.train.recipes.gan import training as gan

    project = load_template("gan-digits")
    ds = load_dataset(project.dataset, None)
    assert gan.prepare_gan(project.networks, ds, project.training) is not None
    real = compat.memory_problem
    monkeypatch.setattr(compat, "memory_problem",  # a machine with 100 kB of memory
                        lambda g, a, d, t, available=None: real(g, a, d, t, 100_000))
    built = []
    monkeypatch.setattr("designer.engine.model.build.build_model",
                        lambda *a, **k: built.append(a) or pytest.fail("built"))
    with pytest.raises(gan.GanError) as info:
        gan.prepare_gan(project.networks, ds, project.training)
    msg = str(info.value)
    assert "generator: training needs about" in msg and "but this machine has 100.0 kB" in msg
    assert not built


def test_a_gan_run_keeps_last_pt_only_and_does_not_stop_early(digits, tmp_path):
    """The GAN declares no "best": its D + G loss falls and rises with the game, not with the
    samples, so the trainer keeps no best.pt and early stopping (which waits for a better
    loss) is off; a best.pt an older run left says what picked it and that it means little."""
    from designer.engine.train import runs
    from designer.engine.train.recipes import get

    assert get("gan").best is None and get("supervised").best == "loss"
    assert get("supervised").best_why(True) == "lowest validation loss"
    p = project()
    cfg = fast(p, epochs=3, early_stopping=1)
    events = []
    recipe = prepare_gan(p.networks, digits, cfg)
    result = Trainer(None, digits, cfg, recipe=recipe, callback=events.append,
                     run_dir=tmp_path / "run").run()
    assert result.status == "finished" and result.epochs_done == 3  # not stopped early
    assert result.best_epoch is None
    assert not (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "last.pt").exists()
    assert {e.kind for e in events if type(e).__name__ == "CheckpointSaved"} == {"last"}
    assert [c.kind for c in runs.checkpoints(tmp_path / "run")] == ["last"]
    # an older GAN run's best.pt
    (tmp_path / "run" / "best.pt").write_bytes((tmp_path / "run" / "last.pt").read_bytes())
    best = runs.checkpoints(tmp_path / "run")[0]
    assert best.kind == "best" and "D + G loss" in best.why and "sample quality" in best.why
