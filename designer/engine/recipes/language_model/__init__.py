"""The language-model recipe: one network learns to predict the next token of a text.

The dataset is a text (``dataset.kind = "text"``, :mod:`designer.engine.data.text`): windows of
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
imported on use (:mod:`designer.engine.lazy`). The exported train.py is written here too, from the
shared pieces of :mod:`designer.engine.codegen` (the text loader, the optimizer), and reproduces the
designer's first epoch exactly; it keeps the supervised script's torchrun/DDP support.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...lazy import F, torch

# config.Setting is this class; importing it from config here would make a first import of this
# module (before config) gather the settings while this module is half-initialised
from ...schema import Param as Setting
from .. import RecipeError, RecipeSpec, _f, _g, design_errors, register
from ..base import MeanMetrics, Recipe, StepOutput, TrainContext

_LM = (("recipe", ("language_model",)),)
#: The step's per-batch values, in this order (perplexity is derived from the mean loss).
LM_METRIC_KEYS = ("loss", "accuracy")
#: The sample generator's seed is the training seed plus this (the weights use the seed itself).
SAMPLE_SEED_OFFSET = 2


@dataclass(frozen=True)
class LmSample:
    """Text the model wrote after an epoch: ``prompt`` + ``text`` (the continuation; a word-level
    continuation starts with a space), sampled at ``temperature``."""

    epoch: int
    prompt: str
    text: str
    temperature: float


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
    :class:`~designer.engine.training.SupervisedRecipe` (one is made in :meth:`setup` and does
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
        from ...training import SupervisedRecipe

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
        from ...data.text import encode

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
        from ...data.text import decode

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
        from ...data import check_model_data
        from ...data.compat import DataCheck, DataProblem

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
        from ...data.text import encode

        try:
            encode(str(training.get("lm_prompt", "")), ds.preprocessing)
        except ValueError as exc:
            check.problems.append(DataProblem(
                "error", f"training.lm_prompt: {exc} of {ds.name}; change the prompt",
                (), (), "lm_prompt"))
        return check

    def prepare(self, project, ds, training, network=None, callback=None):
        from ...build import BuildError, build_model

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
        parts = [f"{label} loss {_f(m.get('loss'), '.4f')}"]
        if "perplexity" in m:
            parts.append(f"ppl {_f(m['perplexity'], '.2f')}")
        acc = m.get("accuracy")
        if isinstance(acc, (int, float)) and math.isfinite(acc):
            parts.append(f"acc {acc * 100:.1f}%")
        return " ".join(parts)

    def batch_text(self, m: dict[str, Any]) -> str:
        if "perplexity" not in m:
            return ""
        acc = m.get("accuracy")
        acc_text = f"  acc {acc * 100:5.1f}%" if isinstance(acc, (int, float)) else ""
        return f"ppl {_f(m['perplexity'], '.2f')}{acc_text}"

    def describe_optimizer(self, t: dict[str, Any]) -> str:
        return (f"{t.get('optimizer', '?')} lr {_g(t.get('lr'))}, next-token cross-entropy, "
                f"samples at temperature {_g(t.get('lm_temperature'))}")

    def headline(self, history: list[dict[str, Any]]) -> str:
        """The perplexity of the best epoch (validation, else training): "perplexity 4.21"."""
        from ...runs import best_record

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
        return lm_train_source(project, project_dir=project_dir, format=format)


# ---------------------------------------------------------------------------------------------
# train.py
# ---------------------------------------------------------------------------------------------

_LM_LOOP_HEAD = '''

# ---------------------------------------------------------------------------------------------
# Training: next-token cross-entropy at every position, a sample of text after each epoch
# ---------------------------------------------------------------------------------------------

'''

_LM_LOOP = '''

def make_scheduler(cfg, optimizer):
    if cfg["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg["step_size"], cfg["gamma"])
    if cfg["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["gamma"], patience=2)
    return None


def next_token_loss(logits, y):
    """Cross-entropy of every position's scores (N, L, V) against the next tokens (N, L)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def scores(loss, logits, y):
    """The batch's loss and next-token accuracy, as one tensor (read at log time)."""
    accuracy = (logits.argmax(-1) == y).float().mean()
    return torch.stack([loss.detach().float(), accuracy]).double()


