"""Every layer type, declared once, as data.

The palette, the inspector, shape inference, the model builder and code export all read the
entries in :data:`CATALOG`; nothing about a layer is written anywhere else.

A :class:`LayerSpec` says:

* what the layer is (id, display name, category, a one-line doc with the formula),
* its ports (a fixed number of inputs, or a variadic merge with a minimum),
* its parameters (:class:`Param`: type, default, range or choices, a doc line),
* how to turn parameters plus the incoming shapes into concrete constructor arguments
  (``resolve``: fills in sizes that follow from the input and rejects values that disagree),
* its exact output shape (``infer``) and parameter count (``count_params``): formulas, so that
  checking a design never imports torch,
* the torch.nn class it builds (``module_name``; ``module`` is the class, imported on first use),
  how its forward step is applied (``apply``), and the lines code export writes for that step
  (``code``).

Importing this module does not import torch (seconds); building or running a layer does.
Shapes here never include the batch dimension.
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a module is built or run, never to check a design
    import torch
    from torch import nn

Shape = tuple[int, ...]

# Hard ceilings that keep absurd documents from allocating absurd things.
MAX_DIM = 1_000_000  # any single size parameter
MAX_ELEMENTS = 2**31 - 1  # elements of one sample's tensor


class LayerError(ValueError):
    """A layer cannot work with its parameters or its input; the message says what to change."""


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

PARAM_TYPES = ("int", "float", "bool", "choice", "ints", "shape", "dims")


@dataclass(frozen=True)
class Param:
    """One typed parameter of a layer.

    Types:
      ``int``    an integer in [min, max]; ``inferred`` ints may be ``None`` meaning "auto from input";
                 ``optional`` ints may be ``None`` meaning "not set".
      ``float``  a finite number in [min, max].
      ``bool``   true/false.
      ``choice`` one of ``choices`` (strings).
      ``ints``   an int, or a list of ``length`` ints (kernel sizes, strides, padding).
      ``shape``  a non-empty list of positive ints (``allow_minus_one`` lets one entry be -1).
      ``dims``   a list of ints (a permutation of non-batch axes, numbered from 1).
    """

    name: str
    type: str
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    length: int = 1
    inferred: bool = False
    optional: bool = False
    allow_minus_one: bool = False

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")

    def validate(self, value: Any) -> Any:
        """Return ``value`` normalised (tuples become lists) or raise ``ValueError`` saying why."""
        t = self.type
        if value is None:
            if self.inferred or self.optional:
                return None
            raise ValueError(f"expected {self.describe()}, got null")
        if t == "int":
            return self._check_int(value)
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float range (10**400)
                raise ValueError(f"expected {self.describe()}, got {_show(value)}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {_show(value)}")
            self._check_range(value)
            return value
        if t == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {_show(value)}")
            return value
        if t == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}, got {_show(value)}")
            return value
        if t == "ints":
            if isinstance(value, (list, tuple)):
                if len(value) != self.length:
                    raise ValueError(
                        f"expected an integer or a list of {self.length} integers, got {_show(value)}"
                    )
                return [self._check_int(v) for v in value]
            return self._check_int(value)
        if t == "shape":
            if not isinstance(value, (list, tuple)) or not value or len(value) > 8:
                raise ValueError(f"expected a list of 1 to 8 positive integers, got {_show(value)}")
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"expected a list of positive integers, got {_show(value)}")
                if v == -1 and self.allow_minus_one:
                    out.append(v)
                    continue
                if v < 1 or v > MAX_DIM:
                    raise ValueError(
                        f"every size must be between 1 and {MAX_DIM:,}, got {_show(value)}"
                    )
                out.append(v)
            if out.count(-1) > 1:
                raise ValueError("at most one size can be -1")
            if math.prod(abs(v) for v in out) > MAX_ELEMENTS:
                raise ValueError(f"shape {_show(value)} has too many elements")
            return out
        if t == "dims":
            if not isinstance(value, (list, tuple)) or not value or len(value) > 8:
                raise ValueError(f"expected a list of axis numbers, got {_show(value)}")
            if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                raise ValueError(f"expected a list of axis numbers, got {_show(value)}")
            if sorted(value) != list(range(1, len(value) + 1)):
                raise ValueError(
                    f"expected a permutation of 1..{len(value)} (axis 0 is the batch), "
                    f"got {_show(value)}"
                )
            return list(value)
        raise AssertionError(t)  # pragma: no cover

    def _check_int(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected {self.describe()}, got {_show(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            self._check_range(value)
            value = int(value)
        self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"expected {self.describe()}, got {_show(value)}")
        if self.max is not None and value > self.max:
            top = f"{int(self.max):,}" if float(self.max).is_integer() else f"{self.max:g}"
            raise ValueError(f"{_show(value)} is too large: {self.name} can be at most {top}")

    def describe(self) -> str:
        """Words for what this parameter accepts (used in error messages and tooltips)."""
        t = self.type
        if t in ("int", "ints"):
            # The upper bound has its own message ("... is too large: ... at most N").
            if self.min == 1:
                base = "a positive integer"
            elif self.min == 0:
                base = "a non-negative integer"
            else:
                base = "an integer" + _range_words(self.min, self.max)
            return base if t == "int" else f"{base} or a list of {self.length}"
        if t == "float":
            return "a number" + _range_words(self.min, self.max)
        if t == "bool":
            return "true or false"
        if t == "choice":
            return "one of " + ", ".join(self.choices)
        if t == "shape":
            return "a list of positive integers"
        return "a permutation of axis numbers"


def _range_words(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo:g} to {hi:g}"
    if lo is not None:
        return f" of at least {lo:g}"
    if hi is not None:
        return f" of at most {hi:g}"
    return ""


def _show(value: Any) -> str:
    """A short, safe rendering of a user value for messages."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        # every control character, line separator and lone surrogate escaped: one printable line
        return '"' + text.encode("unicode_escape", "backslashreplace").decode("ascii") \
            .replace('"', '\\"') + '"'
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 64:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    # The class is one of designer.engine.modules (a layer torch.nn lacks), not torch.nn's; code
    # export copies its source into model.py.
    helper_module: bool = False
    input_dtype: str = "float"  # "float", "int" (token ids) or "any"
    output_dtype: str | None = None  # None: same as input
    input_rank: tuple[int, ...] | None = None  # allowed ranks (without batch); None: any >= 1
    rank_words: str = ""  # what the input should look like, for messages
    key_params: tuple[str, ...] = ()  # shown on the canvas node
    prefix: str = ""  # default node name prefix

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"layer {self.id}: duplicate parameter names")
        if not self.prefix:
            self.prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", self.id).lower()
        if not self.key_params:
            self.key_params = tuple(p.name for p in self.params if not p.inferred)[:3]

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
        if self.helper_module:
            from . import modules

            return getattr(modules, self.module_name)
        from torch import nn

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
            try:
                out[p.name] = p.validate(params[p.name]) if p.name in params else _copy(p.default)
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


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, (list, tuple)) else v


class Catalog:
    """The registry of layer specs. Ids are unique; registering one twice is an error."""

    def __init__(self) -> None:
        self._specs: dict[str, LayerSpec] = {}

    def register(self, spec: LayerSpec) -> LayerSpec:
        if spec.id in self._specs:
            raise ValueError(f"layer id {spec.id!r} is already registered")
        self._specs[spec.id] = spec
        return spec

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


