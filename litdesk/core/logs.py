"""The log file a user sends with a bug report: warnings and errors, rotating, in the
platform's log folder (``paths.log_dir()``).

:func:`setup_logging` attaches one rotating file handler to the root logger, so that what
litdesk and its libraries log at WARNING and above, Python's ``warnings`` and the tracebacks of
litdesk's own bugs all land in ``litdesk.log`` (at most :data:`MAX_BYTES`, then
``litdesk.log.1`` … ``litdesk.log.<BACKUPS>``).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Optional

from litdesk.core import paths

#: The file in the log folder.
LOG_FILE = "litdesk.log"
#: Size at which the file is rotated, and how many old files are kept.
MAX_BYTES = 1 << 20
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"

logger = logging.getLogger("litdesk")


class _Handler(logging.handlers.RotatingFileHandler):
    """litdesk's handler, told apart from handlers others attach to the root logger."""


def log_file() -> Path:
    """Where the log is written (the folder is created)."""
    return paths.log_dir() / LOG_FILE


def setup_logging() -> Optional[Path]:
    """Send warnings and errors to :func:`log_file`; return its path, or None when the file
    cannot be opened (a read-only home), in which case nothing changes.

    Calling it again is cheap; when the log folder moved (``$LITDESK_HOME`` changed), the
    handler follows it.
    """
    try:
        path = log_file()
    except OSError:
        return None
    root = logging.getLogger()
    current = [handler for handler in root.handlers if isinstance(handler, _Handler)]
    if current and current[0].baseFilename == os.path.abspath(path):
        return path
    try:
        handler = _Handler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                           errors="backslashreplace", delay=True)
        with open(path, "a", encoding="utf-8"):
            pass  # fail here, not at the first record, when the file cannot be written
    except OSError:
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(FORMAT))
    for old in current:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return path


def log_bug(error: BaseException, task: str) -> Optional[Path]:
    """Log ``error``'s traceback as a bug met while ``task``; the log's path, or None when
    there is no log file to write to."""
    path = setup_logging()
    if path is not None:
        logger.error("a bug in litdesk while %s", task, exc_info=error)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, _Handler):
                handler.flush()
    return path
