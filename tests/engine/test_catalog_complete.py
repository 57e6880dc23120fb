"""Every layer is declared in one place: its catalog entry says what memory estimation,
look-inside and the data-fit check need, and no table of layer ids outside the catalog says it
again (a layer missing from such a table was silently miscounted)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from designer.engine.model.catalog import (
    CATALOG,
    DECLARED_FIELDS,
    DataFit,
    LayerSpec,
    MemoryUse,
    register,
)

from .helpers import chain, load_module

ROOT = Path(__file__).resolve().parents[2] / "designer"

# Node kinds rather than layers: a design's Input and Output are walked as such by every pass.
NODE_KINDS = {"Input", "Output"}
# Files still holding a per-type table or branch, each with the reason it is not a catalog field
# yet. Code export and the recipes are reorganised separately (issue 23); an entry here must
# shrink, never grow.
KNOWN = {
    # code export: RNN/LSTM/GRU constructor defaults (signature *args, **kwargs)
    "engine/interop/layer_code.py": {"RNN", "LSTM", "GRU"},
    # code export: the helper classes model.py may copy, and the classes they derive from
    "engine/model/modules.py": {"StochasticDepth", "ShiftedWindowAttention", "ShiftedWindowAttentionV2",
                          "PatchMerging", "PatchMergingV2", "RelativePositionAttention",
                          "QuickGELU", "Conv1D", "Conv2dSame", "StdConv2d",
                          "LayerScale", "ScaledStdConv2d"},
    # the GAN recipe's checks: the layers it looks through, and the layers its advice names
    "engine/train/recipes/gan/checks.py": {"Reshape", "Flatten", "Identity", "Dropout", "Permute",
                                     "Linear", "Sigmoid", "Tanh"},
    # the VAE recipe: the Reshape its decoder ends with, looking through Identity
    "engine/train/recipes/vae/checks.py": {"Identity", "Reshape"},
}


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("engine/model/catalog/", "engine/interop/importing/")):
            continue  # the catalog itself; import mappings are declared next to it separately
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def layer_ids_in_tables(tree: ast.AST, ids: set[str]) -> dict[int, set[str]]:
    """Layer ids named in a tuple, list, set or dict (a table of layers), or compared with a
    node's ``.type`` (a branch on one layer), by line."""
    found: dict[int, set[str]] = {}

    def note(node: ast.AST, items) -> None:
        hits = {c.value for c in items if isinstance(c, ast.Constant) and c.value in ids}
        if hits:
            found.setdefault(node.lineno, set()).update(hits)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            note(node, node.elts)
        elif isinstance(node, ast.Dict):
            note(node, [k for k in node.keys if k is not None])
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "type" for s in sides):
                note(node, sides)
    return found


def test_every_layer_declares_what_its_readers_need():
    assert CATALOG.undeclared() == []
    for spec in CATALOG:
        assert isinstance(spec.memory, MemoryUse), spec.id
        assert isinstance(spec.data_fit, DataFit), spec.id


def test_a_layer_that_forgets_a_field_fails_the_check():
    spec = LayerSpec("ThrowawayLayer", "Throwaway", "Core", "y = x.", module_name="Identity",
                     inside="layer", data_fit=DataFit("input"))  # memory forgotten
    CATALOG.register(spec)
    try:
        assert CATALOG.undeclared() == ["ThrowawayLayer: memory"]
    finally:
        CATALOG.unregister("ThrowawayLayer")
    assert "ThrowawayLayer" not in CATALOG and CATALOG.undeclared() == []
    assert set(DECLARED_FIELDS) == {"memory", "inside", "data_fit"}
    assert LayerSpec("T", "T", "Core", "t").undeclared() == list(DECLARED_FIELDS)


def test_declarations_refuse_unknown_values():
    with pytest.raises(ValueError, match="keeps"):
        MemoryUse("gradients")
    with pytest.raises(ValueError, match="gates"):
        MemoryUse("input", extra="recurrent")
    with pytest.raises(ValueError, match="inside"):
        LayerSpec("T", "T", "Core", "t", inside="fancy")
    with pytest.raises(ValueError, match="out_features"):
        LayerSpec("T", "T", "Core", "t", data_fit=DataFit("out_features"))


def test_no_table_of_layer_ids_outside_the_catalog():
    ids = set(CATALOG.ids()) - NODE_KINDS
    stray = {}
    for rel, tree in _sources():
        named = set().union(*layer_ids_in_tables(tree, ids).values())
        extra = named - KNOWN.get(rel, set())
        if extra:
            stray[rel] = sorted(extra)
    assert stray == {}, ("declare these on the layers' catalog entries (LayerSpec fields) "
                         f"instead of a table: {stray}")


