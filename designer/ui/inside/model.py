"""What the Inside views draw from: one run's summaries as per-layer series, its latest sample
view, and which layer keys a canvas node stands for (no Qt here).

Events arrive in the GUI thread (live) or from ``read_inside`` (replay); :meth:`InsideStore.add`
only appends to lists, the views read the arrays when their timer fires.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer.engine.train.events import InsideSample, InsideSummary, LayerSummary
from designer.engine.train.inside_files import HISTOGRAMS, SCALARS

#: A layer is "mostly dead" above this fraction of dead units (after a ReLU).
DEAD_LIMIT = 0.5
#: A gradient norm is called vanishing below 1e-6, or when it is this many decades below the
#: median of the network's layers; exploding above 1e3, or this many decades above the median.
#: (The scale's ends are only the smallest and largest norms: 1e-2 is no vanishing gradient.)
VANISHING_ABS, EXPLODING_ABS, APART_DECADES = -6.0, 3.0, 3.0


@dataclass
class LayerSeries:
    """One layer's values over the captures of a run."""

    key: str
    network: str
    path: str
    node: str | None
    type: str
    kind: str
    steps: list[int] = field(default_factory=list)
    scalars: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in SCALARS})
    hists: dict[str, list[Any]] = field(default_factory=lambda: {n: [] for n in HISTOGRAMS})

    def add(self, step: int, s: LayerSummary) -> None:
        self.steps.append(step)
        for name in SCALARS:
            self.scalars[name].append(float(getattr(s, name)))
        for name in HISTOGRAMS:
            self.hists[name].append(getattr(s, name))

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.steps, dtype=float), np.asarray(self.scalars[name], dtype=float)

    def heat(self, name: str, rows: int = 64) -> tuple[np.ndarray, float, float] | None:
        """The histograms of ``name`` over the captures on one common value grid: an image
        (captures x rows, log(1 + share of the values)), with the grid's low and high value."""
        hists = self.hists[name]
        idx = [i for i, h in enumerate(hists) if h is not None]
        if not idx:
            return None
        edges = np.stack([np.asarray(hists[i].edges, float) for i in idx])  # (m, bins + 1)
        counts = np.stack([np.asarray(hists[i].counts, float) for i in idx])  # (m, bins)
        lo, hi = float(edges[:, 0].min()), float(edges[:, -1].max())
        if not hi > lo:
            hi = lo + 1.0
        # each capture's values spread evenly within their bins, regridded: the cumulative
        # share at the grid's edges, differenced (no empty rows where bins are wider than rows)
        totals = counts.sum(axis=1, keepdims=True)
        cdf = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(counts, axis=1)], axis=1)
        cdf /= np.where(totals > 0, totals, 1.0)
        grid = np.linspace(lo, hi, rows + 1)
        img = np.zeros((len(hists), rows), dtype=np.float32)
        for row, (e, c) in enumerate(zip(edges, cdf)):
            img[idx[row]] = np.diff(np.interp(grid, e, c, left=0.0, right=1.0))
        return np.log1p(img * 100.0), lo, hi


