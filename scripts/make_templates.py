"""Generate the template projects in ``designer/templates/`` from the readable definitions below.

    .venv/bin/python scripts/make_templates.py            # rewrite every template and the sample CSV
    .venv/bin/python scripts/make_templates.py --check    # exit 1 if a committed file is out of date

Each template is written with the engine's own Graph/Project API, so a definition that the engine
would refuse fails here. Node ids are the layer names, and positions come from the engine's
wrapped layout (``designer.engine.model.layout.wrapped_positions``: left to right, a long network
wrapped into bands read like lines of text so that it fits a window at a readable zoom), so the
output is reproducible byte for byte. The sample text data
(``designer/templates/data/reviews.csv``) is generated from word lists with a fixed seed.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from designer.engine.document.project import Project, project_to_json
from designer.engine.model.graph import Graph
from designer.engine.model.layout import wrapped_positions
from designer.engine.model.shapes import analyze

TEMPLATES = ROOT / "designer" / "templates"
REVIEWS = TEMPLATES / "data" / "reviews.csv"

# Shared by the two text templates: the sample CSV and how it is tokenised.
TEXT_VOCAB = 1000
TEXT_LENGTH = 20
TEXT_DATASET = {
    "kind": "csv_text",
    "path": "data/reviews.csv",
    "text_column": "text",
    "label_column": "label",
    "task": "classification",
    "vocab_size": TEXT_VOCAB,
    "max_length": TEXT_LENGTH,
    "val_fraction": 0.2,
    "split_seed": 0,
}
REAL_CORPUS = (
    " To use a real corpus (for example the IMDB or Yelp reviews saved as CSV), point the dataset "
    "path at your file, set text_column and label_column to its columns, raise vocab_size (e.g. "
    "20000) and max_length (e.g. 256) and give the Embedding the same num_embeddings as vocab_size "
    "and the Input the shape [max_length]."
)


class Net:
    """A small builder: ``add`` connects a layer to the previous one unless told otherwise."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.last: str | None = None

    def add(self, type_: str, name: str, *inputs: str, **params: Any) -> str:
        self.graph.add_node(type_, name, params, id=name)
        sources = inputs if inputs else ((self.last,) if self.last else ())
        for port, src in enumerate(sources):
            self.graph.connect(src, name, port)
        self.last = name
        return name

    def chain(self, *layers: tuple) -> str:
        for layer in layers:
            type_, name, *rest = layer
            self.add(type_, name, **(rest[0] if rest else {}))
        return self.last


def layout(graph: Graph, band_starts: tuple[str, ...] = ()) -> None:
    """Place the layers with the canvas's spacing (room for the shape label on every edge),
    wrapping a long network into bands so that it reads at the zoom that fits the window;
    ``band_starts`` name layers that begin a band (the first layer of a block)."""
    for nid, pos in wrapped_positions(graph, band_starts=band_starts).items():
        graph.move(nid, pos)


# --------------------------------------------------------------------------------------------
# The templates
# --------------------------------------------------------------------------------------------

Template = dict[str, Any]
DEFINITIONS: list[Callable[[], Template]] = []


def template(fn: Callable[[], Template]) -> Callable[[], Template]:
    DEFINITIONS.append(fn)
    return fn


@template
def mlp_digits() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [1, 8, 8]}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 64}),
        ("ReLU", "relu1"),
        ("Linear", "fc2", {"out_features": 10}),
        ("Output", "logits"),
    )
    return {
        "id": "mlp-digits",
        "order": 0,
        "name": "MLP on digits (starter)",
        "net": net,
        "teaches": "A multilayer perceptron: flatten an image, one hidden layer with ReLU, ten class "
        "scores trained with cross-entropy.",
        "expected": "Over 95% validation accuracy after a few seconds of training on a laptop CPU.",
        "description": "The starter: an 8x8 handwritten digit is flattened to 64 numbers, passed "
        "through a hidden layer of 64 ReLU units and turned into 10 class scores. Trains offline on "
        "scikit-learn's digits (1,797 images, no download) with Adam and cross-entropy and reaches "
        "over 95% validation accuracy in seconds on a CPU. Try widening fc1, adding a layer, or "
        "removing the ReLU to see why non-linearity matters.",
        "dataset": {
            "kind": "digits",
            "task": "classification",
            "normalize": True,
            "val_fraction": 0.2,
            "split_seed": 0,
        },
        "training": {
            "loss": "cross_entropy",
            "optimizer": "adam",
            "lr": 0.01,
            "epochs": 10,
            "batch_size": 32,
            "seed": 0,
        },
    }


