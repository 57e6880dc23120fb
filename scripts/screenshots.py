"""Open each template in the designer window and save a screenshot of it.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
        [--only mlp-digits lenet5 ...]

Writes ``<template id>.png`` per template, ``problems.png`` (the starter with a mistake),
``summary.png`` (the model summary), ``training.png`` and ``evaluation.png`` (the starter trained
from the toolbar), ``shortcuts.png`` (Help > Keyboard Shortcuts), ``new-dialog.png`` (the
templates gallery) and, with ``--only imports`` or by default, ``kept-as-code.png`` (an imported
model with a torch call kept as code, its Function selected) and, when transformers is installed,
``gpt2-import.png`` and ``gpt2-blocks.png`` (a tiny GPT-2 imported: its blocks, then inside one). Runs offscreen on a 1440x900 screen (no display needed; or where
QT_QPA_PLATFORM says) with throw-away settings and recovery folders, so it never touches the
user's own. Each shot shows the design fitted to the view, with one layer selected so the
inspector is filled in, after shape inference has finished.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SIZE = (1440, 900)


def offscreen_screen(width: int, height: int) -> None:
    """Offscreen unless told otherwise, on a screen of this size: the window fits the screen it
    opens on, and Qt's own offscreen screen is only 800x800."""
    if "QT_QPA_PLATFORM" in os.environ:
        return
    config = Path(tempfile.mkdtemp(prefix="designer-screen-")) / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "shots", "x": 0, "y": 0, "width": width,
                                               "height": height, "logicalDpi": 96,
                                               "logicalBpi": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

MIN_READABLE_ZOOM = 0.45  # below this a fitted design is too small to read ...
READABLE_ZOOM = 0.65  # ... so the shot shows its start at this zoom instead
# The layer to select in each shot: the first of these types found in the design.
_SELECT = ("Conv2d", "LSTM", "TransformerEncoderLayer", "Linear")


