"""Reopening an unchanged data file from litdesk's own memory-mapped copy.

Parsing a million-row CSV takes seconds each time; after the first load, the loaded table
(types cast, columns named, spec inferred) is kept in the result cache as an Arrow file, and
opening the same file again, unchanged, maps that copy instead of parsing anything. The copy
is private to litdesk (written under a temporary name, then moved in place, and only ever
replaced or deleted), so no other program can rewrite it under the map, which a user's own
file could (SIGBUS). It counts against the cache's cap and is evicted like any result.

A file is unchanged when its resolved path, size and modification time are the same; a new
loader version (:data:`FORMAT`) invalidates every copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import pyarrow as pa

from litdesk.api import Dataset
from litdesk.api.types import spec_from_json, spec_to_json
from litdesk.core.cache import ResultCache

#: Bump when loading a file gives a different table or spec than before.
FORMAT = "litdesk-dataset-1"
_SPEC = b"litdesk.spec"
_NAME = b"litdesk.name"


def snapshot_key(path: Path) -> Optional[bytes]:
    """The cache key of the copy of the file at ``path`` as it is now; None for a folder or a
    file that cannot be read."""
    try:
        resolved = Path(path).resolve()
        status = resolved.stat()
    except OSError:
        return None
    if not resolved.is_file():
        return None
    identity = f"{FORMAT}\0{status.st_size}\0{status.st_mtime_ns}\0".encode() \
        + os.fsencode(resolved)
    return hashlib.blake2b(identity, digest_size=20).digest()


def read_snapshot(cache: ResultCache, path: Path) -> Optional[Dataset]:
    """The dataset loaded earlier from ``path``, if the file has not changed since; its table
    is memory-mapped from litdesk's copy."""
    key = snapshot_key(path)
    table = None if key is None else cache.get_table(key)
    metadata = (table.schema.metadata or {}) if table is not None else {}
    if _SPEC not in metadata or _NAME not in metadata:
        return None
    try:
        spec = spec_from_json(metadata[_SPEC].decode("utf-8"))
        return Dataset(table.replace_schema_metadata(None), spec,
                       name=metadata[_NAME].decode("utf-8"), path=Path(path))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None  # a copy this version cannot read: the file is loaded again


def write_snapshot(cache: ResultCache, key: bytes, path: Path, dataset: Dataset) -> bool:
    """Keep ``dataset``, loaded from the file at ``path`` whose :func:`snapshot_key` was ``key``
    before it was read, for the next open. Nothing is kept when the file changed meanwhile,
    the copy is too large for the cap, or the cache cannot be written (False)."""
    if snapshot_key(path) != key:
        return False
    metadata = {_SPEC: spec_to_json(dataset.spec()).encode("utf-8"),
                _NAME: dataset.name.encode("utf-8")}
    return cache.put_table(key, dataset.table.replace_schema_metadata(metadata))
