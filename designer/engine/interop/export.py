"""Export a project: ``model.py`` and ``train.py`` (see :mod:`.codegen`), trained weights, ONNX and
a ``torch.export`` program.

:func:`export_project` writes a folder and returns the paths it wrote; the ``designer export``
command and the window's export dialog both call it. ONNX needs the optional extra
``designer[export]`` (onnx, onnxscript; onnxruntime to check the result); it is imported only when
asked for.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..document.atomic import atomic_write_text
from ..document.project import Project
from ..model.blocks import model_names
from ..model.build import BuildError, build_model, ordered_io, plan
from ..model.catalog import CATALOG
from ..model.pysource import CodegenError
from ..model.shapes import analyze
from ..train.recipes import UnknownRecipe, recipe_of
from ..train.runs import RunError, project_stem, read_torch_file
from . import codegen

ONNX_OPSET = 18
CHECKPOINT_NAMES = ("best.pt", "last.pt")


class ExportError(ValueError):
    """Something cannot be exported; the message says what and what to do."""


@dataclass
class ExportResult:
    """What :func:`export_project` wrote, and notes for the user (e.g. a skipped part)."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Sources for a live preview
# --------------------------------------------------------------------------------------------


def preview_sources(project: Project, project_dir: str | os.PathLike | None = None,
                    format: bool = True) -> dict[str, str]:
    """``{"model.py": source, "train.py": source}`` for the code preview (no files written).

    Raises :class:`~designer.engine.model.pysource.CodegenError` when the design has errors; a project
    whose training script cannot be written yet (several networks) has no ``train.py`` entry."""
    out = {"model.py": codegen.model_source(project, format=format)}
    try:  # each recipe writes its own train.py (designer.engine.train.recipes)
        spec = recipe_of(project)
    except UnknownRecipe as exc:
        raise CodegenError(str(exc)) from None
    train = spec.train_source(project, project_dir=project_dir, format=format)
    if train is not None:
        out["train.py"] = train
    return out


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def checkpoint_path(source: str | os.PathLike) -> Path:
    """The checkpoint file meant by ``source``: a ``.pt`` file, or a run folder (its ``best.pt``,
    else ``last.pt``)."""
    p = Path(source)
    if p.is_dir():
        for name in CHECKPOINT_NAMES:
            if (p / name).is_file():
                return p / name
        raise ExportError(f"{p}: no checkpoint in this folder (expected {' or '.join(CHECKPOINT_NAMES)}"
                          " from a training run)")
    if not p.is_file():
        raise ExportError(f"{p}: no such file or run folder")
    return p


def latest_run(project_path: str | os.PathLike, project_name: str = "untitled") -> Path:
    """The newest run folder with a checkpoint that ``designer train`` (or the window) wrote for
    this project file: ``<project folder>/runs/<project stem>/<timestamp>/``."""
    root = Path(project_path).resolve().parent / "runs" / project_stem(project_path, project_name)
    found = sorted((d for d in root.glob("*") if d.is_dir()
                    and any((d / n).is_file() for n in CHECKPOINT_NAMES)),
                   key=lambda d: (d.stat().st_mtime, d.name))
    if not found:
        raise ExportError(f"no trained run of this project in {root}: train it first (designer "
                          "train FILE), or name a run folder or checkpoint")
    return found[-1]


def load_state_dict(source: str | os.PathLike, network: str | None = None
                    ) -> dict[str, torch.Tensor]:
    """A model state_dict from a checkpoint (``{"model": state_dict, ...}``), a bare state_dict,
    or a run folder. Loaded with ``weights_only=True``: nothing in the file is executed."""
    path = checkpoint_path(source)
    try:
        data = read_torch_file(path)
    except RunError as exc:
        raise ExportError(str(exc)) from None
    state = _find_state_dict(data, network)
    if state is None and isinstance(data, dict):
        named = [k for key in ("model", "models") if isinstance(data.get(key), dict)
                 for k, v in data[key].items() if _is_state_dict(v)]
        if named:  # e.g. a GAN run's checkpoint given to a one-network project
            wanted = f"the network {network!r}" if network else "one network's weights"
            raise ExportError(f"{path}: holds the weights of the networks {', '.join(named)}, not "
                              f"{wanted}; is it a run of another project?")
    if state is None:
        raise ExportError(f"{path}: holds no model weights (expected a state_dict, or a checkpoint "
                          "with a 'model' entry)")
    return {_strip_prefix(k): v for k, v in state.items()}


