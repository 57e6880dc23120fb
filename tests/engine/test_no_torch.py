"""Checking a design never imports torch (issue 18: ``import torch`` alone takes seconds, the
check itself milliseconds). Each case runs in a fresh interpreter whose import system stops the
process the moment anything imports torch, so the test fails on the import itself, wherever it
happens and even inside a ``try/except ImportError``. Nothing here is timed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from designer.engine.document.templates import list_templates

ROOT = Path(__file__).resolve().parents[2]
TORCH_IMPORTED = 97  # exit status of a process that imported torch

# Installed first in the child: a meta path finder that ends the process on any torch import,
# printing where it came from.
GUARD = textwrap.dedent(f"""
    import os, sys, traceback

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                sys.stderr.write("torch imported: " + name + "\\n")
                traceback.print_stack(file=sys.stderr)
                sys.stderr.flush()
                os._exit({TORCH_IMPORTED})
            return None

    sys.meta_path.insert(0, NoTorch())
""")


def run_guarded(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARD + textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_guard_catches_an_import_of_torch():
    """The guard itself works: otherwise every other test here would pass vacuously."""
    proc = run_guarded("import torch.nn")
    assert proc.returncode == TORCH_IMPORTED
    assert "torch imported: torch" in proc.stderr


def test_the_checking_modules_import_without_torch():
    proc = run_guarded("""
        import designer.engine.model.catalog, designer.engine.model.shapes, designer.engine.document.project
        import designer.engine.model.graph, designer.engine.model.layout, designer.engine.document.templates
        import designer.engine.train.config, designer.engine.train.recipes
        assert "torch" not in sys.modules
    """)
    assert proc.returncode == 0, proc.stderr


def test_designer_check_of_a_template_does_not_import_torch():
    """``python -m designer check mlp-digits``, as a user types it."""
    proc = run_guarded("""
        import runpy
        sys.argv = ["designer", *sys.argv[1:]]
        runpy.run_module("designer", run_name="__main__", alter_sys=True)
    """, "check", "mlp-digits")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: no errors" in proc.stdout
    assert "Total parameters: 4,810" in proc.stdout  # counted by formula, not by a module


@pytest.mark.parametrize("as_json", [False, True])
def test_designer_check_of_every_template_does_not_import_torch(as_json):
    """Every template (GANs, LSTM, Transformer included), in one process to stay quick."""
    ids = [t.id for t in list_templates()]
    assert {"mlp-digits", "gan-digits", "lstm-sentiment", "transformer-text"} <= set(ids)
    proc = run_guarded("""
        from designer.cli import main
        flags = ["--json"] if sys.argv[1] == "json" else []
        for template_id in sys.argv[2:]:
            code = main(["check", template_id, *flags])
            print("EXIT", template_id, code)
        assert "torch" not in sys.modules
    """, "json" if as_json else "text", *ids)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    exits = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("EXIT ")]
    assert exits == [[i, "0"] for i in ids]


def test_a_design_with_problems_checks_without_torch(tmp_path):
    """Errors take the same path: a wire removed, a size that disagrees."""
    proc = run_guarded("""
        from designer.engine.document.templates import load_template
        from designer.engine.model.shapes import analyze

        graph = load_template("lenet5").graph
        graph.disconnect(graph.in_edges(graph.node_by_name("flatten").id)[0])
        graph.set_params(graph.node_by_name("fc2").id, {"in_features": 7})
        analysis = analyze(graph)
        assert not analysis.ok
        print(len(analysis.errors))
        assert "torch" not in sys.modules
    """)
    assert proc.returncode == 0, proc.stderr
