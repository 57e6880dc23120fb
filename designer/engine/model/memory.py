"""How much memory a design needs: activations per layer and per sample, parameters with their
gradients and optimizer state, and a training estimate for a batch, from the shape analysis alone.

Nothing is allocated and torch is not imported here (``designer check`` stays light). The figures
follow what PyTorch really allocates, layer by layer:

* forward (inference, ``torch.no_grad``): each layer's new output, freed when its last reader has
  run; Flatten, Reshape, Permute, Select, Slice, Output and Dropout in eval mode are views and
  allocate nothing, nor does a Parameter (its weight expanded over the batch);
* training: the tensors autograd keeps for the backward pass (a Linear or Conv keeps its input, a
  ReLU/Sigmoid/Tanh/Softmax its output, MaxPool its int64 indices, Dropout a one-byte mask per value,
  LSTM/GRU their gates at every step, attention its L x L weights per head when the unfused path
  runs), plus the gradients alive at the busiest backward step, plus weights, their gradients and
  the optimizer's state (Adam/AdamW two copies, SGD with momentum one, RMSprop one or two, Adagrad
  one).

Approximate, and said so: allocator rounding, BLAS/oneDNN workspaces, the temporaries inside fused
kernels and the CUDA context (hundreds of MB) are not counted; recurrent layers on CUDA (cuDNN)
keep a different workspace from the CPU path counted here. ``benchmarks/bench_memory.py`` and
``tests/engine/test_memory.py`` compare the estimate with measured peaks (see RESULTS.md).
Scaled dot-product attention: PyTorch's fused kernels (flash on CPU, memory-efficient on CUDA) never
hold the L x L matrix, but on CPU attention dropout (and MPS always) falls back to the math path,
which does; the estimate follows the path the device takes.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..threads import loaded_torch
from .catalog import CATALOG, MemoryUse
from .graph import Problem
from .interpreter import GraphInterpreter

if TYPE_CHECKING:  # shapes imports torch; only its types are needed here
    from .graph import Graph
    from .shapes import Analysis

FLOAT_BYTES = 4  # float32 activations and weights
INT_BYTES = 8  # int64 token ids
MASK_BYTES = 1  # torch.bool dropout masks
# Training is refused above the memory available; ``designer check`` warns above this share of it.
WARN_FRACTION = 0.6

# What each layer keeps, and whether its output is a view, is declared on its catalog entry
# (LayerSpec.memory, a MemoryUse); the "extra" rules it names are counted in _layer below. A
# recurrent entry's gates: floats kept per time step and direction, in units of hidden_size (LSTM:
# measured on PyTorch's CPU (oneDNN) path, whose workspace holds about 20: 4 gate pre-activations,
# 4 activations, cell states, hidden states and their copies; GRU: 3 + 3 gates, reset product, new
# gate, hidden; RNN: pre-activation and hidden).
# A node that is not a layer (a block use) makes new storage and keeps nothing of its own.
_NOT_A_LAYER = MemoryUse("nothing")
# A layer whose entry leaves its memory undeclared (the completeness test refuses that) is counted
# as keeping its input: an over-count rather than a silent under-count.
_UNDECLARED = MemoryUse("input")


def memory_use(layer_type: str) -> MemoryUse:
    """What memory estimation counts for a node of ``layer_type`` (its catalog entry's
    :class:`~designer.engine.model.catalog.MemoryUse`)."""
    spec = CATALOG.get(layer_type)
    if spec is None:
        return _NOT_A_LAYER
    return spec.memory or _UNDECLARED


OPTIMIZER_COPIES = {"adam": 2, "adamw": 2, "adagrad": 1}


@dataclass(frozen=True)
class LayerMemory:
    """One layer's memory per sample, in bytes."""

    node_id: str
    name: str
    type: str
    output: int  # new storage for the output in a forward pass (0 for a view)
    saved: int  # kept for backward during training (its output if kept, plus intermediates)
    work: int  # transient extra at its busiest moment (temporaries, the gradients of backward)
    note: str = ""  # what is approximate about it
    params: int = 0
    transient: int = 0  # live while it runs in a no-grad forward (a block's inside), per sample

    @property
    def training(self) -> int:
        return self.saved


