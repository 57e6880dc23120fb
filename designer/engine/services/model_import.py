"""Import an existing PyTorch model into a project: ``designer import`` and File > Import model….

:func:`load_spec` makes the model a SPEC names, :func:`import_to_project` turns it into a
project and, when asked, writes its weights beside the project file (``<stem>.weights.pt``,
tensors only) and points ``training.init_weights`` at them. Saving the project is left to the
caller (the CLI writes it at once, the window after the worker thread hands it back).

Hugging Face ``transformers:ClassName`` and ``timm:NAME`` are built from their configs (random
weights, nothing downloaded; ``--config`` overrides, :func:`parse_config`) unless ``--pretrained``
asks for the library's own download; :func:`spec_input_defaults` gives the input such a model takes
(token ids, its image size). Both libraries are the optional extra ``designer[hf]``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError

SPEC_HELP = ("the model: torchvision:NAME (built with weights=None, nothing downloaded), "
             "transformers:ClassName (a Hugging Face model class, e.g. "
             "transformers:BertForSequenceClassification, built from its config class with "
             "--config overrides, random weights, nothing downloaded; "
             "transformers:ClassName@hub-id with --pretrained), timm:NAME (timm.create_model "
             "with pretrained=False and --config overrides, e.g. timm:resnet18), "
             "module.path:callable (imported), path/to/file.py:ClassOrFactory (the file is "
             "EXECUTED as Python code: import only files you trust; the callable is called "
             "without arguments), or path/to/model.pt2, a torch.export.save file (read as "
             "tensors and program only, never unpickled; its example input gives the input "
             "shape)")
SPEC_FORMS = ("torchvision:NAME, transformers:ClassName[@hub-id], timm:NAME, "
              "module.path:callable, file.py:ClassOrFactory or path/to/model.pt2")
CONFIG_HELP = ("a setting of a transformers:/timm: model: key=value (the value read as JSON when "
               "it parses, e.g. num_hidden_layers=2, else as text, e.g. hidden_act=gelu; "
               "repeatable) or path/to/config.json (a JSON object, read as data only; later "
               "options override it)")
#: One sample's shape when neither the caller, a .pt2 program's example input nor the model
#: (:func:`spec_input_defaults`) gives one.
DEFAULT_INPUT_SHAPE = (3, 224, 224)
#: Token ids per sample a transformers text model is imported for, unless told otherwise.
DEFAULT_TOKENS = 16
INPUT_DTYPES = ("float32", "int64", "bool")
#: The optional packages the Hugging Face specs need, and the extra that installs them.
HF_EXTRA = "pip install 'designer[hf]'"
_PRETRAINED_FOR = "--pretrained is for torchvision:NAME, transformers:ClassName@hub-id and timm:NAME"
# Settings every PreTrainedConfig takes although a built config has no attribute of that name.
_CONFIG_KEYWORDS = frozenset({"attn_implementation"})


@dataclass(frozen=True)
class ConfigOverrides:
    """``--config`` settings: ``values`` by name, in the order given; ``typed`` names those given
    as key=value, which must be settings the config class knows (a typo is refused), while a JSON
    file's keys pass as they are (a hub's config.json carries bookkeeping keys of other versions).
    """

    values: dict[str, Any] = field(default_factory=dict)
    typed: frozenset[str] = frozenset()


def parse_config(items: Iterable[str]) -> ConfigOverrides:
    """``--config`` options as overrides: each ``key=value`` (the value parsed as a JSON literal
    when it parses, else kept as text) or a path to a JSON object file (read as JSON only, never
    executed). Later options override earlier ones; ValueError says what is wrong."""
    values: dict[str, Any] = {}
    typed: set[str] = set()
    for item in items:
        path = Path(item).expanduser()
        if path.is_file() or ("=" not in item and item.endswith(".json")):
            for key, value in _config_file(path).items():
                values[key] = value
                typed.discard(key)
            continue
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--config {item!r}: expected key=value (e.g. num_hidden_layers=2) "
                             "or a .json file")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text  # hidden_act=gelu: text
        typed.add(key)
    return ConfigOverrides(values, frozenset(typed))


def _config_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except OSError as exc:
        raise ValueError(f"--config {path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"--config {path}: not a text file; expected a JSON object") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--config {path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a JSON object of settings, not "
                         f"{type(data).__name__}")
    return data


def spec_library(spec: str) -> str:
    """The library whose pretrained weights ``spec`` names (torchvision, transformers, timm), or
    "" for the other forms."""
    where = spec.partition(":")[0]
    return where if where in ("torchvision", "transformers", "timm") else ""


def offline_message(library: str, window: bool = False) -> str:
    """What --pretrained says when the library's download cannot reach the network; the window
    names its own way to load weights later."""
    later = ("load a state_dict file later with File > Load weights…" if window else
             "set training.init_weights to a state_dict file later")
    whose = f"{library}'" if library.endswith("s") else f"{library}'s"  # transformers'
    return (f"{whose} pretrained weights could not be downloaded (no network?). Import "
            f"without them, or {later}.")


class PretrainedUnavailable(OSError):
    """--pretrained: the library's download found no network (``error``, what it raised)."""

    def __init__(self, library: str, error: BaseException) -> None:
        super().__init__(offline_message(library))
        self.library, self.error = library, error


