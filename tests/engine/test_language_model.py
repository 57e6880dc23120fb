"""The language-model recipe: its metrics against a direct computation, deterministic generation
from the vocabulary, the checks, one epoch of each template from the CLI, pause/stop/resume/NaN on
the shared trainer, and the exported train.py reproducing the designer's first epoch exactly
(weights and the sample text) without designer installed."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from designer.cli import main as cli_main
from designer.engine.document.project import Project, load_project
from designer.engine.interop.export import export_project
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes import RecipeError, get, prepare_run
from designer.engine.train.recipes import language_model as lm
from designer.engine.train.recipes.language_model import training as lm_training
from designer.engine.train.training import NAN_HINT, Batch, Epoch, Paused, Resumed, Stopped, Trainer

from .helpers import chain

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"
TEXT = ("The cat sat on the mat. The dog sat on the log!\n"
        "A bird sang, and the cat looked up; the dog slept.\n") * 8


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "story.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _tiny(path: Path, tokenizer: str = "char", **training) -> tuple[Project, object]:
    """Embedding -> Linear over a small text: a causal model (each position sees its own token)."""
    ds = load_dataset({"kind": "text", "path": str(path), "seq_length": 12,
                       "val_fraction": 0.25, "tokenizer": tokenizer})
    v = len(ds.vocab)
    g = chain(("Embedding", {"num_embeddings": v, "embedding_dim": 8}),
              ("Linear", {"out_features": v}), shape=(12,), dtype="int64")
    project = Project(name="tiny lm", networks={"model": g},
                      dataset={"kind": "text", "path": str(path), "seq_length": 12,
                               "val_fraction": 0.25, "tokenizer": tokenizer},
                      training={"recipe": "language_model", "epochs": 1, "batch_size": 4,
                                "device": "cpu", "lm_sample_length": 30, **training})
    return project, ds


def _template(tid: str, **training) -> tuple[Project, object]:
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    project.training.update({"device": "cpu", "epochs": 1, **training})
    ds = load_dataset(project.dataset, TEMPLATES)
    return project, ds


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------


def test_the_recipe_is_registered_with_its_settings_and_view():
    from designer.engine.train.config import setting, validate_training

    spec = get("language_model")
    assert spec is lm.LANGUAGE_MODEL and spec.view == "language_model"
    assert {"loss", "l1"} <= set(spec.hides)
    t = validate_training({"recipe": "language_model"})
    assert (t["lm_prompt"], t["lm_temperature"], t["lm_sample_length"]) == ("The ", 0.8, 200)
    assert setting("training", "lm_prompt").applies_to(t)
    assert not setting("training", "lm_prompt").applies_to({"recipe": "supervised"})
    with pytest.raises(ValueError, match="lm_temperature"):
        validate_training({"recipe": "language_model", "lm_temperature": 0.0})


def test_words_for_the_cli_and_history():
    spec = get("language_model")
    m = {"loss": 1.4375, "perplexity": math.exp(1.4375), "accuracy": 0.5625}
    assert spec.format_metrics("val", m) == "val loss 1.4375 ppl 4.21 acc 56.2%"
    assert spec.batch_text(m) == "ppl 4.21  acc  56.2%"
    history = [{"epoch": 1, "train": {"loss": 2.0}, "val": {"loss": 1.6}},
               {"epoch": 2, "train": {"loss": 1.5}, "val": {"loss": 1.4375}}]
    assert spec.headline(history) == "perplexity 4.21"
    assert spec.headline([{"epoch": 1, "train": {"loss": 1.4375}, "val": {}}]) == (
        "perplexity 4.21 (training)")
    assert spec.headline([]) == ""
    words = spec.describe_optimizer({"optimizer": "adam", "lr": 0.003, "lm_temperature": 0.8})
    assert words == "adam lr 0.003, next-token cross-entropy, samples at temperature 0.8"
    line = spec.describe_event(lm.LmSample(3, "The ", "cat sat\non", 0.8))
    assert line == "sample after epoch 3 (temperature 0.8):\n  | The cat sat\n  | on"
    assert spec.describe_event(object()) is None


def test_checks_say_what_to_change(text_file):
    project, ds = _tiny(text_file)
    spec = get("language_model")
    assert spec.check_data(project, ds, project.training).problems == []
    # not a text
    digits = load_dataset({"kind": "digits"})
    msg = spec.check_data(project, digits, project.training).errors[0].message
    assert "set the dataset kind to text" in msg
    with pytest.raises(RecipeError, match="set the dataset kind to text"):
        prepare_run(project, digits)
    # float inputs: the fit check asks for int64 token ids, with a fix
    g = chain(("Linear", {"out_features": len(ds.vocab)}), shape=(12,))
    bad = Project(name="float", networks={"model": g}, dataset=project.dataset,
                  training=project.training)
    check = spec.check_data(bad, ds, bad.training)
    assert not check.ok and "int64" in check.errors[0].message
    assert any(f.param == "dtype" and f.value == "int64" for f in check.fixes)
    # a prompt with a character the text lacks
    training = {**project.training, "lm_prompt": "Zebra"}
    msg = spec.check_data(project, ds, training).errors[0].message
    assert msg.startswith("training.lm_prompt: 'Z' is not in the vocabulary")
    assert "change the prompt" in msg
    # the supervised recipe on a text says to choose this one
    sup = {**project.training, "recipe": "supervised"}
    assert "set training.recipe to language_model" in get("supervised").check_data(
        project, ds, sup).errors[0].message


# ---------------------------------------------------------------------------------------------
# Metrics and generation
# ---------------------------------------------------------------------------------------------


def test_loss_perplexity_and_accuracy_equal_a_direct_computation(text_file):
    project, ds = _tiny(text_file)
    events = []
    _, recipe = prepare_run(project, ds, callback=events.append)
    result = Trainer(None, ds, project.training, recipe=recipe, callback=events.append,
                     batch_event_interval=0).run()
    assert result.status == "finished", result.message
    val = result.history[0]["val"]
    assert set(val) == {"loss", "perplexity", "accuracy"}
    model = recipe.model.eval()
    with torch.no_grad():
        logits = model(ds.x_val)
        v = logits.shape[-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, v), ds.y_val.reshape(-1))
        acc = (logits.argmax(-1) == ds.y_val).double().mean()
    assert val["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert val["perplexity"] == pytest.approx(math.exp(loss.item()), rel=1e-6)
    assert val["accuracy"] == pytest.approx(acc.item(), abs=1e-9)
    train = result.history[0]["train"]
    assert train["perplexity"] == pytest.approx(math.exp(train["loss"]))
    assert 0 <= train["accuracy"] <= 1
    batches = [e for e in events if isinstance(e, Batch)]
    assert {"perplexity", "accuracy"} <= set(batches[0].metrics)
    kinds = [type(e).__name__ for e in events if isinstance(e, (lm.LmSample, Epoch))]
    assert kinds == ["LmSample", "Epoch"]  # the sample comes before its epoch is announced
    assert lm.perplexity(float("nan")) != lm.perplexity(float("nan"))
    assert lm.perplexity(1e6) == math.inf


def test_generation_is_deterministic_for_a_seed_and_uses_only_vocabulary_tokens(text_file,
                                                                                 tmp_path):
    project, ds = _tiny(text_file, lm_prompt="The c", lm_sample_length=50)
    samples = []
    for seed, run in ((0, "a"), (0, "b"), (5, "c")):
        training = {**project.training, "seed": seed}
        _, recipe = prepare_run(project, ds, training, run_dir=tmp_path / run)
        Trainer(None, ds, training, recipe=recipe).run()
        samples.append(recipe.last_sample)
    a, b, c = samples
    assert a == b and a.text != c.text
    assert (a.epoch, a.prompt, a.temperature) == (1, "The c", 0.8)
    assert len(a.text) == 50 and set(a.text) <= set(ds.vocab)
    assert (tmp_path / "a" / "samples" / "epoch_001.txt").read_text() == "The c" + a.text + "\n"
    # the sampler has its own generator: training's random stream is the same with or without
    torch.manual_seed(123)
    _, recipe = prepare_run(project, ds)
    recipe.setup(_ctx(ds, project.training))
    state = torch.get_rng_state()
    recipe.sample()
    assert torch.equal(state, torch.get_rng_state())


def test_word_level_samples_are_words_of_the_vocabulary(text_file):
    project, ds = _tiny(text_file, tokenizer="word", lm_prompt="The dog", lm_sample_length=12)
    _, recipe = prepare_run(project, ds)
    Trainer(None, ds, project.training, recipe=recipe).run()
    text = recipe.last_sample.text
    assert text.startswith(" ")
    words = text.split()
    assert len(words) == 12 and set(words) <= set(ds.vocab)


def _ctx(ds, training):
    from designer.engine.train.config import validate_training
    from designer.engine.train.recipes.base import TrainContext

    return TrainContext(torch.device("cpu"), validate_training(training), ds, False,
                        lambda loss: None)


# ---------------------------------------------------------------------------------------------
# The templates from the CLI
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tid", ["char-lstm", "tiny-gpt"])
def test_designer_train_runs_one_epoch_of_each_template(tid, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(["train", tid, "--epochs", "1", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "epoch 1/1  train loss " in err and " ppl " in err and " acc " in err
    assert "sample after epoch 1 (temperature 0.8):\n  | The " in err
    sample = (out / "samples" / "epoch_001.txt").read_text(encoding="utf-8")
    assert sample.startswith("The ") and len(sample) == len("The ") + 200 + 1
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "language_model"
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert history[0]["val"]["perplexity"] < 64  # better than guessing among 64 characters
    assert get("language_model").headline(history).startswith("perplexity ")


# ---------------------------------------------------------------------------------------------
# The shared trainer: pause, stop, resume, NaN
# ---------------------------------------------------------------------------------------------


def test_pause_resume_stop_and_resume_from_the_checkpoint(tmp_path):
    project, ds = _template("char-lstm", epochs=3, batch_size=8, lm_sample_length=20)
    cfg = project.training
    events = []
    _, recipe = prepare_run(project, ds)

    def on_event(ev):
        events.append(ev)
        if isinstance(ev, Batch) and ev.batch >= 3 and not any(isinstance(e, Paused)
                                                               for e in events):
            trainer.pause()
        elif isinstance(ev, Paused):
            trainer.resume()
        elif isinstance(ev, Resumed):
            trainer.stop()

    trainer = Trainer(None, ds, cfg, recipe=recipe, callback=on_event, run_dir=tmp_path / "run",
                      batch_event_interval=0)
    result = trainer.run()
    assert result.status == "stopped"
    assert [type(e).__name__ for e in events if isinstance(e, (Paused, Resumed, Stopped))] == [
        "Paused", "Resumed", "Stopped"]
    stopped = next(e for e in events if isinstance(e, Stopped))
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["stopped_at_batch"] == stopped.batch and saved["recipe"] == "language_model"
    for k, v in saved["model"].items():
        assert torch.equal(v, recipe.model.state_dict()[k])
    # a finished epoch, then resume: the new recipe continues from last.pt with epoch 2's sample
    cfg2 = {**cfg, "epochs": 1, "batch_size": 64}
    run2 = tmp_path / "run2"
    _, first = prepare_run(project, ds, cfg2)
    assert Trainer(None, ds, cfg2, recipe=first, run_dir=run2).run().status == "finished"
    cfg3 = {**cfg2, "epochs": 2}
    samples = []
    _, again = prepare_run(project, ds, cfg3, callback=samples.append)
    res = Trainer(None, ds, cfg3, recipe=again, run_dir=run2, resume=True,
                  callback=samples.append).run()
    assert res.status == "finished" and res.epochs_done == 2 and len(res.history) == 2
    assert [s.epoch for s in samples if isinstance(s, lm.LmSample)] == [2]


def test_a_nan_loss_stops_with_the_hint(text_file, monkeypatch):
    project, ds = _tiny(text_file)
    monkeypatch.setattr(lm_training, "next_token_loss", lambda logits, y: logits.sum() * float("nan"))
    _, recipe = prepare_run(project, ds)
    result = Trainer(None, ds, project.training, recipe=recipe).run()
    assert result.status == "failed"
    assert "NaN or infinite in epoch 1, batch 1" in result.message and NAN_HINT in result.message


# ---------------------------------------------------------------------------------------------
# Export: train.py is the designer's first epoch
# ---------------------------------------------------------------------------------------------

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


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.parametrize("tid", ["char-lstm", "tiny-gpt"])
def test_exported_train_py_reproduces_the_designers_first_epoch(tid, tmp_path):
    project, ds = _template(tid, batch_size=64, lm_sample_length=40)
    out = tmp_path / "export"
    paths = export_project(project, out, project_dir=TEMPLATES)
    assert out / "train.py" in paths
    src = (out / "train.py").read_text()
    imports = [ast.unparse(n) for n in ast.walk(ast.parse(src))
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("designer" in i for i in imports)
    assert "import torch.distributed as dist" in imports  # torchrun works as for supervised
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select",
                           "E,F,W,I", "--line-length", "100", "--output-format", "concise",
                           str(out / "train.py")], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout[-3000:]
    (out / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, "-I", "driver.py", "--epochs", "1", "--device", "cpu",
                           "--out", "ck", "--log-interval", "1000"], cwd=out,
                          capture_output=True, text=True, timeout=300, env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 1: train loss " in done.stdout and " ppl " in done.stdout
    assert "Sample after epoch 1 (temperature 0.8):\nThe " in done.stdout
    # the designer, on one thread as the script
    _, recipe = prepare_run(project, ds, run_dir=tmp_path / "run")
    result = Trainer(None, ds, project.training, recipe=recipe, run_dir=tmp_path / "run",
                     cpu_threads=1).run()
    assert result.status == "finished", result.message
    trained = torch.load(out / "trained.pt", weights_only=True)
    mine = recipe.model.state_dict()
    assert list(trained) == list(mine)
    for k, v in mine.items():
        assert torch.equal(trained[k], v), k
    assert ((out / "ck" / "sample_epoch_001.txt").read_text(encoding="utf-8")
            == (tmp_path / "run" / "samples" / "epoch_001.txt").read_text(encoding="utf-8"))
    saved = torch.load(out / "ck" / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["vocab"] == ds.vocab


def test_torchrun_two_processes_keep_equal_parameters(text_file, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    project, _ = _tiny(text_file, lm_sample_length=10)
    out = tmp_path / "ddp"
    export_project(project, out)
    (out / "ranks.py").write_text(
        "import os, sys\nsys.modules['designer'] = None\n"
        "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
        "import torch\nimport train\nmodel = train.main(sys.argv[1:])\n"
        "torch.save(model.state_dict(), f\"rank{os.environ['RANK']}.pt\")\n")
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "ranks.py", "--epochs", "1",
         "--device", "cpu", "--batch-size", "4", "--out", str(tmp_path / "ck")],
        cwd=out, capture_output=True, text=True, check=False, timeout=300, env=_env())
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "2 process(es)" in done.stdout and "Sample after epoch 1" in done.stdout
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
