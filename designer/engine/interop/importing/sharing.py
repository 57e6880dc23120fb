"""Sharing definitions: imported submodules with one structure become one block network whose
differing values are block parameters."""

from __future__ import annotations

import re
from typing import Any

from ...model.blocks import block_param
from ...model.catalog import name_problem
from ...model.graph import Graph
from .nodes import ImportedNet
from .report import ImportReport


def _height(net: ImportedNet) -> int:
    return 1 + max((_height(la.child) for la in net.layers if la.child), default=-1)


def _skeleton(net: ImportedNet) -> str:
    """The structure of a network without the values that may differ between uses."""
    parts = [net.cls, str(net.sequential)]
    for la in net.layers:
        if la.child is not None:
            keys = sorted(la.child.args)
            parts.append(f"{la.name}|{la.attr}|Block|{la.child.network}|{keys}|{la.inputs}")
        elif la.type == "Input":
            parts.append(f"{la.name}|Input|{la.inputs}")
        else:
            values = {k: v for k, v in la.params.items() if not _scalar(v)}
            parts.append(f"{la.name}|{la.attr}|{la.type}|{sorted(la.params)}|{values}|"
                         f"{la.inputs}")
    return "\n".join(parts)


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, bool)


def _slots(net: ImportedNet) -> dict[tuple[str, str, str], Any]:
    """The values that may become block parameters: (layer, where, key) -> value."""
    out: dict[tuple[str, str, str], Any] = {}
    for la in net.layers:
        if la.child is not None:
            out.update({(la.name, "args", k): v for k, v in la.child.args.items()})
        elif la.type not in ("Input", "Output"):
            out.update({(la.name, "params", k): v for k, v in la.params.items() if _scalar(v)})
    return out


def _param_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    return "float"


def share_definitions(top: ImportedNet, project_networks: dict[str, Graph],
                      report: ImportReport) -> None:
    """Give every net below ``top`` a definition: the same structure shares one network, values
    that differ become block parameters bound by each use's ``args``."""
    nets: list[ImportedNet] = []

    def collect(n: ImportedNet) -> None:
        for la in n.layers:
            if la.child is not None:
                collect(la.child)
        nets.append(n)

    collect(top)
    nets.pop()  # the top is the model itself
    by_height: dict[int, list[ImportedNet]] = {}
    for n in nets:
        by_height.setdefault(_height(n), []).append(n)
    taken = {"model"}
    for h in sorted(by_height):
        groups: dict[str, list[ImportedNet]] = {}
        for n in by_height[h]:
            groups.setdefault(_skeleton(n), []).append(n)
        for members in groups.values():
            first = members[0]
            base = first.cls.lstrip("_")  # torchvision's private classes: _DenseLayer
            if base == "Sequential" or name_problem(base):
                base = re.sub(r"[^A-Za-z0-9_]", "_", first.attr.title().replace("_", "")) \
                    or "Sequential"
                if not base[0].isalpha() or name_problem(base):
                    base = "Sequential"
            name, i = base, 2
            while name in taken or name_problem(name):
                name, i = f"{base}_{i}", i + 1
            taken.add(name)
            values = [_slots(m) for m in members]
            differ = [s for s in values[0] if any(v.get(s) != values[0][s] for v in values[1:])]
            # slots with the same values at every use share one parameter (planes); an integer
            # multiple of another is a reference with mul (a bottleneck's planes * 4)
            declared: dict[str, tuple[list[Any], str]] = {}
            refs: dict[tuple[str, str, str], dict] = {}
            for s in differ:
                col = [v[s] for v in values]
                hit = next((p for p, (c, _) in declared.items() if c == col), None)
                if hit is not None:
                    refs[s] = {"ref": hit}
                    continue
                if _param_type(col) == "int":
                    for p, (c, t) in declared.items():
                        if t == "int" and all(b and a % b == 0 for a, b in zip(col, c)):
                            mul = {a // b for a, b in zip(col, c)}
                            if len(mul) == 1 and mul != {1}:
                                refs[s] = {"ref": p, "mul": mul.pop()}
                                break
                    if s in refs:
                        continue
                pname = s[2] if s[2] not in declared else f"{s[0]}_{s[2]}"
                j = 2
                while pname in declared:
                    pname, j = f"{s[0]}_{s[2]}_{j}", j + 1
                declared[pname] = (col, _param_type(col))
                refs[s] = {"ref": pname}
            graph = net_graph(first, refs)
            if declared:
                try:
                    graph.set_block_params([block_param(p, t, c[0]) for p, (c, t)
                                            in declared.items()])
                except ValueError:  # a name exported code reserves: one definition per variant
                    graph = None
            if graph is None:  # pragma: no cover - rare names
                declared, refs = {}, {}
                graph = net_graph(first, refs)
            graph.sequential = first.sequential
            project_networks[name] = graph
            report.blocks[name] = len(members)
            for k, m in enumerate(members):
                m.network = name
                m.args = {p: c[k] for p, (c, t) in declared.items()}


def net_graph(net: ImportedNet, refs: dict[tuple[str, str, str], dict]) -> Graph:
    g = Graph()
    for la in net.layers:
        if la.child is not None:
            args = {k: refs.get((la.name, "args", k), v) for k, v in la.child.args.items()}
            params = {"block": la.child.network, **({"args": args} if args else {})}
        else:
            params = {k: refs.get((la.name, "params", k), v) for k, v in la.params.items()}
        g.add_node(la.type, la.name, params, id=la.name, attr=la.attr)
        for port, src in enumerate(la.inputs):
            g.connect(src, la.name, port)
    return g

