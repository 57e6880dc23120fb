"""The Analyzer after edits: it re-infers only what lies downstream of an edit, and its results
equal a fresh full analysis."""

from __future__ import annotations

import random

import pytest

from designer.engine.model.graph import Graph
from designer.engine.model.shapes import Analysis, Analyzer, analyze

from .helpers import chain


@pytest.fixture
def counted(monkeypatch):
    """Records the id of every node the Analyzer infers."""
    calls: list[str] = []
    original = Analyzer.run_node

    def spy(self, node, upstream):
        calls.append(node.id)
        return original(self, node, upstream)

    monkeypatch.setattr(Analyzer, "run_node", spy)
    return calls


def summary(a: Analysis) -> dict:
    return {
        "infos": {nid: (i.output_shape, i.dtype, i.params, i.macs, i.kwargs, i.error,
                        i.input_shapes if i.output_shape else None)
                  for nid, i in a.infos.items()},
        "problems": sorted((p.code, p.message, p.node_ids) for p in a.problems),
        "order": a.order,
    }


def assert_same_as_fresh(analyzer: Analyzer) -> Analysis:
    got = analyzer.analyze()
    assert summary(got) == summary(analyze(analyzer.graph.copy()))
    return got


def net() -> Graph:
    return chain(("Conv2d", {"out_channels": 4, "kernel_size": 3}), ("ReLU", {}),
                 ("Dropout", {"p": 0.1}), ("Flatten", {}), ("Linear", {"out_features": 8}),
                 ("ReLU", {}), ("Linear", {"out_features": 3}), shape=(2, 6, 6))


def ids(g: Graph, *names: str) -> set[str]:
    return {g.node_by_name(n).id for n in names}


def test_first_analysis_infers_every_node_once(counted):
    g = net()
    a = Analyzer(g)
    a.analyze()
    assert sorted(counted) == sorted(g.nodes)


def test_an_edit_reinfers_only_downstream_nodes(counted):
    g = net()
    a = Analyzer(g)
    a.analyze()
    counted.clear()
    g.set_params(g.node_by_name("fc1").id, {"out_features": 5})
    assert_same_as_fresh(a)  # (the fresh analysis is a separate Analyzer; count before it)
    reinferred = set(counted[: len(counted) - len(g.nodes)])
    # fc2 still gives 3 features, so the Output after it is not inferred again
    assert reinferred == ids(g, "fc1", "relu2", "fc2")
    assert reinferred <= g.downstream(ids(g, "fc1"))


def test_an_edit_that_keeps_the_shape_stops_there(counted):
    g = net()
    a = Analyzer(g)
    a.analyze()
    counted.clear()
    g.set_params(g.node_by_name("dropout1").id, {"p": 0.3})
    a.analyze()
    assert counted == [g.node_by_name("dropout1").id]
    # a conv whose padding compensates a larger kernel keeps its output shape: its own params
    # and MACs change, nothing after it is inferred again
    counted.clear()
    conv = g.node_by_name("conv1").id
    g.set_params(conv, {"kernel_size": 5, "padding": 1})
    result = assert_same_as_fresh(a)
    assert counted[:1] == [conv] and len(counted) == 1 + len(g.nodes)
    assert result.infos[conv].params == 4 * 2 * 25 + 4


def test_moving_a_node_reinfers_nothing_and_reuses_the_result(counted):
    g = net()
    a = Analyzer(g)
    first = a.analyze()
    counted.clear()
    g.move(g.node_by_name("fc1").id, (100, 50))
    assert a.analyze() is first
    assert counted == []


def test_renaming_updates_the_message_of_that_node():
    g = chain(("Linear", {"in_features": 3, "out_features": 2}), shape=(4,))
    a = Analyzer(g)
    assert "Linear 'fc1'" in a.analyze().errors[0].message
    g.rename(g.node_by_name("fc1").id, "head")
    assert "Linear 'head'" in assert_same_as_fresh(a).errors[0].message


def test_structure_edits_match_a_fresh_analysis():
    g = net()
    a = Analyzer(g)
    a.analyze()
    fc1, relu2, fc2 = (g.node_by_name(n).id for n in ("fc1", "relu2", "fc2"))
    # a skip connection around relu2 through an Add
    add = g.add_node("Add")
    g.disconnect(g.in_edges(fc2)[0])
    assert not assert_same_as_fresh(a).ok
    g.connect(relu2, add.id, 0)
    g.connect(fc1, add.id, 1)
    g.connect(add.id, fc2)
    assert assert_same_as_fresh(a).ok
    # removing a node and putting it back (undo)
    node, edges = g.remove_node(relu2)
    assert not assert_same_as_fresh(a).ok
    g.restore_node(node)
    for e in edges:
        g.connect(e.src, e.dst, e.dst_port)
    assert assert_same_as_fresh(a).ok
    # a cycle, then its removal
    e = g.connect(add.id, relu2, 0, check=False)
    assert any(p.code == "cycle" for p in assert_same_as_fresh(a).problems)
    g.disconnect(e)
    assert assert_same_as_fresh(a).ok


def test_input_dtype_change_propagates():
    g = chain(("Embedding", {"num_embeddings": 20, "embedding_dim": 4}), ("Flatten", {}),
              shape=(5,), dtype="int64")
    a = Analyzer(g)
    assert a.analyze().ok
    g.set_params(g.inputs()[0].id, {"dtype": "float32"})
    assert not assert_same_as_fresh(a).ok
    g.set_params(g.inputs()[0].id, {"dtype": "int64", "shape": [7]})
    assert assert_same_as_fresh(a).infos[g.node_by_name("flatten1").id].output_shape == (28,)


def test_random_edit_sequences_match_a_fresh_analysis():
    rng = random.Random(1234)
    g = net()
    a = Analyzer(g)
    a.analyze()
    edits = [
        ("conv1", {"out_channels": lambda: rng.randint(1, 6)}),
        ("conv1", {"kernel_size": lambda: rng.randint(1, 7)}),
        ("conv1", {"padding": lambda: rng.randint(0, 3)}),
        ("fc1", {"out_features": lambda: rng.randint(1, 9)}),
        ("fc1", {"in_features": lambda: rng.choice([None, 64, 16])}),
        ("fc2", {"in_features": lambda: rng.choice([None, 8, 5])}),
        ("dropout1", {"p": lambda: rng.random() * 0.9}),
        ("input1", {"shape": lambda: [rng.randint(1, 3), rng.randint(2, 8), rng.randint(2, 8)]}),
    ]
    for _ in range(60):
        name, change = rng.choice(edits)
        g.set_params(g.node_by_name(name).id, {k: v() for k, v in change.items()})
        assert_same_as_fresh(a)


def test_a_wire_removed_and_put_back_on_a_live_analyzer(counted):
    """The canvas's path (issue 18): one error while the wire is missing, no shape errors
    downstream, and after it is put back only the cut-off layers are inferred again."""
    g = net()
    a = Analyzer(g)
    a.analyze()
    fc1 = g.node_by_name("fc1").id
    edge = g.in_edges(fc1)[0]
    g.disconnect(edge)
    got = assert_same_as_fresh(a)
    assert [(p.code, p.node_ids) for p in got.errors] == [("unconnected_input", (fc1,))]
    assert all(info.error is None for info in got.infos.values())
    counted.clear()
    g.connect(edge.src, edge.dst)
    assert a.analyze().ok
    assert sorted(counted) == sorted(ids(g, "fc1", "relu2", "fc2") | {g.outputs()[0].id})
    assert_same_as_fresh(a)
