"""Jobs: plain generator functions that yield :class:`Progress` and return a result.

A job is written once, Qt-free, and runs anywhere: drained synchronously by :func:`run_job`
in tests and batch commands, or on the UI's background worker, which stops it at its next
``yield`` when the user cancels.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """How far a job has come: ``done`` of ``total`` units (``total`` 0 when unknown)."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> Optional[float]:
        """done/total in [0, 1], or None when the total is unknown."""
        if self.total <= 0:
            return None
        return min(1.0, self.done / self.total)


Job = Generator[Progress, None, T]


def run_job(job: Job[T], on_progress: Optional[Callable[[Progress], Any]] = None) -> T:
    """Drain ``job`` on this thread and return its result."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(progress)
