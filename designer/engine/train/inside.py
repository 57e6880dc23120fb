"""Inside the network while it trains: per-layer summaries and one sample's views, as events.

A :class:`InsideObserver` is attached by the trainer (``Trainer(..., inside=InsideOptions())`` or
``trainer.observe()`` from any thread while running, ``trainer.stop_observing()``). It watches
every layer module of every network of the recipe (``recipe.modules()``), layers inside blocks
too, addressed ``"<network>.<module path>"``. Hooks exist only during the batches it captures
(see :meth:`InsideObserver.wants`: the first batch, then every ``every`` batches and each epoch's
last one while the time budget allows, and the run's last batch) and are removed before the next
batch, so observing costs nothing in between and nothing at all when off.

During a captured batch:

* forward hooks reduce each layer's output to a histogram, mean/std, non-finite count and (after
  ReLU-like layers) the dead-unit fraction, on the device, the moment it is made;
* a tensor hook on that output takes the norm of the gradient backprop brings to it;
* optimizer step hooks read the gradients the optimizer uses and the change the step makes
  (update-to-weight ratio).

Everything is reduced to small arrays on the training thread and moved to the CPU in one copy;
an :class:`~designer.engine.train.events.InsideSummary` (and an
:class:`~designer.engine.train.events.InsideSample`: one validation sample through every network in
eval mode under no_grad) goes to the trainer's callback and, with a run folder, to
``<run>/inside/`` (``read_inside`` replays them). Nothing here draws random numbers from torch's
global generator or changes what a step computes.

torch is imported on use: :func:`read_inside` works without it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..lazy import nn, torch
from ..model.catalog import CATALOG
from ..model.interpreter import GraphInterpreter
from .events import Histogram, InsideSample, InsideSummary, LayerSummary, LayerView
from .inside_files import INSIDE_DIR, write_sample, write_summary


@dataclass(frozen=True)
class InsideOptions:
    """What to observe and how often.

    ``every``: batches between summaries (counted over the run; each epoch's last batch is
    captured too). ``overhead``: the share of the run's time captures may take: after a capture
    that took c seconds, the next waits until c / overhead seconds have passed, so tiny epochs do
    not each pay one (None: by count only). The first captured batch and the run's last one are
    always captured. ``bins``: histogram bins. ``sample``: the validation sample shown layer by layer
    (None: no per-sample views); ``sample_input``: a sample given by the caller instead (an array
    shaped like one dataset sample). ``max_channels``/``max_side``/``max_length``: how much of a
    sample's outputs is kept (channels or heads, image side, sequence length / vector size).
    ``write``: also write to the run folder (when the trainer has one)."""

    every: int = 50
    overhead: float | None = 0.02
    bins: int = 32
    sample: int | None = 0
    sample_input: Any = None
    max_channels: int = 8
    max_side: int = 32
    max_length: int = 256
    write: bool = True

    def __post_init__(self) -> None:
        if int(self.every) < 1 or int(self.bins) < 1:
            raise ValueError("InsideOptions: every and bins must be at least 1")
        if self.overhead is not None and not 0 < float(self.overhead) <= 1:
            raise ValueError("InsideOptions: overhead must be in (0, 1] or None")


@dataclass(frozen=True)
class Layer:
    """One observed module: its key, network, path, node id, type and kind."""

    key: str
    network: str
    path: str
    node: str | None
    type: str
    kind: str
    module: Any


# ---------------------------------------------------------------------------------------------
# Which modules are layers
# ---------------------------------------------------------------------------------------------

# A layer of the catalog is shown as its entry's ``inside`` says (LayerSpec.inside). A module of a
# network that is not a design (walked whole) is looked up by its class name in the catalog; these
# torch classes have no catalog entry (tests/engine/test_catalog_complete.py keeps catalog ids out).
_TORCH_NORMS = ("BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                "LocalResponseNorm")
_TORCH_ACTIVATIONS = ("CELU", "Softsign", "Hardtanh", "Tanhshrink", "Threshold")


def inside_view(layer_type: str, module: Any) -> str:
    """How look-inside shows a layer (one of :data:`designer.engine.model.catalog.INSIDE_VIEWS`):
    ``layer_type`` is a design node's type, or the class name of a module walked whole."""
    spec = CATALOG.get(layer_type)
    if spec is not None and spec.inside is not None:
        return spec.inside
    name = type(module).__name__
    if isinstance(module, nn.MultiheadAttention) or name.startswith("Transformer"):
        return "attention"
    if isinstance(module, nn.RNNBase):
        return "recurrent"
    if name in _TORCH_NORMS:
        return "norm"
    if name in _TORCH_ACTIVATIONS:
        return "activation"
    return "layer"


