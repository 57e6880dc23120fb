"""What a GAN run shows while it trains: D and G losses, D(x) and D(G(z)), and the grid of
samples from the fixed noise, refreshed after every epoch.

:class:`GanView` is fed from the training panel's event slot (GUI thread) and, like
:class:`~designer.ui.training.plots.TrainingPlots`, only writes into buffers there; a timer
redraws. It is the GAN recipe's view (registered as ``"gan"`` in :mod:`.views`); the panel's one
worker trains both networks through the recipe registry and the same trainer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from designer.engine.train.events import Batch, Epoch
from designer.engine.train.recipes.gan import GAN
from designer.engine.train.recipes.gan.events import GAN_METRIC_LABELS, GanSamples

from .plots import LiveSeries, SeriesBuffer, legend_in_cell, since_last_report
from .views import register_view

MAX_FPS = 10
_COLOURS = {"loss_d": (214, 39, 40), "loss_g": (31, 119, 180), "d_real": (44, 160, 44),
            "d_fake": (255, 127, 14)}


class GanView(LiveSeries, QWidget):
    """Two plots (losses; discriminator scores) and the latest sample grid.

    Signals: ``samples_shown(epoch)`` after a new grid is on screen."""

    samples_shown = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plots = pg.GraphicsLayoutWidget()
        self._plots.setBackground("w")
        self.loss_plot = self._plots.addPlot(row=0, col=0)
        self.score_plot = self._plots.addPlot(row=1, col=0)
        self.loss_plot.setLabel("left", "loss")
        self.score_plot.setLabel("left", "mean score")
        self.score_plot.setYRange(0, 1)
        self.score_plot.setXLink(self.loss_plot)
        self._series: dict[str, tuple[SeriesBuffer, pg.PlotDataItem]] = {}
        self._dirty: set[str] = set()
        for plot in (self.loss_plot, self.score_plot):
            plot.showGrid(x=True, y=True, alpha=0.3)
            legend_in_cell(self._plots, plot, 0 if plot is self.loss_plot else 1, 1)  # beside
            plot.setLabel("bottom", "epoch")
            # no "epoch (x0.001)" with 50...250 ticks during the first epoch (as in plots.py)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
        for key, plot in (("loss_d", self.loss_plot), ("loss_g", self.loss_plot),
                          ("d_real", self.score_plot), ("d_fake", self.score_plot)):
            colour = _COLOURS[key]
            item = plot.plot([], [], pen=pg.mkPen(colour, width=2), name=GAN_METRIC_LABELS[key])
            self._series[key] = (SeriesBuffer(), item)
            val = plot.plot([], [], pen=None, symbol="o", symbolSize=6, symbolBrush=colour,
                            name=f"{GAN_METRIC_LABELS[key]} (validation)")
            self._series[f"val_{key}"] = (SeriesBuffer(), val)

        self.grid_label = QLabel("Samples from the fixed noise appear here after each epoch.")
        self.grid_label.setAlignment(Qt.AlignCenter)
        self.grid_label.setMinimumSize(160, 160)
        self.grid_label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.grid_label.setWordWrap(True)
        self.caption = QLabel(" ")
        self.caption.setAlignment(Qt.AlignCenter)
        samples = QWidget()
        box = QVBoxLayout(samples)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.grid_label, 1)
        box.addWidget(self.caption)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self._plots)
        splitter.addWidget(samples)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(splitter)

        self.grid: np.ndarray | None = None  # the latest grid, as the engine sent it
        self._last: tuple[int, int, dict] = (0, 0, {})
        self.grid_epoch = 0
        self._pixmap: QPixmap | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / MAX_FPS))
        self._timer.timeout.connect(self.redraw)

    # -- feeding (GUI thread) --------------------------------------------------------------------

    def handle(self, ev) -> bool:
        """Take what a GAN run reports; True when the event was only for this view."""
        if isinstance(ev, GanSamples):
            self.show_samples(ev)
            return True
        if isinstance(ev, Batch) and "loss_d" in ev.metrics:
            # The engine reports running means over the epoch; the curves show the mean of the
            # batches since the previous report (as the panel's loss curve does).
            now = {key: ev.metrics[key] for key in _COLOURS}
            self._last, x, values = since_last_report(self._last, ev, now)
            for key, value in values.items():
                self._push(key, x, value)
        elif isinstance(ev, Epoch) and "loss_d" in ev.val:
            for key in _COLOURS:
                self._push(f"val_{key}", ev.epoch, ev.val[key])
        return False

    def show_samples(self, ev: GanSamples) -> None:
        self.grid = ev.grid
        self.grid_epoch = ev.epoch
        pixels = np.ascontiguousarray((np.clip(ev.grid, 0, 1) * 255).round().astype(np.uint8))
        h, w = pixels.shape[:2]
        if pixels.ndim == 2:
            image = QImage(pixels.data, w, h, w, QImage.Format_Grayscale8).copy()
        else:
            image = QImage(pixels.data, w, h, 3 * w, QImage.Format_RGB888).copy()
        self._pixmap = QPixmap.fromImage(image)
        self._fit_pixmap()
        self.caption.setText(f"epoch {ev.epoch}: {ev.images.shape[0]} samples from the same noise")
        self.samples_shown.emit(ev.epoch)

    def _fit_pixmap(self) -> None:
        if self._pixmap is None:
            return
        size = self.grid_label.size()
        side = max(64, min(size.width(), size.height()))
        # nearest-neighbour scaling keeps 8x8 pixels crisp
        self.grid_label.setPixmap(self._pixmap.scaled(side, side, Qt.KeepAspectRatio,
                                                      Qt.FastTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_pixmap()

    def clear(self) -> None:
        for key in self._series:
            self._series[key][0].clear()
            self._dirty.add(key)
        self.grid = None
        self.grid_epoch = 0
        self._last = (0, 0, {})
        self._pixmap = None
        self.grid_label.clear()
        self.grid_label.setText("Samples from the fixed noise appear here after each epoch.")
        self.caption.setText(" ")
        self.redraw()


register_view(GAN.view, GanView)

__all__ = ["GanView"]
