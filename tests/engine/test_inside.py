"""Inside the network (designer.engine.train.inside): summaries equal a direct computation, the
vanishing gradients of a deep sigmoid MLP (and their absence with ReLU + BatchNorm), replay from
the run folder, training unchanged by observing, no hooks left, blocks, the GAN's two networks,
attention and recurrent views, and a layer's formula with its shapes."""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from designer.engine.document.project import Project, load_project
from designer.engine.model.blocks import group
from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph
from designer.engine.train.data import load_dataset
from designer.engine.train.events import Epoch, InsideSample, InsideSummary
from designer.engine.train.inside import InsideObserver, InsideOptions, layers_of
from designer.engine.train.inside_files import layer_text, read_inside
from designer.engine.train.training import Trainer

from .helpers import chain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits"})


def mlp(*hidden: tuple[str, dict], seed: int = 0):
    g = chain(("Flatten", {}), *hidden, ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    return g, build_model(g, seed=seed)


def inside_events(events):
    return [e for e in events if isinstance(e, (InsideSummary, InsideSample))]


def summaries(events):
    return [e for e in events if isinstance(e, InsideSummary)]


def no_hooks_left(*modules: nn.Module) -> bool:
    from torch.optim import optimizer

    for root in modules:
        for m in root.modules():
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
                return False
    return not optimizer._global_optimizer_pre_hooks and (
        not optimizer._global_optimizer_post_hooks)


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN and arrays compared by value and dtype."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


# --------------------------------------------------------------------------------------------
# The numbers are the real ones
# --------------------------------------------------------------------------------------------


def test_summaries_equal_a_direct_computation(digits):
    g, model = mlp(("Linear", {"out_features": 16}), ("ReLU", {}))
    ids = {n.name: n.id for n in g.nodes.values()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = digits.batch("train", torch.arange(64))
    events = []
    obs = InsideObserver({"model": model}, InsideOptions(bins=16, sample=None), events.append)
    twin = copy.deepcopy(model)  # the weights before the step, to recompute what happened
    with obs.capture(1, 1, 1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    (s,) = events
    assert list(s.layers) == ["model.flatten1", "model.fc1", "model.relu1", "model.fc2"]
    assert no_hooks_left(model)

    values = twin.forward_all(x)
    for v in values.values():
        if v.requires_grad:
            v.retain_grad()
    nn.functional.cross_entropy(values[ids["output1"]], y).backward()
    for name in ("fc1", "fc2", "relu1"):
        ls = s.layers[f"model.{name}"]
        assert ls.node == ids[name] and ls.path == name and ls.network == "model"
        act = values[ids[name]].detach().numpy().ravel()
        h = ls.activations
        assert np.array_equal(h.counts, np.histogram(act, bins=h.edges)[0])
        assert h.edges[0] == act.min() and h.edges[-1] == act.max()
        assert ls.act_mean == pytest.approx(act.mean(), rel=1e-5)
        assert ls.act_std == pytest.approx(act.std(), rel=1e-5)
        assert ls.out_grad_norm == pytest.approx(values[ids[name]].grad.norm().item(), rel=1e-5)
    for name in ("fc1", "fc2"):
        ls = s.layers[f"model.{name}"]
        layer, before = getattr(model, name), getattr(twin, name)
        w = torch.cat([layer.weight.detach().ravel(), layer.bias.detach().ravel()]).numpy()
        assert np.array_equal(ls.weights.counts, np.histogram(w, bins=ls.weights.edges)[0])
        grad = torch.cat([layer.weight.grad.ravel(), layer.bias.grad.ravel()])
        assert ls.grad_norm == pytest.approx(grad.norm().item(), rel=1e-5)
        assert ls.grad_norm == pytest.approx(
            math.hypot(layer.weight.grad.norm().item(), layer.bias.grad.norm().item()), rel=1e-5)
        assert np.array_equal(ls.grads.counts, np.histogram(grad.numpy(), bins=ls.grads.edges)[0])
        w0 = torch.cat([before.weight.detach().ravel(), before.bias.detach().ravel()])
        assert ls.update_ratio == pytest.approx(
            (torch.from_numpy(w) - w0).norm().item() / w0.norm().item(), rel=1e-4)
        assert ls.nonfinite_weights == ls.nonfinite_grads == ls.nonfinite_activations == 0
        assert math.isnan(ls.dead_fraction)
    relu = values[ids["relu1"]].detach()
    dead = (relu == 0).all(dim=0).float().mean().item()
    assert s.layers["model.relu1"].dead_fraction == pytest.approx(dead)
    assert s.layers["model.relu1"].weights is None and math.isnan(s.layers["model.relu1"].grad_norm)
    assert s.layers["model.fc1"].weights.counts.shape == (16,)


def test_a_dead_relu_layer_is_reported_dead_and_non_finite_values_are_counted():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-1.0, -1.0, 1.0]))
    events = []
    obs = InsideObserver({"net": model}, InsideOptions(sample=None), events.append)
    with obs.capture(1, 1, 1):
        model(torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    s = events[0].layers
    assert list(s) == ["net.0", "net.1"]  # a module not built from a design: its leaves
    assert s["net.1"].dead_fraction == pytest.approx(2 / 3)
    with obs.capture(1, 2, 2):
        model(torch.tensor([[1.0, 2.0, float("nan"), 0.0], [1.0, 1.0, 1.0, 1.0]]))
    s = events[1].layers
    assert s["net.0"].nonfinite_activations == 3  # the NaN spreads to every output of sample 0
    assert s["net.0"].activations.counts.sum() == 3
    assert s["net.1"].dead_fraction == 0.0  # NaN is not zero


# --------------------------------------------------------------------------------------------
# The classic demonstration
# --------------------------------------------------------------------------------------------


def deep(hidden: list[tuple[str, dict]], depth: int = 10) -> list[tuple[str, dict]]:
    return [layer for _ in range(depth) for layer in
            [("Linear", {"out_features": 32}), *hidden]]


def first_to_last(events) -> float:
    """Gradient norm of the first Linear over the last one's, median over the summaries."""
    ratios = []
    for s in summaries(events):
        norms = [ls.grad_norm for ls in s.layers.values() if ls.type == "Linear"]
        ratios.append(norms[0] / norms[-1])
    return float(np.median(ratios))


def test_gradients_vanish_through_a_deep_sigmoid_mlp_but_not_with_relu_and_batchnorm(digits):
    cfg = {"epochs": 1, "batch_size": 64, "optimizer": "sgd", "lr": 0.05}
    results = {}
    for name, hidden in (("sigmoid", [("Sigmoid", {})]),
                         ("relu_bn", [("BatchNorm1d", {}), ("ReLU", {})])):
        _, model = mlp(*deep(hidden))
        events = []
        Trainer(model, digits, cfg, callback=events.append,
                inside=InsideOptions(every=5, overhead=None, sample=None)).run()
        results[name] = first_to_last(events)
    # 11 Linear layers: with sigmoids each one shrinks the gradient (sigmoid' <= 1/4)
    assert results["sigmoid"] < 1e-3, results
    assert 1e-2 < results["relu_bn"] < 1e2, results


# --------------------------------------------------------------------------------------------
# Replay, training unchanged, hooks gone
# --------------------------------------------------------------------------------------------


def test_replay_from_the_run_folder_equals_the_live_events(digits, tmp_path):
    _, model = mlp(("Linear", {"out_features": 16}), ("ReLU", {}))
    events = []
    Trainer(model, digits, {"epochs": 2, "batch_size": 64}, run_dir=tmp_path / "run",
            callback=events.append, inside=InsideOptions(every=7, overhead=None, sample=3)).run()
    live = inside_events(events)
    # by count (no time budget): the first batch, each epoch's last batch (23 batches per
    # epoch) and 7 batches after the previous capture; the sample view with the first capture
    # and at each epoch's end
    steps = [(type(e).__name__, e.step) for e in live]
    assert steps == [("InsideSummary", 1), ("InsideSample", 1), ("InsideSummary", 8),
                     ("InsideSummary", 15), ("InsideSummary", 22), ("InsideSummary", 23),
                     ("InsideSample", 23), ("InsideSummary", 30), ("InsideSummary", 37),
                     ("InsideSummary", 44), ("InsideSummary", 46), ("InsideSample", 46)]
    assert all(e.index == 3 for e in live if isinstance(e, InsideSample))
    replay = read_inside(tmp_path / "run")
    assert len(replay) == len(live) and all(same(a, b) for a, b in zip(live, replay))
    sample = live[6]
    assert sample.outputs["model.fc1"].kind == "vector" and sample.outputs["model.fc1"].data.shape == (16,)
    x, _ = digits.batch("val", torch.tensor([3]))
    assert np.array_equal(sample.inputs["model"], x[0].numpy())


def test_observing_changes_nothing_in_training_and_leaves_no_hooks(digits):
    cfg = {"epochs": 2, "batch_size": 64, "seed": 3}
    layers = (("Linear", {"out_features": 32}), ("BatchNorm1d", {}), ("ReLU", {}),
              ("Dropout", {"p": 0.3}))
    _, plain = mlp(*layers)
    a = Trainer(plain, digits, cfg).run().history
    _, watched = mlp(*layers)
    events = []
    trainer = Trainer(watched, digits, cfg, callback=events.append,
                      inside=InsideOptions(every=1, overhead=None, sample=0))
    b = trainer.run().history
    assert len(summaries(events)) == 46
    for ra, rb in zip(a, b):
        assert ra["train"] == rb["train"] and ra["val"] == rb["val"]
    for (k, va), vb in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(va, vb), k
    assert no_hooks_left(watched)


def test_observe_and_stop_observing_from_another_thread_while_running(digits):
    _, model = mlp(("Linear", {"out_features": 16}), ("ReLU", {}))
    events, started, stop = [], threading.Event(), threading.Event()

    def callback(e):
        events.append(e)
        if isinstance(e, Epoch) and e.epoch == 1:
            started.set()
            assert stop.wait(10)

    trainer = Trainer(model, digits, {"epochs": 3, "batch_size": 64}, callback=callback)
    trainer.observe(InsideOptions(every=10, overhead=None, sample=None))
    trainer.start()
    assert started.wait(20)
    trainer.stop_observing()  # from this thread, while the trainer waits in its callback
    stop.set()
    trainer.join(30)
    assert trainer.result.status == "finished"
    assert [s.step for s in summaries(events)] == [1, 11, 21, 23]  # all in epoch 1
    assert no_hooks_left(model)


# --------------------------------------------------------------------------------------------
# Blocks, two networks, attention and recurrent layers
# --------------------------------------------------------------------------------------------


def test_layers_inside_blocks_are_observed_by_their_module_path(digits):
    main = Graph()
    last = None
    for type_, name, params in (("Input", "inp", {"shape": [1, 8, 8]}), ("Flatten", "flat", {}),
                                ("Linear", "fc1", {"out_features": 16}), ("ReLU", "relu", {}),
                                ("Linear", "fc2", {"out_features": 10}), ("Output", "out", {})):
        main.add_node(type_, name, params, id=name)
        if last is not None:
            main.connect(last, name)
        last = name
    p = Project(name="blocks", networks={"main": main})
    use = group(p, "main", ["fc1", "relu"], "Hidden")
    model = build_model(p.graph, seed=0)
    attr = p.graph.nodes[use].name
    keys = [layer.key for layer in layers_of({"model": model})]
    assert keys == ["model.flat", f"model.{attr}.fc1", f"model.{attr}.relu", "model.fc2"]
    events = []
    Trainer(model, digits, {"epochs": 1, "batch_size": 64}, callback=events.append,
            inside=InsideOptions(every=100)).run()
    s, sample = inside_events(events)[-2:]  # the run's last batch (after the first one)
    inner = s.layers[f"model.{attr}.fc1"]
    assert inner.node == "fc1" and inner.grad_norm > 0 and inner.update_ratio > 0
    assert sample.outputs[f"model.{attr}.relu"].data.shape == (16,)
    assert no_hooks_left(model)


def test_the_gan_template_shows_both_networks(tmp_path):
    from designer.engine.train.recipes.gan.training import prepare_gan

    ds = load_dataset({"kind": "digits", "normalize": False, "val_fraction": 0.1})
    p = load_project(ROOT / "designer" / "templates" / "gan-digits.dnn.json")
    cfg = {**p.training, "device": "cpu", "epochs": 1, "batch_size": 64}
    plain = Trainer(None, ds, cfg, recipe=prepare_gan(p.networks, ds, cfg)).run().history
    recipe = prepare_gan(p.networks, ds, cfg)
    events = []
    Trainer(None, ds, cfg, recipe=recipe, callback=events.append, run_dir=tmp_path / "gan",
            inside=InsideOptions(every=10)).run()
    assert plain[0]["train"] == recipe_history(tmp_path / "gan")[0]["train"]
    s = summaries(events)[0]
    nets = {ls.network for ls in s.layers.values()}
    assert nets == {"generator", "discriminator"}
    for ls in s.layers.values():
        if ls.weights is not None:
            assert math.isfinite(ls.grad_norm) and ls.update_ratio > 0, ls.path
    sample = next(e for e in events if isinstance(e, InsideSample))
    assert set(sample.inputs) == {"generator", "discriminator"}
    assert sample.inputs["discriminator"].shape == tuple(ds.sample_shape)
    assert no_hooks_left(recipe.generator, recipe.discriminator)
    assert len(read_inside(tmp_path / "gan")) == len(inside_events(events))


def recipe_history(run_dir):
    from designer.engine.train.runs import read_history

    return read_history(run_dir)


def test_attention_weights_and_hidden_states_over_time_for_one_sample():
    g = Graph()
    nodes = [("Input", {"shape": [6, 8]}), ("LSTM", {"hidden_size": 8, "output": "sequence"}),
             ("MultiheadAttention", {"num_heads": 2}),
             ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16})]
    last = None
    for type_, params in nodes:
        n = g.add_node(type_, params=params)
        if last is not None:
            g.connect(last, n.id)
        last = n.id
    out = g.add_node("Output")
    g.connect(last, out.id)
    model = build_model(g, seed=0)
    events = []
    obs = InsideObserver({"model": model}, InsideOptions(sample_input=np.ones((6, 8), np.float32),
                                                         max_channels=1), events.append)
    with obs.capture(1, 1, 1):
        model(torch.randn(4, 6, 8)).sum().backward()
    s, sample = events
    kinds = {k: ls.kind for k, ls in s.layers.items()}
    assert sorted(kinds.values()) == ["attention", "attention", "recurrent"]
    (lstm,) = [k for k, v in kinds.items() if v == "recurrent"]
    assert sample.outputs[lstm].kind == "sequence" and sample.outputs[lstm].data.shape == (6, 8)
    assert sample.index is None and sample.inputs["model"].shape == (6, 8)
    for key in (k for k, v in kinds.items() if v == "attention"):
        view = sample.attention[key]
        assert view.shape == (2, 6, 6) and view.data.shape == (1, 6, 6)  # one head kept
        assert np.allclose(view.data.sum(-1), 1.0, atol=1e-5)
    assert all(m.training for m in model.modules()) and no_hooks_left(model)


