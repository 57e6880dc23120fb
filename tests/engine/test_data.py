"""Datasets from small files in their real formats, settings validation, and the fit check."""

from __future__ import annotations

import csv
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from designer.engine.train import config
from designer.engine.train.config import ConfigError, validate_dataset, validate_training
from designer.engine.train.data import (
    DatasetError,
    augment_images,
    check_model_data,
    load_dataset,
    split_indices,
    tokenize,
)

from .helpers import chain

# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------


def _recipe_settings() -> set[str]:
    from designer.engine.train import recipes

    return {"recipe"} | {s.key for spec in recipes.specs() for s in spec.settings}


CONTRACT_EXTRAS = _recipe_settings()  # each recipe's own settings (a GAN's lr_d, ...)


def test_training_defaults_match_the_contract():
    t = validate_training({})
    contract = {k: v for k, v in t.items() if k not in CONTRACT_EXTRAS}
    assert contract == {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.001, "momentum": 0.9,
                 "nesterov": False, "weight_decay": 0.0, "l1": 0.0, "scheduler": "none",
                 "step_size": 10, "gamma": 0.1, "epochs": 10, "batch_size": 64,
                 "grad_clip": 0.0, "early_stopping": 0, "seed": 0, "device": "auto",
                 "mixed_precision": False,
                 # fine-tuning an imported model (issue 14): start from these weights, keep the
                 # BatchNorm of frozen layers in eval mode; refuse weights filling less than
                 # half the design's parameters (issue 22)
                 "init_weights": None, "init_weights_min_fit": 0.5, "freeze_bn_eval": False}


def test_effective_training_is_complete_with_defaults_for_missing_and_refused_values():
    from designer.engine.train.config import effective_training

    assert effective_training({}) == validate_training({})
    t = effective_training({"epochs": 5, "lr": "fast", "recipe": "gan", "typo": 1})
    assert t["epochs"] == 5 and t["recipe"] == "gan"
    assert t["lr"] == validate_training({})["lr"] and "typo" not in t
    assert effective_training(None) == effective_training({})


def test_dataset_defaults_cover_the_contract_keys():
    d = config.defaults("dataset")
    for key in ("kind", "name", "task", "val_fraction", "split_seed", "normalize", "resize",
                "grayscale", "augment_crop_padding", "augment_hflip", "n_samples", "noise",
                "seed", "path", "feature_columns", "target_column", "text_column",
                "label_column", "vocab_size", "max_length", "download"):
        assert key in d
    assert d["val_fraction"] == 0.2 and d["vocab_size"] == 10000 and d["max_length"] == 64


@pytest.mark.parametrize("section, values, message", [
    ("training", {"lr": "fast"}, 'training.lr: expected a number from 1e-08 to 10, got "fast"'),
    ("training", {"epochs": 0}, "training.epochs: expected an integer from 1 to 100000, got 0"),
    ("training", {"optimizer": "lbfgs"}, "training.optimizer: expected one of sgd, rmsprop"),
    ("training", {"nesterov": "yes"}, 'training.nesterov: expected true or false, got "yes"'),
    ("training", {"epoch": 5}, "training.epoch: unknown setting; did you mean 'epochs'?"),
    ("dataset", {"kind": "synthetic", "name": "circles"}, "dataset.name: expected one of moons"),
    ("dataset", {"kind": "csv"}, "dataset.path: a CSV file is needed"),
    ("dataset", {"resize": [0, 5]}, "dataset.resize: expected [height, width]"),
    ("dataset", {"val_fraction": 1.5}, "dataset.val_fraction: expected a number from 0 to 0.9"),
])
def test_invalid_settings_name_the_place(section, values, message):
    fn = validate_training if section == "training" else validate_dataset
    with pytest.raises(ConfigError) as info:
        fn(values)
    assert str(info.value).startswith(message)


def test_every_setting_is_declared_with_type_default_and_doc():
    for section, settings in config.SECTIONS.items():
        for s in settings:
            assert s.doc and s.type in config.SETTING_TYPES
            assert s.validate(s.default) == s.default or s.default is None, (section, s.key)
            if s.type == "choice":
                assert s.default in s.choices


