"""Import an existing PyTorch model into a project: ``designer import`` and File > Import model….

:func:`load_spec` makes the model a SPEC names, :func:`import_to_project` turns it into a
project and, when asked, writes its weights beside the project file (``<stem>.weights.pt``,
tensors only) and points ``training.init_weights`` at them. Saving the project is left to the
caller (the CLI writes it at once, the window after the worker thread hands it back).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_HELP = ("the model: torchvision:NAME (built with weights=None, nothing downloaded), "
             "module.path:callable (imported), path/to/file.py:ClassOrFactory (the file is "
             "EXECUTED as Python code: import only files you trust; the callable is called "
             "without arguments), or path/to/model.pt2, a torch.export.save file (read as "
             "tensors and program only, never unpickled; its example input gives the input "
             "shape)")
SPEC_FORMS = ("torchvision:NAME, module.path:callable, file.py:ClassOrFactory or "
              "path/to/model.pt2")
#: One sample's shape when neither the caller nor a .pt2 program's example input gives one.
DEFAULT_INPUT_SHAPE = (3, 224, 224)


def load_spec(spec: str, pretrained: bool = False, input_shape: tuple[int, ...] | None = None):
    """The module a SPEC names, and a name for it. A ``.pt2`` file is the module tree of its
    ExportedProgram (``torch.export.unflatten``), loaded without unpickling anything."""
    if spec.endswith(".pt2") and ":" not in Path(spec).name:
        if pretrained:
            raise ValueError("--pretrained is for torchvision:NAME only")
        from ..interop.importing import load_program, model_class_name, unflatten_program  # torch

        module = unflatten_program(load_program(spec))
        name = model_class_name(module)
        return module, name if name != "UnflattenedModule" else Path(spec).stem
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"{spec!r}: expected {SPEC_FORMS}")
    if where == "torchvision":
        import torchvision  # torch: loaded only to make the model

        kwargs = {}
        if attr.startswith("vit_") and input_shape is not None and not pretrained:
            kwargs["image_size"] = input_shape[-1]
        weights = "DEFAULT" if pretrained else None
        return torchvision.models.get_model(attr, weights=weights, **kwargs), attr
    if pretrained:
        raise ValueError("--pretrained is for torchvision:NAME only")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"{where}: no such file")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules.setdefault(path.stem, module)
        mod_spec.loader.exec_module(module)  # runs the file: said in --help
    else:
        module = importlib.import_module(where)
    factory = getattr(module, attr, None)
    if factory is None:
        raise ValueError(f"{where} has no {attr!r}")
    model = factory()
    import torch  # the user's module imported it already

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model, attr


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,224,224"`` (or ``3x224x224``) as a shape; ValueError says what is wrong."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--input-shape {text!r}: expected sizes such as 3,224,224") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"--input-shape {text!r}: expected positive sizes such as 3,224,224")
    return shape


class WeightsNotWritten(OSError):
    """The model was imported but its weights file could not be written; ``report`` is the
    import's report, ``error`` the OSError that stopped the write."""

    def __init__(self, error: OSError, report: Any) -> None:
        super().__init__(*error.args)
        self.error, self.report = error, report

    def __str__(self) -> str:
        return str(self.error)


@dataclass
class ImportedModel:
    """What :func:`import_to_project` made: the project (None when the import failed: the
    report says why), the import report and the weights file written (None: not asked)."""

    project: Any
    report: Any
    weights_file: Path | None = None


def import_to_project(model, name: str, input_shape: tuple[int, ...] | None = None, *,
                      partial: bool = False, weights_beside: str | Path | None = None
                      ) -> ImportedModel:
    """Import ``model`` (put in eval mode) as a project named ``name``.

    ``input_shape``: one sample's shape without the batch (None: a .pt2 program's example
    input, else :data:`DEFAULT_INPUT_SHAPE`). ``partial``: keep what can be mapped. With
    ``weights_beside`` (the project file's path), the model's state_dict is written beside it as
    ``<stem>.weights.pt`` and the project's ``training.init_weights`` names that file
    (:class:`WeightsNotWritten` when it cannot be written). A failed import returns a project of None with its report."""
    from ..interop.importing import (  # torch
        ImportFailed,
        example_input_shape,
        import_model,
        save_weights,
        weights_path,
    )  # deferred: torch loads only when this runs

    if input_shape is None:
        input_shape = example_input_shape(model) or DEFAULT_INPUT_SHAPE
    model.eval()
    try:
        project, report = import_model(model, input_shape, name=name, partial=partial)
    except ImportFailed as exc:
        return ImportedModel(None, exc.report)
    result = ImportedModel(project, report)
    if weights_beside is not None:
        wfile = weights_path(weights_beside)
        try:
            save_weights(model.state_dict(), wfile)
        except OSError as exc:
            raise WeightsNotWritten(exc, report) from exc
        project.training = {**project.training, "init_weights": wfile.name}
        result.weights_file = wfile
    return result
