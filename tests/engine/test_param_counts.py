"""Parameter counts without torch: every layer type's formula (``LayerSpec.count_params``) equals
the number of parameters of the real torch module, over a spread of parameter values drawn at
random (groups, bias, affine, stacked and bidirectional recurrent layers, head counts...).

The formulas let ``designer check`` and the window count parameters without importing torch; a
torch release that changes a module's parameters fails here, not in front of a user.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from designer.engine.model.catalog import CATALOG, LayerError, make_module

SIZE = st.integers(1, 48)
SMALL = st.integers(1, 4)


@st.composite
def _linear(draw):
    return ({"out_features": draw(st.integers(1, 300)), "bias": draw(st.booleans())},
            [(*draw(st.lists(SMALL, max_size=2)), draw(st.integers(1, 300)))])


def _conv(dims: int, transposed: bool = False, padding: bool = True):
    @st.composite
    def strategy(draw):
        groups = draw(SMALL)
        ints = st.integers(1, 3)
        p = {
            "out_channels": groups * draw(st.integers(1, 12)),
            "kernel_size": draw(st.one_of(ints, st.lists(ints, min_size=dims, max_size=dims))),
            "stride": draw(st.integers(1, 3)),
            "padding": draw(st.integers(0, 1)),
            "dilation": draw(st.integers(1, 2)),
            "groups": groups,
            "bias": draw(st.booleans()),
        }
        if not padding:  # Conv2dSame pads as SAME
            del p["padding"]
        if transposed:
            p["output_padding"] = draw(st.integers(0, max(p["stride"], p["dilation"]) - 1))
        in_ch = groups * draw(st.integers(1, 12))
        if draw(st.booleans()):
            p["in_channels"] = in_ch  # fixed instead of inferred: the same module
        return p, [(in_ch, *([12] * dims))]

    return strategy()


@st.composite
def _pool(draw, dims: int):
    k = draw(st.integers(1, 3))
    return ({"kernel_size": k, "stride": draw(st.one_of(st.none(), st.integers(1, 3))),
             "padding": draw(st.integers(0, k // 2)), "ceil_mode": draw(st.booleans())},
            [(draw(SMALL), *([9] * dims))])


@st.composite
def _batchnorm(draw, ranks: tuple[int, ...]):
    rank = draw(st.sampled_from(ranks))
    shape = (draw(SIZE), *([5] * (rank - 1)))
    return {"affine": draw(st.booleans()), "momentum": draw(st.sampled_from([0.0, 0.1, 1.0]))}, [shape]


@st.composite
def _layernorm(draw):
    shape = (*draw(st.lists(SMALL, max_size=2)), draw(SIZE))
    return {"elementwise_affine": draw(st.booleans())}, [shape]


@st.composite
def _embedding(draw):
    n = draw(st.integers(1, 5000))
    pad = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    return ({"num_embeddings": n, "embedding_dim": draw(st.integers(1, 96)), "padding_idx": pad},
            [(draw(SMALL),)])


def _recurrent(layer: str):
    @st.composite
    def strategy(draw):
        layers = draw(st.integers(1, 4))
        p = {"hidden_size": draw(st.integers(1, 40)), "num_layers": layers,
             "bidirectional": draw(st.booleans()),
             "dropout": draw(st.sampled_from([0.0, 0.25])) if layers > 1 else 0.0,
             "output": draw(st.sampled_from(["last", "sequence"]))}
        if layer == "RNN":
            p["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
        return p, [(draw(SMALL), draw(st.integers(1, 40)))]

    return strategy()


@st.composite
def _attention(draw):
    heads = draw(SMALL)
    return ({"num_heads": heads, "bias": draw(st.booleans())},
            [(draw(SMALL), heads * draw(st.integers(1, 16)))])


@st.composite
def _rel_attention(draw):
    """MaxViT's window attention: window_size^2 positions, features a multiple of head_dim."""
    head_dim, side = draw(st.integers(1, 16)), draw(SMALL)
    return ({"head_dim": head_dim, "window_size": side},
            [(*draw(st.lists(SMALL, max_size=1)), side * side, head_dim * draw(SMALL))])


@st.composite
def _encoder(draw):
    heads = draw(SMALL)
    return ({"nhead": heads, "dim_feedforward": draw(st.integers(1, 128)),
             "activation": draw(st.sampled_from(["relu", "gelu"])),
             "norm_first": draw(st.booleans()),
             "layer_norm_eps": draw(st.sampled_from([1e-5, 1e-6]))},
            [(draw(SMALL), heads * draw(st.integers(1, 16)))])


