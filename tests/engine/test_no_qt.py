"""The engine never imports Qt: every ``designer.engine`` module imports in a fresh interpreter
where PySide6, shiboken6 and pyqtgraph cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    BLOCKED = ("PySide6", "shiboken6", "pyqtgraph")

    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: designer.engine must not import Qt")
            return None

    sys.meta_path.insert(0, BlockQt())
    import designer.engine as engine

    names = ["designer.engine"] + [m.name for m in pkgutil.walk_packages(
        engine.__path__, prefix="designer.engine.")]
    failures = {}
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            failures[name] = traceback.format_exc(limit=-3)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"modules": names, "failures": failures, "leaked": leaked}))
""")


def test_every_engine_module_imports_with_qt_blocked():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # the core modules are all there, so the walk really ran
    assert {"designer.engine.model.catalog", "designer.engine.model.graph", "designer.engine.model.shapes",
            "designer.engine.model.build", "designer.engine.document.project"} <= set(result["modules"])
    assert result["failures"] == {}, "\n".join(result["failures"].values())
    assert result["leaked"] == []


def test_the_blocker_really_blocks():
    """Guard against a test that cannot fail: the same finder stops a Qt import."""
    probe = SCRIPT.split("import designer.engine")[0] + textwrap.dedent("""
        try:
            import pyqtgraph  # noqa: F401
        except ImportError as exc:
            print("blocked:", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert "blocked: pyqtgraph is blocked" in proc.stdout, proc.stderr
