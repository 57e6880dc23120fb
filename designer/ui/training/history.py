"""Run history: every training run of the project, from the run folders the engine writes.

Run folders live beside the project (``<project folder>/runs/<project>/<timestamp>/``, see
:func:`designer.engine.runs.default_run_dir`); each holds ``config.json`` and ``metrics.jsonl``.
The list shows start time, a settings summary, the best validation metric and the duration;
selected runs are overlaid on the live plots; a run's settings can be reopened; a run can be
deleted (after a question) or evaluated from its best checkpoint.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .plots import RunCurves

# metric name -> whether higher is better
_METRICS = (("accuracy", True), ("r2", True), ("f1", True), ("mae", False), ("mse", False),
            ("loss", False))


def flat_record(rec: dict[str, Any]) -> dict[str, Any]:
    """One metrics record with nested phases flattened: ``{"val": {"loss": 1}}`` -> ``val_loss``."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict) and k in ("train", "val", "validation"):
            prefix = "val" if k == "validation" else k
            for kk, vv in v.items():
                out[f"{prefix}_{kk}"] = vv
        else:
            out[k] = v
    return out


def optimizer_text(training: dict[str, Any]) -> str:
    """How a run optimizes, in a few words. A GAN has two learning rates (lr_d, lr_g), Adam's
    beta1, D steps per G step and a generator loss; its ``lr`` is not used, so it is not shown."""
    from designer.engine.config import defaults
    from designer.engine.recipes import is_gan

    t = {**defaults("training"), **training}
    opt = str(t.get("optimizer", "?"))
    if not is_gan(t):
        return f"{opt} lr {_g(t.get('lr'))}"
    parts = [f"GAN {opt} lr_d {_g(t.get('lr_d'))} lr_g {_g(t.get('lr_g'))}"]
    if opt in ("adam", "adamw"):
        parts.append(f"beta1 {_g(t.get('beta1'))}")
    parts.append(f"d_steps {t.get('d_steps')}")
    parts.append(f"{t.get('gan_loss')} G loss")
    return ", ".join(parts)


def _g(v: Any) -> str:
    return f"{v:g}" if _num(v) is not None else str(v)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class RunRecord:
    """What the history shows of one run folder."""

    path: Path
    started: datetime | None
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float | None = None
    status: str = ""
    checkpoints: list[Any] = field(default_factory=list)  # runs.CheckpointInfo: best, last
    final: str = ""  # the last epoch's headline figure ("accuracy 97.77%")

    def checkpoint(self, kind: str):
        """The run's ``best`` or ``last`` CheckpointInfo, or None."""
        return next((c for c in self.checkpoints if c.kind == kind), None)

    @property
    def training(self) -> dict[str, Any]:
        t = self.config.get("training")
        return t if isinstance(t, dict) else {}

    @property
    def dataset(self) -> dict[str, Any]:
        d = self.config.get("dataset")
        return d if isinstance(d, dict) else {}

    @property
    def is_gan(self) -> bool:
        """A GAN run: its checkpoint holds two networks and it has no predictions to evaluate."""
        from designer.engine.recipes import is_gan

        return is_gan(self.training) or any("loss_d" in r for r in self.history)

    def last_scores(self) -> str:
        """A GAN run's final D(x) and D(G(z)) (validation if kept, else training), e.g.
        ``D(x) 0.72, D(G(z)) 0.52``; empty if none were recorded."""
        for r in reversed(self.history):
            for phase in ("val", "train"):
                real, fake = _num(r.get(f"{phase}_d_real")), _num(r.get(f"{phase}_d_fake"))
                if real is not None and fake is not None:
                    return f"D(x) {real:.2f}, D(G(z)) {fake:.2f}"
        return ""

    def metric_name(self) -> str | None:
        """The headline metric: validation accuracy for classification, R2 (or MAE) else."""
        keys = set().union(*(r.keys() for r in self.history)) if self.history else set()
        for name, _ in _METRICS:
            if f"val_{name}" in keys:
                return name
        return None

    def summary(self) -> str:
        t = self.training
        ds = self.dataset
        data = ds.get("name") or ds.get("kind") or "?"
        parts = [str(data), optimizer_text(t), f"bs {t.get('batch_size', '?')}",
                 f"{t.get('epochs', '?')} ep"]
        if t.get("scheduler") not in (None, "none"):
            parts.append(str(t["scheduler"]))
        return ", ".join(parts)

    def curves(self) -> RunCurves:
        label = self.started.strftime("%m-%d %H:%M:%S") if self.started else self.path.name
        if self.is_gan:
            label += " (D + G loss)"  # a GAN's "loss" is the sum, as its live loss curve shows
        name = self.metric_name()
        c = RunCurves(label)
        for r in self.history:
            c.epochs.append(float(r["epoch"]))
            c.train_loss.append(_nan(r.get("train_loss")))
            c.val_loss.append(_nan(r.get("val_loss")))
            c.val_metric.append(_nan(r.get(f"val_{name}")) if name and name != "loss"
                                else math.nan)
        if all(math.isnan(v) for v in c.val_loss):
            c.val_loss = []
        if all(math.isnan(v) for v in c.val_metric):
            c.val_metric = []
        return c


