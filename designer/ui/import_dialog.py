"""File > Import model…: an existing PyTorch model as an editable design, in the window.

The dialog asks what ``designer import`` asks and calls the same service
(:mod:`designer.engine.services.model_import`: SPEC resolution, import, weights): the model (a torchvision classification model by name, ``transformers:ClassName`` or
``timm:NAME`` with its config settings, ``module:callable`` or ``file.py:Class``, which is
executed), the input shape (empty: the model's own), whether to bring its weights and whether to
stop at the first unsupported part. The import runs in a worker thread on the request
alone (torch, torchvision and tracing take seconds); the report (each unsupported cause once,
with its count, module paths and source line; auxiliary outputs) comes back to the dialog, and a successful import is handed to the
window through :attr:`ImportDialog.imported`, which opens it as a new design.

Weights: the model built with ``weights=None`` (its own initial weights) or, only when the user
asks, the library's pretrained weights through its own API (torchvision, transformers, timm). They are written beside the
project file as the CLI does (``<stem>.weights.pt``, ``training.init_weights``), so an import
with weights asks where the project goes and opens that file.
"""

from __future__ import annotations

import shlex
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from designer.engine.services import model_import

OFFLINE = model_import.offline_message("torchvision", window=True)


@dataclass(frozen=True)
class ImportRequest:
    """What to import; all the worker reads."""

    spec: str
    shape: tuple[int, ...] | None  # None: the model's own (spec_input_defaults)
    weights: bool = False
    pretrained: bool = False
    partial: bool = False
    project_file: Path | None = None  # with weights: where the project goes
    config: model_import.ConfigOverrides = field(default_factory=model_import.ConfigOverrides)


@dataclass
class ImportResult:
    project: Any = None  # a Project, or None when the import failed
    report: Any = None  # the ImportReport (None when the model could not even be made)
    error: str = ""
    weights_file: Path | None = None


def run_import(request: ImportRequest) -> ImportResult:
    """Make the model, import it and write its weights (any thread; no Qt)."""
    try:
        model, name = model_import.load_spec(request.spec, request.pretrained, request.shape,
                                             request.config)
    except model_import.PretrainedUnavailable as exc:
        return ImportResult(error=model_import.offline_message(exc.library, window=True))
    except (ValueError, ImportError, OSError) as exc:
        return ImportResult(error=_offline(exc, request.spec) if request.pretrained else f"{exc}")
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        if request.pretrained:
            return ImportResult(error=_offline(exc, request.spec))
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return ImportResult(error=f"{request.spec} could not be made: {last}")
    weights_beside = request.project_file if request.weights else None
    try:
        imported = model_import.import_to_project(model, name, request.shape,
                                                  partial=request.partial,
                                                  weights_beside=weights_beside)
    except model_import.WeightsNotWritten as exc:
        return ImportResult(report=exc.report, error=f"the weights could not be written: {exc}")
    if imported.project is None:
        return ImportResult(report=imported.report,
                            error=imported.error or imported.report.summary())
    return ImportResult(imported.project, imported.report, weights_file=imported.weights_file)


def _offline(exc: BaseException, spec: str) -> str:
    offline = model_import.offline_message(model_import.spec_library(spec) or "torchvision",
                                           window=True)
    text = str(exc)
    if any(w in text for w in ("urlopen", "URLError", "Temporary failure", "Name or service",
                               "Network is unreachable", "HTTP", "getaddrinfo", "download")):
        return offline
    return f"{offline}\n({type(exc).__name__}: {text})"


def report_text(result: ImportResult) -> str:
    """The import report as the dialog shows it: what was made, what could not be mapped (path,
    op, reason and source line) and the keys the design names differently."""
    report = result.report
    if report is None:
        return f"Import failed: {result.error}"
    first = report.summary().split("\n", 1)[0]
    if result.project is None:
        lines = [f"Import failed: {first}"]
    elif report.ok:
        lines = [f"Imported {first}"]
    else:
        lines = [f"Imported the mapped part (stopped at the unsupported parts): {first}"]
    if report.unsupported:  # each cause once (the JSON report of designer import has them all)
        lines += ["", "Unsupported (op: why (how many places: module paths) [source line]):"]
        lines += [f"  {c}" for c in report.causes()]
    if report.blocks:
        lines += ["", "Blocks: " + ", ".join(f"{k} ×{v}" for k, v in report.blocks.items())]
    if report.aux_outputs:
        lines += ["", ("Auxiliary outputs (returned in training only; set aux_weight on each Output "
                  "to change its loss weight):")]
        lines += [f"  fed by {k}: loss weight {w:g}" for k, w in report.aux_outputs.items()]
    if len(report.outputs) > 1:
        lines += ["", "Outputs (the first is the one a loss reads):"]
        lines += [f"  {k}: {v}" for k, v in report.outputs.items()]
    if result.project is not None:
        kept = (f" ({report.editable_layers} editable, {report.functions} kept as code)"
                if report.functions or report.editable_layers else "")
        lines += ["", f"{report.layers} layers{kept}, {report.parameters:,} parameters."]
    if result.weights_file is not None:
        lines.append(f"Weights written to {result.weights_file} (training.init_weights).")
    return "\n".join(lines)


