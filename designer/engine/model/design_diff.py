"""What differs between two designs or two settings sections, in a line each, by layer name
(``fc1.out_features 64 → 32``): History's "changes" of a run against the run before it, and
whether a template's description still describes a design. Plain dicts as project files and a
run's config.json hold them; no torch.
"""

from __future__ import annotations

from typing import Any


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    text = str(v)
    return text if len(text) <= 40 else text[:39] + "\u2026"


def _networks(project: Any) -> dict[str, dict[str, Any]]:
    nets = project.get("networks") if isinstance(project, dict) else None
    if not isinstance(nets, list):
        return {}
    return {str(n.get("name", i)): n for i, n in enumerate(nets) if isinstance(n, dict)}


def _nodes(net: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """A network's nodes by name (ids where names are missing) and id -> that key."""
    nodes, key_of = {}, {}
    for n in net.get("nodes") or []:
        if isinstance(n, dict):
            key = str(n.get("name") or n.get("id"))
            nodes[key] = n
            key_of[str(n.get("id"))] = key
    return nodes, key_of


def _wires(net: dict[str, Any], key_of: dict[str, str]) -> set[tuple[str, str, Any]]:
    return {(key_of.get(str(e.get("src")), str(e.get("src"))),
             key_of.get(str(e.get("dst")), str(e.get("dst"))), e.get("dst_port", 0))
            for e in net.get("edges") or [] if isinstance(e, dict)}


def design_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two designs (project dicts, as a run's config.json holds them), one
    line each and by layer name: ``fc1.out_features 64 → 32``, ``+ dropout1 (Dropout)``,
    ``- relu2 (ReLU)``, ``fc1 frozen``, ``wire + fc1 → relu1``. Positions are no difference.
    With several networks each line starts with the network's name."""
    a_nets, b_nets = _networks(before), _networks(after)
    several = len(a_nets.keys() | b_nets.keys()) > 1
    out: list[str] = []
    for name in list(a_nets) + [n for n in b_nets if n not in a_nets]:
        if name not in b_nets:
            out.append(f"- network {name}")
            continue
        if name not in a_nets:
            out.append(f"+ network {name}")
            continue
        pre = f"{name}: " if several else ""
        (a, a_key), (b, b_key) = _nodes(a_nets[name]), _nodes(b_nets[name])
        for k in a:
            if k not in b:
                out.append(f"{pre}- {k} ({a[k].get('type')})")
        for k in b:
            if k not in a:
                out.append(f"{pre}+ {k} ({b[k].get('type')})")
        for k in (k for k in b if k in a):
            na, nb = a[k], b[k]
            if na.get("type") != nb.get("type"):
                out.append(f"{pre}{k}: {na.get('type')} \u2192 {nb.get('type')}")
                continue
            pa, pb = na.get("params") or {}, nb.get("params") or {}
            for p in list(pa) + [p for p in pb if p not in pa]:
                if pa.get(p) != pb.get(p):
                    out.append(f"{pre}{k}.{p} {_value(pa.get(p))} \u2192 {_value(pb.get(p))}")
            if bool(na.get("frozen")) != bool(nb.get("frozen")):
                out.append(f"{pre}{k} {'frozen' if nb.get('frozen') else 'trainable'}")
            if na.get("when") != nb.get("when"):
                out.append(f"{pre}{k} when {_value(na.get('when'))} \u2192 "
                           f"{_value(nb.get('when'))}")
        wa, wb = _wires(a_nets[name], a_key), _wires(b_nets[name], b_key)
        for sign, wires, other in (("-", wa - wb, b), ("+", wb - wa, a)):
            for src, dst, port in sorted(wires, key=str):
                if src in other and dst in other:  # not a wire of a layer added or removed
                    to = f"{dst}[{port}]" if port else dst
                    out.append(f"{pre}wire {sign} {src} \u2192 {to}")
    return out


def settings_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The settings (``key a → b``) that differ between two sections (training or dataset)."""
    a = before if isinstance(before, dict) else {}
    b = after if isinstance(after, dict) else {}
    return [f"{k} {_value(a.get(k))} \u2192 {_value(b.get(k))}"
            for k in list(a) + [k for k in b if k not in a] if a.get(k) != b.get(k)]
