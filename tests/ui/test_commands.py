"""Undo and redo of every command type restore the exact graph (compared as ``to_dict()``)."""

from __future__ import annotations

import random

import pytest

from designer.engine.document.project import Project
from designer.engine.model.graph import GraphError
from designer.ui.document import Document


@pytest.fixture
def doc(qtbot):
    d = Document()
    yield d
    d.close()


def _chain(doc: Document) -> dict[str, str]:
    """Input(16) -> fc1 -> relu -> fc2 -> Output, plus an Add merging fc1 and fc2 paths."""
    ids = {
        "inp": doc.add_node("Input", (0, 0), {"shape": [16]}, name="inp"),
        "fc1": doc.add_node("Linear", (200, 0), {"out_features": 8}, name="fc1"),
        "relu": doc.add_node("ReLU", (400, 0), name="relu"),
        "fc2": doc.add_node("Linear", (600, 0), {"out_features": 8}, name="fc2"),
        "add": doc.add_node("Add", (800, 0), name="add"),
        "out": doc.add_node("Output", (1000, 0), name="out"),
    }
    doc.connect(ids["inp"], ids["fc1"], 0)
    doc.connect(ids["fc1"], ids["relu"], 0)
    doc.connect(ids["relu"], ids["fc2"], 0)
    doc.connect(ids["fc2"], ids["add"], 0)
    doc.connect(ids["fc1"], ids["add"], 1)
    doc.connect(ids["add"], ids["out"], 0)
    return ids


def _check_round_trip(doc: Document, edit, expected_text: str | None = None) -> None:
    """Apply ``edit`` (one undo step), then undo and redo it twice, comparing whole graphs."""
    before = doc.graph.to_dict()
    count = doc.undo_stack.count()
    edit()
    after = doc.graph.to_dict()
    assert after != before, "the edit changed nothing"
    assert doc.undo_stack.count() == count + 1, "one edit must be exactly one undo step"
    if expected_text is not None:
        assert doc.undo_stack.undoText() == expected_text
    for _ in range(2):
        doc.undo_stack.undo()
        assert doc.graph.to_dict() == before
        doc.undo_stack.redo()
        assert doc.graph.to_dict() == after


def test_add_node(doc):
    _check_round_trip(doc, lambda: doc.add_node("Linear", (10, 20), {"out_features": 3}),
                      "Add Linear 'fc1'")


def test_remove_nodes_restores_edges_in_order(doc):
    ids = _chain(doc)
    # fc1 has edges in the middle of the edge list: order and node order must come back exactly.
    _check_round_trip(doc, lambda: doc.remove_nodes([ids["fc1"], ids["add"]]), "Delete 2 layers")
    _check_round_trip(doc, lambda: doc.remove_nodes([ids["relu"]]), "Delete ReLU 'relu'")


def test_remove_nodes_and_edges_in_one_step(doc):
    ids = _chain(doc)
    edge = next(e for e in doc.graph.edges if e.src == ids["inp"])
    _check_round_trip(doc, lambda: doc.remove([ids["out"]], [edge]))


def test_connect_and_disconnect(doc):
    ids = _chain(doc)
    edge = next(e for e in doc.graph.edges if e.dst == ids["fc2"])
    _check_round_trip(doc, lambda: doc.disconnect(edge), "Disconnect 'relu' from 'fc2'")
    _check_round_trip(doc, lambda: doc.connect(ids["fc1"], ids["fc2"], 0),
                      "Connect 'fc1' to 'fc2'")


def test_reconnect(doc):
    ids = _chain(doc)
    edge = next(e for e in doc.graph.edges if e.dst == ids["fc2"])
    # Moving relu->fc2 to inp->fc2 is one step, and the port the edge held is free for itself.
    _check_round_trip(doc, lambda: doc.reconnect(edge, ids["inp"], ids["fc2"], 0))


def test_move(doc):
    ids = _chain(doc)
    moves = {ids["fc1"]: ((200.0, 0.0), (210.0, 50.0)), ids["relu"]: ((400.0, 0.0), (420.0, 60.0))}
    _check_round_trip(doc, lambda: doc.move_nodes(moves), "Move 2 layers")


def test_move_already_applied_live(doc):
    """The canvas moves nodes in the model while dragging; the command only records the gesture."""
    ids = _chain(doc)
    before = doc.graph.to_dict()
    doc.graph.move(ids["fc1"], (300.0, 300.0))
    doc.move_nodes({ids["fc1"]: ((200.0, 0.0), (300.0, 300.0))})
    after = doc.graph.to_dict()
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
    doc.undo_stack.redo()
    assert doc.graph.to_dict() == after


