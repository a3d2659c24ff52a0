"""``litdesk install-desktop``: the launcher entry, icon and file types, in a temporary home."""

from __future__ import annotations

import configparser
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from litdesk.cli import main
from litdesk.core import desktop

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="freedesktop only")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return home


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def test_install_writes_entry_icon_and_types_into_the_home(home, capsys):
    assert main(["install-desktop"]) == 0
    share = home / ".local" / "share"
    entry = _entry(share / "applications" / "litdesk.desktop")
    assert entry["Type"] == "Application" and entry["Icon"] == "litdesk"
    command = shlex.split(entry["Exec"])
    assert command[-2:] == ["--reuse-window", "%F"]
    assert Path(command[0]).name in ("litdesk", Path(sys.executable).name)
    assert set(entry["MimeType"].rstrip(";").split(";")) == {
        "text/csv", "text/tab-separated-values", "application/x-ndjson",
        "application/vnd.apache.parquet", "application/vnd.apache.arrow.file"}
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "litdesk.svg"
    assert icon.read_bytes() == desktop.ICON.read_bytes()
    types = ET.parse(share / "mime" / "packages" / "litdesk.xml").getroot()
    globs = {glob.get("pattern") for glob in types.iter() if glob.tag.endswith("glob")}
    assert {"*.jsonl", "*.ndjson", "*.parquet", "*.arrow", "*.feather"} <= globs
    printed = capsys.readouterr().out
    assert str(share / "applications" / "litdesk.desktop") in printed
    if shutil.which("update-mime-database"):  # the desktop's database took the new types
        known = (share / "mime" / "globs2").read_text()
        assert "application/vnd.apache.parquet:*.parquet" in known
        assert "application/x-ndjson:*.jsonl" in known


def test_xdg_data_home_is_honoured(home, tmp_path, monkeypatch):
    data = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    assert main(["install-desktop"]) == 0
    assert (data / "applications" / "litdesk.desktop").is_file()
    assert not (home / ".local").exists()
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid: the spec says ignore it
    assert desktop.data_home() == home / ".local" / "share"


def test_uninstall_removes_what_install_wrote(home, capsys):
    assert main(["install-desktop"]) == 0
    assert main(["install-desktop", "--uninstall"]) == 0
    assert not any(path.exists() for path in desktop.installed_files().values())
    assert "removed" in capsys.readouterr().out
    assert main(["install-desktop", "--uninstall"]) == 0
    assert "no litdesk desktop entry" in capsys.readouterr().out


def test_an_odd_install_path_is_quoted_for_the_launcher():
    text = desktop.desktop_entry(['/opt/my apps/lit"desk$1/litdesk'])
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line == r'Exec="/opt/my apps/lit\\"desk\\$1/litdesk" --reuse-window %F'
    assert desktop.desktop_entry(["/usr/bin/litdesk"]).count(
        "Exec=/usr/bin/litdesk --reuse-window %F") == 1


def test_a_home_that_cannot_be_written_is_one_line(home, capsys):
    (home / ".local").write_text("a file in the way")
    assert main(["install-desktop"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("litdesk: ") and "\n" not in err and ".local" in err
