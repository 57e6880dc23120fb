"""Graph -> readable PyTorch source: ``model.py`` (one ``nn.Module`` per network) and ``train.py``.

Everything written comes from the catalog: the constructor is ``LayerSpec.code_class`` with the
resolved keyword arguments, each forward step is ``catalog.code_lines``. Names follow the design:
layer attributes are the node names (so the state_dict keys equal those of
:func:`~designer.engine.build.build_model`), forward variables are the node names too, renamed
only where they would shadow something the generated code uses (``input`` -> ``input_``).

User text never becomes code: project names and descriptions go into comments with control
characters removed, dataset paths and names into ``repr`` string literals, and class names are
built from letters and digits only.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from typing import Any

from .build import BuildError, ordered_io, plan
from torch import nn

from .catalog import CATALOG, CodeContext, LayerSpec, code_lines, module_kwargs, name_problem
from .graph import Graph
from .shapes import Analysis, analyze


class CodegenError(ValueError):
    """The design cannot be exported (it has errors); the message says what to fix."""


# Names the generated files define or import at module level, plus ones a reader expects to mean
# the usual thing. Forward variables never take these names.
MODULE_NAMES = frozenset({
    "torch", "nn", "F", "math", "np", "self", "load", "main", "model", "train", "evaluate",
    "argparse", "os", "sys", "json", "csv", "random", "time", "Path", "INPUT_SHAPES",
})
_BUILTIN_NAMES = frozenset(dir(builtins))
_MODULE_ATTRS = frozenset(dir(nn.Module())) | frozenset(dir(nn.Module))
# Sequence arguments that torch accepts as one int when every entry is the same.
_COLLAPSIBLE = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding",
                          "output_size"})
# Constructors whose signature is ``*args, **kwargs``: their defaults, written out here.
_VARARG_DEFAULTS: dict[str, dict[str, Any]] = {
    "RNN": {"num_layers": 1, "nonlinearity": "tanh", "bias": True, "batch_first": False,
            "dropout": 0.0, "bidirectional": False},
    "LSTM": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
             "bidirectional": False},
    "GRU": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
            "bidirectional": False},
}
_VARARG_REQUIRED = {"RNN": ("input_size", "hidden_size"), "LSTM": ("input_size", "hidden_size"),
                    "GRU": ("input_size", "hidden_size")}


# --------------------------------------------------------------------------------------------
# Safe text
# --------------------------------------------------------------------------------------------


def comment_text(text: Any, limit: int = 200) -> str:
    """``text`` as one line that is safe inside a ``#`` comment: control, format and separator
    characters (newlines, bidi overrides) become spaces; runs of spaces collapse."""
    s = str(text)
    out = []
    for ch in s[: limit * 2]:
        cat = unicodedata.category(ch)
        out.append(" " if cat[0] == "C" or cat in ("Zl", "Zp") else ch)
    line = re.sub(r"\s+", " ", "".join(out)).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def comment_lines(text: Any, max_lines: int = 12, width: int = 96) -> list[str]:
    """A multi-line text (a description) as comment bodies, one per source line, each safe."""
    lines: list[str] = []
    for raw in str(text).splitlines():
        line = comment_text(raw, limit=2000)
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > 20 else width
            lines.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + ["..."]
    return lines


def literal(value: Any) -> str:
    """Source for a plain value (None, bool, int, finite float, str, list/tuple of those).

    Strings use ``repr``, which always gives one line that evaluates back to the same text."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CodegenError(f"cannot write the number {value!r} into code")
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"cannot write a value of type {type(value).__name__} into code")


