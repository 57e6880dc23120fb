"""The supervised recipe's exported train.py: one network, one loss, torchrun/DDP, frozen
layers, initial weights and auxiliary outputs as the designer trains them (its hooks of the one
skeleton, :class:`~designer.engine.train.recipes.script.TrainScript`)."""

from __future__ import annotations

from typing import Any

from ....document.naming import network_class_names
from ....model.blocks import model_names
from ....model.graph import Graph, is_aux_output
from ....model.pysource import CodegenError, literal
from ..script import (
    DDP_OPTIMIZER,
    DISTRIBUTED_SETUP,
    MAKE_OPTIMIZER,
    MAKE_SCHEDULER,
    PICK_DEVICE,
    SHARD,
    STEP_AND_BEST,
    TrainScript,
    checkpoints_and_end,
    main_head,
)
from . import SUPERVISED

LOOP = ('''

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

LOSSES = {
    "cross_entropy": nn.CrossEntropyLoss,
    "nll": nn.NLLLoss,
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smooth_l1": nn.SmoothL1Loss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
}

''' + MAKE_OPTIMIZER + "\n" + MAKE_SCHEDULER + '''

def loss_target(y, out, data, loss_name):
    """Targets in the form the loss expects for this output."""
    if data.task == "classification":
        if loss_name in ("cross_entropy", "nll"):
            return y
        if out.dim() == 2 and out.shape[1] == 1:  # one logit for two classes
            return y.to(out.dtype).unsqueeze(1)
        return nn.functional.one_hot(y, len(data.classes)).to(out.dtype).view_as(out)
    return y.view_as(out) if y.numel() == out.numel() else y

''' + SHARD + '''

def train(args, model, device, data, optimizer, scaler, loss_fn, epoch, rank, world, generators):
    """One epoch; returns the mean training loss over all processes."""
    cfg = CONFIG["training"]
    model.train()
    perm = shard(data.x_train.shape[0], rank, world, generators["shuffle"]).to(device)
    bs = args.batch_size
    if len(perm) > bs and len(perm) % bs == 1:  # a batch of one breaks BatchNorm
        perm = perm[:-1]
    l1_params = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    amp = cfg["mixed_precision"] and device.type == "cuda"
    loss_sum, count = torch.zeros((), dtype=torch.float64, device=device), 0
    batches = math.ceil(len(perm) / bs)
    for b in range(batches):
        idx = perm[b * bs : (b + 1) * bs]
        x, y = data.batch("train", idx, augment=True, generator=generators["augment"])
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            output = model(x)
            loss = loss_fn(output, loss_target(y, output, data, cfg["loss"]))
        loss_sum += loss.detach().double() * len(idx)
        count += len(idx)
        if cfg["l1"]:
            loss = loss + cfg["l1"] * sum(p.abs().sum() for p in l1_params)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip"]:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        if rank == 0 and (b % args.log_interval == 0 or b == batches - 1):
            done = min((b + 1) * bs, len(perm)) * world
            print(f"Train epoch {epoch} [{done}/{len(perm) * world}]  loss {loss.item():.4f}")
        if args.dry_run:
            break
    total = torch.stack([loss_sum, torch.tensor(float(count), dtype=torch.float64, device=device)])
    if world > 1:
        dist.all_reduce(total)
    return (total[0] / total[1].clamp_min(1)).item()


@torch.no_grad()
def evaluate(args, model, device, data, loss_fn, rank, world):
    """Loss (and accuracy) on the validation split, shared out over the processes."""
    model.eval()
    idx_all = torch.arange(rank, data.x_val.shape[0], world, device=device)
    total = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, samples
    bs = max(args.batch_size, 256)
    for start in range(0, len(idx_all), bs):
        idx = idx_all[start : start + bs]
        x, y = data.batch("val", idx)
        output = model(x)
        loss = loss_fn(output, loss_target(y, output, data, CONFIG["training"]["loss"]))
        total[0] += loss.double() * len(idx)
        total[2] += len(idx)
        if data.task == "classification":
            pred = output.argmax(1) if output.dim() == 2 and output.shape[1] > 1 else (output.view(-1) > 0).long()
            total[1] += (pred == y).sum()
        if args.dry_run:
            break
    if world > 1:
        dist.all_reduce(total)
    count = max(total[2].item(), 1)
    result = {"loss": total[0].item() / count}
    if data.task == "classification":
        result["accuracy"] = total[1].item() / count
    return result

''' + PICK_DEVICE + "\n\n" + main_head(
    samples="samples per step and process", out="folder for best.pt and last.pt",
    seed="seed of weights and shuffling") + DISTRIBUTED_SETUP + '''
    torch.manual_seed(args.seed)
    generators = {
        "shuffle": torch.Generator().manual_seed(args.seed),  # the same on every process
        "augment": torch.Generator().manual_seed(args.seed + 1 + rank),
    }
    data = load_data(args.data).to(device)
    # The same seed gives the same initial weights as the designer; dropout starts from it again.
    model = __CLASS__().to(device)
''' + DDP_OPTIMIZER + '''    loss_fn = LOSSES[cfg["loss"]]()
    if rank == 0:
        sizes = f"{data.x_train.shape[0]} training and {data.x_val.shape[0]} validation samples"
        print(f"{sizes}, device {device}, {world} process(es)")
        os.makedirs(args.out, exist_ok=True)

    best, since_best = None, 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_loss = train(args, model, device, data, optimizer, scaler, loss_fn, epoch, rank, world, generators)
        if distributed:  # BatchNorm statistics: every process continues with rank 0's
            for buffer in plain.buffers():
                dist.broadcast(buffer, 0)
        val = evaluate(args, plain, device, data, loss_fn, rank, world) if data.x_val.shape[0] else {}
        monitored = val.get("loss", train_loss)
''' + STEP_AND_BEST + '''        if rank == 0:
            shown = "  ".join(f"val {k} {v:.4f}" for k, v in val.items())
            seconds = time.perf_counter() - start
            print(f"Epoch {epoch}: train loss {train_loss:.4f}  {shown}  ({seconds:.1f} s)")
''' + checkpoints_and_end('"classes": data.classes,', '"vocab": data.vocab,'))

