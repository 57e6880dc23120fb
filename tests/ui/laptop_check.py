"""The window on a 1280x800 screen, checked in a process of its own (the offscreen platform's
screen size is fixed when the application starts): ``python -m tests.ui.laptop_check SETTINGS
[SHOTS]`` with ``QT_QPA_PLATFORM=offscreen:configfile=...`` naming a 1280x800 screen. Exits 0
when every check passes, else raises the first failing one; with SHOTS, saves a screenshot of each
state there.

Checked: the window (frame included) lies on the screen, at the first start and after a restart
with a layout saved on a bigger screen; with View > Inside open, with a VAE's training view and
with an error message above the curves, every panel keeps a readable size: the canvas, the
training settings column (no field cut at its right edge), the curves, the VAE's grids (captions
under them, not over) and its latent scatter, the Inside panel.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRect, QSettings
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget


def settle(app: QApplication, rounds: int = 30) -> None:
    for _ in range(rounds):
        app.processEvents()


def on_screen(w) -> None:
    avail = w.screen().availableGeometry()
    frame = w.frameGeometry()
    docks = ", ".join(f"{d.objectName()} {d.width()}x{d.height()} (min {d.minimumSizeHint().width()})"
                      for d in (w.palette, w.inspector, w.training, w.inside.dock) if d.isVisible())
    assert avail.contains(frame), f"the window {frame} leaves the screen's {avail}: {docks}"
    hint = w.minimumSizeHint()
    assert hint.width() <= avail.width() and hint.height() <= avail.height(), \
        f"the window needs {hint}, more than the screen's {avail.size()}"


def inside_of(widget: QWidget, ancestor: QWidget) -> QRect:
    top_left = widget.mapTo(ancestor, widget.rect().topLeft())
    return QRect(top_left, widget.size())


def readable(w) -> None:
    """Every shown dock at least its minimum, the canvas and the training panel's parts usable."""
    central = w.centralWidget()
    assert central.width() >= 360 and central.height() >= 200, f"canvas {central.size()}"
    for dock in (w.palette, w.inspector, w.training, w.inside.dock):
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            hint = dock.minimumSizeHint()
            assert dock.width() >= hint.width() and dock.height() >= hint.height(), \
                f"{dock.objectName()} {dock.size()} is below its minimum {hint}"
    panel = w.training.panel
    if panel.isVisible() and not panel.visibleRegion().isEmpty():
        from designer.ui.training.panel import SETTINGS_MIN_WIDTH

        area = next(a for a in panel.findChildren(QScrollArea) if a.isAncestorOf(panel.chooser))
        assert area.width() >= SETTINGS_MIN_WIDTH, f"settings column {area.width()} px"
        inner, port = area.widget(), area.viewport()
        assert inner.width() <= port.width(), \
            f"the settings ({inner.width()} px) are wider than their column ({port.width()} px)"
        for button in (panel.chooser.browse_button, panel.chooser.load_button):
            if button.isVisible():
                assert button.width() >= button.minimumSizeHint().width(), \
                    f"{button.text()!r} is cut to {button.width()} px"
        page = panel.tabs.currentWidget()
        assert page.height() >= 120, f"the {panel.tabs.tabText(panel.tabs.currentIndex())} " \
                                     f"page is {page.height()} px high"
        plots = panel.plots
        if plots.isVisible():
            rect = plots.loss_plot.vb.sceneBoundingRect()
            assert rect.height() >= 60 and rect.width() >= 100, f"loss curves in {rect}"
            canvas = plots._layout_widget
            for plot in (plots.loss_plot, plots.metric_plot, plots.lr_plot):
                if plot.isVisible():
                    right = plot.sceneBoundingRect().right()
                    assert right <= canvas.width() + 1, f"a plot is cut at {right} > {canvas.width()}"


