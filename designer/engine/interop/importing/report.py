"""The import report: what an import made and everything it could not map, each with its
module path and the line of the model's own source fx recorded."""

from __future__ import annotations

import json
import math
import re
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

#: How long a reason made from an exception's text may be (:func:`one_line`).
REASON_CHARS = 300


def one_line(exc_or_text: BaseException | str) -> str:
    """An exception's text (or any text) as one line for a report: its first line, trimmed to
    :data:`REASON_CHARS` characters. torch's errors span many lines (a traceback of the traced
    program, hints); the first says what went wrong. An exception without text gives its type's
    name."""
    text = str(exc_or_text).strip()
    if not text and isinstance(exc_or_text, BaseException):
        text = type(exc_or_text).__name__
    first = text.splitlines()[0].strip() if text else ""
    return first if len(first) <= REASON_CHARS else first[: REASON_CHARS - 1].rstrip() + "…"


@dataclass
class Unsupported:
    """One part of the model with no designer equivalent: where (``path``, the module path, ""
    for the top), what (``op``), why (``reason``) and the source line fx recorded. ``reason``
    is one line: set to a text of several lines (an exception's), it keeps the first."""

    path: str
    op: str
    reason: str
    source: str = ""

    def __setattr__(self, name: str, value: Any) -> None:
        # also when a reason grows after the entry is made (``entry.reason += f"...: {exc}"``)
        if name == "reason" and isinstance(value, str) and len(value.strip().splitlines()) > 1:
            value = value.strip().splitlines()[0].rstrip()
        super().__setattr__(name, value)

    def __str__(self) -> str:
        where = self.path or "(top)"
        return f"{where}: {self.op}: {self.reason}" + (f" [{self.source}]" if self.source else "")


#: How many module paths a :class:`Cause` keeps (its ``count`` says how many there are).
CAUSE_PATHS = 5


@dataclass
class Cause:
    """One reason an import stopped, once: the op and reason shared by ``count`` unsupported
    entries in ``places`` module paths, the first few of them (``paths``) and the first source
    line recorded."""

    op: str
    reason: str
    count: int
    paths: list[str] = field(default_factory=list)
    source: str = ""
    places: int = 1

    def __str__(self) -> str:
        where = ", ".join(p or "(top)" for p in self.paths)
        more = ", ..." if self.places > len(self.paths) else ""
        places = "1 place" if self.places == 1 else f"{self.places:,} places"
        if self.count != self.places:
            places = f"{self.count:,} times in {places}"
        return (f"{self.op}: {self.reason} ({places}: {where}{more})"
                + (f" [{self.source}]" if self.source else ""))


_NAME = re.compile(r"\b\w+(?:\.\w+)+\b|\b\w*_\w*\b")


def cause_key(entry: Unsupported) -> tuple[str, str]:
    """What makes two entries the same cause: the op and the reason without the entry's own
    path, the names in it (dotted or with an underscore) and its numbers
    (``blocks.3.attn.bias is a buffer`` is the cause of ``blocks.4.attn.bias is a buffer``)."""
    reason = entry.reason
    if entry.path:
        reason = re.sub(rf"(?<![\w.]){re.escape(entry.path)}(?![\w])", "<path>", reason)
    reason = re.sub(r"-?\d+", "#", _NAME.sub("<name>", reason))
    return entry.op, " ".join(reason.split())


def group_causes(entries: list[Unsupported]) -> list[Cause]:
    """The entries grouped by :func:`cause_key`, the most frequent first (ties in the order
    they were met); each cause shows the first entry's reason."""
    causes: dict[tuple[str, str], tuple[Cause, set[str]]] = {}
    for u in entries:
        key = cause_key(u)
        if key not in causes:
            causes[key] = (Cause(u.op, u.reason, 1, [u.path], u.source), {u.path})
            continue
        cause, paths = causes[key]
        cause.count += 1
        if u.path not in paths:
            paths.add(u.path)
            cause.places += 1
            if len(cause.paths) < CAUSE_PATHS:
                cause.paths.append(u.path)
        cause.source = cause.source or u.source
    return sorted((c for c, _ in causes.values()), key=lambda c: -c.count)