def class_name(text: Any, fallback: str = "Net") -> str:
    """A CamelCase class name from free text: ASCII letters and digits only, never a keyword or
    a builtin (``"MLP on digits"`` -> ``MLPOnDigits``, ``"x; import os"`` -> ``XImportOs``)."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", str(text)[:1000])
                    if unicodedata.category(ch) != "Mn")  # "é" -> "e"
    words = re.findall(r"[A-Za-z0-9]+", plain)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:60]
    if not name:
        return fallback
    if name[0].isdigit():
        name = fallback + name
    if keyword.iskeyword(name) or name in _BUILTIN_NAMES or name in MODULE_NAMES:
        name += fallback
    return name


# --------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------


def _signature(spec: LayerSpec) -> tuple[list[str], dict[str, Any]]:
    """Required positional parameter names and keyword defaults of the layer's constructor."""
    if spec.id in _VARARG_DEFAULTS:
        return list(_VARARG_REQUIRED[spec.id]), dict(_VARARG_DEFAULTS[spec.id])
    required: list[str] = []
    defaults: dict[str, Any] = {}
    try:
        params = list(inspect.signature(spec.module.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtin without a signature
        return [], {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            defaults[p.name] = p.default
    return required, defaults


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an odd default that cannot be compared
        return False


def constructor(spec: LayerSpec, kwargs: dict[str, Any]) -> str:
    """``nn.Conv2d(1, 20, 5)``: required arguments by position, the rest by keyword, defaults left
    out (except a layer's key settings when it has no required arguments, e.g. ``Dropout(p=0.5)``)."""
    kw = {}
    for key, value in module_kwargs(kwargs).items():
        if key in _COLLAPSIBLE and isinstance(value, (tuple, list)) and value and all(
            v == value[0] for v in value
        ):
            value = value[0]
        elif isinstance(value, list):
            value = tuple(value)
        kw[key] = value
    required, defaults = _signature(spec)
    args: list[str] = []
    positional = True
    for name in required:
        if positional and name in kw:
            args.append(literal(kw.pop(name)))
        else:
            positional = False
    keep = set(spec.key_params) if not required else set()
    for key, value in kw.items():
        if key in defaults and _same_value(value, defaults[key]) and key not in keep:
            continue
        args.append(f"{key}={literal(value)}")
    return f"{spec.code_class}({', '.join(args)})"


# --------------------------------------------------------------------------------------------
# model.py
# --------------------------------------------------------------------------------------------


@dataclass
class NetworkCode:
    """One network written as a class: its name, source lines and forward signature."""

    class_name: str
    lines: list[str]
    input_names: list[str]  # forward arguments, in order
    input_shapes: list[tuple[int, ...]]  # without batch
    input_dtypes: list[str]  # "float32" or "int64"
    output_shapes: list[tuple[int, ...]]
    output_names: list[str]  # the variables forward returns, in order


def _shape_comment(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "(N, ?)"
    return "(" + ", ".join(["N", *(str(s) for s in shape)]) + ")"


def _placeholder_names(spec: LayerSpec, ctx: CodeContext) -> set[str]:
    """Names a layer's code template uses besides its inputs, output and ``self``: temporaries
    such as ``h_n`` that no forward variable may take."""
    lines = code_lines(spec, ctx)
    names: set[str] = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Name):
            names.add(node.id)
    return names - {ctx.out, *ctx.inputs, "self"}


def _comment_line(line: str, shape: str) -> str:
    """Append the shape comment, merging it with a comment the template already wrote."""
    code, sep, note = line.partition("  # ")
    return f"{code}  # {shape}" + (f", {note}" if sep else "")


def network_code(graph: Graph, cls: str, analysis: Analysis | None = None,
                 reserved: set[str] | frozenset[str] = frozenset()) -> NetworkCode:
    """One ``nn.Module`` class for ``graph`` (raises :class:`CodegenError` when it has errors)."""
    for node in graph.nodes.values():  # the graph refuses these; a document edited by hand too
        why = name_problem(node.name)
        if why is None and node.name in _MODULE_ATTRS:
            why = f"{node.name!r} is reserved (torch.nn.Module uses it)"
        if why:
            raise CodegenError(f"cannot export the layer named {comment_text(repr(node.name))}: "
                               f"{why}")
    analysis = analysis or analyze(graph)
    try:
        steps = plan(graph, analysis)
    except BuildError as exc:
        raise CodegenError(str(exc)) from None
    input_ids, output_ids = ordered_io(graph, steps)

    # Temporaries of the templates in use, found by writing each step once with placeholders.
    temps: set[str] = set()
    for step in steps:
        spec = CATALOG[step.type]
        if spec.num_inputs == 0 and not spec.variadic:
            continue
        ctx = CodeContext("__out", "self.__attr", [f"__in{i}" for i in range(len(step.inputs))],
                          step.kwargs, graph.nodes[step.node_id].params)
        temps |= _placeholder_names(spec, ctx)
    taken = set(reserved) | set(MODULE_NAMES) | temps | {cls}
    forbidden = taken | _BUILTIN_NAMES | set(keyword.kwlist)
    names = {s.node_id: s.name for s in steps}
    var: dict[str, str] = {}
    used = {n for n in names.values() if n not in forbidden}
    for step in steps:
        name = step.name
        if name in forbidden:
            while name in forbidden or name in used:
                name += "_"
            used.add(name)
        var[step.node_id] = name

    init: list[str] = []
    forward: list[str] = []
    for step in steps:
        spec = CATALOG[step.type]
        if spec.module is not None:
            init.append(f"self.{step.name} = {constructor(spec, step.kwargs)}")
    for nid in input_ids:
        info = analysis.infos[nid]
        dtype = graph.nodes[nid].params.get("dtype", "float32")
        what = "token ids (int64)" if dtype == "int64" else "float32"
        forward.append(f"# {var[nid]}: {_shape_comment(info.output_shape)} {what}")
    for step in steps:
        spec = CATALOG[step.type]
        if spec.num_inputs == 0 and not spec.variadic:
            continue
        ctx = CodeContext(var[step.node_id], f"self.{step.name}",
                          [var[i] for i in step.inputs], step.kwargs,
                          graph.nodes[step.node_id].params)
        lines = code_lines(spec, ctx)
        shape = _shape_comment(analysis.infos[step.node_id].output_shape)
        forward.extend(lines[:-1])
        forward.append(_comment_line(lines[-1], shape))
    outs = [var[o] for o in output_ids]
    forward.append("return " + (outs[0] if len(outs) == 1 else ", ".join(outs)))

    args = ", ".join(["self", *(var[i] for i in input_ids)])
    body = [
        f"class {cls}(nn.Module):",
        '    """The designed network; layers are created in the order data flows through them."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *("        " + line for line in init),
        "",
        f"    def forward({args}):",
        *("        " + line for line in forward),
    ]
    return NetworkCode(
        cls, body, [var[i] for i in input_ids],
        [tuple(analysis.infos[i].output_shape) for i in input_ids],
        [graph.nodes[i].params.get("dtype", "float32") for i in input_ids],
        [tuple(analysis.infos[o].output_shape) for o in output_ids],
        outs,
    )


def network_class_names(project) -> dict[str, str]:
    """The class name of each network: the project's name for a single network, otherwise each
    network's own name (``generator`` -> ``Generator``)."""
    nets = list(project.networks)
    if len(nets) == 1:
        return {nets[0]: class_name(project.name)}
    out: dict[str, str] = {}
    for net in nets:
        base = class_name(net)
        name, i = base, 2
        while name in out.values():
            name, i = f"{base}{i}", i + 1
        out[net] = name
    return out


def _header(project, what: str) -> list[str]:
    lines = [f"# {what} for the designer project: {comment_text(project.name)}"]
    desc = comment_lines(project.description)
    if desc:
        lines.append("#")
        lines += [("# " + line).rstrip() for line in desc]
    return lines


def model_source(project, analyses: dict[str, Analysis] | None = None, format: bool = True) -> str:
    """The source of ``model.py``: one class per network and a ``load`` helper for the weights.

    Raises :class:`CodegenError` when a network has errors."""
    classes = network_class_names(project)
    blocks: list[list[str]] = []
    codes: list[NetworkCode] = []
    for net, graph in project.networks.items():
        analysis = (analyses or {}).get(net)
        try:
            code = network_code(graph, classes[net], analysis, reserved=set(classes.values()))
        except CodegenError as exc:
            where = f"network {net!r}: " if len(project.networks) > 1 else ""
            raise CodegenError(f"{where}{exc}") from None
        codes.append(code)
        blocks.append(code.lines)
    first = codes[0]
    example = ", ".join(_example_input(s, d) for s, d in zip(first.input_shapes,
                                                             first.input_dtypes))
    lines = _header(project, "PyTorch model")
    lines += [
        "#",
        "# Usage:",
        f"#     model = {first.class_name}()  # or load('weights.pt') for trained weights",
        f"#     output = model({example})",
        "",
        "import torch",
        "from torch import nn",
        "",
    ]
    for block in blocks:
        lines += ["", *block, ""]
    net_names = list(project.networks)
    if len(codes) == 1:
        load_doc = f"Build {first.class_name} and load a state_dict saved with torch.save."
        lines += [
            "",
            'def load(path="weights.pt", map_location="cpu"):',
            f'    """{load_doc}"""',
            f"    model = {first.class_name}()",
            "    state = torch.load(path, map_location=map_location, weights_only=True)",
            "    model.load_state_dict(state)",
            "    return model",
        ]
    else:
        lines += [
            "",
            'def load(path="weights.pt", map_location="cpu"):',
            '    """Build every network and load the state_dicts saved as {network name: state_dict}."""',
            "    state = torch.load(path, map_location=map_location, weights_only=True)",
            "    models = {",
            *(f"        {literal(n)}: {c.class_name}()," for n, c in zip(net_names, codes)),
            "    }",
            "    for name, model in models.items():",
            "        model.load_state_dict(state[name])",
            "    return models",
        ]
    source = "\n".join(lines) + "\n"
    return format_source(source) if format else source


def _example_input(shape: tuple[int, ...], dtype: str) -> str:
    dims = ", ".join(["1", *map(str, shape)])
    if dtype == "int64":
        return f"torch.zeros({dims}, dtype=torch.long)"
    return f"torch.randn({dims})"


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def format_source(source: str) -> str:
    """Format with ruff's formatter when it is available; otherwise return ``source`` unchanged.

    The source must parse before and after (a formatter bug must not produce broken code)."""
    ast.parse(source)
    commands = [[sys.executable, "-m", "ruff"]]
    exe = shutil.which("ruff")
    if exe:
        commands.append([exe])
    for cmd in commands:
        try:
            done = subprocess.run(
                [*cmd, "format", "--isolated", "--line-length", "100", "-"],
                input=source, capture_output=True, text=True, timeout=30, encoding="utf-8",
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout:
            try:
                ast.parse(done.stdout)
            except SyntaxError:  # pragma: no cover - never seen
                return source
            return done.stdout
    return source
