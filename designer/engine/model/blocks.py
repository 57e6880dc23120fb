"""Blocks: a network of the project used as a layer in another network.

One concept, no second graph type: any network of a project can be the model trained, a block
used as a layer elsewhere, or both. A **block use** is a node of type ``Block`` (its kind,
:class:`~designer.engine.model.nodes.BlockUseKind`, holds what is particular to it) whose parameters
say which network it instantiates (``block``), how many copies run in sequence (``repeat``, numbered
like ``nn.Sequential``: ``layer1.0.conv1.weight``), the values of the block's own parameters
(``args``) and values that only the first copy takes (``first``: a ResNet stage's first block
strides and has a downsample branch).

A network declares **block parameters** (``Graph.block_params``: int, float, bool or choice, each
with a default) that its layers' parameters may refer to: a parameter value
``{"ref": "width"}`` or ``{"ref": "width", "mul": 4}`` (an integer product, ``width * 4``) takes
the value of the use. No expression language beyond that, and nothing is evaluated as code. A
layer may be switched on by a bool block parameter (``Node.when``): when the parameter is false
the layer passes its input through (torchvision's optional ``downsample``), holds no weights and
is ``None`` in the built module. A network marked ``sequential`` names its layers' modules by
position (``downsample.0``, ``downsample.1``), as ``nn.Sequential`` does.

The port of a use are the block's Inputs (in order) and its one Output; its output shape comes from
inferring the block's inside on the incoming shapes (:mod:`.shapes`), its parameter count is the
sum, and a problem inside is pinned to the use that feeds the bad shape.
"""

from __future__ import annotations

import copy
import keyword
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .catalog import CATALOG, LayerSpec, Param
from .nodes import BLOCK, BLOCK_SPEC, MAX_REPEAT, kind_of
from .schema import _show, is_ref, ref_problem

if TYPE_CHECKING:
    from .graph import Graph

#: The types a block parameter may have.
BLOCK_PARAM_TYPES = ("int", "float", "bool", "choice")
MAX_BLOCK_PARAMS = 32
# Names exported code gives a meaning of its own (a block parameter becomes an __init__ argument).
_CODE_NAMES = frozenset({"self", "nn", "torch", "F", "super", "in_channels", "in_features"})
#: How deep blocks may nest (a block using a block using ...).
MAX_DEPTH = 16


def layer_spec(type_id: str) -> LayerSpec | None:
    """The spec of a node type: a catalog layer, or the block use (its kind says)."""
    spec = CATALOG.get(type_id)  # the common case first: this runs for every node of a check
    return spec if spec is not None else kind_of(type_id).spec(type_id)


# ---------------------------------------------------------------------------------------------
# References to block parameters
# ---------------------------------------------------------------------------------------------


def ref_text(value: dict) -> str:
    """``width`` or ``width * 4``: how a reference reads (canvas, inspector, code)."""
    mul = value.get("mul", 1)
    return value["ref"] if mul == 1 else f"{value['ref']} * {mul}"


def parse_ref(text: str) -> dict | None:
    """``"=width"`` or ``"= width * 4"`` (as typed in the inspector) -> a reference; None when the
    text is not one. Parsed by hand: nothing is evaluated."""
    t = text.strip()
    if not t.startswith("="):
        return None
    body = t[1:].replace(" ", "")
    name, _, mul = body.partition("*")
    if not name.isidentifier() or not name.isascii():
        return None
    if not mul:
        return {"ref": name}
    if not mul.isdigit() or not mul.isascii():
        return None
    return {"ref": name, "mul": int(mul)}


def bind(value: Any, values: Mapping[str, Any]) -> Any:
    """A parameter value with references replaced by ``values`` (KeyError: undeclared name)."""
    if not is_ref(value):
        return value
    v = values[value["ref"]]
    mul = value.get("mul", 1)
    if mul != 1:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{value['ref']} * {mul} needs a number, but {value['ref']} is "
                            f"{_show(v)}")
        v = v * mul
    return v


def refs_of(params: Mapping[str, Any]) -> dict[str, dict]:
    return {k: v for k, v in params.items() if is_ref(v)}


