"""Project files: versioned JSON, validated on load, saved atomically.

A project holds one or more named networks (a GAN holds two), plus the dataset and training
settings. Loading never executes or unpickles anything: it parses JSON and checks every value,
naming the exact place of a problem (``networks[0].nodes[3].params.kernel_size: expected a positive
integer, got "abc"``). Files from a newer format version are refused; older ones are migrated.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import CATALOG, ParamError, name_problem, param_path
from .graph import Edge, Graph, Node

FORMAT_VERSION = 1
SUFFIX = ".dnn.json"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_NODES = 5000
MAX_EDGES = 20000
_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # used with fullmatch: "$" matches before a final newline

# Layer types renamed between format versions: old id -> new id.
RENAMED_TYPES: dict[str, str] = {}
# Migrations: version N -> function turning a version-N document into version N+1.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


class ProjectError(ValueError):
    """A project file cannot be read; the message names the place and the problem."""


@dataclass
class Project:
    name: str = "Untitled"
    description: str = ""
    networks: dict[str, Graph] = field(default_factory=lambda: {"model": Graph()})
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> Graph:
        """The main (first) network."""
        return next(iter(self.networks.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "app": "designer",
            "name": self.name,
            "description": self.description,
            "networks": [{"name": k, **g.to_dict()} for k, g in self.networks.items()],
            "dataset": self.dataset,
            "training": self.training,
            "metadata": self.metadata,
        }


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_project(path: str | os.PathLike) -> Project:
    """Read and validate a project file. Raises :class:`ProjectError` with a clear message."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ProjectError(f"{p}: no such file") from None
    except OSError as exc:
        raise ProjectError(f"{p}: cannot read ({exc.strerror})") from None
    if p.is_dir():
        raise ProjectError(f"{p}: is a folder, not a project file")
    if size > MAX_FILE_BYTES:
        raise ProjectError(f"{p}: {size:,} bytes is too large for a project file "
                           f"(limit {MAX_FILE_BYTES:,})")
    try:
        text = p.read_bytes().decode("utf-8-sig")  # tolerate a byte-order mark from Windows editors
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{p}: not UTF-8 text (byte {exc.start}); is this a project file?") from None
    except OSError as exc:
        raise ProjectError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        return project_from_json(text)
    except ProjectError as exc:
        raise ProjectError(f"{p}: {exc}") from None


def project_from_json(text: str) -> Project:
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
                           ) from None
    except ValueError as exc:  # NaN/Infinity, or an integer with too many digits
        raise ProjectError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProjectError("not valid JSON: nested too deeply") from None
    return project_from_dict(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a project file")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def project_from_dict(data: Any) -> Project:
    """Validate a parsed document and build a :class:`Project`."""
    if not isinstance(data, dict):
        raise ProjectError(f"expected a JSON object at the top level, got {_kind(data)}")
    version = data.get("format_version")
    if version is None:
        raise ProjectError("format_version: missing; this is not a designer project file")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectError(f"format_version: expected a positive integer, got {_short(version)}")
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"format_version: this file was written by a newer designer (format {version}); this "
            f"version reads formats up to {FORMAT_VERSION}. Update designer to open it."
        )
    while version < FORMAT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1

    name = _text(data, "name", "Untitled", 200)
    description = _text(data, "description", "", 20_000)
    nets = data.get("networks")
    if not isinstance(nets, list) or not nets:
        raise ProjectError("networks: expected a non-empty list of networks")
    if len(nets) > 16:
        raise ProjectError("networks: at most 16 networks")
    networks: dict[str, Graph] = {}
    for i, net in enumerate(nets):
        where = f"networks[{i}]"
        if not isinstance(net, dict):
            raise ProjectError(f"{where}: expected an object, got {_kind(net)}")
        net_name = net.get("name", "model")
        why = name_problem(net_name) if net_name != "model" else None
        if why:
            raise ProjectError(f"{where}.name: {why}")
        if net_name in networks:
            raise ProjectError(f"{where}.name: another network is already named {net_name!r}")
        networks[net_name] = graph_from_dict(net, where)
    sections = {}
    for key in ("dataset", "training", "metadata"):
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ProjectError(f"{key}: expected an object, got {_kind(value)}")
        _check_plain(value, key, 0)
        sections[key] = value
    return Project(name, description, networks, **sections)


