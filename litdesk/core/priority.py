"""Background work gives the processor to the window first.

Linux schedules each thread on its own: a worker thread that lowers its priority (raises its
niceness) still runs at full speed while the window is idle, but when both want a core, the
window's thread is run first. Threads and processes a lowered thread starts inherit its
niceness: the threads torch starts for a model's inference, a projection's child process.
"""

from __future__ import annotations

import os
import sys
import threading

#: The niceness of background threads (0 is the window's; 19 the lowest priority). At 10 a
#: thread weighs about a tenth of the window's thread when they share a core.
BACKGROUND_NICENESS = 10


def lower_thread_priority() -> None:
    """Run the calling thread, and what it starts, at :data:`BACKGROUND_NICENESS`.

    On Linux only: elsewhere a process's niceness is not the thread's. A thread already at
    that niceness or lower priority is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < BACKGROUND_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, BACKGROUND_NICENESS)
    except OSError:  # a sandbox that forbids it: the thread runs as before
        pass
