"""The import converters (designer.engine.model.catalog.importers): every declaration names catalog
layers and parameters that exist, its keys resolve, its results are held to it, and a new layer
with its converter declared in one place imports."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from designer.engine.interop.importing import import_model
from designer.engine.model.build import build_model
from designer.engine.model.catalog import CATALOG, LayerSpec, Param
from designer.engine.model.catalog.importers import (
    CONVERTERS,
    KINDS,
    Converter,
    imports_call,
    imports_module,
    resolve_class,
)


def test_every_converter_names_catalog_layers_and_their_parameters():
    """A converter naming an unknown layer id, or a parameter its layers lack, fails here."""
    converters = list(CONVERTERS)
    assert len(converters) > 40
    problems = [p for conv in converters for p in conv.problems()]
    assert problems == []
    assert {conv.kind for conv in converters} == set(KINDS)


def test_the_declaration_check_catches_an_unknown_layer_and_parameter():
    conv = Converter("call", ("nothing",), ("Linear", "NoSuchLayer"), ("out_features", "colour"),
                     lambda call: None)
    found = conv.problems()
    assert any("no catalog layer 'NoSuchLayer'" in p for p in found)
    assert any("parameter 'colour'" in p for p in found)
    assert not any("out_features" in p for p in found)


def test_every_class_a_converter_names_exists():
    """Keys are strings (no torch to declare them): a typo would silently never match. Keys of
    the optional extras (transformers, timm) are checked where they are installed."""
    keys = [k for conv in CONVERTERS if conv.kind in ("module", "exported") for k in conv.keys
            if k.split(".")[0] not in ("transformers", "timm")
            or importlib.util.find_spec(k.split(".")[0]) is not None]
    missing = [k for k in keys if resolve_class(k) is None]
    assert missing == []
    assert resolve_class("torch.nn.NoSuchModule") is None
    assert resolve_class("no_such_package.Thing") is None


def test_converters_of_one_key_are_refused_twice():
    with pytest.raises(ValueError, match="already imports through"):
        imports_module("torch.nn.ReLU", layers=("ReLU",))(lambda m: ("ReLU", {}))
    with pytest.raises(ValueError, match="already imports through"):
        imports_call("relu", layers=("ReLU",))(lambda call: ("ReLU", {}))


def test_a_result_the_declaration_does_not_cover_is_refused():
    conv = Converter("module", ("x",), ("Linear",), ("out_features",), lambda m: None)
    assert conv.check(("Linear", {"out_features": 3})) == ("Linear", {"out_features": 3})
    with pytest.raises(ValueError, match="declares"):
        conv.check(("Linear", {"bias": True}))
    with pytest.raises(ValueError, match="declares"):
        conv.check(("Conv2d", {}))


# A throwaway layer and its converter, declared in one place -----------------------------------


class Scale(nn.Module):
    """y = x * factor + 1: no catalog layer has it."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor + 1.0


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.scale = Scale(2.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.conv(x))


SCALE = LayerSpec(
    id="TestScale",
    display_name="TestScale",
    category="Core",
    doc="y = x * factor + 1 (a test's layer).",
    params=(Param("factor", "float", 1.0, "The factor", min=-100, max=100),),
    resolve=lambda p, ins, dts: {"factor": p["factor"]},
    apply=lambda m, xs, kw: xs[0] * kw["factor"] + 1.0,
    code=lambda c: [f"{c.out} = {c.inputs[0]} * {c.kwargs['factor']!r} + 1.0"],
    infer=lambda p, ins: ins[0],
    macs=lambda p, ins, out: 0,
    count_params=lambda kw: 0,
)


def _import_scale(m: Scale) -> tuple[str, dict]:
    return "TestScale", {"factor": m.factor}


@pytest.fixture
def scale_layer(monkeypatch):
    """TestScale in the catalog and Scale importing as it, both gone after the test."""
    monkeypatch.setitem(CATALOG._specs, SCALE.id, SCALE)
    imports_module(f"{Scale.__module__}.{Scale.__qualname__}", layers=("TestScale",),
                   params=("factor",))(_import_scale)
    yield _import_scale.converter
    CONVERTERS.remove(_import_scale.converter)


def test_a_new_layer_imports_through_its_own_converter(scale_layer):
    torch.manual_seed(0)
    model = Scaled().eval()
    assert scale_layer.problems() == []
    project, report = import_model(model, (1, 5, 5))
    assert report.ok and report.blocks == {}
    graph = project.networks["model"]
    assert [(n.name, n.type, n.params) for n in graph.nodes.values()
            if n.type == "TestScale"] == [("scale", "TestScale", {"factor": 2.5})]
    built = build_model(graph).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 1, 5, 5)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))


def test_without_its_converter_the_module_is_a_block_that_keeps_its_call_as_code():
    """No layer stands for the module's ``x * 2.5 + 1``: it is a block whose add is a Function
    layer (kept as code; ``x * 2.5`` is a Scale), and the import says so."""
    assert CATALOG.get("TestScale") is None
    model = Scaled().eval()
    project, report = import_model(model, (1, 5, 5))
    assert report.ok and report.functions == 1 and "1 kept as code" in report.summary()
    kept = [n for g in project.networks.values() for n in g.nodes.values()
            if n.type == "Function"]
    assert [s["op"] for s in kept[0].params["program"]["steps"]] == ["operator.add"]
    built = build_model(project.networks["model"]).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 1, 5, 5)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))


@pytest.mark.parametrize("eps", [1e-5, None])
def test_an_rms_norm_imports_as_the_catalog_layer(eps):
    """RMSNorm (added to the catalog as one entry) imports through its converter beside it,
    with torch's own default epsilon when the module names none."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.RMSNorm(8, eps=eps)).eval()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
    project, report = import_model(model, (6,))
    assert report.ok and report.blocks == {}
    graph = project.networks["model"]
    assert [n.type for n in graph.nodes.values() if n.type == "RMSNorm"] == ["RMSNorm"]
    built = build_model(graph).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
