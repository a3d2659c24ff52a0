"""Running core jobs on background threads, with progress, cancel and error reporting.

:class:`JobRunner` is the window's one runner. A dock does its work through a
:class:`JobSlot`: a newer request cancels the older one, a stale result never reaches the
dock, and a failure the dock shows itself stays in the dock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from shiboken6 import isValid
from superqt.utils import GeneratorWorker, create_worker

from litdesk.core.jobs import JobFailed, Progress, function_job
from litdesk.core.priority import lower_thread_priority
from litdesk.ui.lazy_refresh import refreshes_held

INTERACTIVE_PRIORITY = 10
#: The fewest threads the pool runs jobs on.
MIN_THREADS = 6
#: How long one turn of the event loop may spend handing jobs' ends to their views (and
#: refreshing the views they changed). Past it, the rest wait for the next turn, so that
#: input and paints go in between: results that arrive together (a dataset's rows, then
#: each model's predictions) are not handled in one long block.
DELIVERY_BUDGET_S = 0.010


def _guarded(job: Generator, title: str) -> Generator:
    lower_thread_priority()  # the window's thread goes first when both want a core
    # superqt swallows RuntimeError from a generator (it takes it for a deleted worker);
    # wrapping every failure keeps errors such as torch's visible.
    try:
        result = yield from job
    except Exception as error:
        raise JobFailed(title, error) from error
    return result


class JobRunner(QObject):
    """Starts jobs on the thread pool and reports on them.

    ``idle`` is emitted when the last running job has finished, after its result handler and
    any other slot on the worker's signals ran (so a handler that starts a follow-up job keeps
    the runner busy) and the views a result changed have refreshed. Ends of jobs (result,
    failure, finish) and those refreshes are run in the order they came, at most
    :data:`DELIVERY_BUDGET_S` of them per turn of the event loop.
    """

    progress = Signal(str, object)  # title, Progress
    failed = Signal(object)  # JobFailed of a job submitted without an error handler
    busy_changed = Signal(bool)
    idle = Signal()

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        # More threads than cores: a view's quick job must not queue for seconds behind two
        # long ones (a model loading, a LIME explanation); numpy, Arrow and torch release the
        # GIL, and the GUI thread's share of it is what the heartbeat measures.
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), MIN_THREADS))
        self._workers: dict[GeneratorWorker, str] = {}
        # Workers that reported their end but whose thread may still hold them: kept until that
        # thread has let go, so that they (and their signals' QObject) are freed on this one.
        self._ending: set[GeneratorWorker] = set()
        self._shut_down = False
        self._deliveries: deque[Callable[[], None]] = deque()
        self._delivery_turn = QTimer(self)
        self._delivery_turn.setSingleShot(True)
        self._delivery_turn.setInterval(0)
        self._delivery_turn.timeout.connect(self._deliver)

    @property
    def busy(self) -> bool:
        """Whether any job is running."""
        return bool(self._workers)

    def titles(self) -> list[str]:
        """Titles of the running jobs."""
        return list(self._workers.values())

    def submit(self, job: Generator, title: str,
               on_result: Optional[Callable[[Any], None]] = None,
               on_error: Optional[Callable[[JobFailed], None]] = None,
               interactive: bool = False,
               on_finished: Optional[Callable[[], None]] = None) -> GeneratorWorker:
        """Run ``job`` (a started generator) in the background; call back on the main thread.

        A failure goes to ``on_error`` when given (the caller tells the user), else to
        :attr:`failed` (the window tells the user). ``interactive`` jobs (what the user is waiting on: a salience, a search) go ahead of
        queued bulk work such as predicting a whole dataset. ``on_finished`` is called last,
        however the job ended (cancelled too). After ``shutdown`` the worker returned is never
        started.
        """
        worker: GeneratorWorker = create_worker(_guarded, job, title, _start_thread=False,
                                                _ignore_errors=True)
        # The pool must not delete it on its thread: this runner frees it on the GUI thread
        # once that thread has let go (see _let_go).
        worker.setAutoDelete(False)
        # A cancelled job is closed on its own thread as soon as it stops: its ``finally``
        # (killing a child process, removing its files) runs now, not when it is freed.
        worker.aborted.connect(job.close, Qt.ConnectionType.DirectConnection)
        if self._shut_down:
            return worker
        was_busy = self.busy
        self._workers[worker] = title
        relay = _JobRelay(self, worker, title, on_result, on_error, on_finished)
        worker.yielded.connect(relay.on_yielded)
        worker.returned.connect(relay.on_returned)
        worker.errored.connect(relay.on_errored)
        worker.finished.connect(relay.on_finished)
        worker._finished.connect(self._let_go)  # the last thing its thread does
        # The pool queues by priority; this runner holds the worker until it has finished.
        QThreadPool.globalInstance().start(worker, INTERACTIVE_PRIORITY if interactive else 0)
        if not was_busy:
            self.busy_changed.emit(True)
        return worker

    def cancel(self, worker: GeneratorWorker) -> None:
        """Stop ``worker`` at its next progress report; its result handler will not run."""
        if worker in self._workers:
            worker.quit()

    def cancel_all(self) -> None:
        """Stop every running job."""
        for worker in list(self._workers):
            worker.quit()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop every job and wait up to ``timeout_ms`` for the threads to let go of them.

        For a closing window: its relays die with it, so the workers' last signals would
        never arrive; the runner forgets them here and reports idle. Jobs submitted later
        (by a timer that fires while the window closes) never start. Returns whether all
        jobs ended in time.
        """
        self._shut_down = True
        self._deliveries.clear()
        if not self._workers:
            return True
        self.cancel_all()
        ended = QThreadPool.globalInstance().waitForDone(timeout_ms)
        self._workers.clear()
        self._ending.clear()
        self.busy_changed.emit(False)
        self.idle.emit()
        return ended

    def post(self, delivery: Callable[[], None]) -> None:
        """Run ``delivery`` on a coming turn of the event loop, after what is queued: a job's
        end, a view's refresh (at most :data:`DELIVERY_BUDGET_S` of them per turn)."""
        if self._shut_down:
            return  # the window is closing: nobody is left to show it
        self._deliveries.append(delivery)
        if not self._delivery_turn.isActive():
            self._delivery_turn.start()

    def _deliver(self) -> None:
        deadline = time.perf_counter() + DELIVERY_BUDGET_S
        try:
            while self._deliveries:  # at least one per turn, however long it takes
                self._deliveries.popleft()()
                if time.perf_counter() >= deadline:
                    break
        finally:
            if self._deliveries:
                self._delivery_turn.start()

    def refreshes_later(self) -> AbstractContextManager[None]:
        """A block after which each view it changed refreshes once, on a coming turn of the
        event loop, as after a job's result: opening several files at once."""
        return refreshes_held(self.post)

    def _let_go(self, worker: GeneratorWorker) -> None:
        self._ending.discard(worker)

    def _finished(self, worker: GeneratorWorker) -> None:
        if self._workers.pop(worker, None) is not None:
            self._ending.add(worker)
        if not self._workers:
            # After what is queued: the views' refreshes that the jobs' results asked for.
            self.post(self._report_idle)

    def _report_idle(self) -> None:
        if not self._workers:
            self.busy_changed.emit(False)
            self.idle.emit()


