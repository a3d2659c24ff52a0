"""Batch commands' work, Qt-free: load, check, run, write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, LoadOptions, Model, ModelLoadError
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.loaders import DatasetLoadError, load_dataset
from litdesk.core.model_loading import load_model
from litdesk.core.predict import SpecMismatchError, bind_inputs, predict_job


class BatchError(Exception):
    """A batch command cannot go on; the message is one line for the user."""


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
        models = [load_model(path, LoadOptions(device=device, trust=trust, label=label))
                  for path in model_paths]
        for model in models:
            bind_inputs(model, dataset)
    except ModelLoadError as error:
        hint = " (pass --trust if you trust it)" if "runs code" in str(error) else ""
        raise BatchError(f"{error}{hint}") from error
    except (DatasetLoadError, SpecMismatchError) as error:
        raise BatchError(str(error)) from error
    return dataset, models


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
