"""Dataset and training settings, declared once as data.

Each :class:`Setting` has a type, a default, a range or a list of choices and a one-line doc; the
window's settings form is generated from these declarations, and :func:`validate_dataset` /
:func:`validate_training` check a project's ``dataset`` and ``training`` sections against them,
naming the exact place of a problem (``training.lr: expected a number from 1e-08 to 10, got
"fast"``). Missing keys take their defaults; unknown keys are refused (with a suggestion), so a
typo never silently falls back to a default.

``Setting`` is :class:`designer.engine.model.schema.Param`, the class layer parameters are declared
with: settings mostly use ``int``, ``float``, ``bool``, ``choice``, ``text`` and ``texts`` (a string
or a list of strings, ``optional``: or null) and ``size`` (``[height, width]``).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from ..model.schema import PARAM_TYPES, Param, _show
from . import recipes

SETTING_TYPES = PARAM_TYPES  # one schema: layer parameters and settings share their types

DATASET_KINDS = ("digits", "synthetic", "torchvision", "image_folder", "csv", "csv_text", "text")
#: One sample of the default dataset (scikit-learn's 8x8 digits): a new design's Input starts so.
DIGITS_SHAPE = (1, 8, 8)
SYNTHETIC_NAMES = ("moons", "spirals", "linear", "sine")
TORCHVISION_NAMES = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "CIFAR100", "SVHN")
TASKS = ("classification", "regression", "reconstruction", "language_model")
#: How a text dataset is cut into tokens: characters, or lower-case words and punctuation.
TEXT_TOKENIZERS = ("char", "word")
LOSSES = ("cross_entropy", "nll", "mse", "l1", "smooth_l1", "bce_with_logits")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "plateau")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How images are normalised when dataset.normalize is on (CSV features are always standardised).
NORMALIZATIONS = ("standardize", "minus_one_one")


class ConfigError(ValueError):
    """A dataset or training setting is invalid; the message names the place and the problem."""


#: A setting is declared with the one schema class (layer parameters too): ``Setting("lr",
#: "float", 0.001, "Learning rate", min=1e-8, max=10.0)``, and ``s.key`` is its name.
Setting = Param


_FILES = ("image_folder", "csv", "csv_text", "text")
_IMAGES = ("digits", "torchvision", "image_folder")

DATASET_SETTINGS: tuple[Setting, ...] = (
    Setting("kind", "choice", "digits", "Where the data comes from", choices=DATASET_KINDS),
    Setting("name", "text", None, "Which built-in dataset: moons, spirals, linear, sine (synthetic) "
            "or MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN (torchvision)",
            optional=True, applies=(("kind", ("synthetic", "torchvision")),)),
    Setting("task", "choice", "auto", "What the model learns; auto takes the dataset's own task",
            choices=("auto",) + TASKS),
    Setting("val_fraction", "float", 0.2, "Share of the samples kept aside for validation",
            min=0.0, max=0.9, label="Validation fraction"),
    Setting("split_seed", "int", 0, "Seed of the train/validation split", min=0, max=2**31 - 1),
    Setting("normalize", "bool", True, "Normalise inputs: images as Normalization says, CSV "
            "features standardised per column with the training split's mean and std",
            applies=(("kind", _IMAGES + ("csv",)),)),
    # Older files have only "normalize"; the default keeps what they meant (standardisation).
    Setting("normalization", "choice", "standardize", "How images are normalised: standardize "
            "(per channel, with the training split's mean and std) or minus_one_one (values in "
            "[0, 1] -> (x - 0.5) / 0.5 per channel, i.e. [-1, 1], as the PyTorch tutorials' "
            "Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))", choices=NORMALIZATIONS,
            applies=(("kind", _IMAGES), ("normalize", (True,)))),
    Setting("resize", "size", None, "Resize images to [height, width] (empty: keep their size)",
            optional=True, applies=(("kind", ("torchvision", "image_folder")),)),
    Setting("grayscale", "bool", False, "Convert images to one grey channel",
            applies=(("kind", ("torchvision", "image_folder")),)),
    Setting("augment_crop_padding", "int", 0, "Random crop after padding by this many pixels "
            "(training images only; 0: off)", min=0, max=64, applies=(("kind", _IMAGES),),
            label="Augment: crop padding"),
    Setting("augment_hflip", "bool", False, "Flip training images left-right at random",
            applies=(("kind", _IMAGES),), label="Augment: horizontal flip"),
    Setting("n_samples", "int", 1000, "Number of synthetic samples", min=10, max=1_000_000,
            applies=(("kind", ("synthetic",)),)),
    Setting("noise", "float", 0.1, "Noise added to synthetic samples", min=0.0, max=10.0,
            applies=(("kind", ("synthetic",)),)),
    Setting("seed", "int", 0, "Seed of the synthetic data", min=0, max=2**31 - 1,
            applies=(("kind", ("synthetic",)),)),
    Setting("linear_w", "float", 2.0, "Slope w of y = w x + b + noise", min=-1e6, max=1e6,
            applies=(("kind", ("synthetic",)), ("name", ("linear",))), label="Linear: w"),
    Setting("linear_b", "float", 1.0, "Intercept b of y = w x + b + noise", min=-1e6, max=1e6,
            applies=(("kind", ("synthetic",)), ("name", ("linear",))), label="Linear: b"),
    Setting("path", "text", None, "Image folder, CSV file or text file (relative to the project "
            "file)",
            optional=True, applies=(("kind", _FILES),)),
    Setting("feature_columns", "texts", None, "CSV columns used as inputs (empty: all but the "
            "target)", optional=True, applies=(("kind", ("csv",)),)),
    Setting("target_column", "text", None, "CSV column to predict (empty: the last one)",
            optional=True, applies=(("kind", ("csv",)),)),
    Setting("text_column", "text", "text", "CSV column holding the text",
            applies=(("kind", ("csv_text",)),)),
    Setting("label_column", "text", "label", "CSV column holding the label",
            applies=(("kind", ("csv_text",)),)),
    Setting("vocab_size", "int", 10000, "Largest vocabulary, counting <pad> and <unk> (a text "
            "file: counting <unk>, words only; cut into characters it keeps every character)",
            min=3, max=10_000_000,
            applies=(("kind", ("csv_text", "text")),)),
    Setting("max_length", "int", 64, "Tokens per text: longer texts are cut, shorter padded",
            min=1, max=100_000, applies=(("kind", ("csv_text",)),)),
    Setting("tokenizer", "choice", "char", "How a text file is cut into tokens: char (every "
            "character, nothing unknown) or word (lower-case words and punctuation marks, the "
            "vocab_size most frequent of the training part, the rest <unk>)",
            choices=TEXT_TOKENIZERS, applies=(("kind", ("text",)),)),
    Setting("seq_length", "int", 64, "Tokens per training sequence: the text is cut into "
            "consecutive windows of this many tokens, each target the window shifted by one",
            min=1, max=100_000, applies=(("kind", ("text",)),), label="Sequence length"),
    Setting("download", "bool", True, "Download torchvision datasets on first use",
            applies=(("kind", ("torchvision",)),)),
)

# Settings every recipe shares; a recipe that does not use one lists it in its ``hides`` (the form
# greys it out). The recipes' own settings are declared in their modules (designer.engine.train.recipes).
_USES = "__uses__"  # replaced below by the ids of the recipes that use the setting
_OPT_IN = "__opt_in__"  # replaced below by the ids of the recipes that name it in ``uses``

_COMMON_TRAINING: tuple[Setting, ...] = (
    Setting("loss", "choice", "cross_entropy", "Loss function", choices=LOSSES,
            applies=(("recipe", _USES),)),
    Setting("optimizer", "choice", "adam", "Optimizer", choices=OPTIMIZERS),
    Setting("lr", "float", 0.001, "Learning rate", min=1e-8, max=10.0, label="Learning rate",
            applies=(("recipe", _USES),)),
    Setting("momentum", "float", 0.9, "Momentum (SGD, RMSprop)", min=0.0, max=0.999,
            applies=(("optimizer", ("sgd", "rmsprop")),)),
    Setting("nesterov", "bool", False, "Nesterov momentum (SGD)",
            applies=(("optimizer", ("sgd",)),)),
    Setting("weight_decay", "float", 0.0, "L2 penalty on the weights", min=0.0, max=1.0),
    Setting("l1", "float", 0.0, "L1 penalty: this times the sum of |weight| is added to the loss",
            min=0.0, max=1.0, label="L1 penalty", applies=(("recipe", _USES),)),
    Setting("scheduler", "choice", "none", "How the learning rate changes between epochs",
            choices=SCHEDULERS, label="LR scheduler"),
    Setting("step_size", "int", 10, "Epochs between learning-rate drops (step)", min=1,
            max=100_000, applies=(("scheduler", ("step",)),)),
    Setting("gamma", "float", 0.1, "Factor of each learning-rate drop (step, plateau)",
            min=1e-6, max=1.0, applies=(("scheduler", ("step", "plateau")),)),
    Setting("epochs", "int", 10, "Passes over the training data", min=1, max=100_000),
    Setting("batch_size", "int", 64, "Samples per step", min=1, max=1_000_000),
    Setting("grad_clip", "float", 0.0, "Clip the gradient norm to this (0: off)", min=0.0,
            max=1e6, label="Gradient clipping"),
    Setting("early_stopping", "int", 0, "Stop after this many epochs without a better "
            "validation loss (0: off)", min=0, max=100_000, applies=(("recipe", _USES),)),
    Setting("seed", "int", 0, "Seed of weights, shuffling and dropout (reproducible on CPU)",
            min=0, max=2**31 - 1),
    Setting("device", "choice", "auto", "Where to train (auto: CUDA, then MPS, then CPU)",
            choices=DEVICES),
    Setting("mixed_precision", "bool", False, "float16 autocast with gradient scaling (CUDA only)"),
    Setting("init_weights", "text", None, "Start from the weights in this state_dict file "
            "(relative to the project file; written by designer import --weights): every "
            "tensor whose name and shape fit the design loads, the others start fresh",
            optional=True, label="Initial weights", applies=(("recipe", _OPT_IN),)),
    Setting("init_weights_min_fit", "float", 0.5, "The initial weights must fill at least this "
            "fraction of the design's parameters by name and shape, or training refuses them "
            "(1: every parameter)", min=0.0, max=1.0, label="Initial weights must fit",
            applies=(("recipe", _OPT_IN),)),
    Setting("freeze_bn_eval", "bool", False, "BatchNorm in frozen layers and blocks stays in "
            "eval mode (its running statistics stay as they are)", label="Frozen BatchNorm in "
            "eval mode", applies=(("recipe", _OPT_IN),)),
)


def _training_settings() -> tuple[Setting, ...]:
    """The shared settings, ``recipe`` (one of the registered recipes) and each recipe's own."""
    specs = recipes.specs()
    ids = tuple(s.id for s in specs)
    common = []
    for s in _COMMON_TRAINING:
        if s.applies and s.applies[0][1] == _USES:
            users = tuple(r.id for r in specs if s.key not in r.hides)
            s = dataclasses.replace(s, applies=(("recipe", users),))
        elif s.applies and s.applies[0][1] == _OPT_IN:
            users = tuple(r.id for r in specs if s.key in r.uses)
            s = dataclasses.replace(s, applies=(("recipe", users),))
        common.append(s)
    docs = "; ".join(f"{r.id} ({r.doc})" for r in specs)
    recipe = Setting("recipe", "choice", recipes.DEFAULT_RECIPE, f"How to train: {docs}",
                     choices=ids)
    own = tuple(s for r in specs for s in r.settings)
    return (*common, recipe, *own)


