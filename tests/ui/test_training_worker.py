"""The training worker: a frozen snapshot, events delivered to a GUI-thread slot, pause, stop and
failures that become events."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThread, Slot

from designer.engine.document.project import load_project
from designer.engine.train.training import Batch, Epoch, Failed, Finished, Paused, Started, Stopped
from designer.ui.training.worker import DatasetReady, Evaluated, RunSnapshot, TrainingWorker

TEMPLATE = Path(__file__).resolve().parents[2] / "designer" / "templates" / "mlp-digits.dnn.json"
DIGITS = {"kind": "digits"}


class Receiver(QObject):
    """Lives in the GUI thread; records each event and the thread its slot ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.events = []
        self.threads = set()

    @Slot(object)
    def on_event(self, ev) -> None:
        self.events.append(ev)
        self.threads.add(QThread.currentThread())

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def snapshot(graph=None, run_dir=None, **training) -> RunSnapshot:
    project = load_project(TEMPLATE)
    g = (graph or project.graph).copy()
    return RunSnapshot(g, DIGITS, {"epochs": 1, "batch_size": 64, **training}, None, run_dir, {})


def run(qtbot, worker, timeout=60000) -> Receiver:
    rec = Receiver()
    worker.event.connect(rec.on_event)
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        worker.start()
    qtbot.wait(20)  # deliver the queued events
    return rec


def test_events_arrive_in_the_gui_thread_in_order(qtbot, tmp_path):
    rec = run(qtbot, TrainingWorker(snapshot(run_dir=tmp_path / "run", epochs=2)))
    assert rec.threads == {QThread.currentThread()}  # the GUI thread, not the worker's
    kinds = [type(e) for e in rec.events if not isinstance(e, Batch)]
    assert kinds[0] is DatasetReady and kinds[1] is Started
    assert rec.of(Epoch)[-1].epoch == 2
    assert kinds.index(Finished) < kinds.index(Evaluated)
    assert rec.of(Batch), "batch events expected"
    ev = rec.of(Evaluated)[0]
    assert ev.result.confusion.shape == (10, 10)
    assert not ev.model.training
    assert (tmp_path / "run" / "best.pt").exists()


def test_a_given_dataset_is_not_loaded_again(qtbot):
    from designer.engine.train.data import load_dataset

    ds = load_dataset(DIGITS)
    rec = run(qtbot, TrainingWorker(snapshot(), ds, evaluate=False))
    assert not rec.of(DatasetReady)
    assert rec.of(Finished) and not rec.of(Evaluated)


def test_the_snapshot_is_frozen(qtbot):
    project = load_project(TEMPLATE)
    snap = snapshot(project.graph)
    fc1 = project.graph.node_by_name("fc1")
    project.graph.set_params(fc1.id, {"out_features": 5})
    worker = TrainingWorker(snap)
    run(qtbot, worker)
    assert worker.trainer.recipe.model.fc1.out_features == 64


def test_stop_before_training_starts(qtbot):
    worker = TrainingWorker(snapshot())
    worker.stop()
    rec = run(qtbot, worker)
    assert rec.of(Stopped) and not rec.of(Started) and not rec.of(Evaluated)


def test_pause_holds_the_run_until_resume(qtbot):
    worker = TrainingWorker(snapshot(batch_size=4), evaluate=False)
    worker.pause()  # before the trainer exists: handed on when it is made
    rec = Receiver()
    worker.event.connect(rec.on_event)
    worker.start()
    qtbot.waitUntil(lambda: bool(rec.of(Paused)), timeout=30000)
    assert rec.of(Paused)[0].batch == 0 and not rec.of(Batch)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.resume()
    qtbot.wait(20)
    assert rec.of(Finished)


def test_design_errors_and_misfits_become_failed_events(qtbot):
    project = load_project(TEMPLATE)
    g = project.graph.copy()
    g.set_params(g.inputs()[0].id, {"shape": [1, 28, 28]})
    rec = run(qtbot, TrainingWorker(snapshot(g)))
    failed = rec.of(Failed)
    assert len(failed) == 1 and "does not fit the dataset" in failed[0].message
    assert "Make the design fit" in failed[0].message

    g = project.graph.copy()
    g.disconnect(g.in_edges(g.node_by_name("fc2").id)[0])
    rec = run(qtbot, TrainingWorker(snapshot(g)))
    assert "error" in rec.of(Failed)[0].message and not rec.of(Started)


def test_a_nan_loss_is_reported_with_a_hint(qtbot, monkeypatch):
    from designer.engine.train import training

    original = training.SupervisedRecipe._loss

    def diverging(self, x, y):
        loss, out = original(self, x, y)
        return loss * float("nan"), out

    monkeypatch.setattr(training.SupervisedRecipe, "_loss", diverging)
    rec = run(qtbot, TrainingWorker(snapshot()))
    failed = rec.of(Failed)
    assert len(failed) == 1 and not rec.of(Evaluated)
    assert "NaN" in failed[0].message and "learning rate" in failed[0].message
    assert failed[0].epoch == 1


def test_the_worker_trains_through_the_service_the_cli_uses(qtbot, tmp_path, monkeypatch):
    """The window's run and ``designer train`` share designer.engine.services.train_project."""
    from designer.engine.services import train_project

    calls = []
    real = train_project.prepare_trainer

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_project, "prepare_trainer", recording)
    rec = run(qtbot, TrainingWorker(snapshot(run_dir=tmp_path / "run"), evaluate=False))
    assert len(calls) == 1 and calls[0]["run_dir"] == tmp_path / "run"
    assert rec.of(Finished) and (tmp_path / "run" / "last.pt").is_file()
