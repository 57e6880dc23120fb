"""The graph model: edits and their events, and each structural check with an example that
triggers it and one that does not."""

from __future__ import annotations

import pytest

from designer.engine.model.graph import (
    Adjacency,
    Edge,
    Graph,
    GraphError,
    GraphEvent,
    check_structure,
)
from designer.engine.model.shapes import analyze

from .helpers import chain


def codes(graph: Graph) -> list[str]:
    return [p.code for p in check_structure(graph)]


def mlp() -> Graph:
    return chain(("Flatten", {}), ("Linear", {"out_features": 4}), ("ReLU", {}),
                 ("Linear", {"out_features": 2}), shape=(1, 4, 4))


def by_name(g: Graph, name: str) -> str:
    node = g.node_by_name(name)
    assert node is not None, name
    return node.id


def test_a_clean_chain_has_no_structural_problem():
    g = mlp()
    assert check_structure(g) == []
    assert analyze(g).ok


# -- Input / Output ------------------------------------------------------------------------------


def test_no_input():
    g = Graph()
    fc = g.add_node("Linear")
    out = g.add_node("Output")
    g.connect(fc.id, out.id)
    problems = check_structure(g)
    assert "no_input" in [p.code for p in problems]
    msg = next(p.message for p in problems if p.code == "no_input")
    assert "add one" in msg
    assert "no_input" not in codes(mlp())


def test_no_output():
    g = Graph()
    inp = g.add_node("Input")
    fc = g.add_node("Linear")
    g.connect(inp.id, fc.id)
    assert "no_output" in codes(g)
    assert "no_output" not in codes(mlp())


def test_empty_graph_reports_both_missing_ends():
    assert sorted(codes(Graph())) == ["no_input", "no_output"]


# -- names ---------------------------------------------------------------------------------------


def test_duplicate_names_are_reported_with_both_nodes():
    g = mlp()
    a, b = by_name(g, "fc1"), by_name(g, "fc2")
    g.nodes[b].name = "fc1"  # the API refuses this; a hand-edited document might not
    dup = [p for p in check_structure(g) if p.code == "duplicate_name"]
    assert len(dup) == 1 and set(dup[0].node_ids) == {a, b}
    assert "rename one" in dup[0].message
    assert "duplicate_name" not in codes(mlp())


def test_the_api_refuses_taken_and_invalid_names():
    g = mlp()
    with pytest.raises(GraphError, match="taken"):
        g.rename(by_name(g, "fc2"), "fc1")
    for bad in ("1x", "has space", "a-b", "class", "forward", "x" * 65, "", "naïve"):
        with pytest.raises(GraphError):
            g.add_node("ReLU", name=bad)
    g.rename(by_name(g, "fc2"), "head")
    assert g.node_by_name("head") is not None


# -- cycles --------------------------------------------------------------------------------------


def test_cycle_names_its_nodes_in_order():
    g = mlp()
    fc1, relu, fc2 = by_name(g, "fc1"), by_name(g, "relu1"), by_name(g, "fc2")
    add = g.add_node("Add", name="merge")
    # fc1 -> relu1 -> merge -> fc1 (merge also takes the flatten output)
    g.disconnect(g.in_edges(fc1)[0])
    g.connect(by_name(g, "flatten1"), add.id, 0)
    g.connect(relu, add.id, 1, check=False)
    g.connect(add.id, fc1, 0, check=False)
    cycles = [p for p in check_structure(g) if p.code == "cycle"]
    assert len(cycles) == 1
    assert set(cycles[0].node_ids) == {fc1, relu, add.id}
    assert "fc1 -> relu1 -> merge -> fc1" in cycles[0].message
    assert "Remove one of these connections" in cycles[0].message
    # analysis does not hang or crash; nodes in and behind the cycle are unknown
    a = analyze(g)
    assert a.infos[fc2].output_shape is None
    assert fc2 not in a.order
    assert "cycle" not in codes(mlp())


def test_can_connect_refuses_a_cycle_and_self_loop():
    g = mlp()
    fc1, fc2 = by_name(g, "fc1"), by_name(g, "fc2")
    add = g.add_node("Add")
    g.connect(fc2, add.id, 0)
    assert "cycle" in g.can_connect(add.id, fc1, 0) or "already connected" in g.can_connect(
        add.id, fc1, 0)
    g.disconnect(g.in_edges(fc1)[0])
    assert "cycle" in g.can_connect(add.id, fc1, 0)
    assert "itself" in g.can_connect(fc1, fc1, 0)
    with pytest.raises(GraphError, match="cycle"):
        g.connect(add.id, fc1)


