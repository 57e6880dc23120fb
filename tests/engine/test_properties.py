"""Property-based: random graphs built from the catalog. Whenever the analysis reports no error,
the built module runs forward on a random input of the Input shape and every node's output has
the inferred shape; so a forward pass that fails is always one the analysis had flagged.

The same holds for random designs with blocks: small definitions whose layers refer to block
parameters (sometimes switched off by a bool one, sometimes using another block), used with
random values, repeats and first-copy values in a random main network."""

from __future__ import annotations

import math
import os

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from designer.engine.document.project import Project
from designer.engine.model.blocks import block_param
from designer.engine.model.build import build_model
from designer.engine.model.catalog import CATALOG, Param
from designer.engine.model.graph import Graph
from designer.engine.model.shapes import Analyzer, analyze

from .helpers import sample_inputs

LAYERS = [s.id for s in CATALOG if s.id not in ("Input", "Output")]
SMALL = 6  # upper bound for sizes drawn at random


def param_value(draw, p: Param):
    """A value valid for the schema, kept small so the modules stay cheap."""
    if (p.inferred or p.optional) and draw(st.integers(0, 3)) > 0:
        return None
    lo = int(p.min) if p.min is not None else -SMALL
    hi = min(int(p.max) if p.max is not None else SMALL, SMALL)
    if p.type == "int":
        if p.inferred:  # a fixed size: right only by luck, which is the point
            return draw(st.integers(max(lo, 1), 12))
        return draw(st.integers(lo, max(lo, hi)))
    if p.type == "ints":
        one = st.integers(lo, max(lo, min(hi, 3)))
        return draw(st.one_of(one, st.lists(one, min_size=p.length, max_size=p.length)))
    if p.type == "float":
        top = min(p.max if p.max is not None else 3.0, 3.0)
        lo_f = p.min or 0.0
        return draw(st.integers(0, 1000).map(
            lambda i: max(lo_f, round(lo_f + (top - lo_f) * i / 1000, 4))))
    if p.type == "bool":
        return draw(st.booleans())
    if p.type == "choice":
        return draw(st.sampled_from(p.choices))
    if p.type == "shape":
        dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        if p.allow_minus_one and draw(st.booleans()):
            dims[draw(st.integers(0, len(dims) - 1))] = -1
        return dims
    if p.type == "dims":
        n = draw(st.integers(1, 3))
        return draw(st.permutations(list(range(1, n + 1))))
    if p.type in ("program", "numbers"):  # a Function's code, a Tensor's constant: as declared
        return p.default
    raise AssertionError(p.type)


def fits(layer: str, shape, dtype) -> bool:
    """Prefer layers whose rank and dtype match what they receive (more graphs get through)."""
    spec = CATALOG[layer]
    if spec.input_rank is not None and len(shape) not in spec.input_rank:
        return False
    if spec.input_dtype == "int" and dtype != "int":
        return False
    return not (spec.input_dtype == "float" and dtype == "int")


