"""Sweeps: search hyperparameters and architecture sizes with Optuna, one ordinary run per trial.

A project's ``search`` section names what varies (a training setting, a layer parameter or a
block use's argument, each with a distribution) and how to search (objective, trials, sampler,
pruner, seed)::

    "search": {
      "objective": {"metric": "val_loss", "direction": "minimize"},
      "trials": 20, "sampler": "tpe", "pruner": "median", "seed": 0,
      "startup_trials": 3, "warmup_epochs": 2,
      "dimensions": [
        {"target": {"setting": "lr"}, "type": "float", "low": 0.0001, "high": 0.1, "log": true},
        {"target": {"network": "model", "node": "fc1", "param": "out_features"},
         "type": "int", "low": 16, "high": 128, "step": 16},
        {"target": {"network": "model", "node": "layer2", "arg": "planes"},
         "type": "choice", "choices": [64, 128]}
      ]
    }

:class:`Sweep` runs the trials: each applies its values to a copy of the project (never the
user's document), checks the shapes first (a trial whose values break them is pruned before
training, with the message), trains with the one :class:`~designer.engine.training.Trainer` into
an ordinary run folder beside the project's other runs (config.json records the study and the
trial number) and reports each epoch's objective to Optuna, which may prune it. The study lives
in an Optuna RDB storage: by default ``runs/<project stem>/sweeps.db`` (SQLite); any RDB URL
(``postgresql://...``) lets several processes share one study. A cross-process lock around
"count the trials, ask for one" makes the workers together run exactly ``trials`` trials.

Importing this module imports neither torch nor optuna (the window reads the events and the
search space before either is loaded); running a sweep does.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import _show

DISTRIBUTIONS = ("int", "float", "choice")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "successive_halving")
DIRECTIONS = ("minimize", "maximize")
#: Metrics that get better as they grow: their objective maximizes unless told otherwise.
MAXIMIZED = ("accuracy", "top5_accuracy", "precision", "recall", "f1", "r2")
MAX_DIMENSIONS = 64
MAX_CHOICES = 256
MAX_TRIALS = 100_000
MAX_GRID = 100_000
SEARCH_KEYS = ("objective", "trials", "timeout_s", "sampler", "pruner", "seed", "dimensions",
               "startup_trials", "warmup_epochs")
OBJECTIVE_KEYS = ("metric", "direction")
DIMENSION_KEYS = ("target", "type", "low", "high", "step", "log", "choices")
DB_NAME = "sweeps.db"
#: The pruner waits for this many complete trials (a median of one or two trials is noise) and
#: lets every trial train this many epochs (the first epochs say little about the last) before
#: it prunes any: defaults a newcomer can trust; the search section and the Sweeps dock set them.
STARTUP_TRIALS = 3
WARMUP_EPOCHS = 2
#: Complete trials before parameter importances are computed (fANOVA on two points says little).
MIN_TRIALS_FOR_IMPORTANCES = 3


class SearchError(ValueError):
    """A search section is invalid; the message starts with the place within it
    (``dimensions[1].target.node: ...``)."""


# ---------------------------------------------------------------------------------------------
# The search space (plain data, validated against a project)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one dimension changes: a training setting, a layer parameter or a block use's
    argument. Hashable: the changes a sweep proposes are ``{Target: value}``."""

    setting: str | None = None
    network: str | None = None
    node: str | None = None
    param: str | None = None
    arg: str | None = None

    @property
    def label(self) -> str:
        """The name of the dimension in the study and in words: ``lr``,
        ``model.fc1.out_features``, ``model.layer2.args.planes``."""
        if self.setting is not None:
            return self.setting
        if self.param is not None:
            return f"{self.network}.{self.node}.{self.param}"
        return f"{self.network}.{self.node}.args.{self.arg}"

    def to_dict(self) -> dict[str, str]:
        if self.setting is not None:
            return {"setting": self.setting}
        key = "param" if self.param is not None else "arg"
        return {"network": self.network, "node": self.node, key: getattr(self, key)}


@dataclass(frozen=True)
class Dimension:
    target: Target
    type: str  # int, float or choice
    low: float | None = None
    high: float | None = None
    step: int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        return self.target.label

    def grid(self) -> list[Any] | None:
        """Every value this dimension takes (None: a continuous range)."""
        if self.type == "choice":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        return None


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    metric: str = "val_loss"
    direction: str = "minimize"
    trials: int = 20
    timeout_s: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = 0
    startup_trials: int = STARTUP_TRIALS
    warmup_epochs: int = WARMUP_EPOCHS

    @property
    def objective(self) -> str:
        return self.metric

    def pruner_text(self) -> str:
        """The pruner in words: "median pruner (from epoch 3, once 3 trials are complete)"."""
        if self.pruner == "none":
            return "no pruning"
        return (f"{self.pruner} pruner (from epoch {self.warmup_epochs + 1}, once "
                f"{self.startup_trials} trial(s) are complete)")

    def grid_size(self) -> int | None:
        """How many points a grid search visits (None: some dimension is continuous)."""
        total = 1
        for d in self.dimensions:
            values = d.grid()
            if values is None:
                return None
            total *= len(values)
        return total


