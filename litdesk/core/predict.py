"""Running a model over a dataset: input binding, the batched predict job, stored results."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.columnar import content_digest
from litdesk.core.jobs import Job, Progress

#: Output types kept for every row by a bulk run; token-level outputs are per-example work.
ROW_LEVEL_TYPES = (types.MulticlassPreds, types.RegressionScore, types.Embeddings, types.Scalar)


class SpecMismatchError(ValueError):
    """The model needs an input the dataset does not have."""


#: How the user settles which column an input reads, when several would do.
CHOOSE_INPUTS = "choose in Models ▸ Inputs…"


#: Where a model keeps the input mappings the user chose, by dataset name (in the instance's
#: own ``__dict__``: a deferred model must not load its real model to answer).
_MAPPINGS_ATTRIBUTE = "_litdesk_input_mappings"


def input_mapping(model: Model, dataset_name: str) -> dict[str, str]:
    """The columns the user mapped ``model``'s input fields to on the dataset called
    ``dataset_name`` (field -> column; empty when none)."""
    return dict(getattr(model, "__dict__", {}).get(_MAPPINGS_ATTRIBUTE, {}).get(dataset_name, {}))


def set_input_mapping(model: Model, dataset_name: str, mapping: dict[str, str]) -> None:
    """Read ``model``'s input fields from these columns of the dataset ``dataset_name``
    (field -> column); the fields left out bind by name or type, as before."""
    mappings = vars(model).setdefault(_MAPPINGS_ATTRIBUTE, {})
    mappings[dataset_name] = {str(field): str(column) for field, column in mapping.items()}


def input_candidates(model: Model, dataset: Dataset) -> dict[str, list[str]]:
    """Per model input field, the dataset columns of its type that it could read."""
    data_spec = dataset.spec()
    by_type: dict[type, list[str]] = {}
    for column, column_type in data_spec.items():
        by_type.setdefault(type(column_type), []).append(column)
    return {name: list(by_type.get(type(field_type), ()))
            for name, field_type in model.input_spec().items()}


def bind_inputs(model: Model, dataset: Dataset) -> dict[str, str]:
    """Map each model input field to a dataset column.

    A field reads the column the user mapped it to (:func:`set_input_mapping`) while that
    column still has the field's type, else the column of the same name, else the only column
    of the same type. Raises :class:`SpecMismatchError` naming the required fields that find
    no column, and the columns to choose from when several would do.
    """
    return bind_with(model, dataset, input_mapping(model, dataset.name))


def mapping_problem(model: Model, dataset: Dataset, mapping: dict[str, str]) -> str | None:
    """Why ``model`` could not read ``dataset`` with ``mapping`` (field -> column), or None."""
    try:
        bind_with(model, dataset, mapping)
    except SpecMismatchError as error:
        return str(error)
    return None


def bind_with(model: Model, dataset: Dataset, mapped: dict[str, str]) -> dict[str, str]:
    """:func:`bind_inputs` with the fields in ``mapped`` read from the columns it names."""
    data_spec = dataset.spec()
    binding: dict[str, str] = {}
    missing, ambiguous = [], []
    for name, field_type in model.input_spec().items():
        chosen = mapped.get(name)
        if chosen in data_spec and type(data_spec[chosen]) is type(field_type):
            binding[name] = chosen
            continue
        if name in data_spec:
            binding[name] = name
            continue
        same_type = [col for col, t in data_spec.items() if type(t) is type(field_type)]
        if len(same_type) == 1:
            binding[name] = same_type[0]
        elif same_type and field_type.required:
            shown = ", ".join(same_type[:6]) + (", …" if len(same_type) > 6 else "")
            ambiguous.append(f"{name} ({field_type.type_name}: one of {shown})")
        elif field_type.required:
            missing.append(f"{name} ({field_type.type_name})")
    if missing:
        raise SpecMismatchError(
            f"model {model.name} needs {', '.join(missing)}, which dataset {dataset.name} lacks")
    if ambiguous:
        raise SpecMismatchError(
            f"model {model.name} can read several columns of dataset {dataset.name} for "
            f"{'; '.join(ambiguous)}: {CHOOSE_INPUTS}")
    return binding


def model_inputs(model: Model, dataset: Dataset, rows) -> list[dict[str, Any]]:
    """The examples at ``rows`` keyed by the model's input names."""
    binding = bind_inputs(model, dataset)
    columns = dataset.table.select(list(dict.fromkeys(binding.values())))
    sub = Dataset(columns, {c: dataset.spec()[c] for c in columns.column_names}, dataset.name)
    return [{name: example[col] for name, col in binding.items()}
            for example in sub.examples(rows)]


