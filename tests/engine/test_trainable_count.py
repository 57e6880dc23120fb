"""The trainable-parameter count the status bar shows (``shapes.trainable_params``) is what
torch trains: frozen layers, frozen block uses and layers frozen inside a block definition are
left out, exactly as build's ``requires_grad`` leaves them."""

from __future__ import annotations

from designer.engine.document.templates import load_template
from designer.engine.model.blocks import BLOCK
from designer.engine.model.build import build_model
from designer.engine.model.shapes import analyze, trainable_params


def _torch_counts(graph):
    model = build_model(graph, seed=0)
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def test_trainable_count_matches_torch_through_blocks():
    project = load_template("resnet-mini")
    graph = project.networks["model"]
    definition = project.networks["ResidualBlock"]
    analysis = analyze(graph)
    assert trainable_params(graph, analysis) == analysis.total_params == _torch_counts(graph)[1]

    uses = [n for n in graph.nodes.values() if n.type == BLOCK]
    assert len(uses) >= 2
    graph.set_frozen(uses[0].id, True)  # a whole use
    conv = next(n for n in definition.nodes.values() if n.type == "Conv2d")
    definition.set_frozen(conv.id, True)  # one layer inside every other use
    stem = next(n for n in graph.nodes.values() if n.type == "Conv2d")
    graph.set_frozen(stem.id, True)
    analysis = analyze(graph)
    total, trainable = _torch_counts(graph)
    assert analysis.total_params == total
    assert trainable_params(graph, analysis) == trainable < total
