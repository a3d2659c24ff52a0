"""File ▸ Save Dataset: a dataset with the datapoints made on it, as CSV, JSON Lines or Parquet.

The provenance columns (``_parent``, ``_origin``, ``_created``) are always written, so a saved
file says which rows were made and from what. The file is written next to its destination
and renamed into place at the end: a failed or cancelled save leaves any old file whole.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import Dataset
from litdesk.core.datapoints import with_provenance
from litdesk.core.jobs import Job, Progress
from litdesk.core.table_query import export_csv

#: Suffix -> the name shown in the save dialog.
SAVE_FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
_BATCH_ROWS = 50_000


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def save_dataset_job(dataset: Dataset, path: Path) -> Job[Path]:
    """Write every row of ``dataset`` to ``path``, its format chosen by the suffix.

    Raises ValueError for a suffix that is not one of :data:`SAVE_FORMATS`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(f"cannot save as {suffix or 'a file without a suffix'}; "
                         f"use {', '.join(SAVE_FORMATS)}")
    table = with_provenance(dataset.table)
    n = table.num_rows
    yield Progress(0, n, f"Saving {n:,} rows to {path.name}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        if suffix == ".csv":
            export_csv(table, np.arange(n, dtype=np.int64), temporary)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, temporary)
        else:
            with open(temporary, "w", encoding="utf-8") as file:
                for start in range(0, n, _BATCH_ROWS):
                    for row in table.slice(start, _BATCH_ROWS).to_pylist():
                        file.write(json.dumps(row, default=_json_value, ensure_ascii=False))
                        file.write("\n")
                    yield Progress(min(n, start + _BATCH_ROWS), n, f"Saving to {path.name}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    yield Progress(n, n, f"Saved {path.name}")
    return path

