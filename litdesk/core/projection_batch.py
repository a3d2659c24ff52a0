"""The ``litdesk project`` batch command's work, Qt-free: load, pick the vectors, project, write."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Embeddings, LoadOptions, find_spec_keys
from litdesk.core.batch import BatchError, ProgressBar, load_batch_inputs
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from litdesk.core.projection import (METHODS, ProjectionError, dataset_vectors, numeric_matrix,
                                     projection_job)


def _model_vectors(model, dataset, field: str, cache: Optional[ResultCache],
                   bar: Optional[ProgressBar] = None) -> np.ndarray:
    embeddings = find_spec_keys(model.output_spec(), Embeddings)
    if field not in embeddings:
        raise BatchError(f"{model.name} has no Embeddings output {field!r} "
                         f"(it has: {', '.join(embeddings) or 'none'})")
    predictions = run_job(predict_job(model, dataset, cache=cache, fields=[field]),
                          bar.update if bar is not None else None)
    return np.stack(predictions.fields[field]).astype(np.float32)


def project_to_parquet(data_path: Path, field: str, method: str, out: Path, *, dims: int = 2,
                       model_path: Optional[Path] = None, use_cache: bool = True,
                       options: Optional[LoadOptions] = None, quiet: bool = True) -> str:
    """Project a field of the dataset (or a model's Embeddings output) and write x, y (z).

    Without a model, ``field`` is an Embeddings column or comma-separated numeric columns.
    Returns a summary line; raises :class:`BatchError` with a one-line message.
    """
    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    if method not in METHODS:
        raise BatchError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    options = options or LoadOptions()
    dataset, models = load_batch_inputs([model_path] if model_path is not None else [],
                                        data_path, device=options.device, trust=options.trust)
    cache = ResultCache() if use_cache else None
    bar = ProgressBar(quiet=quiet)
    try:
        if models:
            vectors = _model_vectors(models[0], dataset, field, cache, bar)
        elif "," in field or _is_numeric(dataset, field):
            vectors = numeric_matrix(dataset, [name.strip() for name in field.split(",")])
        else:
            vectors = dataset_vectors(dataset, field)
        bar.close()
        bar = ProgressBar(unit="steps", quiet=quiet)
        coords = run_job(projection_job(vectors, method, dims, cache=cache), bar.update)
    except (ValueError, ProjectionError) as error:
        raise BatchError(str(error)) from error
    finally:
        bar.close()
    table = pa.table({name: coords[:, axis] for axis, name in enumerate("xyz"[:dims])})
    out.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(table, out)
    return (f"{out}: {table.num_rows:,} rows, {METHODS[method].label} of {field} "
            f"in {dims} dimensions")


def _is_numeric(dataset, name: str) -> bool:
    if name not in dataset.table.column_names:
        return False
    kind = dataset.table.schema.field(name).type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
