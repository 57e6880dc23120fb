"""``designer train FILE``: train a design on its dataset with a live progress bar.

Writes a run folder (config, metrics history, best and last checkpoints). Exit status: 0 done,
1 training failed (or the design does not fit the data), 2 a file or setting cannot be used,
130 stopped with Ctrl-C (the checkpoints are kept).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

SHARED_DATASET_KEYS = ("val_fraction", "split_seed", "normalize", "resize", "grayscale",
                       "augment_crop_padding", "augment_hflip", "download")
# What a text dataset named by --dataset keeps of the project's text dataset of the same kind.
TEXT_DATASET_KEYS = {"csv_text": ("text_column", "label_column", "max_length", "vocab_size"),
                     "text": ("tokenizer", "seq_length", "vocab_size")}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a design on its dataset",
        description="Train the design in FILE on its dataset (or --dataset), showing loss, "
        "accuracy and speed, and write a run folder with config.json, metrics.jsonl, best.pt "
        "and last.pt. Ctrl-C stops cleanly and keeps the checkpoints; --resume continues a run.")
    p.add_argument("file", help="project file (.dnn.json), or a template's id (e.g. mlp-digits)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="number of epochs (with --resume: the total to reach)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train")
    p.add_argument("--dataset", metavar="NAME",
                   help="train on another dataset: digits, moons, spirals, linear, sine, MNIST, "
                   "FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN, an image folder or a .csv file "
                   "(texts and labels when the design takes token ids); a .txt file is a text "
                   "for the language_model recipe")
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per step")
    p.add_argument("--lr", type=float, metavar="LR",
                   help="learning rate (a GAN: of both networks)")
    p.add_argument("--out", metavar="DIR", help="run folder to create (default: "
                   "runs/<project>/<date-time>/ next to the project file)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its "
                   "last.pt; its history continues")
    p.set_defaults(func=run)


IMAGE_KINDS = ("digits", "torchvision", "image_folder")


def _dataset_override(current: dict[str, Any], name: str, text_kind: str | None = None
                      ) -> dict[str, Any]:
    """The dataset ``--dataset NAME`` names. ``text_kind``: what a .csv or .txt file is for a
    design of token ids ("csv_text": texts with labels; "text": a text for a language model)."""
    out = _dataset_for_name(current, name)
    suffix = Path(name).suffix.lower()
    kind = current.get("kind")
    if out.get("kind") == "csv" and (suffix in (".csv", ".tsv") and "csv_text" in (text_kind, kind)
                                     or suffix == ".txt" and "text" in (text_kind, kind)):
        text = "csv_text" if suffix in (".csv", ".tsv") else "text"
        kept = {k: current[k] for k in TEXT_DATASET_KEYS[text] if k in current and kind == text}
        return {**out, **kept, "kind": text}
    # The image normalisation mode (e.g. [-1, 1]) carries over to another image dataset only.
    if "normalization" in current and out["kind"] in IMAGE_KINDS and (
            current.get("kind", "digits") in IMAGE_KINDS):
        out["normalization"] = current["normalization"]
    return out


def _dataset_for_name(current: dict[str, Any], name: str) -> dict[str, Any]:
    from ..engine.train.config import resolve_dataset_name

    if not name.strip():  # Path("") is the current folder: never read that as an image folder
        raise ValueError("--dataset: empty; name a built-in dataset, an image folder or a .csv file")
    kept = {k: current[k] for k in SHARED_DATASET_KEYS if k in current}
    kind, canonical = resolve_dataset_name(name)
    if kind is not None:
        return {**kept, "kind": kind, "name": canonical if kind != "digits" else None}
    path = Path(name)
    if path.is_dir():
        return {**kept, "kind": "image_folder", "path": str(path.resolve())}
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return {**kept, "kind": "csv", "path": str(path.resolve())}
    raise ValueError(f"--dataset: {name!r} is neither a built-in dataset (digits, moons, spirals, "
                     f"linear, sine, MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN), an "
                     f"image folder nor a .csv file")


def _text_kind(spec, project) -> str | None:
    """What a text file named by --dataset is for this project: "text" for a language model,
    "csv_text" for a design that takes token ids (an imported BERT), else None."""
    if spec.id == "language_model":
        return "text"
    graph = spec.networks(project).get("model")
    inputs = graph.inputs() if graph is not None else []
    if len(inputs) == 1 and inputs[0].params.get("dtype") == "int64":
        return "csv_text"
    return None


class ProgressPrinter:
    """Turns trainer events into a one-line progress bar (on a terminal) and epoch lines."""

    def __init__(self, stream: TextIO, tty: bool | None = None, width: int = 24) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.width = width
        self.last_draw = 0.0
        self.line_open = False
        self.epochs = 0
        self.spec = None  # the recipe's words (designer.engine.train.recipes); set before the run

    def __call__(self, event: Any) -> None:
        from ..engine.train import training as T
        from ..engine.train.data import DownloadProgress

        if isinstance(event, DownloadProgress):
            if self.tty and time.monotonic() - self.last_draw > 0.1:
                total = f" / {event.total / 1e6:.1f} MB" if event.total else ""
                self._line(f"downloading {event.dataset}: {event.file} "
                           f"{event.done / 1e6:.1f} MB{total}")
        elif isinstance(event, T.Started):
            self.epochs = event.epochs
            resumed = f", resuming after epoch {event.start_epoch}" if event.start_epoch else ""
            batches, epochs = event.batches_per_epoch, event.epochs
            self._print(f"training on {event.device}: {event.n_train:,} samples, "
                        f"{batches} {'batch' if batches == 1 else 'batches'} per epoch, "
                        f"{epochs} {'epoch' if epochs == 1 else 'epochs'}{resumed}")
            for note in event.notes:
                self._print(f"note: {note}")
        elif isinstance(event, T.Batch):
            if self.tty and time.monotonic() - self.last_draw >= 0.1:
                done = event.batch / max(event.batches, 1)
                fill = int(done * self.width)
                bar = "#" * fill + "-" * (self.width - fill)
                extra = self._spec().batch_text(event.metrics)
                acc_text = f"  {extra}" if extra else ""
                self._line(f"epoch {event.epoch}/{self.epochs} [{bar}] {event.batch}/"
                           f"{event.batches}  loss {event.loss:.4f}{acc_text}  "
                           f"{event.samples_per_s:,.0f} samples/s  ETA {_clock(event.eta_s)}")
        elif isinstance(event, T.Epoch):
            words = self._spec().format_metrics
            self._print(f"epoch {event.epoch}/{event.epochs}  " + words("train", event.train)
                        + ("  " + words("val", event.val) if event.val else "")
                        + f"  lr {event.lr:.3g}  {event.samples_per_s:,.0f} samples/s"
                        + ("  *" if event.best else ""))
        elif isinstance(event, T.Paused):
            self._print(f"paused in epoch {event.epoch}")
        elif isinstance(event, T.Finished):
            best = (f"best epoch {event.best_epoch} (loss {event.best_loss:.4f})"
                    if event.best_epoch else "no best epoch")
            self._print(f"finished: {event.epochs_done} epoch(s), {event.reason}, {best}, "
                        f"{_clock(event.time_s)}")
            final = {k: v for k, v in event.final.items() if k != "confusion"}
            if final:
                self._print("final: " + "  ".join(f"{k} {_num(k, v)}" for k, v in final.items()))
            if event.run_dir:
                self._print(f"run folder: {event.run_dir}")
        elif isinstance(event, T.Stopped):
            where = f" ({event.run_dir})" if event.run_dir else ""
            self._print(f"stopped in epoch {event.epoch} after batch {event.batch}; "
                        f"checkpoints kept{where}")
        elif isinstance(event, T.Failed):
            self._print(f"error: {out_of_memory_message(event.message) or event.message}")
        else:  # a recipe's own event (a generated text sample, ...)
            line = self._spec().describe_event(event)
            if line:
                self._print(line)

    def _spec(self):
        if self.spec is None:
            from ..engine.train.recipes import DEFAULT_RECIPE, get

            self.spec = get(DEFAULT_RECIPE)
        return self.spec

    def _line(self, text: str) -> None:
        self.stream.write("\r" + text[:160].ljust(min(160, max(len(text), 80))))
        self.stream.flush()
        self.line_open = True
        self.last_draw = time.monotonic()

    def _print(self, text: str) -> None:
        if self.line_open:
            self.stream.write("\r" + " " * 160 + "\r")
            self.line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()


_OOM_MARKERS = ("can't allocate memory", "cannot allocate memory", "out of memory",
                "memoryerror", "defaultcpuallocator")


def out_of_memory_message(text: str) -> str | None:
    """One line for an allocation failure (MemoryError, torch's "can't allocate memory" or CUDA
    "out of memory"), or None when ``text`` is about something else."""
    low = text.lower()
    if not any(m in low for m in _OOM_MARKERS):
        return None
    size = ""
    marker = "you tried to allocate "
    if marker in low:  # torch: "... you tried to allocate 1800000000000 bytes. Error code 12"
        digits = low.split(marker, 1)[1].split(" ", 1)[0]
        if digits.isdigit():
            from ..engine.model.memory import fmt_bytes

            size = f" (an allocation of {fmt_bytes(int(digits))})"
    return (f"out of memory{size}: lower training.batch_size (--batch-size), shorten the input "
            f"or sequence, or narrow the largest layers; 'designer check' shows the memory estimate")


def _num(key: str, v: Any) -> str:
    if v is None:  # e.g. R2 of a single validation sample: undefined
        return "n/a"
    if not isinstance(v, (int, float)):
        return str(v)
    if key in ("accuracy", "top5_accuracy", "precision", "recall", "f1"):
        return f"{v * 100:.2f}%"
    return f"{v:.4g}" if math.isfinite(v) else "nan"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    from ..engine.document.project import ProjectError, load_project
    from ..engine.model.shapes import analyze
    from ..engine.services import train_project
    from ..engine.train import runs
    from ..engine.train.config import ConfigError, validate_dataset, validate_training
    from ..engine.train.data import DatasetError, load_dataset
    from ..engine.train.recipes import RecipeError, UnknownRecipe, recipe_of

    err = sys.stderr

    def fail(msg: str, code: int = 2) -> int:
        print(f"error: {msg}", file=err)
        return code

    try:
        project = load_project(args.file)
    except ProjectError as exc:
        return fail(str(exc))
    project_path = Path(args.file)
    base_dir = project_path.resolve().parent
    dataset_cfg = dict(project.dataset)
    training_cfg = dict(project.training)
    run_dir: Path
    if args.resume:
        run_dir = Path(args.resume)
        try:
            recorded = runs.read_config(run_dir)
        except runs.RunError as exc:
            return fail(str(exc))
        if not (run_dir / runs.LAST).exists():
            return fail(f"{run_dir}: no {runs.LAST} to resume from")
        dataset_cfg = dict(recorded.get("dataset") or dataset_cfg)
        training_cfg = dict(recorded.get("training") or training_cfg)
    for key, value in (("epochs", args.epochs), ("device", args.device),
                       ("batch_size", args.batch_size), ("lr", args.lr)):
        if value is not None:
            training_cfg[key] = value
    try:
        spec = recipe_of(training_cfg)
    except UnknownRecipe as exc:
        return fail(str(exc))
    if args.dataset is not None:
        try:
            dataset_cfg = _dataset_override(dataset_cfg, args.dataset,
                                            _text_kind(spec, project))
        except ValueError as exc:
            return fail(str(exc))
    chosen = set(dataset_cfg)  # the settings the project or --dataset names (not defaults)
    if args.lr is not None:  # --lr sets the recipe's learning rates (a GAN has one per network)
        training_cfg.update({key: args.lr for key in spec.lr_keys})
    try:
        dataset_cfg = validate_dataset(dataset_cfg)
        training_cfg = validate_training(training_cfg)
    except ConfigError as exc:
        return fail(str(exc))
    progress = ProgressPrinter(err)
    try:
        dataset = load_dataset(dataset_cfg, base_dir, progress=progress)
    except DatasetError as exc:
        return fail(str(exc))
    progress.spec = spec
    analyses = {role: analyze(g) for role, g in spec.networks(project).items()}
    if all(a.ok for a in analyses.values()):  # the design's own errors come from prepare below
        check = spec.check_data(project, dataset, training_cfg, analyses=analyses)
        # A dataset setting left at its default is fitted to the design (an imported model's
        # sequence length, its vocabulary); one the project or --dataset chose is only reported.
        fits = [f for f in check.dataset_fixes if f.setting not in chosen]
        if not check.ok and fits:
            dataset_cfg = {**dataset_cfg, **{f.setting: f.value for f in fits}}
            for f in fits:
                print(f"note: dataset.{f.setting} set to {f.value} to fit the design (set it "
                      f"in the project to choose another)", file=err)
            try:
                dataset = load_dataset(dataset_cfg, base_dir, progress=progress)
            except DatasetError as exc:
                return fail(str(exc))
            check = spec.check_data(project, dataset, training_cfg, analyses=analyses)
        print(dataset.describe(), file=err)
        for p in check.problems:
            print(f"{p.severity}: {p.message}", file=err)
        if not check.ok:
            return 1
    else:
        print(dataset.describe(), file=err)
    if not args.resume:
        if args.out:
            run_dir = Path(args.out)
            if run_dir.exists() and not run_dir.is_dir():
                return fail(f"{run_dir} is a file; --out needs a folder for the run")
            if (run_dir / runs.CONFIG).exists():
                return fail(f"{run_dir} already holds a run; use --resume {run_dir} to continue "
                            f"it, or choose another --out folder")
        else:
            run_dir = runs.default_run_dir(project_path, project.name)
    extra = {"dataset": dataset_cfg, "project": project.to_dict(),
             "project_file": str(project_path.resolve())}
    try:  # the recipe's previews of each epoch (a GAN's grids, as PNG) go to <run>/samples
        _, _, trainer = train_project.prepare_trainer(
            project, dataset, training_cfg, run_dir=run_dir, callback=progress,
            extra_config=extra, resume=bool(args.resume))
    except RecipeError as exc:
        return fail(str(exc), 1)
    except (MemoryError, RuntimeError) as exc:  # the estimate can miss: never a traceback
        oom = out_of_memory_message(f"{type(exc).__name__}: {exc}")
        if oom is None:
            raise
        return fail(oom, 1)
    thread = trainer.start()
    interrupted = False
    # Poll with sleep, not join(timeout): on Python < 3.13 a Ctrl-C inside join() can mark a
    # running thread as finished (the tstate lock is released by the interrupted join).
    while trainer.result is None and thread.is_alive():
        try:
            time.sleep(0.1)
        except KeyboardInterrupt:  # Ctrl-C: stop after the current batch, keep checkpoints
            if interrupted:
                os._exit(130)
            print("\nstopping after this batch; Ctrl-C again quits at once", file=err)
            interrupted = True
            trainer.stop()
    thread.join()
    result = trainer.result
    if result is None or result.status == "failed":
        return 1
    if result.status == "stopped":
        return 130
    return 0