def test_two_separate_cycles_and_a_self_loop_are_each_reported():
    g = Graph()
    names = {}
    for name in ("a", "b", "c", "d", "e"):
        names[name] = g.add_node("Add", name=name).id
    g.connect(names["a"], names["b"], check=False)
    g.connect(names["b"], names["a"], check=False)
    g.connect(names["c"], names["d"], check=False)
    g.connect(names["d"], names["c"], check=False)
    g.edges.append(Edge(names["e"], names["e"], 0))
    cycles = [set(p.node_ids) for p in check_structure(g) if p.code == "cycle"]
    assert sorted(map(sorted, cycles)) == sorted([sorted([names["a"], names["b"]]),
                                                   sorted([names["c"], names["d"]]),
                                                   [names["e"]]])


def test_dense_cyclic_graph_is_checked_quickly():
    """Listing every simple cycle of a complete graph is factorial; the check must not do it."""
    g = Graph()
    ids = [g.add_node("Add").id for _ in range(12)]
    port = {i: 0 for i in ids}
    for a in ids:
        for b in ids:
            if a != b:
                g.connect(a, b, port[b], check=False)
                port[b] += 1
    cycles = [p for p in check_structure(g) if p.code == "cycle"]
    assert len(cycles) == 1 and len(cycles[0].node_ids) >= 2


# -- ports ---------------------------------------------------------------------------------------


def test_unconnected_input():
    g = mlp()
    fc2 = by_name(g, "fc2")
    g.disconnect(g.in_edges(fc2)[0])
    problems = [p for p in check_structure(g) if p.code == "unconnected_input"]
    assert [p.node_ids for p in problems] == [(fc2,)]
    assert "Linear 'fc2' has nothing connected to its input" in problems[0].message
    assert problems[0].port == 0
    assert "unconnected_input" not in codes(mlp())


def test_too_many_inputs_into_a_fixed_port():
    g = mlp()
    fc2 = by_name(g, "fc2")
    g.connect(by_name(g, "flatten1"), fc2, 0, check=False)
    problems = [p for p in check_structure(g) if p.code == "too_many_inputs"]
    assert [p.node_ids for p in problems] == [(fc2,)]
    assert "2 connections into one input" in problems[0].message
    assert "Add or Concat" in problems[0].message
    assert "too_many_inputs" not in codes(mlp())


def test_can_connect_refuses_an_occupied_port():
    g = mlp()
    why = g.can_connect(by_name(g, "flatten1"), by_name(g, "fc2"), 0)
    assert "already connected" in why


def test_variadic_merge_with_too_few_inputs():
    g = mlp()
    fc1, relu, fc2 = by_name(g, "fc1"), by_name(g, "relu1"), by_name(g, "fc2")
    add = g.add_node("Add", name="skip")
    g.disconnect(g.in_edges(fc2)[0])
    g.connect(relu, add.id, 0)
    g.connect(add.id, fc2)
    problems = [p for p in check_structure(g) if p.code == "too_few_inputs"]
    assert [p.node_ids for p in problems] == [(add.id,)]
    assert "Add 'skip' needs at least 2 inputs but has 1" in problems[0].message
    g.connect(fc1, add.id, 1)
    assert "too_few_inputs" not in codes(g)
    assert analyze(g).ok


def test_variadic_port_used_twice():
    g = mlp()
    relu, fc2 = by_name(g, "relu1"), by_name(g, "fc2")
    add = g.add_node("Add")
    g.disconnect(g.in_edges(fc2)[0])
    g.connect(relu, add.id, 0)
    g.connect(by_name(g, "fc1"), add.id, 0, check=False)
    g.connect(add.id, fc2)
    problems = [p for p in check_structure(g) if p.code == "too_many_inputs"]
    assert [p.node_ids for p in problems] == [(add.id,)]


def test_edge_into_a_missing_port():
    g = mlp()
    fc2 = by_name(g, "fc2")
    assert "no input port" in g.can_connect(by_name(g, "flatten1"), fc2, 1)
    g.edges.append(Edge(by_name(g, "flatten1"), fc2, 1))
    problems = [p for p in check_structure(g) if p.code == "bad_port"]
    assert [p.node_ids for p in problems] == [(fc2,)]
    assert "no input port 2" in problems[0].message