def default_direction(metric: str) -> str:
    name = metric.split("_", 1)[1] if "_" in metric else metric
    return "maximize" if name in MAXIMIZED else "minimize"


def find_node(graph, ref: str):
    """The node a target names: by its name (what the canvas shows), else by its id."""
    return graph.node_by_name(ref) or graph.nodes.get(ref)


class MissingTarget(SearchError):
    """A dimension names a layer, parameter or network the design does not have (any more)."""


def search_from_dict(data: Any, networks: Mapping[str, Any], strict: bool = True
                     ) -> SearchSpace:
    """Validate a ``search`` section against a project's networks and the training settings.

    Targets must exist (the setting, the network, node and parameter, the block's argument) and
    every value the dimension can take must be one the parameter accepts. Raises
    :class:`SearchError` whose message starts with the place within the section.

    ``strict=False`` (loading a file, editing the document) accepts a target whose layer is
    gone (renamed, deleted, grouped into a block): the file still loads and nothing is lost;
    :func:`search_problems` reports it, and a sweep refuses to start until it is fixed."""
    if not isinstance(data, dict):
        raise SearchError(f": expected an object, got {_show(data)}")
    _known_keys(data, SEARCH_KEYS, "")
    objective = data.get("objective", {})
    if not isinstance(objective, dict):
        raise SearchError(f"objective: expected an object like {{\"metric\": \"val_loss\", "
                          f"\"direction\": \"minimize\"}}, got {_show(objective)}")
    _known_keys(objective, OBJECTIVE_KEYS, "objective")
    metric = objective.get("metric", "val_loss")
    if (not isinstance(metric, str) or not metric.startswith(("val_", "train_"))
            or not metric.isidentifier() or len(metric) > 64):
        raise SearchError(f"objective.metric: expected the name of an epoch metric such as "
                          f"val_loss, val_accuracy or train_loss, got {_show(metric)}")
    direction = objective.get("direction", default_direction(metric))
    if direction not in DIRECTIONS:
        raise SearchError(f"objective.direction: expected minimize or maximize, got "
                          f"{_show(direction)}")
    trials = data.get("trials", 20)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise SearchError(f"trials: expected an integer from 1 to {MAX_TRIALS:,}, got "
                          f"{_show(trials)}")
    timeout = data.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout <= 1e8):
        raise SearchError(f"timeout_s: expected a positive number of seconds or null, got "
                          f"{_show(timeout)}")
    sampler = data.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise SearchError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {_show(sampler)}")
    pruner = data.get("pruner", "median")
    if pruner not in PRUNERS:
        raise SearchError(f"pruner: expected one of {', '.join(PRUNERS)}, got {_show(pruner)}")
    waits = {}
    for key, default, what in (("startup_trials", STARTUP_TRIALS, "complete trials"),
                               ("warmup_epochs", WARMUP_EPOCHS, "epochs")):
        v = data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_TRIALS:
            raise SearchError(f"{key}: expected a number of {what} from 0 to {MAX_TRIALS:,} "
                              f"before the pruner may stop a trial, got {_show(v)}")
        waits[key] = v
    seed = data.get("seed", 0)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**31):
        raise SearchError(f"seed: expected an integer from 0 to {2**31 - 1} or null, got "
                          f"{_show(seed)}")
    raw = data.get("dimensions", [])
    if not isinstance(raw, list) or not raw:
        raise SearchError("dimensions: expected a non-empty list of dimensions (a target and a "
                          "distribution each)")
    if len(raw) > MAX_DIMENSIONS:
        raise SearchError(f"dimensions: at most {MAX_DIMENSIONS} dimensions")
    dims: list[Dimension] = []
    for i, item in enumerate(raw):
        dim = _dimension(item, networks, f"dimensions[{i}]", strict)
        other = next((j for j, d in enumerate(dims) if d.target == dim.target), None)
        if other is not None:
            raise SearchError(f"dimensions[{i}].target: {dim.name} is already searched by "
                              f"dimensions[{other}]")
        dims.append(dim)
    space = SearchSpace(tuple(dims), metric, direction, trials,
                        float(timeout) if timeout is not None else None, sampler, pruner, seed,
                        **waits)
    if sampler == "grid":
        size = space.grid_size()
        if size is None:
            cont = next(d.name for d in dims if d.grid() is None)
            raise SearchError(f"sampler: a grid needs a finite space, but {cont} is a float "
                              f"range; make it a choice, or use the tpe or random sampler")
        if size > MAX_GRID:
            raise SearchError(f"sampler: the grid has {size:,} points (limit {MAX_GRID:,}); "
                              f"narrow the ranges or use the tpe sampler")
    return space


