"""The class writer: each network of a project as a readable ``nn.Module`` class.

A project built from blocks reads like torchvision's resnet.py: one class per block definition,
its block parameters as ``__init__`` arguments, written before the models that instantiate it
(``nn.Sequential`` of the copies when a use repeats). Forward variables are the node names,
renamed only where they would shadow something the generated code uses (``input`` -> ``input_``).
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from ..model.blocks import bind, bound_values, definition_order, is_ref, other_arguments, ref_text
from ..model.build import BuildError, Step, ordered_io, plan
from ..model.catalog import CATALOG, CodeContext, LayerSpec, code_lines, module_kwargs, name_problem
from ..model.catalog.activation import parameter_size
from ..model.catalog.names import list_item
from ..model.graph import Graph, is_aux_output
from ..model.interpreter import GraphInterpreter
from ..model.pysource import BUILTIN_NAMES, MODULE_NAMES, CodegenError, comment_text, literal
from ..model.shapes import Analysis, Analyzer, _expand, analyze
from .layer_code import COLLAPSIBLE, MODULE_ATTRS, constructor, same_value

# --------------------------------------------------------------------------------------------
# model.py
# --------------------------------------------------------------------------------------------


@dataclass
class NetworkCode:
    """One network written as a class: its name, source lines and forward signature."""

    class_name: str
    lines: list[str]
    input_names: list[str]  # forward arguments, in order
    input_shapes: list[tuple[int, ...]]  # without batch
    input_dtypes: list[str]  # "float32" or "int64"
    output_shapes: list[tuple[int, ...]]
    output_names: list[str]  # the variables forward returns, in order


def _shape_comment(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "(N, ?)"
    return "(" + ", ".join(["N", *(str(s) for s in shape)]) + ")"


def _placeholder_names(spec: LayerSpec, ctx: CodeContext) -> set[str]:
    """Names a layer's code template uses besides its inputs, output and ``self``: temporaries
    such as ``h_n`` that no forward variable may take."""
    lines = code_lines(spec, ctx)
    names: set[str] = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Name):
            names.add(node.id)
    return names - {ctx.out, *ctx.inputs, "self"}


def _comment_line(line: str, shape: str) -> str:
    """Append the shape comment, merging it with a comment the template already wrote."""
    code, sep, note = line.partition("  # ")
    return f"{code}  # {shape}" + (f", {note}" if sep else "")


def network_code(graph: Graph, cls: str, analysis: Analysis | None = None,
                 reserved: set[str] | frozenset[str] = frozenset()) -> NetworkCode:
    """One ``nn.Module`` class for ``graph`` (raises :class:`CodegenError` when it has errors).

    A graph that uses blocks needs their classes too: :func:`model_codes` writes them all."""
    library = dict(graph.library or {})
    name = next((n for n, g in library.items() if g is graph), None)
    if name is None:
        name = "__network"
        library = {name: graph, **library}
    writer = ClassWriter(library, [name], {name: analysis} if analysis else {},
                          {name: cls}, reserved)
    return writer.run()[name]


@dataclass
class _Use:
    """One place a network is built: a copy of a block use, or the network as a model."""

    values: dict[str, Any]  # its block parameters' values
    analysis: Analysis
    model: bool = False
    # a model analysed with other values of its searched arguments: it shows which sizes follow
    # them (written as expressions); its class is never written
    probe: bool = False
    # a block analysed with other arguments than any use of the design has (blocks.
    # other_arguments): shows which sizes follow its arguments; never instantiated
    other: bool = False


@dataclass
class _Variant:
    """One class written for a network: the uses whose forward reads the same."""

    net: str
    cls: str
    uses: list[_Use]
    args: list[str] = field(default_factory=list)  # __init__ arguments, in order
    defaults: dict[str, Any] = field(default_factory=dict)
    # per use (by id of its analysis): the values of the inferred __init__ arguments
    inferred: dict[int, dict[str, Any]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    code: NetworkCode | None = None


_FEATURE_KWARGS = frozenset({"in_features", "input_size", "embed_dim", "d_model",
                             "normalized_shape", "in1_features"})


def _dim(shape: Any, index: int) -> Any:
    return shape[index] if isinstance(shape, tuple) and shape else None


class ClassWriter:
    """Writes the classes of model.py: one per block definition (more only when uses of a block
    need different forward code, ``BasicBlock2``), then one per model.

    A layer argument that is a reference to a block parameter is written as the expression
    (``planes * 4``); an argument that differs between the uses of a block is an ``__init__``
    argument (``in_channels`` when it is the input's size, a block parameter when it equals one in
    every use, else ``<layer>_<argument>``) that each use passes as a literal; one equal in every
    use stays a literal unless the block analysed with other arguments (:meth:`_other_uses`)
    shows which argument it follows, so a block class builds with other arguments than the
    design's. Modules are created in the engine's order, so a seeded init matches."""

    def __init__(self, library: dict[str, Graph], models: list[str],
                 analyses: dict[str, Analysis], names: dict[str, str],
                 reserved: set[str] | frozenset[str] = frozenset(),
                 probes: dict[str, list[list[dict[str, Any]]]] | None = None) -> None:
        self.library = library
        self.probes = probes or {}  # model -> other values of its block parameters
        self.probe_uses: dict[str, list[tuple[dict[str, Any], Analysis]]] = {}
        self.unexpressed: list[str] = []  # sizes that follow a searched argument, as literals
        self.models = models
        self.analyses = analyses
        self.names = names  # network -> base class name
        self.taken = set(names.values()) | set(reserved)
        self.variants: list[_Variant] = []
        self.variant_of: dict[int, _Variant] = {}  # id(analysis) -> its class
        self.model_code: dict[str, NetworkCode] = {}

    # -- which uses each network has --------------------------------------------------------------

    def _collect(self) -> dict[str, list[_Use]]:
        uses: dict[str, list[_Use]] = {n: [] for n in self.library}
        seen: set[int] = set()

        def walk(analysis: Analysis, probe: bool = False, other: bool = False) -> None:
            for nid in analysis.order:
                kw = analysis.infos[nid].kwargs or {}
                for values, inner in kw.get("_copies", ()):
                    if id(inner) in seen:
                        continue
                    seen.add(id(inner))
                    uses[kw["_block"]].append(_Use(dict(values), inner, probe=probe or other,
                                                   other=other))
                    walk(inner, probe, other)

        for net in self.models:
            graph = self.library[net]
            analysis = self.analyses.get(net) or analyze(graph)
            if not analysis.ok:
                try:
                    plan(graph, analysis)
                except BuildError as exc:
                    raise CodegenError(self._where(net) + str(exc)) from None
            seen.add(id(analysis))
            uses[net].insert(0, _Use(bound_values(graph)[0], analysis, model=True))
            walk(analysis)
        for net in self.models:
            for alternatives in self.probes.get(net, ()):
                for values in alternatives:  # the first the model accepts
                    analyzer = Analyzer(self.library[net], values)
                    try:
                        probe = analyzer.analyze()
                    finally:
                        analyzer.close()
                    if not probe.ok:
                        continue
                    self.probe_uses.setdefault(net, []).append((values, probe))
                    seen.add(id(probe))
                    full = {**bound_values(self.library[net])[0], **values}
                    uses[net].append(_Use(full, probe, model=True, probe=True))
                    walk(probe, probe=True)
                    break
        self._other_uses(uses, seen, walk)
        return uses

    def _other_uses(self, uses: dict[str, list[_Use]], seen: set[int], walk) -> None:
        """Add each block's analyses with other arguments than its uses have (outer blocks
        first, so the blocks inside them see those too): a size that follows an argument is then
        written as it (``BatchNorm2d(planes)``) even where every use agrees, and the class builds
        with other arguments than the design's."""
        for net in reversed(definition_order(self.library)):
            graph = self.library[net]
            ins = [n.id for n in graph.inputs()]
            tried: set[tuple] = set()
            given: set[tuple] = set()
            for use in [u for u in uses.get(net, ()) if not u.probe]:
                infos = use.analysis.infos
                if any(infos.get(i) is None or infos[i].output_shape is None for i in ins):
                    continue
                flows = [(tuple(infos[i].output_shape), infos[i].dtype) for i in ins]
                given.add((repr(sorted(use.values.items())), tuple(flows)))
                if len(given) > 3:  # a few uses tell enough; every one costs analyses
                    break
                for values, other_flows in other_arguments(graph, use.values, flows):
                    key = (repr(sorted(values.items())), tuple(other_flows))
                    if key in tried:
                        continue
                    tried.add(key)
                    _, analysis = _expand(graph, net, values, other_flows, (net,))
                    if not analysis.ok or id(analysis) in seen:
                        continue
                    seen.add(id(analysis))
                    uses[net].append(_Use(dict(values), analysis, probe=True, other=True))
                    walk(analysis, other=True)

    def _where(self, net: str) -> str:
        return f"network {net!r}: " if len(self.library) > 1 else ""

    def run(self) -> dict[str, NetworkCode]:
        """Write every class; returns the models' code by network (also kept as model_code)."""
        for net, graph in self.library.items():
            _check_names(net, graph, self._where(net))
        uses = self._collect()
        order = [n for n in definition_order(self.library) if uses.get(n)]
        order += [m for m in self.models if m not in order]
        for net in order:
            try:
                self._write_network(net, uses[net])
            except CodegenError as exc:
                raise CodegenError(self._where(net) + str(exc)) from None
        return self.model_code

    # -- one network ------------------------------------------------------------------------------

    def _write_network(self, net: str, uses: list[_Use]) -> None:
        graph = self.library[net]
        groups: list[tuple[list, list[tuple[_Use, list[Step]]]]] = []
        for use in uses:
            steps = plan(graph, use.analysis)
            key = self._key(graph, steps, use)
            for group_key, members in groups:
                if len(group_key) == len(key) and all(
                        a is None or b is None or a == b for a, b in zip(group_key, key)):
                    group_key[:] = [b if a is None else a for a, b in zip(group_key, key)]
                    members.append((use, steps))
                    break
            else:
                groups.append((list(key), [(use, steps)]))
        for k, (_, members) in enumerate(groups):
            base = self.names[net]
            cls = base
            if k:
                i = k + 1
                while f"{base}{i}" in self.taken:
                    i += 1
                cls = f"{base}{i}"
                self.taken.add(cls)
            variant = _Variant(net, cls, [u for u, _ in members])
            self._write_variant(graph, variant, members)
            if not all(u.probe for u in variant.uses):  # a probe's own class is not written
                self.variants.append(variant)
            for use, _ in members:
                self.variant_of[id(use.analysis)] = variant
                if use.model and not use.probe:
                    self.model_code[net] = variant.code

    def _key(self, graph: Graph, steps: list[Step], use: _Use) -> list:
        """What must be the same for two uses to share a class: the forward code (with placeholder
        names) and the classes of nested blocks; None for a layer switched off in this use."""
        key: list[Any] = [tuple(s.node_id for s in steps)]
        of_step = _StepKey(graph, use, self.variant_of)
        key += [of_step.run_node(s, []) for s in steps if not s.kind.is_port]
        return key

    def _write_variant(self, graph: Graph, v: _Variant,
                       members: list[tuple[_Use, list[Step]]]) -> None:
        steps = members[0][1]
        uses = [u for u, _ in members]
        declared = [p.name for p in graph.block_params]
        for p in declared:
            why = _name_problem_in_code(p, self.taken)
            if why:
                raise CodegenError(f"block parameter {p!r} cannot be written as Python: {why}; "
                                   "rename it")
        input_ids, output_ids = ordered_io(graph, steps)
        meanings: dict[str, Any] = {}
        inferred: list[str] = []
        for u in uses:
            v.inferred[id(u.analysis)] = {}
        first_in = [u.analysis.infos[input_ids[0]].output_shape if input_ids else None
                    for u in uses]
        # a model and its probes only: a size that follows a searched argument but is none of
        # the expressions below stays the model's literal (train.py refuses what it cannot build)
        probed = any(u.probe for u in uses) and all(u.model for u in uses)

        def vary(pairs: list[tuple[int, Any]], kind: str, label: str) -> str | None:
            """None when the value is the same in every use, else the expression for it."""
            vals = [x for _, x in pairs]
            if all(same_value(x, vals[0]) for x in vals):
                return None
            ints = all(isinstance(x, int) and not isinstance(x, bool) for x in vals)
            for p in (graph.block_params if ints else ()):  # planes: the block's own argument
                got = [uses[i].values.get(p.name) for i, _ in pairs]
                if p.type == "int" and all(g == x and not isinstance(g, bool)
                                           for g, (_, x) in zip(got, pairs)):
                    return p.name
            dims = [("in_channels", 0), ("in_features", -1)]
            if kind in _FEATURE_KWARGS:
                dims.reverse()
            for name, index in (dims if ints else ()):
                if name in declared or meanings.get(name, ("dim", index)) != ("dim", index):
                    continue
                if all(_dim(first_in[i], index) == x for i, x in pairs):
                    return arg(name, ("dim", index), pairs)
            for p in (graph.block_params if ints else ()):  # planes, or planes * 4
                got = [uses[i].values.get(p.name) for i, _ in pairs]
                if p.type != "int" or not all(isinstance(g, int) and g > 0 for g in got):
                    continue
                if all(g == x for g, (_, x) in zip(got, pairs)):
                    return p.name
                ratio = vals[0] // got[0]
                if ratio > 1 and all(g * ratio == x for g, (_, x) in zip(got, pairs)):
                    return f"{p.name} * {ratio}"
            if probed:
                self.unexpressed.append(label)
                return None
            real = [x for i, x in pairs if not uses[i].other]
            if all(same_value(x, real[0]) for x in real[1:]):
                return None  # only other arguments change it, and none of them explains it
            name = re.sub(r"\W", "_", label)
            while name in declared or (name in meanings and meanings[name] != ("node", label)):
                name += "_"
            return arg(name, ("node", label), pairs)

        def arg(name: str, meaning: Any, pairs: list[tuple[int, Any]]) -> str:
            if name not in meanings:
                meanings[name] = meaning
                inferred.append(name)
            for i, x in pairs:
                v.inferred[id(uses[i].analysis)][name] = x
            if meaning[0] == "dim":  # known in every use, not only where the layer is on
                for i, u in enumerate(uses):
                    v.inferred[id(u.analysis)][name] = _dim(first_in[i], meaning[1])
            return name

        sequential = graph.sequential
        chain = sequential and self._is_chain(graph, steps, input_ids, output_ids)
        init: list[str] = []
        attrs: dict[str, str] = {}  # node id -> how forward reaches its module
        flags: dict[str, str] = {}  # when-parameter -> attribute holding it (module-less layers)
        lists: set[str] = set()  # nn.ModuleList attributes made for items (layers.0)
        module_attrs = {s.attr for s in steps if not s.kind.is_port}
        for s in steps:
            if s.kind.is_port:
                continue
            node = graph.nodes[s.node_id]
            on = [(i, ss[s.node_id]) for i, ss in enumerate(self._by_id(members))
                  if not ss[s.node_id].disabled]
            has_module = s.kind.holds_module(s.type)
            # a sequential network's numbers and an imported model's "block1-0" are no names
            named = s.attr.isidentifier() and not (sequential and not chain)
            item = list_item(s.attr) if not chain else None  # layers.0: a list's item
            if item is not None:
                attrs[s.node_id] = (f"self.{item[0]}[{item[1]}]" if isinstance(item[1], int)
                                    else f"self.{item[0]}.{item[1]}")
            elif not named:
                attrs[s.node_id] = f"getattr(self, {literal(s.attr)})"
            else:
                attrs[s.node_id] = f"self.{s.attr}"
            if not has_module:
                if node.when is not None and node.when not in flags:
                    name = node.when
                    while name in module_attrs or name in flags.values():
                        name = f"use_{name}"
                    flags[node.when] = name
                    init.append(f"self.{name} = {node.when}")
                continue
            stored = CATALOG[s.type].stored_code if s.kind.bare_parameter(s.type) else None
            if stored is not None and on and node.when is None:  # a buffer: registered
                init.append(stored(on[0][1].kwargs, literal(s.attr)))
                continue
            ctor = self._constructor(s, node, on, uses, vary) if on else None
            if node.when is not None:
                ctor = f"{ctor} if {node.when} else None" if ctor else "None"
            if chain:
                init.append(f"{ctor},")
            elif item is not None:
                numbered = isinstance(item[1], int)
                if item[0] not in lists:
                    lists.add(item[0])
                    init.append(f"self.{item[0]} = {'nn.ModuleList()' if numbered else 'nn.Module()'}")
                init.append(f"self.{item[0]}.append({ctor})" if numbered
                            else f"self.{item[0]}.{item[1]} = {ctor}")
            elif not named:
                register = "register_parameter" if _bare(s) else "add_module"
                init.append(f"self.{register}({literal(s.attr)}, {ctor})")
            else:
                init.append(f"self.{s.attr} = {ctor}")

        v.args = inferred + declared
        model_use = next((u for u in uses if u.model), None)
        for name in inferred:
            if model_use is not None:
                v.defaults[name] = v.inferred[id(model_use.analysis)].get(name)
        for p in graph.block_params:
            v.defaults[p.name] = p.default
        forward, code = self._forward(graph, v, members, input_ids, output_ids, attrs, flags)
        self._assemble(graph, v, init, forward, chain, code.input_names, inferred)
        code.lines = v.lines
        if model_use is not None:
            v.code = code

    @staticmethod
    def _by_id(members: list[tuple[_Use, list[Step]]]) -> list[dict[str, Step]]:
        return [{s.node_id: s for s in steps} for _, steps in members]

    def _is_chain(self, graph: Graph, steps: list[Step], input_ids: list[str],
                  output_ids: list[str]) -> bool:
        """A sequential network that nn.Sequential runs as is: one Input, each layer a module fed
        by the one before, called on it, always on."""
        if len(input_ids) != 1 or len(output_ids) != 1:
            return False
        prev = input_ids[0]
        for s in steps:
            if s.kind.is_input:
                continue
            if s.kind.is_output:
                return s.inputs == (prev,)
            node = graph.nodes[s.node_id]
            if node.when is not None or s.inputs != (prev,):
                return False
            if not s.kind.is_block:  # a block use is a module called on its input
                spec = CATALOG[s.type]
                if spec.module is None:
                    return False
                ctx = CodeContext("__out", "self.__attr", ["__in0"], s.kwargs, node.params)
                lines = code_lines(spec, ctx)
                if len(lines) != 1 or lines[0].partition("  # ")[0] != "__out = self.__attr(__in0)":
                    return False
            prev = s.node_id
        return False  # pragma: no cover - a valid network has its Output

    def _constructor(self, step: Step, node, on: list[tuple[int, Step]], uses: list[_Use],
                     vary) -> str:
        """What ``__init__`` assigns to the step's attribute, by its kind."""
        return _CONSTRUCTORS[step.kind.method](self, node, on, uses, vary)

    def _layer_ctor(self, node, on: list[tuple[int, Step]], uses: list[_Use], vary) -> str:
        spec = CATALOG[node.type]
        if spec.bare_parameter:
            return _parameter_ctor(on[0][1].kwargs)
        kws = [(i, module_kwargs(s.kwargs)) for i, s in on]
        rep = kws[0][1]
        exprs: dict[str, str] = {}
        for k in rep:
            raw = node.params.get(k)
            if is_ref(raw) and all(_matches(kw.get(k), bind(raw, uses[i].values), k)
                                   for i, kw in kws):
                exprs[k] = ref_text(raw)
                continue
            expr = vary([(i, kw.get(k)) for i, kw in kws], k, f"{node.name}_{k}")
            if expr is not None:
                exprs[k] = expr
        return constructor(spec, on[0][1].kwargs, exprs)

    def _block_ctor(self, node, on: list[tuple[int, Step]], uses: list[_Use], vary) -> str:
        copies = len(on[0][1].kwargs["_copies"])
        texts = []
        for c in range(copies):
            inner = [(i, s.kwargs["_copies"][c][1]) for i, s in on]
            variant = self.variant_of[id(inner[0][1])]
            given = dict(node.params.get("args") or {})
            if c == 0:
                given.update(node.params.get("first") or {})
            args = []
            for a in variant.args:
                if a in given:
                    raw = given[a]
                    text = ref_text(raw) if is_ref(raw) else literal(
                        on[0][1].kwargs["_copies"][c][0][a])
                elif a in {p.name for p in self.library[variant.net].block_params}:
                    continue  # the block parameter's default
                else:
                    pairs = [(i, self.variant_of[id(an)].inferred[id(an)].get(a))
                             for i, an in inner]
                    label = f"{node.name}_{a}" if copies == 1 else f"{node.name}_{c}_{a}"
                    text = vary(pairs, a, label) or literal(pairs[0][1])
                args.append(f"{a}={text}")
            texts.append(f"{variant.cls}({', '.join(args)})")
        if copies == 1:
            return texts[0]
        rest = texts[1:]
        if len(rest) >= 3 and all(t == rest[0] for t in rest):
            return f"nn.Sequential({texts[0]}, *({rest[0]} for _ in range({len(rest)})))"
        return f"nn.Sequential({', '.join(texts)})"

    def _forward(self, graph: Graph, v: _Variant, members, input_ids, output_ids,
                 attrs: dict[str, str], flags: dict[str, str]) -> tuple[list[str], NetworkCode]:
        steps = members[0][1]
        by_id = self._by_id(members)
        uses = v.uses
        temps: set[str] = set()
        for s in steps:
            if s.kind.is_input or s.kind.is_block:  # no code template of their own
                continue
            ctx = CodeContext("__out", "self.__attr",
                              [f"__in{i}" for i in range(len(s.inputs) or 1)], s.kwargs,
                              _bound(graph.nodes[s.node_id].params, uses[0].values))
            temps |= _placeholder_names(CATALOG[s.type], ctx)
        taken = self.taken | set(MODULE_NAMES) | temps
        forbidden = taken | BUILTIN_NAMES | set(keyword.kwlist)
        var: dict[str, str] = {}
        used = {s.name for s in steps if s.name not in forbidden}
        for s in steps:
            name = s.name
            if name in forbidden:
                while name in forbidden or name in used:
                    name += "_"
                used.add(name)
            var[s.node_id] = name

        def shape_of(nid: str) -> str | None:
            """The shape comment; a size that differs between uses reads ``?``."""
            shapes = {u.analysis.infos[nid].output_shape for u in uses if not u.other}
            if None in shapes or len({len(sh) for sh in shapes}) != 1:
                return None
            dims = [d[0] if len(set(d)) == 1 else "?" for d in zip(*shapes)]
            if dims and all(d == "?" for d in dims):
                return None
            return "(" + ", ".join(["N", *map(str, dims)]) + ")"

        forward: list[str] = []
        for nid in input_ids:
            dtype = graph.nodes[nid].params.get("dtype", "float32")
            what = "token ids (int64)" if dtype == "int64" else "float32"
            shape = shape_of(nid)
            forward.append(f"# {var[nid]}: {shape + ' ' if shape else ''}{what}")
        _ForwardLines(graph, steps, by_id, uses, var, attrs, flags, input_ids, shape_of,
                      forward).run()
        outs = [var[o] for o in output_ids]
        main = [var[o] for o in output_ids if not is_aux_output(graph.nodes[o])]
        if len(main) < len(outs):  # auxiliary outputs: returned in training only, after
            forward.append("if self.training:")
            forward.append("    return " + ", ".join(outs))
            outs = main
        forward.append("return " + (outs[0] if len(outs) == 1 else ", ".join(outs)))
        model_use = next((u for u in uses if u.model), uses[0])
        infos = model_use.analysis.infos
        code = NetworkCode(
            v.cls, [], [var[i] for i in input_ids],
            [tuple(infos[i].output_shape) for i in input_ids],
            [graph.nodes[i].params.get("dtype", "float32") for i in input_ids],
            [tuple(infos[o].output_shape) for o in output_ids
             if not is_aux_output(graph.nodes[o])],
            outs,
        )
        return forward, code

    def _assemble(self, graph: Graph, v: _Variant, init: list[str], forward: list[str],
                  chain: bool, input_names: list[str], inferred: list[str]) -> None:
        is_model = any(u.model for u in v.uses)
        params = []
        for name in v.args:
            if name in v.defaults and (is_model or name not in inferred):
                params.append(f"{name}={literal(v.defaults[name])}")
            else:
                params.append(name)
        notes = []
        for name in inferred:
            notes.append(f"# {name}: " + ("the size of the input at each use"
                                           if name in ("in_channels", "in_features")
                                           else "differs between the uses of this block"))
        for p in graph.block_params:
            room = max(20, 86 - len(p.name))  # the line stays under 100 characters
            notes.append(f"# {p.name}: {comment_text(p.doc, limit=room) or p.type}")
        base = "nn.Sequential" if chain else "nn.Module"
        if is_model and all(u.model for u in v.uses):
            doc = "The designed network; layers are created in the order data flows through them."
        else:
            doc = "A block: a network of the design used as a layer by others."
        lines = [f"class {v.cls}({base}):", f'    """{doc}"""', ""]
        lines.append(f"    def __init__({', '.join(['self', *params])}):")
        lines += ["        " + n for n in notes]
        if chain:
            lines.append("        super().__init__(")
            lines += ["            " + line for line in init]
            lines.append("        )")
        else:
            lines.append("        super().__init__()")
            lines += ["        " + line for line in init]
            lines.append("")
            args = ["self", *input_names]
            lines.append(f"    def forward({', '.join(args)}):")
            lines += ["        " + line for line in forward]
        v.lines = lines


