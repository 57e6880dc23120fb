"""Exported ``model.py`` is the designed model: same state_dict keys and shapes, and with the same
weights identical outputs (max abs difference 0), imported in a fresh interpreter that cannot
import ``designer``. Every layer type of the catalog and every template is covered.

Hostile names and text cannot change what the exported code does: the tests parse it with ``ast``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import Project, ProjectError, load_project, project_from_dict
from designer.engine.interop import codegen
from designer.engine.interop.codegen import model_source
from designer.engine.model.blocks import model_names
from designer.engine.model.build import build_model
from designer.engine.model.catalog import CATALOG, name_problem
from designer.engine.model.graph import Graph, GraphError
from designer.engine.model.pysource import CodegenError, class_name, comment_text
from tests.engine.helpers import chain, sample_inputs, single_layer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "designer" / "templates").glob("*.dnn.json"))


# --------------------------------------------------------------------------------------------
# The cases: a small graph around every layer type, plus every template
# --------------------------------------------------------------------------------------------


def _two_inputs(layer: str, params: dict | None = None, n: int = 2, shape=(3, 4, 4)) -> Graph:
    g, _ = single_layer(layer, params, shapes=[shape] * n)
    return g


def _tokens_with_parameters() -> Graph:
    """ViT's front: a class token before the patches, a position embedding added, a layer scale
    (constant) multiplied, the class token taken back out, half of it kept."""
    g = Graph()
    x = g.add_node("Input", params={"shape": [4, 3, 2]})
    seq = g.add_node("Reshape", params={"shape": [4, 6]})
    swap = g.add_node("Permute", params={"dims": [2, 1]})
    token = g.add_node("Parameter", name="class_token", params={"shape": [1, 4], "init": "zeros"})
    cat = g.add_node("Concat", params={"dim": 1})
    pos = g.add_node("Parameter", params={"shape": [7, 4], "init": "trunc_normal"})
    add = g.add_node("Add")
    scale = g.add_node("Parameter", params={"shape": [4], "init": "constant", "value": 1e-6})
    mul = g.add_node("Multiply")
    first = g.add_node("Select", params={"dim": 1, "index": 0})
    last = g.add_node("Select", params={"dim": 2, "index": -1})
    half = g.add_node("Slice", params={"dim": 1, "start": 1, "end": -1, "step": 2})
    cat2 = g.add_node("Concat", params={"dim": 1})
    o = g.add_node("Output")
    for a, b in ((x, seq), (seq, swap), (add, first), (add, last), (mul, cat2), (cat2, o)):
        g.connect(a.id, b.id)
    for port, (a, b) in enumerate(((token, cat), (swap, cat))):
        g.connect(a.id, b.id, port)
    g.connect(cat.id, add.id, 0)
    g.connect(pos.id, add.id, 1)
    g.connect(first.id, mul.id, 0)
    g.connect(scale.id, mul.id, 1)
    g.connect(last.id, half.id)
    g.connect(half.id, cat2.id, 1)
    return g


def _residual() -> Graph:
    g = Graph()
    i = g.add_node("Input", params={"shape": [4, 6, 6]})
    c = g.add_node("Conv2d", params={"out_channels": 4, "kernel_size": 3, "padding": 1})
    b = g.add_node("BatchNorm2d")
    a = g.add_node("Add")
    r = g.add_node("ReLU")
    o = g.add_node("Output")
    g.connect(i.id, c.id)
    g.connect(c.id, b.id)
    g.connect(b.id, a.id, 0)
    g.connect(i.id, a.id, 1)
    g.connect(a.id, r.id)
    g.connect(r.id, o.id)
    return g


def _squeeze_excitation() -> Graph:
    """(C, H, W) * (C, 1, 1): the gate broadcasts over height and width, then a residual Add."""
    g = Graph()
    i = g.add_node("Input", params={"shape": [4, 5, 5]})
    pool = g.add_node("AdaptiveAvgPool2d")
    squeeze = g.add_node("Conv2d", params={"out_channels": 2, "kernel_size": 1})
    relu = g.add_node("ReLU")
    expand = g.add_node("Conv2d", params={"out_channels": 4, "kernel_size": 1})
    gate = g.add_node("Hardsigmoid")
    mul = g.add_node("Multiply")
    bias = g.add_node("Input", params={"shape": [4, 1, 5]})
    add = g.add_node("Add")
    o = g.add_node("Output")
    for a, b in ((i, pool), (pool, squeeze), (squeeze, relu), (relu, expand), (expand, gate)):
        g.connect(a.id, b.id)
    g.connect(i.id, mul.id, 0)
    g.connect(gate.id, mul.id, 1)
    g.connect(bias.id, add.id, 0)
    g.connect(mul.id, add.id, 1)
    g.connect(add.id, o.id)
    return g


def _two_outputs() -> Graph:
    g = Graph()
    i = g.add_node("Input", params={"shape": [6]})
    for k in (3, 2):
        fc = g.add_node("Linear", params={"out_features": k})
        o = g.add_node("Output")
        g.connect(i.id, fc.id)
        g.connect(fc.id, o.id)
    return g


def _kept_as_code() -> Graph:
    """Function layers (calls kept as code, sizes read off the input) fed by Tensor layers: a
    buffer, a learnable tensor and a constant with its values in the design."""
    g = Graph()
    i = g.add_node("Input", name="tokens", params={"shape": [4, 6]})
    buf = g.add_node("Tensor", name="pos", params={"shape": [6], "stored": "buffer"})
    par = g.add_node("Tensor", name="scale", params={"shape": [1, 1, 6], "stored": "parameter"})
    const = g.add_node("Tensor", name="table", params={
        "shape": [2, 3], "stored": "constant", "data": [1, 2.5, "-inf", 0, 4, 5]})
    add = g.add_node("Function", name="shifted", params={"program": {
        "inputs": [{"layout": "batch", "dtype": "float"}, {"layout": "whole", "dtype": "float"},
                   {"layout": "whole", "dtype": "float"}],
        "steps": [{"op": "operator.add", "args": [{"in": 0}, {"in": 1}]},
                  {"op": "operator.mul", "args": [{"step": 0}, {"in": 2}]},
                  {"op": "method.size", "args": [{"in": 0}, 0]},
                  {"op": "method.reshape", "args": [{"step": 1}, {"step": 2}, 2, -1]},
                  {"op": "operator.getitem", "args": [{"step": 3}, {"tuple": [
                      {"ellipsis": 1}, {"slice": [None, 9, None]}]}]},
                  {"op": "F.gelu", "args": [{"step": 4}], "kwargs": {"approximate": "tanh"}}],
        "output": {"layout": "batch", "dtype": "float"}}})
    for port, src in enumerate((i, buf, par)):
        g.connect(src.id, add.id, port)
    use = g.add_node("Function", name="masked", params={"program": {
        "inputs": [{"layout": "batch", "dtype": "float"}, {"layout": "whole", "dtype": "float"}],
        "steps": [{"op": "torch.amax", "args": [{"in": 1}], "kwargs": {"dim": 1}},
                  {"op": "torch.clamp", "args": [{"step": 0}], "kwargs": {"min": 0.0}},
                  {"op": "aten.sum.dim_IntList", "args": [{"step": 1}, [0]]},
                  {"op": "operator.add", "args": [{"in": 0}, {"step": 2}]}],
        "output": {"layout": "batch", "dtype": "float"}}})
    g.connect(add.id, use.id, 0)
    g.connect(const.id, use.id, 1)
    o = g.add_node("Output", name="out")
    g.connect(use.id, o.id)
    return g


def _shadowing_names() -> Graph:
    """Node names that are builtins, module-level names of model.py or template temporaries."""
    g = Graph()
    i = g.add_node("Input", name="input", params={"shape": [5, 6]})
    prev = i
    for t, name, p in (("LSTM", "h_n", {"hidden_size": 4, "output": "sequence"}),
                       ("LSTM", "len", {"hidden_size": 4, "bidirectional": True}),
                       ("Linear", "load", {"out_features": 4}),
                       ("ReLU", "print", {}), ("Tanh", "sum", {}), ("Sigmoid", "Net", {}),
                       ("GELU", "main", {}), ("ELU", "np", {}), ("Dropout", "type_", {}),
                       ("LeakyReLU", "input_", {})):
        n = g.add_node(t, name=name, params=p)
        g.connect(prev.id, n.id)
        prev = n
    # h_n's output is used again after the second LSTM wrote its own temporaries
    cat = g.add_node("Concat", name="object")
    g.connect(prev.id, cat.id, 0)
    m = g.add_node("Mean", name="max", params={"dim": 1})
    g.connect(g.node_by_name("h_n").id, m.id)
    g.connect(m.id, cat.id, 1)
    o = g.add_node("Output", name="range")
    g.connect(cat.id, o.id)
    return g


def layer_cases() -> dict[str, Graph]:
    int_in = {"shape": (6,), "dtype": "int64"}
    cases = {
        "Linear": chain(("Linear", {"out_features": 5}), shape=(7,)),
        "Linear-3d-nobias": chain(("Linear", {"out_features": 3, "bias": False}), shape=(4, 7)),
        "Conv1d": chain(("Conv1d", {"out_channels": 4, "kernel_size": 3, "stride": 2,
                                    "padding": 1}), ("MaxPool1d", {"kernel_size": 2}),
                        shape=(3, 16)),
        "Conv2d": chain(("Conv2d", {"out_channels": 6, "kernel_size": [3, 2], "stride": [2, 1],
                                    "padding": [1, 0], "dilation": 2, "groups": 2,
                                    "bias": False}), shape=(4, 9, 9)),
        "ConvTranspose2d": chain(("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3,
                                                      "stride": 2, "padding": 1,
                                                      "output_padding": 1}), shape=(3, 4, 4)),
        "MaxPool2d": chain(("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                           ("MaxPool2d", {}), shape=(2, 9, 9)),
        "AvgPool2d": chain(("AvgPool2d", {"kernel_size": [2, 3], "stride": 1, "padding": 1}),
                           ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                          "ceil_mode": True, "count_include_pad": False}),
                           ("MaxPool2d", {"kernel_size": 2, "ceil_mode": True}),
                           shape=(2, 6, 6)),
        "AdaptiveAvgPool2d": chain(("AdaptiveAvgPool2d", {"output_size": [2, 3]}),
                                   ("AdaptiveAvgPool2d", {}), shape=(3, 7, 7)),
        "BatchNorm1d": chain(("BatchNorm1d", {"eps": 1e-3, "momentum": 0.2}), shape=(6,)),
        "BatchNorm1d-seq": chain(("BatchNorm1d", {"affine": False}), shape=(4, 10)),
        "BatchNorm2d": chain(("BatchNorm2d", {}), shape=(3, 5, 5)),
        "GroupNorm": chain(("GroupNorm", {"num_groups": 2, "eps": 1e-3}),
                           ("GroupNorm", {"num_groups": 4, "affine": False}), shape=(4, 5, 5)),
        "LayerNorm": chain(("LayerNorm", {"eps": 1e-6, "elementwise_affine": False}),
                           ("LayerNorm", {}), shape=(5, 8)),
        "Dropout": chain(("Dropout", {"p": 0.3}), ("Dropout", {}), shape=(10,)),
        "Flatten": chain(("Flatten", {}), shape=(2, 3, 4)),
        "Reshape": chain(("Reshape", {"shape": [-1, 2]}), shape=(3, 4)),
        "Permute": chain(("Permute", {"dims": [3, 1, 2]}), shape=(3, 4, 5)),
        "Mean": chain(("Mean", {"dim": 2}), shape=(3, 4, 5)),
        "Upsample": chain(("Upsample", {"scale_factor": 2.0}),
                          ("Upsample", {"scale_factor": 1.5, "mode": "bilinear"}),
                          shape=(2, 3, 3)),
        "activations": chain(("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}),
                             ("ELU", {"alpha": 0.5}), ("GELU", {"approximate": "tanh"}),
                             ("GELU", {}), ("Sigmoid", {}), ("Tanh", {}), shape=(9,)),
        "activations-2": chain(("ReLU6", {}), ("SiLU", {}), ("Hardswish", {}),
                               ("Hardsigmoid", {}), ("Mish", {}), ("SELU", {}),
                               ("Softplus", {"beta": 2.0, "threshold": 1.0}), ("Softplus", {}),
                               ("PReLU", {"num_parameters": 3, "init": 0.1}), ("PReLU", {}),
                               ("Identity", {}), shape=(3, 4, 4)),
        "Softmax": chain(("Softmax", {"dim": -1}), ("LogSoftmax", {"dim": 1}), shape=(3, 4)),
        "Embedding": chain(("Embedding", {"num_embeddings": 20, "embedding_dim": 8,
                                          "padding_idx": 0}), ("Mean", {}), **int_in),
        "RNN": chain(("RNN", {"hidden_size": 5, "num_layers": 2, "nonlinearity": "relu",
                              "dropout": 0.2, "bidirectional": True}), shape=(4, 3)),
        "LSTM-sequence": chain(("LSTM", {"hidden_size": 5, "output": "sequence"}),
                               shape=(4, 3)),
        "LSTM-last-bi": chain(("LSTM", {"hidden_size": 5, "bidirectional": True}),
                              shape=(4, 3)),
        "GRU": chain(("GRU", {"hidden_size": 5, "num_layers": 2}), shape=(4, 3)),
        "MultiheadAttention": chain(("MultiheadAttention", {"num_heads": 2, "dropout": 0.1,
                                                            "bias": False}), shape=(5, 8)),
        "RelativePositionAttention": chain(
            ("RelativePositionAttention", {"head_dim": 4, "window_size": 2}),
            ("RelativePositionAttention", {"head_dim": 8, "window_size": 2}), shape=(3, 4, 8)),
        "RelativePositionAttention-2d": chain(
            ("RelativePositionAttention", {"head_dim": 3, "window_size": 3}), shape=(9, 6)),
        "Swin": chain(("ShiftedWindowAttention", {"num_heads": 2, "window_size": 4,
                                                  "shift_size": 2}),
                      ("PatchMerging", {}),
                      ("ShiftedWindowAttention", {"num_heads": 4, "window_size": [3, 2],
                                                  "shift_size": [1, 1], "qkv_bias": False,
                                                  "proj_bias": False}), shape=(7, 9, 8)),
        "SwinV2": chain(("ShiftedWindowAttentionV2", {"num_heads": 2, "window_size": [3, 5],
                                                      "shift_size": [1, 2]}),
                        ("PatchMergingV2", {}),
                        ("ShiftedWindowAttentionV2", {"num_heads": 4, "window_size": 2,
                                                      "qkv_bias": False}), shape=(7, 9, 8)),
        "TransformerEncoderLayer": chain(("TransformerEncoderLayer", {
            "nhead": 2, "dim_feedforward": 16, "activation": "gelu", "norm_first": True,
            "layer_norm_eps": 1e-6}),
            ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 12}), shape=(5, 8)),
        "causal-attention": chain(
            ("MultiheadAttention", {"num_heads": 2, "dropout": 0.1, "causal": True}),
            ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16, "causal": True}),
            ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 12, "norm_first": True,
                                         "causal": True}), shape=(5, 8)),
        "Add": _two_inputs("Add", n=3),
        "Multiply": _two_inputs("Multiply"),
        "Concat": _two_inputs("Concat", {"dim": 2}, n=3),
        "squeeze-excitation": _squeeze_excitation(),
        "StochasticDepth": chain(("StochasticDepth", {"p": 0.2}),
                                 ("StochasticDepth", {"p": 0.5, "mode": "batch"}), shape=(3, 4, 4)),
        "Parameter-Select-Slice": _tokens_with_parameters(),
        "Slice": chain(("Slice", {"dim": 1, "end": 2}), ("Slice", {"dim": 3, "start": -2}),
                       ("Select", {"dim": 2, "index": 1}), shape=(4, 3, 3)),
        "residual": _residual(),
        "two-outputs": _two_outputs(),
        "shadowing-names": _shadowing_names(),
        "kept-as-code": _kept_as_code(),
    }
    covered = {n.type for g in cases.values() for n in g.nodes.values()}
    for spec in CATALOG:  # layer types added later get a generic graph
        if spec.id not in covered:
            cases[spec.id] = _generic_case(spec)
    return cases


def _generic_case(spec) -> Graph:
    from designer.engine.model.shapes import analyze

    n = spec.min_inputs if spec.variadic else max(spec.num_inputs, 1)
    for shape in ((3, 8, 8), (4, 10), (12,), (3, 16)):
        for dtype in ("float32", "int64"):
            g, _ = single_layer(spec.id, shapes=[shape] * n, dtype=dtype)
            if analyze(g).ok:
                return g
    raise AssertionError(f"no small graph found for layer type {spec.id}: add a case above")


def template_cases() -> dict[str, Project]:
    return {p.name.removesuffix(".dnn.json"): load_project(p) for p in TEMPLATES}


# --------------------------------------------------------------------------------------------
# One subprocess for all cases
# --------------------------------------------------------------------------------------------

DRIVER = r'''
import importlib.util, json, sys
sys.modules["designer"] = None  # the exported code must not need designer
import torch

torch.set_num_threads(1)
root = sys.argv[1]
cases = json.load(open(root + "/cases.json"))
results = {}
for i, case in enumerate(cases):
    d = root + "/" + case["dir"]
    spec = importlib.util.spec_from_file_location(f"exported_{i}", d + "/model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, case["class"])
    fresh = cls()
    keys = [[k, list(v.shape), str(v.dtype)] for k, v in fresh.state_dict().items()]
    fresh.load_state_dict(torch.load(d + "/state.pt", weights_only=True))
    fresh.eval()
    xs = torch.load(d + "/inputs.pt", weights_only=True)
    with torch.no_grad():
        y = fresh(*xs)
    torch.save(list(y) if isinstance(y, tuple) else [y], d + "/outputs.pt")
    results[case["dir"]] = {"keys": keys, "tuple": isinstance(y, tuple)}
try:
    import designer  # noqa: F401
    results["_designer_importable"] = True
except ImportError:
    results["_designer_importable"] = False
json.dump(results, open(root + "/results.json", "w"))
'''


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random values in every parameter and buffer (BatchNorm statistics too), so equal outputs
    prove the weights really go to the same places."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)


def _expected(model, xs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            y = model(*xs)
    finally:
        torch.set_num_threads(threads)
    return list(y) if isinstance(y, tuple) else [y]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every case written, run once in a subprocess; returns (cases, results)."""
    root = tmp_path_factory.mktemp("exported")
    entries = []
    cases = {}
    projects = {f"layer-{k}": Project(name=k, networks={"model": g})
                for k, g in layer_cases().items()}
    projects.update({f"template-{k}": p for k, p in template_cases().items()})
    for i, (key, project) in enumerate(projects.items()):
        source = model_source(project)
        classes = codegen.network_class_names(project)
        for j, net in enumerate(model_names(project.networks)):
            graph = project.networks[net]
            d = root / f"c{i}_{j}"
            d.mkdir()
            (d / "model.py").write_text(source, encoding="utf-8")
            model = build_model(graph).eval()
            randomize(model, seed=i * 31 + j)
            xs = sample_inputs(graph, batch=3, generator=torch.Generator().manual_seed(i))
            torch.save(model.state_dict(), d / "state.pt")
            torch.save(xs, d / "inputs.pt")
            entries.append({"dir": d.name, "class": classes[net]})
            cases[f"{key}:{net}"] = (d, model, xs, source)
    (root / "cases.json").write_text(json.dumps(entries))
    (root / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, "-I", str(root / "driver.py"), str(root)], cwd=root,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results.json").read_text())
    return cases, results