# ---------------------------------------------------------------------------------------------
# Block parameters
# ---------------------------------------------------------------------------------------------


def block_param(name: str, type_: str, default: Any, doc: str = "", min: float | None = None,
                max: float | None = None, choices: tuple[str, ...] = ()) -> Param:
    """A declared block parameter, checked like any other parameter declaration."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii() or len(name) > 64:
        raise ValueError(f"{_show(name)} is not a parameter name (letters, digits and _)")
    if keyword.iskeyword(name) or name in _CODE_NAMES:
        raise ValueError(f"{name!r} cannot name a block parameter: exported code uses it "
                         f"(it becomes an argument of the block's class); choose another name")
    if type_ not in BLOCK_PARAM_TYPES:
        raise ValueError(f"{name}: a block parameter is one of {', '.join(BLOCK_PARAM_TYPES)}, "
                         f"got {_show(type_)}")
    for bound, what in ((min, "min"), (max, "max")):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                  or not math.isfinite(bound)):
            raise ValueError(f"{name}: {what} is a number, got {_show(bound)}")
    if type_ == "choice" and (
            not isinstance(choices, (list, tuple)) or not choices or len(choices) > 64
            or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in choices)):
        raise ValueError(f"{name}: a choice parameter lists 1 to 64 texts as its choices")
    if not isinstance(doc, str) or len(doc) > 500:
        raise ValueError(f"{name}: doc is a text of at most 500 characters")
    p = Param(name, type_, default, doc, min=min, max=max, choices=tuple(choices or ()),
              layer=True)
    try:
        value = p.validate(default)
    except ValueError as exc:
        raise ValueError(f"{name}: default: {exc}") from None
    return Param(name, type_, value, doc, min=min, max=max, choices=tuple(choices or ()),
                 layer=True)


def block_param_to_dict(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "type": p.type, "default": p.default}
    if p.doc:
        out["doc"] = p.doc
    if p.min is not None:
        out["min"] = p.min
    if p.max is not None:
        out["max"] = p.max
    if p.choices:
        out["choices"] = list(p.choices)
    return out


BLOCK_PARAM_KEYS = ("name", "type", "default", "doc", "min", "max", "choices")


def block_param_from_dict(data: Any) -> Param:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, got {_show(data)}")
    unknown = [k for k in data if k not in BLOCK_PARAM_KEYS]
    if unknown:
        raise ValueError(f"unknown key {_show(unknown[0])} (known: {', '.join(BLOCK_PARAM_KEYS)})")
    return block_param(data.get("name"), data.get("type"), data.get("default"),
                       data.get("doc", ""), data.get("min"), data.get("max"),
                       tuple(data.get("choices") or ()))


def bound_values(graph: Graph, args: Mapping[str, Any] | None = None
                 ) -> tuple[dict[str, Any], list[str]]:
    """The block parameters' values for one use: the defaults, then ``args`` checked against
    the declarations. Returns the values and the problems (an unknown name, a refused value)."""
    values = {p.name: p.default for p in graph.block_params}
    problems: list[str] = []
    declared = {p.name: p for p in graph.block_params}
    for k, v in (args or {}).items():
        p = declared.get(k)
        if p is None:
            known = ", ".join(declared) or "none"
            problems.append(f"the block has no parameter {k!r} (its parameters: {known})")
            continue
        try:
            values[k] = p.validate(v)
        except ValueError as exc:
            problems.append(f"{k}: {exc}")
    return values, problems


# ---------------------------------------------------------------------------------------------
# The library of a project: which block uses which
# ---------------------------------------------------------------------------------------------


def uses_of(graph: Graph) -> list[str]:
    """Names of the blocks a network uses directly (in node order, once each)."""
    out: list[str] = []
    for n in graph.nodes.values():
        name = n.kind.block_name(n.params)
        if name is not None and name not in out:
            out.append(name)
    return out


def definition_cycle(library: Mapping[str, Graph], start: str) -> list[str] | None:
    """A chain of block definitions from ``start`` back to itself (``[A, B, A]``), or None."""
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return path[path.index(name):] + [name]
        if name in done or name not in library:
            return None
        path.append(name)
        on_path.add(name)
        for used in uses_of(library[name]):
            found = visit(used)
            if found:
                return found
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    return visit(start)


def deep_version(library: Mapping[str, Graph], name: str) -> tuple:
    """The versions of a definition and of every block it uses (nested): a cache key that
    changes whenever any of them is edited."""
    out: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    stack = [name]
    while stack:
        n = stack.pop()
        if n in seen or n not in library:
            continue
        seen.add(n)
        g = library[n]
        out.append((n, id(g), g.version))
        stack.extend(uses_of(g))
    return tuple(sorted(out))


def used_by(library: Mapping[str, Graph], name: str) -> list[tuple[str, str]]:
    """(network, node id) of every use of block ``name`` in the project."""
    return [(net, n.id) for net, g in library.items() for n in g.nodes.values()
            if n.kind.block_name(n.params) == name]


__all__ = [
    "BLOCK",
    "BLOCK_PARAM_TYPES",
    "BLOCK_SPEC",
    "MAX_REPEAT",
    "bind",
    "block_param",
    "block_param_from_dict",
    "block_param_to_dict",
    "bound_values",
    "deep_version",
    "definition_cycle",
    "is_ref",
    "layer_spec",
    "parse_ref",
    "ref_problem",
    "ref_text",
    "refs_of",
    "used_by",
    "uses_of",
]


# ---------------------------------------------------------------------------------------------
# Edits: group layers into a block, inline a use, make a use's definition its own
# ---------------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    s = re.sub(r"[^a-z0-9_]", "_", s).strip("_") or "block"
    return s if s[0].isalpha() else f"b_{s}"


def free_network_name(project, base: str) -> str:
    """``base``, or ``base2``, ``base3`` ... : a name no network of the project has."""
    name, i = base, 2
    while project.network_name_problem(name) is not None:
        name, i = f"{base}{i}", i + 1
        if i > 10_000:  # pragma: no cover - the project refuses more networks long before
            raise ValueError(f"no free network name like {base!r}")
    return name


def group(project, network: str, node_ids, name: str) -> str:
    """Turn the layers ``node_ids`` of ``network`` into a new block definition ``name`` and put
    one use of it in their place, wired as before. Returns the use's node id.

    Each layer outside the selection that feeds it becomes one Input of the block (its shape is
    what that layer gives); the one layer of the selection whose output is used outside becomes
    its Output. Raises ``GraphError`` (nothing changed) when the selection cannot be a block."""
    from .graph import GraphError  # imported here: a module-level import would be circular
    from .shapes import analyze  # imported here: a module-level import would be circular

    graph = project.networks[network]
    sel = [nid for nid in graph.nodes if nid in set(node_ids)]
    if not sel:
        raise GraphError("select the layers to group into a block")
    for nid in sel:
        if graph.nodes[nid].kind.is_port:
            raise GraphError(f"'{graph.nodes[nid].name}' is an {graph.nodes[nid].type}: a block "
                             "holds the layers between them; leave it out of the selection")
    why = project.network_name_problem(name)
    if why:
        raise GraphError(why)
    chosen = set(sel)
    incoming = [e for e in graph.edges if e.dst in chosen and e.src not in chosen]
    outgoing = [e for e in graph.edges if e.src in chosen and e.dst not in chosen]
    sources = list(dict.fromkeys(e.src for e in sorted(
        incoming, key=lambda e: (sel.index(e.dst), e.dst_port))))
    if not sources:
        raise GraphError("nothing feeds the selected layers: a block needs an input")
    leaving = list(dict.fromkeys(e.src for e in outgoing))
    if len(leaving) != 1:
        if not leaving:
            raise GraphError("nothing after the selected layers uses their output: a block "
                             "gives one output to the rest of the design")
        names = " and ".join(f"'{graph.nodes[n].name}'" for n in leaving[:3])
        raise GraphError(f"a block has one output, but {names} both feed layers outside the "
                         "selection: select so that one layer's output leaves the group")
    analysis = analyze(graph)
    for src in sources:
        if analysis.infos.get(src) is None or analysis.infos[src].output_shape is None:
            raise GraphError(f"the shape '{graph.nodes[src].name}' gives is unknown: fix the "
                             "design's errors before grouping")

    from .graph import Graph  # imported here: a module-level import would be circular

    definition = Graph()
    xs = [graph.nodes[n].pos[0] for n in sel]
    ys = [graph.nodes[n].pos[1] for n in sel]
    left, right, mid = min(xs) - 270.0, max(xs) + 270.0, (min(ys) + max(ys)) / 2
    ports: dict[str, str] = {}
    taken = {graph.nodes[n].name for n in sel}
    for k, src in enumerate(sources):
        info = analysis.infos[src]
        base = "input" if len(sources) == 1 else f"input{k + 1}"
        in_name = base
        while in_name in taken:
            in_name += "_"
        taken.add(in_name)
        node = definition.add_node(
            "Input", in_name, {"shape": list(info.output_shape),
                               "dtype": "int64" if info.dtype == "int" else "float32"},
            (left, mid + 120.0 * (k - (len(sources) - 1) / 2)))
        ports[src] = node.id
    for nid in sel:
        n = graph.nodes[nid]
        definition.nodes[nid] = replace(n, params=copy_params(n.params))  # frozen, attr kept
    out_name = "output"
    while out_name in taken:
        out_name += "_"
    out = definition.add_node("Output", out_name, None, (right, mid))
    from .graph import Edge  # imported here: a module-level import would be circular

    for e in graph.edges:
        if e.src in chosen and e.dst in chosen:
            definition.edges.append(Edge(e.src, e.dst, e.dst_port))
    for e in incoming:
        definition.edges.append(Edge(ports[e.src], e.dst, e.dst_port))
    definition.edges.append(Edge(leaving[0], out.id, 0))
    # the block reads left to right from its Input: the layers' old places were rows of the
    # network they came from (the starter's relu1 sits left of fc1, below it), where the wires
    # would run backwards
    from .layout import layered_positions  # imported here: a module-level import would be circular

    for nid, p in layered_positions(definition).items():
        definition.move(nid, p)

    project.add_network(name, definition)
    pos = (sum(xs) / len(xs), sum(ys) / len(ys))
    for nid in sel:
        graph.remove_node(nid)
    use_name = graph.unique_name(_snake(name)) if graph.node_by_name(_snake(name)) else _snake(name)
    use = graph.add_node(BLOCK, use_name, {"block": name}, pos)
    for k, src in enumerate(sources):
        graph.connect(src, use.id, k)
    for e in outgoing:
        graph.connect(use.id, e.dst, e.dst_port)
    return use.id


def copy_params(params: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(params)


def ungroup(project, network: str, use_id: str) -> list[str]:
    """Put the layers of a block use in its place (every copy, with the use's values: references
    become numbers, layers switched off are left out and bypassed), wired as before. The block's
    definition stays. Returns the ids of the layers added."""
    from .graph import GraphError  # imported here: a module-level import would be circular
    from .shapes import analyze  # imported here: a module-level import would be circular

    graph = project.networks[network]
    use = graph.node(use_id)
    if not use.kind.is_block:
        raise GraphError(f"'{use.name}' is not a block")
    analysis = analyze(graph)
    info = analysis.infos.get(use_id)
    if info is None or not info.kwargs or "_copies" not in info.kwargs:
        raise GraphError(f"'{use.name}' has errors; fix them before ungrouping")
    definition: Any = info.kwargs["_graph"]
    copies = info.kwargs["_copies"]
    ins = [n.id for n in definition.inputs()]
    out_id = definition.outputs()[0].id
    feeding = {e.dst_port: e.src for e in graph.in_edges(use_id)}
    consumers = [(e.dst, e.dst_port) for e in graph.out_edges(use_id)]
    sources = [feeding[k] for k in range(len(ins))]
    inner = definition.nodes
    order = analysis_order = copies[0][1].order
    width = max((n.pos[0] for n in inner.values()), default=0) - min(
        (n.pos[0] for n in inner.values()), default=0) + 300.0
    x0 = min((n.pos[0] for n in inner.values()), default=0.0)
    y0 = min((n.pos[1] for n in inner.values()), default=0.0)
    added: list[str] = []
    plan_nodes = []  # (new id, type, name, params, pos, when)
    plan_edges = []  # (src, dst, port)
    for i, (values, inner_analysis) in enumerate(copies):
        ids: dict[str, str] = {}

        def source_of(nid: str, _ids=ids, _an=inner_analysis, _srcs=tuple(sources)) -> str:
            if nid in ins:
                return _srcs[ins.index(nid)]
            kw = _an.infos[nid].kwargs or {}
            if kw.get("_disabled"):
                (pred,) = [e.src for e in definition.in_edges(nid)]
                return source_of(pred)
            return _ids[nid]

        prefix = f"{use.name}_{i}_" if len(copies) > 1 else f"{use.name}_"
        for nid in analysis_order:
            n = inner[nid]
            if n.kind.is_port or (inner_analysis.infos[nid].kwargs or {}).get(
                    "_disabled"):
                continue
            new_id = uuid.uuid4().hex[:12]
            ids[nid] = new_id
            params = _bound_params(n, values)
            pos = (use.pos[0] + (n.pos[0] - x0) + i * width, use.pos[1] + (n.pos[1] - y0))
            plan_nodes.append((new_id, n.type, prefix + n.name, params, pos))
        for e in definition.edges:
            if e.dst == out_id or e.dst in ins:
                continue
            if (inner_analysis.infos[e.dst].kwargs or {}).get("_disabled"):
                continue
            plan_edges.append((source_of(e.src), ids[e.dst], e.dst_port))
        (last,) = [e.src for e in definition.in_edges(out_id)]
        sources = [source_of(last)]
    del order
    graph.remove_node(use_id)
    for new_id, type_, name, params, pos in plan_nodes:
        base, k = name, 2
        while graph.node_by_name(name) is not None:
            name, k = f"{base}{k}", k + 1
        graph.add_node(type_, name, params, pos, id=new_id)
        added.append(new_id)
    for src, dst, port in plan_edges:
        graph.connect(src, dst, port, check=False)
    for dst, port in consumers:
        graph.connect(sources[0], dst, port, check=False)
    return added


def _bound_params(node, values: Mapping[str, Any]) -> dict[str, Any]:
    out = copy_params(node.params)
    for k, v in node.params.items():
        if is_ref(v):
            out[k] = bind(v, values)
        elif k in node.kind.argument_fields and isinstance(v, dict):
            out[k] = {a: bind(x, values) for a, x in v.items()}
    return out


def make_unique(project, network: str, use_id: str, new_name: str | None = None) -> str:
    """Give one use its own copy of its block's definition (to change it alone); returns the
    copy's name."""
    from .graph import GraphError  # imported here: a module-level import would be circular

    graph = project.networks[network]
    use = graph.node(use_id)
    if not use.kind.is_block:
        raise GraphError(f"'{use.name}' is not a block")
    block = use.params["block"]
    if block not in project.networks:
        raise GraphError(f"block {block!r} is not a network of this project")
    name = new_name or free_network_name(project, block)
    why = project.network_name_problem(name)
    if why:
        raise GraphError(why)
    project.add_network(name, project.networks[block].copy(),
                        list(project.networks).index(block) + 1)
    graph.set_params(use_id, {"block": name})
    return name


