"""Shape inference against the real thing: for every layer type in the catalog, the shape the
Analyzer infers equals the shape the built module produces on a small CPU batch, and the
parameter count equals the module's own."""

from __future__ import annotations

import math

import pytest
import torch

from designer.engine.model.build import build_model
from designer.engine.model.catalog import CATALOG, fmt_shape
from designer.engine.model.graph import Graph
from designer.engine.model.shapes import analyze

from .helpers import chain, sample_inputs, single_layer

# (layer, params, input shapes, input dtype)
CASES = [
    ("Input", {"shape": [4, 5]}, None, "float32"),
    ("Output", {}, [(3, 4)], "float32"),
    ("Linear", {"out_features": 7}, [(5,)], "float32"),
    ("Linear", {"out_features": 7, "bias": False}, [(3, 5)], "float32"),
    ("Linear", {"in_features": 5, "out_features": 2}, [(2, 3, 5)], "float32"),
    ("Conv1D", {"out_features": 7}, [(3, 5)], "float32"),  # GPT-2's
    ("Conv1d", {"out_channels": 4, "kernel_size": 3}, [(2, 20)], "float32"),
    ("Conv1d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 1, "dilation": 2,
                "groups": 3}, [(3, 23)], "float32"),
    ("Conv2d", {"out_channels": 5, "kernel_size": 3}, [(3, 9, 9)], "float32"),
    ("Conv2d", {"out_channels": 4, "kernel_size": [3, 5], "stride": [2, 1], "padding": [1, 2]},
     [(2, 11, 10)], "float32"),
    ("Conv2d", {"out_channels": 6, "kernel_size": 3, "dilation": 2, "stride": 3, "groups": 2,
                "bias": False}, [(4, 13, 12)], "float32"),
    ("Conv2dSame", {"out_channels": 4, "kernel_size": 3, "stride": 2}, [(3, 9, 8)], "float32"),
    ("Conv2dSame", {"out_channels": 4, "kernel_size": [4, 1], "stride": [1, 3], "dilation": 2},
     [(2, 7, 10)], "float32"),
    ("StdConv2d", {"out_channels": 5, "kernel_size": 3, "padding": 1, "bias": False},
     [(3, 6, 6)], "float32"),
    ("ScaledStdConv2d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "gamma": 1.7},
     [(2, 7, 6)], "float32"),
    ("ConvTranspose2d", {"out_channels": 3, "kernel_size": 2, "stride": 2}, [(4, 5, 6)],
     "float32"),
    ("ConvTranspose2d", {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1,
                         "output_padding": 1}, [(4, 5, 6)], "float32"),
    ("ConvTranspose2d", {"out_channels": 4, "kernel_size": [3, 2], "stride": [1, 3],
                         "dilation": 2, "output_padding": [1, 2], "groups": 2}, [(2, 4, 4)],
     "float32"),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}, [(2, 11)], "float32"),
    ("MaxPool2d", {"kernel_size": 2}, [(3, 9, 9)], "float32"),
    ("MaxPool2d", {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1]}, [(3, 9, 8)],
     "float32"),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, [(2, 7, 10)], "float32"),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                   "count_include_pad": False}, [(2, 8, 10)], "float32"),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(4, 55, 54)], "float32"),
    ("MaxPool1d", {"kernel_size": 2, "ceil_mode": True}, [(3, 7)], "float32"),
    ("AdaptiveAvgPool2d", {"output_size": 1}, [(3, 7, 7)], "float32"),
    ("AdaptiveAvgPool2d", {"output_size": [2, 3]}, [(3, 7, 9)], "float32"),
    ("BatchNorm1d", {}, [(6,)], "float32"),
    ("BatchNorm1d", {"affine": False}, [(4, 9)], "float32"),
    ("BatchNorm2d", {"num_features": 3}, [(3, 5, 5)], "float32"),
    ("LayerNorm", {}, [(4, 6)], "float32"),
    ("RMSNorm", {}, [(4, 6)], "float32"),
    ("RMSNorm", {"eps": 1e-5, "elementwise_affine": False}, [(6,)], "float32"),
    ("LayerNorm2d", {}, [(4, 5, 6)], "float32"),
    ("LayerNorm2d", {"eps": 1e-5, "elementwise_affine": False}, [(3, 2, 2)], "float32"),
    ("GroupNorm", {"num_groups": 2}, [(4, 5, 5)], "float32"),
    ("GroupNorm", {"num_groups": 3, "num_channels": 6, "eps": 1e-3, "affine": False}, [(6, 7)],
     "float32"),
    ("GroupNorm", {}, [(5,)], "float32"),
    ("LayerScale", {}, [(4, 6)], "float32"),
    ("LayerScale", {"init_values": 0.1, "channels_first": True}, [(4, 3, 2)], "float32"),
    ("LayerNorm", {"elementwise_affine": False}, [(6,)], "float32"),
    ("Dropout", {"p": 0.3}, [(3, 4)], "float32"),
    ("StochasticDepth", {}, [(3, 4, 4)], "float32"),
    ("StochasticDepth", {"p": 0.5, "mode": "batch"}, [(6,)], "float32"),
    ("Flatten", {}, [(3, 4, 5)], "float32"),
    ("Flatten", {}, [(7,)], "float32"),
    ("Flatten", {"start_dim": 2}, [(3, 4, 5)], "float32"),  # timm's x.flatten(2)
    ("Flatten", {"start_dim": 1, "end_dim": 2}, [(3, 4, 5)], "float32"),
    ("Flatten", {"start_dim": 2, "end_dim": -2}, [(3, 4, 5, 2)], "float32"),
    ("Reshape", {"shape": [4, 15]}, [(3, 4, 5)], "float32"),
    ("Reshape", {"shape": [-1, 4]}, [(3, 4, 5)], "float32"),
    ("Reshape", {"shape": [2, -1, 3]}, [(12,)], "int64"),
    ("Permute", {"dims": [2, 1]}, [(3, 5)], "float32"),
    ("Permute", {"dims": [3, 1, 2]}, [(3, 4, 5)], "float32"),
    ("Select", {"dim": 1, "index": 0}, [(5, 8)], "float32"),  # ViT's class token x[:, 0]
    ("Select", {"dim": 3, "index": -1}, [(2, 3, 4)], "int64"),
    ("Select", {"dim": 1, "index": 2}, [(3,)], "float32"),
    ("Slice", {"dim": 1, "end": 2}, [(4, 3, 3)], "float32"),  # ShuffleNet's channel split
    ("Slice", {"dim": 1, "start": 2}, [(4, 3, 3)], "float32"),
    ("Slice", {"dim": 2, "start": -3, "end": -1}, [(2, 5)], "float32"),
    ("Slice", {"dim": 3, "start": 1, "end": 100, "step": 3}, [(2, 3, 8)], "int64"),
    ("Mean", {"dim": 1}, [(6, 4)], "float32"),
    ("Mean", {"dim": 3}, [(2, 3, 4)], "float32"),
    ("Mean", {"dim": 2, "keepdim": True}, [(3, 4, 5)], "float32"),
    ("ConstantPad2d", {"padding": [1, 0, 2, 3], "value": -1.5}, [(2, 3, 4)], "float32"),
    ("ConstantPad2d", {}, [(2, 3, 4)], "float32"),
    ("Upsample", {"scale_factor": 2.0}, [(2, 3, 4)], "float32"),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear"}, [(2, 5, 7)], "float32"),
    ("ReLU", {}, [(3, 4)], "float32"),
    ("LeakyReLU", {"negative_slope": 0.2}, [(5,)], "float32"),
    ("ELU", {"alpha": 0.5}, [(2, 3, 3)], "float32"),
    ("GELU", {"approximate": "tanh"}, [(4,)], "float32"),
    ("Sigmoid", {}, [(4,)], "float32"),
    ("Tanh", {}, [(4, 2)], "float32"),
    ("ReLU6", {}, [(3, 4, 4)], "float32"),
    ("SiLU", {}, [(5,)], "float32"),
    ("Hardswish", {}, [(2, 3, 3)], "float32"),
    ("Hardsigmoid", {}, [(4, 2)], "float32"),
    ("Mish", {}, [(6,)], "float32"),
    ("QuickGELU", {}, [(2, 6)], "float32"),
    ("SELU", {}, [(3, 5)], "float32"),
    ("Softplus", {"beta": 2.0, "threshold": 5.0}, [(4,)], "float32"),
    ("PReLU", {}, [(3, 4, 4)], "float32"),
    ("PReLU", {"num_parameters": 3, "init": 0.1}, [(3, 4, 4)], "float32"),
    ("PReLU", {"num_parameters": 5}, [(5,)], "float32"),
    ("Parameter", {"shape": [1, 8]}, [], "float32"),  # ViT's class token
    ("Tensor", {"shape": [1, 8], "stored": "parameter", "batch_axis": True}, [], "float32"),
    ("Tensor", {"shape": [3, 8], "stored": "buffer"}, [], "float32"),
    ("Function", {"program": {
        "inputs": [{"layout": "batch", "dtype": "float"}],
        "steps": [{"op": "torch.flatten", "args": [{"in": 0}, 2]},
                  {"op": "method.transpose", "args": [{"step": 0}, 1, 2]}],
        "output": {"layout": "batch", "dtype": "float"}}}, [(3, 4, 5)], "float32"),
    ("Parameter", {"shape": [4, 1, 1], "init": "constant", "value": 1e-6}, [], "float32"),
    ("Parameter", {"shape": [3], "init": "trunc_normal", "std": 0.5}, [], "float32"),
    ("Identity", {}, [(3, 4)], "float32"),
    ("Identity", {}, [(6,)], "int64"),
    ("Softmax", {"dim": 1}, [(5,)], "float32"),
    ("Softmax", {"dim": -1}, [(3, 5)], "float32"),
    ("LogSoftmax", {"dim": 2}, [(3, 5)], "float32"),
    ("Embedding", {"num_embeddings": 11, "embedding_dim": 4}, [(7,)], "int64"),
    ("Embedding", {"num_embeddings": 11, "embedding_dim": 4, "padding_idx": 0}, [(2, 3)],
     "int64"),
    ("RNN", {"hidden_size": 5}, [(6, 3)], "float32"),
    ("RNN", {"hidden_size": 5, "nonlinearity": "relu", "output": "sequence"}, [(6, 3)],
     "float32"),
    ("LSTM", {"hidden_size": 5, "num_layers": 2, "dropout": 0.1, "output": "sequence"},
     [(6, 3)], "float32"),
    ("LSTM", {"hidden_size": 5, "bidirectional": True}, [(6, 3)], "float32"),
    ("LSTM", {"hidden_size": 4, "num_layers": 3, "bidirectional": True, "output": "sequence"},
     [(5, 3)], "float32"),
    ("LSTM", {"hidden_size": 4, "num_layers": 2, "bidirectional": True}, [(5, 3)], "float32"),
    ("GRU", {"hidden_size": 5, "bidirectional": True, "output": "sequence"}, [(6, 3)],
     "float32"),
    ("GRU", {"hidden_size": 5, "num_layers": 2}, [(6, 3)], "float32"),
    ("MultiheadAttention", {"num_heads": 2}, [(5, 8)], "float32"),
    ("MultiheadAttention", {"num_heads": 1, "bias": False}, [(5, 6)], "float32"),
    ("RelativePositionAttention", {"head_dim": 4, "window_size": 3}, [(9, 8)], "float32"),
    ("RelativePositionAttention", {"head_dim": 8, "window_size": 2}, [(5, 4, 16)], "float32"),
    ("ShiftedWindowAttention", {"num_heads": 2, "window_size": 4, "shift_size": 2}, [(8, 8, 16)],
     "float32"),
    ("ShiftedWindowAttentionV2", {"num_heads": 2, "window_size": [3, 5], "shift_size": [1, 2]},
     [(7, 9, 8)], "float32"),
    ("PatchMerging", {}, [(7, 5, 6)], "float32"),
    ("PatchMergingV2", {}, [(8, 8, 4)], "float32"),
    ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16}, [(5, 8)], "float32"),
    ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 8, "activation": "gelu",
                                 "norm_first": True, "layer_norm_eps": 1e-6}, [(3, 8)],
     "float32"),
    ("Add", {}, [(3, 4), (3, 4)], "float32"),
    ("Add", {}, [(2, 3, 3)] * 3, "float32"),
    ("Scale", {"factor": 0.5}, [(3, 4)], "float32"),
    ("Scale", {"factor": 8.0, "divide": True}, [(5,)], "float32"),
    ("Multiply", {}, [(5,), (5,)], "float32"),
    ("Multiply", {}, [(16, 8, 8), (16, 1, 1)], "float32"),  # squeeze-and-excitation
    ("Multiply", {}, [(4, 1, 3), (1, 5, 1), (4, 5, 3)], "float32"),
    ("Subtract", {}, [(16, 8, 8), (16, 1, 1)], "float32"),
    ("Add", {}, [(1, 6), (3, 1)], "float32"),
    ("Add", {}, [(4, 1, 1), (4, 2, 3)], "float32"),
    ("Concat", {"dim": 1}, [(2, 4, 4), (3, 4, 4)], "float32"),
    ("Concat", {"dim": 2}, [(2, 1, 4), (2, 3, 4), (2, 2, 4)], "float32"),
    ("Concat", {"dim": 3}, [(2, 4, 1), (2, 4, 5)], "float32"),
]


