"""The on-disk result cache, content-addressed per example.

A key is a hash of (kind of result, model fingerprint, the example's input values, the
parameters), so a result is found again whatever file or row order the example comes from,
and a run cancelled half-way resumes where it stopped. Values are numpy arrays stored as raw
bytes with a small JSON header: nothing is ever unpickled from the cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from litdesk.core import paths

CACHE_FILE = "results.sqlite"
_LOOKUP_CHUNK = 500


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, bytes):
        return hashlib.blake2b(value, digest_size=16).hexdigest()
    return str(value)


def result_key(kind: str, fingerprint: str, example: dict[str, Any],
               params: Optional[dict[str, Any]] = None) -> bytes:
    """The content address of one result."""
    text = json.dumps([kind, fingerprint, example, params or {}], sort_keys=True,
                      default=_jsonable, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()


def _json_value(value: Any) -> Any:
    """Lists, tuples, numpy values and bytes as JSON (bytes as {"base64": …})."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        return [_json_value(item) for item in value] if value.dtype == object else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            return base64.b64decode(value["base64"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _numeric_array(value: Any) -> Optional[np.ndarray]:
    """``value`` as a numeric array, or None (text, bytes, ragged or mixed values)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        return None
    return array if array.dtype.kind in "fiub" else None


def encode_outputs(outputs: dict[str, Any]) -> bytes:
    """Outputs as bytes: a JSON header line, then the raw buffers of the numeric arrays.

    Everything else (tokens, text, top-k lists, image bytes) goes into the header as JSON.
    """
    header, buffers = {}, []
    for name, value in outputs.items():
        array = _numeric_array(value)
        if array is not None:
            array = np.require(array, requirements="C")  # ascontiguousarray makes 0-d 1-d
            header[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
            buffers.append(array.tobytes())
        else:
            header[name] = {"json": _json_value(value)}
    return json.dumps(header).encode("utf-8") + b"\n" + b"".join(buffers)


def decode_outputs(blob: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_outputs` (tuples come back as lists)."""
    header_bytes, _, body = blob.partition(b"\n")
    outputs, offset = {}, 0
    for name, info in json.loads(header_bytes).items():
        if "json" in info:
            outputs[name] = _from_json(info["json"])
            continue
        dtype = np.dtype(info["dtype"])
        count = int(np.prod(info["shape"], dtype=np.int64))
        outputs[name] = np.frombuffer(body, dtype, count, offset).reshape(info["shape"]).copy()
        offset += count * dtype.itemsize
    return outputs


class ResultCache:
    """A key-value store of encoded results in one SQLite file, safe to share across threads."""

    def __init__(self, folder: Optional[Path] = None) -> None:
        self.path = (folder or paths.cache_dir()) / CACHE_FILE
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._connection:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS results (key BLOB PRIMARY KEY, value BLOB)")

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
        """The cached results among ``keys``."""
        found: dict[bytes, dict[str, Any]] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = list(keys[start:start + _LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._connection.execute(
                    f"SELECT key, value FROM results WHERE key IN ({marks})", chunk).fetchall()
            found.update((key, decode_outputs(value)) for key, value in rows)
        return found

    def put_many(self, items: Iterable[tuple[bytes, dict[str, Any]]]) -> None:
        """Store results (one transaction)."""
        rows = [(key, encode_outputs(outputs)) for key, outputs in items]
        with self._lock, self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", rows)

    def size_bytes(self) -> int:
        """Bytes on disk, the write-ahead log included."""
        return sum(p.stat().st_size for p in self.path.parent.glob(CACHE_FILE + "*"))

    def clear(self) -> None:
        """Forget every result and give the disk space back."""
        with self._lock:
            with self._connection:
                self._connection.execute("DELETE FROM results")
            self._connection.execute("VACUUM")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._connection.close()
