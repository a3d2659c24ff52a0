"""The on-disk result cache, content-addressed per example.

A key is a hash of (kind of result, model fingerprint, the example's input values, the
parameters), so a result is found again whatever file or row order the example comes from,
and a run cancelled half-way resumes where it stopped. Values are numpy arrays stored as raw
bytes with a small JSON header: nothing is ever unpickled from the cache. Whole columns of
results (a dataset's predictions) are stored as one entry, an Arrow file memory-mapped when
read (:meth:`ResultCache.get_columns`).

The cache is an optimisation and never stops the app. A damaged database (truncated, garbage,
a bad page) is set aside in ``damaged/`` and a new one started; when writes fail (a full disk,
a read-only folder) new results stay in memory. Either way the user is told once, in one line,
through :attr:`ResultCache.message`. Its size is capped by evicting the least recently used
results.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import numpy as np
import pyarrow as pa
from psygnal import Signal

from litdesk.core import paths
from litdesk.core.columnar import from_arrow, to_arrow
from litdesk.core.settings import Settings

CACHE_FILE = "results.sqlite"
#: Where whole columns of results (a dataset's predictions) are kept, one Arrow file each.
COLUMNS_FOLDER = "columns"
#: Where a damaged database is moved (the last one only), for whoever wants to look at it.
DAMAGED_FOLDER = "damaged"
DEFAULT_MAX_BYTES = 4 * 1024 ** 3
#: The setting (:class:`~litdesk.core.settings.Settings`) that holds the cap, in bytes.
MAX_BYTES_SETTING = "cache/max_bytes"
_LOOKUP_CHUNK = 500
#: A result's last use is written at most once this often (seconds), so reading stays cheap.
_TOUCH_SECONDS = 3600
#: Eviction goes down to this fraction of the cap, so that it runs rarely.
_LOW_WATER = 0.9
#: Columns at least this large get a file of their own, memory-mapped when read.
_FILE_BYTES = 1024 ** 2
_WAL_LIMIT = 4 * 1024 ** 2  # what the write-ahead log is cut back to after a checkpoint
T = TypeVar("T")


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


def _encode_value(value: Any) -> bytes:
    return encode_outputs({"": value})


def _decode_value(blob: bytes) -> Any:
    return decode_outputs(blob)[""]


def _write_arrow_file(path: Path, table: pa.Table) -> None:
    """Write ``table`` as an Arrow file under a temporary name, then move it in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with pa.OSFile(str(temporary), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_columns_file(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Row-aligned arrays as an Arrow file at ``path`` (complete or absent, never half
    written), in the format of the cache's column files; read it with
    :func:`read_columns_file`. Numeric arrays are written without a copy in memory."""
    _write_arrow_file(path, to_arrow(columns, _encode_value))


def read_columns_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays :func:`write_columns_file` wrote, numeric ones as read-only views of the
    memory-mapped file. Raises OSError or an Arrow error on a damaged file."""
    return from_arrow(_read_arrow_file(path), _decode_value)


def _read_arrow_file(path: Path) -> pa.Table:
    """The table of an Arrow file, memory-mapped and validated (a garbled offset must not
    reach a reader)."""
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    table.validate(full=True)
    return table


def saved_max_bytes() -> int:
    """The cap the user chose (Jobs ▸ Cache Size Limit), else the default."""
    try:
        value = int(Settings().get(MAX_BYTES_SETTING, DEFAULT_MAX_BYTES))
    except (OSError, TypeError, ValueError):
        return DEFAULT_MAX_BYTES
    return value if value > 0 else DEFAULT_MAX_BYTES


def _now() -> int:
    """Seconds since the epoch: when a result was last used."""
    return int(time.time())


def _is_damage(error: sqlite3.Error) -> bool:
    """Whether ``error`` says the database file is damaged (rather than full or busy)."""
    name = getattr(error, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) \
        or "malformed" in str(error) or "not a database" in str(error)


def _identity(path: Path) -> Optional[tuple[int, int]]:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


class _Unavailable(Exception):
    """The database cannot serve this call; the user has been told why."""


class ResultCache:
    """A key-value store of encoded results in one SQLite file, safe to share across threads.

    ``max_bytes`` caps the files on disk (default: the saved setting, else 4 GiB); past it
    the least recently used results are evicted. The database is opened on first use, so
    creating a cache never fails.
    """

    #: One line for the user when the cache is damaged or cannot be written, said once per
    #: event. With nothing connected it is printed on stderr (the batch commands).
    message = Signal(str)

    def __init__(self, folder: Optional[Path] = None, max_bytes: Optional[int] = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self.max_bytes = max_bytes or saved_max_bytes()
        self._lock = threading.RLock()
        self._connection: Optional[sqlite3.Connection] = None
        self._opened: Optional[tuple[int, int]] = None  # the file the connection has open
        self._usable = True  # False: no database at all this session (memory only)
        self._writable = True  # False: writes failed; new results go to memory
        self._set_aside_once = False
        self._told: set[str] = set()
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()  # results not written
        self._memory_bytes = 0
        self._memory_columns: OrderedDict[bytes, dict[str, np.ndarray]] = OrderedDict()
        self._touched: dict[bytes, None] = {}  # keys read since their last use was written

    @property
    def folder(self) -> Path:
        """The cache folder (created on first use)."""
        return self._folder or paths.cache_dir()

    @property
    def path(self) -> Path:
        """The database file."""
        return self.folder / CACHE_FILE

    # -- reading and writing ---------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
        """The cached results among ``keys``."""
        found = {}
        for key, blob in self._get_blobs(keys).items():
            try:
                found[key] = decode_outputs(blob)
            except (ValueError, KeyError, TypeError) as error:
                self._drop_garbled(key, error)
        return found

    def put_many(self, items: Iterable[tuple[bytes, dict[str, Any]]]) -> None:
        """Store results (one transaction); in memory when the disk cannot take them."""
        now = _now()
        self._put_blobs([(key, encode_outputs(outputs), now) for key, outputs in items])

    def get_columns(self, key: bytes) -> Optional[dict[str, np.ndarray]]:
        """The row-aligned arrays stored under ``key`` by :meth:`put_columns`, or None.

        Numeric arrays are read-only views; a large entry's are memory-mapped from its file.
        """
        with self._lock:
            held = self._memory_columns.get(key)
            if held is not None:
                self._memory_columns.move_to_end(key)
                return held
        table = self.get_table(key)
        if table is not None:
            return self._columns_of(key, table)
        blob = self._get_blobs([key]).get(key)
        if blob is None:
            return None
        try:
            table = pa.ipc.open_stream(blob).read_all()
            table.validate(full=True)
            return from_arrow(table, _decode_value)
        except (pa.ArrowException, ValueError, KeyError, TypeError) as error:
            self._drop_garbled(key, error)
            return None

    def put_columns(self, key: bytes, columns: dict[str, np.ndarray]) -> None:
        """Store row-aligned arrays as one entry: a large one in a file of its own, a small
        one in the database; in memory when the disk cannot take them."""
        table = to_arrow(columns, _encode_value)
        if table.nbytes < _FILE_BYTES:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            self._put_blobs([(key, sink.getvalue().to_pybytes(), _now())])
            return
        if not self.put_table(key, table):
            with self._lock:
                self._memory_columns[key] = columns
                self._trim_memory()

    def has_table(self, key: bytes) -> bool:
        """Whether a table is stored under ``key`` (without reading or validating it)."""
        return self._column_file(key).is_file()

    def get_table(self, key: bytes) -> Optional[pa.Table]:
        """The Arrow table stored under ``key`` by :meth:`put_table`, memory-mapped and
        validated; None when there is none (a damaged file is set aside)."""
        path = self._column_file(key)
        try:
            table = _read_arrow_file(path)
        except FileNotFoundError:  # never stored, or evicted meanwhile
            return None
        except (pa.ArrowException, OSError, ValueError) as error:
            with self._lock:
                self._set_aside_file(path, error)
            return None
        try:
            if path.stat().st_mtime < _now() - _TOUCH_SECONDS:
                os.utime(path)  # its last use, for eviction
        except OSError:
            pass
        return table

    def put_table(self, key: bytes, table: pa.Table) -> bool:
        """Store ``table`` under ``key`` in an Arrow file of its own, counted against the cap
        like every result; False (nothing stored) when it does not fit or cannot be written."""
        if not self._writable or table.nbytes > self.max_bytes:
            return False
        try:
            _write_arrow_file(self._column_file(key), table)
        except OSError as error:
            with self._lock:
                self._failed(error, True)
            return False
        self.trim()
        return True

    def discard(self, keys: Sequence[bytes]) -> None:
        """Forget the results under ``keys`` (say, the parts of a run once its whole is kept)."""
        with self._lock:
            for key in keys:
                self._memory_columns.pop(key, None)
                blob = self._memory.pop(key, None)
                self._memory_bytes -= len(blob) if blob is not None else 0
            for key in keys:
                self._column_file(key).unlink(missing_ok=True)

            def delete(connection: sqlite3.Connection) -> None:
                with connection:
                    connection.executemany("DELETE FROM results WHERE key = ?",
                                           [(key,) for key in keys])
                connection.executescript("PRAGMA incremental_vacuum;")  # the space back
            try:
                self._run(delete, writing=True)
            except _Unavailable:
                pass

    def _drop_garbled(self, key: bytes, error: Exception) -> None:
        """Forget a value that no longer decodes (its page was damaged), telling the user."""
        self.discard([key])
        with self._lock:
            self._tell_once("garbled", f"A result in the cache was damaged ({error}); it was "
                                       "dropped and is computed again")

    def _get_blobs(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored values among ``keys``, from memory, else from the database."""
        found: dict[bytes, bytes] = {}
        on_disk = []
        with self._lock:
            for key in keys:
                blob = self._memory.get(key)
                if blob is None:
                    on_disk.append(key)
                else:
                    self._memory.move_to_end(key)
                    found[key] = blob
        stale_before = _now() - _TOUCH_SECONDS
        for start in range(0, len(on_disk), _LOOKUP_CHUNK):
            chunk = on_disk[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            try:
                rows = self._run(lambda connection: connection.execute(
                    f"SELECT key, value, used FROM results WHERE key IN ({marks})",
                    chunk).fetchall(), writing=False)
            except _Unavailable:
                break
            for key, value, used in rows:
                found[key] = value
                if used < stale_before:
                    self._touched[key] = None
        self._write_touches()
        return found

    def _put_blobs(self, rows: list[tuple[bytes, bytes, int]]) -> None:
        """Store (key, value, time) rows in one transaction, else in memory."""
        if not rows:
            return

        def write(connection: sqlite3.Connection) -> None:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO results (key, value, used) VALUES (?, ?, ?)", rows)
            self._keep_cap(connection)

        with self._lock:
            try:
                if not self._writable:
                    raise _Unavailable
                self._run(write, writing=True)
            except _Unavailable:
                self._remember(rows)

    def _remember(self, rows: list[tuple[bytes, bytes, int]]) -> None:
        """Keep results in memory (the oldest go past the cap)."""
        for key, blob, _used in rows:
            previous = self._memory.pop(key, None)
            self._memory_bytes += len(blob) - (len(previous) if previous is not None else 0)
            self._memory[key] = blob
        self._trim_memory()

    def _trim_memory(self) -> None:
        while self._memory and self._memory_bytes > self.max_bytes:
            self._memory_bytes -= len(self._memory.popitem(last=False)[1])
        while len(self._memory_columns) > 1 and sum(
                array.nbytes for columns in self._memory_columns.values()
                for array in columns.values()) > self.max_bytes:
            self._memory_columns.popitem(last=False)

    def _write_touches(self) -> None:
        """Record the last use of the results read (batched, at most hourly per result)."""
        with self._lock:
            if not self._touched or not self._writable:
                return
            now, keys = _now(), list(self._touched)
            self._touched.clear()

            def touch(connection: sqlite3.Connection) -> None:
                with connection:
                    connection.executemany("UPDATE results SET used = ? WHERE key = ?",
                                           [(now, key) for key in keys])
            try:
                self._run(touch, writing=True)
            except _Unavailable:
                pass

    # -- the size cap ------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes on disk: the database, its write-ahead log and the column files (the cap
        counts the database's pages, so a few MB of log may come on top)."""
        total = sum(size for _used, size, _path in self._column_files())
        for suffix in ("", "-wal"):
            try:
                total += Path(f"{self.path}{suffix}").stat().st_size
            except OSError:
                pass
        return total

    def trim(self) -> None:
        """Evict down to :attr:`max_bytes` now, after it was lowered (this may take seconds on
        a large cache: run it off the GUI thread)."""
        with self._lock:
            self._trim_memory()
            try:
                self._run(self._keep_cap, writing=True)
            except _Unavailable:
                pass

    def _keep_cap(self, connection: sqlite3.Connection) -> None:
        """Past the cap, evict the least recently used results (rows of the database and
        column files alike) down to the low-water mark."""
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        files = sorted(self._column_files())
        size = connection.execute("PRAGMA page_count").fetchone()[0] * page_size \
            + sum(file_size for _used, file_size, _path in files)
        if size <= self.max_bytes:
            return
        excess, freed, last, doomed = size - _LOW_WATER * self.max_bytes, 0, None, []
        cursor = connection.execute("SELECT used, rowid, length(key) + length(value) "
                                    "FROM results ORDER BY used, rowid")
        while freed < excess:
            rows = cursor.fetchmany(1000) or [(float("inf"), None, 0)]
            for used, rowid, row_bytes in rows:
                while files and files[0][0] <= used and freed < excess:  # older files first
                    doomed.append(files.pop(0)[2])
                    freed += doomed[-1].stat().st_size
                if rowid is None:
                    excess = freed  # nothing older is left
                if freed >= excess:
                    break
                last = used, rowid
                freed += row_bytes + 32  # the record's and the index's overhead, roughly
        cursor.close()
        for path in doomed:
            try:
                path.unlink()
            except OSError:  # memory-mapped by a reader (Windows): the next eviction takes it
                pass
        if last is None:
            return
        with connection:
            connection.execute("DELETE FROM results WHERE used < ? OR used = ? AND rowid <= ?",
                               (last[0], *last))
        if connection.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            connection.executescript("PRAGMA incremental_vacuum;")
        else:  # a cache made before the cap: switched over once, then shrunk incrementally
            connection.executescript("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- column files ------------------------------------------------------------------------

    def _column_file(self, key: bytes) -> Path:
        return self.folder / COLUMNS_FOLDER / f"{key.hex()}.arrow"

    def _column_files(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every column file."""
        found = []
        try:
            with os.scandir(self.folder / COLUMNS_FOLDER) as entries:
                for entry in entries:
                    if entry.name.endswith(".arrow"):
                        try:
                            status = entry.stat()
                        except OSError:  # evicted meanwhile
                            continue
                        found.append((status.st_mtime, status.st_size, Path(entry.path)))
        except OSError:
            pass
        return found

    def _columns_of(self, key: bytes, table: pa.Table) -> Optional[dict[str, np.ndarray]]:
        """The arrays of a column file's table; one litdesk did not write is set aside (None)."""
        try:
            return from_arrow(table, _decode_value)
        except (pa.ArrowException, ValueError, KeyError, TypeError) as error:
            with self._lock:
                self._set_aside_file(self._column_file(key), error)
            return None

    def _set_aside_file(self, path: Path, error: Exception) -> None:
        damaged = self.folder / DAMAGED_FOLDER
        try:
            damaged.mkdir(exist_ok=True)
            os.replace(path, damaged / path.name)
        except OSError:
            path.unlink(missing_ok=True)
        self._tell_once("damaged file", f"A file of the result cache was damaged ({error}); it "
                                        f"was set aside in {damaged} and its results are "
                                        "computed again")

    # -- the database and its troubles -------------------------------------------------------

    def _run(self, work: Callable[[sqlite3.Connection], T], writing: bool) -> T:
        """``work`` on the database. A damaged file is set aside and the work done again on a
        new one; any other failure is told once and raises :class:`_Unavailable`."""
        with self._lock:
            while True:
                if not self._usable:
                    raise _Unavailable
                opening = self._connection is None
                try:
                    if opening:
                        self._connection = self._connect()
                    return work(self._connection)
                except sqlite3.Error as error:
                    if _is_damage(error) and self._set_aside(error):
                        continue
                    self._failed(error, writing or opening)
                    raise _Unavailable from error
                except OSError as error:  # the folder cannot be made
                    self._failed(error, True)
                    raise _Unavailable from error

    def _connect(self) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        try:
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            # 64 MiB of pages: evicting from a million rows touches index pages all over
            connection.execute("PRAGMA cache_size=-65536")
            with connection:
                connection.execute("CREATE TABLE IF NOT EXISTS results (key BLOB PRIMARY KEY, "
                                   "value BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0)")
                names = {row[1] for row in connection.execute("PRAGMA table_info(results)")}
                if "used" not in names:  # a cache made before the cap
                    connection.execute(
                        "ALTER TABLE results ADD COLUMN used INTEGER NOT NULL DEFAULT 0")
                connection.execute("CREATE INDEX IF NOT EXISTS results_by_use ON results (used)")
        except BaseException:
            connection.close()
            raise
        self._opened = _identity(self.path)
        return connection

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
            self._connection = None

    def _set_aside(self, error: sqlite3.Error) -> bool:
        """Move the damaged database into ``damaged/``; True when a new one may be started."""
        self._close()
        self._touched.clear()
        if self._set_aside_once:  # damaged again: the disk itself may be failing
            return False
        self._set_aside_once = True
        damaged = self.folder / DAMAGED_FOLDER
        still_ours = self._opened is None or _identity(self.path) == self._opened
        try:
            if still_ours:  # not already replaced by another litdesk
                damaged.mkdir(exist_ok=True)
                for suffix in ("", "-wal", "-shm"):
                    source = Path(f"{self.path}{suffix}")
                    if source.exists():
                        os.replace(source, damaged / source.name)
        except OSError as move_error:
            self._failed(move_error, True)
            return False
        self._opened = None
        self._tell(f"The result cache was damaged ({error}); it was set aside in {damaged} "
                   "and a new one started, so results are computed again when needed")
        return True

    def _failed(self, error: Exception, writing: bool) -> None:
        """Tell the user once; after a failed write (or open), new results stay in memory."""
        reason = getattr(error, "strerror", None) or str(error)
        if writing:
            self._writable = False
            if self._connection is None:
                self._usable = False
            self._tell_once("write", f"The result cache in {self.folder} cannot be written "
                                     f"({reason}); new results stay in memory until litdesk "
                                     "closes")
        else:
            self._tell_once("read", f"The result cache in {self.folder} cannot be read "
                                    f"({reason}); results are computed again")

    def _tell_once(self, topic: str, text: str) -> None:
        if topic not in self._told:
            self._told.add(topic)
            self._tell(text)

    def _tell(self, text: str) -> None:
        if len(self.message):
            self.message.emit(text)
        else:
            print(f"litdesk: {text}", file=sys.stderr)

    # -- clearing and closing ----------------------------------------------------------------

    def clear(self) -> None:
        """Forget every result (the damaged or unwritable database too) and start afresh."""
        with self._lock:
            self._close()
            self._memory.clear()
            self._memory_bytes = 0
            self._memory_columns.clear()
            self._touched.clear()
            self._usable = self._writable = True
            self._told.clear()
            self._opened = None
            for _used, _size, path in self._column_files():
                try:
                    path.unlink()
                except OSError:  # memory-mapped by a reader (Windows): evicted later
                    pass
            try:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError:  # held open elsewhere (Windows): empty it instead
                try:
                    self._run(lambda connection: connection.executescript(
                        "DELETE FROM results; VACUUM;"), writing=True)
                except _Unavailable:
                    pass

    def close(self) -> None:
        """Write the pending last-use times and close the database."""
        self._write_touches()
        with self._lock:
            self._close()
