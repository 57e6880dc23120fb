"""Project files: versioned JSON, validated on load, saved atomically.

A project holds one or more named networks (a GAN holds two), plus the dataset and training
settings. Loading never executes or unpickles anything: it parses JSON and checks every value,
naming the exact place of a problem (``networks[0].nodes[3].params.kernel_size: expected a positive
integer, got "abc"``). Files from a newer format version are refused; older ones are migrated.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.blocks import (
    MAX_BLOCK_PARAMS,
    block_param_from_dict,
    definition_cycle,
    layer_spec,
    used_by,
)
from ..model.catalog import CATALOG, ParamError, attr_problem, name_problem, param_path
from ..model.graph import Edge, Graph, Node, Observable
from ..search.space import SearchError, search_from_dict
from .atomic import atomic_write_text

FORMAT_VERSION = 3  # 2: blocks (network params and sequential, node when, Block uses); 3: search
# A node's optional "frozen" key (not trainable) stays in format 3: a designer without it refuses
# the key by name (unknown node keys are refused), and files without frozen layers are unchanged.
# So does "attr" (a module attribute apart from the name: an imported RegNet's block1-0).
SUFFIX = ".dnn.json"
# Limits a legal file must keep; beyond them a file is refused with a message in a fraction of a
# second, before parsing (10-20 MB of nested metadata took seconds to minutes to load and check).
# The largest design (MAX_NODES layers, MAX_EDGES links) holds about 50,000 objects and lists.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_CONTAINERS = 200_000  # JSON objects and lists in one file
MAX_VALUES = 1_000_000  # values in one file (counted as commas)
MAX_DEPTH = 20  # levels of nesting, counted from the top of the document
MAX_NODES = 5000
MAX_EDGES = 20000
_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # used with fullmatch: "$" matches before a final newline

# Layer types renamed between format versions: old id -> new id.
RENAMED_TYPES: dict[str, str] = {}
# Migrations: version N -> function turning a version-N document into version N+1.
# 1 -> 2: flat files load unchanged (format 2 only adds blocks: network params and sequential,
# node when); 2 -> 3: unchanged too (format 3 only adds the "search" section of sweeps).
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: lambda data: data, 2: lambda data: data}


class ProjectError(ValueError):
    """A project file cannot be read; the message names the place and the problem.

    The message is always one printable line: control and format characters, line separators
    and lone surrogates that reach it (from a value or a file name quoted by any validator) are
    written as escapes (``\\r``, ``\\u2028``, ``\\udcff``)."""

    def __init__(self, message: str) -> None:
        super().__init__(_printable(str(message)))


def _printable(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


@dataclass(frozen=True)
class ProjectEvent:
    """One change of a project. ``kind`` is one of the ``ProjectEvent.*`` names below; ``key`` is
    the section (``"dataset"`` or ``"training"``) for a settings change, the network's name for a
    network event (its new name for a rename), None for the project's name and description.
    ``index`` is the network's place among the networks (added and removed networks)."""

    kind: str
    key: str | None = None
    old: Any = None
    new: Any = None
    index: int | None = None

    SETTINGS_CHANGED = "settings_changed"
    NETWORK_ADDED = "network_added"
    NETWORK_REMOVED = "network_removed"
    NETWORK_RENAMED = "network_renamed"
    NAME_CHANGED = "name_changed"
    DESCRIPTION_CHANGED = "description_changed"


MAX_NETWORKS = 64  # networks and the blocks they use
MAX_NAME = 200  # characters of the project's name
MAX_DESCRIPTION = 20_000


DEFAULT_NAME = "Untitled"  # a project's name until the user names it


def is_named(project: Project) -> bool:
    """Whether the user has named the project (not blank, not the placeholder)."""
    return (project.name or "").strip() not in ("", DEFAULT_NAME)


