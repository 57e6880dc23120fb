"""Starting weights for a design: a state_dict file matched against a built model by name and
shape (fine-tuning).

:func:`match_weights` says which of the model's tensors the file can fill (same name, same
shape) and which start fresh (not in the file, or another shape), and which of the file's tensors
the design has no place for. :func:`load_fitting` loads what fits and refuses a file that fits
nothing, or less than ``min_fit`` (``training.init_weights_min_fit``) of the design's parameters,
so a wrong file never turns into a silent random start. Training in the window and the CLI and
File > Load weights… use these; the exported train.py has the same logic written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


class WeightsError(ValueError):
    """A weights file that cannot be read, or fits the design too little to start from."""


@dataclass
class WeightsFit:
    """What a state_dict holds for a design, tensor by tensor.

    ``missing``: the design's tensors the file lacks; ``unexpected``: the file's tensors the design
    lacks (ignored); ``mismatched``: ``(name, file shape, design shape)``; ``loaded``: the tensors
    that fit. ``loaded_params`` / ``total_params``: parameter elements that fit, of the design's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, list[int], list[int]]] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    loaded_params: int = 0
    total_params: int = 0

    @property
    def ok(self) -> bool:
        """Every tensor of the design and of the file matches (a strict load would succeed)."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def fresh(self) -> list[str]:
        """The design's tensors that start from the design's own initialisation."""
        return sorted(self.missing + [k for k, *_ in self.mismatched])

    @property
    def fraction(self) -> float:
        """The part of the design's parameters (elements) the file fills, 0..1."""
        if self.total_params:
            return self.loaded_params / self.total_params
        n = len(self.loaded) + len(self.fresh)  # a design with buffers only
        return len(self.loaded) / n if n else 1.0

    def message(self) -> str:
        parts = []
        for label, keys in (("missing from the file", self.missing),
                            ("in the file but not in the design", self.unexpected)):
            if keys:
                more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
                parts.append(f"{len(keys)} key(s) {label}: {', '.join(keys[:5])}{more}")
        for k, a, b in self.mismatched[:5]:
            parts.append(f"{k}: the file holds shape {a}, the design {b}")
        return "; ".join(parts) or "all keys match"

    def summary(self, name: str) -> str:
        """One line: how much of the design ``name`` (the file) fills."""
        n = len(self.loaded) + len(self.fresh)
        return (f"{name}: loaded {len(self.loaded)} of {n} tensors "
                f"({self.loaded_params:,} of {self.total_params:,} parameters, "
                f"{_percent(self.fraction)}); {len(self.fresh)} start fresh")

    def lines(self, name: str, limit: int | None = None) -> list[str]:
        """The summary, then every tensor that starts fresh and why, the file's tensors left
        unused, and what loaded (grouped by top-level module; :meth:`record` lists each)."""
        out = [self.summary(name)]
        mism = [f"{k} (the file {a}, the design {b})" for k, a, b in self.mismatched]
        for label, keys in (("started fresh, another shape in the file", mism),
                            ("started fresh, not in the file", self.missing),
                            ("in the file but not in the design, not used", self.unexpected)):
            if keys:
                out.append(f"{label} ({len(keys)}): {_listed(keys, limit)}")
        if self.loaded:
            out.append(f"loaded ({len(self.loaded)}): {_grouped(self.loaded)}")
        return out

    def record(self, path: str, min_fit: float) -> dict[str, Any]:
        """The run's config.json entry: what was loaded and what started fresh, by name."""
        return {"path": path, "min_fit": min_fit, "fraction": round(self.fraction, 6),
                "loaded_parameters": self.loaded_params, "parameters": self.total_params,
                "loaded": list(self.loaded),
                "fresh": {"shape_differs": {k: {"file": a, "design": b}
                                            for k, a, b in self.mismatched},
                          "not_in_file": list(self.missing)},
                "unused_from_file": list(self.unexpected)}

    def refusal(self, name: str, min_fit: float, setting: str) -> str | None:
        """Why this file must not be used as the starting point (None: it may)."""
        if not self.loaded:
            file_keys = self.unexpected + [k for k, *_ in self.mismatched]
            return (f"{name} fits nothing in the design: no tensor matches by name and shape "
                    f"(the file has {_listed(file_keys, 3)}; the design has "
                    f"{_listed(self.fresh, 3)}); nothing was loaded")
        if self.fraction < min_fit:
            return (f"{name} fills only {_percent(self.fraction)} of the design's parameters "
                    f"({len(self.loaded)} tensors fit), less than {setting} "
                    f"({_percent(min_fit)}); these would start fresh: "
                    f"{_listed(self.fresh, 5)}. Lower {setting} to start from it anyway")
        return None


