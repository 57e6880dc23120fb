"""Benchmark: training throughput with the inside observer on (default interval) and off.

    .venv/bin/python benchmarks/bench_inside.py [--epochs 10] [--rounds 5] [--threads 1]
        [--every 50] [--overhead 0.02]

Digits (scikit-learn's 8x8 images, offline), CPU, the trainer as a headless run uses it (no run
folder). Two designs: the starter (designer/templates/mlp-digits.dnn.json with its own training
settings) and a LeNet-like network for 8x8 digits built with the engine API (conv 6 -> ReLU -> pool ->
conv 16 -> ReLU -> pool -> 120 -> 84 -> 10). For each design, in alternating rounds (so machine
load hits both alike): the trainer without an observer, and with ``InsideOptions(every=...)``
(default 50) and its time budget ``overhead`` (default: InsideOptions' own), with the
sample view, from the first batch. 10 epochs: the starter's own length (its first batch and its
last are always captured, so a shorter run of 18 ms epochs pays those two captures on less). Throughput is the training samples/s the
trainer records per epoch (its training loop only, captures included), averaged over the epochs
of a round. Reported: samples/s of each (median over rounds) and on / off (target >= 0.95: the
median of the per-round ratios). Figures go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from designer.engine.document.project import load_project
from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph
from designer.engine.train.data import load_dataset
from designer.engine.train.events import InsideSummary
from designer.engine.train.inside import InsideOptions
from designer.engine.train.training import Trainer


def lenet_digits() -> Graph:
    g = Graph()
    last = g.add_node("Input", params={"shape": [1, 8, 8]}).id
    for type_, params in (("Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1}),
                          ("ReLU", {}), ("MaxPool2d", {"kernel_size": 2}),
                          ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
                          ("ReLU", {}), ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}),
                          ("Linear", {"out_features": 120}), ("ReLU", {}),
                          ("Linear", {"out_features": 84}), ("ReLU", {}),
                          ("Linear", {"out_features": 10})):
        node = g.add_node(type_, params=params)
        g.connect(last, node.id)
        last = node.id
    out = g.add_node("Output")
    g.connect(last, out.id)
    return g


def designs() -> dict[str, tuple[Graph, dict]]:
    starter = load_project(ROOT / "designer" / "templates" / "mlp-digits.dnn.json")
    return {"starter (mlp-digits)": (starter.graph, dict(starter.training)),
            "LeNet-like on 8x8 digits": (lenet_digits(), dict(starter.training))}


def one_run(graph: Graph, training: dict, ds, threads: int, inside) -> tuple[float, int]:
    events = []
    result = Trainer(build_model(graph, seed=0), ds, training, cpu_threads=threads,
                     callback=events.append, inside=inside).run()
    assert result.status == "finished", result.message
    rates = [r["samples_per_s"] for r in result.history]
    return statistics.mean(rates), sum(isinstance(e, InsideSummary) for e in events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=InsideOptions().every)
    ap.add_argument("--overhead", type=float, default=InsideOptions().overhead)
    args = ap.parse_args()
    ds = load_dataset({"name": "digits"})
    print(f"digits: {ds.n_train} training samples; {args.epochs} epochs per run, "
          f"{args.rounds} rounds, {args.threads} thread(s), observer every {args.every} batches "
          f"within {args.overhead:.1%} of the time")
    for name, (graph, training) in designs().items():
        training = {**training, "epochs": args.epochs, "device": "cpu"}
        one_run(graph, {**training, "epochs": 1}, ds, args.threads, None)  # warm-up
        off, on, ratios, captures = [], [], [], 0
        for _ in range(args.rounds):
            a, _ = one_run(graph, training, ds, args.threads, None)
            b, captures = one_run(graph, training, ds, args.threads,
                                  InsideOptions(every=args.every,
                                                overhead=args.overhead))
            off.append(a)
            on.append(b)
            ratios.append(b / a)
        print(f"{name}: off {statistics.median(off):,.0f} samples/s, on "
              f"{statistics.median(on):,.0f} samples/s ({captures} summaries per run), "
              f"on/off median {statistics.median(ratios):.3f} "
              f"(rounds {min(ratios):.3f}-{max(ratios):.3f}; target >= 0.95)")


if __name__ == "__main__":
    main()