@dataclass
class Project(Observable):
    """A design: its networks, dataset and training settings, name, description and metadata.

    Read the fields as attributes (``project.training``); change them only through the methods
    (:meth:`set_section`, :meth:`add_network`, ...), each of which emits one :class:`ProjectEvent`
    when something really changed, as :class:`~designer.engine.model.graph.Graph` does, so that views
    observe the document rather than the undo stack. Each network's graph emits its own events.
    """

    name: str = DEFAULT_NAME
    description: str = ""
    networks: dict[str, Graph] = field(default_factory=lambda: {"model": Graph()})
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: What a sweep searches (designer.engine.search): {} when nothing is marked "search".
    search: dict[str, Any] = field(default_factory=dict)
    #: The project file's folder, where relative paths in the settings (training.init_weights)
    #: start: set by load_project and by whoever copies a saved project; None when unsaved.
    folder: Path | None = field(default=None, compare=False, repr=False)
    _listeners: list[Callable[[ProjectEvent], None]] = field(
        default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for graph in self.networks.values():  # where block uses find their definitions
            graph.library = self.networks

    @property
    def graph(self) -> Graph:
        """The main (first) network."""
        return next(iter(self.networks.values()))

    # -- mutations -----------------------------------------------------------------------------

    def set_name(self, name: str) -> str:
        """Rename the project; returns the old name."""
        _check_text("name", name, MAX_NAME)
        old = self.name
        if name != old:
            self.name = name
            self._emit(ProjectEvent(ProjectEvent.NAME_CHANGED, old=old, new=name))
        return old

    def set_description(self, description: str) -> str:
        """Change the description; returns the old one."""
        _check_text("description", description, MAX_DESCRIPTION)
        old = self.description
        if description != old:
            self.description = description
            self._emit(ProjectEvent(ProjectEvent.DESCRIPTION_CHANGED, old=old, new=description))
        return old

    def set_section(self, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Replace the ``"dataset"`` or ``"training"`` settings with (a copy of) ``values``;
        returns the old section. Emits ``settings_changed`` only when the values differ."""
        if section not in _SETTINGS:
            raise ValueError(f"a project has no settings section {section!r} "
                             f"(known: {', '.join(_SETTINGS)})")
        if not isinstance(values, dict):
            raise ValueError(f"{section}: expected a dict of settings, got {type(values).__name__}")
        old = getattr(self, section)
        if values == old:
            return old
        new = copy.deepcopy(values)  # the caller's dict stays the caller's
        setattr(self, section, new)
        self._emit(ProjectEvent(ProjectEvent.SETTINGS_CHANGED, section, old=old, new=new))
        return old

    def set_search(self, search: dict[str, Any]) -> dict[str, Any]:
        """Replace the search section (validated against the networks; {} removes it); returns
        the old one. Emits ``settings_changed`` with key ``"search"`` when it differs."""
        if search:
            # a target whose layer is gone is kept (search_problems reports it)
            search_from_dict(search, self.networks, strict=False)  # SearchError: the place
        old = self.search
        if search == old:
            return old
        new = copy.deepcopy(search)
        self.search = new
        self._emit(ProjectEvent(ProjectEvent.SETTINGS_CHANGED, "search", old=old, new=new))
        return old

    def network_name_problem(self, name: Any) -> str | None:
        """Why ``name`` cannot name a new network of this project, or None if it can."""
        if not isinstance(name, str):
            return f"a network's name is text, got {type(name).__name__}"
        why = name_problem(name) if name != "model" else None
        if why:
            return why
        if name in self.networks:
            return f"another network is already named {name!r}"
        return None

    def add_network(self, name: str, graph: Graph | None = None,
                    index: int | None = None) -> Graph:
        """Add ``graph`` (an empty one by default) as network ``name``, at position ``index``
        among the networks (the end by default); returns the graph."""
        why = self.network_name_problem(name)
        if why:
            raise ValueError(why)
        if len(self.networks) >= MAX_NETWORKS:
            raise ValueError(f"a project holds at most {MAX_NETWORKS} networks")
        graph = graph if graph is not None else Graph()
        graph.library = self.networks
        items = list(self.networks.items())
        index = len(items) if index is None or not 0 <= index < len(items) else index
        items.insert(index, (name, graph))
        self._set_networks(items)
        self._emit(ProjectEvent(ProjectEvent.NETWORK_ADDED, name, new=graph, index=index))
        return graph

    def remove_network(self, name: str) -> tuple[Graph, int]:
        """Remove network ``name`` (not the last one); returns its graph and its former index,
        to put it back (undo)."""
        if name not in self.networks:
            raise ValueError(f"the project has no network named {name!r}")
        if len(self.networks) == 1:
            raise ValueError("a project holds at least one network")
        index = list(self.networks).index(name)
        graph = self.networks.pop(name)
        self._emit(ProjectEvent(ProjectEvent.NETWORK_REMOVED, name, old=graph, index=index))
        return graph, index

    def rename_network(self, old: str, new: str) -> None:
        """Rename a network, keeping its place among the networks (the first is the main one)."""
        if old not in self.networks:
            raise ValueError(f"the project has no network named {old!r}")
        if new == old:
            return
        why = self.network_name_problem(new)
        if why:
            raise ValueError(why)
        self._set_networks([(new if k == old else k, g) for k, g in self.networks.items()])
        for net, node_id in used_by(self.networks, old):  # its uses follow the new name
            self.networks[net].set_params(node_id, {"block": new})
        self._emit(ProjectEvent(ProjectEvent.NETWORK_RENAMED, new, old=old, new=new))

    def _set_networks(self, items: list[tuple[str, Graph]]) -> None:
        # In place: whoever holds ``project.networks`` sees the new order.
        self.networks.clear()
        self.networks.update(items)

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
            **({"search": self.search} if self.search else {}),
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
        project = project_from_json(text)
    except ProjectError as exc:
        raise ProjectError(f"{p}: {exc}") from None
    project.folder = p.resolve().parent  # where relative paths (training.init_weights) start
    return project


def project_from_json(text: str) -> Project:
    _check_size(text)
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


def _check_size(text: str) -> None:
    """Refuse, before parsing, a text holding more objects, lists or values than a project file
    can (brackets and commas inside strings count too: a generous over-estimate, in milliseconds)."""
    containers = text.count("{") + text.count("[")
    if containers > MAX_CONTAINERS:
        raise ProjectError(f"about {containers:,} objects and lists is more than a project file "
                           f"holds (limit {MAX_CONTAINERS:,}); is this a project file?")
    values = text.count(",")
    if values > MAX_VALUES:
        raise ProjectError(f"about {values:,} values is more than a project file holds "
                           f"(limit {MAX_VALUES:,}); is this a project file?")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a project file")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


# Keys each level of a document may hold (what the loader reads); anything else is refused, so
# that a typo is named instead of ignored and nothing unread can make a file large or slow.
TOP_KEYS = ("format_version", "app", "name", "description", "networks", "dataset", "training",
            "metadata", "search")
NETWORK_KEYS = ("name", "nodes", "edges", "params", "sequential")
NODE_KEYS = ("id", "type", "name", "params", "pos", "when", "frozen", "attr")
EDGE_KEYS = ("src", "dst", "dst_port")
_SETTINGS = ("dataset", "training")  # their text becomes paths, column and file names
_SURROGATE = re.compile("[\ud800-\udfff]")
_BIG = 2 ** 1023  # integers from here on may not convert to a float (OverflowError)


def check_document(data: Any) -> None:
    """Check every value of a document, keys included, in one walk: plain JSON data (objects with
    text keys, lists, text, finite numbers, true/false, null), nested at most ``MAX_DEPTH``
    levels, no text with a lone surrogate (``"\\ud800"``: not a character, it cannot be written
    as UTF-8, printed or saved), no integer beyond the range of a float, no NUL character in the
    dataset and training settings (paths, column names). A document that passes can be saved
    again and printed. Raises :class:`ProjectError` naming the first offending place."""
    _walk(data, [], 0, False)


def _walk(value: Any, path: list, depth: int, setting: bool) -> None:
    if depth >= MAX_DEPTH:
        raise ProjectError(f"{_where(path)}: nested more than {MAX_DEPTH} levels deep")
    is_dict = type(value) is dict
    for k, v in (value.items() if is_dict else enumerate(value)):
        if is_dict:
            if type(k) is not str:
                raise ProjectError(f"{_where(path)}: keys must be text, got {_short(k)}")
            if not k.isascii() and _SURROGATE.search(k):
                raise ProjectError(f"{_where(path + [k])}: the key {_surrogate_problem(k)}")
        t = type(v)
        if t is str:
            if not v.isascii() and _SURROGATE.search(v):
                raise ProjectError(f"{_where(path + [k])}: the text {_surrogate_problem(v)}")
            if setting and "\x00" in v:
                raise ProjectError(f"{_where(path + [k])}: contains a NUL character (\\u0000), "
                                   "which no path or name can hold")
        elif t is int:
            if not -_BIG < v < _BIG:
                raise ProjectError(f"{_where(path + [k])}: {_short(v)} is too large for a number")
        elif t is float:
            if not math.isfinite(v):
                raise ProjectError(f"{_where(path + [k])}: {v!r} is not allowed in a project file")
        elif t is dict or t is list or t is tuple:
            path.append(k)
            _walk(v, path, depth + 1, setting or (depth == 0 and k in _SETTINGS))
            path.pop()
        elif t is not bool and v is not None:
            raise ProjectError(f"{_where(path + [k])}: expected plain JSON data, got "
                               f"{type(v).__name__}")


def _surrogate_problem(text: str) -> str:
    ch = _SURROGATE.search(text).group()
    return (f"{_short(text)} holds a lone surrogate ({ascii(ch)[1:-1]}), half of an escaped "
            "character and not text; is the file damaged?")


def _where(path: list) -> str:
    """``networks[0].nodes[3].name`` for a path of keys and indexes ("file" for the top)."""
    out = ""
    for k in path:
        out = _sub(out, k)
    if len(out) > 160:
        out = out[:80] + "..." + out[-77:]
    return out or "file"


def _sub(where: str, key: str | int) -> str:
    """The place of ``key`` within ``where``: ``where.key``, ``where[3]`` or ``where["a b"]``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    if key.isidentifier() and key.isascii():
        return f"{where}.{key}" if where else key
    return f"{where}[{_short(key)}]"


def _check_keys(data: dict, known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"known: {', '.join(known)}" + ("; notes belong in metadata"
                                                         if "metadata" in known else ""))
            raise ProjectError(f"{_sub(where, key)}: unknown key ({hint})")


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
    check_document(data)
    while version < FORMAT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    _check_keys(data, TOP_KEYS, "")

    name = _text(data, "name", DEFAULT_NAME, MAX_NAME)
    description = _text(data, "description", "", MAX_DESCRIPTION)
    nets = data.get("networks")
    if not isinstance(nets, list) or not nets:
        raise ProjectError("networks: expected a non-empty list of networks")
    if len(nets) > MAX_NETWORKS:
        raise ProjectError(f"networks: at most {MAX_NETWORKS} networks")
    networks: dict[str, Graph] = {}
    for i, net in enumerate(nets):
        where = f"networks[{i}]"
        if not isinstance(net, dict):
            raise ProjectError(f"{where}: expected an object, got {_kind(net)}")
        _check_keys(net, NETWORK_KEYS, where)
        net_name = net.get("name", "model")
        why = name_problem(net_name) if net_name != "model" else None
        if why:
            raise ProjectError(f"{where}.name: {why}")
        if net_name in networks:
            raise ProjectError(f"{where}.name: another network is already named {net_name!r}")
        networks[net_name] = graph_from_dict(net, where)
    _check_blocks(networks, nets)
    sections = {}
    for key in ("dataset", "training", "metadata"):
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ProjectError(f"{key}: expected an object, got {_kind(value)}")
        sections[key] = value
    search = data.get("search", {})
    if not isinstance(search, dict):
        raise ProjectError(f"search: expected an object, got {_kind(search)}")
    if search:
        _check_search(search, networks)
    return Project(name, description, networks, **sections, search=search)


def _check_search(search: dict, networks: dict[str, Graph]) -> None:
    """The search section of sweeps: its targets exist and its values are ones they accept."""
    try:  # a target whose layer is gone loads (nothing is lost); search_problems says so
        search_from_dict(search, networks, strict=False)
    except SearchError as exc:
        text = str(exc)
        raise ProjectError(f"search{'' if text.startswith((':', '[')) else '.'}{text}") from None


def _check_blocks(networks: dict[str, Graph], raw: list) -> None:
    """Every block use names a network of the project, and no definition contains itself."""
    names = list(networks)
    for i, (net, graph) in enumerate(networks.items()):
        for j, node in enumerate(graph.nodes.values()):
            if not node.kind.is_block:
                continue
            block = node.params.get("block")
            if block not in networks:
                known = ", ".join(repr(n) for n in names)
                raise ProjectError(f"networks[{i}].nodes[{j}].params.block: {node.name!r} uses "
                                   f"block {_short(block)}, which is not a network of this "
                                   f"project (its networks: {known})")
    for name in names:
        cycle = definition_cycle(networks, name)
        if cycle:
            raise ProjectError(f"networks: the block definitions form a cycle: "
                               f"{' -> '.join(cycle)}; a block cannot contain itself")


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
    attrs: set[str] = set()
    for i, raw in enumerate(nodes):
        here = f"{where}.nodes[{i}]"
        if not isinstance(raw, dict):
            raise ProjectError(f"{here}: expected an object, got {_kind(raw)}")
        _check_keys(raw, NODE_KEYS, here)
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
        spec = layer_spec(type_)
        if spec is None:
            close = difflib.get_close_matches(type_, [*CATALOG.ids(), "Block"], n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else "see the palette for the layer types")
            raise ProjectError(f"{here}.type: unknown layer type {_short(type_)} ({hint})")
        name = raw.get("name")
        why = name_problem(name)
        if why:
            raise ProjectError(f"{here}.name: {why}")
        if name in names or name in attrs:
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
                       or not abs(v) <= 1e7 for v in pos)):  # NaN fails too; no float() overflow
            raise ProjectError(f"{here}.pos: expected [x, y], two numbers, got {_short(pos)}")
        when = raw.get("when")
        if when is not None and (not isinstance(when, str) or not when.isidentifier()
                                 or not when.isascii() or len(when) > 64):
            raise ProjectError(f"{here}.when: expected the name of a bool block parameter, got "
                               f"{_short(when)}")
        if when is not None and type_ in ("Input", "Output"):
            raise ProjectError(f"{here}.when: an {type_} cannot be switched off")
        frozen = raw.get("frozen", False)
        if not isinstance(frozen, bool):
            raise ProjectError(f"{here}.frozen: expected true or false, got {_short(frozen)}")
        attr = raw.get("attr")
        if attr is not None:
            why = attr_problem(attr)
            if why:
                raise ProjectError(f"{here}.attr: {why}")
            if attr == name:
                raise ProjectError(f"{here}.attr: the same as the layer's name: leave it out")
            if attr in names or attr in attrs:
                raise ProjectError(f"{here}.attr: {attr!r} is another layer's name or module "
                                   "attribute")
            attrs.add(attr)
        g.nodes[node_id] = Node(node_id, type_, name, params, (float(pos[0]), float(pos[1])), when,
                                frozen, attr)
    seen: set[Edge] = set()
    for i, raw in enumerate(edges):
        here = f"{where}.edges[{i}]"
        if not isinstance(raw, dict):
            raise ProjectError(f"{here}: expected an object, got {_kind(raw)}")
        _check_keys(raw, EDGE_KEYS, here)
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
    _block_declaration(g, data, where)
    return g


