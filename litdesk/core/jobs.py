"""Jobs: plain generator functions that yield :class:`Progress` and return a result.

A job is written once, Qt-free, and runs anywhere: drained synchronously by :func:`run_job`
in tests and batch commands, or on the UI's background worker, which stops it at its next
``yield`` when the user cancels.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, TypeVar

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


class JobFailed(Exception):
    """A job raised; carries the job's title and the original exception."""

    def __init__(self, title: str, error: BaseException) -> None:
        super().__init__(f"{title}: {type(error).__name__}: {error}")
        self.title = title
        self.error = error


def function_job(function: Callable[[], T], message: str = "") -> Job[T]:
    """A plain function as a job: one progress report, then its result.

    It cannot be stopped half-way; a cancelled one is dropped at its only ``yield``.
    """
    yield Progress(0, 1, message)
    return function()


def run_job(job: Job[T], on_progress: Optional[Callable[[Progress], Any]] = None) -> T:
    """Drain ``job`` on this thread and return its result."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(progress)


class Runner(Protocol):
    """What runs the workbench's jobs: the window's background runner, or
    :class:`InlineRunner`. Callbacks arrive on the thread that owns the workbench."""

    def submit(self, job: Job, title: str, on_result: Optional[Callable[[Any], None]] = None,
               on_error: Optional[Callable[[JobFailed], None]] = None,
               interactive: bool = False) -> Any: ...


class InlineRunner:
    """Runs each job to its end when it is submitted, on the calling thread (tests, scripts)."""

    def submit(self, job: Job, title: str, on_result: Optional[Callable[[Any], None]] = None,
               on_error: Optional[Callable[[JobFailed], None]] = None,
               interactive: bool = False) -> None:
        """Run ``job`` now; its result goes to ``on_result``, a failure to ``on_error`` (raised
        when there is none)."""
        try:
            result = run_job(job)
        except Exception as error:
            if on_error is None:
                raise
            on_error(JobFailed(title, error))
            return
        if on_result is not None:
            on_result(result)
