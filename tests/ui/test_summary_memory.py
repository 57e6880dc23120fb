"""The Summary dock shows each layer's activation memory and the training-memory total line."""

from __future__ import annotations

from designer.engine.model.graph import Graph
from designer.engine.model.shapes import analyze
from designer.ui.summary import COLUMNS, SummaryDock


def _mlp() -> Graph:
    g = Graph()
    last = g.add_node("Input", params={"shape": [1, 8, 8], "dtype": "float32"}).id
    for layer, params in (("Flatten", {}), ("Linear", {"out_features": 32}), ("ReLU", {}),
                          ("Linear", {"out_features": 10})):
        node = g.add_node(layer, params=params)
        g.connect(last, node.id)
        last = node.id
    g.connect(last, g.add_node("Output").id)
    return g


def test_summary_shows_activation_memory_per_layer_and_training_total(qtbot):
    dock = SummaryDock()
    qtbot.addWidget(dock)
    g = _mlp()
    dock.show_analysis(g, analyze(g), {"batch_size": 32, "optimizer": "sgd", "momentum": 0.0})
    assert COLUMNS[-1] == "Activations"
    rows = dock.row_texts()
    col = COLUMNS.index("Activations")
    # Input 64 floats = 256 B; Flatten is a view; Linear 32 floats; ReLU 32; Linear 10; Output view
    assert [r[col] for r in rows] == ["256 B", "-", "128 B", "128 B", "40 B", "-"]
    text = dock.totals.text()
    assert "activations 552 B/sample" in text
    assert "at batch 32" in text
    # SGD without momentum: weights and gradients only, 2 x 4 x 2,410 parameters
    assert "optimizer state 19.3 kB" in text


def test_summary_of_an_invalid_design_shows_unknown_memory(qtbot):
    dock = SummaryDock()
    qtbot.addWidget(dock)
    g = _mlp()
    fc = next(n for n in g.nodes.values() if n.type == "Linear")
    g.set_params(fc.id, {"in_features": 100})
    dock.show_analysis(g, analyze(g))
    col = COLUMNS.index("Activations")
    texts = [r[col] for r in dock.row_texts()]
    assert texts[0] == "256 B" and "?" in texts
    assert "Memory:" not in dock.totals.text()
