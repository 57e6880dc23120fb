"""Benchmark: wall time of ``designer check TEMPLATE`` in a fresh interpreter, as a ratio to
``python -c "import torch"`` measured in the same run (issue 18: target <= 0.25x).

    .venv/bin/python benchmarks/bench_check_startup.py [--repeat N] [--template ID ...]
                                                       [--before PATH]

Each round runs, one after the other: ``import torch``, then ``python -m designer check ID`` for
each template (and, with ``--before``, the same command in another checkout of the repository, e.g.
a ``git worktree`` of an older commit). The rounds interleave so a change of machine load affects
every command alike; the median of each is reported, with its ratio to ``import torch``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], cwd: Path) -> float:
    """Seconds from start to exit of ``cmd`` (its output discarded; it must succeed)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} (in {cwd}) failed:\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--template", action="append", default=None,
                        help="template id (repeatable; default: mlp-digits and gan-digits)")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout to time the same check in, for a before/after")
    args = parser.parse_args()
    templates = args.template or ["mlp-digits", "gan-digits"]
    py = sys.executable
    commands: dict[str, tuple[list[str], Path]] = {
        "python -c 'import torch'": ([py, "-c", "import torch"], ROOT),
        "python -c 'pass' (interpreter alone)": ([py, "-c", "pass"], ROOT),
    }
    for t in templates:
        commands[f"designer check {t}"] = ([py, "-m", "designer", "check", t], ROOT)
        if args.before is not None:
            commands[f"designer check {t} (before)"] = ([py, "-m", "designer", "check", t],
                                                        args.before.resolve())
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, (cmd, cwd) in commands.items():  # warm the file cache once
        wall(cmd, cwd)
    for _ in range(args.repeat):
        for name, (cmd, cwd) in commands.items():
            times[name].append(wall(cmd, cwd))
    ref = statistics.median(times["python -c 'import torch'"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, median of {args.repeat} runs each")
    print(f"{'command':48} {'median s':>9} {'min s':>7} {'x import torch':>15}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:48} {med:9.3f} {min(values):7.3f} {med / ref:15.2f}")


if __name__ == "__main__":
    main()