def _block_declaration(g: Graph, data: dict, where: str) -> None:
    """A network's block parameters and sequential flag (format 2)."""
    raw = data.get("params", [])
    if not isinstance(raw, list):
        raise ProjectError(f"{where}.params: expected a list of block parameters, got {_kind(raw)}")
    if len(raw) > MAX_BLOCK_PARAMS:
        raise ProjectError(f"{where}.params: at most {MAX_BLOCK_PARAMS} block parameters")
    params = []
    for i, item in enumerate(raw):
        try:
            p = block_param_from_dict(item)
        except ValueError as exc:
            raise ProjectError(f"{where}.params[{i}]: {exc}") from None
        if any(q.name == p.name for q in params):
            raise ProjectError(f"{where}.params[{i}]: another block parameter is named {p.name!r}")
        params.append(p)
    g.block_params = tuple(params)
    sequential = data.get("sequential", False)
    if not isinstance(sequential, bool):
        raise ProjectError(f"{where}.sequential: expected true or false, got {_short(sequential)}")
    g.sequential = sequential


def _check_text(key: str, value: Any, limit: int) -> None:
    """The checks :func:`_text` makes on load, for an edit (so what is set can be saved and read)."""
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected text, got {_kind(value)}")
    if len(value) > limit:
        raise ValueError(f"{key}: longer than {limit:,} characters")


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
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        digits = int(abs(value).bit_length() * 0.30103) + 1  # str() refuses over 4300 digits
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits:,} digits"
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def project_to_json(project: Project) -> str:
    """The file text of a project. Raises :class:`ProjectError` (naming the place) for a value no
    project file may hold (a lone surrogate, NaN...), so that whatever saves also loads."""
    data = project.to_dict()
    try:
        check_document(data)
    except ProjectError as exc:
        raise ProjectError(f"cannot save: {exc}") from None
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_project(project: Project, path: str | os.PathLike, backup: bool = True) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over the target.

    The previous file, if any, is kept as ``<name>.bak`` (itself replaced atomically)."""
    p = Path(path)
    text = project_to_json(project)
    atomic_write_text(p, text, backup=backup)
    return p
