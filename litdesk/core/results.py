"""Bulk results as Arrow and Parquet: which output fields a batch command writes, model
outputs to Arrow columns straight from numpy, the metadata that ties a results file to its
model and dataset, and results read back as a model (:class:`ResultsModel`) that answers
from the file, so the desk shows predictions made elsewhere without the model.

A results file (or a folder of Parquet shards written by the Ray engine) has a ``row``
column (the dataset's row index) and one column per output field; its schema metadata holds,
under :data:`METADATA_KEY`, the model's record (name, fingerprint, specs), the input binding
and a fingerprint of the dataset's input columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, Model, Spec, types
from litdesk.core.columnar import content_digest

#: The schema metadata key of litdesk's results files.
METADATA_KEY = b"litdesk.results"
FORMAT = "litdesk-results/1"
#: The column holding each result's row in the dataset.
ROW_COLUMN = "row"
#: Output types written by default: what a bulk user wants (predictions and embeddings).
DEFAULT_TYPES = (types.MulticlassPreds, types.RegressionScore, types.Scalar,
                 types.CategoryLabel, types.GeneratedText, types.Embeddings)

#: Fields whose rows differ in length (one value per token): lists in every block, even one
#: whose rows happen to be equally long, so that all blocks share one schema.
_RAGGED = (types.TokenGradients, types.TokenEmbeddings, types.TokenSalience,
           types.AttentionHeads, types.FeatureSalience)
_TOP_K = pa.list_(pa.list_(pa.struct([("token", pa.string()), ("score", pa.float32())])))


class ResultsError(ValueError):
    """A results file cannot be used; the message is one line for the user."""


def chosen_fields(spec: Spec, requested: Optional[str], model_name: str) -> dict[str, Any]:
    """The output fields to write: ``requested`` is None (predictions and embeddings),
    ``"all"``, or comma-separated names (ResultsError naming unknown ones)."""
    if requested is None:
        chosen = {name: t for name, t in spec.items() if isinstance(t, DEFAULT_TYPES)}
        return chosen or dict(spec)
    if requested.strip() == "all":
        return dict(spec)
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in spec]
    if unknown or not names:
        raise ResultsError(f"--fields {requested!r}: {model_name} has no field "
                           f"{', '.join(unknown) or '(none given)'}; its fields: "
                           f"{', '.join(spec)}, or all")
    return {name: spec[name] for name in names}


# -- to Arrow ---------------------------------------------------------------------------------


def _fixed_size(flat: np.ndarray, shape: tuple[int, ...]) -> pa.Array:
    """Rows of ``shape`` (flattened, one after the other, in ``flat``) as nested fixed-size
    lists, without a copy."""
    array: pa.Array = pa.array(flat)
    for size in reversed(shape):
        array = pa.FixedSizeListArray.from_arrays(array, size)
    return array


def _nested_lists(arrays: Sequence[np.ndarray]) -> pa.Array:
    """Arrays of one number of axes but any shapes (attention: heads × tokens × tokens) as
    lists nested that deep, built from their flattened values."""
    dtype = np.result_type(*arrays)
    array: pa.Array = pa.array(np.concatenate([a.astype(dtype, copy=False).reshape(-1)
                                               for a in arrays]))
    for axis in reversed(range(arrays[0].ndim)):
        lengths = np.concatenate([np.full(int(np.prod(a.shape[:axis])), a.shape[axis], np.int64)
                                  for a in arrays])
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        array = pa.LargeListArray.from_arrays(pa.array(offsets), array) if offsets[-1] >= 2**31 \
            else pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), array)
    return array


def _numeric(value: Any) -> Optional[np.ndarray]:
    if isinstance(value, (str, bytes)) or value is None:
        return None
    array = np.asarray(value) if isinstance(value, (np.ndarray, np.generic, int, float, list)) \
        else None
    if array is None or array.dtype.kind not in "fiub":
        return None
    return array.astype(np.float32, copy=False) if array.dtype.kind == "f" else array


def arrow_column(values: Sequence[Any], field_type: Any = None) -> pa.Array:
    """One output field of many rows as an Arrow array: same-shape numbers as (nested)
    fixed-size lists of float32 straight from numpy; numbers ragged in their first axis (one
    vector per token) as lists of fixed-size lists; top-k token predictions as lists of
    (token, score) structs; strings and lists of strings as such."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        stacked = values.astype(np.float32, copy=False) if values.dtype.kind == "f" else values
        return _fixed_size(np.ascontiguousarray(stacked).reshape(-1), stacked.shape[1:])
    if isinstance(field_type, types.TokenTopKPreds):
        return pa.array([[[(str(t), float(s)) for t, s in position] for position in row]
                         for row in values], _TOP_K)
    arrays = [_numeric(value) for value in values]
    if arrays and all(a is not None for a in arrays):
        first = arrays[0]
        if not isinstance(field_type, _RAGGED) and all(
                a.shape == first.shape and a.dtype == first.dtype for a in arrays):
            return arrow_column(np.stack(arrays))
        if first.ndim >= 1 and not isinstance(field_type, types.AttentionHeads) and all(
                a.ndim == first.ndim and a.shape[1:] == first.shape[1:] for a in arrays):
            dtype = np.result_type(*arrays)
            flat = np.concatenate([a.astype(dtype, copy=False).reshape(-1) for a in arrays])
            offsets = np.zeros(len(arrays) + 1, np.int32)
            np.cumsum([len(a) for a in arrays], out=offsets[1:])
            return pa.ListArray.from_arrays(pa.array(offsets), _fixed_size(flat,
                                                                            first.shape[1:]))
        if first.ndim >= 1 and all(a.ndim == first.ndim for a in arrays):
            return _nested_lists(arrays)
    return pa.array([v.tolist() if isinstance(v, np.ndarray) else v for v in values])


