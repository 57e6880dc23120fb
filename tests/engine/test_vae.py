"""The VAE: the template, the checks between encoder and decoder (and with the dataset), the
recipe on the shared trainer (finite losses, previews, pause/stop/NaN/resume), `designer train`,
the KL term against a direct computation, and export (train.py reproduces the designer's first
epoch exactly, without designer)."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from designer.cli import main as cli_main
from designer.engine.document.project import load_project, save_project
from designer.engine.interop.export import export_project, preview_sources
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes import RecipeError, cross_network_problems, get, prepare_run
from designer.engine.train.recipes.vae import VaeSamples, encode, prepare_vae, vae_loss
from designer.engine.train.training import NAN_HINT, Batch, Epoch, Paused, Resumed, Stopped, Trainer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"
TEMPLATE = TEMPLATES / "vae-digits.dnn.json"


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"kind": "digits", "normalize": False, "val_fraction": 0.1})


def project():
    return load_project(TEMPLATE)


def fast(p, **overrides):
    return {**p.training, "device": "cpu", "epochs": 1, "batch_size": 64, **overrides}


def messages(p):
    return [(x.severity, x.code, x.message) for x in cross_network_problems(p)]


# --------------------------------------------------------------------------------------------
# Template
# --------------------------------------------------------------------------------------------


def test_template_checks_clean_and_is_generated(capsys):
    assert cli_main(["check", str(TEMPLATE)]) == 0
    out = capsys.readouterr().out
    assert "Network: encoder" in out and "Network: decoder" in out and "OK: no errors" in out
    p = project()
    assert list(p.networks) == ["encoder", "decoder"] and p.training["recipe"] == "vae"
    assert p.dataset["kind"] == "digits" and p.dataset["normalize"] is False
    assert cross_network_problems(p) == []
    spec = importlib.util.spec_from_file_location("make_vae_templates",
                                                  ROOT / "scripts" / "make_vae_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.outputs()[TEMPLATE] == TEMPLATE.read_text(encoding="utf-8"), \
        "run scripts/make_vae_templates.py"


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def test_missing_networks_are_named():
    p = project()
    p.networks = {"model": p.networks["encoder"]}
    (sev, code, msg), = messages(p)
    assert sev == "error" and code == "vae_networks"
    assert "named 'encoder' and 'decoder'" in msg and "'model'" in msg


def test_decoder_input_must_take_the_latent_code(tmp_path, capsys):
    p = project()
    z = p.networks["decoder"].node_by_name("z")
    z.params["shape"] = [5]
    found = cross_network_problems(p)
    assert len(found) == 1 and found[0].node_ids == (z.id,)
    assert ("encoder makes a 2-dimensional latent code, but the decoder's Input 'z' takes 5: "
            "set its shape to [2]") in found[0].message
    path = save_project(p, tmp_path / "bad.dnn.json")
    assert cli_main(["check", "--json", str(path)]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["problems"][0]["code"] == "vae_latent"


def test_encoder_heads_must_have_the_same_size():
    p = project()
    enc = p.networks["encoder"]
    enc.node_by_name("to_logvar").params["out_features"] = 3
    (sev, code, msg), = messages(p)
    assert sev == "error" and code == "vae_encoder_size"
    assert "'mean' has shape 2 and 'log_variance' 3" in msg and "same out_features" in msg


def _single_output_encoder(p, size):
    """The encoder with one Output of ``size`` instead of two heads."""
    enc = p.networks["encoder"]
    for name in ("to_logvar", "log_variance"):
        enc.remove_node(enc.node_by_name(name).id)
    enc.node_by_name("to_mean").params["out_features"] = size
    return enc


def test_one_encoder_output_of_size_2d_is_split_in_half(digits):
    p = project()
    _single_output_encoder(p, 4)
    assert cross_network_problems(p) == []
    recipe = prepare_vae(p.networks, digits, fast(p))
    assert recipe.latent == 2
    x = digits.x_train[:3]
    mu, logvar = encode(recipe.encoder, x)
    full = recipe.encoder(x)
    assert torch.equal(mu, full[:, :2]) and torch.equal(logvar, full[:, 2:])
    assert Trainer(None, digits, fast(p), recipe=recipe).run().status == "finished"
    # an odd size cannot be split
    _single_output_encoder(p := project(), 3)
    (sev, code, msg), = messages(p)
    assert sev == "error" and code == "vae_encoder_size" and "vector of size 2*d" in msg and "even" in msg


def test_decoder_output_must_be_the_sample_shape_with_a_fix(digits):
    p = project()
    dec = p.networks["decoder"]
    reshape = dec.node_by_name("to_image")
    reshape.params["shape"] = [4, 4, 4]
    spec = get("vae")
    check = spec.check_data(p, digits, p.training)
    (problem,) = check.errors
    assert problem.code == "vae_data_output"
    assert ("decoder must give back samples like the dataset's (1x8x8), but its Output "
            "'logits' is 4x4x4: set the shape of its Reshape 'to_image' to [1, 8, 8]"
            ) in problem.message
    assert [(f.node_id, f.param, f.value) for f in check.fixes] == [
        (reshape.id, "shape", [1, 8, 8])]
    with pytest.raises(RecipeError) as info:
        prepare_run(p, digits, fast(p))
    assert info.value.kind == "data" and info.value.fixable
    # the wrong size: no one-click fix, but what to do
    dec.node_by_name("fc3").params["out_features"] = 10
    reshape.params["shape"] = [10]
    (problem,) = spec.check_data(p, digits, p.training).errors
    assert "Linear with out_features 64 and a Reshape to [1, 8, 8]" in problem.message
    assert not problem.fixes


def test_encoder_input_must_take_the_dataset_samples_with_a_fix(digits):
    p = project()
    image = p.networks["encoder"].node_by_name("image")
    image.params["shape"] = [1, 28, 28]
    check = get("vae").check_data(p, digits, p.training)
    messages_ = [e.message for e in check.errors]
    assert any("dataset's samples are 1x8x8 but the encoder's Input 'image' takes 1x28x28: "
               "set its shape to [1, 8, 8]" in m for m in messages_)
    assert (image.id, "shape", [1, 8, 8]) in [(f.node_id, f.param, f.value) for f in check.fixes]


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------


def test_kl_and_reconstruction_equal_a_direct_computation():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.4], [-1.0, 0.2]])
    target = torch.tensor([[[1.0, 0.0]], [[0.25, 0.75]]])
    logits = torch.tensor([[[2.0, -1.0]], [[0.0, 0.5]]])
    total, recon, kl = vae_loss(logits, target, mu, logvar, "bce", beta=0.5)
    # KL(N(mu, sigma^2) || N(0, 1)) per dimension: (sigma^2 + mu^2 - 1 - log sigma^2) / 2
    direct = []
    for m, lv in zip(mu.tolist(), logvar.tolist()):
        direct.append(sum((math.exp(v) + a * a - 1 - v) / 2 for a, v in zip(m, lv)))
    assert kl.item() == pytest.approx(sum(direct) / 2, rel=1e-6)
    # the same through torch.distributions
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    assert kl.item() == pytest.approx(ref.sum(1).mean().item(), rel=1e-6)
    # BCE with logits summed per sample, averaged over the batch
    p = torch.sigmoid(logits)
    bce = -(target * p.log() + (1 - target) * (1 - p).log())
    assert recon.item() == pytest.approx(bce.flatten(1).sum(1).mean().item(), rel=1e-6)
    assert total.item() == pytest.approx(recon.item() + 0.5 * kl.item(), rel=1e-6)
    _, mse, _ = vae_loss(logits, target, mu, logvar, "mse", beta=1.0)
    assert mse.item() == pytest.approx(((logits - target) ** 2).flatten(1).sum(1).mean().item())


# --------------------------------------------------------------------------------------------
# The recipe on the shared trainer
# --------------------------------------------------------------------------------------------


def test_recipe_trains_with_finite_metrics_and_previews_each_epoch(digits, tmp_path):
    p = project()
    events = []
    recipe = prepare_vae(p.networks, digits, fast(p, epochs=2), callback=events.append)
    recipe.sample_dir = tmp_path / "run" / "samples"
    result = Trainer(None, digits, fast(p, epochs=2), recipe=recipe, callback=events.append,
                     run_dir=tmp_path / "run", batch_event_interval=0).run()
    assert result.status == "finished", result.message
    for epoch in result.history:
        for phase in ("train", "val"):
            m = epoch[phase]
            assert set(m) == {"loss", "recon", "kl"}
            assert all(np.isfinite(v) for v in m.values()), m
            assert m["kl"] >= 0 and m["loss"] == pytest.approx(m["recon"] + m["kl"])
    batches = [e for e in events if isinstance(e, Batch)]
    assert batches and {"recon", "kl"} <= set(batches[0].metrics)
    samples = [e for e in events if isinstance(e, VaeSamples)]
    assert [s.epoch for s in samples] == [1, 2]
    s = samples[-1]
    assert s.samples.shape == (73, 73) and s.reconstructions.shape == (73, 73)  # 32 pairs
    assert 0 <= s.samples.min() and s.samples.max() <= 1
    assert s.latent.shape == (digits.n_val, 2) and s.labels.shape == (digits.n_val,)
    assert s.class_names == tuple(str(i) for i in range(10))
    assert Path(s.sample_path) == tmp_path / "run" / "samples" / "epoch_002.png"
    assert (tmp_path / "run" / "samples" / "reconstructions_002.png").exists()
    # the left image of each pair is the validation image itself
    first = digits.x_val[0, 0].numpy()
    np.testing.assert_allclose(s.reconstructions[1:9, 1:9], first, atol=1e-6)
    kinds = [type(e).__name__ for e in events if isinstance(e, (VaeSamples, Epoch))]
    assert kinds == ["VaeSamples", "Epoch", "VaeSamples", "Epoch"]
    assert get("vae").describe_event(s) == f"epoch 2: samples and reconstructions in " \
                                           f"{tmp_path / 'run' / 'samples'}"
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert set(state["model"]) == {"encoder", "decoder"} and state["recipe"] == "vae"
    assert torch.equal(state["fixed_noise"], recipe.fixed_noise)


def test_the_preview_noise_is_fixed_and_training_noise_not_shifted(digits):
    p = project()
    a = prepare_vae(p.networks, digits, fast(p))
    b = prepare_vae(p.networks, digits, fast(p), preview=8)  # fewer previews: same training
    ra = Trainer(None, digits, fast(p), recipe=a).run()
    rb = Trainer(None, digits, fast(p), recipe=b).run()
    assert torch.equal(a.fixed_noise[:8], b.fixed_noise)
    assert ra.history[0]["train"] == rb.history[0]["train"]
    for k, t in a.decoder.state_dict().items():
        assert torch.equal(t, b.decoder.state_dict()[k])


def test_pause_resume_stop_and_resume_from_the_checkpoint(digits, tmp_path):
    p = project()
    cfg = fast(p, epochs=3, batch_size=8)
    events = []
    recipe = prepare_vae(p.networks, digits, cfg)

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
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["stopped_at_batch"] == stopped.batch
    weights = recipe.decoder.state_dict()
    for k, v in saved["model"]["decoder"].items():
        assert torch.equal(v, weights[k])
    # resume: a new recipe continues from last.pt with the saved weights and noise
    cfg2 = {**cfg, "epochs": 1, "batch_size": 64}
    again = prepare_vae(p.networks, digits, cfg2)
    res = Trainer(None, digits, cfg2, recipe=again, run_dir=tmp_path / "run", resume=True).run()
    assert res.status == "finished" and res.epochs_done == 1
    assert torch.equal(again.fixed_noise, saved["fixed_noise"])


def test_resume_continues_exactly_like_an_uninterrupted_run(digits, tmp_path):
    p = project()
    cfg = fast(p, epochs=2)
    whole = prepare_vae(p.networks, digits, cfg)
    full = Trainer(None, digits, cfg, recipe=whole, run_dir=tmp_path / "a").run()
    first = prepare_vae(p.networks, digits, {**cfg, "epochs": 1})
    Trainer(None, digits, {**cfg, "epochs": 1}, recipe=first, run_dir=tmp_path / "b").run()
    second = prepare_vae(p.networks, digits, cfg)
    res = Trainer(None, digits, cfg, recipe=second, run_dir=tmp_path / "b", resume=True).run()
    assert res.history[-1]["train"] == full.history[-1]["train"]
    np.testing.assert_array_equal(second.last_samples.samples, whole.last_samples.samples)


def test_a_nan_loss_stops_with_the_hint(digits):
    p = project()
    recipe = prepare_vae(p.networks, digits, fast(p))
    recipe.target = lambda x: x * float("nan")  # a broken batch
    result = Trainer(None, digits, fast(p), recipe=recipe).run()
    assert result.status == "failed"
    assert "NaN or infinite in epoch 1, batch 1" in result.message and NAN_HINT in result.message


def test_mse_loss_and_words():
    spec = get("vae")
    m = {"loss": 30.25, "recon": 28.0, "kl": 2.25}
    assert spec.format_metrics("train", m) == "train loss 30.2500 recon 28.0000 KL 2.2500"
    assert spec.batch_text(m) == "recon 28.000 KL 2.250"
    assert spec.headline([{"train": m, "val": {}}]) == "recon 28.0, KL 2.2"
    assert spec.describe_optimizer({"optimizer": "adam", "lr": 0.002, "vae_loss": "mse",
                                    "vae_beta": 4.0}) == "VAE adam lr 0.002, mse reconstruction, beta 4"
    assert spec.view == "vae" and [r.network for r in spec.roles] == ["encoder", "decoder"]


def test_designer_train_cli_runs_a_vae_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(["train", str(TEMPLATE), "--epochs", "1", "--device", "cpu", "--out",
                     str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "epoch 1/1  train loss " in err and " recon " in err and " KL " in err
    assert f"epoch 1: samples and reconstructions in {out / 'samples'}" in err
    assert (out / "samples" / "epoch_001.png").exists()
    assert json.loads((out / "config.json").read_text())["recipe"] == "vae"


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def _env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


RUN = r'''
import json, runpy, sys
sys.modules["designer"] = None  # the exported code must not need designer
sys.path.insert(0, ".")
import torch
torch.set_num_threads(1)
sys.argv = ["train.py", "--epochs", "1", "--device", "cpu", "--out", "ck"]
runpy.run_path("train.py", run_name="__main__")
'''


def test_exported_train_py_reproduces_the_designers_first_epoch(digits, tmp_path):
    p = project()
    out = tmp_path / "export"
    paths = export_project(p, out, project_dir=TEMPLATES)
    assert out / "train.py" in paths
    src = (out / "train.py").read_text()
    imports = [ast.unparse(n) for n in ast.walk(ast.parse(src))
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "from model import Decoder, Encoder" in imports
    assert not any("designer" in i or "distributed" in i for i in imports)
    assert src == preview_sources(p, project_dir=TEMPLATES)["train.py"]
    if importlib.util.find_spec("ruff") is not None:  # code a person would be happy to have written
        lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select",
                               "E,F,W,I", "--line-length", "100", "--output-format", "concise",
                               str(out)], capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout[-3000:]
    done = subprocess.run([sys.executable, "-E", "-s", "-c", RUN], cwd=out, capture_output=True,
                          text=True, timeout=180, env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 1: train loss " in done.stdout
    assert (out / "ck" / "samples_epoch_001.png").exists()
    assert (out / "ck" / "reconstructions_epoch_001.png").exists()
    saved = torch.load(out / "ck" / "last.pt", weights_only=True)

    # the designer, one epoch with the project's settings
    cfg = {**p.training, "device": "cpu", "epochs": 1}
    ds = load_dataset(p.dataset, TEMPLATES)
    recipe = prepare_vae(p.networks, ds, cfg)
    result = Trainer(None, ds, cfg, recipe=recipe, cpu_threads=1).run()
    assert result.status == "finished", result.message
    assert torch.equal(saved["fixed_noise"], recipe.fixed_noise)
    for name, module in recipe.modules().items():
        mine = module.state_dict()
        for k, v in saved["model"][name].items():
            assert torch.equal(v, mine[k]), f"{name}.{k}"
    for phase in ("train", "val"):
        assert saved["metrics"][phase] == result.history[0][phase], phase
    # model.py's load() reads train.py's checkpoint
    spec = importlib.util.spec_from_file_location("exported_vae_model", out / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nets = mod.load(out / "ck" / "last.pt")
    assert set(nets) == {"encoder", "decoder"}
