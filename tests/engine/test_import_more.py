"""Importing more models: functional pooling (F.avg_pool2d / F.max_pool2d, inception_v3), an
nn.ModuleList called as a chain (``for layer in self.layers: x = layer(x)``, MaxViT), modules
called with numbers as arguments (MaxViT's window partition) and MaxViT's relative-position
attention. Each import is checked for equal parameters, a strict load of the module's
state_dict and equal outputs, in the engine and in the exported model.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from designer.engine.interop.importing import ImportFailed, import_model

from .helpers import import_exactly, randomise

torchvision = pytest.importorskip("torchvision")


def _exact(model: nn.Module, shape: tuple[int, ...], tmp_path, name: str = "m"):
    """Randomise, import, build and export: same parameter count, strict loads, same outputs."""
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    return import_exactly(randomise(model), shape, name, tmp_path, x=x)


def test_inception_v3_imports_exactly(tmp_path):
    """InceptionA..E pool with F.avg_pool2d / F.max_pool2d (without the auxiliary head, which
    only training calls)."""
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                            num_classes=10)
    _, _report, _ = _exact(model, (3, 75, 75), tmp_path, "inception")


class _Pools(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        a = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        b = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        c = F.avg_pool2d(a + b, 2)  # stride None: the kernel size
        return F.max_pool2d(c, 3, 2, 1, ceil_mode=True)


def test_functional_pooling_becomes_pooling_layers(tmp_path):
    project, _, _ = _exact(_Pools(), (3, 11, 11), tmp_path, "pools")
    nodes = {n.type: n.params for n in project.networks["model"].nodes.values()}
    assert nodes["AvgPool2d"]["kernel_size"] in (2, 3) and "MaxPool2d" in nodes
    pools = [n.params for n in project.networks["model"].nodes.values()
             if n.type in ("AvgPool2d", "MaxPool2d")]
    assert {"kernel_size": 2, "stride": 2, "padding": 0, "ceil_mode": False,
            "count_include_pad": True} in pools
    assert any(p.get("count_include_pad") is False for p in pools)
    assert any(p["ceil_mode"] for p in pools)


def test_functional_pooling_with_dilation_is_kept_as_code(tmp_path):
    """No layer pools with a dilation: the call is a Function layer, exact and exported."""
    class Dilated(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 3, 1, 0, 2)

    project, report, _built = _exact(Dilated(), (3, 9, 9), tmp_path, "dilated")
    (fn,) = [n for n in project.networks["model"].nodes.values() if n.type == "Function"]
    assert fn.params["program"]["steps"][0]["op"] == "F.max_pool2d" and report.functions == 1


class _Chain(nn.Module):
    """A ModuleList called as a chain, as users write it."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 16)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(16, 16), nn.ReLU())
                                     for _ in range(3)] + [nn.Linear(16, 4)])

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return x


class _Summed(_Chain):
    def forward(self, x):
        x = self.stem(x)
        return sum(layer(x) for layer in self.layers[:3])


def test_a_module_list_chain_is_one_sequential_block(tmp_path):
    project, _report, built = _exact(_Chain(), (8,), tmp_path, "chain")
    assert "layers.0.0.weight" in built.state_dict() and "layers.3.weight" in built.state_dict()
    model = project.networks["model"]
    use = model.node_by_name("layers")
    assert use.type == "Block"
    assert project.networks[use.params["block"]].sequential


def test_a_module_list_used_other_than_as_a_chain_keeps_its_items_and_reports_the_unused():
    """Items of a list called on their own are layers at layers.0, layers.1 ... (the model's
    keys); an item never called would lose its weights: reported."""
    with pytest.raises(ImportFailed) as info:
        import_model(_Summed().eval(), (8,))
    (entry,) = info.value.report.unsupported
    assert entry.path == "layers.3" and "never called" in entry.reason


class _Items(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.ReLU()), nn.Linear(8, 8),
                                     nn.Linear(8, 8), nn.Linear(8, 8)])

    def forward(self, x):
        x = self.stem(x)
        return sum(layer(x) for layer in self.layers)


def test_module_list_items_called_on_their_own_keep_their_keys(tmp_path):
    project, report, built = _exact(_Items(), (8,), tmp_path, "items")
    assert "layers.0.0.weight" in built.state_dict() and "layers.3.weight" in built.state_dict()
    attrs = [n.attr for n in project.networks["model"].nodes.values() if n.attr]
    assert attrs == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert report.functions >= 1  # sum() starts from 0: 0 + a tensor is kept as code


def test_a_small_maxvit_imports_exactly(tmp_path):
    """MaxViT: blocks and layers are ModuleList chains, the window partition is called with
    numbers, the attention is RelativePositionAttention (torchvision's keys)."""
    from torchvision.models.maxvit import MaxVit

    torch.manual_seed(0)
    model = MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8, 16],
                   block_layers=[2, 1], head_dim=4, stochastic_depth_prob=0.1, num_classes=10)
    project, _report, built = _exact(model, (3, 32, 32), tmp_path, "maxvit")
    assert "blocks.0.layers.1.layers.window_attention.attn_layer.1.relative_position_index" \
        in built.state_dict()
    types = {n.type for g in project.networks.values() for n in g.nodes.values()}
    assert "RelativePositionAttention" in types


class _ReadsChildWeight(nn.Module):
    """BEiT's attention: the qkv Linear is never called; its weight is read with a bias made
    from two parameters of the module's own."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24, bias=False)
        self.q_bias = nn.Parameter(torch.randn(8))
        self.v_bias = nn.Parameter(torch.randn(8))
        self.proj = nn.Linear(24, 4)

    def forward(self, x):
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        return self.proj(F.linear(x, self.qkv.weight, bias))


def test_a_child_weight_read_by_its_parent_keeps_its_key(tmp_path):
    project, _report, built = _exact(_ReadsChildWeight(), (5, 8), tmp_path, "reads")
    assert "qkv.weight" in built.state_dict()
    (held,) = [n for n in project.networks["model"].nodes.values() if n.attr == "qkv.weight"]
    assert held.type == "Tensor" and held.params["stored"] == "parameter"


class _ReadsPartOfChild(_ReadsChildWeight):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)  # its bias is never read: it would be lost


def test_a_child_tensor_never_read_is_reported():
    with pytest.raises(ImportFailed, match="never read in forward"):
        import_model(_ReadsPartOfChild().eval(), (5, 8))


class _PadMinusInf(nn.Module):
    """Padding with -inf before a max pool (timm's 'same' max pooling): no ConstantPad2d layer
    holds an infinite value, so the pad is kept as code."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), float("-inf"))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(F.pad(self.pad(x), (1, 0, 1, 0), value=float("-inf")))


def test_an_infinite_padding_value_is_kept_as_code(tmp_path):
    project, report, _built = _exact(_PadMinusInf(), (2, 5, 5), tmp_path, "padinf")
    assert report.functions >= 1
    assert "ConstantPad2d" not in {n.type for g in project.networks.values()
                                   for n in g.nodes.values()}
