"""One typed declaration for everything a user sets: :class:`Param`.

Layer parameters (``designer.engine.model.catalog``) and dataset/training settings
(``designer.engine.train.config``, where ``Setting`` is this same class) are declared with it: a type, a
default, a one-line doc, a range or a list of choices. :meth:`Param.validate` checks a value and
says what was expected; :meth:`Param.describe` puts that in words for messages and tooltips. The
schema knows nothing about widgets: ``designer.ui.widgets`` maps each type to an editor.

Types:
  ``int``    an integer in [min, max]; ``inferred`` ints may be null meaning "auto from input";
             ``optional`` ones null meaning "not set".
  ``float``  a finite number in [min, max].
  ``bool``   true/false.
  ``choice`` one of ``choices`` (strings).
  ``ints``   an int, or a list of ``length`` ints (kernel sizes, strides, padding).
  ``shape``  a non-empty list of positive ints (``allow_minus_one`` lets one entry be -1).
  ``dims``   a list of ints (a permutation of non-batch axes, numbered from 1).
  ``text``   a string (paths, column names).
  ``texts``  a list of strings.
  ``size``   ``[height, width]``, two integers from 1 to 4096.

Importing this module imports neither torch nor Qt.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .program import check_program

PARAM_TYPES = ("int", "float", "bool", "choice", "ints", "shape", "dims", "text", "texts", "size",
               "values", "program", "numbers")
#: Most entries of a ``values`` parameter (a block use's arguments).
MAX_VALUES_ENTRIES = 64

# Hard ceilings that keep absurd documents from allocating absurd things.
MAX_DIM = 1_000_000  # any single size parameter
MAX_ELEMENTS = 2**31 - 1  # elements of one sample's tensor
MAX_TEXT = 4096  # characters of one text value


@dataclass(frozen=True)
class Param:
    """One typed, documented value a user sets: a layer parameter or a dataset/training setting.

    ``applies`` limits when it matters, as ``((other_name, (values...)), ...)`` within the same
    section (the settings form greys it out otherwise); validation checks it regardless.

    ``layer`` picks the wording of layer parameters (``LayerSpec`` sets it): an integer from 1
    (or 0) reads "a positive (non-negative) integer", a value above ``max`` is refused with
    "N is too large: name can be at most M", and null is never offered in words. Settings
    (``layer=False``) name their whole range ("expected an integer from 1 to 100000, got 0") and
    say "or null" when they are ``optional``.
    """

    name: str
    type: str
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    label: str = ""
    applies: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    length: int = 1
    inferred: bool = False
    allow_minus_one: bool = False
    layer: bool = False
    # Left out of a saved file while it has its default (a parameter added later, that most
    # layers never set: an Output's aux_weight), so existing files and templates stay as written.
    saved_if_set: bool = False

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")

    @property
    def key(self) -> str:
        """The name, as settings call it (``Setting.key``)."""
        return self.name

    @property
    def title(self) -> str:
        """What a form labels it: ``label``, else the name in words ("Batch size")."""
        return self.label or self.name.replace("_", " ").capitalize()

    def applies_to(self, section: dict[str, Any]) -> bool:
        """Whether this value matters given the other values of its section."""
        return all(section.get(k) in values for k, values in self.applies)

    def describe(self) -> str:
        """Words for what this accepts (used in error messages and tooltips)."""
        t = self.type
        if t in ("int", "ints"):
            # A layer's upper bound has its own message ("... is too large: ... at most N").
            if self.layer and self.min == 1:
                base = "a positive integer"
            elif self.layer and self.min == 0:
                base = "a non-negative integer"
            else:
                base = "an integer" + _range_words(self.min, self.max)
            if t == "ints":
                base += f" or a list of {self.length}"
        elif t == "float":
            base = "a number" + _range_words(self.min, self.max)
        elif t == "bool":
            base = "true or false"
        elif t == "choice":
            base = "one of " + ", ".join(self.choices)
        elif t == "shape":
            base = "a list of positive integers"
        elif t == "dims":
            base = "a permutation of axis numbers"
        elif t == "text":
            base = "a text"
        elif t == "texts":
            base = "a list of texts"
        elif t == "values":
            base = "an object of named values (numbers, true/false or texts)"
        elif t == "numbers":
            base = "a list of numbers"
        elif t == "program":
            base = "a program: an object of inputs, steps and output"
        else:
            base = "[height, width], two positive integers"
        return base + (" or null" if self.optional and not self.layer else "")

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
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
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
            return self._check_shape(value)
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
        if t == "text":
            if not isinstance(value, str):
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            if len(value) > MAX_TEXT:
                raise ValueError(f"expected at most {MAX_TEXT} characters")
            _check_text(value)
            return value
        if t == "texts":
            if (not isinstance(value, (list, tuple)) or len(value) > 100_000
                    or not all(isinstance(v, str) for v in value)):
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            for v in value:
                _check_text(v)
            return list(value)
        if t == "values":
            return _check_values(value)
        if t == "program":
            return check_program(value)
        if t == "numbers":
            return _check_numbers(value)
        # size
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096
                       for v in value)):
            raise ValueError(f"expected [height, width], two integers from 1 to 4096, "
                             f"got {_show(value)}")
        return list(value)

    def _check_int(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected {self.describe()}, got {_show(value)}")
        if isinstance(value, float):
            if not value.is_integer():  # NaN and infinities included
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            self._check_range(value)  # as written: 1e+300 is refused as 1e+300
            value = int(value)
        self._check_range(value)
        return value

    def _check_shape(self, value: Any) -> list[int]:
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
                raise ValueError(f"every size must be between 1 and {MAX_DIM:,}, got {_show(value)}")
            out.append(v)
        if out.count(-1) > 1:
            raise ValueError("at most one size can be -1")
        if math.prod(abs(v) for v in out) > MAX_ELEMENTS:
            raise ValueError(f"shape {_show(value)} has too many elements")
        return out

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"expected {self.describe()}, got {_show(value)}")
        if self.max is not None and value > self.max:
            if not self.layer:
                raise ValueError(f"expected {self.describe()}, got {_show(value)}")
            top = f"{int(self.max):,}" if float(self.max).is_integer() else f"{self.max:g}"
            raise ValueError(f"{_show(value)} is too large: {self.name} can be at most {top}")


MAX_NUMBERS = 65_536  # entries of a ``numbers`` value (a constant tensor kept in the design)


def _check_numbers(value: Any) -> list:
    """A flat list of numbers; infinities and NaN written as the texts "inf", "-inf", "nan"."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_NUMBERS:
        raise ValueError(f"expected a list of at most {MAX_NUMBERS:,} numbers")
    for v in value:
        if isinstance(v, str) and v in ("inf", "-inf", "nan"):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) \
                or isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"expected numbers (or \"inf\", \"-inf\", \"nan\"), got {_show(v)}")
    return list(value)