class InsideStore:
    """The summaries and samples of one run (live or replayed). ``version`` grows with each
    event, so a view redraws only what changed since it last looked."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.layers: dict[str, LayerSeries] = {}
        self.latest: InsideSummary | None = None
        self.sample: InsideSample | None = None
        self.captures = 0
        self.version = 0

    def add(self, ev: Any) -> bool:
        """Take an InsideSummary or InsideSample; False for anything else."""
        if isinstance(ev, InsideSummary):
            for key, s in ev.layers.items():
                series = self.layers.get(key)
                if series is None:
                    series = self.layers[key] = LayerSeries(key, s.network, s.path, s.node,
                                                            s.type, s.kind)
                series.add(ev.step, s)
            self.latest = ev
            self.captures += 1
        elif isinstance(ev, InsideSample):
            self.sample = ev
        else:
            return False
        self.version += 1
        return True

    def networks(self) -> list[str]:
        return list(dict.fromkeys(s.network for s in self.layers.values()))


# ---------------------------------------------------------------------------------------------
# Canvas nodes <-> layer keys
# ---------------------------------------------------------------------------------------------


def module_attrs(graph: Any, order: list[str] | None = None) -> dict[str, str]:
    """The module attribute each node of ``graph`` is built as (build.plan's rule: the node's
    name, or its position in a sequential network, in ``order``)."""
    if not getattr(graph, "sequential", False):
        return {nid: node.name for nid, node in graph.nodes.items()}
    order = order or list(graph.nodes)
    out, position = {}, 0
    for nid in order:
        node = graph.nodes.get(nid)
        if node is None or node.type in ("Input", "Output"):
            continue
        out[nid], position = str(position), position + 1
    return out


def _order(graph: Any) -> list[str] | None:
    if not getattr(graph, "sequential", False):
        return None
    try:
        from designer.engine.model.shapes import analyze

        return list(analyze(graph).order)
    except Exception:  # noqa: BLE001 - positions are a best effort for a broken graph
        return None


@dataclass(frozen=True)
class View:
    """What the canvas shows: the network, its graph, the node order of the graph when it is
    sequential, and the trail of block uses opened to get there (``(network, use id)``)."""

    network: str
    graph: Any
    order: list[str] | None = None
    trail: tuple[tuple[str, str], ...] = ()
    networks: dict[str, Any] = field(default_factory=dict)


def view_of(document: Any) -> View:
    """The View of a ui Document (its current network, trail and the project's networks)."""
    analysis = document.analysis
    order = list(analysis.order) if analysis is not None and getattr(analysis, "order", None) \
        else None
    return View(document.network, document.graph, order, tuple(document.trail),
                dict(document.project.networks))


def node_keys(view: View, keys_meta: dict[str, tuple[str, str, str | None]]) -> dict[str, list[str]]:
    """For each node of the shown graph, the layer keys it stands for.

    ``keys_meta``: key -> (network, path, node id). At the top level, a layer node is its own
    module path; a block use is every layer under its path. Inside an opened definition, the
    path goes through the trail's uses (each possibly repeated: ``use.0.``), so a layer shows
    what it did in the use it was opened from (every copy of a repeated one)."""
    nets = {net for net, _, _ in keys_meta.values()}
    top = view.trail[0][0] if view.trail else view.network
    network = top if top in nets else (next(iter(nets)) if len(nets) == 1 else None)
    prefix = ""
    for net, use in view.trail:
        g = view.networks.get(net)
        if g is None or use not in g.nodes:
            return {}
        attr = module_attrs(g, _order(g)).get(use)
        if attr is None:
            return {}
        prefix += re.escape(attr) + r"(?:\.\d+)?\."
    attrs = module_attrs(view.graph, view.order)
    out: dict[str, list[str]] = {}
    patterns = {}
    for nid, a in attrs.items():
        block = view.graph.nodes[nid].kind.is_block
        patterns[nid] = (re.compile(prefix + re.escape(a) + (r"(?:\.\d+)?\..+" if block else "")),
                         block)
    for key, (net, path, node) in keys_meta.items():
        if network is not None and net != network:
            continue
        for nid, (pat, block) in patterns.items():
            if pat.fullmatch(path) and (block or node == nid):
                out.setdefault(nid, []).append(key)
                break
    return out


def keys_meta(store: InsideStore) -> dict[str, tuple[str, str, str | None]]:
    return {k: (s.network, s.path, s.node) for k, s in store.layers.items()}


# ---------------------------------------------------------------------------------------------
# The gradient overlay
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeMark:
    """What the overlay puts on one node: ``level`` in [0, 1] on the log scale of gradient
    norms (None: no gradient), the norm itself, and a badge ("dead 80%", "NaN/Inf") or ""."""

    level: float | None
    norm: float | None
    badge: str = ""
    tip: str = ""
    frozen: bool = False  # its layers with weights are all frozen: no gradient to colour


@dataclass(frozen=True)
class Marks:
    nodes: dict[str, NodeMark]
    lo: float  # log10 of the scale's ends
    hi: float
    mid: float = 0.0  # log10 of the median norm

    @property
    def any_frozen(self) -> bool:
        return any(m.frozen for m in self.nodes.values())


def gradient_word(log_norm: float, mid: float) -> str:
    """"vanishing" / "exploding" when a gradient norm (log10) is tiny or huge in itself, or
    APART_DECADES from the median ``mid``; "" otherwise."""
    if log_norm <= VANISHING_ABS or mid - log_norm >= APART_DECADES:
        return "vanishing"
    if log_norm >= EXPLODING_ABS or log_norm - mid >= APART_DECADES:
        return "exploding"
    return ""


def _log(v: float) -> float | None:
    return math.log10(v) if math.isfinite(v) and v > 0 else None


def marks(summary: InsideSummary | None, mapping: dict[str, list[str]]) -> Marks | None:
    """Colour levels and badges for the nodes of ``mapping`` from ``summary``: each node's
    gradient norm (its parameters'; a block use: the one of its layers furthest from the
    network's median) on a log scale spanning the shown layers (at least two decades)."""
    if summary is None:
        return None
    per_node: dict[str, list[LayerSummary]] = {
        nid: [summary.layers[k] for k in keys if k in summary.layers]
        for nid, keys in mapping.items()}
    logs = [lg for items in per_node.values() for s in items
            if (lg := _log(s.grad_norm)) is not None]
    if logs:
        mid = float(np.median(logs))
        lo, hi = min(logs), max(logs)
        if hi - lo < 2:
            lo, hi = min(lo, mid - 1), max(hi, mid + 1)
    else:
        mid, lo, hi = 0.0, -1.0, 1.0
    out = {}
    for nid, items in per_node.items():
        if not items:
            continue
        worst = None
        for s in items:
            lg = _log(s.grad_norm)
            if lg is not None and (worst is None or abs(lg - mid) > abs(worst - mid)):
                worst = lg
        dead = [s.dead_fraction for s in items if math.isfinite(s.dead_fraction)]
        bad = sum(s.nonfinite_weights + s.nonfinite_grads + s.nonfinite_activations
                  for s in items)
        frozen = worst is None and any(s.frozen for s in items)
        badge = ""
        if bad:
            badge = "NaN/Inf"
        elif dead and max(dead) > DEAD_LIMIT:
            badge = f"dead {max(dead):.0%}"
        elif frozen:
            badge = "frozen"
        tip = []
        if frozen:
            tip.append("frozen: its weights do not train, so they get no gradient")
        if worst is not None:
            word = gradient_word(worst, mid)
            tip.append(f"gradient norm {10 ** worst:.3g}" + (f" ({word})" if word else ""))
        if dead:
            tip.append(f"dead units {max(dead):.0%}")
        if bad:
            tip.append(f"{bad} non-finite values")
        level = None if worst is None else (worst - lo) / (hi - lo)
        out[nid] = NodeMark(level, None if worst is None else 10 ** worst, badge,
                            "; ".join(tip), frozen)
    return Marks(out, lo, hi, mid)
