"""``designer [FILE]``: create the application and the main window.

With no file, the window opens the starter template (``designer/templates/mlp-digits.dnn.json``)
as a new design, unless a previous session crashed with unsaved work: then it first offers to
restore that. The templates are package data, so an installed designer (pipx) opens it too.
"""

from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("designer")
    app.setApplicationName("designer")
    app.setApplicationDisplayName("Designer")
    from .gc_guard import install

    install(app)  # cycles are collected on this thread only (see gc_guard)
    return app


def run_app(path: str | None = None) -> int:
    """Open the window (with ``path`` if given) and run the event loop; returns the exit code."""
    app = make_app()
    from .main_window import MainWindow

    window = MainWindow()
    # Ctrl+C in the terminal closes the window like its close button (asking to save first).
    # Python runs signal handlers only between bytecodes, so a timer wakes it now and then.
    previous = signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(300)
    try:
        window.show()
        if not window.offer_recovery():
            opened = window.open_path(path, ask=False) if path else False
            if not opened:
                window.open_template()
        code = app.exec()
    finally:
        wake.stop()
        signal.signal(signal.SIGINT, previous)
        window.shutdown()  # normally done by closing the window; stops the checker thread
        window.hide()
        window.deleteLater()
    return int(code)


__all__ = ["make_app", "run_app"]
