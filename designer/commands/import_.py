"""``designer import SPEC -o FILE.dnn.json``: an existing PyTorch model as an editable design."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SPEC_HELP = ("the model: torchvision:NAME (built with weights=None, nothing downloaded), "
             "module.path:callable (imported), path/to/file.py:ClassOrFactory (the file is "
             "EXECUTED as Python code: import only files you trust; the callable is called "
             "without arguments), or path/to/model.pt2, a torch.export.save file (read as "
             "tensors and program only, never unpickled; its example input gives the input "
             "shape)")
SPEC_FORMS = ("torchvision:NAME, module.path:callable, file.py:ClassOrFactory or "
              "path/to/model.pt2")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="turn a PyTorch model into an editable design",
        description="Trace a PyTorch model with torch.fx (or read a torch.export .pt2 "
        "program; a forward fx cannot trace is exported) and write it as a designer project: "
        "layers the catalog knows become layers, other submodules become blocks (one definition "
        "per structure, nn.Sequential numbering kept), so the built design has the model's "
        "state_dict keys. Whatever cannot be mapped is listed with its module path and source "
        "line, and the import fails (exit 1) unless --partial. Note: a file.py SPEC is executed.")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="FILE.dnn.json",
                   help="the project file to write")
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="one sample's shape without the batch (default: a .pt2 program's "
                   "example input, else 3,224,224); reshapes in the design hold sizes for this "
                   "shape")
    p.add_argument("--weights", action="store_true",
                   help="also write the model's state_dict beside the project as "
                   "<stem>.weights.pt (tensors only) and set training.init_weights to it")
    p.add_argument("--pretrained", action="store_true",
                   help="torchvision:NAME only: torchvision's default pretrained weights (its "
                   "own API downloads them)")
    p.add_argument("--report", metavar="FILE", help="write the import report as JSON")
    p.add_argument("--partial", action="store_true",
                   help="write what can be mapped, each network stopping at its first "
                   "unsupported part")
    p.set_defaults(func=run)


def load_spec(spec: str, pretrained: bool = False, input_shape: tuple[int, ...] | None = None):
    """The module a SPEC names, and a name for it. A ``.pt2`` file is the module tree of its
    ExportedProgram (``torch.export.unflatten``), loaded without unpickling anything."""
    import importlib
    import importlib.util

    if spec.endswith(".pt2") and ":" not in Path(spec).name:
        if pretrained:
            raise ValueError("--pretrained is for torchvision:NAME only")
        from ..engine.importing import load_program, model_class_name, unflatten_program

        module = unflatten_program(load_program(spec))
        name = model_class_name(module)
        return module, name if name != "UnflattenedModule" else Path(spec).stem
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"{spec!r}: expected {SPEC_FORMS}")
    if where == "torchvision":
        import torchvision

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
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model, attr


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--input-shape {text!r}: expected sizes such as 3,224,224") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"--input-shape {text!r}: expected positive sizes such as 3,224,224")
    return shape


def run(args: argparse.Namespace) -> int:
    try:
        shape = parse_shape(args.input_shape) if args.input_shape is not None else None
        model, name = load_spec(args.spec, args.pretrained, shape)
    except (ValueError, ImportError, OSError) as exc:
        print(f"designer import: {exc}", file=sys.stderr)
        return 2
    from ..engine.importing import (
        ImportFailed,
        example_input_shape,
        save_weights,
        weights_path,
    )
    from ..engine.importing import import_model as do_import
    from ..engine.project import save_project

    if shape is None:  # a .pt2 program's example input, else the usual image
        shape = example_input_shape(model) or (3, 224, 224)
    model.eval()
    try:
        project, report = do_import(model, shape, name=name, partial=args.partial)
    except ImportFailed as exc:
        report, project = exc.report, None
    if args.report:
        Path(args.report).write_text(report.to_json() + "\n", encoding="utf-8")
    if project is None:
        print(f"designer import: {report.summary()}", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)  # -o proj/r18.dnn.json makes proj/
    if args.weights:
        wfile = weights_path(out)
        save_weights(model.state_dict(), wfile)
        project.training = {**project.training, "init_weights": wfile.name}
        print(f"weights: {wfile}")
    save_project(project, out, backup=False)
    print(report.summary())
    if not report.ok:
        print(f"partial: {len(report.unsupported)} part(s) left out (see --report)")
    print(f"wrote {out}")
    return 0