def test_files_with_only_normalize_keep_their_meaning(tmp_path):
    """Project files written before dataset.normalization: true still standardises, false is off."""
    import json

    from designer.engine.document.project import load_project

    assert validate_dataset({"normalize": True})["normalization"] == "standardize"
    starter = Path(__file__).parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"
    doc = json.loads(starter.read_text())
    doc["dataset"] = {"kind": "digits", "normalize": True}
    (tmp_path / "old.dnn.json").write_text(json.dumps(doc))
    old = load_dataset(load_project(tmp_path / "old.dnn.json").dataset)
    assert old.preprocessing["normalization"] == "standardize"
    assert abs(float(old.x_train.mean())) < 1e-4 and abs(float(old.x_train.std()) - 1) < 1e-3
    off = load_dataset({"kind": "digits", "normalize": False})
    assert off.mean is None and off.preprocessing["normalization"] == "none"
    assert float(off.x_train.min()) == 0.0 and float(off.x_train.max()) == 1.0
    # normalize false wins over a leftover normalization
    off2 = load_dataset({"kind": "digits", "normalize": False, "normalization": "minus_one_one"})
    assert off2.mean is None and torch.equal(off2.x_train, off.x_train)


@pytest.mark.parametrize("values, message", [
    ({"normalization": "zero_one"},
     "dataset.normalization: expected one of standardize, minus_one_one"),
    ({"kind": "csv", "path": "t.csv", "normalization": "minus_one_one"},
     ("dataset.normalization: minus_one_one applies to images (digits, torchvision, "
      "image_folder); CSV features are standardised per column")),
    ({"kind": "csv_text", "path": "t.csv", "normalization": "minus_one_one"},
     "dataset.normalization: minus_one_one applies to images"),
    ({"name": "moons", "normalization": "minus_one_one"},
     "dataset.normalization: minus_one_one applies to images"),
])
def test_normalization_is_refused_where_it_does_not_apply(values, message):
    with pytest.raises(ConfigError) as info:
        validate_dataset(values)
    assert str(info.value).startswith(message)


def test_normalization_setting_shows_for_images_with_normalize_on():
    s = config.setting("dataset", "normalization")
    assert s.applies_to({"kind": "torchvision", "normalize": True})
    assert not s.applies_to({"kind": "torchvision", "normalize": False})
    assert not s.applies_to({"kind": "csv", "normalize": True})


def test_dataset_kind_follows_from_a_builtin_name():
    assert validate_dataset({"name": "digits"})["kind"] == "digits"
    d = validate_dataset({"name": "fashionmnist"})
    assert (d["kind"], d["name"]) == ("torchvision", "FashionMNIST")
    assert validate_dataset({"name": "Moons"})["kind"] == "synthetic"


# ---------------------------------------------------------------------------------------------
# built-in datasets
# ---------------------------------------------------------------------------------------------


def test_digits_is_normalised_with_training_statistics():
    ds = load_dataset({"name": "digits"})
    assert ds.sample_shape == (1, 8, 8) and ds.dtype == "float32" and ds.task == "classification"
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.n_train + ds.n_val == 1797 and ds.n_val == round(1797 * 0.2)
    assert abs(float(ds.x_train.mean())) < 1e-4 and abs(float(ds.x_train.std()) - 1) < 1e-3
    info = ds.info()
    assert info["normalization"]["scale"] == pytest.approx(1 / 16)
    # export must reproduce it: raw * scale - mean / std gives the stored tensors
    raw = np.loadtxt(Path(np.__file__).parents[1] / "sklearn" / "datasets" / "data" /
                     "digits.csv.gz", delimiter=",")[:, :64]
    train_idx, _ = split_indices(1797, 0.2, 0)
    x0 = torch.tensor(raw[int(train_idx[0])], dtype=torch.float32).view(1, 8, 8)
    norm = info["normalization"]
    expected = (x0 * norm["scale"] - norm["mean"][0]) / norm["std"][0]
    assert torch.allclose(ds.x_train[0], expected, atol=1e-5)


