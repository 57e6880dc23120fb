"""UI test fixtures: offscreen Qt, the user's own settings and data folders never touched, and no
test may leave a QThread running (like napari's)."""

from __future__ import annotations

import os
import weakref

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings, QThread, QThreadPool

_started: weakref.WeakSet[QThread] = weakref.WeakSet()
_original_start = QThread.start


def _tracking_start(self, *args, **kwargs):
    _started.add(self)
    return _original_start(self, *args, **kwargs)


QThread.start = _tracking_start


@pytest.fixture(autouse=True, scope="session")
def _gui_thread_gc(qapp):
    """Garbage is collected on the GUI thread only, as the application does (a worker thread's
    collection finalising Qt objects deadlocked the sweep view's test)."""
    from designer.ui.gc_guard import install

    install(qapp)


@pytest.fixture(autouse=True, scope="session")
def _private_user_folders(tmp_path_factory):
    """Default QSettings and platformdirs folders (recent files, window layout, autosave
    recovery) point into a temporary folder for the whole run."""
    root = tmp_path_factory.mktemp("user")
    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        for scope in (QSettings.UserScope, QSettings.SystemScope):
            QSettings.setPath(fmt, scope, str(root / "config"))
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _is_running(thread: QThread) -> bool:
    # A finished thread freed with deleteLater leaves a wrapper whose C++ object is gone.
    try:
        return thread.isRunning()
    except RuntimeError:
        return False


@pytest.fixture(autouse=True)
def _no_qthread_left(request):
    """Fail a test that leaves a QThread (or a thread-pool task) running."""
    _started.clear()
    yield
    running = [t for t in list(_started) if _is_running(t)]
    pool = QThreadPool.globalInstance().activeThreadCount()
    for t in running:  # stop them so that the next tests are not affected
        t.quit()
        t.wait(2000)
    _started.clear()
    if running or pool:
        names = ", ".join(t.objectName() or type(t).__name__ for t in running)
        pytest.fail(f"test left {len(running)} QThread(s) running ({names}) and {pool} "
                    "thread-pool task(s) active: stop them (e.g. Document.close()) before the end")


@pytest.fixture
def make_main_window(qtbot, tmp_path):
    """Makes designer windows as a user's start does, with this test's own settings file and
    recovery folder (windows of one test share them, as two starts on one machine do); each
    is shut down at the end. ``make(size)`` resizes before showing."""
    from designer.ui.main_window import MainWindow

    made = []

    def make(size: tuple[int, int] | None = None) -> MainWindow:
        w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                       recovery_dir=tmp_path / "recovery")
        # pytest-qt closes its widgets before fixtures end: shut down first (no close prompt)
        qtbot.addWidget(w, before_close_func=lambda win: win.shutdown())
        if size is not None:
            w.resize(*size)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.shutdown()


@pytest.fixture
def doc(qtbot):
    """An empty design's document (closed at the end)."""
    from designer.ui.document import Document

    d = Document()
    yield d
    d.close()


@pytest.fixture
def canvas_view(qtbot, doc):
    """``canvas_view(centre)``: a shown 1000x700 canvas of ``doc`` at zoom 1, centred there."""
    from designer.ui.canvas import CanvasView

    def make(centre: tuple[float, float]) -> CanvasView:
        v = CanvasView(doc)
        v.resize(1000, 700)
        qtbot.addWidget(v)
        v.show()
        qtbot.waitExposed(v)
        v.resetTransform()
        v.centerOn(*centre)
        return v

    return make
