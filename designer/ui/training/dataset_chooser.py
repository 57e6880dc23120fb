"""The dataset chooser: which data, its settings, what it holds, and whether the design fits it.

Loading runs on a :class:`DatasetLoadThread` (a torchvision download can take minutes); its
signals reach slots of this widget, which lives in the GUI thread. The fit check uses the engine's
:func:`~designer.engine.train.data.check_model_data`; its fixes are applied by the panel as one undo step.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer.engine.train.config import DATASET_SETTINGS, SYNTHETIC_NAMES, TORCHVISION_NAMES

from ..widgets import guard_wheel
from .settings_form import SettingsForm

KIND_LABELS = {
    "digits": "Digits (built in, 8x8, offline)",
    "synthetic": "Synthetic (moons, spirals, linear, sine)",
    "torchvision": "torchvision (MNIST, CIFAR-10, …; downloads once)",
    "image_folder": "Image folder (one subfolder per class)",
    "csv": "CSV table (feature columns and a target)",
    "csv_text": "CSV text (a text column and a label)",
    "text": "Text file (next-token prediction, language models)",
}
# Kinds read from a file or folder the user picks.
_FILE_KINDS = ("image_folder", "csv", "csv_text", "text")
# Settings with their own widgets here; the rest come from the generated form.
_CUSTOM = ("kind", "name", "path", "feature_columns", "target_column", "text_column",
           "label_column")
PREVIEW_ROWS = 5


def config_key(cfg: dict[str, Any], base_dir: Path | None) -> str:
    """Identity of a dataset configuration: the same key means the same loaded tensors."""
    return json.dumps({"cfg": cfg, "base": str(base_dir) if base_dir else None}, sort_keys=True)


class DatasetLoadThread(QThread):
    """Loads a dataset off the GUI thread; reports download progress, the dataset or a message."""

    progress = Signal(object)  # DownloadProgress
    loaded = Signal(object, str)  # Dataset, config key
    failed = Signal(str, str)  # message, config key

    def __init__(self, cfg: dict[str, Any], base_dir: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.cfg = dict(cfg)
        self.base_dir = base_dir
        self.key = config_key(self.cfg, base_dir)

    def run(self) -> None:
        from designer.engine.train.data import load_dataset

        try:
            ds = load_dataset(self.cfg, self.base_dir, progress=self.progress.emit)
        except ValueError as exc:  # DatasetError: a message for people
            self.failed.emit(str(exc), self.key)
        except MemoryError:
            self.failed.emit("The dataset does not fit in memory.", self.key)
        except Exception as exc:  # noqa: BLE001 - a loader bug must become a message
            self.failed.emit(f"Loading the dataset failed: {type(exc).__name__}: {exc}", self.key)
        else:
            self.loaded.emit(ds, self.key)


def read_csv_preview(path: Path, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    """Header and the first ``rows`` rows of a CSV file (reads only its beginning)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        head = f.read(256 * 1024)
    try:
        # the first lines tell the delimiter (the sniffer's regexes over 64 KB took 0.1 s)
        dialect = csv.Sniffer().sniff("".join(head[:65536].splitlines(True)[:20]),
                                      delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(head), dialect)
    out: list[list[str]] = []
    for r in reader:
        if any(c.strip() for c in r):
            out.append(r)
        if len(out) > rows:
            break
    if not out:
        raise ValueError(f"{path.name} is empty")
    return [h.strip() for h in out[0]], out[1:]


