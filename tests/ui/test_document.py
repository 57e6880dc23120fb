"""The document model: debounced analysis on a worker thread, saved state, clipboard, networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QThread

from designer.engine.document.project import load_project
from designer.engine.model.graph import Graph, GraphError
from designer.ui.analysis_worker import sync_graph
from designer.ui.document import Document, layered_positions

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"


@pytest.fixture
def doc(qtbot):
    d = Document()
    yield d
    d.close()


def _wait_analysis(qtbot, doc, timeout=10_000):
    with qtbot.waitSignal(doc.analysis_updated, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def test_first_analysis_arrives_after_construction(qtbot):
    doc = Document(load_project(TEMPLATES / "mlp-digits.dnn.json"))
    try:
        analysis = _wait_analysis(qtbot, doc)
        assert analysis is doc.analysis
        assert analysis.ok, [p.message for p in analysis.problems]
        out = doc.graph.outputs()[0]
        assert analysis.infos[out.id].input_shapes == [(10,)]
    finally:
        doc.close()


def test_analysis_runs_off_the_gui_thread_and_is_debounced(qtbot, doc, monkeypatch):
    _wait_analysis(qtbot, doc)
    from designer.ui import analysis_worker

    threads = []
    real = analysis_worker.sync_graph

    def spy(replica, snapshot):
        threads.append(QThread.currentThread())
        return real(replica, snapshot)

    monkeypatch.setattr(analysis_worker, "sync_graph", spy)
    with qtbot.waitSignal(doc.analysis_updated, timeout=5000):
        inp = doc.add_node("Input", (0, 0), {"shape": [4]})
        lin = doc.add_node("Linear", (200, 0), {"out_features": 3})
        doc.connect(inp, lin)
    assert len(threads) == 1, "three quick edits should give one re-check"
    assert threads[0] is not QThread.currentThread()
    assert doc.analysis.infos[lin].output_shape == (3,)
    assert doc.analysis.infos[lin].params == 4 * 3 + 3


def test_bad_graph_problems_then_fixed(qtbot, doc):
    _wait_analysis(qtbot, doc)
    inp = doc.add_node("Input", (0, 0), {"shape": [1, 8, 8]})
    lin = doc.add_node("Linear", (200, 0), {"in_features": 100, "out_features": 3})
    out = doc.add_node("Output", (400, 0))
    doc.connect(inp, lin)
    doc.connect(lin, out)
    analysis = _wait_analysis(qtbot, doc)
    assert not analysis.ok
    assert analysis.problems_for(lin), [p.message for p in analysis.problems]
    flat = doc.add_node("Flatten", (100, 0))
    edge = next(e for e in doc.graph.edges if e.dst == lin)
    doc.reconnect(edge, flat, lin, 0)
    doc.connect(inp, flat)
    doc.set_params(lin, {"in_features": None})
    analysis = _wait_analysis(qtbot, doc)
    assert analysis.ok, [p.message for p in analysis.problems]
    assert analysis.infos[lin].kwargs["in_features"] == 64


def test_analysis_after_undo_follows_the_model(qtbot, doc):
    _wait_analysis(qtbot, doc)
    inp = doc.add_node("Input", (0, 0), {"shape": [5]})
    out = doc.add_node("Output", (200, 0))
    doc.connect(inp, out)
    assert _wait_analysis(qtbot, doc).ok
    doc.undo_stack.undo()
    assert not _wait_analysis(qtbot, doc).ok


def test_analyze_now_is_synchronous(doc):
    inp = doc.add_node("Input", (0, 0), {"shape": [5]})
    result = doc.analyze_now()
    assert result is doc.analysis
    assert result.infos[inp].output_shape == (5,)


def test_modified_and_saved_state(qtbot, doc, tmp_path):
    assert not doc.is_modified()
    with qtbot.waitSignal(doc.changed):
        doc.add_node("ReLU", (0, 0))
    assert doc.is_modified()
    target = tmp_path / "a.dnn.json"
    with qtbot.waitSignal(doc.path_changed) as sig:
        doc.mark_saved(target)
    assert sig.args == [target] and doc.path == target
    assert not doc.is_modified()
    doc.undo_stack.undo()
    assert doc.is_modified()
    doc.undo_stack.redo()
    assert not doc.is_modified()


def test_replace_project_resets_history(qtbot, doc):
    doc.add_node("ReLU", (0, 0))
    project = load_project(TEMPLATES / "mlp-digits.dnn.json")
    with qtbot.waitSignal(doc.network_changed):
        doc.replace_project(project, TEMPLATES / "mlp-digits.dnn.json")
    assert doc.graph is project.graph
    assert doc.undo_stack.count() == 0 and not doc.is_modified()
    analysis = _wait_analysis(qtbot, doc)
    assert set(analysis.infos) == set(project.graph.nodes)


def test_paste_gives_fresh_ids_and_names_and_rejects_bad_data(doc):
    a = doc.add_node("Linear", (0, 0), name="fc1")
    b = doc.add_node("ReLU", (200, 0), name="act")
    doc.connect(a, b)
    data = json.loads(json.dumps(doc.copy([a, b])))  # survives the clipboard as JSON
    new = doc.paste(data)
    names = {doc.graph.nodes[n].name for n in new}
    assert names == {"fc2", "act1"}
    assert not set(new) & {a, b}
    assert any(e.src == new[0] and e.dst == new[1] for e in doc.graph.edges)
    assert doc.graph.nodes[new[0]].pos == (30.0, 30.0)
    count = doc.undo_stack.count()
    for bad in (None, [], {"format": "other"},
                {"format": "designer-nodes", "nodes": [{"id": "x", "type": "NoSuchLayer"}]},
                {"format": "designer-nodes", "nodes": [{"id": "x", "type": "Linear",
                                                        "params": {"out_features": "big"}}]}):
        with pytest.raises(GraphError):
            doc.paste(bad)
    assert doc.undo_stack.count() == count


def test_add_node_refuses_bad_requests(doc):
    with pytest.raises(GraphError, match="unknown layer type"):
        doc.add_node("Nope", (0, 0))
    with pytest.raises(GraphError, match="out_features"):
        doc.add_node("Linear", (0, 0), {"out_features": 0})
    doc.add_node("ReLU", (0, 0), name="same")
    with pytest.raises(GraphError, match="taken"):
        doc.add_node("ReLU", (0, 0), name="same")
    assert doc.undo_stack.count() == 1


def test_sync_graph_mirrors_any_change():
    a = Graph()
    i = a.add_node("Input", params={"shape": [3]}, id="i")
    f = a.add_node("Linear", params={"out_features": 2}, id="f")
    a.connect(i.id, f.id)
    replica = Graph()
    sync_graph(replica, a.copy())
    assert replica.to_dict()["edges"] == a.to_dict()["edges"]
    a.rename("f", "head")
    a.set_params("f", {"out_features": 5})
    a.add_node("Output", id="o")
    a.connect("f", "o")
    a.remove_node("i")
    sync_graph(replica, a.copy())
    strip = lambda d: [{k: v for k, v in n.items() if k != "pos"} for n in d["nodes"]]
    assert strip(replica.to_dict()) == strip(a.to_dict())
    assert replica.edges == a.edges


def test_layered_positions_handles_cycles_and_pieces():
    g = Graph()
    for nid in "abcdx":
        g.add_node("ReLU", id=nid)
    g.connect("a", "b")
    g.connect("b", "c")
    g.connect("c", "b", check=False)  # a cycle is laid out too, not an error
    g.connect("c", "d")
    pos = layered_positions(g)
    assert set(pos) == set("abcdx")
    assert pos["a"][0] < pos["b"][0] < pos["d"][0]
    assert pos["x"][1] > pos["a"][1]  # a separate piece goes below


def test_a_failing_checker_reports_and_the_next_check_works(qtbot, doc, monkeypatch):
    _wait_analysis(qtbot, doc)
    from designer.engine.model import shapes

    real = shapes.Analyzer.analyze
    calls = []

    def broken(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(self)

    monkeypatch.setattr(shapes.Analyzer, "analyze", broken)
    with qtbot.waitSignal(doc.analysis_failed, timeout=5000) as sig:
        doc.add_node("Input", (0, 0), {"shape": [3]})
    assert "Shape check failed" in sig.args[0] and "boom" in sig.args[0]
    nid = doc.add_node("ReLU", (200, 0))
    analysis = _wait_analysis(qtbot, doc)
    assert nid in analysis.infos  # the worker thread survived and checks again


def test_project_events_follow_replace_project_and_stop_at_close(qtbot):
    from designer.engine.document.project import Project

    doc = Document()
    old = doc.project
    sections = []
    doc.settings_changed.connect(sections.append)
    doc.project.set_section("training", {"epochs": 2})
    new = Project(networks={"gen": Graph(), "disc": Graph()})
    doc.replace_project(new)
    old.set_section("training", {"epochs": 3})  # the old project no longer reaches the views
    new.set_section("dataset", {"kind": "digits"})
    assert sections == ["training", "dataset"]
    doc.close()
    new.set_section("dataset", {"kind": "csv"})
    assert sections == ["training", "dataset"]
    assert new._listeners == [] and old._listeners == []


def test_removing_the_shown_network_shows_the_main_one_before_views_hear_of_it(qtbot, doc):
    doc.add_network("critic")
    doc.set_network("critic")
    seen = []
    doc.project_event.connect(lambda e: seen.append((e.kind, doc.network, doc.graph)))
    with qtbot.waitSignal(doc.network_changed) as sig:
        doc.undo_stack.undo()  # undo the addition of the shown network
    assert sig.args == ["model"]
    assert seen == [("network_removed", "model", doc.project.networks["model"])]