def test_feature_maps_are_capped_and_pooled():
    model = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1))
    model.train()
    events = []
    obs = InsideObserver({"net": model}, InsideOptions(max_channels=4, max_side=20,
                                                       sample_input=np.zeros((1, 40, 40),
                                                                             np.float32)),
                         events.append)
    with obs.capture(1, 1, 1):
        model(torch.randn(2, 1, 40, 40))
    view = events[1].outputs["net.0"]
    assert view.kind == "maps" and view.shape == (12, 40, 40) and view.data.shape == (4, 20, 20)
    assert "pooled" in view.note


# --------------------------------------------------------------------------------------------
# The layer's lesson
# --------------------------------------------------------------------------------------------


def test_layer_text_gives_the_formula_and_the_real_shapes():
    g, model = mlp(("Linear", {"out_features": 16}), ("ReLU", {}))
    fc1 = next(n for n in g.nodes.values() if n.name == "fc1")
    t = layer_text(g, fc1.id)
    assert "y = xW^T + b" in t.doc and t.inputs == ((64,),) and t.output == (16,)
    assert t.weights == {"weight": (16, 64), "bias": (16,)}
    assert layer_text(g, fc1.id, module=model.fc1).weights == t.weights
    assert "input  (N, 64)" in t.text and "output (N, 16)" in t.text
    relu = next(n for n in g.nodes.values() if n.name == "relu1")
    assert layer_text(g, relu.id).weights == {}


