"""One train.py skeleton for every recipe, and the pieces the recipes' scripts share.

A recipe's exported ``train.py`` is written by :meth:`TrainScript.source`, the one skeleton: the
settings are validated, the data part of the project's dataset kind is put first (each loader
mirrors :mod:`designer.engine.train.data` so the split, preprocessing and normalisation are the same;
tests/engine/test_export_train.py compares the tensors; :mod:`.loaders`), then the recipe's own loop (its
``train()``, ``evaluate()`` and ``main()``, built from the shared pieces below: the device choice,
the argparse set-up, torchrun/DDP, the scheduler, the checkpoints); the project's searched values
become flags, and the settings enter as one ``CONFIG`` literal written by ``literal``. Nothing
else from the project is pasted in. A recipe subclasses :class:`TrainScript` and fills its hooks
(its loop, help text, markers); see :mod:`.supervised.script` for the fullest one.

This module imports :mod:`designer.engine.interop.codegen` and so torch: a recipe imports it when it
writes a script, never when it is only declared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...document.naming import file_header, network_class_names
from ...interop.codegen import written_models
from ...model.pysource import CodegenError, comment_text, example_input, format_source, literal
from ..config import ConfigError, setting, validate_dataset, validate_training
from .loaders import LOADERS, NUMBER_KINDS, PATH_KINDS, TEXT_KINDS, data_part

# ---------------------------------------------------------------------------------------------
# The loop's shared pieces
# ---------------------------------------------------------------------------------------------

# The optimizer of every exported train.py (supervised and GAN alike), as the designer's
# training.make_optimizer builds it: the same arguments give the same first epoch.
MAKE_OPTIMIZER = '''
def make_optimizer(cfg, params, lr=None, betas=None):
    """The configured optimizer at lr (default: cfg["lr"]); Adam and AdamW with betas (default:
    torch's (0.9, 0.999); the GAN passes (beta1, 0.999))."""
    params = [p for p in params if p.requires_grad]
    lr = cfg["lr"] if lr is None else lr
    betas = (0.9, 0.999) if betas is None else betas
    wd, name = cfg["weight_decay"], cfg["optimizer"]
    if name == "sgd":
        nesterov = cfg["nesterov"] and cfg["momentum"] > 0
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=nesterov, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
'''


MAKE_SCHEDULER = """
def make_scheduler(cfg, optimizer):
    if cfg["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg["step_size"], cfg["gamma"])
    if cfg["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["gamma"], patience=2)
    return None
"""

SHARD = '''
def shard(n, rank, world, generator):
    """This process's share of a shuffled epoch: the same permutation on every process, padded
    (as DistributedSampler does) so that every process runs the same number of batches."""
    perm = torch.randperm(n, generator=generator)
    if world > 1:
        perm = torch.cat([perm, perm[: (-n) % world]])[rank::world]
    return perm
'''

PICK_DEVICE = """
def pick_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    return torch.device(name)
"""

#: main()'s lines after the flags, under torchrun: this process's rank and device.
DISTRIBUTED_SETUP = """
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
"""

#: After ``model`` is built: DistributedDataParallel around it, its optimizer and scheduler.
DDP_OPTIMIZER = """    torch.manual_seed(args.seed)
    plain = model
    if distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg["mixed_precision"] and device.type == "cuda")
"""

#: After an epoch's ``monitored`` loss: the scheduler's step and whether the epoch is the best.
STEP_AND_BEST = """        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        improved = best is None or monitored < best
        best, since_best = (monitored, 0) if improved else (best, since_best + 1)
"""

MAIN_CALL = """

if __name__ == "__main__":
    main()
"""


def checkpoints_and_end(*extra: str) -> str:
    """The end of a one-network script's epoch (rank 0 writes last.pt and, when the epoch is
    the best, best.pt; early stopping) and of main() (torchrun's processes leave together).
    ``extra``: more lines of the checkpoint dict (``'"vocab": data.vocab,'``)."""
    keys = "".join(f"                {line}\n" for line in extra)
    return ("""            checkpoint = {
                "model": plain.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "config": CONFIG,
""" + keys + """            }
            torch.save(checkpoint, os.path.join(args.out, "last.pt"))
            if improved:
                torch.save(checkpoint, os.path.join(args.out, "best.pt"))
        if args.dry_run or (cfg["early_stopping"] and since_best >= cfg["early_stopping"]):
            break
    if distributed:
        dist.barrier()  # rank 0 may still be writing samples or checkpoints: leave together
        dist.destroy_process_group()
    return plain
""" + MAIN_CALL)


def two_networks(first: str, second: str, noise: str) -> str:
    """main()'s set-up in a script that trains two networks (``first`` built with the seed,
    ``second`` with seed + 1, as the designer builds them) and previews from a fixed noise batch
    of shape ``(PREVIEW, *noise)`` (``noise``: code)."""
    return f"""    device = pick_device(args.device)
    shuffle = torch.Generator().manual_seed(args.seed)
    data = load_data(args.data).to(device)
    # The same seeds give the same initial weights and preview noise as the designer.
    torch.manual_seed(args.seed)
    {first} = __{first.upper()}__().to(device)
    torch.manual_seed(args.seed + 1)
    {second} = __{second.upper()}__().to(device)
    torch.manual_seed(args.seed)  # the training noise
    fixed_noise = torch.randn((PREVIEW, {noise}), generator=torch.Generator().manual_seed(args.seed + 2))
    fixed_noise = fixed_noise.to(device)
"""


def argument(flag: str, help: str, type: str | None = None, default: str | None = None,
             action: str | None = None) -> str:
    """One ``parser.add_argument`` line of main(); ``default`` is code (``'cfg["lr"]'``)."""
    parts = [f'"{flag}"']
    if type is not None:
        parts.append(f"type={type}")
    if default is not None:
        parts.append(f"default={default}")
    if action is not None:
        parts.append(f'action="{action}"')
    parts.append(f'help="{help}"')
    return f"    parser.add_argument({', '.join(parts)})\n"


def rate(flag: str, setting: str, help: str) -> tuple[str, str]:
    """A float flag that sets a training setting (``--lr`` sets ``lr``): its argument line and
    its ``cfg.update`` item."""
    return (argument(flag, help, "float", f'cfg["{setting}"]'),
            f"{setting}=args.{flag[2:].replace('-', '_')}")


def main_head(*, samples: str, out: str, seed: str, rates: Sequence[tuple[str, str]] = (),
              more: Sequence[str] = (), data: str = "data") -> str:
    """main()'s beginning, the same in every script: the flags (epochs, the recipe's learning
    rates (default: --lr), batch size, device, data, out, seed, ``more``, log interval, dry
    run), then the settings updated from them. ``samples``: the help of --batch-size; ``data``:
    what an epoch passes over."""
    rates = rates or (rate("--lr", "lr", "learning rate"),)
    return ('def main(argv=None):\n    cfg = CONFIG["training"]\n'
            "    parser = argparse.ArgumentParser(description=__DESCRIPTION__)\n"
            + argument("--epochs", f"passes over the training {data}", "int", 'cfg["epochs"]')
            + "".join(line for line, _ in rates)
            + argument("--batch-size", samples, "int", 'cfg["batch_size"]')
            + argument("--device", "auto, cpu, cuda or mps", default='cfg["device"]')
            + DATA_ARGUMENT
            + argument("--out", out, default='"checkpoints"')
            + argument("--seed", seed, "int", 'cfg["seed"]')
            + "".join(more)
            + argument("--log-interval", "batches between log lines", "int", "10")
            + argument("--dry-run", "one batch of each phase, to check the set-up",
                       action="store_true")
            + "    args = parser.parse_args(argv)\n"
            + f"    cfg.update(epochs=args.epochs, {', '.join(u for _, u in rates)}, "
            "batch_size=args.batch_size, seed=args.seed)\n")


DATA_ARGUMENT = '    parser.add_argument("--data", default=__DATA_DEFAULT__, help=__DATA_HELP__)\n'

BUILD_MODEL = '''

def build_model(cls, kwargs, *example):
    """The model with the searched arguments, checked on an example batch before training: a
    value it cannot be built with is refused here, naming the argument."""
    try:
        model = cls(**kwargs)
        model.eval()
        with torch.no_grad():
            model(*example)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        defaults = inspect.signature(cls).parameters
        changed = [f"--{k.replace('_', '-')} {v}" for k, v in kwargs.items() if v != defaults[k].default]
        raise SystemExit(f"{cls.__name__} cannot be built with {' '.join(changed) or 'its defaults'}: {exc}") from None
    return model.train()
'''

YES_NO = '''

def yes_no(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
'''


def with_search_arguments(body: str, project, builds: dict[str, str]) -> str:
    """A training script (before its markers are replaced) that also accepts the project's
    searched values (:func:`search_arguments`): one flag per searched training setting it lacks,
    applied to ``cfg`` right after the flags are read, and one per argument of a model's class,
    passed where the model is built. ``builds`` maps each ``__MARKER__()`` that builds a model to
    its network. Without a search section the script is unchanged."""
    writer, args = written_models(project)
    if not args:
        return body
    have = set(re.findall(r'default=cfg\["(\w+)"\]', body)) | {"device"}
    parse = "    args = parser.parse_args(argv)\n"
    update = re.search(r"\n    cfg\.update\([^\n]*\)\n", body)
    if body.count(parse) != 1 or update is None:  # pragma: no cover - a template changed
        raise CodegenError("internal: the training script has no single parse_args/cfg.update")
    flags, settings, model_args = [], [], {}
    for a in args:
        if a.setting is not None and a.setting in have:
            continue
        if a.network is not None and a.network not in builds.values():
            continue
        kind = {"int": "type=int, ", "float": "type=float, ", "bool": "type=yes_no, "}.get(
            a.type, "")
        choices = f"choices={literal(list(a.choices))}, " if a.choices else ""
        default = literal(a.default)
        if a.setting is not None:
            what = comment_text(a.setting.replace("_", " "))
            settings.append(f"{a.name}=args.{a.name}")
        else:
            what = comment_text(a.label.split(".", 1)[1])
            model_args.setdefault(a.network, []).append(a.name)
        help_text = literal(f"{what}, searched by the project's sweep".replace("%", "%%"))
        flags.append(f'    parser.add_argument("{a.flag}", {kind}{choices}default={default}, '
                     f"help={help_text})\n")
    if not flags:
        return body
    body = body.replace(parse, "".join(flags) + parse)
    end = body.index("\n", body.index("    cfg.update(", body.index(parse))) + 1
    added = ""
    if settings:
        added += f"    cfg.update({', '.join(settings)})\n"
    for marker, net in builds.items():
        names = model_args.get(net)
        if not names:
            continue
        var = "model_args" if len(builds) == 1 else f"{net}_args"
        added += f"    {var} = {{{', '.join(f'{literal(n)}: args.{n}' for n in names)}}}\n"
        code = writer.model_code[net]
        example = ", ".join(example_input(s, d).replace("torch.randn(1, ", "torch.zeros(2, ")
                            .replace("torch.zeros(1, ", "torch.zeros(2, ")
                            for s, d in zip(code.input_shapes, code.input_dtypes))
        if body.count(marker) != 1:  # pragma: no cover - a template changed
            raise CodegenError(f"internal: the training script builds {marker} not once")
        body = body.replace(marker, f"build_model({marker[:-2]}, {var}, {example})")
    if model_args:
        keys = [f"{literal(n)}: args.{n}" for names in model_args.values() for n in names]
        added += f'    CONFIG["model_args"] = {{{", ".join(keys)}}}  # load() in model.py reads it\n'
    body = body[:end] + added + body[end:]
    helpers = (BUILD_MODEL if model_args else "") + (
        YES_NO if "type=yes_no" in "".join(flags) else "")
    if helpers:
        at = body.index("\ndef main(")
        body = body[:at] + helpers.rstrip("\n") + "\n\n" + body[at:]
        if model_args and "import inspect\n" not in body:
            body = body.replace("import argparse\n", "import argparse\nimport inspect\n", 1)
    return body


def without_data_argument(body: str) -> str:
    """The training script for a built-in dataset (digits, synthetic): no ``--data`` flag, and
    ``load_data()`` takes no path."""
    for old, new in ((DATA_ARGUMENT, ""), ("load_data(args.data)", "load_data()"),
                     ("def load_data(path):", "def load_data():")):
        if body.count(old) != 1:  # pragma: no cover - a template changed; fail loudly
            raise CodegenError(f"internal: the training script has no single {old.strip()!r}")
        body = body.replace(old, new)
    return body


def applying(section: str, values: dict[str, Any], project=None) -> dict[str, Any]:
    """The settings that matter for this project (no SGD momentum for Adam, no CSV columns for
    digits); the training script reads no others. A setting that matters under another value of
    a searched setting is kept too (a search over adam and sgd needs sgd's momentum when train.py
    is run with ``--optimizer sgd``)."""

    searched = searched_settings(project) if project is not None else set()
    return {k: v for k, v in values.items()
            if setting(section, k).applies_to(values)
            or any(key in searched for key, _ in setting(section, k).applies)}


def searched_settings(project) -> set[str]:
    dims = (getattr(project, "search", None) or {}).get("dimensions") or []
    return {d["target"]["setting"] for d in dims if isinstance(d, dict)
            and isinstance(d.get("target"), dict) and isinstance(d["target"].get("setting"), str)}


# ---------------------------------------------------------------------------------------------
# The skeleton
# ---------------------------------------------------------------------------------------------


class TrainScript:
    """One recipe's exported train.py: the hooks that :meth:`source`, the one skeleton, calls.

    A recipe subclasses it, sets the class attributes and overrides :meth:`loop` and
    :meth:`markers` (and what else differs), and returns ``MyScript(project, project_dir)
    .source(format)`` from its :meth:`~designer.engine.train.recipes.RecipeSpec.train_source`.
    """

    #: The header's first line: "<what> for the designer project: <name>".
    what = "Training script"
    #: The header's help on running the script, one line each.
    run_help: tuple[str, ...] = ()
    #: The dataset kinds the script learns from (the others are refused with :meth:`kind_error`).
    kinds: tuple[str, ...] = tuple(LOADERS)
    #: Whether the script runs under torchrun (DistributedDataParallel); False drops its imports.
    distributed = True

    def __init__(self, project, project_dir=None, spec=None) -> None:
        self.project = project
        self.project_dir = project_dir
        self.spec = spec  # the recipe writing it (a subclass of a built-in reuses its script)

    # -- hooks ---------------------------------------------------------------------------------

    def has_networks(self) -> bool:
        """Whether the project has the networks this script trains (False: no script yet)."""
        return bool(self.project.networks)

    def applies(self, training: dict[str, Any]) -> bool:
        """False: the project trains with another recipe, which writes its own script."""
        return True

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        """Raise :class:`CodegenError` when no script can be written, saying what to change
        (and note what the other hooks need: class names, the network's shape...)."""

    def kind_error(self, kind: str) -> str:
        return f"a {kind} dataset cannot be trained on by this recipe's train.py"

    def loop(self) -> str:
        """The script after its data part: the recipe's step, ``train()``, ``evaluate()``,
        ``main()`` (see :func:`main_head` and the other shared pieces)."""
        raise NotImplementedError

    def adapt(self, body: str, training: dict[str, Any]) -> str:
        """The assembled script before the searched values become flags (e.g. frozen layers)."""
        return body

    def builds(self) -> dict[str, str]:
        """``__MARKER__()`` -> network for each model build whose searched arguments are flags
        (empty: the networks' searched sizes keep their defaults)."""
        return {}

    def description(self) -> str:
        """argparse's description. No user text: argparse %-formats it ("%(prog)s %d" as a
        project name made --help raise TypeError); the project name is in the header comment."""
        raise NotImplementedError

    def markers(self) -> dict[str, str]:
        """The loop's own ``__MARKER__`` -> code (``__CLASS__``: the model.py classes imported)."""
        raise NotImplementedError

    # -- the skeleton --------------------------------------------------------------------------

    def source(self, format: bool = True) -> str | None:
        """The train.py source (None: no script for this project). Raises :class:`CodegenError`
        when the dataset or training settings are invalid or do not suit the recipe."""
        if not self.has_networks():
            return None
        try:
            dataset = validate_dataset(self.project.dataset)
            training = validate_training(self.project.training)
        except ConfigError as exc:
            raise CodegenError(str(exc)) from None
        if not self.applies(training):
            return None
        kind = dataset["kind"]
        if kind not in self.kinds:
            raise CodegenError(self.kind_error(kind))
        self.check(dataset, training)
        if kind in PATH_KINDS and dataset["path"]:
            dataset["path"] = self.resolve(dataset["path"])
        body = self.adapt(data_part(kind, self.distributed) + self.loop(), training)
        body = with_search_arguments(body, self.project, self.builds())
        if kind in TEXT_KINDS:
            body = body.replace("import os\n", "import os\nimport re\n", 1)
        if "np." not in body:  # digits and CSV loaders do without numpy
            body = body.replace("import numpy as np\n", "", 1)
        if kind in PATH_KINDS:
            what = "the UTF-8 text file" if kind == "text" else "the dataset file or folder"
            data_default, data_help = dataset["path"], f"{what} (default: %(default)s)"
        elif kind == "torchvision":
            data_default = "data"
            data_help = "folder for the downloaded dataset (default: %(default)s)"
        else:
            data_default, data_help = None, None
            body = without_data_argument(body)
        config = {"dataset": applying("dataset", dataset),
                  "training": applying("training", training, self.project)}
        replacements = {
            **self.markers(),
            "__CONFIG__": literal(config),
            "__DESCRIPTION__": literal(self.description()),
            "__DATA_DEFAULT__": literal(data_default),
            "__DATA_HELP__": literal(data_help),
        }
        # One pass over the template's own markers: text already put in is never searched again.
        body = re.sub("|".join(map(re.escape, replacements)), lambda m: replacements[m.group(0)],
                      body)
        header = file_header(self.project, self.what)
        header += ["#", *("# " + line for line in self.run_help)]
        source = "\n".join(header) + "\n" + body
        return format_source(source) if format else source

    def resolve(self, path: str) -> str:
        """A path of the project, absolute: a relative one starts at the project file's folder."""
        if self.project_dir is None:
            return path
        p = Path(path).expanduser()
        return path if p.is_absolute() else str((Path(self.project_dir) / p).resolve())


class TwoNetworkScript(TrainScript):
    """train.py for a recipe that trains two networks of model.py (a GAN's, a VAE's) on images or
    vectors of numbers, in one process: ``first`` and ``second`` are the networks' names, and
    ``__FIRST__`` / ``__SECOND__`` (upper-cased) the markers of their classes in the loop."""

    kinds = NUMBER_KINDS
    distributed = False
    first = ""
    second = ""
    #: What the recipe is called in the description and the errors ("GAN").
    title = ""

    def has_networks(self) -> bool:
        return {self.first, self.second} <= set(self.project.networks)

    def kind_error(self, kind: str) -> str:
        return (f"a {self.title} learns images or vectors of numbers; a {kind} dataset holds "
                "token ids (choose an image or table dataset)")

    def description(self) -> str:
        classes = network_class_names(self.project)
        return (f"Train the {self.title} {classes[self.first]} + {classes[self.second]}, "
                "designed with designer")

    def markers(self) -> dict[str, str]:
        classes = network_class_names(self.project)
        a, b = classes[self.first], classes[self.second]
        return {"__CLASS__": ", ".join(sorted({a, b})), f"__{self.first.upper()}__": a,
                f"__{self.second.upper()}__": b}