@template
def linear_regression() -> Template:
    net = Net()
    net.chain(
        ("Input", "x_value", {"shape": [1]}),
        ("Linear", "line", {"out_features": 1}),
        ("Output", "y_value"),
    )
    return {
        "id": "linear-regression",
        "order": 1,
        "name": "Linear regression",
        "net": net,
        "teaches": "The smallest network there is: one weight and one bias fitted by gradient descent "
        "on the mean squared error.",
        "expected": "The layer learns w close to 2 and b close to 1: after training, select the "
        "line layer and open View > Inside to read its learned weight and bias under its formula.",
        "description": "Fits a straight line y = w x + b to noisy points generated from y = 2x + 1. A "
        "single Linear(1, 1) layer has exactly two parameters; SGD on the mean squared error moves "
        "them to w close to 2 and b close to 1 within a few epochs. Raise the noise or the learning "
        "rate to see training become unstable.",
        "dataset": {
            "kind": "synthetic",
            "name": "linear",
            "task": "regression",
            "n_samples": 1000,
            "noise": 0.1,
            "seed": 0,
            "val_fraction": 0.2,
            "split_seed": 0,
        },
        "training": {
            "loss": "mse",
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.0,
            "epochs": 20,
            "batch_size": 32,
            "seed": 0,
        },
    }


@template
def mlp_mnist() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [1, 28, 28]}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 128}),
        ("ReLU", "relu1"),
        ("Linear", "fc2", {"out_features": 10}),
        ("Output", "logits"),
    )
    return {
        "id": "mlp-mnist",
        "order": 2,
        "name": "MLP on MNIST",
        "net": net,
        "teaches": "The classic first network: 784 pixels -> 128 hidden ReLU units -> 10 digits.",
        "expected": "About 97-98% test accuracy after 5 epochs. 101,770 parameters.",
        "description": "Flatten -> Linear(784, 128) -> ReLU -> Linear(128, 10) on MNIST, trained with "
        "Adam and cross-entropy for 5 epochs: about 97-98% accuracy. 101,770 parameters, nearly all "
        "in the first layer; compare with the CNN templates, which do better with fewer weights per "
        "pixel. MNIST is downloaded on first use.",
        "dataset": {
            "kind": "torchvision",
            "name": "MNIST",
            "task": "classification",
            "normalize": True,
            "val_fraction": 0.1,
            "split_seed": 0,
            "download": True,
        },
        "training": {
            "loss": "cross_entropy",
            "optimizer": "adam",
            "lr": 0.001,
            "epochs": 5,
            "batch_size": 64,
            "seed": 0,
        },
    }