@st.composite
def graphs(draw) -> Graph:
    g = Graph()
    shape = draw(st.lists(st.integers(1, SMALL), min_size=1, max_size=3))
    dtype = draw(st.sampled_from(["float32", "float32", "float32", "int64"]))
    inputs = [g.add_node("Input", params={"shape": shape, "dtype": dtype}).id]
    if draw(st.integers(0, 4)) == 0:  # a second Input of the same shape, for merges
        inputs.append(g.add_node("Input", params={"shape": shape, "dtype": dtype}).id)
    analyzer = Analyzer(g)
    chain = [inputs[0]]
    if len(inputs) == 2:  # both Inputs meet in a merge first
        merge = g.add_node(draw(st.sampled_from(["Add", "Multiply", "Concat"])))
        g.connect(inputs[0], merge.id, 0)
        g.connect(inputs[1], merge.id, 1)
        chain = [*inputs, merge.id]
    for _ in range(draw(st.integers(1, 6))):
        last = chain[-1]
        info = analyzer.analyze().infos.get(last)
        if info is None or info.output_shape is None:
            break  # an error upstream: nothing behind it can be checked
        candidates = [t for t in LAYERS if fits(t, info.output_shape, info.dtype)]
        if not candidates or draw(st.integers(0, 9)) == 0:
            candidates = LAYERS  # now and then, anything (it must be flagged, not crash)
        layer = draw(st.sampled_from(candidates))
        spec = CATALOG[layer]
        params = {p.name: param_value(draw, p) for p in spec.params if draw(st.booleans())}
        source = spec.num_inputs == 0
        if source and draw(st.booleans()):  # a Parameter shaped like what it meets
            params["shape"] = list(info.output_shape) or [1]
        node = g.add_node(layer, params=params)
        if source:  # a Parameter: merged into the chain (x + p, x * p, cat(x, p))
            merge = g.add_node(draw(st.sampled_from(["Add", "Multiply", "Concat"])))
            ends = draw(st.permutations([last, node.id]))
            for port, src in enumerate(ends):
                g.connect(src, merge.id, port)
            node = merge
        elif spec.variadic:
            others = [n for n in chain if n != last]
            k = draw(st.integers(1, min(2, len(others)))) if others else 0
            extra = draw(st.permutations(others))[:k] if others else []
            if not extra:
                extra = [last]  # the same tensor twice (x + x) is a valid merge
                g.connect(last, node.id, 0)
                g.connect(last, node.id, 1, check=False)
            else:
                for port, src in enumerate([last, *extra]):
                    g.connect(src, node.id, port)
        else:
            g.connect(last, node.id)
        chain.append(node.id)
    out = g.add_node("Output")
    g.connect(chain[-1], out.id)
    analyzer.close()
    return g