def test_digits_minus_one_one_is_the_tutorial_normalisation():
    ds = load_dataset({"name": "digits", "normalization": "minus_one_one"})
    plain = load_dataset({"name": "digits", "normalize": False})
    assert ds.mean == [0.5] and ds.std == [0.5]
    assert ds.preprocessing["normalization"] == "minus_one_one"
    assert float(ds.x_train.min()) == -1.0 and float(ds.x_train.max()) == 1.0
    assert torch.allclose(ds.x_train, (plain.x_train - 0.5) / 0.5)
    assert torch.equal(ds.y_train, plain.y_train)


def test_split_is_seeded():
    a = load_dataset({"name": "digits", "split_seed": 3})
    b = load_dataset({"name": "digits", "split_seed": 3})
    c = load_dataset({"name": "digits", "split_seed": 4})
    assert torch.equal(a.y_val, b.y_val) and not torch.equal(a.y_val, c.y_val)


@pytest.mark.parametrize("name, task, shape, classes", [
    ("moons", "classification", (2,), 2), ("spirals", "classification", (2,), 3),
    ("linear", "regression", (1,), None), ("sine", "regression", (1,), None)])
def test_synthetic_sets(name, task, shape, classes):
    ds = load_dataset({"kind": "synthetic", "name": name, "n_samples": 300, "seed": 1})
    assert ds.task == task and ds.sample_shape == shape and ds.num_classes == classes
    assert ds.n_train + ds.n_val == 300
    again = load_dataset({"kind": "synthetic", "name": name, "n_samples": 300, "seed": 1})
    assert torch.equal(ds.x_train, again.x_train)
    if task == "regression":
        assert ds.y_train.dtype == torch.float32 and ds.y_train.shape == (ds.n_train, 1)
    else:
        assert ds.y_train.dtype == torch.int64


def test_linear_set_follows_its_formula():
    ds = load_dataset({"name": "linear", "noise": 0.0, "linear_w": -3.0, "linear_b": 0.5})
    assert torch.allclose(ds.y_train, -3.0 * ds.x_train + 0.5, atol=1e-5)


def test_reconstruction_targets_are_the_inputs():
    ds = load_dataset({"name": "digits", "task": "reconstruction"})
    x, y = ds.batch("train", torch.arange(4))
    assert ds.class_names is None and torch.equal(x, y)
    with pytest.raises(DatasetError, match="regression"):
        load_dataset({"name": "digits", "task": "regression"})


# ---------------------------------------------------------------------------------------------
# torchvision, offline
# ---------------------------------------------------------------------------------------------


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every download fails; the dataset cache is an empty temporary folder."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("DESIGNER_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", ["MNIST", "KMNIST"])
def test_mnist_family_reads_idx_files_where_torchvision_expects_them(no_network, name):
    raw = no_network / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28))
    labels = np.arange(40) % 10
    _write_idx_images(raw / "train-images-idx3-ubyte", images)
    _write_idx_labels(raw / "train-labels-idx1-ubyte", labels)
    _write_idx_images(raw / "t10k-images-idx3-ubyte", images[:5])
    _write_idx_labels(raw / "t10k-labels-idx1-ubyte", labels[:5])
    ds = load_dataset({"name": name.lower(), "val_fraction": 0.25})
    assert ds.sample_shape == (1, 28, 28) and ds.num_classes == 10 and ds.n_train == 30
    assert ds.x_train.dtype == torch.uint8  # kept as bytes, scaled per batch
    x, y = ds.batch("train", torch.arange(30))
    train_idx, _ = split_indices(40, 0.25, 0)
    raw0 = torch.tensor(images[int(train_idx[0])], dtype=torch.float32) / 255
    norm = ds.info()["normalization"]
    assert torch.allclose(x[0, 0], (raw0 - norm["mean"][0]) / norm["std"][0], atol=1e-5)
    assert torch.equal(y, torch.tensor(labels[train_idx.numpy()]))
    assert abs(float(x.mean())) < 1e-4  # statistics of the training split
    # converted once: the second load reads the tensor cache, even with the raw files gone
    for f in raw.iterdir():
        f.unlink()
    again = load_dataset({"name": name, "val_fraction": 0.25, "grayscale": True,
                          "resize": [14, 14]})
    assert again.sample_shape == (1, 14, 14)