def _case_id(case) -> str:
    layer, params, shapes, _ = case
    return f"{layer}-{'-'.join(f'{k}={v}' for k, v in params.items())}-{shapes}".replace(" ", "")


def test_every_layer_type_is_covered():
    assert {c[0] for c in CASES} == set(CATALOG.ids())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_inferred_shape_and_params_match_the_built_module(case):
    layer, params, shapes, dtype = case
    if layer == "Input":
        g = chain(shape=params["shape"])
        node_id = g.inputs()[0].id
    elif layer == "Output":
        g = chain(shape=shapes[0])
        node_id = g.outputs()[0].id
    elif not shapes:  # a layer without inputs (Parameter): the Input only gives the batch size
        g, node_id = _source_layer(layer, params)
    else:
        g, node_id = single_layer(layer, params, shapes, dtype)
    analysis = analyze(g)
    assert analysis.ok, [p.message for p in analysis.problems]
    info = analysis.infos[node_id]

    torch.manual_seed(0)
    model = build_model(g)
    node = g.nodes[node_id]
    real = getattr(model, node.name) if node.spec.module is not None else None
    if isinstance(real, torch.nn.Parameter):  # the Parameter layer: a tensor of the network
        expected_params = real.numel()
    elif isinstance(real, torch.Tensor):  # a Tensor layer's buffer: no parameters
        expected_params = 0
    else:
        expected_params = sum(p.numel() for p in real.parameters()) if real is not None else 0
    assert info.params == expected_params
    assert analysis.total_params == sum(p.numel() for p in model.parameters())

    xs = sample_inputs(g)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        with torch.no_grad():
            y = model(*xs)
        if isinstance(y, tuple):  # a source layer's graph: its Output comes first
            y = y[0]
        # a Tensor layer's tensor as stored: whole, or with a first axis of 1 for the batch
        lead = (2,) if info.batched else (1,) if node.params.get("batch_axis") else ()
        assert tuple(y.shape) == (*lead, *info.output_shape), mode
        assert y.dtype == (torch.long if info.dtype == "int" else torch.float32)
    assert info.macs >= 0


