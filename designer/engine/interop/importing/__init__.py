"""Import an existing PyTorch model into an editable design (``designer import``).

:func:`import_model` traces a module with ``torch.fx``, one module at a time: the module's own
``forward`` is traced with every submodule it calls kept whole. A submodule the catalog can
represent (``nn.Conv2d``, ``nn.ReLU``, torchvision's ``StochasticDepth`` ...) becomes that layer;
any other submodule becomes a **block use** whose network is the submodule imported the same way,
named after its class (``BasicBlock``). Instances with the same structure share one definition;
the values that differ between them (channels, stride) become block parameters, and instances
that differ in structure (a ResNet stage's first block with its ``downsample``) get a definition
each (``BasicBlock``, ``BasicBlock_2``). An ``nn.Sequential`` numbered 0, 1, ... becomes a
sequential network, so the built design's state_dict keys are the module's own
(``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``). A submodule called with a list of
tensors that its forward concatenates at once (DenseNet's ``_DenseLayer``) takes one tensor: the
caller concatenates the list with a Concat layer.

Functions and operators (``torch.flatten``, ``F.relu``, ``+``, ``+=``, ``torch.cat``,
``x.mean(...)``, ``x[:, 0]``, ``view``/``reshape``/``permute``/``transpose``/``chunk``) map to
catalog layers; a bare parameter (ViT's class token, ConvNeXt's layer scale) becomes a
Parameter layer, the network's own tensor as in the module. A child whose attribute is no name
(RegNet's ``block1-0``) keeps it as the layer's module attribute (``Node.attr``), so every key
of the module's state_dict is the design's. Reshapes hold the sizes of the input shape the model
was imported for. Children that only training mode calls (GoogLeNet's aux heads) make the
model's own forward be traced in training mode: its extra results become auxiliary Outputs
(training only, loss weight :data:`AUX_WEIGHT`).

An ``ExportedProgram`` (a ``.pt2`` file, or ``torch.export`` run on the model when fx cannot
trace its own forward, e.g. a branch on a shape) is unflattened to the model's module tree, and
each module's ATen graph is mapped the same way: one op on a module's own weights is that catalog
layer, a module of a class the catalog has whose forward export decomposed (nn.MultiheadAttention,
LayerNorm2d) is that layer, ATen ops map as their torch functions, and the keys stay the model's.
A block whose own forward fx cannot trace is exported alone on the input it received, the same way
(``ImportReport.via_export_blocks``).

Nothing is dropped silently: every op, module or weight that cannot be mapped is an
:class:`Unsupported` entry of the :class:`ImportReport` with its module path and the source line
fx recorded; ``torch.fx`` failing on data-dependent control flow is one entry that says so.
:func:`import_model` raises :class:`ImportFailed` carrying the report, or with ``partial=True``
stops each network at its first unsupported part.

:func:`load_weights` loads a state_dict file (``torch.load(weights_only=True)``) into a built
design by key and reports missing, unexpected and shape-mismatched keys.

Which module, function or method becomes which layer is declared next to each layer in the
catalog (:mod:`designer.engine.model.catalog.importers`); this package is the machinery: report
(:mod:`.report`), torch.export (:mod:`.exported`), probing and tracing (:mod:`.tracing`), fx
nodes to layers (:mod:`.nodes`), block definitions (:mod:`.sharing`) and files (:mod:`.files`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...document.project import Project
from ...model.graph import Graph
from ...model.layout import wrapped_positions
from ...model.weights import read_weights
from .exported import (
    example_input_shape,
    export_program,
    is_exported,
    model_class_name,
    unflatten_program,
)
from .files import (
    WeightsReport,
    build_design,
    check_state_dict,
    count_parameters,
    load_program,
    load_weights,
    save_weights,
    weights_path,
)
from .kept import FUNCTION, TENSOR
from .nodes import AUX_WEIGHT, ImportedNet
from .report import ImportFailed, ImportReport, Unsupported, exception_source
from .sharing import net_graph, share_definitions
from .tracing import ModuleImporter, import_exported, output_names


def import_model(module: Any, input_shape: tuple[int, ...] | list[int] | None, name: str = "",
                 partial: bool = False, input_dtype: str = "float32"
                 ) -> tuple[Project, ImportReport]:
    """An editable design of ``module`` for inputs of ``input_shape`` (one sample, no batch),
    and the report of the import. Raises :class:`ImportFailed` listing what cannot be mapped,
    unless ``partial``: then each network stops at its first unsupported part.

    ``module`` may be a ``torch.export.ExportedProgram`` (or :func:`unflatten_program`'s module):
    its ATen graphs are mapped instead of tracing, and ``input_shape`` None means its example
    input's. When torch.fx cannot trace the model's own forward (control flow on a shape), the
    model is exported (``torch.export.export(strict=False)`` on the probe input) and imported so.

    ``input_dtype``: "float32", "int64" (token ids: the probe feeds ids 0 and 1, which every
    vocabulary has) or "bool". What no catalog layer stands for is kept as code (Function
    layers) and tensors used as they are become Tensor layers, so a model that runs imports.
    """
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype {input_dtype!r}: one of {', '.join(INPUT_DTYPES)}")
    source = module
    if isinstance(module, torch.export.ExportedProgram):
        module = unflatten_program(module)
    example = getattr(module, "designer_example_shape", None) if is_exported(module) else None
    if input_shape is None:
        if example is None:
            raise ValueError("no input shape given and the model holds no example input")
        input_shape = example[1:]
    name = name or model_class_name(module)
    report = ImportReport(name, [int(s) for s in input_shape], partial=partial,
                          input_dtype=input_dtype)
    imp = ModuleImporter(module, report, partial)
    if example is not None and list(example[1:]) == list(input_shape):
        imp.batch = example[0]  # an exported program runs at its own batch size
    x = probe_input(imp.batch, input_shape, input_dtype)
    config = getattr(module, "config", None)  # a Hugging Face model: no cache (export needs it)
    if getattr(config, "use_cache", None):
        config.use_cache = False
    try:
        out = imp.probe(x)
        imp.output_names = output_names(out)
        if imp.lost_in_eval():  # heads that run in training only (GoogLeNet's aux1, aux2)
            out = imp.probe(x, training=True)
            # only when training returns more tensors than eval's one (else the child is unused
            # and reported as such, and training-only branches are not baked into the design)
            imp.training_top = isinstance(out, tuple) and len(out) > 1 and all(
                isinstance(t, torch.Tensor) for t in out)
    except Exception as exc:  # noqa: BLE001
        made = (f" (the exported program was made for inputs of shape {list(example[1:])})"
                if example is not None else "")
        report.unsupported.append(Unsupported("", "forward", f"the model does not run on inputs "
                                              f"of shape {list(input_shape)}{made}: {exc}",
                                              exception_source(exc)))
        raise ImportFailed(report) from None
    top = imp.import_module(module, "", "")
    if imp.top_failure is not None:  # fx cannot trace the model's forward: torch.export can?
        imp, top = _export_fallback(module, x, report, partial, imp.top_failure)
        module = imp.root
    elif report.unsupported and not is_exported(module) and not imp.training_top:
        # fx traced it, but parts do not map (a function of the model's own, a module called
        # with numbers): the whole model through torch.export, kept when that maps everything
        retry = _export_retry(module, x, report, imp)
        if retry is not None:
            imp, top = retry
            module = imp.root
    if report.unsupported and not partial:
        raise ImportFailed(report)
    networks: dict[str, Graph] = {}
    share_definitions(top, networks, report)
    model = net_graph(top, {})
    model.sequential = top.sequential
    ordered = {"model": model, **dict(reversed(list(networks.items())))}
    for g in ordered.values():
        for nid, pos in wrapped_positions(g).items():
            g.move(nid, pos)
    for n in model.inputs():
        n.params["shape"] = [int(s) for s in input_shape]
    report.layers = sum(len(g.nodes) for g in ordered.values())
    report.parameters = sum(p.numel() for p in module.parameters())
    _count_editable(ordered, report)
    what = f"{type(source).__module__}.{type(source).__qualname__}"
    if isinstance(source, torch.export.ExportedProgram) or is_exported(source):
        what = f"an ExportedProgram of {model_class_name(module)}"
    project = Project(name=name, description=f"Imported from {what} for inputs of shape "
                      f"{list(input_shape)} by designer import.", networks=ordered)
    return project, report


INPUT_DTYPES = ("float32", "int64", "bool")


def probe_input(batch: int, shape: Any, dtype: str) -> torch.Tensor:
    """The tensor a model is probed with: normal floats, token ids 0 and 1, or all-true masks."""
    if dtype == "int64":
        return torch.randint(0, 2, (batch, *shape))
    if dtype == "bool":
        return torch.ones(batch, *shape, dtype=torch.bool)
    return torch.randn(batch, *shape)


def _count_editable(networks: dict[str, Graph], report: ImportReport) -> None:
    """How much of the design is editable: the layers other than Function (calls kept as code)
    and the parameters they hold, i.e. all but those of Tensor layers (tensors used whole)."""
    layers = [n for g in networks.values() for n in g.nodes.values()
              if not n.kind.is_input and not n.kind.is_output and not n.kind.is_block]
    report.functions = sum(1 for n in layers if n.type == FUNCTION)
    report.editable_layers = len(layers) - report.functions
    whole = sum(math.prod(n.params["shape"]) * report.blocks.get(net, 1)
                for net, g in networks.items() for n in g.nodes.values()
                if n.type == TENSOR and n.params.get("stored") == "parameter")
    report.editable_parameters = max(0, report.parameters - whole)


def _export_retry(model: nn.Module, x: torch.Tensor, report: ImportReport,
                  imp: ModuleImporter) -> tuple[ModuleImporter, ImportedNet] | None:
    """The model exported whole and imported so, into a report of its own: that import when it
    maps everything (``report`` then takes its findings), else None (fx's stands)."""
    trial = ImportReport(report.model, report.input_shape, input_dtype=report.input_dtype)
    entry = Unsupported("", "trace", "mapped through torch.export")
    made = import_exported(model, (x,), {}, trial, False, x.shape[0], entry, dynamic_batch=True)
    if made is None or trial.unsupported:
        return None
    fx_causes = "; ".join(f"{u.op}: {u.reason}" for u in report.unsupported[:3])
    for name in ("blocks", "aux_outputs", "via_export_blocks", "outputs", "constants_saved",
                 "tied", "functions"):
        setattr(report, name, getattr(trial, name))
    report.unsupported = []
    report.via_export = f"torch.fx traced it, but {fx_causes}"
    return made


def _export_fallback(model: nn.Module, x: torch.Tensor, report: ImportReport, partial: bool,
                     failure: tuple[Unsupported, Exception]) -> tuple[ModuleImporter, ImportedNet]:
    """torch.fx could not trace the model's own forward: export it on the probe input (its
    branches taken for that input's shape) and import the unflattened program. When export
    fails too, the report says both failed."""
    entry, _fx_error = failure
    made = import_exported(model, (x,), {}, report, partial, x.shape[0], entry,
                           dynamic_batch=True)
    if made is None:
        return (ModuleImporter(model, report, partial),
                ImportedNet(type(model).__name__, "", [], False, False))
    report.via_export = entry.reason
    return made




__all__ = ["AUX_WEIGHT", "ImportFailed", "ImportReport", "Unsupported", "WeightsReport",
           "build_design", "check_state_dict", "count_parameters", "example_input_shape",
           "export_program", "import_model", "load_program", "load_weights", "model_class_name",
           "read_weights", "save_weights", "unflatten_program", "weights_path"]
