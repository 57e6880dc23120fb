"""The Sweeps view: how to search, Start/Stop, the trials live, and "Apply best".

What is searched is marked with ⚲ in the inspector and the training settings (the project's
``search`` section); this view edits the rest of that section (objective, trials, time budget,
sampler, pruner: one undo step each) and runs it. Start hands a frozen copy of the project to a
:class:`~designer.ui.sweeps.worker.SweepWorker` (a QThread driving the engine's ``Sweep``); its
events reach :meth:`SweepsPanel._on_event` in the GUI thread, which only records them; a timer
redraws the table, the best, the two plots and the importances. Every trial is an ordinary run
in the project's runs folder (History lists it). "Apply best" writes the best trial's values
into the design and the settings as one undo step.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer.engine.model.graph import GraphError
from designer.engine.search.runner import (
    COMPLETE,
    MIN_TRIALS_FOR_IMPORTANCES,
    BestTrial,
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
    apply_best,
)
from designer.engine.search.space import (
    DIRECTIONS,
    MAX_TRIALS,
    PRUNERS,
    SAMPLERS,
    STARTUP_TRIALS,
    WARMUP_EPOCHS,
    SearchError,
    SearchSpace,
    default_direction,
    describe_params,
    search_space,
)

from ..widgets import guard_wheel
from .marking import summary
from .plots import SweepPlots
from .worker import Importances, SweepFailed, SweepRequest, SweepWorker

METRICS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
REDRAW_MS = 250
WORKERS_NOTE = ("Workers are threads of this window, each running one trial at a time. On a "
                "2-core CPU one trial already keeps both cores busy with its arithmetic, so a "
                "second worker mostly takes turns with the first (and with the window): more "
                "workers help on many cores or a GPU.")


class SweepsPanel(QWidget):
    """See the module docstring. Signals: ``trial_finished(run folder or "")`` (History
    refreshes), ``sweep_finished(reason)`` once the worker thread has ended."""

    trial_finished = Signal(str)
    sweep_finished = Signal(str)

    def __init__(self, document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.worker: SweepWorker | None = None
        self.trials: dict[int, dict[str, Any]] = {}
        self.space: SearchSpace | None = None
        self.best: BestTrial | None = None
        self.importances: dict[str, float] = {}
        self.study = ""
        self.status = ""
        self._project = None  # the document's project the shown sweep ran on
        self._dirty = False
        self._syncing = False

        # -- left: how to search ----------------------------------------------------------------
        self.searched = QLabel()
        self.searched.setWordWrap(True)
        self.searched.setTextFormat(Qt.RichText)
        self.metric_combo = QComboBox()
        self.metric_combo.setEditable(True)
        self.metric_combo.addItems(list(METRICS))
        self.metric_combo.setToolTip("The epoch metric each trial is judged by (its best epoch's "
                               "value)")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, MAX_TRIALS)
        self.trials_spin.setToolTip("Trials of the study in all")
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0, 100000)
        self.budget.setDecimals(1)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no limit")
        self.budget.setToolTip("Start no new trial after this long (the running one finishes)")
        self.sampler = QComboBox()
        self.sampler.addItems(list(SAMPLERS))
        self.sampler.setToolTip("tpe: learns where good values lie (default); random; grid: "
                                "every combination (int ranges and choices only)")
        self.pruner = QComboBox()
        self.pruner.addItems(list(PRUNERS))
        self.pruner.setToolTip("Stop a trial early when its epochs look worse than the others' "
                               "(median) or in rounds (successive halving)")
        self.startup_spin = QSpinBox()
        self.startup_spin.setRange(0, MAX_TRIALS)
        self.startup_spin.setSuffix(" complete trials")
        self.startup_spin.setToolTip("The pruner stops no trial before this many trials are "
                                     "complete: the median of one or two trials is noise")
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(0, MAX_TRIALS)
        self.warmup_spin.setSuffix(" epochs")
        self.warmup_spin.setToolTip("Every trial trains at least this many epochs before the "
                                    "pruner may stop it: the first epochs say little about the "
                                    "last")
        self.workers = QSpinBox()
        self.workers.setRange(1, 16)
        self.workers.setValue(1)
        self.workers.setToolTip(WORKERS_NOTE)
        workers_note = QLabel("1 is best on a small CPU (see the tooltip).")
        workers_note.setWordWrap(True)
        workers_note.setToolTip(WORKERS_NOTE)
        workers_note.setStyleSheet("color: #555;")
        form = QFormLayout()
        form.addRow("objective", self.metric_combo)
        form.addRow("", self.direction)
        form.addRow("trials", self.trials_spin)
        form.addRow("time budget", self.budget)
        form.addRow("sampler", self.sampler)
        form.addRow("pruner", self.pruner)
        form.addRow("prune after", self.startup_spin)
        form.addRow("and after", self.warmup_spin)
        form.addRow("workers", self.workers)
        form.addRow(workers_note)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.apply_button = QPushButton("Apply best")
        self.apply_button.setToolTip("Write the best trial's values into the design and the "
                                     "settings (one undo step)")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.apply_button.clicked.connect(self.apply_best)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.apply_button):
            buttons.addWidget(b)
        box = QGroupBox("Search")
        box_lay = QVBoxLayout(box)
        box_lay.addWidget(self.searched)
        box_lay.addLayout(form)
        left_inner = QWidget()
        left_lay = QVBoxLayout(left_inner)
        left_lay.addWidget(box)
        left_lay.addLayout(buttons)
        left_lay.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setMinimumWidth(200)

        # -- right: live results ----------------------------------------------------------------
        self.status_label = QLabel("Mark values to search with ⚲, then Start.")
        self.status_label.setWordWrap(True)
        self.best_label = QLabel()
        self.best_label.setWordWrap(True)
        self.best_label.setTextFormat(Qt.PlainText)
        self.best_label.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.PlainText)
        self.message.setStyleSheet("background: #fdecea; color: #b71c1c; padding: 6px;")
        self.message.hide()
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["#", "state", "objective", "values", "time"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.Stretch)
        self.plots = SweepPlots()
        self.importance_label = QLabel()
        self.importance_label.setWordWrap(True)
        self.importance_label.setTextFormat(Qt.PlainText)
        results = QSplitter(Qt.Horizontal)
        results.addWidget(self.table)
        results.addWidget(self.plots)
        results.setStretchFactor(0, 1)
        results.setStretchFactor(1, 1)
        results.setSizes([560, 640])
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(0, 0, 0, 0)
        right_lay.addWidget(self.status_label)
        right_lay.addWidget(self.best_label)
        right_lay.addWidget(self.message)
        right_lay.addWidget(results, 1)
        right_lay.addWidget(self.importance_label)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(splitter)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        for w, sig in ((self.metric_combo, self.metric_combo.activated), (self.direction,
                       self.direction.activated), (self.sampler, self.sampler.activated),
                       (self.pruner, self.pruner.activated)):
            sig.connect(self._on_form_edited)
        self.metric_combo.lineEdit().editingFinished.connect(self._on_form_edited)
        self.trials_spin.editingFinished.connect(self._on_form_edited)
        self.budget.editingFinished.connect(self._on_form_edited)
        self.startup_spin.editingFinished.connect(self._on_form_edited)
        self.warmup_spin.editingFinished.connect(self._on_form_edited)
        document.settings_changed.connect(self._on_settings_changed)
        document.changed.connect(self._sync_from_project)
        document.network_changed.connect(self._sync_from_project)
        self._sync_from_project()

    # -- the search section ----------------------------------------------------------------------

    @Slot(str)
    def _on_settings_changed(self, section: str) -> None:
        if section == "search":
            self._sync_from_project()

    @Slot()
    def _sync_from_project(self, *_: Any) -> None:
        search = self.document.project.search or {}
        has = bool(search)
        self._syncing = True
        try:
            objective = search.get("objective", {})
            metric = objective.get("metric", "val_loss")
            self.metric_combo.setCurrentText(metric)
            self.direction.setCurrentText(objective.get("direction",
                                                        default_direction(metric)))
            self.trials_spin.setValue(int(search.get("trials", 20)))
            self.budget.setValue((search.get("timeout_s") or 0) / 60)
            self.sampler.setCurrentText(search.get("sampler", "tpe"))
            self.pruner.setCurrentText(search.get("pruner", "median"))
            self.startup_spin.setValue(int(search.get("startup_trials", STARTUP_TRIALS)))
            self.warmup_spin.setValue(int(search.get("warmup_epochs", WARMUP_EPOCHS)))
        finally:
            self._syncing = False
        for w in (self.metric_combo, self.direction, self.trials_spin, self.budget, self.sampler,
                  self.pruner):
            w.setEnabled(has)
        prunes = has and self.pruner.currentText() != "none"
        self.startup_spin.setEnabled(prunes)
        self.warmup_spin.setEnabled(prunes)
        dims = search.get("dimensions", [])
        if dims:
            rows = "".join(f"<li><b>{_label(d['target'])}</b> {summary(d)}</li>" for d in dims)
            self.searched.setText(f"Searched ({len(dims)}):<ul style='margin:0'>{rows}</ul>")
        else:
            self.searched.setText("<i>Nothing is searched yet: click ⚲ beside a value in the "
                                  "inspector or the training settings.</i>")
        self._update_buttons()

    def _form_search(self) -> dict[str, Any]:
        search = dict(self.document.project.search)
        metric = self.metric_combo.currentText().strip() or "val_loss"
        search["objective"] = {"metric": metric, "direction": self.direction.currentText()}
        search["trials"] = self.trials_spin.value()
        minutes = self.budget.value()
        if minutes > 0:
            search["timeout_s"] = round(minutes * 60, 3)
        else:
            search.pop("timeout_s", None)
        search["sampler"] = self.sampler.currentText()
        search["pruner"] = self.pruner.currentText()
        search["startup_trials"] = self.startup_spin.value()
        search["warmup_epochs"] = self.warmup_spin.value()
        return search

    def _on_form_edited(self, *_: Any) -> None:
        if self._syncing or not self.document.project.search:
            return
        if self.sender() is self.metric_combo and self.metric_combo.currentText() != \
                self.document.project.search.get("objective", {}).get("metric"):
            # a new metric: its natural direction (accuracy goes up)
            self.direction.setCurrentText(default_direction(self.metric_combo.currentText()))
        new = self._form_search()
        if new == self.document.project.search:
            return
        try:
            self.document.set_search(new, "Change the sweep settings")
        except GraphError as exc:
            self.show_message(str(exc))
            self._sync_from_project()
            return
        self.hide_message()

    # -- running -----------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.worker is not None

    def start(self) -> bool:
        """Start the sweep in the background; False (with a message) when it cannot start."""
        if self.worker is not None:
            return False
        doc = self.document
        project = doc.project
        try:
            space = search_space(project)
        except SearchError as exc:
            self.show_message(str(exc))
            return False
        from designer.engine.document.project import project_from_dict
        from designer.engine.train.runs import project_stem

        copy = project_from_dict(project.to_dict())
        # the training settings Train and the memory estimate use (missing ones: defaults)
        copy.set_section("training", doc.training_settings())
        if doc.path is not None:
            path = Path(doc.path).resolve()
            base_dir, project_path = path.parent, path
        else:  # unsaved: runs go where the training panel's go (the user data folder)
            import platformdirs

            base_dir = Path.cwd()
            project_path = Path(platformdirs.user_data_dir("designer", appauthor=False)) / (
                project_stem(None, project.name) + ".dnn.json")
        self.study = f"{project.name} {datetime.now():%Y-%m-%d %H:%M:%S}"
        self.space = space
        self.trials.clear()
        self.best = None
        self.importances = {}
        self._project = project
        self.hide_message()
        request = SweepRequest(copy, base_dir, project_path, self.study,
                               workers=self.workers.value())
        self.worker = SweepWorker(request, self)
        self.worker.event.connect(self._on_event)
        self.worker.finished.connect(self._on_worker_finished)
        self.status = "running"
        self.status_label.setText(f"Starting study '{self.study}'…")
        self.worker.start()
        self._timer.start()
        self._dirty = True
        self._update_buttons()
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.status_label.setText("Stopping: the running trial stops before its next "
                                      "batch…")

    def stop_and_wait(self, timeout_ms: int = 30000) -> None:
        worker = self.worker
        if worker is not None:
            worker.stop()
            worker.wait(timeout_ms)
            self._on_worker_finished()

    shutdown = stop_and_wait

    @Slot(object)
    def _on_event(self, ev: Any) -> None:
        """Events from the worker, in the GUI thread: record them; the timer draws."""
        if self.sender() is not None and self.sender() is not self.worker:
            return  # an older sweep's late event
        if isinstance(ev, SweepStarted):
            self.status_label.setText(
                f"Study '{ev.study}': {ev.trials} trial(s); {ev.space.sampler} sampler, "
                f"{ev.space.pruner_text()}, {ev.space.direction} {ev.space.metric}.")
        elif isinstance(ev, TrialStarted):
            self.trials[ev.number] = {"number": ev.number, "state": "running", "value": None,
                                      "params": dict(ev.params), "duration": None,
                                      "message": "", "run_dir": ev.run_dir, "progress": ""}
        elif isinstance(ev, TrialProgress):
            t = self.trials.get(ev.number)
            if t is not None:
                t["progress"] = _progress(ev.event)
        elif isinstance(ev, TrialFinished):
            self.trials[ev.number] = {"number": ev.number, "state": ev.state,
                                      "value": ev.value, "params": dict(ev.params),
                                      "duration": ev.duration_s, "message": ev.message,
                                      "run_dir": ev.run_dir, "progress": ""}
            self._update_best()
            self.trial_finished.emit(ev.run_dir or "")
        elif isinstance(ev, Importances):
            self.importances = dict(ev.values)
        elif isinstance(ev, SweepFinished):
            if ev.best is not None:
                self.best = ev.best
            if ev.importances:
                self.importances = dict(ev.importances)
            counts = ", ".join(f"{n} {s}" for s, n in ev.counts.items()) or "no trials"
            self.status = ev.reason
            self.status_label.setText(f"Sweep {ev.reason}: {counts}.")
        elif isinstance(ev, SweepFailed):
            self.status = "failed"
            self.show_message(ev.message)
        self._dirty = True

    def _update_best(self) -> None:
        done = [t for t in self.trials.values() if t["state"] == COMPLETE
                and t["value"] is not None]
        if not done or self.space is None:
            return
        pick = min if self.space.direction == "minimize" else max
        t = pick(done, key=lambda t: t["value"])
        self.best = BestTrial(t["number"], float(t["value"]), dict(t["params"]), t["run_dir"])

    @Slot()
    def _on_worker_finished(self) -> None:
        worker = self.worker
        if worker is None:
            return
        self.worker = None
        worker.deleteLater()
        self._timer.stop()
        self._dirty = True
        self._redraw()
        self._update_buttons()
        self.sweep_finished.emit(self.status)

    # -- drawing -----------------------------------------------------------------------------------

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        space = self.space
        trials = [self.trials[k] for k in sorted(self.trials)]
        self.table.setRowCount(len(trials))
        for row, t in enumerate(trials):
            value = "" if t["value"] is None else f"{t['value']:.4f}"
            state = t["state"] + (f" ({t['progress']})" if t["state"] == "running"
                                  and t["progress"] else "")
            values = describe_params(t["params"])
            if t["message"]:
                values += f"  — {t['message'].splitlines()[0]}"
            time_text = "" if t["duration"] is None else f"{t['duration']:.1f}s"
            for col, text in enumerate((str(t["number"]), state, value, values, time_text)):
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, col, item)
                item.setText(text)
                item.setToolTip(t["message"] or (t["run_dir"] or ""))
                item.setForeground(Qt.darkGray if t["state"] in ("pruned", "failed")
                                   else Qt.black)
        if self.best is not None and space is not None:
            self.best_label.setText(f"Best: trial {self.best.number}, {space.metric} "
                                    f"{self.best.value:.4f}: "
                                    f"{describe_params(self.best.params)}")
        else:
            self.best_label.setText("")
        if space is not None:
            self.plots.objective.show_trials(trials, space.direction, space.metric)
            self.plots.parallel.show_trials(trials, space.dimensions, space.direction,
                                            space.metric)
        if self.importances:
            self.importance_label.setText("Importance: " + "   ".join(
                f"{k} {v:.2f}" for k, v in self.importances.items()))
        else:
            done = sum(t["state"] == COMPLETE for t in trials)
            self.importance_label.setText(
                f"Importances show once {MIN_TRIALS_FOR_IMPORTANCES} trials are complete "
                f"({done} so far)."
                if self.worker is not None or trials else "")
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.worker is not None
        self.start_button.setEnabled(not running and bool(self.document.project.search))
        self.stop_button.setEnabled(running)
        self.workers.setEnabled(not running)
        self.apply_button.setEnabled(self.best is not None
                                     and self._project is self.document.project)

    # -- apply best ----------------------------------------------------------------------------------

    def apply_best(self) -> bool:
        """Write the best trial's values into the design and settings: one undo step."""
        if self.best is None or self._project is not self.document.project:
            return False
        try:
            changes = apply_best(self.document.project, self.best)
            self.document.apply_search_values(
                changes, f"Apply the best trial ({self.best.number}) of the sweep")
        except (GraphError, SearchError) as exc:
            self.show_message(f"Cannot apply the best trial: {exc}")
            return False
        if not changes:
            self.status_label.setText("The design already has the best trial's values.")
        else:
            self.status_label.setText("Applied: " + describe_params(
                {t.label: v for t, v in changes.items()}) + " (Undo takes it back).")
        return bool(changes)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    def hide_message(self) -> None:
        self.message.hide()


def _label(target: dict[str, Any]) -> str:
    if "setting" in target:
        return target["setting"]
    return f"{target.get('node')}.{target.get('param') or target.get('arg')}"


def _progress(ev: Any) -> str:
    from designer.engine.train.events import Batch, Epoch

    if isinstance(ev, Batch):
        return f"epoch {ev.epoch}, batch {ev.batch}/{ev.batches}"
    if isinstance(ev, Epoch):
        return f"epoch {ev.epoch}/{ev.epochs} done"
    return ""


class SweepsDock(QDockWidget):
    def __init__(self, document, parent: QWidget | None = None) -> None:
        super().__init__("Sweeps", parent)
        self.setObjectName("SweepsDock")
        self.panel = SweepsPanel(document, self)
        self.setWidget(self.panel)
        guard_wheel(self.panel)  # only a focused field takes the wheel


__all__ = ["SweepsDock", "SweepsPanel"]
