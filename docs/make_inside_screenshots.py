"""The README's "Look inside" screenshots (issue 16), made in the real window, offscreen.

    .venv/bin/python docs/make_inside_screenshots.py [--out docs/screenshots]

* ``inside-feature-maps.png``: a LeNet-like conv net for the 8x8 digits (conv 6 -> ReLU -> pool
  -> conv 16 -> ReLU -> pool -> 120 -> 84 -> 10; LeNet-5 itself needs MNIST) trained 15 epochs
  with the Inside panel open; conv1 selected: its six feature maps of validation sample 3.
* ``inside-histograms.png``: the same run, the Histograms tab of conv2 (weights, activations and
  gradients per capture).
* ``inside-gradient-overlay.png``: a deep sigmoid MLP (8 hidden Linear + Sigmoid) after one
  epoch with View > Gradient Overlay on: the gradient norm fades by decades towards the input.

The runs capture every 10 batches (a fuller picture than the default time budget gives on these
tiny epochs). Settings and run folders live in a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from screenshots import offscreen_screen  # a 1440x900 offscreen screen unless told otherwise

SIZE = (1440, 900)


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def wait(app: QApplication, done, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end and not done():
        app.processEvents()
        time.sleep(0.01)
    if not done():
        raise TimeoutError("gave up waiting")


def chain(*layers, shape=(1, 8, 8)):
    from designer.engine.graph import Graph

    g = Graph()
    last = g.add_node("Input", params={"shape": list(shape)}).id
    for type_, params in layers:
        node = g.add_node(type_, params=params)
        g.connect(last, node.id)
        last = node.id
    g.connect(last, g.add_node("Output").id)
    return g


LENET = (("Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
         ("MaxPool2d", {"kernel_size": 2}),
         ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
         ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}),
         ("Linear", {"out_features": 120}), ("ReLU", {}), ("Linear", {"out_features": 84}),
         ("ReLU", {}), ("Linear", {"out_features": 10}))


def window_for(app, tmp: Path, name: str, graph, training: dict):
    from designer.engine.inside import InsideOptions
    from designer.engine.layout import wrapped_positions
    from designer.engine.project import Project, save_project
    from designer.ui.main_window import MainWindow

    for nid, pos in wrapped_positions(graph).items():
        graph.move(nid, pos)
    path = tmp / f"{name}.dnn.json"
    save_project(Project(name, networks={"model": graph}, dataset={"name": "digits"},
                         training=training), path)
    w = MainWindow(QSettings(str(tmp / f"{name}.ini"), QSettings.IniFormat),
                   recovery_dir=tmp / "recovery")
    w.resize(*SIZE)
    w.show()
    w.open_path(path, ask=False)
    panel = w.inside.panel
    panel.sample_spin.setValue(3)
    panel.options = lambda: InsideOptions(every=10, overhead=None,
                                          sample=panel.sample_spin.value())
    settle(app)
    return w


def train(app, w) -> None:
    panel = w.training.panel
    done = []
    panel.run_finished.connect(done.append)
    assert panel.train()
    wait(app, lambda: bool(done))
    settle(app, 0.5)


def node(w, name: str) -> str:
    return next(n.id for n in w.document.graph.nodes.values() if n.name == name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    offscreen_screen(1440, 900)
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="inside-shots-"))

    # -- LeNet-like: feature maps and histograms ---------------------------------------------------
    w = window_for(app, tmp, "lenet-digits", chain(*LENET),
                   {"epochs": 15, "batch_size": 32, "optimizer": "adam", "lr": 0.002})
    w.inside.dock.show()
    w.inside.dock.raise_()
    w.resizeDocks([w.inside.dock], [470], Qt.Vertical)
    w.resizeDocks([w.training, w.inside.dock], [420, 1000], Qt.Horizontal)
    settle(app)
    train(app, w)
    panel = w.inside.panel
    w.view.select_nodes([node(w, "conv1")])
    w.view.fit_to_view()
    panel.tabs.setCurrentIndex(0)
    panel.redraw()
    settle(app, 0.5)
    w.grab().save(str(out / "inside-feature-maps.png"))
    w.view.select_nodes([node(w, "conv2")])
    panel.tabs.setCurrentIndex(1)
    panel.redraw()
    settle(app, 0.5)
    w.grab().save(str(out / "inside-histograms.png"))
    w.shutdown()
    w.close()

    # -- deep sigmoid MLP: the gradient overlay --------------------------------------------------
    layers = [("Flatten", {})]
    for _ in range(8):
        layers += [("Linear", {"out_features": 32}), ("Sigmoid", {})]
    layers.append(("Linear", {"out_features": 10}))
    w = window_for(app, tmp, "deep-sigmoid", chain(*layers),
                   {"epochs": 1, "batch_size": 32, "optimizer": "sgd", "lr": 0.05})
    w.inside.overlay_action.setChecked(True)
    train(app, w)
    w.view.select_nodes([node(w, "fc1")])
    w.inside.overlay.refresh()
    w.view.fit_to_view()
    settle(app, 0.5)
    w.grab().save(str(out / "inside-gradient-overlay.png"))
    w.shutdown()
    w.close()
    print(f"wrote 3 screenshots to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
