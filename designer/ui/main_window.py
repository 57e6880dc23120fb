"""The designer window: canvas in the middle, layer palette on the left, inspector on the right,
problems and model summary at the bottom, totals in the status bar.

The window owns one :class:`~designer.ui.document.Document` for its whole life; New and Open
replace the document's project (so every view keeps its connections). All edits go through the
document's undo stack. Files: New (blank or from the gallery), Open, Save, Save As, recent files,
an unsaved-changes prompt, autosave to a recovery file and crash recovery (:mod:`.files`).

Room for later work: the central area is a network tab bar above the canvas (GAN projects hold
two networks), and the right dock area takes more panels (training) beside the inspector.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStyle,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from ..engine.document.project import (
    SUFFIX,
    Project,
    ProjectError,
    ProjectEvent,
    is_named,
    load_project,
    save_project,
)
from ..engine.document.templates import (
    DEFAULT_TEMPLATE,
    TemplateError,
    load_template,
    templates_dir,
)
from ..engine.model.shapes import Analysis, trainable_params
from .canvas.breadcrumb import BreadcrumbBar
from .canvas.view import CanvasView
from .document import Document
from .files import AUTOSAVE_INTERVAL_MS, Autosave, RecentFiles, Recovery, pending_recoveries
from .gallery import NewDialog, blank_project
from .inside.window import InsideWiring
from .inspector import InspectorDock
from .palette import PaletteDock
from .problems import ProblemsDock
from .summary import SummaryDock, human
from .sweeps.tags import SearchTags
from .sweeps.view import SweepsDock
from .torch_loader import TorchLoader
from .training.panel import TrainingDock

APP_NAME = "Designer"
FILE_FILTER = f"Designer projects (*{SUFFIX});;JSON files (*.json);;All files (*)"
_LAYOUT_VERSION = 1
# Room for a title bar and borders before the window manager has framed the window (pixels).
_FRAME_ALLOWANCE = (16, 48)
# Below this size the canvas stops giving way to the docks around it (pixels).
_CANVAS_MIN = (360, 200)
_NETWORK_EVENTS = (ProjectEvent.NETWORK_ADDED, ProjectEvent.NETWORK_REMOVED,
                   ProjectEvent.NETWORK_RENAMED)


def commit_pending_edit() -> None:
    """A number or text typed into a field and not yet confirmed (no Enter, focus still there)
    counts before a keyboard command acts: F5 and Ctrl+S reach the window without moving the
    focus, so the field's editingFinished has not fired and Train used (Save wrote) the old
    value while the field showed the new one. Moving the focus out and back commits it."""
    from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit

    widget = QApplication.focusWidget()
    if isinstance(widget, (QAbstractSpinBox, QLineEdit)):
        widget.clearFocus()
        widget.setFocus(Qt.OtherFocusReason)


class MainWindow(QMainWindow):
    """The application window. ``settings`` and ``recovery_dir`` can point elsewhere (tests)."""

    def __init__(self, settings: QSettings | None = None,
                 recovery_dir: str | os.PathLike | None = None,
                 autosave_interval_ms: int = AUTOSAVE_INTERVAL_MS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = settings if settings is not None else QSettings()
        self.recovery_dir = recovery_dir
        self.recent = RecentFiles(self.settings)
        self.document = Document(blank_project(), parent=self)
        self._closed = False
        self._summary_stale = True

        # -- central: network tabs over the canvas ------------------------------------------
        self.view = CanvasView(self.document, self)
        self.network_tabs = QTabBar(self)
        self.network_tabs.setDocumentMode(True)
        self.network_tabs.setExpanding(False)
        central = QWidget(self)
        box = QVBoxLayout(central)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        self.breadcrumb = BreadcrumbBar(self.document, self)  # the path into opened blocks
        box.addWidget(self.network_tabs)
        box.addWidget(self.breadcrumb)
        box.addWidget(self.view, 1)
        central.setMinimumSize(*_CANVAS_MIN)  # docks may not crush the canvas
        self.setCentralWidget(central)

        # -- docks ---------------------------------------------------------------------------
        self.palette = PaletteDock(self, self.document)
        self.inspector = InspectorDock(self.document, self)
        self.problems = ProblemsDock(self)
        self.summary = SummaryDock(self)
        self.setDockNestingEnabled(True)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.palette)
        self.addDockWidget(Qt.RightDockWidgetArea, self.inspector)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.problems)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.summary)
        self.tabifyDockWidget(self.problems, self.summary)
        self.training = TrainingDock(self.document, self)  # dataset, Train, curves (issue 6)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.training)
        self.tabifyDockWidget(self.summary, self.training)
        self.sweeps = SweepsDock(self.document, self)  # search with Optuna (issue 15)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.sweeps)
        self.tabifyDockWidget(self.training, self.sweeps)
        self.training.panel.settings.enable_search(self.document)  # ⚲ beside training settings
        self.search_tags = SearchTags(self.document, self.view, self)  # ⚲ tags on the canvas
        self.sweeps.panel.trial_finished.connect(self.training.panel.history.refresh)
        self.problems.raise_()

        # -- status bar ----------------------------------------------------------------------
        self.status_params = QLabel()
        self.status_macs = QLabel()
        self.status_size = QLabel()
        self.status_memory = QLabel()
        self.status_valid = QLabel()
        for w in (self.status_params, self.status_macs, self.status_size, self.status_memory,
                  self.status_valid):
            w.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(w)
        self._show_totals(None)

        self._make_actions()
        self._make_menus()
        self.inside = InsideWiring(self)  # the Inside dock and the gradient overlay (issue 16)

        # torch loads in the background once the canvas has painted: the window shows first
        self.torch_loader = TorchLoader(self)
        self.torch_loader.loaded.connect(self.training.panel.set_devices)
        self.view.viewport().installEventFilter(self)

        # -- wiring --------------------------------------------------------------------------
        doc = self.document
        doc.changed.connect(self._update_title)
        doc.changed.connect(self._on_document_changed)  # e.g. the batch size: memory figures
        doc.path_changed.connect(self._update_title)
        doc.analysis_updated.connect(self._on_analysis)
        doc.analysis_failed.connect(self._on_analysis_failed)
        doc.network_changed.connect(self._on_network_changed)
        doc.project_event.connect(self._on_project_event)  # networks added, removed, renamed
        self.view.selection_changed.connect(self.inspector.set_selection)
        self.palette.layer_activated.connect(self.add_layer_at_center)
        self.palette.block_activated.connect(self.add_block_at_center)
        self.problems.problem_activated.connect(self.show_nodes)
        self.summary.node_activated.connect(lambda nid: self.show_nodes([nid]))
        self.summary.visibilityChanged.connect(self._on_summary_visible)
        self.network_tabs.currentChanged.connect(self._on_tab_changed)
        self.view.message.connect(lambda msg: self.statusBar().showMessage(msg, 8000))

        self.autosave = Autosave(doc, recovery_dir, autosave_interval_ms, self)
        self.autosave.failed.connect(lambda msg: self.statusBar().showMessage(msg, 10000))

        self._rebuild_network_tabs()
        self._update_title()
        self.resize(1400, 860)
        # Default dock sizes need the shown window's size: applied on first show, unless the
        # user's own layout was restored.
        self._default_sizes_pending = not self.restore_layout()
        self.fit_to_screen()  # the default, or a size remembered from a bigger screen

    # ------------------------------------------------------------------------------------------
    # actions and menus
    # ------------------------------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _make_actions(self) -> None:
        a = self._action
        self.act_new = a("&New…", self.new_file, QKeySequence.New,
                         "Start a blank design or one from the templates gallery")
        self.act_open = a("&Open…", self.open_file, QKeySequence.Open, "Open a project file")
        self.act_save = a("&Save", self.save, QKeySequence.Save, "Save the design")
        self.act_save_as = a("Save &As…", self.save_as, QKeySequence("Ctrl+Shift+S"),
                             "Save the design under a new name")
        self.act_quit = a("&Quit", self.close, QKeySequence("Ctrl+Q"))
        self.act_import = a("&Import model…", self.import_model, None,
                            "Turn a PyTorch model (torchvision, a module or a .py file) into "
                            "an editable design")
        self.act_load_weights = a("Load &weights…", self.load_weights, None,
                                  "Start training from the weights in a state_dict file "
                                  "(checked against the design first)")

        stack = self.document.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        # The canvas owns Copy, Paste, Duplicate, Delete, Select All and Fit (their shortcuts work
        # while the canvas has focus, so typing in a field never deletes layers); the menus show
        # the same actions.
        view = self.view
        self.act_copy, self.act_paste = view.copy_action, view.paste_action
        self.act_duplicate, self.act_delete = view.duplicate_action, view.delete_action
        self.act_select_all, self.act_fit = view.select_all_action, view.fit_action
        self.act_group, self.act_ungroup = view.group_action, view.ungroup_action
        self.act_make_unique, self.act_open_block = view.make_unique_action, view.open_block_action
        self.act_freeze, self.act_unfreeze = view.freeze_action, view.unfreeze_action
        self.act_freeze_before = view.freeze_before_action
        self.act_connect, self.act_find = view.connect_action, view.find_action
        for act, tip in ((self.act_copy, "Copy the selected layers and the connections between them"),
                         (self.act_duplicate, "Copy and paste the selection at once"),
                         (self.act_delete, "Delete the selected layers and connections"),
                         (self.act_fit, "Zoom so that the whole design is visible")):
            act.setStatusTip(tip)
        self.act_layout = a("Auto-&Layout", self.view.auto_layout, QKeySequence("Ctrl+L"),
                            "Arrange the layers left to right")
        self.act_snap = a("&Snap to Grid", lambda: self._set_snap(self.act_snap.isChecked()),
                          tip="Moved and added layers align to the background grid")
        self.act_snap.setCheckable(True)
        self._set_snap(self.settings.value("view/snap_to_grid", True, type=bool))
        self.act_reset_layout = a("Reset Window Layout", self.reset_layout)
        self.act_about = a("&About Designer", self.about)
        self.act_shortcuts = a("&Keyboard Shortcuts", self.show_shortcuts, QKeySequence("F1"),
                               "Every shortcut of the window and the canvas")

        # Run: the training panel's buttons, reachable from the menu, the toolbar and F5
        panel = self.training.panel
        self.act_train = a("&Train", self.train, QKeySequence("F5"),
                           "Train the design on the chosen dataset; curves grow in the Training "
                           "panel")
        self.act_pause = a("&Pause", self.pause_or_resume, QKeySequence("F6"),
                           "Pause the run after the current batch (again: resume)")
        self.act_stop = a("&Stop", panel.stop, QKeySequence("Shift+F5"),
                          "Stop after the current batch; the checkpoints are kept")
        self.act_export = a("&Export…", panel.open_export_dialog, QKeySequence("Ctrl+E"),
                            "Export the design as PyTorch code (model.py, train.py), with the "
                            "trained weights")
        style = self.style()
        for act, icon in ((self.act_new, QStyle.SP_FileIcon),
                          (self.act_open, QStyle.SP_DialogOpenButton),
                          (self.act_save, QStyle.SP_DialogSaveButton),
                          (self.act_undo, QStyle.SP_ArrowBack),
                          (self.act_redo, QStyle.SP_ArrowForward),
                          (self.act_train, QStyle.SP_MediaPlay),
                          (self.act_pause, QStyle.SP_MediaPause),
                          (self.act_stop, QStyle.SP_MediaStop),
                          (self.act_export, QStyle.SP_DialogSaveButton)):
            act.setIcon(style.standardIcon(icon))
        panel.state_changed.connect(self._sync_run_actions)
        self._sync_run_actions()

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_new, self.act_open])
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.act_save, self.act_save_as])
        file_menu.addSeparator()
        file_menu.addActions([self.act_import, self.act_load_weights])
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions([self.act_copy, self.act_paste, self.act_duplicate, self.act_delete])
        edit.addSeparator()
        edit.addAction(self.act_select_all)
        edit.addSeparator()
        edit.addActions([self.act_group, self.act_ungroup, self.act_make_unique,
                         self.act_open_block])
        edit.addSeparator()
        edit.addActions([self.act_freeze, self.act_unfreeze, self.act_freeze_before])
        edit.addSeparator()
        edit.addActions([self.act_connect, self.act_find])
        edit.aboutToShow.connect(self.view.sync_freeze_actions)
        edit.aboutToHide.connect(self._enable_freeze_actions)

        view = bar.addMenu("&View")
        view.addActions([self.act_fit, self.act_layout, self.act_snap])
        view.addSeparator()
        for dock in (self.palette, self.inspector, self.problems, self.summary, self.training,
                     self.sweeps):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(self.act_reset_layout)

        run = bar.addMenu("&Run")
        run.addActions([self.act_train, self.act_pause, self.act_stop])
        run.addSeparator()
        run.addAction(self.act_export)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        help_menu.addSeparator()
        help_menu.addAction(self.act_about)
        self._fill_recent_menu()

        tools = self.addToolBar("Main")
        tools.setObjectName("MainToolBar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        tools.addActions([self.act_new, self.act_open, self.act_save])
        tools.addSeparator()
        tools.addActions([self.act_undo, self.act_redo])
        tools.addSeparator()
        tools.addActions([self.act_train, self.act_pause, self.act_stop])
        tools.addSeparator()
        tools.addAction(self.act_export)
        self.toolbar = tools
        for act in (self.act_undo, self.act_redo):  # their text names the edit: in the tooltip
            tools.widgetForAction(act).setToolButtonStyle(Qt.ToolButtonIconOnly)
        for act in tools.actions():  # the shortcut in the tooltip, as desktop programs do
            keys = act.shortcut().toString(QKeySequence.NativeText)
            tip = act.toolTip() or act.text().replace("&", "").rstrip("…")
            if keys and keys not in tip:
                act.setToolTip(f"{tip} ({keys})")

    # -- run -------------------------------------------------------------------------------------

    def train(self) -> bool:
        """Train the design (F5). The training view comes forward either way: with the curves,
        or with the message saying what to fix first."""
        commit_pending_edit()
        started = self.training.panel.train()
        if not started:
            self.training.show()
            self.training.raise_()
        return started

    def pause_or_resume(self) -> None:
        panel = self.training.panel
        if panel.run_state == "paused":
            panel.resume()
        elif panel.run_state == "running":
            panel.pause()

    @Slot()
    def _sync_run_actions(self) -> None:
        state = self.training.panel.run_state
        self.act_train.setEnabled(state == "idle")
        self.act_stop.setEnabled(state != "idle")
        self.act_pause.setEnabled(state != "idle")
        paused = state == "paused"
        self.act_pause.setText("Res&ume" if paused else "&Pause")
        self.act_pause.setIcon(self.style().standardIcon(
            QStyle.SP_MediaPlay if paused else QStyle.SP_MediaPause))

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what) for every action with a shortcut, then the canvas's own keys: the
        Help > Keyboard Shortcuts table, generated so that it cannot drift from the program."""
        rows, seen = [], set()
        for act in self.actions() + self.view.actions():
            keys = ", ".join(k.toString(QKeySequence.NativeText) for k in act.shortcuts())
            what = act.text().replace("&", "").rstrip("…").strip()
            if keys and (keys, what) not in seen:
                seen.add((keys, what))
                rows.append((keys, what))
        return rows + list(self.view.KEYS)

    def show_shortcuts(self) -> None:
        from .shortcuts import ShortcutsDialog

        ShortcutsDialog(self.shortcut_rows(), self).exec()

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        paths = self.recent.paths()
        for p in paths:
            act = menu.addAction(p.name)
            act.setToolTip(str(p))
            act.setStatusTip(str(p))
            act.triggered.connect(lambda _c=False, path=p: self.open_recent(path))
        if paths:
            menu.addSeparator()
            menu.addAction("Clear Menu", self.recent.clear)
        else:
            empty = menu.addAction("No recent files")
            empty.setEnabled(False)

    # ------------------------------------------------------------------------------------------
    # editing helpers
    # ------------------------------------------------------------------------------------------

    @Slot(str)
    def add_layer_at_center(self, type_id: str) -> str | None:
        """Add a layer (palette double-click) at the centre of the visible canvas."""
        node_id = self.view.add_layer_at_center(type_id)
        if node_id is not None:
            self.view.setFocus()
        return node_id

    def add_block_at_center(self, block: str) -> str | None:
        """Add a use of a block (palette double-click) at the centre of the visible canvas."""
        node_id = self.view.add_block_at_center(block)
        if node_id is not None:
            self.view.setFocus()
        return node_id

    def _set_snap(self, on: bool) -> None:
        self.act_snap.setChecked(on)
        self.view.set_snap_to_grid(on)
        self.settings.setValue("view/snap_to_grid", on)

    @Slot(list)
    def show_nodes(self, node_ids: list) -> None:
        """Select nodes and centre the view on the first (problems dock, summary table)."""
        ids = [i for i in node_ids if i in self.document.graph.nodes]
        if not ids:
            return
        self.view.select_nodes(ids)
        self.view.center_on_node(ids[0])

    # ------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------

    def maybe_save(self, action: str = "continuing") -> bool:
        """Ask to stop a run in progress and to save unsaved changes. True when it is fine to go
        on (stopped; saved or discarded)."""
        panel = self.training.panel
        running = panel.is_running()
        if running:
            answer = QMessageBox.question(
                self, "Training in progress",
                f"A run is training “{self._display_name()}”. Stop it before {action}? Its "
                f"checkpoints are kept.", QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Yes)
            if answer != QMessageBox.Yes:
                return False
        if self.document.is_modified():
            answer = QMessageBox.question(
                self, "Unsaved changes",
                f"“{self._display_name()}” has unsaved changes. Save them before {action}?",
                QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
            if answer == QMessageBox.Cancel or (answer == QMessageBox.Save and not self.save()):
                return False  # cancelled: the run goes on too
        if running:
            panel.stop_and_wait()  # only now: within a batch, and waits for the thread
        return True

    def new_file(self) -> bool:
        if not self.maybe_save("starting a new design"):
            return False
        QApplication.setOverrideCursor(Qt.WaitCursor)  # the first listing checks every template
        try:
            dialog = NewDialog(self)
        finally:
            QApplication.restoreOverrideCursor()
        if dialog.exec() != NewDialog.Accepted:
            return False
        try:
            project = dialog.project()
        except TemplateError as exc:
            QMessageBox.critical(self, "Cannot open template", str(exc))
            return False
        self.set_project(project, None)
        return True

    def open_file(self) -> bool:
        if not self.maybe_save("opening another file"):
            return False
        start = str(self.document.path.parent) if self.document.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open design", start, FILE_FILTER)
        if not path:
            return False
        return self.open_path(path, ask=False)

    def open_recent(self, path: Path) -> bool:
        if not Path(path).exists():
            QMessageBox.warning(self, "File not found",
                                f"{path} no longer exists; it is removed from the recent files.")
            self.recent.remove(path)
            return False
        return self.open_path(path)

    def open_path(self, path: str | os.PathLike, ask: bool = True) -> bool:
        """Open a project file. A load error shows a message and leaves the current design as is.

        A file of the templates gallery opens as a new, unsaved design, so Save never
        overwrites a template.
        """
        if ask and not self.maybe_save("opening another file"):
            return False
        p = Path(path)
        try:
            project = load_project(p)
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot open file",
                                 f"The file could not be opened:\n\n{exc}\n\nNothing was changed.")
            return False
        if _is_template(p):
            self.set_project(project, None)
            self.statusBar().showMessage(
                f"Opened the template “{project.name}” as a new design; Save asks where to save it.",
                10000)
            return True
        self.set_project(project, p)
        self.recent.add(p)
        return True

    def open_template(self, template_id: str = DEFAULT_TEMPLATE) -> bool:
        """Open a template as a new, unsaved design (the starter at start-up)."""
        try:
            project = load_template(template_id)
        except TemplateError as exc:
            QMessageBox.warning(self, "Cannot open template", str(exc))
            return False
        self.set_project(project, None)
        return True

    # -- import and weights ----------------------------------------------------------------------

    def make_import_dialog(self):
        """File > Import model…'s dialog, wired to open what it imports as a new design."""
        from .import_dialog import ImportDialog

        QApplication.setOverrideCursor(Qt.WaitCursor)  # the model list imports torchvision
        try:
            dialog = ImportDialog(self)
        finally:
            QApplication.restoreOverrideCursor()
        dialog.imported.connect(self.open_imported)
        return dialog

    def import_model(self) -> bool:
        if not self.maybe_save("importing a model"):
            return False
        dialog = self.make_import_dialog()
        dialog.exec()
        return dialog.result_ is not None and dialog.result_.project is not None

    def open_imported(self, project: Project, path: Path | None) -> None:
        """An imported design: a new untitled document (or the file it was saved to, with its
        weights beside it). Its submodules are block uses, each one box until opened."""
        if path is not None and self.open_path(path, ask=False):
            return
        self.set_project(project, None)
        self.statusBar().showMessage(f"Imported “{project.name}” as a new design; Save asks "
                                     "where to save it.", 10000)

    def load_weights(self) -> bool:
        doc = self.document
        start = str(doc.path.parent) if doc.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Load weights", start,
                                              "PyTorch weights (*.pt *.pth *.bin);;All files (*)")
        return bool(path) and self.load_weights_file(path)

    def load_weights_file(self, path: str | os.PathLike) -> bool:
        """Match a state_dict file against the design by name and shape and, when it fills at
        least ``training.init_weights_min_fit`` of the parameters, make it the initial weights:
        ``training.init_weights``, relative to the project file when saved (one undo step).
        What will load and what starts fresh is shown; a file that fits nothing or too little
        is refused with the same report, and nothing changes."""
        from ..engine.model.blocks import model_names
        from ..engine.model.build import BuildError, build_model
        from ..engine.model.weights import match_weights, read_weights
        from ..engine.train.config import ConfigError, validate_training

        doc = self.document
        models = model_names(doc.project.networks)
        network = doc.network if doc.network in models else (models[0] if models else None)
        if network is None:
            QMessageBox.warning(self, "Load weights", "The project has no model network.")
            return False
        try:
            min_fit = validate_training(doc.project.training)["init_weights_min_fit"]
        except ConfigError as exc:
            QMessageBox.warning(self, "Cannot load weights", str(exc))
            return False
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            state = read_weights(path)
            model = build_model(doc.project.networks[network])
            fit = match_weights(model, state)
        except (ValueError, BuildError) as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self, "Cannot load weights", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        name = Path(path).name
        refused = fit.refusal(name, min_fit, "training.init_weights_min_fit")
        if refused is not None:
            QMessageBox.warning(self, "The weights do not fit the design",
                                f"{refused}.\n\n" + weights_report_text(fit, name, network))
            return False
        p = Path(path).resolve()
        if doc.path is not None:
            try:
                text = os.path.relpath(p, doc.path.resolve().parent)
            except ValueError:  # another drive
                text = str(p)
        else:
            text = str(p)
        doc.set_init_weights(text)
        self.statusBar().showMessage(f"Training starts from {p.name} ({len(fit.loaded)} of "
                                     f"{len(fit.loaded) + len(fit.fresh)} tensors).", 8000)
        if not fit.ok:  # loaded in part: say exactly what starts fresh (Edit > Undo takes it back)
            QMessageBox.information(self, "The weights fit in part",
                                    weights_fit_text(fit, name, network))
        return True

    def set_project(self, project: Project, path: Path | None) -> None:
        self.training.panel.stop_and_wait()  # callers ask first (maybe_save); never mix runs
        self.document.replace_project(project, path)
        self.training.panel.reset_view()
        self.inspector.set_node(None)
        QTimer.singleShot(0, self.view.fit_to_view)

    def save(self) -> bool:
        commit_pending_edit()
        if self.document.path is None:
            return self.save_as()
        return self.save_to(self.document.path)

    def save_as(self) -> bool:
        commit_pending_edit()
        doc = self.document
        if doc.path is not None:
            start = str(doc.path)
        else:
            start = str(Path.home() / (_file_stem(doc.project.name) + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save design as", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += SUFFIX
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        self._name_after_file(path)
        try:
            save_project(self.document.project, path)
        except (OSError, ValueError) as exc:
            QMessageBox.critical(self, "Cannot save", f"The design could not be saved to {path}:"
                                 f"\n\n{exc}")
            return False
        self.document.mark_saved(path)
        self.recent.add(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _name_after_file(self, path: Path) -> None:
        """A project never named takes its file's name on its first save (``my-net.dnn.json``
        -> "my-net"), so the exported model class is ``MyNet``, not the placeholder's."""
        doc = self.document
        if is_named(doc.project):
            return
        stem = path.name.removesuffix(".json").removesuffix(".dnn").strip()
        if stem:
            try:
                doc.set_project_name(stem)
            except ValueError:  # a name the document refuses (too long): keep the placeholder
                pass

    # -- recovery ------------------------------------------------------------------------------

    def offer_recovery(self) -> bool:
        """If a previous session crashed with unsaved work, offer to restore it.

        Returns True when work was restored (the caller then opens nothing else).
        """
        pending = pending_recoveries(self.recovery_dir)
        if not pending:
            return False
        rec = pending[0]
        answer = QMessageBox.question(
            self, "Restore unsaved work?",
            "Designer did not close properly last time. Restore the unsaved work?\n\n"
            f"{rec.describe()}\n\n“No” deletes the autosaved copy.",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        if answer != QMessageBox.Yes:
            rec.discard()
            return False
        return self.restore(rec)

    def restore(self, rec: Recovery) -> bool:
        try:
            project = rec.load()
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot restore", f"The autosaved copy is damaged:\n\n{exc}")
            return False
        self.set_project(project, rec.original)
        self.document.undo_stack.resetClean()  # restored work is not saved yet
        rec.discard()
        self.statusBar().showMessage("Restored the autosaved work; save it to keep it.", 10000)
        return True

    # ------------------------------------------------------------------------------------------
    # model -> window
    # ------------------------------------------------------------------------------------------

    def _display_name(self) -> str:
        doc = self.document
        return doc.path.name if doc.path else (doc.project.name or "Untitled")

    @Slot()
    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self._display_name()}[*] — {APP_NAME}")
        self.setWindowModified(self.document.is_modified())

    @Slot(object)
    def _on_analysis(self, analysis: Analysis) -> None:
        graph = self.document.graph
        self.problems.show_analysis(graph, self._with_cross_network(analysis))
        self._summary_stale = True
        if self._summary_shown():  # a hidden summary catches up when it is shown
            self._refresh_summary()
        self._show_totals(analysis)

    @Slot()
    def _on_document_changed(self) -> None:
        analysis = self.document.analysis
        if analysis is None or self._closed:
            return
        self.status_memory.setText(self._memory_text(analysis))
        self._summary_stale = True
        if self._summary_shown():
            self._refresh_summary()

    def _with_cross_network(self, analysis: Analysis) -> Analysis:
        """The analysis plus the problems between the project's networks (a GAN's generator
        output against its discriminator input). Their messages name the network and layer; node
        ids are dropped, as the same id may exist in both networks."""
        from dataclasses import replace

        from designer.engine.search.space import search_problems
        from designer.engine.train.recipes import cross_network_problems

        project = self.document.project
        try:
            extra = search_problems(project)  # a searched layer renamed or deleted
            if len(project.networks) > 1:
                extra = cross_network_problems(project) + extra
        except Exception:  # noqa: BLE001 - a half-edited design must not break the problems list
            return analysis
        if not extra:
            return analysis
        extra = [replace(p, node_ids=()) for p in extra]
        return replace(analysis, problems=list(analysis.problems) + extra)

    @Slot(bool)
    def _on_summary_visible(self, visible: bool) -> None:
        if visible and self._summary_stale:
            self._refresh_summary()

    def _summary_shown(self) -> bool:
        # A dock tabbed behind another is "visible" to Qt but has nothing on screen.
        return self.summary.isVisible() and not self.summary.visibleRegion().isEmpty()

    def _refresh_summary(self) -> None:
        self._summary_stale = False
        self.summary.show_analysis(self.document.graph, self.document.analysis,
                                   self.document.training_settings())

    @Slot(str)
    def _on_analysis_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        self.problems.show_failure(message)  # stays listed until a check succeeds
        self.status_valid.setText("✖ check failed")
        self.status_valid.setStyleSheet("color: #c0392b; font-weight: bold;")
        self.status_valid.setToolTip(message)

    def _show_totals(self, analysis: Analysis | None) -> None:
        if analysis is None:
            for w in (self.status_params, self.status_macs, self.status_size, self.status_memory):
                w.setText("")
            self.status_valid.setText("Checking…")
            self.status_valid.setStyleSheet("")
            return
        params = analysis.total_params
        trainable = trainable_params(self.document.graph, analysis)
        self.status_params.setText(f"Parameters: {params:,}" if trainable == params else
                                   f"Parameters: {params:,} ({trainable:,} trainable)")
        self.status_params.setToolTip(f"{trainable:,} trainable, {params - trainable:,} frozen "
                                      "(Edit > Freeze)")
        self.status_macs.setText(f"MACs: {human(analysis.total_macs)}")
        self.status_size.setText(f"Size: {params * 4 / 1e6:.2f} MB")
        self.status_memory.setText(self._memory_text(analysis))
        errors = len(analysis.errors)
        if errors:
            self.status_valid.setText(f"✖ {errors} error{'s' if errors != 1 else ''}")
            self.status_valid.setStyleSheet("color: #c0392b; font-weight: bold;")
            self.status_valid.setToolTip("See the Problems panel")
        else:
            self.status_valid.setText("✔ valid")
            self.status_valid.setStyleSheet("color: #2e8b57; font-weight: bold;")
            self.status_valid.setToolTip("Every shape checks out")

    def _enable_freeze_actions(self) -> None:
        # shortcuts stay live; a refused one says why in the status bar
        for act in (self.act_freeze, self.act_unfreeze, self.act_freeze_before):
            act.setEnabled(True)

    def _memory_text(self, analysis: Analysis) -> str:
        """Training memory at the project's batch size (the Summary has it per layer)."""
        from ..engine.model.memory import estimate, fmt_bytes, training_batch, training_device_of

        if not analysis.ok:
            self.status_memory.setToolTip("")
            return ""
        t = self.document.training_settings()  # as Train and Sweeps read them
        batch = training_batch(t)
        est = estimate(self.document.graph, analysis, batch, t, training_device_of(t))
        self.status_memory.setToolTip(
            f"Estimated memory to train at batch {batch}: activations "
            f"{fmt_bytes(est.activations_per_sample)} per sample, weights with their gradients "
            f"and optimizer state {fmt_bytes(est.param_state)}. Per layer: the Summary tab.")
        return f"Training memory: ~{fmt_bytes(est.training_total)}"

    @Slot(str)
    def _on_network_changed(self, name: str) -> None:
        self._rebuild_network_tabs()
        self._show_totals(self.document.analysis)
        if self.document.analysis is None:
            self.problems.show_analysis(self.document.graph, None)
            self._summary_stale = True
            if self._summary_shown():
                self._refresh_summary()

    @Slot(object)
    def _on_project_event(self, event) -> None:
        if event.kind in _NETWORK_EVENTS:
            self._rebuild_network_tabs()

    def _rebuild_network_tabs(self) -> None:
        tabs = self.network_tabs
        names = list(self.document.project.networks)
        tabs.blockSignals(True)
        while tabs.count():
            tabs.removeTab(0)
        for n in names:
            tabs.addTab(n)
        tabs.setCurrentIndex(names.index(self.document.network))
        tabs.blockSignals(False)
        tabs.setVisible(len(names) > 1)

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        if index >= 0:
            self.document.set_network(self.network_tabs.tabText(index))

    # ------------------------------------------------------------------------------------------
    # layout, about, closing
    # ------------------------------------------------------------------------------------------

    def restore_layout(self) -> bool:
        """Restore the remembered geometry and dock layout; False when there was none."""
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            return bool(self.restoreState(state, _LAYOUT_VERSION))
        return False

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and obj is self.view.viewport():
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self.torch_loader.start)  # after this paint has finished
        return super().eventFilter(obj, event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self.fit_to_screen)  # now that the frame's size is known
        if self._default_sizes_pending:
            self._default_sizes_pending = False
            QTimer.singleShot(0, self.apply_default_dock_sizes)

    def fit_to_screen(self) -> None:
        """Keep the whole window, frame included, on the available area of its screen: on a
        1280x800 laptop the default 1400x860, or a size remembered from a bigger screen, would
        put the status bar and the bottom panels' tabs out of reach."""
        if self.isMaximized() or self.isFullScreen():
            return
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        frame, inner = self.frameGeometry(), self.geometry()
        framed = self.isVisible() and frame != inner
        extra_w = frame.width() - inner.width() if framed else _FRAME_ALLOWANCE[0]
        extra_h = frame.height() - inner.height() if framed else _FRAME_ALLOWANCE[1]
        width = min(inner.width(), avail.width() - extra_w)
        height = min(inner.height(), avail.height() - extra_h)
        if (width, height) != (inner.width(), inner.height()):
            self.resize(width, height)
        # move() places the frame: its top-left corner such that the whole frame is on screen
        x = max(avail.left(), min(frame.left(), avail.right() + 1 - self.width() - extra_w))
        y = max(avail.top(), min(frame.top(), avail.bottom() + 1 - self.height() - extra_h))
        if (x, y) != (frame.left(), frame.top()):
            self.move(x, y)

    def apply_default_dock_sizes(self) -> None:
        """Palette and inspector narrow, the bottom panels 30 % of the height, at least 220 px
        (the training curves stay readable under the buttons and a message) and at most 300."""
        w, h = self.width(), self.height()
        self.resizeDocks([self.palette, self.inspector], [min(230, w * 16 // 100),
                                                          min(320, w * 22 // 100)],
                         Qt.Horizontal)
        self.resizeDocks([self.problems], [max(220, min(300, h * 30 // 100))], Qt.Vertical)
        if self.inside.dock.isVisible():
            self.inside.share_bottom()

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(_LAYOUT_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        for dock in (self.palette, self.inspector, self.problems, self.summary, self.training,
                     self.sweeps):
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.LeftDockWidgetArea, self.palette)
        self.addDockWidget(Qt.RightDockWidgetArea, self.inspector)
        for dock in (self.problems, self.summary, self.training, self.sweeps):
            self.addDockWidget(Qt.BottomDockWidgetArea, dock)
        self.tabifyDockWidget(self.problems, self.summary)
        self.tabifyDockWidget(self.summary, self.training)
        self.tabifyDockWidget(self.training, self.sweeps)
        self.problems.raise_()
        self.apply_default_dock_sizes()

    def about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About Designer",
                          f"<b>Designer {__version__}</b><p>Design neural networks visually, check "
                          "their shapes, train them and export PyTorch code.</p>")

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed and not self.maybe_save("closing"):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Clean exit: remember the layout, drop the recovery file, stop the checker thread."""
        if self._closed:
            return
        self._closed = True
        self.save_layout()
        self.autosave.finish()
        self.training.panel.shutdown()  # stops a run and its thread
        self.sweeps.panel.shutdown()  # stops a sweep and its thread
        self.document.close()


def weights_fit_text(fit, name: str, network: str, limit: int = 20) -> str:
    """Weights that fit in part (``WeightsFit``), for a dialog: what loads, what starts fresh."""
    lines = [f"Training of “{network}” starts from {fit.summary(name)}.",
             ("Every tensor whose name and shape fit loads; the others start from the design's "
              "own initialisation (Edit > Undo takes the weights back).")]
    mism = [f"{k}: the file {a}, the design {b}" for k, a, b in fit.mismatched]
    for label, keys in (("Start fresh, another shape in the file", mism),
                        ("Start fresh, not in the file", fit.missing),
                        ("In the file but not in the design, not used", fit.unexpected)):
        if keys:
            lines += ["", f"{label} ({len(keys)}):"] + [f"  {k}" for k in keys[:limit]]
            if len(keys) > limit:
                lines.append(f"  … and {len(keys) - limit} more")
    return "\n".join(lines)


def weights_report_text(report, name: str, network: str, limit: int = 20) -> str:
    """A weights check (``WeightsFit``) for a dialog: every kind of mismatch, by key."""
    lines = [f"{name} does not fit the design “{network}”; nothing was changed."]
    for label, keys in (("Missing from the file", report.missing),
                        ("In the file but not in the design", report.unexpected)):
        if keys:
            lines += ["", f"{label} ({len(keys)}):"] + [f"  {k}" for k in keys[:limit]]
            if len(keys) > limit:
                lines.append(f"  … and {len(keys) - limit} more")
    if report.mismatched:
        lines += ["", f"Different shapes ({len(report.mismatched)}):"]
        lines += [f"  {k}: the file {a}, the design {b}" for k, a, b in report.mismatched[:limit]]
    return "\n".join(lines)


def _is_template(path: Path) -> bool:
    try:
        folder = templates_dir().resolve()
        return path.resolve().parent == folder
    except OSError:
        return False


def _file_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_ " else "" for c in name).strip().replace(" ", "-")
    return stem.lower() or "untitled"


__all__ = ["MainWindow"]
