"""``designer train``: end to end on digits, errors, resuming, Ctrl-C, the progress bar."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from designer.cli import main
from designer.commands.train import ProgressPrinter
from designer.engine.document.project import Project, save_project
from designer.engine.train import training as T

from .helpers import chain


def digits_project(folder: Path, **training) -> Path:
    g = chain(("Flatten", {}), ("Linear", {"out_features": 32}), ("ReLU", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    p = Project(name="tiny digits", networks={"model": g}, dataset={"name": "digits"},
                training={"epochs": 3, "lr": 0.005, **training})
    return save_project(p, folder / "tiny.dnn.json", backup=False)


def test_train_digits_one_epoch_end_to_end(tmp_path, capsys):
    path = digits_project(tmp_path)
    rc = main(["train", str(path), "--epochs", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    runs_root = tmp_path / "runs" / "tiny"
    (run,) = list(runs_root.iterdir())  # the default policy: runs/<stem>/<timestamp>/
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt"} <= {p.name for p in run.iterdir()}
    assert "epoch 1/1" in err and "finished: 1 epoch(s)" in err and str(run) in err
    config = json.loads((run / "config.json").read_text())
    assert config["project"]["name"] == "tiny digits" and config["training"]["epochs"] == 1
    assert config["data"]["class_names"] == [str(i) for i in range(10)]
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_continues_the_run(tmp_path, capsys):
    path = digits_project(tmp_path)
    out = tmp_path / "myrun"
    assert main(["train", str(path), "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", str(path), "--epochs", "1", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(path), "--resume", str(out), "--epochs", "2"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert "resuming after epoch 1" in capsys.readouterr().err


@pytest.mark.parametrize("args, code, message", [
    (["--dataset", "imagenet"], 2, "neither a built-in dataset"),
    (["--dataset", "moons"], 1, "the dataset gives samples of 2 values but input1 is 1x8x8"),
    (["--lr", "100"], 2, "training.lr: expected a number from 1e-08 to 10"),
    (["--resume", "nowhere"], 2, "not a run folder"),
    (["--dataset", ""], 2, "--dataset: empty"),
    (["--epochs", "1", "--out", "file.txt"], 2, "is a file; --out needs a folder"),
])
def test_clear_errors_and_exit_codes(tmp_path, capsys, args, code, message):
    path = digits_project(tmp_path)
    (tmp_path / "file.txt").write_text("not a folder")
    args = [str(tmp_path / a) if a == "file.txt" else a for a in args]
    assert main(["train", str(path), *args]) == code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("config, message", [
    ("[]", "not a run's config"),
    ('{"training": "abc"}', "training: expected an object"),
])
def test_resume_from_a_damaged_run_config(tmp_path, capsys, config, message):
    """A hand-edited config.json is an error message, not an AttributeError traceback."""
    path = digits_project(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(config)
    (run / "last.pt").write_bytes(b"")
    assert main(["train", str(path), "--resume", str(run)]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_missing_dataset(tmp_path, capsys):
    assert main(["train", str(tmp_path / "none.dnn.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = digits_project(tmp_path)
    assert main(["train", str(path), "--dataset", str(tmp_path / "gone.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_keeps_checkpoints(tmp_path):
    path = digits_project(tmp_path, epochs=100000, batch_size=1)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "designer", "train", str(path), "--out",
                             str(out), "--device", "cpu"], stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists():  # wait for the first epoch's checkpoint
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert rc == 130, err
    assert "stopped in epoch" in err and "checkpoints kept" in err
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] >= 1 and "stopped_at_batch" in state
    assert (out / "best.pt").exists()


def test_progress_bar_draws_one_line_on_a_terminal():
    stream = io.StringIO()
    bar = ProgressPrinter(stream, tty=True)
    bar(T.Started("r", "cpu", 3, 0, 10, 640, 160, False))
    bar(T.Batch(1, 5, 10, 0.6931, {"accuracy": 0.5}, 1234.0, 65.0))
    bar(T.Epoch(1, 3, {"loss": 0.5, "accuracy": 0.8}, {"loss": 0.4, "accuracy": 0.85}, 0.001,
                1.0, 1200.0, True))
    text = stream.getvalue()
    assert "\repoch 1/3 [############------------] 5/10  loss 0.6931  acc  50.0%" in text
    assert "1,234 samples/s  ETA 1:05" in text
    assert "epoch 1/3  train loss 0.5000 acc 80.0%  val loss 0.4000 acc 85.0%" in text
    plain = io.StringIO()
    quiet = ProgressPrinter(plain, tty=False)
    quiet(T.Batch(1, 5, 10, 0.6931, {}, 1234.0, 65.0))
    assert plain.getvalue() == ""  # logs get epoch lines only


def test_an_undefined_r2_is_left_out_not_printed_as_nan_or_none():
    """R2 of one validation sample is undefined: the epoch line printed 'R2 nan', the final line
    'r2 None'."""
    stream = io.StringIO()
    bar = ProgressPrinter(stream, tty=False)
    bar(T.Epoch(1, 1, {"loss": 0.5}, {"loss": 0.4, "r2": float("nan")}, 0.1, 1.0, 10.0, True))
    bar(T.Finished(1, "completed", 1, 0.4, {"loss": 0.4, "r2": None}, None, 1.0))
    text = stream.getvalue()
    assert "val loss 0.4000  lr" in text and "nan" not in text
    assert "final: loss 0.4  r2 n/a" in text and "None" not in text


def test_dataset_override_keeps_the_image_normalisation_only_between_image_datasets():
    from designer.commands.train import _dataset_override

    cifar = {"kind": "torchvision", "name": "CIFAR10", "normalize": True,
             "normalization": "minus_one_one"}
    assert _dataset_override(cifar, "MNIST")["normalization"] == "minus_one_one"
    assert _dataset_override(cifar, "digits")["normalization"] == "minus_one_one"
    assert "normalization" not in _dataset_override(cifar, "moons")
