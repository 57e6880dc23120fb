"""``designer evaluate RUN_DIR``: score a finished run's checkpoint on its validation data."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a training run's checkpoint on its validation data",
                       description="Load a run's best.pt (or last.pt) into the design stored in "
                       "the run's config.json and score it on the run's validation split: "
                       "accuracy, the confusion matrix and per-class precision, recall and F1 "
                       "for classification; MSE, MAE and R² for regression. Exits 2 when the run "
                       "cannot be evaluated (not a run folder, a GAN run, missing data).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (runs/<project>/<time>/)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="best.pt (lowest validation loss, the default) or last.pt; the other "
                   "one when it is missing")
    p.set_defaults(func=run)


def format_table(rows: list[list[str]], right_from: int = 1) -> list[str]:
    """Rows of cells in aligned columns; columns from ``right_from`` on are right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i >= right_from else c.ljust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def format_result(result) -> str:
    """An :class:`EvaluationResult` as text: the figures, then (classification) the confusion
    matrix and the per-class report with a macro average."""
    from ..engine.train.evaluation import class_report, regression_metrics

    n = 0 if result.y_true is None else len(result.y_true)
    lines = [f"Validation samples: {n}"]
    if result.task != "classification" or result.confusion is None:
        metrics = regression_metrics(result)
        labels = {"mse": "MSE", "mae": "MAE", "r2": "R²"}
        if result.task == "reconstruction":
            lines.append(f"Reconstruction error (MSE): {metrics.get('mse', float('nan')):.5g}")
        else:
            lines += [f"{labels[k]}: {v:.5g}" for k, v in metrics.items()]
        return "\n".join(lines)
    names = [str(c) for c in result.class_names]
    cm = result.confusion
    lines += [f"Accuracy: {result.accuracy:.2%}", "",
              "Confusion matrix (rows: true class, columns: predicted class)"]
    lines += format_table([["true \\ pred", *names]]
                          + [[names[i], *(str(int(v)) for v in cm[i])] for i in range(len(cm))])
    rep = class_report(cm)
    rows = [["class", "precision", "recall", "F1", "support"]]
    for i, name in enumerate(names[:len(rep["support"])]):
        rows.append([name, f"{rep['precision'][i]:.3f}", f"{rep['recall'][i]:.3f}",
                     f"{rep['f1'][i]:.3f}", str(int(rep["support"][i]))])
    present = rep["support"] > 0
    if present.any():
        rows.append(["macro average", *(f"{rep[k][present].mean():.3f}"
                                        for k in ("precision", "recall", "f1")),
                     str(int(rep["support"].sum()))])
    lines += ["", *format_table(rows)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine.train.evaluation import evaluate_run
    from ..engine.train.runs import checkpoints
    from .check import say

    run_dir = Path(args.run_dir)
    try:
        result, _model, _ds, kind = evaluate_run(run_dir, checkpoint=args.checkpoint)
    except ValueError as exc:  # RunError, ProjectError, DatasetError...: a message for people
        say(f"error: {exc}", sys.stderr)
        return 2
    info = next((c for c in checkpoints(run_dir) if c.kind == kind), None)
    say(f"Run: {run_dir}")
    say(f"Model: {info.label if info else kind + '.pt'}"
        + ("" if kind == args.checkpoint else f" ({args.checkpoint}.pt is missing)"))
    say(format_result(result))
    return 0
