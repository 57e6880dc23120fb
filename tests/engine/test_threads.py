"""The training run's CPU threads are chosen, not torch's one-per-core default."""

from __future__ import annotations

import threading

import pytest

from designer.engine import threads


@pytest.mark.parametrize(("cores", "gui", "want"), [(1, False, 1), (2, False, 1), (2, True, 1),
                                                    (4, False, 3), (4, True, 2), (16, True, 14)])
def test_a_core_is_left_to_the_machine_and_one_to_the_gui(monkeypatch, cores, gui, want):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.training_threads(gui=gui, cores=cores) == want


def test_the_users_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.training_threads(gui=True, cores=2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert threads.training_threads(cores=2) == 1


def test_wait_policy_is_set_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.configure_process()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.configure_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_trainer_runs_with_the_chosen_threads():
    import torch

    from designer.engine.document.project import load_project
    from designer.engine.document.templates import template_path
    from designer.engine.model.build import build_model
    from designer.engine.train.data import load_dataset
    from designer.engine.train.training import Trainer

    project = load_project(template_path("mlp-digits"))
    ds = load_dataset(project.dataset, None)
    seen = []
    before = torch.get_num_threads()

    class Spy(Trainer):
        def _run(self, started):
            seen.append(torch.get_num_threads())
            return super()._run(started)

    try:
        trainer = Spy(build_model(project.graph, seed=0), ds,
                      {**project.training, "epochs": 1}, cpu_threads=1)
        t = threading.Thread(target=trainer.run)
        t.start()
        t.join()
        assert trainer.result.status == "finished"
        assert seen == [1]
    finally:
        torch.set_num_threads(before)


def test_a_half_imported_torch_is_not_used(monkeypatch):
    """While the window's background thread imports torch, sys.modules already holds the module,
    half initialised (no torch.cuda yet): the memory estimate must not touch it."""
    import sys
    import types

    from designer.engine.model import memory

    half = types.ModuleType("torch")
    half.__spec__ = types.SimpleNamespace(_initializing=True)
    monkeypatch.setitem(sys.modules, "torch", half)
    assert threads.loaded_torch() is None
    assert memory.training_device("auto") == "cpu"
    half.__spec__ = types.SimpleNamespace(_initializing=False)
    assert threads.loaded_torch() is half
