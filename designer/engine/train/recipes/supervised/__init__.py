"""Supervised training: one network learns inputs -> targets (classification, regression,
reconstruction). The training step is :class:`designer.engine.train.training.SupervisedRecipe` (the
trainer's default); the exported train.py's hooks are in :mod:`.script`."""

from __future__ import annotations

from typing import Any

from .. import RecipeError, RecipeSpec, format_fixed, register, specs


class Supervised(RecipeSpec):
    id = "supervised"
    title = "Supervised"
    doc = "inputs -> targets: one network, one loss (classification, regression, reconstruction)"
    evaluates = True
    accepts_aux_outputs = True  # each auxiliary output's loss, weighted, joins the main one
    uses = ("init_weights", "init_weights_min_fit", "freeze_bn_eval")
    view = ""  # the shared loss/metric curves are its view

    def problems(self, project) -> list:
        """Another recipe's hint when the project's networks are made for it (a generator and
        a discriminator: the GAN's): this recipe trains the first network only."""
        hints = (s.suggestion(project, self) for s in specs() if s is not self)
        return [p for p in hints if p is not None]

    def check_data(self, project, ds, training, network=None, analyses=None):
        from ...data import check_model_data  # deferred: torch loads only when this runs
        from ...data.compat import DataProblem  # deferred: torch loads only when this runs

        graph = self.networks(project, network)["model"]
        analysis = (analyses or {}).get("model")
        check = check_model_data(graph, ds, training, analysis)
        if ds.task == "language_model":
            check.problems.insert(0, DataProblem(
                "error", f"{ds.name} is a text for next-token prediction: set training.recipe to "
                "language_model to train a language model on it", (), (), "lm_recipe"))
        return check

    def prepare(self, project, ds, training, network=None, callback=None):
        from ....model.build import (  # deferred: torch loads only when this runs
            BuildError,
            build_model,
        )
        from ...training import SupervisedRecipe  # deferred: torch loads only when this runs

        graph = self.networks(project, network)["model"]
        analyses, errors = _design(graph)
        if errors:
            raise RecipeError(f"the design has {len(errors)} error(s); fix them before training:\n"
                              + "\n".join(f"- {m}" for m in errors[:10]))
        check = self.check_data(project, ds, training, network, analyses)
        if not check.ok:
            lines = "\n".join(f"- {p.message}" for p in check.errors)
            if all(p.code == "memory" for p in check.errors):
                raise RecipeError(f"the design does not fit in memory:\n{lines}", "memory")
            hint = " (press \"Make the design fit\")" if check.fixable else ""
            raise RecipeError(f"the design does not fit the dataset{hint}:\n{lines}", "data",
                              fixable=check.fixable)
        try:
            model = build_model(graph, analyses["model"], seed=int(training["seed"]))
        except BuildError as exc:
            raise RecipeError(str(exc), "build") from None
        recipe = SupervisedRecipe(model)
        if training.get("init_weights"):
            start_from_init_weights(recipe, project, model, training)
        return recipe

    def format_metrics(self, label: str, metrics: dict[str, Any]) -> str:
        parts = [f"{label} loss {format_fixed(metrics.get('loss'), '.4f')}"]
        if isinstance(metrics.get("accuracy"), (int, float)):
            parts.append(f"acc {metrics['accuracy'] * 100:.1f}%")
        r2 = metrics.get("r2")
        if isinstance(r2, (int, float)) and format_fixed(r2, ".3f") != "nan":
            parts.append(f"R2 {r2:.3f}")
        return " ".join(parts)

    def batch_text(self, metrics: dict[str, Any]) -> str:
        acc = metrics.get("accuracy")
        return f"acc {acc * 100:5.1f}%" if isinstance(acc, (int, float)) else ""

    def train_source(self, project, project_dir=None, format: bool = True):
        from .script import train_source  # imports torch (through codegen)

        return train_source(project, project_dir=project_dir, format=format, spec=self)


def start_from_init_weights(recipe, project, model, training) -> None:
    """Load training.init_weights into ``model`` and note on ``recipe`` what loaded (its
    ``notes`` for the log, its ``record`` for the run's config.json)."""
    fit = _load_init_weights(project, model, training)
    recipe.notes = tuple(f"initial weights {line}" if i == 0 else line
                         for i, line in enumerate(fit.lines(training["init_weights"])))
    recipe.record = {"init_weights": fit.record(training["init_weights"],
                                                training["init_weights_min_fit"])}


def _load_init_weights(project, model, training):
    """training.init_weights: a state_dict file (relative to the project file's folder); every
    tensor whose name and shape fit loads, the rest start fresh. A file that fits nothing, or
    less than training.init_weights_min_fit of the parameters, stops the run with what differs."""
    from ....model.weights import (  # deferred: torch loads only when this runs
        WeightsError,
        load_fitting,
    )
    from ...data import resolve_path  # deferred: torch loads only when this runs

    file = resolve_path(training["init_weights"], project.folder)
    try:
        return load_fitting(model, file, training["init_weights_min_fit"])
    except WeightsError as exc:
        raise RecipeError(f"training.init_weights: {exc}", "weights") from None


def _design(graph) -> tuple[dict[str, Any], list[str]]:
    from .. import design_errors  # imported here: a module-level import would be circular

    return design_errors({"model": graph}, several=False)


SUPERVISED = register(Supervised())
