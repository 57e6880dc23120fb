"""What a language-model run shows while it trains: the loss and the perplexity, and the text the
model writes after each epoch.

:class:`LmView` is the language-model recipe's view (registered as ``"language_model"`` in
:mod:`.views`). Like :class:`~designer.ui.training.gan_view.GanView` it is fed from the training
panel's event slot (GUI thread), only writes into buffers there, and a timer redraws the curves:
training values are the means of the batches between two reports (the perplexity is exp of that
mean loss), validation values one point per epoch. The samples are listed newest first, each
labelled with its epoch and temperature, the prompt in bold, in a monospace read-only panel.
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QLabel, QSplitter, QTextEdit, QVBoxLayout, QWidget

from designer.engine.train.events import Batch, Epoch
from designer.engine.train.recipes.language_model import LANGUAGE_MODEL, LmSample, perplexity

from .plots import LiveSeries, SeriesBuffer, legend_in_cell, since_last_report
from .views import register_view

MAX_FPS = 10
_TRAIN = (31, 119, 180)
_VAL = (255, 127, 14)
_EMPTY = "The text the model writes after each epoch appears here, newest first."


class LmView(LiveSeries, QWidget):
    """Two plots (loss; perplexity) over a panel of the samples.

    Signals: ``sample_shown(epoch)`` after a new sample is on screen."""

    sample_shown = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plots = pg.GraphicsLayoutWidget()
        self._plots.setBackground("w")
        self.loss_plot = self._plots.addPlot(row=0, col=0)
        self.ppl_plot = self._plots.addPlot(row=1, col=0)
        self.loss_plot.setLabel("left", "loss (cross-entropy)")
        self.ppl_plot.setLabel("left", "perplexity")
        self.ppl_plot.setXLink(self.loss_plot)
        self._series: dict[str, tuple[SeriesBuffer, pg.PlotDataItem]] = {}
        self._dirty: set[str] = set()
        for row, (plot, key) in enumerate(((self.loss_plot, "loss"),
                                           (self.ppl_plot, "perplexity"))):
            plot.showGrid(x=True, y=True, alpha=0.3)
            legend_in_cell(self._plots, plot, row, 1)
            plot.setLabel("bottom", "epoch")
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            item = plot.plot([], [], pen=pg.mkPen(_TRAIN, width=2), name="training")
            self._series[key] = (SeriesBuffer(), item)
            val = plot.plot([], [], pen=pg.mkPen(_VAL, width=1), symbol="o", symbolSize=6,
                            symbolBrush=_VAL, name="validation")
            self._series[f"val_{key}"] = (SeriesBuffer(), val)

        self.text = QTextEdit()
        self.text.setReadOnly(True)
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        mono.setStyleHint(QFont.Monospace)
        mono.setFixedPitch(True)
        self.text.setFont(mono)
        self.text.setPlaceholderText(_EMPTY)
        self.caption = QLabel(" ")
        samples = QWidget()
        box = QVBoxLayout(samples)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.caption)
        box.addWidget(self.text, 1)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self._plots)
        splitter.addWidget(samples)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(splitter)

        self.samples: list[LmSample] = []  # as the engine sent them, oldest first
        self._last: tuple[int, int, dict] = (0, 0, {})
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / MAX_FPS))
        self._timer.timeout.connect(self.redraw)

    # -- feeding (GUI thread) --------------------------------------------------------------------

    def handle(self, ev) -> bool:
        """Take what a language-model run reports; True when the event was only for this view."""
        if isinstance(ev, LmSample):
            self.show_sample(ev)
            return True
        if isinstance(ev, Batch) and "perplexity" in ev.metrics:
            # running means over the epoch -> the mean loss of the batches since the last report
            self._last, x, values = since_last_report(self._last, ev, {"loss": float(ev.loss)})
            self._push("loss", x, values["loss"])
            self._push("perplexity", x, perplexity(values["loss"]))
        elif isinstance(ev, Epoch) and "perplexity" in ev.val:
            self._push("val_loss", ev.epoch, ev.val["loss"])
            self._push("val_perplexity", ev.epoch, ev.val["perplexity"])
        return False

    def show_sample(self, ev: LmSample) -> None:
        self.samples.append(ev)
        self.text.setHtml(self.samples_html())
        self.text.verticalScrollBar().setValue(0)  # the newest is on top
        self.caption.setText(f"Samples: the prompt {ev.prompt!r} continued after each epoch")
        self.sample_shown.emit(ev.epoch)

    def samples_html(self) -> str:
        """Every sample, newest first: a heading with its epoch and temperature, the prompt in
        bold, line breaks kept (user text is escaped)."""
        parts = []
        for s in reversed(self.samples):
            head = f"epoch {s.epoch} · temperature {s.temperature:g}"
            parts.append(
                f"<p style='color:#666; margin:8px 0 2px 0'>{head}</p>"
                f"<pre style='white-space:pre-wrap; margin:0'><b>{html.escape(s.prompt)}</b>"
                f"{html.escape(s.text)}</pre>")
        return "".join(parts)

    def clear(self) -> None:
        for key in self._series:
            self._series[key][0].clear()
            self._dirty.add(key)
        self._last = (0, 0, {})
        self.samples = []
        self.text.clear()
        self.caption.setText(" ")
        self.redraw()


register_view(LANGUAGE_MODEL.view, LmView)

__all__ = ["LmView"]
