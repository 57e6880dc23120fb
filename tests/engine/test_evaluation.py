"""Evaluation numbers without Qt: the confusion matrix and per-class report against hand-counted
figures, predictions of a fixed model, scoring a real run's checkpoint (``evaluate_run``), the
refusal of a GAN run, and ``designer evaluate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from designer.cli import main
from designer.engine.train.evaluation import (
    EvaluationResult,
    class_report,
    confusion_matrix,
    evaluate_model,
    evaluate_run,
    mistakes_first,
    regression_metrics,
)
from designer.engine.train.runs import read_history

from .test_train_cli import digits_project


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A real run folder: ``designer train`` of a tiny MLP on digits for one epoch."""
    folder = tmp_path_factory.mktemp("digits")
    path = digits_project(folder)
    assert main(["train", str(path), "--epochs", "1", "--device", "cpu"]) == 0
    (run,) = list((folder / "runs" / "tiny").iterdir())
    return run


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_confusion_matrix_skips_labels_out_of_range():
    cm = confusion_matrix([0, 1, 5, -1], [0, 1, 1, 0], 2)
    assert cm.tolist() == [[1, 0], [0, 1]]


def test_class_report_against_hand_computed_figures():
    # from [[1, 1, 0], [0, 1, 0], [1, 0, 2]]: predicted (column sums) 2, 2, 2; true (row sums)
    # 2, 1, 3; hits 1, 1, 2
    rep = class_report(np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]]))
    assert rep["precision"] == pytest.approx([1 / 2, 1 / 2, 2 / 2])
    assert rep["recall"] == pytest.approx([1 / 2, 1 / 1, 2 / 3])
    # F1 = 2PR / (P + R): 0.5; 2 * 0.5 * 1 / 1.5 = 2/3; 2 * 1 * (2/3) / (5/3) = 0.8
    assert rep["f1"] == pytest.approx([0.5, 2 / 3, 0.8])
    assert rep["support"].tolist() == [2, 1, 3]


def test_class_report_is_zero_where_undefined():
    rep = class_report(np.array([[2, 0], [0, 0]]))  # class 1 never true, never predicted
    assert rep["precision"].tolist() == [1.0, 0.0]
    assert rep["recall"].tolist() == [1.0, 0.0]
    assert rep["f1"].tolist() == [1.0, 0.0]


def test_mistakes_first_keeps_order_within_each_group():
    order = mistakes_first(np.array([0, 1, 2, 3, 4]), np.array([0, 9, 2, 9, 4]), 4)
    assert order.tolist() == [1, 3, 0, 2]


def test_evaluate_model_of_a_fixed_classifier():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger coordinate
    inputs = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.0, 1.0]])
    targets = torch.tensor([0, 1, 1, 1])
    res = evaluate_model(model, inputs, targets, "classification", ["a", "b"], batch_size=3)
    assert res.y_pred.tolist() == [0, 1, 0, 1]
    assert res.accuracy == pytest.approx(0.75)
    assert res.confusion.tolist() == [[1, 0], [1, 2]]
    assert res.sample_index.tolist() == [2, 0, 1, 3]  # the mistake first
    assert res.confidence[0] == pytest.approx(torch.softmax(torch.tensor([2.0, 0.0]), 0)[0].item())
    assert model.training  # put back as it was


def test_regression_metrics_by_hand():
    res = EvaluationResult("regression", y_true=np.array([[1.0], [2.0], [3.0]]),
                           y_pred=np.array([[1.0], [2.0], [5.0]]))
    m = regression_metrics(res)
    assert m["mse"] == pytest.approx(4 / 3)
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / 2)  # SS_res 4, SS_tot 2
    assert regression_metrics(EvaluationResult("regression")) == {}


def test_evaluate_run_scores_best_pt_as_the_trainer_did(digits_run):
    result, model, ds, kind = evaluate_run(digits_run)
    assert kind == "best" and not model.training
    assert result.task == "classification" and result.class_names == [str(i) for i in range(10)]
    assert len(result.y_true) == ds.n_val and result.confusion.sum() == ds.n_val
    (record,) = read_history(digits_run)
    assert result.accuracy == pytest.approx(record["val"]["accuracy"], abs=1e-6)


def test_evaluate_run_falls_back_to_the_other_checkpoint(digits_run, tmp_path):
    run = shutil.copytree(digits_run, tmp_path / "copy")
    (run / "best.pt").unlink()
    _, _, _, kind = evaluate_run(run, checkpoint="best")
    assert kind == "last"
    with pytest.raises(ValueError, match="'best' or 'last'"):
        evaluate_run(run, checkpoint="first")


def gan_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"recipe": "gan", "training": {"epochs": 1}, "dataset": {"name": "digits"}}))
    return folder


def test_a_gan_run_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="gan run: A GAN run has no predictions to score"):
        evaluate_run(gan_run(tmp_path / "gan"))


def test_designer_evaluate_prints_accuracy_matrix_and_report(digits_run, capsys):
    assert main(["evaluate", str(digits_run)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].startswith("Model: best.pt: epoch 1, lowest validation loss, accuracy ")
    assert "Accuracy: " in out and "Confusion matrix (rows: true class" in out
    header = next(line for line in lines if line.startswith("true \\ pred"))
    assert header.split()[3:] == [str(i) for i in range(10)]
    assert next(line for line in lines if line.startswith("class")).split() == [
        "class", "precision", "recall", "F1", "support"]
    assert any(line.startswith("macro average") for line in lines)
    result, *_ = evaluate_run(digits_run)
    assert f"Accuracy: {result.accuracy:.2%}" in out


def test_designer_evaluate_last_and_errors(digits_run, tmp_path, capsys):
    assert main(["evaluate", str(digits_run), "--checkpoint", "last"]) == 0
    assert "Model: last.pt: epoch 1, the last epoch" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run folder" in err and len(err.splitlines()) == 1
    assert main(["evaluate", str(gan_run(tmp_path / "gan"))]) == 2
    assert "no predictions to score" in capsys.readouterr().err


def test_designer_evaluate_of_a_regression_run(tmp_path, capsys):
    from designer.engine.document.project import Project
    from designer.engine.model.build import build_model
    from designer.engine.train.data import load_dataset
    from designer.engine.train.training import Trainer

    from .helpers import chain

    data = {"kind": "synthetic", "name": "sine", "n_samples": 200}
    ds = load_dataset(data)
    g = chain(("Linear", {"out_features": 8}), ("ReLU", {}), ("Linear", {"out_features": 1}),
              shape=tuple(ds.sample_shape))
    project = Project(name="reg", networks={"model": g}, dataset=data, training={"epochs": 1})
    result = Trainer(build_model(g, seed=0), ds, {"epochs": 1}, run_dir=tmp_path / "run",
                     extra_config={"dataset": data, "project": project.to_dict()}).run()
    assert result.status == "finished", result.message
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "MSE: " in out and "MAE: " in out and "R²: " in out and "Accuracy" not in out
