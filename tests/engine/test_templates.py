"""The templates gallery: every template loads, checks clean, is exactly its reference network, and
trains on offline data.

Each template is compared with the same network written by hand in plain PyTorch: the parameter
count must be the published one, and the reference's state_dict must load into the built model
(same layer names and shapes) and give the same outputs.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from designer.cli import main as cli_main
from designer.engine.document.project import load_project
from designer.engine.document.templates import (
    DEFAULT_TEMPLATE,
    TemplateError,
    describe_dataset,
    list_templates,
    load_template,
    template_path,
    templates_dir,
    with_absolute_data_path,
)
from designer.engine.model.blocks import model_names
from designer.engine.model.build import build_model
from designer.engine.model.layout import LAYOUT_DX, LAYOUT_DY
from designer.engine.model.shapes import analyze
from designer.engine.train.config import validate_dataset, validate_training

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"


# --------------------------------------------------------------------------------------------
# The reference networks, written as the tutorials write them (attribute names = layer names)
# --------------------------------------------------------------------------------------------


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.line = nn.Linear(1, 1)

    def forward(self, x):
        return self.line(x)


class MLP(nn.Module):
    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class CNNMnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc3(torch.relu(self.fc2(x)))


class CNNCifar(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(4096, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class LSTMSentiment(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.fc = nn.Linear(128, 2)

    def forward(self, tokens):
        _, (h, _) = self.lstm(self.embed(tokens))
        return self.fc(h[-1])


class TransformerText(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 64)
        self.encoder = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True)
        self.fc = nn.Linear(64, 2)

    def forward(self, tokens):
        return self.fc(self.encoder(self.embed(tokens)).mean(1))


class ResidualBlock(nn.Module):
    """Conv-BN-ReLU-Conv-BN plus the skip path (projected by a 1x1 Conv-BN when it changes size)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        project = cin != cout
        self.proj = nn.Conv2d(cin, cout, 1, stride, bias=False) if project else None
        self.proj_bn = nn.BatchNorm2d(cout) if project else None

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        skip = self.proj_bn(self.proj(x)) if self.proj is not None else x
        return torch.relu(y + skip)