# DESIGNER_PROPERTY_EXAMPLES=3000 for a long hunt; the suite runs 80.
@settings(max_examples=int(os.environ.get("DESIGNER_PROPERTY_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(graphs(), st.integers(0, 2**31 - 1))
def test_a_graph_without_errors_builds_and_runs_with_the_inferred_shapes(g, seed):
    analysis = analyze(g)
    event("valid" if analysis.ok else "flagged: " + analysis.errors[0].code)
    if not analysis.ok:
        for p in analysis.errors:
            assert p.message and (p.node_ids or p.code in ("no_input", "no_output"))
            assert p.code != "internal_error", p.message
        return
    torch.manual_seed(seed)
    model = build_model(g, analysis)
    xs = sample_inputs(g, batch=2, generator=torch.Generator().manual_seed(seed))
    for mode in (False, True):
        model.train(mode)
        with torch.no_grad():
            values = model.forward_all(*xs)
        for nid, tensor in values.items():
            info = analysis.infos[nid]
            batch = (2,) if info.batched else ()  # a Tensor layer's whole tensor: no batch axis
            assert tuple(tensor.shape) == (*batch, *info.output_shape), (g.nodes[nid].name, mode)
            want = torch.long if info.dtype == "int" else torch.float32
            assert tensor.dtype == want, g.nodes[nid].name
    assert analysis.total_params == sum(p.numel() for p in model.parameters())
    for nid, info in analysis.infos.items():
        assert info.macs >= 0 and math.prod(info.output_shape) >= 1, g.nodes[nid].name


# --------------------------------------------------------------------------------------------
# Designs with blocks
# --------------------------------------------------------------------------------------------

# Layers that take any float shape: a block's inside works whatever its use feeds it.
BLOCK_LAYERS = ("Linear", "Linear", "ReLU", "GELU", "LayerNorm", "Dropout")


def _ref(name: str, mul: int = 1) -> dict:
    return {"ref": name} if mul == 1 else {"ref": name, "mul": mul}


@st.composite
def definitions(draw, inner: str | None = None) -> Graph:
    """A small block: Input -> 1-4 layers (widths from references, now and then switched off by
    ``flag``, a use of ``inner`` when given) -> maybe the input added back -> Output."""
    g = Graph()
    g.set_block_params([
        block_param("width", "int", draw(st.integers(1, SMALL)), min=1),
        block_param("flag", "bool", draw(st.booleans())),
        block_param("p", "float", 0.0, min=0, max=0.9),
    ])
    g.set_sequential(draw(st.integers(0, 3)) == 0)
    first = last = g.add_node("Input", "input", {"shape": [4]}).id
    kinds = BLOCK_LAYERS + (("Block", "Block") if inner else ())
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        width = draw(st.sampled_from([_ref("width"), _ref("width", 2), 3]))
        if draw(st.integers(0, 19)) == 0:
            width = _ref("undeclared")  # must be flagged on the use, not crash
        params: dict = {}
        if kind == "Linear":
            params = {"out_features": width}
        elif kind == "Dropout":
            params = {"p": _ref("p")}
        elif kind == "Block":
            params = {"block": inner, "repeat": draw(st.integers(1, 2)),
                      "args": {"width": width, "flag": _ref("flag")}}
        node = g.add_node(kind, f"layer{i}", params)
        g.connect(last, node.id)
        if draw(st.integers(0, 3)) == 0:
            g.set_when(node.id, "flag")
        last = node.id
    if draw(st.integers(0, 2)) == 0:  # a residual: right only when the width comes back
        add = g.add_node("Add", "add")
        g.connect(last, add.id, 0)
        g.connect(first, add.id, 1)
        last = add.id
    g.connect(last, g.add_node("Output", "output").id)
    return g


@st.composite
def block_projects(draw) -> Project:
    networks = {"main": Graph(), "Inner": draw(definitions())}
    if draw(st.booleans()):
        networks["Outer"] = draw(definitions("Inner"))
    main = networks["main"]
    shape = draw(st.lists(st.integers(1, SMALL), min_size=1, max_size=3))
    last = main.add_node("Input", "inp", {"shape": shape}).id
    for i in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)) == 0:
            node = main.add_node(draw(st.sampled_from(["Linear", "ReLU"])), f"plain{i}")
        else:
            args = {"width": draw(st.integers(1, SMALL)), "flag": draw(st.booleans())}
            params = {"block": draw(st.sampled_from(sorted(set(networks) - {"main"}))),
                      "repeat": draw(st.integers(1, 3)),
                      "args": {k: v for k, v in args.items() if draw(st.booleans())}}
            if draw(st.booleans()):
                params["first"] = {"width": draw(st.integers(1, SMALL))}
            node = main.add_node("Block", f"use{i}", params)
        main.connect(last, node.id)
        last = node.id
    main.connect(last, main.add_node("Output", "out").id)
    return Project(networks=networks)


@settings(max_examples=int(os.environ.get("DESIGNER_PROPERTY_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(block_projects(), st.integers(0, 2**31 - 1))
def test_a_design_with_blocks_builds_with_the_inferred_shapes_and_parameters(project, seed):
    g = project.graph
    analysis = analyze(g)
    event("valid" if analysis.ok else "flagged: " + analysis.errors[0].code)
    if not analysis.ok:
        for p in analysis.errors:
            assert p.message and p.node_ids, p.message
            assert p.code != "internal_error", p.message
        return
    torch.manual_seed(seed)
    model = build_model(g, analysis)
    xs = sample_inputs(g, batch=2, generator=torch.Generator().manual_seed(seed))
    for mode in (False, True):
        model.train(mode)
        with torch.no_grad():
            values = model.forward_all(*xs)
        for nid, tensor in values.items():
            assert tuple(tensor.shape) == (2, *analysis.infos[nid].output_shape), (
                g.nodes[nid].name, mode)
    assert analysis.total_params == sum(p.numel() for p in model.parameters())
    for nid, info in analysis.infos.items():
        if g.nodes[nid].type == "Block":  # a use's count is the sum of its copies' insides
            copies = info.kwargs["_copies"]
            assert info.params == sum(inner.total_params for _, inner in copies)
            assert len(copies) == g.nodes[nid].params["repeat"]
