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
import mmap
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Optional, Union

import charset_normalizer
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
from litdesk.core.plugins import Contribution, discover_plugins

PathLike = Union[str, "os.PathLike[str]"]

_DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
_ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    *_DELIMITED_SUFFIXES, ".json", *_JSON_LINES_SUFFIXES, ".parquet", *_ARROW_SUFFIXES)
"""File name endings :func:`load_dataset` reads (besides ``datasets`` folders)."""


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
        where = [self.path.name or str(self.path)]
        if self.line is not None:
            where.append(f"line {self.line}")
        if isinstance(self.column, str):
            where.append(f"column {self.column!r}")
        elif self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


def load_dataset(path: PathLike) -> Dataset:
    """Load the file or ``datasets`` folder at ``path`` on this thread.

    Raises :class:`DatasetLoadError` (and nothing else) when it cannot.
    """
    return run_job(iter_load_dataset(path))


def iter_load_dataset(path: PathLike) -> Job[Dataset]:
    """Job that loads ``path``; yields :class:`Progress`, returns a :class:`Dataset`.

    Reads CSV, TSV, JSON (an array of objects or an object of columns), JSON Lines,
    Parquet, Arrow IPC / Feather, and folders written by ``datasets``' ``save_to_disk``.
    The spec comes from :func:`infer_spec`; columns are cast as :func:`conform_table` says.
    Raises :class:`DatasetLoadError` (and nothing else) when it cannot load ``path``.
    Closing the job while a file is being parsed stops the parse at its next block.
    A plugin's dataset loader whose patterns accept ``path`` is asked first.
    """
    path = Path(path)
    try:
        plugin_loader = discover_plugins().find("dataset_loaders", path) if path.exists() \
            else None
        if plugin_loader is not None:
            return (yield from _load_with_plugin(path, plugin_loader))
        return (yield from _load(path))
    except DatasetLoadError:
        raise
    except MemoryError as error:
        raise DatasetLoadError(path, "not enough memory to load it") from error
    except UnicodeDecodeError as error:
        raise DatasetLoadError(path, _UNDECODABLE) from error
    except Exception as error:  # whatever the input provokes, the caller gets one error type
        raise DatasetLoadError(path, _short_message(error)) from error


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
    spec: Spec = {}
    for name, column in zip(table.column_names, table.columns):
        field = _infer_field(name, column, table.num_rows)
        if field is not None:
            spec[name] = field
    return spec


def conform_table(table: pa.Table, spec: Spec) -> pa.Table:
    """``table`` with the columns that ``spec`` calls text-like cast to Arrow strings.

    Columns typed :class:`TextSegment`, :class:`CategoryLabel` or :class:`ImagePath`
    whose values are numbers, dates, dictionary codes or bytes become ``string`` columns;
    all other columns are returned as they are. Raises ``pyarrow.ArrowException`` when a
    column cannot be cast (bytes that are not UTF-8, lists).
    """
    text_like = (TextSegment, CategoryLabel, ImagePath)
    for name, field in spec.items():
        column = table.column(name)
        if isinstance(field, text_like) and not _is_plain_text(column.type):
            index = table.column_names.index(name)
            table = table.set_column(index, name, column.cast(pa.string()))
    return table


# --- Dispatch ---------------------------------------------------------------------------


def _load_with_plugin(path: Path, loader: Contribution) -> Job[Dataset]:
    """Call a plugin's ``load(path)``; a returned Arrow table gets an inferred spec."""
    yield Progress(0, 1, f"Reading {path.name} ({loader.plugin} plugin)")
    loaded = loader.load_callable()(path)
    if isinstance(loaded, pa.Table):
        spec = infer_spec(loaded)
        loaded = Dataset(conform_table(loaded, spec), spec, name=path.stem, path=path)
    if not isinstance(loaded, Dataset):
        raise DatasetLoadError(path, f"the {loader.plugin} plugin returned a "
                                     f"{type(loaded).__name__}, not a dataset")
    yield Progress(1, 1, f"Loaded {len(loaded):,} rows")
    return loaded


def _load(path: Path) -> Job[Dataset]:
    if not path.exists():
        raise DatasetLoadError(path, "file not found")
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
        name, overrides = path.stem, {}
    if table.num_columns == 0:
        raise DatasetLoadError(path, "no columns")
    table = _with_unique_column_names(_without_view_types(table))
    yield Progress(1, 1, f"Inferring column types of {table.num_rows:,} rows")
    spec = {**infer_spec(table), **overrides}
    dataset = Dataset(conform_table(table, spec), spec, name=name, path=path)
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
    return _read_arrow_ipc(path)


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
            with open(self.path, "rb") as file, \
                    mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                self._has_quotes = mapped.find(b'"') != -1
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
        try:
            return (yield from _read_with_progress(path, pa_json.read_json))
        except pa.ArrowInvalid:
            pass
    return (yield from _read_json_document(path))


def _read_json_document(path: Path) -> Job[pa.Table]:
    """An array of objects, an object of columns, or a sequence of objects (JSON Lines)."""
    text = _decode_text(path, path.read_bytes())
    if not text.strip():
        raise DatasetLoadError(path, "empty file")
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
            groups = parquet.num_row_groups
            tables = []
            for group in range(groups):
                tables.append(parquet.read_row_group(group, use_threads=True))
                yield Progress(group + 1, groups, f"Reading {path.name}")
            return pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()
    except (pa.ArrowInvalid, OSError) as error:
        raise DatasetLoadError(path, "not a readable Parquet file") from error


