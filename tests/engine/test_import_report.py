"""The import report (designer.engine.interop.importing.report): each cause once with its count
and where, the summary line saying how much of the design is editable, and reasons that stay one
line whatever torch's error texts span. Reports made by hand: no model is imported."""

from __future__ import annotations

import json

import pytest

from designer.engine.interop.importing import ImportFailed
from designer.engine.interop.importing.report import (
    REASON_CHARS,
    ImportReport,
    Unsupported,
    one_line,
)

BUFFER = "{}.running_mean is a buffer or constant tensor used in forward"


def failing_report() -> ImportReport:
    """Three BatchNormAct2d-like buffers, two cumsums and one trace failure, interleaved."""
    entries = [
        Unsupported("blocks.0.bn", "get_attr", BUFFER.format("blocks.0.bn")),
        Unsupported("head.a", "cumsum", "no designer layer for this function"),
        Unsupported("blocks.1.bn", "get_attr", BUFFER.format("blocks.1.bn"), "m.py:3: bn(x)"),
        Unsupported("", "trace", "torch.fx cannot trace its forward: data-dependent"),
        Unsupported("head.b", "cumsum", "no designer layer for this function", "m.py:9: c(x)"),
        Unsupported("blocks.2.bn", "get_attr", BUFFER.format("blocks.2.bn")),
    ]
    return ImportReport("Net", [3, 8, 8], unsupported=entries)


def test_causes_group_entries_by_op_and_reason_most_frequent_first():
    report = failing_report()
    causes = report.causes()
    assert [(c.op, c.count) for c in causes] == [("get_attr", 3), ("cumsum", 2), ("trace", 1)]
    buffers, cumsum, trace = causes
    assert buffers.paths == ["blocks.0.bn", "blocks.1.bn", "blocks.2.bn"]
    assert buffers.reason == BUFFER.format("blocks.0.bn")  # the first entry's own words
    assert buffers.source == "m.py:3: bn(x)"  # the first source recorded
    assert cumsum.paths == ["head.a", "head.b"] and trace.paths == [""]
    assert len(report.unsupported) == 6  # every entry is kept


def test_equal_counts_keep_the_order_met_and_other_ops_stay_apart():
    report = ImportReport("Net", [4], unsupported=[
        Unsupported("a", "sort", "no designer layer for this function"),
        Unsupported("b", "cumsum", "no designer layer for this function"),
        Unsupported("c", "cumsum", "no designer layer for this function"),
        Unsupported("d", "sort", "no designer layer for this function"),
        Unsupported("e", "flatten", "flatten from dim 2 to -1"),
        Unsupported("f", "flatten", "flatten from dim 1 to 2"),  # numbers aside, one cause
    ])
    assert [(c.op, c.count) for c in report.causes()] == [("sort", 2), ("cumsum", 2),
                                                          ("flatten", 2)]


def test_a_cause_keeps_the_first_few_places_and_counts_them_all():
    entries = [Unsupported(f"layers.{i}.act", "gelu", "no designer layer for this function")
               for i in range(12)]
    entries += [Unsupported("layers.0.act", "gelu", "no designer layer for this function")]
    (cause,) = ImportReport("Net", [4], unsupported=entries).causes()
    assert cause.count == 13 and cause.places == 12
    assert cause.paths == [f"layers.{i}.act" for i in range(5)]
    assert str(cause) == ("gelu: no designer layer for this function (13 times in 12 places: "
                          "layers.0.act, layers.1.act, layers.2.act, layers.3.act, layers.4.act, "
                          "...)")


def test_the_failed_summary_shows_each_cause_once_with_its_count_and_places():
    report = failing_report()
    assert report.summary().splitlines() == [
        "Net: 6 part(s) have no designer layer, 3 causes:",
        (f"- get_attr: {BUFFER.format('blocks.0.bn')} (3 places: blocks.0.bn, blocks.1.bn, "
         "blocks.2.bn) [m.py:3: bn(x)]"),
        ("- cumsum: no designer layer for this function (2 places: head.a, head.b) "
         "[m.py:9: c(x)]"),
        "- trace: torch.fx cannot trace its forward: data-dependent (1 place: (top))",
    ]
    assert str(ImportFailed(report)) == report.summary()


