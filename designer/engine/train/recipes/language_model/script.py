"""The language-model recipe's exported train.py: next-token cross-entropy at every position
and a sample of text after each epoch, reproducing the designer's first epoch exactly; it keeps
the supervised script's torchrun/DDP support (its hooks of the one skeleton,
:class:`~designer.engine.train.recipes.script.TrainScript`; the text loader is the shared one)."""

from __future__ import annotations

from typing import Any

from ....document.naming import network_class_names
from ..script import (
    DDP_OPTIMIZER,
    DISTRIBUTED_SETUP,
    MAKE_OPTIMIZER,
    MAKE_SCHEDULER,
    PICK_DEVICE,
    SHARD,
    STEP_AND_BEST,
    TrainScript,
    argument,
    checkpoints_and_end,
    main_head,
)
from ..supervised.script import with_frozen_and_init
from . import LANGUAGE_MODEL

LOOP = ('''

# ---------------------------------------------------------------------------------------------
# Training: next-token cross-entropy at every position, a sample of text after each epoch
# ---------------------------------------------------------------------------------------------

''' + MAKE_OPTIMIZER + "\n" + MAKE_SCHEDULER + '''

def next_token_loss(logits, y):
    """Cross-entropy of every position's scores (N, L, V) against the next tokens (N, L)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def scores(loss, logits, y):
    """The batch's loss and next-token accuracy, as one tensor (read at log time)."""
    accuracy = (logits.argmax(-1) == y).float().mean()
    return torch.stack([loss.detach().float(), accuracy]).double()

''' + SHARD + '''

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
        logits = model(x)[0, -1, :len(data.vocab)].float().cpu()  # the text's tokens only
        probs = torch.softmax(logits / args.temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=sampler))
        ids.append(token)
        new.append(token)
    text = decode(new, data.vocab)
    return " " + text if CONFIG["dataset"]["tokenizer"] == "word" else text

''' + PICK_DEVICE + "\n\n" + main_head(
    data="text", samples="sequences per step and process",
    out="folder for best.pt, last.pt and the samples",
    seed="seed of weights, shuffling and sampling",
    more=(argument("--prompt", "text the model continues after each epoch",
                   default='cfg["lm_prompt"]'),
          argument("--temperature", "sampling temperature", "float", 'cfg["lm_temperature"]'),
          argument("--sample-length", "tokens to write", "int", 'cfg["lm_sample_length"]')),
) + DISTRIBUTED_SETUP + '''
    shuffle = torch.Generator().manual_seed(args.seed)  # the same on every process
    data = load_data(args.data).to(device)
    # The same seed gives the same initial weights as the designer; dropout starts from it again.
    torch.manual_seed(args.seed)
    model = __CLASS__().to(device)
''' + DDP_OPTIMIZER + '''    if rank == 0:
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
''' + STEP_AND_BEST + '''        if rank == 0:
            shown = "  ".join(f"{p} loss {m['loss']:.4f} ppl {m['perplexity']:.2f} acc "
                              f"{m['accuracy'] * 100:.1f}%" for p, m in (("train", t), ("val", v)) if m)
            print(f"Epoch {epoch}: {shown}  ({time.perf_counter() - start:.1f} s)")
            sample = args.prompt + generate(args, plain, device, data)
            print(f"Sample after epoch {epoch} (temperature {args.temperature:g}):\\n{sample}\\n")
            with open(os.path.join(args.out, f"sample_epoch_{epoch:03d}.txt"), "w", encoding="utf-8") as f:
                f.write(sample + "\\n")
''' + checkpoints_and_end('"vocab": data.vocab,'))

RUN_HELP = (
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
)


class LanguageModelScript(TrainScript):
    """train.py for a language-model project (None for a project without networks)."""

    what = "Language-model training script"
    run_help = RUN_HELP
    kinds = ("text",)

    def kind_error(self, kind: str) -> str:
        return (f"a language model learns from a text file; a {kind} dataset is not one (set the "
                "dataset kind to text)")

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        self.network = LANGUAGE_MODEL.roles[0].network or next(iter(self.project.networks))
        if training.get("init_weights"):  # the project's path is relative to the project file
            training["init_weights"] = self.resolve(training["init_weights"])

    def loop(self) -> str:
        return LOOP

    def adapt(self, body: str, training: dict[str, Any]) -> str:
        return with_frozen_and_init(body, [], bool(training.get("init_weights")))

    def builds(self) -> dict[str, str]:
        return {"__CLASS__()": self.network}

    def description(self) -> str:
        return f"Train the language model {network_class_names(self.project)[self.network]}"

    def markers(self) -> dict[str, Any]:
        return {"__CLASS__": network_class_names(self.project)[self.network]}


def lm_train_source(project, project_dir=None, format: bool = True) -> str | None:
    """The source of ``train.py`` for a language-model project: the shared text loader and
    optimizer, and a loop that reproduces the designer's first epoch exactly and prints a sample
    after each epoch.

    Raises :class:`~designer.engine.model.pysource.CodegenError` when the settings are invalid or the
    dataset is not a text."""
    return LanguageModelScript(project, project_dir).source(format)


__all__ = ["LOOP", "RUN_HELP", "LanguageModelScript", "lm_train_source"]
