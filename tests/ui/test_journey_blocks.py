"""Journey (issue 22): blocks. Group layers of a CNN into a block from the Edit menu, give the
block parameters in its definition, repeat the use, let its first copy stride, export the code
from the Export dialog, then import the exported model.py and build each block class with other
arguments than the design's and run a forward."""

from __future__ import annotations

import importlib.util
import sys

import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from designer.engine.document.templates import load_template
from designer.ui.main_window import MainWindow
from designer.ui.training.export_dialog import ExportDialog


def _cnn_with_batchnorm():
    """CNN on CIFAR-10 with a BatchNorm2d between conv2 and relu2 (its size inferred)."""
    project = load_template("cnn-cifar10")
    project.name = "Journey CNN"
    g = project.graph
    conv2, relu2 = g.node_by_name("conv2"), g.node_by_name("relu2")
    (edge,) = [e for e in g.edges if e.src == conv2.id and e.dst == relu2.id]
    g.disconnect(edge)
    bn = g.add_node("BatchNorm2d", "bn2", {}, (conv2.pos[0], conv2.pos[1] + 60))
    g.connect(conv2.id, bn.id)
    g.connect(bn.id, relu2.id)
    return project


def _set_ref(qtbot, editor, name: str) -> None:
    editor.start_ref()  # what typing "=" into the field does
    qtbot.keyClicks(editor.ref_edit, name)
    qtbot.keyClick(editor.ref_edit, Qt.Key_Return)


def _table_cell(panel, row: int, col: int, text: str) -> None:
    panel.table.item(row, col).setText(text)  # what typing into the cell commits


def test_journey_blocks(qtbot, tmp_path, monkeypatch):
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    w.set_project(_cnn_with_batchnorm(), None)
    w.resize(1400, 900)
    w.show()
    doc, view, inspector = w.document, w.view, w.inspector
    g = doc.graph

    # group conv2 -> bn2 -> relu2 into a block named ConvUnit (Edit ▸ Group into Block…)
    monkeypatch.setattr(view, "ask_block_name", lambda default: "ConvUnit")
    view.select_nodes([g.node_by_name(n).id for n in ("conv2", "bn2", "relu2")])
    w.act_group.trigger()
    use = g.node_by_name("conv_unit").id
    assert g.nodes[use].params["block"] == "ConvUnit"
    assert len(view.canvas_scene.node_items[use].inputs) == 1  # its one Input, no extra port

    # in the definition: parameters planes and stride, conv2 takes them
    view.open_block(use)
    assert doc.network == "ConvUnit"
    panel = inspector.network_panel
    inspector.set_node(None)
    panel.add_button.click()
    _table_cell(panel, 0, 0, "planes")
    _table_cell(panel, 0, 2, "64")
    panel.add_button.click()
    _table_cell(panel, 1, 0, "stride")
    assert [(p.name, p.default) for p in doc.graph.block_params] == [("planes", 64),
                                                                      ("stride", 1)]
    view.select_nodes([doc.graph.node_by_name("conv2").id])
    _set_ref(qtbot, inspector.editors["out_channels"], "planes")
    _set_ref(qtbot, inspector.editors["stride"], "stride")
    conv2 = doc.graph.node_by_name("conv2")
    assert conv2.params["out_channels"] == {"ref": "planes"}
    assert conv2.params["stride"] == {"ref": "stride"}
    view.setFocus()
    qtbot.keyClick(view, Qt.Key_Escape)  # back to the model
    assert doc.graph is g

    # repeat the use twice; its first copy strides
    view.select_nodes([use])
    inspector.editors["repeat"].spin.setValue(2)
    inspector.first_toggle.click()
    inspector.first_checks["stride"].click()
    inspector.first_editors["stride"].spin.setValue(2)
    params = g.nodes[use].params
    assert params["repeat"] == 2 and params["first"] == {"stride": 2}
    analysis = doc.analyze_now()
    assert analysis.ok, [p.message for p in analysis.problems]
    assert analysis.infos[use].output_shape == (64, 8, 8)

    # File ▸ Export…: write the code into a folder
    w.act_export.trigger()
    dialog = next(d for d in QApplication.topLevelWidgets()
                  if isinstance(d, ExportDialog) and d.isVisible())
    qtbot.addWidget(dialog)
    out = tmp_path / "exported"
    dialog.folder_edit.setText(str(out))
    dialog.export_button.click()
    assert (out / "model.py").is_file(), dialog.status.text()
    assert "Wrote" in dialog.status.text()
    source = (out / "model.py").read_text(encoding="utf-8")
    assert "def __init__(self, in_channels, planes=64, stride=1):" in source
    assert "nn.BatchNorm2d(planes)" in source  # not the design's 64
    stride = inspector.first_editors["stride"]  # the First copy rows are readable
    qtbot.waitUntil(lambda: stride.height() >= stride.minimumSizeHint().height(), timeout=5000)
    w.grab().save(str(tmp_path / "journey.png"))
    dialog.close()

    # import the exported model.py and build its classes with other arguments
    spec = importlib.util.spec_from_file_location("journey_blocks_model", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    unit = module.ConvUnit(in_channels=5, planes=12, stride=1)
    assert unit(torch.randn(2, 5, 9, 9)).shape == (2, 12, 9, 9)
    unit = module.ConvUnit(in_channels=7, planes=24, stride=2)
    assert unit(torch.randn(1, 7, 10, 10)).shape == (1, 24, 5, 5)
    model = module.JourneyCNN()  # named after the project
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
