"""Helpers for model loaders reading files: every failure becomes one ModelLoadError."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litdesk.api.model import ModelLoadError


def read_json_document(file: Path) -> Any:
    """The parsed JSON of ``file``; unreadable or invalid files raise ModelLoadError naming it."""
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelLoadError(f"{file}: cannot be read ({error.strerror or error})") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{file}: not valid JSON ({error})") from error


def single_matching_file(path: Path, patterns: Sequence[str]) -> Path:
    """``path`` itself, or the one file in the folder ``path`` matching ``patterns``
    (listing the folder reads no file)."""
    if not path.is_dir():
        return path
    found = sorted(child for child in path.iterdir()
                   if child.is_file() and any(fnmatch.fnmatch(child.name, p) for p in patterns))
    if len(found) != 1:
        names = ", ".join(child.name for child in found) or "none"
        raise ModelLoadError(f"{path}: holds {len(found)} files matching {', '.join(patterns)} "
                             f"({names}); open one of them")
    return found[0]
