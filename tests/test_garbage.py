"""Cycles are collected on the GUI thread only (litdesk.ui.garbage): a worker that drops a
cycle holding a Qt object, or asks for a collection as accelerate does before training,
never destroys the object itself."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from litdesk.core.jobs import function_job


def test_a_cycle_a_worker_drops_and_collects_is_freed_on_the_gui_thread(qtbot, runner):
    class Node:
        pass

    finalized_on = []

    def drop_a_cycle_and_collect() -> int:
        node = Node()
        node.itself, node.widget = node, QObject()
        weakref.finalize(node, lambda: finalized_on.append(threading.current_thread()))
        del node
        # enough new objects that an automatic collection would run here, on the worker
        assert len([[] for _ in range(10 * gc.get_threshold()[0])])
        return gc.collect()  # as the Trainer does, through accelerate's free_memory

    with qtbot.waitSignal(runner.idle, timeout=10_000):
        runner.submit(function_job(drop_a_cycle_and_collect), "Drop a cycle")
    # Not on the worker; the GUI thread's timer may have collected it already.
    assert not gc.isenabled() and finalized_on in ([], [threading.main_thread()])
    qtbot.waitUntil(lambda: bool(finalized_on), timeout=10_000)
    assert finalized_on == [threading.main_thread()]


def test_a_collection_asked_on_the_gui_thread_happens_at_once():
    class Node:
        pass

    node = Node()
    node.itself = node
    alive = weakref.ref(node)
    del node
    assert gc.collect() >= 1 and alive() is None


def test_nothing_is_collected_while_a_loaders_libraries_import(qtbot, monkeypatch):
    # Their objects are frozen when the import ends: walking them meanwhile only stalls.
    from litdesk.core import lasting_imports
    from litdesk.ui import garbage

    class Node:
        pass

    def drop_a_cycle() -> weakref.ref:
        node = Node()
        node.itself = node
        return weakref.ref(node)

    def allocate() -> list:
        """Enough new objects that the timer's next tick would collect the youngest."""
        return [[] for _ in range(2 * gc.get_threshold()[0])]

    monkeypatch.setattr(lasting_imports, "under_way", lambda: True)
    alive = drop_a_cycle()
    kept = allocate()
    qtbot.wait(3 * garbage.INTERVAL_MS)  # ticks that would have collected the cycle
    assert alive() is not None
    monkeypatch.setattr(lasting_imports, "under_way", lambda: False)
    kept += allocate()
    qtbot.waitUntil(lambda: alive() is None, timeout=5_000)
