"""The data part of every exported train.py: the head (imports, ``CONFIG``, the ``Data`` class,
the split) and one loader per dataset kind, each mirroring :mod:`designer.engine.train.data` so the
split, preprocessing and normalisation are the designer's (tests/engine/test_export_train.py
compares the tensors). :func:`data_part` picks them for :class:`.script.TrainScript`."""

from __future__ import annotations

import inspect

from ..data.builtin import synthetic_points

# ---------------------------------------------------------------------------------------------
# The data part: the head (imports, CONFIG, the Data class, the split) and one loader per kind
# ---------------------------------------------------------------------------------------------

TRAIN_HEAD = '''
import argparse
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from model import __CLASS__
from torch import nn
from torch.nn.parallel import DistributedDataParallel

CONFIG = __CONFIG__


# ---------------------------------------------------------------------------------------------
# Data: the same split, preprocessing and normalisation as the designer
# ---------------------------------------------------------------------------------------------


@dataclass
class Data:
    """Training and validation tensors in memory; batches are taken by index.

    Images from byte sources stay uint8 and are scaled and normalised per batch."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str  # classification, regression or reconstruction
    classes: list | None = None
    scale: float = 1.0
    mean: list | None = None
    std: list | None = None
    vocab: list | None = None

    def to(self, device):
        for name in ("x_train", "y_train", "x_val", "y_val"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def prepare(self, x):
        """Stored values -> model input (uint8 images are scaled and normalised here)."""
        if x.dtype != torch.uint8:
            return x
        x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        if self.mean is not None:
            view = (1, len(self.mean)) + (1,) * (x.dim() - 2)
            mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(view)
            std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(view)
            x = (x - mean) * (1.0 / std)
        return x

    def batch(self, split, idx, augment=False, generator=None):
        x = (self.x_train if split == "train" else self.x_val)[idx]
        x = self.prepare(x)
        if self.task == "reconstruction":
            y = x
        else:
            y = (self.y_train if split == "train" else self.y_val)[idx]
        if augment and x.dim() == 4:
            x = augment_images(x, CONFIG["dataset"]["augment_crop_padding"],
                               CONFIG["dataset"]["augment_hflip"], generator)
        return x, y


def split_indices(n, val_fraction, seed):
    """A seeded random split of range(n) into training and validation indices."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]
'''

IMAGES = '''

def channel_stats(x, scale=1.0):
    """Per-channel mean and std of images (N, C, ...) after scale, computed in float64."""
    n, c = x.shape[0], x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, n, 4096):
        chunk = x[start : start + 4096].to(torch.float64) * scale
        flat = chunk.transpose(0, 1).reshape(c, -1)
        total += flat.sum(1)
        total_sq += (flat * flat).sum(1)
        count += flat.shape[1]
    mean = total / max(count, 1)
    std = (total_sq / max(count, 1) - mean * mean).clamp_min(0).sqrt()
    std[std < 1e-8] = 1.0
    return [float(v) for v in mean], [float(v) for v in std]


def image_data(x, y, classes, scale):
    """Split images (N, C, H, W) and set their normalisation: standardize uses per-channel
    statistics of the training split; minus_one_one maps [0, 1] to [-1, 1] (mean = std = 0.5)."""
    cfg = CONFIG["dataset"]
    train, val = split_indices(x.shape[0], cfg["val_fraction"], cfg["split_seed"])
    data = Data(x[train], y[train], x[val], y[val], "classification", classes, scale)
    if cfg["normalize"] and cfg["normalization"] == "minus_one_one":
        # transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) after ToTensor
        data.mean, data.std = [0.5] * x.shape[1], [0.5] * x.shape[1]
    elif cfg["normalize"]:
        data.mean, data.std = channel_stats(data.x_train, scale)
    if x.dtype != torch.uint8:  # small float sets are preprocessed once
        for name in ("x_train", "x_val"):
            v = getattr(data, name).float() * scale
            if data.mean is not None:
                view = (1, len(data.mean)) + (1,) * (v.dim() - 2)
                v = (v - torch.tensor(data.mean).view(view)) / torch.tensor(data.std).view(view)
            setattr(data, name, v.contiguous())
    if cfg["task"] == "reconstruction":  # an autoencoder learns to give back its input
        data.task, data.classes = "reconstruction", None
        data.y_train, data.y_val = data.x_train, data.x_val
    return data


def augment_images(x, crop_padding, hflip, generator=None):
    """Random crop after zero padding and random left-right flip of a batch (N, C, H, W)."""
    n, c, h, w = x.shape
    if crop_padding:
        p = crop_padding
        padded = nn.functional.pad(x, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(n, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[bi, ci, rows, cols]
    if hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x

'''

