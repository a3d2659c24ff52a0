"""Dataset loading: tabular files and Hugging Face ``datasets`` folders into :class:`Dataset`.

``iter_load_dataset`` is a job (see :mod:`litdesk.core.jobs`): it yields :class:`Progress`
while pyarrow's multithreaded readers parse the file, then infers a spec. Every problem with
the input ends as one :class:`DatasetLoadError` whose text names the file and, where it can,
the line and column.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import IO, Any, Optional, Union

import charset_normalizer
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from charset_normalizer.md import mess_ratio

from litdesk.api import (
    Boolean,
    CategoryLabel,
    Dataset,
    Embeddings,
    FieldType,
    ImageBytes,
    ImagePath,
    Scalar,
    Spec,
    TextSegment,
    Tokens,
)
from litdesk.core.jobs import Job, Progress, run_job
from litdesk.core.cache import ResultCache
from litdesk.core.plugins import Contribution, discover_plugins
from litdesk.core.snapshots import read_snapshot, snapshot_key, write_snapshot

PathLike = Union[str, "os.PathLike[str]"]

_DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
_ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    *_DELIMITED_SUFFIXES, ".json", *_JSON_LINES_SUFFIXES, ".parquet", *_ARROW_SUFFIXES)
"""File name endings :func:`load_dataset` reads (besides ``datasets`` folders)."""

#: Lists and objects nested deeper than this are refused: parsers and converters recurse once
#: per level, and tens of thousands of levels overflow the stack. Data nests a few levels;
#: common JSON parsers stop somewhere between 100 and 1,000.
MAX_NESTING = 100
#: The most list items one cell may hold, counted at every level: the window turns a cell into
#: Python objects (about 60 bytes an item) to show it.
MAX_CELL_ITEMS = 1_000_000
#: The most bytes of text or binary one cell may hold.
MAX_CELL_BYTES = 64 * 1024 * 1024


class DatasetLoadError(Exception):
    """A file or folder could not be loaded as a dataset.

    ``path`` is what was opened, ``line`` the 1-based line of the problem (or None),
    ``column`` a column name or 1-based character position (or None), and ``message`` what
    went wrong. ``str(error)`` is one line: ``bad.csv, line 7: expected 3 fields, found 4``.
    """

    def __init__(self, path: PathLike, message: str, line: Optional[int] = None,
                 column: Union[str, int, None] = None) -> None:
        super().__init__(path, message, line, column)
        self.path = Path(path)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = [display_name(self.path.name or str(self.path))]
        if self.line is not None:
            where.append(f"line {self.line}")
        if isinstance(self.column, str):
            where.append(f"column {self.column!r}")
        elif self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


def display_name(name: str) -> str:
    """``name`` as text that can be shown and encoded anywhere: the bytes of a file name that
    is not UTF-8 (which Python holds as surrogate escapes) become U+FFFD."""
    try:
        raw = name.encode(_UTF8, "surrogateescape")
    except UnicodeEncodeError:  # surrogates that no file name decoding made
        raw = name.encode(_UTF8, "replace")
    return raw.decode(_UTF8, "replace")


def load_dataset(path: PathLike) -> Dataset:
    """Load the file or ``datasets`` folder at ``path`` on this thread.

    Raises :class:`DatasetLoadError` (and nothing else) when it cannot.
    """
    return run_job(iter_load_dataset(path))


def iter_load_dataset(path: PathLike, cache: Optional[ResultCache] = None) -> Job[Dataset]:
    """Job that loads ``path``; yields :class:`Progress`, returns a :class:`Dataset`.

    Reads CSV, TSV, JSON (an array of objects or an object of columns), JSON Lines,
    Parquet, Arrow IPC / Feather, and folders written by ``datasets``' ``save_to_disk``.
    The spec comes from :func:`infer_spec`; columns are cast as :func:`conform_table` says.
    Raises :class:`DatasetLoadError` (and nothing else) when it cannot load ``path``.
    Closing the job while a file is being parsed stops the parse at its next block.
    A plugin's dataset loader whose patterns accept ``path`` is asked first. With a ``cache``,
    a file opened before and unchanged since is mapped from litdesk's copy of what it loaded
    (:mod:`litdesk.core.snapshots`), and a file loaded now is kept there.
    """
    path = Path(path)
    try:
        plugin_loader = discover_plugins().find("dataset_loaders", path) if path.exists() \
            else None
        if plugin_loader is not None:
            return (yield from _load_with_plugin(path, plugin_loader))
        return (yield from _load(path, cache))
    except DatasetLoadError:
        raise
    except MemoryError as error:
        raise DatasetLoadError(path, "not enough memory to load it") from error
    except UnicodeDecodeError as error:
        raise DatasetLoadError(path, _UNDECODABLE) from error
    except Exception as error:  # whatever the input provokes, the caller gets one error type
        raise DatasetLoadError(path, _short_message(error)) from error


#: Files at least this large show their first rows while the rest loads.
PREVIEW_MIN_BYTES = 16 * 1024 * 1024
_PREVIEW_BYTES = 1024 * 1024


def wants_preview(path: PathLike, cache: Optional[ResultCache] = None) -> bool:
    """Whether opening ``path`` is slow enough to show its first rows first: a large CSV, TSV
    or JSON Lines file that has no unchanged copy in ``cache`` to reopen from."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _DELIMITED_SUFFIXES and suffix not in _JSON_LINES_SUFFIXES:
        return False
    try:
        if not path.is_file() or path.stat().st_size < PREVIEW_MIN_BYTES:
            return False
    except OSError:
        return False
    key = snapshot_key(path) if cache is not None else None
    return key is None or not cache.has_table(key)


