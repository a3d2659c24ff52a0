"""Datapoints the user makes (edits, generated counterfactuals) and their provenance.

A new datapoint is appended to its dataset's table; three provenance columns say where each
row came from: the row it was made from, how, and when. Rows loaded from the file have nulls
there. Row positions never change (rows are only appended), so a parent stays valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from litdesk.api import Dataset, Model
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import Job
from litdesk.core.predict import Predictions, SpecMismatchError, bind_inputs, predict_job

PARENT = "_parent"  # int64: the row position the datapoint was made from
ORIGIN = "_origin"  # string: how it was made ("edited", "word replacer: great → bad", …)
CREATED = "_created"  # string: when, ISO 8601 in UTC
PROVENANCE_COLUMNS = (PARENT, ORIGIN, CREATED)
_PROVENANCE_TYPES = {PARENT: pa.int64(), ORIGIN: pa.string(), CREATED: pa.string()}
#: Appended chunks a table may collect before they are merged into one.
MAX_CHUNKS = 64


@dataclass(frozen=True)
class NewDatapoint:
    """A datapoint the user made: its values for the dataset's own columns and provenance."""

    values: dict[str, Any]
    parent: Optional[int]
    origin: str
    created: str

    @classmethod
    def now(cls, values: dict[str, Any], parent: Optional[int], origin: str) -> "NewDatapoint":
        """A datapoint made at this moment."""
        return cls(dict(values), parent, origin,
                   datetime.now(timezone.utc).isoformat(timespec="seconds"))


def own_columns(dataset: Dataset) -> list[str]:
    """The dataset's columns other than the provenance ones."""
    return [name for name in dataset.table.column_names if name not in PROVENANCE_COLUMNS]


def with_provenance(table: pa.Table) -> pa.Table:
    """``table`` with the provenance columns (all null where they were missing)."""
    for name in PROVENANCE_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, _PROVENANCE_TYPES[name]))
    return table


def datapoints_table(dataset: Dataset, points: Sequence[NewDatapoint]) -> pa.Table:
    """``points`` as rows of the dataset's table, provenance columns included (what
    :func:`with_datapoints` appends). Raises ValueError naming the field when a value does not
    fit its column's type."""
    schema = dataset.table.schema
    for name in PROVENANCE_COLUMNS:
        if name not in schema.names:
            schema = schema.append(pa.field(name, _PROVENANCE_TYPES[name]))
    columns = own_columns(dataset)
    rows = []
    for point in points:
        unknown = set(point.values) - set(columns)
        if unknown:
            raise ValueError(f"the dataset has no column {sorted(unknown)[0]!r}")
        if point.parent is not None and not 0 <= point.parent < len(dataset) + len(rows):
            raise ValueError(f"parent row {point.parent} is not in the dataset")
        rows.append({**{name: point.values.get(name) for name in columns},
                     PARENT: point.parent, ORIGIN: point.origin, CREATED: point.created})
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
        raise ValueError(_which_field(rows, schema) or str(error)) from error


def with_datapoints(dataset: Dataset, points: Sequence[NewDatapoint]) -> Dataset:
    """A dataset with ``points`` appended (same name, path and spec), without copying the rows
    it has; see :func:`datapoints_table` for the errors."""
    grown = pa.concat_tables([with_provenance(dataset.table), datapoints_table(dataset, points)])
    if grown.num_columns and grown.column(0).num_chunks > MAX_CHUNKS:
        grown = grown.combine_chunks()  # rarely: each add makes a chunk
    return Dataset(grown, dataset.spec(), dataset.name, dataset.path)


def _which_field(rows: list[dict[str, Any]], schema: pa.Schema) -> Optional[str]:
    for field in schema:
        try:
            pa.array([row[field.name] for row in rows], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            bad = next(row[field.name] for row in rows if not _fits(row[field.name], field.type))
            return f"{bad!r} is not a valid value for {field.name} ({field.type})"
    return None


def _fits(value: Any, arrow_type: pa.DataType) -> bool:
    try:
        pa.array([value], type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return False
    return True


def generated_rows(dataset: Dataset) -> np.ndarray:
    """Positions of the rows the user made (sorted)."""
    if ORIGIN not in dataset.table.column_names:
        return np.zeros(0, dtype=np.int64)
    made = pc.is_valid(dataset.table.column(ORIGIN)).to_numpy(zero_copy_only=False)
    return np.flatnonzero(made).astype(np.int64)


def children_of(dataset: Dataset, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Positions of the rows made from any of ``rows`` (sorted)."""
    if PARENT not in dataset.table.column_names:
        return np.zeros(0, dtype=np.int64)
    parents = dataset.table.column(PARENT).to_numpy(zero_copy_only=False)
    parents = np.nan_to_num(parents.astype(np.float64), nan=-1).astype(np.int64)
    return np.flatnonzero(np.isin(parents, np.asarray(rows, dtype=np.int64))).astype(np.int64)


def new_predictions_job(models: Mapping[str, Model], dataset: Dataset,
                        points: Sequence[NewDatapoint], cache: Optional[ResultCache] = None
                        ) -> Job[dict[str, Predictions]]:
    """Each model's predictions for ``points`` alone (not yet rows of ``dataset``), as
    :meth:`Session.add_datapoints` takes them; models the dataset cannot feed are left out."""
    new = Dataset(datapoints_table(dataset, points), dataset.spec(), dataset.name)
    results = {}
    for name, model in models.items():
        try:
            bind_inputs(model, new)
        except SpecMismatchError:
            continue
        results[name] = yield from predict_job(model, new, cache=cache)
    return results