def _source_layer(layer: str, params: dict) -> tuple[Graph, str]:
    """layer -> Output, and an Input -> Output beside it (a design needs an Input)."""
    g = Graph()
    node = g.add_node(layer, name="layer", params=params)
    g.connect(node.id, g.add_node("Output").id)
    inp = g.add_node("Input", params={"shape": [3]})
    g.connect(inp.id, g.add_node("Output").id)
    return g, node.id


def test_macs_match_hand_counts():
    """MACs per sample of the layers whose count is well known."""
    cases = [
        ("Linear", {"out_features": 7}, (5,), 35),
        ("Linear", {"out_features": 7}, (3, 5), 3 * 35),
        # 4 output channels x 6x6 positions x (2 in channels x 3x3 taps)
        ("Conv2d", {"out_channels": 4, "kernel_size": 3}, (2, 8, 8), 4 * 36 * 18),
        ("Conv2d", {"out_channels": 4, "kernel_size": 3, "groups": 2}, (2, 8, 8), 4 * 36 * 9),
        # every input value is spread over out_channels x kernel taps
        ("ConvTranspose2d", {"out_channels": 3, "kernel_size": 2, "stride": 2}, (4, 5, 5),
         4 * 25 * 3 * 4),
        # LSTM: 4 gates x (input*hidden + hidden*hidden) per step
        ("LSTM", {"hidden_size": 6}, (10, 3), 4 * (3 * 6 + 6 * 6) * 10),
        ("GRU", {"hidden_size": 6, "bidirectional": True}, (10, 3), 2 * 3 * (3 * 6 + 36) * 10),
        # projections 4*L*E*E plus QK^T and AV, 2*L*L*E
        ("MultiheadAttention", {"num_heads": 2}, (5, 8), 4 * 5 * 64 + 2 * 25 * 8),
    ]
    for layer, params, shape, macs in cases:
        g, nid = single_layer(layer, params, [shape])
        assert analyze(g).infos[nid].macs == macs, layer