NO_AUGMENT = '''

def augment_images(x, crop_padding, hflip, generator=None):
    return x  # augmentation applies to images only
'''

LOAD_DIGITS = '''

def load_data(path):
    """scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, values 0..16 -> [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.int64)
    return image_data(x, y, [str(i) for i in range(10)], scale=1 / 16)
'''

LOAD_SYNTHETIC = """

""" + inspect.getsource(synthetic_points) + '''

def load_data(path):
    """Seeded synthetic data: moons or spirals (classification), linear or sine (regression)."""
    cfg = CONFIG["dataset"]
    n = cfg["n_samples"]
    line = {k: cfg[k] for k in ("linear_w", "linear_b") if k in cfg}  # the linear set's w, b
    x, y, classes, task = synthetic_points(cfg["name"], n, cfg["noise"], cfg["seed"], **line)
    train, val = split_indices(n, cfg["val_fraction"], cfg["split_seed"])
    return Data(x[train], y[train], x[val], y[val], task, classes)
'''

LOAD_TORCHVISION = '''

def image_transforms(x):
    """Grayscale and resize on uint8 images (N, C, H, W), as the designer does."""
    cfg = CONFIG["dataset"]
    if cfg["grayscale"] and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = torch.cat(
            [
                (x[i : i + 8192].float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
                for i in range(0, x.shape[0], 8192)
            ]
        )
    if cfg["resize"] and list(x.shape[2:]) != list(cfg["resize"]):
        size = tuple(cfg["resize"])
        x = torch.cat(
            [
                nn.functional.interpolate(
                    x[i : i + 4096].float(), size=size, mode="bilinear", antialias=True, align_corners=False
                )
                .round()
                .clamp(0, 255)
                .to(torch.uint8)
                for i in range(0, x.shape[0], 4096)
            ]
        )
    return x


def load_data(root):
    """The torchvision training set (downloaded into ROOT on first use); validation is split off."""
    import torchvision.datasets

    cfg = CONFIG["dataset"]
    name = cfg["name"]
    cls = getattr(torchvision.datasets, name)
    if name == "SVHN":
        ds = cls(root, split="train", download=cfg["download"])
        x = torch.from_numpy(np.ascontiguousarray(ds.data))
        y = torch.from_numpy(np.asarray(ds.labels, dtype=np.int64))
        classes = [str(i) for i in range(10)]
    else:
        ds = cls(root, train=True, download=cfg["download"])
        if isinstance(ds.data, np.ndarray):  # CIFAR: (N, H, W, C)
            x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        else:  # MNIST family: (N, H, W)
            x = ds.data.unsqueeze(1).contiguous()
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        classes = [str(c) for c in ds.classes]
    return image_data(image_transforms(x), y, classes, scale=1 / 255)
'''

LOAD_IMAGE_FOLDER = '''

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_data(path):
    """One subfolder per class; images converted to grey or RGB and resized as configured."""
    from pathlib import Path

    from PIL import Image

    cfg = CONFIG["dataset"]
    path = Path(path)
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = []
    for k, name in enumerate(classes):
        found = sorted(p for p in (path / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        files.extend((p, k) for p in found)
    mode = "L" if cfg["grayscale"] else "RGB"
    size = tuple(cfg["resize"]) if cfg["resize"] else None
    arrays = []
    for p, _ in files:
        with Image.open(p) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(im, dtype=np.uint8))
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([k for _, k in files], dtype=torch.int64)
    return image_data(x, y, classes, scale=1 / 255)
'''

