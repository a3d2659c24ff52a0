"""Files that ship with litdesk and may be unpickled without asking: their hashes are known.

A manifest shipped beside such files (``models.json``: ``{"files": {name: sha256}}``) lists
them. A file is trusted only when it is listed by one of the manifests in
:data:`TRUSTED_MANIFESTS` and its SHA-256 matches; a copy elsewhere, a file with another
name, or one whose bytes changed by one bit still needs the user's word.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from litdesk.core import paths

#: Manifests of the pickles that ship with litdesk (written by each demo's train.py).
TRUSTED_MANIFESTS = (paths.DEMO_TABULAR_MANIFEST,)


def _listed_hashes(manifest: Path) -> dict[str, str]:
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if isinstance(files, dict) else {}


def is_shipped_and_intact(file: Path, manifests: Optional[Iterable[Path]] = None) -> bool:
    """Whether ``file`` is listed in one of ``manifests`` (default :data:`TRUSTED_MANIFESTS`)
    and its SHA-256 is the listed one.

    Reads the file to hash it, never unpickles it.
    """
    file = Path(file).resolve()
    for manifest in TRUSTED_MANIFESTS if manifests is None else manifests:
        manifest = Path(manifest).resolve()
        if file.parent != manifest.parent:
            continue
        expected = _listed_hashes(manifest).get(file.name)
        if isinstance(expected, str) and _sha256(file) == expected:
            return True
    return False


def _sha256(file: Path) -> Optional[str]:
    try:
        with open(file, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
