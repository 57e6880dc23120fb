"""The engine's layouts: the window's Auto-layout and the templates' wrapped layout."""

from __future__ import annotations

from itertools import pairwise

from designer.engine.model.graph import Graph
from designer.engine.model.layout import (
    FIT_MARGIN,
    LAYOUT_DX,
    LAYOUT_DY,
    NODE_SIZE,
    READABLE_ZOOM,
    VIEW_SIZE,
    layered_positions,
    wrapped_positions,
)


def _chain(n: int) -> Graph:
    g = Graph()
    for i in range(n):
        g.add_node("ReLU", id=f"n{i}")
        if i:
            g.connect(f"n{i - 1}", f"n{i}")
    return g


def _bands(pos: dict) -> list[list[str]]:
    rows: dict[float, list[str]] = {}
    for nid, (x, y) in sorted(pos.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        rows.setdefault(y, []).append(nid)
    return [rows[y] for y in sorted(rows)]


def test_a_short_chain_stays_one_row_and_a_long_one_wraps_like_text():
    pos = wrapped_positions(_chain(4))
    assert _bands(pos) == [["n0", "n1", "n2", "n3"]]
    assert [pos[f"n{i}"][0] for i in range(4)] == [0.0, LAYOUT_DX, 2 * LAYOUT_DX, 3 * LAYOUT_DX]

    pos = wrapped_positions(_chain(20))
    bands = _bands(pos)
    assert len(bands) > 2
    assert [nid for band in bands for nid in band] == [f"n{i}" for i in range(20)]  # like text
    assert all(pos[band[0]][0] == 0.0 for band in bands)
    tops = sorted({y for _, y in pos.values()})
    assert all(b - a >= LAYOUT_DY for a, b in pairwise(tops))
    # it now fits the window at a readable zoom (one row of 20 would be about 0.15)
    width = max(x for x, _ in pos.values()) + NODE_SIZE[0] + 2 * FIT_MARGIN
    height = max(y for _, y in pos.values()) + NODE_SIZE[1] + 2 * FIT_MARGIN
    assert min(VIEW_SIZE[0] / width, VIEW_SIZE[1] / height) >= READABLE_ZOOM


def _residual(blocks: int) -> Graph:
    """input -> relu, then per block conv -> bn -> add(., skip) -> relu, skip = previous relu."""
    g = Graph()
    g.add_node("Input", id="x", params={"shape": [4, 8, 8]})
    g.add_node("ReLU", id="r0")
    g.connect("x", "r0")
    prev = "r0"
    for b in range(1, blocks + 1):
        g.add_node("Conv2d", id=f"c{b}", params={"out_channels": 4, "kernel_size": 3,
                                                  "padding": 1})
        g.add_node("BatchNorm2d", id=f"bn{b}")
        g.add_node("ReLU", id=f"mid{b}")
        g.add_node("Add", id=f"add{b}")
        g.add_node("ReLU", id=f"r{b}")
        g.connect(prev, f"c{b}")
        g.connect(f"c{b}", f"bn{b}")
        g.connect(f"bn{b}", f"mid{b}")
        g.connect(f"mid{b}", f"add{b}", 0)
        g.connect(prev, f"add{b}", 1)
        g.connect(f"add{b}", f"r{b}")
        prev = f"r{b}"
    return g


def test_a_band_never_breaks_a_skip_connection():
    g = _residual(6)
    pos = wrapped_positions(g)
    assert len(_bands(pos)) > 1
    for e in g.edges:
        src, dst = pos[e.src], pos[e.dst]
        if src[1] != dst[1]:  # the wire between two bands: from the end of one to the start of the next
            assert dst[0] == 0.0 and src[0] > dst[0]
            assert len(list(g.out_edges(e.src))) == 1
    for b in range(1, 7):  # a skip's source and its Add share a band
        skip_src = "r0" if b == 1 else f"r{b - 1}"
        assert pos[skip_src][1] == pos[f"add{b}"][1]


def test_side_branches_go_below_the_main_path_and_band_starts_are_kept():
    g = Graph()
    for nid in ("x", "a", "b", "side", "m", "y", "z"):
        g.add_node("Input" if nid == "x" else ("Add" if nid == "m" else "ReLU"), id=nid,
                   params={"shape": [3]} if nid == "x" else None)
    g.connect("x", "a")
    g.connect("a", "b")
    g.connect("x", "side")
    g.connect("b", "m", 0)
    g.connect("side", "m", 1)
    g.connect("m", "y")
    g.connect("y", "z")
    pos = wrapped_positions(g)
    assert pos["x"][1] == pos["a"][1] == pos["b"][1] == pos["m"][1]  # the main path is straight
    assert pos["side"][1] > pos["a"][1]
    pos = wrapped_positions(g, band_starts=["y"])
    assert pos["y"] == (0.0, pos["x"][1] + 2 * LAYOUT_DY + LAYOUT_DY * 0.5)
    assert pos["z"][0] == LAYOUT_DX


def test_empty_graph_and_separate_pieces():
    assert wrapped_positions(Graph()) == {}
    g = _chain(3)
    g.add_node("ReLU", id="alone")
    pos = wrapped_positions(g)
    assert pos["alone"][1] > pos["n0"][1]


def test_layers_connected_to_nothing_are_laid_out_in_a_grid_not_a_column():
    g = Graph()
    ids = [g.add_node("ReLU").id for _ in range(12)]
    pos = layered_positions(g)
    xs = {pos[i][0] for i in ids}
    ys = {pos[i][1] for i in ids}
    assert len(xs) > 1 and len(ys) > 1  # rows and columns, not one column of twelve
    width = (max(xs) - min(xs)) + 172
    height = (max(ys) - min(ys)) + 102
    assert 0.5 < width / height < 4  # roughly the shape of a window
    assert len({pos[i] for i in ids}) == 12  # none on another
    # in document order, row by row
    assert [pos[i] for i in ids] == sorted(pos.values(), key=lambda p: (p[1], p[0]))
