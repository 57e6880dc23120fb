"""One train.py skeleton for every recipe, and the pieces the recipes' scripts share.

A recipe's exported ``train.py`` is written by :meth:`TrainScript.source`, the one skeleton: the
settings are validated, the data part of the project's dataset kind is put first (each loader
mirrors :mod:`designer.engine.data` so the split, preprocessing and normalisation are the same;
tests/engine/test_export_train.py compares the tensors), then the recipe's own loop (its
``train()``, ``evaluate()`` and ``main()``, built from the shared pieces below: the device choice,
the argparse set-up, torchrun/DDP, the scheduler, the checkpoints); the project's searched values
become flags, and the settings enter as one ``CONFIG`` literal written by ``literal``. Nothing
else from the project is pasted in. A recipe subclasses :class:`TrainScript` and fills its hooks
(its loop, help text, markers); see :mod:`.supervised.script` for the fullest one.

This module imports :mod:`designer.engine.codegen` and so torch: a recipe imports it when it
writes a script, never when it is only declared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..codegen import (
    CodegenError,
    comment_text,
    example_input,
    file_header,
    format_source,
    literal,
    written_models,
)
from ..config import ConfigError, setting, validate_dataset, validate_training

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

LOAD_SYNTHETIC = '''

def load_data(path):
    """Seeded synthetic data: moons or spirals (classification), linear or sine (regression)."""
    cfg = CONFIG["dataset"]
    name, n, noise, seed = cfg["name"], cfg["n_samples"], cfg["noise"], cfg["seed"]
    rng = np.random.default_rng(seed)
    classes = None
    if name == "moons":
        from sklearn.datasets import make_moons

        xs, ys = make_moons(n_samples=n, noise=noise, random_state=seed)
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.int64)
        classes, task = ["0", "1"], "classification"
    elif name == "spirals":
        arms = 3
        per = [n // arms + (1 if i < n % arms else 0) for i in range(arms)]
        pts, labels = [], []
        for k in range(arms):
            r = np.linspace(0.0, 1.0, per[k])
            t = np.linspace(k * 4.0, (k + 1) * 4.0, per[k]) + rng.normal(0, 1, per[k]) * noise
            pts.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
            labels.append(np.full(per[k], k))
        x = torch.tensor(np.concatenate(pts), dtype=torch.float32)
        y = torch.tensor(np.concatenate(labels), dtype=torch.int64)
        classes, task = [f"arm {k}" for k in range(arms)], "classification"
    elif name == "linear":
        xs = rng.uniform(-1.0, 1.0, (n, 1))
        ys = cfg["linear_w"] * xs + cfg["linear_b"] + rng.normal(0.0, 1.0, (n, 1)) * noise
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
        task = "regression"
    else:  # sine
        xs = rng.uniform(-math.pi, math.pi, (n, 1))
        ys = np.sin(xs) + rng.normal(0.0, 1.0, (n, 1)) * noise
        x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
        task = "regression"
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


# ---------------------------------------------------------------------------------------------
# The loop's shared pieces
# ---------------------------------------------------------------------------------------------

# The optimizer of every exported train.py (supervised and GAN alike), as the designer's
# training.make_optimizer builds it: the same arguments give the same first epoch.
MAKE_OPTIMIZER = '''
def make_optimizer(cfg, params, lr=None, betas=None):
    """The configured optimizer at lr (default: cfg["lr"]); Adam and AdamW with betas (default:
    torch's (0.9, 0.999); the GAN passes (beta1, 0.999))."""
    params = [p for p in params if p.requires_grad]
    lr = cfg["lr"] if lr is None else lr
    betas = (0.9, 0.999) if betas is None else betas
    wd, name = cfg["weight_decay"], cfg["optimizer"]
    if name == "sgd":
        nesterov = cfg["nesterov"] and cfg["momentum"] > 0
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=nesterov, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
'''


MAKE_SCHEDULER = """
def make_scheduler(cfg, optimizer):
    if cfg["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg["step_size"], cfg["gamma"])
    if cfg["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["gamma"], patience=2)
    return None
"""

SHARD = '''
def shard(n, rank, world, generator):
    """This process's share of a shuffled epoch: the same permutation on every process, padded
    (as DistributedSampler does) so that every process runs the same number of batches."""
    perm = torch.randperm(n, generator=generator)
    if world > 1:
        perm = torch.cat([perm, perm[: (-n) % world]])[rank::world]
    return perm
'''

PICK_DEVICE = """
def pick_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    return torch.device(name)
"""

#: main()'s lines after the flags, under torchrun: this process's rank and device.
DISTRIBUTED_SETUP = """
    # Under torchrun every process gets RANK, LOCAL_RANK and WORLD_SIZE.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        local_rank = int(os.environ["LOCAL_RANK"])
        use_cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
        dist.init_process_group("nccl" if use_cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
    else:
        rank, world, device = 0, 1, pick_device(args.device)
"""

#: After ``model`` is built: DistributedDataParallel around it, its optimizer and scheduler.
DDP_OPTIMIZER = """    torch.manual_seed(args.seed)
    plain = model
    if distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg["mixed_precision"] and device.type == "cuda")
"""

#: After an epoch's ``monitored`` loss: the scheduler's step and whether the epoch is the best.
STEP_AND_BEST = """        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        improved = best is None or monitored < best
        best, since_best = (monitored, 0) if improved else (best, since_best + 1)
"""

MAIN_CALL = """

if __name__ == "__main__":
    main()
"""


def checkpoints_and_end(*extra: str) -> str:
    """The end of a one-network script's epoch (rank 0 writes last.pt and, when the epoch is
    the best, best.pt; early stopping) and of main() (torchrun's processes leave together).
    ``extra``: more lines of the checkpoint dict (``'"vocab": data.vocab,'``)."""
    keys = "".join(f"                {line}\n" for line in extra)
    return ("""            checkpoint = {
                "model": plain.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "config": CONFIG,
""" + keys + """            }
            torch.save(checkpoint, os.path.join(args.out, "last.pt"))
            if improved:
                torch.save(checkpoint, os.path.join(args.out, "best.pt"))
        if args.dry_run or (cfg["early_stopping"] and since_best >= cfg["early_stopping"]):
            break
    if distributed:
        dist.barrier()  # rank 0 may still be writing samples or checkpoints: leave together
        dist.destroy_process_group()
    return plain
""" + MAIN_CALL)


def argument(flag: str, help: str, type: str | None = None, default: str | None = None,
             action: str | None = None) -> str:
    """One ``parser.add_argument`` line of main(); ``default`` is code (``'cfg["lr"]'``)."""
    parts = [f'"{flag}"']
    if type is not None:
        parts.append(f"type={type}")
    if default is not None:
        parts.append(f"default={default}")
    if action is not None:
        parts.append(f'action="{action}"')
    parts.append(f'help="{help}"')
    return f"    parser.add_argument({', '.join(parts)})\n"


def rate(flag: str, setting: str, help: str) -> tuple[str, str]:
    """A float flag that sets a training setting (``--lr`` sets ``lr``): its argument line and
    its ``cfg.update`` item."""
    return (argument(flag, help, "float", f'cfg["{setting}"]'),
            f"{setting}=args.{flag[2:].replace('-', '_')}")


def main_head(*, samples: str, out: str, seed: str, rates: Sequence[tuple[str, str]] = (),
              more: Sequence[str] = (), data: str = "data") -> str:
    """main()'s beginning, the same in every script: the flags (epochs, the recipe's learning
    rates (default: --lr), batch size, device, data, out, seed, ``more``, log interval, dry
    run), then the settings updated from them. ``samples``: the help of --batch-size; ``data``:
    what an epoch passes over."""
    rates = rates or (rate("--lr", "lr", "learning rate"),)
    return ('def main(argv=None):\n    cfg = CONFIG["training"]\n'
            "    parser = argparse.ArgumentParser(description=__DESCRIPTION__)\n"
            + argument("--epochs", f"passes over the training {data}", "int", 'cfg["epochs"]')
            + "".join(line for line, _ in rates)
            + argument("--batch-size", samples, "int", 'cfg["batch_size"]')
            + argument("--device", "auto, cpu, cuda or mps", default='cfg["device"]')
            + DATA_ARGUMENT
            + argument("--out", out, default='"checkpoints"')
            + argument("--seed", seed, "int", 'cfg["seed"]')
            + "".join(more)
            + argument("--log-interval", "batches between log lines", "int", "10")
            + argument("--dry-run", "one batch of each phase, to check the set-up",
                       action="store_true")
            + "    args = parser.parse_args(argv)\n"
            + f"    cfg.update(epochs=args.epochs, {', '.join(u for _, u in rates)}, "
            "batch_size=args.batch_size, seed=args.seed)\n")


DATA_ARGUMENT = '    parser.add_argument("--data", default=__DATA_DEFAULT__, help=__DATA_HELP__)\n'

BUILD_MODEL = '''

def build_model(cls, kwargs, *example):
    """The model with the searched arguments, checked on an example batch before training: a
    value it cannot be built with is refused here, naming the argument."""
    try:
        model = cls(**kwargs)
        model.eval()
        with torch.no_grad():
            model(*example)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        defaults = inspect.signature(cls).parameters
        changed = [f"--{k.replace('_', '-')} {v}" for k, v in kwargs.items() if v != defaults[k].default]
        raise SystemExit(f"{cls.__name__} cannot be built with {' '.join(changed) or 'its defaults'}: {exc}") from None
    return model.train()
'''

YES_NO = '''

def yes_no(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
'''


def with_search_arguments(body: str, project, builds: dict[str, str]) -> str:
    """A training script (before its markers are replaced) that also accepts the project's
    searched values (:func:`search_arguments`): one flag per searched training setting it lacks,
    applied to ``cfg`` right after the flags are read, and one per argument of a model's class,
    passed where the model is built. ``builds`` maps each ``__MARKER__()`` that builds a model to
    its network. Without a search section the script is unchanged."""
    writer, args = written_models(project)
    if not args:
        return body
    have = set(re.findall(r'default=cfg\["(\w+)"\]', body)) | {"device"}
    parse = "    args = parser.parse_args(argv)\n"
    update = re.search(r"\n    cfg\.update\([^\n]*\)\n", body)
    if body.count(parse) != 1 or update is None:  # pragma: no cover - a template changed
        raise CodegenError("internal: the training script has no single parse_args/cfg.update")
    flags, settings, model_args = [], [], {}
    for a in args:
        if a.setting is not None and a.setting in have:
            continue
        if a.network is not None and a.network not in builds.values():
            continue
        kind = {"int": "type=int, ", "float": "type=float, ", "bool": "type=yes_no, "}.get(
            a.type, "")
        choices = f"choices={literal(list(a.choices))}, " if a.choices else ""
        default = literal(a.default)
        if a.setting is not None:
            what = comment_text(a.setting.replace("_", " "))
            settings.append(f"{a.name}=args.{a.name}")
        else:
            what = comment_text(a.label.split(".", 1)[1])
            model_args.setdefault(a.network, []).append(a.name)
        help_text = literal(f"{what}, searched by the project's sweep".replace("%", "%%"))
        flags.append(f'    parser.add_argument("{a.flag}", {kind}{choices}default={default}, '
                     f"help={help_text})\n")
    if not flags:
        return body
    body = body.replace(parse, "".join(flags) + parse)
    end = body.index("\n", body.index("    cfg.update(", body.index(parse))) + 1
    added = ""
    if settings:
        added += f"    cfg.update({', '.join(settings)})\n"
    for marker, net in builds.items():
        names = model_args.get(net)
        if not names:
            continue
        var = "model_args" if len(builds) == 1 else f"{net}_args"
        added += f"    {var} = {{{', '.join(f'{literal(n)}: args.{n}' for n in names)}}}\n"
        code = writer.model_code[net]
        example = ", ".join(example_input(s, d).replace("torch.randn(1, ", "torch.zeros(2, ")
                            .replace("torch.zeros(1, ", "torch.zeros(2, ")
                            for s, d in zip(code.input_shapes, code.input_dtypes))
        if body.count(marker) != 1:  # pragma: no cover - a template changed
            raise CodegenError(f"internal: the training script builds {marker} not once")
        body = body.replace(marker, f"build_model({marker[:-2]}, {var}, {example})")
    if model_args:
        keys = [f"{literal(n)}: args.{n}" for names in model_args.values() for n in names]
        added += f'    CONFIG["model_args"] = {{{", ".join(keys)}}}  # load() in model.py reads it\n'
    body = body[:end] + added + body[end:]
    helpers = (BUILD_MODEL if model_args else "") + (
        YES_NO if "type=yes_no" in "".join(flags) else "")
    if helpers:
        at = body.index("\ndef main(")
        body = body[:at] + helpers.rstrip("\n") + "\n\n" + body[at:]
        if model_args and "import inspect\n" not in body:
            body = body.replace("import argparse\n", "import argparse\nimport inspect\n", 1)
    return body


def without_data_argument(body: str) -> str:
    """The training script for a built-in dataset (digits, synthetic): no ``--data`` flag, and
    ``load_data()`` takes no path."""
    for old, new in ((DATA_ARGUMENT, ""), ("load_data(args.data)", "load_data()"),
                     ("def load_data(path):", "def load_data():")):
        if body.count(old) != 1:  # pragma: no cover - a template changed; fail loudly
            raise CodegenError(f"internal: the training script has no single {old.strip()!r}")
        body = body.replace(old, new)
    return body


def applying(section: str, values: dict[str, Any], project=None) -> dict[str, Any]:
    """The settings that matter for this project (no SGD momentum for Adam, no CSV columns for
    digits); the training script reads no others. A setting that matters under another value of
    a searched setting is kept too (a search over adam and sgd needs sgd's momentum when train.py
    is run with ``--optimizer sgd``)."""

    searched = searched_settings(project) if project is not None else set()
    return {k: v for k, v in values.items()
            if setting(section, k).applies_to(values)
            or any(key in searched for key, _ in setting(section, k).applies)}


def searched_settings(project) -> set[str]:
    dims = (getattr(project, "search", None) or {}).get("dimensions") or []
    return {d["target"]["setting"] for d in dims if isinstance(d, dict)
            and isinstance(d.get("target"), dict) and isinstance(d["target"].get("setting"), str)}


# ---------------------------------------------------------------------------------------------
# The skeleton
# ---------------------------------------------------------------------------------------------


class TrainScript:
    """One recipe's exported train.py: the hooks that :meth:`source`, the one skeleton, calls.

    A recipe subclasses it, sets the class attributes and overrides :meth:`loop` and
    :meth:`markers` (and what else differs), and returns ``MyScript(project, project_dir)
    .source(format)`` from its :meth:`~designer.engine.recipes.RecipeSpec.train_source`.
    """

    #: The header's first line: "<what> for the designer project: <name>".
    what = "Training script"
    #: The header's help on running the script, one line each.
    run_help: tuple[str, ...] = ()
    #: The dataset kinds the script learns from (the others are refused with :meth:`kind_error`).
    kinds: tuple[str, ...] = tuple(LOADERS)
    #: Whether the script runs under torchrun (DistributedDataParallel); False drops its imports.
    distributed = True

    def __init__(self, project, project_dir=None, spec=None) -> None:
        self.project = project
        self.project_dir = project_dir
        self.spec = spec  # the recipe writing it (a subclass of a built-in reuses its script)

    # -- hooks ---------------------------------------------------------------------------------

    def has_networks(self) -> bool:
        """Whether the project has the networks this script trains (False: no script yet)."""
        return bool(self.project.networks)

    def applies(self, training: dict[str, Any]) -> bool:
        """False: the project trains with another recipe, which writes its own script."""
        return True

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        """Raise :class:`CodegenError` when no script can be written, saying what to change
        (and note what the other hooks need: class names, the network's shape...)."""

    def kind_error(self, kind: str) -> str:
        return f"a {kind} dataset cannot be trained on by this recipe's train.py"

    def loop(self) -> str:
        """The script after its data part: the recipe's step, ``train()``, ``evaluate()``,
        ``main()`` (see :func:`main_head` and the other shared pieces)."""
        raise NotImplementedError

    def adapt(self, body: str, training: dict[str, Any]) -> str:
        """The assembled script before the searched values become flags (e.g. frozen layers)."""
        return body

    def builds(self) -> dict[str, str]:
        """``__MARKER__()`` -> network for each model build whose searched arguments are flags
        (empty: the networks' searched sizes keep their defaults)."""
        return {}

    def description(self) -> str:
        """argparse's description. No user text: argparse %-formats it ("%(prog)s %d" as a
        project name made --help raise TypeError); the project name is in the header comment."""
        raise NotImplementedError

    def markers(self) -> dict[str, str]:
        """The loop's own ``__MARKER__`` -> code (``__CLASS__``: the model.py classes imported)."""
        raise NotImplementedError

    # -- the skeleton --------------------------------------------------------------------------

    def source(self, format: bool = True) -> str | None:
        """The train.py source (None: no script for this project). Raises :class:`CodegenError`
        when the dataset or training settings are invalid or do not suit the recipe."""
        if not self.has_networks():
            return None
        try:
            dataset = validate_dataset(self.project.dataset)
            training = validate_training(self.project.training)
        except ConfigError as exc:
            raise CodegenError(str(exc)) from None
        if not self.applies(training):
            return None
        kind = dataset["kind"]
        if kind not in self.kinds:
            raise CodegenError(self.kind_error(kind))
        self.check(dataset, training)
        if kind in PATH_KINDS and dataset["path"]:
            dataset["path"] = self.resolve(dataset["path"])
        body = self.adapt(data_part(kind, self.distributed) + self.loop(), training)
        body = with_search_arguments(body, self.project, self.builds())
        if kind in TEXT_KINDS:
            body = body.replace("import os\n", "import os\nimport re\n", 1)
        if "np." not in body:  # digits and CSV loaders do without numpy
            body = body.replace("import numpy as np\n", "", 1)
        if kind in PATH_KINDS:
            what = "the UTF-8 text file" if kind == "text" else "the dataset file or folder"
            data_default, data_help = dataset["path"], f"{what} (default: %(default)s)"
        elif kind == "torchvision":
            data_default = "data"
            data_help = "folder for the downloaded dataset (default: %(default)s)"
        else:
            data_default, data_help = None, None
            body = without_data_argument(body)
        config = {"dataset": applying("dataset", dataset),
                  "training": applying("training", training, self.project)}
        replacements = {
            **self.markers(),
            "__CONFIG__": literal(config),
            "__DESCRIPTION__": literal(self.description()),
            "__DATA_DEFAULT__": literal(data_default),
            "__DATA_HELP__": literal(data_help),
        }
        # One pass over the template's own markers: text already put in is never searched again.
        body = re.sub("|".join(map(re.escape, replacements)), lambda m: replacements[m.group(0)],
                      body)
        header = file_header(self.project, self.what)
        header += ["#", *("# " + line for line in self.run_help)]
        source = "\n".join(header) + "\n" + body
        return format_source(source) if format else source

    def resolve(self, path: str) -> str:
        """A path of the project, absolute: a relative one starts at the project file's folder."""
        if self.project_dir is None:
            return path
        p = Path(path).expanduser()
        return path if p.is_absolute() else str((Path(self.project_dir) / p).resolve())