def shard(n, rank, world, generator):
    """This process's share of a shuffled epoch: the same permutation on every process, padded
    (as DistributedSampler does) so that every process runs the same number of batches."""
    perm = torch.randperm(n, generator=generator)
    if world > 1:
        perm = torch.cat([perm, perm[: (-n) % world]])[rank::world]
    return perm


def summary(total, world):
    """Loss, perplexity and accuracy from summed (loss, accuracy, sequences) over all processes."""
    if world > 1:
        dist.all_reduce(total)
    loss, accuracy = (total[:2] / total[2].clamp_min(1)).tolist()
    return {"loss": loss, "perplexity": math.exp(min(loss, 700)), "accuracy": accuracy}


def train(args, model, device, data, optimizer, scaler, epoch, rank, world, shuffle):
    """One epoch; returns the mean loss, perplexity and accuracy over all processes."""
    cfg = CONFIG["training"]
    model.train()
    perm = shard(data.x_train.shape[0], rank, world, shuffle).to(device)
    bs = args.batch_size
    if len(perm) > bs and len(perm) % bs == 1:  # a batch of one breaks BatchNorm
        perm = perm[:-1]
    amp = cfg["mixed_precision"] and device.type == "cuda"
    total = torch.zeros(3, dtype=torch.float64, device=device)  # loss, accuracy, sequences
    batches = math.ceil(len(perm) / bs)
    for b in range(batches):
        idx = perm[b * bs : (b + 1) * bs]
        x, y = data.batch("train", idx)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            logits = model(x)
            loss = next_token_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip"]:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        total[:2] += scores(loss, logits, y) * len(idx)
        total[2] += len(idx)
        if rank == 0 and (b % args.log_interval == 0 or b == batches - 1):
            if not math.isfinite(loss.item()):
                raise SystemExit(f"the loss became NaN or infinite in epoch {epoch}: lower the learning rate")
            done = min((b + 1) * bs, len(perm)) * world
            print(f"Train epoch {epoch} [{done}/{len(perm) * world}]  loss {loss.item():.4f}")
        if args.dry_run:
            break
    return summary(total, world)


@torch.no_grad()
def evaluate(args, model, device, data, rank, world):
    """Loss, perplexity and accuracy on the validation text, shared out over the processes."""
    model.eval()
    idx_all = torch.arange(rank, data.x_val.shape[0], world, device=device)
    total = torch.zeros(3, dtype=torch.float64, device=device)
    bs = max(args.batch_size, 256)
    for start in range(0, len(idx_all), bs):
        idx = idx_all[start : start + bs]
        x, y = data.batch("val", idx)
        logits = model(x)
        total[:2] += scores(next_token_loss(logits, y), logits, y) * len(idx)
        total[2] += len(idx)
        if args.dry_run:
            break
    return summary(total, world)


def encode(text, vocab):
    """Token ids of a prompt, cut as the dataset was (unknown words become <unk>)."""
    index = {t: i for i, t in enumerate(vocab)}
    tokens = split_tokens(text)
    if CONFIG["dataset"]["tokenizer"] == "word":
        return [index.get(t, index[UNK]) for t in tokens]
    missing = sorted({t for t in tokens if t not in index})
    if missing:
        raise SystemExit(f"the prompt holds characters the text does not: {missing}")
    return [index[t] for t in tokens]


@torch.no_grad()
def generate(args, model, device, data):
    """Text after the prompt, one sampled token at a time. The model takes exactly seq_length
    tokens, so the context is the last seq_length tokens of (the first training window + the
    prompt + what has been written): right for causal models (an LSTM, or attention with the
    causal mask). The sampler has its own generator, so training's random numbers are untouched."""
    model.eval()
    length = CONFIG["dataset"]["seq_length"]
    ids = data.x_train[0].tolist() + encode(args.prompt, data.vocab)
    sampler = torch.Generator().manual_seed(args.seed + 2)
    new = []
    for _ in range(args.sample_length):
        x = torch.tensor([ids[-length:]], dtype=torch.int64, device=device)
        logits = model(x)[0, -1].float().cpu()
        probs = torch.softmax(logits / args.temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=sampler))
        ids.append(token)
        new.append(token)
    text = decode(new, data.vocab)
    return " " + text if CONFIG["dataset"]["tokenizer"] == "word" else text


