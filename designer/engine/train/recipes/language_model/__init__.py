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

The spec (settings, checks, words, export) and the training step live in this one module; torch is
imported on use (:mod:`designer.engine.lazy`). The exported train.py is written by :mod:`.script`
from the shared pieces of :mod:`designer.engine.train.recipes.script` (the text loader, the optimizer),
and reproduces the designer's first epoch exactly; it keeps torchrun/DDP support.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ....lazy import F, torch

# config.Setting is this class; importing it from config here would make a first import of this
# module (before config) gather the settings while this module is half-initialised
from ....model.schema import Param as Setting
from ...records import best_record
from .. import RecipeError, RecipeSpec, design_errors, format_fixed, format_general, register
from ..base import MeanMetrics, Recipe, StepOutput, TrainContext
from .events import LmSample

_LM = (("recipe", ("language_model",)),)
#: The step's per-batch values, in this order (perplexity is derived from the mean loss).
LM_METRIC_KEYS = ("loss", "accuracy")
#: The sample generator's seed is the training seed plus this (the weights use the seed itself).
SAMPLE_SEED_OFFSET = 2


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy): how many tokens the model hesitates between, on average."""
    if not isinstance(loss, (int, float)) or math.isnan(loss):
        return float("nan")
    return math.exp(loss) if loss < 700 else float("inf")


def _derived(means: dict[str, float]) -> dict[str, float]:
    return {"perplexity": perplexity(means["loss"])}


# ---------------------------------------------------------------------------------------------
# The training step
# ---------------------------------------------------------------------------------------------


def generate(model, context: list[int], length: int, steps: int, temperature: float,
             generator, device) -> list[int]:
    """``steps`` token ids sampled one at a time after ``context``: the model sees the last
    ``length`` ids and the next id is drawn from the last position's scores / ``temperature``
    (causal models; see the module docstring). Call under ``torch.no_grad()`` in eval mode."""
    ids = list(context)
    new: list[int] = []
    for _ in range(steps):
        x = torch.tensor([ids[-length:]], dtype=torch.int64, device=device)
        logits = model(x)[0, -1].float().cpu()
        probs = torch.softmax(logits / temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
        ids.append(token)
        new.append(token)
    return new


class LanguageModelRecipe(Recipe):
    """One network, one optimizer, next-token cross-entropy; a text sample after each epoch.

    The optimizer, scheduler, gradient scaler, clipping and checkpoint state are those of
    :class:`~designer.engine.train.training.SupervisedRecipe` (one is made in :meth:`setup` and does
    them), so a language model pauses, stops, resumes and guards against NaN exactly as any
    supervised run; only the loss and the metrics differ."""

    name = "language_model"

    def __init__(self, model, preprocessing: dict[str, Any], prompt: str = "The ",
                 temperature: float = 0.8, sample_length: int = 200, callback=None) -> None:
        self.model = model
        self.preprocessing = preprocessing
        self.prompt = prompt
        self.temperature = float(temperature)
        self.sample_length = int(sample_length)
        self.callback = callback
        self.epoch = 0
        self.last_sample: LmSample | None = None
        self.sample_dir: Path | None = None  # when set: each epoch's text as epoch_NNN.txt

    def modules(self) -> dict[str, Any]:
        return {"model": self.model}

    def metrics(self, dataset, device, full: bool) -> MeanMetrics:
        return MeanMetrics(LM_METRIC_KEYS, device, derived=_derived)

    def setup(self, ctx: TrainContext) -> None:
        from ...training import SupervisedRecipe  # deferred: torch loads only when this runs

        self.ctx = ctx
        self.device = ctx.device
        self.step = SupervisedRecipe(self.model)
        self.step.setup(ctx)
        self.step.loss_fn = next_token_loss
        self.step.l1 = 0.0  # not a setting of this recipe (hidden in the form)
        self.seed = int(ctx.config["seed"])
        self.length = int(ctx.dataset.sample_shape[0])
        # the fixed stretch of training text generation starts from (the first window)
        self.context = ctx.dataset.x_train[0].tolist()
        from ...data.text import encode  # deferred: torch loads only when this runs

        self.prompt_ids = encode(self.prompt, self.preprocessing)

    def train_step(self, x, y) -> StepOutput:
        out = self.step.train_step(x, y)
        return StepOutput(out.loss, _scores(out.loss, out.output, y))

    def eval_step(self, x, y) -> StepOutput:
        with torch.no_grad():
            out = self.step.eval_step(x, y)
            return StepOutput(out.loss, _scores(out.loss, out.output, y))

    def end_epoch(self, monitored_loss: float | None) -> None:
        self.step.end_epoch(monitored_loss)
        self.epoch += 1
        self.emit_sample()

    def sample(self) -> str:
        """The continuation of the prompt, written by the model as it is now (eval mode)."""
        from ...data.text import decode  # deferred: torch loads only when this runs

        model = self.model
        was_training = model.training
        model.eval()
        gen = torch.Generator().manual_seed(self.seed + SAMPLE_SEED_OFFSET)
        try:
            with torch.no_grad():
                new = generate(model, self.context + self.prompt_ids, self.length,
                               self.sample_length, self.temperature, gen, self.device)
        finally:
            model.train(was_training)
        text = decode(new, self.preprocessing)
        return " " + text if self.preprocessing["tokenizer"] == "word" else text

    def emit_sample(self) -> LmSample:
        event = LmSample(self.epoch, self.prompt, self.sample(), self.temperature)
        self.last_sample = event
        if self.sample_dir is not None:
            path = Path(self.sample_dir) / f"epoch_{self.epoch:03d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{event.prompt}{event.text}\n", encoding="utf-8")
        if self.callback is not None:
            self.callback(event)
        return event

    def lr(self) -> float:
        return self.step.lr()

    def state_dict(self) -> dict[str, Any]:
        return self.step.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step.load_state_dict(state)
        self.epoch = int(state.get("epoch", 0) or 0)


def next_token_loss(logits, y):
    """Cross-entropy of every position's scores ``(N, L, V)`` against the next tokens ``(N, L)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _scores(loss, logits, y):
    """The batch's loss and next-token accuracy, as one vector (read at report time only)."""
    acc = (logits.argmax(-1) == y).float().mean()
    return torch.stack([loss.detach().float(), acc])


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------


class LanguageModel(RecipeSpec):
    id = "language_model"
    title = "Language model"
    doc = ("next-token prediction on a text: one network scores every vocabulary token at every "
           "position, and writes a sample after each epoch")
    hides = ("loss", "l1")
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
            hint = " (press \"Make the design fit\")" if check.fixes else ""
            raise RecipeError(f"the design does not fit the dataset{hint}:\n{lines}", "data",
                              fixable=bool(check.fixes))
        try:
            model = build_model(graph, analyses["model"], seed=int(training["seed"]))
        except BuildError as exc:
            raise RecipeError(str(exc), "build") from None
        return LanguageModelRecipe(model, ds.preprocessing, training["lm_prompt"],
                                   training["lm_temperature"], training["lm_sample_length"],
                                   callback=callback)

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
