"""Look-inside records on disk and what a layer's page shows: ``<run>/inside/index.jsonl`` with
one ``.npz`` per event (no pickle; :func:`read_inside` replays them), a layer's formula with its
real shapes (:func:`layer_text`) and the learned values of a small layer (:func:`learned_values`).

torch is imported on use: :func:`read_inside` works without it.
"""


import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..lazy import torch
from ..model.catalog import CATALOG, make_module
from ..model.shapes import analyze
from .events import Histogram, InsideSample, InsideSummary, LayerSummary, LayerView
from .runs import LAST

INSIDE_DIR = "inside"
INDEX = "index.jsonl"
FORMAT = 1

#: The scalar fields of a LayerSummary, in the order the summary files store them.
SCALARS = ("weight_norm", "grad_norm", "update_ratio", "out_grad_norm", "act_mean", "act_std",
           "dead_fraction", "nonfinite_weights", "nonfinite_grads", "nonfinite_activations")
HISTOGRAMS = ("weights", "grads", "activations")


# ---------------------------------------------------------------------------------------------
# The run folder: inside/index.jsonl + one .npz per event (no pickle)
# ---------------------------------------------------------------------------------------------


def _stem(kind: str, event: Any) -> str:
    return f"{kind}_e{event.epoch:04d}_s{event.step:08d}"


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _append_index(folder: Path, record: dict[str, Any]) -> None:
    with open(folder / INDEX, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def write_summary(folder: Path, s: InsideSummary) -> None:
    """``<stem>.npz`` holds ``scalars`` (layers x SCALARS, float64), ``edges`` (layers x 3 x
    bins+1, float32) and ``counts`` (layers x 3 x bins, int64) with ``present`` (layers x 3);
    the index line names the layers in row order."""
    layers = list(s.layers.values())
    bins = next((h.counts.shape[0] for ls in layers for h in (ls.weights, ls.grads,
                                                               ls.activations) if h is not None), 1)
    n = len(layers)
    scalars = np.full((n, len(SCALARS)), np.nan, dtype=np.float64)
    edges = np.zeros((n, 3, bins + 1), dtype=np.float32)
    counts = np.zeros((n, 3, bins), dtype=np.int64)
    present = np.zeros((n, 3), dtype=bool)
    for i, ls in enumerate(layers):
        scalars[i] = [getattr(ls, f) for f in SCALARS]
        for j, name in enumerate(HISTOGRAMS):
            h = getattr(ls, name)
            if h is not None:
                edges[i, j], counts[i, j], present[i, j] = h.edges, h.counts, True
    stem = _stem("summary", s)
    _write_npz(folder / f"{stem}.npz", {"scalars": scalars, "edges": edges, "counts": counts,
                                         "present": present})
    _append_index(folder, {
        "format": FORMAT, "kind": "summary", "file": f"{stem}.npz", "epoch": s.epoch,
        "batch": s.batch, "step": s.step,
        "layers": [{"key": k, "network": ls.network, "path": ls.path, "node": ls.node,
                    "type": ls.type, "kind": ls.kind, "frozen": ls.frozen}
                   for k, ls in s.layers.items()]})


def write_sample(folder: Path, s: InsideSample) -> None:
    """``<stem>.npz`` holds ``input.<network>``, ``out.<n>`` and ``attn.<n>`` arrays; the index
    line gives each array's layer key, kind, full shape and note."""
    arrays: dict[str, np.ndarray] = {}
    views = []
    for prefix, group in (("out", s.outputs), ("attn", s.attention)):
        for i, (key, v) in enumerate(group.items()):
            name = f"{prefix}{i}"
            arrays[name] = np.asarray(v.data, dtype=np.float32)
            views.append({"array": name, "group": prefix, "key": key, "kind": v.kind,
                          "shape": list(v.shape), "note": v.note})
    nets = list(s.inputs)
    for i, name in enumerate(nets):
        arrays[f"input{i}"] = np.asarray(s.inputs[name], dtype=np.float32)
    stem = _stem("sample", s)
    _write_npz(folder / f"{stem}.npz", arrays)
    _append_index(folder, {
        "format": FORMAT, "kind": "sample", "file": f"{stem}.npz", "epoch": s.epoch,
        "batch": s.batch, "step": s.step, "index": s.index, "inputs": nets, "views": views,
        "notes": list(s.notes), "classes": list(s.classes)})


def read_inside(run_dir: str | os.PathLike) -> list[InsideSummary | InsideSample]:
    """The summaries and samples a run wrote, in order, equal to the live events (a torn last
    index line or a missing file is skipped). Arrays are read with ``allow_pickle=False``."""
    folder = Path(run_dir) / INSIDE_DIR
    index = folder / INDEX
    if not index.exists():
        return []
    out: list[InsideSummary | InsideSample] = []
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            path = folder / Path(rec["file"]).name
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, KeyError, TypeError, OSError):
            continue
        if rec.get("kind") == "summary":
            out.append(_summary_from(rec, arrays))
        elif rec.get("kind") == "sample":
            out.append(_sample_from(rec, arrays))
    return out


def _summary_from(rec: dict[str, Any], a: dict[str, np.ndarray]) -> InsideSummary:
    layers = {}
    for i, meta in enumerate(rec["layers"]):
        hists = [Histogram(a["edges"][i, j].copy(), a["counts"][i, j].copy())
                 if a["present"][i, j] else None for j in range(len(HISTOGRAMS))]
        sc = dict(zip(SCALARS, a["scalars"][i].tolist()))
        for f in SCALARS:
            if f.startswith("nonfinite_"):
                sc[f] = int(sc[f])
        layers[meta["key"]] = LayerSummary(meta["network"], meta["path"], meta["node"],
                                           meta["type"], meta["kind"], *hists, **sc,
                                           frozen=bool(meta.get("frozen", False)))
    return InsideSummary(rec["epoch"], rec["batch"], rec["step"], layers)


