"""The Inside panel: what the layer selected on the canvas does while the network trains.

For a chosen validation sample it shows the layer's output (feature maps as an image grid, a
vector as bars, attention weights as matrices, a recurrent layer's hidden state over time); over
training, histograms of its weights, activations and gradients per capture as heat maps, its
gradient norm and update-to-weight ratio, the dead-unit fraction after a ReLU and the activation
mean and std; and its formula with its shapes (``inside.layer_text``).

Events reach :meth:`InsidePanel.handle` in the GUI thread and only go into the store; a timer
redraws what changed. While the panel is shown and "Look inside while training" is on it asks
for observing (``observe_requested(InsideOptions | None)``, the training panel forwards it to the
trainer); a finished or past run replays from its folder (:meth:`replay`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from designer.engine.train.inside import InsideOptions
from designer.engine.train.inside_files import read_inside

from ..widgets import ElidedLabel, guard_wheel
from .model import InsideStore, keys_meta, module_attrs, node_keys, view_of

REDRAW_MS = 150
HEAVY_S = 1.0
_HEAT = pg.colormap.get("viridis")
_MAPS = pg.colormap.get("CET-D1")  # diverging: negative blue, zero white-grey, positive red
#: key: (colour, label, short label in the plot's title)
_CURVES = {"grad_norm": ((31, 119, 180), "gradient norm (weights)", "weights"),
           "out_grad_norm": ((255, 127, 14), "gradient norm (output)", "output"),
           "update_ratio": ((44, 160, 44), "update / weight", "update / weight"),
           "dead_fraction": ((214, 39, 40), "dead units", "dead units"),
           "act_mean": ((31, 119, 180), "activation mean", "mean"),
           "act_std": ((148, 103, 189), "activation std", "std")}


def tile(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """(C, H, W) maps, each scaled to [-1, 1] by its largest magnitude, in a near-square grid
    with NaN (transparent) between them; rows first."""
    c, h, w = maps.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        m = np.asarray(maps[i], dtype=np.float32)
        peak = float(np.nanmax(np.abs(m))) if m.size else 0.0
        out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = (
            m / peak if peak > 0 and math.isfinite(peak) else m)
    return out


class CountAxis(pg.AxisItem):
    """An axis of counts (captures, batches): ticks on whole numbers only, so two captures read
    1 and 2, not 1.0 / 1.5 / 2.0."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        levels = [(sp, off) for sp, off in super().tickSpacing(minVal, maxVal, size)
                  if sp >= 1 and float(sp).is_integer()]
        return levels or [(1.0, 0.0)]

    def tickStrings(self, values, scale, spacing):
        return [f"{round(v * scale):d}" for v in values]


#: Up to this many captures a curve marks each one with a dot (a line between two points says
#: little on its own); past it lines only, which paint faster.
FEW_CAPTURES = 20


#: Bars get class names as ticks up to this many classes (past it: their numbers).
MAX_CLASS_TICKS = 30


def _short(name: str, n: int = 10) -> str:
    return name if len(name) <= n else name[:n - 1] + "\u2026"


def _legend_title(name: str, keys: tuple[str, ...]) -> str:
    """A plot's title with its curves' colour keys in it (a legend inside the plot covers the
    curves and, in a small dock, the axis labels)."""
    if len(keys) < 2:
        return name
    parts = [f'<span style="color: rgb{_CURVES[k][0]}">&#9473; {_CURVES[k][2]}</span>'
             for k in keys]
    return f"{name}: " + " &nbsp;".join(parts)


def _image_plot(layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str,
                **kwargs: Any) -> tuple[pg.PlotItem, pg.ImageItem]:
    plot = layout.addPlot(row=row, col=col, title=title, **kwargs)
    item = pg.ImageItem(axisOrder="row-major")
    plot.addItem(item)
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    return plot, item


