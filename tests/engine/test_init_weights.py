"""Fine-tuning from a weights file (training.init_weights): every tensor whose name and shape fit
loads, the others start fresh and the run says which (its notes and config.json); a file that
fits nothing, or less than training.init_weights_min_fit of the parameters, is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from designer.engine.document.project import load_project, save_project
from designer.engine.interop.importing import import_model, save_weights
from designer.engine.model.build import build_model
from designer.engine.model.weights import match_weights
from designer.engine.train.data import load_dataset
from designer.engine.train.recipes import RecipeError, prepare_run
from designer.engine.train.training import Trainer

from .helpers import DigitsNet


def _project(tmp_path, file_state, **training):
    """The digits CNN imported as a design, saved with ``file_state`` as its initial weights."""
    project, _ = import_model(DigitsNet().eval(), (1, 8, 8), name="digits-net")
    save_weights(file_state, tmp_path / "w.pt")
    project.dataset = {"kind": "digits"}
    project.training = {"epochs": 1, "batch_size": 128, "seed": 5, "init_weights": "w.pt",
                        **training}
    return load_project(save_project(project, tmp_path / "p.dnn.json", backup=False))


def test_weights_that_fit_in_part_load_and_the_rest_start_fresh(tmp_path):
    torch.manual_seed(0)
    source = DigitsNet()  # a pretrained model with another head: 3 classes, not 10
    source.head = torch.nn.Linear(128, 3)
    state = {**source.state_dict(), "extra.weight": torch.ones(2)}
    # conv 80 + BatchNorm 16 of the design's 1386 parameters fit: allowed down to 5%
    project = _project(tmp_path, state, init_weights_min_fit=0.05)
    ds = load_dataset(project.dataset, tmp_path)
    _, recipe = prepare_run(project, ds)
    got = recipe.model.state_dict()
    for k, v in source.state_dict().items():
        if k.startswith("features."):
            assert torch.equal(got[k], v), k  # loaded from the file
    fresh = build_model(project.networks["model"], seed=5).state_dict()
    assert torch.equal(got["head.weight"], fresh["head.weight"])  # the design's own start
    notes = "\n".join(recipe.notes)
    assert notes.startswith("initial weights w.pt: loaded 7 of 9 tensors")
    assert "started fresh, another shape in the file (2): head.bias (the file [3], the design " \
           "[10]), head.weight (the file [3, 128], the design [10, 128])" in notes
    assert "in the file but not in the design, not used (1): extra.weight" in notes

    run = tmp_path / "run"
    result = Trainer(None, ds, project.training, recipe=recipe, run_dir=run).run()
    assert result.status == "finished", result.message
    record = json.loads((run / "config.json").read_text())["init_weights"]
    assert record["loaded"] == [k for k in source.state_dict() if k.startswith("features.")]
    assert record["fresh"] == {"shape_differs": {"head.bias": {"file": [3], "design": [10]},
                                                 "head.weight": {"file": [3, 128],
                                                                 "design": [10, 128]}},
                               "not_in_file": []}
    assert record["unused_from_file"] == ["extra.weight"]
    assert record["parameters"] == 80 + 16 + 1290 and record["loaded_parameters"] == 96
    assert record["fraction"] == round(96 / 1386, 6) and record["min_fit"] == 0.05


@pytest.mark.parametrize("min_fit, ok", [(0.5, False), (0.05, True)])
def test_a_file_filling_less_than_min_fit_is_refused(tmp_path, min_fit, ok):
    source = DigitsNet()
    source.head = torch.nn.Linear(128, 3)
    project = _project(tmp_path, source.state_dict(), init_weights_min_fit=min_fit)
    ds = load_dataset(project.dataset, tmp_path)
    if ok:
        _, recipe = prepare_run(project, ds)
        assert "6.93%" in recipe.notes[0]
        return
    with pytest.raises(RecipeError) as err:
        prepare_run(project, ds)
    text = str(err.value)
    assert "training.init_weights: " in text and "w.pt fills only 6.93% of the design's " \
           "parameters (7 tensors fit), less than training.init_weights_min_fit (50%)" in text
    assert "head.bias, head.weight" in text


def test_a_file_that_fits_nothing_is_refused_whatever_min_fit(tmp_path):
    project = _project(tmp_path, {"model.head.weight": torch.zeros(10, 128)},
                       init_weights_min_fit=0.0)
    with pytest.raises(RecipeError, match=r"w.pt fits nothing in the design: no tensor matches "
                                          r"by name and shape \(the file has model.head.weight"):
        prepare_run(project, load_dataset(project.dataset, tmp_path))


def test_match_counts_parameters_not_buffers():
    model = DigitsNet()
    state = {k: v for k, v in model.state_dict().items() if "running" in k or "batches" in k}
    fit = match_weights(model, state)
    assert fit.loaded_params == 0 and fit.fraction == 0 and len(fit.loaded) == 3
    fit = match_weights(model, model.state_dict())
    assert fit.ok and fit.fraction == 1 and fit.fresh == []


def test_train_py_loads_what_the_designer_loads_and_refuses_the_same(tmp_path):
    """The exported train.py's load_init_weights (the source it is written with, run here) agrees
    with the designer's record and refuses the same files."""
    import os

    from designer.engine.model.weights import load_fitting
    from designer.engine.train.recipes.supervised.script import INIT_WEIGHTS

    namespace = {"os": os, "torch": torch}
    exec(compile(INIT_WEIGHTS, "train.py", "exec"), namespace)  # noqa: S102 - our own code
    script_load = namespace["load_init_weights"]
    source = DigitsNet()
    source.head = torch.nn.Linear(128, 3)
    path = tmp_path / "w.pt"
    save_weights({**source.state_dict(), "extra.weight": torch.ones(2)}, path)

    mine, theirs = DigitsNet(), DigitsNet()
    theirs.load_state_dict(mine.state_dict())
    fit = load_fitting(mine, path, 0.05)
    report = script_load(theirs, str(path), 0.05, verbose=False)
    assert report == fit.record(str(path), 0.05)
    for k, v in mine.state_dict().items():
        assert torch.equal(theirs.state_dict()[k], v), k

    with pytest.raises(SystemExit, match=r"fills only 6.93% of the model's parameters, less "
                                         r"than training.init_weights_min_fit \(50.00%\)"):
        script_load(DigitsNet(), str(path), 0.5)
    save_weights({"model.head.weight": torch.zeros(10, 128)}, path)
    with pytest.raises(SystemExit, match="fits nothing in the model"):
        script_load(DigitsNet(), str(path), 0.0)


def test_a_sweep_trial_starts_from_weights_beside_the_project(tmp_path, monkeypatch):
    """A sweep's trial project is a copy: its relative init_weights still starts at the project's
    folder, not the working directory."""
    from designer.engine.search.runner import COMPLETE, Sweep, TrialFinished

    from .test_sweeps import digits_project, saved

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    project = digits_project(trials=1, seed=0)
    save_weights(build_model(project.networks["model"], seed=1).state_dict(), tmp_path / "w.pt")
    project.training["init_weights"] = "w.pt"
    path = saved(tmp_path, project)
    events: list = []
    Sweep(load_project(path), tmp_path, project_path=path, callback=events.append).run()
    (trial,) = [e for e in events if isinstance(e, TrialFinished)]
    assert trial.state == COMPLETE, trial.message
    record = json.loads((Path(trial.run_dir) / "config.json").read_text())["init_weights"]
    assert record["fraction"] == 1 and record["fresh"]["not_in_file"] == []