@dataclass
class Predictions:
    """A model's row-level outputs for a dataset: one array per output field, row-aligned."""

    model_name: str
    dataset_name: str
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    spec: dict[str, types.FieldType] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.fields.values()))) if self.fields else 0

    def first_of(self, field_type: type) -> str | None:
        """The name of the first output field of ``field_type``, or None."""
        return next((name for name, t in self.spec.items() if isinstance(t, field_type)), None)

    def appended(self, more: "Predictions") -> "Predictions":
        """These predictions followed by ``more`` (the same model's, for rows added since)."""
        fields = {name: _concatenate(values, more.fields[name])
                  for name, values in self.fields.items() if name in more.fields}
        return Predictions(self.model_name, self.dataset_name, fields, dict(self.spec))

    def predicted_labels(self) -> tuple[str, np.ndarray, tuple[str, ...]] | None:
        """(field, argmax class index per row, vocab) of the first classification output."""
        name = self.first_of(types.MulticlassPreds)
        if name is None:
            return None
        vocab = self.spec[name].vocab  # type: ignore[attr-defined]
        return name, np.argmax(self.fields[name], axis=1), tuple(vocab)


def _length_order(model: Model, dataset: Dataset, start: int, stop: int) -> np.ndarray:
    """Rows ``start`` to ``stop`` in an order that batches texts of similar length together
    (less padding)."""
    binding = bind_inputs(model, dataset)
    text_columns = [col for name, col in binding.items()
                    if isinstance(model.input_spec()[name], types.TextSegment)]
    if not text_columns:
        return np.arange(start, stop, dtype=np.int64)
    import pyarrow.compute as pc

    column = dataset.table.column(text_columns[0]).slice(start, stop - start)
    lengths = pc.utf8_length(column.fill_null("")).to_numpy(zero_copy_only=False)
    return start + np.argsort(lengths, kind="stable").astype(np.int64)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device running out of memory (torch's or any framework's)."""
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()


#: Per model fingerprint, the batch size that last fitted after an out-of-memory error.
_fitted_batch_sizes: dict[str, int] = {}


def predict_rows(model: Model, inputs: list[dict[str, Any]], batch_size: int,
                 fields: Collection[str]) -> list[dict[str, Any]]:
    """``model.predict_fields`` over ``inputs`` in batches; on out-of-memory, halve the batch
    and retry.

    The smaller size is remembered for the model, so later calls start there.
    """
    size = min(batch_size, _fitted_batch_sizes.get(model.fingerprint(), batch_size))
    outputs: list[dict[str, Any]] = []
    start = 0
    while start < len(inputs):
        try:
            outputs.extend(model.predict_fields(inputs[start:start + size], fields))
        except Exception as error:
            if not is_out_of_memory(error) or size == 1:
                raise
            size //= 2
            _fitted_batch_sizes[model.fingerprint()] = size
            _release_device_memory()
            continue
        start += size
    return outputs


def _release_device_memory() -> None:
    import sys

    torch = sys.modules.get("torch")  # only a model that imported torch can hold its memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _stack(values: list[Any]) -> np.ndarray:
    arrays = [np.asarray(value) for value in values]
    if arrays and all(a.shape == arrays[0].shape and a.dtype.kind in "fiub" for a in arrays):
        return np.stack(arrays).astype(np.float32, copy=False) if arrays[0].dtype.kind == "f" \
            else np.stack(arrays)
    ragged = np.empty(len(values), dtype=object)
    ragged[:] = values
    return ragged


def _concatenate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    if first.dtype != object and second.dtype != object and first.shape[1:] == second.shape[1:]:
        return np.concatenate([first, second])
    return _stack([*first, *second])  # ragged now (say, longer token lists): one object each


def _assemble(pieces: list[np.ndarray], rows: np.ndarray, count: int) -> np.ndarray:
    """One row-aligned array of ``count`` rows from ``pieces``, whose rows, one after the
    other, are the rows at ``rows``."""
    numeric = all(p.dtype != object and p.shape[1:] == pieces[0].shape[1:] for p in pieces)
    if pieces and numeric:
        out = np.empty((count, *pieces[0].shape[1:]), np.result_type(*pieces))
        out[rows] = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return out
    values = np.empty(count, dtype=object)
    values[rows] = [value for piece in pieces for value in piece]
    return _stack(list(values))  # numeric again if the pieces only differed by batch


def _complete(columns: dict[str, np.ndarray] | None, kept: Collection[str],
              count: int | None = None) -> bool:
    """Whether stored ``columns`` hold every kept field (for ``count`` rows, if given)."""
    return columns is not None and all(
        name in columns and (count is None or len(columns[name]) == count) for name in kept)


def _rows_in(columns: dict[str, np.ndarray]) -> int:
    return len(next(iter(columns.values())))


class _Counter:
    """Rows done so far, for the progress of a job made of several parts."""

    def __init__(self, model: Model, total: int) -> None:
        self.model, self.total, self.done = model, total, 0

    def add(self, rows: int) -> Progress:
        self.done += rows
        return Progress(self.done, self.total, f"{self.model.name}: predicting")


def predict_job(model: Model, dataset: Dataset, batch_size: int | None = None,
                cache: ResultCache | None = None, fields: Sequence[str] | None = None,
                chunk_rows: int = 4096) -> Job[Predictions]:
    """Predict every row, in length order, yielding progress; results are row-aligned.

    ``fields`` names the outputs to keep (default: the row-level ones: classes, scores,
    embeddings). With a ``cache``, the rows loaded from the dataset's file are stored and
    found again as one entry of columns, keyed by the model, the content of the columns it
    reads and the fields, so reopening a large file costs one lookup and no model run. A
    cancelled run keeps what it finished (every ``chunk_rows`` rows, and when stopped) and
    resumes there. Rows made here (edits, generated ones) are stored one by one, found again
    whatever dataset they join.
    """
    n = len(dataset)
    batch_size = batch_size or model.max_minibatch_size()
    spec = model.output_spec()
    kept = {name: t for name, t in spec.items()
            if (name in fields if fields is not None else isinstance(t, ROW_LEVEL_TYPES))}
    if not n or not kept:
        return Predictions(model.name, dataset.name,
                           {name: np.zeros((0,), dtype=np.float32) for name in kept}, kept)
    yield Progress(0, n, f"{model.name}: predicting {n:,} rows")
    counter = _Counter(model, n)
    loaded = _loaded_rows(dataset)
    columns = {name: [] for name in kept}
    if loaded:
        found = yield from _predict_loaded(model, dataset, loaded, kept, batch_size, chunk_rows,
                                           cache, counter)
        for name in kept:
            columns[name].append(found[name])
    if loaded < n:
        made = yield from _predict_each(model, dataset, _length_order(model, dataset, loaded, n),
                                        kept, batch_size, chunk_rows, cache, counter)
        for name in kept:
            columns[name].append(made[name])
    joined = {name: parts[0] if len(parts) == 1 else _concatenate(*parts)
              for name, parts in columns.items()}
    return Predictions(model.name, dataset.name, joined, kept)


def _loaded_rows(dataset: Dataset) -> int:
    """How many rows come first from the dataset's file, before any row made here."""
    from litdesk.core.datapoints import generated_rows  # it builds on this module

    made = generated_rows(dataset)
    return int(made[0]) if len(made) else len(dataset)


