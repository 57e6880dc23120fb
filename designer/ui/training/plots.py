"""Live training curves: loss, accuracy (or the regression metric) and learning rate.

Feeding is cheap by construction (../shared/STYLE.md, habit 9): values go into preallocated numpy
buffers that grow by doubling; a QTimer redraws at most ``MAX_FPS`` times a second, and only when
something changed, by calling ``setData`` on slices of those buffers. The timer also keeps the
plots' share of the GUI thread under ``MAX_BUSY`` (5%): when a redraw plus its paint costs more
than 2.5 ms, the next one waits proportionally longer (a big window on a slow machine). Downsampling (peak mode) and
clip-to-view keep long curves fast. NaN values are allowed (a diverging loss) and left to
pyqtgraph's finite check, which draws the gaps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

MAX_FPS = 5  # live enough for curves; each redraw holds the GIL the training thread needs
MAX_BUSY = 0.03  # at most this share of the GUI thread's time goes to redrawing the plots
MAX_INTERVAL_S = 0.5  # but the curves move at least twice a second
FIRST_REDRAW_S = 1.0  # after Started: the curves of a run shorter than this appear at its end
AXIS_WIDTH = 70  # px of each y axis: room for "0.00025" and the axis label
# Below this height (px) a view's legends give their row to the curves (a low dock on a laptop,
# an error message above): the curves stay readable, the legends come back when there is room.
LEGEND_MIN_HEIGHT = 200
NARROW_WIDTH = 560  # below this width (px) the curves show loss and metric only
SMOOTHING = 0.9  # weight of the past in the exponential moving average of the batch loss

_TRAIN = (31, 119, 180)
_VAL = (255, 127, 14)
_FAINT = (31, 119, 180, 70)
_LR = (44, 160, 44)
_OVERLAY_COLOURS = [(214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194),
                    (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class SeriesBuffer:
    """x/y pairs in preallocated float64 arrays; capacity doubles when full (amortised O(1))."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        self.ymin = math.inf  # over the finite values
        self.ymax = -math.inf

    def __len__(self) -> int:
        return self.n

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._grow(self.n + 1)
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1
        if math.isfinite(y):
            self.ymin = min(self.ymin, y)
            self.ymax = max(self.ymax, y)

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64).ravel()
        ys = np.asarray(ys, dtype=np.float64).ravel()
        if xs.shape != ys.shape:
            raise ValueError("x and y must have the same length")
        k = len(xs)
        if self.n + k > len(self._x):
            self._grow(self.n + k)
        self._x[self.n:self.n + k] = xs
        self._y[self.n:self.n + k] = ys
        self.n += k
        finite = ys[np.isfinite(ys)]
        if finite.size:
            self.ymin = min(self.ymin, float(finite.min()))
            self.ymax = max(self.ymax, float(finite.max()))

    def _grow(self, need: int) -> None:
        cap = max(len(self._x), 1)
        while cap < need:
            cap *= 2
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=np.float64)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)

    @property
    def x(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[:self.n]

    def clear(self) -> None:
        self.n = 0
        self.ymin, self.ymax = math.inf, -math.inf

    def value_near(self, x: float) -> tuple[float, float] | None:
        """The point whose x is nearest to ``x`` (buffers are filled in increasing x)."""
        if self.n == 0:
            return None
        xs = self.x
        i = int(np.searchsorted(xs, x))
        if i >= self.n:
            i = self.n - 1
        elif i > 0 and abs(xs[i - 1] - x) <= abs(xs[i] - x):
            i -= 1
        return float(xs[i]), float(self._y[i])


def since_last_report(last: tuple[int, int, dict], ev, now: dict[str, float]
                      ) -> tuple[tuple[int, int, dict], float, dict[str, float]]:
    """A Batch event reports running means over the epoch; a curve shows the mean of the batches
    since the previous report (as the panel's loss curve does). ``last`` is what the previous
    report left ((0, 0, {}) at first); returns the new ``last``, the x (in epochs) and each
    key's mean over the batches since."""
    epoch, batch, prev = last
    if ev.epoch != epoch:
        batch, prev = 0, {}
    n = ev.batch - batch
    values = {k: (m * ev.batch - prev.get(k, 0.0) * batch) / n if n > 0 else m
              for k, m in now.items()}
    x = ev.epoch - 1 + ev.batch / max(ev.batches, 1)
    return (ev.epoch, ev.batch, dict(now)), x, values


class LiveSeries:
    """The curves of a recipe's live view (GAN, VAE, language model): a buffer per curve written
    in the event slot, drawn by a timer at most ``fps`` times a second. Call
    :meth:`_init_series` in ``__init__`` and add curves with :meth:`_add_series`."""

    def _init_series(self, fps: int) -> None:
        self._series: dict[str, tuple[SeriesBuffer, pg.PlotDataItem]] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.redraw)

    def _add_series(self, key: str, item: pg.PlotDataItem) -> None:
        self._series[key] = (SeriesBuffer(), item)

    def _push(self, key: str, x: float, y: float) -> None:
        y = float(y)
        self._series[key][0].append(x, y if math.isfinite(y) else math.nan)
        self._dirty.add(key)

    def series(self, key: str) -> SeriesBuffer:
        """The buffer behind a curve (training keys: means of the batches between two reports;
        ``val_`` keys: per epoch)."""
        return self._series[key][0]

    def start(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self.redraw()

    def redraw(self) -> None:
        for key in self._dirty:
            buf, item = self._series[key]
            item.setData(buf.x, buf.y)
        self._dirty.clear()

    def curve_points(self, key: str) -> int:
        x, _ = self._series[key][1].getOriginalDataset()
        return 0 if x is None else len(x)


def legend_in_cell(canvas: pg.GraphicsLayoutWidget, plot: pg.PlotItem, row: int, col: int,
                   columns: int = 1) -> pg.LegendItem:
    """A legend in its own cell of ``canvas``, beside or under ``plot`` rather than over its
    curves; curves added to ``plot`` with a name join it (pyqtgraph looks at ``plot.legend``)."""
    legend = pg.LegendItem(colCount=columns, labelTextSize="8pt", frame=False,
                           horSpacing=12)
    canvas.addItem(legend, row=row, col=col)
    legend.cell = (row, col)  # where fit_legends puts it back
    plot.legend = legend
    return legend


def set_shown(canvas: pg.GraphicsLayoutWidget, item: pg.GraphicsWidget, on: bool,
              cell: tuple[int, int]) -> None:
    """Show a plot of ``canvas`` in its ``cell``, or hide it and take it out of the layout: the
    others take its room (a hidden cell would still hold its width), at once."""
    placed = item in canvas.ci.items
    if on and not placed:
        canvas.addItem(item, *cell)
    elif placed and not on:
        canvas.ci.removeItem(item)
    item.setVisible(on)
    if on != placed:
        _relayout(canvas)


def _relayout(canvas: pg.GraphicsLayoutWidget) -> None:
    # The view sized its layout before the cells changed (a child is resized before its parent's
    # resizeEvent runs): lay it out again at the view's size, within the new minimum.
    canvas.ci.layout.invalidate()
    canvas.ci.setGeometry(canvas.range)


def fit_legends(canvas: pg.GraphicsLayoutWidget, plots, size, each: bool = False) -> None:
    """The legends (cells of ``canvas`` beside or under their plots, :func:`legend_in_cell`) of
    the visible ``plots``, while the view (``size``) is at least :data:`LEGEND_MIN_HEIGHT` high
    and wide enough for all of them side by side (``each``: for as many as fit, in the order
    given); else they leave the layout and their room goes to the curves (a hidden cell would
    still hold its width)."""
    plots = [p for p in plots if p.legend is not None]
    wanted = []
    room = 0.0
    for plot in (p for p in plots if p.isVisible()):
        need = plot.legend.effectiveSizeHint(Qt.MinimumSize).width() + 30
        if room + need <= size.width():
            wanted.append(plot)
            room += need
        elif not each:
            wanted = []
            break
    if size.height() < LEGEND_MIN_HEIGHT:
        wanted = []
    changed = False
    for plot in plots:
        legend = plot.legend
        on = plot in wanted
        placed = legend in canvas.ci.items
        if on and not placed:
            canvas.addItem(legend, *legend.cell)
        elif placed and not on:
            canvas.ci.removeItem(legend)  # still the plot's legend: its entries stay current
        changed |= on != placed
        legend.setVisible(on)
    if changed:
        _relayout(canvas)


class _TimedCanvas(pg.GraphicsLayoutWidget):
    """The plots' canvas, adding up how long its paints take (for the redraw budget): one update
    can cause more than one paint (a range that changes during the paint asks for another)."""

    paint_s = 0.0

    def paintEvent(self, event) -> None:
        t0 = time.thread_time()  # CPU time: preemption by other processes does not count
        super().paintEvent(event)
        self.paint_s += time.thread_time() - t0

    def take_paint_s(self) -> float:
        """CPU seconds painted since the last call."""
        spent, self.paint_s = self.paint_s, 0.0
        return spent


@dataclass
class _Series:
    name: str
    buffer: SeriesBuffer
    item: pg.PlotDataItem
    dirty: bool = False
    plot: str = ""


@dataclass
class RunCurves:
    """Per-epoch curves of one finished run, for overlaying runs from the history."""

    label: str
    epochs: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)


