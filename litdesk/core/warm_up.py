"""Work every launch needs soon, started on a thread before the window is built."""

from __future__ import annotations

import importlib
import threading

_started = threading.Event()


def start_warm_up() -> None:
    """Import pandas and read the plugins' manifests on a daemon thread, once per process.

    pyarrow imports pandas on its first conversion of Python or numpy values, on whichever
    thread makes it (seconds on a cold disk), and opening the first path reads every plugin's
    manifest. Started before the window's own modules import, both are done before the launch
    needs them, instead of holding the GIL while the window answers its first events."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_warm_up, daemon=True, name="litdesk-warm-up").start()


def _warm_up() -> None:
    from litdesk.core.plugins import discover_plugins
    from litdesk.core.priority import lower_thread_priority

    lower_thread_priority()

    discover_plugins()
    importlib.import_module("pandas")
