"""Blocks (designer.engine.model.blocks): a network of the project used as a layer.

References to block parameters, layers switched off, repeat and first-copy values, nesting, the
file format (cycles and missing blocks refused with their place, round trips), the edits (group,
ungroup, make unique) and their undo through whole-network restore, and the incremental analyzer
following an edit inside a definition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import (
    Project,
    ProjectError,
    load_project,
    project_from_dict,
    project_from_json,
    project_to_json,
    save_project,
)
from designer.engine.model.blocks import (
    block_param,
    group,
    make_unique,
    networks_state,
    restore_networks,
    ungroup,
)
from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph, GraphError
from designer.engine.model.shapes import Analyzer, analyze

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "designer" / "templates"


def ref(name: str, mul: int = 1) -> dict:
    return {"ref": name} if mul == 1 else {"ref": name, "mul": mul}


def chain(graph: Graph, *layers: tuple) -> Graph:
    """Add ``(type, name, params)`` layers, each fed by the one before; ids are the names."""
    last = None
    for type_, name, *rest in layers:
        graph.add_node(type_, name, rest[0] if rest else {}, id=name)
        if last is not None:
            graph.connect(last, name)
        last = name
    return graph


def dense_block(out=None, params=(("width", 8),)) -> Graph:
    """Input [4] -> Linear fc (out_features: a reference to ``width`` by default) -> Output."""
    g = Graph()
    g.set_block_params([block_param(name, "int", default, min=None) for name, default in params])
    return chain(g, ("Input", "input", {"shape": [4]}),
                 ("Linear", "fc", {"out_features": out if out is not None else ref("width")}),
                 ("Output", "output"))


def project_with(main_layers: tuple, **blocks: Graph) -> Project:
    main = chain(Graph(), *main_layers)
    return Project(name="blocks", networks={"main": main, **blocks})


def use(name: str, block: str, **params) -> tuple:
    return ("Block", name, {"block": block, **params})


def errors(analysis) -> list[tuple[str, tuple]]:
    return [(p.message, p.node_ids) for p in analysis.errors]


def check_forward(project: Project, in_shape: tuple) -> None:
    """The analysis's output shape and parameter count are those of the built model."""
    analysis = analyze(project.graph)
    assert analysis.ok, errors(analysis)
    model = build_model(project.graph, analysis, seed=0)
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(2, *in_shape))
    (out,) = project.graph.outputs()
    assert tuple(y.shape[1:]) == analysis.infos[out.id].output_shape
    assert sum(p.numel() for p in model.parameters()) == analysis.total_params


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------


def test_a_reference_takes_the_value_of_the_use():
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense", args={"width": 6}),
                      ("Output", "out")), Dense=dense_block(out=ref("width", 3)))
    a = analyze(p.graph)
    assert a.infos["b"].output_shape == (18,) and a.infos["b"].params == 4 * 18 + 18
    check_forward(p, (4,))


def test_a_reference_to_an_undeclared_parameter_names_it():
    dense = dense_block(out=ref("widht"))
    alone = analyze(dense)  # in the definition: on the layer
    assert errors(alone) == [(
        ("Linear 'fc': out_features refers to block parameter 'widht', which this network does "
         "not declare: add it to the block's parameters, or set a value"), ("fc",))]
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense"), ("Output", "out")),
                     Dense=dense)
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("b",)  # pinned to the use
    assert message.startswith("in block 'Dense' used as 'b': Linear 'fc': out_features refers "
                              "to block parameter 'widht'")


def test_a_value_the_layer_refuses_through_a_reference_is_pinned_to_the_use():
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense", args={"width": 0}),
                      ("Output", "out")), Dense=dense_block())
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("b",)
    assert message.startswith("in block 'Dense' used as 'b': Linear 'fc': out_features = width "
                              "(0): ")
    # a shape the layer refuses: a kernel larger than the image the use feeds
    conv = Graph()
    conv.set_block_params([block_param("k", "int", 3, min=1)])
    chain(conv, ("Input", "input", {"shape": [1, 8, 8]}),
          ("Conv2d", "conv", {"out_channels": 2, "kernel_size": ref("k")}), ("Output", "output"))
    p = project_with((("Input", "inp", {"shape": [1, 8, 8]}), use("c", "Conv", args={"k": 9}),
                      ("Output", "out")), Conv=conv)
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("c",) and message.startswith("in block 'Conv' used as 'c': Conv2d 'conv'")
    assert "9" in message


