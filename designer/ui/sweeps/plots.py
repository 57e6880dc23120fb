"""The sweep's two plots (pyqtgraph): the objective of each trial with the best so far, and
parallel coordinates (one line per complete trial across the searched values and the
objective, darker = better). Both are redrawn from the view's trial list on its timer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

from designer.engine.search.runner import COMPLETE
from designer.engine.search.space import Dimension

_TRIAL = (52, 101, 164)
_BEST = (230, 126, 34)
_PRUNED = (170, 170, 170)
_FAILED = (192, 57, 43)


class ObjectivePlot(pg.PlotWidget):
    """The objective of each complete trial (dots) and the best so far (a step line); pruned
    and failed trials as grey and red ticks along the bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setLabel("bottom", "trial")
        self.setLabel("left", "objective")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.trials_item = self.plot([], [], pen=None, symbol="o", symbolSize=7,
                                     symbolBrush=_TRIAL, symbolPen=None, name="trial")
        self.best_item = self.plot([], [], pen=pg.mkPen(_BEST, width=2), stepMode=None,
                                   name="best so far")
        self.other_item = pg.ScatterPlotItem(size=9, symbol="t", pen=None)
        self.addItem(self.other_item)
        self.points = 0

    def show_trials(self, trials: list[dict], direction: str, metric: str) -> None:
        self.setLabel("left", metric)
        done = [t for t in trials if t["state"] == COMPLETE and t["value"] is not None
                and math.isfinite(t["value"])]
        xs = np.array([t["number"] for t in done], dtype=float)
        ys = np.array([t["value"] for t in done], dtype=float)
        self.trials_item.setData(xs, ys)
        if len(ys):
            best = (np.minimum if direction == "minimize" else np.maximum).accumulate(ys)
            self.best_item.setData(xs, best)
        else:
            self.best_item.setData([], [])
        others = [t for t in trials if t["state"] in ("pruned", "failed")]
        floor = float(ys.min()) if len(ys) else 0.0
        self.other_item.setData(
            [float(t["number"]) for t in others], [floor] * len(others),
            brush=[pg.mkBrush(_PRUNED if t["state"] == "pruned" else _FAILED) for t in others])
        self.points = len(ys)


class ParallelCoordinates(pg.PlotWidget):
    """One axis per searched value plus the objective; each complete trial a line across them,
    each value placed within its dimension's range (log ranges on a log scale)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.hideAxis("left")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.getPlotItem().setMenuEnabled(False)
        self._items: list[Any] = []
        self.lines = 0

    def show_trials(self, trials: list[dict], dims: tuple[Dimension, ...], direction: str,
                    metric: str) -> None:
        for item in self._items:
            self.removeItem(item)
        self._items = []
        done = [t for t in trials if t["state"] == COMPLETE and t["value"] is not None
                and math.isfinite(t["value"])]
        n = len(dims) + 1
        ticks = [(i, _short(d.name)) for i, d in enumerate(dims)] + [(len(dims), metric)]
        self.getAxis("bottom").setTicks([ticks])
        for i in range(n):
            line = pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen((150, 150, 150), width=1))
            self.addItem(line)
            self._items.append(line)
        values = [t["value"] for t in done]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        for i, d in enumerate(dims):
            for y, text in ((0.0, _end(d, 0)), (1.0, _end(d, 1))):
                self._label(i, y, text)
        self._label(len(dims), 0.0, f"{lo:.4g}")
        self._label(len(dims), 1.0, f"{hi:.4g}")
        # darker is better: rank the objective
        order = sorted(range(len(done)), key=lambda k: values[k],
                       reverse=direction == "maximize")
        rank = {k: r for r, k in enumerate(order)}
        for k, t in enumerate(done):
            ys = [_position(d, t["params"].get(d.name)) for d in dims]
            ys.append(0.5 if hi == lo else (t["value"] - lo) / (hi - lo))
            shade = rank[k] / max(1, len(done) - 1)
            color = (int(52 + shade * 160), int(101 + shade * 120), int(164 + shade * 70))
            width = 3 if rank[k] == 0 else 1.5
            item = self.plot(list(range(n)), ys, pen=pg.mkPen(color, width=width))
            self._items.append(item)
        self.setXRange(-0.3, n - 0.7, padding=0)
        self.setYRange(-0.08, 1.08, padding=0)
        self.lines = len(done)

    def _label(self, x: float, y: float, text: str) -> None:
        item = pg.TextItem(text, color=(90, 90, 90), anchor=(0.5, 1.0 if y > 0.5 else 0.0))
        item.setPos(x, y)
        self.addItem(item)
        self._items.append(item)


def _short(name: str) -> str:
    return name.split(".", 1)[1] if name.count(".") >= 2 else name


def _end(d: Dimension, which: int) -> str:
    from .marking import fmt

    if d.type == "choice":
        return fmt(d.choices[-1 if which else 0])
    return fmt(d.high if which else d.low)


def _position(d: Dimension, value: Any) -> float:
    """Where ``value`` sits on the dimension's axis, 0 (low) to 1 (high)."""
    if d.type == "choice":
        try:
            i = [repr(c) for c in d.choices].index(repr(value))
        except ValueError:
            return 0.5
        return i / max(1, len(d.choices) - 1)
    try:
        v, lo, hi = float(value), float(d.low), float(d.high)
    except (TypeError, ValueError):
        return 0.5
    if d.log and lo > 0 and v > 0:
        v, lo, hi = math.log(v), math.log(lo), math.log(hi)
    return 0.5 if hi == lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))


class SweepPlots(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.objective = ObjectivePlot()
        self.parallel = ParallelCoordinates()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.objective, 1)
        lay.addWidget(self.parallel, 1)
