"""CSV datasets: numeric tables (classification or regression) and short texts with labels."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from .core import Dataset, DatasetError, apply_stats, feature_stats, human_bytes, split_indices

MAX_CSV_BYTES = 1024**3
MAX_CLASSES = 100_000
FLOAT32_MAX = 3.4028234663852886e38
MAX_TOKEN_BYTES = 4 * 1024**3  # the int64 token ids of a CSV text dataset
PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase words (letters and digits, inner apostrophes kept); punctuation is dropped."""
    return _TOKEN.findall(text.lower())


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, with a clear error for anything unreadable."""
    if not path.exists():
        raise DatasetError(f"dataset.path: the CSV file {path} does not exist")
    if path.is_dir():
        raise DatasetError(f"dataset.path: {path} is a folder; a CSV file is needed")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DatasetError(f"dataset.path: {path} is larger than 1 GB")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = list(csv.reader(f, dialect))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset.path: {path} is not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"dataset.path: {path} is not a valid CSV file: {exc}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 3:
        raise DatasetError(f"dataset.path: {path} needs a header line and at least 2 data rows")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DatasetError(f"dataset.path: {path} has two columns named {dup!r}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DatasetError(f"{path.name} row {i}: {len(r)} values, but the header names "
                               f"{len(header)} columns")
    return header, rows[1:]


def _column(header: list[str], name: str, path: Path, setting: str) -> int:
    if name not in header:
        raise DatasetError(f"dataset.{setting}: {path.name} has no column {name!r} (columns: "
                           f"{', '.join(header)})")
    return header.index(name)


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    # beyond float32's range a value becomes inf in the tensor (or torch refuses it): not a number
    return v if math.isfinite(v) and abs(v) <= FLOAT32_MAX else None


def labels_to_indices(values: list[str]) -> tuple[torch.Tensor, list[str]]:
    """Class labels of any kind -> indices; classes sorted numerically when all are numbers."""
    distinct = set(values)
    if len(distinct) > MAX_CLASSES:
        raise DatasetError(f"{len(distinct):,} distinct labels is more than {MAX_CLASSES:,}")
    nums = {v: _number(v) for v in distinct}
    if all(n is not None for n in nums.values()):
        classes = sorted(distinct, key=lambda v: (nums[v], v))
    else:
        classes = sorted(distinct)
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[v] for v in values], dtype=torch.int64), classes


def _auto_task(values: list[str]) -> str:
    nums = [_number(v) for v in values]
    if any(n is None for n in nums):
        return "classification"
    distinct = set(nums)
    if all(float(n).is_integer() for n in distinct) and len(distinct) <= 20:
        return "classification"
    return "regression"


def load_csv(cfg: dict[str, Any], path: Path) -> Dataset:
    """Numeric feature columns and one target column; features standardised on the training split."""
    header, rows = read_csv(path)
    target = cfg["target_column"] or header[-1]
    t_col = _column(header, target, path, "target_column")
    if cfg["feature_columns"]:
        f_cols = [_column(header, c, path, "feature_columns") for c in cfg["feature_columns"]]
        if t_col in f_cols:
            raise DatasetError(f"dataset.feature_columns: {target!r} is also the target column")
    else:
        f_cols = [i for i in range(len(header)) if i != t_col]
    if not f_cols:
        raise DatasetError(f"dataset.feature_columns: {path.name} has no column left for inputs")
    x = torch.empty(len(rows), len(f_cols), dtype=torch.float32)
    for r, row in enumerate(rows):
        for j, c in enumerate(f_cols):
            v = _number(row[c])
            if v is None:
                raise DatasetError(
                    f"{path.name} row {r + 2}, column {header[c]!r}: {row[c].strip()[:40]!r} is not "
                    f"a number within float32's range (feature columns must be numeric; leave text columns out with "
                    f"dataset.feature_columns)")
            x[r, j] = v
    labels = [row[t_col].strip() for row in rows]
    task = cfg["task"] if cfg["task"] != "auto" else _auto_task(labels)
    class_names = None
    if task == "classification":
        y, class_names = labels_to_indices(labels)
        if len(class_names) < 2:
            raise DatasetError(f"dataset.target_column: {target!r} has a single value; "
                               f"classification needs at least 2 classes")
    elif task == "regression":
        values = [_number(v) for v in labels]
        bad = next((i for i, v in enumerate(values) if v is None), None)
        if bad is not None:
            raise DatasetError(f"{path.name} row {bad + 2}, column {target!r}: "
                               f"{labels[bad][:40]!r} is not a number within float32's range (regression needs numeric "
                               f"targets; set dataset.task to classification for labels)")
        y = torch.tensor(values, dtype=torch.float32).unsqueeze(1)
    else:
        raise DatasetError("dataset.task: a CSV table supports classification or regression")
    train, val = split_indices(len(rows), cfg["val_fraction"], cfg["split_seed"])
    x_train, x_val = x[train], x[val]
    mean = std = None
    if cfg["normalize"]:
        mean, std = feature_stats(x_train)
        x_train, x_val = apply_stats(x_train, mean, std), apply_stats(x_val, mean, std)
    return Dataset(name=path.name, task=task, x_train=x_train, y_train=y[train], x_val=x_val,
                   y_val=y[val], sample_shape=(len(f_cols),), dtype="float32",
                   class_names=class_names, mean=mean, std=std,
                   preprocessing={"source": "csv", "feature_columns": [header[c] for c in f_cols],
                                  "target_column": target, "standardize": bool(mean)})


def build_vocab(texts: list[list[str]], size: int) -> list[str]:
    """``<pad>``, ``<unk>``, then the most frequent tokens (ties alphabetical) up to ``size``."""
    counts = Counter(t for tokens in texts for t in tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [PAD, UNK] + [t for t, _ in ranked[:max(size - 2, 0)]]


def encode(tokens: list[str], index: dict[str, int], max_length: int) -> list[int]:
    ids = [index.get(t, 1) for t in tokens[:max_length]]
    return ids + [0] * (max_length - len(ids))


def load_csv_text(cfg: dict[str, Any], path: Path) -> Dataset:
    """Texts -> int64 token ids (vocabulary fitted on the training split), labels -> indices."""
    header, rows = read_csv(path)
    t_col = _column(header, cfg["text_column"], path, "text_column")
    l_col = _column(header, cfg["label_column"], path, "label_column")
    tokens = [tokenize(row[t_col]) for row in rows]
    labels = [row[l_col].strip() for row in rows]
    task = "classification" if cfg["task"] == "auto" else cfg["task"]
    class_names = None
    if task == "classification":
        y, class_names = labels_to_indices(labels)
        if len(class_names) < 2:
            raise DatasetError(f"dataset.label_column: {cfg['label_column']!r} has a single "
                               f"value; classification needs at least 2 classes")
    elif task == "regression":
        values = [_number(v) for v in labels]
        if any(v is None for v in values):
            raise DatasetError(f"dataset.label_column: regression needs numeric labels in "
                               f"{cfg['label_column']!r}")
        y = torch.tensor(values, dtype=torch.float32).unsqueeze(1)
    else:
        raise DatasetError("dataset.task: CSV text supports classification or regression")
    train, val = split_indices(len(rows), cfg["val_fraction"], cfg["split_seed"])
    vocab = build_vocab([tokens[i] for i in train.tolist()], cfg["vocab_size"])
    index = {t: i for i, t in enumerate(vocab)}
    n = cfg["max_length"]
    nbytes = len(rows) * n * 8  # int64 token ids
    if nbytes > MAX_TOKEN_BYTES:
        raise DatasetError(f"dataset.max_length: {len(rows):,} texts of {n:,} token ids take "
                           f"{human_bytes(nbytes)} (limit {human_bytes(MAX_TOKEN_BYTES)}); set a "
                           f"smaller max_length")
    ids = torch.tensor([encode(t, index, n) for t in tokens], dtype=torch.int64)
    return Dataset(name=path.name, task=task, x_train=ids[train], y_train=y[train],
                   x_val=ids[val], y_val=y[val], sample_shape=(n,), dtype="int64",
                   class_names=class_names, vocab=vocab,
                   preprocessing={"source": "csv text", "text_column": cfg["text_column"],
                                  "label_column": cfg["label_column"],
                                  "tokenizer": "lowercase words: regex [^\\W_]+(?:'[^\\W_]+)*",
                                  "max_length": n, "padding": "end, id 0 (<pad>)",
                                  "unknown": "id 1 (<unk>)", "vocab_size": len(vocab)})