def _percent(f: float) -> str:
    text = f"{f * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _listed(keys: list[str], limit: int | None) -> str:
    if not keys:
        return "none"
    if limit is None or len(keys) <= limit:
        return ", ".join(keys)
    return ", ".join(keys[:limit]) + f" and {len(keys) - limit} more"


def _grouped(keys: list[str]) -> str:
    """``conv1 (1), layer1 (30), ...``: tensors counted by their top-level module, in order."""
    counts: dict[str, int] = {}
    for k in keys:
        head = k.split(".", 1)[0]
        counts[head] = counts.get(head, 0) + 1
    return ", ".join(f"{h} ({n})" if n > 1 else h for h, n in counts.items())


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict file (tensors only: ``torch.load(weights_only=True)``); ValueError when it
    cannot be read or is not a mapping of names to tensors."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file") from None
    except Exception as exc:  # noqa: BLE001 - a pickle refused or a broken file
        raise WeightsError(f"{path}: not a state_dict file torch can load safely ({exc})"
                           ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a designer checkpoint
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise WeightsError(f"{path}: expected a state_dict (names -> tensors)")
    return state


def match_weights(model: nn.Module, state: dict[str, Any]) -> WeightsFit:
    """Match ``state`` against ``model``'s state_dict by name and shape (nothing is loaded)."""
    from .build import upgrade_state_dict  # deferred: torch loads only when this runs

    state = upgrade_state_dict(model, state)  # a Parameter layer's old <name>.weight
    want = model.state_dict()
    params = dict(model.named_parameters(remove_duplicate=False))
    fit = WeightsFit(sorted(set(want) - set(state)), sorted(set(state) - set(want)))
    for k, w in want.items():  # the model's order: what loaded reads as the model reads
        if k not in state:
            continue
        v = state[k]
        if not isinstance(v, torch.Tensor):
            fit.mismatched.append((k, [], list(w.shape)))
        elif tuple(v.shape) != tuple(w.shape):
            fit.mismatched.append((k, list(v.shape), list(w.shape)))
        else:
            fit.loaded.append(k)
            fit.loaded_params += w.numel() if k in params else 0
    fit.mismatched.sort()
    fit.total_params = sum(w.numel() for k, w in want.items() if k in params)
    return fit


def load_fitting(model: nn.Module, path: str | Path, min_fit: float,
                 setting: str = "training.init_weights_min_fit") -> WeightsFit:
    """Load every tensor of the state_dict file ``path`` whose name and shape fit ``model``;
    the others keep the model's own initialisation. Raises :class:`WeightsError` (nothing
    loaded) when the file cannot be read, fits nothing, or fills less than ``min_fit`` of the
    model's parameters (``setting`` names the threshold in the message)."""
    from .build import upgrade_state_dict  # deferred: torch loads only when this runs

    state = read_weights(path)
    fit = match_weights(model, state)
    why = fit.refusal(str(path), min_fit, setting)
    if why is not None:
        raise WeightsError(why)
    state = upgrade_state_dict(model, state)
    model.load_state_dict({k: state[k] for k in fit.loaded}, strict=False)
    return fit


__all__ = ["WeightsError", "WeightsFit", "load_fitting", "match_weights", "read_weights"]