CASE_IDS = [f"layer-{k}:model" for k in layer_cases()] + [
    f"template-{k}:{net}" for k, p in template_cases().items()
    for net in model_names(p.networks)]


def test_designer_is_not_importable_in_the_subprocess(exported):
    assert exported[1]["_designer_importable"] is False


@pytest.mark.parametrize("case", CASE_IDS)
def test_exported_model_equals_engine_model(exported, case):
    cases, results = exported
    d, model, xs, _ = cases[case]
    got = results[d.name]
    want = [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()]
    assert got["keys"] == want
    outs = torch.load(d / "outputs.pt", weights_only=True)
    expected = _expected(model, xs)
    assert len(outs) == len(expected)
    for a, b in zip(outs, expected):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b), f"max abs difference {(a - b).abs().max().item()}"


def test_every_layer_type_and_template_is_covered():
    covered = {n.type for g in layer_cases().values() for n in g.nodes.values()}
    assert covered == set(CATALOG.ids())
    assert len(TEMPLATES) >= 1 and len(CASE_IDS) >= len(TEMPLATES)


# --------------------------------------------------------------------------------------------
# What the source looks like
# --------------------------------------------------------------------------------------------


def _mlp() -> Project:
    g = chain(("Flatten", {}), ("Linear", {"out_features": 32}), ("ReLU", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    return Project(name="MLP on digits", description="A starter.\nTrains in seconds.",
                   networks={"model": g})


def test_model_source_is_readable():
    src = model_source(_mlp())
    assert "class MLPOnDigits(nn.Module):" in src
    assert "self.fc1 = nn.Linear(64, 32)" in src
    assert "fc1 = self.fc1(flatten1)  # (N, 32)" in src
    assert "def forward(self, input1):" in src
    assert "return output1" in src
    tree = ast.parse(src)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import torch", "from torch import nn"]
    # the file is what ruff's formatter makes of it
    ruff = subprocess.run([sys.executable, "-m", "ruff", "format", "--isolated", "--line-length",
                           "100", "-"], input=src, capture_output=True, text=True, check=False)
    if ruff.returncode == 0:
        assert ruff.stdout == src


def test_constructors_leave_out_defaults():
    g = chain(("Conv2d", {"out_channels": 8, "kernel_size": 5}), ("MaxPool2d", {}),
              ("Dropout", {}), ("BatchNorm2d", {}), shape=(1, 12, 12))
    src = model_source(Project(name="n", networks={"model": g}))
    assert "nn.Conv2d(1, 8, 5)" in src
    assert "nn.MaxPool2d(2, stride=2)" in src
    assert "nn.Dropout(p=0.5)" in src
    assert "nn.BatchNorm2d(8)" in src


def test_several_inputs_and_outputs():
    src = model_source(Project(name="x", networks={"model": _two_inputs("Add")}))
    assert "def forward(self, input1, input2):" in src
    src = model_source(Project(name="x", networks={"model": _two_outputs()}))
    assert "return output1, output2" in src


def test_several_networks_become_several_classes():
    p = Project(name="gan", networks={"generator": chain(("Linear", {"out_features": 4}),
                                                         shape=(3,)),
                                      "discriminator": chain(("Linear", {"out_features": 1}),
                                                             shape=(4,))})
    src = model_source(p)
    tree = ast.parse(src)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["Generator",
                                                                          "Discriminator"]
    # load() gives {network name: model}; the usage comment says so
    assert "model = Generator()  # or load('weights.pt')['generator'] for trained" in src


def test_design_with_errors_is_refused_with_the_reason():
    g = chain(("Linear", {"in_features": 5, "out_features": 2}), shape=(4,))
    with pytest.raises(CodegenError, match="in_features is fixed to 5"):
        model_source(Project(name="x", networks={"model": g}))


def test_class_names():
    assert class_name("MLP on digits") == "MLPOnDigits"
    assert class_name("x; import os") == "XImportOs"
    assert class_name("") == "Net"
    assert class_name("3 layers") == "Net3Layers"
    assert class_name("None") == "NoneNet"
    assert class_name("Ünïcödé ✓ net") == "UnicodeNet"
    assert class_name("torch") == "Torch"


# --------------------------------------------------------------------------------------------
# Hostile text
# --------------------------------------------------------------------------------------------

HOSTILE = [
    'x; import os',
    '__import__("os").system("echo pwned")',
    "'''\"\"\"\\",
    'line one\nimport os\nos.system("rm -rf /")',
    'tail \r\nexec("1")\x0bimport sys\x0c\u2028import subprocess\u2029# \u202eevil',
    "torch",
    "nn",
    "class",
    "None",
    "日本語のネットワーク \U0001f600",
    "\\x00\x00",
]


def _calls(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out.add(ast.unparse(node.func))
    return out


def _renamed(tree: ast.AST, cls: str, to: str = "MLPOnDigits") -> ast.AST:
    """``tree`` with the class ``cls`` renamed (definition, uses and docstring mentions)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            node.name = to
        elif isinstance(node, ast.Name) and node.id == cls:
            node.id = to
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = node.value.replace(f"Build {cls} ", f"Build {to} ")
    return tree


def _model_structure(src: str) -> tuple:
    """Everything that makes up the program except comments and names chosen from user text."""
    tree = ast.parse(src)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    kinds = [type(n).__name__ for n in tree.body]
    return imports, kinds, _calls(tree)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_project_name_and_description_stay_comments(text):
    p = _mlp()
    plain = model_source(p)
    p.name, p.description = text, text + "\n" + text
    src = model_source(p)
    tree = ast.parse(src)
    assert _model_structure(src)[0] == ["import torch", "from torch import nn"]
    assert _model_structure(src)[1] == _model_structure(plain)[1]
    calls = {c.replace(class_name(text), "MLPOnDigits") for c in _calls(tree)}
    assert calls == _calls(ast.parse(plain))
    # no string constant other than the load helper's defaults and the docstring
    strings = {n.value.replace(class_name(text), "MLPOnDigits") for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert strings == {n.value for n in ast.walk(ast.parse(plain))
                       if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    # the code without comments is the plain code with the class renamed
    assert ast.dump(_renamed(tree, class_name(text))) == ast.dump(ast.parse(plain))
    for line in src.splitlines():
        assert "\r" not in line and "\u2028" not in line and "\u202e" not in line


@pytest.mark.parametrize("text", HOSTILE)
def test_comment_text_is_one_safe_line(text):
    line = comment_text(text)
    assert "\n" not in line and "\r" not in line
    compiled = ast.parse("# " + line + "\nx = 1\n")
    assert len(compiled.body) == 1


@pytest.mark.parametrize("name", ["x; import os", '__import__("os")', "a b", "class", "torch",
                                  "nn", "self", "x", "F", "1abc", "", "é", "a\nb", "forward",
                                  "parameters", "_private"])
def test_invalid_node_names_are_refused_before_export(name):
    assert name_problem(name) is not None
    g = Graph()
    with pytest.raises(GraphError):
        g.add_node("ReLU", name=name)
    doc = {"format_version": 1, "name": "p", "networks": [{"name": "model", "nodes": [
        {"id": "a", "type": "Input", "name": name, "params": {"shape": [3]}}], "edges": []}]}
    with pytest.raises(ProjectError):
        project_from_dict(doc)
    # a node name smuggled past the graph's checks is still refused by export
    g = chain(("ReLU", {}), shape=(3,))
    relu = next(n for n in g.nodes.values() if n.type == "ReLU")
    relu.name = name
    with pytest.raises(CodegenError):
        model_source(Project(name="p", networks={"model": g}))


def test_names_of_module_attributes_are_refused():
    """``training`` is an attribute of every nn.Module instance: a layer of that name cannot be
    an attribute of the exported class."""
    g = chain(("ReLU", {}), shape=(3,))
    relu = next(n for n in g.nodes.values() if n.type == "ReLU")
    relu.name = "training"
    with pytest.raises(CodegenError, match="reserved"):
        model_source(Project(name="p", networks={"model": g}))


def test_without_ruff_the_code_is_the_same_program():
    """Formatting is cosmetic: the unformatted source (used when ruff is missing, or for a fast
    live preview) parses to the same syntax tree."""
    from designer.engine.train.recipes.supervised.script import train_source

    project = load_project(ROOT / "designer" / "templates" / "resnet-mini.dnn.json")
    for make in (model_source, train_source):
        formatted, raw = make(project), make(project, format=False)
        assert ast.dump(ast.parse(formatted)) == ast.dump(ast.parse(raw))