RUN_HELP = (
    "Run:",
    "    python train.py                      # settings from the project; see --help",
    "    python train.py --epochs 1 --dry-run  # check the set-up on one batch",
    "On several processes (one per GPU, or CPU processes with gloo), with PyTorch's launcher:",
    "    torchrun --nproc_per_node=4 train.py",
    "    across machines: add torchrun's --nnodes, --node_rank and --rdzv-endpoint arguments",
    "--batch-size is per process. Checkpoints go to --out: best.pt (the epoch with the lowest",
    "validation loss; the training loss without validation data) and last.pt (the last epoch);",
    "load the weights with: from model import load; model = load('checkpoints/best.pt')",
)


class SupervisedScript(TrainScript):
    """train.py for the project's one model (None for projects with several networks or
    another recipe)."""

    run_help = RUN_HELP
    kinds = ("digits", "synthetic", "torchvision", "image_folder", "csv", "csv_text")

    def has_networks(self) -> bool:
        return len(model_names(self.project.networks)) == 1

    def applies(self, training: dict[str, Any]) -> bool:
        return training["recipe"] == (self.spec or SUPERVISED).id

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        self.network = model_names(self.project.networks)[0]
        self.cls = network_class_names(self.project)[self.network]
        self.frozen = frozen_paths(self.project, self.network)
        if training.get("init_weights"):  # the project's path is relative to the project file
            training["init_weights"] = self.resolve(training["init_weights"])

    def loop(self) -> str:
        return LOOP

    def adapt(self, body: str, training: dict[str, Any]) -> str:
        body = with_frozen_and_init(body, self.frozen, bool(training.get("init_weights")))
        return with_aux_outputs(body, self.project.networks[self.network])

    def builds(self) -> dict[str, str]:
        return {"__CLASS__()": self.network}

    def description(self) -> str:
        return f"Train {self.cls}, a network designed with designer"

    def markers(self) -> dict[str, str]:
        return {"__CLASS__": self.cls}


