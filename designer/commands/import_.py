"""``designer import SPEC -o FILE.dnn.json``: an existing PyTorch model as an editable design."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.services import model_import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="turn a PyTorch model into an editable design",
        description="Trace a PyTorch model with torch.fx (or read a torch.export .pt2 "
        "program; a forward fx cannot trace is exported) and write it as a designer project: "
        "layers the catalog knows become layers, other submodules become blocks (one definition "
        "per structure, nn.Sequential numbering kept), so the built design has the model's "
        "state_dict keys. Whatever cannot be mapped is listed with its module path and source "
        "line, and the import fails (exit 1) unless --partial. transformers: and timm: models are "
        "built from their configs, nothing downloaded (pip install 'designer[hf]'). Note: a "
        "file.py SPEC is executed.")
    p.add_argument("spec", metavar="SPEC", help=model_import.SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="FILE.dnn.json",
                   help="the project file to write")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE|FILE.json",
                   help=model_import.CONFIG_HELP)
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="one sample's shape without the batch (default: a .pt2 program's "
                   "example input, else the model's own: 16 token ids for a transformers text "
                   "model, the config's image size for a vision one, timm's "
                   "pretrained_cfg input_size; else 3,224,224); reshapes in the design hold "
                   "sizes for this shape")
    p.add_argument("--input-dtype", default=None, choices=model_import.INPUT_DTYPES,
                   help="the input's dtype (default: int64 token ids for a transformers text "
                   "model, else float32)")
    p.add_argument("--weights", action="store_true",
                   help="also write the model's state_dict beside the project as "
                   "<stem>.weights.pt (tensors only) and set training.init_weights to it")
    p.add_argument("--pretrained", action="store_true",
                   help="the library's pretrained weights, downloaded by its own API: "
                   "torchvision:NAME (its default weights), transformers:ClassName@hub-id "
                   "(from_pretrained) or timm:NAME")
    p.add_argument("--report", metavar="FILE", help="write the import report as JSON")
    p.add_argument("--partial", action="store_true",
                   help="write what can be mapped, each network stopping at its first "
                   "unsupported part (exit 1 when that leaves no layer at all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        shape = model_import.parse_shape(args.input_shape) if args.input_shape is not None else None
        config = model_import.parse_config(args.config)
        model, name = model_import.load_spec(args.spec, args.pretrained, shape, config)
    except (ValueError, ImportError, OSError) as exc:
        print(f"designer import: {exc}", file=sys.stderr)
        return 2
    from ..engine.document.project import save_project

    out = Path(args.output)
    imported = model_import.import_to_project(model, name, shape, partial=args.partial,
                                              weights_beside=out if args.weights else None,
                                              input_dtype=args.input_dtype)
    project, report = imported.project, imported.report
    if args.report:
        Path(args.report).write_text(report.to_json() + "\n", encoding="utf-8")
    if project is None:
        if imported.error:
            print(f"designer import: {imported.error}", file=sys.stderr)
        print(f"designer import: {report.summary()}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)  # -o proj/r18.dnn.json makes proj/
    if imported.weights_file is not None:
        print(f"weights: {imported.weights_file}")
    save_project(project, out, backup=False)
    print(report.summary())
    if not report.ok:
        print(f"partial: {len(report.unsupported)} part(s) left out (see --report)")
    print(f"wrote {out}")
    return 0