def test_output_feeding_a_layer():
    g = mlp()
    out = g.outputs()[0].id
    assert "no output port" in g.can_connect(out, by_name(g, "fc1"))
    relu = g.add_node("ReLU")
    g.edges.append(Edge(out, relu.id, 0))
    assert "output_has_edges" in codes(g)


# -- reachability --------------------------------------------------------------------------------


def test_node_cut_off_from_every_input():
    g = mlp()
    fc1, relu, fc2, out = by_name(g, "fc1"), by_name(g, "relu1"), by_name(g, "fc2"), g.outputs()[0].id
    g.disconnect(g.in_edges(fc1)[0])
    problems = check_structure(g)
    # the cause, once, as an error on the layer with the empty input, naming the loose end
    assert [(p.severity, p.code, p.node_ids) for p in problems if p.is_error] == [
        ("error", "unconnected_input", (fc1,))]
    assert ("Linear 'fc1' has nothing connected to its input: connect 'flatten1' to it"
            in problems[0].message)
    # what it cuts off: one quieter warning on every layer behind it
    cut = [p for p in problems if p.code == "unreachable_from_input"]
    assert [(p.severity, p.node_ids) for p in cut] == [("warning", (relu, fc2, out))]
    assert cut[0].message == ("Not reachable from the input: 'relu1', 'fc2' and 'output1' get no "
                              "data until 'fc1' is connected")
    assert "unreachable_from_input" not in codes(mlp())


def test_node_that_leads_to_no_output():
    g = mlp()
    extra = g.add_node("Linear", name="side")
    g.connect(by_name(g, "relu1"), extra.id)
    problems = [p for p in check_structure(g) if p.code == "unreachable_to_output"]
    assert [p.node_ids for p in problems] == [(extra.id,)]
    assert "'side' does not lead to any Output" in problems[0].message
    out2 = g.add_node("Output")
    g.connect(extra.id, out2.id)
    assert check_structure(g) == []


def test_a_second_unconnected_input_is_reported():
    g = mlp()
    spare = g.add_node("Input", name="spare")
    problems = [p for p in check_structure(g) if spare.id in p.node_ids]
    assert [p.code for p in problems] == ["unreachable_to_output"]


# -- one cause, one error (issue 18: a removed wire used to put an error on every layer) -------


def _template(template_id: str) -> Graph:
    from designer.engine.document.templates import load_template

    return load_template(template_id).graph


@pytest.mark.parametrize("template_id", ["mlp-digits", "lenet5", "cnn-mnist", "resnet-mini",
                                         "transformer-text"])
def test_one_removed_wire_is_one_error(template_id):
    """Removing any single wire of a template gives exactly one error, on the layer whose input it
    fed; it names the layer whose output now goes nowhere, and no other layer has an error."""
    base = _template(template_id)
    assert analyze(base).ok
    for edge in list(base.edges):
        g = base.copy()
        g.library = base.library  # the project's blocks (resnet-mini uses one)
        g.disconnect(edge)
        a = analyze(g)
        assert not a.ok  # the design cannot train
        dst, src = g.nodes[edge.dst], g.nodes[edge.src]
        assert [(p.code, p.node_ids, p.port) for p in a.errors] == [
            ("unconnected_input" if not dst.spec.variadic else "too_few_inputs", (edge.dst,),
             edge.dst_port if not dst.spec.variadic else None)], (edge, a.errors)
        if not g.out_edges(edge.src):
            assert f"connect '{src.name}' to it" in a.errors[0].message
        for p in a.problems:
            if not p.is_error:
                assert p.code in ("unreachable_from_input", "unreachable_to_output"), p
        # no layer downstream of the cut reports an error of its own ("shape unknown")
        assert all(a.infos[n].error is None for n in g.nodes)


def test_a_removed_wire_in_mlp_digits_gives_one_error_and_two_warnings():
    g = _template("mlp-digits")
    g.disconnect(next(e for e in g.edges if e.src == "fc1"))
    a = analyze(g)
    assert [(p.severity, p.code, p.node_ids) for p in a.problems] == [
        ("error", "unconnected_input", ("relu1",)),
        ("warning", "unreachable_from_input", ("fc2", "logits")),
        ("warning", "unreachable_to_output", ("fc1",)),
    ]
    assert a.errors[0].message == ("ReLU 'relu1' has nothing connected to its input: connect "
                                   "'fc1' to it (its output goes nowhere), or delete it")
    assert "not reachable from the input" in a.problems[1].message.lower()
    # the cut-off layers have no shape, and no error of their own
    assert a.infos["fc2"].output_shape is None and a.infos["fc2"].error is None
    assert a.problems_for("image") == [] and a.problems_for("flatten") == []
    g.connect("fc1", "relu1")
    assert analyze(g).problems == []