def train_source(project, project_dir=None, format: bool = True, spec=None) -> str | None:
    """The source of ``train.py`` for the project's network, or None for projects with several
    networks or another recipe than ``spec`` (default: supervised training).

    Raises :class:`CodegenError` when the dataset or training settings are invalid."""
    return SupervisedScript(project, project_dir, spec).source(format)


def frozen_paths(project, network: str) -> list[str]:
    """The module paths of the frozen layers and block uses (``Node.frozen``) of a network, as
    the built design names them (the exported model's names: its state_dict keys are the
    design's); only modules holding weights or buffers. Empty when nothing is frozen."""
    if not any(n.frozen for g in project.networks.values() for n in g.nodes.values()):
        return []
    import torch  # deferred: torch loads only when this runs

    from ....model.build import (  # deferred: torch loads only when this runs
        BuildError,
        build_model,
        is_frozen,
    )

    try:
        with torch.device("meta"):
            model = build_model(project.networks[network])
    except BuildError as exc:
        raise CodegenError(str(exc)) from None
    paths: list[str] = []
    for name, module in model.named_modules():
        if not name or not is_frozen(module) or any(name.startswith(p + ".") for p in paths):
            continue
        if next(module.parameters(), None) is not None or next(module.buffers(), None) is not None:
            paths.append(name)
    for name, p in model.named_parameters():  # a frozen Parameter layer: a tensor, no module
        if not p.requires_grad and not any(name.startswith(q + ".") for q in paths):
            paths.append(name)
    return paths


FROZEN = '''

# Layers and blocks frozen in the designer: not trained (requires_grad off, so the optimizer
# leaves them out); with CONFIG["training"]["freeze_bn_eval"] their BatchNorm stays in eval mode.
FROZEN = __FROZEN__


def freeze(model):
    for path in FROZEN:
        for p in frozen_parameters(model, path):
            p.requires_grad_(False)


def frozen_parameters(model, path):
    """The parameters of a frozen module, or the frozen tensor itself (a Parameter layer)."""
    try:
        return list(model.get_submodule(path).parameters())
    except AttributeError:
        return [model.get_parameter(path)]


def train_mode(model):
    """model.train(), with frozen BatchNorm kept in eval mode when freeze_bn_eval is set."""
    model.train()
    if CONFIG["training"].get("freeze_bn_eval"):
        plain = getattr(model, "module", model)  # under DistributedDataParallel
        for path in FROZEN:
            for m in plain.get_submodule(path).modules() if path in dict(plain.named_modules()) else ():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
'''

