"""The designer installed the way Python applications are installed (the wheel that ``pip install``
and ``pipx install`` build): its templates and their sample data come with it.

The wheel is built from a copy of the sources and installed without dependencies into a fresh
virtual environment that borrows this one's dependencies through a ``.pth`` line (installing
PyTorch there would take minutes). That line adds the folder to ``sys.path`` without running its
``.pth`` files, so the editable install of the checkout is not seen: ``designer`` is imported from
the wheel, and every command runs from an empty folder without ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # building and installing the wheel: 15-30 s on 2 busy cores

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "designer" / "templates"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the installed environment's bin folder, an empty working folder, the child's environment,
    the wheel)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"  # pip builds in the source tree (build/, *.egg-info): a copy keeps it clean
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "designer", src / "designer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("designer-*.whl")

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True
                          ).stdout.strip()
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    Path(site, "_designer_test_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, text=True,
                   timeout=300)

    work = tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_DATA_HOME=str(tmp / "data"), HOME=str(tmp / "home"))
    where = subprocess.run([str(python), "-c", "import designer; print(designer.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy
    return bin_dir, work, env, wheel


def test_the_wheel_holds_every_template_and_its_data(installed):
    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for p in TEMPLATES.rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert "designer/templates/mlp-digits.dnn.json" in shipped
    assert "designer/templates/data/reviews.csv" in shipped
    assert shipped <= names, sorted(shipped - names)


def _run(installed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    bin_dir, work, env, _ = installed
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], check=False, cwd=work, env=env,
                          capture_output=True, text=True, timeout=timeout)


DATA_PATHS = r"""
import json, os
from designer.engine.document.templates import list_templates, load_template
out = {}
for info in list_templates():
    path = load_template(info.id).dataset.get("path")
    if path:
        out[info.id] = (path, os.path.isfile(path))
print(json.dumps(out))
"""


def test_installed_check_and_train_find_the_templates(installed):
    check = _run(installed, "designer", "check", "mlp-digits", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["total_params"] == 4810
    # the templates whose data is a shipped file find it inside the installed package
    python = "python.exe" if os.name == "nt" else "python"
    data = _run(installed, python, "-c", DATA_PATHS)
    assert data.returncode == 0, data.stderr
    paths = json.loads(data.stdout)
    assert {"lstm-sentiment", "transformer-text", "char-lstm", "tiny-gpt"} <= set(paths)
    venv = installed[0].parent.resolve()
    for path, exists in paths.values():
        assert exists and Path(path).resolve().is_relative_to(venv), path

    train = _run(installed, "designer", "train", "mlp-digits", "--epochs", "1", "--out", "run",
                 timeout=300)
    work = installed[1]
    assert train.returncode == 0, train.stderr[-2000:]
    assert "finished: 1 epoch(s), completed" in train.stdout + train.stderr
    assert (work / "run").is_dir()


# ``designer`` with no arguments, from the installed console script's interpreter: the window
# opens the starter; then File > New… lists the gallery and opens a template picked in it.
WINDOW = r"""
import json, os, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox
from designer import cli
from designer.ui.app import make_app

report = {}

def done(code=0):
    print(json.dumps(report), flush=True)
    os._exit(code)

def pick():
    dialog = QApplication.activeModalWidget()
    report["gallery"] = sorted(dialog.templates)
    report["picked"] = dialog.templates["lenet5"].name
    dialog.select("lenet5")
    dialog.accept()

def starter():
    modal = QApplication.activeModalWidget()
    if isinstance(modal, QMessageBox):  # e.g. "Cannot open template"
        report["message"] = modal.text()
        return done(1)
    windows = [w for w in QApplication.topLevelWidgets()
               if isinstance(w, QMainWindow) and w.isVisible()]
    if not windows:
        return QTimer.singleShot(50, starter)
    window = windows[0]
    report["starter"] = window.document.project.name
    report["nodes"] = len(window.document.graph.nodes)
    QTimer.singleShot(0, pick)
    new = next(a for a in window.menuBar().actions() if a.text() == "&File").menu().actions()
    next(a for a in new if a.text() == "&New…").trigger()
    report["after_new"] = window.document.project.name
    report["modified"] = window.isWindowModified()
    done()

make_app()  # the application cli.main's window will use, made first so that the timers can start
QTimer.singleShot(0, starter)
QTimer.singleShot(60000, lambda: done(3))
sys.exit(cli.main([]))
"""


def test_installed_window_opens_the_starter_and_the_gallery(installed):
    proc = _run(installed, "python.exe" if os.name == "nt" else "python", "-c", WINDOW)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-2000:])
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["starter"] == "MLP on digits (starter)"
    assert report["nodes"] == 6
    assert {"mlp-digits", "lenet5", "lstm-sentiment", "tiny-gpt"} <= set(report["gallery"])
    assert report["after_new"] == report["picked"] != report["starter"]
    assert report["modified"] is False
