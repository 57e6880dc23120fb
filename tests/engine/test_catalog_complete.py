"""Every layer is declared in one place: its catalog entry says what memory estimation,
look-inside and the data-fit check need, and no table of layer ids outside the catalog says it
again (a layer missing from such a table was silently miscounted)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from designer.engine.catalog import CATALOG, DECLARED_FIELDS, DataFit, LayerSpec, MemoryUse

ROOT = Path(__file__).resolve().parents[2] / "designer"

# Node kinds rather than layers: a design's Input and Output are walked as such by every pass.
NODE_KINDS = {"Input", "Output"}
# Files still holding a per-type table or branch, each with the reason it is not a catalog field
# yet. Code export and the recipes are reorganised separately (issue 23); an entry here must
# shrink, never grow.
KNOWN = {
    # code export: RNN/LSTM/GRU constructor defaults (signature *args, **kwargs)
    "engine/codegen.py": {"RNN", "LSTM", "GRU"},
    # code export: the helper classes model.py may copy, and the classes they derive from
    "engine/modules.py": {"StochasticDepth", "ShiftedWindowAttention", "ShiftedWindowAttentionV2",
                          "PatchMerging", "PatchMergingV2", "RelativePositionAttention"},
    # the GAN recipe's checks: the layers it looks through, and the layers its advice names
    "engine/recipes/gan_checks.py": {"Reshape", "Flatten", "Identity", "Dropout", "Permute",
                                     "Linear", "Sigmoid", "Tanh"},
    # the VAE recipe: the Reshape its decoder ends with, looking through Identity
    "engine/recipes/vae.py": {"Identity", "Reshape"},
}


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("engine/catalog/") or rel == "engine/importing.py":
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