INIT_WEIGHTS = '''

def load_init_weights(model, path, min_fit, verbose=True):
    """The starting weights (training.init_weights), as the designer loads them: every tensor of
    the state_dict file whose name and shape fit the model loads, the others keep their fresh
    initialisation. A file that fits nothing, or fills less than min_fit of the parameters
    (training.init_weights_min_fit), is refused. A relative path starts at this script's folder.
    Returns what loaded and what started fresh (kept in the checkpoints' config)."""
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state.get("model"), dict):  # a checkpoint
        state = state["model"]
    want = model.state_dict()
    params = dict(model.named_parameters(remove_duplicate=False))
    fits = [k for k, v in want.items() if isinstance(state.get(k), torch.Tensor)
            and tuple(state[k].shape) == tuple(v.shape)]
    differs = {k: {"file": list(getattr(state[k], "shape", [])), "design": list(v.shape)}
               for k, v in want.items() if k in state and k not in fits}
    missing = [k for k in want if k not in state]
    total = sum(v.numel() for k, v in want.items() if k in params)
    loaded = sum(want[k].numel() for k in fits if k in params)
    fraction = loaded / total if total else len(fits) / max(1, len(want))
    if not fits:
        raise SystemExit(f"error: training.init_weights: {path} fits nothing in the model: no "
                         "tensor matches by name and shape; nothing was loaded")
    if fraction < min_fit:
        raise SystemExit(f"error: training.init_weights: {path} fills only {fraction:.2%} of the "
                         f"model's parameters, less than training.init_weights_min_fit "
                         f"({min_fit:.2%}); these would start fresh: {', '.join(sorted([*differs, *missing]))}")
    model.load_state_dict({k: state[k] for k in fits}, strict=False)
    report = {"path": path, "min_fit": min_fit, "fraction": round(fraction, 6),
              "loaded_parameters": loaded, "parameters": total, "loaded": fits,
              "fresh": {"shape_differs": differs, "not_in_file": missing},
              "unused_from_file": [k for k in state if k not in want]}
    if verbose:
        print(f"Initial weights {path}: loaded {len(fits)} of {len(want)} tensors ({loaded:,} of "
              f"{total:,} parameters, {fraction:.2%}); {len(differs) + len(missing)} start fresh")
        for k, shapes in differs.items():
            print(f"  started fresh, another shape in the file: {k} (the file {shapes['file']}, "
                  f"the model {shapes['design']})")
        for k in missing:
            print(f"  started fresh, not in the file: {k}")
    return report
'''


def with_frozen_and_init(body: str, frozen: list[str], init_weights: bool) -> str:
    """The supervised training script with its frozen module paths and initial weights (the
    designer's build and recipe do the same); unchanged when the design has neither."""
    if not frozen and not init_weights:
        return body
    build = "    model = __CLASS__().to(device)\n"
    if body.count(build) != 1 or body.count("    model.train()\n") != 1:  # pragma: no cover
        raise CodegenError("internal: the training script has no single model build/train()")
    added = ""
    if init_weights:
        added += ('    CONFIG["init_weights"] = load_init_weights(\n'
                  '        model, cfg["init_weights"], cfg["init_weights_min_fit"], rank == 0)\n')
    helpers = INIT_WEIGHTS if init_weights else ""
    if frozen:
        added += "    freeze(model)\n"
        helpers += FROZEN.replace("__FROZEN__", literal(frozen))
        body = body.replace("    model.train()\n", "    train_mode(model)\n")
    body = body.replace(build, build + added)
    at = body.index("\n\ndef train(args,")
    return body[:at] + helpers.rstrip("\n") + "\n" + body[at:]


def with_aux_outputs(body: str, graph: Graph) -> str:
    """The supervised training script for a model with auxiliary outputs (training only): the
    loss adds each one's weighted loss, as designer.engine.train.training.SupervisedRecipe does, in
    the same order. Unchanged for a model without them."""
    weights = [float(n.params["aux_weight"]) for n in graph.outputs() if is_aux_output(n)]
    if not weights:
        return body
    step = ('            output = model(x)\n'
            '            loss = loss_fn(output, loss_target(y, output, data, cfg["loss"]))\n')
    if body.count(step) != 1:  # pragma: no cover - the template changed
        raise CodegenError("internal: the training script has no single training loss")
    aux = ('            output, *aux = model(x)  # in training mode: the main output, then the '
           'auxiliary ones\n'
           '            loss = loss_fn(output, loss_target(y, output, data, cfg["loss"]))\n'
           '            for weight, extra in zip(AUX_WEIGHTS, aux):\n'
           '                loss = loss + weight * loss_fn(extra, loss_target(y, extra, data, '
           'cfg["loss"]))\n')
    body = body.replace(step, aux)
    at = body.index("\n\ndef train(args,")
    return (body[:at] + f"\n\nAUX_WEIGHTS = {literal(tuple(weights))}  # the loss weights of "
            "the auxiliary outputs" + body[at:])


__all__ = ["FROZEN", "INIT_WEIGHTS", "LOOP", "RUN_HELP", "SupervisedScript", "frozen_paths",
           "train_source", "with_aux_outputs", "with_frozen_and_init"]
