"""Journey: transfer learning, as a person does it in the window (issue 22).

File > Import model… torchvision's resnet18 with its weights (weights=None: nothing is
downloaded) into a project folder, an image folder of two classes, "Make the design fit" (the
head becomes 512 -> 2), freeze everything but the head, Train. The run loads every tensor that
fits (the log and the run's config.json list them), starts the head fresh, leaves the frozen
tensors bit for bit as they were and moves the head. The saved project then trains the same way
with ``designer train`` from another working directory and with the exported train.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QScrollArea

from designer.engine.document.project import load_project
from designer.engine.model.build import build_model
from designer.ui.import_dialog import ImportDialog
from designer.ui.training.export_dialog import ExportDialog
from tests.engine.helpers import DRIVER, script_env
from tests.ui.test_main_window import Dialogs, _wait_analysis
from tests.ui.test_weights_ui import set_setting

pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[2]
HEAD = ("fc.weight", "fc.bias")


@pytest.fixture
def window(make_main_window, monkeypatch):
    Dialogs(monkeypatch)
    return make_main_window((1400, 900))


def _image_folder(root: Path) -> Path:
    """Two classes of 16x16 RGB PNGs: reddish and bluish, with noise."""
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            px = torch.rand(16, 16, 3, generator=g) * 0.4
            px[..., 0 if c == 0 else 2] += 0.6
            Image.fromarray((px.clamp(0, 1) * 255).to(torch.uint8).numpy()).save(
                root / name / f"{i}.png")
    return root


def _unchanged(state: dict, start: dict) -> list[str]:
    """The frozen tensors (all but the head) that differ from ``start``; [] when none."""
    return [k for k, v in start.items() if k not in HEAD and not torch.equal(state[k], v)]


def test_fine_tune_an_imported_model_in_the_window_the_cli_and_train_py(
        qtbot, window, tmp_path, monkeypatch):
    w = window
    data = _image_folder(tmp_path / "data")
    (tmp_path / "proj").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # never the project's folder

    # File > Import model…, "Import its weights", saved as proj/r18.dnn.json
    seen = []

    def fill_in_the_dialog():
        (dialog,) = [d for d in QApplication.topLevelWidgets()
                     if isinstance(d, ImportDialog) and d.isVisible()]
        seen.append(dialog)
        QTimer.singleShot(180000, dialog.reject)  # never hang the run on a failure
        dialog.spec.setEditText("torchvision:resnet18")
        dialog.shape.setText("3,16,16")
        dialog.weights.setChecked(True)
        dialog.project_file.setText(str(tmp_path / "proj" / "r18.dnn.json"))
        qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
        close_when_done()

    def close_when_done():
        if seen[0].result_ is None:
            QTimer.singleShot(50, close_when_done)
        else:
            seen[0].buttons.button(QDialogButtonBox.Close).click()

    QTimer.singleShot(0, fill_in_the_dialog)
    assert w.act_import.isEnabled()
    w.act_import.trigger()  # the dialog's exec() returns once it is closed
    (dialog,) = seen
    assert dialog.result_.report.ok, dialog.report.toPlainText()
    project_file = tmp_path / "proj" / "r18.dnn.json"
    weights_file = tmp_path / "proj" / "r18.weights.pt"
    assert w.document.path == project_file and weights_file.is_file()
    _wait_analysis(qtbot, w, timeout=60000)
    start = torch.load(weights_file, weights_only=True)

    # the dataset chooser: an image folder of two classes, then "Make the design fit"
    panel = w.training.panel
    chooser = panel.chooser
    chooser.kind_combo.setCurrentIndex(chooser.kind_combo.findData("image_folder"))
    chooser.path_edit.setText(str(data))
    chooser.path_edit.editingFinished.emit()
    qtbot.mouseClick(chooser.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: chooser.fix_button.isVisible(), timeout=30000)
    qtbot.mouseClick(chooser.fix_button, Qt.LeftButton)
    fc = w.document.graph.node_by_name("fc")
    assert fc.params["out_features"] == 2

    # Freeze all but the head in one action: click the head, Edit > Freeze Layers Before This
    scene = w.view.scene()
    scene.clearSelection()
    item = scene.node_items[fc.id]
    qtbot.mouseClick(w.view.viewport(), Qt.LeftButton,
                     pos=w.view.mapFromScene(item.sceneBoundingRect().center()))
    assert w.view.selected_node_ids() == [fc.id]
    steps = w.document.undo_stack.count()
    assert w.act_freeze_before.isEnabled()
    w.act_freeze_before.trigger()
    assert w.document.undo_stack.count() == steps + 1  # one undo step
    head = sum(t.numel() for k, t in build_model(w.document.graph).state_dict().items()
               if k.startswith("fc."))
    qtbot.waitUntil(lambda: f"({head:,} trainable)" in w.status_params.text(), timeout=30000)
    frozen = [n.name for n in w.document.graph.nodes.values() if n.frozen]
    assert {"conv1", "bn1", "layer1", "layer4"} <= set(frozen) and "fc" not in frozen

    # settings in the Training view's form; BatchNorm of frozen layers keeps its statistics
    for key, value in (("epochs", 1), ("batch_size", 8), ("freeze_bn_eval", True),
                       ("lr", 0.01)):
        set_setting(qtbot, w, key, value)
    assert w.save()

    # Train: every fitting tensor loads, the head starts fresh, frozen tensors stay
    with qtbot.waitSignal(panel.run_finished, timeout=120000) as ended:
        w.act_train.trigger()
    log = panel.log.toPlainText()
    assert ended.args == ["finished"], log[-3000:] + panel.message.text()
    assert "initial weights r18.weights.pt: loaded 120 of 122 tensors" in log
    assert ("started fresh, another shape in the file (2): fc.bias (the file [1000], the design "
            "[2]), fc.weight (the file [1000, 512], the design [2, 512])") in log
    assert "loaded (120): conv1, bn1 (5), layer1 (24), layer2 (30), layer3 (30), layer4 (30)" \
        in log
    window_record = json.loads((panel.run_dir / "config.json").read_text())["init_weights"]
    assert window_record["loaded"] == [k for k in start if k not in HEAD]
    assert sorted(window_record["fresh"]["shape_differs"]) == ["fc.bias", "fc.weight"]
    trained = torch.load(panel.run_dir / "last.pt", weights_only=True)["model"]
    assert _unchanged(trained, start) == []
    seed = load_project(project_file).training.get("seed", 0)
    fresh = build_model(load_project(project_file).networks["model"], seed=seed).state_dict()
    assert not torch.equal(trained["fc.weight"], fresh["fc.weight"])  # the head learned
    assert math.isfinite(json.loads((panel.run_dir / "metrics.jsonl").read_text()
                                    .splitlines()[-1])["train"]["loss"])

    # the same project with designer train, run from another folder
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "designer", "train", str(project_file),
                           "--out", "cli-run", "--device", "cpu"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "note: initial weights r18.weights.pt: loaded 120 of 122 tensors" in done.stderr
    assert "note: started fresh, another shape in the file (2): fc.bias" in done.stderr
    cli_record = json.loads((elsewhere / "cli-run" / "config.json").read_text())["init_weights"]
    assert cli_record == window_record
    cli = torch.load(elsewhere / "cli-run" / "last.pt", weights_only=True)["model"]
    assert _unchanged(cli, start) == []

    # File > Export… train.py, run where designer cannot be imported, from its own folder
    w.act_export.trigger()
    (export,) = [d for d in panel.findChildren(ExportDialog) if d.isVisible()]
    export.weights_check.setChecked(False)
    export.folder_edit.setText(str(tmp_path / "export"))
    qtbot.mouseClick(export.export_button, Qt.LeftButton)
    assert "train.py" in export.status.text(), export.status.text()
    export.close()
    out = tmp_path / "export"
    (out / "driver.py").write_text(DRIVER, encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "driver.py", "--epochs", "1", "--device", "cpu",
                           "--out", "ck", "--log-interval", "1000"], cwd=out, env=script_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "r18.weights.pt: loaded 120 of 122 tensors" in done.stdout
    assert ("started fresh, another shape in the file: fc.weight (the file [1000, 512], the "
            "model [2, 512])") in done.stdout
    script = torch.load(out / "trained.pt", weights_only=True)
    assert _unchanged(script, start) == []
    recorded = torch.load(out / "ck" / "last.pt", weights_only=True)["config"]["init_weights"]
    assert recorded["loaded"] == window_record["loaded"]
    assert recorded["fresh"] == window_record["fresh"]


def test_enter_in_the_dataset_path_loads_and_checks_it(qtbot, window, tmp_path):
    """Typing the image folder's path and pressing Enter loads it, checks the fit and scrolls the
    verdict and the fix button into view (before, Enter did nothing visible: the user had to
    scroll to "Load and check", and after it to the verdict)."""
    data = _image_folder(tmp_path / "data")
    chooser = window.training.panel.chooser
    window.resize(1280, 800)  # a laptop: the verdict lands below the fold of the form
    window.training.show()
    chooser.kind_combo.setCurrentIndex(chooser.kind_combo.findData("image_folder"))
    loads = chooser.loads_started
    qtbot.mouseClick(chooser.path_edit, Qt.LeftButton)
    qtbot.keyClicks(chooser.path_edit, str(data))
    qtbot.keyClick(chooser.path_edit, Qt.Key_Return)
    assert chooser.loads_started == loads + 1
    qtbot.waitUntil(lambda: "2 classes" in chooser.info.text(), timeout=30000)
    assert "blue, red" in chooser.info.text()
    assert "3x16x16" in chooser.fit_label.text()  # checked against the design at once
    assert chooser.fix_button.isVisible()
    # ... and scrolled into view, where the user looks for it
    area = chooser.parentWidget()
    while not isinstance(area, QScrollArea):  # the Training tab's form
        area = area.parentWidget()

    def in_view(widget) -> bool:
        top = widget.mapTo(area.viewport(), QPoint(0, 0)).y()
        return top >= 0 and top + widget.height() <= area.viewport().height()

    qtbot.waitUntil(lambda: in_view(chooser.fix_button), timeout=5000)
