"""The schema every layer is declared with: :class:`Param`, :class:`LayerSpec`, the registry
:data:`CATALOG` and :func:`register`, the helpers several categories share, and how a layer is
built (:func:`make_module`), run (:func:`apply_layer`) and exported (:func:`code_lines`).

Importing this module does not import torch; building or running a layer does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

# The one schema (shared with the dataset and training settings), re-exported for the categories.
from ..schema import (  # noqa: F401
    MAX_DIM,
    MAX_ELEMENTS,
    PARAM_TYPES,
    REF_TYPES,
    Param,
    _show,
    is_ref,
    ref_problem,
)
from ..schema import copy_value as _copy

if TYPE_CHECKING:  # torch is imported where a module is built or run, never to check a design
    import torch
    from torch import nn

Shape = tuple[int, ...]


class LayerError(ValueError):
    """A layer cannot work with its parameters or its input; the message says what to change."""


# --------------------------------------------------------------------------------------------
# Parameters (declared with :class:`designer.engine.model.schema.Param`)
# --------------------------------------------------------------------------------------------


def pair(v: int | Sequence[int], n: int = 2) -> tuple[int, ...]:
    """Expand an ``ints`` value to a tuple of ``n`` ints."""
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


# --------------------------------------------------------------------------------------------
# Layer specs
# --------------------------------------------------------------------------------------------


@dataclass
class CodeContext:
    """What code export knows when it writes one forward step."""

    out: str  # variable that receives the result
    attr: str  # module attribute, e.g. "self.fc1"
    inputs: list[str]  # variable names of the inputs, in port order
    kwargs: dict[str, Any]  # resolved constructor arguments
    params: dict[str, Any]  # the node's parameters as stored


Resolve = Callable[[dict[str, Any], list[Shape], list[str]], dict[str, Any]]
Apply = Callable[["nn.Module | None", "list[torch.Tensor]", dict[str, Any]], "torch.Tensor"]
Code = Callable[[CodeContext], list[str]]
Infer = Callable[[dict[str, Any], list[Shape]], Shape]
Macs = Callable[[dict[str, Any], list[Shape], Shape], int]
CountParams = Callable[[dict[str, Any]], int]


#: What autograd keeps of the tensors around a layer for its backward pass (:class:`MemoryUse`).
KEEPS = ("input", "output", "both", "nothing")
#: Where a layer's output lives (:class:`MemoryUse`): new storage, a view of its input, or a view
#: of its own weight expanded over the batch (nothing per sample).
OUTPUT_STORAGE = ("new", "view", "weight")
#: What else a layer keeps for backward, each a rule of :mod:`designer.engine.model.memory`: "" nothing
#: more, "indices" its int64 argmax per output value (max pooling), "mask" a one-byte mask per
#: output value (dropout), "recurrent" ``gates`` floats per step in units of hidden_size plus every
#: stacked layer's output, "attention" the attention's projections (and its L x L weights on the
#: unfused path), "transformer" that plus a feed-forward encoder layer's residuals and activations.
MEMORY_EXTRAS = ("", "indices", "mask", "recurrent", "attention", "transformer")
#: How look-inside (:mod:`designer.engine.train.inside`) shows a layer: as a plain "layer", a "norm", an
#: "activation", a "relu_like" activation (its output is exactly zero where a unit is off, so its
#: dead units are counted), "attention" or "recurrent".
INSIDE_VIEWS = ("layer", "norm", "activation", "relu_like", "attention", "recurrent")
#: What a layer's output values are, for the data-fit check of the loss (:class:`DataFit`).
OUTPUT_VALUES = ("values", "probabilities", "log_probabilities")


@dataclass(frozen=True)
class MemoryUse:
    """What memory estimation (:mod:`designer.engine.model.memory`) needs to know of a layer.

    ``keeps``: the tensors autograd keeps for the backward pass, one of :data:`KEEPS` (a Linear
    its input, a ReLU its output); ``output``: one of :data:`OUTPUT_STORAGE`; ``extra``: one of
    :data:`MEMORY_EXTRAS`; ``gates``: for "recurrent", floats kept per time step and direction in
    units of hidden_size.
    """

    keeps: str
    output: str = "new"
    extra: str = ""
    gates: int = 0

    def __post_init__(self) -> None:
        for name, value, allowed in (("keeps", self.keeps, KEEPS),
                                     ("output", self.output, OUTPUT_STORAGE),
                                     ("extra", self.extra, MEMORY_EXTRAS)):
            if value not in allowed:
                raise ValueError(f"MemoryUse.{name}: {value!r} is not one of {allowed}")
        if (self.extra == "recurrent") != (self.gates > 0):
            raise ValueError("MemoryUse: gates > 0 goes with extra 'recurrent', and only with it")


@dataclass(frozen=True)
class DataFit:
    """What the data-fit check (:mod:`designer.engine.train.data.compat`) needs to know of a layer.

    ``size``: where its output size comes from, when the check looks for the layer that decides
    the model's output size: "input" (it keeps its input's size: the check walks back over it),
    the name of the parameter that sets it ("out_features"), or "other" (the check stops there).
    ``values``: what its output is, one of :data:`OUTPUT_VALUES` (a Softmax or Sigmoid gives
    probabilities, a loss that applies softmax itself is warned about them).
    ``vocabulary``: the parameter that counts the token ids it takes (an Embedding's
    num_embeddings): a dataset's vocabulary must fit in it, and example inputs stay below it.
    """

    size: str
    values: str = "values"
    vocabulary: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.size, str) or not self.size:
            raise ValueError("DataFit.size: 'input', 'other' or a parameter name")
        if self.values not in OUTPUT_VALUES:
            raise ValueError(f"DataFit.values: {self.values!r} is not one of {OUTPUT_VALUES}")


#: The LayerSpec fields every entry must declare (None: undeclared, which
#: tests/engine/test_catalog_complete.py refuses): memory, look-inside and data-fit read them.
DECLARED_FIELDS = ("memory", "inside", "data_fit")


@dataclass
class LayerSpec:
    id: str
    display_name: str
    category: str
    doc: str
    params: tuple[Param, ...] = ()
    num_inputs: int = 1  # fixed count; ignored when variadic
    variadic: bool = False  # merge layers: any number of inputs from min_inputs up
    min_inputs: int = 2
    has_output: bool = True
    # Name of the torch.nn class built with the resolved kwargs ("Linear" for nn.Linear); the
    # class itself is :attr:`module`, resolved on first use so that checking needs no torch.
    module_name: str | None = None
    resolve: Resolve | None = None
    apply: Apply | None = None  # forward step; default: module(inputs[0])
    code: Code | None = None  # lines for exported forward; default: out = attr(in0)
    infer: Infer | None = None  # cheap exact output shape (skips the meta forward)
    macs: Macs | None = None
    # Trainable parameters from the resolved kwargs, as torch counts them (skips building the
    # module on meta); None: build it and count.
    count_params: CountParams | None = None
    # The class is one of designer.engine.model.modules (a layer torch.nn lacks), not torch.nn's; code
    # export copies its source into model.py.
    helper_module: bool = False
    # The layer is one nn.Parameter registered on the network itself (``self.<name> =
    # nn.Parameter(...)``, key ``<name>``), not a submodule: ``module_name`` names the function of
    # designer.engine.model.modules that makes it (learned_tensor).
    bare_parameter: bool = False
    # What the readers of a layer need, declared on every entry (None: undeclared; see
    # DECLARED_FIELDS): memory estimation (:class:`MemoryUse`), how look-inside shows it (one of
    # :data:`INSIDE_VIEWS`) and what the data-fit check needs (:class:`DataFit`).
    memory: MemoryUse | None = None
    inside: str | None = None
    data_fit: DataFit | None = None
    input_dtype: str = "float"  # "float", "int" (token ids) or "any"
    output_dtype: str | None = None  # None: same as input
    # The output's dtype ("float" or "int") from the parameters, where they decide it (a
    # Function's program, a Tensor's dtype); None: output_dtype's rule.
    output_dtype_of: Callable[[dict[str, Any]], str] | None = None
    # Whether the output has the batch axis in front, from the parameters (a Tensor layer's
    # whole tensor has none); None: it has.
    batched_of: Callable[[dict[str, Any]], bool] | None = None
    # A bare tensor that is not a learnable nn.Parameter (a Tensor layer's buffer): the __init__
    # statement code export writes for it, from the resolved kwargs and the attribute's literal.
    stored_code: Callable[[dict[str, Any], str], str] | None = None
    input_rank: tuple[int, ...] | None = None  # allowed ranks (without batch); None: any >= 1
    rank_words: str = ""  # what the input should look like, for messages
    key_params: tuple[str, ...] = ()  # shown on the canvas node
    prefix: str = ""  # default node name prefix

    def __post_init__(self) -> None:
        # Layer parameters speak the layer wording ("a positive integer", "... is too large").
        self.params = tuple(p if p.layer else replace(p, layer=True) for p in self.params)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"layer {self.id}: duplicate parameter names")
        if not self.prefix:
            self.prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", self.id).lower()
        if not self.key_params:
            self.key_params = tuple(p.name for p in self.params if not p.inferred)[:3]
        if self.inside is not None and self.inside not in INSIDE_VIEWS:
            raise ValueError(f"layer {self.id}: inside {self.inside!r} is not one of {INSIDE_VIEWS}")
        size = self.data_fit.size if self.data_fit is not None else "input"
        if size not in ("input", "other") and size not in names:
            raise ValueError(f"layer {self.id}: data_fit size {size!r} is 'input', 'other' or "
                             f"one of its parameters")
        vocabulary = self.data_fit.vocabulary if self.data_fit is not None else ""
        if vocabulary and vocabulary not in names:
            raise ValueError(f"layer {self.id}: data_fit vocabulary {vocabulary!r} is not one of "
                             f"its parameters")

    def undeclared(self) -> list[str]:
        """The fields of :data:`DECLARED_FIELDS` this entry leaves undeclared (None)."""
        return [name for name in DECLARED_FIELDS if getattr(self, name) is None]

    @property
    def param_map(self) -> dict[str, Param]:
        return {p.name: p for p in self.params}

    def defaults(self) -> dict[str, Any]:
        return {p.name: _copy(p.default) for p in self.params}

    def input_ports(self, connected: int = 0) -> int:
        """How many input ports to show: fixed count, or for merges one more than connected."""
        if self.variadic:
            return max(self.min_inputs, connected + 1)
        return self.num_inputs

    @functools.cached_property
    def module(self) -> type[nn.Module] | None:
        """The ``torch.nn`` class this layer builds (imports torch), or None for a layer that only
        acts in forward (Reshape, Add, ...)."""
        if self.module_name is None:
            return None
        if self.helper_module or self.bare_parameter:
            from .. import modules  # deferred: torch loads only when this runs

            return getattr(modules, self.module_name)
        from torch import nn  # deferred: torch loads only when this runs

        return getattr(nn, self.module_name)

    @property
    def code_class(self) -> str | None:
        """The constructor name written in exported code, e.g. ``nn.Linear`` (a helper class
        defined in model.py itself goes by its bare name)."""
        if self.module_name is None:
            return None
        return self.module_name if self.helper_module else f"nn.{self.module_name}"

    def validate_params(self, params: Any) -> dict[str, Any]:
        """Full, validated parameter dict (missing ones take their defaults).

        Raises :class:`ParamError` (a ``ValueError``) whose message starts with the parameter
        name, e.g. ``kernel_size: expected a positive integer or a list of 2, got "abc"``.
        """
        if not isinstance(params, dict):
            raise ParamError(None, f"expected an object of parameters, got {_show(params)}")
        known = self.param_map
        for key in params:
            if key not in known:
                allowed = ", ".join(known) or "none"
                raise ParamError(key, f"{self.id} has no parameter {_show(key)} "
                                 f"(its parameters: {allowed})")
        out = {}
        for p in self.params:
            value = params.get(p.name)
            if is_ref(value) and p.type in REF_TYPES:  # a block parameter's value at each use
                why = ref_problem(value)
                if why:
                    raise ParamError(p.name, why)
                out[p.name] = dict(value)
                continue
            try:
                out[p.name] = p.validate(value) if p.name in params else _copy(p.default)
            except ValueError as exc:
                raise ParamError(p.name, str(exc)) from None
        return out


class ParamError(ValueError):
    """A parameter value is refused. ``param`` is its name (None: the whole parameter object);
    the message reads ``name: reason``, with odd names quoted."""

    def __init__(self, param: Any, reason: str) -> None:
        self.param = param
        self.reason = reason
        super().__init__(f"{param_path(param)}: {reason}" if param is not None else reason)


def param_path(name: Any) -> str:
    """A parameter name as it appears in a path: plain when it is an identifier, else quoted."""
    if isinstance(name, str) and name.isidentifier() and name.isascii():
        return name
    return "[" + _show(name) + "]"




class Catalog:
    """The registry of layer specs. Ids are unique; registering one twice is an error."""

    def __init__(self) -> None:
        self._specs: dict[str, LayerSpec] = {}

    def register(self, spec: LayerSpec) -> LayerSpec:
        if spec.id in self._specs:
            raise ValueError(f"layer id {spec.id!r} is already registered")
        self._specs[spec.id] = spec
        return spec

    def unregister(self, layer_id: str) -> LayerSpec:
        """Remove a layer (a plug-in unloading, a test's throwaway entry); returns its spec."""
        return self._specs.pop(layer_id)

    def undeclared(self) -> list[str]:
        """Each field of :data:`DECLARED_FIELDS` an entry leaves undeclared, as "<id>: <field>"
        (empty when every entry says what its readers need)."""
        return [f"{spec.id}: {name}" for spec in self._specs.values()
                for name in spec.undeclared()]

    def __getitem__(self, layer_id: str) -> LayerSpec:
        return self._specs[layer_id]

    def get(self, layer_id: str) -> LayerSpec | None:
        return self._specs.get(layer_id)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def ids(self) -> list[str]:
        return list(self._specs)

    def categories(self) -> dict[str, list[LayerSpec]]:
        out: dict[str, list[LayerSpec]] = {}
        for spec in self._specs.values():
            out.setdefault(spec.category, []).append(spec)
        return out


CATALOG = Catalog()


def register(**kw: Any) -> LayerSpec:
    return CATALOG.register(LayerSpec(**kw))


# --------------------------------------------------------------------------------------------
# Helpers used by the entries
# --------------------------------------------------------------------------------------------


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _infer_size(params: dict, name: str, actual: int, what: str, spec_name: str) -> int:
    """Fill an inferred size from the input, or check that a fixed one agrees."""
    fixed = params.get(name)
    if fixed is None:
        return actual
    if fixed != actual:
        raise LayerError(
            f"{spec_name} receives {actual} {what}, but {name} is fixed to {fixed}: "
            f"set {name} to auto (or {actual}), or change the layer before it"
        )
    return fixed


def _kw(params: dict, *names: str) -> dict[str, Any]:
    out = {}
    for n in names:
        v = params[n]
        out[n] = tuple(v) if isinstance(v, list) else v
    return out


def _spatial_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """Windows along one axis, as torch counts them: floor, or with ``ceil`` (pooling's
    ceil_mode) one more for a partial window, unless that window would start in the right
    padding."""
    span = size + 2 * p - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def _check_window(
    label: str, in_sp: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int],
    d: Sequence[int] | None = None, ceil: bool = False,
) -> None:
    d = d or (1,) * len(k)
    for i, size in enumerate(in_sp):
        if p[i] * 2 > k[i] and label.startswith(("MaxPool", "AvgPool")):
            raise LayerError(f"{label}: padding {p[i]} is more than half of kernel_size {k[i]}: "
                             f"lower padding to at most {k[i] // 2}")
        if _spatial_out(size, k[i], s[i], p[i], d[i], ceil) < 1:
            sp = "x".join(str(v) for v in in_sp)
            ks = "x".join(str((kk - 1) * dd + 1) for kk, dd in zip(k, d))
            raise LayerError(
                f"{label}: input {sp} is smaller than the kernel {ks}, so the output would be "
                f"empty: lower kernel_size, add padding, or remove a pooling layer before it"
            )


