"""The layers torch.nn lacks (designer.engine.modules) behave as the torchvision ops they stand
for, in the engine and in the exported model.py (which defines them itself)."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops

from designer.engine.build import build_model
from designer.engine.codegen import model_source
from designer.engine.modules import StochasticDepth
from designer.engine.project import Project

from .helpers import chain


def _exported_class(name: str) -> type:
    """The class as model.py defines it, run without designer in its namespace."""
    project = Project(name="drop", networks={"model": chain(("StochasticDepth", {}),
                                                            shape=(3, 4, 4))})
    source = model_source(project)
    assert "class StochasticDepth(nn.Module):" in source
    imports = [line.strip() for line in source.splitlines()
               if line.strip().startswith(("import ", "from "))]
    assert imports == ["import torch", "from torch import nn"], imports
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace[name]


@pytest.mark.parametrize("cls", [StochasticDepth, "exported"])
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.8, 1.0])
def test_stochastic_depth_matches_torchvision(cls, mode, p):
    if cls == "exported":
        cls = _exported_class("StochasticDepth")
    layer = cls(p, mode)
    x = torch.randn(64, 3, 5, 5)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    for seed in range(5):
        torch.manual_seed(seed)
        got = layer(x)
        torch.manual_seed(seed)
        want = torchvision.ops.stochastic_depth(x, p, mode, training=True)
        assert torch.equal(got, want), (seed, mode, p)
    if 0.0 < p < 1.0 and mode == "row":  # some samples kept, some dropped
        kept = (got != 0).flatten(1).any(1)
        assert 0 < int(kept.sum()) < 64


def test_the_built_model_drops_branches_only_in_training():
    g = chain(("StochasticDepth", {"p": 0.5}), shape=(8,))
    model = build_model(g)
    x = torch.randn(256, 8)
    model.eval()
    assert torch.equal(model(x), x)
    model.train()
    torch.manual_seed(1)
    y = model(x)
    dropped = (y == 0).all(1)
    assert 60 < int(dropped.sum()) < 196  # about half of 256 rows
    assert torch.allclose(y[~dropped], x[~dropped] * 2)
    assert list(model.state_dict()) == []  # like torchvision's: no weights, no buffers


def test_stochastic_depth_refuses_what_torchvision_refuses():
    with pytest.raises(ValueError, match="between 0 and 1"):
        StochasticDepth(1.5, "row")
    with pytest.raises(ValueError, match="'batch' or 'row'"):
        StochasticDepth(0.1, "column")


def test_a_network_named_like_a_helper_class_does_not_replace_it():
    from designer.engine.codegen import network_class_names

    g = chain(("StochasticDepth", {}), shape=(4,))
    assert network_class_names(Project(name="Stochastic depth", networks={"model": g})) == {
        "model": "StochasticDepthNet"}
    two = Project(name="x", networks={"stochastic_depth": g, "other": chain(shape=(4,))})
    assert network_class_names(two)["stochastic_depth"] == "StochasticDepthNet"


def test_learned_tensor_initialises_as_asked_and_repeats_over_the_batch():
    from designer.engine.modules import LearnedTensor

    torch.manual_seed(0)
    assert torch.equal(LearnedTensor((2, 3), "zeros").weight, torch.zeros(2, 3))
    assert torch.equal(LearnedTensor((2, 3), "ones").weight, torch.ones(2, 3))
    assert torch.equal(LearnedTensor((4, 1, 1), "constant", value=1e-6).weight,
                       torch.full((4, 1, 1), 1e-6))
    normal = LearnedTensor((100_000,), "normal", std=0.02).weight.detach()
    assert abs(float(normal.std()) - 0.02) < 1e-3 and abs(float(normal.mean())) < 1e-3
    uniform = LearnedTensor((100_000,), "uniform", std=0.5).weight.detach()
    assert float(uniform.min()) >= -0.5 and float(uniform.max()) <= 0.5
    assert float(uniform.min()) < -0.49 and float(uniform.max()) > 0.49
    cut = LearnedTensor((100_000,), "trunc_normal", std=3.0).weight.detach()
    assert float(cut.abs().max()) <= 2.0 and float(cut.abs().max()) > 1.99
    layer = LearnedTensor((2, 3), "normal")
    y = layer(5)
    assert y.shape == (5, 2, 3) and torch.equal(y[4], layer.weight)
    assert y.data_ptr() == layer.weight.data_ptr()  # a view: no copy per sample
    y.sum().backward()
    assert torch.equal(layer.weight.grad, torch.full((2, 3), 5.0))  # summed over the batch
    assert list(layer.state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="unknown init"):
        LearnedTensor((2,), "xavier")


@pytest.mark.parametrize("init", ["zeros", "ones", "constant", "normal", "uniform",
                                  "trunc_normal"])
def test_the_exported_learned_tensor_draws_the_same_values(init):
    from designer.engine.modules import LearnedTensor

    g = chain(shape=(3,))
    node = g.add_node("Parameter", params={"shape": [3]})
    g.connect(node.id, g.add_node("Output").id)
    source = model_source(Project(name="p", networks={"model": g}))
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102 - our own generated code
    exported = namespace["LearnedTensor"]
    torch.manual_seed(3)
    want = LearnedTensor((4, 5), init, std=0.3, value=-2.0)
    torch.manual_seed(3)
    got = exported((4, 5), init, std=0.3, value=-2.0)
    assert torch.equal(got.weight, want.weight)
    assert torch.equal(got(2), want(2))