@template
def cnn_mnist() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [1, 28, 28]}),
        ("Conv2d", "conv1", {"out_channels": 20, "kernel_size": 5}),
        ("ReLU", "relu1"),
        ("MaxPool2d", "pool1", {"kernel_size": 2}),
        ("Conv2d", "conv2", {"out_channels": 50, "kernel_size": 5}),
        ("ReLU", "relu2"),
        ("MaxPool2d", "pool2", {"kernel_size": 2}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 500}),
        ("ReLU", "relu3"),
        ("Linear", "fc2", {"out_features": 10}),
        ("Output", "logits"),
    )
    return {
        "id": "cnn-mnist",
        "order": 3,
        "name": "CNN on MNIST",
        "net": net,
        "band_starts": ("conv2", "fc1"),  # a row per stage: conv, conv, classifier
        "teaches": "Convolutions and pooling: two Conv-ReLU-MaxPool stages find strokes and shapes, "
        "two fully connected layers classify them.",
        "expected": "About 99% test accuracy after 10 epochs. 431,080 parameters.",
        "description": "Conv2d(1, 20, 5) -> ReLU -> MaxPool(2) -> Conv2d(20, 50, 5) -> ReLU -> "
        "MaxPool(2) -> Flatten -> Linear(800, 500) -> ReLU -> Linear(500, 10), the classic MNIST "
        "CNN. The shapes shrink 28 -> 24 -> 12 -> 8 -> 4, so the flattened size is 50*4*4 = 800 "
        "(computed for you). SGD, learning rate 0.01, momentum 0.5, 10 epochs: about 99% accuracy. "
        "431,080 parameters. MNIST is downloaded on first use.",
        "dataset": {
            "kind": "torchvision",
            "name": "MNIST",
            "task": "classification",
            "normalize": True,
            "val_fraction": 0.1,
            "split_seed": 0,
            "download": True,
        },
        "training": {
            "loss": "cross_entropy",
            "optimizer": "sgd",
            "lr": 0.01,
            "momentum": 0.5,
            "epochs": 10,
            "batch_size": 64,
            "seed": 0,
        },
    }


@template
def lenet5() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [1, 32, 32]}),
        ("Conv2d", "conv1", {"out_channels": 6, "kernel_size": 5}),
        ("ReLU", "relu1"),
        ("MaxPool2d", "pool1", {"kernel_size": 2}),
        ("Conv2d", "conv2", {"out_channels": 16, "kernel_size": 5}),
        ("ReLU", "relu2"),
        ("MaxPool2d", "pool2", {"kernel_size": 2}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 120}),
        ("ReLU", "relu3"),
        ("Linear", "fc2", {"out_features": 84}),
        ("ReLU", "relu4"),
        ("Linear", "fc3", {"out_features": 10}),
        ("Output", "logits"),
    )
    return {
        "id": "lenet5",
        "order": 4,
        "name": "LeNet-5",
        "net": net,
        "band_starts": ("conv2", "fc1"),  # a row per stage: conv, conv, classifier
        "teaches": "LeCun's LeNet-5 (1998), the network that started convolutional vision, on 32x32 "
        "input as in the paper.",
        "expected": "About 99% test accuracy on MNIST after 10 epochs. 61,706 parameters.",
        "description": "Conv2d(1, 6, 5) -> ReLU -> MaxPool(2) -> Conv2d(6, 16, 5) -> ReLU -> "
        "MaxPool(2) -> Flatten -> Linear(400, 120) -> ReLU -> Linear(120, 84) -> ReLU -> "
        "Linear(84, 10), with ReLU and max pooling in place of the paper's tanh and subsampling. "
        "LeNet-5 expects 32x32 images, so MNIST's 28x28 digits are resized to 32x32. About 99% "
        "accuracy after 10 epochs with 61,706 parameters, 7 times fewer than the CNN on MNIST. "
        "MNIST is downloaded on first use.",
        "dataset": {
            "kind": "torchvision",
            "name": "MNIST",
            "task": "classification",
            "normalize": True,
            "resize": [32, 32],
            "val_fraction": 0.1,
            "split_seed": 0,
            "download": True,
        },
        "training": {
            "loss": "cross_entropy",
            "optimizer": "adam",
            "lr": 0.001,
            "epochs": 10,
            "batch_size": 64,
            "seed": 0,
        },
    }


