"""Does a design fit a dataset? Messages that say what to change, with one-click fixes.

:func:`check_model_data` compares the graph's Input (shape, dtype) and Output (size) with the
dataset and the loss. Each :class:`DataProblem` carries :class:`ParamFix` entries the window can
apply as one undoable edit (set Input.shape to [1, 28, 28]; set fc2.out_features to 10). It also
refuses a design whose training step cannot fit in the training device's memory
(:mod:`designer.engine.model.memory`), before anything is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...model import memory
from ...model.blocks import MAX_DEPTH
from ...model.catalog import CATALOG, DataFit
from ...model.graph import Graph
from ...model.shapes import analyze
from .core import Dataset

CLASS_LOSSES = ("cross_entropy", "nll")
VALUE_LOSSES = ("mse", "l1", "smooth_l1")
# What the check needs of each layer is declared on its catalog entry (LayerSpec.data_fit): where
# its output size comes from, and what its output values are. A node that is not a layer (a block
# use) decides its size some other way, unless a parameter of its sets it (below).
_NOT_A_LAYER = DataFit("other")


def data_fit(layer_type: str) -> DataFit:
    """What the data-fit check reads of a node of ``layer_type`` (its catalog entry's
    :class:`~designer.engine.model.catalog.DataFit`)."""
    spec = CATALOG.get(layer_type)
    return spec.data_fit if spec is not None and spec.data_fit is not None else _NOT_A_LAYER


def _size_params() -> tuple[str, ...]:
    """The parameters that set a layer's output size ("out_features", ...), in catalog order: a
    block use with a parameter of one of these names is sized by it."""
    names = (spec.data_fit.size for spec in CATALOG if spec.data_fit is not None)
    return tuple(dict.fromkeys(n for n in names if n not in ("input", "other")))


@dataclass(frozen=True)
class ParamFix:
    """Set ``param`` of node ``node_id`` to ``value``."""

    node_id: str
    param: str
    value: Any


@dataclass(frozen=True)
class DatasetFix:
    """Set the dataset's ``setting`` to ``value`` (the data is cut to fit a design whose sizes
    are fixed: an imported model's sequence length, the vocabulary its embedding holds)."""

    setting: str
    value: Any


@dataclass(frozen=True)
class DataProblem:
    severity: str  # "error" or "warning"
    message: str
    node_ids: tuple[str, ...] = ()
    fixes: tuple[ParamFix, ...] = ()
    code: str = ""
    dataset_fixes: tuple[DatasetFix, ...] = ()