class _StepKey(GraphInterpreter):
    """A step's part of :meth:`ClassWriter._key`, by kind: a layer's forward code with
    placeholder names and its constructor's arguments, a block use's classes (one per copy);
    None for a step switched off in this use. Dispatches steps, walks no graph."""

    def __init__(self, graph: Graph, use: _Use, variant_of: dict[int, _Variant]) -> None:
        super().__init__(graph)
        self.use, self.variant_of = use, variant_of

    def layer(self, s: Step, args: list[Any]) -> tuple | None:
        if s.disabled:
            return None
        ctx = CodeContext("__out", "self.__attr", [f"__in{i}" for i in range(len(s.inputs) or 1)],
                          s.kwargs, _bound(self.graph.nodes[s.node_id].params, self.use.values))
        return tuple(code_lines(CATALOG[s.type], ctx)), tuple(module_kwargs(s.kwargs))

    def block(self, s: Step, args: list[Any]) -> tuple | None:
        if s.disabled:
            return None
        return "block", tuple(self.variant_of[id(a)].cls for _, a in s.kwargs["_copies"])


class _ForwardLines(GraphInterpreter):
    """The body of one class's ``forward``, step by step: an Input is a forward argument, a layer
    (and an Output) writes its catalog code, a block use calls its class. Each node's result is
    the variable that holds its output; the lines go to ``forward``."""

    def __init__(self, graph: Graph, steps: list[Step], by_id: list[dict[str, Step]],
                 uses: list[_Use], var: dict[str, str], attrs: dict[str, str],
                 flags: dict[str, str], input_ids: list[str], shape_of, forward: list[str]
                 ) -> None:
        super().__init__(graph, [s.node_id for s in steps])
        self.steps = {s.node_id: s for s in steps}
        self.by_id, self.uses, self.var, self.attrs = by_id, uses, var, attrs
        self.flags, self.input_ids, self.shape_of = flags, input_ids, shape_of
        self.forward = forward

    def input(self, node, args: list[str]) -> str:
        return self.var[node.id]

    def layer(self, node, args: list[str]) -> str:
        def lines(s: Step, out: str, ins: list[str], rep_i: int, rep: Step) -> list[str]:
            ctx = CodeContext(out, self.attrs.get(s.node_id, f"self.{s.attr}"), ins, rep.kwargs,
                              _bound(node.params, self.uses[rep_i].values))
            return code_lines(CATALOG[s.type], ctx)

        return self._write(node, args, lines)

    output = layer

    def block(self, node, args: list[str]) -> str:
        def lines(s: Step, out: str, ins: list[str], rep_i: int, rep: Step) -> list[str]:
            return [f"{out} = {self.attrs[s.node_id]}({', '.join(ins)})"]  # its class, called

        return self._write(node, args, lines)

    def _write(self, node, args: list[str], lines_of) -> str:
        """The lines of one step (switched by ``when``, with its shape comment)."""
        s = self.steps[node.id]
        ins = args or [self.var[i] for i in self.input_ids[:1]]
        on = [(i, ss[s.node_id]) for i, ss in enumerate(self.by_id)
              if not ss[s.node_id].disabled]
        out = self.var[s.node_id]
        if not on:
            self.forward.append(f"{out} = {ins[0]}  # {node.name} is off in every use")
            return out
        rep_i, rep = on[0]
        lines = lines_of(s, out, ins, rep_i, rep)
        shape = self.shape_of(s.node_id) if len(on) == len(self.uses) else None
        if node.when is not None:
            stored = self.flags.get(node.when)
            cond = f"self.{stored}" if stored else f"{self.attrs[s.node_id]} is not None"
            lines = _switched(lines, out, cond, ins[0])
        self.forward.extend(lines[:-1])
        self.forward.append(_comment_line(lines[-1], shape) if shape else lines[-1])
        return out


