"""Plain text files for next-token prediction (language models).

The file is read as UTF-8, cut into tokens (characters, or lower-case words and punctuation) and
the token stream into consecutive windows of ``seq_length`` tokens: a sample is
``tokens[i : i + L]`` and its target the same window shifted by one, ``tokens[i + 1 : i + L + 1]``.
The last ``val_fraction`` of the stream is kept for validation, so no validation token is ever
seen in training. :func:`encode` and :func:`decode` repeat the tokenisation from a dataset's
``preprocessing`` dict, so a recipe can turn a prompt into ids and generated ids into text.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..config import TEXT_TOKENIZERS
from .core import Dataset, DatasetError, human_bytes

TOKENIZERS = TEXT_TOKENIZERS
UNK = "<unk>"
MAX_TEXT_BYTES = 256 * 1024**2
#: Word level: words (letters and digits, inner apostrophes kept) and single punctuation marks.
WORD_PATTERN = r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_"
_WORD = re.compile(WORD_PATTERN)


def split_tokens(text: str, tokenizer: str) -> list[str]:
    """The tokens of ``text``: its characters, or its lower-case words and punctuation marks."""
    if tokenizer == "char":
        return list(text)
    return _WORD.findall(text.lower())


def read_text(path: Path) -> str:
    """The whole file as text (a leading byte-order mark dropped, line ends made ``\\n``)."""
    if not path.exists():
        raise DatasetError(f"dataset.path: the text file {path} does not exist")
    if path.is_dir():
        raise DatasetError(f"dataset.path: {path} is a folder; a UTF-8 text file is needed")
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise DatasetError(f"dataset.path: {path} is {human_bytes(size)}, more than the "
                           f"{human_bytes(MAX_TEXT_BYTES)} a text dataset may hold")
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset.path: {path} is not UTF-8 text (byte {exc.start} cannot be "
                           f"decoded); save it as UTF-8") from None
    if not text.strip():
        raise DatasetError(f"dataset.path: {path} is empty; a text dataset needs some text")
    return text


def build_vocab(train_tokens: list[str], all_tokens: list[str], tokenizer: str,
                size: int) -> list[str]:
    """The vocabulary, sorted: every character of the whole file (nothing is unknown), or
    ``<unk>`` and the ``size - 1`` most frequent words of the training part (ties alphabetical)."""
    if tokenizer == "char":
        return sorted(set(all_tokens))
    counts = Counter(train_tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [UNK] + sorted(t for t, _ in ranked[:max(size - 1, 0)])


def encode(text: str, preprocessing: dict[str, Any]) -> list[int]:
    """Token ids of ``text``, tokenised as the dataset was. Word level: unknown words become
    ``<unk>``; character level: an unknown character raises ``ValueError`` naming it."""
    index = {t: i for i, t in enumerate(preprocessing["vocab"])}
    tokens = split_tokens(text, preprocessing["tokenizer"])
    unk = preprocessing.get("unknown")
    if unk is not None:
        return [index.get(t, index[unk]) for t in tokens]
    missing = sorted({t for t in tokens if t not in index})
    if missing:
        shown = ", ".join(repr(t) for t in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise ValueError(f"{shown} {'is' if len(missing) == 1 else 'are'} not in the "
                         f"vocabulary of {len(index)} characters")
    return [index[t] for t in tokens]


def decode(ids: Any, preprocessing: dict[str, Any]) -> str:
    """Text of token ids: characters joined, or words joined with spaces."""
    vocab = preprocessing["vocab"]
    tokens = [vocab[int(i)] for i in ids]
    return "".join(tokens) if preprocessing["tokenizer"] == "char" else " ".join(tokens)


def windows(ids: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Consecutive non-overlapping windows of ``length`` ids and their targets, shifted by one."""
    n = (len(ids) - 1) // length
    x = ids[:n * length].view(n, length)
    y = ids[1:n * length + 1].view(n, length)
    return x.contiguous(), y.contiguous()


def _longest(n_train: int, n_val: int, has_val: bool) -> int:
    """The largest seq_length that still gives two sequences (one each, or two for training)."""
    return min(n_train, n_val) - 1 if has_val else (n_train - 1) // 2


def load_text(cfg: dict[str, Any], path: Path) -> Dataset:
    """A text file -> windows of int64 token ids and their next-token targets."""
    if cfg["task"] not in ("auto", "language_model"):
        raise DatasetError(f"dataset.task: a text file is a language_model dataset; it cannot be "
                           f"used for {cfg['task']} (choose auto or language_model)")
    tokenizer, length = cfg["tokenizer"], cfg["seq_length"]
    text = read_text(path)
    tokens = split_tokens(text, tokenizer)
    n = len(tokens)
    n_val = round(n * cfg["val_fraction"])
    has_val = cfg["val_fraction"] > 0
    n_train = n - n_val
    if (has_val and min(n_train, n_val) < length + 1) or (not has_val and n_train < 2 * length + 1):
        unit = "characters" if tokenizer == "char" else "word and punctuation tokens"
        longest = _longest(n_train, n_val, has_val)
        need = ("one training and one validation sequence" if has_val
                else "two training sequences")
        todo = (f"set dataset.seq_length to {longest} or less, or use a longer text"
                if longest >= 1 else "use a longer text")
        raise DatasetError(f"dataset.seq_length: {path.name} holds {n:,} {unit}, too short for "
                           f"{need} of {length} tokens (each needs {length} + 1 tokens): {todo}")
    train_tokens, val_tokens = tokens[:n_train], tokens[n_train:]
    vocab = build_vocab(train_tokens, tokens, tokenizer, cfg["vocab_size"])
    index = {t: i for i, t in enumerate(vocab)}
    unk = index.get(UNK, 0) if tokenizer == "word" else None
    ids = torch.tensor([index.get(t, unk) for t in train_tokens + val_tokens], dtype=torch.int64)
    x_train, y_train = windows(ids[:n_train], length)
    x_val, y_val = windows(ids[n_train:], length)
    preprocessing = {
        "source": "text", "tokenizer": tokenizer,
        "token_pattern": WORD_PATTERN if tokenizer == "word" else None,
        "lowercase": tokenizer == "word", "vocab": vocab,
        "unknown": UNK if tokenizer == "word" else None, "seq_length": length,
        "split": "by position: the last val_fraction of the tokens is validation",
        "val_fraction": cfg["val_fraction"], "n_tokens": n,
        "windows": "consecutive, non-overlapping; target = input shifted by one token",
    }
    return Dataset(name=path.name, task="language_model", x_train=x_train, y_train=y_train,
                   x_val=x_val, y_val=y_val, sample_shape=(length,), dtype="int64",
                   class_names=list(vocab), vocab=vocab, preprocessing=preprocessing)
