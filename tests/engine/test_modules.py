"""The layers torch.nn lacks (designer.engine.model.modules) behave as the torchvision ops they stand
for, in the engine and in the exported model.py (which defines them itself)."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops

from designer.engine.document.project import Project
from designer.engine.interop.codegen import model_source
from designer.engine.model.build import build_model
from designer.engine.model.modules import StochasticDepth

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
    from designer.engine.interop.codegen import network_class_names

    g = chain(("StochasticDepth", {}), shape=(4,))
    assert network_class_names(Project(name="Stochastic depth", networks={"model": g})) == {
        "model": "StochasticDepthNet"}
    two = Project(name="x", networks={"stochastic_depth": g, "other": chain(shape=(4,))})
    assert network_class_names(two)["stochastic_depth"] == "StochasticDepthNet"


def test_learned_tensor_initialises_as_asked():
    from designer.engine.model.modules import learned_tensor

    torch.manual_seed(0)
    assert torch.equal(learned_tensor((2, 3), "zeros"), torch.zeros(1, 2, 3))
    assert torch.equal(learned_tensor((2, 3), "ones", batch_axis=False), torch.ones(2, 3))
    assert torch.equal(learned_tensor((4, 1, 1), "constant", value=1e-6, batch_axis=False),
                       torch.full((4, 1, 1), 1e-6))
    normal = learned_tensor((100_000,), "normal", std=0.02).detach()
    assert abs(float(normal.std()) - 0.02) < 1e-3 and abs(float(normal.mean())) < 1e-3
    uniform = learned_tensor((100_000,), "uniform", std=0.5).detach()
    assert float(uniform.min()) >= -0.5 and float(uniform.max()) <= 0.5
    assert float(uniform.min()) < -0.49 and float(uniform.max()) > 0.49
    cut = learned_tensor((100_000,), "trunc_normal", std=3.0).detach()
    assert float(cut.abs().max()) <= 2.0 and float(cut.abs().max()) > 1.99
    with pytest.raises(ValueError, match="unknown init"):
        learned_tensor((2,), "xavier")


@pytest.mark.parametrize("batch_axis", [True, False])
def test_a_parameter_layer_is_the_networks_own_tensor_repeated_over_the_batch(batch_axis):
    g = chain(shape=(3,))
    node = g.add_node("Parameter", "token", params={"shape": [2, 3], "init": "normal",
                                                     "batch_axis": batch_axis})
    g.connect(node.id, g.add_node("Output").id)
    model = build_model(g)
    stored = (1, 2, 3) if batch_axis else (2, 3)
    assert list(model.state_dict()) == ["token"] and model.token.shape == stored
    y = model(torch.randn(5, 3))[-1]  # the chain's output, then the token's
    assert y.shape == (5, 2, 3) and torch.equal(y[4], model.token.reshape(2, 3))
    assert y.data_ptr() == model.token.data_ptr()  # a view: no copy per sample
    y.sum().backward()
    assert torch.equal(model.token.grad, torch.full(stored, 5.0))  # summed over the batch
    old = {"token.weight": torch.ones(2, 3)}  # a checkpoint of the LearnedTensor days loads
    model.load_state_dict(old)
    assert torch.equal(model.token, torch.ones(stored))


@pytest.mark.parametrize("init", ["zeros", "ones", "constant", "normal", "uniform",
                                  "trunc_normal"])
def test_the_exported_parameter_draws_the_same_values(init):
    g = chain(shape=(3,))
    node = g.add_node("Parameter", "token", params={
        "shape": [4, 5], "init": init, "std": 0.3, "value": -2.0})
    g.connect(node.id, g.add_node("Output").id)
    source = model_source(Project(name="p", networks={"model": g}))
    assert "self.token = nn.Parameter(" in source
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102 - our own generated code
    torch.manual_seed(3)
    want = build_model(g)
    torch.manual_seed(3)
    got = namespace["P"]()
    assert torch.equal(got.token, want.token)
    x = torch.randn(2, 3)
    assert all(torch.equal(a, b) for a, b in zip(got(x), want(x), strict=True))
