"""Graph -> nn.Module: submodules named after nodes, several Inputs and Outputs, reproducible
initialisation, and a clear refusal of graphs with errors."""

from __future__ import annotations

import pytest
import torch

from designer.engine.model.build import BuildError, build_model, plan
from designer.engine.model.graph import Graph, GraphError
from designer.engine.model.shapes import analyze

from .helpers import chain


def test_submodules_and_state_dict_are_named_after_the_nodes():
    g = chain(("Conv2d", {"out_channels": 2}), ("BatchNorm2d", {}), ("ReLU", {}),
              ("Flatten", {}), ("Linear", {"out_features": 3}), shape=(1, 5, 5))
    g.rename(g.node_by_name("fc1").id, "classifier")
    model = build_model(g)
    assert [name for name, _ in model.named_children()] == ["conv1", "bn1", "relu1", "flatten1",
                                                            "classifier"]
    assert set(model.state_dict()) == {
        "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
        "bn1.running_var", "bn1.num_batches_tracked", "classifier.weight", "classifier.bias"}
    assert model(torch.randn(4, 1, 5, 5)).shape == (4, 3)


def test_several_inputs_and_outputs():
    g = Graph()
    image = g.add_node("Input", name="image", params={"shape": [4]})
    meta = g.add_node("Input", name="meta", params={"shape": [2]})
    fc_a = g.add_node("Linear", name="a", params={"out_features": 3})
    fc_b = g.add_node("Linear", name="b", params={"out_features": 3})
    cat = g.add_node("Concat", name="cat")
    head = g.add_node("Linear", name="head", params={"out_features": 1})
    out_main = g.add_node("Output", name="score")
    out_aux = g.add_node("Output", name="features")
    g.connect(image.id, fc_a.id)
    g.connect(meta.id, fc_b.id)
    g.connect(fc_a.id, cat.id, 0)
    g.connect(fc_b.id, cat.id, 1)
    g.connect(cat.id, head.id)
    g.connect(head.id, out_main.id)
    g.connect(cat.id, out_aux.id)
    model = build_model(g, seed=0)
    x, m = torch.randn(5, 4), torch.randn(5, 2)
    score, feats = model(x, m)
    assert score.shape == (5, 1) and feats.shape == (5, 6)
    # the inputs are taken in graph order and really reach their branches
    expected = torch.cat((model.a(x), model.b(m)), dim=1)
    assert torch.allclose(feats, expected)
    with pytest.raises(TypeError, match="takes 2 input"):
        model(x)
    values = model.forward_all(x, m)
    assert set(values) == set(g.nodes) and values[cat.id].shape == (5, 6)


def test_a_residual_block_adds_the_skip_path():
    g = Graph()
    inp = g.add_node("Input", params={"shape": [6]})
    fc = g.add_node("Linear", params={"out_features": 6})
    add = g.add_node("Add")
    out = g.add_node("Output")
    g.connect(inp.id, fc.id)
    g.connect(fc.id, add.id, 0)
    g.connect(inp.id, add.id, 1)
    g.connect(add.id, out.id)
    model = build_model(g)
    x = torch.randn(3, 6)
    assert torch.allclose(model(x), model.fc1(x) + x)


def test_seed_makes_the_initial_weights_reproducible_without_touching_the_global_rng():
    g = chain(("Linear", {"out_features": 8}), shape=(5,))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(g, seed=7)
    after = torch.rand(1)
    b = build_model(g, seed=7)
    c = build_model(g, seed=8)
    assert torch.equal(before, after)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_a_graph_with_errors_is_refused_with_the_problems_listed():
    g = chain(("Linear", {"in_features": 3}), shape=(5,))
    with pytest.raises(BuildError) as info:
        build_model(g)
    assert "1 error(s)" in str(info.value)
    assert "Linear 'fc1' receives 5 features, but in_features is fixed to 3" in str(info.value)
    with pytest.raises(BuildError):
        plan(Graph())


def test_plan_follows_the_topological_order_and_port_order():
    g = Graph()
    a = g.add_node("Input", name="a", params={"shape": [2]})
    b = g.add_node("Input", name="b", params={"shape": [3]})
    cat = g.add_node("Concat", name="cat")
    out = g.add_node("Output")
    g.connect(b.id, cat.id, 1)
    g.connect(a.id, cat.id, 0)
    g.connect(cat.id, out.id)
    steps = plan(g)
    assert [s.name for s in steps] == ["a", "b", "cat", "output1"]
    assert steps[2].inputs == (a.id, b.id)
    assert build_model(g)(torch.zeros(1, 2), torch.ones(1, 3)).tolist() == [[0, 0, 1, 1, 1]]


def test_node_names_cannot_shadow_module_attributes():
    g = Graph()
    for name in ("forward", "forward_all", "parameters", "training", "state_dict"):
        with pytest.raises(GraphError, match="reserved"):
            g.add_node("Linear", name=name)


def test_a_model_too_large_to_build_is_an_error_before_any_memory_is_used():
    layers = [("Linear", {"out_features": 40_000}), ("Linear", {"out_features": 40_000})]
    g = chain(*layers, shape=(40_000,))  # two layers of 1.6e9 weights each
    a = analyze(g)
    assert [p.code for p in a.errors] == ["too_large"]
    assert "3,200,080,000 parameters" in a.errors[0].message
    assert "shrink the largest layers (fc1, fc2)" in a.errors[0].message
    with pytest.raises(BuildError):
        build_model(g, a)


def test_positions_must_be_finite():
    g = Graph()
    n = g.add_node("ReLU", pos=(1, 2))
    assert n.pos == (1.0, 2.0)
    for bad in ((float("nan"), 0), (0, float("inf")), (1e9, 0), ("a", 0), (1,)):
        with pytest.raises(GraphError, match="position"):
            g.move(n.id, bad)
    with pytest.raises(GraphError, match="position"):
        g.add_node("ReLU", pos=(float("nan"), 0))


@pytest.mark.parametrize("layers", [
    [("MultiheadAttention", {"num_heads": 2, "causal": True})],
    [("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16, "causal": True}),
     ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16, "causal": True,
                                  "norm_first": True})],
], ids=["MultiheadAttention", "TransformerEncoderLayer"])
def test_causal_attention_does_not_look_ahead(layers):
    model = build_model(chain(*layers, shape=(6, 8)), seed=0).eval()
    x = torch.randn(3, 6, 8)
    later = x.clone()
    later[:, 4:] = torch.randn(3, 2, 8)
    with torch.no_grad():
        a, b = model(x), model(later)
    # position t sees positions 0..t only: the earlier outputs do not move when later inputs do
    assert torch.equal(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    # without the option every position sees the whole sequence
    plain = [(layer, {k: v for k, v in p.items() if k != "causal"}) for layer, p in layers]
    model = build_model(chain(*plain, shape=(6, 8)), seed=0).eval()
    with torch.no_grad():
        assert not torch.allclose(model(x)[:, :4], model(later)[:, :4])