@dataclass
class MemoryEstimate:
    """Memory of one design for a batch, in bytes (see the module docstring)."""

    layers: list[LayerMemory]
    batch_size: int
    params: int  # parameter count
    weights: int  # bytes of the weights
    grads: int
    optimizer: int  # the optimizer's state
    forward_per_sample: int  # peak of live activations in a no-grad forward pass, per sample
    saved_per_sample: int  # activations autograd keeps, per sample
    backward_work_per_sample: int  # the largest transient on top, per sample
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    # As a block's inside: whether a layer inside keeps each Input's tensor for backward (that
    # tensor is counted where it is made, outside), and whether the tensor given to the Output
    # is kept inside, with its size (the next copy of a repeat may keep it)
    inputs_kept: tuple[bool, ...] = ()
    output_kept: bool = False
    output_bytes: int = 0

    @property
    def activations_per_sample(self) -> int:
        """Every layer's output once (the figure of the Summary's total line)."""
        return sum(layer.output for layer in self.layers)

    @property
    def param_state(self) -> int:
        return self.weights + self.grads + self.optimizer

    @property
    def training_per_sample(self) -> int:
        return self.saved_per_sample + self.backward_work_per_sample

    @property
    def training_total(self) -> int:
        """Peak memory of one training step at ``batch_size``."""
        return self.param_state + self.batch_size * self.training_per_sample

    @property
    def inference_total(self) -> int:
        return self.weights + self.batch_size * self.forward_per_sample

    def training_at(self, batch_size: int) -> int:
        return self.param_state + batch_size * self.training_per_sample

    def largest(self, n: int = 3) -> list[LayerMemory]:
        """The layers holding most memory in training, largest first."""
        big = sorted((m for m in self.layers if m.saved + m.work > 0),
                     key=lambda m: -(m.saved + m.work))
        return big[:n]

    def max_batch(self, available: int) -> int:
        """The largest batch whose training step fits in ``available`` bytes (0: not even 1)."""
        room = available - self.param_state
        per = max(self.training_per_sample, 1)
        return max(room // per, 0)


def _setting(t: dict[str, Any], key: str, default: Any) -> Any:
    """A training setting as the estimate can use it, or its default: settings come straight
    from a project (a hand-edited ``momentum: "fast"``); their own check reports bad ones."""
    v = t.get(key, default)
    if isinstance(default, str):
        return v if isinstance(v, str) else default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 < v < 2**62:
        return default  # not a number, negative, NaN (fails the comparison) or absurd
    return type(default)(v)


def training_batch(training: dict[str, Any] | None) -> int:
    """The batch size the estimate is made for: the project's, or the default (64)."""
    return max(1, _setting(training if isinstance(training, dict) else {}, "batch_size", 64))


def training_device_of(training: dict[str, Any] | None) -> str:
    """Where the project's ``training.device`` trains ("cpu", "cuda", "mps"), read as safely as
    :func:`training_batch` reads the batch size."""
    t = training if isinstance(training, dict) else {}
    return training_device(_setting(t, "device", "auto"))


def optimizer_copies(training: dict[str, Any] | None) -> int:
    """Extra parameter-sized buffers the optimizer keeps (Adam: exp_avg and exp_avg_sq)."""
    t = training if isinstance(training, dict) else {}
    name = _setting(t, "optimizer", "adam")
    momentum = _setting(t, "momentum", 0.9)
    if name == "sgd":
        return 1 if momentum > 0 else 0
    if name == "rmsprop":
        return 2 if momentum > 0 else 1
    return OPTIMIZER_COPIES.get(name, 2)


def estimate(graph: Graph, analysis: Analysis, batch_size: int = 1,
             training: dict[str, Any] | None = None, device: str = "cpu",
             inside_block: bool = False) -> MemoryEstimate:
    """The memory estimate of an analysed design (nodes with unknown shapes count as 0, and so do
    nodes the analysis does not know: a window pairs its latest analysis with the graph as it
    is now, which may have been edited since).

    ``device`` ("cpu", "cuda", "mps") decides which attention path is counted.
    """
    preds: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    succs: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for e in graph.edges:
        if e.src in preds and e.dst in preds:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    order = [nid for nid in analysis.order if nid in graph.nodes]
    infos = analysis.infos
    kind = device.split(":")[0]
    base: dict[str, str] = {}  # node -> the node owning the storage of its output
    for nid in order:
        node = graph.nodes[nid]
        ins = preds[nid]
        off = bool(((infos.get(nid) and infos[nid].kwargs) or {}).get("_disabled"))
        view = memory_use(node.type).output == "view"
        is_view = (view or off) and len(ins) == 1  # switched off: passes through
        base[nid] = base.get(ins[0], ins[0]) if is_view else nid
    # The inside of each block use, per copy (its Inputs are tensors made out here).
    insides = {nid: est for nid, est in BlockInsides(graph, order, analysis, device).run().items()
               if est}
    # A node's output is kept for backward when it saves it or a reader saves its input.
    kept: set[str] = set()
    for nid in order:
        t = graph.nodes[nid].type
        keeps = memory_use(t).keeps
        if ((infos.get(nid) and infos[nid].kwargs) or {}).get("_disabled"):
            continue  # a layer switched off by a block parameter computes nothing
        if keeps in ("output", "both"):
            kept.add(base[nid])
        if nid in insides:  # a layer inside the block's first copy saves what a port receives
            ports = [e.src for e in graph.in_edges(nid)]
            for src, keep in zip(ports, insides[nid][0].inputs_kept):
                if keep and src in base:
                    kept.add(base[src])
        # the model's outputs live until the loss (a block's output: as its use's readers say)
        if keeps in ("input", "both") or (t == "Output" and not inside_block):
            kept.update(base.get(p, p) for p in preds[nid])
    layers: list[LayerMemory] = []
    notes: list[str] = []
    for nid in order:
        node, info = graph.nodes[nid], infos.get(nid)
        if info is None or info.output_shape is None:
            layers.append(LayerMemory(nid, node.name, node.type, 0, 0, 0, "shape unknown"))
            continue
        layers.append(_layer(node, info, base[nid] == nid, base[nid] in kept, kind,
                             inside_block, insides.get(nid)))
        if layers[-1].note and layers[-1].note not in notes:
            notes.append(f"{node.name}: {layers[-1].note}")
    by_id = {m.node_id: m for m in layers}
    params = sum(infos[n].params for n in order if n in infos)
    copies = optimizer_copies(training)
    inputs = [n.id for n in graph.inputs()]
    outs = [e.src for n in graph.outputs() for e in graph.in_edges(n.id)]
    return MemoryEstimate(
        inputs_kept=tuple(base.get(i, i) in kept for i in inputs),
        output_kept=bool(outs) and base.get(outs[0], outs[0]) in kept,
        output_bytes=(math.prod(infos[outs[0]].output_shape) * FLOAT_BYTES
                      if outs and infos.get(outs[0]) and infos[outs[0]].output_shape else 0),
        layers=layers, batch_size=max(int(batch_size), 1), params=params,
        weights=params * FLOAT_BYTES, grads=params * FLOAT_BYTES,
        optimizer=copies * params * FLOAT_BYTES,
        forward_per_sample=_forward_peak(order, preds, succs, base, by_id),
        saved_per_sample=sum(m.saved for m in layers),
        backward_work_per_sample=max((m.work for m in layers), default=0),
        device=kind, notes=notes)


class BlockInsides(GraphInterpreter):
    """The memory estimate of each block use's inside, one per copy (None for other nodes)."""

    def __init__(self, graph: Graph, order: list[str], analysis: Analysis, device: str) -> None:
        super().__init__(graph, order)
        self.infos = analysis.infos
        self.device = device

    def block(self, node, args: list[Any]) -> list[MemoryEstimate] | None:
        info = self.infos.get(node.id)
        kw = (info.kwargs or {}) if info is not None else {}
        if not kw.get("_copies"):
            return None
        return [estimate(kw["_graph"], inner, 1, None, self.device, inside_block=True)
                for _values, inner in kw["_copies"]]


def _layer(node, info, owns: bool, kept: bool, device: str, inside_block: bool = False,
           insides: list[MemoryEstimate] | None = None) -> LayerMemory:
    """One layer's output, saved and transient bytes per sample."""
    t = node.type
    use = memory_use(t)
    kw = info.kwargs or {}
    if kw.get("_disabled"):  # switched off by a block parameter: its input passes through
        return LayerMemory(node.id, node.name, t, 0, 0, 0, "switched off")
    out_elems = math.prod(info.output_shape)
    item = INT_BYTES if info.dtype == "int" else FLOAT_BYTES
    out = out_elems * item if owns and use.output != "weight" else 0
    in_elems = sum(math.prod(s) for s in info.input_shapes)
    # backward holds the gradient of the output and of each float input at once
    grads = (out_elems + in_elems) * FLOAT_BYTES if owns and t != "Input" else 0
    saved = out if kept else 0
    work = grads
    note = ""
    # a norm's per-channel statistics are negligible: not counted
    if use.extra == "indices":
        saved += out_elems * INT_BYTES  # argmax indices, int64, for the backward pass
    elif use.extra == "mask":
        saved += out_elems * MASK_BYTES
    elif use.extra == "recurrent" and info.input_shapes:
        steps = info.input_shapes[0][0]
        hidden, layers_n = kw.get("hidden_size", 0), kw.get("num_layers", 1)
        dirs = 2 if kw.get("bidirectional") else 1
        per_step = use.gates * hidden * dirs * layers_n
        saved += steps * per_step * FLOAT_BYTES
        # the output sequence of every stacked layer, and of the last when only h_n is returned
        saved += steps * hidden * dirs * layers_n * FLOAT_BYTES
        work += steps * hidden * dirs * FLOAT_BYTES * 2
        note = "recurrent gates counted for PyTorch's CPU path; cuDNN keeps its own workspace"
    elif use.extra in ("attention", "transformer") and info.input_shapes:
        steps, embed = info.input_shapes[0][0], info.input_shapes[0][-1]
        heads = kw.get("num_heads") or kw.get("nhead") or 1
        drop = float(kw.get("dropout") or 0)
        a_saved, a_work, a_fwd, note = _attention(steps, embed, heads, drop, device)
        saved += a_saved
        work += a_work
        if use.extra == "transformer":
            ff = kw.get("dim_feedforward", 0)
            # residual sums, two LayerNorm inputs, the first Linear's input, the feed-forward
            # activation (and its dropout's output and masks when dropout is on)
            saved += steps * (4 * embed + 2 * ff) * FLOAT_BYTES
            if drop > 0:
                saved += steps * (ff + 2 * embed) * MASK_BYTES + steps * (ff + embed) * FLOAT_BYTES
            work += 2 * steps * ff * FLOAT_BYTES
        out_fwd = out + a_fwd  # in a no-grad forward only the temporaries of the fused path
        return LayerMemory(node.id, node.name, t, out_fwd, saved, work, note, info.params)
    if insides:  # a block use: the inside of each copy, estimated as a network
        if insides[-1].output_kept:  # the use's output is a tensor the inside keeps already
            saved = 0
        inner_saved = inner_fwd = inner_work = 0
        for i, est in enumerate(insides):
            inner_saved += est.saved_per_sample
            fed = sum(m.output for m in est.layers if m.type == "Input")  # live out here already
            inner_fwd = max(inner_fwd, est.forward_per_sample - fed)
            inner_work = max(inner_work, est.backward_work_per_sample)
            # a copy that keeps what the previous copy gave, which that one did not keep
            if i and est.inputs_kept and est.inputs_kept[0] and not insides[i - 1].output_kept:
                inner_saved += insides[i - 1].output_bytes
        return LayerMemory(node.id, node.name, t, out, saved + inner_saved,
                           max(work, inner_work), note, info.params, transient=inner_fwd)
    if t == "Input":  # the batch itself; a block's Input is a tensor made outside, counted there
        saved = 0 if inside_block else out
    return LayerMemory(node.id, node.name, t, out, saved, work, note, info.params)


def _attention(steps: int, embed: int, heads: int, dropout: float,
               device: str) -> tuple[int, int, int, str]:
    """Self-attention's saved, backward and forward-temporary bytes per sample.

    The packed in-projection (q, k, v) and the attention output are kept either way; the math path
    also keeps the softmax weights (L x L per head), their dropout mask and the dropped weights.
    """
    proj = steps * 4 * embed * FLOAT_BYTES + heads * steps * FLOAT_BYTES  # qkv, out, logsumexp
    fwd = steps * 4 * embed * FLOAT_BYTES
    matrix = heads * steps * steps  # elements of the attention weights
    math_path = device == "mps" or (device == "cpu" and dropout > 0)
    if not math_path:
        return proj, steps * 3 * embed * FLOAT_BYTES, fwd, ""
    saved = proj + matrix * (2 * FLOAT_BYTES + MASK_BYTES)
    work = steps * 3 * embed * FLOAT_BYTES + 2 * matrix * FLOAT_BYTES
    why = "attention dropout on CPU" if device == "cpu" else "attention on MPS"
    return saved, work, fwd, (f"{why} uses the unfused path: the {steps:,} x {steps:,} weights "
                              f"of each of {heads} head(s) are held")


def _forward_peak(order, preds, succs, base, by_id) -> int:
    """Largest sum of live outputs during a no-grad forward pass, per sample. A reader's input
    the analysis does not know (outside ``order``) holds nothing."""
    remaining = {b: 0 for b in set(base.values())}
    for nid in order:
        for p in preds[nid]:
            b = base.get(p, p)
            remaining[b] = remaining.get(b, 0) + 1
    live, peak = 0, 0
    for nid in order:
        m = by_id[nid]
        peak = max(peak, live + m.transient)
        live += m.output
        peak = max(peak, live)
        for p in preds[nid]:
            b = base.get(p, p)
            remaining[b] -= 1
            if remaining[b] == 0 and b != nid and b in by_id:
                live -= by_id[b].output
    return peak


# --------------------------------------------------------------------------------------------
# Available memory
# --------------------------------------------------------------------------------------------


def machine_memory() -> tuple[int, int]:
    """(total, available) bytes of this machine's RAM: psutil when installed, else /proc/meminfo,
    else sysconf (available then equals total)."""
    try:
        import psutil  # optional

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh
                      if line.split()[1:2] and line.split()[1].isdigit()}
        total = fields["MemTotal"]
        return total, fields.get("MemAvailable", fields.get("MemFree", total))
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(total), int(total)
    except (ValueError, OSError, AttributeError):
        return 0, 0  # unknown: no memory check