def test_offline_download_failure_names_folder_files_and_alternatives(no_network):
    with pytest.raises(DatasetError) as info:
        load_dataset({"name": "FashionMNIST"})
    msg = str(info.value)
    assert str(no_network / "FashionMNIST" / "raw") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "network disabled" in msg
    assert "digits" in msg and "moons" in msg
    with pytest.raises(DatasetError, match="downloads are off"):
        load_dataset({"name": "CIFAR10", "download": False})


def test_download_reports_progress_and_checks_the_checksum(no_network, monkeypatch):
    import gzip
    import io

    payload = gzip.compress(b"not really mnist")

    class Response(io.BytesIO):
        def __init__(self, data):
            super().__init__(data)
            self.headers = {"Content-Length": str(len(data))}

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(payload))
    events = []
    with pytest.raises(DatasetError, match="checksum"):
        load_dataset({"name": "MNIST"}, progress=events.append)
    assert events and events[-1].done == events[-1].total == len(payload)
    assert events[0].dataset == "MNIST" and events[0].file == "train-images-idx3-ubyte.gz"


# ---------------------------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------------------------


def _image_tree(root: Path, size=(12, 10), mode="RGB", per_class=4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, cname in enumerate(["cat", "dog", "emu"]):
        (root / cname).mkdir(parents=True)
        for i in range(per_class):
            channels = 3 if mode == "RGB" else 1
            arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8) // (k + 1)
            Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode).save(
                root / cname / f"{i}.png")
    return root


def test_image_folder_rgb(tmp_path):
    _image_tree(tmp_path / "pets")
    ds = load_dataset({"kind": "image_folder", "path": "pets", "val_fraction": 0.25}, tmp_path)
    assert ds.class_names == ["cat", "dog", "emu"]
    assert ds.sample_shape == (3, 10, 12) and ds.n_train == 9 and ds.n_val == 3
    assert len(ds.info()["normalization"]["mean"]) == 3


def test_image_folder_minus_one_one_maps_bytes_to_minus_one_one(tmp_path):
    import torchvision.transforms as T
    from PIL import Image

    _image_tree(tmp_path / "pets")
    ds = load_dataset({"kind": "image_folder", "path": "pets", "val_fraction": 0.25,
                       "normalization": "minus_one_one"}, tmp_path)
    info = ds.info()
    assert info["normalization"]["mean"] == [0.5] * 3 and info["normalization"]["std"] == [0.5] * 3
    assert info["preprocessing"]["normalization"] == "minus_one_one"
    for split, n in (("train", ds.n_train), ("val", ds.n_val)):
        x, _ = ds.batch(split, torch.arange(n))
        assert x.dtype == torch.float32 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    x, _ = ds.batch("train", torch.arange(ds.n_train))
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0  # bytes 0 and 255 occur
    # the same values as the tutorial's ToTensor + Normalize((0.5,) * 3, (0.5,) * 3)
    tutorial = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    files = sorted((tmp_path / "pets").rglob("*.png"))
    train_idx, _ = split_indices(len(files), 0.25, 0)
    with Image.open(files[int(train_idx[0])]) as im:
        want = tutorial(im.convert("RGB"))
    assert torch.allclose(x[0], want, atol=1e-6)


def test_image_folder_grayscale_resized(tmp_path):
    _image_tree(tmp_path / "pets", size=(16, 16), mode="L")
    ds = load_dataset({"kind": "image_folder", "path": str(tmp_path / "pets"), "grayscale": True,
                       "resize": [8, 8]})
    assert ds.sample_shape == (1, 8, 8)
    x, _ = ds.batch("train", torch.arange(ds.n_train))
    assert x.shape == (ds.n_train, 1, 8, 8) and x.dtype == torch.float32


