"""``litdesk --version``, Help ▸ About (versions, device, folders), the rotating log file and
Help ▸ Open Log Folder."""

from __future__ import annotations

import logging
from importlib import metadata

import pytest
from PySide6.QtCore import qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox

from litdesk import __version__
from litdesk.cli import main
from litdesk.core import logs, paths


def _help_action(window, text: str):
    menu = next(action.menu() for action in window.menuBar().actions()
                if action.text() == "&Help")
    return next(action for action in menu.actions() if action.text() == text)


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"litdesk {__version__}"
    assert metadata.version("litdesk") == __version__  # one version, from the package


def test_warnings_and_errors_go_to_the_log_file(litdesk_home):
    path = logs.setup_logging()
    assert path == litdesk_home / "log" / "litdesk.log"
    logging.getLogger("litdesk.somewhere").warning("disk nearly full")
    logging.getLogger("some.library").info("chatter that the log leaves out")
    logging.getLogger("some.library").error("a library failed")
    text = path.read_text()
    assert "WARNING litdesk.somewhere" in text and "disk nearly full" in text
    assert "ERROR some.library" in text and "chatter" not in text
    assert logs.setup_logging() == path  # idempotent: one handler, not two
    logging.getLogger("litdesk").warning("once")
    assert path.read_text().count("once") == 1


def test_the_log_rotates(litdesk_home, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    monkeypatch.setenv("LITDESK_HOME", str(litdesk_home / "rotating"))
    path = logs.setup_logging()
    for index in range(100):
        logging.getLogger("litdesk").warning("line %d of a long session", index)
    backups = sorted(path.parent.glob("litdesk.log.*"))
    assert [backup.name for backup in backups] == [f"litdesk.log.{n}" for n in (1, 2, 3)]
    assert path.stat().st_size <= 2_000
    assert "line 99 " in path.read_text()


def test_about_shows_versions_device_and_folders(window, qtbot, tmp_path):
    _help_action(window, "&About litdesk").trigger()
    box = window.about_box
    qtbot.waitUntil(box.isVisible)
    text = box.text()
    for expected in (f"litdesk {__version__}", "Python", metadata.version("torch"), qVersion(),
                     "Device", str(paths.cache_dir()), str(paths.data_dir()),
                     str(paths.log_dir())):
        assert expected in text, expected
    box.grab().save(str(tmp_path / "about.png"))
    copy = next(button for button in box.buttons()
                if box.buttonRole(button) == QMessageBox.ButtonRole.ActionRole)
    copy.click()
    copied = QGuiApplication.clipboard().text()
    assert f"litdesk: {__version__}" in copied and f"Logs: {logs.log_file()}" in copied


def test_open_log_folder_opens_the_platform_log_folder(window, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    _help_action(window, "Open &Log Folder").trigger()
    assert [url.toLocalFile() for url in opened] == [str(paths.log_dir())]