def networks_state(project) -> list[tuple[str, Any]]:
    """The networks of a project as (name, independent copy) pairs, in order: the before and
    after of a block edit, for undo and redo."""
    return [(name, g.copy()) for name, g in project.networks.items()]


def restore_networks(project, state: list[tuple[str, Any]]) -> None:
    """Make the project's networks equal ``state`` (from :func:`networks_state`) in place: the
    same Graph objects are kept for names that stay (their views follow through events),
    networks are added or removed through the project's methods, and the order is restored."""
    wanted = [name for name, _ in state]
    for name in [n for n in project.networks if n not in wanted]:
        project.remove_network(name)
    for index, (name, graph) in enumerate(state):
        if name in project.networks:
            project.networks[name].assign(graph)
        else:
            project.add_network(name, graph.copy(), index)
    if list(project.networks) != wanted:
        project._set_networks([(n, project.networks[n]) for n in wanted])


def input_count(library: Mapping[str, Graph] | None, node: Any) -> int | None:
    """How many input ports a block use has: its definition's Inputs (None when ``node`` is no
    block use or its definition is unknown)."""
    return node.kind.input_count(node, library)


def block_names(library: Mapping[str, Graph]) -> list[str]:
    """The networks used as blocks by another network (in project order)."""
    used = {name for g in library.values() for name in uses_of(g)}
    return [name for name in library if name in used]


