"""The search space of sweeps: the ``search`` section's schema, validated against a project.

Plain data and checks, no Optuna: the project file loads and validates its ``search`` section
with this module alone (see :mod:`designer.engine.search` for the section's shape)."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model.graph import Problem
from ..model.schema import _show
from ..train import config

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
#: The pruner waits for this many complete trials (a median of one or two trials is noise) and
#: lets every trial train this many epochs (the first epochs say little about the last) before
#: it prunes any: defaults a newcomer can trust; the search section and the Sweeps dock set them.
STARTUP_TRIALS = 3
WARMUP_EPOCHS = 2


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
    if not isinstance(raw, dict):
        raise SearchError(f"{where}: expected {{\"setting\": ...}}, {{\"network\": ..., "
                          f"\"node\": ..., \"param\": ...}} or {{\"network\": ..., \"node\": ..., "
                          f"\"arg\": ...}}, got {_show(raw)}")
    if "setting" in raw:
        _known_keys(raw, ("setting",), where)
        key = raw["setting"]
        decl = {s.key: s for s in config.TRAINING_SETTINGS}
        if key not in decl:
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
        if param is None or node.kind.is_block:
            known = ", ".join(p for p in spec.param_map if not node.kind.is_block) or "none"
            hint = (" (a block use's values are its args: use \"arg\")" if node.kind.is_block
                    else f" (its parameters: {known})")
            raise MissingTarget(f"{where}.param: {node.name} ({node.type}) has no parameter "
                                f"{_show(name)}{hint}")
        if param.type not in ("int", "ints", "float", "bool", "choice"):
            raise SearchError(f"{where}.param: {node.name}.{name} is {param.describe()}, which "
                              f"cannot be searched")
        return Target(network=net, node=node.name, param=name), param
    if not node.kind.is_block:
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


def search_space(project) -> SearchSpace:
    """The project's search space (SearchError: it has none, or it is invalid)."""
    if not project.search:
        raise SearchError("the project has no search section: mark parameters to search "
                          "(see the README's Sweeps section)")
    return search_from_dict(project.search, project.networks)



def changes_of(space: SearchSpace, params: Mapping[str, Any]) -> dict[Target, Any]:
    by_name = {d.name: d.target for d in space.dimensions}
    return {by_name[k]: v for k, v in params.items() if k in by_name}



def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, str) else str(v)


def describe_params(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())