class InsidePanel(QWidget):
    """See the module docstring. ``observe_requested(InsideOptions | None)``; ``redrawn`` after
    the timer drew something (tests wait on it)."""

    observe_requested = Signal(object)
    redrawn = Signal()

    def __init__(self, document=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.store = InsideStore()
        self.run_dir: Path | None = None
        self.source = "none"  # "live", "replay" or "none"
        self.selected: list[str] = []
        self.node_id: str | None = None
        self.keys: list[str] = []
        self._drawn: tuple = (-1, None, None)  # (store version, layer key, page) last drawn
        self._heavy_at = 0.0  # when histograms or curves were last drawn (perf_counter)
        self._mapping_for: Any = None
        self._mapping: dict[str, list[str]] = {}
        self._observing: InsideOptions | None = None
        self._learned_for: Any = None  # (last.pt, its mtime, node, network) of _learned
        self._learned = ""
        self.also_observe = False  # the gradient overlay wants the numbers while this is hidden

        self.look = QCheckBox("Look inside while training")
        self.look.setChecked(True)
        self.look.setToolTip("While this panel is shown, the training run captures every "
                             "layer's statistics now and then (about 2% of the training time)")
        self.sample_spin = QSpinBox()
        self.sample_spin.setRange(0, 99999)
        self.sample_spin.setPrefix("sample ")
        self.sample_spin.setToolTip("The validation sample shown layer by layer")
        self.layer_combo = QComboBox()
        self.layer_combo.setMinimumContentsLength(10)  # narrow beside Training on a laptop
        self.layer_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setToolTip("The module of the selected node (a block: its layers)")
        self.source_label = ElidedLabel()  # a replayed run's name: never widens the window
        self.source_label.setTextFormat(Qt.PlainText)
        top = QHBoxLayout()
        top.addWidget(self.look)
        top.addWidget(self.sample_spin)
        top.addWidget(self.layer_combo, 1)
        top.addWidget(self.source_label)

        self.text = QLabel("Select a layer on the canvas.")
        self.text.setTextFormat(Qt.PlainText)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.TypeWriter)
        self.text.setFont(mono)
        self.text.setWordWrap(True)

        # -- the sample ---------------------------------------------------------------------
        self.sample_view = pg.GraphicsLayoutWidget()
        self.sample_view.setBackground("w")
        self.input_plot, self.input_image = _image_plot(self.sample_view, 0, 0, "input")
        self.input_image.setColorMap(pg.colormap.get("CET-L1"))
        self.output_plot = self.sample_view.addPlot(row=0, col=1, title="output")
        self.output_image = pg.ImageItem(axisOrder="row-major")
        self.output_image.setColorMap(_MAPS)
        self.output_plot.addItem(self.output_image)
        self.output_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(31, 119, 180))
        self.output_plot.addItem(self.output_bars)
        self.output_plot.hideButtons()
        self.sample_view.ci.layout.setColumnStretchFactor(0, 1)
        self.sample_view.ci.layout.setColumnStretchFactor(1, 3)
        self.sample_note = QLabel()
        self.sample_note.setTextFormat(Qt.PlainText)
        self.sample_note.setWordWrap(True)
        sample_page = QWidget()
        lay = QVBoxLayout(sample_page)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.sample_view, 1)
        lay.addWidget(self.sample_note)

        # -- histograms over time -------------------------------------------------------------
        self.hist_view = pg.GraphicsLayoutWidget()
        self.hist_view.setBackground("w")
        self.hists: dict[str, tuple[pg.PlotItem, pg.ImageItem]] = {}
        for col, name in enumerate(("weights", "activations", "grads")):
            plot = self.hist_view.addPlot(row=0, col=col, title=name if name != "grads"
                                          else "gradients",
                                          axisItems={"bottom": CountAxis("bottom")})
            item = pg.ImageItem(axisOrder="row-major")
            item.setColorMap(_HEAT)
            plot.addItem(item)
            plot.setLabel("bottom", "capture")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(48)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            self.hists[name] = (plot, item)

        # -- curves ---------------------------------------------------------------------------
        self.curve_view = pg.GraphicsLayoutWidget()
        self.curve_view.setBackground("w")
        self.curve_plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for row, col, name, keys, log in ((0, 0, "gradients", ("grad_norm", "out_grad_norm"),
                                           True),
                                          (0, 1, "updates", ("update_ratio",), True),
                                          (1, 0, "dead units", ("dead_fraction",), False),
                                          (1, 1, "activations", ("act_mean", "act_std"), False)):
            plot = self.curve_view.addPlot(row=row, col=col, title=_legend_title(name, keys),
                                           axisItems={"bottom": CountAxis("bottom")})
            plot.titleLabel.setAttr("size", "9pt")
            plot.setLogMode(y=log)
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setLabel("bottom", "batch")
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.getAxis("left").setWidth(48)  # new tick labels do not re-lay out the page
            self.curve_plots[name] = plot
            for key in keys:
                colour, label, _ = _CURVES[key]
                self.curves[key] = plot.plot([], [], pen=pg.mkPen(colour, width=2), name=label)
        self.curve_plots["dead units"].setYRange(0, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(sample_page, "Sample")
        self.tabs.addTab(self.hist_view, "Histograms")
        self.tabs.addTab(self.curve_view, "Curves")
        self.tabs.currentChanged.connect(lambda *_: self._force_redraw())

        root = QVBoxLayout(self)
        root.addLayout(top)
        root.addWidget(self.text)
        root.addWidget(self.tabs, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        self.look.toggled.connect(lambda *_: self._update_observing())
        self.sample_spin.valueChanged.connect(lambda *_: self._update_observing(force=True))
        self.layer_combo.currentIndexChanged.connect(lambda *_: self._force_redraw())
        self._show_source()
        if document is not None:
            self.set_document(document)

    # -- inputs ------------------------------------------------------------------------------------

    def set_document(self, document) -> None:
        self.document = document
        document.network_changed.connect(self._on_network_changed)
        self._on_network_changed()

    def _on_network_changed(self, *_: Any) -> None:
        self._mapping_for = None
        self.set_selection([])

    @Slot(list)
    def set_selection(self, node_ids: list) -> None:
        """The canvas selection: the first selected node is the one shown."""
        self.selected = list(node_ids)
        self._mapping_for = None
        self._update_layer_choices()
        self._update_text()
        self._force_redraw()

    @Slot(object)
    def handle(self, ev: Any) -> bool:
        """Take an Inside event (GUI thread); the timer draws it."""
        if not self.store.add(ev):
            return False
        if self.source != "live":
            self.source = "live"
            self._show_source()
        return True

    def start_live(self, run_dir: Path | None = None) -> None:
        """A new run starts: its events replace what is shown."""
        self.store.clear()
        self.run_dir = Path(run_dir) if run_dir else None
        self.source = "live"
        self._mapping_for = None
        self._show_source()
        self._force_redraw()

    def replay(self, run_dir: str | Path | None) -> int:
        """Show what the run in ``run_dir`` recorded in its inside folder; returns the number of
        captures (0: the run was not observed)."""
        self.store.clear()
        self.run_dir = Path(run_dir) if run_dir else None
        if self.run_dir is not None:
            for ev in read_inside(self.run_dir):
                self.store.add(ev)
        self.source = "replay"
        self._mapping_for = None
        self._update_layer_choices()
        self._update_text()  # a small layer's learned values are this run's
        self._show_source()
        self._force_redraw()
        return self.store.captures

    def _show_source(self) -> None:
        name = self.run_dir.name if self.run_dir is not None else ""
        n = self.store.captures
        if self.source == "replay":
            text = (f"replay of {name}: {n} capture(s)" if n else
                    f"{name}: not observed (open this panel while a run trains)")
        elif self.source == "live":
            text = f"live: {n} capture(s)"
        else:
            text = "no run yet"
        self.source_label.setText(text)

    # -- observing ---------------------------------------------------------------------------------

    def options(self) -> InsideOptions:
        return InsideOptions(sample=int(self.sample_spin.value()))

    def set_also_observe(self, on: bool) -> None:
        """Observe while hidden too (the gradient overlay is on)."""
        self.also_observe = bool(on)
        self._update_observing()

    def _update_observing(self, force: bool = False) -> None:
        want = self.look.isChecked() and (self.isVisible() or self.also_observe)
        if want and (force or self._observing is None):
            self._observing = self.options()
            self.observe_requested.emit(self._observing)
        elif not want and self._observing is not None:
            self._observing = None
            self.observe_requested.emit(None)

    @property
    def observing(self) -> InsideOptions | None:
        return self._observing

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._update_observing()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self._update_observing()

    # -- which layer ---------------------------------------------------------------------------------

    def _current_mapping(self) -> dict[str, list[str]]:
        if self.document is None:
            return {}
        stamp = (len(self.store.layers), self.document.network, tuple(self.document.trail),
                 id(self.document.graph))
        if stamp != self._mapping_for:
            self._mapping_for = stamp
            self._mapping = node_keys(view_of(self.document), keys_meta(self.store))
        return self._mapping

    def _update_layer_choices(self) -> None:
        node = self.selected[0] if self.selected else None
        keys = self._current_mapping().get(node, []) if node else []
        if node == self.node_id and keys == self.keys:
            return
        current = self.layer_combo.currentText()
        self.node_id, self.keys = node, keys
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(keys)
        if current in keys:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)

    def _update_text(self) -> None:
        doc = self.document
        node = self.selected[0] if self.selected else None
        if doc is None or node is None or node not in doc.graph.nodes:
            self.text.setText("Select a layer on the canvas to see what it does while the "
                              "network trains.")
            return
        try:
            from designer.engine.train.inside_files import layer_text

            lesson = layer_text(doc.graph, node, doc.analysis)
            self.text.setText(lesson.text + self._learned_text(node, lesson))
        except Exception as exc:  # noqa: BLE001 - the text is a help, not worth an error
            self.text.setText(f"{doc.graph.nodes[node].name}: {type(exc).__name__}: {exc}")

    def refresh_text(self) -> None:
        """Say the selected layer's text again (a run wrote a new last.pt)."""
        self._update_text()

    def _learned_text(self, node: str, lesson: Any) -> str:
        """A small layer's learned values from the shown run's last.pt (a Linear(1, 1): its w
        and b), as a line under its shapes; "" for a large layer or without a run."""
        from designer.engine.train.inside_files import LEARNED_LIMIT, learned_values

        from ..torch_loader import torch_ready

        size = sum(math.prod(s) for s in lesson.weights.values())
        doc = self.document
        if self.run_dir is None or not 0 < size <= LEARNED_LIMIT or doc.trail:
            return ""
        if not torch_ready():  # reading last.pt would import torch here, on the GUI thread
            return ""
        last = self.run_dir / "last.pt"
        try:
            stamp = (str(last), last.stat().st_mtime_ns, node, doc.network)
        except OSError:
            return ""
        if self._learned_for != stamp:
            path = module_attrs(doc.graph, list(doc.analysis.order)
                                if doc.analysis is not None else None).get(node)
            found = learned_values(self.run_dir, doc.network, path) if path else None
            self._learned_for = stamp
            self._learned = ("" if found is None else
                             f"\n  learned {found.text()}  (last.pt of {self.run_dir.name}"
                             + (f", epoch {found.epoch})" if found.epoch else ")"))
        return self._learned

    @property
    def key(self) -> str | None:
        k = self.layer_combo.currentText()
        return k or None

    # -- drawing -----------------------------------------------------------------------------------

    def _force_redraw(self) -> None:
        self._drawn = (-1, None, None)

    @Slot()
    def redraw(self) -> None:
        """Draw what changed since the last time (the timer's slot; tests call it directly)."""
        if not self.isVisible() and self.source == "live":
            return
        state = (self.store.version, self.key, self.tabs.currentIndex())
        if state == self._drawn:
            return
        # histograms and curves (several plots: 10-25 ms to lay out and paint) follow new
        # captures at most once a second; a new layer or page is drawn at once
        now = time.perf_counter()
        if (state[0] != self._drawn[0] and state[1:] == self._drawn[1:] and state[2] != 0
                and now - self._heavy_at < HEAVY_S):
            return
        if state[2] != 0:
            self._heavy_at = now
        self._update_layer_choices()
        self._drawn = state
        self._show_source()
        series = self.store.layers.get(self.key) if self.key else None
        page = self.tabs.currentIndex()
        if page == 0:
            self._draw_sample()
        elif page == 1:
            self._draw_hists(series)
        else:
            self._draw_curves(series)
        self.redrawn.emit()

    def _draw_sample(self) -> None:
        sample, key = self.store.sample, self.key
        self.output_image.clear()
        self.output_bars.setOpts(x=[], height=[])
        self.output_plot.getAxis("bottom").setTicks(None)  # class names: only on their bars
        view = sample.outputs.get(key) if sample is not None and key else None
        attention = sample.attention.get(key) if sample is not None and key else None
        series = self.store.layers.get(key) if key else None
        if sample is not None and series is not None:
            x = sample.inputs.get(series.network)
            self._draw_input(x)
        else:
            self.input_image.clear()
        if view is None and attention is None:
            self.sample_note.setText("" if sample is None or not key else
                                     "No output of this layer for the sample.")
            if sample is None:
                self.sample_note.setText("No sample yet: train with this panel open, or pick a "
                                         "run in History.")
            return
        shown = attention or view
        kind, data = shown.kind, np.asarray(shown.data, dtype=np.float32)
        plot = self.output_plot
        image = kind in ("maps", "attention", "sequence")
        plot.setAspectLocked(kind in ("maps", "attention"))
        plot.invertY(image)
        for axis in ("left", "bottom"):
            plot.showAxis(axis, not image or kind == "sequence")
        if kind == "maps":
            img = tile(data)
            self._show_image(img, (-1.0, 1.0))
            plot.setTitle(f"{data.shape[0]} feature map(s) of sample {sample.index}")
        elif kind == "attention":
            img = np.concatenate([np.pad(h, ((0, 0), (0, 1)), constant_values=np.nan)
                                  for h in data], axis=1)[:, :-1]
            self.output_image.setColorMap(_HEAT)
            self.output_image.setImage(img, levels=(0.0, float(np.nanmax(img)) or 1.0))
            plot.setTitle(f"attention weights, {data.shape[0]} head(s) (query x key)")
        elif kind == "sequence":
            peak = float(np.nanmax(np.abs(data))) or 1.0
            self._show_image(data.T, (-peak, peak))  # rows: units, columns: time
            plot.setTitle("hidden state over time (units x steps)")
        else:
            self.output_bars.setOpts(x=np.arange(data.size), height=data.reshape(-1),
                                     width=0.8)
            names = self._class_names(key, data.size)
            plot.setTitle(f"output of sample {sample.index} ({data.size} values"
                          + (", one per class)" if names else ")"))
            if names:
                plot.getAxis("bottom").setTicks([[(i, _short(n)) for i, n in enumerate(names)]])
        plot.autoRange()
        notes = [f"shape {tuple(shown.shape)}", shown.note,
                 f"step {sample.step}, epoch {sample.epoch}"]
        self.sample_note.setText("; ".join(n for n in notes if n))

    def _class_names(self, key: str, size: int) -> list[str] | None:
        """The dataset's class names for the bars of ``key``'s output: when the sample carries
        them, the output has one value per class and the layer is among its network's last
        layers whose outputs all have that size (the classifier and what follows it)."""
        sample, series = self.store.sample, self.store.layers.get(key)
        classes = list(sample.classes) if sample is not None else []
        if not classes or size != len(classes) or len(classes) > MAX_CLASS_TICKS \
                or series is None:
            return None
        same_net = [k for k in sample.outputs
                    if k in self.store.layers and self.store.layers[k].network == series.network]
        for k in reversed(same_net):
            if tuple(sample.outputs[k].shape) != (size,):
                return None
            if k == key:
                return classes
        return None

    def _show_image(self, img: np.ndarray, levels: tuple[float, float]) -> None:
        self.output_image.setColorMap(_MAPS)
        self.output_image.setImage(img, levels=levels)
        self.output_image.setRect(QRectF(0, 0, img.shape[1], img.shape[0]))

    def _draw_input(self, x: Any) -> None:
        if x is None:
            self.input_image.clear()
            return
        a = np.asarray(x, dtype=np.float32)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim not in (2, 3):
            self.input_image.clear()
            return
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        self.input_image.setImage(a, levels=(lo, hi if hi > lo else lo + 1))
        self.input_plot.autoRange()

    def _draw_hists(self, series) -> None:
        for name, (plot, item) in self.hists.items():
            heat = series.heat(name) if series is not None else None
            if heat is None:
                item.clear()
                continue
            img, lo, hi = heat
            item.setImage(img.T, levels=(0.0, float(img.max()) or 1.0))  # rows: values
            item.setRect(QRectF(0.5, lo, img.shape[0], hi - lo))
            plot.setXRange(0.5, img.shape[0] + 0.5, padding=0)
            plot.setYRange(lo, hi, padding=0)

    def _draw_curves(self, series) -> None:
        for key, item in self.curves.items():
            if series is None:
                item.setData([], [])
                continue
            x, y = series.series(key)
            if key in ("grad_norm", "out_grad_norm", "update_ratio"):
                y = np.where(y > 0, y, np.nan)
            ok = np.isfinite(y)
            # past FEW_CAPTURES lines only: the symbols (dots per capture) cost more to paint
            # than the four plots' lines together (bench_inside_ui.py --tab 2: p99 GUI lateness
            # 35 ms with them, 15-19 ms without); with few captures each one is a dot
            few = int(ok.sum()) <= FEW_CAPTURES
            pen = item.opts["pen"]
            item.setData(x[ok], y[ok], symbol="o" if few else None, symbolSize=6,
                         symbolPen=pen, symbolBrush=pen.color())
        for plot in self.curve_plots.values():
            plot.enableAutoRange()
        self.curve_plots["dead units"].setYRange(0, 1)


class InsideDock(QDockWidget):
    """The panel in a dock of the main window (hidden until asked for: View > Inside)."""

    def __init__(self, document=None, parent: QWidget | None = None) -> None:
        super().__init__("Inside", parent)
        self.setObjectName("InsideDock")
        self.panel = InsidePanel(document, self)
        self.setWidget(self.panel)
        guard_wheel(self.panel)  # only a focused field takes the wheel
