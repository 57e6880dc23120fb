"""Benchmark: the overhead of a sweep over plain runs of the same settings.

    .venv/bin/python benchmarks/bench_sweeps.py [--template mlp-digits] [--trials 8]
        [--rounds 3] [--batch-size 16]

One process, CPU. The template's design and dataset (digits by default), one epoch per run.
In alternating rounds (so machine load hits both alike):

* plain: ``--trials`` runs as ``designer train`` makes them: ``prepare_run`` then the
  :class:`~designer.engine.train.training.Trainer` into a new run folder (the dataset loaded once);
* sweep: a :class:`~designer.engine.search.runner.Sweep` of ``--trials`` trials in a fresh SQLite study
  whose one dimension has one choice (the template's own learning rate), so every trial trains
  exactly what a plain run trains; what differs is the sweep's work: the Optuna study in SQLite
  (the cross-process lock, ask, report per epoch, tell), the project copy per trial, the shape
  check before training and the config.json record.

Reported: seconds of each (median over rounds) and sweep / plain (target <= 1.05: the median of
the per-round ratios). Figures go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.document.project import load_project, save_project
from designer.engine.document.templates import template_path
from designer.engine.search.runner import Sweep
from designer.engine.train.config import validate_dataset, validate_training
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes import prepare_run
from designer.engine.train.runs import default_run_dir
from designer.engine.train.training import Trainer


def plain_runs(project, path: Path, ds, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        run_dir = default_run_dir(path, project.name)
        training = validate_training(project.training)
        _, recipe = prepare_run(project, ds, training, run_dir=run_dir)
        extra = {"dataset": validate_dataset(project.dataset), "project": project.to_dict(),
                 "project_file": str(path)}
        result = Trainer(None, ds, training, run_dir=run_dir, recipe=recipe,
                         extra_config=extra).run()
        assert result.status == "finished", result.message
    return time.perf_counter() - t0


def sweep_runs(project, path: Path, ds, n: int, study: str) -> float:
    t0 = time.perf_counter()
    sweep = Sweep(project, path.parent, project_path=path, study_name=study, trials=n,
                  dataset=ds)
    result = sweep.run()
    assert result.counts == {"complete": n}, result.counts
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="mlp-digits")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-sweeps-"))
    try:
        path = folder / "bench.dnn.json"
        project = load_project(template_path(args.template))
        project.training.update(epochs=1, batch_size=args.batch_size, device="cpu")
        lr = validate_training(project.training)["lr"]
        project.set_search({"pruner": "none", "dimensions": [
            {"target": {"setting": "lr"}, "type": "choice", "choices": [lr]}]})
        data_path = project.dataset.get("path")
        if data_path and not Path(data_path).is_absolute():  # a template's own data file
            project.dataset["path"] = str(template_path(args.template).parent / data_path)
        save_project(project, path, backup=False)
        project = load_project(path)
        ds = load_dataset(validate_dataset(project.dataset), folder)
        print(f"{args.template}: {ds.n_train} training samples, batch {args.batch_size}, "
              f"{args.trials} one-epoch runs per contender, {args.rounds} rounds")
        plain_runs(project, path, ds, 1)  # warm-up: imports, first-call costs
        sweep_runs(project, path, ds, 1, "warm-up")
        plain_t, sweep_t, ratios = [], [], []
        for r in range(args.rounds):
            if r % 2:
                s = sweep_runs(project, path, ds, args.trials, f"round-{r}")
                p = plain_runs(project, path, ds, args.trials)
            else:
                p = plain_runs(project, path, ds, args.trials)
                s = sweep_runs(project, path, ds, args.trials, f"round-{r}")
            plain_t.append(p)
            sweep_t.append(s)
            ratios.append(s / p)
            print(f"round {r + 1}: plain {p:.2f} s  sweep {s:.2f} s  sweep/plain {s / p:.3f}")
        p, s = statistics.median(plain_t), statistics.median(sweep_t)
        ratio = statistics.median(ratios)
        print(f"median: plain {p:.2f} s ({p / args.trials * 1000:.0f} ms per run)  sweep {s:.2f} s"
              f"  overhead {(s - p) / args.trials * 1000:.0f} ms per trial  sweep/plain {ratio:.3f}"
              f"  (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
