"""The training panel: dataset and settings, Train/Pause/Resume/Stop, live curves, evaluation,
run history and export, in one dock.

Train snapshots the design (``graph.copy()``) and the settings and hands them to a
:class:`~designer.ui.training.worker.TrainingWorker`; the design stays editable and edits never
reach the running model. Worker events arrive at :meth:`TrainingPanel._on_event`, a slot of this
widget (GUI thread), which only writes into plot buffers and labels; the plots redraw from a timer.

Settings edits are undo commands on the document's stack, like every other edit; the one-click
"make the design fit" is one undo step made of ``Document.set_params`` calls inside a macro.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import (
    QDockWidget,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from designer.engine.train import runs
from designer.engine.train.config import (
    TRAINING_SETTINGS,
    ConfigError,
    validate_dataset,
    validate_training,
)
from designer.engine.train.evaluation import make_predictor
from designer.engine.train.events import (
    Batch,
    CheckpointSaved,
    DownloadProgress,
    Epoch,
    Failed,
    Finished,
    InsideSample,
    InsideSummary,
    Paused,
    Resumed,
    Started,
    Stopped,
)
from designer.engine.train.run_history import (
    duration_text,
    read_run,
    runs_root,
)

from ..torch_loader import available_devices, torch_ready
from ..widgets import ElidedLabel
from .dataset_chooser import DatasetChooser, config_key
from .evaluation import EvaluationPanel
from .history import HistoryPanel
from .plots import TrainingPlots
from .settings_form import SettingsForm
from .worker import DatasetReady, Evaluated, EvaluateRunWorker, RunSnapshot, TrainingWorker

MAX_LOG_LINES = 5000
PROGRESS_INTERVAL_S = 0.25
SETTINGS_MIN_WIDTH = 250  # the dataset and settings column (pixels)
METRIC_FOR_TASK = {"classification": ("accuracy", "accuracy"), "regression": ("r2", "R²"),
                   "reconstruction": ("mse", "MSE")}


class SetSettingsCommand(QUndoCommand):
    """Replace a project's ``dataset`` or ``training`` section (one undo step), through
    ``Project.set_section``: its ``settings_changed`` event is what views follow."""

    def __init__(self, project, section: str, new: dict[str, Any], text: str) -> None:
        super().__init__(text)
        self.project = project
        self.section = section
        self.old = copy.deepcopy(getattr(project, section))
        self.new = copy.deepcopy(new)

    def redo(self) -> None:
        self.project.set_section(self.section, self.new)  # the project stores a copy

    def undo(self) -> None:
        self.project.set_section(self.section, self.old)


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(QWidget):
    """See the module docstring. Signals: ``run_started``; ``run_finished(status)`` once the
    worker thread has ended (status: finished, stopped or failed); ``evaluation_ready(result)``;
    ``message_shown(text)`` for failures and refused actions."""

    run_started = Signal()
    state_changed = Signal()  # idle / running / paused changed (the window's Run actions follow)
    run_finished = Signal(str)
    evaluation_ready = Signal(object)
    message_shown = Signal(str)
    inside_event = Signal(object)  # InsideSummary / InsideSample of the run (the Inside panel's)

    def __init__(self, document=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = None
        self.worker: TrainingWorker | None = None
        self._eval_worker: EvaluateRunWorker | None = None
        self._status = ""
        self._syncing = False
        self._last_batch: tuple[int, int, float] = (0, 0, 0.0)
        self._next_progress = 0.0
        self._metric_key = "accuracy"
        self.model = None  # the last trained model (CPU), for "try it"
        self.run_dir: Path | None = None
        self._evaluated_run: Path | None = None  # the run folder the Evaluation tab shows
        self._check_when_torch_ready = False  # a fit check waits for the background torch import
        self._detached: list[TrainingWorker] = []  # stopped runs still ending (stop_and_wait)
        self.last_error: str = ""
        self._run_failure_shown = False  # the message is a run's failure (not a refusal)
        self._loads_at_failure = 0  # the chooser's loads started when the run failed
        self._top_analysis = None  # (key, analysis) of the trained network, when analysed here

        # -- left: dataset, settings, buttons ---------------------------------------------------
        self.chooser = DatasetChooser()
        # cuda/mps join the device choice once torch has loaded (in the background: set_devices)
        devices = available_devices() if torch_ready() else ["cpu"]
        # a setting that does not apply (the loss of a recipe with its own) is not shown at all
        self.settings = SettingsForm(TRAINING_SETTINGS, choices={"device": ["auto"] + devices},
                                     hide_inapplicable=True)
        data_box = QGroupBox("Dataset")
        QVBoxLayout(data_box).addWidget(self.chooser)
        settings_box = QGroupBox("Training settings")
        QVBoxLayout(settings_box).addWidget(self.settings)
        left_inner = QWidget()
        left_lay = QVBoxLayout(left_inner)
        left_lay.addWidget(data_box)
        left_lay.addWidget(settings_box)
        left_lay.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        # Scrolls down, never sideways: the forms wrap (a field under its label) to fit its width,
        # which stays wide enough to read a field even beside Inside on a 1280 px screen; the
        # dock must not force a wide window either.
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        left.setMinimumWidth(SETTINGS_MIN_WIDTH)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the design as it is now on the chosen dataset")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.export_button = QPushButton("Export…")
        for b, slot in ((self.train_button, self.train), (self.pause_button, self.pause),
                        (self.resume_button, self.resume), (self.stop_button, self.stop),
                        (self.export_button, self.open_export_dialog)):
            b.clicked.connect(slot)
            _compact(b)

        # -- right: progress, message, tabs ---------------------------------------------------------
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress_label = ElidedLabel("Ready.")  # never widens the window: ends in "…"
        self.progress_label.setTextFormat(Qt.PlainText)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.PlainText)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setStyleSheet("background: #fdecea; color: #b71c1c; padding: 6px;")
        # at most about three lines: the curves below keep their room (the tooltip and the Log
        # hold the whole text)
        self.message.setMaximumHeight(self.message.fontMetrics().lineSpacing() * 3 + 16)
        self.message.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.message.hide()
        self.plots = TrainingPlots()
        self.evaluation = EvaluationPanel()
        self.history = HistoryPanel()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.log, "Log")
        self.tabs.setMinimumHeight(90)  # the dock may be made low; its pages scroll or shrink
        self.tabs.setUsesScrollButtons(True)  # and narrow: its tabs scroll
        # The live view of the project's recipe (a GAN's sample grid, a VAE's reconstructions,
        # a language model's text), registered under the recipe's view id (views.py).
        self.recipe_view = None
        self._recipe_view_id = ""
        self._recipe_views: dict[str, QWidget | None] = {}  # made once per view id

        buttons = QHBoxLayout()  # the progress bar between the run buttons and Export: one row
        for b in (self.train_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(b)
        self.progress.setMinimumWidth(60)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(0, 0, 0, 0)
        right_lay.addLayout(buttons)
        right_lay.addWidget(self.progress_label)
        right_lay.addWidget(self.message)
        right_lay.addWidget(self.tabs, 1)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        splitter.setCollapsible(0, False)
        splitter.setSizes([SETTINGS_MIN_WIDTH + 40, 3 * SETTINGS_MIN_WIDTH])  # scaled on show
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(splitter)

        self.chooser.changed.connect(self._on_dataset_edited)
        self.chooser.loaded.connect(self._on_dataset_loaded)
        self.chooser.fix_requested.connect(self.apply_fixes)
        self.settings.changed.connect(self._on_training_edited)
        self.history.overlay_changed.connect(self.plots.set_overlays)
        self.history.reopen_requested.connect(self.reopen_settings)
        self.history.evaluate_requested.connect(self.evaluate_run)
        self.evaluation.checkpoint_chosen.connect(self._evaluate_checkpoint)
        self._update_buttons()
        if document is not None:
            self.set_document(document)

    # -- the document ------------------------------------------------------------------------------

    def set_document(self, document) -> None:
        """Follow a :class:`~designer.ui.document.Document` (the window's open project); None
        lets go of the current one (its signals are disconnected)."""
        if self.document is not None:
            for sig, slot in self._doc_connections():
                try:
                    sig.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
        self.document = document
        if document is None:
            return
        for sig, slot in self._doc_connections():
            sig.connect(slot)
        self._load_from_project()

    def reset_view(self) -> None:
        """A clean training view for another design (New, Open): no curves, evaluation, log,
        progress or message of the previous one. Its runs stay in its own History."""
        self.plots.clear()
        self.plots.set_overlays([])
        self._set_metric_for("classification")  # until this design's data says otherwise
        if self.recipe_view is not None:
            self.recipe_view.clear()
        self.evaluation.clear()
        self.evaluation.try_it.set_predictor(None, False, False)
        self.model = None
        self._evaluated_run = None
        self.log.clear()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("Ready.")
        self.hide_message()
        self.last_error = ""
        self._status = ""
        self.tabs.setCurrentWidget(self.plots)

    def _doc_connections(self):
        d = self.document
        return [(d.settings_changed, self._sync_from_project),
                (d.analysis_updated, self._recheck_fit),
                (d.path_changed, self._on_path_changed),
                (d.network_changed, self._on_network_changed)]

    @property
    def project(self):
        return self.document.project if self.document is not None else None

    def _base_dir(self) -> Path | None:
        path = self.document.path if self.document is not None else None
        return Path(path).resolve().parent if path else None

    def _load_from_project(self) -> None:
        self._syncing = True
        try:
            self.chooser.set_config(self.project.dataset, self._base_dir())
            values = dict(self.project.training)
            self.settings.show_section(values)  # a missing setting shows its default
        finally:
            self._syncing = False
        rejected = self.chooser.form.rejected + self.settings.rejected
        if rejected:
            self.show_message("The project holds settings this window cannot show; they show "
                              "the defaults (Train writes what you see):\n" + "\n".join(rejected))
        self.history.set_root(self._runs_root())
        self._show_recipe_view()
        self._recheck_fit()

    def recipe_spec(self, training: dict[str, Any] | None = None):
        """The spec of the recipe the project trains with (the form's value when given); the
        supervised recipe when the value is unknown (the form refuses it and says so)."""
        from designer.engine.train.recipes import DEFAULT_RECIPE, UnknownRecipe, get, recipe_of

        if training is None:
            training = self.project.training if self.project is not None else {}
        try:
            return recipe_of(training)
        except UnknownRecipe:
            return get(DEFAULT_RECIPE)

    def _show_recipe_view(self, spec=None) -> None:
        """The tab of the recipe's live view: made on first need, replaced when the recipe
        changes, hidden for recipes whose view is the shared curves."""
        from .views import make_view

        spec = spec or self.recipe_spec()
        # predictions to score (a confusion matrix, "try it") only where the recipe makes them
        self.tabs.setTabVisible(self.tabs.indexOf(self.evaluation), spec.evaluates)
        if spec.view != self._recipe_view_id:
            if self.recipe_view is not None:
                self.recipe_view.stop()
                self.tabs.removeTab(self.tabs.indexOf(self.recipe_view))
            # kept per view id: going from project to project does not build its plots again
            views = self._recipe_views
            if spec.view and spec.view not in views:
                views[spec.view] = make_view(spec.view)
            self.recipe_view = views.get(spec.view) if spec.view else None
            if self.recipe_view is not None:
                self.recipe_view.clear()  # nothing of the last project that showed it
            self._recipe_view_id = spec.view if self.recipe_view is not None else ""
            if self.recipe_view is not None:
                self.tabs.insertTab(1, self.recipe_view, spec.title)

    def _trains_several(self) -> bool:
        """Whether the recipe trains several networks (the current tab's own analysis is then
        not the whole story: the recipe's checks cover the others)."""
        return self.recipe_spec().trains_several()

    def _check_fit(self, ds, training, analysis=None):
        spec = self.recipe_spec(training)
        network = self.document.trained_network  # whichever block definition the canvas shows
        analyses = None
        if analysis is not None and not spec.trains_several():
            analyses = {"model": analysis}
        return spec.check_data(self.project, ds, training, network=network, analyses=analyses)

    def _trained_analysis(self):
        """The analysis of the network Train trains: the window's own, unless the canvas shows
        a block's definition (then the top network is analysed here, in milliseconds)."""
        doc = self.document
        if doc.network == doc.trained_network:
            return doc.analysis
        return self._analyse_trained()

    def _analyse_trained(self):
        """The trained network analysed here and now, kept until it or a block it uses changes
        (the fit is checked on every analysis, edit and load while a block is open)."""
        from designer.engine.model.blocks import deep_version
        from designer.engine.model.shapes import analyze

        name = self.document.trained_network
        key = (id(self.project), deep_version(self.project.networks, name))
        if self._top_analysis is None or self._top_analysis[0] != key:
            self._top_analysis = (key, analyze(self.project.networks[name]))
        return self._top_analysis[1]

    def run_settings(self, quiet: bool = False) -> dict[str, Any] | None:
        """The training settings a run uses: the document's (its file's values, defaults for
        the rest), the form's last edits included. None (with a message unless ``quiet``) while
        a field holds a refused entry."""
        if self.document is None:
            return None
        from designer.engine.train.config import effective_training

        shown = self._training_values(quiet=quiet)
        if shown is None:
            return None
        if effective_training(shown) != self.document.training_settings():
            self._push_section("training", shown, "Change training settings")  # not yet pushed
        return self.document.training_settings()

    @Slot(object)
    def set_devices(self, devices: list[str]) -> None:
        """The training devices found once torch has loaded (cuda, mps join cpu)."""
        self.settings.add_choices("device", devices)
        if self._check_when_torch_ready:
            self._check_when_torch_ready = False
            self._recheck_fit()

    @Slot(str)
    def _sync_from_project(self, section: str) -> None:
        """The project's ``section`` settings changed (undo, redo, an edit made elsewhere): show
        them if they differ from the form. The panel's own edits are pushed while ``_syncing``."""
        if self.document is None:
            return
        if section == "training" and not self.is_running():
            self._show_recipe_view()  # the recipe may have changed (its live view follows)
        if self._syncing:
            return
        shown = (self.chooser.config() if section == "dataset"
                 else self._training_values(quiet=True))
        if self._section_differs(section, shown):
            self._load_from_project()

    def _section_differs(self, section: str, shown: dict | None) -> bool:
        if shown is None:
            return True
        stored = getattr(self.project, section) or {}
        validate = validate_dataset if section == "dataset" else validate_training
        try:
            return validate(stored) != validate(shown)
        except ConfigError:
            return stored != shown

    @Slot(object)
    def _on_path_changed(self, *_: Any) -> None:
        self.chooser.base_dir = self._base_dir()
        self.history.set_root(self._runs_root())

    @Slot(str)
    def _on_network_changed(self, *_: Any) -> None:
        if not self._syncing:
            self._load_from_project()

    def _runs_root(self) -> Path | None:
        if self.document is None:
            return None
        return runs_root(self.document.path, self.project.name)

    # -- settings edits ----------------------------------------------------------------------------

    def _training_values(self, quiet: bool = False) -> dict[str, Any] | None:
        try:
            return self.settings.values()
        except ValueError as exc:
            if not quiet:
                self.show_message(str(exc))
            return None

    def _push_section(self, section: str, values: dict[str, Any], text: str) -> None:
        if self.document is None or getattr(self.project, section) == values:
            return
        self._syncing = True
        try:
            self.document.undo_stack.push(SetSettingsCommand(self.project, section, values, text))
        finally:
            self._syncing = False

    @Slot()
    def _on_dataset_edited(self) -> None:
        if self._syncing:
            return
        if not self.is_running():
            self.hide_message()  # a failure of the data as it was (a folder since fixed)
        self._push_section("dataset", self.chooser.config(), "Change dataset settings")
        self._recheck_fit()

    @Slot()
    def _on_training_edited(self) -> None:
        if self._syncing:
            return
        values = self._training_values()
        if values is not None:
            self._push_section("training", values, "Change training settings")
            self._recheck_fit()

    def reopen_settings(self, dataset: dict, training: dict) -> None:
        """Put a past run's settings back (one undo step)."""
        if self.document is None:
            return
        stack = self.document.undo_stack
        self._syncing = True
        try:
            stack.beginMacro("Reopen a run's settings")
            stack.push(SetSettingsCommand(self.project, "dataset", dict(dataset), "dataset"))
            stack.push(SetSettingsCommand(self.project, "training", dict(training), "training"))
            stack.endMacro()
        finally:
            self._syncing = False
        self._load_from_project()
        self.append_log("Reopened the settings of a past run.")

    # -- dataset and fit ---------------------------------------------------------------------------

    @Slot(object)
    def _on_dataset_loaded(self, ds) -> None:
        if (self._run_failure_shown and not self.is_running()
                and self.chooser.loads_started > self._loads_at_failure
                and self.chooser.loaded_dataset() is ds):
            self.hide_message()  # the data as set now loads: a failed run's banner is stale
        self._set_metric_for(ds.task)
        self._recheck_fit()

    @Slot()
    @Slot(object)
    def _recheck_fit(self, *_: Any) -> None:
        """The fit status, for the design and dataset as they are now (after every edit, New and
        Open): never a verdict left over from another design or dataset."""
        if self.document is None:
            return
        ds = self.chooser.loaded_dataset()
        if ds is None:
            self.chooser.set_check(None)
            # The offline built-ins load in milliseconds: check at once, without a click (once
            # torch has loaded in the background, so the window still paints first).
            if self.chooser.is_offline_builtin() and not self.chooser.is_loading():
                self._check_when_torch_ready = not torch_ready()
                if not self._check_when_torch_ready:
                    self.chooser.load()
            return
        analysis = self._trained_analysis()
        training = self.document.training_settings()
        try:
            check = self._check_fit(ds, training, analysis)
        except Exception as exc:  # noqa: BLE001 - a half-edited design must not break the panel
            self.chooser.fit_label.setText(f"Cannot check the design against the data: {exc}")
            return
        self.chooser.set_check(check, analysis is None or analysis.ok or self._trains_several())

    @Slot(list)
    def apply_fixes(self, fixes: list) -> None:
        """Make the design fit the loaded dataset: Input shape, dtype, last layer's size, as ONE
        undo step. Fixing the input can reveal the output size, so the check runs again inside the
        same macro."""
        ds = self.chooser.loaded_dataset()
        doc = self.document
        if doc is None or not fixes:
            return
        from designer.engine.model.graph import GraphError
        from designer.engine.train.data import DatasetFix, check_model_data

        # the dataset's settings (an imported model's sequence length, its vocabulary): the data
        # is loaded again with them, and checked once it is
        data_fixes = [f for f in fixes if isinstance(f, DatasetFix)]
        fixes = [f for f in fixes if not isinstance(f, DatasetFix)]
        training = doc.training_settings()
        network = doc.trained_network  # never the block definition the canvas may show
        stack = doc.undo_stack
        stack.beginMacro("Make the design fit the dataset")
        failed = None
        try:
            if data_fixes:
                values = {**self.chooser.config(), **{f.setting: f.value for f in data_fixes}}
                self._push_section("dataset", values, "Change dataset settings")
                ds = None  # the loaded data no longer matches the settings
            for _ in range(4):
                for f in fixes:
                    doc.set_params(f.node_id, {f.param: f.value}, network)
                if ds is None:
                    break
                fixes = check_model_data(doc.project.networks[network], ds, training).fixes
                if not fixes:
                    break
        except GraphError as exc:
            failed = str(exc)
        finally:
            stack.endMacro()
        if failed:
            stack.undo()
            self.show_message(f"The design could not be changed to fit: {failed}")
            return
        if data_fixes:
            self._load_from_project()  # the chooser shows the settings the fix chose
            self.append_log("Changed the dataset settings to fit the design: " + ", ".join(
                f"{f.setting} {f.value}" for f in data_fixes) + " (Edit > Undo takes it back).")
            self.chooser.load()  # checked again once loaded
            return
        self.append_log("Changed the design to fit the dataset (Edit > Undo takes it back).")
        self._recheck_fit_now()

    def _recheck_fit_now(self) -> None:
        """The fit status right after the design changed here (the window's own analysis of the
        edit is still on its way: analyse now, it takes milliseconds)."""
        ds = self.chooser.loaded_dataset()
        if ds is None or self.document is None:
            return
        analysis = self._analyse_trained()
        check = self._check_fit(ds, self.document.training_settings(), analysis)
        self.chooser.set_check(check, analysis.ok or self._trains_several())

    def _set_metric_for(self, task: str, force: bool = False) -> None:
        """Name the metric axis for ``task``; curves on screen keep the name of their own run's
        metric (a regression dataset loaded after a classification run)."""
        plots = self.plots
        if not force and (plots.series("train_metric").n or plots.series("val_metric").n):
            return
        key, label = METRIC_FOR_TASK.get(task, ("accuracy", "accuracy"))
        self._metric_key = key
        self.plots.set_metric_name(label)

    # -- run control -------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.worker is not None

    def train(self) -> bool:
        """Snapshot the design and settings and start a run. False (with a message) if refused."""
        if self.is_running():
            return False
        if self.document is None:
            self.show_message("Open a project first.")
            return False
        self.hide_message()
        dcfg = self.chooser.config()
        tcfg = self.run_settings()  # the document's, as Sweeps and the memory estimate read them
        if tcfg is None:
            return False
        try:
            validate_dataset(dcfg)
            validate_training(tcfg)
        except ConfigError as exc:
            self.show_message(str(exc))
            return False
        analysis = self._trained_analysis()
        if analysis is not None and not analysis.ok and not self._trains_several():
            errors = analysis.errors
            lines = "\n".join(f"- {p.message}" for p in errors[:10])
            self.show_message(f"The design has {len(errors)} error(s); fix them before training "
                              f"(the Problems panel lists them, a click shows the layer):\n{lines}")
            return False
        from designer.engine.document.project import Project
        from designer.engine.train.runs import default_run_dir

        project = self.project
        network = self.document.trained_network  # the top one, whatever the canvas shows
        graph = project.networks[network].copy()
        spec = self.recipe_spec(tcfg)
        # every network (the recipe's roles, and the blocks the trained ones use), the one
        # trained first: the run's config.json then reads as a project whose model is it
        first = [] if spec.trains_several() else [network]  # (a GAN keeps its own order)
        networks = {k: graph if k == network else project.networks[k].copy()
                    for k in [*first, *project.networks]}
        snap_project = Project(project.name, project.description, networks,
                               copy.deepcopy(dcfg), copy.deepcopy(tcfg),
                               copy.deepcopy(project.metadata))
        self.run_dir = default_run_dir(self.document.path, project.name)
        base_dir = self._base_dir()
        snap_project.folder = base_dir  # relative paths (training.init_weights) start there
        key = config_key(dcfg, base_dir)
        snapshot = RunSnapshot(graph, dcfg, tcfg, base_dir, self.run_dir,
                               {"dataset": dcfg, "project": snap_project.to_dict()}, key,
                               project=snap_project, network=network)
        ds = self.chooser.loaded_dataset()
        if ds is not None and self.chooser.dataset_key != key:
            ds = None
        # Python-owned: freed once dropped
        self.worker = TrainingWorker(snapshot, ds, inside=self.inside_options)
        self.worker.event.connect(self._on_event)
        self.worker.finished.connect(self._on_worker_finished)
        self._status = "running"
        self._last_batch = (0, 0, 0.0)
        self._run_started = time.perf_counter()
        self.model = None
        self.plots.clear()
        # the x axis now, while the worker prepares: at Started its repaint would cost the run
        self.plots.set_epochs(int(tcfg["epochs"]))
        self.evaluation.clear()
        if ds is not None:
            self._set_metric_for(ds.task, force=True)
        self._show_recipe_view(spec)
        if self.recipe_view is not None:
            self.recipe_view.clear()
            self.recipe_view.start()
            self.tabs.setCurrentWidget(self.recipe_view)
        self.progress.setRange(0, 0)
        self.progress_label.setText("Preparing…")
        self.append_log(f"Training {project.name!r} on {dcfg.get('name') or dcfg['kind']} "
                        f"({tcfg['epochs']} epochs, batch {tcfg['batch_size']}, "
                        f"{spec.describe_optimizer(tcfg)})")  # the run folder once it exists (Started)
        self._update_buttons()
        self.worker.start()
        self.run_started.emit()
        return True

    #: inside.InsideOptions while the Inside panel (or the gradient overlay) observes, else None
    inside_options = None

    def set_inside(self, options) -> None:
        """Observe inside the layers (options) or stop (None): the current run from its next
        batch, later runs from their first."""
        self.inside_options = options
        if self.worker is not None:
            self.worker.observe(options)

    def pause(self) -> None:
        if self.worker is not None:
            self.worker.pause()
            self.pause_button.setEnabled(False)

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.resume()
            self.resume_button.setEnabled(False)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.append_log("Stopping…")
            self.stop_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            self.resume_button.setEnabled(False)

    def stop_and_wait(self, timeout_ms: int = 10000) -> None:
        """Stop a run (and an evaluation) and wait for it; its last events are handled here, so
        nothing of it arrives afterwards (New and Open call this before reset_view)."""
        if self.worker is None and self._eval_worker is None:
            return
        if self.worker is not None:
            self.worker.stop()
            if not self.worker.wait(timeout_ms):
                # Still busy (a download checks no stop flag): let it end on its own, out of
                # this view; _on_event and _on_worker_finished ignore a worker not current.
                self._detached.append(self.worker)
                self.worker = None
                self._status = "stopped"
                self._update_buttons()
        if self._eval_worker is not None:
            self._eval_worker.wait(timeout_ms)
        # the threads have ended: deliver what they queued (their events, finished) now
        QCoreApplication.sendPostedEvents(None, QEvent.MetaCall)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop any run and wait for the threads (call before the window closes)."""
        if self.worker is not None:
            self.worker.stop()
            self.worker.wait(timeout_ms)
        for worker in self._detached:
            worker.wait(timeout_ms)
        if self._eval_worker is not None:
            self._eval_worker.wait(timeout_ms)
        if self.chooser.is_loading():
            self.chooser.wait(timeout_ms)
        self.plots.stop()
        # let go of the document: a document destroyed later (its undo stack clears itself and
        # signals) must not call into this panel
        self.set_document(None)

    @property
    def run_state(self) -> str:
        """"idle", "running" or "paused"."""
        if self.worker is None:
            return "idle"
        return "paused" if self._status == "paused" else "running"

    def _update_buttons(self) -> None:
        state = self.run_state
        self.train_button.setEnabled(state == "idle")
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(state != "idle")
        self.state_changed.emit()

    # -- events from the worker (GUI thread) -------------------------------------------------------

    def _from_old_worker(self) -> bool:
        """A queued event or finished of a worker that is not the current run's (one detached
        by stop_and_wait): not for this view."""
        sender = self.sender()
        return isinstance(sender, TrainingWorker) and sender is not self.worker

    @Slot(object)
    def _on_event(self, ev) -> None:
        if self._from_old_worker():
            return
        if isinstance(ev, (InsideSummary, InsideSample)):
            self.inside_event.emit(ev)
            return
        if self.recipe_view is not None and self.recipe_view.handle(ev):  # the recipe's own
            return
        if isinstance(ev, Batch):
            self._on_batch(ev)
        elif isinstance(ev, Epoch):
            self._on_epoch(ev)
        elif isinstance(ev, Started):
            self._batches = ev.batches_per_epoch
            self.plots.set_epochs(ev.epochs, ev.start_epoch)
            self.plots.start()
            self.progress.setRange(0, max(1, ev.epochs * ev.batches_per_epoch))
            self.progress.setValue(ev.start_epoch * ev.batches_per_epoch)
            self.append_log(f"Started on {ev.device}: {ev.n_train:,} training and {ev.n_val:,} "
                            f"validation samples, {_count(ev.batches_per_epoch, 'batch', 'batches')} per epoch"
                            + (f"; run folder {ev.run_dir}" if ev.run_dir else "") + ".")
            for note in ev.notes:
                self.append_log(f"Note: {note}")
        elif isinstance(ev, DatasetReady):
            self.chooser.set_dataset(ev.dataset, ev.key)
            self._set_metric_for(ev.dataset.task)
        elif isinstance(ev, DownloadProgress):
            done = f"{ev.done / 1e6:.1f} MB" + (f" of {ev.total / 1e6:.1f} MB" if ev.total else "")
            self.progress_label.setText(f"Downloading {ev.dataset} ({ev.file}): {done}")
        elif isinstance(ev, CheckpointSaved):
            if ev.kind == "best":
                self.append_log(f"Saved the best model so far (epoch {ev.epoch}).")
        elif isinstance(ev, Paused):
            self._status = "paused"
            self.append_log(f"Paused in epoch {ev.epoch} after batch {ev.batch}.")
            self.progress_label.setText(self.progress_label.text() + "  (paused)")
            self._update_buttons()
        elif isinstance(ev, Resumed):
            self._status = "running"
            self.append_log("Resumed.")
            self._update_buttons()
        elif isinstance(ev, Finished):
            self._status = "finished"
            best = (f"; best validation loss {ev.best_loss:.4f} in epoch {ev.best_epoch}"
                    if ev.best_loss is not None else "")
            self.append_log(f"Finished ({ev.reason}) after {ev.epochs_done} epoch(s) in "
                            f"{ev.time_s:.1f} s{best}. {_metrics_text(ev.final)}")
        elif isinstance(ev, Stopped):
            self._status = "stopped"
            self.append_log(f"Stopped in epoch {ev.epoch} after batch {ev.batch}; "
                            f"{ev.epochs_done} complete epoch(s); checkpoints kept.")
        elif isinstance(ev, Failed):
            self._status = "failed"
            self.last_error = ev.message
            where = (f" (epoch {ev.epoch}, batch {ev.batch})" if ev.epoch is not None else "")
            self.append_log(f"FAILED{where}: {ev.message}")
            if ev.traceback:
                self.append_log(ev.traceback.rstrip())
            self.show_message(f"Training failed{where}: {ev.message}")
            self._run_failure_shown = True  # goes once the data loads (a folder fixed) ...
            self._loads_at_failure = self.chooser.loads_started  # ... in a load started after
        elif isinstance(ev, Evaluated):
            self._show_evaluation(ev)

    def _on_batch(self, ev: Batch) -> None:
        epoch, batch, mean = self._last_batch
        if ev.epoch != epoch:
            batch, mean = 0, 0.0
        # the engine reports the running mean of the epoch; the loss of the batches since the
        # last report is what the per-batch curve shows
        n = ev.batch - batch
        loss = (ev.loss * ev.batch - mean * batch) / n if n > 0 else ev.loss
        self._last_batch = (ev.epoch, ev.batch, ev.loss)
        self.plots.add_batch(ev.epoch - 1 + ev.batch / max(ev.batches, 1), loss)
        now = time.perf_counter()
        if now < self._next_progress:
            return  # QProgressBar.setValue repaints at once (1 ms): a few times a second is plenty
        self._next_progress = now + PROGRESS_INTERVAL_S
        done = (ev.epoch - 1) * ev.batches + ev.batch
        self.progress.setValue(done)
        acc = ev.metrics.get("accuracy")
        acc_text = f" · acc {acc:.3f}" if acc is not None else ""
        epochs = self.progress.maximum() // max(ev.batches, 1)
        self.progress_label.setText(
            f"epoch {ev.epoch}/{epochs} · batch {ev.batch}/{ev.batches} · loss {ev.loss:.4f}"
            f"{acc_text} · {ev.samples_per_s:,.0f} samples/s · ETA {format_eta(ev.eta_s)}")

    def _on_epoch(self, ev: Epoch) -> None:
        key = self._metric_key
        self.plots.add_epoch(ev.epoch, ev.train.get("loss"), ev.val.get("loss"),
                             _finite(ev.train.get(key)), _finite(ev.val.get(key)), ev.lr)
        self.append_log(f"Epoch {ev.epoch}/{ev.epochs}: train {_metrics_text(ev.train)} | "
                        f"val {_metrics_text(ev.val)} | lr {ev.lr:.3g} | {ev.time_s:.1f} s, "
                        f"{ev.samples_per_s:,.0f} samples/s" + (" | best" if ev.best else ""))

    def _show_evaluation(self, ev: Evaluated) -> None:
        self.evaluation.show_result(ev.result)
        self._evaluated_run = ev.run_dir
        infos = (runs.checkpoints(ev.run_dir) if ev.run_dir is not None and ev.run_dir.is_dir()
                 else [])
        self.evaluation.set_checkpoints(infos, ev.checkpoint)
        self.model = ev.model
        predict, images, rows = make_predictor(ev.model, ev.dataset)
        self.evaluation.try_it.set_predictor(predict, images, rows)
        if ev.result.accuracy is not None:
            self.append_log(f"Evaluation of {ev.checkpoint}.pt on {len(ev.result.y_true):,} "
                            f"validation samples: accuracy {ev.result.accuracy:.4f}.")
        self.evaluation_ready.emit(ev.result)

    @Slot()
    def _on_worker_finished(self) -> None:
        if self._from_old_worker():
            return
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait()  # returns at once: the thread has ended
        # Not deleted inside its own finished signal: kept until the next run replaces it.
        self._finished_worker = worker
        self.plots.stop()
        if self.recipe_view is not None:
            self.recipe_view.stop()
        status = self._status if self._status in ("finished", "stopped", "failed") else "stopped"
        self._status = status
        if status == "finished":
            self.progress.setValue(self.progress.maximum())
        elif self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress_label.setText(self._ending_text(status))
        self._update_buttons()
        self.history.refresh()
        self.run_finished.emit(status)

    def _ending_text(self, status: str) -> str:
        """The line under the progress bar once a run ends: what it reached, and which
        checkpoint holds what (the figures History, Evaluation and Export show too)."""
        if status == "failed":
            return "Failed; see the message and the log."
        head = "Finished" if status == "finished" else "Stopped"
        if self.run_dir is None or not self.run_dir.is_dir():
            return f"{head}."
        history = runs.read_history(self.run_dir)
        if not history:
            return f"{head} before the first epoch ended; nothing was saved."
        elapsed = duration_text(history[-1].get("elapsed_s") or 0)  # as History shows it
        parts = [f"{head} after {len(history)} epoch(s) in {elapsed}"]
        spec = self.recipe_spec()  # its words for a record: accuracy, perplexity, D(x) ...
        last = spec.headline(history)
        if last:
            parts.append(f"last epoch: {last}")
        best = next((c for c in runs.checkpoints(self.run_dir, history) if c.kind == "best"),
                    None)
        if best is not None and best.epoch:
            record = [r for r in history if r.get("epoch") == best.epoch]
            figure = spec.headline(record) if record else best.figure
            parts.append(f"best.pt = epoch {best.epoch} ({best.why})"
                         + (f": {figure}" if figure else ""))
        elif spec.best is None:  # the recipe says no epoch is "best" by its figures
            parts.append(f"no best.pt, last.pt only ({spec.title}: {spec.no_best_reason})")
        return "; ".join(parts) + "."

    # -- evaluation of a past run ------------------------------------------------------------------

    @Slot(object)
    def evaluate_run(self, run_dir, checkpoint: str = "best") -> None:
        """Evaluate a run's best.pt (or ``checkpoint="last"``) on its dataset, in the
        background."""
        if self._eval_worker is not None:
            return
        run = read_run(Path(run_dir))
        if run is not None and not run.evaluates:
            self.show_message(run.no_evaluation_note())
            return
        self._eval_worker = EvaluateRunWorker(Path(run_dir), self._base_dir(), checkpoint)
        self._eval_worker.event.connect(self._on_eval_event)
        self._eval_worker.finished.connect(self._on_eval_worker_finished)
        self.append_log(f"Evaluating {run_dir}…")
        self._eval_worker.start()

    @Slot(str)
    def _evaluate_checkpoint(self, kind: str) -> None:
        """The Evaluation tab's Model choice: score the run's other checkpoint."""
        run_dir = self._evaluated_run
        if run_dir is not None and self.worker is None:
            self.evaluate_run(run_dir, kind)

    @Slot(object)
    def _on_eval_event(self, ev) -> None:
        if isinstance(ev, Evaluated):
            self._show_evaluation(ev)
            self.append_log("Evaluated the run's checkpoint.")
        elif isinstance(ev, Failed):
            self.append_log(f"FAILED: {ev.message}")
            self.show_message(ev.message)

    @Slot()
    def _on_eval_worker_finished(self) -> None:
        w, self._eval_worker = self._eval_worker, None
        if w is not None:
            w.wait()
        self._finished_eval_worker = w
        self.tabs.setTabVisible(self.tabs.indexOf(self.evaluation), True)  # a past run of
        self.tabs.setCurrentWidget(self.evaluation)  # a supervised design, evaluated from History

    # -- export ------------------------------------------------------------------------------------

    def open_export_dialog(self):
        """The export dialog for the design as it is now, with the runs' weights to choose."""
        if self.document is None:
            return None
        from designer.engine.document.project import Project

        from .export_dialog import ExportDialog

        p = self.project
        tcfg = self.document.training_settings()
        project = Project(p.name, p.description,
                          {k: g.copy() for k, g in p.networks.items()},
                          self.chooser.config(), tcfg, copy.deepcopy(p.metadata))
        # each run's best.pt and last.pt, said the same way as in History and Evaluation
        runs = [(f"{r.started:%Y-%m-%d %H:%M:%S} – {c.label}" if r.started
                 else f"{r.path.name} – {c.label}", c.path)
                for r in self.history.runs for c in r.checkpoints]
        dialog = ExportDialog(project, self._base_dir(), runs, parent=self)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # -- messages ----------------------------------------------------------------------------------

    def append_log(self, text: str) -> None:
        """A line at the end of the log, which follows it unless the user scrolled up to read."""
        bar = self.log.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2
        stamp = time.strftime("%H:%M:%S")
        self.log.appendPlainText(f"[{stamp}] {text}")
        if follow:
            bar.setValue(bar.maximum())

    def show_message(self, text: str) -> None:
        self._run_failure_shown = False
        self.message.setText(text)
        self.message.setToolTip(text)
        self.message.show()
        self.message_shown.emit(text)

    def hide_message(self) -> None:
        self._run_failure_shown = False
        self.message.hide()
        self.message.clear()


def _compact(button: QPushButton) -> None:
    """A button as narrow as its text allows (the style's minimum of about 80 px made the row
    of run buttons alone wider than the Training panel beside Inside)."""
    button.setSizePolicy(QSizePolicy.Preferred, button.sizePolicy().verticalPolicy())
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 20)


def _count(n: int, one: str, many: str) -> str:
    """``1 batch``, ``2 batches``."""
    return f"{n:,} {one if n == 1 else many}"


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _metrics_text(m: dict[str, Any]) -> str:
    parts = []
    for k in ("loss", "accuracy", "top5_accuracy", "f1", "mse", "mae", "r2"):
        v = m.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            parts.append(f"{k} {v:.4f}")
    return ", ".join(parts)


class TrainingDock(QDockWidget):
    """The panel in a dock of the main window."""

    def __init__(self, document=None, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.setObjectName("TrainingDock")
        self.panel = TrainingPanel(document)
        self.setWidget(self.panel)
        self.panel.run_started.connect(self._make_room)
        # brought forward by its tab too: the curves need the room (at the default bottom height
        # their axis labels were cut to "accura" and "arning")
        self.visibilityChanged.connect(self._on_visibility)

    @Slot(bool)
    def _on_visibility(self, visible: bool) -> None:
        if visible:
            QTimer.singleShot(0, self._grow)

    @Slot()
    def _make_room(self) -> None:
        """On Train: show the dock, tall enough for the curves (the default bottom dock is low)."""
        self.show()
        self.raise_()
        self._grow()

    def _grow(self) -> None:
        from PySide6.QtWidgets import QMainWindow

        window = self.parent()
        if not isinstance(window, QMainWindow) or self.isFloating() or not self.isVisible():
            return
        want = int(window.height() * 0.45)
        if self.height() < want and window.dockWidgetArea(self) in (
                Qt.BottomDockWidgetArea, Qt.TopDockWidgetArea):
            window.resizeDocks([self], [want], Qt.Vertical)

    def set_document(self, document) -> None:
        self.panel.set_document(document)
