"""List the import cycles between designer modules, counting imports at the top of a module and
inside functions alike (an import inside a function still ties the two modules together).

    python scripts/import_cycles.py [PACKAGE_PREFIX]      (default: designer.engine)

Each strongly connected group is printed with its shortest cycles; every edge is labelled "top"
(module level), "fn" (inside a function or class) or "tc" (under ``if TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "designer").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def targets(mods: dict[str, Path], current: str, is_package: bool, node) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = current.split(".") if is_package else current.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    out = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        out.append(candidate if candidate in mods else base)
    return out


def type_checking_imports(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for b in node.body for n in ast.walk(b)}
    return ids


def graph(prefix: str) -> tuple[nx.DiGraph, dict]:
    mods = modules()
    g, kinds = nx.DiGraph(), {}
    for name, path in mods.items():
        if not name.startswith(prefix):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        typing_only = type_checking_imports(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            kind = "tc" if id(node) in typing_only else "top" if id(node) in top else "fn"
            for target in targets(mods, name, path.name == "__init__.py", node):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("designer"):
                    g.add_edge(name, target)
                    kinds.setdefault((name, target), set()).add(kind)
    return g, kinds


def main(prefix: str = "designer.engine") -> int:
    g, kinds = graph(prefix)
    groups = sorted((c for c in nx.strongly_connected_components(g) if len(c) > 1), key=len)
    print(f"{len(groups)} group(s) of modules that import each other")
    short = prefix + "."
    for group in groups:
        print(len(group), sorted(m.removeprefix(short) for m in group))
        for cycle in sorted(nx.simple_cycles(g.subgraph(group)), key=len)[:15]:
            edges = [",".join(sorted(kinds[(cycle[i], cycle[(i + 1) % len(cycle)])]))
                     for i in range(len(cycle))]
            print("   ", " -> ".join(m.removeprefix(short) for m in [*cycle, cycle[0]]), edges)
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
