"""The trainer: learning, control (pause/stop), failures, checkpoints, resuming, options."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import torch
from torch import nn

from designer.engine.model.build import build_model
from designer.engine.train import runs
from designer.engine.train.data import load_dataset
from designer.engine.train.data.core import Dataset
from designer.engine.train.metrics import MetricAccumulator, macro_scores
from designer.engine.train.training import (
    Batch,
    CheckpointSaved,
    Epoch,
    Failed,
    Finished,
    Paused,
    Recipe,
    Started,
    Stopped,
    Trainer,
    TrainingError,
    pick_device,
)

from .helpers import chain


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits"})


def mlp_digits(seed=0):
    g = chain(("Flatten", {}), ("Linear", {"out_features": 64}), ("ReLU", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    return build_model(g, seed=seed)


def collect():
    events = []
    return events, events.append


def test_mlp_learns_digits(digits, tmp_path):
    events, cb = collect()
    result = Trainer(mlp_digits(), digits, {"epochs": 4, "lr": 0.005, "batch_size": 32},
                     run_dir=tmp_path / "run", callback=cb).run()
    assert result.status == "finished" and result.epochs_done == 4
    val = result.history[-1]["val"]
    assert val["accuracy"] >= 0.90
    assert 0 < val["f1"] <= 1 and val["top5_accuracy"] >= val["accuracy"]
    cm = torch.tensor(val["confusion"])
    assert cm.shape == (10, 10) and int(cm.sum()) == digits.n_val
    assert int(cm.trace()) == round(val["accuracy"] * digits.n_val)
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    assert kinds.count(Epoch) == 4 and Batch in kinds
    first_epoch = next(e for e in events if isinstance(e, Epoch))
    assert first_epoch.lr == 0.005 and first_epoch.samples_per_s > 0


def test_linear_regression_recovers_w_and_b(tmp_path):
    ds = load_dataset({"name": "linear", "n_samples": 1000, "noise": 0.1})
    model = build_model(chain(("Linear", {"out_features": 1}), shape=(1,)), seed=0)
    result = Trainer(model, ds, {"loss": "mse", "optimizer": "sgd", "lr": 0.1, "epochs": 15,
                                 "batch_size": 32}).run()
    assert result.status == "finished"
    layer = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert abs(layer.weight.item() - 2.0) < 0.05 and abs(layer.bias.item() - 1.0) < 0.05
    val = result.history[-1]["val"]
    assert val["r2"] > 0.95 and val["mse"] == pytest.approx(0.01, rel=0.5)
    assert val["mae"] > 0


def _wait(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.002)


def test_pause_resume_and_stop_take_effect_within_one_batch(tmp_path):
    ds = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 20000})
    model = build_model(chain(("Linear", {"out_features": 8}), ("ReLU", {}),
                              ("Linear", {"out_features": 2}), shape=(2,)), seed=0)
    paused, events = threading.Event(), []

    def cb(e):
        events.append(e)
        if isinstance(e, Paused):
            paused.set()

    trainer = Trainer(model, ds, {"epochs": 50, "batch_size": 8}, run_dir=tmp_path / "r",
                      callback=cb, batch_event_interval=0)
    thread = trainer.start()
    _wait(lambda: trainer.batches_done >= 5)
    trainer.pause()
    at_request = trainer.batches_done
    assert paused.wait(10)
    assert trainer.batches_done - at_request <= 1
    frozen = trainer.batches_done
    time.sleep(0.3)
    assert trainer.batches_done == frozen and trainer.state == "paused"
    trainer.resume()
    _wait(lambda: trainer.batches_done >= frozen + 20)
    trainer.stop()
    at_stop = trainer.batches_done
    thread.join(10)
    assert not thread.is_alive()
    assert trainer.batches_done - at_stop <= 1
    assert trainer.result.status == "stopped" and isinstance(events[-1], Stopped)
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert state["epoch"] == 0 and state["stopped_at_batch"] == events[-1].batch
    # and the run folder says so, for the labels of last.pt (History, Evaluation, Export)
    (last,) = [c for c in runs.checkpoints(tmp_path / "r") if c.kind == "last"]
    assert last.label == f"last.pt: stopped in epoch 1 after batch {events[-1].batch}"
    # stopping a paused run works too (the pause must not swallow the stop)
    trainer2 = Trainer(build_model(chain(("Linear", {"out_features": 2}), shape=(2,))), ds,
                       {"epochs": 5, "batch_size": 8}, batch_event_interval=0)
    trainer2.pause()
    t2 = trainer2.start()
    time.sleep(0.2)
    assert trainer2.batches_done == 0
    trainer2.stop()
    t2.join(10)
    assert trainer2.result.status == "stopped" and trainer2.batches_done == 0


class Poisoner:
    """Sets a weight to NaN after epoch 1, so epoch 2's first batch has a NaN loss."""

    def __init__(self, model):
        self.model, self.events = model, []

    def __call__(self, e):
        self.events.append(e)
        if isinstance(e, Epoch) and e.epoch == 1:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")


