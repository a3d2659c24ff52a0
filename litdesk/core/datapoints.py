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
from litdesk.core.metrics import GOLD_NAMES, gold_column
from litdesk.core.predict import Predictions, SpecMismatchError, bind_inputs, predict_job

PARENT = "_parent"  # int64: the row position the datapoint was made from
ORIGIN = "_origin"  # string: how it was made ("edited", "word replacer: great → bad", …)
CREATED = "_created"  # string: when, ISO 8601 in UTC
PROVENANCE_COLUMNS = (PARENT, ORIGIN, CREATED)
_PROVENANCE_TYPES = {PARENT: pa.int64(), ORIGIN: pa.string(), CREATED: pa.string()}
#: Columns named like these say which split a row belongs to (see uninherited_columns).
SPLIT_NAMES = ("split", "fold", "subset", "partition")
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


def without_rows(dataset: Dataset, rows: Sequence[int] | np.ndarray) -> tuple[Dataset, np.ndarray]:
    """``dataset`` without the datapoints made here at ``rows`` (rows of the file are never
    removed), and each old row's new position (-1: removed). Later rows move up; a parent
    that is removed becomes null, one that moves follows. Same name, path and spec."""
    made = generated_rows(dataset)
    rows = np.asarray(rows, dtype=np.int64)
    removed = np.zeros(len(dataset), dtype=bool)
    removed[made[np.isin(made, rows)]] = True
    moved = np.full(len(dataset), -1, dtype=np.int64)
    moved[~removed] = np.arange(int((~removed).sum()), dtype=np.int64)
    if not removed.any():
        return dataset, moved
    table = dataset.table.filter(pa.array(~removed))
    parents = table.column(PARENT).to_numpy(zero_copy_only=False)
    parents = np.nan_to_num(parents.astype(np.float64), nan=-1).astype(np.int64)
    inside = (parents >= 0) & (parents < len(dataset))
    new_parents = np.where(inside, moved[np.clip(parents, 0, len(dataset) - 1)], -1)
    table = table.set_column(table.column_names.index(PARENT), PARENT,
                             pa.array(new_parents, pa.int64(), mask=new_parents < 0))
    return Dataset(table, dataset.spec(), dataset.name, dataset.path), moved


def uninherited_columns(dataset: Dataset, models: Mapping[str, Model]) -> list[str]:
    """The columns a datapoint made from a row does not copy from it unless the user keeps
    them: the split (a copy would silently join the test set) and the gold labels the models
    are measured against (an edit may change the right answer)."""
    columns = own_columns(dataset)
    golds = {gold_column(dataset, model.output_spec()) for model in models.values()}
    golds |= {name for name in columns if name.lower() in GOLD_NAMES}
    return [name for name in columns if name in golds or name.lower() in SPLIT_NAMES]


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


def with_values(dataset: Dataset, column: str, rows: Sequence[int] | np.ndarray,
                values: Sequence[Any]) -> Dataset:
    """A dataset whose ``column`` holds ``values`` at ``rows`` (a label fixed by the user),
    the other cells as they were; same name, path and spec. Raises ValueError naming the
    column when it is missing, a row is outside the dataset or a value does not fit."""
    if column not in dataset.table.column_names or column in PROVENANCE_COLUMNS:
        raise ValueError(f"the dataset has no column {column!r}")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) != len(values):
        raise ValueError(f"{len(rows)} rows for {len(values)} values")
    if rows.size and (rows.min() < 0 or rows.max() >= len(dataset)):
        raise ValueError(f"row {int(rows.max() if rows.max() >= len(dataset) else rows.min())} "
                         "is not in the dataset")
    index = dataset.table.column_names.index(column)
    cells = dataset.table.column(index)
    by_value: dict[Any, list[int]] = {}
    for row, value in zip(rows.tolist(), values):
        by_value.setdefault(value, []).append(row)
    for value, at in by_value.items():
        if not _fits(value, cells.type):
            raise ValueError(f"{value!r} is not a valid value for {column} ({cells.type})")
        mask = np.zeros(len(dataset), dtype=bool)
        mask[at] = True
        cells = pc.if_else(pa.array(mask), pa.scalar(value, cells.type), cells)
    table = dataset.table.set_column(index, dataset.table.field(index), cells)
    return Dataset(table, dataset.spec(), dataset.name, dataset.path)
