"""Export a project: ``designer export`` and the window's Export dialog.

:func:`export_files` writes what was asked into a folder: the code (model.py, train.py) and, as
asked, a run's weights, ONNX and a torch.export program; without the code, only the other files
land in the folder. :func:`resolve_weights` turns the CLI's ``latest`` into the project's newest
trained run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: Files of the code export, left out when only weights or model formats are asked for.
CODE_FILES = ("model.py", "train.py")


def resolve_weights(weights: str | os.PathLike | None, project_file: str | os.PathLike,
                    project_name: str) -> str | os.PathLike | None:
    """``weights`` as given, or for ``"latest"`` (when no such file or folder exists) the
    newest run folder of the project with a checkpoint (ExportError when there is none)."""
    if weights == "latest" and not Path(weights).exists():
        from ..interop.export import latest_run  # torch

        return latest_run(project_file, project_name)
    return weights


def export_files(project: Any, out_dir: str | os.PathLike, *, code: bool = True,
                 onnx: bool = False, pt2: bool = False,
                 weights: str | os.PathLike | None = None,
                 project_dir: str | os.PathLike | None = None, result: Any = None) -> list[Path]:
    """Write the files asked for into ``out_dir`` and return their paths.

    ``code``: model.py and train.py (without them, the rest is exported through a temporary
    folder and moved, so that the code never lands in ``out_dir``). ``weights``: a run folder or
    a checkpoint file; ``project_dir``: the project file's folder (relative data paths start
    there); ``result``: an :class:`~designer.engine.interop.export.ExportResult` that collects the
    notes. Raises ExportError or CodegenError with a message for the user, ImportError when
    ONNX needs the export extra, OSError when a file cannot be written."""
    from ..interop.export import export_project  # torch

    if code:
        return export_project(project, out_dir, onnx=onnx, pt2=pt2, weights=weights,
                              project_dir=project_dir, result=result)
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="designer-export-") as tmp:
        made = export_project(project, tmp, onnx=onnx, pt2=pt2, weights=weights,
                              project_dir=project_dir, result=result)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for p in made:
            if p.name in CODE_FILES:
                continue
            dest = out / p.name
            shutil.move(str(p), dest)
            written.append(dest)
    return written