def model_names(library: Mapping[str, Graph]) -> list[str]:
    """The networks that are models of their own: not used as a block by another network (the
    first network always is one: it is the one trained by default)."""
    used = set(block_names(library))
    names = list(library)
    return [n for i, n in enumerate(names) if i == 0 or n not in used]


def definition_order(library: Mapping[str, Graph]) -> list[str]:
    """The block definitions, each after every block it uses (the order classes are written)."""
    out: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in out or name in stack or name not in library:
            return
        for used in uses_of(library[name]):
            visit(used, (*stack, name))
        out.append(name)

    for name in block_names(library):
        visit(name, ())
    return out


def use_context(graph: Graph, analysis: Any, use_id: str, copy: int = 0
                ) -> tuple[dict[str, Any], list[tuple[tuple[int, ...], str]]] | None:
    """What a block use feeds its definition: the block parameters' values of copy ``copy`` and
    the ``(shape, dtype)`` each Input receives, from an analysis of the network holding the use
    (None when the shapes reaching it are unknown). Analysing the definition with them
    (``Analyzer(definition, values, inputs)``) pins a problem of that use to the layer inside
    the block that causes it, when the definition is opened from the use."""
    from .graph import Adjacency  # imported here: a module-level import would be circular

    node = graph.nodes.get(use_id)
    if node is None:
        return None
    definition = node.kind.definition(node, graph.library)
    if definition is None:
        return None
    preds = Adjacency.of(graph).preds[use_id]
    flows = []
    for e in preds:
        info = analysis.infos.get(e.src)
        if info is None or info.output_shape is None:
            return None
        flows.append((tuple(info.output_shape), info.dtype))
    from .shapes import Analyzer  # imported here: a module-level import would be circular

    parent_values = Analyzer(graph, subscribe=False)._block_values()[0] if graph.block_params \
        else {}
    args = {k: bind(v, parent_values) if is_ref(v) else v
            for k, v in (node.params.get("args") or {}).items()}
    first = {k: bind(v, parent_values) if is_ref(v) else v
             for k, v in (node.params.get("first") or {}).items()}
    copies = (analysis.infos.get(use_id).kwargs or {}).get("_copies") if analysis.infos.get(
        use_id) else None
    if copies and copy < len(copies):
        values = copies[copy][0]
        if copy > 0:  # a later copy receives what the one before it gives
            prev = copies[copy - 1][1]
            out = definition.outputs()[0].id
            flows = [(tuple(prev.infos[out].output_shape), prev.infos[out].dtype)]
        return dict(values), flows
    values, _ = bound_values(definition, {**args, **first} if copy == 0 else args)
    return values, flows


