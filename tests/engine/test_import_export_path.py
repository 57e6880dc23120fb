"""Importing through torch.export (designer.engine.interop.importing): an ExportedProgram's unflattened
module tree of ATen graphs becomes the same design as the module itself (keys, parameters,
outputs, exported model.py); ``designer import model.pt2`` reads tensors and the program only,
never unpickling; a forward torch.fx cannot trace (a branch on a shape) is exported instead,
and a branch on values is still reported, saying why export failed too."""

from __future__ import annotations

import contextlib
import io
import os
import zipfile

import pytest
import torch
from torch import nn

from designer.engine.document.project import load_project
from designer.engine.interop.importing import (
    ImportFailed,
    example_input_shape,
    import_model,
    load_program,
)
from designer.engine.model.build import build_model

from .helpers import assert_same_as_module, import_exactly, randomise
from .test_importing import Branchy

torchvision = pytest.importorskip("torchvision")


def test_an_exported_resnet18_imports_as_the_module_does(tmp_path):
    torch.manual_seed(0)
    model = randomise(torchvision.models.resnet18(num_classes=10))
    ep = torch.export.export(model, (torch.randn(2, 3, 32, 32),))
    project, report = import_model(ep, None, name="resnet18")  # the shape: the program's
    assert report.input_shape == [3, 32, 32]
    assert_same_as_module(project, report, model, (3, 32, 32), tmp_path, key_order=True)
    # the same layers and the same shared blocks as importing the module with torch.fx
    direct, direct_report = import_model(model, (3, 32, 32), name="resnet18")
    assert report.blocks == direct_report.blocks
    types = {n.name: n.type for n in project.networks["model"].nodes.values()}
    assert types == {n.name: n.type for n in direct.networks["model"].nodes.values()}
    block = project.networks["BasicBlock"]
    assert [n.type for n in block.nodes.values()] == [n.type for n in
                                                      direct.networks["BasicBlock"].nodes.values()]
    bn = block.node_by_name("bn1").params
    assert bn["eps"] == 1e-5 and bn["momentum"] == 0.1


def test_a_pt2_file_imports_from_the_command_line_without_an_input_shape(tmp_path, capsys):
    from designer.cli import main

    model = randomise(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                    nn.Flatten(), nn.Linear(4 * 6 * 6, 3)))
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 1, 6, 6),)), path)
    assert example_input_shape(load_program(path)) == (1, 6, 6)
    out = tmp_path / "small.dnn.json"
    code = main(["import", str(path), "-o", str(out), "--weights"])
    assert code == 0, capsys.readouterr()
    project = load_project(out)
    assert project.networks["model"].inputs()[0].params["shape"] == [1, 6, 6]
    assert project.networks["model"].sequential
    built = build_model(project.networks["model"]).eval()
    state = torch.load(tmp_path / "small.weights.pt", weights_only=True)
    assert list(state) == list(model.state_dict())
    built.load_state_dict(state, strict=True)
    x = torch.randn(2, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), atol=1e-5, rtol=1e-5)


class _Marker:
    """Unpickling this makes a folder: proof of whether a loader unpickled."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __reduce__(self):
        return os.makedirs, (self.folder,)


def test_a_pt2_file_that_needs_unpickling_is_refused(tmp_path, capsys):
    from designer.cli import main

    model = nn.Sequential(nn.Linear(4, 2))
    good = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 4),)), good)
    # the same archive whose example inputs hold a pickled object besides the tensor
    bad, marker = tmp_path / "bad.pt2", tmp_path / "unpickled"
    buf = io.BytesIO()
    torch.save(((torch.randn(2, 4),), {"extra": _Marker(str(marker))}), buf)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, buf.getvalue() if item.filename.endswith("sample_inputs/model.pt")
                         else data)
    with pytest.raises(ValueError, match="holds objects other than tensors: not loaded, it "
                       "would need unpickling"):
        load_program(bad)
    assert not marker.exists()
    code = main(["import", str(bad), "-o", str(tmp_path / "bad.dnn.json")])
    assert code == 2 and "would need unpickling" in capsys.readouterr().err
    assert not marker.exists()
    assert torch.load is torch.serialization.load  # put back after the load
    load_program(good)  # a plain file loads
    with contextlib.suppress(Exception):  # what torch.export.load alone does: it unpickles
        torch.export.load(bad)
    assert marker.exists()


class ShapeBranch(nn.Module):
    """fx cannot trace a branch on a shape; torch.export takes it for the input's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        x = self.fc(torch.flatten(x, 1))
        if x.shape[-1] > 4:
            x = torch.relu(x)
        return self.out(x)