def test_set_params(doc):
    ids = _chain(doc)
    _check_round_trip(doc, lambda: doc.set_params(ids["fc1"], {"out_features": 32, "bias": False}))
    count = doc.undo_stack.count()
    doc.set_params(ids["fc1"], {"out_features": 32})  # no change: no step
    assert doc.undo_stack.count() == count
    with pytest.raises(GraphError, match="out_features"):
        doc.set_params(ids["fc1"], {"out_features": -3})
    assert doc.undo_stack.count() == count


def test_rename(doc):
    ids = _chain(doc)
    _check_round_trip(doc, lambda: doc.rename(ids["fc1"], "encoder"), "Rename 'fc1' to 'encoder'")
    with pytest.raises(GraphError, match="taken"):
        doc.rename(ids["fc2"], "relu")
    with pytest.raises(GraphError):
        doc.rename(ids["fc2"], "not an identifier")


def test_paste_and_duplicate(doc):
    ids = _chain(doc)
    data = doc.copy([ids["fc1"], ids["relu"], ids["fc2"]])
    assert len(data["nodes"]) == 3 and len(data["edges"]) == 2  # only the edges inside
    _check_round_trip(doc, lambda: doc.paste(data), "Paste 3 layers")
    _check_round_trip(doc, lambda: doc.duplicate([ids["inp"], ids["fc1"]]), "Duplicate 2 layers")


def test_auto_layout(doc):
    ids = _chain(doc)
    for i, nid in enumerate(ids.values()):
        doc.graph.move(nid, (-i * 37.0, i * 53.0))  # scramble
    _check_round_trip(doc, doc.auto_layout, "Auto-layout")
    pos = {k: doc.graph.nodes[v].pos for k, v in ids.items()}
    # Left to right by layer: each node stands right of what feeds it.
    assert pos["inp"][0] < pos["fc1"][0] < pos["relu"][0] < pos["fc2"][0] < pos["add"][0]
    assert pos["add"][0] < pos["out"][0]


def test_random_edit_sequence_undoes_to_the_start_and_redoes_to_the_end(doc):
    """Many mixed edits; undoing all of them gives back the first graph, redoing all the last."""
    rng = random.Random(7)
    start = doc.graph.to_dict()
    _chain(doc)
    types = ["Linear", "ReLU", "Add", "Concat", "Dropout", "Flatten"]
    for _ in range(120):
        graph = doc.graph
        nodes = list(graph.nodes)
        op = rng.choice(["add", "add", "connect", "connect", "disconnect", "remove", "move",
                         "params", "rename", "paste", "layout"])
        try:
            if op == "add" or not nodes:
                doc.add_node(rng.choice(types), (rng.uniform(-500, 500), rng.uniform(-500, 500)))
            elif op == "connect":
                doc.connect(rng.choice(nodes), rng.choice(nodes), rng.randrange(3))
            elif op == "disconnect" and graph.edges:
                doc.disconnect(rng.choice(graph.edges))
            elif op == "remove":
                doc.remove_nodes(rng.sample(nodes, k=min(len(nodes), rng.randint(1, 3))))
            elif op == "move":
                nid = rng.choice(nodes)
                doc.move_nodes({nid: (graph.nodes[nid].pos, (rng.uniform(0, 900), 10.0))})
            elif op == "params":
                lin = [n for n in nodes if graph.nodes[n].type == "Linear"]
                if lin:
                    doc.set_params(rng.choice(lin), {"out_features": rng.randint(1, 64)})
            elif op == "rename":
                doc.rename(rng.choice(nodes), f"n{rng.randrange(10_000)}")
            elif op == "paste":
                doc.paste(doc.copy(rng.sample(nodes, k=min(len(nodes), 3))))
            elif op == "layout":
                doc.auto_layout()
        except GraphError:
            pass  # refused edits push nothing
    end = doc.graph.to_dict()
    assert doc.undo_stack.count() > 60
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert doc.graph.to_dict() == start
    while doc.undo_stack.canRedo():
        doc.undo_stack.redo()
    assert doc.graph.to_dict() == end


def test_refused_connect_says_why_and_pushes_nothing(doc):
    ids = _chain(doc)
    count = doc.undo_stack.count()
    cat = doc.add_node("Concat", (0, 0))
    doc.connect(ids["fc2"], cat, 0)
    doc.connect(cat, ids["add"], 2)
    count = doc.undo_stack.count()
    with pytest.raises(GraphError, match="cycle"):
        doc.connect(ids["add"], cat, 1)
    with pytest.raises(GraphError, match="itself"):
        doc.connect(ids["add"], ids["add"], 3)
    with pytest.raises(GraphError, match="already connected"):
        doc.connect(ids["inp"], ids["relu"], 0)
    assert doc.can_connect(ids["out"], ids["fc1"], 0) is not None
    assert doc.undo_stack.count() == count


