"""Applying a search's values to a project (pure: a new project, the given one untouched)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..document.project import ProjectError, project_from_dict
from ..model.schema import _show
from ..train.config import validate_training
from .space import SearchSpace, Target, find_node, search_space


def apply_values(project, values: Mapping[Target | str, Any]):
    """A new project equal to ``project`` with ``values`` (``{Target or its label: value}``)
    applied, validated like a file being loaded (a refused value raises ProjectError naming
    it). The given project is never changed: the sweep applies each trial to such a copy, and
    ``designer sweep --apply`` saves one."""
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


def current_values(project, space: SearchSpace | None = None) -> dict[Target, Any]:
    """The values the project has now for each searched target (the sweep's baseline)."""
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