def test_the_summary_of_one_cause_in_many_places_stays_short():
    entries = [Unsupported(f"stages.{i}.blocks.{j}.norm", "BatchNormAct2d",
                           "calls batch_norm on its own weights")
               for i in range(4) for j in range(150)]
    report = ImportReport("Net", [3, 8, 8], unsupported=entries)
    lines = report.summary().splitlines()
    assert len(lines) == 2 and "(600 places: stages.0.blocks.0.norm, " in lines[1]
    assert lines[1].endswith(", ...)")


def test_to_dict_keeps_every_entry_and_adds_the_causes():
    data = json.loads(failing_report().to_json())
    assert data["ok"] is False and len(data["unsupported"]) == 6
    assert [c["count"] for c in data["causes"]] == [3, 2, 1]
    assert data["causes"][0] == {"op": "get_attr", "reason": BUFFER.format("blocks.0.bn"),
                                 "count": 3, "paths": ["blocks.0.bn", "blocks.1.bn",
                                                       "blocks.2.bn"],
                                 "source": "m.py:3: bn(x)", "places": 3}
    assert data["functions"] == 0 and data["input_dtype"] == "float32"
    ok = ImportReport("Net", [4]).to_dict()
    assert ok["ok"] is True and ok["causes"] == []


def test_the_ok_summary_is_unchanged_without_editable_counts():
    report = ImportReport("resnet18", [3, 32, 32], blocks={"BasicBlock": 8}, layers=30,
                          parameters=11_689_512)
    assert report.summary() == ("resnet18: 30 layers, 1 block definitions, 11,689,512 "
                                "parameters")


def test_the_ok_summary_says_how_much_is_editable():
    report = ImportReport("GPT2LMHeadModel", [16], blocks={"a": 1, "b": 1, "c": 2}, layers=57,
                          parameters=1_234, functions=16, editable_layers=41,
                          editable_parameters=1_218)
    assert report.summary() == ("GPT2LMHeadModel: 57 layers (41 editable, 16 kept as code), "
                                "3 block definitions, 1,234 parameters (98.7% in editable "
                                "layers)")
    report.editable_parameters = 1_233  # 99.92%: not rounded up to all of them
    assert "(99.9% in editable layers)" in report.summary()
    report.functions, report.editable_parameters = 0, 1_234
    assert "(41 editable, 0 kept as code)" in report.summary()
    assert "(100.0% in editable layers)" in report.summary()


def test_the_ok_summary_names_several_outputs_and_a_non_float_input():
    report = ImportReport("GPT2LMHeadModel", [16], layers=5, parameters=10, input_dtype="int64",
                          outputs={"logits": "the model's output 'logits'",
                                   "hidden_states": "the model's output 'hidden_states'"})
    assert report.summary() == ("GPT2LMHeadModel: 5 layers, 0 block definitions, 10 parameters, "
                                "int64 input, outputs: logits (first), hidden_states")
    report.outputs = {"logits": "the model's output 'logits'"}  # one output: nothing to say
    assert report.summary().endswith("10 parameters, int64 input")


def _raise_multi_line() -> None:
    raise RuntimeError("\nDynamic control flow is not supported at the moment.\n\n"
                       "  File \"m.py\", line 3, in forward\n    if x.sum() > 0:\n"
                       "For more information, run with TORCH_LOGS=\"+dynamic\".")


def test_one_line_keeps_the_first_line_of_a_multi_line_exception():
    with pytest.raises(RuntimeError) as info:
        _raise_multi_line()
    assert one_line(info.value) == "Dynamic control flow is not supported at the moment."
    assert one_line(ValueError()) == "ValueError"  # no text: the exception's type
    assert one_line("  a reason  ") == "a reason"
    long = one_line("x" * 1000 + "\nmore")
    assert len(long) == REASON_CHARS and long.endswith("…")


def test_a_reason_stays_one_line_however_it_is_set():
    entry = Unsupported("", "trace", "torch.fx cannot trace its forward: first\nsecond\nthird")
    assert entry.reason == "torch.fx cannot trace its forward: first"
    entry.reason += "; its torch.export program does not run: boom\n  File x.py\n"
    assert entry.reason == ("torch.fx cannot trace its forward: first; its torch.export "
                            "program does not run: boom")