class DatasetChooser(QWidget):
    """Kind, name or path, the generated dataset settings, a CSV column picker and preview, what
    the loaded data holds and whether the design fits it.

    Signals: ``changed`` when the user edits the configuration; ``loaded(Dataset)`` when a
    dataset is ready; ``fix_requested(list)`` with the engine's ParamFix and DatasetFix list.
    """

    changed = Signal()
    loaded = Signal(object)
    fix_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base_dir: Path | None = None
        self.dataset = None  # the last loaded Dataset
        self.dataset_key: str | None = None
        self._thread: DatasetLoadThread | None = None
        self.loads_started = 0  # which load a result belongs to (before or after a run failed)
        self._fixes: list = []
        self._reveal = False  # scroll the next verdict into view (a load the user asked for)
        self._header: list[str] = []
        self._updating = False
        self._file_problem = ""  # why the CSV file's columns could not be read
        self._load_error: tuple[str, str] | None = None  # (message, config key) of a failed load

        self.kind_combo = QComboBox()
        for kind, label in KIND_LABELS.items():
            self.kind_combo.addItem(label, kind)
        self.name_combo = QComboBox()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("a folder or a .csv file")
        self.browse_button = QPushButton("Browse…")
        path_row = QHBoxLayout()
        path_row.setContentsMargins(0, 0, 0, 0)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        self._path_box = QWidget()
        self._path_box.setLayout(path_row)
        self._path_box.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)

        # CSV column picker and preview
        self.target_combo = QComboBox()
        self.text_combo = QComboBox()
        self.feature_list = QListWidget()
        self.feature_list.setMaximumHeight(110)
        self.feature_list.setToolTip("Ticked columns are the inputs; none ticked: every column "
                                     "except the target.")
        self.preview = QTableWidget()
        self.preview.setEditTriggers(QTableWidget.NoEditTriggers)
        self.preview.setMaximumHeight(150)

        self.form = SettingsForm(DATASET_SETTINGS, skip=_CUSTOM, hide_inapplicable=True)

        for combo in (self.kind_combo, self.name_combo, self.target_combo, self.text_combo):
            # as narrow as the column: long names are elided, not a reason to scroll sideways
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        top = QFormLayout()
        top.setRowWrapPolicy(QFormLayout.WrapLongRows)
        top.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        top.addRow("Dataset", self.kind_combo)
        self._name_label = QLabel("Name")
        top.addRow(self._name_label, self.name_combo)
        self._path_label = QLabel("Path")
        top.addRow(self._path_label, self._path_box)
        self._target_label = QLabel("Target column")
        top.addRow(self._target_label, self.target_combo)
        self._text_label = QLabel("Text column")
        top.addRow(self._text_label, self.text_combo)
        self._features_label = QLabel("Feature columns")
        top.addRow(self._features_label, self.feature_list)
        self._top = top

        self.load_button = QPushButton("Load and check")
        self.load_button.setToolTip("Load the data now, show what it holds and check the design "
                                    "against it (Train does this too).")
        self.progress = QProgressBar()
        self.progress.hide()
        self.info = QLabel("No dataset loaded yet.")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.PlainText)
        self.fit_label = QLabel()
        self.fit_label.setWordWrap(True)
        self.fit_label.setTextFormat(Qt.PlainText)
        self.fix_button = QPushButton("Make the design fit")
        self.fix_button.setToolTip("Set the Input shape and the last layer's size to match the "
                                   "dataset, or for an imported model, whose sizes are fixed, "
                                   "the dataset's sequence length and vocabulary (one undo "
                                   "step).")
        self.fix_button.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.preview)
        lay.addWidget(self.form)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.progress, 1)
        lay.addLayout(row)
        lay.addWidget(self.info)
        lay.addWidget(self.fit_label)
        lay.addWidget(self.fix_button)
        guard_wheel(self)  # the panel scrolls under the wheel; only a focused field takes it

        self.kind_combo.currentIndexChanged.connect(self._on_kind)
        self.name_combo.currentTextChanged.connect(self._on_edit)
        self.path_edit.editingFinished.connect(self._on_path)
        self.path_edit.returnPressed.connect(self._on_path_entered)
        self.browse_button.clicked.connect(self._browse)
        self.target_combo.currentTextChanged.connect(self._on_edit)
        self.text_combo.currentTextChanged.connect(self._on_edit)
        self.feature_list.itemChanged.connect(self._on_edit)
        self.form.changed.connect(self._on_edit)
        self.load_button.clicked.connect(self._load_and_reveal)
        self.fix_button.clicked.connect(lambda: self.fix_requested.emit(list(self._fixes)))
        self._on_kind()

    # -- configuration -----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.kind_combo.currentData()

    def set_config(self, values: dict[str, Any], base_dir: Path | None = None) -> None:
        """Show a project's ``dataset`` section (missing keys take their defaults)."""
        from designer.engine.train.config import ConfigError, resolve_dataset_name, validate_dataset

        self.base_dir = base_dir
        raw = dict(values or {})
        try:
            cfg = validate_dataset(raw)
        except ConfigError:
            # show what can be shown; the error appears when loading
            cfg = {s.key: raw.get(s.key, s.default) for s in DATASET_SETTINGS}
            if isinstance(cfg.get("name"), str) and "kind" not in raw:
                cfg["kind"] = resolve_dataset_name(cfg["name"])[0] or "digits"
        self._updating = True
        try:
            i = self.kind_combo.findData(cfg.get("kind", "digits"))
            self.kind_combo.setCurrentIndex(max(i, 0))
            self._refresh_kind_widgets()
            if cfg.get("name"):
                self.name_combo.setCurrentText(str(cfg["name"]))
            self.path_edit.setText(cfg.get("path") or "")
            self._read_header()
            # a column the settings name that the file lacks is kept, and said (_show_state)
            if cfg.get("target_column") and self.kind == "csv":
                self._choose(self.target_combo, cfg["target_column"])
            if self.kind == "csv_text":
                self._choose(self.target_combo, cfg.get("label_column") or "label")
                self._choose(self.text_combo, cfg.get("text_column") or "text")
            chosen = list(cfg.get("feature_columns") or [])
            for r in range(self.feature_list.count()):
                item = self.feature_list.item(r)
                item.setCheckState(Qt.Checked if item.text() in chosen else Qt.Unchecked)
            if self.kind == "csv":
                for name in chosen:
                    if name not in self._header:  # kept, in red where the file was read
                        item = QListWidgetItem(name)
                        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                        item.setCheckState(Qt.Checked)
                        if self._header:
                            item.setForeground(QColor("#c62828"))
                            item.setToolTip("Not a column of this file")
                        self.feature_list.addItem(item)
            self.form.show_section(cfg)
            self.form.set_external(self._custom_values(), replace=True)
        finally:
            self._updating = False
        self._show_state()

    def _choose(self, combo: QComboBox, name: str) -> None:
        """Select column ``name`` in a column picker. A name the file lacks is added (in red)
        and selected all the same, never silently replaced by another column: the summary and
        loading say which column is missing."""
        if name in self._header:
            combo.setCurrentText(name)
            return
        combo.addItem(name)  # also while the file cannot be read: the setting stays as it is
        i = combo.count() - 1
        if self._header:
            combo.setItemData(i, QColor("#c62828"), Qt.ForegroundRole)
            combo.setItemData(i, "Not a column of this file", Qt.ToolTipRole)
        combo.setCurrentIndex(i)

    def _missing_columns(self) -> str:
        """Which chosen columns the CSV file lacks, with the columns it has ("" if none)."""
        if not self._header or self.kind not in ("csv", "csv_text"):
            return ""
        cfg = self._custom_values()
        named = [(k, cfg.get(k)) for k in ("target_column", "label_column", "text_column")]
        named += [("feature_columns", c) for c in cfg.get("feature_columns") or []]
        path = self._resolved_path()
        return "\n".join(f"dataset.{k}: {path.name} has no column {v!r} (columns: "
                         f"{', '.join(self._header)})"
                         for k, v in named if v and v not in self._header)

    def config(self) -> dict[str, Any]:
        """The ``dataset`` section as the user set it (settings that apply to this kind only)."""
        out = {"kind": self.kind}
        out.update(self._custom_values())
        out.update(self.form.applicable_values())
        return {k: v for k, v in out.items() if v is not None or k in ("path",)}

    def _custom_values(self) -> dict[str, Any]:
        kind = self.kind
        out: dict[str, Any] = {"kind": kind}
        if kind in ("synthetic", "torchvision"):
            out["name"] = self.name_combo.currentText() or None
        if kind in _FILE_KINDS:
            out["path"] = self.path_edit.text().strip() or None
        if kind == "csv":
            out["target_column"] = self.target_combo.currentText() or None
            feats = [self.feature_list.item(r).text() for r in range(self.feature_list.count())
                     if self.feature_list.item(r).checkState() == Qt.Checked]
            out["feature_columns"] = feats or None
        if kind == "csv_text":
            out["label_column"] = self.target_combo.currentText() or "label"
            out["text_column"] = self.text_combo.currentText() or "text"
        return out

    # -- reactions -----------------------------------------------------------------------------

    def _refresh_kind_widgets(self) -> None:
        kind = self.kind
        names = {"synthetic": SYNTHETIC_NAMES, "torchvision": TORCHVISION_NAMES}.get(kind)
        self.name_combo.blockSignals(True)
        self.name_combo.clear()
        if names:
            self.name_combo.addItems(list(names))
        self.name_combo.blockSignals(False)
        files = kind in _FILE_KINDS
        csvs = kind in ("csv", "csv_text")
        for w, visible in ((self.name_combo, bool(names)), (self._name_label, bool(names)),
                           (self._path_box, files), (self._path_label, files),
                           (self.target_combo, csvs), (self._target_label, csvs),
                           (self.text_combo, kind == "csv_text"),
                           (self._text_label, kind == "csv_text"),
                           (self.feature_list, kind == "csv"), (self._features_label, kind == "csv"),
                           (self.preview, csvs)):
            w.setVisible(visible)
        self._target_label.setText("Label column" if kind == "csv_text" else "Target column")
        self.path_edit.setPlaceholderText({"image_folder": "a folder of class subfolders",
                                           "text": "a UTF-8 .txt file"}.get(kind,
                                                                            "a .csv file"))

    def _on_kind(self, *_: Any) -> None:
        self._refresh_kind_widgets()
        if not self._updating:
            self._read_header()
        self._on_edit()

    def _on_path(self) -> None:
        self._read_header()
        self._on_edit()

    def _on_path_entered(self) -> None:
        """Enter in the path field loads and checks the data, as the button beside it does
        (the button sits below the form's other fields, out of view on a small screen)."""
        self._on_path()
        self._load_and_reveal()

    def _load_and_reveal(self) -> None:
        """A load the user asked for: when its verdict comes (the fit, the fix button, or why the
        data could not be loaded) it is scrolled into view; on a laptop it lands below the fold
        of the Training tab's form, and nothing seemed to happen."""
        self._reveal = True
        self.load()

    def _scroll_into_view(self, *widgets: QWidget) -> None:
        self._reveal = False
        area = self.parentWidget()
        while area is not None and not isinstance(area, QScrollArea):
            area = area.parentWidget()
        if area is not None:
            def show() -> None:
                for w in widgets:
                    area.ensureWidgetVisible(w, 0, 12)
            QTimer.singleShot(0, show)  # once the labels have their new sizes

    def _on_edit(self, *_: Any) -> None:
        if self._updating:
            return
        self.form.set_external(self._custom_values(), replace=True)
        self._show_state()
        self.changed.emit()

    def _browse(self) -> None:
        start = str(self.base_dir or Path.home())
        if self.kind == "image_folder":
            path = QFileDialog.getExistingDirectory(self, "Image folder (one subfolder per class)",
                                                    start)
        elif self.kind == "text":
            path, _ = QFileDialog.getOpenFileName(self, "Text file", start,
                                                  "Text files (*.txt *.md *.text);;All files (*)")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "CSV file", start,
                                                  "CSV files (*.csv *.tsv *.txt);;All files (*)")
        if path:
            self.path_edit.setText(self._relative(Path(path)))
            self._on_path()
            self._load_and_reveal()  # chosen: checked at once (in the background), as by Load

    def _relative(self, path: Path) -> str:
        if self.base_dir is not None:
            try:
                return str(path.resolve().relative_to(self.base_dir.resolve()))
            except ValueError:
                pass
        return str(path)

    def _resolved_path(self) -> Path | None:
        text = self.path_edit.text().strip()
        if not text:
            return None
        from designer.engine.train.data import resolve_path

        return resolve_path(text, self.base_dir)

    def _read_header(self) -> None:
        """Fill the column pickers and the preview from the CSV file's first rows."""
        self._header = []
        self._file_problem = ""
        keep_target, keep_text = self.target_combo.currentText(), self.text_combo.currentText()
        keep_feats = {self.feature_list.item(r).text() for r in range(self.feature_list.count())
                      if self.feature_list.item(r).checkState() == Qt.Checked}
        for w in (self.target_combo, self.text_combo, self.feature_list):
            w.blockSignals(True)
        try:
            self.target_combo.clear()
            self.text_combo.clear()
            self.feature_list.clear()
            self.preview.clear()
            self.preview.setRowCount(0)
            self.preview.setColumnCount(0)
            if self.kind not in ("csv", "csv_text"):
                return
            path = self._resolved_path()
            if path is None or not path.is_file():
                if path is not None:
                    self._file_problem = f"No such file: {path}"
                return
            try:
                header, rows = read_csv_preview(path)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self._file_problem = f"Cannot read {path.name}: {exc}"
                return
            self._header = header
            self.target_combo.addItems(header)
            self.text_combo.addItems(header)
            for h in header:
                item = QListWidgetItem(h)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if h in keep_feats else Qt.Unchecked)
                self.feature_list.addItem(item)
            if self.kind == "csv":
                self.target_combo.setCurrentText(keep_target if keep_target in header
                                                 else header[-1])
            else:
                self.target_combo.setCurrentText(keep_target if keep_target in header else
                                                 ("label" if "label" in header else header[-1]))
                self.text_combo.setCurrentText(keep_text if keep_text in header else
                                               ("text" if "text" in header else header[0]))
            self.preview.setColumnCount(len(header))
            self.preview.setHorizontalHeaderLabels(header)
            self.preview.setRowCount(len(rows))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row[:len(header)]):
                    self.preview.setItem(r, c, QTableWidgetItem(cell))
        finally:
            for w in (self.target_combo, self.text_combo, self.feature_list):
                w.blockSignals(False)

    # -- loading -------------------------------------------------------------------------------

    def current_key(self) -> str:
        return config_key(self.config(), self.base_dir)

    def loaded_dataset(self):
        """The loaded dataset if it matches the current settings, else None."""
        if self.dataset is not None and self.dataset_key == self.current_key():
            return self.dataset
        return None

    def is_offline_builtin(self) -> bool:
        """Digits or a synthetic set: no download, no file, loaded in milliseconds."""
        return self.kind in ("digits", "synthetic")

    def is_loading(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def load(self) -> None:
        """Load the dataset for the current settings in the background."""
        if self.is_loading():
            return
        self.loads_started += 1
        self._thread = DatasetLoadThread(self.config(), self.base_dir)  # Python-owned
        self._thread.progress.connect(self._on_progress)
        self._thread.loaded.connect(self._on_loaded)
        self._thread.failed.connect(self._on_failed)
        self._thread.finished.connect(self._on_thread_done)
        self.load_button.setEnabled(False)
        self.info.setText("Loading…")
        self.info.setStyleSheet("")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._thread.start()

    def wait(self, ms: int = 30000) -> bool:
        """Block until a load in flight ends (closing the window, tests)."""
        return self._thread.wait(ms) if self._thread is not None else True

    @Slot(object)
    def _on_progress(self, p) -> None:
        if p.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.done / p.total))
        from designer.engine.train.data.core import human_bytes

        total = f" of {human_bytes(p.total)}" if p.total else ""
        self.info.setText(f"Downloading {p.dataset}: {p.file} {human_bytes(p.done)}{total}")

    @Slot(object, str)
    def _on_loaded(self, ds, key: str) -> None:
        self.dataset, self.dataset_key = ds, key
        self._load_error = None
        self._show_state(force=True)
        self.loaded.emit(ds)

    @Slot(str, str)
    def _on_failed(self, message: str, key: str) -> None:
        self.dataset, self.dataset_key = None, None
        self._load_error = (message, key)
        self._show_state(force=True)
        self.set_check(None)

    def _current_load_error(self) -> str:
        """The message of the failed load of the settings shown now ("" if none)."""
        if self._load_error is not None and self._load_error[1] == self.current_key():
            return self._load_error[0]
        return ""

    def _show_state(self, force: bool = False) -> None:
        """What the data summary says for the settings shown now: what the loaded data holds,
        why it could not be loaded (in red), or that nothing is loaded yet; never what another
        dataset or project held."""
        if self.is_loading() and not force:
            return  # "Loading…" or the download's progress
        problem = self._current_load_error() or (self._file_problem if self.kind in
                                                 ("csv", "csv_text") else "")
        problem = problem or self._missing_columns()
        ds = self.loaded_dataset()
        if ds is not None:
            text, problem = describe(ds), ""
        else:
            text = problem or "No dataset loaded yet."
        self.info.setText(text)
        self.info.setStyleSheet("color: #c62828;" if problem else "")

    @Slot()
    def _on_thread_done(self) -> None:
        self.progress.hide()
        self.load_button.setEnabled(True)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
        self._finished_thread = thread  # freed when the next load replaces it

    def set_dataset(self, ds, key: str) -> None:
        """A dataset loaded elsewhere (the training worker) for the settings with ``key``."""
        self._on_loaded(ds, key)

    # -- fit ---------------------------------------------------------------------------------

    def set_check(self, check, design_ok: bool = True) -> None:
        """Show a :class:`~designer.engine.train.data.DataCheck` (None: not checked yet).
        ``design_ok`` False: the design has errors, so only its Input could be checked."""
        # the design's fixes, then the dataset's (an imported model's length, its vocabulary)
        self._fixes = list(check.fixes) + list(check.dataset_fixes) if check is not None else []
        if check is None:
            if self._current_load_error():
                self.fit_label.setText("Not checked: the data could not be loaded (see above).")
                self.fit_label.setStyleSheet("color: #c62828;")
                if self._reveal:
                    self._scroll_into_view(self.info, self.fit_label)
            else:
                self.fit_label.setText("Not checked yet: “Load and check” loads the data and "
                                       "says whether the design's Input and Output fit it.")
                self.fit_label.setStyleSheet("color: #5f6368;")
            self.fix_button.hide()
            return
        if check.ok and not check.problems and not design_ok:
            self.fit_label.setText("✔ The Input fits this dataset. Whether the Output fits shows "
                                   "once the design has no errors (see Problems).")
            self.fit_label.setStyleSheet("color: #9a6700;")
        elif check.ok and not check.problems:
            self.fit_label.setText("✔ The design's Input and Output fit this dataset.")
            self.fit_label.setStyleSheet("color: #2e7d32;")
        else:
            lines = [("✖ " if p.severity == "error" else "⚠ ") + p.message for p in check.problems]
            self.fit_label.setText("\n".join(lines))
            self.fit_label.setStyleSheet("color: #c62828;" if check.errors else "color: #9a6700;")
        self.fix_button.setVisible(bool(self._fixes))
        if self._reveal:
            self._scroll_into_view(self.fit_label, *([self.fix_button] if self._fixes else []))


def describe(ds) -> str:
    """What a dataset holds, for people: sizes, sample shape, task and classes."""
    lines = [ds.describe()]
    if ds.task == "language_model" and ds.vocab:
        shown = ["␣" if t == " " else repr(t)[1:-1] if len(t) == 1 else t for t in ds.vocab[:40]]
        unit = "characters" if ds.preprocessing.get("tokenizer") == "char" else "tokens"
        lines.append(f"Vocabulary ({len(ds.vocab)} {unit}): " + " ".join(shown)
                     + (" …" if len(ds.vocab) > 40 else ""))
    elif ds.class_names:
        names = ", ".join(ds.class_names[:20]) + (" …" if len(ds.class_names) > 20 else "")
        lines.append(f"Classes: {names}")
    return "\n".join(lines)