def _kind(module: Any, layer_type: str) -> str:
    view = inside_view(layer_type, module)
    return "activation" if view == "relu_like" else view  # relu_like: an activation that can die


class _TensorLayer:
    """A Parameter layer (a tensor of the network, no module) as the layers list sees it: its
    weight and gradient statistics; no forward of its own to hook (the tensor is its output)."""

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor

    def parameters(self) -> Iterator[Any]:
        return iter((self.tensor,))

    def named_parameters(self) -> Iterator[tuple[str, Any]]:
        return iter((("", self.tensor),))

    def modules(self) -> Iterator[Any]:
        return iter(())

    def register_forward_hook(self, hook: Callable) -> _NoHook:
        return _NoHook()


class _NoHook:
    def remove(self) -> None:
        pass


class StepLayers(GraphInterpreter):
    """The layers of one built network's forward program, by kind: a layer (with a module or a
    Parameter layer's tensor) is one, a block use is walked into (``walk_block``), Inputs and
    Outputs are none. Dispatches steps (designer.engine.model.build.Step), walks no graph."""

    def __init__(self, network: str, prefix: str, gm: Any,
                 add: Callable[[str, str, Any, str | None, str], None],
                 walk_block: Callable[[str, str, Any], None]) -> None:
        super().__init__(None)
        self.network, self.prefix, self.gm = network, prefix, gm
        self.add, self.walk_block = add, walk_block

    def _module(self, step: Any) -> Any:
        module = self.gm._modules.get(step.attr)
        if module is None and self.gm._parameters.get(step.attr) is not None:
            module = _TensorLayer(self.gm._parameters[step.attr])  # a Parameter layer
        return module

    def layer(self, step: Any, args: list[Any]) -> None:
        module = self._module(step)
        if module is not None:
            self.add(self.network, self.prefix + step.attr, module, step.node_id, step.type)

    def block(self, step: Any, args: list[Any]) -> None:
        module = self._module(step)
        if module is not None:
            self.walk_block(self.network, self.prefix + step.attr + ".", module)


def layers_of(networks: dict[str, Any]) -> list[Layer]:
    """Every layer module of every network, in forward-program order for built designs.

    A design's network (GraphModule) gives one layer per node with a module; a block use is
    walked into (its copies numbered as in the state_dict: ``layer1.0.conv1``). Any other module
    gives its leaf modules (attention and recurrent modules whole)."""
    from ..model.build import GraphModule  # deferred: torch loads only when this runs

    out: list[Layer] = []

    def add(network: str, path: str, module: Any, node: str | None, type_: str) -> None:
        out.append(Layer(f"{network}.{path}", network, path, node, type_, _kind(module, type_),
                         module))

    def walk_graph(network: str, prefix: str, gm: Any) -> None:
        steps = StepLayers(network, prefix, gm, add, walk_block)
        for step in gm._steps:
            if not step.disabled:
                steps.run_node(step, [])

    def walk_block(network: str, prefix: str, module: Any) -> None:
        if isinstance(module, GraphModule):
            walk_graph(network, prefix, module)
        elif isinstance(module, nn.Sequential) and all(
                isinstance(c, GraphModule) for c in module.children()):  # a repeated block
            for name, child in module.named_children():
                walk_block(network, f"{prefix}{name}.", child)
        else:
            walk_plain(network, prefix, module)

    def walk_plain(network: str, prefix: str, root: Any) -> None:
        taken: list[str] = []
        for name, module in root.named_modules():
            if not name or any(name.startswith(t + ".") for t in taken):
                continue
            whole = isinstance(module, (nn.MultiheadAttention, nn.RNNBase)) or (
                type(module).__name__.startswith("Transformer"))
            if whole or not any(True for _ in module.children()):
                taken.append(name)
                add(network, prefix + name, module, None, type(module).__name__)

    for network, root in networks.items():
        if isinstance(root, GraphModule):
            walk_graph(network, "", root)
        else:
            walk_plain(network, "", root)
    return out