# Exceptions raised (or chained) when a download cannot reach the network, by class name: the
# Hugging Face hub and its HTTP clients are optional packages not imported here.
_OFFLINE_ERRORS = frozenset({"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError",
                             "ConnectTimeout", "ConnectionError", "ProxyError"})
_OFFLINE_WORDS = ("urlopen", "URLError", "Temporary failure", "Name or service",
                  "Network is unreachable", "getaddrinfo", "couldn't connect",
                  "Internet connection")


def is_offline_error(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it was raised from) says the network is unreachable: what
    torchvision's, transformers' and timm's downloads raise offline."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (URLError, socket.gaierror, ConnectionError, TimeoutError)):
            return True
        if any(t.__name__ in _OFFLINE_ERRORS for t in type(exc).__mro__):
            return True
        if any(w in str(exc) for w in _OFFLINE_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _download(library: str, make, *args, **kwargs):
    """``make(*args, **kwargs)``, a call that downloads weights: an offline failure becomes
    :class:`PretrainedUnavailable`, worded as for every library."""
    try:
        return make(*args, **kwargs)
    except Exception as exc:
        if is_offline_error(exc):
            raise PretrainedUnavailable(library, exc) from exc
        raise


def _optional(name: str):
    """The optional package ``name`` (transformers, timm), or ImportError naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{name} is not installed: {HF_EXTRA}") from exc


def _closest(word: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _transformers_model(attr: str, pretrained: bool, config: ConfigOverrides):
    """``transformers:ClassName[@hub-id]``: ``ClassName(ConfigClass(**overrides))`` in eval mode,
    or with ``pretrained`` ``ClassName.from_pretrained(hub-id)`` (transformers' own download)."""
    transformers = _optional("transformers")
    class_name, _, hub_id = attr.partition("@")
    try:
        cls = getattr(transformers, class_name)
    except (AttributeError, ImportError, RuntimeError):
        cls = None
    config_cls = getattr(cls, "config_class", None)
    if not isinstance(cls, type) or not isinstance(config_cls, type):
        names = [n for n in dir(transformers) if n[:1].isupper()]
        raise ValueError(f"transformers:{class_name}: not a transformers model class with a "
                         f"config class, e.g. BertForSequenceClassification"
                         f"{_closest(class_name, names)}")
    values = dict(config.values)
    # torch.export cannot trace the DynamicCache a cached forward returns; a dataclass output
    # keeps its named fields (logits first)
    values.setdefault("use_cache", False)
    values.setdefault("return_dict", True)
    _check_config_keys(config_cls, config.typed)
    if pretrained:
        if not hub_id:
            raise ValueError(f"--pretrained with transformers:{class_name}: name the weights as "
                             f"transformers:{class_name}@hub-id (e.g. @bert-base-uncased)")
        model = _download("transformers", cls.from_pretrained, hub_id, **values)
    elif hub_id:
        raise ValueError(f"transformers:{attr}: a hub id names pretrained weights: add "
                         f"--pretrained, or leave out @{hub_id} to build from {config_cls.__name__}")
    else:
        try:
            model = cls(config_cls(**values))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"transformers:{class_name} with {config_cls.__name__}"
                             f"({_settings(values)}): {exc}") from exc
    return model.eval(), class_name


def _check_config_keys(config_cls: type, keys: Iterable[str]) -> None:
    """A key=value the config class does not know is a typo: refused, with the names close to it
    (configs keep any unknown keyword as an attribute, silently)."""
    try:
        default = config_cls()
    except Exception:  # noqa: BLE001 - a config with required arguments: no check
        return
    known = set(default.to_dict()) | set(getattr(config_cls, "attribute_map", {}))
    for key in sorted(keys):
        if key not in known and key not in _CONFIG_KEYWORDS and not hasattr(default, key):
            raise ValueError(f"--config {key}: {config_cls.__name__} has no setting {key!r}"
                             f"{_closest(key, known)}")


def _settings(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _timm_model(name: str, pretrained: bool, config: ConfigOverrides):
    """``timm:NAME``: ``timm.create_model(NAME, pretrained=..., **overrides)`` in eval mode."""
    timm = _optional("timm")
    if not timm.is_model(name):
        raise ValueError(f"timm:{name}: timm has no such model{_closest(name, timm.list_models())}")
    values = dict(config.values)
    try:
        if pretrained:
            model = _download("timm", timm.create_model, name, pretrained=True, **values)
        else:
            model = timm.create_model(name, pretrained=False, **values)
    except (TypeError, RuntimeError) as exc:  # a keyword the model does not take; no weights
        raise ValueError(f"timm:{name}" + (f" with {_settings(values)}" if values else "")
                         + f": {exc}") from exc
    return model.eval(), name


def spec_input_defaults(model: Any) -> tuple[tuple[int, ...], str]:
    """The input one sample of ``model`` takes when none is given: (shape without the batch,
    dtype "float32" or "int64"). A transformers text model (``main_input_name`` input_ids):
    :data:`DEFAULT_TOKENS` int64 token ids; a vision one (pixel_values): its config's channels and
    image size; timm: its ``pretrained_cfg["input_size"]``; else :data:`DEFAULT_INPUT_SHAPE`."""
    main = getattr(model, "main_input_name", None)
    config = getattr(model, "config", None)
    if main == "input_ids":
        most = getattr(config, "max_position_embeddings", None)
        tokens = min(DEFAULT_TOKENS, most) if isinstance(most, int) and most > 0 else DEFAULT_TOKENS
        return (tokens,), "int64"
    if main == "pixel_values":
        size = getattr(config, "image_size", None) or DEFAULT_INPUT_SHAPE[-1]  # HF ResNet: none
        h, w = (size, size) if isinstance(size, int) else tuple(size)[-2:]
        return (int(getattr(config, "num_channels", 3)), int(h), int(w)), "float32"
    if main == "input_features" and hasattr(config, "num_mel_bins"):  # Whisper: log-mel frames
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        return (int(config.num_mel_bins), frames), "float32"
    cfg = getattr(model, "pretrained_cfg", None)  # timm
    if isinstance(cfg, Mapping) and cfg.get("input_size"):
        return tuple(int(s) for s in cfg["input_size"]), "float32"
    return DEFAULT_INPUT_SHAPE, "float32"


def load_spec(spec: str, pretrained: bool = False, input_shape: tuple[int, ...] | None = None,
              config: ConfigOverrides | Mapping[str, Any] | None = None):
    """The module a SPEC names, and a name for it. A ``.pt2`` file is the module tree of its
    ExportedProgram (``torch.export.unflatten``), loaded without unpickling anything.
    ``config``: settings of a transformers:/timm: model (:func:`parse_config`; a plain mapping's
    keys are all checked against the config class). A missing optional package is an ImportError
    naming the pip line; --pretrained without a network is :class:`PretrainedUnavailable`."""
    if isinstance(config, Mapping):
        config = ConfigOverrides(dict(config), frozenset(config))
    config = config or ConfigOverrides()
    where = spec.rpartition(":")[0]
    if config.values and where not in ("transformers", "timm"):
        raise ValueError("--config is for transformers:ClassName and timm:NAME only")
    if spec.endswith(".pt2") and ":" not in Path(spec).name:
        if pretrained:
            raise ValueError(_PRETRAINED_FOR)
        from ..interop.importing import load_program, model_class_name, unflatten_program  # torch

        module = unflatten_program(load_program(spec))
        name = model_class_name(module)
        return module, name if name != "UnflattenedModule" else Path(spec).stem
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"{spec!r}: expected {SPEC_FORMS}")
    if where == "torchvision":
        import torchvision  # torch: loaded only to make the model

        kwargs = {}
        if attr.startswith("vit_") and input_shape is not None and not pretrained:
            kwargs["image_size"] = input_shape[-1]
        if pretrained:
            return _download("torchvision", torchvision.models.get_model, attr,
                             weights="DEFAULT", **kwargs), attr
        return torchvision.models.get_model(attr, weights=None, **kwargs), attr
    if where == "transformers":
        return _transformers_model(attr, pretrained, config)
    if where == "timm":
        return _timm_model(attr, pretrained, config)
    if pretrained:
        raise ValueError(_PRETRAINED_FOR)
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"{where}: no such file")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules.setdefault(path.stem, module)
        mod_spec.loader.exec_module(module)  # runs the file: said in --help
    else:
        module = importlib.import_module(where)
    factory = getattr(module, attr, None)
    if factory is None:
        raise ValueError(f"{where} has no {attr!r}")
    model = factory()
    import torch  # the user's module imported it already

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model, attr


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,224,224"`` (or ``3x224x224``) as a shape; ValueError says what is wrong."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--input-shape {text!r}: expected sizes such as 3,224,224") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"--input-shape {text!r}: expected positive sizes such as 3,224,224")
    return shape


