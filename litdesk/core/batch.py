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
from litdesk.core.cache import CACHE_FILE, ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.loaders import DatasetLoadError, load_dataset
from litdesk.core.messages import first_line, pickle_advice, printable
from litdesk.core.model_loading import load_model
from litdesk.core.predict import SpecMismatchError, bind_inputs, predict_job


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


def _column(values: np.ndarray) -> pa.Array:
    if values.dtype != object:
        return pa.array(list(values) if values.ndim > 1 else values)
    return pa.array([np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for v in values])


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


def predict_to_parquet(model_path: Path, data_path: Path, out: Path, *,
                       batch_size: Optional[int] = None, device: Optional[str] = None,
                       trust: bool = False, label: Optional[str] = None,
                       use_cache: bool = True) -> str:
    """Write every output of the model for every row of the dataset; return a summary line."""
    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    dataset, (model,) = load_batch_inputs([model_path], data_path, device=device, trust=trust,
                                          label=label)
    cache = ResultCache() if use_cache else None
    predictions = run_job(predict_job(model, dataset, batch_size=batch_size, cache=cache,
                                      fields=list(model.output_spec())))
    table = pa.table({name: _column(values) for name, values in predictions.fields.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(table, out)
    return f"{out}: {table.num_rows:,} rows × {table.num_columns} outputs of {model.name}"