TRAINING_SETTINGS: tuple[Setting, ...] = _training_settings()
RECIPES = next(s.choices for s in TRAINING_SETTINGS if s.key == "recipe")


def gather_training_settings() -> None:
    """Gather the training settings again: a recipe registered after they were first gathered
    (a plug-in imported late) adds its own. SECTIONS is updated in place."""
    global TRAINING_SETTINGS, RECIPES
    TRAINING_SETTINGS = _training_settings()
    RECIPES = next(s.choices for s in TRAINING_SETTINGS if s.key == "recipe")
    if "SECTIONS" in globals():
        SECTIONS["training"] = TRAINING_SETTINGS

SECTIONS: dict[str, tuple[Setting, ...]] = {"dataset": DATASET_SETTINGS,
                                            "training": TRAINING_SETTINGS}


def defaults(section: str) -> dict[str, Any]:
    """The default values of a section (``"dataset"`` or ``"training"``)."""
    return {s.key: _copy(s.default) for s in SECTIONS[section]}


def setting(section: str, key: str) -> Setting:
    for s in SECTIONS[section]:
        if s.key == key:
            return s
    raise KeyError(f"{section}.{key}")


def validate_section(section: str, values: Any) -> dict[str, Any]:
    """Check one section against its declarations; return it complete with defaults."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected an object, got {_show(values)}")
    decl = {s.key: s for s in SECTIONS[section]}
    for key in values:
        if key not in decl:
            close = difflib.get_close_matches(str(key), list(decl), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(decl)})"
            place = (f"{section}.{key}" if isinstance(key, str) and key.isidentifier()
                     and key.isascii() else f"{section}[{_show(key)}]")
            raise ConfigError(f"{place}: unknown setting{hint}")
    out = {}
    for key, s in decl.items():
        try:
            out[key] = s.validate(values[key]) if key in values else _copy(s.default)
        except ValueError as exc:
            raise ConfigError(f"{section}.{key}: {exc}") from None
    return out


def effective_section(section: str, values: Any) -> dict[str, Any]:
    """Every declared setting of a section as a run uses it: the value in ``values`` where it
    is valid, else the setting's default (a missing key, or a hand-edited file's lr "fast", which
    the window shows as the default and says so). Unknown keys are left out. The one reading of
    a project's settings that the settings form, Train, Sweeps and the memory estimate share."""
    values = values if isinstance(values, dict) else {}
    out = {}
    for s in SECTIONS[section]:
        try:
            out[s.key] = s.validate(values[s.key]) if s.key in values else _copy(s.default)
        except ValueError:
            out[s.key] = _copy(s.default)
    return out