@template
def cnn_cifar10() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [3, 32, 32]}),
        ("Conv2d", "conv1", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
        ("ReLU", "relu1"),
        ("MaxPool2d", "pool1", {"kernel_size": 2}),
        ("Conv2d", "conv2", {"out_channels": 64, "kernel_size": 3, "padding": 1}),
        ("ReLU", "relu2"),
        ("MaxPool2d", "pool2", {"kernel_size": 2}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 512}),
        ("ReLU", "relu3"),
        ("Linear", "fc2", {"out_features": 10}),
        ("Output", "logits"),
    )
    return {
        "id": "cnn-cifar10",
        "order": 5,
        "name": "CNN on CIFAR-10",
        "net": net,
        "band_starts": ("conv2", "fc1"),  # a row per stage: conv, conv, classifier
        "teaches": "A CNN for colour photos: padded 3x3 convolutions keep the size, pooling halves it, "
        "and a wide fully connected layer classifies ten kinds of object.",
        "expected": "About 80% test accuracy after 50 epochs is the known result. 2,122,186 "
        "parameters.",
        "description": "Conv2d(3, 32, 3, padding 1) -> ReLU -> MaxPool(2) -> Conv2d(32, 64, 3, "
        "padding 1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(4096, 512) -> ReLU -> Linear(512, "
        "10) on CIFAR-10 (planes, cars, birds, cats...), pixels mapped to [-1, 1] per channel "
        "((x - 0.5) / 0.5, as the PyTorch tutorial's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))). "
        "SGD, learning rate 0.001, momentum 0.9; about 80% test accuracy after 50 epochs is the known "
        "result (it overfits without augmentation: watch the validation curve). 2,122,186 "
        "parameters, 2.1 million of them in fc1. CIFAR-10 (170 MB) is downloaded on first use; a "
        "GPU helps.",
        "dataset": {
            "kind": "torchvision",
            "name": "CIFAR10",
            "task": "classification",
            "normalize": True,
            "normalization": "minus_one_one",
            "val_fraction": 0.1,
            "split_seed": 0,
            "download": True,
        },
        "training": {
            "loss": "cross_entropy",
            "optimizer": "sgd",
            "lr": 0.001,
            "momentum": 0.9,
            "epochs": 50,
            "batch_size": 32,
            "seed": 0,
        },
    }


@template
def lstm_sentiment() -> Template:
    net = Net()
    net.chain(
        ("Input", "tokens", {"shape": [TEXT_LENGTH], "dtype": "int64"}),
        ("Embedding", "embed", {"num_embeddings": TEXT_VOCAB, "embedding_dim": 64}),
        ("LSTM", "lstm", {"hidden_size": 128, "output": "last"}),
        ("Linear", "fc", {"out_features": 2}),
        ("Output", "logits"),
    )
    return {
        "id": "lstm-sentiment",
        "order": 6,
        "name": "LSTM sentiment classifier",
        "net": net,
        "teaches": "Text as token ids: an Embedding turns each word into a vector, an LSTM reads the "
        "sentence in order and its final hidden state is classified positive or negative.",
        "expected": "On the sample CSV the loss sits near 0.69 (chance) for about ten epochs, then "
        "drops: 95-100% validation accuracy after 20 epochs. On a real corpus such as IMDB, "
        "around 85%.",
        "description": "Embedding(1000, 64) -> LSTM(hidden 128, last time step) -> Linear(128, 2), "
        "trained on designer/templates/data/reviews.csv: 400 short review-like sentences written "
        'for this project, half positive and half negative. Many use negation and contrast ("I expected it '
        'to be dull, but it was gripping"), so no single word gives the answer away and word '
        "order matters. Each sentence becomes {length} token ids (padded at the end) from a "
        "vocabulary of up to 1,000 words. Expect a plateau: the loss stays near chance while the "
        "LSTM learns to carry the sentence past the padding, then falls quickly. {params} "
        "parameters." + REAL_CORPUS,
        "dataset": dict(TEXT_DATASET),
        "training": {
            "loss": "cross_entropy",
            "optimizer": "adam",
            "lr": 0.003,
            "epochs": 20,
            "batch_size": 32,
            "grad_clip": 1.0,
            "seed": 0,
        },
    }