def iter_load_preview(path: PathLike, max_bytes: Optional[int] = None
                      ) -> Job[Optional[Dataset]]:
    """Job that reads only the first ``max_bytes`` (1 MB by default) of a CSV, TSV or JSON Lines file, cut at
    its last whole line, exactly as :func:`iter_load_dataset` reads the whole; None when that
    head cannot be read on its own (a quoted cell running past the cut, say): the full load
    then reports what is wrong with the file, if anything."""
    path = Path(path)
    with open(path, "rb") as file:
        head = file.read(max_bytes or _PREVIEW_BYTES)
    head = head[:head.rfind(b"\n") + 1]
    if not head:
        return None
    folder = Path(tempfile.mkdtemp(prefix="litdesk-preview-"))
    try:
        part = folder / path.name
        part.write_bytes(head)
        table = yield from _read_file(part, path.suffix.lower())
        if table.num_columns == 0 or table.num_rows == 0:
            return None
        table = _with_unique_column_names(_without_view_types(table))
        yield from _check_cells(path, table)
        spec = yield from _iter_infer_spec(table)
        return Dataset(conform_table(table, spec), spec, name=display_name(path.stem),
                       path=path)
    except DatasetLoadError:
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def infer_spec(table: pa.Table) -> Spec:
    """Guess a field type for each column of ``table`` from its Arrow type and values.

    - text: :class:`ImagePath` when most of the first 1,000 values end in an image suffix;
      :class:`CategoryLabel` (vocab: sorted distinct values) when there are at most 32
      distinct values and at most 5% as many as rows, or when the column is named like a
      label (``label``, ``target``, ``class``, ``y``, ``gold``, ``category``, ``*_label``…)
      and has at most 100; otherwise :class:`TextSegment`.
    - integers named like a label with at most 100 distinct values: :class:`CategoryLabel`
      whose vocab holds the numbers as strings, in numeric order (:func:`conform_table`
      then casts the column to string so values and vocab match); other numbers:
      :class:`Scalar` with the column's min and max.
    - bool: :class:`Boolean`; dictionary-encoded text: :class:`CategoryLabel` in the
      dictionary's order; all-null columns, dates and times: :class:`TextSegment`.
    - bytes: :class:`ImageBytes` when most start with a PNG, JPEG, GIF or WEBP signature,
      :class:`TextSegment` when they are all UTF-8 text.
    - lists of numbers: :class:`Embeddings`; lists of strings: :class:`Tokens`.

    Columns no field type fits (structs, maps, other bytes) are left out of the spec; they
    stay in the table.
    """
    return run_job(_iter_infer_spec(table))


_COLUMNS_PER_PROGRESS = 100


def _iter_infer_spec(table: pa.Table) -> Job[Spec]:
    """:func:`infer_spec` as a job, yielding progress (a chance to cancel) every 100 columns."""
    spec: Spec = {}
    message = f"Inferring column types of {table.num_rows:,} rows"
    for index, (name, column) in enumerate(zip(table.column_names, table.columns)):
        if index % _COLUMNS_PER_PROGRESS == 0:
            yield Progress(index, table.num_columns, message)
        field = _infer_field(name, column, table.num_rows)
        if field is not None:
            spec[name] = field
    yield Progress(table.num_columns, table.num_columns, message)
    return spec


def conform_table(table: pa.Table, spec: Spec) -> pa.Table:
    """``table`` with the columns that ``spec`` calls text-like cast to Arrow strings.

    Columns typed :class:`TextSegment`, :class:`CategoryLabel` or :class:`ImagePath`
    whose values are numbers, dates, dictionary codes or bytes become ``string`` columns;
    all other columns are returned as they are. Raises ``pyarrow.ArrowException`` when a
    column cannot be cast (bytes that are not UTF-8, lists).
    """
    text_like = (TextSegment, CategoryLabel, ImagePath)
    positions = _first_positions(table.column_names)
    types = table.schema.types
    replaced = {}
    for name, field in spec.items():
        index = positions[name]
        if isinstance(field, text_like) and not _is_plain_text(types[index]):
            replaced[index] = table.column(index).cast(pa.string())
    return _with_columns(table, replaced)


def _first_positions(names: list[str]) -> dict[str, int]:
    """Each name -> the position where it first occurs."""
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, index)
    return positions


def _with_columns(table: pa.Table, replaced: dict[int, pa.ChunkedArray]) -> pa.Table:
    """``table`` with the columns at the given positions replaced, built once (replacing them
    one by one copies the schema each time: quadratic in the number of columns)."""
    if not replaced:
        return table
    schema = table.schema
    fields = [schema.field(index).with_type(replaced[index].type) if index in replaced
              else schema.field(index) for index in range(table.num_columns)]
    columns = [replaced.get(index, column) for index, column in enumerate(table.columns)]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.metadata))


# --- Dispatch ---------------------------------------------------------------------------


def _load_with_plugin(path: Path, loader: Contribution) -> Job[Dataset]:
    """Call a plugin's ``load(path)``; a returned Arrow table gets an inferred spec."""
    yield Progress(0, 1, f"Reading {path.name} ({loader.plugin} plugin)")
    loaded = loader.load_callable()(path)
    if isinstance(loaded, pa.Table):
        yield from _check_cells(path, loaded)
        spec = yield from _iter_infer_spec(loaded)
        loaded = Dataset(conform_table(loaded, spec), spec, name=display_name(path.stem),
                         path=path)
    if not isinstance(loaded, Dataset):
        raise DatasetLoadError(path, f"the {loader.plugin} plugin returned a "
                                     f"{type(loaded).__name__}, not a dataset")
    yield Progress(1, 1, f"Loaded {len(loaded):,} rows")
    return loaded


def _load(path: Path, cache: Optional[ResultCache] = None) -> Job[Dataset]:
    if not path.exists():
        raise DatasetLoadError(path, "file not found")
    key = snapshot_key(path) if cache is not None else None
    if key is not None:
        yield Progress(0, 1, f"Opening {display_name(path.name)}")
        kept = read_snapshot(cache, path)
        if kept is not None:
            yield Progress(1, 1, f"Loaded {len(kept):,} rows (unchanged since last opened)")
            return kept
    if path.is_dir():
        table, name, overrides = yield from _read_datasets_folder(path)
    else:
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            kind = f"file type {path.suffix!r}" if suffix else "file without an extension"
            raise DatasetLoadError(
                path, f"unsupported {kind} (supported: {', '.join(SUPPORTED_SUFFIXES)}, "
                      "or a datasets folder)")
        if path.stat().st_size == 0:
            raise DatasetLoadError(path, "empty file")
        yield Progress(0, path.stat().st_size, f"Reading {path.name}")
        table = yield from _read_file(path, suffix)
        name, overrides = display_name(path.stem), {}
    if table.num_columns == 0:
        raise DatasetLoadError(path, "no columns")
    table = _with_unique_column_names(_without_view_types(table))
    yield from _check_cells(path, table)
    spec = {**(yield from _iter_infer_spec(table)), **overrides}
    dataset = Dataset(conform_table(table, spec), spec, name=name, path=path)
    if key is not None:
        yield Progress(0, 1, f"Keeping a copy of {display_name(path.name)} for the next open")
        write_snapshot(cache, key, path, dataset)
    yield Progress(1, 1, f"Loaded {len(dataset):,} rows")
    return dataset


def _read_file(path: Path, suffix: str) -> Job[pa.Table]:
    if suffix in _DELIMITED_SUFFIXES:
        return (yield from _read_delimited(path, _DELIMITED_SUFFIXES[suffix]))
    if suffix == ".json":
        return (yield from _read_json_document(path))
    if suffix in _JSON_LINES_SUFFIXES:
        return (yield from _read_json_lines(path))
    if suffix == ".parquet":
        return (yield from _read_parquet(path))
    return (yield from _read_arrow_ipc(path))


# --- Text encodings ----------------------------------------------------------------------

