"""Which checkpoint holds what: the same words in the ending line, History, Evaluation, Export."""

from __future__ import annotations

import math

from designer.engine.train import runs


def _run(tmp_path, history, stopped=None):
    runs.write_json(tmp_path / runs.CONFIG, {"training": {}})
    for r in history:
        runs.append_metrics(tmp_path, r)
    (tmp_path / runs.BEST).write_bytes(b"x")
    (tmp_path / runs.LAST).write_bytes(b"x")
    if stopped:
        runs.mark_stopped(tmp_path, *stopped)
    return tmp_path


def test_best_is_ranked_by_validation_loss_as_the_trainer_does(tmp_path):
    # a NaN validation loss ranks nowhere: it is not replaced by the (lower) training loss
    history = [{"epoch": 1, "train": {"loss": 0.6}, "val": {"loss": 0.5, "accuracy": 0.8}},
               {"epoch": 2, "train": {"loss": 0.1}, "val": {"loss": math.nan}}]
    assert runs.best_record(runs.jsonable(history))["epoch"] == 1
    best, last = runs.checkpoints(_run(tmp_path, history))
    assert best.label == "best.pt: epoch 1, lowest validation loss, accuracy 80.00%"
    assert last.label.startswith("last.pt: epoch 2, the last epoch")


def test_without_validation_data_best_is_by_training_loss(tmp_path):
    history = [{"epoch": 1, "train": {"loss": 0.6}, "val": {}},
               {"epoch": 2, "train": {"loss": 0.4}, "val": {}}]
    best, _ = runs.checkpoints(_run(tmp_path, history))
    assert best.epoch == 2 and "lowest training loss" in best.label


def test_a_run_stopped_mid_epoch_says_so_for_last_pt(tmp_path):
    history = [{"epoch": 1, "train": {"loss": 0.6}, "val": {"loss": 0.5, "accuracy": 0.8}}]
    _, last = runs.checkpoints(_run(tmp_path, history, stopped=(2, 17)))
    assert last.label == "last.pt: stopped in epoch 2 after batch 17"
    assert last.figure == ""  # no epoch's figure is its own
    # a resumed run writes its config afresh: the mark is gone with it
    runs.write_json(tmp_path / runs.CONFIG, {"training": {}})
    _, last = runs.checkpoints(tmp_path)
    assert last.label.startswith("last.pt: epoch 1, the last epoch")
