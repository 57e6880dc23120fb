"""The learning-rate plot reads well whether the rate is constant or decays over decades."""

from __future__ import annotations

from designer.ui.training.plots import TrainingPlots


def test_constant_rate_uses_a_linear_axis_from_zero(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    for epoch in range(1, 4):
        plots.add_epoch(epoch, lr=0.01)
    plots._redraw()
    assert not plots.lr_plot.getViewBox().state["logMode"][1]
    lo, hi = plots.lr_plot.getViewBox().viewRange()[1]
    assert lo == 0 and 0.01 < hi <= 0.0125 + 1e-12


def test_rate_spanning_decades_switches_to_a_log_axis(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    for epoch, lr in enumerate((0.1, 0.01, 0.001), start=1):
        plots.add_epoch(epoch, lr=lr)
    plots._redraw()
    assert plots.lr_plot.getViewBox().state["logMode"][1]
