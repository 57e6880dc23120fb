"""Run history: every training run of the project, from the run folders the engine writes.

Reading the folders is the engine's (``designer.engine.train.run_history``; its names are importable
from here too); this module shows them. The list shows start time, a settings summary, the best
validation metric and the duration; selected runs are overlaid on the live plots; a run's settings
can be reopened; a run can be deleted (after a question) or evaluated from its best checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

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

from designer.engine.train.run_history import (  # noqa: F401 - re-exported for the panel and tests
    RunRecord,
    delete_run,
    duration_text,
    finite_or_nan,
    flat_record,
    list_runs,
    optimizer_text,
    read_run,
    runs_root,
)

from .plots import RunCurves


def run_curves(run: RunRecord) -> RunCurves:
    """A run's loss and headline-metric curves per epoch, to overlay on the live plots."""
    label = run.started.strftime("%m-%d %H:%M:%S") if run.started else run.path.name
    if run.spec.loss_label:  # e.g. a GAN's "loss" is D + G loss, as its live curve shows
        label += f" ({run.spec.loss_label})"
    name = run.metric_name()
    c = RunCurves(label)
    for r in run.history:
        c.epochs.append(float(r["epoch"]))
        c.train_loss.append(finite_or_nan(r.get("train_loss")))
        c.val_loss.append(finite_or_nan(r.get("val_loss")))
        c.val_metric.append(finite_or_nan(r.get(f"val_{name}")) if name and name != "loss"
                            else math.nan)
    if all(math.isnan(v) for v in c.val_loss):
        c.val_loss = []
    if all(math.isnan(v) for v in c.val_metric):
        c.val_metric = []
    return c


def _best_cell(run: RunRecord, best) -> str:
    """What the run's best.pt holds; "last.pt only" for a recipe that keeps no best.pt."""
    if best is None:
        return "none: last.pt only" if run.spec.best is None and run.checkpoint("last") else ""
    return ", ".join(p for p in (f"epoch {best.epoch}" if best.epoch else "",
                                 best.figure if run.evaluates else "") if p)


class HistoryPanel(QWidget):
    """The run list with overlay, reopen, evaluate and delete.

    Signals: ``overlay_changed(list[RunCurves])`` as the selection changes;
    ``reopen_requested(dict dataset, dict training)``; ``evaluate_requested(Path run folder)``.
    """

    overlay_changed = Signal(list)
    reopen_requested = Signal(dict, dict)
    evaluate_requested = Signal(object)
    run_selected = Signal(object)  # the one selected run's folder (Path), else None: a replay

    # "best.pt": the epoch whose weights the run's best.pt holds (lowest validation loss) and its
    # figure: what Export ships and Evaluate scores by default; "final": the last epoch's figure;
    # "changes": what differs in the design and settings from the run before it
    COLUMNS = ("started", "settings", "best.pt", "final", "epochs", "duration", "status",
               "changes")
    CHANGES_SHOWN = 2  # changes in the cell; all of them in its tooltip

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
                    _best_cell(run, best),
                    run.final,
                    str(epochs),
                    duration_text(run.duration_s),
                    run.status,
                    self._changes_cell(run),
                ]
                tip = self._changes_tip(run, self.runs[i + 1] if i + 1 < len(self.runs)
                                        else None)
                for c, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(str(run.path) + "\n\n" + tip if c in (1, 7) else
                                    str(run.path))
                    self.table.setItem(i, c, item)
                if run.path in selected:
                    self.table.selectRow(i)
        finally:
            self.table.blockSignals(False)
        for c in range(len(self.COLUMNS)):  # whole texts (best.pt's "epoch 9, accuracy ...")
            if c != 1:
                self.table.resizeColumnToContents(c)
        self._on_selection()

    def _changes_cell(self, run: RunRecord) -> str:
        if run.changes is None:
            return ""
        if not run.changes:
            return "same design and settings"
        shown = "; ".join(run.changes[:self.CHANGES_SHOWN])
        more = len(run.changes) - self.CHANGES_SHOWN
        return shown + (f"; +{more} more" if more > 0 else "")

    @staticmethod
    def _changes_tip(run: RunRecord, before: RunRecord | None) -> str:
        if before is None:
            return "The first run listed: nothing to compare with."
        if run.changes is None:
            return "One of this run and the run before it did not record its design."
        when = (before.started.strftime("%Y-%m-%d %H:%M:%S") if before.started
                else before.path.name)
        if not run.changes:
            return f"Same design and settings as the run of {when}."
        return f"Changed since the run of {when}:\n" + "\n".join(run.changes)

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
        no_eval = n == 1 and not runs[0].evaluates
        self.evaluate_button.setEnabled(n == 1 and not no_eval)
        self.evaluate_button.setToolTip(
            runs[0].no_evaluation_note() if no_eval else
            "Score the run's best.pt (lowest validation loss) on its validation data; the "
            "Evaluation tab can switch to last.pt")

    def _on_selection(self) -> None:
        self._update_buttons()
        if any(not r.evaluates for r in self.selected_runs()):
            self.note.setText("These runs overlay their loss per epoch on the Curves tab (a "
                              "GAN's is D loss + G loss); each run's previews are in its "
                              "samples folder.")
        self.overlay_changed.emit([run_curves(r) for r in self.selected_runs() if r.history])
        chosen = self.selected_runs()
        self.run_selected.emit(chosen[0].path if len(chosen) == 1 else None)

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
