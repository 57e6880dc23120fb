"""The import-linter contracts of pyproject.toml hold: the engine imports neither Qt nor a
front end, and the CLI (designer.commands) and the window (designer.ui) never import each other
(they share the engine's services)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ("import sys; from importlinter.cli import lint_imports_command; "
              "sys.argv[0] = 'lint-imports'; sys.exit(lint_imports_command())")
    done = subprocess.run([sys.executable, "-c", script, "--no-cache"], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    for name in ("never imports Qt", "never imports a front end", "never each other"):
        assert name in done.stdout
