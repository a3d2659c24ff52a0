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


def shipped_files(path: Path, manifests: Optional[Iterable[Path]] = None
                  ) -> tuple[tuple[str, str], ...]:
    """(resolved path, SHA-256) of the listed files that a loader of ``path`` (a file, or a
    folder) may find, for :attr:`litdesk.api.LoadOptions.shipped_files`."""
    path = Path(path).resolve()
    listed = []
    for manifest in TRUSTED_MANIFESTS if manifests is None else manifests:
        folder = Path(manifest).resolve().parent
        if folder in (path, path.parent):
            listed += [(str(folder / name), digest)
                       for name, digest in _listed_hashes(Path(manifest)).items()
                       if isinstance(name, str) and isinstance(digest, str)]
    return tuple(listed)


def is_shipped_and_intact(file: Path, manifests: Optional[Iterable[Path]] = None) -> bool:
    """Whether ``file``'s bytes now are the shipped ones; never unpickles."""
    try:
        data = Path(file).read_bytes()
    except OSError:
        return False
    listed = shipped_files(file, manifests)
    return (str(Path(file).resolve()), hashlib.sha256(data).hexdigest()) in listed