CSV_COMMON = '''

def read_csv(path):
    """Header and non-empty rows of a CSV file (comma, semicolon or tab separated)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(65536)
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\\t")
        except csv.Error:
            dialect = csv.excel
        rows = [r for r in csv.reader(f, dialect) if any(c.strip() for c in r)]
    return [h.strip() for h in rows[0]], rows[1:]


def number(cell):
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def labels_to_indices(values):
    """Class labels -> indices; classes sorted numerically when all are numbers."""
    distinct = set(values)
    nums = {v: number(v) for v in distinct}
    if all(n is not None for n in nums.values()):
        classes = sorted(distinct, key=lambda v: (nums[v], v))
    else:
        classes = sorted(distinct)
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[v] for v in values], dtype=torch.int64), classes
'''

LOAD_CSV = '''

def load_data(path):
    """Numeric feature columns and a target column; features standardised on the training split."""
    cfg = CONFIG["dataset"]
    header, rows = read_csv(path)
    target = cfg["target_column"] or header[-1]
    t_col = header.index(target)
    if cfg["feature_columns"]:
        f_cols = [header.index(c) for c in cfg["feature_columns"]]
    else:
        f_cols = [i for i in range(len(header)) if i != t_col]
    x = torch.tensor([[number(row[c]) for c in f_cols] for row in rows], dtype=torch.float32)
    labels = [row[t_col].strip() for row in rows]
    task = cfg["task"]
    if task == "auto":
        nums = [number(v) for v in labels]
        if any(v is None for v in nums):
            task = "classification"
        else:
            distinct = set(nums)
            few = all(float(v).is_integer() for v in distinct) and len(distinct) <= 20
            task = "classification" if few else "regression"
    classes = None
    if task == "classification":
        y, classes = labels_to_indices(labels)
    else:
        y = torch.tensor([number(v) for v in labels], dtype=torch.float32).unsqueeze(1)
    train, val = split_indices(len(rows), cfg["val_fraction"], cfg["split_seed"])
    data = Data(x[train], y[train], x[val], y[val], task, classes)
    if cfg["normalize"]:
        x64 = data.x_train.to(torch.float64)
        mean = x64.mean(0)
        std = x64.std(0, unbiased=False) if len(train) > 1 else torch.ones_like(mean)
        std[~torch.isfinite(std) | (std < 1e-12)] = 1.0
        data.mean, data.std = [float(v) for v in mean], [float(v) for v in std]
        m = torch.tensor(data.mean, dtype=torch.float32)
        s = torch.tensor(data.std, dtype=torch.float32)
        data.x_train = ((data.x_train - m) / s).contiguous()
        data.x_val = ((data.x_val - m) / s).contiguous()
    return data
'''

LOAD_CSV_TEXT = '''

TOKEN = re.compile(r"[^\\W_]+(?:'[^\\W_]+)*")
PAD, UNK = "<pad>", "<unk>"


def tokenize(text):
    """Lowercase words (letters and digits, inner apostrophes kept); punctuation is dropped."""
    return TOKEN.findall(text.lower())


def load_data(path):
    """Texts -> token ids (vocabulary from the training split, padded or cut), labels -> indices."""
    from collections import Counter

    cfg = CONFIG["dataset"]
    header, rows = read_csv(path)
    t_col, l_col = header.index(cfg["text_column"]), header.index(cfg["label_column"])
    tokens = [tokenize(row[t_col]) for row in rows]
    labels = [row[l_col].strip() for row in rows]
    task = "classification" if cfg["task"] == "auto" else cfg["task"]
    classes = None
    if task == "classification":
        y, classes = labels_to_indices(labels)
    else:
        y = torch.tensor([number(v) for v in labels], dtype=torch.float32).unsqueeze(1)
    train, val = split_indices(len(rows), cfg["val_fraction"], cfg["split_seed"])
    counts = Counter(t for i in train.tolist() for t in tokens[i])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = [PAD, UNK] + [t for t, _ in ranked[: max(cfg["vocab_size"] - 2, 0)]]
    index = {t: i for i, t in enumerate(vocab)}
    n = cfg["max_length"]
    ids = [[index.get(t, 1) for t in toks[:n]] for toks in tokens]
    ids = torch.tensor([row + [0] * (n - len(row)) for row in ids], dtype=torch.int64)
    return Data(ids[train], y[train], ids[val], y[val], task, classes, vocab=vocab)
'''