def _bare(step: Step) -> bool:
    return step.kind.bare_parameter(step.type)


# The constructor written for a step that holds a module, by its kind's interpreter method.
_CONSTRUCTORS = {"layer": ClassWriter._layer_ctor, "block": ClassWriter._block_ctor}


def _parameter_ctor(kwargs: dict[str, Any]) -> str:
    """``nn.Parameter(torch.zeros(1, 1, 16))``: a Parameter layer's tensor, made by the calls
    designer.engine.model.modules.learned_tensor makes (the same random draws)."""
    size = parameter_size(kwargs)
    dims = ", ".join(map(str, size))
    tup = literal(size)
    init, std = kwargs["init"], literal(kwargs["std"])
    text = {
        "zeros": f"torch.zeros({dims})",
        "ones": f"torch.ones({dims})",
        "constant": f"torch.full({tup}, {literal(kwargs['value'])})",
        "normal": f"nn.init.normal_(torch.empty({dims}), std={std})",
        "uniform": f"nn.init.uniform_(torch.empty({dims}), -{std}, {std})",
        "trunc_normal": f"nn.init.trunc_normal_(torch.empty({dims}), std={std})",
    }[init]
    return f"nn.Parameter({text})"


def _switched(lines: list[str], out: str, cond: str, passthrough: str) -> list[str]:
    """The forward lines of a layer a bool block parameter can switch off."""
    code, sep, note = lines[0].partition("  # ")
    if len(lines) == 1 and code.startswith(f"{out} = "):
        expr = code[len(out) + 3:]
        if " if " in expr or "lambda" in expr:
            expr = f"({expr})"
        return [f"{out} = {expr} if {cond} else {passthrough}" + (f"  # {note}" if sep else "")]
    return [f"if {cond}:", *("    " + line for line in lines), "else:",
            f"    {out} = {passthrough}"]


