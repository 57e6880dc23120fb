"""Exported block classes are reusable (issue 22, item 6): a size a block's layer infers
("auto") is computed in ``__init__`` from the class's arguments (``BatchNorm2d(planes)``,
``Conv2d(in_channels, planes, ...)``), as torchvision's BasicBlock does, so every block class of
every template builds with other arguments than the design's and equals the engine's block built
with them. The model class is named after the project."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import Project, load_project
from designer.engine.interop.codegen import model_source, network_class_names
from designer.engine.model.blocks import BLOCK, block_names, block_param, model_names
from designer.engine.model.build import build_model
from designer.engine.model.shapes import Analyzer, analyze
from tests.engine.test_codegen_blocks import network, ref

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"
WITH_BLOCKS = [p.name.removesuffix(".dnn.json") for p in sorted(TEMPLATES.glob("*.dnn.json"))
               if any(n.type == BLOCK for g in load_project(p).networks.values()
                      for n in g.nodes.values())]


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def design_uses(project) -> dict[str, list[tuple[dict, list]]]:
    """Each block's uses in the design: (block parameter values, what each Input receives)."""
    out: dict[str, list[tuple[dict, list]]] = {}

    def walk(analysis) -> None:
        for info in analysis.infos.values():
            kw = info.kwargs or {}
            for values, inner in kw.get("_copies", ()):
                graph = project.networks[kw["_block"]]
                flows = [(tuple(inner.infos[n.id].output_shape), inner.infos[n.id].dtype)
                         for n in graph.inputs()]
                out.setdefault(kw["_block"], []).append((dict(values), flows))
                walk(inner)

    for net in model_names(project.networks):
        walk(analyze(project.networks[net]))
    return out


def other_arguments(graph, values: dict, flows: list) -> list[tuple[dict, list]]:
    """Arguments no use of the design has: x4 (the export's own look uses x2 and x3) on the
    inputs' channel or feature axis and on int parameters, alone and together, with each bool
    flipped; the engine decides which the block accepts."""
    ints = [p.name for p in graph.block_params if p.type == "int"]
    flags = [p.name for p in graph.block_params if p.type == "bool"]

    def axis(k: int) -> list:
        return [(tuple(d * 4 if i == k % len(s) else d for i, d in enumerate(s)), t)
                for s, t in flows]

    shapes = [list(flows)] + [axis(k) for k in ((0, -1) if len(flows[0][0]) > 1 else (0,))]
    picks = [()] + [(n,) for n in ints] + ([tuple(ints)] if len(ints) > 1 else [])
    bases = [values] + [{**values, f: not values[f]} for f in flags]
    return [({**base, **{n: base[n] * 4 for n in pick}}, shape)
            for base in bases for pick in picks for shape in shapes]


@pytest.mark.parametrize("tid", WITH_BLOCKS)
def test_every_block_class_builds_with_other_arguments(tid, tmp_path):
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    (tmp_path / "model.py").write_text(model_source(project, format=False), encoding="utf-8")
    module = import_file(tmp_path / "model.py", f"exported_{tid.replace('-', '_')}")
    classes = network_class_names(project)
    uses = design_uses(project)
    for block in block_names(project.networks):
        graph = project.networks[block]
        cls = getattr(module, classes[block])
        signature = inspect.signature(cls.__init__).parameters
        given = {(repr(sorted(v.items())), tuple(f)) for v, f in uses[block]}
        built = 0
        values, flows = uses[block][0]
        for other, other_flows in other_arguments(graph, values, flows):
            if (repr(sorted(other.items())), tuple(other_flows)) in given:
                continue
            analyzer = Analyzer(graph, other, other_flows, subscribe=False)
            analysis = analyzer.analyze()
            if not analysis.ok:
                continue  # the block itself refuses these (an identity skip needs equal sizes)
            kwargs = {p.name: other[p.name] for p in graph.block_params}
            if "in_channels" in signature:
                kwargs["in_channels"] = other_flows[0][0][0]
            if "in_features" in signature:
                kwargs["in_features"] = other_flows[0][0][-1]
            assert set(kwargs) >= {n for n in signature if n != "self"}, (
                f"{classes[block]} takes an argument that is neither a size of its input nor "
                f"a block parameter: {list(signature)}")
            with torch.device("meta"):  # shapes only: no weights drawn, no arithmetic
                mine = cls(**kwargs).eval()
                engine = build_model(graph, analysis).eval()
                xs = [torch.empty(2, *s, dtype=torch.long if t == "int" else torch.float32)
                      for s, t in other_flows]
            got = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
            want = {k: tuple(v.shape) for k, v in engine.state_dict().items()}
            assert got == want, f"{classes[block]}({kwargs})"
            with torch.no_grad():
                assert mine(*xs).shape == engine(*xs).shape, f"{classes[block]}({kwargs})"
            built += 1
            if built == 1:  # one set of other arguments per class is the claim
                break
        assert built, f"no other arguments tried for {classes[block]} of {tid}"


