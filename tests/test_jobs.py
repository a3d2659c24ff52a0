"""The job runner and the job slot every dock computes through: a newer request cancels the
older one, stale results are dropped, plain functions run in the background, and a failure
that a dock shows itself stays in that dock."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from PySide6.QtCore import QThreadPool, QTimer

from litdesk.core.jobs import JobFailed, Progress, function_job, run_job
from litdesk.core.priority import BACKGROUND_NICENESS
from litdesk.ui import jobs
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown


class CountingView(RefreshWhenShown):
    """A view that counts its refreshes and notes them in ``log``."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.log, self.refreshes = log, 0

    def refresh(self):
        self.refreshes += 1
        self.log.append("refresh")


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.shutdown()


def _waiting_job(release: threading.Event, value):
    """Reports progress until ``release`` is set, then returns ``value``."""
    while not release.wait(0.005):
        yield Progress(0, 1, "waiting")
    return value


def test_a_plain_function_is_a_job():
    assert run_job(function_job(lambda: 42)) == 42


def test_a_plain_function_runs_in_the_background(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    results = []
    main_thread = threading.get_ident()
    with qtbot.waitSignal(runner.idle, timeout=5000):
        slot.submit(lambda: threading.get_ident(), results.append)
    assert len(results) == 1 and results[0] != main_thread
    assert not slot.busy


def test_a_newer_request_cancels_the_older_and_only_the_newest_result_arrives(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    results = []
    first, second = threading.Event(), threading.Event()
    slot.submit(_waiting_job(first, "old"), results.append)
    slot.submit(_waiting_job(second, "new"), results.append)
    first.set()
    second.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == ["new"]


def test_a_result_that_arrives_after_cancel_is_dropped(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    results = []
    release = threading.Event()

    def job():
        release.wait(5)
        return "stale"
        yield  # a generator that reports no progress, so it cannot be stopped half-way

    slot.submit(job(), results.append)
    slot.cancel()
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == [] and not slot.busy


def test_a_failure_the_view_handles_stays_in_the_view(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    shown, reported = [], []
    runner.failed.connect(reported.append)

    def broken():
        raise ValueError("no such column")

    with qtbot.waitSignal(runner.idle, timeout=5000):
        slot.submit(broken, lambda _result: None, shown.append)
    assert [str(failure.error) for failure in shown] == ["no such column"]
    assert isinstance(shown[0], JobFailed) and shown[0].title == "Compute"
    assert reported == []


def test_a_failure_nobody_handles_reaches_the_window(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        slot.submit(lambda: 1 / 0, lambda _result: None)
    assert isinstance(blocker.args[0].error, ZeroDivisionError)


def test_a_stale_failure_is_dropped(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    shown, reported = [], []
    runner.failed.connect(reported.append)
    release = threading.Event()

    def job():
        release.wait(5)
        raise ValueError("old state")
        yield

    slot.submit(job(), lambda _result: None, shown.append)
    slot.submit(lambda: "fresh", lambda _result: None, shown.append)
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert shown == [] and reported == []


def test_a_request_cancelled_from_outside_the_slot_reports_stopped(qtbot, runner):
    slot = JobSlot(runner, "Compute")
    results = []
    release = threading.Event()
    slot.submit(_waiting_job(release, "never"), results.append)
    with qtbot.waitSignal(slot.stopped, timeout=5000):
        runner.cancel_all()  # as Jobs ▸ Cancel does
    release.set()
    assert results == [] and not slot.busy


def test_a_view_asked_to_refresh_several_times_by_one_result_refreshes_once_after_it(
        qtbot, runner):
    view = CountingView([])
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    before = view.refreshes
    seen_inside = []

    def deliver(_result):
        for _change in ("dataset", "selection", "outcomes"):
            view.request_refresh()
        seen_inside.append(view.refreshes)

    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.submit(function_job(lambda: 1, "Load"), "Load", deliver)
    assert seen_inside == [before]  # nothing redrawn while the result was handled…
    assert view.refreshes == before + 1 and not view.stale  # …then once
    view.request_refresh()  # outside a job's result: at once, as before
    assert view.refreshes == before + 2


def _results_arriving_together(runner, count: int, on_result) -> None:
    """Submit ``count`` jobs and let all of them end before the GUI thread looks."""
    for number in range(count):
        runner.submit(function_job(lambda number=number: number, "Job"), "Job", on_result)
    assert QThreadPool.globalInstance().waitForDone(5000)


def _mark_turns(log: list):
    """A result handler that notes its result and, on the next turn of the event loop, a
    turn mark."""
    def on_result(result):
        log.append(result)
        QTimer.singleShot(0, lambda: log.append("turn"))
    return on_result


def test_results_that_arrive_together_are_handed_over_a_turn_apart_past_the_budget(
        qtbot, runner, monkeypatch):
    log = []
    monkeypatch.setattr(jobs, "DELIVERY_BUDGET_S", 0.0)  # every hand-over is past it
    with qtbot.waitSignal(runner.idle, timeout=5000):
        _results_arriving_together(runner, 3, _mark_turns(log))
    qtbot.waitUntil(lambda: log.count("turn") == 3, timeout=5000)
    assert log[1::2] == ["turn"] * 3 and sorted(log[::2]) == [0, 1, 2]


def test_results_within_the_budget_are_handed_over_in_one_turn(qtbot, runner, monkeypatch):
    log = []
    monkeypatch.setattr(jobs, "DELIVERY_BUDGET_S", 60.0)
    with qtbot.waitSignal(runner.idle, timeout=5000):
        _results_arriving_together(runner, 3, _mark_turns(log))
    qtbot.waitUntil(lambda: log.count("turn") == 3, timeout=5000)
    assert sorted(log[:3]) == [0, 1, 2] and log[3:] == ["turn"] * 3


def test_a_refresh_a_result_asked_for_runs_on_a_later_turn_and_before_idle(
        qtbot, runner, monkeypatch):
    monkeypatch.setattr(jobs, "DELIVERY_BUDGET_S", 0.0)
    log = []
    view = CountingView(log)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    log.clear()  # its first refresh, when shown

    def on_result(result):
        view.request_refresh()
        _mark_turns(log)(result)

    runner.idle.connect(lambda: log.append("idle"))
    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.submit(function_job(lambda: "loaded", "Load"), "Load", on_result)
    assert log == ["loaded", "turn", "refresh", "idle"]


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness: Linux")
def test_jobs_run_at_a_lower_priority_than_the_window_and_so_do_threads_they_start(qtbot, runner):
    def niceness_of_the_job_and_of_a_thread_it_starts():
        started = []
        thread = threading.Thread(target=lambda: started.append(_niceness()))
        thread.start()
        thread.join()
        return _niceness(), started[0]

    window = _niceness()
    results = []
    with qtbot.waitSignal(runner.idle, timeout=5000):
        JobSlot(runner, "Niceness").submit(niceness_of_the_job_and_of_a_thread_it_starts,
                                            results.append)
    background = max(window, BACKGROUND_NICENESS)
    assert results == [(background, background)]
    assert _niceness() == window