def pick_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    return torch.device(name)


def main(argv=None):
    cfg = CONFIG["training"]
    parser = argparse.ArgumentParser(description=__DESCRIPTION__)
    parser.add_argument("--epochs", type=int, default=cfg["epochs"], help="passes over the training text")
    parser.add_argument("--lr", type=float, default=cfg["lr"], help="learning rate")
    parser.add_argument("--batch-size", type=int, default=cfg["batch_size"], help="sequences per step and process")
    parser.add_argument("--device", default=cfg["device"], help="auto, cpu, cuda or mps")
    parser.add_argument("--data", default=__DATA_DEFAULT__, help=__DATA_HELP__)
    parser.add_argument("--out", default="checkpoints", help="folder for best.pt, last.pt and the samples")
    parser.add_argument("--seed", type=int, default=cfg["seed"], help="seed of weights, shuffling and sampling")
    parser.add_argument("--prompt", default=cfg["lm_prompt"], help="text the model continues after each epoch")
    parser.add_argument("--temperature", type=float, default=cfg["lm_temperature"], help="sampling temperature")
    parser.add_argument("--sample-length", type=int, default=cfg["lm_sample_length"], help="tokens to write")
    parser.add_argument("--log-interval", type=int, default=10, help="batches between log lines")
    parser.add_argument("--dry-run", action="store_true", help="one batch of each phase, to check the set-up")
    args = parser.parse_args(argv)
    cfg.update(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)

    # Under torchrun every process gets RANK, LOCAL_RANK and WORLD_SIZE.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        local_rank = int(os.environ["LOCAL_RANK"])
        use_cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
        dist.init_process_group("nccl" if use_cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
    else:
        rank, world, device = 0, 1, pick_device(args.device)

    shuffle = torch.Generator().manual_seed(args.seed)  # the same on every process
    data = load_data(args.data).to(device)
    # The same seed gives the same initial weights as the designer; dropout starts from it again.
    torch.manual_seed(args.seed)
    model = __CLASS__().to(device)
    torch.manual_seed(args.seed)
    plain = model
    if distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg["mixed_precision"] and device.type == "cuda")
    if rank == 0:
        sizes = f"{data.x_train.shape[0]} training and {data.x_val.shape[0]} validation sequences"
        print(f"{sizes} of {CONFIG['dataset']['seq_length']} tokens, vocabulary {len(data.vocab)}, "
              f"device {device}, {world} process(es)")
        os.makedirs(args.out, exist_ok=True)

    best, since_best = None, 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        t = train(args, model, device, data, optimizer, scaler, epoch, rank, world, shuffle)
        v = evaluate(args, plain, device, data, rank, world) if data.x_val.shape[0] else {}
        monitored = v.get("loss", t["loss"])
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        improved = best is None or monitored < best
        best, since_best = (monitored, 0) if improved else (best, since_best + 1)
        if rank == 0:
            shown = "  ".join(f"{p} loss {m['loss']:.4f} ppl {m['perplexity']:.2f} acc "
                              f"{m['accuracy'] * 100:.1f}%" for p, m in (("train", t), ("val", v)) if m)
            print(f"Epoch {epoch}: {shown}  ({time.perf_counter() - start:.1f} s)")
            sample = args.prompt + generate(args, plain, device, data)
            print(f"Sample after epoch {epoch} (temperature {args.temperature:g}):\\n{sample}\\n")
            with open(os.path.join(args.out, f"sample_epoch_{epoch:03d}.txt"), "w", encoding="utf-8") as f:
                f.write(sample + "\\n")
            checkpoint = {
                "model": plain.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "config": CONFIG,
                "vocab": data.vocab,
            }
            torch.save(checkpoint, os.path.join(args.out, "last.pt"))
            if improved:
                torch.save(checkpoint, os.path.join(args.out, "best.pt"))
        if args.dry_run or (cfg["early_stopping"] and since_best >= cfg["early_stopping"]):
            break
    if distributed:
        dist.barrier()  # rank 0 may still be writing samples or checkpoints: leave together
        dist.destroy_process_group()
    return plain


