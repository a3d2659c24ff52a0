"""Batch commands' work, Qt-free: load, check, run, write; and what to tell the user when it
fails."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, LoadOptions, Model, ModelLoadError, TrustRequired
from litdesk.core import paths
from litdesk.core.cache import CACHE_FILE, ResultCache, result_key
from litdesk.core.columnar import content_digest
from litdesk.core.loaders import DatasetLoadError, load_dataset
from litdesk.core.messages import first_line, pickle_advice, printable
from litdesk.core.model_loading import load_model
from litdesk.core.jobs import Progress
from litdesk.core.predict import (SpecMismatchError, _complete, _length_order, _stack,
                                  bind_inputs, model_inputs, predict_rows)


class BatchError(Exception):
    """A batch command cannot go on; the message is one line for the user."""


def failure_line(error: BaseException, task: str) -> Optional[str]:
    """What went wrong, as one line for the user, when ``error`` is bad input or a limit of
    the machine (memory, disk) rather than a bug in litdesk; None for anything else.

    File problems read ``<where>: <what>``; the rest ``<what> (<task>)``, ``task`` saying what
    was being done ("predicting data.csv with bert").
    """
    if isinstance(error, (BatchError, DatasetLoadError, ModelLoadError)):
        return first_line(error)
    if isinstance(error, MemoryError):
        return f"not enough memory ({task})"
    if isinstance(error, sqlite3.DatabaseError):
        return (f"{paths.cache_dir() / CACHE_FILE}: the result cache failed ({first_line(error)}"
                "); run again with --no-cache, or delete the file if it is damaged")
    if isinstance(error, UnicodeEncodeError):
        return f"{printable(error.object)[:200]} is not valid {error.encoding} ({task})"
    if isinstance(error, OSError):
        return _os_line(error, task)
    if _is_decompression_bomb(error):
        return f"an image is too large to open safely: {first_line(error)} ({task})"
    if isinstance(error, ValueError):
        return f"{first_line(error)} ({task})"
    return None


def _os_line(error: OSError, task: str) -> str:
    name = error.filename
    where = printable(os.fsdecode(name)) if isinstance(name, (str, bytes, os.PathLike)) else None
    if error.errno == errno.ENOSPC or "No space left" in str(error):
        return f"the disk is full ({where or task})"
    if where is not None:
        return f"{where}: {error.strerror or first_line(error)}"
    return f"{first_line(error)} ({task})"


def _is_decompression_bomb(error: BaseException) -> bool:
    image = sys.modules.get("PIL.Image")  # an error of PIL's means PIL is imported
    return image is not None and isinstance(error, image.DecompressionBombError)


def load_batch_inputs(model_paths: Sequence[Path], data_path: Path, *,
                      device: Optional[str] = None, trust: bool = False,
                      label: Optional[str] = None) -> tuple[Dataset, list[Model]]:
    """The dataset and the models of a batch command, each model checked to find its inputs
    in the dataset; any failure is a :class:`BatchError`."""
    try:
        dataset = load_dataset(data_path)
        models = [_load_model(path, LoadOptions(device=device, trust=trust, label=label))
                  for path in model_paths]
        for model in models:
            bind_inputs(model, dataset)
    except (DatasetLoadError, SpecMismatchError) as error:
        raise BatchError(str(error)) from error
    return dataset, models


def _load_model(path: Path, options: LoadOptions) -> Model:
    try:
        return load_model(path, options)
    except ModelLoadError as error:
        advice = pickle_advice(error)
        if advice is not None:
            raise BatchError(f"{path}: {advice}") from error
        hint = " (pass --trust if you trust it)" if isinstance(error, TrustRequired) else ""
        raise BatchError(f"{error}{hint}") from error


class ProgressBar:
    """Progress of a batch command on stderr: rows done, rows per second and time left.

    On a terminal one line is redrawn in place (at most 10 times a second); in a log (stderr
    not a terminal) a line is written every :attr:`log_every` seconds, so a short job writes
    nothing. ``quiet`` silences it.
    """

    log_every = 10.0

    def __init__(self, unit: str = "rows", quiet: bool = False, stream=None) -> None:
        import time

        self.stream = sys.stderr if stream is None else stream
        self.unit, self.quiet, self._clock = unit, quiet, time.monotonic
        self.started = self._clock()
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self._shown_at = float("-inf") if self.terminal else self.started  # a bar shows at once
        self._drawn = False

    def line(self, done: int, total: int) -> str:
        """What the bar says after ``done`` of ``total``."""
        elapsed = max(self._clock() - self.started, 1e-9)
        rate = done / elapsed
        text = f"{done:,}/{total:,} {self.unit}  {rate:,.0f} {self.unit}/s"
        if total and done < total and rate > 0:
            text += f"  {_duration((total - done) / rate)} left"
        elif total and done >= total:
            text += f"  {_duration(elapsed)}"
        return text

    def update(self, progress: Progress) -> None:
        """Show ``progress`` (a job's) if it is time to."""
        self.show(progress.done, progress.total)

    def show(self, done: int, total: int) -> None:
        if self.quiet:
            return
        now = self._clock()
        final = bool(total) and done >= total
        wait = 0.1 if self.terminal else self.log_every
        if not final and now - self._shown_at < wait:
            return
        if final and not self.terminal and not self._drawn:
            return  # a short job in a log: nothing to say
        self._shown_at = now
        self._drawn = True
        end = "\n" if final or not self.terminal else ""
        self.stream.write(("\r\x1b[K" if self.terminal else "") + self.line(done, total) + end)
        self.stream.flush()

    def close(self) -> None:
        """End a line left open on a terminal (a job that stopped early)."""
        if self._drawn and self.terminal and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def predict_block(model: Model, block: Dataset, fields: dict, batch_size: int,
                  rows: Optional[np.ndarray] = None,
                  cache: Optional[ResultCache] = None) -> pa.Table:
    """The ``fields`` of ``model`` for every row of ``block`` (the dataset's ``rows``;
    default 0, 1, …), predicted in batches of similar length, as a table in row order with
    the ``row`` column first. Both engines run each block through here.

    With a ``cache``, a block's outputs are stored under the model, the content of the
    columns it reads and the fields: the same command again (or one stopped half-way and
    started again) finds the blocks done without running the model.
    """
    from litdesk.core.results import columns_table

    rows = np.arange(len(block), dtype=np.int64) if rows is None else np.asarray(rows)
    key = None
    if cache is not None:
        binding = bind_inputs(model, block)
        digest = content_digest(block.table.column(column)
                                for column in sorted(set(binding.values())))
        key = result_key("predict-block", model.fingerprint(),
                         {"inputs": binding, "data": digest}, {"fields": sorted(fields)})
        found = cache.get_columns(key)
        if _complete(found, fields, len(block)):
            return columns_table(found, fields, rows)
    order = _length_order(model, block, 0, len(block))
    outputs = predict_rows(model, model_inputs(model, block, order), batch_size, fields)
    back = np.argsort(order, kind="stable")  # row order again
    columns = {name: _stack([outputs[i][name] for i in back]) for name in fields}
    if cache is not None:
        cache.put_columns(key, columns)
    return columns_table(columns, fields, rows)


def check_parquet_out(out: Path) -> None:
    """BatchError unless ``out`` names a Parquet file that can be written."""
    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    if out.is_dir():
        raise BatchError(f"{out}: is a folder; the output must be a .parquet file")


def load_predict_inputs(model_path: Path, data_path: Path, fields: Optional[str], *,
                        device: Optional[str] = None, trust: bool = False,
                        label: Optional[str] = None
                        ) -> tuple[Dataset, Model, dict, dict[str, str]]:
    """What a predict command works from: the dataset, the model, the output fields to write
    (``fields`` as ``--fields`` gives them) and the model's input binding."""
    from litdesk.core.results import ResultsError, chosen_fields

    dataset, (model,) = load_batch_inputs([model_path], data_path, device=device, trust=trust,
                                          label=label)
    try:
        kept = chosen_fields(model.output_spec(), fields, model.name)
    except ResultsError as error:
        raise BatchError(str(error)) from error
    return dataset, model, kept, bind_inputs(model, dataset)


def predict_to_parquet(model_path: Path, data_path: Path, out: Path, *,
                       batch_size: Optional[int] = None, device: Optional[str] = None,
                       trust: bool = False, label: Optional[str] = None,
                       use_cache: bool = True, fields: Optional[str] = None,
                       quiet: bool = True, block_rows: int = 8192) -> str:
    """Write the model's predictions and embeddings (``fields``: see
    :func:`~litdesk.core.results.chosen_fields`) for every row of the dataset; return a
    summary line.

    Rows go in blocks of ``block_rows``: each is predicted, turned into Arrow columns and
    written as a row group, so memory does not grow with the dataset. The file appears at
    ``out`` only when complete. With ``use_cache`` each block's outputs are kept in the
    result cache (see :func:`predict_block`).
    """
    import pyarrow.parquet as pq

    from litdesk.core.results import metadata

    check_parquet_out(out)
    dataset, model, kept, binding = load_predict_inputs(model_path, data_path, fields,
                                                        device=device, trust=trust, label=label)
    batch_size = batch_size or model.max_minibatch_size()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    cache = ResultCache() if use_cache else None
    bar = ProgressBar(quiet=quiet)
    writer = None
    total = len(dataset)
    try:
        for start in range(0, total, block_rows):
            block = Dataset(dataset.table.slice(start, block_rows), dataset.spec(), dataset.name)
            table = predict_block(model, block, kept, batch_size,
                                  np.arange(start, start + len(block), dtype=np.int64), cache)
            if writer is None:
                schema = table.schema.with_metadata(metadata(model, binding, dataset, kept))
                writer = pq.ParquetWriter(partial, schema)
            writer.write_table(table.cast(writer.schema))
            bar.show(start + len(block), total)
        if writer is None:  # no rows
            writer = pq.ParquetWriter(partial, _empty_schema(kept).with_metadata(
                metadata(model, binding, dataset, kept)))
        writer.close()
        writer = None
        os.replace(partial, out)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return f"{out}: {total:,} rows × {len(kept)} outputs of {model.name}"


def _empty_schema(fields: dict) -> pa.Schema:
    from litdesk.core.results import ROW_COLUMN

    return pa.schema([(ROW_COLUMN, pa.int64())] + [(name, pa.null()) for name in fields])