@template
def transformer_text() -> Template:
    net = Net()
    net.chain(
        ("Input", "tokens", {"shape": [TEXT_LENGTH], "dtype": "int64"}),
        ("Embedding", "embed", {"num_embeddings": TEXT_VOCAB, "embedding_dim": 64}),
        (
            "TransformerEncoderLayer",
            "encoder",
            {"nhead": 4, "dim_feedforward": 128, "dropout": 0.1},
        ),
        ("Mean", "mean_over_time", {"dim": 1}),
        ("Linear", "fc", {"out_features": 2}),
        ("Output", "logits"),
    )
    return {
        "id": "transformer-text",
        "order": 8,
        "name": "Transformer text classifier",
        "net": net,
        "teaches": "Self-attention: every word looks at every other word (4 heads), a feed-forward "
        "block refines each position, and the mean over time pools the sentence into one vector.",
        "expected": "About 75-85% validation accuracy on the sample CSV after 20 epochs, close to a "
        "bag-of-words classifier and below the LSTM: without positions, word order is invisible.",
        "description": "Embedding(1000, 64) -> TransformerEncoderLayer(64, 4 heads, feed-forward 128) "
        "-> Mean over the time axis -> Linear(64, 2), trained on the same sample reviews as the "
        "LSTM template. This encoder has no positional encoding, so it sees which words occur and "
        'how they relate, not their order; compare it with the LSTM on sentences such as "not '
        'good". Padding positions take part in the mean, so keep max_length close to your '
        "sentence lengths. {params} parameters." + REAL_CORPUS,
        "dataset": dict(TEXT_DATASET),
        "training": {
            "loss": "cross_entropy",
            "optimizer": "adamw",
            "lr": 0.001,
            "weight_decay": 0.01,
            "epochs": 20,
            "batch_size": 32,
            "grad_clip": 1.0,
            "seed": 0,
        },
    }


@template
def autoencoder() -> Template:
    net = Net()
    net.chain(
        ("Input", "image", {"shape": [1, 8, 8]}),
        ("Flatten", "flatten"),
        ("Linear", "enc1", {"out_features": 32}),
        ("ReLU", "enc_relu"),
        ("Linear", "code", {"out_features": 8}),
        ("Linear", "dec1", {"out_features": 32}),
        ("ReLU", "dec_relu"),
        ("Linear", "dec2", {"out_features": 64}),
        ("Sigmoid", "to_unit"),
        ("Reshape", "to_image", {"shape": [1, 8, 8]}),
        ("Output", "reconstruction"),
    )
    return {
        "id": "autoencoder",
        "order": 9,
        "name": "Autoencoder on digits",
        "net": net,
        "teaches": "Unsupervised learning: squeeze an image through an 8-number bottleneck (the "
        "code) and rebuild it; the target is the input itself, the loss is the MSE between them.",
        "expected": "The validation MSE falls from about 0.07 after the first epoch to about 0.02 "
        "after 30; "
        "reconstructions are blurry but recognisable digits. {params} parameters.",
        "description": "Encoder Flatten -> Linear(64, 32) -> ReLU -> Linear(32, 8); decoder "
        "Linear(8, 32) -> ReLU -> Linear(32, 64) -> Sigmoid -> Reshape(1, 8, 8). Trained to "
        'reproduce its input (task "reconstruction", mean squared error) on the offline digits '
        "images, with pixel values in [0, 1] to match the Sigmoid. No labels are used: the "
        "8-number code is a compressed description of a digit. Try a code of 2 numbers, or a "
        "wider bottleneck to see the error drop. {params} parameters.",
        "dataset": {
            "kind": "digits",
            "task": "reconstruction",
            "normalize": False,
            "val_fraction": 0.2,
            "split_seed": 0,
        },
        "training": {
            "loss": "mse",
            "optimizer": "adam",
            "lr": 0.003,
            "epochs": 30,
            "batch_size": 32,
            "seed": 0,
        },
    }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def build(defn: Template) -> Project:
    net: Net = defn["net"]
    analysis = analyze(net.graph)
    if not analysis.ok:
        msgs = "; ".join(p.message for p in analysis.errors)
        raise SystemExit(f"template {defn['id']} does not check clean: {msgs}")
    layout(net.graph, defn.get("band_starts", ()))
    count = f"{analysis.total_params:,}"
    fill = {"{params}": count, "{length}": str(TEXT_LENGTH)}
    meta = {
        "id": defn["id"],
        "order": defn["order"],
        "teaches": defn["teaches"],
        "expected": _fill(defn["expected"], fill),
        "generated_by": "scripts/make_templates.py",
    }
    return Project(
        name=defn["name"],
        description=_fill(defn["description"], fill),
        networks={"model": net.graph},
        dataset=defn["dataset"],
        training=defn["training"],
        metadata=meta,
    )


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {}
    for fn in DEFINITIONS:
        defn = fn()
        files[TEMPLATES / f"{defn['id']}.dnn.json"] = project_to_json(build(defn))
    files[REVIEWS] = reviews_csv()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed files instead of writing them",
    )
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    return 1 if args.check and stale else 0


