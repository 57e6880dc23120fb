"""The language-model recipe: one network learns to predict the next token of a text.

The dataset is a text (``dataset.kind = "text"``, :mod:`designer.engine.train.data.text`): windows of
``seq_length`` token ids ``x`` and the same windows shifted by one token ``y``. The network takes
``x`` (int64, ``(L,)``) and scores every vocabulary token at every position (``(L, V)`` logits);
the loss is the cross-entropy of those scores against ``y`` over all positions. Metrics per phase:
``loss``, ``perplexity`` = exp(mean loss) and ``accuracy`` (the next token ranked first).

After every epoch the model (in eval mode) writes ``lm_sample_length`` tokens after
``lm_prompt``, sampled at ``lm_temperature`` with its own seeded generator (the training random
stream is never shifted, and the samples of successive epochs draw the same random numbers, so
they are comparable). The model takes exactly ``L`` tokens, so generation slides a window: the
context is the last ``L`` tokens of (the first training window + the prompt + what has been
generated so far), and the next token is sampled from the scores at the last position. That is
right for a causal model (an LSTM, or a transformer whose attention has the causal mask): the last
position's scores depend on the tokens before it only, exactly as in training. A model that looks
ahead (a transformer without the mask) learns to copy the next token in training and writes
nonsense here; its training loss falls suspiciously fast.

The spec (settings, checks, words, export) lives here and the training step in :mod:`.training`;
torch is imported on use (:mod:`designer.engine.lazy`). The exported train.py is written by :mod:`.script`
from the shared pieces of :mod:`designer.engine.train.recipes.script` (the text loader, the optimizer),
and reproduces the designer's first epoch exactly; it keeps torchrun/DDP support.
"""

from __future__ import annotations

import math
from typing import Any

# config.Setting is this class; importing it from config here would make a first import of this
# module (before config) gather the settings while this module is half-initialised
from ....model.schema import Param as Setting
from ...records import best_record
from .. import RecipeError, RecipeSpec, design_errors, format_fixed, format_general, register
from ..supervised import start_from_init_weights
from .events import LmSample
from .training import (
    LM_METRIC_KEYS,
    LanguageModelRecipe,
    generate,
    next_token_loss,
    perplexity,
)

_LM = (("recipe", ("language_model",)),)


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------


class LanguageModel(RecipeSpec):
    id = "language_model"
    title = "Language model"
    doc = ("next-token prediction on a text: one network scores every vocabulary token at every "
           "position, and writes a sample after each epoch")
    hides = ("loss", "l1")
    uses = ("init_weights", "init_weights_min_fit")  # an imported GPT-2's own weights
    view = "language_model"
    settings = (
        Setting("lm_prompt", "text", "The ", "The text the model continues after each epoch "
                "(its tokens must be in the text's vocabulary)", applies=_LM,
                label="LM: prompt"),
        Setting("lm_temperature", "float", 0.8, "Sampling temperature: below 1 picks likely "
                "tokens (safer, repetitive), above 1 takes more chances", min=0.05, max=5.0,
                applies=_LM, label="LM: temperature"),
        Setting("lm_sample_length", "int", 200, "Tokens the model writes after the prompt each "
                "epoch", min=1, max=10_000, applies=_LM, label="LM: sample length"),
    )

    def check_data(self, project, ds, training, network=None, analyses=None):
        from ...data import check_model_data  # deferred: torch loads only when this runs
        from ...data.compat import (  # deferred: torch loads only when this runs
            DataCheck,
            DataProblem,
        )

        graph = self.networks(project, network).get("model")
        if ds.task != "language_model" or not ds.vocab:
            check = DataCheck(input_shape=tuple(ds.sample_shape), input_dtype=ds.dtype)
            check.problems.append(DataProblem(
                "error", f"{ds.name} is not a text: a language model learns to predict the next "
                "token of a text; set the dataset kind to text (a UTF-8 text file)", (), (),
                "lm_data"))
            return check
        if graph is None:
            return DataCheck()
        analysis = (analyses or {}).get("model")
        check = check_model_data(graph, ds, {**training, "loss": "cross_entropy"}, analysis)
        from ...data.text import encode  # deferred: torch loads only when this runs

        try:
            encode(str(training.get("lm_prompt", "")), ds.preprocessing)
        except ValueError as exc:
            check.problems.append(DataProblem(
                "error", f"training.lm_prompt: {exc} of {ds.name}; change the prompt",
                (), (), "lm_prompt"))
        return check

    def prepare(self, project, ds, training, network=None, callback=None):
        from ....model.build import (  # deferred: torch loads only when this runs
            BuildError,
            build_model,
        )

        graph = self.networks(project, network).get("model")
        if graph is None:
            raise RecipeError("the project has no network to train")
        analyses, errors = design_errors({"model": graph}, several=False)
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
        recipe = LanguageModelRecipe(model, ds.preprocessing, training["lm_prompt"],
                                     training["lm_temperature"], training["lm_sample_length"],
                                     callback=callback)
        if training.get("init_weights"):  # loaded as the supervised recipe loads them
            start_from_init_weights(recipe, project, model, training)
        return recipe

    # -- words ---------------------------------------------------------------------------------

    def format_metrics(self, label: str, m: dict[str, Any]) -> str:
        parts = [f"{label} loss {format_fixed(m.get('loss'), '.4f')}"]
        if "perplexity" in m:
            parts.append(f"ppl {format_fixed(m['perplexity'], '.2f')}")
        acc = m.get("accuracy")
        if isinstance(acc, (int, float)) and math.isfinite(acc):
            parts.append(f"acc {acc * 100:.1f}%")
        return " ".join(parts)

    def batch_text(self, m: dict[str, Any]) -> str:
        if "perplexity" not in m:
            return ""
        acc = m.get("accuracy")
        acc_text = f"  acc {acc * 100:5.1f}%" if isinstance(acc, (int, float)) else ""
        return f"ppl {format_fixed(m['perplexity'], '.2f')}{acc_text}"

    def describe_optimizer(self, t: dict[str, Any]) -> str:
        return (f"{t.get('optimizer', '?')} lr {format_general(t.get('lr'))}, next-token "
                f"cross-entropy, samples at temperature {format_general(t.get('lm_temperature'))}")

    def headline(self, history: list[dict[str, Any]]) -> str:
        """The perplexity of the best epoch (validation, else training): "perplexity 4.21"."""
        record = best_record(history) or (history[-1] if history else None)
        for phase in ("val", "train"):
            m = (record or {}).get(phase)
            if isinstance(m, dict) and isinstance(m.get("loss"), (int, float)):
                ppl = perplexity(float(m["loss"]))
                if math.isfinite(ppl):
                    return f"perplexity {ppl:.2f}" + ("" if phase == "val" else " (training)")
        return ""

    def describe_event(self, event: Any) -> str | None:
        if not isinstance(event, LmSample):
            return None
        text = f"{event.prompt}{event.text}".rstrip()
        lines = text.splitlines() or [""]
        return (f"sample after epoch {event.epoch} (temperature {event.temperature:g}):\n"
                + "\n".join("  | " + line for line in lines))

    # -- export --------------------------------------------------------------------------------

    def train_source(self, project, project_dir=None, format: bool = True) -> str | None:
        from .script import lm_train_source  # imports torch (through codegen)

        return lm_train_source(project, project_dir=project_dir, format=format)


LANGUAGE_MODEL = register(LanguageModel())

__all__ = ["LANGUAGE_MODEL", "LM_METRIC_KEYS", "LanguageModel", "LanguageModelRecipe", "LmSample",
           "generate", "next_token_loss", "perplexity"]
