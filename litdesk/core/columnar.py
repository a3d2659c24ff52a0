"""Results as columns: row-aligned numpy arrays to and from Arrow, and a content hash of
Arrow columns.

A numeric field of shape (rows, ...) becomes one Arrow column (a fixed-size list when it has
more than one dimension), read back as a zero-copy view, memory-mapped when the table comes
from a file. Anything else (ragged arrays, tokens, text) is stored row by row, each value in
the per-example encoding of :mod:`litdesk.core.cache`. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
import pyarrow as pa

_SHAPE = b"litdesk.shape"  # field metadata: a numeric column's shape after the rows, as JSON
_ENCODED = b"litdesk.encoded"  # field metadata: each row is one encoded value


def to_arrow(columns: dict[str, np.ndarray], encode: Callable[[Any], bytes]) -> pa.Table:
    """``columns`` (arrays of equal length) as an Arrow table; ``encode`` turns each value of a
    non-numeric (object) column into bytes."""
    arrays, fields = [], []
    for name, values in columns.items():
        if values.dtype != object and values.dtype.kind in "fiub":
            width = int(np.prod(values.shape[1:], dtype=np.int64))
            flat = pa.array(np.ascontiguousarray(values).reshape(-1))
            array = pa.FixedSizeListArray.from_arrays(flat, width) if values.ndim > 1 else flat
            metadata = {_SHAPE: json.dumps(list(values.shape[1:])).encode()}
        else:
            array = pa.array([encode(value) for value in values], pa.binary())
            metadata = {_ENCODED: b"1"}
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=metadata))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def from_arrow(table: pa.Table, decode: Callable[[bytes], Any]) -> dict[str, np.ndarray]:
    """The inverse of :func:`to_arrow`: numeric columns as read-only views of the table's
    buffers. Raises ValueError (or an Arrow error) on a table :func:`to_arrow` did not make;
    validate a table read from disk first (``table.validate(full=True)``)."""
    columns = {}
    for field in table.schema:
        array = table.column(field.name).combine_chunks()
        metadata = field.metadata or {}
        if _ENCODED in metadata:
            values = np.empty(len(array), dtype=object)
            values[:] = [decode(blob) for blob in array.to_pylist()]
        elif _SHAPE in metadata:
            shape = json.loads(metadata[_SHAPE])
            flat = array.flatten() if pa.types.is_fixed_size_list(array.type) else array
            values = flat.to_numpy(zero_copy_only=False).reshape(len(array), *shape)
        else:
            raise ValueError(f"column {field.name} was not written by litdesk")
        columns[field.name] = values
    return columns


def content_digest(arrays: Iterable["pa.ChunkedArray | pa.Array"]) -> str:
    """A hash of the values in ``arrays``: their types, lengths, nulls and data.

    It reads the Arrow buffers in place (no copy, about 1 GB/s), and does not depend on how
    the arrays are split into chunks or sliced, so a table grown by appended rows and merged
    into one chunk still hashes its first rows the same.
    """
    digest = hashlib.blake2b(digest_size=20)
    for array in arrays:
        streams = _Streams()
        for chunk in array.chunks if isinstance(array, pa.ChunkedArray) else [array]:
            streams.feed(chunk, "")
        digest.update(f"{array.type}:{len(array)};".encode())
        for path in sorted(streams.hashes):
            digest.update(path.encode() + streams.hashes[path].digest())
    return digest.hexdigest()


class _Streams:
    """One hash per part of an array (nulls, lengths, data, children), fed chunk by chunk,
    so that the parts of consecutive chunks line up as if they were one chunk."""

    def __init__(self) -> None:
        self.hashes: dict[str, "hashlib._Hash"] = {}
        self.rows: dict[str, int] = {}  # rows fed so far under each path

    def update(self, path: str, data: Any) -> None:
        self.hashes.setdefault(path, hashlib.blake2b(digest_size=20)).update(data)

    def feed(self, chunk: pa.Array, path: str) -> None:
        start = self.rows.get(path, 0)
        self.rows[path] = start + len(chunk)
        if chunk.null_count:
            nulls = np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False)) + start
            self.update(path + "/nulls", nulls.astype("<i8").tobytes())
        kind = chunk.type
        if pa.types.is_dictionary(kind):
            self.rows[path] = start
            self.feed(chunk.dictionary_decode(), path)
        elif pa.types.is_boolean(kind):
            self.update(path, chunk.fill_null(False).to_numpy(zero_copy_only=False).tobytes())
        elif pa.types.is_string(kind) or pa.types.is_binary(kind) \
                or pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
            large = pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)
            offsets = _offsets(chunk, np.int64 if large else np.int32)
            self.update(path + "/lengths", np.diff(offsets).astype("<i8").tobytes())
            data = chunk.buffers()[2]
            if data is not None:
                self.update(path, memoryview(data)[int(offsets[0]):int(offsets[-1])])
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            offsets = _offsets(chunk, np.int64 if pa.types.is_large_list(kind) else np.int32)
            self.update(path + "/lengths", np.diff(offsets).astype("<i8").tobytes())
            self.feed(chunk.flatten(), path + "/items")
        elif pa.types.is_fixed_size_list(kind):
            self.feed(chunk.flatten(), path + "/items")
        elif pa.types.is_struct(kind):
            for index, child in enumerate(chunk.flatten()):
                self.feed(child, f"{path}/{index}")
        elif _byte_width(kind):  # numbers, dates, times, decimals
            width = _byte_width(kind)
            self.update(path, memoryview(chunk.buffers()[1])[chunk.offset * width:
                                                             (chunk.offset + len(chunk)) * width])
        else:  # maps, unions, extension types: by their serialised form (its chunking counts)
            self.update(path, pa.RecordBatch.from_arrays([chunk], ["value"]).serialize())


def _byte_width(kind: pa.DataType) -> int:
    """Bytes per value of a fixed-width type stored in one data buffer, else 0."""
    if kind.num_buffers != 2:
        return 0
    try:
        return kind.bit_width // 8 if kind.bit_width % 8 == 0 else 0
    except ValueError:  # not fixed width
        return 0


def _offsets(chunk: pa.Array, dtype: type) -> np.ndarray:
    """The value offsets of a string, binary or list chunk, its slice applied."""
    offsets = np.frombuffer(chunk.buffers()[1], dtype=dtype)
    return offsets[chunk.offset:chunk.offset + len(chunk) + 1]