def _conv_shape(dims: int, transposed: bool = False) -> Infer:
    """Exact output shape of a convolution (the formulas of the torch.nn docs)."""

    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = ins[0]
        k, s, pd, d = (pair(p[n], dims) for n in ("kernel_size", "stride", "padding", "dilation"))
        if transposed:
            op = pair(p["output_padding"], dims)
            sp = [(shape[1 + i] - 1) * s[i] - 2 * pd[i] + d[i] * (k[i] - 1) + op[i] + 1
                  for i in range(dims)]
        else:
            sp = [_spatial_out(shape[1 + i], k[i], s[i], pd[i], d[i]) for i in range(dims)]
        return (p["out_channels"], *sp)

    return infer


def _pool_shape(dims: int) -> Infer:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = ins[0]
        k = pair(p["kernel_size"], dims)
        s = pair(p["stride"], dims) if p["stride"] is not None else k
        pd = pair(p["padding"], dims)
        return (*shape[:-dims], *(_spatial_out(shape[-dims + i], k[i], s[i], pd[i],
                                               ceil=p["ceil_mode"])
                                  for i in range(dims)))

    return infer


def _no_params(kw: dict) -> int:
    return 0


def _bias(kw: dict, n: int) -> int:
    return n if kw.get("bias", True) else 0


