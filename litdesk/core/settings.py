"""litdesk's settings that outlive a session, Qt-free: one JSON file in the config folder.

The window's geometry and dock layout stay with Qt (QSettings); everything the application
itself decides with (device, precision, cache size, input mappings) lives here, so the
workbench and the batch commands read the same values without Qt.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from litdesk.core import paths

SETTINGS_FILE = "settings.json"


class Settings:
    """A small persistent mapping: every :meth:`set` is written at once, atomically.

    A missing or damaged file reads as empty (the defaults), and a file that cannot be
    written leaves the value in memory for this session.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path or paths.config_dir() / SETTINGS_FILE
        self._lock = threading.Lock()
        try:
            values = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            values = {}
        self._values: dict[str, Any] = values if isinstance(values, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default``."""
        with self._lock:
            return self._values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Save ``value`` (JSON-serialisable) under ``key``; raises OSError when the file cannot
        be written (the value is kept for this session all the same)."""
        with self._lock:
            self._values[key] = value
            text = json.dumps(self._values, indent=1, sort_keys=True)
            handle, temporary = tempfile.mkstemp(prefix=".settings-", dir=self.path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
