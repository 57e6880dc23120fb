"""Text files for next-token prediction: tokenisation, windows, the split, errors, the fit check,
the shipped sample text and the loader that exported code uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from designer.engine.model.graph import Graph
from designer.engine.train.config import ConfigError, validate_dataset
from designer.engine.train.data import DatasetError, check_model_data, load_dataset
from designer.engine.train.data.text import decode, encode, split_tokens
from designer.engine.train.recipes import loaders

from .helpers import chain

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "designer" / "templates" / "data" / "tiny-stories.txt"
TEXT = ("The cat sat on the mat. The dog sat on the log!\n"
        "A bird sang, and the cat looked up; the dog slept.\n") * 6


def _write(tmp_path: Path, text: str = TEXT, name: str = "story.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load(tmp_path: Path, **settings):
    return load_dataset({"kind": "text", "path": "story.txt", **settings}, tmp_path)


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------


def test_settings_accept_a_text_file_and_default_to_characters():
    cfg = validate_dataset({"kind": "text", "path": "a.txt"})
    assert (cfg["tokenizer"], cfg["seq_length"]) == ("char", 64)
    with pytest.raises(ConfigError, match="a UTF-8 text file is needed"):
        validate_dataset({"kind": "text"})
    with pytest.raises(ConfigError, match="dataset.tokenizer: expected one of char, word"):
        validate_dataset({"kind": "text", "path": "a.txt", "tokenizer": "bpe"})


# ---------------------------------------------------------------------------------------------
# tokens, windows and the split
# ---------------------------------------------------------------------------------------------


def test_character_level_windows_and_targets_shifted_by_one(tmp_path):
    _write(tmp_path)
    ds = _load(tmp_path, seq_length=10, val_fraction=0.25)
    assert ds.task == "language_model" and ds.dtype == "int64" and ds.sample_shape == (10,)
    assert ds.x_train.dtype == ds.y_train.dtype == torch.int64
    assert ds.vocab == sorted(set(TEXT)) and ds.class_names == ds.vocab
    assert ds.num_classes == len(ds.vocab)
    n_train = len(TEXT) - round(len(TEXT) * 0.25)
    train_text = TEXT[:n_train]
    # consecutive, non-overlapping windows of the training part; targets shifted by one
    assert ds.n_train == (n_train - 1) // 10
    for i in (0, 1, ds.n_train - 1):
        assert decode(ds.x_train[i], ds.preprocessing) == train_text[i * 10:i * 10 + 10]
        assert decode(ds.y_train[i], ds.preprocessing) == train_text[i * 10 + 1:i * 10 + 11]
    assert torch.equal(ds.x_train[:, 1:], ds.y_train[:, :-1])
    assert torch.equal(ds.y_train[:-1, -1], ds.x_train[1:, 0])
    assert ds.target_shape == (10,)


def test_the_split_is_by_position_so_validation_text_is_never_trained_on(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(400))
    _write(tmp_path, text)
    ds = _load(tmp_path, seq_length=8, val_fraction=0.2)
    train = "".join(decode(x, ds.preprocessing) for x in ds.x_train)
    assert train == text[:8 * ds.n_train] and ds.n_train == (320 - 1) // 8
    last_target = 8 * ds.n_train  # the position of the last training target
    assert last_target < 320
    val = "".join(decode(x, ds.preprocessing) for x in ds.x_val)
    assert val == text[320:320 + 8 * ds.n_val] and ds.n_val == (80 - 1) // 8
    assert decode(ds.y_val[-1], ds.preprocessing) == text[320 + 8 * ds.n_val - 7:][:8]


def test_word_level_lowercases_keeps_punctuation_and_caps_the_vocabulary(tmp_path):
    assert split_tokens("Don't stop, Anna!", "word") == ["don't", "stop", ",", "anna", "!"]
    _write(tmp_path, TEXT + "Zebras wander.\n" * 3)
    ds = _load(tmp_path, tokenizer="word", seq_length=5, vocab_size=8, val_fraction=0.1)
    assert ds.vocab[0] == "<unk>" and len(ds.vocab) == 8
    assert ds.vocab[1:] == sorted(ds.vocab[1:])
    assert "the" in ds.vocab and "." in ds.vocab
    # the validation part's words that the training part lacks become <unk>
    assert "zebras" not in ds.vocab
    assert (ds.x_val == 0).any()
    assert ds.preprocessing["tokenizer"] == "word" and ds.preprocessing["unknown"] == "<unk>"
    ids = encode("The zebra sat.", ds.preprocessing)
    assert decode(ids, ds.preprocessing) == "the <unk> sat ."


def test_vocabulary_is_built_from_the_training_part_and_deterministic(tmp_path):
    _write(tmp_path, TEXT + " quokka" * 30)
    a = _load(tmp_path, tokenizer="word", seq_length=4, val_fraction=0.2)
    b = _load(tmp_path, tokenizer="word", seq_length=4, val_fraction=0.2, split_seed=5)
    assert a.vocab == b.vocab and "quokka" not in a.vocab  # only in the validation part
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    c = _load(tmp_path, seq_length=4, val_fraction=0.2)
    assert "q" in c.vocab  # characters: every character of the file, nothing unknown


def test_encode_and_decode_repeat_the_tokenisation(tmp_path):
    _write(tmp_path)
    ds = _load(tmp_path, seq_length=16)
    pre = ds.preprocessing
    assert set(pre) >= {"tokenizer", "vocab", "seq_length", "unknown", "token_pattern"}
    assert (pre["tokenizer"], pre["seq_length"], pre["vocab"]) == ("char", 16, ds.vocab)
    assert decode(encode("The dog sang.", pre), pre) == "The dog sang."
    with pytest.raises(ValueError, match="'Q' is not in the vocabulary"):
        encode("Q", pre)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        _load(tmp_path)
    _write(tmp_path, " \n\n")
    with pytest.raises(DatasetError, match="is empty"):
        _load(tmp_path)
    (tmp_path / "story.txt").write_bytes(b"caf\xe9 au lait " * 40)
    with pytest.raises(DatasetError, match="is not UTF-8 text"):
        _load(tmp_path)
    _write(tmp_path, "a short text of forty characters or so.\n")
    with pytest.raises(DatasetError, match=r"holds 40 characters, too short .* set "
                                           r"dataset.seq_length to 7 or less"):
        _load(tmp_path, seq_length=64)
    assert _load(tmp_path, seq_length=7).n_val == 1
    with pytest.raises(DatasetError, match="text file is a language_model dataset"):
        _load(tmp_path, seq_length=7, task="classification")


# ---------------------------------------------------------------------------------------------
# does the design fit?
# ---------------------------------------------------------------------------------------------


def _lm(length: int, vocab: int, out: int, dtype: str = "int64") -> Graph:
    return chain(("Embedding", {"num_embeddings": vocab, "embedding_dim": 8}),
                 ("Linear", {"out_features": out}), shape=(length,), dtype=dtype)


def test_fit_check_input_embedding_and_output_with_fixes(tmp_path):
    _write(tmp_path)
    ds = _load(tmp_path, seq_length=12)
    v = len(ds.vocab)
    assert check_model_data(_lm(12, v, v), ds, {}).problems == []
    assert check_model_data(_lm(12, v, v), ds, {}).output_size == v

    check = check_model_data(_lm(20, v, v, dtype="float32"), ds, {})
    msg = check.errors[0].message
    assert "sequences of 12 token ids" in msg and "takes float32" in msg
    assert {(f.param, _v(f.value)) for f in check.fixes} >= {("shape", (12,)), ("dtype", "int64")}

    g = _lm(12, 5, 7)
    check = check_model_data(g, ds, {})
    messages = " | ".join(p.message for p in check.errors)
    assert f"set num_embeddings to {v}" in messages
    assert f"must be 12x{v}, but the model gives 12x7: set fc1's out_features to {v}" in messages
    for fix in check.fixes:
        g.set_params(fix.node_id, {fix.param: fix.value})
    assert check_model_data(g, ds, {}).ok


def test_fit_check_asks_to_keep_the_sequence_dimension(tmp_path):
    _write(tmp_path)
    ds = _load(tmp_path, seq_length=12)
    v = len(ds.vocab)
    g = chain(("Embedding", {"num_embeddings": v, "embedding_dim": 4}), ("Flatten", {}),
              ("Linear", {"out_features": v}), shape=(12,), dtype="int64")
    check = check_model_data(g, ds, {})
    assert not check.ok and not check.fixes
    assert "keep the sequence of 12 positions" in check.errors[0].message


def _v(value):
    return tuple(value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------
# the shipped sample text and exported code
# ---------------------------------------------------------------------------------------------


def test_the_shipped_text_loads_with_a_small_alphabet():
    assert SAMPLE.is_file()
    assert 50_000 <= SAMPLE.stat().st_size <= 150_000
    ds = load_dataset({"kind": "text", "path": str(SAMPLE)})
    assert len(ds.vocab) < 100 and ds.n_train > 500 and ds.n_val > 100
    words = load_dataset({"kind": "text", "path": str(SAMPLE), "tokenizer": "word"})
    assert 1000 < len(words.vocab) <= 10000


def _exported_loader(dataset: dict) -> dict:
    """The exported train.py's Data class and text loader, run in a namespace of their own."""
    head = loaders.TRAIN_HEAD
    data_class = head[head.index("@dataclass"):head.index("def split_indices")]
    ns = {"torch": torch, "re": re, "dataclass": dataclass,
          "CONFIG": {"dataset": validate_dataset(dataset)}}
    exec(data_class + loaders.LOAD_TEXT, ns)  # noqa: S102 - our own snippet, as train.py runs it
    return ns


@pytest.mark.parametrize("settings", [
    {"seq_length": 9, "val_fraction": 0.3},
    {"tokenizer": "word", "seq_length": 4, "vocab_size": 9, "val_fraction": 0.2},
    {"tokenizer": "word", "seq_length": 6, "val_fraction": 0.0},
])
def test_the_exported_loader_gives_the_same_tensors(tmp_path, settings):
    path = _write(tmp_path, "\ufeff" + TEXT.replace("\n", "\r\n") + "Zebras, too.\n")
    ds = load_dataset({"kind": "text", "path": str(path), **settings})
    ns = _exported_loader({"kind": "text", "path": str(path), **settings})
    data = ns["load_data"](str(path))
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(data, name), getattr(ds, name)), name
    assert data.vocab == ds.vocab and data.classes == ds.class_names
    assert data.task == "language_model"
    assert ns["decode"](data.x_train[0], data.vocab) == decode(ds.x_train[0], ds.preprocessing)
