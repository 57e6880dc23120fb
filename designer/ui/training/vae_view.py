"""What a VAE run shows while it trains: the loss curves (total, reconstruction, KL; validation
per epoch), validation images beside their reconstructions, samples decoded from the fixed noise,
and, for a 2-D latent, the validation means scattered and coloured by class.

:class:`VaeView` is fed from the training panel's event slot (GUI thread) and, like the other
live views, only writes into buffers there; a timer redraws. Registered as the ``vae`` view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QBoxLayout, QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from designer.engine.train.events import Batch, Epoch
from designer.engine.train.recipes.vae import VAE, VAE_METRIC_KEYS, VAE_METRIC_LABELS, VaeSamples

from .plots import (
    LiveSeries,
    SeriesBuffer,
    fit_legends,
    legend_in_cell,
    set_shown,
    since_last_report,
)
from .views import register_view

MAX_FPS = 10
_COLOURS = {"loss": (60, 60, 60), "recon": (31, 119, 180), "kl": (214, 39, 40)}
# Ten well-separated class colours (matplotlib's tab10), then the same again for more classes.
_CLASS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                  (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
_WAITING = {"recon": "Validation images beside their reconstructions appear here after each "
                     "epoch.",
            "samples": "Samples decoded from a fixed noise batch appear here after each epoch."}


def grid_pixmap(grid: np.ndarray) -> QPixmap:
    """A grid in [0, 1] (``(H, W)`` grey or ``(H, W, 3)`` colour) as a pixmap."""
    pixels = np.ascontiguousarray((np.clip(grid, 0, 1) * 255).round().astype(np.uint8))
    h, w = pixels.shape[:2]
    if pixels.ndim == 2:
        image = QImage(pixels.data, w, h, w, QImage.Format_Grayscale8).copy()
    else:
        image = QImage(pixels.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(image)


class _GridLabel(QLabel):
    """A picture scaled to fit its label, nearest-neighbour so that 8x8 pixels stay crisp."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.waiting = text
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(48, 48)  # a low dock: smaller grids, never over their captions
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setWordWrap(True)
        self._pixmap: QPixmap | None = None

    def set_grid(self, grid: np.ndarray) -> None:
        self._pixmap = grid_pixmap(grid)
        self._fit()

    def reset(self) -> None:
        self._pixmap = None
        self.clear()
        self.setText(self.waiting)

    def _fit(self) -> None:
        if self._pixmap is None:
            return
        size = self.size()
        side = max(64, min(size.width(), size.height()))
        self.setPixmap(self._pixmap.scaled(side, side, Qt.KeepAspectRatio,
                                           Qt.FastTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()


class VaeView(LiveSeries, QWidget):
    """Loss curves and the latent scatter side by side on the left, their legends under them
    (while there is room), the two image grids on the right: side by side in a wide, low dock,
    one above the other in a tall one.

    Signals: ``samples_shown(epoch)`` after an epoch's grids are on screen."""

    samples_shown = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plots = pg.GraphicsLayoutWidget()
        self._plots.setBackground("w")
        self.loss_plot = self._plots.addPlot(row=0, col=0)
        self.loss_plot.setLabel("left", "loss per sample")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)
        self.loss_plot.setDownsampling(auto=True, mode="peak")
        self.loss_plot.setClipToView(True)
        legend_in_cell(self._plots, self.loss_plot, 1, 0, columns=2)
        self._series: dict[str, tuple[SeriesBuffer, pg.PlotDataItem]] = {}
        self._dirty: set[str] = set()
        for key in VAE_METRIC_KEYS:
            colour = _COLOURS[key]
            item = self.loss_plot.plot([], [], pen=pg.mkPen(colour, width=2),
                                       name=VAE_METRIC_LABELS[key])
            self._series[key] = (SeriesBuffer(), item)
            val = self.loss_plot.plot([], [], pen=None, symbol="o", symbolSize=6,
                                      symbolBrush=colour,
                                      name=f"{VAE_METRIC_LABELS[key]} (validation)")
            self._series[f"val_{key}"] = (SeriesBuffer(), val)

        self.latent_plot = self._plots.addPlot(row=0, col=1)
        self.latent_plot.setLabel("left", "z 2")
        self.latent_plot.setLabel("bottom", "z 1")
        self.latent_plot.setTitle("validation means (2-D latent)", size="9pt")
        self.latent_plot.showGrid(x=True, y=True, alpha=0.3)
        self.latent_legend = legend_in_cell(self._plots, self.latent_plot, 1, 1, columns=5)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.latent_plot.addItem(self.scatter)
        self._class_items: list[pg.ScatterPlotItem] = []  # legend entries, one per class
        set_shown(self._plots, self.latent_plot, False, (0, 1))  # until a 2-D latent comes

        self.recon_label = _GridLabel(_WAITING["recon"])
        self.samples_label = _GridLabel(_WAITING["samples"])
        self.recon_caption = QLabel(" ")
        self.samples_caption = QLabel(" ")
        grids = self._grids = QWidget()
        # each grid above its caption; the two pairs side by side or one above the other,
        # whichever leaves the grids larger (resizeEvent)
        self._grid_box = box = QBoxLayout(QBoxLayout.TopToBottom, grids)
        box.setContentsMargins(0, 0, 0, 0)
        for label, caption in ((self.recon_label, self.recon_caption),
                               (self.samples_label, self.samples_caption)):
            caption.setAlignment(Qt.AlignCenter)
            caption.setWordWrap(True)
            pair = QVBoxLayout()
            pair.setContentsMargins(0, 0, 0, 0)
            pair.addWidget(label, 1)
            pair.addWidget(caption)
            box.addLayout(pair, 1)
        grids.installEventFilter(self)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self._plots)
        splitter.addWidget(grids)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])  # scaled to the width it gets: 3 : 2
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(splitter)

        self.last: VaeSamples | None = None  # the latest previews, as the engine sent them
        self.grid_epoch = 0
        self._latent_dirty = False
        self._last_batch: tuple[int, int, dict] = (0, 0, {})
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / MAX_FPS))
        self._timer.timeout.connect(self.redraw)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_legends()

    def _fit_legends(self) -> None:
        # the class colours first: the scatter means little without them
        fit_legends(self._plots, [self.latent_plot, self.loss_plot], self._plots.size(), each=True)

    def eventFilter(self, obj, event) -> bool:
        if obj is self._grids and event.type() == QEvent.Type.Resize:
            size = event.size()
            wide = size.width() > size.height()
            direction = QBoxLayout.LeftToRight if wide else QBoxLayout.TopToBottom
            if self._grid_box.direction() != direction:
                self._grid_box.setDirection(direction)
        return super().eventFilter(obj, event)

    # -- feeding (GUI thread) --------------------------------------------------------------------

    def handle(self, ev) -> bool:
        """Take what a VAE run reports; True when the event was only for this view."""
        if isinstance(ev, VaeSamples):
            self.show_samples(ev)
            return True
        if isinstance(ev, Batch) and "recon" in ev.metrics:
            # Running means over the epoch come in; the curves show the mean of the batches
            # since the previous report (as the panel's loss curve does).
            now = {**ev.metrics, "loss": ev.loss}
            now = {key: now[key] for key in VAE_METRIC_KEYS}
            self._last_batch, x, values = since_last_report(self._last_batch, ev, now)
            for key, value in values.items():
                self._push(key, x, value)
        elif isinstance(ev, Epoch) and "recon" in ev.val:
            for key in VAE_METRIC_KEYS:
                self._push(f"val_{key}", ev.epoch, ev.val[key])
        return False

    def show_samples(self, ev: VaeSamples) -> None:
        self.last = ev
        self.grid_epoch = ev.epoch
        self.recon_label.set_grid(ev.reconstructions)
        self.samples_label.set_grid(ev.samples)
        self.recon_caption.setText(f"epoch {ev.epoch}: validation images, each followed by "
                                   "its reconstruction")
        self.samples_caption.setText(f"epoch {ev.epoch}: decoded from the same noise")
        self._latent_dirty = True
        self.samples_shown.emit(ev.epoch)

    def _draw_latent(self) -> None:
        ev = self.last
        latent = None if ev is None else ev.latent
        set_shown(self._plots, self.latent_plot, latent is not None, (0, 1))
        if latent is None:
            self.scatter.setData([], [])
            self._fit_legends()
            return
        pts = np.asarray(latent, dtype=np.float64)
        labels = None if ev.labels is None else np.asarray(ev.labels)
        if labels is None:
            brushes = pg.mkBrush(31, 119, 180, 170)
        else:
            table = [pg.mkBrush(*_CLASS_COLOURS[i % len(_CLASS_COLOURS)], 200)
                     for i in range(int(labels.max()) + 1 if labels.size else 0)]
            brushes = [table[int(k)] for k in labels]
        self.scatter.setData(pts[:, 0], pts[:, 1], brush=brushes)
        names = list(ev.class_names) if labels is not None else []
        if len(self._class_items) != len(names):  # the legend: one entry per class
            self.latent_legend.clear()
            self._class_items = []
            for i, name in enumerate(names):
                item = pg.ScatterPlotItem(size=8, pen=None,
                                          brush=pg.mkBrush(*_CLASS_COLOURS[i % 10]))
                self.latent_legend.addItem(item, name)
                self._class_items.append(item)
        self._fit_legends()

    def scatter_points(self) -> int:
        return len(self.scatter.data) if self.latent_plot.isVisible() else 0

    def clear(self) -> None:
        for key in self._series:
            self._series[key][0].clear()
            self._dirty.add(key)
        self.last = None
        self.grid_epoch = 0
        self._last_batch = (0, 0, {})
        self.recon_label.reset()
        self.samples_label.reset()
        self.recon_caption.setText(" ")
        self.samples_caption.setText(" ")
        self._latent_dirty = True
        self.redraw()

    def redraw(self) -> None:
        super().redraw()
        if self._latent_dirty:
            self._latent_dirty = False
            self._draw_latent()


register_view(VAE.view, VaeView)

__all__ = ["VaeView", "grid_pixmap"]