def test_an_argument_the_block_does_not_declare_is_refused():
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense", args={"depth": 2}),
                      ("Output", "out")), Dense=dense_block())
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("b",) and "no parameter 'depth'" in message and "width" in message


# --------------------------------------------------------------------------------------------
# when, repeat, nesting
# --------------------------------------------------------------------------------------------


def _switchable() -> Graph:
    g = Graph()
    g.set_block_params([block_param("on", "bool", False)])
    chain(g, ("Input", "input", {"shape": [4]}), ("Linear", "fc", {"out_features": 4}),
          ("Output", "output"))
    g.set_when("fc", "on")
    return g


def test_a_layer_switched_off_holds_no_weights_and_passes_its_input_through():
    p = project_with((("Input", "inp", {"shape": [4]}), use("off", "Switch"),
                      use("on", "Switch", args={"on": True}), ("Output", "out")),
                     Switch=_switchable())
    a = analyze(p.graph)
    assert a.ok and a.infos["off"].params == 0 and a.infos["on"].params == 20
    model = build_model(p.graph, a, seed=0)
    assert list(model.state_dict()) == ["on.fc.weight", "on.fc.bias"]
    assert model.off.fc is None
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(model.off(x), x)
        torch.testing.assert_close(model(x), model.on.fc(x))
    check_forward(p, (4,))


def test_when_names_a_bool_parameter_of_the_block():
    g = _switchable()
    g.set_block_params([block_param("on", "int", 1)])
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Switch"), ("Output", "out")),
                     Switch=g)
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("b",) and "switched on by 'on', which is not a bool parameter" in message


def test_repeat_runs_copies_numbered_like_sequential_and_the_first_takes_its_values():
    p = project_with((("Input", "inp", {"shape": [4]}),
                      use("stage", "Dense", repeat=3, args={"width": 4}, first={"width": 16}),
                      ("Output", "out")), Dense=dense_block())
    a = analyze(p.graph)
    # copy 0: 4 -> 16 (first), copies 1 and 2: 16 -> 4 and 4 -> 4
    assert a.infos["stage"].output_shape == (4,)
    assert a.infos["stage"].params == (4 * 16 + 16) + (16 * 4 + 4) + (4 * 4 + 4)
    model = build_model(p.graph, a)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        ("stage.0.fc.weight", (16, 4)), ("stage.0.fc.bias", (16,)),
        ("stage.1.fc.weight", (4, 16)), ("stage.1.fc.bias", (4,)),
        ("stage.2.fc.weight", (4, 4)), ("stage.2.fc.bias", (4,))]
    check_forward(p, (4,))


def test_an_error_in_a_later_copy_names_the_copy():
    p = project_with((("Input", "inp", {"shape": [4]}),
                      use("stage", "Dense", repeat=2, args={"width": 0}, first={"width": 4}),
                      ("Output", "out")), Dense=dense_block())
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("stage",) and message.startswith("in block 'Dense' used as 'stage.1': ")


def test_nested_blocks_pass_their_values_on():
    outer = Graph()
    outer.set_block_params([block_param("w", "int", 2, min=1)])
    chain(outer, ("Input", "input", {"shape": [4]}),
          use("inner", "Dense", args={"width": ref("w", 2)}), ("ReLU", "act"),
          use("last", "Dense", args={"width": ref("w")}), ("Output", "output"))
    p = project_with((("Input", "inp", {"shape": [4]}), use("o", "Outer", args={"w": 3}),
                      ("Output", "out")), Outer=outer, Dense=dense_block())
    a = analyze(p.graph)
    assert a.infos["o"].output_shape == (3,)
    assert a.infos["o"].params == (4 * 6 + 6) + (6 * 3 + 3)
    model = build_model(p.graph, a)
    assert list(model.state_dict()) == ["o.inner.fc.weight", "o.inner.fc.bias",
                                        "o.last.fc.weight", "o.last.fc.bias"]
    check_forward(p, (4,))


def test_a_sequential_block_numbers_its_modules():
    g = dense_block()
    g.set_sequential(True)
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense"), ("Output", "out")),
                     Dense=g)
    assert list(build_model(p.graph).state_dict()) == ["b.0.weight", "b.0.bias"]


