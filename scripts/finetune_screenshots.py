"""Walk the README's "Fine-tune a pretrained model" steps in the window and save what a user sees.

    .venv/bin/python scripts/finetune_screenshots.py [--out docs/screenshots]

Imports torchvision's resnet18 (random weights, nothing downloaded) with its weights through
File > Import model…, points the dataset chooser at a two-class image folder it makes, presses
"Make the design fit", freezes the backbone with Edit > Freeze Layers Before This on ``fc`` and
trains five epochs from the toolbar. Writes ``finetune-weights.png`` (File > Load weights… after
the head changed: what loads and what starts fresh), ``finetune-frozen.png`` (the frozen backbone
and the trainable count), ``finetune-trained.png`` (the run's curves) and ``finetune-log.png``
(the run's log: what loaded, what started fresh). Runs
with throw-away settings, recovery and project folders; prints each user action it takes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QMessageBox
from screenshots import SIZE, _settle, _wait, offscreen_screen


def _image_folder(root: Path) -> Path:
    """Two classes of 32x32 RGB PNGs, reddish and bluish with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(24):
            px = rng.random((32, 32, 3)) * 0.4
            px[..., 0 if c == 0 else 2] += 0.6
            Image.fromarray((px.clip(0, 1) * 255).astype("uint8")).save(root / name / f"{i}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args(argv)

    from designer.ui.app import make_app
    from designer.ui.import_dialog import ImportDialog
    from designer.ui.main_window import MainWindow

    offscreen_screen(*SIZE)
    app = make_app()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="designer-finetune-"))
    data = _image_folder(tmp / "photos")
    (tmp / "proj").mkdir()
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.IniFormat),
                        recovery_dir=tmp / "recovery")
    window.resize(*SIZE)
    window.show()
    actions = 0

    def act(what: str) -> None:
        nonlocal actions
        actions += 1
        print(f"{actions:2d}. {what}")

    def shoot(widget, name: str) -> None:
        widget.grab().save(str(out / name))
        print(f"    wrote {out / name}")

    # File > Import model…: resnet18 is the default; its weights, where the project goes, Import
    def fill_in():
        dialog = next(d for d in QApplication.topLevelWidgets()
                      if isinstance(d, ImportDialog) and d.isVisible())
        dialog.shape.setText("3,32,32")  # not counted: the default 3,224,224 works too, slower
        act("tick Import its weights")
        dialog.weights.setChecked(True)
        act("Project file: proj/r18.dnn.json (typed, or Save as…)")
        dialog.project_file.setText(str(tmp / "proj" / "r18.dnn.json"))
        act("Import")
        dialog.import_button.click()
        _wait(app, lambda: dialog.result_ is not None, timeout=180)
        act("Close (the design is open behind it)")
        dialog.buttons.button(QDialogButtonBox.Close).click()

    act("File > Import model…")
    QTimer.singleShot(0, fill_in)
    window.act_import.trigger()
    doc = window.document
    _wait(app, lambda: doc.analysis is not None, timeout=60)

    # the dataset chooser: Image folder, its folder (Browse… loads and checks it), Make it fit
    panel = window.training.panel
    chooser = panel.chooser
    act("Training view: Dataset = Image folder")
    chooser.kind_combo.setCurrentIndex(chooser.kind_combo.findData("image_folder"))
    _wait(app, lambda: not chooser.is_loading(), timeout=60)  # the digits of a new design, loading
    act("Browse…")
    act(f"choose {data} in the folder dialog (it loads and is checked at once)")
    QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(data))  # the folder
    chooser.browse_button.click()
    _wait(app, lambda: not chooser.is_loading() and chooser.loaded_dataset() is not None
          and chooser.fix_button.isVisible(), timeout=60)
    act("Make the design fit (fc: 1000 -> 2 outputs)")
    chooser.fix_button.click()
    fc = doc.graph.node_by_name("fc")
    if fc.params.get("out_features") != 2:
        print(f"warning: fc has {fc.params.get('out_features')} outputs after the fit",
              file=sys.stderr)
    _wait(app, lambda: doc.analysis is not None and doc.analysis.ok, timeout=60)

    # (shot) File > Load weights… with the imported file: what fits after the head changed
    def grab_box():
        box = next((w for w in QApplication.topLevelWidgets()
                    if isinstance(w, QMessageBox) and w.isVisible()), None)
        if box is None:
            QTimer.singleShot(50, grab_box)
            return
        box.adjustSize()
        shoot(box, "finetune-weights.png")
        box.accept()

    QTimer.singleShot(0, grab_box)
    steps = doc.undo_stack.count()
    window.load_weights_file(tmp / "proj" / "r18.weights.pt")  # the same file: nothing changes
    assert doc.undo_stack.count() == steps, "Load weights of the same file changed the design"

    # click fc, Edit > Freeze Layers Before This
    act("Click fc on the canvas")
    window.view.select_nodes([fc.id])
    window.view.reveal_node(fc.id)
    act("Edit > Freeze Layers Before This (Ctrl+Shift+B)")
    window.act_freeze_before.trigger()
    _wait(app, lambda: "trainable" in window.status_params.text(), timeout=60)
    window.view.fit_to_view()
    _settle(app, 0.3)
    shoot(window, "finetune-frozen.png")

    # Train (5 epochs instead of the default 10: not counted, only quicker)
    panel.settings.editor("epochs").setValue(5)  # a spin box: the form writes the document
    _wait(app, lambda: doc.project.training.get("epochs") == 5, timeout=5)
    act("Train (F5)")
    ended = []
    panel.run_finished.connect(ended.append)
    window.act_train.trigger()
    if not _wait(app, lambda: ended, timeout=600):
        print("warning: the run did not finish", file=sys.stderr)
    _settle(app, 0.5)
    panel.tabs.setCurrentWidget(panel.plots)
    _settle(app, 0.3)
    shoot(window, "finetune-trained.png")
    panel.tabs.setCurrentWidget(panel.log)  # what loaded and what started fresh
    panel.log.verticalScrollBar().setValue(0)
    _settle(app, 0.3)
    shoot(panel, "finetune-log.png")
    print(f"{actions} user actions from launch to a fine-tuned model; run: {ended}")
    window.shutdown()
    window.close()
    return 0 if ended == ["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