# --------------------------------------------------------------------------------------------
# Sample text data: short review-like sentences, balanced, written from word lists
# --------------------------------------------------------------------------------------------

# Each domain: the thing reviewed, its aspects, and closing remarks (positive, negative).
DOMAINS = {
    "film": (
        "film",
        [
            "the acting",
            "the plot",
            "the soundtrack",
            "the ending",
            "the dialogue",
            "the pacing",
            "the lead actor",
            "the script",
            "the camera work",
        ],
        ["I would watch it again", "worth the ticket", "I left the cinema smiling"],
        ["I nearly walked out", "not worth the ticket", "I would not watch it again"],
    ),
    "restaurant": (
        "restaurant",
        [
            "the food",
            "the service",
            "the pasta",
            "the staff",
            "the dessert",
            "the soup",
            "the wine list",
            "the atmosphere",
        ],
        ["we will be back", "worth every penny", "I would book again"],
        ["we will not be back", "not worth the price", "I would not book again"],
    ),
    "phone": (
        "phone",
        [
            "the battery",
            "the screen",
            "the camera",
            "the speaker",
            "the software",
            "the build quality",
            "the charger",
        ],
        ["I would buy it again", "worth the money", "I use it every day"],
        ["I sent it back", "not worth the money", "I would not buy it again"],
    ),
    "hotel": (
        "hotel",
        [
            "the room",
            "the bed",
            "the breakfast",
            "the location",
            "the shower",
            "the reception staff",
            "the view",
        ],
        ["I would stay there again", "worth the price", "we felt at home"],
        ["I would not stay there again", "not worth the price", "we left a day early"],
    ),
    "book": (
        "book",
        [
            "the story",
            "the characters",
            "the writing",
            "the ending",
            ("the first chapter"),
            "the translation",
            "the main character",
        ],
        ["I read it in one sitting", "worth reading", "I will read it again"],
        ["I gave up halfway", "not worth reading", "I will not read the sequel"],
    ),
    "game": (
        "game",
        [
            "the graphics",
            "the controls",
            "the story",
            "the music",
            "the levels",
            "the multiplayer",
            "the puzzles",
        ],
        ["I played it all weekend", "worth the money", "I keep coming back to it"],
        ["I uninstalled it", "not worth the money", "I will not play it again"],
    ),
    "headphones": (
        "pair of headphones",
        ["the sound", "the bass", "the fit", "the battery", "the noise cancelling", "the case"],
        ["I wear them every day", "worth the money", "I would buy them again"],
        ["I returned them", "not worth the money", "I would not buy them again"],
    ),
}
GOOD = [
    "great",
    "wonderful",
    "excellent",
    "lovely",
    "superb",
    "delightful",
    "fantastic",
    "brilliant",
    "charming",
    "impressive",
    "solid",
    "pleasant",
    "gripping",
    "outstanding",
]
BAD = [
    "awful",
    "dull",
    "terrible",
    "disappointing",
    "bland",
    "poor",
    "clumsy",
    "tedious",
    "mediocre",
    "weak",
    "boring",
    "cheap",
    "annoying",
    "flat",
]
MILD_BAD = ["a little slow", "a bit plain", "slightly noisy", "not perfect", "a bit short"]
MILD_GOOD = ["fine", "decent", "nice enough", "okay"]
VERY = ["", "", "really ", "very ", "quite ", "truly ", "rather "]


