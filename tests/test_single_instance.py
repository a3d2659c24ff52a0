"""A file opened from the desktop goes to the running window: ``litdesk --reuse-window FILE``
hands it over a local socket and exits; with no window open it opens its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QDir

from litdesk.ui.single_instance import SingleInstanceServer, send_to_running, serve, server_name
from tests.helpers import write_csv

ROOT = Path(__file__).resolve().parents[1]


def _litdesk(*argv: str) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "litdesk", *argv], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_launch_hands_its_file_to_the_running_window(window, qtbot, tmp_path):
    server = serve(window)
    assert server.listening
    reviews = write_csv(tmp_path / "handed_over.csv")
    with qtbot.waitSignal(window.dataset_loaded, timeout=30_000) as loaded:
        launch = _litdesk("--reuse-window", str(reviews))
        # The event loop runs while the second process waits for the window's answer.
        qtbot.waitUntil(lambda: launch.poll() is not None, timeout=30_000)
    assert launch.returncode == 0, launch.stderr.read()
    assert window.session.dataset.name == loaded.args[0]
    assert "handed_over" in loaded.args[0]


def test_a_second_window_does_not_take_over(window, qtbot):
    first = serve(window)
    second = SingleInstanceServer()
    assert first.listening and not second.listen()
    first.close()
    assert second.listen()  # once the first window is gone, the next one serves
    second.close()


@pytest.mark.skipif(os.name == "nt", reason="Unix sockets")
def test_a_socket_left_by_a_crashed_window_is_replaced(qapp):
    path = Path(QDir.tempPath()) / server_name()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    try:
        server = SingleInstanceServer()
        assert server.listen()
        server.close()
    finally:
        path.unlink(missing_ok=True)


def test_with_no_window_open_the_launch_opens_its_own(qapp, tmp_path):
    assert not send_to_running([tmp_path / "a.csv"], timeout_ms=500)


def test_the_socket_name_follows_the_litdesk_home(monkeypatch, tmp_path):
    first = server_name()
    monkeypatch.setenv("LITDESK_HOME", str(tmp_path / "other"))
    assert server_name() != first and server_name().startswith("litdesk-")