class WeightsNotWritten(OSError):
    """The model was imported but its weights file could not be written; ``report`` is the
    import's report, ``error`` the OSError that stopped the write."""

    def __init__(self, error: OSError, report: Any) -> None:
        super().__init__(*error.args)
        self.error, self.report = error, report

    def __str__(self) -> str:
        return str(self.error)


@dataclass
class ImportedModel:
    """What :func:`import_to_project` made: the project (None when the import failed: the
    report says why, and ``error`` when the report alone does not), the import report and the
    weights file written (None: not asked)."""

    project: Any
    report: Any
    weights_file: Path | None = None
    error: str = ""


NOTHING_KEPT = ("nothing was imported: the model's first part with no designer layer comes "
                "before any layer, so the partial design would be empty (export refuses one)")


def import_to_project(model, name: str, input_shape: tuple[int, ...] | None = None, *,
                      partial: bool = False, weights_beside: str | Path | None = None,
                      input_dtype: str | None = None) -> ImportedModel:
    """Import ``model`` (put in eval mode) as a project named ``name``.

    ``input_shape``: one sample's shape without the batch (None: a .pt2 program's example
    input, else the model's own, :func:`spec_input_defaults`). ``input_dtype``: the input's
    dtype, one of :data:`INPUT_DTYPES` (None: the model's own, float32 unless it takes token
    ids). ``partial``: keep what can be mapped; a partial import that kept no layer at all is a
    failed one (project None: an empty design export would refuse). With
    ``weights_beside`` (the project file's path), the model's state_dict is written beside it as
    ``<stem>.weights.pt`` and the project's ``training.init_weights`` names that file
    (:class:`WeightsNotWritten` when it cannot be written). A failed import returns a project of None with its report."""
    from ..interop.importing import (  # torch
        ImportFailed,
        example_input_shape,
        import_model,
        save_weights,
        weights_path,
    )  # deferred: torch loads only when this runs

    default_shape, default_dtype = spec_input_defaults(model)
    if input_shape is None:
        input_shape = example_input_shape(model) or default_shape
    input_dtype = input_dtype or default_dtype
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input dtype {input_dtype!r}: expected one of {', '.join(INPUT_DTYPES)}")
    # the keyword only when it says something (float32: every import's input until
    # import_model took int64 and bool inputs)
    dtype = {} if input_dtype == "float32" else {"input_dtype": input_dtype}
    model.eval()
    try:
        project, report = import_model(model, input_shape, name=name, partial=partial, **dtype)
    except ImportFailed as exc:
        return ImportedModel(None, exc.report)
    if partial and not report.ok and kept_nothing(project):
        return ImportedModel(None, report, error=NOTHING_KEPT)
    result = ImportedModel(project, report)
    if weights_beside is not None:
        wfile = weights_path(weights_beside)
        try:
            save_weights(model.state_dict(), wfile)
        except OSError as exc:
            raise WeightsNotWritten(exc, report) from exc
        project.training = {**project.training, "init_weights": wfile.name}
        result.weights_file = wfile
    return result


def kept_nothing(project: Any) -> bool:
    """True when no network of ``project`` holds anything but Inputs and Outputs: a --partial
    import that stopped before its first layer."""
    return all(n.kind.is_input or n.kind.is_output
               for g in project.networks.values() for n in g.nodes.values())
