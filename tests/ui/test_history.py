"""Run history: runs read from real run folders, overlays, reopening settings, deleting, and
evaluating a past run's checkpoint."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from designer.engine.document.project import Project, project_from_dict
from designer.engine.train.run_history import delete_run, flat_record, list_runs, read_run
from designer.ui.training.history import HistoryPanel, run_curves
from designer.ui.training.worker import Evaluated, EvaluateRunWorker

MOONS = {"kind": "synthetic", "name": "moons", "n_samples": 200, "noise": 0.1}


def moons_project() -> Project:
    return project_from_dict({
        "format_version": 1, "name": "moons",
        "networks": [{"name": "model", "nodes": [
            {"id": "i", "type": "Input", "name": "point", "params": {"shape": [2]}},
            {"id": "l1", "type": "Linear", "name": "fc1", "params": {"out_features": 16}},
            {"id": "r", "type": "ReLU", "name": "relu1", "params": {}},
            {"id": "l2", "type": "Linear", "name": "fc2", "params": {"out_features": 2}},
            {"id": "o", "type": "Output", "name": "out", "params": {}}],
            "edges": [{"src": "i", "dst": "l1"}, {"src": "l1", "dst": "r"},
                      {"src": "r", "dst": "l2"}, {"src": "l2", "dst": "o"}]}],
        "dataset": MOONS, "training": {"epochs": 2, "batch_size": 32, "lr": 0.01}})


def train_run(folder: Path, lr: float, epochs: int = 2) -> Path:
    from designer.engine.model.build import build_model
    from designer.engine.train.data import load_dataset
    from designer.engine.train.training import Trainer

    project = moons_project()
    training = {**project.training, "lr": lr, "epochs": epochs}
    result = Trainer(build_model(project.graph, seed=0), load_dataset(MOONS), training,
                     run_dir=folder, extra_config={"dataset": MOONS,
                                                   "project": project.to_dict()}).run()
    assert result.status == "finished", result.message
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train_run(root / "20260101-100000", 0.01)
    train_run(root / "20260102-110000", 0.05, epochs=3)
    (root / "not-a-run").mkdir()
    return root


def test_runs_are_read_from_their_folders(root):
    runs = list_runs(root)
    assert [r.path.name for r in runs] == ["20260102-110000", "20260101-100000"]  # newest first
    new = runs[0]
    assert new.started.year == 2026 and new.started.hour == 11
    assert len(new.history) == 3
    # best.pt holds the epoch with the lowest validation loss, last.pt the last epoch
    best_epoch = min(new.history, key=lambda r: r["val_loss"])["epoch"]
    best, last = new.checkpoint("best"), new.checkpoint("last")
    assert best.epoch == best_epoch and best.path.name == "best.pt"
    assert last.epoch == 3 and last.path.name == "last.pt"
    acc = {r["epoch"]: r["val_accuracy"] for r in new.history}
    assert best.figure == f"accuracy {acc[best_epoch]:.2%}"
    assert new.final == f"accuracy {acc[3]:.2%}"
    assert best.label.startswith(f"best.pt: epoch {best_epoch}, lowest validation loss")
    assert "moons" in new.summary() and "lr 0.05" in new.summary()
    assert new.duration_s is not None and new.duration_s > 0
    curves = run_curves(new)
    assert curves.epochs == [1.0, 2.0, 3.0] and len(curves.val_metric) == 3
    assert read_run(root / "not-a-run") is None


def test_flat_record():
    assert flat_record({"epoch": 1, "train": {"loss": 1.0}, "val": {"accuracy": 0.5}}) == {
        "epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5}


def test_panel_lists_overlays_reopens(qtbot, root):
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    panel.set_root(root)
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 4).text() == "3"  # epochs
    run = panel.runs[0]
    assert panel.table.item(0, 2).text() == (f"epoch {run.checkpoint('best').epoch}, "
                                             f"{run.checkpoint('best').figure}")  # best.pt
    assert panel.table.item(0, 3).text() == run.final and run.final.startswith("accuracy")
    assert panel.table.item(0, 6).text() == "complete"
    # the duration is the run's wall time, the same clock as the trainer's Finished figure
    assert run.duration_s == run.history[-1]["elapsed_s"]
    seen = []
    panel.overlay_changed.connect(seen.append)  # emitted in the GUI thread
    panel.select([0, 1])
    curves = seen[-1]
    assert len(curves) == 2 and not any(math.isnan(v) for v in curves[0].val_loss)
    assert not panel.reopen_button.isEnabled()  # one run at a time
    panel.select([1])
    with qtbot.waitSignal(panel.reopen_requested) as blocker:
        panel.reopen_button.click()
    dataset, training = blocker.args
    assert dataset["name"] == "moons" and training["lr"] == 0.01


def test_delete_only_inside_the_root(qtbot, tmp_path):
    root = tmp_path / "runs"
    train_run(root / "20260103-120000", 0.01, epochs=1)
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    panel.confirm_delete = False
    panel.set_root(root)
    run = panel.runs[0]
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    with pytest.raises(ValueError):
        delete_run(run, elsewhere)
    assert run.path.exists()
    panel.select([0])
    panel.delete_button.click()
    assert not run.path.exists()
    assert panel.table.rowCount() == 0


def test_evaluate_a_past_run(qtbot, root):
    worker = EvaluateRunWorker(root / "20260101-100000", None)
    got = []
    worker.event.connect(_Collector.instance(got).on_event)
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.start()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    ev = got[0]
    assert isinstance(ev, Evaluated), getattr(ev, "message", ev)
    assert ev.result.confusion.shape == (2, 2)
    assert ev.result.confusion.sum() == 40  # 20% of 200


class _Collector:
    """A GUI-thread QObject slot (a plain function would run in the worker thread)."""

    _keep: list = []  # noqa: RUF012 - keeps the receivers alive for the test session

    @classmethod
    def instance(cls, sink):
        from PySide6.QtCore import QObject, Slot

        class C(QObject):
            @Slot(object)
            def on_event(self, ev):
                sink.append(ev)

        c = C()
        cls._keep.append(c)
        return c


def test_missing_checkpoint_is_a_message(qtbot, tmp_path, root):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(root / "20260101-100000", broken)
    for name in ("best.pt", "last.pt"):
        os.remove(broken / name)
    worker = EvaluateRunWorker(broken, None)
    got = []
    worker.event.connect(_Collector.instance(got).on_event)
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.start()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert "no such checkpoint" in got[0].message