def test_image_folder_problems_are_explained(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset({"kind": "image_folder", "path": "nowhere"}, tmp_path)
    root = _image_tree(tmp_path / "mixed")
    from PIL import Image

    Image.new("RGB", (5, 5)).save(root / "cat" / "odd.png")
    with pytest.raises(DatasetError, match="differ in size.*dataset.resize"):
        load_dataset({"kind": "image_folder", "path": str(root)})
    (root / "cat" / "odd.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read the image"):
        load_dataset({"kind": "image_folder", "path": str(root), "resize": [4, 4]})


def test_hostile_or_oversized_image_folders_are_refused_with_a_message(tmp_path, monkeypatch):
    """A PNG whose header claims 30000x30000 raised PIL's DecompressionBombError as a traceback;
    a folder too large for memory was measured only after every image was decoded."""
    import zlib

    from PIL import Image

    from designer.engine.train.data import vision

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    root = _image_tree(tmp_path / "pets", per_class=2)
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    (root / "cat" / "0.png").write_bytes(bomb)
    with pytest.raises(DatasetError, match="cannot read the image.*0.png.*decompression bomb"):
        load_dataset({"kind": "image_folder", "path": str(root)})
    Image.new("RGB", (12, 10)).save(root / "cat" / "0.png")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda p, *a: opened.append(p) or real_open(p, *a))
    monkeypatch.setattr(vision, "MAX_IMAGE_BYTES", 1000)  # 6 images of 12x10x3 = 2,160 bytes
    with pytest.raises(DatasetError, match="6 images of 12x10 take .*set dataset.resize"):
        load_dataset({"kind": "image_folder", "path": str(root)})
    assert len(opened) == 1  # refused before decoding the rest


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def _write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_classification_with_text_labels_and_training_only_standardisation(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"{a:.4f}", f"{b:.4f}", "note", ["setosa", "virginica"][int(a > 0)]]
            for a, b in rng.normal(5, 3, (50, 2))]
    _write_csv(tmp_path / "iris.csv", ["a", "b", "comment", "species"], rows)
    ds = load_dataset({"kind": "csv", "path": "iris.csv", "feature_columns": ["a", "b"],
                       "target_column": "species"}, tmp_path)
    assert ds.task == "classification" and ds.class_names == ["setosa", "virginica"]
    assert ds.sample_shape == (2,)
    train_idx, val_idx = split_indices(50, 0.2, 0)
    raw = torch.tensor([[float(r[0]), float(r[1])] for r in rows])
    mean = raw[train_idx].double().mean(0)
    std = raw[train_idx].double().std(0, unbiased=False)
    assert torch.allclose(ds.x_val, ((raw[val_idx] - mean) / std).float(), atol=1e-4)
    assert ds.info()["normalization"]["mean"] == pytest.approx(mean.tolist())


def test_csv_regression_and_auto_task(tmp_path):
    rows = [[i, i * 0.5 + 0.25] for i in range(30)]
    _write_csv(tmp_path / "t.csv", ["x", "y"], rows)
    ds = load_dataset({"kind": "csv", "path": str(tmp_path / "t.csv")})
    assert ds.task == "regression" and ds.y_train.dtype == torch.float32
    assert ds.target_shape == (1,)