def columns_table(columns: Mapping[str, Any], fields: Mapping[str, Any],
                  rows: np.ndarray) -> pa.Table:
    """A table of row-aligned output ``columns`` (numpy arrays, one value per row), the
    ``row`` column first."""
    table = {ROW_COLUMN: pa.array(np.asarray(rows, np.int64))}
    for name, field_type in fields.items():
        values = columns[name]
        if isinstance(field_type, _RAGGED) and isinstance(values, np.ndarray):
            values = list(values)  # equally long rows in this block: still lists
        table[name] = arrow_column(values, field_type)
    return pa.table(table)


def metadata(model: Model, binding: Mapping[str, str], dataset: Dataset,
             fields: Mapping[str, Any]) -> dict[bytes, bytes]:
    """The schema metadata of a results file: the model's record with only the written
    fields, the binding, and the dataset's row count and input-column digest."""
    from litdesk.core.deferred import ModelRecord

    record = ModelRecord.of(model)
    written = ModelRecord(record.name, record.fingerprint, record.input_spec, dict(fields),
                          record.max_minibatch_size)
    return {METADATA_KEY: json.dumps({
        "format": FORMAT, "model": json.loads(written.to_json()), "binding": dict(binding),
        "dataset": {"name": dataset.name, "rows": len(dataset),
                    "digest": dataset_digest(dataset, binding)}}).encode()}


def dataset_digest(dataset: Dataset, binding: Mapping[str, str]) -> str:
    """A hash of the dataset's columns that a model reads (see ``content_digest``)."""
    return content_digest(dataset.table.column(column)
                          for column in sorted(set(binding.values())))


# -- reading back -----------------------------------------------------------------------------


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.parquet"))
    return [path] if path.suffix.lower() == ".parquet" else []


def results_info(path: "Path | str") -> Optional[dict[str, Any]]:
    """The litdesk metadata of a results file or folder, or None when ``path`` is not one
    (any Parquet file without it, or unreadable)."""
    import pyarrow.parquet as pq

    files = _parquet_files(Path(path))
    if not files:
        return None
    try:
        found = pq.read_schema(files[0]).metadata or {}
        return json.loads(found[METADATA_KEY]) if METADATA_KEY in found else None
    except (OSError, ValueError, pa.ArrowException):
        return None


def read_results(path: "Path | str") -> tuple[dict[str, Any], pa.Table]:
    """A results file or folder: its metadata and its table, in row order."""
    import pyarrow.parquet as pq

    path = Path(path)
    info = results_info(path)
    if info is None or info.get("format") != FORMAT:
        raise ResultsError(f"{path}: not a litdesk results file (written by litdesk predict)")
    try:
        table = pq.read_table(_parquet_files(path) if path.is_dir() else path)
    except (OSError, pa.ArrowException) as error:
        raise ResultsError(f"{path}: {error}") from error
    rows = table.column(ROW_COLUMN).to_numpy()
    if len(rows) and np.any(np.diff(rows) < 0):
        table = table.take(pa.array(np.argsort(rows, kind="stable")))
    return info, table


def python_values(column: "pa.ChunkedArray | pa.Array") -> list[Any]:
    """An Arrow column of results as one value per row, as a model returns them: numpy
    arrays for (fixed-size) lists of numbers, lists of (token, score) pairs for top-k
    predictions, plain values otherwise."""
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        shape, inner = [], kind
        while pa.types.is_fixed_size_list(inner):
            shape.append(inner.list_size)
            inner = inner.value_type
        if pa.types.is_floating(inner) or pa.types.is_integer(inner):
            flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            for _ in shape:
                flat = flat.flatten()
            return list(flat.to_numpy(zero_copy_only=False).reshape(len(column), *shape))
    values = column.to_pylist()
    if kind == _TOP_K:
        return [[[(item["token"], item["score"]) for item in position] for position in row]
                for row in values]
    if pa.types.is_list(kind):
        return [np.asarray(value) if value and not isinstance(value[0], str) else value
                for value in values]
    return values