def _sample_from(rec: dict[str, Any], a: dict[str, np.ndarray]) -> InsideSample:
    groups: dict[str, dict[str, LayerView]] = {"out": {}, "attn": {}}
    for v in rec["views"]:
        groups[v["group"]][v["key"]] = LayerView(v["kind"], a[v["array"]], tuple(v["shape"]),
                                                 v["note"])
    inputs = {name: a[f"input{i}"] for i, name in enumerate(rec["inputs"])}
    return InsideSample(rec["epoch"], rec["batch"], rec["step"], rec["index"], inputs,
                        groups["out"], groups["attn"], tuple(rec["notes"]),
                        tuple(str(c) for c in rec.get("classes", ())))


# ---------------------------------------------------------------------------------------------
# The layer's lesson: its formula and the shapes on the real layer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerText:
    """A node's doc formula and its shapes (per sample, without the batch), with a text form."""

    name: str
    type: str
    doc: str
    inputs: tuple[tuple[int, ...], ...]
    weights: dict[str, tuple[int, ...]]
    output: tuple[int, ...] | None
    text: str


def layer_text(graph: Any, node_id: str, analysis: Any = None, module: Any = None) -> LayerText:
    """The catalog doc (``y = xW^T + b``...) of a node with its input, weight and output shapes:
    shapes from the analysis, weights from ``module`` (the built layer) or, without it, from the
    layer made on the meta device (no memory, no random numbers drawn)."""
    node = graph.nodes[node_id]
    analysis = analysis or analyze(graph)
    info = analysis.infos.get(node_id)
    spec = CATALOG.get(node.type)
    doc = spec.doc if spec is not None else ""
    if node.kind.is_block:
        doc = f"block {node.params.get('block', '?')}: the layers of its network, in turn"
    inputs = tuple(tuple(s) for s in (info.input_shapes if info else []) if s is not None)
    output = tuple(info.output_shape) if info and info.output_shape is not None else None
    weights: dict[str, tuple[int, ...]] = {}
    if module is None and spec is not None and spec.module_name is not None and info and (
            info.kwargs is not None and info.error is None):
        try:
            with torch.device("meta"):
                module = make_module(spec, info.kwargs)
        except Exception:  # noqa: BLE001 - shapes are a bonus here
            module = None
    if type(module).__name__ == "Parameter":  # a Parameter layer: the tensor itself
        weights = {node.name: tuple(module.shape)}
    elif module is not None:
        weights = {n: tuple(p.shape) for n, p in module.named_parameters()}

    def fmt(shape) -> str:
        return "(N, " + ", ".join(map(str, shape)) + ")" if shape else "(N,)"

    lines = [f"{node.name} ({node.type}): {doc}"]
    lines += [f"  input  {fmt(s)}" for s in inputs]
    lines += [f"  {n:<6} {tuple(s)}" for n, s in weights.items()]
    if output is not None:
        lines.append(f"  output {fmt(output)}")
    return LayerText(node.name, node.type, doc, inputs, weights, output, "\n".join(lines))


#: A layer's learned values are shown as numbers up to this many (a Linear(1, 1): 2).
LEARNED_LIMIT = 16


@dataclass(frozen=True)
class LearnedValues:
    """A small layer's parameters as a run's last.pt holds them (numpy arrays by name)."""

    epoch: int | None
    values: dict[str, np.ndarray]

    def text(self) -> str:
        """``weight [[2.003]], bias [0.9987]``."""
        return ", ".join(f"{name} " + np.array2string(v, precision=4, separator=", ")
                         for name, v in self.values.items())


def learned_values(run_dir: str | os.PathLike, network: str, path: str,
                   limit: int = LEARNED_LIMIT) -> LearnedValues | None:
    """The parameters of the layer at module ``path`` of ``network`` in the run's last.pt, when
    the checkpoint is there and they are at most ``limit`` numbers (None otherwise). Read with
    ``weights_only=True`` and memory-mapped: a small layer of a large network reads only its
    own bytes (the window asks on the GUI thread)."""
    try:
        state = torch.load(Path(run_dir) / LAST, map_location="cpu", weights_only=True,
                           mmap=True)
    except Exception:  # noqa: BLE001 - missing, torn or foreign: no values to show
        return None
    model = state.get("model") if isinstance(state, dict) else None
    if isinstance(model, dict) and isinstance(model.get(network), dict):
        model = model[network]  # a checkpoint of several networks (a GAN's, a VAE's)
    if not isinstance(model, dict):
        return None
    found: dict[str, np.ndarray] = {}
    for key, value in model.items():
        if not torch.is_tensor(value) or key.endswith("num_batches_tracked"):
            continue
        if key == path:  # a Parameter layer: the tensor itself
            name = path
        elif key.startswith(path + ".") and "." not in key[len(path) + 1:]:
            name = key[len(path) + 1:]
        else:
            continue
        found[name] = value.detach().float().cpu().numpy()
    if not found or sum(v.size for v in found.values()) > limit:
        return None
    epoch = state.get("epoch")
    return LearnedValues(epoch if isinstance(epoch, int) else None, found)



__all__ = [
    "HISTOGRAMS",
    "INSIDE_DIR",
    "LEARNED_LIMIT",
    "SCALARS",
    "LayerText",
    "LearnedValues",
    "layer_text",
    "learned_values",
    "read_inside",
    "write_sample",
    "write_summary",
]