def other_arguments(graph: Graph, values: Mapping[str, Any],
                    flows: list[tuple[tuple[int, ...], str]]
                    ) -> list[tuple[dict[str, Any], list[tuple[tuple[int, ...], str]]]]:
    """Other arguments a block could be built with than one use's ``values`` and input
    ``flows``: each bool parameter flipped, the inputs' first and last axes scaled, each int
    parameter scaled alone and together with an axis. Code export analyses the block with them to
    tell which sizes follow which argument (``BatchNorm2d(planes)``, ``Conv2d(in_channels, ...)``)
    where every use of the design happens to agree; many are refused by the block's own
    constraints (an identity skip needs equal channels) and simply not used. Nothing here is
    checked: the caller analyses each candidate."""
    flags = [p for p in graph.block_params if p.type == "bool"
             and isinstance(values.get(p.name), bool)]
    ints = [p for p in graph.block_params if p.type == "int" and isinstance(values.get(p.name), int)
            and not isinstance(values.get(p.name), bool) and values[p.name] > 0]
    ndim = min((len(shape) for shape, _ in flows), default=0)
    axes = [0, -1] if ndim >= 2 else [0] if ndim == 1 else []

    def scaled(vals: dict[str, Any], names: tuple[str, ...], factor: int) -> dict[str, Any] | None:
        out = dict(vals)
        for p in ints:
            if p.name in names:
                out[p.name] = vals[p.name] * factor
                if p.max is not None and out[p.name] > p.max:
                    return None
        return out

    def axis_scaled(axis: int | None, factor: int) -> list[tuple[tuple[int, ...], str]]:
        if axis is None:
            return list(flows)
        return [(tuple(d * factor if i == axis % len(shape) else d
                       for i, d in enumerate(shape)), dtype) for shape, dtype in flows]

    bases = [dict(values)] + [{**values, p.name: not values[p.name]} for p in flags]
    out: list[tuple[dict[str, Any], list[tuple[tuple[int, ...], str]]]] = []
    for k, base in enumerate(bases):
        if k:  # a flag flipped, nothing scaled: the layers it switches at the design's sizes
            out.append((base, list(flows)))
        for axis in axes:
            out.append((base, axis_scaled(axis, 3)))
        for p in ints:
            alone = scaled(base, (p.name,), 3)
            if alone is not None:
                out.append((alone, list(flows)))
            both = scaled(base, (p.name,), 2)
            for axis in (axes if both is not None else ()):
                out.append((both, axis_scaled(axis, 2)))
    return out