def test_the_time_budget_spaces_captures_by_their_cost():
    """A capture that took c seconds lets the next one come after c / overhead seconds; the
    first batch and the run's last are captured whatever the budget."""
    model = nn.Sequential(nn.Linear(4, 3))
    obs = InsideObserver({"m": model}, InsideOptions(every=2, overhead=0.1, sample=None),
                         lambda e: None)
    now = [0.0]
    obs.clock = lambda: now[0]
    assert obs.wants(1, False)  # the first

    def capture(step: int, cost: float) -> None:
        with obs.capture(1, step, step, sample=False):
            now[0] += cost
            model(torch.ones(2, 4)).sum().backward()

    capture(1, 0.002)  # 2 ms: the next waits 20 ms
    assert not obs.wants(2, False)  # not every 2 batches yet
    assert not obs.wants(3, True)  # an epoch's end, but within the budget
    now[0] += 0.019
    assert not obs.wants(4, False)
    assert obs.wants(4, False, last_in_run=True)  # the run's last batch always
    now[0] += 0.0011
    assert obs.wants(4, False) and obs.wants(3, True)
    assert not obs.wants(2, False)  # every 2 batches still counts
    obs.options = dataclasses.replace(obs.options, overhead=None)
    assert obs.wants(3, False)  # by count only