# --------------------------------------------------------------------------------------------
# Cycles and missing blocks
# --------------------------------------------------------------------------------------------


def _doc(project: Project) -> dict:
    return json.loads(project_to_json(project))


def test_a_definition_cycle_is_refused_at_load_with_the_chain():
    a = chain(Graph(), ("Input", "input", {"shape": [4]}), use("b", "B"), ("Output", "output"))
    b = chain(Graph(), ("Input", "input", {"shape": [4]}), use("a", "A"), ("Output", "output"))
    main = chain(Graph(), ("Input", "inp", {"shape": [4]}), use("a", "A"), ("Output", "out"))
    doc = _doc(Project(networks={"main": main, "A": a, "B": b}))
    with pytest.raises(ProjectError, match=r"the block definitions form a cycle: A -> B -> A"):
        project_from_dict(doc)


def test_a_definition_cycle_made_by_an_edit_is_an_error_on_the_use():
    p = project_with((("Input", "inp", {"shape": [4]}), use("a", "A"), ("Output", "out")),
                     A=chain(Graph(), ("Input", "input", {"shape": [4]}), use("b", "B"),
                             ("Output", "output")),
                     B=dense_block())
    assert analyze(p.graph).ok
    b = p.networks["B"]
    b.add_node("Block", "back", {"block": "A"}, id="back")
    b.connect("fc", "back")
    b.disconnect(b.in_edges("output")[0])
    b.connect("back", "output")
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("a",)
    assert "block definitions form a cycle (A -> B -> A -> ...)" in message
    assert analyze(p.graph).errors[0].code == "block_cycle"


def test_a_missing_block_is_refused_at_load_with_its_place():
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense"), ("Output", "out")),
                     Dense=dense_block())
    doc = _doc(p)
    doc["networks"][0]["nodes"][1]["params"]["block"] = "Nope"
    with pytest.raises(ProjectError, match=r"networks\[0\]\.nodes\[1\]\.params\.block: 'b' uses "
                       r"block \"Nope\", which is not a network of this project \(its networks: "
                       r"'main', 'Dense'\)"):
        project_from_dict(doc)
    # removed after loading: an error on the use, naming the networks there are
    p.remove_network("Dense")
    (message, ids), = errors(analyze(p.graph))
    assert ids == ("b",) and "uses block 'Dense', which is not a network of this project" in message


# --------------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------------


def test_a_version_1_flat_file_loads_unchanged():
    text = (TEMPLATES / "cnn-mnist.dnn.json").read_text(encoding="utf-8")
    current = json.loads(text)
    v1 = json.loads(text)
    v1["format_version"] = 1
    for net in v1["networks"]:  # what format 2 added is absent from a version 1 file
        for key in ("block_params", "sequential"):
            net.pop(key, None)
        for node in net["nodes"]:
            node.pop("when", None)
    loaded = project_from_dict(v1)
    assert loaded.to_dict() == project_from_dict(current).to_dict()
    assert analyze(loaded.graph).total_params == 431_080


@pytest.mark.parametrize("tid", ["resnet-mini", "resnet18", "mobilenet-v2", "vit-tiny"])
def test_a_project_with_blocks_round_trips_exactly(tid, tmp_path):
    project = load_project(TEMPLATES / f"{tid}.dnn.json")
    again = project_from_json(project_to_json(project))
    assert again.to_dict() == project.to_dict()
    saved = load_project(save_project(project, tmp_path / "p.dnn.json"))
    assert saved.to_dict() == project.to_dict()
    assert (tmp_path / "p.dnn.json").read_text(encoding="utf-8") == (
        TEMPLATES / f"{tid}.dnn.json").read_text(encoding="utf-8")


def test_block_parameters_when_and_sequential_round_trip():
    g = _switchable()
    g.set_sequential(True)
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Switch", args={"on": True},
                                                          repeat=2, first={"on": False}),
                      ("Output", "out")), Switch=g)
    again = project_from_json(project_to_json(p))
    assert again.to_dict() == p.to_dict()
    sw = again.networks["Switch"]
    assert sw.sequential and sw.nodes["fc"].when == "on"
    assert [(q.name, q.type, q.default) for q in sw.block_params] == [("on", "bool", False)]
    check_forward(again, (4,))