def test_edits_apply_to_the_current_network(qtbot):
    project = Project(networks={"generator": _empty(), "discriminator": _empty()})
    doc = Document(project)
    try:
        with qtbot.waitSignal(doc.network_changed) as sig:
            doc.set_network("discriminator")
        assert sig.args == ["discriminator"]
        nid = doc.add_node("ReLU", (0, 0))
        assert nid in project.networks["discriminator"].nodes
        assert not project.networks["generator"].nodes
        doc.set_network("generator")
        doc.undo_stack.undo()  # undo acts on the network the command was made on
        assert not project.networks["discriminator"].nodes
        with pytest.raises(GraphError):
            doc.set_network("nope")
    finally:
        doc.close()


def _empty():
    from designer.engine.model.graph import Graph

    return Graph()


# -- the project: networks, name, description (undo through the Project's methods) ------------------


def _check_project_round_trip(doc: Document, edit, expected_text: str | None = None) -> None:
    """Like :func:`_check_round_trip`, comparing the whole project document."""
    before = doc.project.to_dict()
    count = doc.undo_stack.count()
    edit()
    after = doc.project.to_dict()
    assert after != before, "the edit changed nothing"
    assert doc.undo_stack.count() == count + 1, "one edit must be exactly one undo step"
    if expected_text is not None:
        assert doc.undo_stack.undoText() == expected_text
    for _ in range(2):
        doc.undo_stack.undo()
        assert doc.project.to_dict() == before
        doc.undo_stack.redo()
        assert doc.project.to_dict() == after


def test_add_network_and_undo_restore_the_project_exactly(doc):
    _chain(doc)
    _check_project_round_trip(doc, lambda: doc.add_network("critic"), "Add network 'critic'")
    assert list(doc.project.networks) == ["model", "critic"]
    _check_project_round_trip(doc, lambda: doc.add_network("first", index=0))
    assert list(doc.project.networks) == ["first", "model", "critic"]


def test_rename_network_keeps_its_place_through_undo_and_redo(doc):
    _chain(doc)
    doc.add_network("critic")
    graph = doc.project.networks["model"]
    _check_project_round_trip(doc, lambda: doc.rename_network("model", "generator"),
                              "Rename network 'model' to 'generator'")
    assert list(doc.project.networks) == ["generator", "critic"]
    assert doc.network == "generator" and doc.graph is graph  # still the shown network


def test_remove_network_and_undo_put_back_the_same_graph(doc):
    doc.add_network("critic")
    doc.set_network("critic")
    critic = doc.graph
    nid = doc.add_node("Input", (0, 0), {"shape": [4]})
    doc.add_network("third")
    _check_project_round_trip(doc, lambda: doc.remove_network("critic"), "Delete network 'critic'")
    assert doc.network == "model"  # the shown network was removed: the main one is shown
    doc.undo_stack.undo()
    assert doc.project.networks["critic"] is critic
    assert list(doc.project.networks) == ["model", "critic", "third"]
    # The commands made on the restored graph still work on it.
    doc.set_network("critic")
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert list(doc.project.networks) == ["model"] and nid not in doc.graph.nodes


def test_network_edits_are_refused_with_a_reason(doc):
    with pytest.raises(GraphError, match="already named"):
        doc.add_network("model")
    with pytest.raises(GraphError, match="at least one network"):
        doc.remove_network("model")
    doc.add_network("critic")
    with pytest.raises(GraphError, match="already named"):
        doc.rename_network("critic", "model")
    with pytest.raises(GraphError, match="no network named"):
        doc.rename_network("nope", "x")
    assert doc.undo_stack.count() == 1


def test_project_name_and_description(doc):
    _check_project_round_trip(doc, lambda: doc.set_project_name("Digits"),
                              "Rename the project to 'Digits'")
    _check_project_round_trip(doc, lambda: doc.set_description("a\nb"))
    count = doc.undo_stack.count()
    doc.set_project_name("Digits")  # unchanged: no step
    with pytest.raises(GraphError, match="longer than"):
        doc.set_description("x" * 20_001)
    assert doc.undo_stack.count() == count


def test_undo_and_redo_emit_project_events(qtbot, doc):
    events = []
    doc.project_event.connect(events.append)
    doc.add_network("critic")
    doc.rename_network("critic", "disc")
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    doc.undo_stack.redo()
    assert [(e.kind, e.key) for e in events] == [
        ("network_added", "critic"), ("network_renamed", "disc"), ("network_renamed", "critic"),
        ("network_removed", "critic"), ("network_added", "critic")]
