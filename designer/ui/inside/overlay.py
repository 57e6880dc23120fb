"""The gradient overlay on the canvas (View > Gradient overlay): each layer coloured by its
latest gradient norm on a log scale, with a legend, so vanishing or exploding gradients show as
a colour fade along the network; a badge on layers with mostly dead units or non-finite values.

A block use shows the worst of the layers inside it; inside an opened definition each layer
shows its own (in the use it was opened from). The numbers come from the Inside panel's store
(the live run, or the run it replays).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .model import InsideStore, Marks, keys_meta, marks, node_keys, view_of

#: From vanishing (0) to exploding (1).
SCALE = ("#313695", "#4575b4", "#74add1", "#abd9e9", "#fee090", "#fdae61", "#f46d43", "#a50026")
REFRESH_MS = 300


def level_color(level: float) -> QColor:
    """The scale's colour at ``level`` in [0, 1] (linear between its stops)."""
    level = min(max(float(level), 0.0), 1.0) * (len(SCALE) - 1)
    i = min(int(level), len(SCALE) - 2)
    t = level - i
    a, b = QColor(SCALE[i]), QColor(SCALE[i + 1])
    return QColor(round(a.red() + (b.red() - a.red()) * t),
                  round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def _exp(v: float) -> str:
    return f"1e{v:.0f}" if abs(v - round(v)) < 0.05 else f"{10 ** v:.1e}"


class GradientLegend(QWidget):
    """A small bar in the canvas's bottom-right corner: the colour scale and its ends."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.lo, self.hi = -1.0, 1.0
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.resize(250, 52)
        parent.installEventFilter(self)
        self.hide()

    def set_range(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.update()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def showEvent(self, event) -> None:
        self._place()
        super().showEvent(event)

    def _place(self) -> None:
        p = self.parentWidget()
        if p is not None:
            self.move(p.width() - self.width() - 10, p.height() - self.height() - 10)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(QColor("#d5dae1")))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1), 5, 5)
        bar = QRectF(10, 20, self.width() - 20, 10)
        grad = QLinearGradient(QPointF(bar.left(), 0), QPointF(bar.right(), 0))
        for i, c in enumerate(SCALE):
            grad.setColorAt(i / (len(SCALE) - 1), QColor(c))
        painter.setPen(Qt.NoPen)
        painter.setBrush(grad)
        painter.drawRect(bar)
        painter.setPen(QColor("#1f2933"))
        font = painter.font()
        font.setPointSizeF(7.5)
        painter.setFont(font)
        painter.drawText(QRectF(10, 3, self.width() - 20, 15), Qt.AlignLeft | Qt.AlignVCenter,
                         "gradient norm (log scale)")
        below = QRectF(10, 32, self.width() - 20, 16)
        painter.drawText(below, Qt.AlignLeft | Qt.AlignVCenter, f"{_exp(self.lo)} vanishing")
        painter.drawText(below, Qt.AlignRight | Qt.AlignVCenter, f"exploding {_exp(self.hi)}")


class InsideOverlay(QObject):
    """Keeps the canvas's marks in step with the store while switched on (:meth:`set_enabled`).
    ``view``: the CanvasView (its ``canvas_scene`` gets the marks, its viewport the legend)."""

    def __init__(self, document: Any, view: Any, store: InsideStore,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.view = view
        self.store = store
        self.enabled = False
        self.current: Marks | None = None
        self.legend = GradientLegend(view.viewport())
        self._seen: Any = None
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._poll)
        document.network_changed.connect(self.refresh)
        document.graph_event.connect(lambda *_: self._invalidate())

    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        if on:
            self.timer.start()
        else:
            self.timer.stop()
        self.refresh()

    def _invalidate(self) -> None:
        self._seen = None

    def _poll(self) -> None:
        stamp = (self.store.version, self.document.network, tuple(self.document.trail))
        if stamp != self._seen:
            self.refresh()

    def refresh(self, *_: Any) -> None:
        scene = self.view.canvas_scene
        self._seen = (self.store.version, self.document.network, tuple(self.document.trail))
        if not self.enabled:
            self.current = None
            scene.set_marks({})
            self.legend.hide()
            return
        mapping = node_keys(view_of(self.document), keys_meta(self.store))
        self.current = marks(self.store.latest, mapping)
        if self.current is None:
            scene.set_marks({})
            self.legend.hide()
            return
        scene.set_marks({nid: (None if m.level is None else level_color(m.level), m.badge,
                               m.tip) for nid, m in self.current.nodes.items()})
        self.legend.set_range(self.current.lo, self.current.hi)
        self.legend.show()
        self.legend.raise_()