def _is_state_dict(d: Any) -> bool:
    return (isinstance(d, dict) and bool(d)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items()))


def _find_state_dict(data: Any, network: str | None) -> dict[str, torch.Tensor] | None:
    if _is_state_dict(data):
        return data
    if not isinstance(data, dict):
        return None
    for key in ("model", "model_state_dict", "state_dict"):
        value = data.get(key)
        if _is_state_dict(value):
            return value
        if isinstance(value, dict) and network and _is_state_dict(value.get(network)):
            return value[network]
    models = data.get("models")
    if isinstance(models, dict) and network and _is_state_dict(models.get(network)):
        return models[network]
    return None


def _strip_prefix(key: str) -> str:
    """Keys saved from a DDP or torch.compile wrapper carry a prefix the plain model lacks."""
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def fit_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``model``, or explain which layers do not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append("unknown " + ", ".join(unexpected[:5])
                         + (" ..." if len(unexpected) > 5 else ""))
        if wrong:
            parts.append("other shape: " + ", ".join(wrong[:5]))
        raise ExportError(f"{where}: the weights do not fit this design ({'; '.join(parts)}); "
                          "were they trained on another version of it?")
    model.load_state_dict(state)


# --------------------------------------------------------------------------------------------
# ONNX and torch.export
# --------------------------------------------------------------------------------------------


def _vocabulary_param(layer_type: str) -> str:
    """The parameter that counts the token ids a layer takes ("num_embeddings"), or ""."""
    fit = getattr(CATALOG.get(layer_type), "data_fit", None)
    return fit.vocabulary if fit is not None else ""