# --------------------------------------------------------------------------------------------
# Edits and their undo
# --------------------------------------------------------------------------------------------


def _mlp() -> Project:
    return project_with((("Input", "inp", {"shape": [8]}), ("Linear", "fc1", {"out_features": 16}),
                         ("ReLU", "relu"), ("Linear", "fc2", {"out_features": 4}),
                         ("Output", "out")))


def _summary(project: Project) -> tuple:
    a = analyze(project.graph)
    assert a.ok, errors(a)
    (out,) = project.graph.outputs()
    return a.infos[out.id].output_shape, a.total_params


def test_group_then_ungroup_keeps_the_design():
    p = _mlp()
    before = _summary(p)
    use_id = group(p, "main", ["fc1", "relu"], "Hidden")
    assert list(p.networks) == ["main", "Hidden"]
    assert p.graph.nodes[use_id].type == "Block" and _summary(p) == before
    check_forward(p, (8,))
    added = ungroup(p, "main", use_id)
    assert sorted(p.graph.nodes[n].type for n in added) == ["Linear", "ReLU"]
    assert _summary(p) == before
    check_forward(p, (8,))


def test_a_grouped_block_reads_left_to_right():
    """The starter wraps its layers onto two rows (relu1 left of fc1, one row down); grouped, the
    block's Input, fc1, relu1 and Output stand left to right on one row."""
    p = load_project(TEMPLATES / "mlp-digits.dnn.json")
    g = p.graph
    ids = [g.node_by_name(n).id for n in ("fc1", "relu1")]
    assert g.nodes[ids[1]].pos[0] < g.nodes[ids[0]].pos[0]  # as the template draws them
    group(p, "model", ids, "Dense")
    d = p.networks["Dense"]
    xs = [d.node_by_name(n).pos[0] for n in ("input", "fc1", "relu1", "output")]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert len({d.node_by_name(n).pos[1] for n in ("input", "fc1", "relu1", "output")}) == 1


def test_ungroup_puts_the_bound_values_and_leaves_out_layers_switched_off():
    p = load_project(TEMPLATES / "resnet-mini.dnn.json")
    before = _summary(p)
    for name in ("b1", "b2", "b3"):
        (nid,) = [n.id for n in p.graph.nodes.values() if n.name == name]
        ungroup(p, "model", nid)
    assert _summary(p) == before
    assert not [n for n in p.graph.nodes.values() if n.type == "Block"]
    names = {n.name for n in p.graph.nodes.values()}
    assert "b2_proj" in names and "b1_proj" not in names  # b1 does not project
    assert all(not isinstance(v, dict) for n in p.graph.nodes.values() for v in n.params.values())


def test_group_refuses_a_selection_with_two_outputs():
    p = project_with((("Input", "inp", {"shape": [8]}), ("Linear", "a", {"out_features": 4}),
                      ("Linear", "b", {"out_features": 4}), ("Output", "out")))
    p.graph.add_node("Output", "z", id="z")
    p.graph.connect("a", "z")
    before = p.to_dict()
    with pytest.raises(GraphError, match="a block has one output"):
        group(p, "main", ["a", "b"], "Two")
    assert p.to_dict() == before


def _edits():
    def do_group(p):
        group(p, "model", ["stem", "stem_bn", "stem_relu"], "Stem")

    def do_ungroup(p):
        ungroup(p, "model", "b2")

    def do_unique(p):
        name = make_unique(p, "model", "b3")
        assert name == "ResidualBlock2" and p.graph.nodes["b3"].params["block"] == name
        p.networks[name].set_params("conv2", {"kernel_size": 5, "padding": 2})

    return [do_group, do_ungroup, do_unique]


@pytest.mark.parametrize("edit", _edits(), ids=["group", "ungroup", "make_unique"])
def test_an_edit_is_undone_and_redone_by_restoring_the_networks(edit):
    p = load_project(TEMPLATES / "resnet-mini.dnn.json")
    graphs = dict(p.networks)
    original = p.to_dict()
    before = networks_state(p)
    edit(p)
    changed = p.to_dict()
    assert changed != original
    after = networks_state(p)
    restore_networks(p, before)  # undo
    assert p.to_dict() == original
    assert all(p.networks[k] is g for k, g in graphs.items())  # the same Graph objects stay
    assert analyze(p.graph).total_params == 78_042
    restore_networks(p, after)  # redo
    assert p.to_dict() == changed
    assert analyze(p.graph).ok


