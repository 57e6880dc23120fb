"""``designer runs FILE``: a project's training runs, oldest first, as the History tab lists them."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list a project's training runs",
                       description="Print every training run of a project (the run folders "
                       "under runs/<project>/ beside the file), newest last: start time, status, "
                       "settings, the epoch best.pt holds with its figure, the last epoch's "
                       "figure, duration and folder. Exits 2 when the file cannot be read.")
    p.add_argument("file", help="project file (.dnn.json), or a template's id (e.g. mlp-digits)")
    p.set_defaults(func=run)


def format_run(run) -> str:
    """One run as a few lines: a heading, then settings, checkpoints and folder indented."""
    started = run.started.strftime("%Y-%m-%d %H:%M:%S") if run.started else run.path.name
    epochs = max((int(r["epoch"]) for r in run.history if "epoch" in r), default=0)
    heading = [started, run.status or "no status", f"{epochs} epoch(s)"]
    if run.duration_s is not None:
        from ..engine.train.run_history import duration_text

        heading.append(duration_text(run.duration_s))
    lines = ["  ".join(heading), f"  settings: {run.summary()}"]
    best = run.checkpoint("best")
    if best is not None:
        parts = [f"epoch {best.epoch}" if best.epoch else "", best.figure if run.evaluates else ""]
        lines.append(f"  best.pt:  {', '.join(p for p in parts if p) or 'saved'}")
    if run.final:
        lines.append(f"  final:    {run.final}")
    lines.append(f"  folder:   {run.path}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine.document.project import ProjectError, load_project
    from ..engine.train.run_history import list_runs, runs_root
    from .check import say

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        say(f"error: {exc}", sys.stderr)
        return 2
    root = runs_root(Path(args.file), project.name)
    found = list_runs(root)
    if not found:
        say(f"No runs of {project.name} yet (looked in {root}).")
        return 0
    say(f"{len(found)} run(s) of {project.name} in {root}, newest last:")
    for record in reversed(found):
        say("")
        say(format_run(record))
    return 0
