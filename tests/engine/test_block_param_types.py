"""Changing a block parameter's type keeps each value's meaning (issue 22, item 11): 1 becomes
true, true becomes 1, 3 becomes 3.0; a value with no meaning in the new type is refused with a
message naming the use that passes it."""

from __future__ import annotations

import pytest

from designer.engine.document.templates import load_template
from designer.engine.model.blocks import block_param, convert_value, retyped_uses
from designer.engine.model.schema import Param


def as_type(type_: str, **kw) -> Param:
    return Param("x", type_, None, "", layer=True, **kw)


@pytest.mark.parametrize(("value", "type_", "kw", "want"), [
    (1, "bool", {}, True), (0, "bool", {}, False), ("true", "bool", {}, True),
    (True, "int", {}, 1), (False, "float", {}, 0.0), (3, "float", {}, 3.0), (2.0, "int", {}, 2),
    ("2", "int", {}, 2), (2, "choice", {"choices": ("1", "2")}, "2"),
    ({"ref": "width"}, "bool", {}, {"ref": "width"}),  # a reference is checked where it is used
])
def test_a_value_keeps_its_meaning_in_the_new_type(value, type_, kw, want):
    got = convert_value(value, as_type(type_, **kw))
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(("value", "type_", "kw", "why"), [
    (64, "bool", {}, "64 is not true or false (only 0 and 1 are)"),
    (2.5, "int", {}, "2.5 is not a whole number"),
    ("wide", "float", {}, '"wide" is not a number'),
    (1, "choice", {"choices": ("a", "b")}, "1 does not fit (expected one of a, b"),
    (500, "int", {"max": 100}, "500 does not fit (500 is too large"),
])
def test_a_value_without_meaning_in_the_new_type_says_why(value, type_, kw, why):
    with pytest.raises(ValueError) as info:
        convert_value(value, as_type(type_, **kw))
    assert str(info.value).startswith(why)


def test_retyped_uses_converts_every_use_or_names_the_one_that_cannot():
    project = load_template("resnet18")
    old = project.networks["BasicBlock"].block_params
    flag = tuple(block_param(p.name, "int", int(p.default)) if p.name == "downsample" else p
                 for p in old)
    # downsample bool -> int: the first copies' true become 1
    changes = retyped_uses(project.networks, "BasicBlock", old, flag)
    assert changes and all(u["first"]["downsample"] == 1 and type(u["first"]["downsample"]) is int
                           for _, _, u in changes)
    assert {node for _, node, _ in changes} >= {"layer2", "layer3", "layer4"}
    # stride int -> bool: layer2's first copy strides 2, which is no true/false
    stride = tuple(block_param(p.name, "bool", True) if p.name == "stride" else p for p in old)
    with pytest.raises(ValueError, match="'layer2' in resnet18 gives its first copy 2"):
        retyped_uses(project.networks, "BasicBlock", old, stride)
    assert retyped_uses(project.networks, "BasicBlock", old, old) == []
