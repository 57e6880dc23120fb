"""Where to put a network's layers on the canvas, in scene units (no Qt: templates use it too).

Both layouts read left to right: a layer's column is its longest path from a source (a cycle's
layers share one column, via networkx's condensation), and layers in one column are ordered by the
mean row of their predecessors so that edges stay short.

* :func:`layered_positions` (the window's Auto-layout) puts every column side by side.
* :func:`wrapped_positions` (the templates) wraps a long network into bands of columns, read like
  lines of text, so that it fits a window at a zoom where the layers can be read.

The spacing leaves room between two nodes for the shape label the canvas draws on each edge, and
below a row for a skip connection, which the canvas routes under the nodes it skips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .graph import Graph

Pos = tuple[float, float]

#: Column step: a canvas node (172 wide) plus room for the shape label on the edge between two.
LAYOUT_DX = 270.0
#: Row step: a node (86 to 102 high) plus room for a skip connection routed below its row.
LAYOUT_DY = 140.0
#: Size of a canvas node (``designer.ui.canvas.items``, its tallest), to estimate a layout's size.
NODE_SIZE = (172.0, 102.0)
#: The canvas area of a 1440x900 (16:10) window beside its panels, the size the wrapping aims at.
VIEW_SIZE = (880.0, 620.0)
#: Margin the window's "fit to view" keeps around the nodes, on each side.
FIT_MARGIN = 60.0
#: Zoom at which node text is comfortably read; a layout is wrapped until it fits at this zoom.
READABLE_ZOOM = 0.6
#: The window never blows a small design up beyond this zoom when fitting it.
MAX_FIT_ZOOM = 1.25


def layered_positions(graph: Graph, dx: float = LAYOUT_DX, dy: float = LAYOUT_DY) -> dict[str, Pos]:
    """Left-to-right layered layout: column = longest path from a source (cycles are collapsed
    with networkx's condensation), rows ordered by the mean row of each node's predecessors to
    keep edges short. Disconnected pieces stack vertically; layers connected to nothing follow
    in a grid, row by row, roughly as wide as the widest piece (in one column they would stretch
    the design until fitting it made every name unreadable). The layout starts where the old
    bounding box started so the view does not jump."""
    if not graph.nodes:
        return {}
    layer, pieces, preds_of, index = _layering(graph)
    x0 = min(n.pos[0] for n in graph.nodes.values())
    y0 = min(n.pos[1] for n in graph.nodes.values())
    out: dict[str, Pos] = {}
    top = y0
    alone = sorted((next(iter(p)) for p in pieces if len(p) == 1), key=index.__getitem__)
    widest = 1
    for piece in pieces:
        if len(piece) == 1:
            continue
        columns = _columns(piece, layer, preds_of, index)
        height = max(len(members) for members in columns.values())
        base = min(columns)
        widest = max(widest, len(columns))
        for col, members in columns.items():
            offset = (height - len(members)) / 2.0
            for r, nid in enumerate(members):
                out[nid] = (x0 + (col - base) * dx, top + (offset + r) * dy)
        top += height * dy + dy * 0.5
    if alone:
        per_row = max(widest, math.ceil(math.sqrt(len(alone) * 1.6)))
        for i, nid in enumerate(alone):
            out[nid] = (x0 + (i % per_row) * dx, top + (i // per_row) * dy)
    return _rounded(out)


def wrapped_positions(graph: Graph, dx: float = LAYOUT_DX, dy: float = LAYOUT_DY,
                      view: tuple[float, float] = VIEW_SIZE,
                      readable_zoom: float = READABLE_ZOOM,
                      band_starts: Iterable[str] = ()) -> dict[str, Pos]:
    """Layered layout wrapped into bands of columns, left to right and then the next band below,
    starting at (0, 0). Uses the fewest bands at which the whole design, fitted to a ``view`` of
    this size, is shown at ``readable_zoom`` or more (or else the largest zoom there is).

    A band ends only where one layer alone feeds the next column, so a skip connection or a
    parallel branch never crosses from one band to the next. Rows are not centred: the main path
    keeps the top row of its band and side branches (a residual projection, say) go below it.
    ``band_starts``: ids of layers that must begin a band (the first layer of a block, so that
    each band holds whole blocks).
    """
    if not graph.nodes:
        return {}
    layer, pieces, preds_of, index = _layering(graph)
    out: dict[str, Pos] = {}
    top = 0.0
    for piece in pieces:
        columns = _columns(piece, layer, preds_of, index)
        base = min(columns)
        heights = [len(columns[c]) for c in range(base, max(columns) + 1)]
        forced = {layer[nid] - base for nid in band_starts if nid in piece} - {0}
        segments = _segments(piece, layer, base, len(heights), graph, forced)
        bands = _best_bands(segments, heights, dx, dy, view, readable_zoom)
        for start, stop in bands:
            for c in range(start, stop):
                for r, nid in enumerate(columns[base + c]):
                    out[nid] = ((c - start) * dx, top + r * dy)
            top += max(heights[start:stop]) * dy + dy * 0.5
    return _rounded(out)


# -- the layering, shared by both layouts -----------------------------------------------------------


def _layering(graph: Graph):
    """Column of each node, the weakly connected pieces in document order, each node's
    predecessors and its document index."""
    import networkx as nx  # 0.13 s to import: only when laying out, not at start-up

    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.src, e.dst) for e in graph.edges)
    cond = nx.condensation(g)
    comp_of = cond.graph["mapping"]
    comp_layer: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        preds = list(cond.predecessors(c))
        comp_layer[c] = 1 + max(comp_layer[p] for p in preds) if preds else 0
    index = {nid: i for i, nid in enumerate(graph.nodes)}
    layer = {nid: comp_layer[comp_of[nid]] for nid in graph.nodes}
    pieces = sorted(nx.weakly_connected_components(g), key=lambda s: min(index[n] for n in s))
    preds_of: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for e in graph.edges:
        preds_of[e.dst].append(e.src)
    return layer, pieces, preds_of, index


def _columns(piece: set[str], layer: dict[str, int], preds_of: dict[str, list[str]],
             index: dict[str, int]) -> dict[int, list[str]]:
    """The piece's nodes by column, each column in row order (by barycentre of predecessors)."""
    columns: dict[int, list[str]] = {}
    for nid in sorted(piece, key=index.__getitem__):
        columns.setdefault(layer[nid], []).append(nid)
    row: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]
        members.sort(key=lambda nid: _barycentre(nid, row, preds_of, index))
        for r, nid in enumerate(members):
            row[nid] = float(r)
    return columns