def _nan(v: Any) -> float:
    n = _num(v)
    return math.nan if n is None else n


def _started(path: Path, config: dict[str, Any]) -> datetime | None:
    for key in ("started", "started_at", "start_time"):
        v = config.get(key)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v)
            except ValueError:
                pass
    stamp = path.name.split("-")
    try:
        return datetime.strptime("-".join(stamp[:2]), "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def read_run(path: Path) -> RunRecord | None:
    """A run folder's record, or None when ``path`` is not a readable run folder."""
    from designer.engine.runs import RunError, checkpoints, headline, read_config, read_history

    try:
        config = read_config(path)
    except RunError:
        return None
    if not isinstance(config, dict):
        return None
    raw = read_history(path)
    history = [flat_record(r) for r in raw]
    started = _started(path, config)
    duration = _num(history[-1].get("elapsed_s")) if history else None  # the run's wall time
    times = [v for r in history if (v := _num(r.get("time_s"))) is not None]  # per epoch
    if duration is None and times:  # a run from before elapsed_s was recorded
        duration = sum(times)
    if duration is None and history:
        try:
            duration = max(0.0, (path / "metrics.jsonl").stat().st_mtime
                           - (path / "config.json").stat().st_mtime)
        except OSError:
            duration = None
    status = str(config.get("status", "")) if isinstance(config.get("status"), str) else ""
    if not status:
        planned = (config.get("training") or {}).get("epochs") if isinstance(
            config.get("training"), dict) else None
        done = max((int(r["epoch"]) for r in history), default=0)
        if isinstance(planned, int) and planned > 0:
            status = "complete" if done >= planned else f"ended at {done}/{planned}"
    return RunRecord(path, started, config, history, duration, status, checkpoints(path, raw),
                     headline(raw[-1]) if raw else "")


def list_runs(root: Path | None) -> list[RunRecord]:
    """Every run folder directly under ``root``, newest first."""
    if root is None or not root.is_dir():
        return []
    runs = [r for p in root.iterdir() if p.is_dir() and (r := read_run(p)) is not None]
    runs.sort(key=lambda r: (r.started or datetime.min, r.path.name), reverse=True)
    return runs


def gan_evaluate_note(run_dir: Path) -> str:
    """Why a GAN run has no Evaluate, and where to look instead."""
    return ("A GAN run has no predictions to score: its generator makes samples from noise. "
            "Its sample grids (one per epoch) are in " + str(Path(run_dir) / "samples"))


def runs_root(project_path: Path | None, project_name: str) -> Path:
    """The folder holding this project's run folders (the engine's policy, one level up)."""
    from designer.engine.runs import default_run_dir

    return default_run_dir(project_path, project_name).parent


def delete_run(run: RunRecord, root: Path) -> None:
    """Delete a run folder; refuses anything that is not a run folder inside ``root``."""
    path = run.path.resolve()
    if path.parent != root.resolve() or not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder of this project; nothing deleted")
    shutil.rmtree(path)


def duration_text(s: float | None) -> str:
    if s is None:
        return ""
    if s < 10:  # a starter run takes under a second: not "0 s"
        return f"{s:.1f} s"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class HistoryPanel(QWidget):
    """The run list with overlay, reopen, evaluate and delete.

    Signals: ``overlay_changed(list[RunCurves])`` as the selection changes;
    ``reopen_requested(dict dataset, dict training)``; ``evaluate_requested(Path run folder)``.
    """

    overlay_changed = Signal(list)
    reopen_requested = Signal(dict, dict)
    evaluate_requested = Signal(object)

    # "best.pt": the epoch whose weights the run's best.pt holds (lowest validation loss) and its
    # figure: what Export ships and Evaluate scores by default; "final": the last epoch's figure
    COLUMNS = ("started", "settings", "best.pt", "final", "epochs", "duration", "status")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root: Path | None = None
        self.runs: list[RunRecord] = []
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.refresh_button = QPushButton("Refresh")
        self.reopen_button = QPushButton("Reopen settings")
        self.evaluate_button = QPushButton("Evaluate")
        self.delete_button = QPushButton("Delete…")
        self.refresh_button.clicked.connect(self.refresh)
        self.reopen_button.clicked.connect(self._reopen)
        self.evaluate_button.clicked.connect(self._evaluate)
        self.delete_button.clicked.connect(self._delete)
        self.note = QLabel("Select runs to overlay their curves on the plots.")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.PlainText)
        buttons = QHBoxLayout()
        for b in (self.refresh_button, self.reopen_button, self.evaluate_button,
                  self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.note)
        self.confirm_delete = True  # tests switch the question off
        self._update_buttons()

    def set_root(self, root: Path | None) -> None:
        self.root = root
        self.refresh()

    def refresh(self) -> None:
        selected = {r.path for r in self.selected_runs()}
        self.runs = list_runs(self.root)
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(self.runs))
            for i, run in enumerate(self.runs):
                best = run.checkpoint("best")
                epochs = max((int(r["epoch"]) for r in run.history), default=0)
                cells = [
                    run.started.strftime("%Y-%m-%d %H:%M:%S") if run.started else run.path.name,
                    run.summary(),
                    "" if best is None else
                    ", ".join(p for p in (f"epoch {best.epoch}" if best.epoch else "",
                                          "" if run.is_gan else best.figure) if p),
                    run.last_scores() if run.is_gan else run.final,
                    str(epochs),
                    duration_text(run.duration_s),
                    run.status,
                ]
                for c, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(str(run.path))
                    self.table.setItem(i, c, item)
                if run.path in selected:
                    self.table.selectRow(i)
        finally:
            self.table.blockSignals(False)
        self.table.resizeColumnToContents(0)
        self._on_selection()

    def selected_runs(self) -> list[RunRecord]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.runs[r] for r in rows if r < len(self.runs)]

    def select(self, rows: list[int]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        for r in rows:
            self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    def _update_buttons(self) -> None:
        runs = self.selected_runs()
        n = len(runs)
        self.reopen_button.setEnabled(n == 1)
        gan = n == 1 and runs[0].is_gan
        self.evaluate_button.setEnabled(n == 1 and not gan)
        self.evaluate_button.setToolTip(
            gan_evaluate_note(runs[0].path) if gan else
            "Score the run's best.pt (lowest validation loss) on its validation data; the "
            "Evaluation tab can switch to last.pt")

    def _on_selection(self) -> None:
        self._update_buttons()
        if any(r.is_gan for r in self.selected_runs()):
            self.note.setText("GAN runs overlay their loss (D loss + G loss) per epoch on the "
                              "Curves tab; each run's sample grids are in its samples folder.")
        self.overlay_changed.emit([r.curves() for r in self.selected_runs() if r.history])

    def _reopen(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.reopen_requested.emit(dict(runs[0].dataset), dict(runs[0].training))

    def _evaluate(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.evaluate_requested.emit(runs[0].path)

    def _delete(self) -> None:
        runs = self.selected_runs()
        if not runs or self.root is None:
            return
        if self.confirm_delete:
            answer = QMessageBox.question(
                self, "Delete runs",
                f"Delete {len(runs)} run folder(s) with their checkpoints? This cannot be undone.")
            if answer != QMessageBox.Yes:
                return
        errors = []
        for run in runs:
            try:
                delete_run(run, self.root)
            except (OSError, ValueError) as exc:
                errors.append(str(exc))
        self.note.setText("\n".join(errors) if errors else f"Deleted {len(runs)} run(s).")
        self.refresh()
