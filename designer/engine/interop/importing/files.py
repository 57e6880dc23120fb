"""Files around an import: a ``.pt2`` program read as tensors only, state_dict files loaded into
and saved from a built design, and where a project's weights file lives."""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...document.project import Project
from ...model.build import build_model, upgrade_state_dict
from ...model.weights import WeightsFit, match_weights, read_weights
from .report import one_line


def build_design(project: Project, network: str = "model", device: str | None = None
                 ) -> nn.Module:
    """The built model of one network of a project (on the meta device: structure only)."""
    graph = project.networks[network]
    if device == "meta":
        with torch.device("meta"):
            return build_model(graph)
    return build_model(graph)


#: What loading a state_dict into a design found (:class:`designer.engine.model.weights.WeightsFit`).
WeightsReport = WeightsFit


def check_state_dict(model: nn.Module, state: dict[str, Any]) -> WeightsReport:
    """The state_dict matched against the design by name and shape (nothing loaded)."""
    return match_weights(model, state)


class _NeedsPickle(Exception):  # not a RuntimeError: torch.export.load swallows those
    pass


@contextlib.contextmanager
def _tensors_only():
    """While loading a .pt2 file: every ``torch.load`` is weights-only and the other ways
    torch.export's loader unpickles (torchbind and opaque objects) refuse. torch.export.load
    falls back to ``torch.load(weights_only=False)`` when a weights-only load fails: here that
    fallback raises :class:`_NeedsPickle` instead. (Patched on the torch module, restored
    after: a load elsewhere at that moment is only held to weights-only as well.)"""
    real_load = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        wanted = kwargs.pop("weights_only", None)
        try:
            return real_load(*args, weights_only=True, **kwargs)
        except pickle.UnpicklingError:
            if wanted is False:  # torch asked to unpickle: refused
                raise _NeedsPickle("a weights-only load failed") from None
            raise

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NeedsPickle("a pickled object")

    patched: list[tuple[Any, str, Any]] = [(torch, "load", load),
                                           (torch._C, "_pickle_load_obj", refuse)]
    try:
        from torch.export.pt2_archive import _package
        patched.append((_package, "pickle", type("NoPickle", (), {"loads": staticmethod(refuse)})))
    except ImportError:  # pragma: no cover - older torch
        pass
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patched if hasattr(obj, attr)]
    for obj, attr, new in patched:
        if hasattr(obj, attr):
            setattr(obj, attr, new)
    try:
        yield
    finally:
        for obj, attr, old in saved:
            setattr(obj, attr, old)


def load_program(path: str | Path) -> Any:
    """The ExportedProgram of a ``.pt2`` file (``torch.export.save``), read as tensors and
    program text only: a file whose weights, constants or example inputs would need unpickling
    is refused (ValueError), as :func:`read_weights` refuses such state_dicts."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with _tensors_only():
            return torch.export.load(str(path))
    except _NeedsPickle:
        raise ValueError(f"{path} holds objects other than tensors: not loaded, it would need "
                         "unpickling (only tensors and the program are read from a .pt2 file)"
                         ) from None
    except Exception as exc:  # noqa: BLE001 - not a .pt2 archive, a newer format ...
        raise ValueError(f"{path}: not an ExportedProgram file torch.export can load "
                         f"({one_line(exc)})") from None


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> WeightsReport:
    """Load a state_dict file into a built design by key. With ``strict`` nothing is loaded
    unless every key matches (ValueError with the report's message); otherwise the matching
    keys are loaded and the report says what was not."""
    state = upgrade_state_dict(model, read_weights(path))
    report = check_state_dict(model, state)
    if strict and not report.ok:
        raise ValueError(f"{path} does not fit the design: {report.message()}")
    bad = {k for k, *_ in report.mismatched}
    model.load_state_dict({k: v for k, v in state.items() if k not in bad
                           and k not in report.unexpected}, strict=False)
    return report


def save_weights(state: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write tensors only (no code, no pickled objects), loadable with ``weights_only=True``.
    A folder that does not exist yet is made (``proj/r18.weights.pt`` for a new project)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone().contiguous() for k, v in state.items()}, path)
    return path


def weights_path(project_file: str | Path) -> Path:
    """``<stem>.weights.pt`` beside a project file (``net.dnn.json`` -> ``net.weights.pt``)."""
    p = Path(project_file)
    stem = p.name[: -len(".dnn.json")] if p.name.endswith(".dnn.json") else p.stem
    return p.with_name(f"{stem}.weights.pt")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


