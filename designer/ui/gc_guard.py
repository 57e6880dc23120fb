"""Cyclic garbage collection on the GUI thread only.

Python collects cycles in whichever thread allocates when a threshold is crossed. When that is a
worker thread (a training run, a sweep importing optuna and alembic, the background torch import)
and the garbage holds Qt wrappers, their C++ destructors run in the worker: Qt takes its object
mutex and then waits for the GIL, while the GUI thread holds the GIL and waits for that mutex. The
sweep view's test hung that way (a worker collected a QMenu while importing alembic); a crash
("Garbage-collecting" during torch._dynamo's import) was the same race. So the application turns
automatic collection off and collects from a timer on the GUI thread, by Python's own
thresholds: every Qt object is then finalised where it lives. pyqtgraph's GarbageCollector
(pyqtgraph/util/garbage_collector.py) does the same.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QCoreApplication, QObject, QTimer

_INSTALLED: GuiThreadCollector | None = None
_pauses = 0  # threads inside paused()
_lock = threading.Lock()


@contextmanager
def paused() -> Iterator[None]:
    """No collection at all while the block runs, not even the GUI thread's: the background
    torch import (a GUI-thread collection while torch._dynamo's module code ran crashed the
    test process now and then). Thread-safe; nests."""
    global _pauses
    with _lock:
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1


class GuiThreadCollector(QObject):
    """Collects on the GUI thread every ``interval_ms`` when Python's thresholds are crossed."""

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        threshold = gc.get_threshold()
        self.thresholds = (max(threshold[0], 1), max(threshold[1], 1), max(threshold[2], 1))
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> int:
        """Collect the oldest generation whose threshold is crossed; returns it (-1: none)."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0 or _pauses:
            return -1
        generation = 2 if c1 > t1 and c2 > t2 else 1 if c1 > t1 else 0
        gc.collect(generation)
        return generation


def install(app: QCoreApplication) -> GuiThreadCollector:
    """Collect garbage on ``app``'s thread only (once per process; returns the collector)."""
    global _INSTALLED
    import shiboken6

    if _INSTALLED is None or not shiboken6.isValid(_INSTALLED):  # none, or its app is gone
        _INSTALLED = GuiThreadCollector(parent=app)
        app.destroyed.connect(gc.enable)  # no application left to collect: Python does again
    return _INSTALLED
