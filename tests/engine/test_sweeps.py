"""Sweeps (issue 15): the search section in the file, trials on digits, pruning before training,
failed trials, the CLI and several workers sharing one study on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from designer.cli import main
from designer.engine.document.project import (
    FORMAT_VERSION,
    Project,
    ProjectError,
    load_project,
    project_from_dict,
    project_to_json,
    save_project,
)
from designer.engine.search.runner import (
    COMPLETE,
    FAILED,
    PRUNED,
    Sweep,
    TrialFinished,
    TrialProgress,
    apply_best,
    importances,
    make_pruner,
)
from designer.engine.search.space import (
    SearchError,
    search_from_dict,
    search_problems,
    search_space,
)
from designer.engine.search.storage import open_storage
from designer.engine.search.values import apply_values
from designer.engine.train import runs

from .helpers import chain

ROOT = Path(__file__).resolve().parents[2]
LR = {"target": {"setting": "lr"}, "type": "float", "low": 1e-3, "high": 1e-1, "log": True}
WIDTH = {"target": {"network": "model", "node": "fc1", "param": "out_features"}, "type": "int",
         "low": 16, "high": 64, "step": 16}


def digits_project(**search) -> Project:
    g = chain(("Flatten", {}), ("Linear", {"out_features": 32}), ("ReLU", {}),
              ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    training = {"epochs": 1, "batch_size": 32, "lr": 1e-5, "device": "cpu"}
    return Project(name="sweep digits", networks={"model": g}, dataset={"name": "digits"},
                   training=training, search={"pruner": "none", "dimensions": [LR], **search})


def saved(tmp_path: Path, project: Project) -> Path:
    return save_project(project, tmp_path / "sw.dnn.json", backup=False)


def doc(**search) -> dict:
    return json.loads(project_to_json(digits_project(**search)))


# ---------------------------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------------------------


def test_search_round_trips_through_the_file(tmp_path):
    p = digits_project(dimensions=[LR, WIDTH, {"target": {"setting": "optimizer"},
                                               "type": "choice", "choices": ["adam", "sgd"]}],
                       objective={"metric": "val_accuracy"}, trials=5, sampler="random",
                       seed=3, timeout_s=60)
    path = saved(tmp_path, p)
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION == 3
    again = load_project(path)
    assert again.search == p.search
    space = search_space(again)
    assert [d.name for d in space.dimensions] == ["lr", "model.fc1.out_features", "optimizer"]
    assert space.direction == "maximize" and space.trials == 5 and space.timeout_s == 60.0
    # No search: the section is not written (older files and templates read as before).
    plain = json.loads(project_to_json(Project(name="x")))
    assert "search" not in plain


def test_format_2_files_load_unchanged():
    data = doc()
    del data["search"]
    data["format_version"] = 2
    p = project_from_dict(data)
    assert p.search == {} and p.training["lr"] == 1e-5


def _bad(path: list, value) -> dict:
    d = doc(dimensions=[dict(LR), dict(WIDTH)])
    here = d
    for k in path[:-1]:
        here = here[k]
    if value is _DEL:
        del here[path[-1]]
    else:
        here[path[-1]] = value
    return d


_DEL = object()
S0 = ["search", "dimensions", 0]
S1 = ["search", "dimensions", 1]


@pytest.mark.parametrize(("path", "value", "message"), [
    (["search"], [], "search: expected an object"),
    (["search", "sampler"], "bayes", "search.sampler: expected one of tpe, random, grid"),
    (["search", "pruner"], "hyperband", "search.pruner: expected one of none, median"),
    (["search", "trials"], 0, "search.trials: expected an integer from 1"),
    (["search", "timeout_s"], -1, "search.timeout_s: expected a positive number"),
    (["search", "objective"], {"metric": "loss"}, "search.objective.metric: expected the name"),
    (["search", "objective"], {"metric": "val_loss", "direction": "up"},
     "search.objective.direction: expected minimize or maximize"),
    (["search", "dimensions"], [], "search.dimensions: expected a non-empty list"),
    (["search", "junk"], 1, "search.junk: unknown key"),
    (S0 + ["target"], {"setting": "learning_rate"},
     "search.dimensions[0].target.setting: no training setting \"learning_rate\""),
    (S1 + ["target"], {"network": "model", "node": "fc1", "arg": "planes"},
     "search.dimensions[1].target.arg: fc1 is a Linear, not a block use"),
    (S0 + ["low"], 0.0, "search.dimensions[0].low: a log range starts above 0"),
    (S0 + ["high"], 100.0, "search.dimensions[0].high: lr cannot be 100.0"),
    (S0 + ["high"], "big", "search.dimensions[0].high: expected a number"),
    (S0 + ["high"], 1e-4, "search.dimensions[0].high: expected more than low"),
    (S0 + ["type"], "int", "search.dimensions[0].type: lr is a number"),
    (S1 + ["low"], 0, "search.dimensions[1].low: model.fc1.out_features cannot be 0"),
    (S1 + ["high"], 60, "search.dimensions[1].high: 60 is not low plus a multiple of step"),
    (S1 + ["type"], "float", "[1].type: model.fc1.out_features is a positive integer; a float"),
    (S1 + ["type"], "choice", "search.dimensions[1].low: a choice dimension lists its choices"),
    (S1 + ["step"], 0, "search.dimensions[1].step: expected a positive integer"),
])
def test_bad_search_sections_are_refused_with_their_place(path, value, message):
    with pytest.raises(ProjectError) as info:
        project_from_dict(_bad(path, value))
    assert message in str(info.value)


@pytest.mark.parametrize(("path", "value", "message"), [
    (S1 + ["target", "node"], "fc9", "target.node: network 'model' has no layer named \"fc9\""),
    (S1 + ["target", "network"], "critic", "search.dimensions[1].target.network: no network"),
    (S1 + ["target", "param"], "width", "[1].target.param: fc1 (Linear) has no parameter \"width\""),
])
def test_a_target_that_is_gone_loads_and_is_reported_and_a_sweep_refuses_it(path, value,
                                                                           message):
    """A searched layer renamed, deleted or grouped away must not make the file unloadable
    (nothing is lost): the project loads with its search section, `designer check`'s problems
    name the place, and a sweep refuses to start with the same words."""
    from designer.engine.search.space import search_problems

    project = project_from_dict(_bad(path, value))
    (problem,) = search_problems(project)
    assert problem.severity == "error" and message in problem.message
    with pytest.raises(SearchError) as info:
        search_space(project)
    assert message.split(": ", 1)[-1] in str(info.value)


def test_bad_choices_and_grids_are_refused():
    cases = [
        ({"target": {"setting": "optimizer"}, "type": "choice", "choices": ["adam", "lion"]},
         "grid", "search.dimensions[0].choices[1]: optimizer cannot be \"lion\""),
        ({"target": {"setting": "optimizer"}, "type": "choice", "choices": ["adam", "adam"]},
         "tpe", "choices[1]: \"adam\" is listed twice"),
        ({"target": {"setting": "batch_size"}, "type": "choice", "choices": [[1, 2]]},
         "tpe", "choices[0]: expected a number, a text or true/false"),
        (LR, "grid", "search.sampler: a grid needs a finite space, but lr is a float range"),
    ]
    for dim, sampler, message in cases:
        with pytest.raises(ProjectError) as info:
            project_from_dict(doc(dimensions=[dim], sampler=sampler))
        assert message in str(info.value)
    d = doc(dimensions=[LR, dict(LR)])
    with pytest.raises(ProjectError, match=r"dimensions\[1\].target: lr is already searched"):
        project_from_dict(d)


def test_block_arguments_are_targets():
    data = json.loads((ROOT / "designer" / "templates" / "resnet18.dnn.json").read_text())
    model = data["networks"][0]  # the trained network: ResNet-18 from BasicBlock uses
    net = model["name"]
    use = next(n for n in model["nodes"] if n["type"] == "Block")
    block = use["params"]["block"]
    definition = next(n for n in data["networks"] if n["name"] == block)
    arg = next(p for p in definition["params"] if p["type"] == "int")
    target = {"network": net, "node": use["name"], "arg": arg["name"]}
    data["search"] = {"dimensions": [{"target": target, "type": "choice", "choices": [32, 64]}]}
    p = project_from_dict(data)
    space = search_space(p)
    (dim,) = space.dimensions
    copy_ = apply_values(p, {dim.target: 32})
    node = copy_.networks[net].node_by_name(use["name"])
    assert node.params["args"][arg["name"]] == 32
    assert p.networks[net].node_by_name(use["name"]).params["args"].get(arg["name"]) != 32
    data["search"]["dimensions"][0]["target"]["arg"] = "nope"
    problems = search_problems(project_from_dict(data))  # loads; reported, not lost
    assert f"target.arg: block '{block}' has no parameter" in problems[0].message


def test_apply_values_makes_a_copy_and_set_search_validates():
    p = digits_project(dimensions=[LR, WIDTH])
    events = []
    p.subscribe(events.append)
    q = apply_values(p, {"lr": 0.01, "model.fc1.out_features": 48})
    assert q.training["lr"] == 0.01 and q.networks["model"].node_by_name("fc1").params[
        "out_features"] == 48
    assert p.training["lr"] == 1e-5 and p.networks["model"].node_by_name("fc1").params[
        "out_features"] == 32 and events == []
    with pytest.raises(ValueError, match="dimensions"):
        p.set_search({"dimensions": "lr"})
    p.set_search({"dimensions": [WIDTH]})
    assert events[-1].key == "search" and p.search == {"dimensions": [WIDTH]}


# ---------------------------------------------------------------------------------------------
# Sweeps on digits
# ---------------------------------------------------------------------------------------------


def _events(sweep_events: list, kind) -> list:
    return [e for e in sweep_events if isinstance(e, kind)]


def test_sweep_finds_and_applies_a_better_learning_rate(tmp_path):
    path = saved(tmp_path, digits_project(trials=4, seed=0))
    project = load_project(path)
    events: list = []
    sweep = Sweep(project, tmp_path, project_path=path, callback=events.append)
    result = sweep.run()
    finished = _events(events, TrialFinished)
    assert [t.number for t in finished] == [0, 1, 2, 3]
    assert all(t.state == COMPLETE for t in finished)
    assert result.reason == "done" and result.counts == {"complete": 4}
    assert (tmp_path / "runs" / "sw" / "sweeps.db").exists()
    # Each trial is an ordinary run beside the project's others, recording study and trial.
    for t in finished:
        config = runs.read_config(Path(t.run_dir))
        assert Path(t.run_dir).parent == tmp_path / "runs" / "sw"
        assert config["sweep"]["study"] == "sweep digits"
        assert config["sweep"]["trial"] == t.number
        assert config["training"]["lr"] == pytest.approx(t.params["lr"])
    changes = apply_best(project, result.best)
    (target,) = changes
    assert target.label == "lr" and 1e-3 <= changes[target] <= 1e-1
    assert project.training["lr"] == 1e-5  # the document is not touched
    # The default (lr 1e-5) trains to a worse validation loss than the best applied.
    assert main(["train", str(path), "--out", str(tmp_path / "default")]) == 0
    default_loss = runs.read_history(tmp_path / "default")[-1]["val"]["loss"]
    assert result.best.value < default_loss
    assert main(["sweep", str(path), "--trials", "4", "--apply"]) == 0  # nothing more to run
    applied = load_project(path)
    assert applied.training["lr"] == pytest.approx(changes[target])
    assert (tmp_path / "sw.dnn.json.bak").exists()  # saved like the window's Save


def test_a_trial_that_breaks_the_shapes_is_pruned_before_training(tmp_path):
    g = chain(("Flatten", {}), ("Linear", {"out_features": 64}), ("Reshape", {"shape": [4, 16]}),
              ("Flatten", {}), ("Linear", {"out_features": 10}), shape=(1, 8, 8))
    width = {"target": {"network": "model", "node": "fc1", "param": "out_features"},
             "type": "choice", "choices": [60, 64]}
    p = Project(name="reshape", networks={"model": g}, dataset={"name": "digits"},
                training={"epochs": 1, "batch_size": 64, "device": "cpu"},
                search={"sampler": "grid", "pruner": "none", "dimensions": [width]})
    path = saved(tmp_path, p)
    events: list = []
    Sweep(load_project(path), tmp_path, project_path=path, callback=events.append).run()
    by_width = {t.params["model.fc1.out_features"]: t for t in _events(events, TrialFinished)}
    bad, good = by_width[60], by_width[64]
    assert bad.state == PRUNED and bad.run_dir is None
    assert "the shapes do not fit" in bad.message and "60" in bad.message
    assert not _events([e.event for e in _events(events, TrialProgress)
                        if e.number == bad.number], object)  # no trainer event at all
    assert good.state == COMPLETE and Path(good.run_dir).is_dir()
    assert len(list((tmp_path / "runs" / "sw").glob("2*"))) == 1  # one run folder


def test_a_nan_trial_fails_and_the_sweep_goes_on(tmp_path, capsys):
    lr = {"target": {"setting": "lr"}, "type": "choice", "choices": [10.0, 0.01]}
    g = chain(("Flatten", {}), ("Linear", {"out_features": 32}), ("Linear", {"out_features": 10}),
              shape=(1, 8, 8))  # no ReLU to die: lr 10 on raw pixels diverges in epoch 1
    p = Project(name="nan", networks={"model": g}, dataset={"name": "digits", "normalize": False},
                training={"epochs": 1, "batch_size": 32, "optimizer": "sgd", "device": "cpu"},
                search={"sampler": "grid", "pruner": "none", "dimensions": [lr]})
    path = saved(tmp_path, p)
    assert main(["sweep", str(path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("trial ")}
    assert len(lines) == 2, out
    nan = next(line for line in lines.values() if "lr=10" in line)
    fine = next(line for line in lines.values() if "lr=0.01" in line)
    assert " failed " in nan and "NaN or infinite" in nan
    assert " complete " in fine and "val_loss" in fine
    assert "best: trial" in out and "lr=0.01" in out.split("best:")[1]


def test_stop_ends_the_sweep_within_a_batch(tmp_path):
    p = digits_project(trials=5)
    p.training.update(epochs=50, batch_size=8)
    path = saved(tmp_path, p)
    sweep = None
    events: list = []

    def on_event(e):
        events.append(e)
        if isinstance(e, TrialProgress) and type(e.event).__name__ == "Batch":
            sweep.stop()

    sweep = Sweep(load_project(path), tmp_path, project_path=path, callback=on_event)
    result = sweep.run()
    (only,) = _events(events, TrialFinished)
    assert only.state == FAILED and "stopped" in only.message
    assert result.reason == "stopped"
    assert runs.read_history(Path(only.run_dir)) == []  # stopped inside its first epoch


# ---------------------------------------------------------------------------------------------
# Several workers, one study
# ---------------------------------------------------------------------------------------------


def _workers(path: Path, storage: str, study: str, trials: int, n: int = 2) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "designer", "sweep", str(path), "--trials", str(trials),
           "--storage", storage, "--study", study]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(n)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


def _check_shared(outs: list[str], storage: str, study: str, trials: int, runs_dir: Path):
    import optuna

    numbers = [int(line.split()[1]) for out in outs for line in out.splitlines()
               if line.startswith("trial ")]
    assert sorted(numbers) == list(range(trials)), outs  # none lost, none run twice
    loaded = optuna.load_study(study_name=study, storage=open_storage(storage))
    states = [t.state for t in loaded.get_trials()]
    assert len(states) == trials and all(s.is_finished() for s in states)
    recorded = sorted(runs.read_config(d)["sweep"]["trial"] for d in runs_dir.iterdir()
                      if (d / runs.CONFIG).exists() and runs.read_config(d).get("sweep", {}).get(
                          "study") == study)
    assert recorded == list(range(trials))


def test_two_workers_share_one_study_on_sqlite(tmp_path):
    path = saved(tmp_path, digits_project(sampler="random"))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    outs = _workers(path, storage, "shared", 6)
    _check_shared(outs, storage, "shared", 6, tmp_path / "runs" / "sw")


POSTGRES = os.environ.get("DESIGNER_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set DESIGNER_TEST_POSTGRES_URL "
                    "(bash scripts/start-postgres.sh prints one)")
def test_two_workers_share_one_study_on_postgresql(tmp_path):
    pytest.importorskip("psycopg")
    path = saved(tmp_path, digits_project(sampler="random"))
    study = f"designer-test-{uuid.uuid4().hex[:12]}"  # a fresh study on a long-lived server
    outs = _workers(path, POSTGRES, study, 6)
    _check_shared(outs, POSTGRES, study, 6, tmp_path / "runs" / "sw")
    assert "designer:designer@" not in "".join(outs)  # the password is never printed


# ---------------------------------------------------------------------------------------------
# Defaults a newcomer can trust (issue 22 item 15)
# ---------------------------------------------------------------------------------------------


def _steady(study, optuna, n: int, value: float = 1.0, epochs: int = 4) -> None:
    for _ in range(n):
        t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        for epoch in range(1, epochs + 1):
            t.report(value, epoch)
            assert not t.should_prune()  # (successive halving records its rungs here)
        study.tell(t, value)


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_the_pruner_waits_for_complete_trials_and_a_warm_up(pruner):
    """By default no trial is pruned before 3 trials are complete, nor in its first 2 epochs
    (the median pruner once pruned 4 of 6 trials after their first epoch); both waits are the
    search section's to set."""
    import optuna

    space = search_from_dict({"pruner": pruner, "dimensions": [LR]},
                               digits_project().networks)
    assert (space.startup_trials, space.warmup_epochs) == (3, 2)
    assert space.pruner_text() == f"{pruner} pruner (from epoch 3, once 3 trial(s) are complete)"
    study = optuna.create_study(pruner=make_pruner(optuna, space))
    _steady(study, optuna, 2)
    bad = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for epoch in (1, 2, 3, 4):  # only 2 complete: never pruned
        bad.report(100.0, epoch)
        assert not bad.should_prune(), epoch
    study.tell(bad, 100.0)
    _steady(study, optuna, 1)  # now 3 complete trials with a value of 1.0
    bad = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for epoch, prunes in ((1, False), (2, False), (3, True)):
        bad.report(100.0, epoch)
        assert bool(bad.should_prune()) is prunes, epoch
    # set in the search section
    space = search_from_dict({"pruner": "median", "startup_trials": 0, "warmup_epochs": 0,
                                "dimensions": [LR]}, digits_project().networks)
    study = optuna.create_study(pruner=make_pruner(optuna, space))
    _steady(study, optuna, 1)
    bad = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    bad.report(100.0, 1)
    assert bad.should_prune()


@pytest.mark.parametrize("key,value", [("startup_trials", -1), ("warmup_epochs", 1.5),
                                       ("warmup_epochs", True)])
def test_bad_pruner_waits_are_refused_with_their_place(key, value):
    with pytest.raises(SearchError, match=f"^{key}: expected a number of"):
        search_from_dict({key: value, "dimensions": [LR]}, digits_project().networks)


def test_importances_need_three_complete_trials():
    """As the README says: importances from three complete trials on, not two."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + 0.1 * t.suggest_int("w", 1, 4),
                   n_trials=2)
    assert importances(study) == {}
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + 0.1 * t.suggest_int("w", 1, 4),
                   n_trials=1)
    assert set(importances(study)) == {"lr", "w"}
