"""The GUI thread's turn at Python's global interpreter lock.

PySide lets go of the GIL around its calls into Qt, and each call Qt makes back into Python (a
model's ``data()``, a paint, a header's size) takes it again. While a worker runs Python, each
such taking waits until the worker is made to let go: up to ``sys.getswitchinterval()``, 5 ms
by default. A table reset and repaint with 1,253 calls back into Python took 14 ms alone, 128 ms
beside a worker running Python, and 35 ms with an interval of 0.5 ms. Two workers predicting
side by side were no slower with it, within the noise of this machine.
"""

from __future__ import annotations

import sys

#: The switch interval while a window runs (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005

_default: list[float] = []  # the interval before the window shortened it


def favour_gui_thread() -> None:
    """Shorten the switch interval while the window runs (later calls do nothing)."""
    if not _default:
        _default.append(sys.getswitchinterval())
        sys.setswitchinterval(SWITCH_INTERVAL_S)


def end_favouring_gui_thread() -> None:
    """Give the switch interval back once the event loop has ended (a notebook goes on)."""
    if _default:
        sys.setswitchinterval(_default.pop())