def _barycentre(nid: str, row: dict[str, float], preds_of: dict[str, list[str]],
                index: dict[str, int]) -> tuple[float, int]:
    """Sort key: the mean row of a node's already placed predecessors (document order if none)."""
    ps = [row[p] for p in preds_of[nid] if p in row]
    return (sum(ps) / len(ps) if ps else float(index[nid]), index[nid])


def _rounded(out: dict[str, Pos]) -> dict[str, Pos]:
    # Whole units keep positions tidy in the file and on the grid.
    return {nid: (float(round(p[0])), float(round(p[1]))) for nid, p in out.items()}


# -- wrapping ---------------------------------------------------------------------------------------


def _segments(piece: set[str], layer: dict[str, int], base: int, n_cols: int, graph: Graph,
              forced: set[int]) -> list[tuple[int, int, bool]]:
    """The piece's columns (relative to ``base``) cut into runs that may not be split: a cut
    between columns c and c + 1 is allowed only if every edge crossing it leaves the same node
    in column c for column c + 1 (so the only wires between two bands come from one layer).
    Each run is (start, stop, must start a band): the ``forced`` columns always begin one."""
    crossing: list[set[str] | None] = [set() for _ in range(n_cols)]  # None: not a clean cut
    for e in graph.edges:
        if e.src not in piece:
            continue
        a, b = layer[e.src] - base, layer[e.dst] - base
        for c in range(a, b):
            cut = crossing[c]
            if cut is None:
                continue
            if b != a + 1:
                crossing[c] = None
            else:
                cut.add(e.src)
                if len(cut) > 1:
                    crossing[c] = None
    segments = []
    start = 0
    for c in range(n_cols - 1):
        if crossing[c] is not None or c + 1 in forced:
            segments.append((start, c + 1, start in forced))
            start = c + 1
    segments.append((start, n_cols, start in forced))
    return segments


def _pack(segments: list[tuple[int, int, bool]], width: int) -> list[tuple[int, int]]:
    """Bands of at most ``width`` columns, filled greedily with whole segments (a segment wider
    than ``width`` makes a band of its own)."""
    bands: list[tuple[int, int]] = []
    for start, stop, new_band in segments:
        if bands and not new_band and stop - bands[-1][0] <= width:
            bands[-1] = (bands[-1][0], stop)
        else:
            bands.append((start, stop))
    return bands


def _best_bands(segments: list[tuple[int, int, bool]], heights: list[int], dx: float, dy: float,
                view: tuple[float, float], readable_zoom: float) -> list[tuple[int, int]]:
    """The banding to use: for each number of bands its narrowest (most even) packing; the
    fewest bands that fit ``view`` at ``readable_zoom``, else the one that fits at the largest
    zoom."""
    by_count: dict[int, list[tuple[int, int]]] = {}
    for width in range(len(heights), 0, -1):  # narrowest last, so it wins for its band count
        bands = _pack(segments, width)
        by_count[len(bands)] = bands
    best, best_zoom = None, -1.0
    for count in sorted(by_count):
        bands = by_count[count]
        zoom = _fit_zoom(bands, heights, dx, dy, view)
        if zoom >= readable_zoom:
            return bands
        if zoom > best_zoom + 1e-9:
            best, best_zoom = bands, zoom
    return best


def _fit_zoom(bands: list[tuple[int, int]], heights: list[int], dx: float, dy: float,
              view: tuple[float, float]) -> float:
    """The zoom at which the window's "fit to view" would show these bands."""
    cols = max(stop - start for start, stop in bands)
    rows = [max(heights[start:stop]) for start, stop in bands]
    width = (cols - 1) * dx + NODE_SIZE[0]
    height = sum(rows) * dy + (len(bands) - 1) * dy * 0.5 - dy + NODE_SIZE[1]
    return min(view[0] / (width + 2 * FIT_MARGIN), view[1] / (height + 2 * FIT_MARGIN),
               MAX_FIT_ZOOM)