# ---------------------------------------------------------------------------------------------
# Reductions on the device (no host sync until the one copy at the end)
# ---------------------------------------------------------------------------------------------


class _Pack:
    """Tensors to bring to the CPU together: one concatenation, one copy."""

    def __init__(self, dtype) -> None:
        self.dtype = dtype
        self.items: list[tuple[tuple[str, str], Any]] = []

    def add(self, key: str, field: str, tensor) -> None:
        self.items.append(((key, field), tensor))

    def unpack(self) -> dict[tuple[str, str], np.ndarray]:
        if not self.items:
            return {}
        flat = torch.cat([t.detach().reshape(-1).to(self.dtype) for _, t in self.items])
        host = flat.cpu().numpy().astype(np.float64)
        out, at = {}, 0
        for name, t in self.items:
            n = t.numel()
            out[name] = host[at:at + n].reshape(tuple(t.shape))
            at += n
        return out


def _histogram(pack: _Pack, key: str, name: str, x, bins: int) -> None:
    """Histogram of the finite values of ``x`` (1-D float32) over their range, plus the count of
    the others; bucketing by comparison with the edges counts exactly as numpy.histogram does."""
    finite = torch.isfinite(x)
    some = finite.any()
    inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
    lo = torch.where(finite, x, inf).amin() if x.numel() else inf
    hi = torch.where(finite, x, -inf).amax() if x.numel() else -inf
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    lo, hi = torch.where(some, lo, zero), torch.where(some, hi, zero)
    flat = hi <= lo
    lo, hi = torch.where(flat, lo - 0.5, lo), torch.where(flat, hi + 0.5, hi)
    steps = torch.arange(bins + 1, device=x.device, dtype=x.dtype) / bins
    edges = torch.cat([(lo + (hi - lo) * steps)[:-1], hi.reshape(1)])
    idx = torch.bucketize(torch.where(finite, x, lo), edges[1:-1].contiguous(), right=True)
    counts = torch.zeros(bins, dtype=pack.dtype, device=x.device)
    counts.index_add_(0, idx, finite.to(pack.dtype))
    pack.add(key, name + ".edges", edges)
    pack.add(key, name + ".counts", counts)
    pack.add(key, "nonfinite_" + name, (~finite).sum())


def _first_tensor(value: Any):
    """The first tensor of a module's output (LSTM: the outputs over time; MHA: the outputs)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _activation_stats(pack: _Pack, key: str, out, bins: int, relu_like: bool) -> None:
    x = out.detach().float().reshape(-1)
    _histogram(pack, key, "activations", x, bins)
    finite = torch.isfinite(x)
    n = finite.sum().clamp(min=1)
    xs = torch.where(finite, x, torch.zeros((), device=x.device))
    mean = xs.sum() / n
    var = torch.where(finite, (x - mean) ** 2, torch.zeros((), device=x.device)).sum() / n
    pack.add(key, "act_mean", mean)
    pack.add(key, "act_std", var.sqrt())
    if relu_like and out.dim() >= 1 and out.shape[0] > 0:
        alive = (out.detach() != 0).reshape(out.shape[0], -1).any(dim=0)
        pack.add(key, "dead_fraction", 1.0 - alive.float().mean())


class _Device:
    """Reductions as tensor ops on the device, brought to the host in one copy at the end."""

    def __init__(self, dtype) -> None:
        self.pack = _Pack(dtype)

    def histogram(self, key: str, name: str, x, bins: int) -> None:
        _histogram(self.pack, key, name, x.detach().float().reshape(-1), bins)

    def activation(self, key: str, out, bins: int, relu_like: bool) -> None:
        _activation_stats(self.pack, key, out, bins, relu_like)

    def scalar(self, key: str, field: str, value) -> None:
        self.pack.add(key, field, value)

    def result(self) -> dict[tuple[str, str], Any]:
        return self.pack.unpack()


class _Host:
    """The same reductions on the CPU, in numpy at once (no device to wait for, and far fewer
    small-op overheads than torch). Counts are numpy.histogram's own, edges its float32 ones."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def _finite(self, key: str, name: str, x: np.ndarray) -> np.ndarray:
        ok = np.isfinite(x)
        bad = x.size - int(np.count_nonzero(ok))
        self.values[(key, "nonfinite_" + name)] = bad
        return x if not bad else x[ok]

    def histogram(self, key: str, name: str, x, bins: int) -> np.ndarray:
        if isinstance(x, np.ndarray):
            v = x
        else:
            v = x.detach().reshape(-1).float().numpy()
        v = self._finite(key, name, v)
        lo, hi = (np.float32(v.min()), np.float32(v.max())) if v.size else (np.float32(0),) * 2
        if not hi > lo:
            lo, hi = np.float32(lo - 0.5), np.float32(hi + 0.5)
        counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
        self.values[(key, name + ".edges")] = edges.astype(np.float32, copy=False)
        self.values[(key, name + ".counts")] = counts.astype(np.int64, copy=False)
        return v

    def activation(self, key: str, out, bins: int, relu_like: bool) -> None:
        t = out.detach().float()
        v = self.histogram(key, "activations", t.reshape(-1).numpy(), bins)
        if v.size:
            self.values[(key, "act_mean")] = float(v.mean(dtype=np.float64))
            self.values[(key, "act_std")] = float(v.std(dtype=np.float64))
        if relu_like and t.dim() >= 1 and t.shape[0] > 0:
            alive = (t.reshape(t.shape[0], -1).numpy() != 0).any(axis=0)
            self.values[(key, "dead_fraction")] = 1.0 - float(alive.mean())

    def scalar(self, key: str, field: str, value) -> None:
        self.values[(key, field)] = float(value)

    def result(self) -> dict[tuple[str, str], Any]:
        return self.values


