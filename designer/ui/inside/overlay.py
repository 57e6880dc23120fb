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

from .model import InsideStore, Marks, gradient_word, keys_meta, marks, node_keys, view_of

#: From the smallest gradient norm shown (0) to the largest (1).
SCALE = ("#313695", "#4575b4", "#74add1", "#abd9e9", "#fee090", "#fdae61", "#f46d43", "#a50026")
#: A frozen layer (no gradient): grey, off the scale, with its own key in the legend.
FROZEN = "#9aa5b1"
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
        self.lo, self.hi, self.mid = -1.0, 1.0, 0.0
        self.frozen = False  # a "frozen" key beside the scale
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.resize(250, 52)
        parent.installEventFilter(self)
        self.hide()

    def set_range(self, lo: float, hi: float, mid: float | None = None,
                  frozen: bool = False) -> None:
        """The scale's ends (log10), the median norm (which decides whether an end is called
        vanishing or exploding) and whether a frozen layer is shown."""
        self.lo, self.hi = lo, hi
        self.mid = (lo + hi) / 2 if mid is None else mid
        self.frozen = bool(frozen)
        self.resize(250, 70 if self.frozen else 52)
        self._place()
        self.update()

    def end_texts(self) -> tuple[str, str]:
        """The texts under the scale's two ends: the norm, and a word only where it applies."""
        low, high = gradient_word(self.lo, self.mid), gradient_word(self.hi, self.mid)
        return (f"{_exp(self.lo)}" + (f" {low}" if low == "vanishing" else ""),
                (f"{high} " if high == "exploding" else "") + f"{_exp(self.hi)}")

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
        left, right = self.end_texts()
        painter.drawText(below, Qt.AlignLeft | Qt.AlignVCenter, left)
        painter.drawText(below, Qt.AlignRight | Qt.AlignVCenter, right)
        if self.frozen:
            painter.setPen(Qt.NoPen)
            painter.setBrush(QColor(FROZEN))
            painter.drawRect(QRectF(10, 52, 18, 10))
            painter.setPen(QColor("#1f2933"))
            painter.drawText(QRectF(34, 48, self.width() - 44, 18), Qt.AlignLeft | Qt.AlignVCenter,
                             "frozen (no gradient)")


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
        scene.set_marks({nid: (QColor(FROZEN) if m.frozen else
                               None if m.level is None else level_color(m.level), m.badge,
                               m.tip) for nid, m in self.current.nodes.items()})
        self.legend.set_range(self.current.lo, self.current.hi, self.current.mid,
                              self.current.any_frozen)
        self.legend.show()
        self.legend.raise_()