def _positive(r: random.Random, d: str) -> str:
    thing, aspects, good_end, _ = DOMAINS[d]
    a, b = r.sample(aspects, 2)
    g, g2 = r.sample(GOOD, 2)
    v = r.choice(VERY)
    patterns = [
        lambda: f"{a} was {v}{g} and {b} was {g2}",
        lambda: f"I expected {a} to be {r.choice(BAD)}, but it was {v}{g}",
        lambda: f"{a} was not {r.choice(BAD)} at all, in fact it was {g}",
        lambda: f"{a} was {r.choice(MILD_BAD)}, but {b} was {v}{g} and {r.choice(good_end)}",
        lambda: f"what a {g} {thing}, {r.choice(good_end)}",
        lambda: f"I was worried about {a}, but it turned out {g}",
        lambda: f"not one {r.choice(BAD)} moment, {a} was {g} from start to finish",
        lambda: f"people said {a} was {r.choice(BAD)}, they were wrong, it was {g}",
        lambda: f"{a} could not have been better",
        lambda: f"nothing {r.choice(BAD)} to say about {a}, {r.choice(good_end)}",
        lambda: f"I loved {a} and {b} was {g2}",
        lambda: f"{a} was {v}{g}, {r.choice(good_end)}",
    ]
    return r.choice(patterns)()


def _negative(r: random.Random, d: str) -> str:
    thing, aspects, _, bad_end = DOMAINS[d]
    a, b = r.sample(aspects, 2)
    w, w2 = r.sample(BAD, 2)
    v = r.choice(VERY)
    patterns = [
        lambda: f"{a} was {v}{w} and {b} was {w2}",
        lambda: f"I expected {a} to be {r.choice(GOOD)}, but it was {v}{w}",
        lambda: f"{a} was not {r.choice(GOOD)} at all, in fact it was {w}",
        lambda: f"{a} was {r.choice(MILD_GOOD)}, but {b} was {v}{w} and {r.choice(bad_end)}",
        lambda: f"what a {w} {thing}, {r.choice(bad_end)}",
        lambda: f"I was hoping {a} would be {r.choice(GOOD)}, but it turned out {w}",
        lambda: f"not one {r.choice(GOOD)} moment, {a} was {w} from start to finish",
        lambda: f"people said {a} was {r.choice(GOOD)}, they were wrong, it was {w}",
        lambda: f"{a} could not have been worse",
        lambda: f"nothing {r.choice(GOOD)} to say about {a}, {r.choice(bad_end)}",
        lambda: f"I hated {a} and {b} was {w2}",
        lambda: f"{a} was {v}{w}, {r.choice(bad_end)}",
    ]
    return r.choice(patterns)()


def _sentence(text: str, r: random.Random) -> str:
    text = text[0].upper() + text[1:]
    return text + r.choice([".", ".", ".", "!"])


def reviews_csv(per_class: int = 200, seed: int = 7) -> str:
    """``text,label`` rows: ``per_class`` positive and as many negative sentences, shuffled."""
    r = random.Random(seed)
    domains = sorted(DOMAINS)
    rows: list[tuple[str, str]] = []
    for label, make in (("positive", _positive), ("negative", _negative)):
        seen: set[str] = set()
        tries = 0
        while len(seen) < per_class:
            tries += 1
            if tries > per_class * 100:
                raise SystemExit("could not write enough distinct sentences")
            text = _sentence(make(r, r.choice(domains)), r)
            if text.lower() not in seen:
                seen.add(text.lower())
                rows.append((text, label))
    r.shuffle(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return buf.getvalue()


if __name__ == "__main__":
    sys.exit(main())