class ImportWorker(QObject):
    """Lives in the import thread; runs one request."""

    done = Signal(object)  # ImportResult

    def __init__(self, request: ImportRequest) -> None:
        super().__init__()
        self.request = request

    @Slot()
    def run(self) -> None:
        from designer.engine.threads import training_threads, use_training_threads

        from .gc_guard import paused

        # torch's CPU threads as a training run in the window takes them (engine.threads: a
        # core left to the GUI thread); no garbage collection while it imports (it may import
        # torch and torch._dynamo: see gc_guard.paused)
        use_training_threads(training_threads(gui=True))
        try:
            with paused():
                result = run_import(self.request)
        except Exception as exc:  # noqa: BLE001 - never a dead thread
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result = ImportResult(error=last)  # the report says "Import failed: " before it
        self.done.emit(result)


def torchvision_models() -> list[str]:
    """torchvision's classification models (names for ``torchvision:NAME``); none without it."""
    try:
        import torchvision
    except ImportError:
        return []
    return sorted(torchvision.models.list_models(module=torchvision.models))


class ImportDialog(QDialog):
    """Asks for the model, runs the import off the GUI thread and shows its report."""

    imported = Signal(object, object)  # Project, the saved project file (None: untitled)

    def __init__(self, parent: QWidget | None = None, models: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import model")
        self.setObjectName("ImportDialog")
        self.resize(640, 520)
        self.result_: ImportResult | None = None
        self._thread: QThread | None = None
        self._worker: ImportWorker | None = None

        form = QFormLayout()
        self.spec = QComboBox(self)
        self.spec.setObjectName("spec")
        self.spec.setEditable(True)
        names = torchvision_models() if models is None else models
        self.spec.addItems([f"torchvision:{n}" for n in names])
        i = self.spec.findText("torchvision:resnet18")
        self.spec.setCurrentIndex(max(i, 0))
        self.spec.lineEdit().setPlaceholderText("torchvision:NAME, transformers:ClassName, "
                                                "timm:NAME, module.path:callable, "
                                                "path/to/file.py:Class or model.pt2")
        self.spec.setToolTip("torchvision:NAME (built with weights=None), transformers:ClassName "
                             "(e.g. transformers:BertForSequenceClassification, built from its "
                             "config class) or timm:NAME (pretrained=False): nothing downloaded; "
                             "module.path:callable or path/to/file.py:ClassOrFactory, called "
                             "without arguments")
        browse = QPushButton("File…", self)
        browse.setToolTip("Choose a Python file and type :ClassName after it")
        browse.clicked.connect(self._browse_file)
        row = QHBoxLayout()
        row.addWidget(self.spec, 1)
        row.addWidget(browse)
        form.addRow("Model", row)
        note = QLabel("A module or a .py file is <b>imported and run as Python code</b>: import "
                      "only code you trust.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #8a5a00;")
        form.addRow("", note)
        self.config = QLineEdit(self)
        self.config.setObjectName("config")
        self.config.setPlaceholderText("transformers:/timm: settings, e.g. num_hidden_layers=2 "
                                       "hidden_act=gelu, or config.json")
        self.config.setToolTip(model_import.CONFIG_HELP.replace("repeatable", "separated by "
                                                                "spaces"))
        form.addRow("Config", self.config)
        self.shape = QLineEdit("3,224,224", self)
        self.shape.setObjectName("shape")
        self.shape.setPlaceholderText("the model's own (e.g. 16 token ids for a text model)")
        self.shape.setToolTip("One sample's shape without the batch; reshapes in the design hold "
                              "sizes for it. Empty: the model's own (token ids for a "
                              "transformers text model, its image size, timm's input_size)")
        form.addRow("Input shape", self.shape)
        self.weights = QCheckBox("Import its weights (saved beside the project as "
                                 "<name>.weights.pt, used as the initial weights)", self)
        self.weights.setObjectName("weights")
        self.pretrained = QCheckBox("Pretrained weights (downloaded by torchvision, "
                                    "transformers (ClassName@hub-id) or timm; needs a network)",
                                    self)
        self.pretrained.setObjectName("pretrained")
        self.project_file = QLineEdit(self)
        self.project_file.setObjectName("project_file")
        self.project_file.setPlaceholderText("where the project and its weights are saved")
        choose = QPushButton("Save as…", self)
        choose.clicked.connect(self._choose_project_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.project_file, 1)
        file_row.addWidget(choose)
        self._file_widgets = (self.pretrained, self.project_file, choose)
        form.addRow("Weights", self.weights)
        form.addRow("", self.pretrained)
        form.addRow("Project file", file_row)
        self.partial = QCheckBox("Stop at the unsupported part (import what maps, up to the "
                                 "first op with no designer layer)", self)
        self.partial.setObjectName("partial")
        form.addRow("", self.partial)
        self.weights.toggled.connect(self._sync_enabled)
        self.spec.currentTextChanged.connect(self._sync_enabled)
        self.spec.currentTextChanged.connect(self._spec_changed)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)  # busy
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel("", self)
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit(self)
        self.report.setObjectName("report")
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("The import report appears here.")

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.AcceptRole)
        self.import_button.setObjectName("import")
        self.import_button.setDefault(True)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.buttons)
        self._sync_enabled()

    # -- form ------------------------------------------------------------------------------------

    def _sync_enabled(self, *_args) -> None:
        on = self.weights.isChecked() and not self.is_running()
        for w in self._file_widgets:
            w.setEnabled(on)
        spec = self.spec.currentText().strip()
        self.pretrained.setEnabled(on and model_import.spec_library(spec) != "")
        if not self.pretrained.isEnabled():
            self.pretrained.setChecked(False)

    def _spec_changed(self, spec: str) -> None:
        library = model_import.spec_library(spec.strip())
        if library in ("transformers", "timm") and not self.shape.isModified() and (
                self.shape.text() == "3,224,224"):
            self.shape.clear()  # the untouched default: the model's own input instead

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python file with the model", str(Path.home()),
                                              "Python files (*.py);;torch.export programs (*.pt2)")
        if path:
            self.spec.setEditText(path if path.endswith(".pt2") else f"{path}:")
            self.spec.setFocus()

    def _choose_project_file(self) -> None:
        from designer.engine.document.project import SUFFIX

        filter_ = f"Designer projects (*{SUFFIX});;All files (*)"
        name = self.spec.currentText().rpartition(":")[2].partition("@")[0] or "imported"
        path, _ = QFileDialog.getSaveFileName(self, "Save the imported project as",
                                              str(Path.home() / (name + SUFFIX)), filter_)
        if path:
            self.project_file.setText(path if path.endswith(".json") else path + SUFFIX)

    def request(self) -> ImportRequest:
        """The request the form describes; ValueError says what to fix."""
        spec = self.spec.currentText().strip()
        if not spec:
            raise ValueError("name the model to import")
        text = self.shape.text().strip()
        shape = model_import.parse_shape(text) if text else None
        try:
            items = shlex.split(self.config.text())
        except ValueError as exc:
            raise ValueError(f"Config: {exc}") from None
        config = model_import.parse_config(items)
        project_file = None
        if self.weights.isChecked():
            text = self.project_file.text().strip()
            if not text:
                raise ValueError("with its weights, the project is saved first: choose where "
                                 "(Project file)")
            project_file = Path(text).expanduser()
        return ImportRequest(spec, shape, self.weights.isChecked(), self.pretrained.isChecked(),
                             self.partial.isChecked(), project_file, config)

    # -- the import ------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    @Slot()
    def start(self) -> bool:
        """Start the import in a worker thread (False: the form needs fixing, or one runs)."""
        if self.is_running():
            return False
        try:
            request = self.request()
        except ValueError as exc:
            self.status.setText(f"<span style='color:#c0392b'>{exc}</span>")
            return False
        self.result_ = None
        self.report.clear()
        self.status.setText(f"Importing {request.spec} (tracing with torch.fx)…")
        self.progress.show()
        self.import_button.setEnabled(False)
        thread = self._thread = QThread(self)
        thread.setObjectName("designer-import")
        worker = self._worker = ImportWorker(request)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(self._on_done)  # a slot of this GUI-thread object: queued
        thread.finished.connect(worker.deleteLater)
        self._request = request
        thread.start()
        self._sync_enabled()
        return True

    @Slot(object)
    def _on_done(self, result: ImportResult) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread = None
        self._worker = None
        self.progress.hide()
        self.import_button.setEnabled(True)
        self._sync_enabled()
        self.result_ = result
        self.report.setPlainText(report_text(result))
        if result.project is None:
            self.status.setText(f"<span style='color:#c0392b'><b>Not imported.</b></span> "
                                f"{_html(result.error.splitlines()[0] if result.error else '')}")
            return
        saved = None
        if self._request.project_file is not None:
            from designer.engine.document.project import save_project

            try:
                saved = save_project(result.project, self._request.project_file)
            except (OSError, ValueError) as exc:
                self.status.setText(f"Imported, but the project could not be saved: {_html(exc)}")
                return
        partial = "" if result.report.ok else " (partial: see the report)"
        self.status.setText(f"<b>Imported</b>{partial}; opened as a new design"
                            + (f" ({_html(saved)})" if saved else "") + ".")
        self.imported.emit(result.project, saved)

    def wait(self, timeout_ms: int = 120000) -> None:
        """Block until the import is done (tests and closing)."""
        if self._thread is not None:
            self._thread.wait(timeout_ms)
        QApplication.processEvents()

    def done(self, code: int) -> None:  # closing waits for the thread: never left running
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        super().done(code)


def _html(text: Any) -> str:
    from html import escape

    return escape(str(text))