@pytest.mark.parametrize("content, settings, message", [
    ("a,b\n1,2\nx,3\n4,5\n", {}, "row 3, column 'a': 'x' is not a number"),
    ("a,b\n1,2\n3\n4,5\n", {}, "row 3: 1 values, but the header names 2 columns"),
    ("a,b\n1,2\n3,4\n", {"target_column": "c"}, "has no column 'c'"),
    ("a\n1\n2\n", {}, "no column left for inputs"),
    ("a,b\n1,2\n", {}, "at least 2 data rows"),
    # beyond float32: torch raised "value cannot be converted ... without overflow" (a traceback)
    ("a,b\n1,2\n1e39,3\n4,5\n", {}, "row 3, column 'a': '1e39' is not a number within float32"),
    ("a,b\n1,2.5\n2,-1e39\n4,5.5\n", {"task": "regression"},
     "row 3, column 'b': '-1e39' is not a number within float32"),
])
def test_malformed_csv_gives_a_clear_error(tmp_path, content, settings, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset({"kind": "csv", "path": "bad.csv", **settings}, tmp_path)


def test_missing_csv(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset({"kind": "csv", "path": "gone.csv"}, tmp_path)


def test_csv_text_vocabulary_padding_and_unknown_tokens(tmp_path):
    rows = [["I loved it, loved it!", "pos"], ["Awful. Just awful", "neg"],
            ["loved the cast", "pos"], ["awful plot, awful acting", "neg"],
            ["it's fine", "pos"], ["never again", "neg"]]
    _write_csv(tmp_path / "reviews.csv", ["review", "sentiment"], rows)
    ds = load_dataset({"kind": "csv_text", "path": "reviews.csv", "text_column": "review",
                       "label_column": "sentiment", "vocab_size": 5, "max_length": 4,
                       "val_fraction": 0.0}, tmp_path)
    assert ds.dtype == "int64" and ds.sample_shape == (4,) and ds.class_names == ["neg", "pos"]
    assert ds.vocab[:2] == ["<pad>", "<unk>"] and len(ds.vocab) == 5
    assert ds.vocab[2:] == ["awful", "loved", "it"]  # most frequent first
    assert tokenize("It's GREAT, isn't it?") == ["it's", "great", "isn't", "it"]
    row = ds.x_train[(ds.x_train[:, 0] == 3).nonzero()[0, 0]]  # "loved ..." rows
    assert row.dtype == torch.int64 and int(row.max()) < 5
    short = [ds.x_train[i] for i in range(ds.n_train) if int(ds.x_train[i, 2]) == 0]
    assert short, "a two-word text is padded with <pad> = 0"
    assert (ds.x_train == 1).any(), "words outside the vocabulary become <unk> = 1"


def test_csv_text_refuses_token_ids_that_cannot_fit_in_memory(tmp_path, monkeypatch):
    """max_length up to 100,000 times many rows was allocated without a look (out of memory)."""
    from designer.engine.train.data import tabular

    _write_csv(tmp_path / "t.csv", ["text", "label"], [["a b", "x"], ["c", "y"], ["d e", "x"]])
    monkeypatch.setattr(tabular, "MAX_TOKEN_BYTES", 1000)
    with pytest.raises(DatasetError, match="3 texts of 100,000 token ids take .*max_length"):
        load_dataset({"kind": "csv_text", "path": "t.csv", "max_length": 100_000}, tmp_path)
    assert load_dataset({"kind": "csv_text", "path": "t.csv", "max_length": 4},
                        tmp_path).sample_shape == (4,)


# ---------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------


def test_random_crop_with_padding_shifts_whole_images():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    out = augment_images(x, crop_padding=2, hflip=False, generator=g)
    assert out.shape == x.shape
    for i in range(2):  # every output is a 6x6 window of the zero-padded image
        padded = torch.nn.functional.pad(x[i, 0], (2, 2, 2, 2))
        windows = [padded[r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i, 0], w) for w in windows)


def test_horizontal_flip_flips_some_images_and_only_training_batches_augment():
    x = torch.randn(64, 3, 4, 4)
    out = augment_images(x, 0, True, torch.Generator().manual_seed(1))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(out[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    ds = load_dataset({"name": "digits", "augment_hflip": True})
    idx = torch.arange(64)
    plain, _ = ds.batch("val", idx, augment=False)
    assert torch.equal(plain, ds.x_val[idx])
    aug, _ = ds.batch("train", idx, augment=True, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(aug, ds.x_train[idx])


# ---------------------------------------------------------------------------------------------
# does the design fit the data?
# ---------------------------------------------------------------------------------------------


def test_input_mismatch_message_and_fix():
    ds = load_dataset({"name": "digits"})
    g = chain(("Flatten", {}), ("Linear", {"out_features": 10}), shape=(3, 32, 32))
    check = check_model_data(g, ds, {"loss": "cross_entropy"})
    assert not check.ok
    assert "the dataset gives 1x8x8 images but input1 is 3x32x32" in check.errors[0].message
    assert check.input_shape == (1, 8, 8) and check.output_size == 10
    fix = check.fixes[0]
    assert (fix.param, fix.value) == ("shape", [1, 8, 8])
    g.set_params(fix.node_id, {fix.param: fix.value})
    assert check_model_data(g, ds, {}).ok


def test_output_mismatch_fix_finds_the_linear_layer_before_activations():
    ds = load_dataset({"kind": "synthetic", "name": "spirals", "n_samples": 60})
    g = chain(("Linear", {"out_features": 16}), ("ReLU", {}), ("Linear", {"out_features": 2}),
              ("Dropout", {}), shape=(2,))
    check = check_model_data(g, ds, {"loss": "cross_entropy"})
    assert "3 classes" in check.errors[0].message and "fc2's out_features to 3" in \
        check.errors[0].message
    fix = check.fixes[0]
    g.set_params(fix.node_id, {fix.param: fix.value})
    assert check_model_data(g, ds, {"loss": "cross_entropy"}).ok


def test_loss_and_task_and_token_checks():
    lin = load_dataset({"name": "linear", "n_samples": 50})
    g = chain(("Linear", {"out_features": 1}), shape=(1,))
    assert "set training.loss to mse" in check_model_data(g, lin, {}).errors[0].message
    assert check_model_data(g, lin, {"loss": "mse"}).ok
    ds = load_dataset({"name": "digits"})
    g = chain(("Embedding", {"num_embeddings": 5, "embedding_dim": 4}), shape=(1, 8, 8),
              dtype="int64")
    assert "float32 values" in check_model_data(g, ds, {}).errors[0].message


def test_an_activation_that_the_loss_already_applies_is_a_warning():
    """Softmax before cross_entropy, or NLL without LogSoftmax, passes the shape check and trains
    badly (NLL on probabilities goes below zero): warned about, not refused."""
    ds = load_dataset({"kind": "synthetic", "name": "moons", "n_samples": 20})
    g = chain(("Linear", {"out_features": 2}), ("Softmax", {}), shape=(2,))
    sm = g.node_by_name("softmax1").id
    for loss, words in (("cross_entropy", "applies softmax itself"),
                        ("nll", "expects log-probabilities")):
        check = check_model_data(g, ds, {"loss": loss})
        assert check.ok
        warned = [p for p in check.problems if p.code == "activation"]
        assert len(warned) == 1 and words in warned[0].message
        assert warned[0].node_ids == (sm,)
    g = chain(("Linear", {"out_features": 2}), ("LogSoftmax", {}), shape=(2,))
    assert check_model_data(g, ds, {"loss": "nll"}).problems == []
    g = chain(("Linear", {"out_features": 2}), shape=(2,))
    assert check_model_data(g, ds, {"loss": "cross_entropy"}).problems == []


def test_damaged_torchvision_files_are_named_not_a_traceback(tmp_path, monkeypatch):
    """Unpacked MNIST-format files that are garbage made torchvision fail an assert (a traceback)."""
    monkeypatch.setenv("DESIGNER_DATA_DIR", str(tmp_path))
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / stem).write_bytes(b"garbage\n")
    with pytest.raises(DatasetError, match="FashionMNIST: the files in .* are damaged"):
        load_dataset({"kind": "torchvision", "name": "FashionMNIST", "download": False})


def test_a_damaged_download_is_called_damaged_not_missing(tmp_path, monkeypatch):
    """A half-downloaded .gz that fails its checksum was reported as 'not in the dataset folder'."""
    import gzip

    monkeypatch.setenv("DESIGNER_DATA_DIR", str(tmp_path))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"garbage"))
    with pytest.raises(DatasetError, match=r"MNIST: train-images-idx3-ubyte.gz in .* is damaged "
                       r"\(checksum mismatch\) and could not be downloaded again \(downloads are"):
        load_dataset({"kind": "torchvision", "name": "MNIST", "download": False})
