"""Train a project: ``designer train`` and the window's Train button.

Both front ends gather the settings their own way (command-line options and a resumed run's
record; the training panel's snapshot), load the dataset and choose the run folder; then
:func:`prepare_trainer` does the rest the same way for both: the project's recipe checks the
design against the data and builds its networks (:func:`designer.engine.train.recipes.prepare_run`),
and a :class:`~designer.engine.train.training.Trainer` is made to write the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..train.recipes import prepare_run


def prepare_trainer(project, dataset, training: dict[str, Any], *, run_dir: str | Path | None,
                    callback=None, network: str | None = None,
                    extra_config: dict[str, Any] | None = None, **trainer_options):
    """The recipe's spec, its prepared recipe and a trainer that runs ``project`` on
    ``dataset`` with ``training`` (validated settings) into ``run_dir`` (its previews go to
    ``<run>/samples``). ``network``: the network the window trains; ``callback`` gets the
    preparation's and the run's events; ``extra_config``: what config.json records besides
    the settings; ``trainer_options``: the Trainer's own (``resume``, ``cpu_threads``, ...).
    Raises :class:`~designer.engine.train.recipes.RecipeError` when the recipe refuses the design."""
    from ..train.training import Trainer  # torch

    spec, recipe = prepare_run(project, dataset, training, network=network, callback=callback,
                               run_dir=run_dir)
    trainer = Trainer(None, dataset, training, run_dir=run_dir, callback=callback, recipe=recipe,
                      extra_config=extra_config, **trainer_options)
    return spec, recipe, trainer