def _predict_loaded(model: Model, dataset: Dataset, count: int, kept: dict[str, Any],
                    batch_size: int, chunk_rows: int, cache: ResultCache | None,
                    counter: _Counter) -> Job[dict[str, np.ndarray]]:
    """The first ``count`` rows' outputs as columns: one cached entry, else computed in
    parts (stored as they finish, so a cancelled run resumes), then stored whole.

    The data's share of the key is a hash of the Arrow buffers of the columns the model reads
    (:func:`~litdesk.core.columnar.content_digest`, about 0.3 s per 100 MB of text): exact,
    where a file's path, size and time would miss an edit within the same second or keep a
    copy apart, and datasets given from Python have no file at all.
    """
    binding = bind_inputs(model, dataset)
    whole = None
    if cache is not None:
        digest = content_digest(dataset.table.column(column).slice(0, count)
                                for column in sorted(set(binding.values())))
        whole = result_key("predict-columns", model.fingerprint(),
                           {"inputs": binding, "data": digest, "rows": count},
                           {"fields": sorted(kept)})
        found = cache.get_columns(whole)
        if _complete(found, kept, count):
            yield counter.add(count)
            return found
    order = _length_order(model, dataset, 0, count)
    pieces: list[dict[str, np.ndarray]] = []  # outputs of the rows in ``order``, in turn
    stored: list[bytes] = []  # the keys of the parts in the cache

    def part_key(start: int) -> bytes:
        return result_key("predict-part", whole.hex(), {"start": start})

    position = 0
    while whole is not None and position < count:
        part = cache.get_columns(part_key(position))
        if not _complete(part, kept) or not _rows_in(part):
            break
        pieces.append(part)
        stored.append(part_key(position))
        position += _rows_in(part)
    if position:
        yield counter.add(position)
    unsaved: list[dict[str, np.ndarray]] = []

    def save() -> None:
        nonlocal position
        if whole is None or not unsaved:
            return
        rows = sum(map(_rows_in, unsaved))
        part = {name: _assemble([piece[name] for piece in unsaved], np.arange(rows), rows)
                for name in kept}
        cache.put_columns(part_key(position), part)
        stored.append(part_key(position))
        position += rows
        unsaved.clear()

    try:
        for start in range(position, count, chunk_rows):
            rows = order[start:start + chunk_rows]
            inputs = model_inputs(model, dataset, rows)
            for batch_start in range(0, len(rows), batch_size):
                outputs = predict_rows(model, inputs[batch_start:batch_start + batch_size],
                                       batch_size, kept)
                piece = {name: _stack([output[name] for output in outputs]) for name in kept}
                pieces.append(piece)
                unsaved.append(piece)
                yield counter.add(len(outputs))
            save()
    finally:  # also when cancelled (closed at a yield) or failed: what finished is kept
        save()
    columns = {name: _assemble([piece[name] for piece in pieces], order, count) for name in kept}
    if whole is not None:
        cache.put_columns(whole, columns)
        cache.discard(stored)
    return columns