def example_inputs(graph, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes and dtypes (token ids below the smallest vocabulary)."""
    analysis = analyze(graph)
    steps = plan(graph, analysis)
    input_ids, _ = ordered_io(graph, steps)
    vocab = min((n.params[param] for n in graph.nodes.values()
                 if (param := _vocabulary_param(n.type))), default=2)
    g = torch.Generator().manual_seed(seed)
    out = []
    for nid in input_ids:
        node = graph.nodes[nid]
        shape = (batch, *node.params["shape"])
        if node.params.get("dtype") == "int64":
            out.append(torch.randint(0, vocab, shape, generator=g))
        else:
            out.append(torch.randn(shape, generator=g))
    return tuple(out)


def _quiet():
    """Silence the exporters' progress prints and warnings (they are not for our users)."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


class _Exportable(torch.nn.Module):
    """``model`` one level down. torch.export rebuilds the network as a ``torch.fx.GraphModule``,
    where a layer named like one of its attributes (a layer called ``code`` or ``graph``) is
    silently lost: ONNX export fails and the ``.pt2`` program cannot be loaded."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model(*inputs)


def _exportable(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself, or wrapped when one of its top-level names clashes with ``GraphModule``
    (the wrapped one's parameter names gain a ``model.`` prefix)."""
    import torch.fx  # deferred: torch loads only when this runs

    names = {name.split(".", 1)[0] for name, _ in model.state_dict().items()}
    names |= {name for name, _ in model.named_children()}
    return _Exportable(model) if names & set(dir(torch.fx.GraphModule)) else model


def export_onnx(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: str | os.PathLike,
                input_names: list[str], output_names: list[str], opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` as one self-contained ONNX file with a dynamic batch dimension.

    Uses the dynamo exporter (needs onnx and onnxscript), or the TorchScript exporter when only
    onnx is installed."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' and 'onnxscript' packages: "
                          "pip install 'designer[export]'") from None
    try:
        import onnxscript  # noqa: F401
        dynamo = True
    except ImportError:
        dynamo = False
    path = Path(path)
    model = _exportable(model.eval())
    try:
        with _quiet(), torch.no_grad():
            if dynamo:
                batch = torch.export.Dim("batch", min=1, max=1 << 20)
                program = torch.onnx.export(
                    model, inputs, None, dynamo=True, opset_version=opset,
                    input_names=input_names, output_names=output_names,
                    dynamic_shapes=(tuple({0: batch} for _ in inputs),),
                    external_data=False, verbose=False,
                )
                program.save(str(path))
            else:
                torch.onnx.export(
                    model, inputs, str(path), dynamo=False, opset_version=max(opset, 17),
                    input_names=input_names, output_names=output_names,
                    dynamic_axes={n: {0: "batch"} for n in [*input_names, *output_names]},
                )
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporters raise many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ONNX export failed: {first[:300]}") from None
    return path


def export_program(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...],
                   path: str | os.PathLike) -> Path:
    """Write a ``torch.export`` program (``.pt2``) with a dynamic batch dimension; load it with
    ``torch.export.load(path).module()``."""
    path = Path(path)
    model = _exportable(model.eval())
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        with _quiet():
            program = torch.export.export(model, inputs,
                                          dynamic_shapes=(tuple({0: batch} for _ in inputs),))
            torch.export.save(program, str(path))
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.export failed: {first[:300]}") from None
    return path


# --------------------------------------------------------------------------------------------
# The whole folder
# --------------------------------------------------------------------------------------------


def export_project(project: Project, out_dir: str | os.PathLike, *, onnx: bool = False,
                   pt2: bool = False, weights: str | os.PathLike | None = None,
                   project_dir: str | os.PathLike | None = None,
                   result: ExportResult | None = None) -> list[Path]:
    """Write ``model.py``, ``train.py`` and, as asked, ``weights.pt``, ONNX and ``.pt2`` files
    into ``out_dir``; return the paths written.

    ``weights`` is a run folder or a checkpoint file; ``project_dir`` is the project file's folder
    (relative dataset paths resolve against it). Raises :class:`ExportError` or
    :class:`CodegenError` with a message for the user; nothing is written when the design has
    errors."""
    result = result if result is not None else ExportResult()
    sources = preview_sources(project, project_dir=project_dir)  # fails before writing anything
    if "train.py" not in sources:
        result.notes.append("train.py is written for supervised training of one network; "
                            "this project trains otherwise (several models or a GAN recipe)")
    models = _models(project, weights)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out}: cannot create the folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise ExportError(f"{out}: the folder is not writable")
    written: list[Path] = []
    for name, text in sources.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    if weights is not None:
        path = out / "weights.pt"
        if len(models) == 1:
            state = next(iter(models.values())).state_dict()
        else:
            state = {net: m.state_dict() for net, m in models.items()}
        torch.save(state, path)
        written.append(path)
    if onnx or pt2:
        single = len(models) == 1
        codes = codegen.model_codes(project)[1] if onnx else {}
        for net, model in models.items():
            graph = project.networks[net]
            stem = "model" if single else net
            inputs = example_inputs(graph)
            if onnx:
                code = codes[net]
                written.append(export_onnx(model, inputs, out / f"{stem}.onnx",
                                           code.input_names, code.output_names))
            if pt2:
                written.append(export_program(model, inputs, out / f"{stem}.pt2"))
    result.paths[:] = written
    return written


def _models(project: Project, weights: str | os.PathLike | None) -> dict[str, torch.nn.Module]:
    """The built models (block definitions are parts of them, not models), in eval mode, with
    the given weights loaded."""
    names = model_names(project.networks)
    models: dict[str, torch.nn.Module] = {}
    for net in names:
        graph = project.networks[net]
        try:
            model = build_model(graph)
        except BuildError as exc:
            raise CodegenError(str(exc)) from None
        if weights is not None:
            state = load_state_dict(weights, net if len(names) > 1 else None)
            fit_weights(model, state, str(checkpoint_path(weights)))
        models[net] = model.eval()
    return models


__all__ = [
    "ONNX_OPSET",
    "ExportError",
    "ExportResult",
    "checkpoint_path",
    "example_inputs",
    "export_onnx",
    "export_program",
    "export_project",
    "fit_weights",
    "latest_run",
    "load_state_dict",
    "preview_sources",
]