def test_nan_loss_stops_with_epoch_batch_and_hint_and_keeps_the_last_good_checkpoint(
        digits, tmp_path):
    model = mlp_digits()
    cb = Poisoner(model)
    result = Trainer(model, digits, {"epochs": 3}, run_dir=tmp_path / "r", callback=cb).run()
    assert result.status == "failed"
    failed = cb.events[-1]
    assert isinstance(failed, Failed)
    assert "NaN or infinite in epoch 2, batch 1" in failed.message
    assert "lower the learning rate" in failed.message and "gradient clipping" in failed.message
    assert "checkpoint (epoch 1) is kept" in failed.message
    state = runs.load_checkpoint(tmp_path / "r" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_poisoned_data_is_caught(tmp_path):
    x = torch.randn(100, 3)
    x[37, 1] = float("inf")
    ds = Dataset("poisoned", "regression", x, x.sum(1, keepdim=True), x[:10], x[:10, :1],
                 (3,), "float32")
    model = build_model(chain(("Linear", {"out_features": 1}), shape=(3,)))
    events, cb = collect()
    Trainer(model, ds, {"loss": "mse", "epochs": 2}, callback=cb).run()
    assert isinstance(events[-1], Failed) and "epoch 1, batch" in events[-1].message


def test_checkpoints_load_safely_and_resume_continues_the_history(digits, tmp_path):
    run = tmp_path / "run"
    cfg = {"epochs": 2, "lr": 0.003, "optimizer": "sgd", "scheduler": "step", "step_size": 1,
           "gamma": 0.5}
    events, cb = collect()
    Trainer(mlp_digits(), digits, cfg, run_dir=run, callback=cb,
            extra_config={"dataset": {"name": "digits"}}).run()
    saved = [e.kind for e in events if isinstance(e, CheckpointSaved)]
    assert saved.count("last") == 2 and "best" in saved
    for name in ("best.pt", "last.pt"):
        state = torch.load(run / name, weights_only=True)
        assert {"model", "optimizer", "epoch", "config"} <= set(state)
        assert state["config"]["training"]["optimizer"] == "sgd"
        assert "fc1.weight" in state["model"]
    assert json.loads((run / "config.json").read_text())["dataset"] == {"name": "digits"}
    events, cb = collect()
    result = Trainer(mlp_digits(seed=5), digits, {**cfg, "epochs": 4}, run_dir=run, callback=cb,
                     resume=True).run()
    assert result.status == "finished"
    assert events[0].start_epoch == 2
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2, 3, 4]
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    lrs = [r["lr"] for r in result.history]
    assert lrs == pytest.approx([0.003, 0.0015, 0.00075, 0.000375])  # scheduler state resumed
    # 2 + 2 resumed epochs give exactly the weights of 4 epochs in one go (CPU, same seed)
    straight = mlp_digits()
    Trainer(straight, digits, {**cfg, "epochs": 4}).run()
    resumed = torch.load(run / "last.pt", weights_only=True)["model"]
    for k, v in straight.state_dict().items():
        assert torch.allclose(resumed[k], v, atol=1e-6), k