if __name__ == "__main__":
    main()
'''

_RUN_HELP = [
    "Run:",
    "    python train.py                      # settings from the project; see --help",
    "    python train.py --epochs 1 --dry-run  # check the set-up on one batch",
    '    python train.py --prompt "Once upon a time" --temperature 0.6',
    "On several processes (one per GPU, or CPU processes with gloo), with PyTorch's launcher:",
    "    torchrun --nproc_per_node=4 train.py",
    "--batch-size is per process. After each epoch a sample of text is printed and written to",
    "--out (sample_epoch_NNN.txt) beside best.pt (the epoch with the lowest validation loss,",
    "i.e. perplexity) and last.pt (the last epoch); load the weights with:",
    "    from model import load; model = load('checkpoints/best.pt')",
]


def lm_train_source(project, project_dir=None, format: bool = True) -> str | None:
    """The source of ``train.py`` for a language-model project: the text loader of the
    supervised script (:data:`codegen._LOAD_TEXT`), the shared optimizer, and a loop that
    reproduces the designer's first epoch exactly and prints a sample after each epoch.

    Raises :class:`~designer.engine.codegen.CodegenError` when the settings are invalid or the
    dataset is not a text."""
    from ... import codegen
    from ...codegen import CodegenError, _header, format_source, literal, network_class_names
    from ...config import ConfigError, validate_dataset, validate_training

    if not project.networks:
        return None
    try:
        dataset = validate_dataset(project.dataset)
        training = validate_training(project.training)
    except ConfigError as exc:
        raise CodegenError(str(exc)) from None
    if dataset["kind"] != "text":
        raise CodegenError(f"a language model learns from a text file; a {dataset['kind']} "
                           "dataset is not one (set the dataset kind to text)")
    if dataset["path"] and project_dir is not None:
        path = Path(dataset["path"]).expanduser()
        if not path.is_absolute():
            dataset["path"] = str((Path(project_dir) / path).resolve())
    net = LANGUAGE_MODEL.roles[0].network or next(iter(project.networks))
    cls = network_class_names(project)[net]
    head = codegen._TRAIN_HEAD.replace("import os\n", "import os\nimport re\n", 1)
    cut = head.find("\n\ndef split_indices(")  # a text is split by position, in load_data
    if cut < 0:  # pragma: no cover - the shared head changed; fail loudly
        raise CodegenError("internal: the training script head changed")
    head = head[:cut] + "\n"
    pieces = (head, codegen._NO_AUGMENT, codegen._LOAD_TEXT, _LM_LOOP_HEAD, codegen.MAKE_OPTIMIZER,
              _LM_LOOP)
    body = codegen.with_search_arguments("".join(pieces), project, {"__CLASS__()": net})
    if "np." not in body:
        body = body.replace("import numpy as np\n", "", 1)
    config = {"dataset": codegen._applying("dataset", dataset),
              "training": codegen._applying("training", training, project)}
    # No user text in argparse's description (argparse %-formats it); the name is in the header.
    description = f"Train the language model {cls}"
    replacements = {
        "__CLASS__": cls,
        "__CONFIG__": literal(config),
        "__DESCRIPTION__": literal(description),
        "__DATA_DEFAULT__": literal(dataset["path"]),
        "__DATA_HELP__": literal("the UTF-8 text file (default: %(default)s)"),
    }
    # One pass over the template's own markers: text already put in is never searched again.
    body = re.sub(r"__(CLASS|CONFIG|DESCRIPTION|DATA_DEFAULT|DATA_HELP)__",
                  lambda m: replacements[m.group(0)], body)
    header = _header(project, "Language-model training script")
    header += ["#", *("# " + line for line in _RUN_HELP)]
    source = "\n".join(header) + "\n" + body
    return format_source(source) if format else source


LANGUAGE_MODEL = register(LanguageModel())

__all__ = ["LANGUAGE_MODEL", "LM_METRIC_KEYS", "LanguageModel", "LanguageModelRecipe", "LmSample",
           "generate", "lm_train_source", "next_token_loss", "perplexity"]
