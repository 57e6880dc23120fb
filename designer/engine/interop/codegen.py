"""Graph -> readable PyTorch source: ``model.py`` (one ``nn.Module`` per network) and ``train.py``.

A project built from blocks (:mod:`.blocks`) reads like torchvision's resnet.py: one class per
block definition, its block parameters as ``__init__`` arguments, written before the models that
instantiate it (``nn.Sequential`` of the copies when a use repeats). See :class:`ClassWriter`.

Everything written comes from the catalog: the constructor is ``LayerSpec.code_class`` with the
resolved keyword arguments, each forward step is ``catalog.code_lines``. Names follow the design:
layer attributes are the node names (so the state_dict keys equal those of
:func:`~designer.engine.model.build.build_model`), forward variables are the node names too, renamed
only where they would shadow something the generated code uses (``input`` -> ``input_``).

User text never becomes code: project names and descriptions go into comments with control
characters removed (:func:`comment_text`), dataset paths and names into string literals through
one helper (:func:`literal`), and class names are built from ASCII letters and digits only. No user
text reaches a format string, ours or a library's (argparse %-formats its description and help).
"""

from __future__ import annotations

import inspect
import json
import keyword
import re
from dataclasses import dataclass
from typing import Any

from ..document.naming import file_header, network_class_names
from ..document.project import ProjectError, project_from_dict
from ..model.blocks import block_param, model_names
from ..model.catalog import CATALOG
from ..model.modules import HELPER_CLASSES
from ..model.pysource import (
    MODULE_NAMES,
    example_input,
    format_source,
    literal,
)
from ..model.shapes import Analysis
from ..search.space import SearchError, find_node, search_space
from ..search.values import current_values
from ..train.config import TRAINING_SETTINGS, validate_training
from .classwriter import ClassWriter, NetworkCode


def model_codes(project, analyses: dict[str, Analysis] | None = None
                ) -> tuple[list[list[str]], dict[str, NetworkCode]]:
    """The classes of model.py in order (block definitions first) and each model's code. A
    searched layer parameter or block argument of a model is an argument of its class (see
    :func:`search_arguments`)."""
    writer, _ = _written(project, analyses)
    return [v.lines for v in writer.variants], writer.model_code


def _written(project, analyses: dict[str, Analysis] | None = None
             ) -> tuple[ClassWriter, list[SearchArgument]]:
    """The class writer run on the project (with its searched values as arguments of the model
    classes), and the searched values train.py accepts.

    A searched value the classes cannot take is left out (the model keeps its literal; a sweep
    in the designer still searches it): one whose model, analysed with another value, needs
    other forward code, or one that no line of the class reads."""
    skip: set[str] = set()
    while True:
        searched, args = _searchable(project, skip)
        models = model_names(searched.networks)
        own = [a for a in args if a.network]
        probes = {net: [[{a.name: c} for c in a.probes] for a in own if a.network == net]
                  for net in models}
        writer = ClassWriter(dict(searched.networks), models,
                              {} if own else dict(analyses or {}),
                              network_class_names(searched), probes=probes)
        writer.run()
        bad = set()
        for net, found in writer.probe_uses.items():
            model = writer.model_code[net]
            for values, probe in found:
                if writer.variant_of[id(probe)].code is not model:  # other forward code
                    bad |= {next(a.label for a in own if a.name == k) for k in values}
        for a in own:
            body = "\n".join(writer.model_code[a.network].lines).split("):", 1)[-1]
            if not re.search(rf"\b{a.name}\b", body):
                bad.add(a.label)
        if not bad:
            return writer, args
        skip |= bad


# --------------------------------------------------------------------------------------------
# Searched values as arguments: a sweep driven outside the designer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchArgument:
    """One searched value train.py accepts: a training setting (``--step-size``) or an argument
    of a model's class (``--fc1-out-features``, ``Net(fc1_out_features=64)``)."""

    name: str  # the Python name: step_size, fc1_out_features
    type: str  # int, float, bool, choice or text
    default: Any  # the project's value
    label: str  # the dimension's name: lr, model.fc1.out_features
    setting: str | None = None  # a training setting's key
    network: str | None = None  # else the model whose class takes it
    choices: tuple[Any, ...] = ()
    probes: tuple[Any, ...] = ()  # other values the model is analysed with (sizes following it)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def search_arguments(project) -> list[SearchArgument]:
    """What the exported train.py accepts beyond its own flags: each searched training setting,
    and each searched layer parameter or block argument of a model (written into model.py as an
    argument of the model's class). [] without a search section or with one that does not fit
    the design (``designer check`` reports that)."""
    return _searchable(project)[1]