_SAMPLE_BYTES = 64 * 1024
_UNDECODABLE = "cannot decode the text (mixed or unknown encoding)"
_UTF8 = "utf-8"
_BOMS = (  # UTF-32 first: its little-endian BOM begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF8, _UTF8),
)


def _read_sample(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(_SAMPLE_BYTES)


def _detect_encoding(path: Path, sample: bytes) -> str:
    """The Python codec of the text that starts with ``sample``: ``utf-8`` when it is UTF-8."""
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if b"\x00" in sample:
        raise DatasetLoadError(path, "not a text file")
    try:
        codecs.getincrementaldecoder(_UTF8)().decode(sample, final=False)
        return _UTF8
    except UnicodeDecodeError:
        return _guess_legacy_encoding(path, sample)


def _guess_legacy_encoding(path: Path, sample: bytes) -> str:
    """The most plausible non-UTF-8 codec for ``sample``, preferring Windows-1252 on a tie.

    charset_normalizer often cannot tell Western European codecs apart on short samples
    (it may answer cp1250 or cp1006 for Latin-1 text); cp1252 is by far the most common of
    them in datasets, so it wins whenever it decodes ``sample`` with no more mess.
    """
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise DatasetLoadError(path, "not a text file")
    try:
        if mess_ratio(sample.decode("cp1252")) <= best.chaos:
            return "cp1252"
    except UnicodeDecodeError:
        pass
    return best.encoding


def _python_codec(encoding: str) -> str:
    """The codec that also drops a UTF-8 byte-order mark, which pyarrow skips by itself."""
    return "utf-8-sig" if encoding == _UTF8 else encoding


def _decode_text(path: Path, data: bytes) -> str:
    """``data`` as text: UTF-8 when it is, else in the codec detected around the first bad byte."""
    encoding = _detect_encoding(path, data[:_SAMPLE_BYTES])
    if encoding == _UTF8:
        try:
            return data.decode(_python_codec(encoding))
        except UnicodeDecodeError as error:
            window = data[max(0, error.start - _SAMPLE_BYTES // 2):error.start + _SAMPLE_BYTES // 2]
            encoding = _guess_legacy_encoding(path, window)
    return data.decode(encoding)


# --- Reading in the background with progress by bytes -----------------------------------

_PROGRESS_INTERVAL_S = 0.1
_CHUNK_BYTES = 1024 * 1024


def _file_chunks(path: Path) -> Iterable[bytes]:
    """The bytes of ``path``, a megabyte at a time (read, not memory-mapped: a file cut short
    under a mapping kills the process with SIGBUS)."""
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            yield chunk


def _read_with_progress(path: Path, parse: Callable[[pa.NativeFile], pa.Table]) -> Job[pa.Table]:
    """Run ``parse`` on ``path`` opened as an Arrow file on a helper thread; yield bytes read.

    The parser runs at full (multithreaded) speed while this generator polls the file
    position. If the job is closed, the file is closed under the parser, whose next read
    fails, and the helper thread ends before this returns.
    """
    total = path.stat().st_size
    outcome: dict[str, Any] = {}
    source = pa.OSFile(str(path))

    def parse_into_outcome() -> None:
        try:
            outcome["table"] = parse(source)
        except BaseException as error:  # handed over to the job's thread below
            outcome["error"] = error

    worker = threading.Thread(target=parse_into_outcome, name=f"litdesk-read-{path.name}",
                              daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(_PROGRESS_INTERVAL_S)
            yield Progress(min(source.tell(), total), total, f"Reading {path.name}")
    finally:
        source.close()
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["table"]


# --- CSV / TSV ----------------------------------------------------------------------------


def _read_delimited(path: Path, default_delimiter: str) -> Job[pa.Table]:
    sample = _read_sample(path)
    whole_file = path.stat().st_size <= len(sample)
    encoding = _detect_encoding(path, sample)
    if whole_file:
        text = _decode_text(path, sample)
        if not text.strip():
            raise DatasetLoadError(path, "empty file")
    else:
        decoder = codecs.getincrementaldecoder(_python_codec(encoding))(errors="replace")
        text = decoder.decode(sample)
    delimiter = _sniff_delimiter(text) if default_delimiter == "," else default_delimiter
    reader = _DelimitedReader(path, delimiter, encoding, text if whole_file else None)

    table = yield from reader.read_diagnosed(quoting=True)
    if reader.in_memory_text is None and encoding == _UTF8 and _has_binary_column(table):
        # pyarrow turns columns with non-UTF-8 bytes into binary: the file is in a legacy codec.
        reader.encoding = _guess_legacy_encoding(path, sample + _undecodable_values(table))
        table = yield from reader.read_diagnosed(quoting=True)
    return table


def _sniff_delimiter(text: str) -> str:
    """``,`` unless the header line has none but has semicolons, tabs or pipes."""
    header = text.lstrip("\ufeff").partition("\n")[0]
    if "," in header:
        return ","
    counts = {candidate: header.count(candidate) for candidate in ";\t|"}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


class _DelimitedReader:
    """Reads one delimited file with pyarrow and, when that fails, finds the bad line."""

    def __init__(self, path: Path, delimiter: str, encoding: str,
                 in_memory_text: Optional[str]) -> None:
        self.path = path
        self.delimiter = delimiter
        self.encoding = encoding
        #: The decoded file when it is small enough to parse from memory.
        self.in_memory_text = in_memory_text
        self._has_quotes = '"' in in_memory_text if in_memory_text is not None else None

    def read_diagnosed(self, quoting: bool) -> Job[pa.Table]:
        """The parsed table, or a :class:`DatasetLoadError` naming the first bad line.

        TSV files are retried without quoting when quoting fails: many are written with
        quote characters that are not meant as quotes.
        """
        try:
            table = yield from self._read(quoting)
            problem = self._find_problem() if self._ends_inside_quotes(table) else None
        except pa.ArrowInvalid as error:
            problem = self._find_problem() or DatasetLoadError(self.path, _short_message(error))
        if problem is None:
            return table
        if self.delimiter == "\t" and quoting:
            try:
                return (yield from self._read(quoting=False))
            except pa.ArrowInvalid:
                pass
        raise problem

    def _read(self, quoting: bool) -> Job[pa.Table]:
        # Quoted newlines need pyarrow's slower quote-aware chunking; skip it when no quote
        # character occurs in the file at all.
        newlines_in_values = quoting and self._file_has_quotes()
        parse_options = pa_csv.ParseOptions(
            delimiter=self.delimiter, quote_char='"' if quoting else False,
            newlines_in_values=newlines_in_values)
        if self.in_memory_text is not None:
            data = self.in_memory_text
            if not data.endswith(("\n", "\r")):
                data += "\n"  # pyarrow reads a lone header line only when it ends with one
            table = pa_csv.read_csv(io.BytesIO(data.encode(_UTF8)), parse_options=parse_options)
            yield Progress(1, 1, f"Read {self.path.name}")
            return table
        read_options = pa_csv.ReadOptions(encoding=self.encoding)
        return (yield from _read_with_progress(self.path, lambda source: pa_csv.read_csv(
            source, read_options=read_options, parse_options=parse_options)))

    def _file_has_quotes(self) -> bool:
        if self._has_quotes is None:
            self._has_quotes = any(b'"' in chunk for chunk in _file_chunks(self.path))
        return self._has_quotes

    @staticmethod
    def _ends_inside_quotes(table: pa.Table) -> bool:
        """Whether the last value ends in a line break, as when a quote is never closed.

        An unclosed quote in the last column swallows the rest of the file, line breaks
        included, and pyarrow accepts that; this cheap check decides whether to look closer.
        """
        if table.num_rows == 0 or not _is_plain_text(table.schema.types[-1]):
            return False
        last = table.column(table.num_columns - 1)[-1].as_py()
        return last is not None and last.endswith(("\n", "\r"))

    def _open_text(self) -> IO[str]:
        if self.in_memory_text is not None:
            return io.StringIO(self.in_memory_text, newline="")
        return open(self.path, encoding=_python_codec(self.encoding), errors="replace", newline="")

    def _find_problem(self) -> Optional[DatasetLoadError]:
        """The first ragged row or an unclosed quote, found with Python's csv module.

        The csv module is as lenient as pyarrow (text after a closing quote is kept). A quote
        that is never closed swallows the rest of the file into the last row, so only that
        row is checked for one.
        """
        old_limit = csv.field_size_limit(2**31 - 1)  # an unclosed quote makes a huge field
        row_start = last_row_start = 1
        ragged_last_row = None
        try:
            with self._open_text() as text:
                reader = csv.reader(text, delimiter=self.delimiter)
                expected = len(next(reader, []))
                row_start = reader.line_num + 1
                for row in reader:
                    last_row_start, row_start = row_start, reader.line_num + 1
                    if row and len(row) != expected:
                        ragged = DatasetLoadError(
                            self.path, f"expected {expected} fields, found {len(row)}",
                            line=last_row_start)
                        if next(reader, None) is not None:
                            return ragged
                        ragged_last_row = ragged
        except csv.Error as error:
            return DatasetLoadError(self.path, str(error), line=row_start)
        finally:
            csv.field_size_limit(old_limit)
        opened_at = self._unclosed_quote_line(last_row_start)
        if opened_at is not None:
            return DatasetLoadError(self.path, "quote is never closed", line=opened_at)
        return ragged_last_row

    def _unclosed_quote_line(self, row_start: int) -> Optional[int]:
        """The line where a quote opened at or after ``row_start`` is left open at the end."""
        opened_at = None
        with self._open_text() as text:
            for number, line in enumerate(text, start=1):
                if number >= row_start and line.count('"') % 2:
                    opened_at = number if opened_at is None else None
        return opened_at


def _has_binary_column(table: pa.Table) -> bool:
    return any(pa.types.is_binary(kind) for kind in table.schema.types)


def _undecodable_values(table: pa.Table, limit: int = _SAMPLE_BYTES) -> bytes:
    """About ``limit`` bytes of the values that are not UTF-8, one per line."""
    found: list[bytes] = []
    size = 0
    for column in table.columns:
        if pa.types.is_binary(column.type):
            for value in column.to_pylist():
                if value is not None and not _is_utf8(value):
                    found.append(value)
                    size += len(value) + 1
                    if size >= limit:
                        return b"\n".join(found)
    return b"\n".join(found)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode(_UTF8)
    except UnicodeDecodeError:
        return False
    return True


# --- JSON -----------------------------------------------------------------------------------

_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _read_json_lines(path: Path) -> Job[pa.Table]:
    """JSON Lines through pyarrow's reader; through Python's json when that fails.

    pyarrow stops at mixed value types and does not say on which line a syntax error is;
    the Python pass accepts the first and reports the second.
    """
    sample = _read_sample(path)
    if _detect_encoding(path, sample) == _UTF8 and sample.strip():
        yield from _refuse_deep_nesting(path, _file_chunks(path), path.stat().st_size,
                                        per_line=True)
        try:
            return (yield from _read_json_pieces(path))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return (yield from _read_json_document(path))


_JSON_PIECE_BYTES = 16 * 1024 * 1024


def _read_json_pieces(path: Path) -> Job[pa.Table]:
    """JSON Lines read by pyarrow in pieces of whole lines, each parsed as one block, on a
    pool of threads, then joined (a column null or missing in one piece takes its type from
    the others; raises ``ArrowTypeError`` when pieces disagree on a type).

    pyarrow's own blocks are avoided: a column that is text in one block and lists in the
    next kills the process (pyarrow 26) instead of raising an error. Closing the job stops
    the pieces not yet started and waits for the running ones.
    """
    total = path.stat().st_size
    pieces = _line_pieces(path, total)
    tables, done = [], 0
    with ThreadPoolExecutor(max_workers=min(len(pieces), os.cpu_count() or 1),
                            thread_name_prefix=f"litdesk-read-{path.name}") as pool:
        futures = [pool.submit(_parse_json_piece, path, *piece) for piece in pieces]
        try:
            for future, (start, end) in zip(futures, pieces):
                while True:
                    try:
                        tables.append(future.result(timeout=_PROGRESS_INTERVAL_S))
                        break
                    except FutureTimeout:
                        yield Progress(done, total, f"Reading {path.name}")
                done += end - start
                yield Progress(done, total, f"Reading {path.name}")
        finally:
            for future in futures:
                future.cancel()
    tables = [table for table in tables if table.num_columns] or tables[:1]
    return pa.concat_tables(tables, promote_options="permissive")


def _line_pieces(path: Path, total: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of about :data:`_JSON_PIECE_BYTES` covering ``path``, each
    ending at a line break (or the end of the file)."""
    bounds = [0]
    with open(path, "rb") as file:
        while bounds[-1] + _JSON_PIECE_BYTES < total:
            file.seek(bounds[-1] + _JSON_PIECE_BYTES)
            while chunk := file.read(_SAMPLE_BYTES):
                found = chunk.find(b"\n")
                if found >= 0:
                    bounds.append(file.tell() - len(chunk) + found + 1)
                    break
            else:
                break
    if bounds[-1] < total:
        bounds.append(total)
    return list(zip(bounds, bounds[1:]))


def _parse_json_piece(path: Path, start: int, end: int) -> pa.Table:
    with open(path, "rb") as file:
        file.seek(start)
        data = file.read(end - start)
    options = pa_json.ReadOptions(use_threads=False, block_size=max(len(data), 1))
    return pa_json.read_json(pa.BufferReader(data), read_options=options)


def _read_json_document(path: Path) -> Job[pa.Table]:
    """An array of objects, an object of columns, or a sequence of objects (JSON Lines)."""
    text = _decode_text(path, path.read_bytes())
    if not text.strip():
        raise DatasetLoadError(path, "empty file")
    yield from _refuse_deep_text(path, text)
    yield Progress(1, 3, f"Parsing {path.name}")
    values, starts = _parse_json_values(path, text)
    yield Progress(2, 3, f"Building columns of {path.name}")
    if len(values) == 1 and isinstance(values[0], list):
        return _table_from_records(path, values[0], line_of=None)
    if len(values) == 1 and isinstance(values[0], dict) and path.suffix.lower() == ".json":
        return _table_from_columns(path, values[0])
    return _table_from_records(path, values,
                               line_of=lambda index: text.count("\n", 0, starts[index]) + 1)


def _parse_json_values(path: Path, text: str) -> tuple[list[Any], list[int]]:
    """The JSON values in ``text`` separated by whitespace, and where each starts."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    starts: list[int] = []
    position = _JSON_WHITESPACE.match(text).end()
    while position < len(text):
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DatasetLoadError(path, error.msg, line=error.lineno,
                                   column=error.colno) from error
        values.append(value)
        starts.append(position)
        position = _JSON_WHITESPACE.match(text, end).end()
    return values, starts


def _refuse_deep_nesting(path: Path, chunks: Iterable[bytes], total: int,
                         per_line: bool) -> Job[None]:
    """Raise a DatasetLoadError naming the line where the JSON text in ``chunks`` nests more
    than :data:`MAX_NESTING` deep, before a parser recurses into it."""
    scanner = _NestingScanner(per_line)
    done = 0
    for chunk in chunks:
        line = scanner.feed(chunk)
        if line is not None:
            raise DatasetLoadError(
                path, f"nested deeper than litdesk reads ({MAX_NESTING} levels)", line=line)
        done += len(chunk)
        yield Progress(done, total, f"Checking {path.name}")


def _refuse_deep_text(path: Path, text: str) -> Job[None]:
    """:func:`_refuse_deep_nesting` for a JSON document decoded from any encoding."""
    encoded = memoryview(text.encode(_UTF8, "surrogatepass"))
    chunks = (encoded[start:start + _CHUNK_BYTES]
              for start in range(0, len(encoded), _CHUNK_BYTES))
    yield from _refuse_deep_nesting(path, chunks, len(encoded), per_line=False)


_QUOTE, _BACKSLASH, _OPEN, _CLOSE, _NEWLINE = 1, 2, 3, 4, 5
_JSON_BYTE_KINDS = np.zeros(256, np.uint8)
_JSON_BYTE_KINDS[list(b'"\\[{]}\n')] = (_QUOTE, _BACKSLASH, _OPEN, _OPEN, _CLOSE, _CLOSE, _NEWLINE)


class _NestingScanner:
    """Follows the nesting depth of JSON text fed in chunks, without parsing it: numpy over
    the positions of the bytes that matter (quotes, backslashes, brackets, line breaks).

    Brackets inside strings do not count. A string never spans lines in valid JSON, so every
    line starts outside one; with ``per_line`` (JSON Lines) every line also starts at depth 0.
    The text must be UTF-8, where no multi-byte character holds one of those bytes.
    """

    def __init__(self, per_line: bool) -> None:
        self.per_line = per_line
        self.line = 1  # the line the next chunk starts on
        self.depth = 0  # the depth where the text so far ends
        self.in_string = False  # whether the text so far ends inside a string
        self.backslashes = 0  # how many backslashes the text so far ends with

    def feed(self, chunk: bytes) -> Optional[int]:
        """The line where ``chunk`` first goes deeper than :data:`MAX_NESTING`, else None."""
        data = np.frombuffer(chunk, np.uint8)
        if self.per_line:
            breaks = np.flatnonzero(data == ord("\n"))
            if len(breaks) and self._shallow_lines(data, breaks):
                self.line += len(breaks)
                self.depth, self.in_string, self.backslashes = 0, False, 0
                return self._scan(data[breaks[-1] + 1:])
        return self._scan(data)

    def _shallow_lines(self, data: np.ndarray, breaks: np.ndarray) -> bool:
        """Whether no line in ``data`` opens more brackets than the limit (a line of JSON Lines
        cannot nest deeper than that), counting those its start opened in earlier chunks."""
        openers = np.flatnonzero((data == ord("[")) | (data == ord("{")))
        per_line = np.diff(np.searchsorted(openers, breaks), prepend=0)
        per_line[0] += self.depth
        return int(per_line.max()) <= MAX_NESTING

    def _scan(self, data: np.ndarray) -> Optional[int]:
        """:meth:`feed` for every byte, from the state where the text before ``data`` ended."""
        positions = np.flatnonzero(_JSON_BYTE_KINDS[data])
        if not len(positions):
            self.backslashes = 0
            return None
        kinds = _JSON_BYTE_KINDS[data[positions]]
        quotes = self._unescaped_quotes(positions, kinds, len(data))
        newlines = kinds == _NEWLINE
        # For each event, the index of the last line break at or before it (-1: none here).
        events = np.arange(len(kinds))
        last_break = np.maximum.accumulate(np.where(newlines, events, -1))
        new_line = last_break >= 0
        at_break = np.maximum(last_break, 0)
        quote_count = np.cumsum(quotes)
        quotes_in_line = quote_count - np.where(new_line, quote_count[at_break], 0)
        inside = (quotes_in_line + np.where(new_line, 0, int(self.in_string))) % 2 == 1
        steps = (kinds == _OPEN).astype(np.int64) - (kinds == _CLOSE)
        steps[inside] = 0
        depth = np.cumsum(steps)
        if self.per_line:
            depth -= np.where(new_line, depth[at_break], -self.depth)
        else:
            depth += self.depth
        too_deep = np.flatnonzero(depth > MAX_NESTING)
        if len(too_deep):
            return self.line + int(np.count_nonzero(newlines[:too_deep[0]]))
        self.line += int(np.count_nonzero(newlines))
        self.in_string = bool(inside[-1])
        self.depth = int(depth[-1])
        return None

    def _unescaped_quotes(self, positions: np.ndarray, kinds: np.ndarray,
                          length: int) -> np.ndarray:
        """Which events are quotes not escaped by an odd run of backslashes; updates the
        count of backslashes the text ends with."""
        quotes = kinds == _QUOTE
        quote_events = np.flatnonzero(quotes)
        at = positions[quote_events]
        slashes = positions[kinds == _BACKSLASH]
        carried, self.backslashes = self.backslashes, 0
        preceding = np.zeros(len(at), np.int64)  # the backslashes right before each quote
        if len(slashes):
            # The length of the run of backslashes ending at each backslash; the previous
            # chunk's run goes on in a run starting at position 0.
            starts = np.ones(len(slashes), bool)
            starts[1:] = np.diff(slashes) != 1
            run_start = np.maximum.accumulate(np.where(starts, np.arange(len(slashes)), 0))
            runs = np.arange(len(slashes)) - run_start + 1
            runs += np.where(slashes[run_start] == 0, carried, 0)
            before = np.maximum(np.searchsorted(slashes, at) - 1, 0)
            preceding = np.where(slashes[before] == at - 1, runs[before], 0)
            if slashes[-1] == length - 1:
                self.backslashes = int(runs[-1])
        preceding[at == 0] = carried
        quotes[quote_events[preceding % 2 == 1]] = False
        return quotes


def _table_from_records(path: Path, records: list[Any],
                        line_of: Optional[Callable[[int], int]]) -> pa.Table:
    """Columns from a list of objects; ``line_of`` gives the line where record ``i`` starts."""
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            found = type(record).__name__
            if line_of is None:
                raise DatasetLoadError(path, f"item {index + 1} of the array is a {found}, "
                                             "not an object")
            raise DatasetLoadError(path, f"expected an object, found a {found}",
                                   line=line_of(index))
    names = dict.fromkeys(key for record in records for key in record)
    return pa.table({name: _json_column([record.get(name) for record in records])
                     for name in names})


def _table_from_columns(path: Path, columns: dict[str, Any]) -> pa.Table:
    if not all(isinstance(values, list) for values in columns.values()):
        raise DatasetLoadError(path, "expected an array of objects or an object of columns")
    (first, first_values), *others = columns.items()
    for name, values in others:
        if len(values) != len(first_values):
            raise DatasetLoadError(path, f"column {name!r} has {len(values)} values, "
                                         f"column {first!r} has {len(first_values)}")
    return pa.table({name: _json_column(values) for name, values in columns.items()})


def _json_column(values: list[Any]) -> pa.Array:
    """The values as an Arrow array; as text (JSON for non-strings) when their types mix."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([value if value is None or isinstance(value, str) else json.dumps(value)
                         for value in values], pa.string())


# --- Parquet and Arrow IPC --------------------------------------------------------------


def _read_parquet(path: Path) -> Job[pa.Table]:
    try:
        with pq.ParquetFile(path) as parquet:
            _refuse_dense_row_groups(path, parquet.metadata)
            groups = parquet.num_row_groups
            tables = []
            for group in range(groups):
                tables.append(parquet.read_row_group(group, use_threads=True))
                yield Progress(group + 1, groups, f"Reading {path.name}")
            return pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()
    except (pa.ArrowInvalid, OSError) as error:
        raise DatasetLoadError(path, "not a readable Parquet file") from error


def _refuse_dense_row_groups(path: Path, metadata: pq.FileMetaData) -> None:
    """Refuse, before decoding, a row group holding more than :data:`MAX_CELL_ITEMS` values a
    row in one column: one of its cells holds more than that (a kilobyte of Parquet can encode
    a hundred million repeated values)."""
    first_row = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        rows = group.num_rows
        for column in range(group.num_columns):
            chunk = group.column(column)
            if chunk.num_values > max(rows, 1) * MAX_CELL_ITEMS:
                where = f"row {first_row + 1:,}" if rows <= 1 else \
                    f"rows {first_row + 1:,}–{first_row + rows:,}"
                raise DatasetLoadError(
                    path, f"{chunk.num_values:,} values in {where}, more than litdesk reads "
                          f"({MAX_CELL_ITEMS:,} in one cell)", column=chunk.path_in_schema)
        first_row += rows


_ARROW_FILE_MAGIC = b"ARROW1"


def _read_arrow_ipc(path: Path) -> Job[pa.Table]:
    """An Arrow IPC file (Feather v2) or stream, read into memory.

    Not memory-mapped: when another program rewrites or truncates a mapped file, the next
    read of a page that is gone kills the process with SIGBUS. Reading copies the file once,
    at disk speed, in the background with progress, like every other format.
    """
    try:
        return (yield from _read_with_progress(path, _read_ipc))
    except (pa.ArrowInvalid, OSError) as error:
        raise DatasetLoadError(path, "not a readable Arrow file") from error


def _read_ipc(source: pa.NativeFile) -> pa.Table:
    """The table in an Arrow IPC file or stream, validated in full: the reader trusts the
    offsets a file holds, and a damaged or crafted one would crash the first read of a value."""
    if source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC:
        table = pa.ipc.open_file(source).read_all()
    else:
        source.seek(0)
        table = pa.ipc.open_stream(source).read_all()
    table.validate(full=True)
    return table


# --- Hugging Face datasets folders ------------------------------------------------------

_DATASETS_SPLIT_FILES = ("dataset_info.json", "state.json")
_PREFERRED_SPLITS = ("test", "validation")


def _read_datasets_folder(folder: Path) -> Job[tuple[pa.Table, str, Spec]]:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``.

    Of a DatasetDict it reads the "test" split, else "validation", else the first listed.
    ClassLabel features become CategoryLabel fields with their names as vocab, and the
    column holds the names instead of their indices. Nothing outside ``folder`` is read: a
    split or data file named with ``..`` or an absolute path, or a link leading out, is refused.
    """
    root = folder.resolve()
    name = display_name(folder.name)
    split_folder = folder
    if (folder / "dataset_dict.json").is_file():
        dict_file = _inside(root, folder / "dataset_dict.json", folder)
        splits = _read_json_file(dict_file).get("splits")
        splits = [split for split in splits if isinstance(split, str)] \
            if isinstance(splits, list) else []
        split = next((s for s in _PREFERRED_SPLITS if s in splits), splits[0] if splits else None)
        if split is None:
            raise DatasetLoadError(folder, "dataset_dict.json lists no splits")
        split_folder = _inside(root, folder / split, dict_file, f"split {split!r}")
        name = f"{name} ({display_name(split)})"
    if not any((split_folder / file).is_file() for file in _DATASETS_SPLIT_FILES):
        raise DatasetLoadError(split_folder, "not a dataset folder "
                                             "(no dataset_info.json or state.json)")
    data_files = _datasets_data_files(root, split_folder)
    total = sum(file.stat().st_size for file in data_files)
    done = 0
    tables = []
    for file in data_files:
        yield Progress(done, total, f"Reading {name}")
        try:
            with pa.OSFile(str(file)) as source:
                tables.append(_read_ipc(source))
        except (pa.ArrowInvalid, OSError) as error:
            raise DatasetLoadError(file, "not a readable Arrow stream") from error
        done += file.stat().st_size
    yield Progress(total, total, f"Reading {name}")
    table = pa.concat_tables(tables)
    table, overrides = _apply_class_labels(table, _datasets_features(root, split_folder))
    return table, name, overrides


def _inside(root: Path, path: Path, named_in: Path, what: Optional[str] = None) -> Path:
    """``path`` with its links resolved; a DatasetLoadError about ``named_in`` (the file that
    names it) when it leads outside ``root``."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise DatasetLoadError(named_in, f"{what or path.name} leads outside the dataset folder")
    return resolved


def _read_json_file(file: Path) -> dict[str, Any]:
    try:
        content = json.loads(file.read_text(encoding=_UTF8))
    except json.JSONDecodeError as error:
        raise DatasetLoadError(file, error.msg, line=error.lineno, column=error.colno) from error
    if not isinstance(content, dict):
        raise DatasetLoadError(file, "expected a JSON object")
    return content


def _datasets_data_files(root: Path, split_folder: Path) -> list[Path]:
    state_file = split_folder / "state.json"
    if state_file.is_file():
        state_file = _inside(root, state_file, state_file)
        entries = _read_json_file(state_file).get("_data_files") or []
        names = [entry["filename"] for entry in entries
                 if isinstance(entry, dict) and "filename" in entry]
        if not all(isinstance(name, str) for name in names):
            raise DatasetLoadError(state_file, "a data file name is not text")
        files = [_inside(root, split_folder / name, state_file, f"data file {name!r}")
                 for name in names]
    else:
        files = [_inside(root, file, file) for file in sorted(split_folder.glob("data-*.arrow"))]
    if not files:
        raise DatasetLoadError(split_folder, "no data-*.arrow files")
    missing = next((file for file in files if not file.is_file()), None)
    if missing is not None:
        raise DatasetLoadError(split_folder, f"missing data file {missing.name}")
    return files


def _datasets_features(root: Path, split_folder: Path) -> dict[str, Any]:
    info_file = split_folder / "dataset_info.json"
    if not info_file.is_file():
        return {}
    features = _read_json_file(_inside(root, info_file, info_file)).get("features")
    return features if isinstance(features, dict) else {}


def _apply_class_labels(table: pa.Table, features: dict[str, Any]) -> tuple[pa.Table, Spec]:
    """Replace ClassLabel indices by their names (-1, "no label", becomes null)."""
    overrides: Spec = {}
    positions = _first_positions(table.column_names)
    replaced = {}
    for name, feature in features.items():
        if not (isinstance(feature, dict) and feature.get("_type") == "ClassLabel"
                and name in positions):
            continue
        column = table.column(positions[name])
        names = [str(label) for label in feature.get("names") or []]
        if not pa.types.is_integer(column.type) or not names:
            continue
        in_range = pc.and_(pc.greater_equal(column, 0), pc.less(column, len(names)))
        indices = pc.if_else(in_range, column, pa.scalar(None, column.type))
        replaced[positions[name]] = pc.take(pa.array(names, pa.string()), indices)
        overrides[name] = CategoryLabel(vocab=tuple(names))
    return _with_columns(table, replaced), overrides


# --- Column names and types ---------------------------------------------------------------


def _with_unique_column_names(table: pa.Table) -> pa.Table:
    """Blank names become ``column_<n>``; a repeated name gets ``_2``, ``_3``… appended."""
    names: list[str] = []
    taken: set[str] = set()
    next_copy: dict[str, int] = {}  # base name -> the suffix to try next
    for number, name in enumerate(table.column_names, start=1):
        base = name if name.strip() else f"column_{number}"
        candidate, copy = base, next_copy.get(base, 2)
        while candidate in taken:
            candidate, copy = f"{base}_{copy}", copy + 1
        next_copy[base] = copy
        names.append(candidate)
        taken.add(candidate)
    return table if names == table.column_names else table.rename_columns(names)


_VIEW_TYPES = (("is_string_view", pa.string), ("is_binary_view", pa.binary))


def _plain_type(kind: pa.DataType) -> Optional[pa.DataType]:
    """The classic type of a string/binary view type (pyarrow >= 16), else None."""
    for test_name, plain in _VIEW_TYPES:
        test = getattr(pa.types, test_name, None)
        if test is not None and test(kind):
            return plain()
    return None


def _without_view_types(table: pa.Table) -> pa.Table:
    replaced = {}
    for index, kind in enumerate(table.schema.types):
        plain = _plain_type(kind)
        if plain is not None:
            replaced[index] = table.column(index).cast(plain)
    return _with_columns(table, replaced)


def _is_plain_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


# --- What one cell may cost ----------------------------------------------------------------


def _check_cells(path: Path, table: pa.Table) -> Job[None]:
    """Refuse a cell holding more than :data:`MAX_CELL_ITEMS` list items or
    :data:`MAX_CELL_BYTES` of text or binary: showing one such cell can take the window
    gigabytes. (Parquet and Arrow refuse types nested deeper than 100 and 64 levels.)"""
    message = f"Checking the values of {path.name}"
    for index, (name, column) in enumerate(zip(table.column_names, table.columns)):
        if index % _COLUMNS_PER_PROGRESS == 0:
            yield Progress(index, table.num_columns, message)
        if pa.types.is_primitive(column.type):  # numbers, booleans, times: fixed width
            continue
        first_row = 0
        for chunk in column.chunks:
            items, text_bytes = (None if totals is None else np.diff(totals)
                                 for totals in _cumulative_sizes(chunk))
            if items is not None and len(items) and items.max() > MAX_CELL_ITEMS:
                row = int(np.argmax(items > MAX_CELL_ITEMS))
                raise DatasetLoadError(
                    path, f"row {first_row + row + 1:,} holds {int(items[row]):,} list items "
                          f"(litdesk reads at most {MAX_CELL_ITEMS:,} in one cell)", column=name)
            if text_bytes is not None and len(text_bytes) and text_bytes.max() > MAX_CELL_BYTES:
                row = int(np.argmax(text_bytes > MAX_CELL_BYTES))
                raise DatasetLoadError(
                    path, f"row {first_row + row + 1:,} holds {_mebibytes(text_bytes[row])} of "
                          f"text or bytes (litdesk reads at most {_mebibytes(MAX_CELL_BYTES)} in "
                          "one cell)", column=name)
            first_row += len(chunk)


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


_Totals = Optional[np.ndarray]


def _cumulative_sizes(array: pa.Array) -> tuple[_Totals, _Totals]:
    """Running totals over the values of ``array`` (``len(array) + 1`` of them, from 0) of
    the list items they hold at every level and of their bytes of text or binary; None for a
    total that stays 0. Lists are measured by their offsets: a column of embeddings costs one
    step a row, not one a number."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        codes = pc.fill_null(array.indices, 0).to_numpy()
        valid = pc.is_valid(array.indices).to_numpy(zero_copy_only=False)
        return tuple(None if totals is None else
                     _running(np.where(valid, np.diff(totals)[codes], 0))
                     for totals in _cumulative_sizes(array.dictionary))
    if _is_plain_text(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return None, _running(pc.fill_null(pc.binary_length(array), 0).to_numpy())
    if pa.types.is_struct(kind):
        fields = [_cumulative_sizes(field) for field in array.flatten()]
        return tuple(_sum_totals([sizes[part] for sizes in fields]) for part in (0, 1))
    if pa.types.is_fixed_size_list(kind):
        offsets = (np.arange(len(array) + 1, dtype=np.int64) + array.offset) * kind.list_size
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        offsets = array.offsets.to_numpy().astype(np.int64)
    elif _is_list_view(kind):
        return _cumulative_sizes(array.cast(pa.large_list(kind.value_field)))
    else:
        return None, None
    child_items, child_bytes = _cumulative_sizes(array.values)
    start = offsets[0]
    items = offsets - start
    if child_items is not None:
        items += child_items[offsets] - child_items[start]
    return items, None if child_bytes is None else child_bytes[offsets] - child_bytes[start]


def _running(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))


def _sum_totals(parts: list[_Totals]) -> _Totals:
    present = [part for part in parts if part is not None]
    return sum(present[1:], present[0]) if present else None


def _is_list_view(kind: pa.DataType) -> bool:
    """Whether ``kind`` is a list view (pyarrow >= 16)."""
    return any(getattr(pa.types, test, lambda _: False)(kind)
               for test in ("is_list_view", "is_large_list_view"))


# --- Spec inference ----------------------------------------------------------------------

_CATEGORY_MAX_DISTINCT = 32
_CATEGORY_MAX_ROW_FRACTION = 0.05
_LABEL_MAX_DISTINCT = 100
_LABEL_NAMES = frozenset({"label", "labels", "target", "class", "y", "gold", "category"})
_LABEL_SUFFIXES = ("_label", "_labels", "_target", "_class", "_category")
_DISTINCT_PROBE_ROWS = 20_000
_IMAGE_PATH_PROBE_ROWS = 1_000
_IMAGE_BYTES_PROBE_ROWS = 100
_MOST = 0.8
_IMAGE_PATH_PATTERN = r"\.(png|jpe?g|gif|bmp|webp)$"
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def _infer_field(name: str, column: pa.ChunkedArray, num_rows: int) -> Optional[FieldType]:
    kind = column.type
    plain = _plain_type(kind)
    if plain is not None:
        return _infer_field(name, column.cast(plain), num_rows)
    if pa.types.is_dictionary(kind):
        if _is_plain_text(kind.value_type):
            vocab = dict.fromkeys(value for chunk in column.chunks
                                  for value in chunk.dictionary.to_pylist() if value is not None)
            return CategoryLabel(vocab=tuple(vocab))
        return _infer_field(name, column.cast(kind.value_type), num_rows)
    if pa.types.is_null(kind) or pa.types.is_temporal(kind):
        return TextSegment()
    if pa.types.is_boolean(kind):
        return Boolean()
    if pa.types.is_integer(kind) and _is_label_name(name):
        numbers = _distinct_values(column, _LABEL_MAX_DISTINCT)
        if numbers is not None:
            return CategoryLabel(vocab=tuple(str(number) for number in numbers))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _scalar(column)
    if _is_plain_text(kind):
        return _infer_text(name, column, num_rows)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _infer_bytes(column)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        item = kind.value_type
        if pa.types.is_integer(item) or pa.types.is_floating(item):
            return Embeddings()
        if _is_plain_text(item):
            return Tokens()
    return None


def _is_label_name(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in _LABEL_NAMES or lowered.endswith(_LABEL_SUFFIXES)


def _scalar(column: pa.ChunkedArray) -> Scalar:
    extremes = pc.min_max(column)

    def as_float(value: pa.Scalar) -> Optional[float]:
        number = value.as_py()
        return None if number is None or number != number else float(number)  # NaN -> None

    return Scalar(min_val=as_float(extremes["min"]), max_val=as_float(extremes["max"]))


def _infer_text(name: str, column: pa.ChunkedArray, num_rows: int) -> FieldType:
    if _looks_like_image_paths(column):
        return ImagePath()
    if _is_label_name(name):
        limit = _LABEL_MAX_DISTINCT
    else:
        limit = min(_CATEGORY_MAX_DISTINCT, int(num_rows * _CATEGORY_MAX_ROW_FRACTION))
    vocab = _distinct_values(column, limit) if limit > 0 else None
    if not vocab or vocab == [""]:
        return TextSegment()
    return CategoryLabel(vocab=tuple(vocab))


def _distinct_values(column: pa.ChunkedArray, limit: int) -> Optional[list[Any]]:
    """The sorted distinct non-null values, or None when there are more than ``limit``.

    A probe of the first rows rejects free text before hashing the whole column.
    """
    if pc.count_distinct(column.slice(0, _DISTINCT_PROBE_ROWS)).as_py() > limit:
        return None
    distinct = pc.unique(column).drop_null()
    if len(distinct) > limit:
        return None
    return sorted(distinct.to_pylist())


def _looks_like_image_paths(column: pa.ChunkedArray) -> bool:
    head = column.slice(0, _IMAGE_PATH_PROBE_ROWS).drop_null()
    if len(head) == 0:
        return False
    matches = pc.sum(pc.match_substring_regex(head, _IMAGE_PATH_PATTERN, ignore_case=True))
    return (matches.as_py() or 0) >= _MOST * len(head)


def _infer_bytes(column: pa.ChunkedArray) -> Optional[FieldType]:
    head = column.slice(0, _IMAGE_BYTES_PROBE_ROWS).drop_null()
    if len(head) and sum(map(_is_image, _prefixes(head))) >= _MOST * len(head):
        return ImageBytes()
    try:
        column.cast(pa.string())
    except pa.ArrowInvalid:
        return None
    return TextSegment()


def _prefixes(values: pa.ChunkedArray) -> list[bytes]:
    return pc.binary_slice(values, 0, 12).to_pylist()


def _is_image(prefix: bytes) -> bool:
    return prefix.startswith(_IMAGE_SIGNATURES) or (
        prefix.startswith(b"RIFF") and prefix[8:12] == b"WEBP")


# --- Messages --------------------------------------------------------------------------------

_MESSAGE_PREFIXES = re.compile(r"^(CSV parse error|JSON parse error|Invalid): ")
_MAX_MESSAGE_CHARS = 120


def _short_message(error: BaseException) -> str:
    """``error``'s first line without pyarrow's prefixes, at most 120 characters.

    Errors that are not about data (a bug, say) keep their type name in front.
    """
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = (str(error).strip().splitlines() or [""])[0]
        text = _MESSAGE_PREFIXES.sub("", text)
        if not isinstance(error, (pa.ArrowException, ValueError, UnicodeError)):
            text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS - 1] + "…"