# ---------------------------------------------------------------------------------------------
# The observer
# ---------------------------------------------------------------------------------------------


class InsideObserver:
    """Captures summaries of the layers of ``networks`` on chosen batches; see the module doc.

    Made and used on the training thread. ``emit`` gets each event; ``run_dir`` (optional) is
    where the files go. ``dataset``: the (device) dataset, for the validation sample."""

    def __init__(self, networks: dict[str, Any], options: InsideOptions,
                 emit: Callable[[Any], None], run_dir: Path | None = None,
                 dataset: Any = None, device: Any = None) -> None:
        self.networks = dict(networks)
        self.options = options
        self.emit = emit
        self.dir = Path(run_dir) / INSIDE_DIR if run_dir is not None and options.write else None
        self.dataset = dataset
        self.device = device
        self.layers = layers_of(self.networks)
        self._params: dict[int, tuple[str, Any]] = {}  # id(param) -> (layer key, param)
        for layer in self.layers:
            for p in layer.module.parameters():
                self._params.setdefault(id(p), (layer.key, p))
        self._input_shapes: dict[str, list[tuple[tuple[int, ...], Any]]] = {}
        dev_type = getattr(device, "type", None) or _device_of(self.networks)
        self._fdt = torch.float32 if dev_type == "mps" else torch.float64
        self.host = dev_type == "cpu"  # reduce in numpy at once; else on the device
        self._last_step: int | None = None
        self._sampled = False  # the first capture always brings a sample view
        self.clock: Callable[[], float] = time.perf_counter
        self._last_end = 0.0  # clock() when the last capture ended
        self._last_cost = 0.0  # how long it took (the training step included)

    # -- when ----------------------------------------------------------------------------------

    def wants(self, step: int, last_in_epoch: bool, last_in_run: bool = False) -> bool:
        """Capture the batch that makes ``step`` batches done in the run? The first batch seen
        and the run's last always; otherwise each epoch's last and ``every`` batches after the
        previous capture, once the time since the previous capture is at least its cost /
        ``overhead`` (a 2 ms capture waits 100 ms at the default 2 %)."""
        last = self._last_step
        if last is None or last_in_run:
            return True
        if not (last_in_epoch or step - last >= int(self.options.every)):
            return False
        share = self.options.overhead
        return share is None or self.clock() - self._last_end >= self._last_cost / float(share)

    # -- a captured batch ----------------------------------------------------------------------

    @contextmanager
    def capture(self, epoch: int, batch: int, step: int, sample: bool = True
                ) -> Iterator[None]:
        """Around one training step: hooks in, the step, hooks out, then the events (with
        ``sample``, and on the first capture: also the sample view; the trainer asks for it at
        each epoch's end)."""
        started = self.clock()
        bins = int(self.options.bins)
        pack = _Host() if self.host else _Device(self._fdt)
        self._last_step = step
        seen: set[str] = set()
        grads: set[str] = set()
        before: dict[int, Any] = {}
        delta: dict[int, Any] = {}
        handles: list[Any] = []
        me = threading.get_ident()
        out_grad: dict[str, Any] = {}

        def forward_hook(layer: Layer):
            # its output is exactly zero where a unit is off: its dead units are counted
            relu_like = inside_view(layer.type, layer.module) == "relu_like"

            def hook(module, args, output):
                if layer.key in seen or threading.get_ident() != me:
                    return
                out = _first_tensor(output)
                if out is None or not out.is_floating_point():
                    return
                seen.add(layer.key)
                pack.activation(layer.key, out, bins, relu_like)
                if out.requires_grad:
                    def grad_hook(g, key=layer.key):
                        if key not in out_grad:
                            out_grad[key] = g.detach().float().norm()
                    handles.append(out.register_hook(grad_hook))
            return hook

        def record_inputs(name: str):
            def hook(module, args):
                if name not in self._input_shapes:
                    self._input_shapes[name] = [(tuple(a.shape[1:]), a.dtype) for a in args
                                                if isinstance(a, torch.Tensor)]
            return hook

        def pre_step(optimizer, args, kwargs):
            if threading.get_ident() != me:
                return
            stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
            with torch.no_grad():
                for layer, params in self._layer_params:
                    if not any(id(p) in stepped for p in params):
                        continue
                    for p in params:
                        before[id(p)] = p.detach().clone()
                    if self._grad_stats(pack, layer, params, bins):  # as the optimizer sees them
                        grads.add(layer.key)

        def post_step(optimizer, args, kwargs):
            if threading.get_ident() != me:
                return
            for group in optimizer.param_groups:
                for p in group["params"]:
                    old = before.pop(id(p), None)
                    if old is not None:
                        old32 = old.float()
                        delta[id(p)] = ((p.detach().float() - old32).pow(2).sum(),
                                        old32.pow(2).sum())

        from torch.optim.optimizer import (
            register_optimizer_step_post_hook,
            register_optimizer_step_pre_hook,
        )  # deferred: torch loads only when this runs

        try:
            for layer in self.layers:
                handles.append(layer.module.register_forward_hook(forward_hook(layer)))
            for name, net in self.networks.items():
                handles.append(net.register_forward_pre_hook(record_inputs(name)))
            handles.append(register_optimizer_step_pre_hook(pre_step))
            handles.append(register_optimizer_step_post_hook(post_step))
            yield
        finally:
            for h in handles:
                h.remove()
        for key, norm in out_grad.items():
            pack.scalar(key, "out_grad_norm", norm)
        self._parameter_stats(pack, bins, grads, delta)
        values = pack.result()
        summary = InsideSummary(epoch, batch, step, self._summaries(values))
        self.emit(summary)
        sample = (self.sample_view(epoch, batch, step)
                  if (sample or not self._sampled) and self._wants_sample() else None)
        self._sampled = self._sampled or sample is not None
        if sample is not None:
            self.emit(sample)
        if self.dir is not None:
            write_summary(self.dir, summary)
            if sample is not None:
                write_sample(self.dir, sample)
        self._last_end = self.clock()
        self._last_cost = self._last_end - started

    @property
    def _layer_params(self) -> list[tuple[Layer, list[Any]]]:
        if not hasattr(self, "_lp"):
            self._lp = [(layer, ps) for layer in self.layers
                        if (ps := [p for p in layer.module.parameters()
                                   if self._params[id(p)][0] == layer.key])]
        return self._lp

    @staticmethod
    def _grad_stats(pack: Any, layer: Layer, params: list[Any], bins: int) -> bool:
        gs = [p.grad for p in params if p.grad is not None]
        if not gs:
            return False
        g = torch.cat([t.detach().float().reshape(-1) for t in gs])
        pack.histogram(layer.key, "grads", g, bins)
        pack.scalar(layer.key, "grad_norm", g.norm())
        return True

    def _parameter_stats(self, pack: Any, bins: int, grads: set[str],
                         delta: dict[int, Any]) -> None:
        with torch.no_grad():
            for layer, params in self._layer_params:
                w = torch.cat([p.detach().float().reshape(-1) for p in params])
                pack.histogram(layer.key, "weights", w, bins)
                pack.scalar(layer.key, "weight_norm", w.norm())
                if layer.key not in grads:  # no optimizer step seen: the gradients as they are
                    self._grad_stats(pack, layer, params, bins)
                ds = [delta[id(p)] for p in params if id(p) in delta]
                if ds:  # ||w_after - w_before|| / ||w_before|| over the layer's stepped params
                    change = torch.stack([d for d, _ in ds]).sum().sqrt()
                    pack.scalar(layer.key, "update_ratio",
                                change / torch.stack([b for _, b in ds]).sum().sqrt())

    def _summaries(self, values: dict[tuple[str, str], np.ndarray]) -> dict[str, LayerSummary]:
        out = {}
        frozen = {layer.key for layer, params in self._layer_params
                  if not any(p.requires_grad for p in params)}
        for layer in self.layers:
            def get(name: str, key=layer.key) -> float:
                v = values.get((key, name))
                return float(np.asarray(v).reshape(())) if v is not None else math.nan

            def hist(name: str, key=layer.key) -> Histogram | None:
                edges = values.get((key, name + ".edges"))
                if edges is None:
                    return None
                return Histogram(edges.astype(np.float32),
                                 values[(key, name + ".counts")].astype(np.int64))

            def count(name: str) -> int:
                v = get(name)
                return int(v) if math.isfinite(v) else 0

            out[layer.key] = LayerSummary(
                layer.network, layer.path, layer.node, layer.type, layer.kind,
                hist("weights"), hist("grads"), hist("activations"),
                get("weight_norm"), get("grad_norm"), get("update_ratio"), get("out_grad_norm"),
                get("act_mean"), get("act_std"), get("dead_fraction"),
                count("nonfinite_weights"), count("nonfinite_grads"),
                count("nonfinite_activations"), layer.key in frozen)
        return out

    # -- one sample, layer by layer --------------------------------------------------------------

    def _wants_sample(self) -> bool:
        o = self.options
        if o.sample_input is not None:
            return True
        ds = self.dataset
        return o.sample is not None and ds is not None and (ds.n_val > 0 or ds.n_train > 0)

    def _sample(self) -> tuple[Any, int | None]:
        o, ds = self.options, self.dataset
        if o.sample_input is not None:
            x = torch.as_tensor(np.asarray(o.sample_input)).clone()
            if ds is not None and x.is_floating_point() is False and ds.x_val.is_floating_point():
                x = x.float()
            return x.unsqueeze(0).to(self.device or "cpu"), None
        split = "val" if ds.n_val > 0 else "train"
        n = ds.n_val if split == "val" else ds.n_train
        index = min(max(int(o.sample), 0), n - 1)
        x, _ = ds.batch(split, torch.tensor([index], device=ds.x_train.device))
        return x.detach().clone(), index

    def sample_view(self, epoch: int, batch: int, step: int) -> InsideSample:
        """The sample through every network in eval mode under no_grad (train modes restored).

        A network fed data of the sample's shape gets the sample; one fed something else (a
        generator's noise, a decoder's code) gets fixed standard-normal noise of the shape it
        was fed in training (its own generator: torch's global one is never touched)."""
        o = self.options
        x, index = self._sample()
        outputs: dict[str, LayerView] = {}
        attention: dict[str, LayerView] = {}
        inputs: dict[str, np.ndarray] = {}
        notes: list[str] = []
        handles: list[Any] = []

        def out_hook(layer: Layer):
            def hook(module, args, output):
                out = _first_tensor(output)
                if out is None or layer.key in outputs or out.dim() < 1:
                    return
                outputs[layer.key] = _view(out[0], o, layer.kind)
            return hook

        def attn_pre(module, args, kwargs):
            return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

        def attn_hook(key: str):
            def hook(module, args, output):
                w = output[1] if isinstance(output, tuple) and len(output) > 1 else None
                if w is not None and key not in attention:
                    attention[key] = _attention_view(w[0], o)
            return hook

        for layer in self.layers:
            handles.append(layer.module.register_forward_hook(out_hook(layer)))
            for m in layer.module.modules():
                if isinstance(m, nn.MultiheadAttention):
                    handles.append(m.register_forward_pre_hook(attn_pre, with_kwargs=True))
                    handles.append(m.register_forward_hook(attn_hook(layer.key)))
        modes = {m: m.training for net in self.networks.values() for m in net.modules()}
        gen = torch.Generator().manual_seed(0)
        try:
            with torch.no_grad():
                for net in self.networks.values():
                    net.eval()
                for name, net in self.networks.items():
                    fed = self._input_shapes.get(name)
                    if fed is None:
                        notes.append(f"{name}: not run yet (its input is known after a batch)")
                        continue
                    args = []
                    for shape, dtype in fed:
                        if tuple(x.shape[1:]) == shape and x.dtype == dtype:
                            args.append(x.clone())
                        elif dtype.is_floating_point:
                            noise = torch.randn((1, *shape), generator=gen)
                            args.append(noise.to(device=x.device, dtype=dtype))
                        else:
                            notes.append(f"{name}: no sample of its input shape {shape}")
                            args = None
                            break
                    if args is None or not args:
                        continue
                    inputs[name] = args[0][0].float().cpu().numpy()
                    try:
                        net(*args)
                    except Exception as exc:  # noqa: BLE001 - a view is not worth a failed run
                        notes.append(f"{name}: the sample view failed: {type(exc).__name__}: "
                                     f"{exc}")
        finally:
            for h in handles:
                h.remove()
            for m, training in modes.items():
                m.train(training)
        for layer in self.layers:
            if layer.kind == "attention" and layer.key not in attention:
                notes.append(f"{layer.key}: attention weights are not obtainable from this "
                             f"layer (its attention ran without need_weights)")
        ds = self.dataset
        classes = (tuple(str(c) for c in ds.class_names)
                   if ds is not None and getattr(ds, "task", None) == "classification"
                   and getattr(ds, "class_names", None) else ())
        return InsideSample(epoch, batch, step, index, inputs, outputs, attention, tuple(notes),
                            classes)