def _searchable(project, skip: set[str] | frozenset[str] = frozenset()
                ) -> tuple[Any, list[SearchArgument]]:
    """A copy of ``project`` in which each searched layer parameter or block argument of a model
    network is a block parameter of that network (``fc1_out_features``, default: the current
    value) and the value a reference to it, so that the class writer makes it an ``__init__``
    argument; and the searched values as :class:`SearchArgument`. Dimensions named in ``skip``
    stay as they are."""
    if not getattr(project, "search", None):
        return project, []
    try:
        space = search_space(project)
        now = current_values(project, space)
        training = validate_training(project.training)
    except (SearchError, ValueError):
        return project, []
    data = json.loads(json.dumps(project.to_dict()))
    models = set(model_names(project.networks))
    declared = {s.key: s for s in TRAINING_SETTINGS}
    out: list[SearchArgument] = []
    taken = {"self", *MODULE_NAMES}
    for d in space.dimensions:
        t = d.target
        if t.setting is not None:
            decl = declared[t.setting]
            out.append(SearchArgument(t.setting, decl.type, training[t.setting], t.label,
                                      setting=t.setting, choices=tuple(decl.choices)))
            continue
        if t.network not in models or t.label in skip:
            continue  # a value inside a block definition: the block's own argument already
        graph = project.networks[t.network]
        node = find_node(graph, t.node)
        value = now[t]
        if node is None or isinstance(value, dict):  # a reference already: the block's value
            continue
        if t.param is not None:
            decl = node.spec.param_map[t.param]
        else:
            definition = project.networks[node.params["block"]]
            decl = next(p for p in definition.block_params if p.name == t.arg)
        kind = {"ints": "int"}.get(decl.type, decl.type)
        if kind not in ("int", "float", "bool", "choice") or (
                kind == "int" and (isinstance(value, bool) or not isinstance(value, int))):
            continue  # a tuple of sizes: not one argument
        name = re.sub(r"\W", "_", f"{node.name}_{t.param or t.arg}")
        own = {p.name for p in graph.block_params}
        while name in taken or name in own or keyword.iskeyword(name) or name in declared:
            name += "_"
        taken.add(name)
        try:
            param = block_param(name, kind, value, f"{t.label} (searched)",
                                min=decl.min if kind in ("int", "float") else None,
                                max=decl.max if kind in ("int", "float") else None,
                                choices=tuple(decl.choices) if kind == "choice" else ())
        except ValueError:
            continue
        net = next(n for n in data["networks"] if n.get("name", "model") == t.network)
        node_data = next(n for n in net["nodes"] if n["id"] == node.id)
        net.setdefault("params", []).append(
            {"name": param.name, "type": param.type, "default": param.default,
             "doc": f"{t.label.split('.', 1)[1]}, searched by the project's sweep",
             **({"min": param.min} if param.min is not None else {}),
             **({"max": param.max} if param.max is not None else {}),
             **({"choices": list(param.choices)} if param.choices else {})})
        params = node_data.setdefault("params", {})
        if t.param is not None:
            params[t.param] = {"ref": name}
        else:
            params.setdefault("args", {})[t.arg] = {"ref": name}
        out.append(SearchArgument(name, kind, value, t.label, network=t.network,
                                  choices=tuple(decl.choices) if kind == "choice" else (),
                                  probes=_probe_values(param, value) if kind == "int" else ()))
    if not any(a.network for a in out):
        return project, out
    try:
        copy = project_from_dict(data)
    except ProjectError:
        return project, [a for a in out if a.setting]
    return copy, out