def graph_from_dict(data: dict, where: str = "graph") -> Graph:
    nodes = data.get("nodes")
    edges = data.get("edges", [])
    if not isinstance(nodes, list):
        raise ProjectError(f"{where}.nodes: expected a list, got {_kind(nodes)}")
    if not isinstance(edges, list):
        raise ProjectError(f"{where}.edges: expected a list, got {_kind(edges)}")
    if len(nodes) > MAX_NODES:
        raise ProjectError(f"{where}.nodes: {len(nodes):,} nodes is more than the limit {MAX_NODES:,}")
    if len(edges) > MAX_EDGES:
        raise ProjectError(f"{where}.edges: {len(edges):,} edges is more than the limit {MAX_EDGES:,}")
    g = Graph()
    names: set[str] = set()
    for i, raw in enumerate(nodes):
        here = f"{where}.nodes[{i}]"
        if not isinstance(raw, dict):
            raise ProjectError(f"{here}: expected an object, got {_kind(raw)}")
        node_id = raw.get("id")
        if not isinstance(node_id, str) or not _ID.fullmatch(node_id):
            raise ProjectError(f"{here}.id: expected 1 to 64 letters, digits, '-' or '_', "
                               f"got {_short(node_id)}")
        if node_id in g.nodes:
            raise ProjectError(f"{here}.id: duplicate id {node_id!r}")
        type_ = raw.get("type")
        if not isinstance(type_, str):
            raise ProjectError(f"{here}.type: expected a layer type name, got {_short(type_)}")
        type_ = RENAMED_TYPES.get(type_, type_)
        spec = CATALOG.get(type_)
        if spec is None:
            close = difflib.get_close_matches(type_, CATALOG.ids(), n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else "see the palette for the layer types")
            raise ProjectError(f"{here}.type: unknown layer type {_short(type_)} ({hint})")
        name = raw.get("name")
        why = name_problem(name)
        if why:
            raise ProjectError(f"{here}.name: {why}")
        if name in names:
            raise ProjectError(f"{here}.name: another layer is already named {name!r}")
        names.add(name)
        try:
            params = spec.validate_params(raw.get("params", {}))
        except ParamError as exc:
            if exc.param is None:
                raise ProjectError(f"{here}.params: {exc.reason}") from None
            sep = "" if param_path(exc.param).startswith("[") else "."
            raise ProjectError(f"{here}.params{sep}{param_path(exc.param)}: {exc.reason}") from None
        pos = raw.get("pos", [0, 0])
        if (not isinstance(pos, list) or len(pos) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float))
                       or not math.isfinite(v) or abs(v) > 1e7 for v in pos)):
            raise ProjectError(f"{here}.pos: expected [x, y], two numbers, got {_short(pos)}")
        g.nodes[node_id] = Node(node_id, type_, name, params, (float(pos[0]), float(pos[1])))
    seen: set[Edge] = set()
    for i, raw in enumerate(edges):
        here = f"{where}.edges[{i}]"
        if not isinstance(raw, dict):
            raise ProjectError(f"{here}: expected an object, got {_kind(raw)}")
        for key in ("src", "dst"):
            ref = raw.get(key)
            if not isinstance(ref, str) or ref not in g.nodes:
                raise ProjectError(f"{here}.{key}: no node with id {_short(ref)}")
        port = raw.get("dst_port", 0)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 64:
            raise ProjectError(f"{here}.dst_port: expected an integer from 0 to 63, got {_short(port)}")
        edge = Edge(raw["src"], raw["dst"], port)
        if edge in seen:
            raise ProjectError(f"{here}: duplicate edge")
        seen.add(edge)
        g.edges.append(edge)
    return g


MAX_SECTION_DEPTH = 16


def _check_plain(value: Any, where: str, depth: int) -> None:
    """Settings sections hold plain JSON data, nested a few levels at most (so that saving, which
    recurses, cannot fail on a document that loaded)."""
    if depth > MAX_SECTION_DEPTH:
        raise ProjectError(f"{where}: nested more than {MAX_SECTION_DEPTH} levels deep")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(v, f"{where}.{k}" if k.isidentifier() else f"{where}[{_short(k)}]",
                         depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", depth + 1)


def _text(data: dict, key: str, default: str, limit: int) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ProjectError(f"{key}: expected text, got {_kind(value)}")
    if len(value) > limit:
        raise ProjectError(f"{key}: longer than {limit:,} characters")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def project_to_json(project: Project) -> str:
    return json.dumps(project.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_project(project: Project, path: str | os.PathLike, backup: bool = True) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over the target.

    The previous file, if any, is kept as ``<name>.bak``.
    """
    p = Path(path)
    text = project_to_json(project)
    atomic_write_text(p, text, backup=backup)
    return p


@contextmanager
def atomic_path(path: Path, backup: bool = False) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; when the block succeeds it is renamed over ``path``
    (the old file kept as ``<name>.bak`` with ``backup``), when it fails it is removed. A crash can
    never leave a half-written file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if backup and path.exists():
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(p: Path, text: str, backup: bool = False) -> None:
    with atomic_path(p, backup=backup) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