def _matches(value: Any, bound: Any, key: str) -> bool:
    """Whether a resolved argument is the bound reference (or a tuple of it torch reads as one)."""
    if same_value(value, bound):
        return True
    return (isinstance(value, (tuple, list)) and bool(value)
            and (key in COLLAPSIBLE or len(value) == 1)
            and all(same_value(x, bound) for x in value))


def _bound(params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A node's parameters with references replaced by one use's values (for the templates)."""
    out = {}
    for k, v in params.items():
        try:
            out[k] = bind(v, values) if is_ref(v) else v
        except (KeyError, TypeError):
            out[k] = v
    return out


def _name_problem_in_code(name: str, taken: set[str]) -> str | None:
    if keyword.iskeyword(name):
        return "it is a Python keyword"
    if name in MODULE_NAMES or name in taken or name in ("super", "self"):
        return "model.py uses that name"
    return None


def _check_names(net: str, graph: Graph, where: str) -> None:
    for node in graph.nodes.values():  # the graph refuses these; a document edited by hand too
        why = name_problem(node.name)
        if why is None and node.name in MODULE_ATTRS:
            why = f"{node.name!r} is reserved (torch.nn.Module uses it)"
        if why:
            raise CodegenError(f"{where}cannot export the layer named "
                               f"{comment_text(repr(node.name))}: {why}")

