"""Project-file reliability, run by hand (issue 17; results in benchmarks/RESULTS.md).

1. Mutation fuzzing: N mutated template files (default 100,000) through what ``designer check``
   does (load, check, text and JSON report, save round trip); prints cases, how many loaded or were
   refused with a message, and every other failure (there must be none).
2. Large legal-looking files (issue 17.3): 1e6 small objects and 6.5e6 empty lists of metadata,
   each about 10-20 MB. Prints the time ``load_project`` takes to refuse each, and, measured in
   the same run, the time ``json.loads`` alone takes to parse it (the ratio is what to compare).

    .venv/bin/python benchmarks/fuzz_projects.py            # 100,000 mutations
    .venv/bin/python benchmarks/fuzz_projects.py -n 20000 --seed 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.document.project import ProjectError, load_project
from tests.engine import fuzzing


def large_files(folder: Path) -> None:
    base = json.loads((fuzzing.TEMPLATES / "mlp-digits.dnn.json").read_text(encoding="utf-8"))
    cases = {
        "1e6 small objects": [{"a": 1} for _ in range(1_000_000)],
        "6.5e6 empty lists": [[] for _ in range(6_500_000)],
        "1e6 small objects, unknown top-level key": None,
    }
    for name, payload in cases.items():
        doc = dict(base)
        if payload is None:
            doc["junk"] = [{"a": 1} for _ in range(1_000_000)]
        else:
            doc["metadata"] = {"junk": payload}
        path = folder / "large.dnn.json"
        path.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        t0 = time.perf_counter()
        try:
            load_project(path)
            verdict = "LOADED"
        except ProjectError as exc:
            verdict = str(exc).split(": ", 1)[1][:70]
        t1 = time.perf_counter()
        json.loads(path.read_text(encoding="utf-8"))
        t2 = time.perf_counter()
        print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, refused in {(t1 - t0) * 1000:.0f} ms "
              f"(json.loads alone {(t2 - t1) * 1000:.0f} ms, ratio {(t1 - t0) / (t2 - t1):.3f}): "
              f"{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="mutations (default 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-large", action="store_true", help="only the mutation fuzzing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_large:
            large_files(Path(tmp))
        t0 = time.perf_counter()
        out = fuzzing.run(args.n, args.seed, Path(tmp), max_failures=100)
        dt = time.perf_counter() - t0
    print(f"fuzz: {out.cases:,} cases in {dt:.0f} s ({out.cases / dt:.0f}/s): {out.loaded:,} "
          f"loaded and checked, {out.refused:,} refused with a message, {len(out.failures)} "
          "failures")
    for failure in out.failures:
        print("FAIL", failure[:500])
    return 1 if out.failures else 0


if __name__ == "__main__":
    sys.exit(main())
