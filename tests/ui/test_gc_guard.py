"""Garbage is collected on the GUI thread only: automatic collection is off, and the collector's
timer collects cycles by Python's thresholds, so a worker thread never finalises Qt objects."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from designer.ui.gc_guard import install


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cycles_are_collected_by_the_gui_threads_timer(qtbot, qapp):
    collector = install(qapp)
    assert install(qapp) is collector and not gc.isenabled()
    gc.collect()
    refs = [weakref.ref(_Cycle()) for _ in range(collector.thresholds[0] + 10)]
    assert all(r() is not None for r in refs)  # nothing collects them by itself
    qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5000)  # the timer did


def test_a_worker_thread_never_finalises_a_qt_object(qtbot, qapp):
    install(qapp)
    where: list[str] = []

    class Holder(QObject):
        def __del__(self) -> None:
            where.append(threading.current_thread().name)

    holder = Holder()
    holder.cycle = holder  # garbage only the cycle collector frees
    del holder

    def allocate() -> None:  # a worker allocating far past the thresholds
        junk = [_Cycle() for _ in range(20_000)]
        del junk

    t = threading.Thread(target=allocate, name="worker")
    t.start()
    t.join()
    assert where == []
    qtbot.waitUntil(lambda: where != [], timeout=5000)
    assert where == [threading.main_thread().name]


def test_nothing_is_collected_while_paused(qtbot, qapp):
    from designer.ui.gc_guard import paused

    collector = install(qapp)
    gc.collect()
    refs = [weakref.ref(_Cycle()) for _ in range(collector.thresholds[0] + 10)]
    with paused():
        assert collector.check() == -1  # the threshold is crossed, but a pause holds
        qtbot.wait(600)  # two turns of the timer
        assert all(r() is not None for r in refs)
    qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5000)