def _predict_each(model: Model, dataset: Dataset, order: np.ndarray, kept: dict[str, Any],
                  batch_size: int, chunk_rows: int, cache: ResultCache | None,
                  counter: _Counter) -> Job[dict[str, np.ndarray]]:
    """The outputs of the rows at ``order`` (in that order), each stored on its own."""
    params = {"fields": sorted(kept)}
    fingerprint = model.fingerprint()
    results: list[dict[str, Any] | None] = [None] * len(order)
    for start in range(0, len(order), chunk_rows):
        inputs = model_inputs(model, dataset, order[start:start + chunk_rows])
        keys = [result_key("predict", fingerprint, example, params) for example in inputs] \
            if cache is not None else [b""] * len(inputs)
        cached = cache.get_many(keys) if cache is not None else {}
        missing = [i for i, key in enumerate(keys) if key not in cached]
        for i, key in enumerate(keys):
            if key in cached:
                results[start + i] = cached[key]
        yield counter.add(len(inputs) - len(missing))
        for batch_start in range(0, len(missing), batch_size):
            batch = missing[batch_start:batch_start + batch_size]
            outputs = predict_rows(model, [inputs[i] for i in batch], batch_size, kept)
            fresh = [{name: output[name] for name in kept} for output in outputs]
            for i, output in zip(batch, fresh):
                results[start + i] = output
            if cache is not None:
                cache.put_many((keys[i], output) for i, output in zip(batch, fresh))
            yield counter.add(len(batch))
    back = np.argsort(order, kind="stable")  # row order again
    return {name: _stack([results[i][name] for i in back]) for name in kept}