def _device_of(networks: dict[str, Any]) -> str:
    for net in networks.values():
        for p in net.parameters():
            return p.device.type
    return "cpu"


def _cap_note(shape: tuple[int, ...], kept: tuple[int, ...]) -> str:
    return "" if shape == kept else f"showing {tuple(kept)} of {tuple(shape)}"


def _view(t, o: InsideOptions, kind: str) -> LayerView:
    """One sample's output as a small array: feature maps, a vector, a sequence or flat."""
    t = t.detach().float()
    shape = tuple(t.shape)
    if t.dim() == 3:
        c = min(shape[0], o.max_channels)
        maps = t[:c]
        h, w = shape[1], shape[2]
        if max(h, w) > o.max_side:
            size = (min(h, o.max_side), min(w, o.max_side))
            maps = nn.functional.adaptive_avg_pool2d(maps.unsqueeze(0), size)[0]
        note = _cap_note(shape, tuple(maps.shape))
        if maps.shape[1:] != t.shape[1:]:
            note = f"{note} (average-pooled)"
        return LayerView("maps", maps.cpu().numpy(), shape, note)
    if t.dim() == 1:
        v = t[:o.max_length]
        return LayerView("vector", v.cpu().numpy(), shape, _cap_note(shape, tuple(v.shape)))
    if t.dim() == 2:
        s = t[:o.max_length, :o.max_length]
        return LayerView("sequence", s.cpu().numpy(), shape, _cap_note(shape, tuple(s.shape)))
    v = t.reshape(-1)[:o.max_length]
    return LayerView("flat", v.cpu().numpy(), shape, f"flattened; {_cap_note(shape, tuple(v.shape))}")


def _attention_view(w, o: InsideOptions) -> LayerView:
    w = w.detach().float()
    if w.dim() == 2:  # averaged over heads
        w = w.unsqueeze(0)
    shape = tuple(w.shape)
    k = w[:o.max_channels, :o.max_length, :o.max_length]
    return LayerView("attention", k.cpu().numpy(), shape, _cap_note(shape, tuple(k.shape)))


__all__ = ["InsideObserver", "InsideOptions", "Layer", "StepLayers", "inside_view", "layers_of"]
