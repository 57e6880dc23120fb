"""Recent files, autosave and crash recovery."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from designer.engine.document.project import Project, load_project, save_project
from designer.engine.model.graph import Graph
from designer.ui.document import Document
from designer.ui.files import MAX_RECENT, Autosave, RecentFiles, pending_recoveries
from designer.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


def _project(name: str = "demo") -> Project:
    g = Graph()
    g.add_node("Input", "inp", {"shape": [4]}, id="in")
    g.add_node("Output", "out", {}, (300, 0), id="out")
    g.connect("in", "out")
    return Project(name=name, networks={"model": g})


@pytest.fixture
def doc():
    d = Document(_project())
    yield d
    d.close()


def test_recent_files_newest_first_without_duplicates(tmp_path):
    recent = RecentFiles(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert recent.paths() == []
    files = [tmp_path / f"f{i}.dnn.json" for i in range(MAX_RECENT + 3)]
    for f in files:
        recent.add(f)
    recent.add(files[5])
    paths = recent.paths()
    assert len(paths) == MAX_RECENT
    assert paths[0] == files[5].resolve() and paths[1] == files[-1].resolve()
    assert paths.count(files[5].resolve()) == 1
    recent.remove(files[5])
    assert files[5].resolve() not in recent.paths()
    # stored in the given settings, read back by a new object
    again = RecentFiles(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert again.paths() == recent.paths()


def test_autosave_writes_only_when_modified_and_never_touches_the_users_file(qtbot, doc, tmp_path):
    user_file = tmp_path / "mine.dnn.json"
    save_project(doc.project, user_file)
    original = user_file.read_bytes()
    doc.mark_saved(user_file)
    auto = Autosave(doc, tmp_path / "rec", interval_ms=60_000)
    assert not auto.save_now()  # nothing unsaved yet
    doc.add_node("ReLU", (150, 0))
    assert auto.save_now()
    assert auto.file.parent == tmp_path / "rec"
    assert load_project(auto.file).graph.to_dict() == doc.graph.to_dict()
    assert user_file.read_bytes() == original
    assert not auto.save_now()  # unchanged since the last autosave
    doc.mark_saved(user_file)  # a real save makes the recovery copy pointless
    assert not auto.file.exists()
    auto.finish()


def test_autosave_runs_on_its_timer(qtbot, doc, tmp_path):
    auto = Autosave(doc, tmp_path / "rec", interval_ms=20)
    doc.add_node("ReLU", (150, 0))
    with qtbot.waitSignal(auto.saved, timeout=5000) as blocker:
        pass
    assert blocker.args == [auto.file] and auto.file.exists()
    auto.finish()  # clean exit removes it
    assert not auto.file.exists()
    assert list((tmp_path / "rec").iterdir()) == []


def test_a_running_sessions_autosave_is_not_offered(qtbot, doc, tmp_path):
    auto = Autosave(doc, tmp_path / "rec", interval_ms=60_000)
    doc.add_node("ReLU", (150, 0))
    assert auto.save_now()
    assert pending_recoveries(tmp_path / "rec") == []
    auto.finish()


_CRASH = textwrap.dedent("""
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from designer.engine.document.project import load_project
    from designer.ui.document import Document
    from designer.ui.files import Autosave
    rec_dir, user_file = sys.argv[1], sys.argv[2]
    doc = Document(load_project(user_file), user_file)
    auto = Autosave(doc, rec_dir, interval_ms=60_000)
    doc.add_node("ReLU", (150.0, 0.0), name="added_before_crash")
    assert auto.save_now()
    sys.stdout.flush()
    os._exit(3)  # dies like a crash: no clean-up, the lock file stays behind
""")


@pytest.fixture(scope="module")
def _crashed(tmp_path_factory) -> tuple[Path, Path]:
    """Run one session in a subprocess that autosaves and then dies (once per module)."""
    tmp_path = tmp_path_factory.mktemp("crash")
    user_file = tmp_path / "work.dnn.json"
    save_project(_project("work"), user_file)
    rec_dir = tmp_path / "rec"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(rec_dir), str(user_file)],
                          check=False,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    return rec_dir, user_file


def _crash_session(crashed, tmp_path) -> tuple[Path, Path]:
    """A fresh copy of the crashed session's recovery folder (lock file of a dead process too)."""
    rec_dir, user_file = crashed
    copy = tmp_path / "rec"
    shutil.copytree(rec_dir, copy)
    return copy, user_file


@pytest.mark.slow
def test_after_a_crash_the_next_start_offers_to_restore(qtbot, tmp_path, monkeypatch, _crashed):
    rec_dir, user_file = _crash_session(_crashed, tmp_path)
    before = user_file.read_bytes()
    [rec] = pending_recoveries(rec_dir)
    assert rec.original == user_file and rec.name == "work"

    asked = []

    def answer(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer))
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), recovery_dir=rec_dir)
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    assert w.offer_recovery()
    assert "work" in asked[0]
    doc = w.document
    assert doc.graph.node_by_name("added_before_crash") is not None
    assert doc.path == user_file and doc.is_modified() and w.isWindowModified()
    assert user_file.read_bytes() == before  # restoring does not write the user's file
    assert not rec.file.exists()  # taken over: this session autosaves it afresh
    assert pending_recoveries(rec_dir) == []
    w.shutdown()  # clean exit: nothing left to recover
    assert [p for p in rec_dir.iterdir() if p.name.endswith(".dnn.json")] == []


@pytest.mark.slow
def test_declining_recovery_discards_it(qtbot, tmp_path, monkeypatch, _crashed):
    rec_dir, _ = _crash_session(_crashed, tmp_path)
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: QMessageBox.No))
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), recovery_dir=rec_dir)
    qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
    assert not w.offer_recovery()
    assert pending_recoveries(rec_dir) == []
    assert w.document.graph.node_by_name("added_before_crash") is None
