"""``designer [FILE]``: create the application and the main window.

With no file, the window opens the starter template (``templates/mlp-digits.dnn.json``) as a new
design, unless a previous session crashed with unsaved work: then it first offers to restore that.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("designer")
    app.setApplicationName("designer")
    app.setApplicationDisplayName("Designer")
    return app


def run_app(path: str | None = None) -> int:
    """Open the window (with ``path`` if given) and run the event loop; returns the exit code."""
    app = make_app()
    from .main_window import MainWindow

    window = MainWindow()
    try:
        window.show()
        if not window.offer_recovery():
            opened = window.open_path(path, ask=False) if path else False
            if not opened:
                window.open_template()
        code = app.exec()
    finally:
        window.shutdown()  # normally done by closing the window; stops the checker thread
        window.hide()
        window.deleteLater()
    return int(code)


__all__ = ["make_app", "run_app"]
