"""The language-model recipe's training step (:class:`LanguageModelRecipe`, on the shared trainer),
its loss and metrics, and sampling text from the model after every epoch (:func:`generate`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ....lazy import F, torch
from ..base import MeanMetrics, Recipe, StepOutput, TrainContext
from .events import LmSample

#: The step's per-batch values, in this order (perplexity is derived from the mean loss).
LM_METRIC_KEYS = ("loss", "accuracy")
#: The sample generator's seed is the training seed plus this (the weights use the seed itself).
SAMPLE_SEED_OFFSET = 2


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy): how many tokens the model hesitates between, on average."""
    if not isinstance(loss, (int, float)) or math.isnan(loss):
        return float("nan")
    return math.exp(loss) if loss < 700 else float("inf")


def derived_metrics(means: dict[str, float]) -> dict[str, float]:
    return {"perplexity": perplexity(means["loss"])}


# ---------------------------------------------------------------------------------------------
# The training step
# ---------------------------------------------------------------------------------------------


def generate(model, context: list[int], length: int, steps: int, temperature: float,
             generator, device, vocab_size: int | None = None) -> list[int]:
    """``steps`` token ids sampled one at a time after ``context``: the model sees the last
    ``length`` ids and the next id is drawn from the last position's scores / ``temperature``
    (causal models; see the module docstring). Call under ``torch.no_grad()`` in eval mode.
    ``vocab_size``: only the first this many tokens are drawn (a model with a vocabulary of its
    own, larger than the text's, scores tokens the text has no word for)."""
    from ...training import split_outputs  # deferred: torch loads only when this runs

    ids = list(context)
    new: list[int] = []
    for _ in range(steps):
        x = torch.tensor([ids[-length:]], dtype=torch.int64, device=device)
        logits = split_outputs(model, model(x))[0][0, -1, :vocab_size].float().cpu()
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
        return MeanMetrics(LM_METRIC_KEYS, device, derived=derived_metrics)

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
                               self.sample_length, self.temperature, gen, self.device,
                               len(self.preprocessing["vocab"]))
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