def training_device(name: str) -> str:
    """Where ``training.device`` trains, as training.pick_device decides ("auto": CUDA, then MPS,
    then CPU). Only consults torch when it is already imported (the check path stays light)."""
    name = name or "auto"
    if name != "auto":
        return name
    torch = loaded_torch()  # None while a background import is half done
    if torch is None:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def device_memory(device: str) -> tuple[int, str]:
    """(bytes available for training, what that is) on ``device``: a CUDA device's total memory
    (torch must be importable), else the machine's available RAM (MPS shares it)."""
    if device.startswith("cuda"):
        found = _gpu_memory(device)
        if found is not None:
            return found
    _, available = machine_memory()
    return available, "this machine has"


@functools.lru_cache(maxsize=8)
def _gpu_memory(device: str) -> tuple[int, str] | None:
    """A GPU's total memory, asked once: the first question starts CUDA (seconds), so the
    window asks it in its background torch thread and the fit check on every edit reads this."""
    try:
        import torch

        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return int(props.total_memory), f"the GPU {props.name} has"
    except (ImportError, RuntimeError, AssertionError, ValueError, IndexError):
        return None  # no usable CUDA: training fails with its own message


# --------------------------------------------------------------------------------------------
# Checks and texts
# --------------------------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    """1234567 -> "1.2 MB" (decimal units, as the Summary's parameter size)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _largest_text(est: MemoryEstimate) -> str:
    parts = [f"{m.name} ({m.type}, {fmt_bytes(m.saved + m.work)} per sample)"
             for m in est.largest(3)]
    return ", ".join(parts)


