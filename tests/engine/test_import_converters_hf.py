"""Import converters for what timm and Hugging Face models use (issue 24): each piece imports as
an editable catalog layer with the module's own state_dict keys and the same outputs, through
torch.fx and, where Hugging Face models go, through torch.export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from designer.engine.interop.importing import import_model

from .helpers import assert_same_as_module, import_exactly, randomise


def _types(project, network: str = "model") -> list[str]:
    return [n.type for n in project.networks[network].nodes.values()
            if n.type not in ("Input", "Output")]


def _import_exported(model: nn.Module, shape: tuple[int, ...], tmp_path=None, name: str = "m"):
    """``model`` through torch.export: the project, checked against the module."""
    model.eval()
    ep = torch.export.export(model, (torch.randn(2, *shape),))
    project, report = import_model(ep, None, name=name)
    assert_same_as_module(project, report, model, shape, tmp_path, key_order=True, name=name)
    return project


# 1. F.gelu (a builtin of torch._C._nn) and its tanh approximation ---------------------------


class Gelus(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.gelu(self.fc(x))) + F.gelu(x, approximate="tanh")


def test_functional_gelu_and_its_tanh_form_import_as_gelu(tmp_path):
    torch.manual_seed(0)
    model = Gelus().eval()
    project, _, _ = import_exactly(model, (6,), tmp_path=tmp_path)
    gelus = {n.name: n.params["approximate"] for n in project.networks["model"].nodes.values()
             if n.type == "GELU"}
    assert sorted(gelus.values()) == ["none", "tanh", "tanh"]
    exported = _import_exported(Gelus(), (6,))
    assert sorted(n.params["approximate"] for n in exported.networks["model"].nodes.values()
                  if n.type == "GELU") == ["none", "tanh", "tanh"]


# 2. nn.PReLU ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4])
def test_prelu_imports_as_the_catalog_layer(n, tmp_path):
    torch.manual_seed(0)
    model = randomise(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(n, init=0.1))).eval()
    project, _, _ = import_exactly(model, (3, 8, 8), tmp_path=tmp_path)
    prelu = next(n_ for n_ in project.networks["model"].nodes.values() if n_.type == "PReLU")
    assert prelu.params["num_parameters"] == n and prelu.params["init"] == pytest.approx(0.1)
    exported = _import_exported(model, (3, 8, 8))
    assert _types(exported) == ["Conv2d", "PReLU"]


# 3. flatten of some axes (timm's x.flatten(2).transpose(1, 2)) ------------------------------


class Flattens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.keep_last = nn.Flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        tokens = y.flatten(2).transpose(1, 2)  # (N, H*W, C)
        return tokens + torch.flatten(self.keep_last(y), 1, -1).view(-1, 16, 4)


def test_a_flatten_of_some_axes_imports_as_flatten_with_its_axes(tmp_path):
    torch.manual_seed(0)
    project, _, _ = import_exactly(Flattens().eval(), (3, 4, 4), tmp_path=tmp_path)
    flats = [n.params for n in project.networks["model"].nodes.values() if n.type == "Flatten"]
    assert [(p["start_dim"], p["end_dim"]) for p in flats] == [(2, -1), (1, 2), (1, -1)]


def test_a_default_flatten_saves_and_exports_as_before():
    from designer.engine.interop.codegen import model_source

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    project, _ = import_model(model, (1, 6, 6))
    saved = project.to_dict()["networks"][0]["nodes"]
    flat = next(n for n in saved if n["type"] == "Flatten")
    assert flat["params"] == {}
    assert "nn.Flatten()" in model_source(project)
    # across the batch: no Flatten layer can say it (kept as code)
    across, report = import_model(nn.Sequential(nn.Linear(3, 3), nn.Flatten(0)), (3,))
    assert report.functions == 1
    assert not any(n.type == "Flatten" for g in across.networks.values()
                   for n in g.nodes.values())


# 4. x.mean(dim, keepdim=True) (squeeze-and-excitation) -----------------------------------


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(F.relu(self.fc1(s))).sigmoid()
        return x * s + x.mean(-1, keepdim=True)


def test_a_mean_keeping_its_axes_imports_as_pooling_or_mean_with_keepdim(tmp_path):
    torch.manual_seed(0)
    project, _, _ = import_exactly(SqueezeExcite().eval(), (8, 5, 6), tmp_path=tmp_path)
    nodes = project.networks["model"].nodes.values()
    assert [n.params["output_size"] for n in nodes if n.type == "AdaptiveAvgPool2d"] == [1]
    assert [(n.params["dim"], n.params["keepdim"]) for n in nodes if n.type == "Mean"] == \
        [(3, True)]


# 6. Hugging Face's RMSNorms, activations and GPT-2's Conv1D --------------------------------


def _hf_pieces() -> nn.Module:
    pytest.importorskip("transformers")
    from transformers import activations
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    from transformers.models.t5.modeling_t5 import T5LayerNorm
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8), LlamaRMSNorm(8, eps=1e-5), activations.NewGELUActivation(),
        Conv1D(5, 8), activations.QuickGELUActivation(), T5LayerNorm(5),
        activations.FastGELUActivation(), activations.GELUTanh(), activations.SiLUActivation(),
        activations.GELUActivation(), activations.MishActivation(), Conv1D(4, 5),
    )
    with torch.no_grad():
        for m in model:
            if isinstance(m, (LlamaRMSNorm, T5LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


HF_TYPES = ["Linear", "RMSNorm", "GELU", "Conv1D", "QuickGELU", "RMSNorm", "GELU", "GELU", "SiLU",
            "GELU", "Mish", "Conv1D"]


def test_hugging_face_norms_activations_and_conv1d_import_as_layers(tmp_path):
    model = _hf_pieces()
    project, _, _ = import_exactly(model, (6,), tmp_path=tmp_path)
    assert _types(project) == HF_TYPES
    nodes = list(project.networks["model"].nodes.values())
    assert [n.params["eps"] for n in nodes if n.type == "RMSNorm"] == [1e-5, 1e-6]
    assert [n.params["approximate"] for n in nodes if n.type == "GELU"] == \
        ["tanh", "tanh", "tanh", "none"]
    assert [n.params["out_features"] for n in nodes if n.type == "Conv1D"] == [5, 4]


def test_hugging_face_pieces_import_through_torch_export(tmp_path):
    model = _hf_pieces()
    project = _import_exported(model, (6,), tmp_path)
    assert _types(project) == HF_TYPES
    nodes = list(project.networks["model"].nodes.values())
    assert [n.params["eps"] for n in nodes if n.type == "RMSNorm"] == [1e-5, 1e-6]


# 7. timm's norms, norm + activation and activations ---------------------------------------


def test_timm_layer_norms_and_activations_import_as_layers(tmp_path):
    pytest.importorskip("timm")
    from timm.layers import LayerNorm, LayerNorm2d, activations

    torch.manual_seed(0)
    model = randomise(nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), LayerNorm2d(4), activations.GELUTanh(),
        activations.HardSwish(), activations.Swish(), nn.Flatten(2), LayerNorm(16),
        activations.QuickGELU(), activations.HardSigmoid(), activations.PReLU(),
    ))
    project, _, _ = import_exactly(model, (3, 4, 4), tmp_path=tmp_path)
    assert _types(project) == ["Conv2d", "LayerNorm2d", "GELU", "Hardswish", "SiLU", "Flatten",
                               "LayerNorm", "QuickGELU", "Hardsigmoid", "PReLU"]
    exported = _import_exported(model, (3, 4, 4))
    assert _types(exported)[:2] == ["Conv2d", "LayerNorm2d"]


class NormActs(nn.Module):
    def __init__(self) -> None:
        from timm.layers import BatchNormAct2d, GroupNormAct, LayerNormAct2d

        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = BatchNormAct2d(8, act_layer=nn.SiLU)
        self.gn = GroupNormAct(8, 2, act_layer=nn.GELU)
        self.ln = LayerNormAct2d(8, act_layer=nn.ReLU)
        self.bn2 = BatchNormAct2d(8, apply_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.ln(self.gn(self.bn1(self.conv(x)))))


def test_timm_norm_act_imports_as_the_norm_then_its_activation(tmp_path):
    pytest.importorskip("timm")
    model = randomise(NormActs())
    project, _, _ = import_exactly(model, (3, 5, 5), tmp_path=tmp_path)
    nodes = {n.name: n.type for n in project.networks["model"].nodes.values()}
    assert nodes == {"input": "Input", "conv": "Conv2d", "bn1": "BatchNorm2d",
                     "bn1_act": "SiLU", "gn": "GroupNorm", "gn_act": "GELU",
                     "ln": "LayerNorm2d", "ln_act": "ReLU", "bn2": "BatchNorm2d",
                     "output": "Output"}


def test_timm_norm_act_converter_makes_the_norm_then_its_activation():
    pytest.importorskip("timm")
    from designer.engine.model.catalog.importers import CONVERTERS, Made

    model = NormActs()
    made = [CONVERTERS.for_module(m).run(m) for m in (model.bn1, model.gn, model.ln, model.bn2)]
    assert made[0] == [("BatchNorm2d", {"eps": 1e-5, "momentum": 0.1, "affine": True}),
                       Made("SiLU", {}, "{label}_act")]
    assert made[1] == [("GroupNorm", {"num_groups": 2, "eps": 1e-5, "affine": True}),
                       Made("GELU", {"approximate": "none"}, "{label}_act")]
    assert made[2] == [("LayerNorm2d", {"eps": 1e-5, "elementwise_affine": True}),
                       Made("ReLU", {}, "{label}_act")]
    assert made[3] == ("BatchNorm2d", {"eps": 1e-5, "momentum": 0.1, "affine": True})


def test_timm_norm_act_in_a_sequential_keeps_the_positional_keys(tmp_path):
    pytest.importorskip("timm")
    from timm.layers import BatchNormAct2d

    model = randomise(nn.Sequential(nn.Conv2d(3, 4, 3), BatchNormAct2d(4), nn.Conv2d(4, 2, 1)))
    project, _, _ = import_exactly(model, (3, 6, 6), tmp_path=tmp_path)
    assert _types(project) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]


# 5. split, unbind, sub and expand_as ----------------------------------------------------------------


class SplitPieces(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(6, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(4, dim=-1)
        a, b = torch.split(x, [2, 4], 1)
        first, second = x.view(-1, 2, 3).unbind(1)
        q = q.expand_as(k)
        return q + k * v - torch.cat([b, a], 1)[:, :4] + (first - second).mean(-1, keepdim=True)


def test_split_unbind_and_sub_import_as_slices_selects_and_subtract(tmp_path):
    torch.manual_seed(0)
    project, _, _ = import_exactly(SplitPieces().eval(), (6,), tmp_path=tmp_path)
    types = _types(project)
    assert types.count("Slice") == 3 + 2 + 1 and types.count("Select") == 2
    assert types.count("Subtract") == 2


def test_timm_linear_conv2d_same_and_std_conv_import_as_layers(tmp_path):
    pytest.importorskip("timm")
    from timm.layers import Conv2dSame, Linear, StdConv2d

    torch.manual_seed(0)
    model = randomise(nn.Sequential(
        Conv2dSame(3, 4, 3, stride=2), Conv2dSame(4, 4, (4, 1), dilation=2, groups=2),
        StdConv2d(4, 6, 3, padding=1, eps=1e-5), nn.Flatten(), Linear(6 * 5 * 4, 3),
    ))
    project, _, _ = import_exactly(model, (3, 9, 8), tmp_path=tmp_path)
    assert _types(project) == ["Conv2dSame", "Conv2dSame", "StdConv2d", "Flatten", "Linear"]
    std = next(n for n in project.networks["model"].nodes.values() if n.type == "StdConv2d")
    assert std.params["eps"] == 1e-5 and std.params["bias"] is False


class Pads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ConstantPad2d(1, 0.0)  # BiT's stem
        self.zero = nn.ZeroPad2d((0, 1, 2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(self.zero(self.pad(x)), (1, 1), value=-2.0)


def test_constant_padding_imports_as_constant_pad2d(tmp_path):
    torch.manual_seed(0)
    model = Pads().eval()
    project, _, _ = import_exactly(model, (2, 3, 4), tmp_path=tmp_path)
    pads = [n.params for n in project.networks["model"].nodes.values()
            if n.type == "ConstantPad2d"]
    assert pads == [{"padding": 1, "value": 0.0}, {"padding": [0, 1, 2, 0], "value": 0.0},
                    {"padding": [1, 1, 0, 0], "value": -2.0}]
    exported = _import_exported(Pads(), (2, 3, 4))
    assert _types(exported) == ["ConstantPad2d"] * 3


class HfConvNextNorms(nn.Module):
    def __init__(self) -> None:
        from transformers.models.convnext.modeling_convnext import ConvNextLayerNorm

        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.first = ConvNextLayerNorm(4, eps=1e-6, data_format="channels_first")
        self.last = ConvNextLayerNorm(4, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.first(self.conv(x)).permute(0, 2, 3, 1))


def test_hugging_face_convnext_layer_norms_import_as_layer_norms(tmp_path):
    pytest.importorskip("transformers")
    model = randomise(HfConvNextNorms())
    project, _, _ = import_exactly(model, (3, 6, 6), tmp_path=tmp_path)
    assert _types(project) == ["Conv2d", "LayerNorm2d", "Permute", "LayerNorm"]
    exported = _import_exported(model, (3, 6, 6))
    assert _types(exported) == ["Conv2d", "LayerNorm2d", "Permute", "LayerNorm"]
    eps = [n.params["eps"] for n in exported.networks["model"].nodes.values() if "eps" in n.params]
    assert eps == [1e-6, 1e-5]


def test_timm_layer_scale_and_group_norms_import_as_layers(tmp_path):
    pytest.importorskip("timm")
    from timm.layers import GroupNorm, GroupNorm1, LayerScale, LayerScale2d

    torch.manual_seed(0)
    model = randomise(nn.Sequential(
        nn.Conv2d(3, 4, 1), LayerScale2d(4, init_values=0.1), GroupNorm1(4), GroupNorm(4, 2),
        nn.Flatten(2), LayerScale(9),
    ))
    project, _, _ = import_exactly(model, (3, 3, 3), tmp_path=tmp_path)
    assert _types(project) == ["Conv2d", "LayerScale", "GroupNorm", "GroupNorm", "Flatten",
                               "LayerScale"]
    scales = [n.params for n in project.networks["model"].nodes.values()
              if n.type == "LayerScale"]
    assert [(p["init_values"], p["channels_first"]) for p in scales] == [(0.1, True),
                                                                         (1e-5, False)]
    exported = _import_exported(model, (3, 3, 3))
    assert _types(exported) == _types(project)


def test_timm_scaled_std_conv_and_rms_norm_import_as_layers(tmp_path):
    pytest.importorskip("timm")
    from timm.layers import RmsNorm, ScaledStdConv2d

    torch.manual_seed(0)
    model = randomise(nn.Sequential(
        ScaledStdConv2d(3, 4, 3, stride=2, gamma=1.7, eps=1e-5), nn.Flatten(2), RmsNorm(9),
    ))
    project, _, _ = import_exactly(model, (3, 6, 5), tmp_path=tmp_path)
    assert _types(project) == ["ScaledStdConv2d", "Flatten", "RMSNorm"]
    conv = next(iter(n for n in project.networks["model"].nodes.values()
                     if n.type == "ScaledStdConv2d")).params
    assert conv["gamma"] == pytest.approx(1.7) and conv["eps"] == 1e-5


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.beta = 0.7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x) * self.beta  # NFNet's skipinit-style scale
        return 2 * y / 8.0 + torch.div(x, 3.0) - y * x


def test_a_product_or_quotient_with_a_number_imports_as_scale(tmp_path):
    torch.manual_seed(0)
    project, _, _ = import_exactly(Scaled().eval(), (4,), tmp_path=tmp_path)
    scales = [n.params for n in project.networks["model"].nodes.values() if n.type == "Scale"]
    assert scales == [{"factor": 0.7, "divide": False}, {"factor": 2.0, "divide": False},
                      {"factor": 8.0, "divide": True}, {"factor": 3.0, "divide": True}]
    assert _types(project).count("Multiply") == 1
    exported = _import_exported(Scaled(), (4,))
    assert _types(exported).count("Scale") == 4