class _JobRelay(QObject):
    """Receives one worker's signals on the main thread, as a child of its runner (when the
    runner, its window, is gone, Qt drops the connections instead of calling into it), and
    queues the job's end on the runner."""

    def __init__(self, runner: JobRunner, worker: GeneratorWorker, title: str,
                 on_result: Optional[Callable[[Any], None]],
                 on_error: Optional[Callable[[JobFailed], None]],
                 on_finished: Optional[Callable[[], None]]) -> None:
        super().__init__(runner)
        self.runner, self.worker, self.title = runner, worker, title
        self.on_result, self.on_error, self.on_end = on_result, on_error, on_finished

    def on_yielded(self, progress: Any) -> None:
        if isinstance(progress, Progress):
            self.runner.progress.emit(self.title, progress)

    def on_returned(self, result: Any) -> None:
        self.runner.post(lambda: self._hand_over_result(result))

    def on_errored(self, error: BaseException) -> None:
        self.runner.post(lambda: self._hand_over_failure(error))

    def on_finished(self) -> None:
        self.runner.post(self._end)

    def _hand_over_result(self, result: Any) -> None:
        if self.on_result is not None:
            with self.runner.refreshes_later():
                self.on_result(result)

    def _hand_over_failure(self, error: BaseException) -> None:
        failure = error if isinstance(error, JobFailed) else JobFailed(self.title, error)
        if self.on_error is not None:
            self.on_error(failure)
        else:
            self.runner.failed.emit(failure)

    def _end(self) -> None:
        try:
            if self.on_end is not None:
                self.on_end()
        finally:
            self.runner._finished(self.worker)
            # The worker's thread drops the last reference to this relay: let go of the runner
            # and the callbacks (the views behind them) here, so none is freed on that thread.
            self.runner = self.worker = self.on_result = self.on_error = self.on_end = None
            self.deleteLater()


class JobSlot(QObject):
    """One view's background work, one request at a time.

    :meth:`submit` cancels the request still running, and only the newest request's result
    or failure is delivered: a view never shows a result computed for an older state. Work
    is a job (a generator yielding :class:`Progress`, stopped at its next ``yield`` when
    cancelled) or a plain function. A failure goes to ``on_error`` when given and stays in
    the view; without one the window reports it.
    """

    #: The newest request ended with neither a result nor a failure: it was cancelled from
    #: outside the slot (Jobs ▸ Cancel).
    stopped = Signal()

    def __init__(self, runner: JobRunner, title: str, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.runner, self.title = runner, title
        self._worker: Optional[GeneratorWorker] = None
        self._generation = 0

    @property
    def busy(self) -> bool:
        """Whether a request is running."""
        return self._worker is not None

    def submit(self, work: "Generator | Callable[[], Any]",
               on_result: Callable[[Any], None],
               on_error: Optional[Callable[[JobFailed], None]] = None,
               interactive: bool = True, title: Optional[str] = None) -> None:
        """Run ``work`` in the background instead of the request before it."""
        self.cancel()
        generation = self._generation
        job = work if isinstance(work, Generator) else function_job(work, title or self.title)

        def deliver(result: Any) -> None:
            if generation == self._generation and isValid(self):
                self._worker = None
                on_result(result)

        def fail(failure: JobFailed) -> None:
            if generation != self._generation or not isValid(self):
                return  # a newer request's, or the view went first
            self._worker = None
            if on_error is not None:
                on_error(failure)
            else:
                self.runner.failed.emit(failure)

        self._worker = self.runner.submit(job, title or self.title, deliver, fail,
                                          interactive=interactive,
                                          on_finished=lambda: self._on_finished(generation))

    def _on_finished(self, generation: int) -> None:
        if not isValid(self):
            return  # the view went first
        if generation == self._generation and self._worker is not None:
            self._worker = None  # it delivered neither a result nor a failure
            self.stopped.emit()

    def cancel(self) -> None:
        """Stop the running request; neither its result nor its failure is delivered."""
        self._generation += 1
        if self._worker is not None:
            self.runner.cancel(self._worker)
            self._worker = None