def test_a_new_unconnected_layer_is_one_error():
    g = mlp()
    lonely = g.add_node("Linear", name="lonely")
    assert [(p.severity, p.code, p.node_ids) for p in check_structure(g)] == [
        ("error", "unconnected_input", (lonely.id,))]
    assert "connect a layer to it or delete it" in check_structure(g)[0].message
    # a layer hanging off it is cut off: a warning naming the cause
    relu = g.add_node("ReLU", name="after")
    g.connect(lonely.id, relu.id)
    cut = [p for p in check_structure(g) if p.code == "unreachable_from_input"]
    assert [(p.severity, p.node_ids) for p in cut] == [("warning", (relu.id,))]
    assert "until 'lonely' is connected" in cut[0].message


def test_a_dead_end_branch_stays_an_error_when_no_wire_is_missing():
    g = mlp()
    side = g.add_node("Linear", name="side")
    g.connect(by_name(g, "relu1"), side.id)
    problems = check_structure(g)
    assert [(p.severity, p.code, p.node_ids) for p in problems] == [
        ("error", "unreachable_to_output", (side.id,))]


def test_two_cuts_each_give_their_error_and_the_cut_off_layers_name_their_own():
    g = chain(("Flatten", {}), ("Linear", {"out_features": 4}), ("ReLU", {}),
              ("Linear", {"out_features": 3}), ("ReLU", {}), ("Linear", {"out_features": 2}),
              shape=(1, 4, 4))
    relu1, relu2, fc3 = by_name(g, "relu1"), by_name(g, "relu2"), by_name(g, "fc3")
    g.disconnect(g.in_edges(relu1)[0])
    g.disconnect(g.in_edges(relu2)[0])
    problems = check_structure(g)
    assert [(p.code, p.node_ids) for p in problems if p.is_error] == [
        ("unconnected_input", (relu1,)), ("unconnected_input", (relu2,))]
    cut = {p.node_ids: p.message for p in problems if p.code == "unreachable_from_input"}
    assert set(cut) == {(by_name(g, "fc2"),), (fc3, g.outputs()[0].id)}
    assert cut[(by_name(g, "fc2"),)].endswith("'fc2' gets no data until 'relu1' is connected")
    assert cut[(fc3, g.outputs()[0].id)].endswith("until 'relu2' is connected")


def test_a_merge_behind_two_cuts_names_both():
    g = Graph()
    inp = g.add_node("Input", params={"shape": [4]})
    fc1, fc2 = g.add_node("Linear", name="fc1"), g.add_node("Linear", name="fc2")
    add, out = g.add_node("Add", name="add"), g.add_node("Output")
    g.connect(fc1.id, add.id, 0)
    g.connect(fc2.id, add.id, 1)
    g.connect(add.id, out.id)
    problems = check_structure(g)
    assert [(p.code, p.node_ids) for p in problems if p.is_error] == [
        ("unconnected_input", (fc1.id,)), ("unconnected_input", (fc2.id,))]
    assert "connect 'input1' to it" in problems[0].message
    cut = [p for p in problems if p.code == "unreachable_from_input"]
    assert [(p.severity, p.node_ids) for p in cut] == [("warning", (add.id, out.id))]
    assert cut[0].message.endswith("until 'fc1' and 'fc2' are connected")
    g.connect(inp.id, fc1.id)
    g.connect(inp.id, fc2.id)
    assert analyze(g).ok


def test_layers_behind_a_cycle_that_no_input_feeds_get_a_warning():
    g = mlp()
    a, b = g.add_node("ReLU", name="a"), g.add_node("ReLU", name="b")
    g.connect(a.id, b.id)
    g.connect(b.id, a.id, check=False)
    c = g.add_node("ReLU", name="c")
    g.connect(b.id, c.id)
    problems = check_structure(g)
    assert [p.code for p in problems if p.is_error] == ["cycle"]
    cut = [p for p in problems if p.code == "unreachable_from_input"]
    assert [(p.severity, p.node_ids) for p in cut] == [("warning", (c.id,))]
    assert "until the cycle is broken" in cut[0].message


