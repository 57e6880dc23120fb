"""Benchmark: the memory estimate (designer.engine.model.memory) against the peak PyTorch allocates.

    .venv/bin/python benchmarks/bench_memory.py [--batches 16 64 256] [--templates ...]

For each supervised template and batch size, on CPU, in one process: the estimate of one training
step (weights, gradients, Adam state, kept activations and the busiest backward step) and the
measured peak of two Adam steps on random data of the right shape (the weights plus the most the
CPU allocator held at once, from torch.profiler's memory events; tracemalloc does not see torch's
allocator and RSS keeps freed pages). With CUDA, also ``torch.cuda.max_memory_allocated``.
Reported: both figures and estimate / measured. Figures go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.document.project import load_project
from designer.engine.document.templates import template_path
from designer.engine.model import memory as M
from designer.engine.model.shapes import analyze
from tests.engine.test_memory import measured_cuda_peak, measured_training_peak

TEMPLATES = ("mlp-digits", "mlp-mnist", "lenet5", "cnn-mnist", "cnn-cifar10", "resnet-mini",
             "autoencoder", "lstm-sentiment", "transformer-text")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--templates", nargs="+", default=list(TEMPLATES))
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if cuda else 'CPU'}")
    print(f"{'template':18s} {'batch':>5s} {'estimate':>10s} {'measured':>10s} {'ratio':>6s}"
          + ("   cuda est   cuda meas  ratio" if cuda else ""))
    ratios = []
    for name in args.templates:
        graph = load_project(template_path(name)).graph
        analysis = analyze(graph)
        for batch in args.batches:
            est = M.estimate(graph, analysis, batch, {"optimizer": "adam"}, "cpu")
            meas = measured_training_peak(graph, batch)
            ratio = est.training_total / meas
            ratios.append(ratio)
            line = (f"{name:18s} {batch:5d} {M.fmt_bytes(est.training_total):>10s} "
                    f"{M.fmt_bytes(meas):>10s} {ratio:6.2f}")
            if cuda:
                gest = M.estimate(graph, analysis, batch, {"optimizer": "adam"}, "cuda")
                gmeas = measured_cuda_peak(graph, batch)
                line += (f"   {M.fmt_bytes(gest.training_total):>9s} {M.fmt_bytes(gmeas):>10s} "
                         f"{gest.training_total / gmeas:6.2f}")
            print(line, flush=True)
    print(f"estimate / measured (CPU): min {min(ratios):.2f}, max {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