def test_resume_refuses_a_finished_run_and_a_different_design(digits, tmp_path):
    run = tmp_path / "run"
    Trainer(mlp_digits(), digits, {"epochs": 1}, run_dir=run).run()
    events, cb = collect()
    Trainer(mlp_digits(), digits, {"epochs": 1}, run_dir=run, resume=True, callback=cb).run()
    assert "ask for more than that" in events[-1].message
    other = build_model(chain(("Flatten", {}), ("Linear", {"out_features": 10}),
                              shape=(1, 8, 8)))
    events, cb = collect()
    Trainer(other, digits, {"epochs": 3}, run_dir=run, resume=True, callback=cb).run()
    assert isinstance(events[-1], Failed) and "does not fit this design" in events[-1].message


def test_training_is_reproducible_on_cpu(digits):
    cfg = {"epochs": 2, "seed": 3}
    model = build_model(chain(("Flatten", {}), ("Linear", {"out_features": 32}),
                              ("Dropout", {"p": 0.3}), ("Linear", {"out_features": 10}),
                              shape=(1, 8, 8)), seed=3)
    a = Trainer(model, digits, cfg).run().history
    model = build_model(chain(("Flatten", {}), ("Linear", {"out_features": 32}),
                              ("Dropout", {"p": 0.3}), ("Linear", {"out_features": 10}),
                              shape=(1, 8, 8)), seed=3)
    b = Trainer(model, digits, cfg).run().history
    assert [r["train"]["loss"] for r in a] == [r["train"]["loss"] for r in b]


