"""Exported model.py against the engine's GraphModule: forward time on CPU (same weights, same
outputs), measured in one process, interleaved, median of repeats; plus how long export takes.

    .venv/bin/python benchmarks/bench_export.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from designer.engine.document.project import load_project
from designer.engine.interop.export import example_inputs, export_project
from designer.engine.model.build import build_model

CASES = [("mlp-digits", 256, 200), ("lstm-sentiment", 64, 20), ("resnet-mini", 64, 5)]


def _timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, median of {args.repeats}")
    print("template          batch  engine ms  model.py ms  ratio  export s (py / +onnx / +pt2)")
    folder = ROOT / "designer" / "templates"
    for name, batch, inner in CASES:
        project = load_project(folder / f"{name}.dnn.json")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            export_project(project, Path(tmp) / "a", project_dir=folder)
            t_py = time.perf_counter() - t0
            t0 = time.perf_counter()
            export_project(project, Path(tmp) / "b", onnx=True, project_dir=folder)
            t_onnx = time.perf_counter() - t0
            t0 = time.perf_counter()
            export_project(project, Path(tmp) / "c", pt2=True, project_dir=folder)
            t_pt2 = time.perf_counter() - t0
            spec = importlib.util.spec_from_file_location(f"bench_{name.replace('-', '_')}",
                                                          Path(tmp) / "a" / "model.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        engine = build_model(project.graph, seed=0).eval()
        exported = next(v for v in vars(mod).values()
                        if isinstance(v, type) and issubclass(v, torch.nn.Module)
                        and v.__module__ == mod.__name__)().eval()
        exported.load_state_dict(engine.state_dict())
        xs = example_inputs(project.graph, batch=batch)
        with torch.no_grad():
            assert torch.equal(engine(*xs), exported(*xs))
            a, b = [], []
            for _ in range(args.repeats):
                a.append(_timed(lambda m=engine, x=xs: m(*x), inner))
                b.append(_timed(lambda m=exported, x=xs: m(*x), inner))
        ea, eb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"{name:17} {batch:5}  {ea:9.3f}  {eb:11.3f}  {ea / eb:5.2f}  "
              f"{t_py:.2f} / {t_onnx:.2f} / {t_pt2:.2f}")


if __name__ == "__main__":
    main()
