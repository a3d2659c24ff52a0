"""Python's cycle collector, run on the GUI thread only.

Left to itself, the collector runs on whichever thread happens to allocate, and an explicit
``gc.collect()`` (the Trainer's, through accelerate, as every fine-tune starts) runs on the
thread that calls it. Either may free a cycle that holds Qt objects (a plot's ViewBox and its
menu, a closed window) and so destroy them off the GUI thread: QObject's destructor then
waits for the GIL in Shiboken while the GUI thread, holding the GIL, waits for a Qt lock the
worker holds, and the window hangs for good. The test suite hung this way four times.

:func:`collect_on_gui_thread` turns automatic collection off and collects from a GUI-thread
timer instead, generation by generation as the automatic collector would; an explicit
collection asked for on another thread is done by the timer's next tick.
:func:`end_collection_on_gui_thread` undoes it once the event loop has ended. While a model
loader's libraries import (:mod:`litdesk.core.lasting_imports`) the timer collects nothing:
their hundreds of thousands of objects are frozen when the import ends, and walking them
meanwhile held the GUI thread 40 to 200 ms at a time.
"""

from __future__ import annotations

import gc
import threading
import time

from PySide6.QtCore import QCoreApplication, QTimer

from litdesk.core import lasting_imports

#: How often the GUI thread looks at the collector's counts: often enough that each
#: collection of the youngest objects is small.
INTERVAL_MS = 100
#: The largest share of the GUI thread's time that full collections may take: CPython skips
#: most of them (until a quarter more objects have grown old), which Python cannot ask of it.
FULL_COLLECTION_SHARE = 0.05

_collect = gc.collect
_requested = threading.Event()  # a worker asked for a full collection
_timer: "QTimer | None" = None
_last_full = [0.0, 0.0]  # when the last full collection ended, and how long it took (s)


def collect_on_gui_thread() -> None:
    """From now on collect cycles on the application's thread only (once per process; later
    calls do nothing). The QApplication must exist."""
    global _timer
    if _timer is not None:
        return
    gc.disable()
    gc.collect = _collect_here_or_on_the_gui_thread
    _timer = QTimer(QCoreApplication.instance())
    _timer.setInterval(INTERVAL_MS)
    _timer.timeout.connect(_collect_when_due)
    _timer.start()


def end_collection_on_gui_thread() -> None:
    """Give collection back to Python (automatic, on any thread) once the event loop has
    ended: a notebook goes on after ``litdesk.show()`` returns, and no timer would collect
    for it. The next window takes it over again."""
    global _timer
    if _timer is None:
        return
    _timer.stop()
    _timer.deleteLater()
    _timer = None
    gc.collect = _collect
    _requested.clear()
    gc.enable()


def _on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and app.thread().isCurrentThread()


def _collect_here_or_on_the_gui_thread(generation: int = 2) -> int:
    """``gc.collect`` for every caller: on the GUI thread a collection now, elsewhere a
    request for the timer's next tick (and 0 found)."""
    if _on_gui_thread():
        return _collect(generation)
    _requested.set()
    return 0


def _collect_when_due() -> None:
    if lasting_imports.under_way():  # what they make is frozen when they end, never walked
        return
    (threshold0, threshold1, threshold2), (count0, count1, count2) = (gc.get_threshold(),
                                                                       gc.get_count())
    ended, took = _last_full
    if _requested.is_set() or (count0 > threshold0 and count1 > threshold1
                               and count2 > threshold2
                               and time.monotonic() - ended >= took / FULL_COLLECTION_SHARE):
        _requested.clear()
        started = time.monotonic()
        _collect()
        _last_full[:] = [time.monotonic(), time.monotonic() - started]
    elif count0 > threshold0:
        _collect(1 if count1 > threshold1 else 0)
