"""The one schema class: layer parameters and dataset/training settings are both
:class:`designer.engine.model.schema.Param`, checked and described by the same code."""

from __future__ import annotations

import pytest

from designer.engine.model.catalog import CATALOG, PARAM_TYPES
from designer.engine.model.catalog import Param as CatalogParam
from designer.engine.model.schema import Param, _show
from designer.engine.train import config


def test_one_class_for_layer_parameters_and_settings():
    assert config.Setting is Param and CatalogParam is Param
    assert set(config.SETTING_TYPES) == set(PARAM_TYPES)
    lr = config.setting("training", "lr")
    assert isinstance(lr, Param) and lr.key == lr.name == "lr"
    with pytest.raises(AttributeError):
        lr.key = "other"  # read-only
    assert all(p.layer for spec in CATALOG for p in spec.params)
    assert not any(s.layer for s in config.TRAINING_SETTINGS + config.DATASET_SETTINGS)


def test_a_setting_is_written_as_before():
    s = config.Setting("loss", "choice", "cross_entropy", "Loss function",
                       choices=("cross_entropy", "mse"), applies=(("recipe", ("supervised",)),),
                       label="Loss")
    assert s.key == "loss" and s.title == "Loss"
    assert s.applies_to({"recipe": "supervised"}) and not s.applies_to({"recipe": "gan"})
    assert Param("batch_size", "int", 64, "Samples").title == "Batch size"
    with pytest.raises(ValueError, match="unknown type 'complex'"):
        Param("a", "complex", 1, "a")


# (param, value, normalised value) for every type
GOOD = [
    (Param("n", "int", 1, "d", min=1, max=10), 3, 3),
    (Param("n", "int", 1, "d", min=1, max=10), 4.0, 4),
    (Param("n", "int", None, "d", inferred=True), None, None),
    (Param("x", "float", 0.5, "d", min=0.0, max=1.0), 1, 1.0),
    (Param("b", "bool", False, "d"), True, True),
    (Param("c", "choice", "a", "d", choices=("a", "b")), "b", "b"),
    (Param("k", "ints", 3, "d", min=1, length=2), (3, 5), [3, 5]),
    (Param("s", "shape", [1], "d", allow_minus_one=True), (-1, 4), [-1, 4]),
    (Param("p", "dims", [1], "d"), (2, 1), [2, 1]),
    (Param("t", "text", "x", "d"), "data/é.csv", "data/é.csv"),
    (Param("t", "text", None, "d", optional=True), None, None),
    (Param("ts", "texts", None, "d", optional=True), ("a", "b"), ["a", "b"]),
    (Param("z", "size", None, "d", optional=True), (28, 32), [28, 32]),
]


@pytest.mark.parametrize("param, value, expected", GOOD)
def test_validate_normalises_every_type(param, value, expected):
    got = param.validate(value)
    assert got == expected and type(got) is type(expected)


# (param, value, the exact message): settings name their whole range, layers their ceiling
BAD = [
    (Param("epochs", "int", 10, "d", min=1, max=100_000), 0,
     "expected an integer from 1 to 100000, got 0"),
    (Param("epochs", "int", 10, "d", min=1, max=100_000), 200_000,
     "expected an integer from 1 to 100000, got 200000"),
    (Param("w", "int", 1, "d", min=1, max=1_000_000, layer=True), 0,
     "expected a positive integer, got 0"),
    (Param("w", "int", 1, "d", min=1, max=1_000_000, layer=True), 2_000_000,
     "2000000 is too large: w can be at most 1,000,000"),
    (Param("pad", "ints", 0, "d", min=0, length=2, layer=True), -1,
     "expected a non-negative integer or a list of 2, got -1"),
    (Param("k", "ints", 3, "d", min=1, length=2, layer=True), [3],
     "expected an integer or a list of 2 integers, got [3]"),
    (Param("lr", "float", 0.1, "d", min=1e-8, max=10.0), "fast",
     'expected a number from 1e-08 to 10, got "fast"'),
    (Param("lr", "float", 0.1, "d", min=1e-8, max=10.0), 100,
     "expected a number from 1e-08 to 10, got 100.0"),
    (Param("p", "float", 0.5, "d", min=0.0, max=0.999, layer=True), 1.0,
     "1.0 is too large: p can be at most 0.999"),
    (Param("x", "float", 0.5, "d"), float("nan"), "expected a finite number, got nan"),
    (Param("b", "bool", False, "d"), 1, "expected true or false, got 1"),
    (Param("c", "choice", "a", "d", choices=("a", "b")), "z", 'expected one of a, b, got "z"'),
    (Param("c", "choice", "a", "d", choices=("a", "b")), None, "expected one of a, b, got null"),
    (Param("s", "shape", [1], "d"), [0], "every size must be between 1 and 1,000,000, got [0]"),
    (Param("s", "shape", [1], "d", allow_minus_one=True), [-1, -1],
     "at most one size can be -1"),
    (Param("p", "dims", [1], "d"), [1, 3],
     "expected a permutation of 1..2 (axis 0 is the batch), got [1, 3]"),
    (Param("t", "text", None, "d", optional=True), 5, "expected a text or null, got 5"),
    (Param("t", "text", "x", "d"), "a\x00b",
     '"a\\x00b" holds a NUL character (\\u0000), which no path or name can hold'),
    (Param("t", "text", "x", "d"), "x" * 5000, "expected at most 4096 characters"),
    (Param("ts", "texts", None, "d", optional=True), "a",
     'expected a list of texts or null, got "a"'),
    (Param("ts", "texts", None, "d"), ["ok", "\udfff"],
     '"\\udfff" holds a lone surrogate, half of an escaped character and not text'),
    (Param("z", "size", None, "d", optional=True), [0, 5],
     "expected [height, width], two integers from 1 to 4096, got [0, 5]"),
]


