"""Node kinds and the one graph interpreter the passes share.

A block use is a kind of node with its own behaviour (designer.engine.model.nodes), not a type string
compared with ``"Block"`` across the code; the passes (shapes, build, memory, inside, the class
writer) walk a network through GraphInterpreter, overriding the methods of the kinds they treat
apart (designer.engine.model.interpreter)."""

from __future__ import annotations

import ast
from pathlib import Path

from designer.engine.document.project import Project, project_from_dict
from designer.engine.model.blocks import BLOCK_SPEC, block_param, layer_spec
from designer.engine.model.build import ModuleMaker, Planner, build_model, plan
from designer.engine.model.graph import Graph
from designer.engine.model.interpreter import GraphInterpreter, topological_order
from designer.engine.model.memory import BlockInsides
from designer.engine.model.nodes import BLOCK, BLOCK_USE, INPUT, LAYER, OUTPUT, kind_of
from designer.engine.model.shapes import Analyzer, analyze

ROOT = Path(__file__).resolve().parents[2]


def _chain(graph: Graph, *layers: tuple) -> Graph:
    """Add ``(type, name, params)`` layers, each fed by the one before; ids are the names."""
    last = None
    for type_, name, *rest in layers:
        graph.add_node(type_, name, rest[0] if rest else {}, id=name)
        if last is not None:
            graph.connect(last, name)
        last = name
    return graph


def _project() -> Project:
    """main: Input -> fc0 -> two uses of block ``dense`` (the second repeated) -> act -> Output."""
    dense = Graph()
    dense.set_block_params([block_param("width", "int", 8)])
    _chain(dense, ("Input", "input", {"shape": [4]}),
           ("Linear", "fc", {"out_features": {"ref": "width"}}), ("Output", "output"))
    main = _chain(Graph(), ("Input", "inp", {"shape": [4]}), ("Linear", "fc0", {"out_features": 4}),
                  ("Block", "b1", {"block": "dense", "args": {"width": 4}}),
                  ("Block", "b2", {"block": "dense", "repeat": 2, "args": {"width": 4}}),
                  ("ReLU", "act"), ("Output", "out"))
    return Project(name="kinds", networks={"main": main, "dense": dense})


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------


def test_each_node_knows_its_kind_and_the_file_keeps_the_type():
    project = _project()
    g = project.networks["main"]
    assert [g.nodes[n].kind for n in ("inp", "fc0", "b1", "act", "out")] == [
        INPUT, LAYER, BLOCK_USE, LAYER, OUTPUT]
    assert [g.nodes[n].kind.method for n in ("inp", "fc0", "b1", "out")] == [
        "input", "layer", "block", "output"]
    assert kind_of("NoSuchLayer") is LAYER and kind_of(None) is LAYER
    assert {n["type"] for n in g.to_dict()["nodes"]} >= {BLOCK, "Input", "Output"}
    again = project_from_dict(project.to_dict())
    assert again.to_dict() == project.to_dict()
    assert again.networks["main"].nodes["b2"].kind is BLOCK_USE


def test_the_block_use_kind_holds_what_is_particular_to_a_use():
    project = _project()
    g = project.networks["main"]
    use, fc = g.nodes["b1"], g.nodes["fc0"]
    assert use.kind.block_name(use.params) == "dense" and fc.kind.block_name(fc.params) is None
    assert use.kind.definition(use, g.library) is project.networks["dense"]
    assert fc.kind.definition(fc, g.library) is None
    assert use.kind.definition(use, None) is None
    assert use.kind.input_count(use, g.library) == 1 and fc.kind.input_count(fc, g.library) is None
    assert use.kind.argument_fields == ("args", "first") and fc.kind.argument_fields == ()
    assert use.spec is BLOCK_SPEC and layer_spec(BLOCK) is BLOCK_SPEC
    assert use.kind.holds_module(BLOCK) and fc.kind.holds_module("Linear")
    assert not LAYER.holds_module("Add") and not g.nodes["out"].kind.holds_module("Output")
    assert g.nodes["inp"].kind.is_port and g.nodes["out"].kind.is_port and not use.kind.is_port


# --------------------------------------------------------------------------------------------
# The interpreter
# --------------------------------------------------------------------------------------------