def effective_training(values: Any) -> dict[str, Any]:
    """The complete ``training`` section a run uses (:func:`effective_section`)."""
    return effective_section("training", values)


def validate_dataset(values: Any) -> dict[str, Any]:
    """A complete, checked ``dataset`` section.

    ``kind`` may be left out when ``name`` says it all (``{"name": "digits"}``,
    ``{"name": "MNIST"}``); names of built-in datasets are matched without regard to case.
    """
    values = dict(values or {}) if isinstance(values, dict) or values is None else values
    if isinstance(values, dict):
        name = values.get("name")
        if isinstance(name, str):
            kind, canonical = resolve_dataset_name(name)
            if kind is not None:
                values.setdefault("kind", kind)
                if values["kind"] == kind:
                    values["name"] = canonical
        if values.get("kind") == "digits" and values.get("name") == "digits":
            values["name"] = None
    out = validate_section("dataset", values)
    kind, name = out["kind"], out["name"]
    if kind == "synthetic":
        if name not in SYNTHETIC_NAMES:
            raise ConfigError(f"dataset.name: expected one of {', '.join(SYNTHETIC_NAMES)} for a "
                              f"synthetic dataset, got {_show(name)}")
    elif kind == "torchvision":
        if name not in TORCHVISION_NAMES:
            raise ConfigError(f"dataset.name: expected one of {', '.join(TORCHVISION_NAMES)} for "
                              f"a torchvision dataset, got {_show(name)}")
    elif kind in _FILES and not out["path"]:
        what = {"image_folder": "an image folder", "text": "a UTF-8 text file"}.get(kind,
                                                                                "a CSV file")
        raise ConfigError(f"dataset.path: {what} is needed for a dataset of kind {kind}")
    if out["normalization"] != "standardize" and kind not in _IMAGES:
        why = {"csv": "CSV features are standardised per column with the training split's mean "
                      "and std (set dataset.normalization to standardize, or dataset.normalize "
                      "to false)",
               "csv_text": "a CSV text dataset holds token ids, which are not normalised "
                           "(remove dataset.normalization)",
               "text": "a text dataset holds token ids, which are not normalised (remove "
                       "dataset.normalization)",
               "synthetic": "synthetic data is used as generated, not normalised (remove "
                            "dataset.normalization)"}[kind]
        raise ConfigError(f"dataset.normalization: {out['normalization']} applies to images "
                          f"(digits, torchvision, image_folder); {why}")
    return out


