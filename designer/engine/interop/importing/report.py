"""The import report: what an import made and everything it could not map, each with its
module path and the line of the model's own source fx recorded."""

from __future__ import annotations

import json
import re
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Unsupported:
    """One part of the model with no designer equivalent: where (``path``, the module path, ""
    for the top), what (``op``), why (``reason``) and the source line fx recorded."""

    path: str
    op: str
    reason: str
    source: str = ""

    def __str__(self) -> str:
        where = self.path or "(top)"
        return f"{where}: {self.op}: {self.reason}" + (f" [{self.source}]" if self.source else "")


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

    @property
    def ok(self) -> bool:
        return not self.unsupported

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
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
            return (f"{self.model}: {self.layers} layers, {len(self.blocks)} block definitions, "
                    f"{self.parameters:,} parameters{aux}{via}")
        lines = [f"{self.model}: {len(self.unsupported)} part(s) have no designer layer:"]
        lines += [f"- {u}" for u in self.unsupported[:30]]
        if len(self.unsupported) > 30:
            lines.append(f"- and {len(self.unsupported) - 30} more (see the report)")
        return "\n".join(lines)


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