def convert_value(value: Any, new: Param) -> Any:
    """``value`` of a block parameter whose type changes to ``new.type``: the same meaning in
    the new type (``1`` -> ``True``, ``True`` -> ``1``, ``3`` -> ``3.0``, ``"2"`` -> ``2``), or
    ValueError saying why there is none (``64`` is no true/false). A reference stays as it is."""
    if is_ref(value):
        return value
    out: Any = value
    if new.type == "bool":
        if isinstance(value, bool):
            out = value
        elif isinstance(value, (int, float)) and value in (0, 1):
            out = bool(value)
        elif isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1"):
            out = value.strip().lower() in ("true", "1")
        else:
            raise ValueError(f"{_show(value)} is not true or false (only 0 and 1 are)")
    elif new.type in ("int", "float"):
        number: Any = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError(f"{_show(value)} is not a number") from None
        if isinstance(number, bool):
            number = int(number)
        if not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ValueError(f"{_show(value)} is not a number")
        if new.type == "int":
            if float(number) != int(number):
                raise ValueError(f"{_show(value)} is not a whole number")
            out = int(number)
        else:
            out = float(number)
    elif new.type == "choice":
        out = str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, float) and value.is_integer():
            out = str(int(value))
    try:
        return new.validate(out)
    except ValueError as exc:
        raise ValueError(f"{_show(value)} does not fit ({exc})") from None