@dataclass
class ImportReport:
    """What an import did: the model, the input shape, the blocks made, the keys whose name or
    shape differ in the design, and everything that could not be mapped."""

    model: str
    input_shape: list[int]
    unsupported: list[Unsupported] = field(default_factory=list)
    blocks: dict[str, int] = field(default_factory=dict)  # network -> uses
    layers: int = 0
    parameters: int = 0
    partial: bool = False
    # The layers feeding auxiliary outputs -> their loss weight: the model returns them in
    # training mode only (GoogLeNet's aux heads), each an Output with that aux_weight.
    aux_outputs: dict[str, float] = field(default_factory=dict)
    # torch.fx could not trace the model's forward (why): it was imported through torch.export,
    # its branches as the input shape takes them
    via_export: str = ""
    # the blocks (module paths) whose own forward torch.fx could not trace: each exported alone
    # on the input it received, so made for this input shape as well
    via_export_blocks: list[str] = field(default_factory=list)
    # how much of the design is editable: the nodes kept as code ("Function" layers), the other
    # layer nodes (Inputs and Outputs not counted) and the parameters those hold
    functions: int = 0
    editable_layers: int = 0
    editable_parameters: int = 0
    # each Output's name -> where it came from ("logits" -> "the model's output 'logits'"),
    # the first the one a loss reads
    outputs: dict[str, str] = field(default_factory=dict)
    input_dtype: str = "float32"
    # non-persistent buffers too large to keep in the design: saved in its weights file instead
    constants_saved: list[str] = field(default_factory=list)
    # keys of modules never called whose tensors are another key's (tied weights: T5's shared
    # embedding): not in the design; the other key loads the same tensor
    tied: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.unsupported

    def causes(self) -> list[Cause]:
        """The unsupported entries, each cause once with its count and first places, the most
        frequent first (``unsupported`` keeps every entry)."""
        return group_causes(self.unsupported)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["causes"] = [asdict(c) for c in self.causes()]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        if self.ok:
            aux = (f", {len(self.aux_outputs)} auxiliary outputs (training only)"
                   if self.aux_outputs else "")
            via = (" (through torch.export, for this input shape: torch.fx cannot trace its "
                   "forward)" if self.via_export else "")
            if self.via_export_blocks:
                via += (f" ({', '.join(self.via_export_blocks)} through torch.export, for this "
                        "input shape: torch.fx cannot trace their forward)")
            return (f"{self.model}: {self.layers} layers{self._editable_layers()}, "
                    f"{len(self.blocks)} block definitions, "
                    f"{self.parameters:,} parameters{self._editable_share()}{aux}"
                    f"{self._inputs_outputs()}{via}")
        causes = self.causes()
        lines = [f"{self.model}: {len(self.unsupported)} part(s) have no designer layer"
                 + (f", {len(causes)} causes:" if len(causes) > 1 else ":")]
        lines += [f"- {c}" for c in causes[:30]]
        if len(causes) > 30:
            lines.append(f"- and {len(causes) - 30} more causes (see the report)")
        return "\n".join(lines)

    def _shows_editable(self) -> bool:
        return self.functions > 0 or self.editable_layers > 0

    def _editable_layers(self) -> str:
        if not self._shows_editable():
            return ""
        return f" ({self.editable_layers} editable, {self.functions} kept as code)"

    def _editable_share(self) -> str:
        if not self._shows_editable() or self.parameters <= 0:
            return ""
        # rounded down: 100% only when every parameter is in an editable layer
        share = math.floor(1000 * self.editable_parameters / self.parameters) / 10
        return f" ({share:.1f}% in editable layers)"

    def _inputs_outputs(self) -> str:
        text = f", {self.input_dtype} input" if self.input_dtype != "float32" else ""
        if len(self.outputs) > 1:
            first, *rest = self.outputs
            text += f", outputs: {', '.join([f'{first} (first)', *rest])}"
        return text


class ImportFailed(ValueError):
    """The model cannot be imported whole; ``report`` lists what could not be mapped."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report



def source_line(node: torch.fx.Node | None) -> str:
    """The last user frame of the stack fx recorded for a node: ``file:line: code``."""
    text = getattr(node, "stack_trace", None) or ""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [f for f in re.findall(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', text)
              if not f[0].startswith(torch_dir)]
    if not frames:
        return ""
    f, line, _fn, code = frames[-1]
    return f"{f}:{line}: {code.strip()}"


def exception_source(exc: BaseException) -> str:
    """Where a tracing error happened in the model's own code (the last frame outside torch and
    this package)."""
    torch_dir = str(Path(torch.__file__).parent)
    here = str(Path(__file__).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(torch_dir) and not f.filename.startswith(here)]
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename}:{f.lineno}: {(f.line or '').strip()}"

