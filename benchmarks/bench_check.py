"""Benchmark: full and incremental ``check`` of generated graphs.

    .venv/bin/python benchmarks/bench_check.py [--repeat N] [--profile NAME]

Graphs (all valid, so every node is inferred):

* ``convlin-50/200/500``: residual conv blocks (Conv2d, BatchNorm2d, ReLU, a 1x1 Conv2d on the
  skip path, Add), one channel wider each block so that no two layers share shapes, a MaxPool2d
  every 8 blocks, then Flatten and a stack of Linear/ReLU/Dropout layers (70% / 30% of nodes).
* ``lstm-10``: Embedding, then 10 stacked LSTMs (sequence output, the last one "last"), then Linear.

Measured, best of ``--repeat`` runs each:

* full: a fresh :class:`Analyzer` (no caches) analysing the whole graph, structure and shapes;
* edit-mid: after one parameter edit in the middle of the graph that changes the shapes of
  everything downstream (out_channels/out_features/hidden_size), the re-check of the same
  Analyzer (what the canvas does after each edit);
* edit-first: a parameter edit on the first layer (the worst case: everything is downstream),
  alternating between two values so the second and later runs can reuse cached shapes;
* edit-leaf: an edit whose effect stays local (a Dropout probability).

Targets (issue 2): one edit re-checked in under 30 ms at 200 nodes; a full check of 500 nodes in
under 500 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from designer.engine.model.graph import Graph
from designer.engine.model.shapes import Analyzer


def conv_linear_graph(n_nodes: int) -> tuple[Graph, dict[str, str]]:
    """A valid conv + linear network of about ``n_nodes`` nodes; returns it and the nodes to edit."""
    g = Graph()
    last = g.add_node("Input", params={"shape": [3, 32, 32]}).id
    marks: dict[str, str] = {"input": last}
    n_conv_nodes = int(n_nodes * 0.7)
    channels = 16
    prev = g.add_node("Conv2d", params={"out_channels": channels, "kernel_size": 3, "padding": 1})
    g.connect(last, prev.id)
    last = prev.id
    size = 32
    block = 0
    while len(g.nodes) < n_conv_nodes:
        # Every block widens by one channel, so no two convs have the same shapes (no cached
        # result can stand in for another layer): conv-bn-relu plus a 1x1 projection on the skip.
        block_in = last
        channels += 1
        c1 = g.add_node("Conv2d", params={"out_channels": channels, "kernel_size": 3, "padding": 1})
        g.connect(last, c1.id)
        bn = g.add_node("BatchNorm2d")
        g.connect(c1.id, bn.id)
        r = g.add_node("ReLU")
        g.connect(bn.id, r.id)
        proj = g.add_node("Conv2d", params={"out_channels": channels, "kernel_size": 1})
        g.connect(block_in, proj.id)
        add = g.add_node("Add")
        g.connect(r.id, add.id, 0)
        g.connect(proj.id, add.id, 1)
        last = add.id
        block += 1
        if block % 8 == 0 and size > 4:
            p = g.add_node("MaxPool2d", params={"kernel_size": 2})
            g.connect(last, p.id)
            last = p.id
            size //= 2
        if "mid" not in marks and len(g.nodes) >= n_conv_nodes // 2:
            marks["mid"] = c1.id
    f = g.add_node("Flatten")
    g.connect(last, f.id)
    last = f.id
    i = 0
    while len(g.nodes) < n_nodes - 2:
        fc = g.add_node("Linear", params={"out_features": 256 - i})
        g.connect(last, fc.id)
        if "linear" not in marks:
            marks["linear"] = fc.id
        r = g.add_node("ReLU")
        g.connect(fc.id, r.id)
        last = r.id
        if len(g.nodes) < n_nodes - 3:
            d = g.add_node("Dropout", params={"p": 0.1 + 0.001 * i})
            g.connect(last, d.id)
            marks.setdefault("dropout", d.id)
            last = d.id
        i += 1
    head = g.add_node("Linear", params={"out_features": 10})
    g.connect(last, head.id)
    out = g.add_node("Output")
    g.connect(head.id, out.id)
    return g, marks


def lstm_graph(n_lstm: int = 10) -> tuple[Graph, dict[str, str]]:
    g = Graph()
    inp = g.add_node("Input", params={"shape": [64], "dtype": "int64"})
    emb = g.add_node("Embedding", params={"num_embeddings": 5000, "embedding_dim": 64})
    g.connect(inp.id, emb.id)
    last = emb.id
    marks = {"input": inp.id}
    for i in range(n_lstm):
        lstm = g.add_node("LSTM", params={"hidden_size": 64, "num_layers": 2,
                                          "output": "last" if i == n_lstm - 1 else "sequence"})
        g.connect(last, lstm.id)
        if i == n_lstm // 2:
            marks["lstm"] = lstm.id
        last = lstm.id
    d = g.add_node("Dropout", params={"p": 0.1})
    g.connect(last, d.id)
    marks["dropout"] = d.id
    fc = g.add_node("Linear", params={"out_features": 4})
    g.connect(d.id, fc.id)
    out = g.add_node("Output")
    g.connect(fc.id, out.id)
    return g, marks


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def _full(g: Graph):
    def run():
        a = Analyzer(g)
        res = a.analyze()
        a.close()
        assert res.ok, [p.message for p in res.errors][:3]
    return run


def _edit(g: Graph, node_id: str, changes):
    """Time the re-check after ``g.set_params(node_id, changes(i))``, a new value every run."""
    analyzer = Analyzer(g)
    analyzer.analyze()
    state = {"i": 0}

    def run():
        state["i"] += 1
        g.set_params(node_id, changes(state["i"]))
        res = analyzer.analyze()
        assert res.ok, [p.message for p in res.errors][:3]
    return run


# Each edit gives a value never used before, so no cached shape can be reused for the edited node.
EDITS = {
    # Input size: every shape downstream changes (the worst case).
    "input": lambda i: {"shape": [3, 32 + 8 * i, 32 + 8 * i]},
    "input_seq": lambda i: {"shape": [64 + i]},
    # A conv in the middle: kernel and padding change together, its output shape stays.
    "mid": lambda i: {"kernel_size": 2 * i + 3, "padding": i + 1},
    # The first Linear of the head: the next Linear's input size follows.
    "linear": lambda i: {"out_features": 200 + i},
    # An LSTM in the middle of the stack: the next LSTM's input size follows.
    "lstm": lambda i: {"hidden_size": 40 + i},
    # A Dropout near the end: no shape changes.
    "dropout": lambda i: {"p": 0.1 + 0.01 * i},
}


def cases():
    for n in (50, 200, 500):
        g, marks = conv_linear_graph(n)
        yield f"convlin-{len(g.nodes)}", g, marks
    g, marks = lstm_graph(10)
    yield f"lstm-10 ({len(g.nodes)} nodes)", g, marks


COLD = """
import sys, time
sys.path.insert(0, {root!r})
from designer.engine.model.graph import Graph
from designer.engine.model.shapes import analyze
g = Graph()
x = g.add_node("Input", params={{"shape": [3, 8, 8]}}).id
tok = g.add_node("Input", params={{"shape": [6], "dtype": "int64"}}).id
def add(layer, src, **params):
    node = g.add_node(layer, params=params)
    g.connect(src, node.id)
    return node.id