LOAD_TEXT = '''

WORD = re.compile(r"[^\\W_]+(?:'[^\\W_]+)*|[^\\w\\s]|_")
UNK = "<unk>"


def split_tokens(text):
    """Characters, or lower-case words and punctuation marks (dataset.tokenizer)."""
    if CONFIG["dataset"]["tokenizer"] == "char":
        return list(text)
    return WORD.findall(text.lower())


def decode(ids, vocab):
    """Token ids -> text: characters joined, or words joined with spaces."""
    tokens = [vocab[int(i)] for i in ids]
    return "".join(tokens) if CONFIG["dataset"]["tokenizer"] == "char" else " ".join(tokens)


def windows(ids, length):
    """Consecutive windows of length ids; each target is its window shifted by one token."""
    n = (len(ids) - 1) // length
    return ids[: n * length].view(n, length), ids[1 : n * length + 1].view(n, length)


def load_data(path):
    """A UTF-8 text -> windows of token ids and next-token targets. The last val_fraction of
    the text is validation; the vocabulary (sorted) holds every character of the file, or
    <unk> and the vocab_size - 1 most frequent words of the training part."""
    from collections import Counter

    cfg = CONFIG["dataset"]
    with open(path, encoding="utf-8-sig") as f:
        tokens = split_tokens(f.read())
    n_train = len(tokens) - int(round(len(tokens) * cfg["val_fraction"]))
    if cfg["tokenizer"] == "char":
        vocab = sorted(set(tokens))
    else:
        ranked = sorted(Counter(tokens[:n_train]).items(), key=lambda kv: (-kv[1], kv[0]))
        vocab = [UNK] + sorted(t for t, _ in ranked[: max(cfg["vocab_size"] - 1, 0)])
    index = {t: i for i, t in enumerate(vocab)}
    ids = torch.tensor([index.get(t, 0) for t in tokens], dtype=torch.int64)
    x_train, y_train = windows(ids[:n_train], cfg["seq_length"])
    x_val, y_val = windows(ids[n_train:], cfg["seq_length"])
    return Data(x_train, y_train, x_val, y_val, "language_model", vocab, vocab=vocab)
'''


#: The data loader of each dataset kind (after :data:`IMAGES` or :data:`NO_AUGMENT`).
LOADERS = {
    "digits": LOAD_DIGITS,
    "synthetic": LOAD_SYNTHETIC,
    "torchvision": LOAD_TORCHVISION,
    "image_folder": LOAD_IMAGE_FOLDER,
    "csv": CSV_COMMON + LOAD_CSV,
    "csv_text": CSV_COMMON + LOAD_CSV_TEXT,
    "text": LOAD_TEXT,
}
#: Kinds whose samples are images (their batches can be augmented).
IMAGE_KINDS = ("digits", "torchvision", "image_folder")
#: Kinds read from a file or folder: ``--data`` defaults to the project's path.
PATH_KINDS = ("image_folder", "csv", "csv_text", "text")
#: Kinds whose loader cuts text with regular expressions (``import re``).
TEXT_KINDS = ("csv_text", "text")
#: Kinds of images or vectors of numbers (what a generative recipe can learn).
NUMBER_KINDS = ("digits", "synthetic", "torchvision", "image_folder", "csv")

_DISTRIBUTED_IMPORTS = ("import torch.distributed as dist\n",
                        "from torch.nn.parallel import DistributedDataParallel\n")


def data_part(kind: str, distributed: bool = True) -> str:
    """The head and the loader of a dataset kind. ``distributed``: keep the torchrun imports.
    A text is split by position in its loader, so its head has no ``split_indices``."""
    head = TRAIN_HEAD
    if not distributed:
        for line in _DISTRIBUTED_IMPORTS:
            head = head.replace(line, "", 1)
    if kind == "text":
        head = head[:head.index("\n\ndef split_indices(")] + "\n"
    return head + (IMAGES if kind in IMAGE_KINDS else NO_AUGMENT) + LOADERS[kind]