class ResultsModel(Model):
    """Results written by ``litdesk predict`` (here or on a cluster) as a model: it answers
    every example of the dataset they were made from by looking the example's inputs up, and
    says in one line that it cannot compute when asked about anything else."""

    #: Only the dataset's own rows have answers: no perturbation methods (LIME, occlusion).
    known_inputs_only = True

    def __init__(self, path: "Path | str", info: Mapping[str, Any], table: pa.Table) -> None:
        from litdesk.api.types import spec_from_json

        model = info["model"]
        self.path = Path(path)
        self.name = f"{model['name']} (results)"
        self.binding: dict[str, str] = dict(info["binding"])
        self.dataset_info: dict[str, Any] = dict(info["dataset"])
        self._input_spec = spec_from_json(model["input_spec"])
        self._output_spec = {name: t for name, t in spec_from_json(model["output_spec"]).items()
                             if name in table.column_names}
        self._fingerprint = f"results:{model['fingerprint']}:{self.dataset_info['digest']}"
        self._table = table
        self._rows: Optional[dict[tuple, int]] = None

    def input_spec(self) -> Spec:
        return self._input_spec

    def output_spec(self) -> Spec:
        return self._output_spec

    def fingerprint(self) -> str:
        return self._fingerprint

    def max_minibatch_size(self) -> int:
        return 4096

    def check_dataset(self, dataset: Dataset) -> None:
        """ResultsError unless ``dataset`` is the one these results were made from."""
        missing = [column for column in self.binding.values()
                   if column not in dataset.table.column_names]
        if missing:
            raise ResultsError(f"{self.path}: dataset {dataset.name} has no column "
                               f"{', '.join(missing)}, which these results were made from")
        rows = self.dataset_info["rows"]
        first = dataset.table.slice(0, rows)
        if len(first) < rows or dataset_digest(Dataset(first, dataset.spec(), dataset.name),
                                               self.binding) != self.dataset_info["digest"]:
            raise ResultsError(
                f"{self.path}: made from another dataset ({self.dataset_info['name']}, "
                f"{rows:,} rows) than {dataset.name} ({len(dataset):,} rows)")
        if self._table.num_rows != rows:
            raise ResultsError(f"{self.path}: holds {self._table.num_rows:,} of the dataset's "
                               f"{rows:,} rows (an unfinished or partial job?)")

    def _key(self, example: Mapping[str, Any]) -> tuple:
        return tuple(_hashable(example.get(name)) for name in sorted(self.binding))

    def attach(self, dataset: Dataset) -> None:
        """Check ``dataset`` and index its examples' inputs to the results' rows."""
        self.check_dataset(dataset)
        columns = {name: dataset.table.column(column).slice(0, self._table.num_rows)
                   .to_pylist() for name, column in self.binding.items()}
        names = sorted(self.binding)
        lookup: dict[tuple, int] = {}
        for row in range(self._table.num_rows):
            lookup.setdefault(tuple(_hashable(columns[name][row]) for name in names), row)
        self._rows = lookup

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.predict_fields(inputs, self._output_spec)

    def predict_fields(self, inputs: Sequence[dict[str, Any]], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        if self._rows is None:
            raise ResultsError(f"{self.path}: results not attached to a dataset")
        rows = []
        for example in inputs:
            row = self._rows.get(self._key(example))
            if row is None:
                raise ResultsError(f"{self.path} holds no result for this input (a row added "
                                   "or edited here?); open the model itself to predict it")
            rows.append(row)
        picked = self._table.take(pa.array(np.asarray(rows, np.int64)))
        columns = {name: python_values(picked.column(name)) for name in fields
                   if name in self._output_spec}
        return [{name: values[i] for name, values in columns.items()}
                for i in range(len(rows))]


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    return value


def read_results_model(path: "Path | str") -> ResultsModel:
    """The results at ``path`` as a model, not yet attached to a dataset. A shard of a
    folder written on Ray (``part-<row>.parquet``) stands for its whole folder."""
    path = Path(path)
    if path.is_file() and re.fullmatch(r"part-\d{12}\.parquet", path.name):
        path = path.parent
    info, table = read_results(path)
    return ResultsModel(path, info, table)


def is_results(path: "Path | str") -> bool:
    """Whether ``path`` is a results file or folder written by ``litdesk predict``."""
    return results_info(path) is not None


def open_results(path: "Path | str", dataset: Dataset) -> ResultsModel:
    """The results at ``path`` attached to ``dataset`` (ResultsError when they do not
    belong to it)."""
    model = read_results_model(path)
    model.attach(dataset)
    return model