def _conv_count(kw: dict) -> int:
    return (kw["out_channels"] * (kw["in_channels"] // kw["groups"]) * math.prod(kw["kernel_size"])
            + _bias(kw, kw["out_channels"]))


def _convt_count(kw: dict) -> int:
    return (kw["in_channels"] * (kw["out_channels"] // kw["groups"]) * math.prod(kw["kernel_size"])
            + _bias(kw, kw["out_channels"]))


def _recurrent_params(gates: int) -> CountParams:
    def count(kw: dict) -> int:
        h, dirs = kw["hidden_size"], 2 if kw["bidirectional"] else 1
        total = 0
        for layer in range(kw["num_layers"]):
            i = kw["input_size"] if layer == 0 else h * dirs
            total += dirs * gates * h * (i + h + 2)  # W_ih, W_hh, b_ih, b_hh
        return total

    return count


def _mha_params(e: int, bias: bool) -> int:
    return 4 * e * e + (4 * e if bias else 0)  # in_proj (Q, K, V) and out_proj


def _linear_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    return p["in_features"] * p["out_features"] * math.prod(out[:-1])


def _conv_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    k = math.prod(pair(p["kernel_size"], len(out) - 1))
    return (p["in_channels"] // p["groups"]) * k * math.prod(out)


def _convt_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    k = math.prod(pair(p["kernel_size"], len(out) - 1))
    return p["in_channels"] * (p["out_channels"] // p["groups"]) * k * math.prod(ins[0][1:])


def _elementwise_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out)


def _pool_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    """Each output value reads one kernel window (comparisons or additions)."""
    return math.prod(out) * math.prod(pair(p["kernel_size"], len(out) - 1))


def _default_code(ctx: CodeContext) -> list[str]:
    return [f"{ctx.out} = {ctx.attr}({ctx.inputs[0]})"]


# --------------------------------------------------------------------------------------------
# Input / Output
# --------------------------------------------------------------------------------------------

register(
    id="Input",
    display_name="Input",
    category="Input / Output",
    doc="A model input: one sample's shape without the batch dimension; float, or int64 token ids.",
    params=(
        Param("shape", "shape", [1, 28, 28], "Shape of one sample, without the batch dimension"),
        Param("dtype", "choice", "float32", "float32 for data, int64 for token ids (Embedding)",
              choices=("float32", "int64")),
    ),
    num_inputs=0,
    infer=lambda p, ins: tuple(p["shape"]),
    key_params=("shape",),
    prefix="input",
)

register(
    id="Output",
    display_name="Output",
    category="Input / Output",
    doc="A model output: the tensor that arrives here is returned by forward().",
    num_inputs=1,
    has_output=False,
    input_dtype="any",
    apply=lambda m, xs, kw: xs[0],
    code=lambda ctx: [f"{ctx.out} = {ctx.inputs[0]}"],
    infer=lambda p, ins: ins[0],
    prefix="output",
)

# --------------------------------------------------------------------------------------------
# Linear and convolution
# --------------------------------------------------------------------------------------------


def _resolve_linear(p, ins, dts):
    shape = ins[0]
    kw = _kw(p, "out_features", "bias")
    kw = {"in_features": _infer_size(p, "in_features", shape[-1], "features", "Linear"), **kw}
    return kw


register(
    id="Linear",
    display_name="Linear",
    category="Core",
    doc="Fully connected layer: y = xW^T + b, applied to the last dimension.",
    params=(
        Param("in_features", "int", None, "Size of each input sample (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("out_features", "int", 10, "Size of each output sample", min=1, max=MAX_DIM),
        Param("bias", "bool", True, "Learn an additive bias b"),
    ),
    module_name="Linear",
    resolve=_resolve_linear,
    count_params=lambda kw: kw["in_features"] * kw["out_features"] + _bias(kw, kw["out_features"]),
    infer=lambda p, ins: (*ins[0][:-1], p["out_features"]),
    macs=_linear_macs,
    key_params=("out_features",),
    prefix="fc",
)


def _make_conv_resolver(dims: int, label: str, transposed: bool = False):
    def resolve(p, ins, dts):
        shape = ins[0]
        ch = _infer_size(p, "in_channels", shape[0], "channels", label)
        k, s, pd, d = (pair(p[n], dims) for n in ("kernel_size", "stride", "padding", "dilation"))
        if ch % p["groups"] or p["out_channels"] % p["groups"]:
            raise LayerError(
                f"{label}: in_channels ({ch}) and out_channels ({p['out_channels']}) must both be "
                f"divisible by groups ({p['groups']})"
            )
        if transposed:
            op = pair(p["output_padding"], dims)
            for i in range(dims):
                if op[i] >= max(s[i], d[i]):
                    raise LayerError(f"{label}: output_padding must be smaller than stride or dilation")
                size = (shape[1 + i] - 1) * s[i] - 2 * pd[i] + d[i] * (k[i] - 1) + op[i] + 1
                if size < 1:
                    raise LayerError(f"{label}: padding is too large, the output would be empty")
        else:
            _check_window(label, shape[1:], k, s, pd, d)
        kw = {"in_channels": ch, "out_channels": p["out_channels"], "kernel_size": k, "stride": s,
              "padding": pd}
        if transposed:
            kw["output_padding"] = pair(p["output_padding"], dims)
        kw.update({"dilation": d, "groups": p["groups"], "bias": p["bias"]})
        return kw

    return resolve


def _conv_params(dims: int, default_out: int, default_k: int, transposed: bool = False):
    n = dims
    ps = [
        Param("in_channels", "int", None, "Input channels (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("out_channels", "int", default_out, "Number of filters (output channels)", min=1,
              max=MAX_DIM),
        Param("kernel_size", "ints", default_k, "Size of the filter window", min=1, max=4096,
              length=n),
        Param("stride", "ints", 1, "Step of the filter window", min=1, max=4096, length=n),
        Param("padding", "ints", 0, "Zeros added to each side of the input", min=0, max=4096,
              length=n),
    ]
    if transposed:
        ps.append(Param("output_padding", "ints", 0, "Extra size added to one side of the output",
                        min=0, max=4096, length=n))
    ps += [
        Param("dilation", "ints", 1, "Spacing between filter taps", min=1, max=4096, length=n),
        Param("groups", "int", 1, "Blocked connections from input to output channels", min=1,
              max=MAX_DIM),
        Param("bias", "bool", True, "Learn an additive bias per output channel"),
    ]
    return tuple(ps)


register(
    id="Conv1d",
    display_name="Conv1d",
    category="Convolution",
    doc="1-D convolution over (channels, length): y = W * x + b; "
    "length_out = (length + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.",
    params=_conv_params(1, 16, 3),
    module_name="Conv1d",
    resolve=_make_conv_resolver(1, "Conv1d"),
    count_params=_conv_count,
    infer=_conv_shape(1),
    macs=_conv_macs,
    input_rank=(2,),
    rank_words="(channels, length)",
    key_params=("out_channels", "kernel_size", "stride"),
    prefix="conv",
)

register(
    id="Conv2d",
    display_name="Conv2d",
    category="Convolution",
    doc="2-D convolution over (channels, height, width): y = W * x + b; per side "
    "out = (in + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.",
    params=_conv_params(2, 16, 3),
    module_name="Conv2d",
    resolve=_make_conv_resolver(2, "Conv2d"),
    count_params=_conv_count,
    infer=_conv_shape(2),
    macs=_conv_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("out_channels", "kernel_size", "stride", "padding"),
    prefix="conv",
)

register(
    id="ConvTranspose2d",
    display_name="ConvTranspose2d",
    category="Convolution",
    doc="Transposed 2-D convolution (learned upsampling); per side out = (in-1)*stride - "
    "2*padding + dilation*(kernel_size-1) + output_padding + 1.",
    params=_conv_params(2, 16, 2, transposed=True),
    module_name="ConvTranspose2d",
    resolve=_make_conv_resolver(2, "ConvTranspose2d", transposed=True),
    count_params=_convt_count,
    infer=_conv_shape(2, transposed=True),
    macs=_convt_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("out_channels", "kernel_size", "stride"),
    prefix="deconv",
)

# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _make_pool_resolver(label: str, dims: int):
    def resolve(p, ins, dts):
        k = pair(p["kernel_size"], dims)
        s = pair(p["stride"], dims) if p["stride"] is not None else k
        pd = pair(p["padding"], dims)
        _check_window(label, ins[0][1:], k, s, pd, ceil=p["ceil_mode"])
        kw = {"kernel_size": k, "stride": s, "padding": pd, "ceil_mode": p["ceil_mode"]}
        if "count_include_pad" in p:
            kw["count_include_pad"] = p["count_include_pad"]
        return kw

    return resolve


_CEIL_MODE = Param("ceil_mode", "bool", False,
                   "Round the output size up: a last, partial window is kept")


def _pool_params():
    return (
        Param("kernel_size", "ints", 2, "Size of the pooling window", min=1, max=4096, length=2),
        Param("stride", "ints", None, "Step of the window (empty: same as kernel_size)", min=1,
              max=4096, length=2, optional=True),
        Param("padding", "ints", 0, "Padding added to each side", min=0, max=2048, length=2),
        _CEIL_MODE,
    )


def _pool1d_params():
    return (
        Param("kernel_size", "ints", 2, "Size of the pooling window", min=1, max=4096, length=1),
        Param("stride", "ints", None, "Step of the window (empty: same as kernel_size)", min=1,
              max=4096, length=1, optional=True),
        Param("padding", "ints", 0, "Padding added to each side", min=0, max=2048, length=1),
        _CEIL_MODE,
    )


register(
    id="MaxPool1d",
    display_name="MaxPool1d",
    category="Pooling",
    doc="Max over sliding windows along the length: y = max over window of x; "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=_pool1d_params(),
    module_name="MaxPool1d",
    resolve=_make_pool_resolver("MaxPool1d", 1),
    count_params=_no_params,
    infer=_pool_shape(1),
    macs=_pool_macs,
    input_rank=(2,),
    rank_words="(channels, length)",
    key_params=("kernel_size",),
    prefix="pool",
)

register(
    id="MaxPool2d",
    display_name="MaxPool2d",
    category="Pooling",
    doc="Max over sliding 2-D windows: y = max over window of x; per side "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=_pool_params(),
    module_name="MaxPool2d",
    resolve=_make_pool_resolver("MaxPool2d", 2),
    count_params=_no_params,
    infer=_pool_shape(2),
    macs=_pool_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("kernel_size",),
    prefix="pool",
)

register(
    id="AvgPool2d",
    display_name="AvgPool2d",
    category="Pooling",
    doc="Average over sliding 2-D windows: y = mean over window of x; per side "
    "out = (in + 2*padding - kernel_size) // stride + 1 (rounded up with ceil_mode).",
    params=(*_pool_params(),
            Param("count_include_pad", "bool", True,
                  "Padding zeros count in each average (off: divide by the real values only)")),
    module_name="AvgPool2d",
    resolve=_make_pool_resolver("AvgPool2d", 2),
    count_params=_no_params,
    infer=_pool_shape(2),
    macs=_pool_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=("kernel_size",),
    prefix="avgpool",
)

register(
    id="AdaptiveAvgPool2d",
    display_name="AdaptiveAvgPool2d",
    category="Pooling",
    doc="Average pooling to a fixed output size (1 = global average pooling).",
    params=(Param("output_size", "ints", 1, "Output height and width", min=1, max=4096, length=2),),
    module_name="AdaptiveAvgPool2d",
    resolve=lambda p, ins, dts: {"output_size": pair(p["output_size"], 2)},
    count_params=_no_params,
    infer=lambda p, ins: (ins[0][0], *pair(p["output_size"], 2)),
    macs=lambda p, ins, out: math.prod(ins[0]),
    input_rank=(3,),
    rank_words="(channels, height, width)",
    prefix="gap",
)

# --------------------------------------------------------------------------------------------
# Normalisation and regularisation
# --------------------------------------------------------------------------------------------


def _bn_params():
    return (
        Param("num_features", "int", None, "Channels to normalise (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=1e-12,
              max=1),
        Param("momentum", "float", 0.1, "Update rate of the running statistics", min=0, max=1),
        Param("affine", "bool", True, "Learn a scale (gamma) and shift (beta)"),
    )


def _make_bn_resolver(label: str):
    def resolve(p, ins, dts):
        n = _infer_size(p, "num_features", ins[0][0], "channels", label)
        return {"num_features": n, "eps": p["eps"], "momentum": p["momentum"],
                "affine": p["affine"]}

    return resolve


register(
    id="BatchNorm1d",
    display_name="BatchNorm1d",
    category="Normalization",
    doc="Batch normalisation of (features) or (channels, length): y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=_bn_params(),
    module_name="BatchNorm1d",
    resolve=_make_bn_resolver("BatchNorm1d"),
    count_params=lambda kw: 2 * kw["num_features"] if kw["affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    input_rank=(1, 2),
    rank_words="(features) or (channels, length)",
    key_params=(),
    prefix="bn",
)

register(
    id="BatchNorm2d",
    display_name="BatchNorm2d",
    category="Normalization",
    doc="Batch normalisation per channel of (channels, height, width): y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=_bn_params(),
    module_name="BatchNorm2d",
    resolve=_make_bn_resolver("BatchNorm2d"),
    count_params=lambda kw: 2 * kw["num_features"] if kw["affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    input_rank=(3,),
    rank_words="(channels, height, width)",
    key_params=(),
    prefix="bn",
)


def _resolve_layernorm(p, ins, dts):
    n = _infer_size(p, "normalized_shape", ins[0][-1], "features in its last dimension", "LayerNorm")
    return {"normalized_shape": n, "eps": p["eps"], "elementwise_affine": p["elementwise_affine"]}


register(
    id="LayerNorm",
    display_name="LayerNorm",
    category="Normalization",
    doc="Layer normalisation over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta.",
    params=(
        Param("normalized_shape", "int", None, "Size of the last dimension (auto: from the input)",
              min=1, max=MAX_DIM, inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=0, max=1),
        Param("elementwise_affine", "bool", True, "Learn a scale and shift"),
    ),
    module_name="LayerNorm",
    resolve=_resolve_layernorm,
    count_params=lambda kw: 2 * kw["normalized_shape"] if kw["elementwise_affine"] else 0,
    infer=_same_shape,
    macs=_elementwise_macs,
    key_params=(),
    prefix="ln",
)

def _resolve_groupnorm(p, ins, dts):
    c = _infer_size(p, "num_channels", ins[0][0], "channels", "GroupNorm")
    if c % p["num_groups"]:
        raise LayerError(
            f"GroupNorm: {c} channels do not split into num_groups {p['num_groups']}: pick a "
            f"group count that divides {c}"
        )
    return {"num_groups": p["num_groups"], "num_channels": c, "eps": p["eps"],
            "affine": p["affine"]}


register(
    id="GroupNorm",
    display_name="GroupNorm",
    category="Normalization",
    doc="Normalises each group of channels per sample: y = (x - mean) / sqrt(var + eps) * gamma "
    "+ beta, statistics over (C/groups, *).",
    params=(
        Param("num_groups", "int", 1, "Groups the channels are split into (must divide them)",
              min=1, max=MAX_DIM),
        Param("num_channels", "int", None, "Channels (auto: from the input)", min=1, max=MAX_DIM,
              inferred=True),
        Param("eps", "float", 1e-5, "Added to the variance for numerical stability", min=1e-12,
              max=1),
        Param("affine", "bool", True, "Learn a scale and shift per channel"),
    ),
    module_name="GroupNorm",
    resolve=_resolve_groupnorm,
    count_params=lambda kw: 2 * kw["num_channels"] if kw["affine"] else 0,
    infer=lambda p, ins: (_resolve_groupnorm(p, ins, []), ins[0])[1],
    macs=_elementwise_macs,
    key_params=("num_groups",),
    prefix="gn",
)

register(
    id="StochasticDepth",
    display_name="StochasticDepth",
    category="Normalization",
    doc="Drops a residual branch while training (torchvision.ops.StochasticDepth): y = x * b / (1-p), "
    "b ~ Bernoulli(1-p) per sample (row) or per batch; y = x in eval.",
    params=(
        Param("p", "float", 0.1, "Probability of dropping the branch", min=0, max=1),
        Param("mode", "choice", "row", "row: one draw per sample; batch: one for the whole batch",
              choices=("row", "batch")),
    ),
    module_name="StochasticDepth",
    helper_module=True,
    resolve=lambda p, ins, dts: {"p": p["p"], "mode": p["mode"]},
    count_params=_no_params,
    infer=_same_shape,
    macs=_elementwise_macs,
    key_params=("p", "mode"),
    prefix="drop_path",
)

register(
    id="Dropout",
    display_name="Dropout",
    category="Normalization",
    doc="During training, zeroes each element with probability p and scales the rest by 1/(1-p).",
    params=(Param("p", "float", 0.5, "Probability of zeroing an element", min=0, max=0.999),),
    module_name="Dropout",
    resolve=lambda p, ins, dts: {"p": p["p"]},
    count_params=_no_params,
    infer=_same_shape,
    input_dtype="float",
    prefix="dropout",
)

# --------------------------------------------------------------------------------------------
# Shape manipulation
# --------------------------------------------------------------------------------------------

register(
    id="Flatten",
    display_name="Flatten",
    category="Shape",
    doc="Flattens everything but the batch into one dimension: (C, H, W) -> (C*H*W).",
    module_name="Flatten",
    count_params=_no_params,
    resolve=lambda p, ins, dts: _resolve_flatten(ins[0]),
    infer=lambda p, ins: (_resolve_flatten(ins[0]), (math.prod(ins[0]),))[1],
    input_dtype="any",
    prefix="flatten",
)


def _resolve_flatten(shape: Shape) -> dict:
    if not shape:
        raise LayerError("Flatten receives a single number per sample, shape (), which "
                         "nn.Flatten refuses: remove the Flatten, or use a Reshape to [1]")
    return {}


def _reshape_target(p: dict, shape: Shape) -> Shape:
    target = list(p["shape"])
    total = math.prod(shape)
    if -1 in target:
        known = math.prod(v for v in target if v != -1)
        if total % known:
            raise LayerError(
                f"Reshape cannot fit {total} elements {fmt_shape(shape)} into "
                f"{fmt_shape(target)}: the other sizes must multiply to a divisor of {total}"
            )
        target[target.index(-1)] = total // known
    if math.prod(target) != total:
        raise LayerError(
            f"Reshape receives {total} elements {fmt_shape(shape)} but the target shape "
            f"{fmt_shape(target)} holds {math.prod(target)}: change the target so the sizes multiply "
            f"to {total}"
        )
    return tuple(target)


register(
    id="Reshape",
    display_name="Reshape",
    category="Shape",
    doc="Reshapes each sample to a new shape with the same number of elements (one size may be -1).",
    params=(Param("shape", "shape", [1, 28, 28], "Target shape without the batch dimension",
                  allow_minus_one=True),),
    resolve=lambda p, ins, dts: {"shape": _reshape_target(p, ins[0])},
    apply=lambda m, xs, kw: xs[0].reshape(xs[0].shape[0], *kw["shape"]),
    code=lambda c: [
        (f"{c.out} = {c.inputs[0]}.reshape({c.inputs[0]}.size(0), "
         f"{', '.join(str(v) for v in c.kwargs['shape'])})")
    ],
    infer=lambda p, ins: _reshape_target(p, ins[0]),
    input_dtype="any",
    key_params=("shape",),
    prefix="reshape",
)


def _resolve_permute(p, ins, dts):
    if len(p["dims"]) != len(ins[0]):
        raise LayerError(
            f"Permute has dims {p['dims']} for {len(p['dims'])} axes, but receives "
            f"{fmt_shape(ins[0])} with {len(ins[0])}: list each of the axes 1..{len(ins[0])} once"
        )
    return {"dims": (0, *p["dims"])}


register(
    id="Permute",
    display_name="Permute",
    category="Shape",
    doc="Reorders the non-batch axes, numbered from 1: dims [2, 1] turns (L, C) into (C, L).",
    params=(Param("dims", "dims", [2, 1], "New order of the axes 1..n (axis 0 is the batch)"),),
    resolve=_resolve_permute,
    apply=lambda m, xs, kw: xs[0].permute(*kw["dims"]),
    code=lambda c: [f"{c.out} = {c.inputs[0]}.permute({', '.join(map(str, c.kwargs['dims']))})"],
    infer=lambda p, ins: tuple(ins[0][d - 1] for d in _resolve_permute(p, ins, [])["dims"][1:]),
    input_dtype="any",
    key_params=("dims",),
    prefix="permute",
)


def _axis(label: str, p: dict, shape: Shape) -> int:
    """The non-batch axis ``p["dim"]`` (numbered from 1), checked against the input."""
    d = p["dim"]
    if not 1 <= d <= len(shape):
        raise LayerError(
            f"{label} along axis {d}, but the input {fmt_shape(shape)} has axes 1..{len(shape)} "
            f"(axis 0 is the batch): set dim to one of them"
        )
    return d


def _resolve_select(p, ins, dts):
    d = _axis("Select", p, ins[0])
    size, i = ins[0][d - 1], p["index"]
    if not -size <= i < size:
        raise LayerError(
            f"Select: index {i} is outside axis {d} of size {size} (input {fmt_shape(ins[0])}): "
            f"use an index from 0 to {size - 1}, or from -{size} to -1 counting from the end"
        )
    return {"dim": d, "index": i}


def _index_text(dim: int, item: str) -> str:
    """``[:, item]``: indexing of axis ``dim`` (numbered with the batch as 0) in exported code."""
    return "[" + ", ".join([":"] * dim + [item]) + "]"


def _index(dim: int, item: Any) -> tuple:
    return (slice(None),) * dim + (item,)


register(
    id="Select",
    display_name="Select",
    category="Shape",
    doc="Takes one position along a non-batch axis and drops that axis: y = x[:, index] for "
    "dim 1 (ViT's class token), (L, E) -> (E); a negative index counts from the end.",
    params=(
        Param("dim", "int", 1, "Axis to select along (1 is the first after the batch)", min=1,
              max=8),
        Param("index", "int", 0, "Position along that axis (negative: from the end)",
              min=-MAX_DIM, max=MAX_DIM),
    ),
    resolve=_resolve_select,
    apply=lambda m, xs, kw: xs[0][_index(kw["dim"], kw["index"])],
    code=lambda c: [f"{c.out} = {c.inputs[0]}{_index_text(c.kwargs['dim'], str(c.kwargs['index']))}"],
    infer=lambda p, ins: tuple(s for i, s in enumerate(ins[0])
                               if i != _resolve_select(p, ins, [])["dim"] - 1),
    input_dtype="any",
    key_params=("dim", "index"),
    prefix="select",
)


def _resolve_slice(p, ins, dts):
    d = _axis("Slice", p, ins[0])
    size = ins[0][d - 1]
    start, end, step = p["start"], p["end"], p["step"]
    n = len(range(*slice(start, end, step).indices(size)))
    if n < 1:
        shown = f"{start}:{'' if end is None else end}" + (f":{step}" if step != 1 else "")
        raise LayerError(
            f"Slice keeps nothing: [{shown}] of axis {d} (size {size}, input "
            f"{fmt_shape(ins[0])}) is empty: "
            f"choose start and end so that start < end within 0..{size} (negative values count "
            f"from the end)"
        )
    return {"dim": d, "start": start, "end": end, "step": step, "_size": n}


def _slice_text(kw: dict) -> str:
    start = "" if kw["start"] == 0 else str(kw["start"])
    end = "" if kw["end"] is None else str(kw["end"])
    return f"{start}:{end}" + (f":{kw['step']}" if kw["step"] != 1 else "")


def _slice_shape(p, ins):
    kw = _resolve_slice(p, ins, [])
    out = list(ins[0])
    out[kw["dim"] - 1] = kw["_size"]
    return tuple(out)


register(
    id="Slice",
    display_name="Slice",
    category="Shape",
    doc="Keeps a range along a non-batch axis, as Python slicing: y = x[:, start:end:step] for "
    "dim 1; (C, H, W) -> (C/2, H, W) with start 0, end C/2 (ShuffleNet's channel split).",
    params=(
        Param("dim", "int", 1, "Axis to slice (1 is the first after the batch)", min=1, max=8),
        Param("start", "int", 0, "First position kept (negative: from the end)", min=-MAX_DIM,
              max=MAX_DIM),
        Param("end", "int", None, "Position after the last one kept, negative from the end "
              "(empty: to the end)", min=-MAX_DIM, max=MAX_DIM, optional=True),
        Param("step", "int", 1, "Keep every step-th position", min=1, max=MAX_DIM),
    ),
    resolve=_resolve_slice,
    apply=lambda m, xs, kw: xs[0][_index(kw["dim"], slice(kw["start"], kw["end"], kw["step"]))],
    code=lambda c: [f"{c.out} = {c.inputs[0]}{_index_text(c.kwargs['dim'], _slice_text(c.kwargs))}"],
    infer=_slice_shape,
    input_dtype="any",
    key_params=("dim", "start", "end"),
    prefix="slice",
)


def _resolve_mean(p, ins, dts):
    d = p["dim"]
    if not 1 <= d <= len(ins[0]):
        raise LayerError(
            f"Mean over axis {d}, but the input {fmt_shape(ins[0])} has axes 1..{len(ins[0])} "
            f"(axis 0 is the batch)"
        )
    return {"dim": d}


register(
    id="Mean",
    display_name="Mean (pool over axis)",
    category="Shape",
    doc="Averages over one non-batch axis, e.g. pooling over time: (L, E) -> (E) with dim 1.",
    params=(Param("dim", "int", 1, "Axis to average over (1 is the first after the batch)", min=1,
                  max=8),),
    resolve=_resolve_mean,
    apply=lambda m, xs, kw: xs[0].mean(dim=kw["dim"]),
    code=lambda c: [f"{c.out} = {c.inputs[0]}.mean(dim={c.kwargs['dim']})"],
    infer=lambda p, ins: tuple(s for i, s in enumerate(ins[0]) if i != _resolve_mean(p, ins, [])["dim"] - 1),
    macs=lambda p, ins, out: math.prod(ins[0]),
    key_params=("dim",),
    prefix="mean",
)

register(
    id="Upsample",
    display_name="Upsample",
    category="Shape",
    doc="Upsamples (channels, height, width) by a factor: nearest copies pixels, bilinear "
    "interpolates; out = floor(in * scale_factor).",
    params=(
        Param("scale_factor", "float", 2.0, "Multiplier for height and width", min=0.01, max=64),
        Param("mode", "choice", "nearest", "Interpolation", choices=("nearest", "bilinear")),
    ),
    module_name="Upsample",
    resolve=lambda p, ins, dts: {"scale_factor": p["scale_factor"], "mode": p["mode"]},
    count_params=_no_params,
    # torch truncates size * scale_factor (a meta forward of interpolate imports torch._dynamo:
    # seconds on first use)
    infer=lambda p, ins: (ins[0][0], *(int(v * p["scale_factor"]) for v in ins[0][1:])),
    input_rank=(3,),
    rank_words="(channels, height, width)",
    macs=_elementwise_macs,
    prefix="upsample",
)

# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


def _activation(id_: str, module: str, doc: str, params: tuple[Param, ...] = (),
                args: tuple[str, ...] = (), prefix: str = "") -> None:
    register(
        id=id_,
        display_name=id_,
        category="Activation",
        doc=doc,
        params=params,
        module_name=module,
        resolve=lambda p, ins, dts: _kw(p, *args),
        count_params=_no_params,
        infer=_same_shape,
        macs=_elementwise_macs,
        key_params=args,
        prefix=prefix or id_.lower(),
    )


def _resolve_dim(p, ins, dts, *, label):
    nd = len(ins[0]) + 1
    if not -nd <= p["dim"] < nd:
        raise LayerError(f"{label}: dim {p['dim']} is out of range for a {nd}-D input (with batch)")
    if p["dim"] in (0, -nd):
        raise LayerError(f"{label}: dim 0 is the batch; use 1 or -1")
    return {"dim": p["dim"]}


_activation("ReLU", "ReLU", "Rectified linear unit: y = max(0, x).", prefix="relu")
_activation("LeakyReLU", "LeakyReLU", "y = x if x > 0 else negative_slope * x.",
            (Param("negative_slope", "float", 0.01, "Slope for negative inputs", min=0, max=1),),
            ("negative_slope",), prefix="lrelu")
_activation("ELU", "ELU", "y = x if x > 0 else alpha * (exp(x) - 1).",
            (Param("alpha", "float", 1.0, "Saturation value for negative inputs", min=0,
                   max=100),), ("alpha",))
_activation("GELU", "GELU", "Gaussian error linear unit: y = x * Phi(x).",
            (Param("approximate", "choice", "none", "Exact, or the tanh approximation",
                   choices=("none", "tanh")),), ("approximate",))
_activation("Sigmoid", "Sigmoid", "Logistic function: y = 1 / (1 + exp(-x)).")
_activation("Tanh", "Tanh", "Hyperbolic tangent: y = tanh(x), in (-1, 1).")
_activation("ReLU6", "ReLU6", "ReLU capped at 6 (MobileNetV2): y = min(max(0, x), 6).",
            prefix="relu6_")
_activation("SiLU", "SiLU", "Sigmoid linear unit (swish; EfficientNet): y = x * sigmoid(x).")
_activation("Hardswish", "Hardswish", "Piecewise swish (MobileNetV3): y = x * ReLU6(x + 3) / 6.")
_activation("Hardsigmoid", "Hardsigmoid",
            "Piecewise sigmoid (MobileNetV3 gates): y = ReLU6(x + 3) / 6.")
_activation("Mish", "Mish", "y = x * tanh(softplus(x)).")
_activation("SELU", "SELU", "Self-normalising ELU: y = 1.0507 * (x if x > 0 else "
            "1.67326 * (exp(x) - 1)).")
_activation("Softplus", "Softplus", "Smooth ReLU: y = log(1 + exp(beta * x)) / beta, and y = x "
            "where beta * x > threshold.",
            (Param("beta", "float", 1.0, "Sharpness: larger is closer to ReLU", min=0.001,
                   max=100),
             Param("threshold", "float", 20.0, "Above beta * x > threshold the output is x",
                   min=0, max=100)),
            ("beta", "threshold"))


def _resolve_prelu(p, ins, dts):
    n, channels = p["num_parameters"], ins[0][0]
    if n not in (1, channels):
        raise LayerError(
            f"PReLU: num_parameters {n} must be 1 (one slope shared) or the number of channels, "
            f"{channels} (axis 1 of the input {fmt_shape(ins[0])}): set it to 1 or {channels}"
        )
    return {"num_parameters": n, "init": p["init"]}


register(
    id="PReLU",
    display_name="PReLU",
    category="Activation",
    doc="Leaky ReLU with a learned slope a (one, or one per channel): y = x if x > 0 else a * x.",
    params=(
        Param("num_parameters", "int", 1, "Learned slopes: 1 (shared) or the number of channels",
              min=1, max=MAX_DIM),
        Param("init", "float", 0.25, "Initial slope for negative inputs", min=0, max=1),
    ),
    module_name="PReLU",
    resolve=_resolve_prelu,
    count_params=lambda kw: kw["num_parameters"],
    infer=lambda p, ins: (_resolve_prelu(p, ins, []), ins[0])[1],
    macs=_elementwise_macs,
    key_params=("num_parameters",),
    prefix="prelu",
)

register(
    id="Identity",
    display_name="Identity",
    category="Core",
    doc="Passes its input through unchanged: y = x (a placeholder, e.g. a removed head).",
    module_name="Identity",
    resolve=lambda p, ins, dts: {},
    count_params=_no_params,
    infer=_same_shape,
    macs=lambda p, ins, out: 0,
    input_dtype="any",
    prefix="identity",
)

register(
    id="Parameter",
    display_name="Parameter",
    category="Core",
    doc="A learnable tensor with no input (class token, position embedding, layer scale): "
    "y = W repeated over the batch, (N, *shape); its state is one tensor <name>.weight of shape.",
    params=(
        Param("shape", "shape", [1, 16], "The tensor's shape, without the batch dimension"),
        Param("init", "choice", "normal", "Initial values: zeros, ones, constant (value), "
              "normal(0, std), uniform(-std, std), or normal(0, std) cut to [-2, 2]",
              choices=("zeros", "ones", "constant", "normal", "uniform", "trunc_normal")),
        Param("std", "float", 0.02, "Spread of normal, uniform and trunc_normal", min=0,
              max=1e6),
        Param("value", "float", 1.0, "Every initial value, for init constant (ConvNeXt's layer "
              "scale: 1e-6)", min=-1e6, max=1e6),
    ),
    num_inputs=0,
    module_name="LearnedTensor",
    helper_module=True,
    resolve=lambda p, ins, dts: {"shape": tuple(p["shape"]), "init": p["init"], "std": p["std"],
                                 "value": p["value"]},
    # the module is called with the batch size of the model's first input (build and codegen
    # hand a source layer that input)
    apply=lambda m, xs, kw: m(xs[0].size(0)),
    code=lambda c: [f"{c.out} = {c.attr}({c.inputs[0]}.size(0))"],
    count_params=lambda kw: math.prod(kw["shape"]),
    infer=lambda p, ins: tuple(p["shape"]),
    macs=lambda p, ins, out: 0,
    key_params=("shape", "init"),
    prefix="param",
)

for _id, _mod, _doc in (
    ("Softmax", "Softmax", "y_i = exp(x_i) / sum_j exp(x_j) along dim (probabilities)."),
    ("LogSoftmax", "LogSoftmax", "y_i = x_i - log(sum_j exp(x_j)) along dim (pairs with NLL loss)."),
):
    register(
        id=_id,
        display_name=_id,
        category="Activation",
        doc=_doc,
        params=(Param("dim", "int", 1, "Dimension to normalise over (1: first after the batch)",
                      min=-8, max=8),),
        module_name=_mod,
        resolve=functools.partial(_resolve_dim, label=_id),
        count_params=_no_params,
        infer=_same_shape,
        macs=_elementwise_macs,
        key_params=("dim",),
        prefix=_id.lower(),
    )

# --------------------------------------------------------------------------------------------
# Embedding, recurrent and attention layers
# --------------------------------------------------------------------------------------------

register(
    id="Embedding",
    display_name="Embedding",
    category="Recurrent & Attention",
    doc="Looks up a learned vector for each token id: (L) int64 -> (L, embedding_dim).",
    params=(
        Param("num_embeddings", "int", 1000, "Vocabulary size (token ids 0..n-1)", min=1,
              max=10_000_000),
        Param("embedding_dim", "int", 64, "Size of each vector", min=1, max=MAX_DIM),
        Param("padding_idx", "int", None, "Token id whose vector stays zero (empty: none)", min=0,
              max=10_000_000, optional=True),
    ),
    module_name="Embedding",
    resolve=lambda p, ins, dts: _resolve_embedding(p),
    count_params=lambda kw: kw["num_embeddings"] * kw["embedding_dim"],
    infer=lambda p, ins: (*ins[0], p["embedding_dim"]),
    macs=lambda p, ins, out: 0,
    input_dtype="int",
    output_dtype="float",
    key_params=("num_embeddings", "embedding_dim"),
    prefix="embed",
)


def _resolve_embedding(p):
    if p["padding_idx"] is not None and p["padding_idx"] >= p["num_embeddings"]:
        raise LayerError(
            f"Embedding: padding_idx {p['padding_idx']} must be below num_embeddings "
            f"{p['num_embeddings']}"
        )
    return _kw(p, "num_embeddings", "embedding_dim", "padding_idx")


def _recurrent(id_: str, module: str, doc: str, extra: tuple[Param, ...] = ()):
    def resolve(p, ins, dts):
        size = _infer_size(p, "input_size", ins[0][-1], "features per time step", id_)
        if p["dropout"] > 0 and p["num_layers"] == 1:
            raise LayerError(f"{id_}: dropout acts between stacked layers; set num_layers above 1 "
                             f"or dropout to 0")
        kw = {"input_size": size, "hidden_size": p["hidden_size"], "num_layers": p["num_layers"]}
        if "nonlinearity" in p:
            kw["nonlinearity"] = p["nonlinearity"]
        kw.update({"batch_first": True, "dropout": p["dropout"],
                   "bidirectional": p["bidirectional"]})
        return kw

    def out_size(p):
        return p["hidden_size"] * (2 if p["bidirectional"] else 1)

    def apply(m, xs, kw):
        seq, h = m(xs[0])
        if kw["_output"] == "sequence":
            return seq
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        import torch

        return torch.cat((h[-2], h[-1]), dim=1) if kw["bidirectional"] else h[-1]

    def code(c):
        x = c.inputs[0]
        if c.params["output"] == "sequence":
            return [f"{c.out}, _ = {c.attr}({x})"]
        h = "(h_n, _)" if id_ == "LSTM" else "h_n"
        last = ("torch.cat((h_n[-2], h_n[-1]), dim=1)" if c.kwargs["bidirectional"] else "h_n[-1]")
        return [f"_, {h} = {c.attr}({x})", f"{c.out} = {last}  # final hidden state"]

    def infer(p, ins):
        resolve(p, ins, [])
        if p["output"] == "sequence":
            return (*ins[0][:-1], out_size(p))
        return (out_size(p),)

    def macs(p, ins, out):
        gates = {"LSTM": 4, "GRU": 3}.get(id_, 1)
        h, steps, d = p["hidden_size"], ins[0][0], 2 if p["bidirectional"] else 1
        size = p["input_size"] or ins[0][-1]
        total = 0
        for layer in range(p["num_layers"]):
            i = size if layer == 0 else h * d
            total += gates * (i * h + h * h) * steps * d
        return total

    params = (
        Param("input_size", "int", None, "Features per time step (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("hidden_size", "int", 128, "Size of the hidden state", min=1, max=MAX_DIM),
        Param("num_layers", "int", 1, "Stacked recurrent layers", min=1, max=64),
        *extra,
        Param("bidirectional", "bool", False, "Also read the sequence backwards (doubles the output)"),
        Param("dropout", "float", 0.0, "Dropout between stacked layers", min=0, max=0.999),
        Param("output", "choice", "last", "Whole sequence (L, H), or the final hidden state (H)",
              choices=("last", "sequence")),
    )
    register(
        id=id_,
        display_name=id_,
        category="Recurrent & Attention",
        doc=doc,
        params=params,
        module_name=module,
        resolve=lambda p, ins, dts: {**resolve(p, ins, dts), "_output": p["output"]},
        count_params=_recurrent_params({"LSTM": 4, "GRU": 3}.get(id_, 1)),
        apply=apply,
        code=code,
        infer=infer,
        macs=macs,
        input_rank=(2,),
        rank_words="(sequence length, features)",
        key_params=("hidden_size", "num_layers", "output"),
        prefix=id_.lower(),
    )


_recurrent("RNN", "RNN", "Elman RNN over (L, features): h_t = tanh(W_ih x_t + W_hh h_(t-1) + b).",
           (Param("nonlinearity", "choice", "tanh", "Activation of the hidden state",
                  choices=("tanh", "relu")),))
_recurrent("LSTM", "LSTM", "Long short-term memory over (L, features), with input/forget/output gates and a cell state.")
_recurrent("GRU", "GRU", "Gated recurrent unit over (L, features), with reset and update gates.")


def _resolve_mha(p, ins, dts):
    e = _infer_size(p, "embed_dim", ins[0][-1], "features per position", "MultiheadAttention")
    if e % p["num_heads"]:
        raise LayerError(
            f"MultiheadAttention: embed_dim {e} is not divisible by num_heads {p['num_heads']}: "
            f"pick a head count that divides {e}"
        )
    return {"embed_dim": e, "num_heads": p["num_heads"], "dropout": p["dropout"],
            "bias": p["bias"], "batch_first": True}


def _attention_macs(e: int, steps: int) -> int:
    return 4 * e * e * steps + 2 * steps * steps * e


register(
    id="MultiheadAttention",
    display_name="MultiheadAttention",
    category="Recurrent & Attention",
    doc="Self-attention over (L, E): softmax(QK^T / sqrt(d)) V with num_heads heads; Q, K, V from the same input.",
    params=(
        Param("embed_dim", "int", None, "Features per position (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("num_heads", "int", 4, "Parallel attention heads (must divide embed_dim)", min=1,
              max=1024),
        Param("dropout", "float", 0.0, "Dropout on the attention weights", min=0, max=0.999),
        Param("bias", "bool", True, "Learn biases in the projections"),
    ),
    module_name="MultiheadAttention",
    resolve=_resolve_mha,
    count_params=lambda kw: _mha_params(kw["embed_dim"], kw["bias"]),
    apply=lambda m, xs, kw: m(xs[0], xs[0], xs[0], need_weights=False)[0],
    code=lambda c: [
        f"{c.out}, _ = {c.attr}({c.inputs[0]}, {c.inputs[0]}, {c.inputs[0]}, need_weights=False)"
    ],
    infer=lambda p, ins: (_resolve_mha(p, ins, []), ins[0])[1],
    macs=lambda p, ins, out: _attention_macs(ins[0][-1], ins[0][0]),
    input_rank=(2,),
    rank_words="(sequence length, features)",
    key_params=("num_heads",),
    prefix="attn",
)


def _resolve_tel(p, ins, dts):
    e = _infer_size(p, "d_model", ins[0][-1], "features per position", "TransformerEncoderLayer")
    if e % p["nhead"]:
        raise LayerError(
            f"TransformerEncoderLayer: d_model {e} is not divisible by nhead {p['nhead']}: "
            f"pick a head count that divides {e}"
        )
    return {"d_model": e, "nhead": p["nhead"], "dim_feedforward": p["dim_feedforward"],
            "dropout": p["dropout"], "activation": p["activation"],
            "layer_norm_eps": p["layer_norm_eps"], "batch_first": True,
            "norm_first": p["norm_first"]}


register(
    id="TransformerEncoderLayer",
    display_name="TransformerEncoderLayer",
    category="Recurrent & Attention",
    doc="Self-attention plus a feed-forward block, each with a residual connection and LayerNorm, over (L, E).",
    params=(
        Param("d_model", "int", None, "Features per position (auto: from the input)", min=1,
              max=MAX_DIM, inferred=True),
        Param("nhead", "int", 4, "Attention heads (must divide d_model)", min=1, max=1024),
        Param("dim_feedforward", "int", 256, "Hidden size of the feed-forward block", min=1,
              max=MAX_DIM),
        Param("dropout", "float", 0.1, "Dropout probability", min=0, max=0.999),
        Param("activation", "choice", "relu", "Feed-forward activation", choices=("relu", "gelu")),
        Param("norm_first", "bool", False, "LayerNorm before each block (pre-norm)"),
        Param("layer_norm_eps", "float", 1e-5, "Added to the variance in both LayerNorms",
              min=1e-12, max=1),
    ),
    module_name="TransformerEncoderLayer",
    resolve=_resolve_tel,
    # attention, two feed-forward Linears, two LayerNorms
    count_params=lambda kw: (_mha_params(kw["d_model"], True)
                             + 2 * kw["d_model"] * kw["dim_feedforward"] + kw["dim_feedforward"]
                             + kw["d_model"] + 4 * kw["d_model"]),
    infer=lambda p, ins: (_resolve_tel(p, ins, []), ins[0])[1],
    macs=lambda p, ins, out: _attention_macs(ins[0][-1], ins[0][0])
    + 2 * ins[0][-1] * p["dim_feedforward"] * ins[0][0],
    input_rank=(2,),
    rank_words="(sequence length, features)",
    key_params=("nhead", "dim_feedforward"),
    prefix="encoder",
)

# --------------------------------------------------------------------------------------------
# Merges
# --------------------------------------------------------------------------------------------


def _broadcast(label: str, ins: list[Shape]) -> Shape:
    """The shape of an element-wise merge under torch's broadcasting rules, applied to the
    non-batch axes: equal ranks, and on each axis equal sizes or a 1 that stretches
    ((16, 8, 8) * (16, 1, 1) is squeeze-and-excitation). Ranks must agree because every input
    also carries the batch axis in front: a lower rank would line the batch up with a feature axis."""
    out = list(ins[0])
    for i, s in enumerate(ins[1:], start=1):
        if len(s) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(s, out)):
            raise LayerError(
                f"{label} needs inputs whose shapes match or broadcast (each size equal, or 1 in "
                f"one of them), but input 1 is {fmt_shape(ins[0])} and input {i + 1} is "
                f"{fmt_shape(s)}: make the branches agree (e.g. a 1x1 Conv2d or Linear on the "
                f"skip path)"
            )
        out = [max(a, b) if 1 in (a, b) else a for a, b in zip(out, s)]
    return tuple(out)


def _resolve_concat(p, ins, dts):
    d = p["dim"]
    rank = len(ins[0])
    if not 1 <= d <= rank:
        raise LayerError(
            f"Concat along axis {d}, but the inputs have axes 1..{rank} (axis 0 is the batch)"
        )
    for i, s in enumerate(ins):
        if len(s) != rank or any(a != b for j, (a, b) in enumerate(zip(s, ins[0])) if j != d - 1):
            raise LayerError(
                f"Concat along axis {d} needs the other sizes to agree, but input 1 is "
                f"{fmt_shape(ins[0])} and input {i + 1} is {fmt_shape(s)}"
            )
    return {"dim": d}


def _concat_shape(p, ins):
    d = _resolve_concat(p, ins, [])["dim"] - 1
    out = list(ins[0])
    out[d] = sum(s[d] for s in ins)
    return tuple(out)


register(
    id="Add",
    display_name="Add",
    category="Merge",
    doc="Element-wise sum of two or more inputs (residual connections): y = a + b; sizes of 1 "
    "broadcast as in torch: (C, H, W) + (C, 1, 1) -> (C, H, W).",
    variadic=True,
    resolve=lambda p, ins, dts: (_broadcast("Add", ins), {})[1],
    apply=lambda m, xs, kw: _fold(xs, lambda a, b: a + b),
    code=lambda c: [f"{c.out} = {' + '.join(c.inputs)}"],
    infer=lambda p, ins: _broadcast("Add", ins),
    macs=lambda p, ins, out: math.prod(out) * (len(ins) - 1),
    prefix="add",
)

register(
    id="Multiply",
    display_name="Multiply",
    category="Merge",
    doc="Element-wise product of two or more inputs (gating): y = a * b; sizes of 1 broadcast "
    "as in torch: (C, H, W) * (C, 1, 1) -> (C, H, W).",
    variadic=True,
    resolve=lambda p, ins, dts: (_broadcast("Multiply", ins), {})[1],
    apply=lambda m, xs, kw: _fold(xs, lambda a, b: a * b),
    code=lambda c: [f"{c.out} = {' * '.join(c.inputs)}"],
    infer=lambda p, ins: _broadcast("Multiply", ins),
    macs=lambda p, ins, out: math.prod(out) * (len(ins) - 1),
    prefix="mul",
)

register(
    id="Concat",
    display_name="Concat",
    category="Merge",
    doc="Joins two or more inputs along an axis (1 = channels/features); the other sizes must agree.",
    params=(Param("dim", "int", 1, "Axis to join along (1 is the first after the batch)", min=1,
                  max=8),),
    variadic=True,
    resolve=_resolve_concat,
    apply=lambda m, xs, kw: _cat(xs, kw["dim"]),
    code=lambda c: [f"{c.out} = torch.cat(({', '.join(c.inputs)}), dim={c.kwargs['dim']})"],
    infer=_concat_shape,
    key_params=("dim",),
    prefix="concat",
)


def _cat(xs: list[torch.Tensor], dim: int) -> torch.Tensor:
    import torch

    return torch.cat(xs, dim=dim)


def _fold(xs: list[torch.Tensor], op: Callable) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # used with fullmatch: "$" matches before a final newline
# Names that would collide with nn.Module attributes or read badly in exported code. The
# attributes of an nn.Module instance (torch 2.x; "training" too) are listed here rather than read
# from torch, so that checking a name needs no torch; tests/engine/test_catalog.py fails when an
# installed torch adds one. (Names starting with "_" are refused by _IDENT anyway.)
TORCH_MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
    "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
    "to_empty", "train", "training", "type", "xpu", "zero_grad",
})
RESERVED_NAMES = frozenset(
    TORCH_MODULE_ATTRIBUTES
    | {"self", "torch", "nn", "F", "math", "model", "inputs", "x"}
    | {"forward_all"}  # designer.engine.build.GraphModule
)


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a node, or None if it can."""
    if not isinstance(name, str) or not name:
        return "a name must be a non-empty text"
    if len(name) > 64:
        return "a name must be at most 64 characters"
    if not _IDENT.fullmatch(name):
        return (f"{_show(name)} is not a valid name: use letters, digits and underscores, "
                f"starting with a letter")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{_show(name)} is a Python keyword"
    if name in RESERVED_NAMES:
        return f"{_show(name)} is reserved (it clashes with torch.nn.Module or the exported code)"
    return None


def module_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments without the private keys (``_output`` etc.) used by apply/code."""
    return {k: v for k, v in kwargs.items() if not k.startswith("_")}


def make_module(spec: LayerSpec, kwargs: dict[str, Any], device: str | torch.device | None = None
                ) -> nn.Module | None:
    """Instantiate the layer's torch module (``None`` for layers that only act in forward)."""
    if spec.module_name is None:
        return None
    import torch

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
    import torch
    from torch.overrides import TorchFunctionMode

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


__all__ = [
    "CATALOG",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "RESERVED_NAMES",
    "TORCH_MODULE_ATTRIBUTES",
    "Catalog",
    "CodeContext",
    "LayerError",
    "LayerSpec",
    "Param",
    "ParamError",
    "Shape",
    "apply_layer",
    "code_lines",
    "fmt_shape",
    "make_module",
    "module_kwargs",
    "name_problem",
    "pair",
    "param_path",
    "register",
]
