"""The layer catalog as data: every entry complete and consistent, duplicate ids refused, and
parameter validation that names the parameter and says what it accepts."""

from __future__ import annotations

import pytest

from designer.engine.model.catalog import (
    CATALOG,
    PARAM_TYPES,
    RESERVED_NAMES,
    TORCH_MODULE_ATTRIBUTES,
    Catalog,
    LayerSpec,
    Param,
    ParamError,
    name_problem,
)

REQUIRED = {
    "Input", "Output", "Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Flatten",
    "Reshape", "Permute", "ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Embedding", "RNN", "LSTM", "GRU", "MultiheadAttention",
    "TransformerEncoderLayer", "Upsample", "Add", "Concat", "Multiply",
}


def test_the_catalog_covers_the_required_layers():
    assert REQUIRED <= set(CATALOG.ids())


@pytest.mark.parametrize("spec", list(CATALOG), ids=lambda s: s.id)
def test_every_entry_is_complete(spec: LayerSpec):
    assert spec.display_name and spec.category and spec.doc.endswith(".")
    assert len(spec.doc) < 200
    for p in spec.params:
        assert p.type in PARAM_TYPES and p.doc, p.name
        assert p.validate(p.default) == p.default or p.default is None
        if p.type == "choice":
            assert p.default in p.choices
    assert spec.validate_params({}) == spec.defaults()
    assert set(spec.key_params) <= {p.name for p in spec.params}
    assert name_problem(spec.prefix + "1") is None
    if spec.module is not None:
        # torch.nn's classes, or (StochasticDepth) a designer.engine.model.modules class model.py defines
        assert spec.code_class == (spec.module.__name__ if spec.helper_module
                                   else f"nn.{spec.module.__name__}")
        if spec.helper_module:
            assert spec.module.__module__ == "designer.engine.model.modules"
        assert spec.resolve is not None and spec.count_params is not None
    assert spec.infer is not None  # exact shape functions, tested against real modules
    assert spec.variadic or spec.num_inputs in (0, 1)


def test_categories_group_every_layer_once():
    grouped = [s.id for specs in CATALOG.categories().values() for s in specs]
    assert sorted(grouped) == sorted(CATALOG.ids())


def test_duplicate_ids_are_refused():
    cat = Catalog()
    cat.register(LayerSpec("X", "X", "Core", "An x."))
    with pytest.raises(ValueError, match="already registered"):
        cat.register(LayerSpec("X", "X again", "Core", "Another x."))
    with pytest.raises(ValueError, match="duplicate parameter names"):
        LayerSpec("Y", "Y", "Core", "A y.", params=(Param("a", "int", 1, "a"),
                                                        Param("a", "int", 2, "a")))
    with pytest.raises(ValueError, match="unknown type"):
        Param("a", "complex", 1, "a")


@pytest.mark.parametrize("layer, params, message", [
    ("Linear", {"foo": 1},
     'foo: Linear has no parameter "foo" (its parameters: in_features, out_features, bias)'),
    ("Linear", {"out_features": "abc"}, 'out_features: expected a positive integer, got "abc"'),
    ("Linear", {"out_features": 0}, "out_features: expected a positive integer, got 0"),
    ("Linear", {"out_features": 2_000_000},
     "out_features: 2000000 is too large: out_features can be at most 1,000,000"),
    ("Linear", {"out_features": 3.5}, "out_features: expected a positive integer, got 3.5"),
    ("Linear", {"bias": "yes"}, 'bias: expected true or false, got "yes"'),
    ("Linear", [1, 2], "expected an object of parameters, got [1, 2]"),
    ("Conv2d", {"kernel_size": [3]}, "kernel_size: expected an integer or a list of 2 integers"),
    ("Conv2d", {"padding": -1}, "padding: expected a non-negative integer or a list of 2, got -1"),
    ("Dropout", {"p": 1.0}, "p: 1.0 is too large: p can be at most 0.999"),
    ("Dropout", {"p": float("nan")}, "p: expected a finite number, got nan"),
    ("BatchNorm2d", {"eps": 0}, "eps: expected a number from 1e-12 to 1, got 0.0"),
    ("GELU", {"approximate": "fast"}, 'approximate: expected one of none, tanh, got "fast"'),
    ("Reshape", {"shape": [-1, -1]}, "shape: at most one size can be -1"),
    ("Reshape", {"shape": [0, 4]}, "shape: every size must be between 1 and 1,000,000"),
    ("Input", {"shape": [-1, 4]}, "shape: every size must be between 1 and 1,000,000"),
    ("Permute", {"dims": [0, 1]}, "dims: expected a permutation of 1..2 (axis 0 is the batch)"),
    ("Permute", {"dims": [1, 1]}, "dims: expected a permutation of 1..2"),
    ("Softmax", {"dim": 9}, "dim: 9 is too large: dim can be at most 8"),
])
def test_invalid_parameters_name_the_parameter_and_what_it_accepts(layer, params, message):
    with pytest.raises(ParamError) as info:
        CATALOG[layer].validate_params(params)
    assert str(info.value).startswith(message), str(info.value)