# -- shape errors pinned to the node -------------------------------------------------------------


def test_fixed_in_features_that_disagree_name_the_node_and_the_fix():
    # 64 channels of 5x5 after the convs: 1600 features; fc1 was written for 3136 (64*7*7)
    g = chain(("Conv2d", {"out_channels": 32, "kernel_size": 3}), ("MaxPool2d", {}),
              ("Conv2d", {"out_channels": 64, "kernel_size": 3}), ("MaxPool2d", {}),
              ("Flatten", {}), ("Linear", {"in_features": 3136, "out_features": 10}),
              shape=(1, 26, 26))
    a = analyze(g)
    fc1 = by_name(g, "fc1")
    errors = a.errors
    assert len(errors) == 1
    assert errors[0].node_ids == (fc1,)
    assert errors[0].message.startswith(
        "Linear 'fc1' receives 1600 features, but in_features is fixed to 3136")
    assert "set in_features to auto (or 1600)" in errors[0].message
    # the nodes before it are fine and the ones after it are unknown, not errors
    assert a.infos[by_name(g, "flatten1")].output_shape == (1600,)
    assert a.infos[g.outputs()[0].id].output_shape is None


@pytest.mark.parametrize("layers, shape, node, words", [
    ([("Conv2d", {"out_channels": 4, "kernel_size": 5})], (1, 3, 3), "conv1",
     "Conv2d 'conv1': input 3x3 is smaller than the kernel 5x5"),
    ([("Conv2d", {"in_channels": 3, "out_channels": 4})], (1, 8, 8), "conv1",
     "Conv2d 'conv1' receives 1 channels, but in_channels is fixed to 3"),
    ([("Conv2d", {"out_channels": 4})], (8,), "conv1",
     "Conv2d 'conv1' expects input (channels, height, width) but receives (8,)"),
    ([("Linear", {"out_features": 4})], (5,), None, None),
    ([("LSTM", {"hidden_size": 4})], (3, 4, 4), "lstm1", "LSTM 'lstm1' expects input (sequence length"),
    ([("Embedding", {})], (5,), "embed1", "needs integer token ids"),
    ([("Linear", {})], (5,), None, None),
    ([("Reshape", {"shape": [7, -1]})], (4, 5), "reshape1", "Reshape 'reshape1' cannot fit 20 elements"),
    ([("Reshape", {"shape": [3, 3]})], (4, 5), "reshape1",
     "change the target so the sizes multiply to 20"),
    ([("MultiheadAttention", {"num_heads": 3})], (5, 8), "attn1",
     "embed_dim 8 is not divisible by num_heads 3"),
    ([("Softmax", {"dim": 3})], (5, 8), "softmax1", "dim 3 is out of range"),
    ([("Permute", {"dims": [2, 1]})], (2, 3, 4), "permute1", "list each of the axes 1..3 once"),
    ([("Concat", {"dim": 1})], (2, 3), None, None),
    ([("Mean", {"dim": 1}), ("Flatten", {})], (4,), "flatten1",
     "Flatten 'flatten1' receives a single number per sample, shape ()"),
    ([("Mean", {"dim": 1}), ("Reshape", {"shape": [1]}), ("Flatten", {})], (4,), None, None),
])
def test_shape_errors_are_pinned_to_the_node_that_causes_them(layers, shape, node, words):
    if layers[0][0] == "Concat":
        return  # merges are covered below
    g = chain(*layers, shape=shape)
    a = analyze(g)
    if node is None:
        assert a.ok
        return
    assert [p.node_ids for p in a.errors] == [(by_name(g, node),)]
    assert words in a.errors[0].message
    assert f"'{node}'" in a.errors[0].message


