"""Benchmark: designs built from blocks, against the same designs flattened.

    .venv/bin/python benchmarks/bench_blocks.py [--repeat N] [--profile DESIGN]

Designs (the templates of scripts/make_block_templates.py):

* ``vit-12``: ``designer/templates/vit-tiny.dnn.json``, one EncoderBlock repeated 12 times (192
  features, 65 tokens); the edit changes the MLP width inside EncoderBlock (``mlp_fc1.out_features``
  between ``dim * 4`` and ``dim * 2``, and ``mlp_fc2`` follows), so every copy is re-inferred.
* ``mobilenet-17``: ``designer/templates/mobilenet-v2.dnn.json``, 17 inverted residuals inside a
  ``features`` block; the edit toggles ``bias`` of the projection convolution inside
  InvertedConvs (16 uses with different values, each with two nested ConvBNActivation uses).
* ``mobilenet-17-deep``: the same design, the edit toggles ``bias`` of the convolution inside
  ConvBNActivation, the innermost block (35 uses, every block around them re-inferred).

Each design is also flattened (every block use ungrouped, recursively, into the main network)
and measured the same way; its edit is the same parameter on the first layer that came from the
edited definition. Measured in one process, median of ``--repeat`` runs each:

* open: ``load_project`` of the file;
* full: a fresh Analyzer on the main network, block expansions cleared (no caches);
* edit: one parameter edit inside a block definition, re-checked by an Analyzer kept on the main
  network (what the canvas does after each edit); the edit alternates between two values.

Target (issue 13): an edit inside a block definition re-checked in under 30 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from designer.engine.document.project import Project, load_project, save_project
from designer.engine.model import shapes
from designer.engine.model.blocks import ungroup
from designer.engine.model.shapes import Analyzer

TEMPLATES = ROOT / "designer" / "templates"

# design -> (template, definition edited, node edited there, the two values of the edit, the
# two values of the flattened design's edit)
BIAS = ({"bias": True}, {"bias": False})
DESIGNS = {
    "vit-12": ("vit-tiny", "EncoderBlock", "mlp_fc1",
               ({"out_features": {"ref": "dim", "mul": 2}},
                {"out_features": {"ref": "dim", "mul": 4}}),
               ({"out_features": 384}, {"out_features": 768})),
    "mobilenet-17": ("mobilenet-v2", "InvertedConvs", "project", BIAS, BIAS),
    "mobilenet-17-deep": ("mobilenet-v2", "ConvBNActivation", "conv", BIAS, BIAS),
}


def flatten(project: Project) -> Project:
    """The project with every block use of the main network ungrouped, recursively."""
    name = next(iter(project.networks))
    graph = project.graph
    while True:
        uses = [n.id for n in graph.nodes.values() if n.type == "Block"]
        if not uses:
            return Project(name=project.name, networks={name: graph.copy()},
                           dataset=project.dataset, training=project.training)
        ungroup(project, name, uses[0])


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _measure(path: Path, edit_network: str | None, edit_node: str, values: tuple,
             repeat: int) -> dict[str, float]:
    """open / full / edit of the design at ``path``; the edit is on ``edit_node`` of network
    ``edit_network`` (None: the main network, for a flattened design)."""
    out = {"open": _median_ms(lambda: load_project(path), repeat)}
    project = load_project(path)

    def full() -> None:
        shapes._EXPANSIONS.clear()
        analyzer = Analyzer(project.graph)
        analysis = analyzer.analyze()
        analyzer.close()
        assert analysis.ok, [p.message for p in analysis.errors]

    out["full"] = _median_ms(full, repeat)
    target = project.networks[edit_network] if edit_network else project.graph
    node = edit_node if edit_network else next(
        n.id for n in target.nodes.values() if n.name.endswith("_" + edit_node))
    analyzer = Analyzer(project.graph)
    out["params"] = analyzer.analyze().total_params
    step = iter(range(10**9))

    def edit() -> None:
        target.set_params(node, values[next(step) % 2])
        assert analyzer.analyze().ok

    out["edit"] = _median_ms(edit, repeat)
    out["nodes"] = sum(len(g.nodes) for g in project.networks.values())
    analyzer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--profile", choices=sorted(DESIGNS),
                        help="profile the block design's edit instead of measuring")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_blocks_"))
    for template in sorted({d[0] for d in DESIGNS.values()}):  # warm up torch and the caches' code
        project = load_project(TEMPLATES / f"{template}.dnn.json")
        Analyzer(project.graph).analyze()

    if args.profile:
        template, network, node, values, _ = DESIGNS[args.profile]
        project = load_project(TEMPLATES / f"{template}.dnn.json")
        analyzer = Analyzer(project.graph)
        analyzer.analyze()
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.repeat):
            project.networks[network].set_params(node, values[i % 2])
            analyzer.analyze()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return 0

    print(f"median of {args.repeat}, torch {torch.__version__}, 1 thread")
    print(f"{'design':<20} {'nodes':>6} {'params':>11} {'open ms':>8} {'full ms':>8} "
          f"{'edit ms':>8}   flat: nodes  open   full   edit   blocks/flat: open  full  edit")
    for design, (template, network, node, values, flat_values) in DESIGNS.items():
        path = TEMPLATES / f"{template}.dnn.json"
        blocks = _measure(path, network, node, values, args.repeat)
        flat_path = tmp / f"{template}-flat.dnn.json"
        if not flat_path.exists():
            save_project(flatten(load_project(path)), flat_path, backup=False)
        flat = _measure(flat_path, None, node, flat_values, args.repeat)
        assert flat["params"] == blocks["params"]  # the same design
        print(f"{design:<20} {blocks['nodes']:>6} {blocks['params']:>11,} {blocks['open']:>8.1f} "
              f"{blocks['full']:>8.1f} {blocks['edit']:>8.2f}   {flat['nodes']:>11} "
              f"{flat['open']:>5.0f} {flat['full']:>6.0f} {flat['edit']:>6.2f}   "
              f"{blocks['open'] / flat['open']:>17.2f} {blocks['full'] / flat['full']:>5.2f} "
              f"{blocks['edit'] / flat['edit']:>5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