@st.composite
def _groupnorm(draw):
    groups = draw(SMALL)
    shape = (groups * draw(st.integers(1, 12)), *draw(st.lists(SMALL, max_size=2)))
    return {"num_groups": groups, "affine": draw(st.booleans())}, [shape]


@st.composite
def _prelu(draw):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    return ({"num_parameters": draw(st.sampled_from([1, shape[0]])),
             "init": draw(st.sampled_from([0.0, 0.25, 1.0]))}, [shape])


@st.composite
def _no_parameters(draw, layer: str):
    """Layers without weights: the formula must still say 0 for any input."""
    spec = CATALOG[layer]
    rank = draw(st.sampled_from(spec.input_rank or (1, 2, 3)))
    return {}, [tuple(draw(st.lists(st.integers(2, 6), min_size=rank, max_size=rank)))]


STRATEGIES = {
    "Linear": _linear(),
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "ConvTranspose2d": _conv(2, transposed=True),
    "Conv2dSame": _conv(2, padding=False),
    "StdConv2d": _conv(2),
    "ScaledStdConv2d": _conv(2),
    "Conv1D": _linear().map(lambda case: ({"out_features": case[0]["out_features"]}, case[1])),
    "MaxPool1d": _pool(1),
    "MaxPool2d": _pool(2),
    "AvgPool2d": _pool(2),
    "BatchNorm1d": _batchnorm((1, 2)),
    "BatchNorm2d": _batchnorm((3,)),
    "LayerNorm": _layernorm(),
    "Embedding": _embedding(),
    "RNN": _recurrent("RNN"),
    "LSTM": _recurrent("LSTM"),
    "GRU": _recurrent("GRU"),
    "MultiheadAttention": _attention(),
    "RelativePositionAttention": _rel_attention(),
    "TransformerEncoderLayer": _encoder(),
    "PReLU": _prelu(),
    "GroupNorm": _groupnorm(),
    "LayerScale": st.tuples(st.fixed_dictionaries({"channels_first": st.booleans()}),
                            st.lists(st.tuples(SIZE, SMALL, SMALL), min_size=1, max_size=1)),
}
WITH_MODULE = [s.id for s in CATALOG if s.module_name is not None]
for _layer in WITH_MODULE:
    STRATEGIES.setdefault(_layer, _no_parameters(_layer))


def test_every_layer_with_a_module_declares_a_formula():
    assert WITH_MODULE, "the catalog lost its modules"
    missing = [layer for layer in WITH_MODULE if CATALOG[layer].count_params is None]
    assert missing == []


def _real_count(layer: str, kwargs: dict) -> int:
    module = make_module(CATALOG[layer], kwargs, device="meta")
    if type(module).__name__ == "Parameter":  # a bare tensor (the Parameter layer)
        return module.numel()
    if type(module).__name__ == "StoredBuffer":  # a Tensor layer's buffer: no parameters
        return 0
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("layer", WITH_MODULE)
def test_the_formula_counts_what_torch_builds(layer):
    spec = CATALOG[layer]
    dtype = "int" if spec.input_dtype == "int" else "float"

    @settings(max_examples=25, deadline=None)
    @given(STRATEGIES[layer])
    def check(case):
        params, shapes = case
        full = spec.validate_params(params)
        try:
            kwargs = spec.resolve(full, shapes, [dtype] * len(shapes))
        except LayerError as exc:  # the strategies draw valid layers only
            raise AssertionError(f"{layer} {params} {shapes}: {exc}") from None
        assert spec.count_params(kwargs) == _real_count(layer, kwargs), (params, shapes)

    check()


def test_the_weighty_layers_reach_non_zero_counts():
    """The spread really exercises the formulas: a weighted layer at its defaults has weights."""
    from designer.engine.model.graph import Graph
    from designer.engine.model.shapes import analyze

    for layer, shape in (("Linear", [5]), ("Conv2d", [3, 8, 8]), ("LSTM", [4, 3]),
                         ("TransformerEncoderLayer", [4, 8]), ("LayerNorm", [6])):
        g = Graph()
        inp = g.add_node("Input", params={"shape": shape})
        node = g.add_node(layer)
        g.connect(inp.id, node.id)
        g.connect(node.id, g.add_node("Output").id)
        info = analyze(g).infos[node.id]
        assert info.params > 0 and info.params == _real_count(layer, info.kwargs)