def fit_problem(est: MemoryEstimate, available: int, where: str = "this machine has",
                warn_fraction: float | None = None) -> Problem | None:
    """An error when one training step cannot fit in ``available`` bytes (a warning above
    ``warn_fraction`` of it, when given); the message names the largest layers and what to
    change."""
    if available <= 0:
        return None
    need = est.training_total
    biggest = tuple(m.node_id for m in est.largest(3))
    head = (f"training needs about {fmt_bytes(need)} at batch {est.batch_size} "
            f"(activations {fmt_bytes(est.training_per_sample)} per sample, weights with "
            f"gradients and optimizer state {fmt_bytes(est.param_state)})")
    if need > available:
        if est.param_state > available:
            fix = (f"the weights alone ({est.params:,} parameters) do not fit: shrink the largest "
                   f"layers ({_largest_param_text(est)})")
        else:
            fit = est.max_batch(available)
            fix = (f"lower training.batch_size to {fit} or less" if fit >= 1 else
                   "not even batch 1 fits: shorten the input or sequence, or narrow the largest "
                   "layers")
            fix += f"; largest: {_largest_text(est)}"
        return Problem("error", f"{head}, but {where} {fmt_bytes(available)}: {fix}",
                       biggest, "memory")
    if warn_fraction is not None and need > warn_fraction * available:
        return Problem("warning", f"{head}, {need / available:.0%} of the {fmt_bytes(available)} "
                       f"{where}; largest: {_largest_text(est)}", biggest, "memory")
    return None


