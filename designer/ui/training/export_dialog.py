"""The export dialog: preview ``model.py`` and ``train.py``, pick what to write, write a folder.

Everything written comes from the export service that ``designer export`` calls too
(:func:`designer.engine.services.export_project.export_files`); this dialog only chooses its
arguments. When the code is not wanted, the service leaves model.py and train.py out.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
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
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from designer.engine.document.project import Project
from designer.engine.services import export_project

from .highlighter import PythonHighlighter


class ExportDialog(QDialog):
    """Preview and export. ``runs`` lists ``(label, run folder)`` pairs whose weights can be
    exported, newest first."""

    exported = Signal(list)  # the paths written

    def __init__(self, project: Project, project_dir: str | Path | None = None,
                 runs: list[tuple[str, Path]] | None = None, default_folder: str | Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export PyTorch code")
        self.resize(900, 700)
        self.project = project
        self.project_dir = Path(project_dir) if project_dir is not None else None
        self.runs = list(runs or [])
        self.written: list[Path] = []
        self.notes: list[str] = []

        self.tabs = QTabWidget()
        self.editors: dict[str, QPlainTextEdit] = {}
        self.highlighters: list[PythonHighlighter] = []
        self.preview_error = QLabel()
        self.preview_error.setWordWrap(True)
        self.preview_error.setTextFormat(Qt.PlainText)
        self.preview_error.setStyleSheet("color: #c62828;")
        self.preview_error.hide()

        self.code_check = QCheckBox("Code: model.py and train.py")
        self.code_check.setChecked(True)
        self.weights_check = QCheckBox("Trained weights (weights.pt)")
        self.run_combo = QComboBox()
        for label, path in self.runs:
            self.run_combo.addItem(label, str(path))
        self.weights_check.setEnabled(bool(self.runs))
        self.weights_check.setChecked(bool(self.runs))
        self.run_combo.setEnabled(bool(self.runs))
        if not self.runs:
            self.weights_check.setToolTip("Train the model first: weights come from a run.")
        self.onnx_check = QCheckBox("ONNX (model.onnx)")
        self.pt2_check = QCheckBox("torch.export program (model.pt2)")
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            self.onnx_check.setEnabled(False)
            self.onnx_check.setToolTip("Needs the export extra: pip install 'designer[export]'")

        self.folder_edit = QLineEdit(str(default_folder or self._default_folder()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)

        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights_check)
        weights_row.addWidget(self.run_combo, 1)

        form = QFormLayout()
        form.addRow(self.code_check)
        form.addRow(weights_row)
        form.addRow(self.onnx_check)
        form.addRow(self.pt2_check)
        form.addRow("Folder", folder_row)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.PlainText)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.export)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(self.preview_error)
        lay.addWidget(self.tabs, 1)
        lay.addLayout(form)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self.refresh_preview()

    def _default_folder(self) -> Path:
        base = self.project_dir or Path.home()
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.project.name).strip("-")
        return base / f"{stem or 'model'}-export"

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)

    # -- preview -----------------------------------------------------------------------------

    def refresh_preview(self) -> None:
        """Regenerate the sources (the design may have changed since the dialog opened)."""
        from designer.engine.interop.export import preview_sources

        try:
            sources = preview_sources(self.project, project_dir=self.project_dir)
        except ValueError as exc:  # CodegenError: the design has errors
            self.preview_error.setText(f"The design cannot be exported yet:\n{exc}")
            self.preview_error.show()
            self.export_button.setEnabled(False)
            return
        self.preview_error.hide()
        self.export_button.setEnabled(True)
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        for name, text in sources.items():
            ed = self.editors.get(name)
            if ed is None:
                ed = QPlainTextEdit()
                ed.setReadOnly(True)
                ed.setFont(mono)
                ed.setLineWrapMode(QPlainTextEdit.NoWrap)
                self.highlighters.append(PythonHighlighter(ed.document()))
                self.editors[name] = ed
                self.tabs.addTab(ed, name)
            ed.setPlainText(text)

    def source(self, name: str) -> str:
        return self.editors[name].toPlainText()

    # -- export ------------------------------------------------------------------------------

    def export(self) -> list[Path]:
        """Write the chosen files; show what was written, or why not."""
        from designer.engine.interop.export import ExportResult

        folder = self.folder_edit.text().strip()
        if not folder:
            self.status.setText("Choose a folder to export into.")
            return []
        out = Path(folder).expanduser()
        want_code = self.code_check.isChecked()
        weights = (self.run_combo.currentData() if self.weights_check.isChecked()
                   and self.run_combo.count() else None)
        onnx, pt2 = self.onnx_check.isChecked(), self.pt2_check.isChecked()
        if not (want_code or weights or onnx or pt2):
            self.status.setText("Nothing chosen: tick the code, the weights or a model format.")
            return []
        result = ExportResult()
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            written = export_project.export_files(self.project, out, code=want_code, onnx=onnx,
                                                  pt2=pt2, weights=weights,
                                                  project_dir=self.project_dir, result=result)
        except (ValueError, OSError) as exc:  # ExportError, CodegenError, a full disk
            self.status.setText(f"Export failed: {exc}")
            self.status.setStyleSheet("color: #c62828;")
            return []
        except ImportError as exc:
            self.status.setText(f"Export failed: {exc}. Install the export extra: "
                                "pip install 'designer[export]'")
            self.status.setStyleSheet("color: #c62828;")
            return []
        finally:
            QApplication.restoreOverrideCursor()
        self.written = list(written)
        self.notes = list(result.notes)
        lines = [f"Wrote {len(written)} file(s) to {out}:"] + [f"  {p.name}" for p in written]
        lines += self.notes
        self.status.setStyleSheet("")
        self.status.setText("\n".join(lines))
        self.exported.emit(self.written)
        return self.written