_ARROW_FILE_MAGIC = b"ARROW1"


def _read_arrow_ipc(path: Path) -> pa.Table:
    """An Arrow IPC file (Feather v2) or stream, memory-mapped so that reading copies nothing."""
    try:
        with pa.memory_map(str(path)) as source:  # the table keeps the mapping alive
            if source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC:
                return pa.ipc.open_file(source).read_all()
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise DatasetLoadError(path, "not a readable Arrow file") from error


# --- Hugging Face datasets folders ------------------------------------------------------

_DATASETS_SPLIT_FILES = ("dataset_info.json", "state.json")
_PREFERRED_SPLITS = ("test", "validation")


def _read_datasets_folder(folder: Path) -> Job[tuple[pa.Table, str, Spec]]:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``.

    Of a DatasetDict it reads the "test" split, else "validation", else the first listed.
    ClassLabel features become CategoryLabel fields with their names as vocab, and the
    column holds the names instead of their indices.
    """
    name = folder.name
    split_folder = folder
    if (folder / "dataset_dict.json").is_file():
        splits = _read_json_file(folder / "dataset_dict.json").get("splits")
        splits = [split for split in splits if isinstance(split, str)] \
            if isinstance(splits, list) else []
        split = next((s for s in _PREFERRED_SPLITS if s in splits), splits[0] if splits else None)
        if split is None:
            raise DatasetLoadError(folder, "dataset_dict.json lists no splits")
        split_folder = folder / split
        name = f"{folder.name} ({split})"
    if not any((split_folder / file).is_file() for file in _DATASETS_SPLIT_FILES):
        raise DatasetLoadError(split_folder, "not a dataset folder "
                                             "(no dataset_info.json or state.json)")
    data_files = _datasets_data_files(split_folder)
    total = sum(file.stat().st_size for file in data_files)
    done = 0
    tables = []
    for file in data_files:
        yield Progress(done, total, f"Reading {name}")
        try:
            with pa.memory_map(str(file)) as source:  # the table keeps the mapping alive
                tables.append(pa.ipc.open_stream(source).read_all())
        except (pa.ArrowInvalid, OSError) as error:
            raise DatasetLoadError(file, "not a readable Arrow stream") from error
        done += file.stat().st_size
    yield Progress(total, total, f"Reading {name}")
    table = pa.concat_tables(tables)
    table, overrides = _apply_class_labels(table, _datasets_features(split_folder))
    return table, name, overrides


def _read_json_file(file: Path) -> dict[str, Any]:
    try:
        content = json.loads(file.read_text(encoding=_UTF8))
    except json.JSONDecodeError as error:
        raise DatasetLoadError(file, error.msg, line=error.lineno, column=error.colno) from error
    if not isinstance(content, dict):
        raise DatasetLoadError(file, "expected a JSON object")
    return content


def _datasets_data_files(split_folder: Path) -> list[Path]:
    state_file = split_folder / "state.json"
    if state_file.is_file():
        entries = _read_json_file(state_file).get("_data_files") or []
        files = [split_folder / entry["filename"] for entry in entries
                 if isinstance(entry, dict) and "filename" in entry]
    else:
        files = sorted(split_folder.glob("data-*.arrow"))
    if not files:
        raise DatasetLoadError(split_folder, "no data-*.arrow files")
    missing = next((file for file in files if not file.is_file()), None)
    if missing is not None:
        raise DatasetLoadError(split_folder, f"missing data file {missing.name}")
    return files


def _datasets_features(split_folder: Path) -> dict[str, Any]:
    info_file = split_folder / "dataset_info.json"
    if not info_file.is_file():
        return {}
    features = _read_json_file(info_file).get("features")
    return features if isinstance(features, dict) else {}


def _apply_class_labels(table: pa.Table, features: dict[str, Any]) -> tuple[pa.Table, Spec]:
    """Replace ClassLabel indices by their names (-1, "no label", becomes null)."""
    overrides: Spec = {}
    for name, feature in features.items():
        if not (isinstance(feature, dict) and feature.get("_type") == "ClassLabel"
                and name in table.column_names):
            continue
        column = table.column(name)
        names = [str(label) for label in feature.get("names") or []]
        if not pa.types.is_integer(column.type) or not names:
            continue
        in_range = pc.and_(pc.greater_equal(column, 0), pc.less(column, len(names)))
        indices = pc.if_else(in_range, column, pa.scalar(None, column.type))
        labels = pc.take(pa.array(names, pa.string()), indices)
        table = table.set_column(table.column_names.index(name), name, labels)
        overrides[name] = CategoryLabel(vocab=tuple(names))
    return table, overrides


# --- Column names and types ---------------------------------------------------------------


def _with_unique_column_names(table: pa.Table) -> pa.Table:
    """Blank names become ``column_<n>``; a repeated name gets ``_2``, ``_3``… appended."""
    names: list[str] = []
    for number, name in enumerate(table.column_names, start=1):
        base = name if name.strip() else f"column_{number}"
        candidate, copy = base, 2
        while candidate in names:
            candidate, copy = f"{base}_{copy}", copy + 1
        names.append(candidate)
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
    for index, kind in enumerate(table.schema.types):
        plain = _plain_type(kind)
        if plain is not None:
            table = table.set_column(index, table.column_names[index],
                                     table.column(index).cast(plain))
    return table


def _is_plain_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


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