def vae_readable(view) -> None:
    for label, caption in ((view.recon_label, view.recon_caption),
                           (view.samples_label, view.samples_caption)):
        grid, text = inside_of(label, view), inside_of(caption, view)
        assert not grid.intersects(text), f"a caption {text} lies over its grid {grid}"
        assert min(grid.width(), grid.height()) >= 80, f"a grid of {grid.size()}"
    canvas = view._plots
    for plot in (view.loss_plot, view.latent_plot):
        rect = plot.sceneBoundingRect()
        assert rect.right() <= canvas.width() + 1 and rect.bottom() <= canvas.height() + 1, \
            f"a plot {rect} is cut by its view {canvas.size()}"
        assert plot.vb.sceneBoundingRect().height() >= 60, f"a plot of {rect}"


def main(settings_path: str, shots: str | None = None) -> None:
    from designer.ui.app import make_app

    app = make_app()
    from designer.ui.main_window import MainWindow
    from tests.ui.test_vae_ui import samples

    def shot(w, name: str) -> None:
        if shots:
            w.grab().save(str(Path(shots) / f"{name}.png"))

    folder = Path(settings_path).parent
    # a restart with a layout saved on a bigger screen: 1700 x 1000 at (100, 80)
    restart = str(folder / "restart.ini")
    big = MainWindow(QSettings(restart, QSettings.IniFormat), recovery_dir=folder / "recovery")
    big.setGeometry(100, 80, 1700, 1000)
    big.save_layout()
    big.shutdown()
    big.deleteLater()
    settle(app)
    again = MainWindow(QSettings(restart, QSettings.IniFormat), recovery_dir=folder / "recovery")
    again.show()
    again.open_template()
    again.training.raise_()
    settle(app)
    on_screen(again)
    readable(again)
    shot(again, "restart")
    again.shutdown()
    again.deleteLater()
    settle(app)

    # the first start: the default layout
    w = MainWindow(QSettings(settings_path, QSettings.IniFormat), recovery_dir=folder / "recovery")
    w.show()
    w.open_template()
    settle(app)
    on_screen(w)
    w.training.raise_()
    settle(app)
    on_screen(w)
    readable(w)
    shot(w, "training")

    w.inside.dock.toggleViewAction().trigger()  # View > Inside
    settle(app)
    on_screen(w)
    readable(w)
    assert w.inside.dock.width() >= w.inside.dock.minimumSizeHint().width()
    # what a run and a replayed one write there: long lines that must not widen the window
    w.training.panel.progress_label.setText(
        "epoch 3/10 · batch 12/50 · loss 0.1234 · acc 0.950 · 1,234 samples/s · ETA 0:12")
    w.inside.panel.source_label.setText("20261207-172133-2: not observed (open this panel "
                                        "while a run trains)")
    settle(app)
    on_screen(w)
    readable(w)
    shot(w, "inside-running")
    inside = w.inside.panel
    for tabs_page in (inside.sample_view,):
        assert tabs_page.height() >= 100, f"Inside's sample view is {tabs_page.height()} px high"
    shot(w, "inside")
    w.inside.dock.toggleViewAction().trigger()
    settle(app)

    w.open_path(Path(__file__).resolve().parents[2] / "designer" / "templates" / "vae-digits.dnn.json",
                ask=False)
    w.training.raise_()
    settle(app)
    panel = w.training.panel
    panel.tabs.setCurrentWidget(panel.recipe_view)
    panel.recipe_view.show_samples(samples(1))
    panel.recipe_view.redraw()
    settle(app)
    on_screen(w)
    readable(w)
    vae_readable(panel.recipe_view)
    shot(w, "vae")

    panel.show_message("Training failed: RuntimeError: mat1 and mat2 shapes cannot be "
                       "multiplied (64x784 and 100x10). Check the design's input against the "
                       "dataset, then train again. " * 3)
    panel.tabs.setCurrentWidget(panel.plots)
    settle(app)
    readable(w)
    shot(w, "error")
    panel.tabs.setCurrentWidget(panel.recipe_view)
    settle(app)
    vae_readable(panel.recipe_view)
    w.shutdown()
    print("laptop layout OK")


if __name__ == "__main__":
    main(*sys.argv[1:])
