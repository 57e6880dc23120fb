"""Importing PyTorch models (designer.engine.interop.importing, ``designer import``): one torchvision
model per family comes back with the same parameters, the same state_dict keys and the same
outputs; what cannot be mapped is reported with its path and source line; weights load by key;
frozen layers stay unchanged while the head fine-tunes. Small inputs keep it fast."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from designer.engine.document.project import (
    load_project,
    project_from_json,
    project_to_json,
    save_project,
)
from designer.engine.interop.importing import (
    ImportFailed,
    check_state_dict,
    import_model,
    load_weights,
    save_weights,
)
from designer.engine.model.build import build_model

from .helpers import DigitsNet, import_exactly, randomise

torchvision = pytest.importorskip("torchvision")


def _small_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                             hidden_dim=16, mlp_dim=32, num_classes=10)


# model -> (constructor, input size); one per family, small inputs
FAMILIES = {
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), 32),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), 32),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), 32),
    "squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(num_classes=10), 48),
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10), 32),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(num_classes=10), 32),
    "mnasnet0_5": (lambda: torchvision.models.mnasnet0_5(num_classes=10), 32),
    "vit (small)": (_small_vit, 32),
    "vgg11": (lambda: torchvision.models.vgg11(num_classes=10, init_weights=False), 32),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(num_classes=10), 32),
    "densenet121": (lambda: torchvision.models.densenet121(num_classes=10), 32),
    # with its auxiliary heads, which only training calls: auxiliary Outputs
    "googlenet": (lambda: torchvision.models.googlenet(num_classes=10, init_weights=False), 32),
    # AnyStage names its blocks "block1-0", no Python name: the layer is block1_0, its module
    # attribute block1-0 (Node.attr), so the keys stay
    "regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(num_classes=10), 32),
}

@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_torchvision_family_imports_exactly(name, tmp_path):
    make, size = FAMILIES[name]
    torch.manual_seed(0)
    model = randomise(make())
    project, report, built = import_exactly(model, (3, size, size), name, tmp_path)
    # keys unchanged: bare parameters (ViT's class_token, ConvNeXt's layer_scale) are
    # Parameter layers whose tensors hang off the network as they do off the module
    # (in the order forward runs them: GoogLeNet's aux1 runs before inception4b, its
    # constructor makes it after inception5b)
    if name == "googlenet":
        assert sorted(built.state_dict()) == sorted(model.state_dict())
    else:
        assert list(built.state_dict()) == list(model.state_dict())
    if name == "vit (small)":
        token = project.networks["model"].node_by_name("class_token")
        assert token.type == "Parameter" and token.params["shape"] == [1, 16]
        assert token.params["batch_axis"]
    if name == "regnet_y_400mf":  # the module attribute is kept apart from the name
        nets = project.networks
        trunk = nets[nets["model"].node_by_name("trunk_output").params["block"]]
        node = nets[trunk.node_by_name("block1").params["block"]].node_by_name("block1_0")
        assert node.attr == "block1-0" and node.module_attr == "block1-0"
    if name == "googlenet":  # training returns (logits, aux2, aux1); eval the logits only
        assert report.aux_outputs == {"aux2": 0.3, "aux1": 0.3}
        model.train()
        built.train()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            torch.manual_seed(5)
            want = model(x)
            torch.manual_seed(5)  # the same dropout masks, drawn in the same order
            got = built(x)
        assert len(got) == 3 and built._aux_weights == (0.3, 0.3)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if name == "densenet121":  # each layer takes the concatenation of the features before it
        assert report.blocks["DenseLayer"] == 58 and "Transition" in report.blocks
        block = project.networks["DenseBlock"]
        assert block.node_by_name("denselayer2_input").type == "Concat"
    again = project_from_json(project_to_json(project))
    assert again.to_dict() == project.to_dict()


def test_resnet18_shares_blocks_and_keeps_torchvision_keys():
    model = torchvision.models.resnet18(num_classes=10).eval()
    project, report = import_model(model, (3, 32, 32))
    built = build_model(project.networks["model"])
    assert list(built.state_dict()) == list(model.state_dict())  # same keys, same order
    assert "layer2.0.downsample.0.weight" in built.state_dict()
    # the six plain BasicBlocks share one definition, with planes as a block parameter
    plain = project.networks["BasicBlock"]
    assert report.blocks["BasicBlock"] == 5
    assert [p.name for p in plain.block_params] == ["out_channels"]
    assert plain.node_by_name("conv1").params["out_channels"] == {"ref": "out_channels"}


class Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))  # a functional residual


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.Sequential(Residual(4), Residual(4))
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(x, 1))


def test_a_custom_module_with_a_functional_residual():
    model = randomise(Custom())
    project, report, _built = import_exactly(model, (1, 8, 8))
    assert report.blocks == {"Residual": 2, "Blocks": 1}
    types = {n.type for n in project.networks["Residual"].nodes.values()}
    assert {"Add", "ReLU", "Conv2d", "BatchNorm2d"} <= types
    assert project.networks["Blocks"].sequential


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return self.fc(x)
        return x


def test_data_dependent_control_flow_is_reported_clearly(tmp_path):
    with pytest.raises(ImportFailed) as info:
        import_model(Branchy(), (4,))
    (entry,) = info.value.report.unsupported
    assert entry.op == "trace" and "data-dependent control flow" in entry.reason
    assert "test_importing.py" in entry.source and "if x.sum() > 0" in entry.source
    data = json.loads(info.value.report.to_json())
    assert data["ok"] is False and data["unsupported"][0]["op"] == "trace"


@torch.fx.wrap
def _running(x):  # a function of the model's own, kept whole by torch.fx
    return x.cumsum(1)


@torch.fx.wrap
def _user_function(x):  # a function of the model's own, kept whole by torch.fx; through numpy,
    return torch.from_numpy(x.detach().numpy().cumsum(1))  # which torch.export cannot trace


class Sorting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        x = self.fc(x)
        x = torch.cumsum(x, dim=1)
        return self.out(x)


def test_an_op_no_layer_stands_for_is_kept_as_code():
    model = randomise(Sorting()).eval()
    project, report = import_model(model, (4,))
    assert report.ok and report.functions == 1
    assert "2 editable, 1 kept as code" in report.summary()
    graph = project.networks["model"]
    (fn,) = [n for n in graph.nodes.values() if n.type == "Function"]
    assert fn.name == "cumsum" and fn.params["program"]["steps"] == [
        {"op": "torch.cumsum", "args": [{"in": 0}], "kwargs": {"dim": 1}}]
    built = build_model(graph).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))


def test_a_function_of_the_model_own_imports_through_torch_export():
    """fx keeps a wrapped function of the model whole, which no layer or program can be; the
    whole model through torch.export maps it (its torch calls)."""
    class Own(Sorting):
        def forward(self, x):
            return self.out(_running(self.fc(x)))

    model = randomise(Own()).eval()
    project, report = import_model(model, (4,))
    assert report.ok and "torch.fx traced it" in report.via_export and report.functions == 1
    built = build_model(project.networks["model"]).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x))


def test_an_op_that_cannot_be_code_is_listed_and_partial_stops_before_it():
    class Hooked(Sorting):
        def forward(self, x):
            x = self.fc(x)
            x = _user_function(x)
            return self.out(x)

    with pytest.raises(ImportFailed) as info:
        import_model(Hooked(), (4,))
    (entry,) = info.value.report.unsupported
    assert "_user_function" in entry.reason and "not a torch function" in entry.reason
    assert "torch.export" not in (info.value.report.via_export or "")
    project, report = import_model(Hooked(), (4,), partial=True)
    assert report.partial and not report.ok
    names = [n.name for n in project.networks["model"].nodes.values()]
    assert "fc" in names and "out" not in names


def test_frozen_is_saved_and_build_freezes(tmp_path):
    model = randomise(Custom())
    project, _ = import_model(model, (1, 8, 8))
    graph = project.networks["model"]
    for node in graph.nodes.values():
        node.frozen = node.name != "head"
    path = save_project(project, tmp_path / "c.dnn.json", backup=False)
    again = load_project(path)
    assert again.networks["model"].node_by_name("stem").frozen
    assert not again.networks["model"].node_by_name("head").frozen
    built = build_model(again.networks["model"])
    trainable = {k for k, p in built.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    bad = json.loads(path.read_text())
    bad["networks"][0]["nodes"][1]["frozen"] = "yes"
    with pytest.raises(ValueError, match="frozen: expected true or false"):
        project_from_json(json.dumps(bad))


def test_weights_report_missing_unexpected_and_mismatched(tmp_path):
    model = Custom()
    project, _ = import_model(model.eval(), (1, 8, 8))
    built = build_model(project.networks["model"])
    state = dict(model.state_dict())
    state["extra"] = torch.zeros(1)
    del state["stem.bias"]
    state["head.bias"] = torch.zeros(3)
    report = check_state_dict(built, state)
    assert report.missing == ["stem.bias"] and report.unexpected == ["extra"]
    assert report.mismatched == [("head.bias", [3], [10])]
    path = save_weights(state, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="missing from the file: stem.bias"):
        load_weights(built, path)


def _digits_net() -> nn.Module:
    return DigitsNet()


def test_fine_tune_from_weights_keeps_frozen_parts_bit_for_bit(tmp_path):
    from designer.commands import import_  # noqa: F401 - the CLI module imports
    from designer.engine.train.data import load_dataset
    from designer.engine.train.recipes import prepare_run
    from designer.engine.train.training import Trainer

    torch.manual_seed(1)
    model = randomise(_digits_net())
    project, _report = import_model(model, (1, 8, 8), name="digits-net")
    for node in project.networks["model"].nodes.values():
        node.frozen = node.name == "features"  # the whole block use
    save_weights(model.state_dict(), tmp_path / "n.weights.pt")
    project.dataset = {"kind": "digits"}
    project.training = {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 3,
                        "init_weights": "n.weights.pt", "freeze_bn_eval": True}
    path = save_project(project, tmp_path / "n.dnn.json", backup=False)
    project = load_project(path)
    ds = load_dataset(project.dataset, tmp_path)
    _, recipe = prepare_run(project, ds)
    start = {k: v.clone() for k, v in recipe.model.state_dict().items()}
    for k, v in model.state_dict().items():  # the weights came from the file
        assert torch.equal(start[k], v), k
    result = Trainer(None, ds, project.training, recipe=recipe).run()
    assert result.status == "finished", result.message
    after = recipe.model.state_dict()
    frozen = [k for k in start if k.startswith("features.")]
    assert frozen and all(torch.equal(start[k], after[k].cpu()) for k in frozen)  # with BN stats
    assert not torch.equal(start["head.weight"], after["head.weight"].cpu())


def test_init_weights_that_do_not_fit_stop_the_run(tmp_path):
    from designer.engine.train.data import load_dataset
    from designer.engine.train.recipes import RecipeError, prepare_run

    project, _ = import_model(_digits_net().eval(), (1, 8, 8))
    save_weights({"head.weight": torch.zeros(10, 64)}, tmp_path / "w.pt")  # another shape
    project.dataset = {"kind": "digits"}
    project.training = {"init_weights": "w.pt"}
    project = load_project(save_project(project, tmp_path / "p.dnn.json", backup=False))
    with pytest.raises(RecipeError, match="training.init_weights: .*w.pt fits nothing"):
        prepare_run(project, load_dataset(project.dataset, tmp_path))


def test_cli_imports_a_file_with_weights_and_a_report(tmp_path, capsys):
    from designer.cli import main

    src = tmp_path / "mynet.py"
    src.write_text("import torch\nfrom torch import nn\n\n\ndef make():\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n")
    out = tmp_path / "net.dnn.json"
    code = main(["import", f"{src}:make", "-o", str(out), "--input-shape", "1,8,8", "--weights",
                 "--report", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr()
    project = load_project(out)
    assert project.training["init_weights"] == "net.weights.pt"
    state = torch.load(tmp_path / "net.weights.pt", weights_only=True)
    assert set(state) == {"1.weight", "1.bias"}
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    code = main(["import", "torchvision:nope_model", "-o", str(out)])
    assert code == 2


def test_cli_import_with_weights_makes_the_project_folder(tmp_path, capsys):
    """README's `-o proj/r18.dnn.json`: a folder that does not exist yet is made, for the
    project and its weights alike (torch.save raised "Parent directory proj does not exist")."""
    from designer.cli import main

    src = tmp_path / "mynet.py"
    src.write_text("from torch import nn\n\n\ndef make():\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n")
    out = tmp_path / "proj" / "sub" / "net.dnn.json"
    code = main(["import", f"{src}:make", "-o", str(out), "--input-shape", "1,8,8", "--weights"])
    assert code == 0, capsys.readouterr()
    assert load_project(out).training["init_weights"] == "net.weights.pt"
    assert (tmp_path / "proj" / "sub" / "net.weights.pt").is_file()


def test_a_module_attribute_apart_from_the_name(tmp_path):
    """A child whose attribute is no Python name (RegNet's "block1-0") keeps its keys: the layer
    is named block1_0 and holds the module attribute; files, undo copies and export keep it."""

    class Stage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module("block1-0", nn.Linear(4, 4))
            self.add_module("0head", nn.Linear(4, 2))

        def forward(self, x):
            return getattr(self, "0head")(torch.relu(getattr(self, "block1-0")(x)))

    model = randomise(Stage())
    project, _, built = import_exactly(model, (4,), "stage", tmp_path)
    assert list(built.state_dict()) == list(model.state_dict())
    graph = project.networks["model"]
    node = graph.node_by_name("block1_0")
    assert node.attr == "block1-0" and graph.node_by_name("m_0head").attr == "0head"
    assert graph.copy().node_by_name("block1_0").attr == "block1-0"
    path = save_project(project, tmp_path / "s.dnn.json", backup=False)
    assert load_project(path).networks["model"].node_by_name("block1_0").attr == "block1-0"
    from designer.engine.model.graph import GraphError

    with pytest.raises(GraphError, match="module attribute 'block1-0' is taken"):
        graph.add_node("ReLU", "relu_x", attr="block1-0")
    with pytest.raises(GraphError, match="not a module attribute"):
        graph.add_node("ReLU", "relu_x", attr="a.b.c")
    graph.add_node("ReLU", "relu_x", attr="zz")
    with pytest.raises(GraphError, match="another layer's module attribute"):
        graph.rename(node.id, "zz")
    for bad, why in (("a.b.c", "not a module attribute"), ("_x", "not a module attribute"),
                     ("training", "reserved"), (7, "non-empty text"), ("x" * 65, "at most 64"),
                     ("block1_0", "another layer's name")):
        data = json.loads(path.read_text())
        data["networks"][0]["nodes"][2]["attr"] = bad
        with pytest.raises(ValueError, match=why):
            project_from_json(json.dumps(data))