def _probe_values(param, value: int) -> tuple[int, ...]:
    """Other values for a searched size, close to the current one, in the order the writer tries
    them: with one the model accepts, the sizes that follow it differ and get expressions."""
    out = []
    for candidate in (value + 1, value * 2, value + 2, value - 1, value * 3):
        try:
            param.validate(candidate)
        except ValueError:
            continue
        if candidate >= 1 and candidate not in out:
            out.append(candidate)
    return tuple(out)


def model_source(project, analyses: dict[str, Analysis] | None = None, format: bool = True) -> str:
    """The source of ``model.py``: one class per block definition, then one per model (only
    :func:`~designer.engine.model.blocks.model_names` are models), and a ``load`` helper for the weights.

    Raises :class:`CodegenError` when a network has errors."""
    blocks, by_model = model_codes(project, analyses)
    net_names = model_names(project.networks)
    codes = [by_model[n] for n in net_names]
    first = codes[0]
    example = ", ".join(example_input(s, d) for s, d in zip(first.input_shapes,
                                                             first.input_dtypes))
    # load() gives the model, or {network name: model} when there are several
    pick = f"[{literal(net_names[0])}]" if len(codes) > 1 else ""
    lines = file_header(project, "PyTorch model")
    lines += [
        "#",
        "# Usage:",
        f"#     model = {first.class_name}()  # or load('weights.pt'){pick} for trained weights",
        f"#     output = model({example})",
        "",
        "import torch",
        "from torch import nn",
        "",
    ]
    for helper in _helpers_used(project):
        lines += ["", *helper.rstrip("\n").split("\n"), ""]
    for block in blocks:
        lines += ["", *block, ""]
    if len(codes) == 1:
        load_doc = "Build the model and load weights: a state_dict (weights.pt) or a train.py checkpoint."
        if any(a.network for a in search_arguments(project)):
            # a checkpoint of train.py names the searched sizes its model was built with
            lines += [
                "",
                'def load(path="weights.pt", map_location="cpu"):',
                f'    """{load_doc}"""',
                "    state = torch.load(path, map_location=map_location, weights_only=True)",
                "    args = {}",
                '    if isinstance(state.get("model"), dict):  # a checkpoint written by train.py',
                '        args = state.get("config", {}).get("model_args", {})',
                '        state = state["model"]',
                f"    model = {first.class_name}(**args)",
                "    model.load_state_dict(state)",
                "    return model",
            ]
        else:
            lines += [
                "",
                'def load(path="weights.pt", map_location="cpu"):',
                f'    """{load_doc}"""',
                f"    model = {first.class_name}()",
                "    state = torch.load(path, map_location=map_location, weights_only=True)",
                '    if isinstance(state.get("model"), dict):  # a checkpoint written by train.py',
                '        state = state["model"]',
                "    model.load_state_dict(state)",
                "    return model",
            ]
    else:
        lines += [
            "",
            'def load(path="weights.pt", map_location="cpu"):',
            '    """Build every network and load the state_dicts saved as {network name: state_dict}."""',
            "    state = torch.load(path, map_location=map_location, weights_only=True)",
            '    if isinstance(state.get("model"), dict):  # a checkpoint of train.py or the designer',
            '        state = state["model"]',
            "    models = {",
            *(f"        {literal(n)}: {c.class_name}()," for n, c in zip(net_names, codes)),
            "    }",
            "    for name, model in models.items():",
            "        model.load_state_dict(state[name])",
            "    return models",
        ]
    source = "\n".join(lines) + "\n"
    return format_source(source) if format else source


def _helpers_used(project) -> list[str]:
    """Source of the designer.engine.model.modules classes the project's layers build (StochasticDepth),
    and of the ones they derive from (HELPER_NEEDS), in definition order (a base class before its
    subclasses): model.py defines them itself, so it needs no designer import."""
    from ..model import modules  # deferred: torch loads only when this runs

    used = {CATALOG[n.type].module_name for g in project.networks.values()
            for n in g.nodes.values() if n.type in CATALOG and CATALOG[n.type].helper_module}
    used |= {need for name in used for need in modules.HELPER_NEEDS.get(name, ())}
    return [inspect.getsource(getattr(modules, name)) for name in HELPER_CLASSES if name in used]




#: The model writer and the searched arguments of a project's models.
written_models = _written