class ResNetMini(nn.Module):
    """Stem + three residual blocks (16, 32, 64 channels; the last two stride 2 with a projection)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.b1 = ResidualBlock(16, 16, 1)
        self.b2 = ResidualBlock(16, 32, 2)
        self.b3 = ResidualBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = self.b3(self.b2(self.b1(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Linear(64, 32)
        self.code = nn.Linear(32, 8)
        self.dec1 = nn.Linear(8, 32)
        self.dec2 = nn.Linear(32, 64)

    def forward(self, x):
        z = self.code(torch.relu(self.enc1(torch.flatten(x, 1))))
        return torch.sigmoid(self.dec2(torch.relu(self.dec1(z)))).view(-1, 1, 8, 8)


# id -> (reference factory, published parameter count or None, input shape, input dtype)
REFERENCE = {
    "linear-regression": (LinearRegression, 2, (1,), "float32"),
    "mlp-mnist": (lambda: MLP(784, 128, 10), 101_770, (1, 28, 28), "float32"),
    "cnn-mnist": (CNNMnist, 431_080, (1, 28, 28), "float32"),
    "lenet5": (LeNet5, 61_706, (1, 32, 32), "float32"),
    "cnn-cifar10": (CNNCifar, 2_122_186, (3, 32, 32), "float32"),
    "lstm-sentiment": (lambda: LSTMSentiment(1000), None, None, "int64"),
    "resnet-mini": (ResNetMini, None, (3, 32, 32), "float32"),
    "transformer-text": (lambda: TransformerText(1000), None, None, "int64"),
    "autoencoder": (Autoencoder, None, (1, 8, 8), "float32"),
    "mlp-digits": (lambda: MLP(64, 64, 10), None, (1, 8, 8), "float32"),
}
IDS = sorted(REFERENCE)


def _input(graph):
    (node,) = graph.inputs()
    return node


# --------------------------------------------------------------------------------------------
# The gallery
# --------------------------------------------------------------------------------------------


def test_gallery_lists_every_template_with_what_the_new_dialog_shows():
    infos = list_templates()
    assert set(REFERENCE) <= {i.id for i in infos}  # other templates (GAN recipes) may join
    assert infos[0].id == DEFAULT_TEMPLATE and infos[0].is_default
    assert [i.order for i in infos] == sorted(i.order for i in infos)
    for info in infos:
        assert info.error is None, (info.id, info.error)
        assert info.path == TEMPLATES / f"{info.id}.dnn.json"
        if info.id not in REFERENCE:
            continue
        assert info.name and info.name != info.id
        assert len(info.description) > 150, info.id  # what it teaches and what to expect
        assert info.teaches and info.expected
        project = load_project(info.path)
        models = model_names(project.networks)  # a block's parameters count in its uses
        assert info.params == sum(analyze(project.networks[m]).total_params for m in models)
        assert info.networks == len(models)
        assert info.dataset == describe_dataset(info.dataset_settings)
        assert info.layers >= 3
        assert info.needs_download == (info.dataset_settings["kind"] == "torchvision")
    by_id = {i.id: i for i in infos}
    assert by_id["mlp-mnist"].dataset.startswith("MNIST")
    assert "32x32" in by_id["lenet5"].dataset
    assert by_id["lstm-sentiment"].dataset == "reviews.csv (CSV text)"


def test_gallery_shows_a_broken_template_with_its_error(tmp_path):
    (tmp_path / "good.dnn.json").write_text(
        (TEMPLATES / "mlp-digits.dnn.json").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "bad.dnn.json").write_text("{not json", encoding="utf-8")
    doc = json.loads((TEMPLATES / "mlp-digits.dnn.json").read_text(encoding="utf-8"))
    doc["networks"][0]["nodes"][2]["params"]["in_features"] = 100  # the old starter's bug
    (tmp_path / "wrong.dnn.json").write_text(json.dumps(doc), encoding="utf-8")
    infos = {i.id: i for i in list_templates(tmp_path)}
    assert set(infos) == {"good", "bad", "wrong"}
    assert infos["good"].error is None and infos["good"].params == 4_810
    assert "not valid JSON" in infos["bad"].error and infos["bad"].params is None
    assert "in_features is fixed to 100" in infos["wrong"].error
    assert infos["wrong"].params is None


def test_load_template_and_its_errors(tmp_path):
    project = load_template("mlp-digits")
    assert project.name == "MLP on digits (starter)"
    with pytest.raises(TemplateError, match="no template 'nope'.*known: autoencoder"):
        load_template("nope")
    for bad in ("../mlp-digits", "", ".hidden"):
        with pytest.raises(TemplateError):
            template_path(bad)
    (tmp_path / "bad.dnn.json").write_text("[]", encoding="utf-8")
    with pytest.raises(TemplateError, match="cannot be read: .*expected a JSON object"):
        load_template("bad", tmp_path)


def test_load_template_makes_the_sample_data_path_absolute():
    project = load_template("lstm-sentiment")
    path = Path(project.dataset["path"])
    assert path.is_absolute() and path == (TEMPLATES / "data" / "reviews.csv").resolve()
    # the file itself keeps the relative path, resolved against the template's folder
    opened = load_project(TEMPLATES / "lstm-sentiment.dnn.json")
    assert opened.dataset["path"] == "data/reviews.csv"
    assert with_absolute_data_path(opened, TEMPLATES).dataset == project.dataset
    assert with_absolute_data_path(opened, "/elsewhere").dataset == project.dataset  # once only


def test_templates_dir_can_be_overridden(monkeypatch, tmp_path):
    assert templates_dir() == TEMPLATES
    monkeypatch.setenv("DESIGNER_TEMPLATES", str(tmp_path))
    assert templates_dir() == tmp_path
    assert list_templates() == []


def test_committed_templates_are_what_the_script_generates():
    spec = importlib.util.spec_from_file_location("make_templates",
                                                  ROOT / "scripts" / "make_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = [str(p.relative_to(ROOT)) for p, text in module.outputs().items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"run scripts/make_templates.py: {stale}"


# --------------------------------------------------------------------------------------------
# Each template: checks clean, exact reference network, sensible settings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tid", IDS)
def test_template_checks_clean(tid, capsys):
    path = TEMPLATES / f"{tid}.dnn.json"
    assert cli_main(["check", str(path)]) == 0
    assert "OK: no errors" in capsys.readouterr().out
    project = load_project(path)
    analysis = analyze(project.graph)
    assert analysis.problems == []  # not even a warning
    assert project.metadata["id"] == tid
    validate_dataset(project.dataset)
    validate_training(project.training)
    # nicely laid out with the canvas's spacing: every edge goes right along its band or wraps
    # down to a later one (a long network reads like lines of text), no two layers crowd
    graph = project.graph
    for e in graph.edges:
        src, dst = graph.nodes[e.src].pos, graph.nodes[e.dst].pos
        assert src[0] < dst[0] or src[1] < dst[1]
    nodes = list(graph.nodes.values())
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert abs(a.pos[0] - b.pos[0]) >= LAYOUT_DX or abs(a.pos[1] - b.pos[1]) >= LAYOUT_DY


@pytest.mark.parametrize("tid", IDS)
def test_template_is_exactly_its_reference_network(tid):
    factory, published, shape, dtype = REFERENCE[tid]
    project = load_template(tid)
    graph = project.graph
    ref = factory()
    ref_params = sum(p.numel() for p in ref.parameters())
    assert analyze(graph).total_params == ref_params
    if published is not None:
        assert ref_params == published
    inp = _input(graph)
    assert inp.params["dtype"] == dtype
    if shape is not None:
        assert tuple(inp.params["shape"]) == shape
    model = build_model(graph, seed=0)
    assert sum(p.numel() for p in model.parameters()) == ref_params
    # same layer names and shapes: the reference's weights load into the built model strictly
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval()
    ref.eval()
    g = torch.Generator().manual_seed(0)
    size = (4, *inp.params["shape"])
    x = (torch.randint(0, 1000, size, generator=g) if dtype == "int64"
         else torch.randn(size, generator=g))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)


def test_residual_blocks_have_skips_and_projections_where_channels_change():
    project = load_template("resnet-mini")
    uses = {n.name: {k: n.params[k] for k in ("block", "args")}
            for n in project.graph.nodes.values() if n.type == "Block"}
    assert uses == {
        "b1": {"block": "ResidualBlock", "args": {"channels": 16}},
        "b2": {"block": "ResidualBlock", "args": {"channels": 32, "stride": 2, "project": True}},
        "b3": {"block": "ResidualBlock", "args": {"channels": 64, "stride": 2, "project": True}},
    }
    block = project.networks["ResidualBlock"]
    (add,) = [n for n in block.nodes.values() if n.type == "Add"]
    assert sorted(block.nodes[e.src].name for e in block.in_edges(add.id)) == ["bn2", "proj_bn"]
    by_name = {n.name: n for n in block.nodes.values()}
    assert by_name["proj"].params["kernel_size"] == 1
    assert by_name["proj"].when == by_name["proj_bn"].when == "project"


# --------------------------------------------------------------------------------------------
# The sample text data
# --------------------------------------------------------------------------------------------


def _reviews():
    with open(TEMPLATES / "data" / "reviews.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_sample_reviews_are_balanced_varied_and_not_one_word_separable():
    rows = _reviews()
    assert 300 <= len(rows) <= 1000
    assert set(rows[0]) == {"text", "label"}
    labels = [r["label"] for r in rows]
    assert labels.count("positive") == labels.count("negative")
    texts = [r["text"].lower() for r in rows]
    assert len(set(texts)) == len(texts)
    words = [set(re.findall(r"[a-z']+", t)) for t in texts]
    vocab = set().union(*words)
    assert len(vocab) > 150
    y = [label == "positive" for label in labels]
    best = 0.0
    for w in vocab:  # the best rule "contains word w => positive (or negative)"
        acc = sum((w in ws) == t for ws, t in zip(words, y)) / len(y)
        best = max(best, acc, 1 - acc)
    assert best < 0.7, f"a single word separates the classes with accuracy {best:.2f}"


# --------------------------------------------------------------------------------------------
# Training on offline data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small models on a shared 2-core machine: one thread avoids OpenMP spin-waiting (measured
    60 ms per MLP step with 2 threads under load against 4 ms with 1)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


STAND_IN = {"MNIST": (1, 28, 28), "CIFAR10": (3, 32, 32)}


@pytest.fixture()
def offline_torchvision(tmp_path, monkeypatch):
    """MNIST- and CIFAR-10-shaped stand-ins, digits upscaled to 28x28 / 32x32 uint8 images,
    placed where the data engine keeps converted torchvision sets (nothing downloads)."""
    from sklearn.datasets import load_digits

    monkeypatch.setenv("DESIGNER_DATA_DIR", str(tmp_path))
    bunch = load_digits()
    n = 400
    small = torch.from_numpy(bunch.images[:n]).float().unsqueeze(1) * (255 / 16)
    labels = torch.from_numpy(bunch.target[:n]).long()
    for name, (c, h, w) in STAND_IN.items():
        big = nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        x = big.repeat(1, c, 1, 1) * torch.linspace(1.0, 0.6, c).view(1, c, 1, 1)
        x = x.round().clamp(0, 255).to(torch.uint8)
        folder = tmp_path / name
        folder.mkdir()
        torch.save({"x": x, "y": labels, "classes": [str(i) for i in range(10)]},
                   folder / "designer-train.pt")
    return tmp_path


def _dataset(project):
    from designer.engine.train.data import load_dataset

    settings = dict(project.dataset)
    if settings.get("kind") == "torchvision":
        settings["download"] = False  # the stand-in must be found, never fetched
    return load_dataset(settings, base_dir=TEMPLATES)


def _train(project, ds, **overrides):
    from designer.engine.train.training import Trainer

    model = build_model(project.graph, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, ds, {**project.training, "device": "cpu", **overrides})
    result = trainer.run()
    assert result.status == "finished", result.message
    return model, before, result


@pytest.mark.parametrize("tid", IDS)
def test_template_trains_one_epoch_on_offline_data(tid, offline_torchvision):
    from designer.engine.train.data import check_model_data

    project = load_template(tid)
    ds = _dataset(project)
    if project.dataset["kind"] == "torchvision":  # the stand-in went through resize etc.
        size = project.dataset.get("resize") or STAND_IN[project.dataset["name"]][1:]
        assert ds.sample_shape == (STAND_IN[project.dataset["name"]][0], *size)
    check = check_model_data(project.graph, ds, project.training)
    assert check.problems == [], [p.message for p in check.problems]
    model, before, result = _train(project, ds, epochs=1)
    (epoch,) = result.history
    assert torch.isfinite(torch.tensor(epoch["train"]["loss"]))
    assert torch.isfinite(torch.tensor(epoch["val"]["loss"]))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "one epoch of training changed no weight"


def test_cnn_cifar10_feeds_images_in_minus_one_one_as_the_tutorial(offline_torchvision):
    """Issue 7: "CIFAR-10 normalised to [-1, 1]" (ToTensor, then Normalize((0.5,) * 3, (0.5,) * 3))."""
    project = load_template("cnn-cifar10")
    assert project.dataset["normalization"] == "minus_one_one"
    ds = _dataset(project)
    assert ds.preprocessing["normalization"] == "minus_one_one"
    x, _ = ds.batch("train", torch.arange(ds.n_train))
    raw = ds.x_train.float() / 255
    assert torch.allclose(x, (raw - 0.5) / 0.5, atol=1e-6)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0  # the stand-in has 0 and 255


def test_starter_reaches_95_percent_validation_accuracy_with_its_own_settings():
    from designer.engine.train.training import Epoch, Trainer

    project = load_template(DEFAULT_TEMPLATE)
    ds = _dataset(project)
    reached = []

    def on_event(event):
        if isinstance(event, Epoch) and event.val["accuracy"] > 0.95:
            reached.append(event.epoch)
            trainer.stop()  # reached: the rest of the stated epochs are not needed here

    trainer = Trainer(build_model(project.graph, seed=0), ds,
                      {**project.training, "device": "cpu"}, callback=on_event)
    result = trainer.run()
    assert reached, f"validation accuracy stayed at or below 95%: {result.history[-1]['val']}"
    assert reached[0] <= project.training["epochs"]


def test_linear_regression_learns_w_2_and_b_1():
    project = load_template("linear-regression")
    model, _, result = _train(project, _dataset(project))
    assert result.epochs_done == project.training["epochs"]
    assert model.line.weight.item() == pytest.approx(2.0, abs=0.05)
    assert model.line.bias.item() == pytest.approx(1.0, abs=0.05)


def test_lstm_learns_the_sample_reviews_as_its_description_says():
    project = load_template("lstm-sentiment")
    _, _, result = _train(project, _dataset(project))
    best = max(e["val"]["accuracy"] for e in result.history)
    assert best >= 0.95, [round(e["val"]["accuracy"], 3) for e in result.history]
