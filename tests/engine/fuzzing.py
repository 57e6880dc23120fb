"""Mutation fuzzing of project files, shared by ``test_fuzz.py`` (a few thousand mutations in the
suite) and ``benchmarks/fuzz_projects.py`` (100,000, by hand).

Each case is a template file mutated one to three times, in its structure (a value replaced by a
hostile one, a key removed or added, a list item doubled, a container nested deeper) or in its
bytes (flipped, inserted, deleted, truncated). Every case goes through what ``designer check``
does: load, check every network, print the report as text and as JSON; a file that loads must
also save and load again the same. The only acceptable failure is a :class:`ProjectError` whose
message is one printable line naming the file.
"""

from __future__ import annotations

import copy
import json
import random
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designer.commands.check import format_report, report
from designer.engine.document.project import (
    ProjectError,
    load_project,
    project_from_json,
    project_to_json,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "designer" / "templates"

HOSTILE: list[Any] = [
    10**309, -10**400, 2**1023, 2**64, 2**63 - 1, -(2**63), 10**18, -1, 0, 1, 1e308, -1e308,
    1e-320, -0.0, 0.5, 1e7 + 1, True, False, None, "", " ", "\ud800", "a\udfffb", "\ud83d",
    "\x00", "a\x00b", "fc1\n", "\r\n", "%(prog)s %d", "{}", "{0}", "'\"\"\"", "\\", "\u202e",
    "é😀", "x" * 5000, "Linear", "Conv2d", "float16", "same", "csv", "gan", [], {}, [1, 2, 3],
    [0, 0], [-1, 2], [1e308, 1e308], ["a", "\ud800"], {"\ud800": 1}, {"a\x00": [None]},
    {"k": {"k": {"k": {}}}},
]


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a document (as a tuple of keys and indexes), the root excluded."""
    out = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return out
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _parent(doc: Any, path: tuple) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


def mutate_structure(doc: dict, rng: random.Random) -> str:
    """One structural mutation of ``doc`` in place; returns what it did."""
    path = rng.choice(_paths(doc))
    parent, key = _parent(doc, path), path[-1]
    old = parent[key]
    if rng.random() < 0.4 and isinstance(old, (int, float, str)) and not isinstance(old, bool):
        # a plausible edit: the file still loads more often than not, and the check runs
        if isinstance(old, str):
            new = rng.choice([s for s in _strings(doc) if s != old] or [old + "2"])
        else:
            new = rng.choice([0, 1, 2, 3, 7, 64, 1000, -1, old * 2, old + 1, 0.5])
        parent[key] = new
        return f"edit {path}: {old!r:.30} -> {new!r:.30}"
    op = rng.randrange(7)
    if op <= 2:
        value = rng.choice(HOSTILE)
        parent[key] = copy.deepcopy(value)
        return f"set {path} = {value!r:.40}"
    if op == 3:
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
        return f"delete {path}"
    if op == 4:
        target = parent if isinstance(parent, dict) else doc
        name = rng.choice(["extra", "\ud800", "a\x00", "id", "type", "params", "pos", "nodes",
                           "kernel_size", "lr", "%s"])
        target[name] = copy.deepcopy(rng.choice(HOSTILE))
        return f"add key {name!r} under {path[:-1]}"
    if op == 5:
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
            return f"duplicate {path}"
        parent[key] = [parent[key]]
        return f"wrap {path} in a list"
    parent[key] = _deep(rng.choice([5, 19, 21, 40]))
    return f"nest {path}"


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One byte-level mutation; returns the new bytes and what it did."""
    b = bytearray(data)
    i = rng.randrange(max(1, len(b)))
    op = rng.randrange(4)
    if op == 0 and b:
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), f"flip a bit at {i}"
    if op == 1:
        piece = rng.choice([b"\\ud800", b"\\u0000", b"\xff", b"\xc3", b"[", b"{", b'"', b",",
                            b"9" * 400, b"\\", b"\n", b"NaN", b"1e999", b"-"])
        return bytes(b[:i] + piece + b[i:]), f"insert {piece[:10]!r} at {i}"
    if op == 2:
        n = rng.randrange(1, 20)
        return bytes(b[:i] + b[i + n:]), f"delete {n} bytes at {i}"
    return bytes(b[:i]), f"truncate at {i}"


@dataclass
class Outcome:
    cases: int = 0
    loaded: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)


def templates() -> list[tuple[str, dict]]:
    return [(p.name, json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(TEMPLATES.glob("*.dnn.json"))]


def make_case(bases: list[tuple[str, dict]], rng: random.Random) -> tuple[bytes, str]:
    name, base = rng.choice(bases)
    doc = copy.deepcopy(base)
    steps = [name]
    structural = rng.random() < 0.7
    for _ in range(rng.randint(1, 3)):
        if structural:
            steps.append(mutate_structure(doc, rng))
    data = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if not structural:
        for _ in range(rng.randint(1, 3)):
            data, step = mutate_bytes(data, rng)
            steps.append(step)
    return data, "; ".join(steps)


def check_case(data: bytes, file: Path) -> bool:
    """What ``designer check`` (text and --json) does with one file, and a save round trip.
    Returns True if the file loaded; raises AssertionError (or anything) on a failure."""
    file.write_bytes(data)
    try:
        project = load_project(file)
    except ProjectError as exc:
        message = str(exc)
        assert message.startswith(f"{file}: ") and "\n" not in message, message
        message.encode("utf-8")
        return False
    rep = report(project)
    format_report(rep).encode("utf-8")
    json.dumps(rep, indent=2).encode("utf-8")
    text = project_to_json(project)
    text.encode("utf-8")
    assert project_from_json(text).to_dict() == project.to_dict()
    return True


def run(n: int, seed: int, folder: Path, max_failures: int = 20) -> Outcome:
    rng = random.Random(seed)
    bases = templates()
    out = Outcome()
    file = folder / "fuzz.dnn.json"
    for _ in range(n):
        data, what = make_case(bases, rng)
        out.cases += 1
        try:
            if check_case(data, file):
                out.loaded += 1
            else:
                out.refused += 1
        except Exception:  # noqa: BLE001 - every other failure is a finding
            tb = traceback.format_exc(limit=3).strip().splitlines()
            out.failures.append(f"{what}: {' | '.join(tb[-3:])}")
            if len(out.failures) >= max_failures:
                break
    return out