class _Seen(GraphInterpreter):
    def __init__(self, graph: Graph) -> None:
        super().__init__(graph)
        self.seen: list[tuple[str, str]] = []

    def node(self, node, args):
        self.seen.append(("node", node.id))
        return node.id


def test_a_pass_overriding_nothing_sees_every_node_once_in_topological_order():
    g = _project().networks["main"]
    g.add_node("ReLU", "early", id="early")  # added later, fed earlier: order is not insertion
    g.connect("inp", "early")
    walk = _Seen(g)
    env = walk.run()
    ids = [nid for _, nid in walk.seen]
    assert sorted(ids) == sorted(g.nodes) and len(ids) == len(set(ids))
    assert ids == topological_order(g)
    position = {nid: i for i, nid in enumerate(ids)}
    assert all(position[e.src] < position[e.dst] for e in g.edges)
    assert env == {nid: nid for nid in g.nodes}


def test_a_pass_overriding_one_kind_gets_its_nodes_with_what_feeds_them():
    g = _project().networks["main"]

    class Blocks(_Seen):
        def block(self, node, args):
            self.seen.append(("block", node.id, tuple(args)))
            return f"<{node.id}>"

    walk = Blocks(g)
    walk.run()
    assert [s for s in walk.seen if s[0] == "block"] == [("block", "b1", ("fc0",)),
                                                        ("block", "b2", ("<b1>",))]
    others = [nid for kind, nid, *_ in walk.seen if kind == "node"]
    assert others == ["inp", "fc0", "act", "out"]  # every other node still once, in order


def test_an_incremental_run_keeps_the_results_outside_rerun():
    g = _project().networks["main"]
    walk = _Seen(g)
    walk.run()
    walk.seen.clear()
    walk.run(rerun={"act"})
    assert walk.seen == [("node", "act")]


def test_the_passes_are_interpreters():
    project = _project()
    g = project.networks["main"]
    analysis = analyze(g)
    assert analysis.ok, analysis.errors
    assert issubclass(Analyzer, GraphInterpreter)
    assert issubclass(Planner, GraphInterpreter) and issubclass(ModuleMaker, GraphInterpreter)
    assert issubclass(BlockInsides, GraphInterpreter)
    steps = plan(g, analysis)
    assert [s.node_id for s in steps] == analysis.order
    assert [s.kind for s in steps] == [g.nodes[s.node_id].kind for s in steps]
    model = build_model(g, analysis, seed=0)
    assert [k for k in model.state_dict() if k.startswith("b2.")] == [
        "b2.0.fc.weight", "b2.0.fc.bias", "b2.1.fc.weight", "b2.1.fc.bias"]


# --------------------------------------------------------------------------------------------
# No comparison with the block type creeps back
# --------------------------------------------------------------------------------------------

def _names_block(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value == BLOCK:
        return True
    if isinstance(node, ast.Name) and node.id == "BLOCK":
        return True
    if isinstance(node, ast.Attribute) and node.attr == "BLOCK":
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_block(e) for e in node.elts)
    return False


def _block_comparisons(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
                _names_block(side) for side in (node.left, *node.comparators)):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_compares_a_node_type_with_the_block_type():
    """``node.type == BLOCK`` (or ``!= "Block"``, ``in (..., BLOCK)``) is the branch the kind API
    replaces: ask ``node.kind`` (``kind_of(type_id)`` for a bare type) instead."""
    files = sorted((ROOT / "designer").rglob("*.py"))
    assert len(files) > 50
    found = [hit for p in files for hit in _block_comparisons(p)]
    assert found == [], "compare kinds, not type strings:\n" + "\n".join(found)


def test_the_scan_finds_each_form_of_the_comparison(tmp_path):
    sample = tmp_path / "sample.py"
    forms = ['node.type == BLOCK', 'node.type != "Block"', 't in ("Input", BLOCK)',
             'blocks.BLOCK == t']
    sample.write_text("\n".join(f"x{i} = {f}" for i, f in enumerate(forms)) + "\n"
                      'ok = node.kind.is_block and name == "Blocks"\n', encoding="utf-8")
    assert len(_block_comparisons(sample, tmp_path)) == len(forms)

