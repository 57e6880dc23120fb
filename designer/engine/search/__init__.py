"""Sweeps: search hyperparameters and architecture sizes with Optuna, one ordinary run per
trial.

A project's ``search`` section names what varies (a training setting, a layer parameter or a
block use's argument, each with a distribution) and how to search (objective, trials, sampler,
pruner, seed)::

    "search": {
      "objective": {"metric": "val_loss", "direction": "minimize"},
      "trials": 20, "sampler": "tpe", "pruner": "median", "seed": 0,
      "startup_trials": 3, "warmup_epochs": 2,
      "dimensions": [
        {"target": {"setting": "lr"}, "type": "float", "low": 0.0001, "high": 0.1, "log": true},
        {"target": {"network": "model", "node": "fc1", "param": "out_features"},
         "type": "int", "low": 16, "high": 128, "step": 16},
        {"target": {"network": "model", "node": "layer2", "arg": "planes"},
         "type": "choice", "choices": [64, 128]}
      ]
    }

:class:`~.runner.Sweep` runs the trials: each applies its values to a copy of the project (never the
user's document), checks the shapes first (a trial whose values break them is pruned before
training, with the message), trains with the one :class:`~designer.engine.train.training.Trainer` into
an ordinary run folder beside the project's other runs (config.json records the study and the
trial number) and reports each epoch's objective to Optuna, which may prune it. The study lives
in an Optuna RDB storage: by default ``runs/<project stem>/sweeps.db`` (SQLite); any RDB URL
(``postgresql://...``) lets several processes share one study. A cross-process lock around
"count the trials, ask for one" makes the workers together run exactly ``trials`` trials.

The package: :mod:`.space` (the section's schema and its validation, no Optuna: what the
project file needs), :mod:`.values` (a project with a trial's values), :mod:`.storage` (study
storage and the workers' lock) and :mod:`.runner` (:class:`~.runner.Sweep`, its events, best
trials, importances). Importing any of them imports neither torch nor optuna (the window reads
the events and the search space before either is loaded); running a sweep does.
"""
