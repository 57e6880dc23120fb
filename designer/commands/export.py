"""``designer export FILE -o DIR``: readable PyTorch code, trained weights, ONNX and torch.export."""

from __future__ import annotations

import argparse
import sys

from ..engine.services import export_project


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a design as PyTorch code (model.py, train.py), ONNX and more",
        description="Write model.py (the network as an nn.Module) and train.py (a standalone "
        "training script; for one network it also runs under torchrun) into a folder; optionally the weights of "
        "a training run, an ONNX file and a torch.export program. Exits 1 when the design has "
        "errors or an export fails, 2 when the file cannot be read.")
    p.add_argument("file", help="project file (.dnn.json), or a template's id (e.g. mlp-digits)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--onnx", action="store_true",
                   help="also write model.onnx (needs: pip install 'designer[export]')")
    p.add_argument("--pt2", action="store_true", help="also write a torch.export program "
                   "(model.pt2)")
    p.add_argument("--weights", metavar="RUN_OR_PT",
                   help="a training run folder (its best.pt, else last.pt), a checkpoint file, or "
                   "'latest' for the project's newest run: written as weights.pt and used for "
                   "ONNX and .pt2")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine.document.project import ProjectError, load_project
    from ..engine.interop.export import ExportError, ExportResult
    from ..engine.model.pysource import CodegenError
    from .check import say

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        say(f"error: {exc}", sys.stderr)
        return 2
    result = ExportResult()
    try:
        weights = export_project.resolve_weights(args.weights, args.file, project.name)
        if weights is not args.weights:
            say(f"weights from {weights}")
        export_project.export_files(project, args.out, onnx=args.onnx, pt2=args.pt2,
                                    weights=weights, project_dir=Path(args.file).resolve().parent,
                                    result=result)
    except (CodegenError, ExportError) as exc:
        say(f"error: {exc}", sys.stderr)
        return 1
    for path in result.paths:
        say(f"wrote {path}")
    for note in result.notes:
        say(f"note: {note}")
    return 0
