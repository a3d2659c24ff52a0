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


def is_shipped(file: Path, digest: str, manifests: Optional[Iterable[Path]] = None) -> bool:
    """Whether ``file`` is listed in one of ``manifests`` (default :data:`TRUSTED_MANIFESTS`)
    with the SHA-256 ``digest``.

    ``digest`` is the hash of the bytes the caller read and will load: hashing the file here
    and loading it again later would let the file change in between (a swapped symlink).
    """
    file = Path(file).resolve()
    for manifest in TRUSTED_MANIFESTS if manifests is None else manifests:
        manifest = Path(manifest).resolve()
        if file.parent == manifest.parent and _listed_hashes(manifest).get(file.name) == digest:
            return True
    return False


def is_shipped_and_intact(file: Path, manifests: Optional[Iterable[Path]] = None) -> bool:
    """Whether ``file``'s bytes now are the shipped ones (:func:`is_shipped`); never unpickles."""
    try:
        data = Path(file).read_bytes()
    except OSError:
        return False
    return is_shipped(file, hashlib.sha256(data).hexdigest(), manifests)