def retyped_uses(library: Mapping[str, Graph], block: str, old: tuple[Param, ...],
                 new: tuple[Param, ...]) -> list[tuple[str, str, dict[str, Any]]]:
    """The uses of ``block`` whose values must follow a change of its parameters' types from
    ``old`` to ``new`` (matched by name): ``(network, node id, params to set)`` for each, with
    ``args`` and ``first`` converted (:func:`convert_value`). Raises ValueError naming the use
    and the value that has no meaning in the new type."""
    before = {p.name: p for p in old}
    changed = {p.name: p for p in new if p.name in before and before[p.name].type != p.type}
    out: list[tuple[str, str, dict[str, Any]]] = []
    if not changed:
        return out
    for net, node_id in used_by(library, block):
        node = library[net].nodes[node_id]
        update: dict[str, Any] = {}
        for field in ("args", "first"):
            values = dict(node.params.get(field) or {})
            touched = False
            for name, param in changed.items():
                if name not in values:
                    continue
                try:
                    values[name] = convert_value(values[name], param)
                except ValueError as exc:
                    raise ValueError(
                        f"cannot make {name} a {param.type} parameter: '{node.name}' in "
                        f"{net} {'passes' if field == 'args' else 'gives its first copy'} "
                        f"{_show(node.params[field][name])}, and {exc}; change that value "
                        "first") from None
                touched = True
            if touched:
                update[field] = values
        if update:
            out.append((net, node_id, update))
    return out
