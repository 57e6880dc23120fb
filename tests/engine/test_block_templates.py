"""The templates built from blocks (scripts/make_block_templates.py): each checks clean, is up to
date with its script, has its parameter count, and the torchvision ones are torchvision's models
key for key (strict load, equal outputs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import load_project
from designer.engine.model.blocks import block_names, model_names
from designer.engine.model.build import build_model
from designer.engine.model.shapes import analyze

torchvision = pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"

# id -> (parameters of the model, its blocks)
EXPECTED = {
    "resnet-mini": (78_042, ["ResidualBlock"]),
    "resnet18": (11_689_512, ["BasicBlock", "Downsample"]),
    "mobilenet-v2": (3_504_872, ["MobileNetV2Features", "InvertedResidual1", "InvertedResidual",
                                 "InvertedResidualSkip", "InvertedConvs", "DepthwiseConvs",
                                 "ConvBNActivation", "Classifier"]),
    "vit-tiny": (5_362_762, ["EncoderBlock"]),
}


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_block_templates", ROOT / "scripts" / "make_block_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_block_templates_are_up_to_date_with_their_script():
    outputs = _script().outputs()
    assert {p.name for p in outputs} == {f"{t}.dnn.json" for t in EXPECTED}
    for path, text in outputs.items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is out of date: run scripts/make_block_templates.py")


@pytest.mark.parametrize("tid", sorted(EXPECTED))
def test_block_template_checks_clean_with_its_parameter_count(tid):
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    params, blocks = EXPECTED[tid]
    assert block_names(project.networks) == blocks
    assert model_names(project.networks) == [next(iter(project.networks))]
    for name, graph in project.networks.items():  # each definition checks on its own too
        assert analyze(graph).ok, (name, [p.message for p in analyze(graph).errors])
    assert analyze(project.graph).total_params == params
    assert f"{params:,} parameters" in project.metadata["expected"]
    assert project.metadata["generated_by"] == "scripts/make_block_templates.py"
    for key in ("id", "order", "teaches"):
        assert project.metadata[key]
    assert project.dataset["kind"] == "torchvision" and project.dataset["download"]


@pytest.mark.parametrize("tid, factory", [("resnet18", "resnet18"),
                                          ("mobilenet-v2", "mobilenet_v2")])
def test_torchvision_templates_are_torchvisions_model_key_for_key(tid, factory):
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    model = build_model(project.graph, seed=0)
    torch.manual_seed(0)
    tv = getattr(torchvision.models, factory)(weights=None)
    assert list(model.state_dict()) == list(tv.state_dict())
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[tid][0]
    model.load_state_dict(tv.state_dict(), strict=True)
    model.eval()
    tv.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x), rtol=1e-4, atol=1e-5)


def test_resnet_mini_blocks_project_only_where_the_size_changes():
    project = load_project(TEMPLATES / "resnet-mini.dnn.json")
    model = build_model(project.graph, seed=0)
    keys = list(model.state_dict())
    assert "b1.proj.weight" not in keys and model.b1.proj is None
    assert "b2.proj.weight" in keys and "b3.proj_bn.running_mean" in keys
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_vit_tiny_repeats_one_encoder_block_twelve_times():
    project = load_project(TEMPLATES / "vit-tiny.dnn.json")
    (use,) = [n for n in project.graph.nodes.values() if n.type == "Block"]
    assert use.params["repeat"] == 12 and use.params["block"] == "EncoderBlock"
    model = build_model(project.graph, seed=0)
    keys = list(model.state_dict())
    assert keys[:3] == ["class_token", "pos_embedding", "conv_proj.weight"]  # bare tensors first
    assert "encoder.11.mlp_fc2.weight" in keys and "encoder.12.mlp_fc2.weight" not in keys
    assert model.encoder[0].mlp_fc1.out_features == 4 * 192  # dim * 4, a reference
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