@pytest.mark.parametrize("param, value, message", BAD)
def test_validate_refuses_with_the_same_words(param, value, message):
    with pytest.raises(ValueError) as info:
        param.validate(value)
    assert str(info.value) == message


def test_describe_every_type():
    words = [
        (Param("n", "int", 1, "d", min=0, max=9), "an integer from 0 to 9"),
        (Param("n", "int", 1, "d", min=0, max=9, layer=True), "a non-negative integer"),
        (Param("n", "int", 1, "d", min=-8, max=8, layer=True), "an integer from -8 to 8"),
        (Param("x", "float", 1.0, "d", min=0.5), "a number of at least 0.5"),
        (Param("b", "bool", True, "d"), "true or false"),
        (Param("c", "choice", "a", "d", choices=("a", "b")), "one of a, b"),
        (Param("k", "ints", 1, "d", min=1, length=3, layer=True), "a positive integer or a list of 3"),
        (Param("s", "shape", [1], "d"), "a list of positive integers"),
        (Param("p", "dims", [1], "d"), "a permutation of axis numbers"),
        (Param("t", "text", None, "d", optional=True), "a text or null"),
        (Param("ts", "texts", [], "d"), "a list of texts"),
        (Param("z", "size", None, "d", optional=True), "[height, width], two positive integers or null"),
        (Param("e", "int", None, "d", min=1, optional=True, layer=True), "a positive integer"),
        (Param("v", "values", {}, "d"),
         "an object of named values (numbers, true/false or texts)"),
        (Param("n", "numbers", [], "d"), "a list of numbers"),
        (Param("p", "program", {"steps": [{"op": "method.clone", "args": [{"in": 0}]}],
                                "inputs": [{}]}, "d"),
         "a program: an object of inputs, steps and output"),
    ]
    for param, text in words:
        assert param.describe() == text, param
    assert {p.type for p, _ in words} == set(PARAM_TYPES)


def test_show_is_one_safe_printable_line():
    assert _show("fc1\r\u2028\udfff\x1b") == '"fc1\\r\\u2028\\udfff\\x1b"'
    assert _show('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert _show("café") == '"café"'  # printable text stays as typed
    assert _show("x" * 100) == '"' + "x" * 37 + '..."'
    assert _show(10**400) == "an integer of about 401 digits"
    assert _show(-10**5000) == "a negative integer of about 5001 digits"
    assert _show(2**63) == str(2**63)
    assert len(_show(list(range(100)))) == 60


def test_values_take_named_scalars_and_references_only():
    p = Param("args", "values", {}, "d")
    assert p.validate({"width": 64, "act": "relu", "on": True, "w": {"ref": "planes", "mul": 4}}) \
        == {"width": 64, "act": "relu", "on": True, "w": {"ref": "planes", "mul": 4}}
    for bad, words in (([1], "expected an object"), ({"a b": 1}, "is not a parameter name"),
                       ({"w": [1, 2]}, "w: expected a number"), ({"w": float("nan")}, "finite"),
                       ({"w": {"ref": "x y"}}, "not a block parameter name"),
                       ({"w": {"ref": "x", "mul": 0}}, "mul is an integer")):
        with pytest.raises(ValueError, match=words):
            p.validate(bad)
