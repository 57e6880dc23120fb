"""Import converters: which torch modules, functions and tensor methods import as which catalog
layer, and how their arguments become the layer's parameters (``designer import``,
:mod:`designer.engine.interop.importing`).

A converter is declared next to the layer it makes, in a section at the end of that layer's
category module, as fx2trt's ``@tensorrt_converter(nn.Conv2d)`` sits on its converter::

    @imports_module("torch.nn.ReLU6", layers=("ReLU6",))
    def _relu6_module(m):
        return "ReLU6", {}

    @imports_call("relu6", layers=("ReLU6",))
    def _relu6_call(call):
        return "ReLU6", {}

Each declaration names the layers it may make and the parameters it may set (``layers``,
``params``): a test checks them against the catalog, and each result is checked against them.
Keys are strings (a class's dotted path, an op's name), resolved on first use: declaring a
converter imports no torch, so checking a design stays torch-free; a converter's body runs only
while a model is imported (torch loaded).

Four kinds, one decorator each:

* :func:`imports_module`: a submodule of one of these classes (``"torch.nn.Conv2d"``) is that
  layer; ``convert(module) -> (layer, params)``, or a chain of them whose first layer is the
  module (its name, so its keys) and the others :class:`Made` after it (timm's
  ``BatchNormAct2d``: ``[("BatchNorm2d", ...), Made("SiLU", {}, "{label}_act")]``).
* :func:`imports_call`: a function, operator, tensor method or ATen op by its name (``"relu"``:
  ``F.relu``, ``torch.relu``, ``x.relu()``, ``aten.relu_``); ``convert(call: Call)`` returns
  ``(layer, params)``, a chain of them (:class:`Made` for a name of its own), :data:`SAME` (the
  input itself), :class:`Pieces` (one layer per result of a multi-result op: ``chunk``) or None
  (not this converter's call: reported as unmapped).
* :func:`imports_exported`: a module of an unflattened ``torch.export`` program whose class
  (``type_name()``) export decomposed into several ATen ops (``nn.MultiheadAttention``);
  ``convert(graph: ExportedGraph, rank) -> (layer, params) | None``.
* :func:`imports_weighted_op`: a module of an unflattened program whose graph is one ATen op on
  its own weights (``aten.conv2d(x, self.weight, ...)``); ``convert(op, args, rank)`` with the
  op's name and its arguments after its input (the module's tensors in place) ``-> (layer,
  params) | None``.

A converter that recognises its op but cannot map this use raises :class:`Unmapped` with the
reason, which the import report shows with the module path and source line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .schema import CATALOG

KINDS = ("module", "call", "exported", "weighted_op")


class Unmapped(Exception):
    """An op a converter recognises but cannot map: ``op`` and the ``reason``, for the report."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(reason)
        self.op, self.reason = op, reason


@dataclass(frozen=True)
class Made:
    """One layer a call converter makes, with a name of its own: ``name`` may hold ``{label}``,
    the call's own name (``"{label}_flat"``); without one the layer is named after the call."""

    layer: str
    params: dict[str, Any]
    name: str = "{label}"


@dataclass(frozen=True)
class Pieces:
    """A call with several results (``x.chunk(3, dim)``): result ``i`` used (``[i]``) is the layer
    ``steps[i]`` on the call's input."""

    steps: list[tuple[str, dict[str, Any]]]


#: A call converter's result: the call is its input itself (``x.contiguous()``, ``x[:, :]``).
SAME = object()