def resblock_project(name: str) -> Project:
    """A residual block whose BatchNorms and input channels are inferred ("auto") and the same
    in every use, with a projection switched on in the first copy only (issue 22's example)."""
    block = network([
        ("Conv2d", "conv1", {"out_channels": ref("planes"), "kernel_size": 3,
                             "stride": ref("stride"), "padding": 1, "bias": False}),
        ("BatchNorm2d", "bn1", {}),
        ("ReLU", "relu1", {}),
        ("Conv2d", "conv2", {"out_channels": ref("planes"), "kernel_size": 3, "padding": 1,
                             "bias": False}),
        ("BatchNorm2d", "bn2", {}),
        ("Conv2d", "ds", {"out_channels": ref("planes"), "kernel_size": 1,
                          "stride": ref("stride"), "bias": False}, ["inp"], "downsample"),
        ("BatchNorm2d", "ds_bn", {}, None, "downsample"),
        ("Add", "add", {}, ["bn2", "ds_bn"]),
        ("ReLU", "relu2", {}),
    ], shape=(16, 8, 8), params=[block_param("planes", "int", 32, min=1),
                                 block_param("stride", "int", 1, min=1),
                                 block_param("downsample", "bool", False)])
    model = network([
        ("Conv2d", "stem", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
        ("Block", "layer1", {"block": "ResBlock", "repeat": 2, "args": {"planes": 32}}),
        ("Conv2d", "mid", {"out_channels": 16, "kernel_size": 1}),
        ("Block", "layer2", {"block": "ResBlock", "args": {"planes": 32},
                             "first": {"stride": 2, "downsample": True}}),
        ("AdaptiveAvgPool2d", "pool", {"output_size": 1}),
        ("Flatten", "flat", {}),
        ("Linear", "fc", {"out_features": 10}),
    ], shape=(3, 16, 16))
    return Project(name=name, networks={"model": model, "ResBlock": block})


def test_auto_sizes_in_a_block_follow_its_arguments(tmp_path):
    project = resblock_project("my res net!")
    source = model_source(project)
    assert "nn.BatchNorm2d(planes)" in source and "nn.BatchNorm2d(32)" not in source
    assert "nn.Conv2d(in_channels, planes, 1, stride=stride, bias=False) if downsample" in source
    (tmp_path / "model.py").write_text(source, encoding="utf-8")
    module = import_file(tmp_path / "model.py", "exported_resblock")
    block = module.ResBlock(in_channels=32, planes=64, stride=2, downsample=True)
    assert block(torch.randn(2, 32, 8, 8)).shape == (2, 64, 4, 4)
    assert module.ResBlock(in_channels=24, planes=24)(torch.randn(1, 24, 5, 5)).shape == \
        (1, 24, 5, 5)
    model = module.MyResNet()  # named after the project
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_model_class_is_named_after_the_project_never_untitled():
    assert network_class_names(resblock_project("Edge detector v2"))["model"] == "EdgeDetectorV2"
    unnamed = network_class_names(resblock_project("Untitled"))
    assert unnamed["model"] == "Model" and unnamed["ResBlock"] == "ResBlock"
    assert network_class_names(resblock_project("  "))["model"] == "Model"
    assert network_class_names(resblock_project("3 layers"))["model"].isidentifier()