def test_validation_normalises_values():
    spec = CATALOG["Conv2d"]
    out = spec.validate_params({"kernel_size": (3, 5), "stride": 2.0, "padding": [1, 1]})
    assert out["kernel_size"] == [3, 5] and out["stride"] == 2 and isinstance(out["stride"], int)
    assert CATALOG["Dropout"].validate_params({"p": 0})["p"] == 0.0
    assert CATALOG["Linear"].validate_params({"in_features": None})["in_features"] is None
    with pytest.raises(ParamError, match="got null"):
        CATALOG["Linear"].validate_params({"out_features": None})


@pytest.mark.parametrize("name, ok", [
    ("fc1", True), ("conv_block_2", True), ("A", True),
    ("", False), ("1fc", False), ("_private", False), ("a b", False), ("a-b", False),
    ("a\nb", False), ('a"b', False), ("import", False), ("match", False), ("self", False),
    ("forward", False), ("training", False), ("x" * 64, True), ("x" * 65, False), (None, False),
    ("ﬁ", False),
])
def test_names(name, ok):
    assert (name_problem(name) is None) == ok


def test_reserved_names_cover_every_attribute_of_a_torch_module():
    """RESERVED_NAMES is written out (checking a name needs no torch); a torch release that adds an
    attribute to nn.Module must fail here, not let a user name a layer after it."""
    import torch

    attributes = {n for n in dir(torch.nn.Module()) if not n.startswith("__")}
    public = {n for n in attributes if not n.startswith("_")}
    assert public - TORCH_MODULE_ATTRIBUTES == set()
    assert TORCH_MODULE_ATTRIBUTES <= RESERVED_NAMES
    # the rest start with "_", which no name may
    for name in attributes:
        assert name_problem(name) is not None, name


def test_spec_module_is_the_torch_class_named_in_the_entry():
    import torch

    assert CATALOG["Linear"].module is torch.nn.Linear
    assert CATALOG["LSTM"].module is torch.nn.LSTM and CATALOG["LSTM"].code_class == "nn.LSTM"
    assert CATALOG["Reshape"].module is None and CATALOG["Reshape"].code_class is None
    for spec in CATALOG:
        if spec.bare_parameter:  # a function making the network's own nn.Parameter
            assert spec.module.__name__ == spec.module_name and callable(spec.module), spec.id
        elif spec.module_name is not None:
            assert issubclass(spec.module, torch.nn.Module), spec.id


def test_absurd_numbers_and_control_characters_give_one_printable_line():
    from designer.engine.model.catalog import CATALOG, name_problem

    slope = next(p for p in CATALOG["LeakyReLU"].params if p.name == "negative_slope")
    with pytest.raises(ValueError, match="an integer of about 401 digits"):
        slope.validate(10**400)  # float() of it overflows
    width = next(p for p in CATALOG["Linear"].params if p.name == "out_features")
    with pytest.raises(ValueError, match="an integer of about 5001 digits") as info:
        width.validate(10**5000)  # str() of it raises in Python >= 3.11
    assert len(str(info.value)) < 200
    msg = name_problem("fc1\r\u2028\udfff")
    assert msg.isprintable() and "\\r" in msg and "\\u2028" in msg and "\\udfff" in msg