#: Types whose value may be a reference to a block parameter (designer.engine.model.blocks).
REF_TYPES = ("int", "float", "bool", "choice", "ints")


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "ref" in value


def ref_problem(value: Any) -> str | None:
    """Why a reference is malformed, or None: ``{"ref": name}`` or ``{"ref": name, "mul": k}``."""
    if not isinstance(value, dict) or set(value) - {"ref", "mul"}:
        return (f"a reference to a block parameter is {{\"ref\": name}} or {{\"ref\": name, "
                f"\"mul\": integer}}, got {_show(value)}")
    name = value.get("ref")
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii() or len(name) > 64:
        return f"{_show(name)} is not a block parameter name"
    mul = value.get("mul", 1)
    if isinstance(mul, bool) or not isinstance(mul, int) or not 1 <= mul <= 1_000_000:
        return f"a reference's mul is an integer from 1 to 1,000,000, got {_show(mul)}"
    return None


def _check_values(value: Any) -> dict[str, Any]:
    """A flat object of named scalars (a block use's arguments): identifier keys; numbers,
    true/false or short texts as values. What each name accepts is the block's to say."""
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of named values, got {_show(value)}")
    if len(value) > MAX_VALUES_ENTRIES:
        raise ValueError(f"expected at most {MAX_VALUES_ENTRIES} named values")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k.isidentifier() or not k.isascii() or len(k) > 64:
            raise ValueError(f"{_show(k)} is not a parameter name (letters, digits and _)")
        if is_ref(v):  # a nested use passes on a parameter of the block around it
            why = ref_problem(v)
            if why:
                raise ValueError(f"{k}: {why}")
            out[k] = dict(v)
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{k}: expected a finite number, got {_show(v)}")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
            raise ValueError(f"{k}: {_show(v)} is too large")
        if isinstance(v, str):
            if len(v) > 256:
                raise ValueError(f"{k}: expected at most 256 characters")
            _check_text(v)
        elif not isinstance(v, (bool, int, float)):
            raise ValueError(f"{k}: expected a number, true/false or a text, got {_show(v)}")
        out[k] = v
    return out


def _range_words(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo:g} to {hi:g}"
    if lo is not None:
        return f" of at least {lo:g}"
    if hi is not None:
        return f" of at most {hi:g}"
    return ""


def _check_text(value: str) -> None:
    """Text values become paths, column and file names: no NUL (no path can hold one; Python
    raises "embedded null byte") and no lone surrogate (not text: it cannot be printed or saved)."""
    if "\x00" in value:
        raise ValueError(f"{_show(value)} holds a NUL character (\\u0000), which no path or "
                         "name can hold")
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError(f"{_show(value)} holds a lone surrogate, half of an escaped character "
                         "and not text")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    # control and format characters, line and paragraph separators, lone surrogates: \r, \u2028
    return ch if ch.isprintable() else ascii(ch)[1:-1]


def _show(value: Any) -> str:
    """A short, safe rendering of a user value for messages: one printable line (control
    characters, separators and lone surrogates escaped), at most about 60 characters, and never
    the digits of a huge integer (``str()`` refuses over 4300 of them)."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return '"' + "".join(_escape(ch) for ch in text) + '"'
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 64:
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def copy_value(v: Any) -> Any:
    """A default handed out fresh: lists are copied, so that no caller edits the declaration."""
    if isinstance(v, dict):
        return dict(v)
    return list(v) if isinstance(v, (list, tuple)) else v