def _dimension(item: Any, networks: Mapping[str, Any], where: str, strict: bool = True
               ) -> Dimension:
    if not isinstance(item, dict):
        raise SearchError(f"{where}: expected an object with a target and a type, got "
                          f"{_show(item)}")
    _known_keys(item, DIMENSION_KEYS, where)
    try:
        target, param = _target(item.get("target"), networks, f"{where}.target")
    except MissingTarget:
        if strict:
            raise
        target, param = _loose_target(item.get("target"), f"{where}.target"), None
    kind = item.get("type")
    if kind not in DISTRIBUTIONS:
        raise SearchError(f"{where}.type: expected one of {', '.join(DISTRIBUTIONS)}, got "
                          f"{_show(kind)}")
    if kind == "choice":
        for key in ("low", "high", "step", "log"):
            if key in item:
                raise SearchError(f"{where}.{key}: a choice dimension lists its choices only")
        choices = item.get("choices")
        if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
            raise SearchError(f"{where}.choices: expected a list of 1 to {MAX_CHOICES} numbers, "
                              f"texts or true/false, got {_show(choices)}")
        seen: list[Any] = []
        for j, c in enumerate(choices):
            if not isinstance(c, (bool, int, float, str)):
                raise SearchError(f"{where}.choices[{j}]: expected a number, a text or "
                                  f"true/false, got {_show(c)}")
            if param is not None:
                _accepts(param, c, f"{where}.choices[{j}]", target)
            if any(type(c) is type(s) and c == s for s in seen):
                raise SearchError(f"{where}.choices[{j}]: {_show(c)} is listed twice")
            seen.append(c)
        return Dimension(target, "choice", choices=tuple(choices))
    if "choices" in item:
        raise SearchError(f"{where}.choices: only a choice dimension has choices")
    ptype = getattr(param, "type", None)
    if param is None:  # a target that is gone: its values are checked once it is back
        ptype = "int" if kind == "int" else "float"
    if kind == "int" and ptype not in ("int", "ints"):
        raise SearchError(f"{where}.type: {target.label} is {param.describe()}; an int range "
                          f"does not fit it" + ("; use a float range" if ptype == "float" else
                                                "; use choices"))
    if kind == "float" and ptype != "float":
        raise SearchError(f"{where}.type: {target.label} is {param.describe()}; a float range "
                          f"does not fit it" + ("; use an int range" if ptype in ("int", "ints")
                                                else "; use choices"))
    numeric = int if kind == "int" else (int, float)
    for key in ("low", "high"):
        v = item.get(key)
        if isinstance(v, bool) or not isinstance(v, numeric) or not math.isfinite(v):
            what = "an integer" if kind == "int" else "a number"
            raise SearchError(f"{where}.{key}: expected {what}, got {_show(v)}")
    low, high = item["low"], item["high"]
    log = item.get("log", False)
    if not isinstance(log, bool):
        raise SearchError(f"{where}.log: expected true or false, got {_show(log)}")
    step = item.get("step")
    if kind == "int":
        step = 1 if step is None else step
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise SearchError(f"{where}.step: expected a positive integer, got {_show(step)}")
        if log and step != 1:
            raise SearchError(f"{where}.step: a log range takes every integer (step 1)")
        if (high - low) % step:
            raise SearchError(f"{where}.high: {high} is not low plus a multiple of step "
                              f"({low} + k * {step})")
    elif step is not None:
        raise SearchError(f"{where}.step: a float range has no step (use an int range or "
                          f"choices)")
    if not low < high if kind == "float" else not low <= high:
        raise SearchError(f"{where}.high: expected more than low ({_show(low)}), got "
                          f"{_show(high)}")
    if log and low <= 0:
        raise SearchError(f"{where}.low: a log range starts above 0, got {_show(low)}")
    if param is not None:
        _accepts(param, low, f"{where}.low", target)
        _accepts(param, high, f"{where}.high", target)
    return Dimension(target, kind, low, high, step if kind == "int" else None, log)


def _accepts(param, value: Any, where: str, target: Target) -> None:
    try:
        param.validate(value)
    except ValueError as exc:
        raise SearchError(f"{where}: {target.label} cannot be {_show(value)}: {exc}") from None


