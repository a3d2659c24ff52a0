"""``litdesk install-desktop``: litdesk in the desktop's launcher, with its icon, and offered by
the file manager for the data files it opens (the freedesktop.org specifications: Linux and
the BSDs; a macOS ``.app`` and a Windows installer declare the same through their bundles).

Three files go into the user's data folder (``$XDG_DATA_HOME``, by default
``~/.local/share``): ``applications/litdesk.desktop``, the icon in
``icons/hicolor/scalable/apps/`` and ``mime/packages/litdesk.xml``, which declares the file
types that shared-mime-info may not know (JSON Lines, Parquet, Arrow). The launcher starts
litdesk with ``--reuse-window``, so that a file opened from the file manager goes to the open
window.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from litdesk.core import paths

APP_ID = "litdesk"
ICON = paths.RESOURCES_DIR / "icons" / "litdesk.svg"

#: The MIME types of the files litdesk opens from the file manager: CSV, TSV, JSON Lines,
#: Parquet and Arrow IPC (the file format, and Feather, its older name).
MIME_TYPES = ("text/csv", "text/tab-separated-values", "application/x-ndjson",
              "application/vnd.apache.parquet", "application/vnd.apache.arrow.file")

#: The types shared-mime-info lacks or only recently gained, with their names and globs.
MIME_PACKAGE = """<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-ndjson">
    <comment>JSON Lines data</comment>
    <sub-class-of type="text/plain"/>
    <alias type="application/jsonl"/>
    <glob pattern="*.jsonl"/>
    <glob pattern="*.ndjson"/>
  </mime-type>
  <mime-type type="application/vnd.apache.parquet">
    <comment>Apache Parquet data</comment>
    <alias type="application/x-parquet"/>
    <magic priority="50"><match type="string" offset="0" value="PAR1"/></magic>
    <glob pattern="*.parquet"/>
  </mime-type>
  <mime-type type="application/vnd.apache.arrow.file">
    <comment>Apache Arrow data</comment>
    <magic priority="50"><match type="string" offset="0" value="ARROW1"/></magic>
    <glob pattern="*.arrow"/>
    <glob pattern="*.feather"/>
  </mime-type>
</mime-info>
"""


def data_home() -> Path:
    """``$XDG_DATA_HOME`` when set to an absolute path (as the specification asks), else
    ``~/.local/share``."""
    configured = os.environ.get("XDG_DATA_HOME", "")
    if configured and os.path.isabs(configured):
        return Path(configured)
    return Path.home() / ".local" / "share"


def installed_files(home: Path | None = None) -> dict[str, Path]:
    """Where each installed file goes: ``entry``, ``icon`` and ``mime``."""
    home = home or data_home()
    return {"entry": home / "applications" / f"{APP_ID}.desktop",
            "icon": home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
            "mime": home / "mime" / "packages" / f"{APP_ID}.xml"}


def launch_command() -> list[str]:
    """The command that starts this litdesk: the frozen app itself, else the ``litdesk``
    script beside this Python (a virtualenv's ``bin``), else ``python -m litdesk``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.executable).parent / ("litdesk.exe" if os.name == "nt" else "litdesk")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "litdesk"]


def _exec_argument(argument: str) -> str:
    """One argument of an ``Exec`` key, quoted as the Desktop Entry specification says."""
    escaped = argument.replace("%", "%%")
    if not any(c in escaped for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return escaped
    for reserved in ("\\", '"', "`", "$"):
        escaped = escaped.replace(reserved, "\\" + reserved)
    # The value is itself a string value: its backslashes are escaped once more.
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry(command: list[str] | None = None) -> str:
    """The text of ``litdesk.desktop``, starting ``command`` (default :func:`launch_command`)."""
    argv = [*(command or launch_command()), "--reuse-window"]
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=litdesk",
        "GenericName=Model Interpretability",
        "Comment=Understand and compare machine-learning models, offline",
        f"Exec={' '.join(_exec_argument(part) for part in argv)} %F",
        f"Icon={APP_ID}",
        "Terminal=false",
        "StartupWMClass=litdesk",
        "Categories=Science;Education;Development;",
        "Keywords=machine learning;interpretability;LIT;salience;embeddings;",
        "MimeType=" + "".join(f"{mime};" for mime in MIME_TYPES),
        ""])


def _refresh_databases(home: Path) -> None:
    """Rebuild the user's MIME and desktop databases when the tools are there (a desktop
    without them reads the files directly)."""
    for tool, folder in (("update-mime-database", home / "mime"),
                         ("update-desktop-database", home / "applications"),
                         ("gtk-update-icon-cache", home / "icons" / "hicolor")):
        executable = shutil.which(tool)
        if executable is None or not folder.is_dir():
            continue
        arguments = [executable, "-f", "-t", str(folder)] if tool == "gtk-update-icon-cache" \
            else [executable, str(folder)]
        subprocess.run(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)


def _check_platform() -> None:
    if sys.platform in ("win32", "darwin"):
        raise ValueError("install-desktop writes freedesktop.org entries (Linux, BSD); on "
                         f"{'Windows' if sys.platform == 'win32' else 'macOS'} install the "
                         "litdesk bundle instead (see the README)")


def install_desktop(home: Path | None = None) -> str:
    """Write the launcher entry, the icon and the file types; what was written, one line each.

    Running it again rewrites them (after a move of the app, the entry starts the new one).
    """
    _check_platform()
    home = home or data_home()
    files = installed_files(home)
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["entry"].write_text(desktop_entry(), encoding="utf-8")
    shutil.copyfile(ICON, files["icon"])
    files["mime"].write_text(MIME_PACKAGE, encoding="utf-8")
    _refresh_databases(home)
    return "\n".join([f"installed {path}" for path in files.values()]
                     + ["litdesk now shows in the launcher and in \"Open with\" for CSV, TSV, "
                        "JSON Lines, Parquet and Arrow files"])


def uninstall_desktop(home: Path | None = None) -> str:
    """Remove what :func:`install_desktop` wrote; what was removed, one line each."""
    _check_platform()
    home = home or data_home()
    removed = []
    for path in installed_files(home).values():
        if path.exists():
            path.unlink()
            removed.append(path)
    if not removed:
        return f"no litdesk desktop entry in {home}"
    _refresh_databases(home)
    return "\n".join(f"removed {path}" for path in removed)
