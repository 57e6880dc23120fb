"""Shared fixtures of the training-panel tests (imported by those test files, not a conftest, so
other test files are left alone)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QThread


@pytest.fixture(autouse=True)
def no_qthread_left(qtbot, monkeypatch):
    """Fail a test that leaves a QThread it started still running (napari's habit)."""
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    still = []
    for t in started:
        try:
            if t.isRunning() and not t.wait(2000):
                still.append(t)
        except RuntimeError:  # the C++ object is gone, so is the thread
            pass
    if still:
        pytest.fail(f"{len(still)} QThread(s) left running: {still}")