def test_the_scan_sees_a_table():
    tree = ast.parse('VIEWS = {"Flatten", "Reshape"}\nif node.type == "ReLU6": pass\n'
                     'MAP = {"Linear": 1}\nok = ("Input", "Output")')
    found = layer_ids_in_tables(tree, set(CATALOG.ids()) - NODE_KINDS)
    assert found == {1: {"Flatten", "Reshape"}, 2: {"ReLU6"}, 3: {"Linear"}}


def test_known_tables_still_exist():
    """An entry of KNOWN that no longer names a layer is dropped from it (it only shrinks)."""
    ids = set(CATALOG.ids()) - NODE_KINDS
    trees = dict(_sources())
    for rel, allowed in KNOWN.items():
        named = set().union(*layer_ids_in_tables(trees[rel], ids).values())
        assert allowed <= named, f"{rel}: {sorted(allowed - named)} no longer named: drop them"


# ---------------------------------------------------------------------------------------------
# A new layer is one entry: memory, look-inside, data-fit and code export handle it unedited
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["RMSNorm", "throwaway"])
def new_layer(request):
    """RMSNorm (added for the Hugging Face imports as one catalog entry), and a layer registered
    at run time the way a plug-in would add one; yields (id, params, inside view)."""
    if request.param == "RMSNorm":
        yield "RMSNorm", {}, "norm"
        return
    spec = register(
        id="ThrowawaySoftsign", display_name="ThrowawaySoftsign", category="Activation",
        doc="y = x / (1 + |x|).", module_name="Softsign", resolve=lambda p, ins, dts: {},
        count_params=lambda kw: 0, infer=lambda p, ins: ins[0], macs=lambda p, ins, out: 0,
        memory=MemoryUse("input"), inside="activation", data_fit=DataFit("input"))
    try:
        yield spec.id, {}, "activation"
    finally:
        CATALOG.unregister(spec.id)


def _design(layer: str, params: dict, out: int = 2):
    """Input (2,) -> fc1 (16) -> ReLU -> fc2 (out) -> the new layer -> Output."""
    return chain(("Linear", {"out_features": 16}), ("ReLU", {}),
                 ("Linear", {"out_features": out}), (layer, params), shape=(2,))


def test_a_new_layer_is_counted_by_memory(new_layer):
    from designer.engine.model.memory import FLOAT_BYTES, estimate, memory_use
    from designer.engine.model.shapes import analyze

    layer, params, _ = new_layer
    g = _design(layer, params)
    analysis = analyze(g)
    assert analysis.ok, analysis.problems
    assert memory_use(layer) is CATALOG[layer].memory
    by_type = {m.type: m for m in estimate(g, analysis).layers}
    # it keeps its input for backward (fc2's output, 2 floats); its own output is the model's
    assert by_type[layer].output == 2 * FLOAT_BYTES
    saved = {m.name: m.saved for m in estimate(g, analysis).layers}
    assert saved["fc2"] == 2 * FLOAT_BYTES


def test_a_new_layer_is_shown_by_look_inside(new_layer):
    from designer.engine.model.build import build_model
    from designer.engine.train.inside import layers_of

    layer, params, view = new_layer
    kinds = {x.type: x.kind for x in layers_of({"model": build_model(_design(layer, params))})}
    assert kinds[layer] == view


def test_a_new_layer_is_walked_over_by_the_data_fit_check(new_layer):
    from designer.engine.train.data import check_model_data, load_dataset

    layer, params, _ = new_layer
    ds = load_dataset({"kind": "synthetic", "name": "spirals", "n_samples": 60})
    g = _design(layer, params)
    check = check_model_data(g, ds, {"loss": "cross_entropy"})
    assert "fc2's out_features to 3" in check.errors[0].message  # found behind the new layer
    fix = check.fixes[0]
    g.set_params(fix.node_id, {fix.param: fix.value})
    assert check_model_data(g, ds, {"loss": "cross_entropy"}).ok


def test_a_new_layer_is_written_by_code_export(new_layer, tmp_path):
    import torch

    from designer.engine.document.project import Project
    from designer.engine.interop.codegen import model_source, network_class_names
    from designer.engine.model.build import build_model

    layer, params, _ = new_layer
    project = Project(name="new_layer", networks={"model": _design(layer, params)})
    source = model_source(project)
    assert f"nn.{CATALOG[layer].module_name}(" in source
    built = build_model(project.networks["model"]).eval()
    mod = load_module(source, tmp_path, "exported_new_layer")
    exported = getattr(mod, network_class_names(project)["model"])().eval()
    exported.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), built(x))