@pytest.mark.parametrize("options", [
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    {"optimizer": "rmsprop", "scheduler": "cosine"},
    {"optimizer": "adamw", "scheduler": "plateau", "l1": 1e-5, "grad_clip": 1.0},
    {"optimizer": "adagrad", "lr": 0.05},
    {"loss": "nll"},
    {"loss": "mse"},
    {"loss": "bce_with_logits", "out": 1},
    {"loss": "smooth_l1"},
    {"mixed_precision": True, "device": "cpu"},
])
def test_every_option_trains(options):
    options = dict(options)
    out = options.pop("out", 2)
    ds = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 200})
    layers = [("Linear", {"out_features": 16}), ("ReLU", {}), ("Linear", {"out_features": out})]
    if options.get("loss") == "nll":
        layers.append(("LogSoftmax", {"dim": 1}))
    model = build_model(chain(*layers, shape=(2,)), seed=0)
    events, cb = collect()
    result = Trainer(model, ds, {"epochs": 3, "lr": 0.01, **options}, callback=cb).run()
    assert result.status == "finished", events[-1]
    losses = [r["train"]["loss"] for r in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    if options.get("mixed_precision"):
        assert "needs a CUDA device" in events[0].notes[0]


class Constant(nn.Module):
    """A model whose loss never changes: early stopping must end the run."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(x.shape[0], 2) + 0 * self.w


def test_early_stopping():
    ds = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 100})
    events, cb = collect()
    result = Trainer(Constant(), ds, {"epochs": 20, "early_stopping": 2}, callback=cb).run()
    assert result.epochs_done == 3 and result.message == "early stopping"
    assert events[-1].reason == "early stopping" and events[-1].best_epoch == 1


def test_batch_events_are_throttled(digits):
    events, cb = collect()
    t0 = time.perf_counter()
    Trainer(mlp_digits(), digits, {"epochs": 2, "batch_size": 8}, callback=cb,
            batch_event_interval=0.05).run()
    elapsed = time.perf_counter() - t0
    batches = sum(isinstance(e, Batch) for e in events)
    assert batches <= elapsed / 0.05 + 2 * 2 + 1  # plus one at each epoch's end
    last = [e for e in events if isinstance(e, Batch)][-1]
    assert last.batch == last.batches and "accuracy" in last.metrics and last.eta_s == 0


def test_failures_become_events_not_exceptions(digits):
    wrong = build_model(chain(("Flatten", {}), ("Linear", {"out_features": 10}),
                              shape=(3, 4, 4)))  # 48 features, digits give 64
    events, cb = collect()
    result = Trainer(wrong, digits, {"epochs": 1}, callback=cb).run()
    assert result.status == "failed" and isinstance(events[-1], Failed)
    assert "Traceback" in events[-1].traceback and events[-1].message
    with pytest.raises(TrainingError, match="training.lr"):
        Trainer(wrong, digits, {"lr": -1})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on CPU-only machines")
def test_missing_cuda_is_a_clear_message():
    with pytest.raises(TrainingError, match="CUDA is not available"):
        pick_device("cuda")
    assert pick_device("auto").type in ("cpu", "mps")


def test_metrics_against_hand_computed_values():
    acc = MetricAccumulator("classification", 3, torch.device("cpu"))
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    target = torch.tensor([0, 1, 2, 2])
    acc.update(torch.tensor(0.5), logits, target)
    m = acc.compute()
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    # precision: 1, 1/2, 1 ; recall: 1, 1, 1/2 ; f1: 1, 2/3, 2/3
    assert m["precision"] == pytest.approx(2.5 / 3) and m["recall"] == pytest.approx(2.5 / 3)
    assert m["f1"] == pytest.approx((1 + 4 / 3) / 3)
    assert macro_scores(torch.zeros(2, 2, dtype=torch.int64))["f1"] == 0.0
    reg = MetricAccumulator("regression", None, torch.device("cpu"))
    y = torch.tensor([[1.0], [2.0], [3.0]])
    reg.update(torch.tensor(0.0), y + torch.tensor([[0.5], [-0.5], [0.0]]), y)
    r = reg.compute()
    assert r["mse"] == pytest.approx(1 / 6) and r["mae"] == pytest.approx(1 / 3)
    assert r["r2"] == pytest.approx(1 - 0.5 / 2)


class TwoHeads(Recipe):
    """A minimal custom recipe (the GAN shape: several modules, own step) drives the loop."""

    name = "two-heads"

    def setup(self, ctx):
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        self.opt = torch.optim.SGD([*self.a.parameters(), *self.b.parameters()], lr=0.1)
        self.ctx = ctx

    def modules(self):
        return {"a": self.a, "b": self.b}

    def train_step(self, x, y):
        out = self.a(x) + self.b(x)
        loss = nn.functional.cross_entropy(out, y)
        self.ctx.guard(loss)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        from designer.engine.train.training import StepOutput
        return StepOutput(loss.detach(), out.detach())

    def eval_step(self, x, y):
        out = self.a(x) + self.b(x)
        from designer.engine.train.training import StepOutput
        return StepOutput(nn.functional.cross_entropy(out, y), out)

    def lr(self):
        return 0.1

    def state_dict(self):
        return {"model": {"a": self.a.state_dict(), "b": self.b.state_dict()},
                "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.a.load_state_dict(state["model"]["a"])
        self.b.load_state_dict(state["model"]["b"])


def test_a_custom_recipe_plugs_into_the_loop(tmp_path):
    ds = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 200})
    result = Trainer(None, ds, {"epochs": 2}, recipe=TwoHeads(), run_dir=tmp_path / "r").run()
    assert result.status == "finished"
    state = runs.load_checkpoint(tmp_path / "r")
    assert state["recipe"] == "two-heads" and set(state["model"]) == {"a", "b"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_trains_and_resumes(digits, tmp_path):
    events, cb = collect()
    cfg = {"epochs": 2, "device": "cuda", "mixed_precision": True, "lr": 0.005}
    result = Trainer(mlp_digits(), digits, cfg, run_dir=tmp_path / "r", callback=cb).run()
    assert result.status == "finished", events[-1]
    assert events[0].device.startswith("cuda") and events[0].mixed_precision
    assert result.history[-1]["val"]["accuracy"] > 0.8
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True, map_location="cpu")
    assert state["scaler"] is not None
    result = Trainer(mlp_digits(), digits, {**cfg, "epochs": 3}, run_dir=tmp_path / "r",
                     resume=True).run()
    assert result.status == "finished" and len(result.history) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_nan_is_caught_lazily_with_a_batch_range(digits):
    model = mlp_digits()
    cb = Poisoner(model)
    Trainer(model, digits, {"epochs": 3, "device": "cuda"}, callback=cb).run()
    assert isinstance(cb.events[-1], Failed)
    assert "epoch 2" in cb.events[-1].message and "batch" in cb.events[-1].message