def test_a_parameter_layer_shows_its_weight_and_gradient(digits):
    """A Parameter layer is a tensor of the network (no module): its weight and gradient
    statistics are observed like a layer's."""
    g = chain(("Flatten", {}), ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    bias = g.add_node("Parameter", "offset", params={"shape": [10], "init": "zeros"})
    add = g.add_node("Add", "plus")
    (out,) = g.outputs()
    (last,) = [e for e in g.edges if e.dst == out.id]
    g.disconnect(last)
    g.connect(last.src, add.id, 0)
    g.connect(bias.id, add.id, 1)
    g.connect(add.id, out.id)
    model = build_model(g, seed=0)
    assert "model.offset" in [layer.key for layer in layers_of({"model": model})]
    events = []
    Trainer(model, digits, {"epochs": 1, "batch_size": 64}, callback=events.append,
            inside=InsideOptions(every=100)).run()
    s = summaries(events)[-1]
    layer = s.layers["model.offset"]
    assert layer.node == bias.id and layer.grad_norm > 0 and layer.update_ratio > 0
    assert no_hooks_left(model)


def test_a_frozen_layer_and_the_class_names_are_recorded_and_replayed(digits, tmp_path):
    """A frozen layer's summaries say frozen (and carry no gradient); the sample carries the
    dataset's class names for the output's bars; both survive the run folder."""
    g, _ = mlp(("Linear", {"out_features": 16}), ("ReLU", {}))
    fc1 = next(n for n in g.nodes.values() if n.name == "fc1")
    fc1.frozen = True
    events = []
    Trainer(build_model(g, seed=0), digits, {"epochs": 1, "batch_size": 64},
            run_dir=tmp_path / "run", callback=events.append,
            inside=InsideOptions(every=100, overhead=None, sample=0)).run()
    live = inside_events(events)
    last = summaries(live)[-1]
    assert last.layers["model.fc1"].frozen and math.isnan(last.layers["model.fc1"].grad_norm)
    assert not last.layers["model.fc2"].frozen and last.layers["model.fc2"].grad_norm > 0
    assert not last.layers["model.relu1"].frozen  # no weights: nothing to freeze
    sample = next(e for e in live if isinstance(e, InsideSample))
    assert sample.classes == tuple(digits.class_names) and len(sample.classes) == 10
    replay = read_inside(tmp_path / "run")
    assert summaries(replay)[-1].layers["model.fc1"].frozen
    assert not summaries(replay)[-1].layers["model.fc2"].frozen
    assert next(e for e in replay if isinstance(e, InsideSample)).classes == sample.classes


def test_a_small_layers_learned_values_are_read_from_last_pt(digits, tmp_path):
    """Linear(1, 1)-sized layers list their numbers (the linear-regression template's w and b);
    a large layer's do not; a run without last.pt gives none."""
    from designer.engine.train.inside_files import learned_values

    _g, model = mlp(("Linear", {"out_features": 2}), ("ReLU", {}))  # fc1: 64 x 2 + 2 values
    Trainer(model, digits, {"epochs": 1, "batch_size": 64}, run_dir=tmp_path / "run").run()
    assert learned_values(tmp_path / "run", "model", "fc1") is None  # 130 numbers: too many
    found = learned_values(tmp_path / "run", "model", "fc1", limit=200)
    assert found.epoch == 1 and set(found.values) == {"weight", "bias"}
    np.testing.assert_allclose(found.values["bias"], model.fc1.bias.detach().numpy())
    assert found.text().startswith("weight [[")
    assert learned_values(tmp_path / "nothing", "model", "fc1") is None