def _largest_param_text(est: MemoryEstimate) -> str:
    big = sorted((m for m in est.layers if m.params), key=lambda m: -m.params)[:3]
    return ", ".join(f"{m.name} {m.params:,}" for m in big)


def status_text(est: MemoryEstimate) -> str:
    """The status bar's memory text: "activations 12.3 MB/sample, training ~1.2 GB at batch 64"."""
    return (f"activations {fmt_bytes(est.activations_per_sample)}/sample, training "
            f"~{fmt_bytes(est.training_total)} at batch {est.batch_size}")


def check_memory(graph: Graph, analysis: Analysis, training: dict[str, Any] | None = None,
                 total: int | None = None) -> tuple[list[Problem], dict[str, Any]]:
    """For ``designer check``: problems and a JSON-able summary of the estimate at the project's
    batch size. An error when one sample's training step, or the weights alone, exceed the
    machine's (or ``total``) memory; a warning above WARN_FRACTION of it."""
    t = training if isinstance(training, dict) else {}
    device = training_device_of(t)
    est = estimate(graph, analysis, training_batch(t), t, device)
    if total is None:
        total, _ = machine_memory()
    problems = []
    one = est.training_at(1)
    if total and one > total:
        problems.append(Problem(
            "error", f"one sample alone needs about {fmt_bytes(one)} to train (largest: "
            f"{_largest_text(est)}), more than this machine's {fmt_bytes(total)}: shorten the "
            f"input or sequence, or narrow the largest layers",
            tuple(m.node_id for m in est.largest(3)), "memory"))
    elif total:
        p = fit_problem(est, total, "this machine has", WARN_FRACTION)
        if p is not None:
            problems.append(Problem("warning", p.message, p.node_ids, p.code))
    return problems, summary_dict(est, total)


def summary_dict(est: MemoryEstimate, total: int | None = None) -> dict[str, Any]:
    return {
        "batch_size": est.batch_size,
        "device": est.device,
        "activations_per_sample": est.activations_per_sample,
        "training_per_sample": est.training_per_sample,
        "weights": est.weights,
        "param_state": est.param_state,
        "training_total": est.training_total,
        "inference_total": est.inference_total,
        "memory_total": total,
        "largest": [{"id": m.node_id, "name": m.name, "bytes_per_sample": m.saved + m.work}
                    for m in est.largest(3)],
        "layers": {m.node_id: m.output for m in est.layers},
        "text": status_text(est),
        "notes": list(est.notes),
    }


__all__ = [
    "WARN_FRACTION",
    "LayerMemory",
    "MemoryEstimate",
    "check_memory",
    "device_memory",
    "estimate",
    "fit_problem",
    "fmt_bytes",
    "machine_memory",
    "memory_use",
    "optimizer_copies",
    "status_text",
    "summary_dict",
    "training_batch",
    "training_device",
    "training_device_of",
]
