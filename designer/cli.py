"""Command line: ``designer [FILE]`` opens the window; ``designer check|train|sweep|export|runs FILE``;
``designer evaluate RUN_DIR``; ``designer import SPEC -o FILE``.

Each subcommand lives in ``designer/commands/<name>.py`` with ``add_parser(subparsers)``; the
parser it adds carries ``func`` to run. Heavy imports (torch, Qt) happen inside the commands so
``designer --help`` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__

SUBCOMMANDS = ("check", "train", "sweep", "export", "runs", "evaluate", "import")
_MODULES = {"import": "import_"}  # a command whose module name is a Python keyword


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="designer",
        description="Design neural networks visually, check their shapes, train them and export "
        "PyTorch code. With no command, opens the designer window.",
    )
    parser.add_argument("--version", action="version", version=f"designer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"designer.commands.{_MODULES.get(name, name)}")
        except ModuleNotFoundError as exc:
            if exc.name != f"designer.commands.{_MODULES.get(name, name)}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .engine.threads import configure_process

    configure_process()  # before torch loads anywhere in this process
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        return open_window(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "file", None):
        args.file = resolve_file_arg(args.file)
    return int(args.func(args) or 0)


def resolve_file_arg(arg: str) -> str:
    """A path as given, or the file of a template named by its id (``designer train mlp-digits``)."""
    if Path(arg).exists() or os.sep in arg or arg.endswith(".json"):
        return arg
    from .engine.document.templates import TemplateError, template_path

    try:
        return str(template_path(arg))
    except TemplateError:
        return arg


def open_window(argv: list[str]) -> int:
    """``designer [FILE]``: open the designer window (optionally with a project or template)."""
    parser = argparse.ArgumentParser(prog="designer", description="Open the designer window.")
    parser.add_argument("file", nargs="?", help="a project file, or a template's id (e.g. lenet5)")
    args = parser.parse_args(argv)
    from .ui.preflight import window_problem

    problem = window_problem()  # before Qt, which would abort the process (a core dump)
    if problem:
        print(f"designer: {problem}", file=sys.stderr)
        return 2
    from .ui.app import run_app

    return run_app(resolve_file_arg(args.file) if args.file else None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