def test_make_unique_changes_one_use_alone():
    p = load_project(TEMPLATES / "resnet-mini.dnn.json")
    name = make_unique(p, "model", "b3")
    assert list(p.networks) == ["model", "ResidualBlock", name]
    p.networks[name].set_params("conv2", {"kernel_size": 5, "padding": 2})
    a = analyze(p.graph)
    original = analyze(load_project(TEMPLATES / "resnet-mini.dnn.json").graph)
    assert a.infos["b3"].params - original.infos["b3"].params == 64 * 64 * (25 - 9)
    assert a.infos["b2"].params == original.infos["b2"].params  # b2 keeps ResidualBlock
    assert p.graph.nodes["b2"].params["block"] == "ResidualBlock"


# --------------------------------------------------------------------------------------------
# Incremental analysis
# --------------------------------------------------------------------------------------------


def test_the_analyzer_of_the_main_network_follows_an_edit_inside_a_definition():
    p = project_with((("Input", "inp", {"shape": [4]}), use("b", "Dense", args={"width": 8}),
                      ("Linear", "head", {"out_features": 2}), ("Output", "out")),
                     Dense=dense_block())
    analyzer = Analyzer(p.graph)
    try:
        first = analyzer.analyze()
        assert first.infos["b"].output_shape == (8,) and first.total_params == 40 + 18
        assert analyzer.analyze() is first  # nothing changed: the same analysis
        p.networks["Dense"].set_params("fc", {"out_features": ref("width", 2)})
        second = analyzer.analyze()
        assert second.infos["b"].output_shape == (16,)
        assert second.infos["b"].params == 4 * 16 + 16
        assert second.infos["head"].params == 16 * 2 + 2  # what it feeds follows
        fresh = analyze(p.graph)
        assert second.total_params == fresh.total_params
        # an edit that breaks the inside is an error on the use; fixing it clears it
        p.networks["Dense"].set_params("fc", {"out_features": ref("nope")})
        assert [ids for _, ids in errors(analyzer.analyze())] == [("b",)]
        p.networks["Dense"].set_params("fc", {"out_features": ref("width")})
        assert analyzer.analyze().ok and analyzer.analyze().infos["b"].output_shape == (8,)
        # a new default of a block parameter reaches a use that does not set it
        p.graph.set_params("b", {"args": {}})
        p.networks["Dense"].set_block_params([block_param("width", "int", 5)])
        assert analyzer.analyze().infos["b"].output_shape == (5,)
    finally:
        analyzer.close()


def test_the_analyzer_follows_an_edit_in_a_nested_definition():
    outer = chain(Graph(), ("Input", "input", {"shape": [4]}), use("inner", "Dense"),
                  ("Output", "output"))
    p = project_with((("Input", "inp", {"shape": [4]}), use("o", "Outer"), ("Output", "out")),
                     Outer=outer, Dense=dense_block())
    analyzer = Analyzer(p.graph)
    try:
        assert analyzer.analyze().infos["o"].output_shape == (8,)
        p.networks["Dense"].set_params("fc", {"out_features": 3})
        a = analyzer.analyze()
        assert a.infos["o"].output_shape == (3,) and a.total_params == 15
    finally:
        analyzer.close()


def test_the_analyzer_follows_an_edit_inside_resnet_minis_block():
    p = load_project(TEMPLATES / "resnet-mini.dnn.json")
    analyzer = Analyzer(p.graph)
    try:
        assert analyzer.analyze().total_params == 78_042
        p.networks["ResidualBlock"].set_params("conv2", {"kernel_size": 5, "padding": 2})
        a = analyzer.analyze()
        assert a.ok and a.total_params == analyze(p.graph).total_params
        assert a.total_params == 78_042 + (16 * 16 + 32 * 32 + 64 * 64) * (25 - 9)
        p.networks["ResidualBlock"].set_params("conv2", {"padding": 0})  # 4 px smaller
        a = analyzer.analyze()
        assert [ids for _, ids in errors(a)] == [("b1",)]  # the first use that breaks
        assert "used as 'b1'" in a.errors[0].message
    finally:
        analyzer.close()