def validate_training(values: Any) -> dict[str, Any]:
    """A complete, checked ``training`` section."""
    return validate_section("training", values)


def resolve_dataset_name(name: str) -> tuple[str | None, str]:
    """The kind and canonical spelling of a built-in dataset name (``"mnist"`` -> MNIST)."""
    low = name.strip().lower()
    if low == "digits":
        return "digits", "digits"
    for n in SYNTHETIC_NAMES:
        if n == low:
            return "synthetic", n
    for n in TORCHVISION_NAMES:
        if n.lower() == low.replace("-", ""):
            return "torchvision", n
    return None, name


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, (list, tuple)) else v


__all__ = [
    "DATASET_KINDS",
    "DATASET_SETTINGS",
    "DEVICES",
    "LOSSES",
    "NORMALIZATIONS",
    "OPTIMIZERS",
    "RECIPES",
    "SCHEDULERS",
    "SECTIONS",
    "SYNTHETIC_NAMES",
    "TASKS",
    "TEXT_TOKENIZERS",
    "TORCHVISION_NAMES",
    "TRAINING_SETTINGS",
    "ConfigError",
    "Setting",
    "defaults",
    "effective_section",
    "effective_training",
    "resolve_dataset_name",
    "setting",
    "validate_dataset",
    "validate_section",
    "validate_training",
]