def test_merge_shape_mismatch_names_both_shapes():
    g = Graph()
    a = g.add_node("Input", params={"shape": [3, 4]})
    b = g.add_node("Input", params={"shape": [3, 5]})
    add = g.add_node("Add", name="res")
    g.connect(a.id, add.id, 0)
    g.connect(b.id, add.id, 1)
    out = g.add_node("Output")
    g.connect(add.id, out.id)
    errors = analyze(g).errors
    assert [p.node_ids for p in errors] == [(add.id,)]
    assert ("Add 'res' needs inputs whose shapes match or broadcast (each size equal, or 1 in one "
            "of them), but input 1 is (3, 4) and input 2 is (3, 5)") in errors[0].message
    cat = g.add_node("Concat", name="cat", params={"dim": 2})
    g.disconnect(g.in_edges(out.id)[0])
    g.remove_node(add.id)
    g.connect(a.id, cat.id, 0)
    g.connect(b.id, cat.id, 1)
    g.connect(cat.id, out.id)
    result = analyze(g)
    assert result.ok and result.infos[cat.id].output_shape == (3, 9)
    g.set_params(cat.id, {"dim": 1})
    errors = analyze(g).errors
    assert "Concat 'cat'" in errors[0].message and "other sizes to agree" in errors[0].message


# -- edits and events ----------------------------------------------------------------------------


def test_each_edit_emits_one_event_only_when_something_changed():
    g = Graph()
    events: list[GraphEvent] = []
    g.subscribe(events.append)
    inp = g.add_node("Input", params={"shape": [4]})
    fc = g.add_node("Linear", name="fc")
    edge = g.connect(inp.id, fc.id)
    assert g.set_params(fc.id, {"out_features": 3}) == {"out_features": 10}
    assert g.set_params(fc.id, {"out_features": 3}) == {}
    g.rename(fc.id, "head")
    g.rename(fc.id, "head")
    g.move(fc.id, (10, 20))
    g.move(fc.id, (10, 20))
    node, removed = g.remove_node(fc.id)
    assert removed == [edge]
    kinds = [e.kind for e in events]
    assert kinds == ["node_added", "node_added", "edge_added", "params_changed", "renamed",
                     "moved", "edge_removed", "node_removed"]
    assert events[3].old == {"out_features": 10} and events[3].new == {"out_features": 3}
    # undo of the removal restores node and edge with the same ids
    g.restore_node(node)
    g.connect(edge.src, edge.dst, edge.dst_port)
    assert g.nodes[fc.id].name == "head" and g.in_edges(fc.id) == [edge]
    g.unsubscribe(events.append)
    g.move(fc.id, (0, 0))
    assert len(events) == 10


def test_invalid_params_are_refused_with_the_parameter_named():
    g = Graph()
    fc = g.add_node("Linear")
    with pytest.raises(GraphError, match=r"fc1: out_features: expected a positive integer"):
        g.set_params(fc.id, {"out_features": 0})
    with pytest.raises(GraphError, match=r'Linear has no parameter "foo"'):
        g.set_params(fc.id, {"foo": 1})
    with pytest.raises(GraphError, match="unknown layer type"):
        g.add_node("Linearr")
    assert g.nodes[fc.id].params["out_features"] == 10


def test_copy_is_independent():
    g = mlp()
    c = g.copy()
    fc1 = by_name(g, "fc1")
    g.set_params(fc1, {"out_features": 9})
    assert c.nodes[fc1].params["out_features"] == 4
    assert c.to_dict() != g.to_dict()


def test_queries():
    g = mlp()
    order = g.topological_order()
    assert [g.nodes[n].name for n in order] == ["input1", "flatten1", "fc1", "relu1", "fc2",
                                                  "output1"]
    assert g.downstream([by_name(g, "fc2")]) == {by_name(g, "fc2"), g.outputs()[0].id}
    adj = Adjacency.of(g)
    assert adj.reachable([g.outputs()[0].id], backwards=True) == set(g.nodes)
    assert adj.cycles() == []


def test_a_parameter_is_a_source_of_its_own_but_must_reach_an_output():
    g = Graph()
    x = g.add_node("Input", params={"shape": [3]})
    p = g.add_node("Parameter", params={"shape": [3]})
    add = g.add_node("Add")
    out = g.add_node("Output")
    g.connect(x.id, add.id, 0)
    g.connect(p.id, add.id, 1)
    g.connect(add.id, out.id)
    assert analyze(g).ok, [q.message for q in analyze(g).problems]
    assert g.can_connect(x.id, p.id) == f"{p.name} is a Parameter and takes no inputs"
    loose = g.add_node("Parameter", params={"shape": [3]})
    problems = check_structure(g)
    assert [(q.code, q.node_ids) for q in problems] == [("unreachable_to_output", (loose.id,))]
    g.remove_node(loose.id)
    g.remove_node(x.id)  # the batch size comes from an Input: a design still needs one
    assert "no_input" in {q.code for q in check_structure(g)}