y = add("Conv2d", x, out_channels=4, padding=1)
y = add("BatchNorm2d", y)
y = add("Upsample", y, mode="bilinear")
y = add("MaxPool2d", y)
y = add("Flatten", y)
y = add("Linear", y, out_features=8)
t = add("Embedding", tok, num_embeddings=50, embedding_dim=8)
t = add("LSTM", t, hidden_size=8, output="sequence")
t = add("TransformerEncoderLayer", t, nhead=2, dim_feedforward=16)
t = add("Mean", t)
cat = g.add_node("Concat").id
g.connect(y, cat, 0)
g.connect(t, cat, 1)
out = add("Output", cat)
t0 = time.perf_counter()
result = analyze(g)
t1 = time.perf_counter()
analyze(g)
t2 = time.perf_counter()
assert result.ok, [p.message for p in result.problems]
print(f"{{(t1 - t0) * 1000:.1f}} {{(t2 - t1) * 1000:.1f}}")
"""


def cold_check() -> tuple[float, float]:
    """First and second check of a small mixed graph in a new interpreter (imports excluded)."""
    import subprocess

    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", COLD.format(root=root)], capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


COLUMNS = ("input", "mid", "linear", "lstm", "dropout")
HEADERS = ("full", "edit-input", "edit-conv", "edit-fc", "edit-lstm", "edit-dropout")
WIDTHS = (9, 12, 11, 9, 11, 14)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", help="profile the full check of the case whose name starts so")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, best of {args.repeat}; times in ms")
    print(f"{'graph':<24}" + "".join(f"{h:>{w}}" for h, w in zip(HEADERS, WIDTHS)))
    for name, g, marks in cases():
        if args.profile and name.startswith(args.profile):
            prof = cProfile.Profile()
            prof.enable()
            _full(g)()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            continue
        full = _time(_full(g), args.repeat)
        row = [full]
        for mark in COLUMNS:
            nid = marks.get(mark)
            if mark == "input" and g.nodes[nid].params["dtype"] == "int64":
                mark = "input_seq"
            row.append(_time(_edit(g, nid, EDITS[mark]), args.repeat) if nid else None)
        print(f"{name:<24}" + "".join(
            f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}" for v, w in zip(row, WIDTHS)))
    first, second = cold_check()
    print(f"\nnew process, 16-node mixed graph (conv, bn, upsample, embedding, lstm, transformer):"
          f" first check {first:.1f} ms, second {second:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
