"""Evaluation views: confusion matrix, per-class report, sample grid, regression scatter, "try it".

The numbers come from the engine (``designer.engine.train.evaluation``: :func:`evaluate_model`, run in
the worker thread on a frozen model) as an :class:`EvaluationResult`; the widgets here only display
one. The engine's names are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from designer.engine.train.evaluation import (  # noqa: F401 - re-exported for the panel and tests
    EvaluationResult,
    class_report,
    confusion_matrix,
    evaluate_dataset,
    evaluate_model,
    make_predictor,
    mistakes_first,
)

MAX_GRID_SAMPLES = 48
MAX_ANNOTATED_CLASSES = 20  # above this the heatmap shows colours only (text would not fit)


def sample_to_qimage(sample: np.ndarray) -> QImage | None:
    """A (C,H,W) or (H,W) array as an 8-bit image scaled to its own min..max; None if not an image."""
    a = np.asarray(sample, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    elif a.ndim != 2:
        return None
    if a.shape[0] < 2 or a.shape[1] < 2:
        return None
    a = np.nan_to_num(a)
    lo, hi = float(a.min()), float(a.max())
    scaled = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo)
    u8 = np.ascontiguousarray((scaled * 255).round().astype(np.uint8))
    h, w = u8.shape[:2]
    if u8.ndim == 2:
        img = QImage(u8.data, w, h, w, QImage.Format_Grayscale8)
    else:
        img = QImage(u8.data, w, h, 3 * w, QImage.Format_RGB888)
    return img.copy()  # own the pixels; the numpy buffer dies with this frame


# --------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------


class ConfusionMatrixView(pg.GraphicsLayoutWidget):
    """Heatmap of a confusion matrix, coloured by row share (recall) and labelled with counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plot = self.addPlot()
        # Not aspect-locked: square cells left most of a wide, low plot empty; the cells fill
        # it and the counts' font follows the cell size (_fit_text)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "true class")
        self.plot.setLabel("bottom", "predicted class")
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self._texts: list[pg.TextItem] = []
        self.matrix: np.ndarray | None = None
        self.class_names: list[str] = []

    def set_matrix(self, cm: np.ndarray, class_names: list[str]) -> None:
        cm = np.asarray(cm, dtype=np.int64)
        k = cm.shape[0]
        self.matrix = cm
        self.class_names = list(class_names)
        rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
        share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        # ImageItem indexes [x, y]: transpose so columns are predicted and rows true
        self.image.setImage(share.T, levels=(0.0, 1.0))
        for t in self._texts:
            self.plot.removeItem(t)
        self._texts = []
        if k <= MAX_ANNOTATED_CLASSES:
            for i in range(k):
                for j in range(k):
                    colour = (0, 0, 0) if share[i, j] > 0.6 else (255, 255, 255)
                    t = pg.TextItem(str(int(cm[i, j])), color=colour, anchor=(0.5, 0.5))
                    t.setPos(j + 0.5, i + 0.5)
                    self.plot.addItem(t)
                    self._texts.append(t)
        names = [_short(n) for n in self.class_names]
        step = max(1, k // 20)
        ticks = [[(i + 0.5, names[i] if i < len(names) else str(i)) for i in range(0, k, step)]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        self.plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)
        self._fit_text()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_text()

    def _fit_text(self) -> None:
        """Counts in a font that fits their cells: from 7 px (a 20-class matrix in a small plot)
        to 15 px, bold when the cells are roomy."""
        if not getattr(self, "_texts", None) or self.matrix is None:  # resized while built
            return
        k = self.matrix.shape[0]
        rect = self.plot.vb.sceneBoundingRect()
        cell_w, cell_h = rect.width() / k, rect.height() / k
        digits = max(1, len(str(int(self.matrix.max()))))
        px = int(max(7, min(15, cell_h * 0.6, cell_w / (0.62 * digits + 0.4))))
        font = QFont()
        font.setPixelSize(px)
        font.setBold(px >= 11)
        for t in self._texts:
            t.setFont(font)

    def cell_text(self, true_idx: int, pred_idx: int) -> str | None:
        """The count label drawn in one cell (None when the matrix is too big to annotate)."""
        if not self._texts or self.matrix is None:
            return None
        return self._texts[true_idx * self.matrix.shape[0] + pred_idx].toPlainText()


class ClassReportTable(QTableWidget):
    """Per-class precision, recall, F1 and support, then a macro average row."""

    COLUMNS = ("class", "precision", "recall", "F1", "support")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.setSortingEnabled(False)

    def set_confusion(self, cm: np.ndarray, class_names: list[str]) -> None:
        rep = class_report(cm)
        k = len(rep["support"])
        self.setRowCount(k + 1)
        for i in range(k):
            name = class_names[i] if i < len(class_names) else str(i)
            self._row(i, name, rep["precision"][i], rep["recall"][i], rep["f1"][i],
                      int(rep["support"][i]))
        present = rep["support"] > 0
        mean = (lambda a: float(a[present].mean()) if present.any() else 0.0)
        self._row(k, "macro average", mean(rep["precision"]), mean(rep["recall"]),
                  mean(rep["f1"]), int(rep["support"].sum()))
        for c in range(self.columnCount()):
            item = self.item(k, c)
            font = item.font()
            font.setBold(True)
            item.setFont(font)

    def _row(self, r: int, name: str, p: float, rec: float, f1: float, support: int) -> None:
        values = [name, f"{p:.3f}", f"{rec:.3f}", f"{f1:.3f}", str(support)]
        for c, v in enumerate(values):
            item = QTableWidgetItem(v)
            if c:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.setItem(r, c, item)


class SampleGrid(QScrollArea):
    """Validation samples with predicted and true labels; mistakes first, in red."""

    TILE = 72

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setSpacing(6)
        self.setWidget(self._inner)
        self.shown: list[tuple[int, bool]] = []  # (sample index, is a mistake) in display order

    def set_samples(self, samples: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                    class_names: list[str], columns: int = 8) -> None:
        while self._grid.count():
            w = self._grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.shown = []
        n = min(len(samples), len(y_true), len(y_pred))
        order = mistakes_first(np.asarray(y_true[:n]), np.asarray(y_pred[:n]), MAX_GRID_SAMPLES)

        def name(i: int) -> str:
            return _short(class_names[i]) if 0 <= i < len(class_names) else str(i)

        for pos, i in enumerate(order):
            i = int(i)
            wrong = bool(y_true[i] != y_pred[i])
            self.shown.append((i, wrong))
            tile = QWidget()
            lay = QVBoxLayout(tile)
            lay.setContentsMargins(2, 2, 2, 2)
            pic = QLabel()
            pic.setAlignment(Qt.AlignCenter)
            img = sample_to_qimage(samples[i])
            if img is not None:
                pic.setPixmap(QPixmap.fromImage(img).scaled(
                    self.TILE, self.TILE, Qt.KeepAspectRatio, Qt.FastTransformation))
            else:
                flat = np.asarray(samples[i]).ravel()[:4]
                pic.setText(", ".join(f"{v:.2g}" for v in flat) + ("…" if samples[i].size > 4
                                                                   else ""))
            cap = QLabel(f"pred {name(int(y_pred[i]))}\ntrue {name(int(y_true[i]))}")
            cap.setAlignment(Qt.AlignCenter)
            cap.setStyleSheet("color: #c62828; font-weight: bold;" if wrong else "color: #2e7d32;")
            lay.addWidget(pic)
            lay.addWidget(cap)
            self._grid.addWidget(tile, pos // columns, pos % columns)


class RegressionScatter(pg.PlotWidget):
    """Predicted against true values with the y = x line and R²."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setLabel("bottom", "true")
        self.setLabel("left", "predicted")
        self.showGrid(x=True, y=True, alpha=0.3)
        self.scatter = pg.ScatterPlotItem(size=5, brush=pg.mkBrush(31, 119, 180, 140), pen=None)
        self.diagonal = pg.PlotDataItem(pen=pg.mkPen((200, 0, 0), width=1, style=Qt.DashLine))
        self.addItem(self.scatter)
        self.addItem(self.diagonal)
        self.r2: float | None = None

    def set_points(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        t = np.asarray(y_true, dtype=np.float64).ravel()
        p = np.asarray(y_pred, dtype=np.float64).ravel()
        n = min(len(t), len(p))
        t, p = t[:n], p[:n]
        self.scatter.setData(t, p)
        finite = np.isfinite(t) & np.isfinite(p)
        if finite.any():
            lo = float(min(t[finite].min(), p[finite].min()))
            hi = float(max(t[finite].max(), p[finite].max()))
            self.diagonal.setData([lo, hi], [lo, hi])
            ss_res = float(np.sum((t[finite] - p[finite]) ** 2))
            ss_tot = float(np.sum((t[finite] - t[finite].mean()) ** 2))
            self.r2 = 1 - ss_res / ss_tot if ss_tot > 0 else None
        else:
            self.r2 = None
        self.setTitle(f"R² = {self.r2:.4f}" if self.r2 is not None else "")


class TryItWidget(QWidget):
    """Run the trained model on the user's own image file or CSV row.

    ``predictor(kind, value)`` is supplied by the panel after a run: ``kind`` is ``"image"`` (value
    a file path) or ``"row"`` (value the text of one CSV row); it returns lines of text to show, or
    raises ``ValueError`` with a message for the user.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._predictor: Callable[[str, str], list[str]] | None = None
        self.image_button = QPushButton("Open an image…")
        self.image_button.clicked.connect(self._choose_image)
        self.row_edit = QLineEdit()
        self.row_edit.setPlaceholderText("one CSV row of feature values, e.g. 5.1, 3.5, 1.4, 0.2")
        self.row_edit.returnPressed.connect(self._run_row)
        self.row_button = QPushButton("Predict")
        self.row_button.clicked.connect(self._run_row)
        self.preview = QLabel()
        self.preview.setFixedSize(96, 96)
        self.preview.setAlignment(Qt.AlignCenter)
        self.result = QLabel("Train a model first.")
        self.result.setTextFormat(Qt.PlainText)
        self.result.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.image_button)
        top.addWidget(self.row_edit, 1)
        top.addWidget(self.row_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.preview)
        bottom.addWidget(self.result, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(bottom)
        lay.addStretch(1)
        self.set_predictor(None, image=False, row=False)

    def set_predictor(self, predictor: Callable[[str, str], list[str]] | None, image: bool,
                      row: bool) -> None:
        self._predictor = predictor
        self.image_button.setEnabled(predictor is not None and image)
        self.row_edit.setEnabled(predictor is not None and row)
        self.row_button.setEnabled(predictor is not None and row)
        if predictor is None:
            self.result.setText("Train a model first.")
        elif image:
            self.result.setText("Open an image to see what the model says.")
        else:
            self.result.setText("Type one row of feature values and press Predict.")

    def _choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image to classify", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp)")
        if path:
            self.predict("image", path)

    def _run_row(self) -> None:
        if self.row_edit.text().strip():
            self.predict("row", self.row_edit.text())

    def predict(self, kind: str, value: str) -> list[str]:
        """Run the predictor and show its answer (or its error message)."""
        if self._predictor is None:
            self.result.setText("Train a model first.")
            return []
        try:
            lines = self._predictor(kind, value)
        except ValueError as exc:
            self.result.setText(str(exc))
            return []
        except Exception as exc:  # noqa: BLE001 - a model failing on this input must not end the app
            self.result.setText(f"The model could not run on this input: {exc}")
            return []
        if kind == "image":
            pix = QPixmap(value)
            if not pix.isNull():
                self.preview.setPixmap(pix.scaled(96, 96, Qt.KeepAspectRatio,
                                                  Qt.SmoothTransformation))
        self.result.setText("\n".join(lines))
        return lines


class EvaluationPanel(QTabWidget):
    """All evaluation views in tabs; :meth:`show_result` picks those that fit the task. The
    corner says which checkpoint the figures are of and offers the run's other one
    (``checkpoint_chosen("best" | "last")``)."""

    checkpoint_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.checkpoint_combo.setToolTip(
            "Which weights these figures are of: best.pt (the epoch with the lowest validation "
            "loss, what Export ships by default) or last.pt (the last epoch)")
        self.checkpoint_combo.activated.connect(
            lambda i: self.checkpoint_chosen.emit(self.checkpoint_combo.itemData(i)))
        corner = QWidget()
        row = QHBoxLayout(corner)
        row.setContentsMargins(0, 0, 4, 2)
        row.addWidget(QLabel("Model:"))
        row.addWidget(self.checkpoint_combo)
        self.setCornerWidget(corner, Qt.TopRightCorner)
        corner.setVisible(False)
        self._corner = corner
        self.confusion = ConfusionMatrixView()
        self.report = ClassReportTable()
        self.samples = SampleGrid()
        self.scatter = RegressionScatter()
        self.try_it = TryItWidget()
        self.summary = QLabel("No evaluation yet: train a model, or evaluate a run from the "
                              "history.")
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self._result_stack = QStackedWidget()
        cls = QWidget()
        cl = QHBoxLayout(cls)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.confusion, 3)
        cl.addWidget(self.report, 2)
        self._result_stack.addWidget(self.summary)
        self._result_stack.addWidget(cls)
        self._result_stack.addWidget(self.scatter)
        self.addTab(self._result_stack, "Results")
        self.addTab(self.samples, "Samples")
        self.addTab(self.try_it, "Try it")
        self.result: EvaluationResult | None = None

    def show_result(self, result: EvaluationResult) -> None:
        self.result = result
        if result.task == "classification" and result.confusion is not None:
            self.confusion.set_matrix(result.confusion, result.class_names)
            self.report.set_confusion(result.confusion, result.class_names)
            self._result_stack.setCurrentIndex(1)
            if result.samples is not None:
                idx = (result.sample_index if result.sample_index is not None
                       else np.arange(len(result.samples)))
                self.samples.set_samples(result.samples, result.y_true[idx], result.y_pred[idx],
                                         result.class_names)
            self.setTabEnabled(1, result.samples is not None)
        elif result.task == "regression" and result.y_true is not None:
            self.scatter.set_points(result.y_true[:, 0], result.y_pred[:, 0])
            self._result_stack.setCurrentIndex(2)
            self.setTabEnabled(1, False)
        else:
            mse = (float(np.mean((result.y_true - result.y_pred) ** 2))
                   if result.y_true is not None and result.y_true.size else math.nan)
            self.summary.setText(f"Reconstruction error (MSE) on the validation split: {mse:.5f}")
            self._result_stack.setCurrentIndex(0)
            self.setTabEnabled(1, False)

    def set_checkpoints(self, infos: list, current: str | None) -> None:
        """The run's checkpoints (``runs.CheckpointInfo``) with ``current`` the one shown."""
        combo = self.checkpoint_combo
        combo.blockSignals(True)
        try:
            combo.clear()
            for info in infos:
                combo.addItem(info.label, info.kind)
            i = combo.findData(current)
            if i >= 0:
                combo.setCurrentIndex(i)
        finally:
            combo.blockSignals(False)
        self._corner.setVisible(combo.count() > 0)

    def shown_checkpoint(self) -> str | None:
        """"best" or "last": whose figures are shown (None: nothing or no run folder)."""
        return self.checkpoint_combo.currentData() if self._corner.isVisibleTo(self) else None

    def clear(self) -> None:
        self.result = None
        self.set_checkpoints([], None)
        self._result_stack.setCurrentIndex(0)


def _short(name: Any, limit: int = 12) -> str:
    s = str(name)
    return s if len(s) <= limit else s[:limit - 1] + "…"