def test_a_forward_fx_cannot_trace_is_exported_and_a_value_branch_still_reported(tmp_path):
    model = randomise(ShapeBranch())
    project, report, _built = import_exactly(model, (2, 16), "ShapeBranch", tmp_path)
    assert report.via_export and "through torch.export" in report.summary()
    types = [n.type for n in project.networks["model"].nodes.values()]
    assert types == ["Input", "Flatten", "Linear", "ReLU", "Linear", "Output"]
    with pytest.raises(ImportFailed) as info:
        import_model(Branchy(), (4,))  # a branch on values
    (entry,) = info.value.report.unsupported
    assert entry.op == "trace" and "data-dependent control flow" in entry.reason
    assert "torch.export failed too" in entry.reason
    assert "if x.sum() > 0" in entry.source


class ShapeBlock(nn.Module):
    """A block fx cannot trace (a branch on a shape, a loop over a size): exported alone."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if x.shape[-1] > 8:
            y = torch.relu(y)
        for _ in range(x.size(1) // 4):
            y = y + x
        return y


class TwoShapeBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = ShapeBlock(8)
        self.down = nn.Conv2d(8, 4, 3, stride=2, padding=1)
        self.b = ShapeBlock(4)
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = self.b(self.down(self.a(self.stem(x))))
        return self.head(torch.flatten(x, 1))


def test_a_block_fx_cannot_trace_is_exported_alone_keeping_its_keys(tmp_path):
    model = randomise(TwoShapeBlocks())
    project, report, _built = import_exactly(model, (3, 16, 16), "TwoShapeBlocks", tmp_path)
    assert report.via_export_blocks == ["a", "b"] and not report.via_export
    assert "a, b through torch.export, for this input shape" in report.summary()
    # each use as its input's shape takes the branches: 16x16 with the ReLU, two adds for 8
    # channels; 8x8 without, one add for 4
    assert [n.type for n in project.networks["ShapeBlock"].nodes.values()] == [
        "Input", "Conv2d", "BatchNorm2d", "ReLU", "Add", "Add", "Output"]
    assert [n.type for n in project.networks["ShapeBlock_2"].nodes.values()] == [
        "Input", "Conv2d", "BatchNorm2d", "Add", "Output"]
    once = randomise(nn.Sequential(nn.Conv2d(3, 8, 1), ShapeBlock(8), nn.Flatten()))
    _project, report, _built = import_exactly(once, (3, 16, 16), "Once", tmp_path)
    assert report.via_export_blocks == ["1"]


class ValueBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.inner = Branchy()  # if x.sum() > 0: export cannot take that branch either

    def forward(self, x):
        return self.inner(self.first(x))


def test_a_block_branching_on_values_is_still_reported_with_the_export_failure():
    with pytest.raises(ImportFailed) as info:
        import_model(ValueBlocks(), (4,))
    (entry,) = info.value.report.unsupported
    assert entry.path == "inner" and entry.op == "trace"
    assert "data-dependent control flow" in entry.reason
    assert "torch.export failed too" in entry.reason
    assert "if x.sum() > 0" in entry.source
    assert not info.value.report.via_export_blocks


@pytest.mark.parametrize("name", ["vit", "convnext_tiny"])
def test_exported_attention_and_layer_norm_2d_import_as_their_layers(name, tmp_path):
    # nn.MultiheadAttention and LayerNorm2d are decomposed into ATen ops by export: recognised
    # by their class, made from their own parameters and the graph's constants
    torch.manual_seed(0)
    model = randomise(torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
        num_classes=10) if name == "vit" else torchvision.models.convnext_tiny(num_classes=10))
    ep = torch.export.export(model, (torch.randn(2, 3, 32, 32),))
    project, report = import_model(ep, None, name=name)
    assert_same_as_module(project, report, model, (3, 32, 32), tmp_path, key_order=True,
                          name=name)
    direct, direct_report = import_model(model, (3, 32, 32), name=name)
    assert report.blocks == direct_report.blocks
    for net, graph in direct.networks.items():  # each network has those layers as fx's
        for type_ in ("MultiheadAttention", "LayerNorm2d", "LayerNorm"):
            assert sum(n.type == type_ for n in project.networks[net].nodes.values()) == \
                sum(n.type == type_ for n in graph.nodes.values()), (net, type_)
    if name == "vit":
        attention = project.networks["EncoderBlock"].node_by_name("self_attention").params
        assert attention["num_heads"] == 2 and attention["bias"]