@dataclass
class Call:
    """One call in a traced forward, as a call converter sees it. ``args``/``kwargs`` are fx's:
    a tensor argument is an ``torch.fx.Node``; shapes include the batch axis."""

    name: str  # the op's name: "relu", "view", "getitem", "iadd" (an ATen op's without "_")
    target: Any  # the function (F.relu, operator.add), the method's name ("view") or ATen op
    args: tuple
    kwargs: dict[str, Any]
    aten: bool = False  # an op of an exported program's graph
    in_shape: tuple[int, ...] | None = None  # the first argument's, when a tensor
    out_shape: tuple[int, ...] | None = None  # the result's, when one tensor
    out_shapes: list[tuple[int, ...]] = field(default_factory=list)  # several results' shapes
    batch: int = 2  # the batch size the model was probed with
    is_tensor: Callable[[Any], bool] = lambda a: False  # an argument that is a tensor
    tensor_inputs: Callable[[], int] = lambda: 0  # how many tensors feed the layer ("all")

    @property
    def rank(self) -> int:
        return len(self.in_shape) if self.in_shape is not None else 0

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Argument ``i`` (1: the one after the input), or keyword ``name``, or ``default``."""
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(name, default)


@dataclass
class ExportedGraph:
    """A module of an unflattened ``torch.export`` program, as an exported converter sees it:
    its ATen ops (fx nodes; bookkeeping ops such as shape asserts left out) with their names,
    its placeholders, its own tensors (``own``: state_dict key -> tensor) and its get_attr
    nodes (node name -> state_dict key)."""

    type_name: str
    ops: list[Any]
    names: list[str]
    placeholders: list[Any]
    own: dict[str, Any]
    attrs: dict[str, str]

    def op_args(self, op: Any) -> list[Any]:
        """An op's arguments after its input, the module's own tensors in place of their
        get_attr nodes."""
        import torch.fx  # deferred: declaring converters needs no torch; they run with it loaded

        return [self.own[self.attrs[a.name]] if isinstance(a, torch.fx.Node)
                and a.name in self.attrs else a for a in op.args[1:]]


@dataclass(frozen=True)
class Converter:
    """One declared mapping: ``keys`` (class paths, op names) of a ``kind`` to ``layers`` with at
    most ``params``; ``inputs`` says what feeds a call's layer: "first" (its first argument, a
    tensor) or "all" (every tensor argument, a merge); ``attention``: a module called as
    self-attention (query, key and value one tensor, the output's [0] used)."""

    kind: str
    keys: tuple[str, ...]
    layers: tuple[str, ...]
    params: tuple[str, ...]
    convert: Callable[..., Any]
    inputs: str = "first"
    pieces: bool = False
    attention: bool = False

    @property
    def where(self) -> str:
        return f"{self.convert.__module__}.{self.convert.__qualname__}"

    def run(self, *args: Any) -> Any:
        """``convert(*args)``, checked against the declaration (:meth:`check`)."""
        return self.check(self.convert(*args))

    def check(self, made: Any) -> Any:
        """``made`` if each layer in it is one this converter declares, with parameters it
        declares and the catalog entry has; else a ValueError: a declaration that lies would let
        a mapping name a layer or parameter the declarations' test did not see."""
        steps: list[Any] = []
        if isinstance(made, Pieces):
            steps = list(made.steps)
        elif isinstance(made, list):
            steps = made
        elif isinstance(made, (tuple, Made)):
            steps = [made]
        for step in steps:
            layer, params = (step.layer, step.params) if isinstance(step, Made) else step
            spec = CATALOG.get(layer)
            if layer not in self.layers or not set(params) <= set(self.params) or spec is None \
                    or not set(params) <= _names(spec):
                raise ValueError(f"import converter {self.where} made {layer} with "
                                 f"{sorted(params)}: it declares {self.layers} with "
                                 f"{self.params}, and the catalog's {layer} has "
                                 f"{sorted(_names(spec)) if spec else 'no entry'}")
        return made

    def problems(self) -> list[str]:
        """What the declaration names that the catalog lacks: a layer id, or a parameter none
        of the declared layers has."""
        out = [f"{self.where}: no catalog layer {layer!r}" for layer in self.layers
               if layer not in CATALOG]
        known = {p for layer in self.layers if layer in CATALOG
                 for p in _names(CATALOG[layer])}
        out += [f"{self.where}: no declared layer has a parameter {p!r}" for p in self.params
                if p not in known]
        return out


def _names(spec: Any) -> set[str]:
    return {p.name for p in spec.params}


class ConverterRegistry:
    """The converters by kind and key. Module keys (dotted class paths) resolve to classes on
    lookup, once their package is imported: a module's class is imported, and with it the
    packages above its module, so a key whose package is not imported yet (transformers,
    timm: seconds to import) cannot be any module's class and is left for a later lookup."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, Converter]] = {k: {} for k in KINDS}
        self._classes: dict[type, Converter] | None = None
        self._loaded = 0  # len(sys.modules) when _classes was made

    def add(self, conv: Converter) -> Converter:
        table = self._by_key[conv.kind]
        for key in conv.keys:
            if key in table:
                raise ValueError(f"{conv.kind} {key!r} already imports through "
                                 f"{table[key].where}")
        for key in conv.keys:
            table[key] = conv
        self._classes = None
        return conv

    def remove(self, conv: Converter) -> None:
        table = self._by_key[conv.kind]
        for key in conv.keys:
            if table.get(key) is conv:
                del table[key]
        self._classes = None

    def __iter__(self) -> Iterator[Converter]:
        seen: set[int] = set()
        for table in self._by_key.values():
            for conv in table.values():
                if id(conv) not in seen:
                    seen.add(id(conv))
                    yield conv

    def get(self, kind: str, key: str) -> Converter | None:
        return self._by_key[kind].get(key)

    def for_module(self, module: Any) -> Converter | None:
        """The converter of a module's class (exactly that class, not a subclass)."""
        if self._classes is None or self._loaded != len(sys.modules):
            self._loaded = len(sys.modules)
            classes: dict[type, Converter] = {}
            for key, conv in self._by_key["module"].items():
                cls = resolve_class(key) if key.rpartition(".")[0] in sys.modules else None
                if cls is not None:
                    classes[cls] = conv
            self._classes = classes
        return self._classes.get(type(module))


def resolve_class(path: str) -> type | None:
    """The class at a dotted path (``torch.nn.ReLU``, ``torchvision.ops.StochasticDepth``), or
    None when its package is not installed or has no such name."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # optional packages, older versions
        return None


#: Every converter the catalog's category modules declare.
CONVERTERS = ConverterRegistry()


def _declare(kind: str, keys: tuple[str, ...], layers: tuple[str, ...], params: tuple[str, ...],
             **options: Any) -> Callable[[Callable], Callable]:
    if not keys or not isinstance(layers, tuple) or not isinstance(params, tuple):
        raise TypeError("a converter declares keys, and layers and params as tuples")

    def decorate(fn: Callable) -> Callable:
        fn.converter = CONVERTERS.add(Converter(kind, keys, layers, params, fn, **options))
        return fn

    return decorate


def imports_module(*classes: str, layers: tuple[str, ...], params: tuple[str, ...] = (),
                   attention: bool = False) -> Callable[[Callable], Callable]:
    """Declare ``convert(module) -> (layer, params)`` (or a chain, the module first) for
    submodules of these classes (dotted paths). ``attention``: the module is called as
    self-attention (``mha(x, x, x, need_weights=False)[0]``)."""
    return _declare("module", classes, layers, params, attention=attention)


def imports_call(*names: str, layers: tuple[str, ...], params: tuple[str, ...] = (),
                 inputs: str = "first", pieces: bool = False) -> Callable[[Callable], Callable]:
    """Declare ``convert(call: Call)`` for functions, operators, methods and ATen ops of these
    names. ``inputs="all"``: every tensor argument feeds the layer (a merge); ``pieces``: the op
    has several results and returns :class:`Pieces` (mapped before its results are used)."""
    if inputs not in ("first", "all"):
        raise ValueError(f"inputs must be 'first' or 'all', not {inputs!r}")
    return _declare("call", names, layers, params, inputs=inputs, pieces=pieces)


def imports_exported(*type_names: str, layers: tuple[str, ...], params: tuple[str, ...] = (),
                     attention: bool = False) -> Callable[[Callable], Callable]:
    """Declare ``convert(graph: ExportedGraph, rank)`` for exported modules whose class
    (``type_name()``, the defining module's path:
    ``torch.nn.modules.activation.MultiheadAttention``) is one of these. ``attention``: its call
    may pass keyword arguments (query, key and value)."""
    return _declare("exported", type_names, layers, params, attention=attention)


def imports_weighted_op(*aten_names: str, layers: tuple[str, ...], params: tuple[str, ...] = ()
                        ) -> Callable[[Callable], Callable]:
    """Declare ``convert(op, args, rank)`` for an exported module that is one of these ATen ops
    (by name: ``conv2d``) on its own weights."""
    return _declare("weighted_op", aten_names, layers, params)


def one(v: Any) -> Any:
    """An int for a tuple of equal ints, else a list (catalog ``ints`` values)."""
    if isinstance(v, (tuple, list)):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def is_tensor(v: Any) -> bool:
    """``v`` is a torch.Tensor (an exported op's weight argument)."""
    import torch  # deferred: declaring converters needs no torch; they run with it loaded

    return isinstance(v, torch.Tensor)


def axis(d: int, rank: int) -> int:
    """A possibly negative axis ``d`` of a tensor of ``rank``, counted from 0."""
    return d + rank if d < 0 else d


__all__ = ["CONVERTERS", "KINDS", "SAME", "Call", "Converter", "ConverterRegistry",
           "ExportedGraph", "Made",
           "Pieces", "Unmapped", "axis", "imports_call", "imports_exported", "imports_module",
           "imports_weighted_op", "is_tensor", "one", "resolve_class"]