@dataclass
class DataCheck:
    """The result: problems plus what the dataset wants (for a "make it fit" action)."""

    problems: list[DataProblem] = field(default_factory=list)
    input_shape: tuple[int, ...] = ()
    input_dtype: str = "float32"
    output_size: int | None = None  # classes, or elements of one target

    @property
    def errors(self) -> list[DataProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def fixes(self) -> list[ParamFix]:
        return [f for p in self.problems for f in p.fixes]

    @property
    def dataset_fixes(self) -> list[DatasetFix]:
        """Changes of the dataset's settings that make it fit the design (applied after the
        design's own fixes; a setting named twice keeps its first value)."""
        out: dict[str, DatasetFix] = {}
        for p in self.problems:
            for f in p.dataset_fixes:
                out.setdefault(f.setting, f)
        return list(out.values())

    @property
    def fixable(self) -> bool:
        """Whether "Make the design fit" has something to change (the design or the data)."""
        return bool(self.fixes or self.dataset_fixes)


def expected_output_size(ds: Dataset, loss: str) -> int:
    """Classes (a classification, or the vocabulary of a language model) or target elements."""
    if ds.task == "language_model":
        return ds.num_classes or 0
    if ds.task == "classification":
        n = ds.num_classes or 0
        return 1 if loss == "bce_with_logits" and n == 2 else n
    return math.prod(ds.target_shape) if ds.target_shape else 1


def check_model_data(graph: Graph, ds: Dataset, training: dict[str, Any] | None = None,
                     analysis=None, memory_available: int | None = None) -> DataCheck:
    """Compare a design with a dataset (and the training loss); see the module docstring.

    ``memory_available``: bytes the training step may use; by default the memory of the device
    ``training["device"]`` trains on (a GPU's total less the dataset moved onto it, or the RAM
    this machine has available).
    """
    check = _check_fit(graph, ds, training, analysis)
    if not any(p.code in ("input", "inputs") for p in check.errors):
        analysis = analysis or analyze(graph)
        if analysis.ok:
            problem = memory_problem(graph, analysis, ds, training, memory_available)
            if problem is not None:
                check.problems.append(problem)
    return check


def memory_problem(graph: Graph, analysis, ds: Dataset, training: dict[str, Any] | None,
                   available: int | None = None) -> DataProblem | None:
    """An error when one training step at the chosen batch size cannot fit in memory (naming the
    largest layers, the estimate, the memory there is and what to change)."""
    device = memory.training_device_of(training)
    est = memory.estimate(graph, analysis, memory.training_batch(training), training, device)
    where = "this machine has"
    if available is None:
        available, where = memory.device_memory(device)
        if device != "cpu" and where != "this machine has":  # the dataset moves to the GPU too
            available -= _dataset_bytes(ds)
    problem = memory.fit_problem(est, available, where)
    if problem is None:
        return None
    return DataProblem(problem.severity, problem.message, problem.node_ids, code="memory")


def _dataset_bytes(ds: Dataset) -> int:
    tensors = (ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    return sum(int(x.numel()) * int(x.element_size()) for x in tensors if x is not None)


def _check_fit(graph: Graph, ds: Dataset, training: dict[str, Any] | None,
               analysis) -> DataCheck:
    loss = (training or {}).get("loss", "cross_entropy")
    out_size = expected_output_size(ds, loss)
    check = DataCheck(input_shape=tuple(ds.sample_shape), input_dtype=ds.dtype,
                      output_size=out_size)
    add = check.problems.append
    # ---- loss against task
    if ds.task == "classification" and loss not in CLASS_LOSSES + ("bce_with_logits",) + VALUE_LOSSES:
        add(DataProblem("error", f"the loss {loss} does not fit a classification dataset",
                        code="loss"))
    if ds.task in ("regression", "reconstruction") and loss in CLASS_LOSSES:
        add(DataProblem("error", f"{ds.name} is a {ds.task} dataset, but the loss {loss} needs "
                        f"class labels: set training.loss to mse (or l1, smooth_l1)",
                        code="loss"))
    if ds.task == "classification" and loss in VALUE_LOSSES:
        add(DataProblem("warning", f"the loss {loss} on class labels compares the output with "
                        f"one-hot targets; cross_entropy usually trains faster", code="loss"))
    # ---- inputs
    inputs = graph.inputs()
    if len(inputs) != 1:
        add(DataProblem("error", f"the design has {len(inputs)} Input layers; training on a "
                        f"dataset needs exactly one", tuple(n.id for n in inputs), code="inputs"))
        return check
    inp = inputs[0]
    shape, dtype = tuple(inp.params.get("shape") or ()), inp.params.get("dtype", "float32")
    length = _fixed_length(graph, ds, inp.id, shape, analysis)
    if length is not None:  # the design takes this many tokens only: cut the data to it
        key = length_setting(ds)
        add(DataProblem("error", f"the dataset gives {_what(ds)} but {inp.name} takes "
                        f"{shape[0]}, and the design's sizes hold for {shape[0]} only (an "
                        f"imported model): set dataset.{key} to {shape[0]}", (inp.id,),
                        code="input", dataset_fixes=(DatasetFix(key, shape[0]),)))
    fixes = []
    if shape != tuple(ds.sample_shape) and length is None:
        fixes.append(ParamFix(inp.id, "shape", list(ds.sample_shape)))
    if dtype != ds.dtype:
        fixes.append(ParamFix(inp.id, "dtype", ds.dtype))
    if fixes:
        parts = []
        if shape != tuple(ds.sample_shape):
            parts.append(f"the dataset gives {_what(ds)} but {inp.name} is {_fmt(shape)}")
        if dtype != ds.dtype:
            kind = "token ids (int64)" if ds.dtype == "int64" else "float32 values"
            parts.append(f"the dataset gives {kind} but {inp.name} takes {dtype}")
        todo = ", ".join(f"{f.param} {_val(f.value)}" for f in fixes)
        add(DataProblem("error", "; ".join(parts) + f": set {inp.name}'s {todo}", (inp.id,),
                        tuple(fixes), code="input"))
    # ---- embeddings against the vocabulary
    if ds.vocab is not None:
        for node, where in token_embeddings(graph, inp.id):
            # pinned on the layer, or on the block use of this network that holds it
            pin = graph.node_by_name(where[0]).id if where else node.id
            _check_vocabulary(node, where, pin, ds, training, add)
    if check.errors and any(p.code == "input" for p in check.problems):
        return check  # output shapes follow from a wrong input; fix that first
    # ---- outputs
    outputs = graph.main_outputs()  # auxiliary ones (aux_weight > 0) are checked below
    if not outputs:
        add(DataProblem("error", "the design has no Output layer; supervised training needs "
                        "one (and any number of auxiliary ones, aux_weight > 0)", (),
                        code="outputs"))
        return check
    out = outputs[0]  # the first, as forward returns them (an imported model's logits)
    if len(outputs) > 1:
        others = ", ".join(n.name for n in outputs[1:])
        add(DataProblem("warning", f"the design has {len(outputs)} Outputs: training uses the "
                        f"first, {out.name}, and leaves {others} out of the loss",
                        tuple(n.id for n in outputs[1:]), code="outputs"))
    analysis = analysis or analyze(graph)
    for aux in [n for n in graph.outputs() if n not in outputs]:  # the auxiliary ones
        a, m = analysis.infos.get(aux.id), analysis.infos.get(out.id)
        if a and m and a.output_shape and m.output_shape \
                and tuple(a.output_shape) != tuple(m.output_shape):
            add(DataProblem("error", f"the auxiliary output {aux.name} gives "
                            f"{_fmt(tuple(a.output_shape))}, the main output {out.name} "
                            f"{_fmt(tuple(m.output_shape))}: the same loss applies to both, so "
                            "they must have the same shape", (aux.id,), code="output"))
    if ds.task in ("classification", "language_model"):
        _check_last_activation(graph, out.id, loss, add)
    info = analysis.infos.get(out.id)
    got = tuple(info.output_shape) if info and info.output_shape else None
    if got is None:
        return check  # the design has its own errors, reported by the shape check
    if ds.task == "reconstruction":
        if got != tuple(ds.sample_shape):
            add(DataProblem("error", f"an autoencoder must give back its input: the output is "
                            f"{_fmt(got)} but the images are {_fmt(ds.sample_shape)}",
                            (out.id,), code="output"))
        return check
    if ds.task == "language_model":
        _check_next_token_output(graph, ds, out.id, got, add, _keeps_sizes(training))
        return check
    want_shape = (out_size,) if ds.task == "classification" else tuple(ds.target_shape) or (1,)
    if got == want_shape or (ds.task == "regression" and math.prod(got) == out_size
                             and len(got) == 1):
        return check
    setter = _size_setter(graph, out.id)
    fix = (ParamFix(setter[0], setter[1], out_size),) if setter and len(got) == 1 else ()
    if ds.task == "classification":
        need = (f"{out_size} output (one logit for 2 classes with bce_with_logits)"
                if out_size == 1 else f"{out_size} outputs, one per class")
        msg = f"the dataset has {ds.num_classes} classes but the model gives {_fmt(got)}"
    else:
        need = f"{out_size} output value(s)"
        msg = f"the dataset's targets are {_fmt(want_shape)} but the model gives {_fmt(got)}"
    if fix:
        node = graph.nodes[setter[0]]
        msg += f": set {node.name}'s {setter[1]} to {out_size}"
    elif len(got) != 1:
        msg += f": flatten to one dimension and end with a layer of {need}"
    else:
        msg += f": end with a layer of {need}"
    add(DataProblem("error", msg, (out.id,) + ((setter[0],) if fix else ()), fix, code="output"))
    return check


def _check_next_token_output(graph: Graph, ds: Dataset, out_id: str, got: tuple[int, ...],
                             add, keeps_sizes: bool = False) -> None:
    """A language model scores every vocabulary token at every position: its output is
    ``(seq_length, vocabulary)``; the last layer's size is offered as a fix when only it differs.
    A design that fine-tunes weights (``keeps_sizes``) may score more tokens than the text has:
    its own vocabulary is larger, the extra scores are never a target (a warning, no fix)."""
    length, size = ds.sample_shape[0], ds.num_classes or 0
    if got == (length, size):
        return
    if keeps_sizes and len(got) == 2 and got[0] == length and got[1] > size:
        add(DataProblem("warning", f"the model scores {got[1]} tokens at each position, the "
                        f"text's vocabulary has {size}: the model's own weights are kept "
                        f"(training.init_weights), so its other {got[1] - size} tokens are never "
                        f"a target and are not sampled", (out_id,), code="output"))
        return
    msg = (f"a language model scores each of the {size} vocabulary tokens at each of the "
           f"{length} positions, so the output must be {_fmt((length, size))}, but the model "
           f"gives {_fmt(got)}")
    setter = _size_setter(graph, out_id)
    if len(got) == 2 and got[0] == length and setter is not None:
        node = graph.nodes[setter[0]]
        add(DataProblem("error", msg + f": set {node.name}'s {setter[1]} to {size}",
                        (out_id, node.id), (ParamFix(node.id, setter[1], size),),
                        code="output"))
        return
    if len(got) == 2 and got[0] == length:
        todo = f"end with a Linear of {size} outputs"
    else:
        todo = (f"keep the sequence of {length} positions (no Flatten or pooling over time; a "
                f"recurrent layer returning every time step) and end with a Linear of {size} "
                f"outputs")
    add(DataProblem("error", f"{msg}: {todo}", (out_id,), code="output"))


def length_setting(ds: Dataset) -> str:
    """The dataset setting that sets how many token ids a sample holds."""
    return "seq_length" if ds.task == "language_model" else "max_length"


def vocabulary_setting(ds: Dataset) -> str | None:
    """The dataset setting that caps the vocabulary (None: a character-level text, whose
    vocabulary is every character it holds)."""
    if ds.preprocessing.get("tokenizer") == "char":
        return None
    return "vocab_size"


def _keeps_sizes(training: dict[str, Any] | None) -> bool:
    """Whether the run starts from weights in a file (an imported model's): the sizes those
    weights have are kept, and the data is fitted to them where it can be."""
    return bool((training or {}).get("init_weights"))


def _fixed_length(graph: Graph, ds: Dataset, input_id: str, shape: tuple[int, ...],
                  analysis=None) -> int | None:
    """The number of token ids the design takes when it cannot take the dataset's: its Input
    is one sequence of token ids and the design, without errors as it is, has errors when
    analysed with the dataset's length (an imported model holds sizes for its own length).
    None otherwise."""
    if ds.dtype != "int64" or len(shape) != 1 or len(ds.sample_shape) != 1 \
            or shape == tuple(ds.sample_shape) or not ds.preprocessing.get("source"):
        return None
    if not (analysis or analyze(graph)).ok:
        return None  # its own errors first: they say nothing of the length it can take
    probe = graph.copy()
    probe.library = graph.library
    probe.nodes[input_id].params["shape"] = list(ds.sample_shape)
    probe.nodes[input_id].params["dtype"] = "int64"
    if analyze(probe).ok:
        return None
    return shape[0]


def token_embeddings(graph: Graph, input_id: str) -> list[tuple[Any, tuple[str, ...]]]:
    """The layers with a vocabulary (Embeddings) that take the token ids themselves: reached
    from the Input through layers whose output is a view of their input (Reshape, ...) and into
    blocks (each with the names of the block uses on the way). A position or token-type
    embedding fed by computed ids is not one of them."""
    found: list[tuple[Any, tuple[str, ...]]] = []

    library = graph.library

    def walk(g: Graph, start: str, where: tuple[str, ...]) -> None:
        todo, seen = [start], set()
        while todo:
            nid = todo.pop()
            if nid in seen:
                continue
            seen.add(nid)
            for e in g.out_edges(nid):
                node = g.nodes[e.dst]
                if data_fit(node.type).vocabulary:
                    found.append((node, where))
                    continue
                definition = node.kind.definition(node, library)
                if definition is not None:
                    ins = definition.inputs()
                    if e.dst_port < len(ins) and len(where) < MAX_DEPTH:
                        walk(definition, ins[e.dst_port].id, where + (node.name,))
                    continue
                spec = CATALOG.get(node.type)
                if spec is not None and spec.memory is not None \
                        and spec.memory.output == "view" and len(g.in_edges(node.id)) == 1:
                    todo.append(node.id)

    walk(graph, input_id, ())
    return found


def _check_vocabulary(node, where: tuple[str, ...], pin: str, ds: Dataset,
                      training: dict[str, Any] | None, add) -> None:
    """An embedding of the token ids must hold the whole vocabulary. The fix grows it, unless
    it sits in a block or holds weights to fine-tune (training.init_weights): then the dataset's
    vocabulary is capped to it, where the dataset can cap it."""
    param = data_fit(node.type).vocabulary
    have, need = node.params.get(param, 0), len(ds.vocab)
    if not isinstance(have, int) or have >= need:
        return
    name = " > ".join(where + (node.name,))
    msg = f"{name} has {have} embeddings, but the vocabulary has {need} tokens"
    cap = vocabulary_setting(ds)
    if cap and (where or _keeps_sizes(training)):
        add(DataProblem("error", f"{msg}: set dataset.{cap} to {have} (or {param} to {need}, "
                        f"which starts its weights afresh)", (pin,), code="vocab",
                        dataset_fixes=(DatasetFix(cap, have),)))
    elif where:  # in a block: changed in the block's definition, which a fix here cannot reach
        add(DataProblem("error", f"{msg}: set {param} to {need} in the block's definition, or "
                        f"use a text with fewer distinct characters", (pin,), code="vocab"))
    else:
        add(DataProblem("error", f"{msg}: set {param} to {need}", (node.id,),
                        (ParamFix(node.id, param, need),), code="vocab"))


def _check_last_activation(graph: Graph, out_id: str, loss: str, add) -> None:
    """Softmax before cross_entropy trains, only slowly, and NLL on anything but log-probabilities
    drifts below zero: the shape check cannot see either, so say it here (a warning)."""
    last = next((graph.nodes[e.src] for e in graph.edges if e.dst == out_id), None)
    if last is None:
        return
    values = data_fit(last.type).values
    if loss in ("cross_entropy", "bce_with_logits") and values == "probabilities":
        what = "softmax" if loss == "cross_entropy" else "a sigmoid"
        add(DataProblem("warning", f"the loss {loss} applies {what} itself, so the {last.type} "
                        f"{last.name!r} before the output squashes the scores twice and slows "
                        f"learning: remove {last.name!r} (add it after training, for "
                        f"probabilities)", (last.id,), code="activation"))
    elif loss == "nll" and values != "log_probabilities":
        add(DataProblem("warning", f"the loss nll expects log-probabilities, but the output comes "
                        f"from {last.type} {last.name!r}: end with a LogSoftmax, or set "
                        f"training.loss to cross_entropy", (last.id,), code="activation"))


def _size_setter(graph: Graph, node_id: str) -> tuple[str, str] | None:
    """The node and parameter that decide the output size (walking back over activations)."""
    seen = set()
    while node_id not in seen:
        seen.add(node_id)
        node = graph.nodes[node_id]
        if node.type not in CATALOG:  # a block use: sized by a parameter, if it has one
            param = next((p for p in _size_params() if p in node.params), None)
            return (node.id, param) if param else None
        size = data_fit(node.type).size
        if size not in ("input", "other"):
            return (node.id, size) if size in node.params else None
        if size != "input":
            return None
        ins = graph.in_edges(node_id)
        if len(ins) != 1:
            return None
        node_id = ins[0].src
    return None


def _what(ds: Dataset) -> str:
    shape = _fmt(ds.sample_shape)
    if ds.dtype == "int64":
        return f"sequences of {ds.sample_shape[0]} token ids"
    if len(ds.sample_shape) == 3:
        return f"{shape} images"
    if len(ds.sample_shape) == 1:
        return f"samples of {shape} value{'s' if ds.sample_shape[0] != 1 else ''}"
    return f"samples of shape {shape}"


def _val(v: Any) -> str:
    return "[" + ", ".join(map(str, v)) + "]" if isinstance(v, (list, tuple)) else str(v)


def _fmt(shape) -> str:
    return "x".join(str(v) for v in shape)