def _target(raw: Any, networks: Mapping[str, Any], where: str):
    """The target and the parameter declaration that checks its values."""
    from .blocks import BLOCK
    from .config import TRAINING_SETTINGS

    if not isinstance(raw, dict):
        raise SearchError(f"{where}: expected {{\"setting\": ...}}, {{\"network\": ..., "
                          f"\"node\": ..., \"param\": ...}} or {{\"network\": ..., \"node\": ..., "
                          f"\"arg\": ...}}, got {_show(raw)}")
    if "setting" in raw:
        _known_keys(raw, ("setting",), where)
        key = raw["setting"]
        decl = {s.key: s for s in TRAINING_SETTINGS}
        if key not in decl:
            import difflib

            close = difflib.get_close_matches(str(key), list(decl), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SearchError(f"{where}.setting: no training setting {_show(key)}{hint}")
        if key in ("recipe", "device"):
            raise SearchError(f"{where}.setting: {key} cannot be searched")
        return Target(setting=key), decl[key]
    if "param" in raw and "arg" in raw:
        raise SearchError(f"{where}: a target names a param or an arg, not both")
    kind = "param" if "param" in raw else "arg"
    _known_keys(raw, ("network", "node", kind), where)
    net = raw.get("network", next(iter(networks), None))
    if net not in networks:
        known = ", ".join(repr(n) for n in networks)
        raise MissingTarget(f"{where}.network: no network {_show(net)} (the project's "
                            f"networks: {known})")
    graph = networks[net]
    ref = raw.get("node")
    node = find_node(graph, ref) if isinstance(ref, str) else None
    if node is None:
        raise MissingTarget(f"{where}.node: network {net!r} has no layer named {_show(ref)}")
    name = raw.get(kind)
    if kind == "param":
        spec = node.spec
        param = spec.param_map.get(name) if isinstance(name, str) else None
        if param is None or node.type == BLOCK:
            known = ", ".join(p for p in spec.param_map if node.type != BLOCK) or "none"
            hint = (" (a block use's values are its args: use \"arg\")" if node.type == BLOCK
                    else f" (its parameters: {known})")
            raise MissingTarget(f"{where}.param: {node.name} ({node.type}) has no parameter "
                                f"{_show(name)}{hint}")
        if param.type not in ("int", "ints", "float", "bool", "choice"):
            raise SearchError(f"{where}.param: {node.name}.{name} is {param.describe()}, which "
                              f"cannot be searched")
        return Target(network=net, node=node.name, param=name), param
    if node.type != BLOCK:
        raise SearchError(f"{where}.arg: {node.name} is a {node.type}, not a block use; its "
                          f"values are params")
    definition = networks.get(node.params.get("block"))
    declared = {p.name: p for p in getattr(definition, "block_params", ())}
    if name not in declared:
        known = ", ".join(declared) or "none"
        raise MissingTarget(f"{where}.arg: block {node.params.get('block')!r} has no "
                            f"parameter {_show(name)} (its parameters: {known})")
    return Target(network=net, node=node.name, arg=name), declared[name]


def _loose_target(raw: Any, where: str) -> Target:
    """A layer target as written, when its layer is not in the design (see strict=False)."""
    kind = "param" if "param" in raw else "arg"
    _known_keys(raw, ("network", "node", kind), where)
    values = {k: raw.get(k) for k in ("network", "node", kind)}
    for k, v in values.items():
        if not isinstance(v, str) or not v or len(v) > 200:
            raise SearchError(f"{where}.{k}: expected a name, got {_show(v)}")
    return Target(**values)


def search_problems(project) -> list:
    """What stops the project's search from running, as problems for ``designer check`` and the
    window: a target whose layer was renamed, deleted or grouped into a block, a range that no
    longer fits its parameter. [] when there is no search section or it is sound."""
    from .graph import Problem

    if not project.search:
        return []
    try:
        search_from_dict(project.search, project.networks)
    except SearchError as exc:
        text = str(exc)
        place = f"search{'' if text.startswith((':', '[')) else '.'}{text}"
        return [Problem("error", f"Sweep: {place}. Unmark it or mark the layer again (Sweeps "
                        "view), or edit the file's search section", (), "search")]
    return []


def _known_keys(data: dict, known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            place = f"{where}.{key}" if where else str(key)
            raise SearchError(f"{place}: unknown key (known: {', '.join(known)})")


# ---------------------------------------------------------------------------------------------
# Applying values (pure: a new project, the given one untouched)
# ---------------------------------------------------------------------------------------------


def apply_values(project, values: Mapping[Target | str, Any]):
    """A new project equal to ``project`` with ``values`` (``{Target or its label: value}``)
    applied, validated like a file being loaded (a refused value raises ProjectError naming
    it). The given project is never changed: the sweep applies each trial to such a copy, and
    ``designer sweep --apply`` saves one."""
    from .project import ProjectError, project_from_dict

    data = json.loads(json.dumps(project.to_dict()))  # plain data, no listeners
    targets = {d.target.label: d.target for d in search_space(project).dimensions} if (
        project.search) else {}
    for key, value in values.items():
        target = key if isinstance(key, Target) else targets.get(key)
        if target is None:
            raise ProjectError(f"search: no dimension named {_show(key)}")
        _apply_to_dict(data, target, value)
    return project_from_dict(data)


def _apply_to_dict(data: dict, target: Target, value: Any) -> None:
    from .project import ProjectError

    if target.setting is not None:
        data.setdefault("training", {})[target.setting] = value
        return
    net = next((n for n in data["networks"] if n.get("name", "model") == target.network), None)
    nodes = net["nodes"] if net else []
    node = (next((n for n in nodes if n.get("name") == target.node), None)
            or next((n for n in nodes if n.get("id") == target.node), None))
    if node is None:
        raise ProjectError(f"{target.label}: no such layer")
    params = node.setdefault("params", {})
    if target.param is not None:
        params[target.param] = value
    else:
        params.setdefault("args", {})[target.arg] = value


def search_space(project) -> SearchSpace:
    """The project's search space (SearchError: it has none, or it is invalid)."""
    if not project.search:
        raise SearchError("the project has no search section: mark parameters to search "
                          "(see the README's Sweeps section)")
    return search_from_dict(project.search, project.networks)


def current_values(project, space: SearchSpace | None = None) -> dict[Target, Any]:
    """The values the project has now for each searched target (the sweep's baseline)."""
    from .config import validate_training

    space = space or search_space(project)
    training = validate_training(project.training)
    out: dict[Target, Any] = {}
    for d in space.dimensions:
        t = d.target
        if t.setting is not None:
            out[t] = training[t.setting]
            continue
        node = find_node(project.networks[t.network], t.node)
        out[t] = (node.params.get(t.param) if t.param is not None
                  else (node.params.get("args") or {}).get(t.arg))
    return out


# ---------------------------------------------------------------------------------------------
# Events (plain data: a view observes them from the sweep's thread)
# ---------------------------------------------------------------------------------------------

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


@dataclass(frozen=True)
class SweepStarted:
    study: str
    storage: str  # the URL without its password
    trials: int  # the study's total
    existing: int  # trials the study already had when this worker started
    space: SearchSpace


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict[str, Any]  # {target label: value}
    run_dir: str | None


@dataclass(frozen=True)
class TrialProgress:
    """A trainer event (Started, Batch, Epoch, ...) of the running trial."""

    number: int
    event: Any


@dataclass(frozen=True)
class TrialFinished:
    number: int
    state: str  # complete, pruned or failed
    value: float | None  # the objective (complete trials)
    params: dict[str, Any]
    duration_s: float
    run_dir: str | None  # None: pruned before training
    message: str = ""  # why it was pruned or failed
    epoch: int | None = None  # the epoch a pruned trial stopped after


@dataclass(frozen=True)
class BestTrial:
    number: int
    value: float
    params: dict[str, Any]  # {target label: value}
    run_dir: str | None


@dataclass(frozen=True)
class SweepFinished:
    best: BestTrial | None
    reason: str  # "done", "timeout" or "stopped"
    counts: dict[str, int]  # trials of the study per state
    importances: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


def default_storage(project_path: str | os.PathLike | None, project_name: str = "untitled",
                    base_dir: str | os.PathLike | None = None) -> str:
    """``sqlite:///<project folder>/runs/<project stem>/sweeps.db``."""
    from .runs import project_stem

    folder = (Path(project_path).resolve().parent if project_path is not None
              else Path(base_dir or ".").resolve())
    return f"sqlite:///{folder / 'runs' / project_stem(project_path, project_name) / DB_NAME}"


def storage_label(url: str) -> str:
    """The URL with its password hidden (what is printed and recorded)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: say only its scheme
        return url.split("://", 1)[0] + "://..."


class _StorageLock:
    """A lock shared by every worker of one study: a file lock beside an SQLite database, an
    advisory lock on PostgreSQL and MySQL. Held only while counting trials and asking for one
    (milliseconds), so that the workers together create exactly the trials asked for."""

    def __init__(self, url: str, study: str) -> None:
        self.url = url
        self.key = zlib.crc32(f"designer-sweep:{study}".encode()) & 0x7FFFFFFF
        self.path: Path | None = None
        self.engine = None
        self._local = threading.Lock()  # threads of one process (flock is per open file)
        scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
        self.scheme = scheme
        if scheme == "sqlite":
            db = url.split("///", 1)[1] if "///" in url else ""
            if db and db != ":memory:":
                self.path = Path(db + ".lock")
                self.path.parent.mkdir(parents=True, exist_ok=True)
        elif scheme in ("postgresql", "mysql", "mariadb"):
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            self.engine = sqlalchemy.create_engine(url, poolclass=NullPool)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._local:
            if self.path is not None:
                with _file_lock(self.path):
                    yield
            elif self.engine is not None:
                from sqlalchemy import text

                with self.engine.connect() as conn:
                    if self.scheme == "postgresql":
                        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
                        try:
                            yield
                        finally:
                            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    else:
                        conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": str(self.key)})
                        try:
                            yield
                        finally:
                            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": str(self.key)})
            else:
                yield

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks a byte range
            import msvcrt

            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.05)
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def open_storage(url: str):
    """An Optuna RDB storage for ``url`` (SQLite waits for a busy database instead of failing)."""
    from optuna.storages import RDBStorage

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        db = url.split("///", 1)[1] if "///" in url else ""
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    storage = RDBStorage(url, **kwargs)
    if url.startswith("sqlite") and db and db != ":memory:":
        # Write-ahead logging, synced at checkpoints rather than at every commit: each trial
        # commits a handful of small transactions, and an fsync apiece cost ~20 ms a trial.
        # Safe for several processes of one machine (the file lock above orders their asks).
        from sqlalchemy import event

        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened while the tables were made
    return storage


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


class Sweep:
    """Runs a project's search: see the module docstring.

    ``project``: the document (read once, at construction: later edits do not reach the sweep).
    ``base_dir``: the project's folder (data paths are relative to it). ``project_path``: the
    project file, whose stem names the runs folder (None: named after the project).
    ``storage``: an Optuna RDB URL (default: :func:`default_storage`); ``study_name``: default
    the project's name. ``trials``/``timeout_s``: override the search section's. ``callback``
    gets the events (in the sweep's thread). ``with_importances``: SweepFinished carries the
    parameter importances (fANOVA: imports scikit-learn, a second or two; a view can ask
    :meth:`importances` itself when it shows them). Call :meth:`run` (blocking) in any thread, or
    :meth:`start`; :meth:`stop` from any thread stops the running trial within a batch.
    """

    def __init__(self, project, base_dir: str | os.PathLike, storage: str | None = None,
                 study_name: str | None = None, *, project_path: str | os.PathLike | None = None,
                 trials: int | None = None, timeout_s: float | None = None,
                 callback: Callable[[Any], None] | None = None, dataset=None,
                 cpu_threads: int | None = None, with_importances: bool = False) -> None:
        from .project import project_from_dict

        self.space = search_space(project)
        # A frozen snapshot: the sweep never reads or writes the user's document again.
        self.project = project_from_dict(json.loads(json.dumps(project.to_dict())))
        self.base_dir = Path(base_dir)
        self.project_path = Path(project_path) if project_path is not None else None
        self.storage_url = storage or default_storage(project_path, project.name, base_dir)
        self.study_name = study_name or project.name
        self.trials = self.space.trials if trials is None else trials
        if self.space.sampler == "grid":
            self.trials = min(self.trials, self.space.grid_size() or self.trials)
        self.timeout_s = self.space.timeout_s if timeout_s is None else timeout_s
        self.callback = callback
        self.dataset = dataset
        self.cpu_threads = cpu_threads
        self.with_importances = with_importances
        self.study = None
        self.results: list[TrialFinished] = []
        self.finished: SweepFinished | None = None
        self._stop = threading.Event()
        self._trainer = None
        self._thread: threading.Thread | None = None
        self._lock: _StorageLock | None = None

    # ---- control (any thread) ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop: the running trial stops before its next batch (it is marked failed, "stopped"),
        and no new trial starts."""
        self._stop.set()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="designer-sweep", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> SweepFinished | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    # ---- the run -------------------------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        if self.callback is not None:
            self.callback(event)

    def run(self) -> SweepFinished:
        """Run trials until the study has ``trials`` of them, the timeout passes or
        :meth:`stop`. Raises ValueError (DatasetError, ...) when the sweep cannot start."""
        import optuna

        from .config import validate_dataset
        from .data import load_dataset

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.dataset is None:  # loaded once, for every trial (the same dataset settings)
            self.dataset = load_dataset(validate_dataset(self.project.dataset), self.base_dir)
        self._lock = _StorageLock(self.storage_url, self.study_name)
        try:
            return self._run(optuna)
        finally:
            self._lock.close()

    def _run(self, optuna) -> SweepFinished:
        with self._lock.held():
            storage = open_storage(self.storage_url)
            study = optuna.create_study(storage=storage, study_name=self.study_name,
                                        direction=self.space.direction, load_if_exists=True)
            existing = len(study.get_trials(deepcopy=False))
            worker = int(study.user_attrs.get("workers", 0))
            study.set_user_attr("workers", worker + 1)
        study.sampler = self._sampler(optuna, worker)
        study.pruner = self._pruner(optuna)
        self.study = study
        self._emit(SweepStarted(self.study_name, storage_label(self.storage_url), self.trials,
                                existing, self.space))
        started = time.monotonic()
        reason = "done"
        while True:
            if self._stop.is_set():
                reason = "stopped"
                break
            if self.timeout_s is not None and time.monotonic() - started >= self.timeout_s:
                reason = "timeout"
                break
            with self._lock.held():
                if len(study.get_trials(deepcopy=False)) >= self.trials:
                    break
                trial = study.ask()
            self.results.append(self._trial(optuna, study, trial))
        states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
        counts = {s: states.count(s) for s in sorted(set(states))}
        self.finished = SweepFinished(self.best(), reason, counts,
                                      self.importances() if self.with_importances else {})
        self._emit(self.finished)
        return self.finished

    def _sampler(self, optuna, worker: int):
        # Each worker of a study gets its own seed (the same seed would draw the same points).
        seed = None if self.space.seed is None else self.space.seed + worker
        if self.space.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.space.sampler == "grid":
            grid = {d.name: d.grid() for d in self.space.dimensions}
            return _Grid(grid, seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self, optuna):
        return make_pruner(optuna, self.space)

    def _suggest(self, trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for d in self.space.dimensions:
            if d.type == "choice":
                params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
            elif d.type == "int":
                params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high),
                                                   step=d.step or 1, log=d.log)
            else:
                params[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high),
                                                     log=d.log)
        return params

    def _trial(self, optuna, study, trial) -> TrialFinished:
        t0 = time.perf_counter()
        number = trial.number
        params: dict[str, Any] = {}
        run_dir: Path | None = None
        state, value, message, epoch = FAILED, None, "", None
        try:
            params = self._suggest(trial)
            copy_, why = self._prepare_copy(params)
            if why:  # pruned before training: nothing is built or written
                trial.set_user_attr("message", why)
                self._emit(TrialStarted(number, params, None))
                state, message = PRUNED, why
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                run_dir = self._new_run_dir()
                trial.set_user_attr("run_dir", str(run_dir))
                self._emit(TrialStarted(number, params, str(run_dir)))
                state, value, message, epoch = self._train(optuna, trial, copy_, params, run_dir)
                if state == COMPLETE:
                    study.tell(trial, value)
                else:
                    if message:
                        trial.set_user_attr("message", message[:2000])
                    ts = optuna.trial.TrialState
                    study.tell(trial, state=ts.PRUNED if state == PRUNED else ts.FAIL)
        except Exception as exc:  # noqa: BLE001 - one broken trial never ends the sweep
            state, value = FAILED, None
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(
                exc)
            with contextlib.suppress(Exception):
                trial.set_user_attr("message", message[:2000])
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finally:
            self._trainer = None
        done = TrialFinished(number, state, value, params, time.perf_counter() - t0,
                             str(run_dir) if run_dir else None, message, epoch)
        self._emit(done)
        return done

    def _prepare_copy(self, params: dict[str, Any]):
        """The project with the trial's values, and why it cannot train (None: it can)."""
        from .project import ProjectError
        from .recipes import recipe_of
        from .shapes import analyze

        targets = {d.name: d.target for d in self.space.dimensions}
        try:
            trial_project = apply_values(self.project, {targets[k]: v for k, v in params.items()})
        except ProjectError as exc:
            return None, f"the values do not fit the design: {exc}"
        spec = recipe_of(trial_project)
        errors = []
        for role, graph in spec.networks(trial_project).items():
            for p in analyze(graph).errors:
                errors.append(p.message if len(spec.roles) == 1 else f"{role}: {p.message}")
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return trial_project, f"the shapes do not fit: {errors[0]}{more}"
        return trial_project, None

    def _new_run_dir(self) -> Path:
        """A new run folder beside the project's other runs, made here so that two workers
        starting in the same second never share one."""
        from .runs import default_run_dir

        path = self.project_path or (self.base_dir / f"{self._stem()}.dnn.json")
        for _ in range(1000):
            folder = default_run_dir(path, self.project.name)
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
        raise OSError(f"cannot create a run folder under {folder.parent}")

    def _stem(self) -> str:
        from .runs import project_stem

        return project_stem(None, self.project.name)

    def _train(self, optuna, trial, project, params: dict[str, Any], run_dir: Path):
        """Train one trial; returns (state, value, message, epoch pruned after)."""
        from .config import validate_dataset, validate_training
        from .recipes import RecipeError, prepare_run
        from .training import Epoch, Failed, Trainer

        metric = self.space.metric
        phase, name = metric.split("_", 1)
        direction = self.space.direction
        seen: list[float] = []
        outcome: dict[str, Any] = {}

        def on_event(event: Any) -> None:
            if isinstance(event, Epoch):
                value = (event.val if phase == "val" else event.train).get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    have = ", ".join(f"{phase}_{k}" for k, v in
                                     (event.val if phase == "val" else event.train).items()
                                     if isinstance(v, (int, float)))
                    outcome["missing"] = (f"objective {metric}: the runs have no such metric "
                                          f"(they have {have or 'none'})")
                    trainer.stop()
                elif not math.isfinite(value):
                    outcome["nan"] = f"{metric} is {value} in epoch {event.epoch}"
                    trainer.stop()
                else:
                    seen.append(float(value))
                    trial.report(float(value), event.epoch)
                    if trial.should_prune():
                        outcome["pruned"] = event.epoch
                        trainer.stop()
            elif isinstance(event, Failed):
                outcome["failed"] = event.message
            self._emit(TrialProgress(trial.number, event))

        training = validate_training(project.training)
        project.folder = self.base_dir  # relative paths (training.init_weights) start there
        try:
            _, recipe = prepare_run(project, self.dataset, training, run_dir=run_dir)
        except RecipeError as exc:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # nothing was written
            return PRUNED, None, str(exc), None
        extra = {"dataset": validate_dataset(self.project.dataset), "project": project.to_dict(),
                 "project_file": str(self.project_path.resolve()) if self.project_path else None,
                 "sweep": {"study": self.study_name, "trial": trial.number, "params": params,
                           "storage": storage_label(self.storage_url)}}
        trainer = Trainer(None, self.dataset, training, run_dir=run_dir, callback=on_event,
                          recipe=recipe, extra_config=extra, cpu_threads=self.cpu_threads)
        self._trainer = trainer
        if self._stop.is_set():
            trainer.stop()
        result = trainer.run()
        if "missing" in outcome:
            return FAILED, None, outcome["missing"], None
        if "nan" in outcome:
            return FAILED, None, outcome["nan"], None
        if "pruned" in outcome:
            return PRUNED, None, f"pruned after epoch {outcome['pruned']}", outcome["pruned"]
        if result.status == "failed":
            return FAILED, None, outcome.get("failed", result.message), None
        if result.status == "stopped":
            return FAILED, None, "stopped: the sweep was stopped", None
        if not seen:
            return FAILED, None, f"no epoch reported {metric}", None
        value = min(seen) if direction == "minimize" else max(seen)
        return COMPLETE, value, "", None

    # ---- results -------------------------------------------------------------------------------

    def best(self) -> BestTrial | None:
        """The best complete trial of the study so far (every worker's), or None."""
        return best_trial(self.study) if self.study is not None else None

    def importances(self) -> dict[str, float]:
        """How much each dimension mattered (Optuna's fANOVA), {} until there are enough
        complete trials."""
        return importances(self.study) if self.study is not None else {}

    def best_changes(self) -> dict[Target, Any]:
        """The best trial's values as ``{Target: value}`` (what :func:`apply_best` gives)."""
        best = self.best()
        return changes_of(self.space, best.params) if best else {}


class _Grid:
    """Optuna's GridSampler, minus its ``study.stop()`` when the grid is done (that only works
    inside ``study.optimize``; the sweep stops by counting trials)."""

    def __new__(cls, grid: dict[str, list[Any]], seed: int | None):
        from optuna.samplers import GridSampler

        class Grid(GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                return None

        return Grid(grid, seed=seed)


def best_trial(study) -> BestTrial | None:
    try:
        t = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    params = dict(t.params)  # named by the targets' labels
    return BestTrial(t.number, float(t.value), params, t.user_attrs.get("run_dir"))


def make_pruner(optuna, space: SearchSpace):
    """The study's pruner: none before ``space.startup_trials`` trials are complete, and never
    in a trial's first ``space.warmup_epochs`` epochs (trials report their epochs as steps 1,
    2, ...)."""
    first = space.warmup_epochs + 1  # the first epoch a trial can be pruned after
    if space.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=space.startup_trials,
                                           n_warmup_steps=first)
    if space.pruner == "successive_halving":
        return _after_startup(optuna, optuna.pruners.SuccessiveHalvingPruner(min_resource=first),
                              space.startup_trials)
    return optuna.pruners.NopPruner()


def _after_startup(optuna, inner, startup_trials: int):
    """``inner``, asked only once ``startup_trials`` trials are complete (successive halving
    has no such wait of its own)."""

    class AfterStartup(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            done = study.get_trials(deepcopy=False,
                                    states=(optuna.trial.TrialState.COMPLETE,))
            return len(done) >= startup_trials and inner.prune(study, trial)

    return AfterStartup()


def importances(study) -> dict[str, float]:
    """Each parameter's importance (fANOVA), from MIN_TRIALS_FOR_IMPORTANCES complete trials on
    ({} before)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCES:
        return {}
    import warnings

    try:
        with warnings.catch_warnings():  # "importances will be equal": the numbers say so
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):  # one distinct value, ...
        return {}
    return {k: float(v) for k, v in found.items()}


def changes_of(space: SearchSpace, params: Mapping[str, Any]) -> dict[Target, Any]:
    by_name = {d.name: d.target for d in space.dimensions}
    return {by_name[k]: v for k, v in params.items() if k in by_name}


def load_best(project, storage: str | None = None, study_name: str | None = None, *,
              project_path: str | os.PathLike | None = None,
              base_dir: str | os.PathLike | None = None) -> BestTrial | None:
    """The best trial of a project's study (stored as :class:`Sweep` stores it), or None."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage(project_path, project.name, base_dir)
    study = optuna.load_study(study_name=study_name or project.name, storage=open_storage(url))
    return best_trial(study)


def apply_best(project, best: BestTrial | None) -> dict[Target, Any]:
    """The changes ``{Target: value}`` that give ``project`` the best trial's values (only those
    that differ); the caller applies them (the window as one undo step, the CLI with
    :func:`apply_values`)."""
    if best is None:
        return {}
    space = search_space(project)
    now = current_values(project, space)
    return {t: v for t, v in changes_of(space, best.params).items() if now.get(t) != v
            or type(now.get(t)) is not type(v)}


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, str) else str(v)


def describe_params(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())


__all__ = [
    "BestTrial",
    "Dimension",
    "SearchError",
    "SearchSpace",
    "Sweep",
    "SweepFinished",
    "SweepStarted",
    "Target",
    "TrialFinished",
    "TrialProgress",
    "TrialStarted",
    "apply_best",
    "apply_values",
    "current_values",
    "default_storage",
    "describe_params",
    "load_best",
    "search_from_dict",
    "search_space",
]