class TrainingPlots(QWidget):
    """Three stacked plots sharing the x axis (epochs): loss, metric, learning rate.

    Feed with :meth:`add_batch` and :meth:`add_epoch`; both only write into buffers and mark the
    series dirty. The redraw timer runs only while something is being fed.
    """

    redrawn = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout_widget = _TimedCanvas()
        self._layout_widget.setBackground("w")
        # side by side: the panel usually sits in a wide, low dock under the canvas
        self.loss_plot = self._layout_widget.addPlot(row=0, col=0)
        self.metric_plot = self._layout_widget.addPlot(row=0, col=1)
        self.lr_plot = self._layout_widget.addPlot(row=0, col=2)
        self._plots = {"loss": self.loss_plot, "metric": self.metric_plot, "lr": self.lr_plot}
        for key, plot in self._plots.items():
            # No grid: grid lines belong to the axis items, so every curve update would repaint
            # (and re-play) all axes, measured as most of a redraw's cost.
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            # under the plot, not over the curves
            legend_in_cell(self._layout_widget, plot, 1, list(self._plots).index(key), 2)
            plot.setLabel("bottom", "epoch")
            plot.getAxis("left").enableAutoSIPrefix(False)
            # a fixed width: tick labels growing from "0.5" to "0.25" would re-lay out every plot
            # and paint them all again (measured: 13 paints a run of 5 redraws, 9 with this)
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            if key != "loss":
                plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.metric_plot.setLabel("left", "accuracy")
        self.lr_plot.setLabel("left", "learning rate")
        # Linear while the rate stays within one decade (a constant rate on a log axis crowds its
        # finest tick labels into each other); logarithmic once a schedule spans decades.
        self._lr_log = False
        self._layout_widget.ci.layout.setColumnStretchFactor(0, 3)
        self._layout_widget.ci.layout.setColumnStretchFactor(1, 2)
        self._layout_widget.ci.layout.setColumnStretchFactor(2, 2)

        self._series: dict[str, _Series] = {}
        self._add_series("batch_loss", "loss", "batch", pg.mkPen(_FAINT, width=1))
        self._add_series("smooth_loss", "loss", "smoothed", pg.mkPen(_TRAIN, width=2))
        self._add_series("train_loss", "loss", "train (epoch)", pg.mkPen(_TRAIN, width=2,
                                                                         style=Qt.DashLine),
                         symbol="o")
        self._add_series("val_loss", "loss", "validation (epoch)", pg.mkPen(_VAL, width=2),
                         symbol="o")
        self._add_series("train_metric", "metric", "train", pg.mkPen(_TRAIN, width=2), symbol="o")
        self._add_series("val_metric", "metric", "validation", pg.mkPen(_VAL, width=2), symbol="o")
        self._add_series("lr", "lr", "learning rate", pg.mkPen(_LR, width=2), symbol="o")
        self._overlay_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self._x_range: tuple[float, float] | None = None  # set by set_epochs
        self._overlay_extent: dict[str, tuple[float, float]] = {}
        # y ranges of the loss and metric plots are set here with some slack, so the axes (and
        # their costly paint) change only now and then instead of on every redraw
        self._y_ranges: dict[str, tuple[float, float]] = {}
        self._y_managed = {"loss": True, "metric": True}
        for key in self._y_managed:
            plot = self._plots[key]
            plot.enableAutoRange(y=False)
            plot.vb.sigRangeChangedManually.connect(
                lambda *_a, k=key: self._y_managed.__setitem__(k, False))

        self._smooth = 0.0
        self._smooth_steps = 0
        self.redraws = 0  # how many times the plots were actually redrawn (tests, benchmark)
        self._cost: float | None = None  # smoothed CPU seconds of one redraw and its paint

        self.cursor_label = QLabel(" ")
        self.cursor_label.setTextFormat(Qt.PlainText)
        self.cursor_label.setStyleSheet("font-family: monospace;")
        self._vlines = []
        for plot in self._plots.values():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120), width=1))
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self._vlines.append(line)
        self._mouse_proxy = pg.SignalProxy(self._layout_widget.scene().sigMouseMoved,
                                           rateLimit=30, slot=self._mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._layout_widget, 1)
        layout.addWidget(self.cursor_label)

        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 * MAX_INTERVAL_S))
        self._timer.timeout.connect(self._redraw)

    def resizeEvent(self, event) -> None:
        """Narrow (Training beside Inside on a laptop): loss and metric take the width, the
        learning rate steps aside (its curve keeps being fed); low: the legends step aside."""
        super().resizeEvent(event)
        set_shown(self._layout_widget, self.lr_plot, self.width() >= NARROW_WIDTH, (0, 2))
        fit_legends(self._layout_widget, list(self._plots.values()), self.size())

    # -- set-up --------------------------------------------------------------------------------

    def _add_series(self, key: str, plot: str, label: str, pen, symbol: str | None = None) -> None:
        kw = {"symbol": symbol, "symbolSize": 6, "symbolBrush": pen.color()} if symbol else {}
        item = self._plots[plot].plot([], [], pen=pen, name=label, **kw)
        self._series[key] = _Series(label, SeriesBuffer(), item, plot=plot)

    def set_metric_name(self, name: str) -> None:
        """'accuracy' for classification; 'MAE', 'R2', ... for regression."""
        self.metric_plot.setLabel("left", name)

    def series(self, key: str) -> SeriesBuffer:
        """The buffer behind one curve (``batch_loss``, ``smooth_loss``, ``train_loss``,
        ``val_loss``, ``train_metric``, ``val_metric``, ``lr``)."""
        return self._series[key].buffer

    def curve_points(self, key: str) -> int:
        """How many points the drawn curve holds right now (what is on screen, not the buffer)."""
        x, _ = self._series[key].item.getOriginalDataset()
        return 0 if x is None else len(x)

    # -- feeding -------------------------------------------------------------------------------

    def clear(self) -> None:
        for s in self._series.values():
            s.buffer.clear()
            s.dirty = True
        self._smooth = 0.0
        self._smooth_steps = 0
        self.cursor_label.setText(" ")
        if self._lr_log:
            self._lr_log = False
            self.lr_plot.setLogMode(x=False, y=False)
        for plot in self._plots.values():
            # empty plots show no axes of a run or design before (autoranging an empty plot
            # keeps whatever range it had)
            plot.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0)
            plot.enableAutoRange(x=True)
        self._x_range = None
        self._y_ranges.clear()
        self._y_managed = dict.fromkeys(self._y_managed, True)
        self._redraw()

    def set_epochs(self, epochs: int, start: float = 0.0) -> None:
        """Fix the x axis to the run's epochs. A growing x range would re-layout and repaint all
        axes on every redraw (measured: ~20 ms of CPU per redraw instead of ~4 ms)."""
        x_range = (start, max(float(epochs), start + 1e-6))
        if x_range == self._x_range:
            return  # unchanged: no repaint
        self._x_range = x_range
        for plot in self._plots.values():
            plot.enableAutoRange(x=False)
        self.loss_plot.setXRange(*x_range, padding=0.02)

    def start(self) -> None:
        """Begin periodic redraws (call when a run starts): the first after ``FIRST_REDRAW_S``,
        since the first redraw of a run costs the most (axes laid out, ranges found: ~30 ms of
        the GUI thread, and the training thread waits for the GIL meanwhile) and a run that short
        is drawn whole when it ends; then as often as the redraw budget allows."""
        if not self._timer.isActive():
            self._timer.start(int(1000 * FIRST_REDRAW_S))

    def stop(self) -> None:
        """Draw what is pending and stop the redraw timer (call when a run ends)."""
        self._timer.stop()
        self._redraw()

    def add_batch(self, x: float, loss: float) -> None:
        """One (aggregated) batch loss at fractional epoch ``x``."""
        loss = float(loss)
        self._push("batch_loss", x, loss)
        if math.isfinite(loss):
            self._smooth_steps += 1
            self._smooth = SMOOTHING * self._smooth + (1 - SMOOTHING) * loss
            # bias correction, so the first points are not dragged towards zero
            self._push("smooth_loss", x, self._smooth / (1 - SMOOTHING ** self._smooth_steps))

    def add_epoch(self, epoch: float, train_loss: float | None = None,
                  val_loss: float | None = None, train_metric: float | None = None,
                  val_metric: float | None = None, lr: float | None = None) -> None:
        for key, value in (("train_loss", train_loss), ("val_loss", val_loss),
                           ("train_metric", train_metric), ("val_metric", val_metric),
                           ("lr", lr)):
            if value is not None:
                self._push(key, epoch, float(value))

    def _push(self, key: str, x: float, y: float) -> None:
        s = self._series[key]
        s.buffer.append(x, y)
        s.dirty = True

    def _redraw(self) -> None:
        t0 = time.thread_time()
        drew = False
        for s in self._series.values():
            if s.dirty:
                s.dirty = False
                s.item.setData(s.buffer.x, s.buffer.y)
                drew = True
        if drew:
            lr = self._series["lr"].buffer
            want_log = lr.n > 0 and lr.ymin > 0 and lr.ymax > 10 * lr.ymin
            if want_log != self._lr_log:
                self._lr_log = want_log
                self.lr_plot.setLogMode(x=False, y=want_log)
                if want_log:
                    self.lr_plot.enableAutoRange(axis="y")
            if not want_log and lr.n and math.isfinite(lr.ymax) and lr.ymax > 0:
                self.lr_plot.setYRange(0, lr.ymax * 1.25, padding=0)
            for key in self._y_managed:
                self._fit_y(key)
            self.redraws += 1
            self.redrawn.emit()
            # cost of an update: setData now, and the paints since the last one (the paint this
            # update causes comes after it; the last one's is a fair estimate)
            cost = time.thread_time() - t0 + self._layout_widget.take_paint_s()
            self._cost = cost if self._cost is None else 0.7 * self._cost + 0.3 * cost
            interval = max(1.0 / MAX_FPS, min(MAX_INTERVAL_S, self._cost / MAX_BUSY))
            self._timer.setInterval(int(interval * 1000))

    def _fit_y(self, key: str) -> None:
        """Keep the data inside the y range; change the range only when the data leaves it or
        fills less than half of it, then leave 15% of slack on each side."""
        if not self._y_managed[key]:
            return
        lo, hi = self._overlay_extent.get(key, (math.inf, -math.inf))
        for s in self._series.values():
            if s.plot == key and s.buffer.n:
                lo, hi = min(lo, s.buffer.ymin), max(hi, s.buffer.ymax)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        cur = self._y_ranges.get(key)
        span = hi - lo
        if cur is not None and cur[0] <= lo and hi <= cur[1] and span >= 0.5 * (cur[1] - cur[0]):
            return
        slack = 0.15 * span if span > 0 else max(0.05 * abs(hi), 1e-3)
        new = (lo - slack, hi + slack)
        self._y_ranges[key] = new
        self._plots[key].setYRange(*new, padding=0)

    # -- overlays from the run history ------------------------------------------------------------

    def set_overlays(self, runs: list[RunCurves]) -> None:
        """Replace the overlaid curves of earlier runs (validation loss and metric per epoch)."""
        for plot, item in self._overlay_items:
            plot.removeItem(item)
            if plot.legend is not None:
                plot.legend.removeItem(item)
        self._overlay_items = []
        self._overlay_extent = {}
        for i, run in enumerate(runs):
            colour = _OVERLAY_COLOURS[i % len(_OVERLAY_COLOURS)]
            pen = pg.mkPen(colour, width=1.5, style=Qt.DashDotLine)
            for plot, ys in ((self.loss_plot, run.val_loss or run.train_loss),
                             (self.metric_plot, run.val_metric)):
                if not ys:
                    continue
                n = min(len(run.epochs), len(ys))
                key = "loss" if plot is self.loss_plot else "metric"
                finite = [v for v in ys[:n] if math.isfinite(v)]
                if finite:
                    lo, hi = self._overlay_extent.get(key, (math.inf, -math.inf))
                    self._overlay_extent[key] = (min(lo, *finite), max(hi, *finite))
                item = plot.plot(np.asarray(run.epochs[:n], float), np.asarray(ys[:n], float),
                                 pen=pen, name=run.label, symbol="t", symbolSize=5,
                                 symbolBrush=colour)
                self._overlay_items.append((plot, item))
        for key in self._y_managed:
            self._y_ranges.pop(key, None)
            self._fit_y(key)

    # -- values under the cursor ---------------------------------------------------------------

    def _mouse_moved(self, args) -> None:
        pos = args[0]
        for plot in self._plots.values():
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                self.show_values_at(x)
                return

    def show_values_at(self, x: float) -> str:
        """Move the cursor line to epoch ``x`` and list each curve's nearest value."""
        parts = [f"epoch {x:.2f}"]
        for s in self._series.values():
            near = s.buffer.value_near(x)
            if near is None:
                continue
            parts.append(f"{s.name} ({s.plot}) {_fmt(near[1])}")
        for line in self._vlines:
            line.setPos(x)
            line.setVisible(True)
        text = "  |  ".join(parts)
        self.cursor_label.setText(text)
        return text


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.3e}"
    return f"{v:.4f}"
