"""Screenshots of importing a model in the window (README "Import"):

    .venv/bin/python docs/make_import_screenshots.py

``import-dialog-report.png``: File > Import model… on a model torch.fx cannot trace, with its
report; ``import-resnet18.png``: torchvision's resnet18 imported (weights=None, nothing
downloaded) as a new design; ``frozen-block.png``: its stem and first stages frozen, the lock on
each and the inspector's "trainable" checkbox; ``import-googlenet-report.png`` and
``import-googlenet-aux.png``: googlenet with its aux heads, imported as auxiliary outputs;
``import-regnet-attr.png``: a RegNet stage whose blocks keep the attribute ``block1-0``.
Throw-away settings, offscreen.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from PySide6.QtCore import QSettings
from screenshots import offscreen_screen  # a 1440x900 offscreen screen unless told otherwise

BRANCHY = '''import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv(x)
        if x.mean() > 0:  # data-dependent control flow: torch.fx cannot trace this
            x = x.relu()
        return self.head(x.mean((2, 3)))
'''


def _wait(app, done, timeout: float = 120.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        app.processEvents()
        if done():
            return True
        time.sleep(0.01)
    return False


def main() -> int:
    from designer.ui.app import make_app
    from designer.ui.main_window import MainWindow

    offscreen_screen(1440, 900)
    app = make_app()
    out = ROOT / "docs" / "screenshots"
    tmp = Path(tempfile.mkdtemp(prefix="designer-import-shots-"))
    window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
                        recovery_dir=tmp / "recovery")
    window.resize(1440, 900)
    window.show()

    # 1. the dialog with the report of a failing import
    model_file = tmp / "gate.py"
    model_file.write_text(BRANCHY, encoding="utf-8")
    dialog = window.make_import_dialog()
    dialog.resize(760, 560)
    dialog.show()
    dialog.spec.setEditText(f"{model_file}:Gate")
    dialog.shape.setText("3,32,32")
    dialog.start()
    _wait(app, lambda: dialog.result_ is not None)
    _wait(app, lambda: False, 0.3)
    dialog.grab().save(str(out / "import-dialog-report.png"))

    # 2. resnet18 imported as a new design
    dialog.spec.setEditText("torchvision:resnet18")
    dialog.shape.setText("3,224,224")
    dialog.start()
    _wait(app, lambda: dialog.result_ is not None and dialog.result_.project is not None)
    dialog.close()
    doc = window.document
    _wait(app, lambda: doc.analysis is not None)
    view = window.view
    view.fit_to_view()
    use = doc.graph.node_by_name("layer2")
    view.select_nodes([use.id])
    _wait(app, lambda: False, 0.4)
    window.grab().save(str(out / "import-resnet18.png"))

    # 3. the stem and layer1..layer2 frozen: a lock on each, "trainable" unticked
    for name in ("conv1", "bn1", "layer1", "layer2"):
        doc.set_frozen(doc.graph.node_by_name(name).id, True)
    view.resetTransform()
    view.scale(0.9, 0.9)
    rect = view.canvas_scene.nodes_rect()
    view.centerOn(rect.left() + view.viewport().width() / 2 / 0.9 - 40, rect.center().y())
    view.select_nodes([use.id])
    window.inspector.set_node(use.id)
    _wait(app, lambda: False, 0.4)
    window.grab().save(str(out / "frozen-block.png"))

    # 4. googlenet with its aux heads: the report names the auxiliary outputs; on the canvas
    # the two aux Outputs carry aux_weight=0.3
    dialog = window.make_import_dialog()
    dialog.resize(760, 560)
    dialog.show()
    dialog.spec.setEditText("torchvision:googlenet")
    dialog.shape.setText("3,224,224")
    dialog.start()
    _wait(app, lambda: dialog.result_ is not None and dialog.result_.project is not None)
    _wait(app, lambda: False, 0.3)
    dialog.grab().save(str(out / "import-googlenet-report.png"))
    dialog.close()
    doc = window.document
    _wait(app, lambda: doc.analysis is not None)
    aux = [n for n in doc.graph.outputs() if n.params["aux_weight"] > 0]
    view.resetTransform()
    view.scale(0.8, 0.8)
    view.centerOn(window.view.scene().node_items[aux[-1].id])
    view.select_nodes([aux[-1].id])
    window.inspector.set_node(aux[-1].id)
    _wait(app, lambda: False, 0.4)
    window.grab().save(str(out / "import-googlenet-aux.png"))

    # 5. regnet: a stage's blocks keep torchvision's attribute block1-0 apart from their name
    dialog = window.make_import_dialog()
    dialog.show()
    dialog.spec.setEditText("torchvision:regnet_y_400mf")
    dialog.shape.setText("3,224,224")
    dialog.start()
    _wait(app, lambda: dialog.result_ is not None and dialog.result_.project is not None)
    dialog.close()
    doc = window.document
    _wait(app, lambda: doc.analysis is not None)
    doc.open_block(doc.graph.node_by_name("trunk_output").id)
    _wait(app, lambda: doc.analysis is not None)
    doc.open_block(doc.graph.node_by_name("block1").id)
    _wait(app, lambda: doc.analysis is not None)
    view.fit_to_view()
    node = doc.graph.node_by_name("block1_0")
    view.select_nodes([node.id])
    window.inspector.set_node(node.id)
    _wait(app, lambda: False, 0.4)
    window.grab().save(str(out / "import-regnet-attr.png"))
    for name in ("import-dialog-report", "import-resnet18", "frozen-block",
                 "import-googlenet-report", "import-googlenet-aux", "import-regnet-attr"):
        print(f"wrote {out / name}.png")
    window.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