def _same_shape(p: dict, ins: list[Shape]) -> Shape:
    """Output shape of layers that keep their input's shape (activations, norms, dropout)."""
    return ins[0]


def _no_params(kw: dict) -> int:
    return 0


def _bias(kw: dict, n: int) -> int:
    return n if kw.get("bias", True) else 0


def _elementwise_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out)


def _default_code(ctx: CodeContext) -> list[str]:
    return [f"{ctx.out} = {ctx.attr}({ctx.inputs[0]})"]


def module_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments without the private keys (``_output`` etc.) used by apply/code."""
    return {k: v for k, v in kwargs.items() if not k.startswith("_")}


def make_module(spec: LayerSpec, kwargs: dict[str, Any], device: str | torch.device | None = None
                ) -> nn.Module | None:
    """Instantiate the layer's torch module (``None`` for layers that only act in forward)."""
    if spec.module_name is None:
        return None
    import torch  # deferred: torch loads only when this runs

    if device is None:
        return spec.module(**module_kwargs(kwargs))
    if torch.device(device).type == "meta":
        # Meta tensors hold no values, so weight initialisation is skipped: it costs time, and
        # a meta normal_() (Embedding's init) imports torch._dynamo and sympy, seconds at first use.
        with torch.device("meta"), _skip_init_on_meta()():
            return spec.module(**module_kwargs(kwargs))
    with torch.device(device):
        return spec.module(**module_kwargs(kwargs))


@functools.cache
def _skip_init_on_meta() -> type:
    """A ``TorchFunctionMode`` that turns in-place operations on meta tensors (``normal_``,
    ``uniform_``, ``fill_``, the ``torch.nn.init`` functions) into no-ops while a module is built
    on the meta device. Defined on first use: the base class is torch's."""
    import torch  # deferred: torch loads only when this runs
    from torch.overrides import TorchFunctionMode  # deferred: torch loads only when this runs

    class SkipInitOnMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name.endswith("_") and not name.endswith("__"):
                target = args[0] if args else kwargs.get("tensor")
                if isinstance(target, torch.Tensor) and target.is_meta:
                    return target
            return func(*args, **kwargs)

    return SkipInitOnMeta


def apply_layer(spec: LayerSpec, module: nn.Module | None, inputs: list[torch.Tensor],
                kwargs: dict[str, Any]) -> torch.Tensor:
    """Run one forward step of a layer."""
    if spec.apply is not None:
        return spec.apply(module, inputs, kwargs)
    return module(inputs[0])


def code_lines(spec: LayerSpec, ctx: CodeContext) -> list[str]:
    """The forward lines code export writes for one layer."""
    return (spec.code or _default_code)(ctx)