def _wait(app: QApplication, done, timeout: float = 30.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        app.processEvents()
        if done():
            return True
        time.sleep(0.01)
    return False


def _settle(app: QApplication, seconds: float = 0.2) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--only", nargs="*", help="template ids, or imports (default: all)")
    args = parser.parse_args(argv)

    from designer.engine.document.templates import list_templates
    from designer.ui.app import make_app
    from designer.ui.gallery import NewDialog
    from designer.ui.main_window import MainWindow

    offscreen_screen(*SIZE)
    app = make_app()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="designer-shots-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings, recovery_dir=tmp / "recovery")
    window.resize(*SIZE)
    window.show()
    written = []

    def shoot(widget, name: str) -> None:
        path = out / name
        widget.grab().save(str(path))
        written.append(path)
        print(f"wrote {path}")
    for info in list_templates():
        if args.only and info.id not in args.only:
            continue
        if info.error and info.layers == 0:
            print(f"skip {info.id}: {info.error}", file=sys.stderr)
            continue
        window.open_template(info.id)
        doc = window.document
        if not _wait(app, lambda d=doc: d.analysis is not None):
            print(f"warning: {info.id}: shape check did not finish", file=sys.stderr)
        _settle(app)
        view = window.view
        view.fit_to_view()
        if view.transform().m11() < MIN_READABLE_ZOOM:
            # A long design fitted whole is too small to read: show its start, readable.
            view.resetTransform()
            view.scale(READABLE_ZOOM, READABLE_ZOOM)
            rect = view.canvas_scene.nodes_rect()
            half = view.viewport().width() / 2 / READABLE_ZOOM
            view.centerOn(rect.left() + half - 40, rect.center().y())
        nodes = list(doc.graph.nodes.values())
        pick = next((n for t in _SELECT for n in nodes if n.type == t), None)
        if pick is not None:
            window.view.select_nodes([pick.id])
        _settle(app)
        shoot(window, f"{info.id}.png")

    # The starter with a mistake: a fixed size that disagrees with its input, as a new user
    # might make it; the problems panel, the red node and the status bar say what to change.
    if not args.only or "mlp-digits" in args.only:
        window.open_template("mlp-digits")
        doc = window.document
        fc1 = doc.graph.node_by_name("fc1")
        if fc1 is not None:
            doc.set_params(fc1.id, {"in_features": 100})
            _wait(app, lambda: doc.analysis is not None and not doc.analysis.ok)
            window.view.select_nodes([fc1.id])
            _settle(app)
            shoot(window, "problems.png")
            doc.undo_stack.undo()
            _wait(app, lambda: doc.analysis is not None and doc.analysis.ok)
            window.summary.raise_()
            _settle(app)
            shoot(window, "summary.png")
            window.problems.raise_()

    # Training the starter from the toolbar (F5): the training view after the run, then its
    # evaluation (confusion matrix, per-class table, samples), as a newcomer sees them.
    if not args.only or "mlp-digits" in args.only:
        window.open_template("mlp-digits")
        panel = window.training.panel
        ended = []
        panel.run_finished.connect(ended.append)
        window.act_train.trigger()
        if not _wait(app, lambda: ended, timeout=120):
            print("warning: the starter's run did not finish", file=sys.stderr)
        _wait(app, lambda: panel.evaluation.result is not None, timeout=30)
        _settle(app, 0.5)
        for name, tab in (("training", panel.plots), ("evaluation", panel.evaluation)):
            panel.tabs.setCurrentWidget(tab)
            _settle(app, 0.3)
            shoot(window, f"{name}.png")
        from designer.ui.shortcuts import ShortcutsDialog

        shortcuts = ShortcutsDialog(window.shortcut_rows(), window)
        shortcuts.show()
        _settle(app)
        shoot(shortcuts, "shortcuts.png")
        shortcuts.close()

    if not args.only or "imports" in args.only:
        shoot_imports(app, window, shoot)

    dialog = NewDialog(window)
    dialog.resize(980, 620)
    dialog.select("lenet5")
    dialog.show()
    _settle(app)
    shoot(dialog, "new-dialog.png")
    dialog.close()

    window.shutdown()
    window.close()
    return 0 if written else 1


def _show_design(app: QApplication, window, project, select: str | None = None,
                 network: str | None = None) -> None:
    """Open ``project`` (its ``network``), fitted to the view, the layer ``select`` selected."""
    window.set_project(project, None)
    doc = window.document
    if network is not None:
        doc.set_network(network)
    _wait(app, lambda: doc.analysis is not None, timeout=60)
    _settle(app, 0.3)
    window.view.fit_to_view()
    if select is not None:
        node = doc.graph.node_by_name(select)
        if node is not None:
            window.view.select_nodes([node.id])
    _settle(app, 0.3)


def shoot_imports(app: QApplication, window, shoot) -> None:
    """Imported models with what no layer stands for kept as code (Function, Tensor layers)."""
    import torch  # deferred: only these shots need a model to import
    from torch import nn

    from designer.engine.interop.importing import import_model

    class Running(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 6)
            self.out = nn.Linear(6, 3)

        def forward(self, x):
            x = self.fc(x)
            x = torch.cumsum(x, 1).flatten(1) * 0.5
            return self.out(x)

    project, _ = import_model(Running(), (8,), name="Running")
    fn = next(n.name for n in project.graph.nodes.values() if n.type == "Function")
    _show_design(app, window, project, select=fn)
    shoot(window, "kept-as-code.png")
    try:
        import transformers  # deferred: an optional extra
    except ImportError:
        print("skip gpt2-import.png: transformers is not installed", file=sys.stderr)
        return
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32))
    project, _ = import_model(model, (16,), input_dtype="int64")
    _show_design(app, window, project, select="transformer")
    shoot(window, "gpt2-import.png")
    _show_design(app, window, project, select="cumsum", network="GPT2Model")
    shoot(window, "gpt2-blocks.png")
    shoot_llama(app, window, shoot)


def shoot_llama(app: QApplication, window, shoot) -> None:
    """A tiny LLaMA imported through File > Import model… (its report in the dialog), then on
    the canvas: the model with its blocks collapsed, one decoder layer, its attention."""
    from designer.ui.import_dialog import ImportDialog

    dialog = ImportDialog(window, models=[])
    dialog.spec.setEditText("transformers:LlamaForCausalLM")
    dialog.config.setText("num_hidden_layers=2 hidden_size=32 num_attention_heads=2 "
                          "num_key_value_heads=1 intermediate_size=64 vocab_size=100")
    opened: list = []
    dialog.imported.connect(lambda project, saved: opened.append(project))
    dialog.show()
    dialog.start()
    _wait(app, lambda: bool(opened) or "Imported" in dialog.status.text()
          or "failed" in dialog.status.text().lower(), timeout=240)
    _settle(app, 0.5)
    shoot(dialog, "llama-report.png")
    dialog.close()
    if not opened:
        print("llama import did not finish: " + dialog.status.text(), file=sys.stderr)
        return
    project = opened[0]
    _show_design(app, window, project, select="model_1")
    shoot(window, "llama-import.png")
    inner = next((n for n in project.networks if n.startswith("LlamaDecoderLayer")), None)
    if inner is not None:
        _show_design(app, window, project, select="self_attn", network=inner)
        shoot(window, "llama-decoder-layer.png")
    attn = next((n for n in project.networks if n.startswith("LlamaAttention")), None)
    if attn is not None:
        _show_design(app, window, project, network=attn)
        shoot(window, "llama-attention.png")


if __name__ == "__main__":
    sys.exit(main())