def test_lstm_stack_input_size_of_second_layer_uses_both_directions():
    g = chain(("LSTM", {"hidden_size": 4, "num_layers": 2, "bidirectional": True}), shape=(5, 3))
    info = analyze(g).infos[next(n.id for n in g.nodes.values() if n.type == "LSTM")]
    # layer 1: 4 gates x (3*4 + 4*4) x 5 steps x 2 dirs; layer 2 reads 2*4 features
    assert info.macs == 4 * (3 * 4 + 16) * 5 * 2 + 4 * (8 * 4 + 16) * 5 * 2
    assert info.params == sum(p.numel() for p in torch.nn.LSTM(3, 4, 2, bidirectional=True)
                              .parameters())


def test_total_params_of_a_small_cnn_equals_torch():
    g = chain(("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
              ("BatchNorm2d", {}), ("ReLU", {}), ("MaxPool2d", {"kernel_size": 2}),
              ("Flatten", {}), ("Linear", {"out_features": 10}), shape=(1, 12, 12))
    a = analyze(g)
    assert a.ok
    model = build_model(g)
    assert a.total_params == sum(p.numel() for p in model.parameters())
    assert a.total_params == (8 * 9 + 8) + 16 + (8 * 36 * 10 + 10)
    conv, bn, relu = math.prod((8, 12, 12)) * 9, 8 * 144, 8 * 144
    pool = 8 * 36 * 4  # each output reads a 2x2 window
    assert a.total_macs == conv + bn + relu + pool + 288 * 10


FALLBACK = [c for c in CASES if c[0] in ("Linear", "Conv1d", "Conv2d", "ConvTranspose2d",
                                          "LSTM", "GRU", "Embedding", "MultiheadAttention",
                                          "TransformerEncoderLayer", "BatchNorm1d", "LayerNorm")]


@pytest.mark.parametrize("case", FALLBACK, ids=_case_id)
def test_parameter_counts_agree_with_a_module_built_on_meta(case, monkeypatch):
    """Without a count function the module is built on the meta device and counted."""
    layer, params, shapes, dtype = case
    g, node_id = single_layer(layer, params, shapes, dtype)
    fast = analyze(g).infos[node_id]
    monkeypatch.setattr(CATALOG[layer], "count_params", None)
    assert analyze(g).infos[node_id].params == fast.params


def test_meta_forward_fallback_agrees_with_the_shape_function(monkeypatch):
    """A layer declared without a shape function runs forward on the meta device. (The first meta
    forward in a process imports torch._dynamo, seconds: one case only.)"""
    g, node_id = single_layer("Conv2d", {"out_channels": 4, "kernel_size": [3, 5],
                                         "stride": [2, 1], "padding": [1, 2], "dilation": 2},
                              [(2, 11, 10)])
    fast = analyze(g).infos[node_id]
    monkeypatch.setattr(CATALOG["Conv2d"], "infer", None)
    monkeypatch.setattr(CATALOG["Conv2d"], "count_params", None)
    slow = analyze(g).infos[node_id]
    assert (slow.output_shape, slow.params, slow.macs) == (fast.output_shape, fast.params,
                                                           fast.macs)


def test_a_bug_in_a_catalog_entry_is_reported_on_its_node_not_raised(monkeypatch):
    def broken(p, ins):
        raise KeyError("oops")

    monkeypatch.setattr(CATALOG["ReLU"], "infer", broken)
    g = chain(("ReLU", {}), ("Linear", {}), shape=(4,))
    a = analyze(g)
    relu = g.node_by_name("relu1").id
    assert [(p.code, p.node_ids) for p in a.errors] == [("internal_error", (relu,))]
    assert "designer could not check ReLU 'relu1' (KeyError" in a.errors[0].message


def test_prelu_slopes_must_be_one_or_one_per_channel():
    g, nid = single_layer("PReLU", {"num_parameters": 4}, [(3, 5, 5)])
    a = analyze(g)
    assert [p.node_ids for p in a.errors] == [(nid,)]
    assert "num_parameters 4 must be 1" in a.errors[0].message
    assert "set it to 1 or 3" in a.errors[0].message


@pytest.mark.parametrize("layer", ["Add", "Multiply"])
def test_merges_that_do_not_broadcast_name_both_shapes(layer):
    for shapes in ([(16, 8, 8), (8, 1, 1)], [(16, 8, 8), (16, 8)], [(3, 4), (3, 4), (2, 4)]):
        g, nid = single_layer(layer, {}, shapes)
        a = analyze(g)
        assert [p.node_ids for p in a.errors] == [(nid,)], shapes
        bad = next(i for i, s in enumerate(shapes) if len(s) != len(shapes[0])
                   or any(x != y and 1 not in (x, y) for x, y in zip(s, shapes[0])))
        assert (f"input 1 is {fmt_shape(shapes[0])} and input {bad + 1} is "
                f"{fmt_shape(shapes[bad])}") in a.errors[0].message


@pytest.mark.parametrize("layer", ["MaxPool1d", "MaxPool2d", "AvgPool2d"])
def test_pool_windows_are_counted_as_torch_counts_them(layer):
    """Every small size, kernel, stride, padding and ceil_mode: the analysis accepts exactly what
    torch runs, with torch's output size (ceil_mode drops a window that would start in the
    padding)."""
    module = getattr(torch.nn, layer)
    dims = 1 if layer.endswith("1d") else 2
    for size in range(1, 8):
        for k in range(1, 4):
            for stride in range(1, 4):
                for pad in range(k // 2 + 1):
                    for ceil in (False, True):
                        params = {"kernel_size": k, "stride": stride, "padding": pad,
                                  "ceil_mode": ceil}
                        shape = (2, *([size] * dims))
                        g, nid = single_layer(layer, params, [shape])
                        info = analyze(g).infos[nid]
                        try:
                            want = tuple(module(k, stride, pad, ceil_mode=ceil)(
                                torch.zeros(1, *shape)).shape[1:])
                        except RuntimeError:
                            want = None
                        assert info.output_shape == want, (params, size)


def test_groupnorm_groups_must_divide_the_channels():
    g, nid = single_layer("GroupNorm", {"num_groups": 4}, [(6, 3, 3)])
    a = analyze(g)
    assert [p.node_ids for p in a.errors] == [(nid,)]
    assert "6 channels do not split into num_groups 4" in a.errors[0].message


def test_slice_sizes_are_those_of_python_slicing():
    """Every start, end and step over small axes, negative ones too, against a real tensor."""
    x = torch.zeros(1, 2, 5)
    for start in range(-7, 8):
        for end in [None, *range(-7, 8)]:
            for step in (1, 2, 3):
                g, nid = single_layer("Slice", {"dim": 2, "start": start, "end": end,
                                                "step": step}, [(2, 5)])
                info = analyze(g).infos[nid]
                want = tuple(x[:, :, start:end:step].shape[1:])
                if want[-1] == 0:
                    assert "is empty" in info.error, (start, end, step)
                else:
                    assert info.output_shape == want, (start, end, step)


def test_select_and_slice_name_the_axis_and_its_size():
    g, nid = single_layer("Select", {"dim": 2, "index": 4}, [(3, 4)])
    error = analyze(g).infos[nid].error
    assert "Select 'layer': index 4 is outside axis 2 of size 4" in error and "from -4 to -1" in error
    g, nid = single_layer("Select", {"dim": 2, "index": -4}, [(3, 4)])
    assert analyze(g).infos[nid].output_shape == (3,)
    for layer in ("Select", "Slice"):
        g, nid = single_layer(layer, {"dim": 3}, [(3, 4)])
        error = analyze(g).infos[nid].error
        assert "axis 3" in error and "axes 1..2" in error, error
    g, nid = single_layer("Slice", {"dim": 1, "start": 3, "end": 3}, [(6, 2)])
    assert "Slice 'layer' keeps nothing: [3:3] of axis 1 (size 6" in analyze(g).infos[nid].error


def test_the_shapes_of_vit_and_shufflenet():
    """ViT: patches (768, 14, 14) -> (768, 196) -> (196, 768), a class token (1, 768) in front,
    a position embedding added, the token taken back out. ShuffleNetV2: a channel split into two
    Slices, and the channel shuffle (C, H, W) -> (g, C/g, H, W) -> swap -> (C, H, W)."""
    g = Graph()
    x = g.add_node("Input", params={"shape": [768, 14, 14]})
    flat = g.add_node("Reshape", params={"shape": [768, 196]})
    seq = g.add_node("Permute", params={"dims": [2, 1]})
    token = g.add_node("Parameter", name="class_token", params={"shape": [1, 768],
                                                                 "init": "zeros"})
    cat = g.add_node("Concat", params={"dim": 1})
    pos = g.add_node("Parameter", name="pos_embedding", params={"shape": [197, 768]})
    add = g.add_node("Add")
    first = g.add_node("Select", params={"dim": 1, "index": 0})
    out = g.add_node("Output")
    for a, b in ((x, flat), (flat, seq), (cat, add), (add, first), (first, out)):
        g.connect(a.id, b.id)
    g.connect(token.id, cat.id, 0)
    g.connect(seq.id, cat.id, 1)
    g.connect(pos.id, add.id, 1)
    a = analyze(g)
    assert a.ok, [p.message for p in a.problems]
    shapes = {n.name: a.infos[n.id].output_shape for n in g.nodes.values()}
    assert shapes["reshape1"] == (768, 196) and shapes["concat1"] == (197, 768)
    assert shapes["select1"] == (768,)
    assert a.infos[token.id].params == 768 and a.infos[pos.id].params == 197 * 768
    model = build_model(g, seed=0)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        "class_token": (1, 1, 768), "pos_embedding": (1, 197, 768)}  # as torchvision's
    images = torch.randn(3, 768, 14, 14)
    want = model.class_token[0, 0] + model.pos_embedding[0, 0]
    y = model(images)
    assert y.shape == (3, 768) and torch.equal(y, want.expand(3, 768))
    values = model.forward_all(images)
    patches = images.flatten(2).transpose(1, 2)
    assert torch.equal(values[cat.id][:, 1:], patches)

    g = Graph()
    x = g.add_node("Input", params={"shape": [8, 5, 5]})
    left = g.add_node("Slice", params={"dim": 1, "end": 4})
    right = g.add_node("Slice", params={"dim": 1, "start": 4})
    cat = g.add_node("Concat", params={"dim": 1})
    groups = g.add_node("Reshape", params={"shape": [2, 4, 5, 5]})
    swap = g.add_node("Permute", params={"dims": [2, 1, 3, 4]})
    back = g.add_node("Reshape", params={"shape": [8, 5, 5]})
    out = g.add_node("Output")
    g.connect(x.id, left.id)
    g.connect(x.id, right.id)
    g.connect(right.id, cat.id, 0)
    g.connect(left.id, cat.id, 1)
    for a_, b_ in ((cat, groups), (groups, swap), (swap, back), (back, out)):
        g.connect(a_.id, b_.id)
    a = analyze(g)
    assert a.ok, [p.message for p in a.problems]
    assert a.infos[left.id].output_shape == a.infos[right.id].output_shape == (4, 5, 5)
    assert a.infos[swap.id].output_shape == (4, 2, 5, 5)
    t = torch.randn(2, 8, 5, 5)
    one, two = t.chunk(2, dim=1)
    mixed = torch.cat((two, one), 1)
    shuffled = mixed.view(2, 2, 4, 5, 5).transpose(1, 2).contiguous().view(2, 8, 5, 5)
    assert torch.equal(build_model(g)(t), shuffled)
