"""Inside (issue 16) in the window: the panel shows the selected node's feature maps, histograms
and curves from real runs on digits; observing starts and stops with the panel; a replay from the
run folder shows what the live run showed; the gradient overlay colours layers by gradient norm
(a deep sigmoid MLP's first layer at the vanishing end) and badges dead or non-finite layers, for
layers inside blocks too."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from designer.engine.document.project import Project, save_project
from designer.engine.model.blocks import group
from designer.engine.model.build import build_model
from designer.engine.model.graph import Graph
from designer.engine.train.data import load_dataset
from designer.engine.train.events import Histogram, InsideSummary, LayerSummary
from designer.engine.train.inside import InsideOptions
from designer.engine.train.training import Trainer
from designer.ui.canvas.view import CanvasView
from designer.ui.document import Document
from designer.ui.inside.model import InsideStore
from designer.ui.inside.overlay import FROZEN, InsideOverlay, level_color
from designer.ui.inside.panel import FEW_CAPTURES, InsidePanel, tile
from designer.ui.main_window import MainWindow

LENET = (("Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
         ("MaxPool2d", {"kernel_size": 2}),
         ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
         ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}),
         ("Linear", {"out_features": 64}), ("ReLU", {}), ("Linear", {"out_features": 10}))


def chain(*layers, shape=(1, 8, 8)) -> Graph:
    g = Graph()
    last = g.add_node("Input", params={"shape": list(shape)}).id
    for type_, params in layers:
        node = g.add_node(type_, params=params)
        g.connect(last, node.id)
        last = node.id
    g.connect(last, g.add_node("Output").id)
    return g


def node_named(graph: Graph, name: str) -> str:
    return next(n.id for n in graph.nodes.values() if n.name == name)


def train(graph: Graph, ds, run_dir=None, epochs: int = 2, **options):
    events = []
    opts = {"every": 10, "overhead": None, "sample": 0, **options}
    Trainer(build_model(graph, seed=0), ds, {"epochs": epochs, "batch_size": 64},
            run_dir=run_dir, callback=events.append, inside=InsideOptions(**opts)).run()
    return events


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def lenet(digits, tmp_path_factory):
    graph = chain(*LENET)
    run_dir = tmp_path_factory.mktemp("lenet") / "run"
    return graph, train(graph, digits, run_dir), run_dir


@pytest.fixture
def document(qtbot):
    docs = []

    def make(graph: Graph, name: str = "model") -> Document:
        doc = Document(Project("inside", networks={name: graph}))
        docs.append(doc)
        doc.analyze_now()
        return doc

    yield make
    for doc in docs:
        doc.close()


def make_panel(qtbot, doc) -> InsidePanel:
    panel = InsidePanel(doc)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    return panel


# --------------------------------------------------------------------------------------------
# The panel
# --------------------------------------------------------------------------------------------


def test_the_panel_shows_the_selected_layers_maps_histograms_curves_and_formula(
        qtbot, lenet, document):
    graph, events, _ = lenet
    doc = document(graph)
    panel = make_panel(qtbot, doc)
    for ev in events:
        panel.handle(ev)
    conv = node_named(graph, "conv1")
    panel.set_selection([conv])
    panel.redraw()
    assert panel.key == "model.conv1"
    assert "Conv2d" in panel.text.text() and "output (N, 6, 8, 8)" in panel.text.text()
    assert "weight (6, 1, 3, 3)" in panel.text.text()
    # the sample: six 8x8 feature maps in a 3 x 2 grid with one-pixel gaps, and the digit
    sample = panel.store.sample
    maps = sample.outputs["model.conv1"].data
    assert panel.output_image.image.shape == (2 * 9 - 1, 3 * 9 - 1)
    np.testing.assert_array_equal(panel.output_image.image, tile(maps))
    assert panel.input_image.image.shape == (8, 8)
    assert "6 feature map(s)" in panel.output_plot.titleLabel.text
    # histograms per capture as heat maps: values x captures
    n = sum(isinstance(e, InsideSummary) for e in events)
    panel.tabs.setCurrentIndex(1)
    panel.redraw()
    for name in ("weights", "activations", "grads"):
        img = panel.hists[name][1].image
        assert img is not None and img.shape == (64, n), name
    series = panel.store.layers["model.conv1"]
    edges = series.hists["weights"][-1].edges
    assert panel.hists["weights"][0].viewRange()[1][0] <= edges[0]  # the grid spans them
    # curves over the run's batches
    panel.tabs.setCurrentIndex(2)
    panel.redraw()
    item = panel.curves["grad_norm"]
    x, y = item.xData, item.yData  # as given (getData is log10 on the log axis)
    assert len(x) == n and np.all(y > 0)
    np.testing.assert_allclose(y, series.scalars["grad_norm"])
    assert x[-1] == 2 * math.ceil(digits_n_train(events) / 64)
    # a ReLU's dead-unit fraction; a vector layer's output as bars
    panel.set_selection([node_named(graph, "relu1")])
    panel.redraw()
    x, y = panel.curves["dead_fraction"].getData()
    assert len(x) == n and np.all((y >= 0) & (y <= 1))
    panel.tabs.setCurrentIndex(0)
    panel.set_selection([node_named(graph, "fc1")])
    panel.redraw()
    assert len(panel.output_bars.opts["height"]) == 64
    panel.set_selection([next(n.id for n in graph.nodes.values() if n.type == "Input")])
    panel.redraw()
    assert panel.key is None


def digits_n_train(events) -> int:
    from designer.engine.train.events import Started

    return next(e.n_train for e in events if isinstance(e, Started))


def test_a_replay_from_the_run_folder_shows_what_the_live_run_showed(qtbot, lenet, document):
    graph, events, run_dir = lenet
    doc = document(graph)
    live = make_panel(qtbot, doc)
    for ev in events:
        live.handle(ev)
    replay = make_panel(qtbot, doc)
    assert replay.replay(run_dir) == live.store.captures > 0
    assert "replay of run" in replay.source_label.text()
    for panel in (live, replay):
        panel.set_selection([node_named(graph, "conv2")])
    for page in (0, 1, 2):
        for panel in (live, replay):
            panel.tabs.setCurrentIndex(page)
            panel.redraw()
        if page == 0:
            np.testing.assert_array_equal(live.output_image.image, replay.output_image.image)
        elif page == 1:
            for name in live.hists:
                np.testing.assert_array_equal(live.hists[name][1].image,
                                              replay.hists[name][1].image)
        else:
            for key in live.curves:
                a = live.curves[key].xData, live.curves[key].yData
                b = replay.curves[key].xData, replay.curves[key].yData
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[1], b[1])


# --------------------------------------------------------------------------------------------
# Observing follows the panel, in the window
# --------------------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path, digits):
    project = Project("inside", networks={"model": chain(*LENET)}, dataset={"name": "digits"},
                      training={"epochs": 2, "batch_size": 64})
    path = tmp_path / "lenet.dnn.json"
    save_project(project, path)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.show()
    w.open_path(path)
    w.training.panel.chooser.set_dataset(digits, w.training.panel.chooser.current_key())
    yield w
    w.shutdown()


def test_observing_starts_and_stops_with_the_panel(qtbot, window):
    inside, training = window.inside, window.training.panel
    assert not inside.dock.isVisible() and training.inside_options is None
    window.training.show()
    with qtbot.waitSignal(training.run_finished, timeout=60000):
        assert training.train()
    assert inside.panel.store.captures == 0  # hidden: nothing observed
    inside.dock.show()
    inside.dock.raise_()
    qtbot.waitUntil(lambda: training.inside_options is not None)
    assert inside.dock.toggleViewAction().isChecked()
    with qtbot.waitSignal(training.run_finished, timeout=60000):
        assert training.train()
    qtbot.waitUntil(lambda: inside.panel.store.captures >= 2)
    assert inside.panel.source == "live" and inside.panel.store.sample is not None
    conv = node_named(window.document.graph, "conv1")
    window.view.select_nodes([conv])
    assert inside.panel.selected == [conv]
    with qtbot.waitSignal(inside.panel.redrawn, timeout=5000):
        pass
    assert inside.panel.key == "model.conv1" and inside.panel.output_image.image is not None
    inside.dock.hide()
    qtbot.waitUntil(lambda: training.inside_options is None)
    # History: picking the observed run replays it
    training.history.refresh()
    observed = next(i for i, r in enumerate(training.history.runs)
                    if (r.path / "inside").exists())
    inside.panel.store.clear()
    training.history.select([observed])
    assert inside.panel.source == "replay" and inside.panel.store.captures >= 2


def test_the_worker_forwards_observe_and_stop_to_its_trainer():
    from designer.ui.training.worker import TrainingWorker

    class FakeTrainer:
        def __init__(self):
            self.calls = []

        def observe(self, o):
            self.calls.append(o)

        def stop_observing(self):
            self.calls.append(None)

        def run(self):
            return "done"

    worker = TrainingWorker(None, inside=None)
    opts = InsideOptions()
    worker.observe(opts)  # before the trainer exists: kept for it
    trainer = FakeTrainer()
    assert worker._run_trainer(trainer) == "done" and trainer.calls == [opts]
    worker.observe(None)
    assert trainer.calls == [opts, None]


# --------------------------------------------------------------------------------------------
# The gradient overlay
# --------------------------------------------------------------------------------------------


def overlay_for(qtbot, doc, events):
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    store = InsideStore()
    for ev in events:
        store.add(ev)
    overlay = InsideOverlay(doc, view, store)
    overlay.set_enabled(True)
    return view, overlay


def test_the_overlay_puts_a_deep_sigmoid_mlps_first_layer_at_the_vanishing_end(
        qtbot, digits, document):
    layers = [("Flatten", {})]
    for _ in range(8):
        layers += [("Linear", {"out_features": 32}), ("Sigmoid", {})]
    graph = chain(*layers, ("Linear", {"out_features": 10}))
    events = train(graph, digits, epochs=1, every=5, sample=None)
    doc = document(graph)
    view, overlay = overlay_for(qtbot, doc, events)
    linears = [n.id for n in graph.nodes.values() if n.type == "Linear"]
    levels = [overlay.current.nodes[nid].level for nid in linears]
    assert levels[0] == 0.0 and levels[-1] == 1.0  # the two ends of the scale
    assert all(a < b for a, b in itertools.pairwise(levels))  # a fade along the network
    assert overlay.current.hi - overlay.current.lo > 3  # decades apart
    items = view.canvas_scene.node_items
    assert items[linears[0]].mark_color == level_color(0.0)
    assert items[linears[-1]].mark_color == level_color(1.0)
    assert "gradient norm" in items[linears[0]].tooltip_text()
    assert overlay.legend.isVisible()
    overlay.set_enabled(False)
    assert items[linears[0]].mark_color is None and not overlay.legend.isVisible()


def summary_of(graph: Graph, values: dict[str, dict]) -> InsideSummary:
    hist = Histogram(np.linspace(0, 1, 5).astype(np.float32), np.ones(4, np.int64))
    layers = {}
    for name, v in values.items():
        node = graph.nodes[node_named(graph, name)]
        base = {"weight_norm": 1.0, "grad_norm": math.nan, "update_ratio": math.nan,
                "out_grad_norm": 1.0, "act_mean": 0.0, "act_std": 1.0,
                "dead_fraction": math.nan, "nonfinite_weights": 0, "nonfinite_grads": 0,
                "nonfinite_activations": 0}
        layers[f"model.{name}"] = LayerSummary("model", name, node.id, node.type, "layer",
                                               hist, hist, hist, **{**base, **v})
    return InsideSummary(1, 1, 1, layers)


def test_badges_for_mostly_dead_units_and_non_finite_values(qtbot, document):
    graph = chain(("Flatten", {}), ("Linear", {"out_features": 16}), ("ReLU", {}),
                  ("Linear", {"out_features": 10}))
    doc = document(graph)
    ev = summary_of(graph, {"fc1": {"grad_norm": 0.1}, "relu1": {"dead_fraction": 0.8},
                            "fc2": {"grad_norm": 2.0, "nonfinite_grads": 3}})
    view, overlay = overlay_for(qtbot, doc, [ev])
    items = view.canvas_scene.node_items
    assert items[node_named(graph, "relu1")].mark_badge == "dead 80%"
    assert items[node_named(graph, "fc2")].mark_badge == "NaN/Inf"
    assert items[node_named(graph, "fc1")].mark_badge == ""
    ev2 = summary_of(graph, {"fc1": {"grad_norm": 0.1}, "relu1": {"dead_fraction": 0.3},
                             "fc2": {"grad_norm": 2.0}})
    overlay.store.add(ev2)
    overlay.refresh()
    assert items[node_named(graph, "relu1")].mark_badge == ""  # 30% dead: no badge


def test_a_block_use_shows_the_worst_inside_and_an_opened_definition_each_layer(
        qtbot, digits, document):
    layers = [("Flatten", {})]
    for _ in range(4):
        layers += [("Linear", {"out_features": 32}), ("Sigmoid", {})]
    graph = chain(*layers, ("Linear", {"out_features": 10}))
    doc = document(graph)
    p = doc.project
    inner = [node_named(graph, n) for n in ("fc1", "sigmoid1", "fc2", "sigmoid2")]
    use = group(p, "model", inner, "Front")
    doc.replace_project(p)
    doc.analyze_now()
    events = train(p.graph, digits, epochs=1, every=5, sample=None)
    view, overlay = overlay_for(qtbot, doc, events)
    marks = overlay.current.nodes
    # the use's mark is its first Linear's (the smallest gradient, furthest from the median)
    fc1_key = next(k for k in overlay.store.layers if k.endswith(".fc1"))
    assert marks[use].norm == pytest.approx(overlay.store.latest.layers[fc1_key].grad_norm)
    assert marks[use].level == 0.0
    doc.open_block(use)
    overlay.refresh()
    inside = overlay.current.nodes
    g = doc.graph
    fc1, fc2 = node_named(g, "fc1"), node_named(g, "fc2")
    assert inside[fc1].level < inside[fc2].level
    assert view.canvas_scene.node_items[fc1].mark_color is not None


# --------------------------------------------------------------------------------------------
# A short run, looked at (issue 22 item 14)
# --------------------------------------------------------------------------------------------


def test_a_short_run_with_a_frozen_layer_reads_right_in_the_window(qtbot, window):
    """Freeze conv1 with the Trainable box, show Inside and the gradient overlay from the View
    menu, train two epochs (a few captures): the capture axis counts 1, 2 (no 1.5); each
    capture is a dot on the curves; the curves' keys sit in the titles, not over the plots;
    conv1 is grey with a "frozen" badge and a frozen key in the legend, and no end of the scale
    is called vanishing when the norms are ordinary; fc2's bars carry the digits' class names."""
    w, panel = window, window.inside.panel
    doc, training = w.document, w.training.panel
    conv = node_named(doc.graph, "conv1")
    w.inspector.set_node(conv)
    w.inspector.trainable_check.click()
    assert doc.graph.nodes[conv].frozen
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text().replace("&", "") == "View")
    actions = {a.text().replace("&", ""): a for a in view_menu.actions()}
    actions["Inside"].trigger()
    actions["Gradient Overlay"].trigger()
    w.training.show()
    with qtbot.waitSignal(training.run_finished, timeout=60000):
        assert training.train()
    qtbot.waitUntil(lambda: panel.store.captures >= 2)
    n = panel.store.captures
    assert n <= FEW_CAPTURES  # a short run

    w.view.select_nodes([node_named(doc.graph, "fc1")])
    panel.tabs.setCurrentIndex(1)
    panel.redraw()
    axis = panel.hists["weights"][0].getAxis("bottom")
    values = [v for _, vs in axis.tickValues(0.5, n + 0.5, 200) for v in vs]
    assert values and all(float(v).is_integer() for v in values)
    assert axis.tickStrings([1.0, 2.0], 1.0, 1.0) == ["1", "2"]
    panel.tabs.setCurrentIndex(2)
    panel.redraw()
    assert panel.curves["grad_norm"].opts["symbol"] == "o"  # few captures: dots
    grads = panel.curve_plots["gradients"]
    assert grads.legend is None and "weights" in grads.titleLabel.text \
        and "output" in grads.titleLabel.text

    overlay = w.inside.overlay
    qtbot.waitUntil(lambda: overlay.current is not None and conv in overlay.current.nodes)
    overlay.refresh()
    item = w.view.canvas_scene.node_items[conv]
    assert item.mark_badge == "frozen" and "frozen" in item.mark_tip
    assert item.mark_color.name() == FROZEN
    assert overlay.legend.frozen and overlay.legend.isVisible()
    left, right = overlay.legend.end_texts()
    assert overlay.current.lo > -6 and "vanishing" not in left and "exploding" not in right
    fc1 = w.view.canvas_scene.node_items[node_named(doc.graph, "fc1")]
    assert fc1.mark_badge == "" and fc1.mark_color.name() != FROZEN

    w.view.select_nodes([node_named(doc.graph, "fc2")])
    panel.tabs.setCurrentIndex(0)
    panel.redraw()
    ticks = panel.output_plot.getAxis("bottom")._tickLevels
    names = panel.store.sample.classes
    assert len(names) == 10 and [t for _, t in ticks[0]] == list(names)
    assert "one per class" in panel.output_plot.titleLabel.text
    w.view.select_nodes([node_named(doc.graph, "fc1")])  # 64 units: numbers, not classes
    panel.redraw()
    assert panel.output_plot.getAxis("bottom")._tickLevels is None
    w.grab().save("/tmp/misc/journey-inside.png")


def test_the_legend_calls_an_end_vanishing_only_when_it_is(qtbot, document):
    """1.4e-2 at the low end of ordinary norms is no vanishing gradient; 1e-8, or five decades
    under the others, is; a huge norm is exploding."""
    graph = chain(("Flatten", {}), ("Linear", {"out_features": 16}), ("ReLU", {}),
                  ("Linear", {"out_features": 16}), ("ReLU", {}), ("Linear", {"out_features": 10}))
    doc = document(graph)
    _view, overlay = overlay_for(qtbot, doc, [summary_of(graph, {
        "fc1": {"grad_norm": 1.4e-2}, "fc2": {"grad_norm": 0.2}, "fc3": {"grad_norm": 0.5}})])
    left, right = overlay.legend.end_texts()
    assert left == "1.4e-02" and "exploding" not in right
    assert "vanishing" not in overlay.current.nodes[node_named(graph, "fc1")].tip
    for fc1, words in ((1e-8, ("vanishing", "")), (1e-6 * 0.2 * 10, ("vanishing", "")),
                       (0.3, ("", ""))):
        overlay.store.add(summary_of(graph, {"fc1": {"grad_norm": fc1}, "fc2": {"grad_norm": 0.2},
                                             "fc3": {"grad_norm": 0.5}}))
        overlay.refresh()
        left, right = overlay.legend.end_texts()
        assert left.endswith(" vanishing") == (words[0] == "vanishing"), (fc1, left)
        assert "exploding" not in right
    overlay.store.add(summary_of(graph, {"fc1": {"grad_norm": 0.3}, "fc2": {"grad_norm": 0.2},
                                         "fc3": {"grad_norm": 5e4}}))
    overlay.refresh()
    assert overlay.legend.end_texts()[1].startswith("exploding ")
    assert "(exploding)" in overlay.current.nodes[node_named(graph, "fc3")].tip
