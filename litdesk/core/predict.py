"""Running a model over a dataset: input binding, the batched predict job, stored results."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.jobs import Job, Progress

#: Output types kept for every row by a bulk run; token-level outputs are per-example work.
ROW_LEVEL_TYPES = (types.MulticlassPreds, types.RegressionScore, types.Embeddings, types.Scalar)


class SpecMismatchError(ValueError):
    """The model needs an input the dataset does not have."""


def bind_inputs(model: Model, dataset: Dataset) -> dict[str, str]:
    """Map each model input field to a dataset column.

    A field binds to the column of the same name, else to the only column of the same type.
    Raises :class:`SpecMismatchError` naming the required fields that find no column.
    """
    data_spec = dataset.spec()
    binding: dict[str, str] = {}
    missing = []
    for name, field_type in model.input_spec().items():
        if name in data_spec:
            binding[name] = name
            continue
        same_type = [col for col, t in data_spec.items() if type(t) is type(field_type)]
        if len(same_type) == 1:
            binding[name] = same_type[0]
        elif field_type.required:
            missing.append(f"{name} ({field_type.type_name})")
    if missing:
        raise SpecMismatchError(
            f"model {model.name} needs {', '.join(missing)}, which dataset {dataset.name} lacks")
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


def _length_order(model: Model, dataset: Dataset) -> np.ndarray:
    """Row order that batches texts of similar length together (less padding)."""
    binding = bind_inputs(model, dataset)
    text_columns = [col for name, col in binding.items()
                    if isinstance(model.input_spec()[name], types.TextSegment)]
    if not text_columns:
        return np.arange(len(dataset), dtype=np.int64)
    import pyarrow.compute as pc

    lengths = pc.utf8_length(dataset.table.column(text_columns[0]).fill_null(""))
    return np.argsort(lengths.to_numpy(zero_copy_only=False), kind="stable").astype(np.int64)


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


def predict_job(model: Model, dataset: Dataset, batch_size: int | None = None,
                cache: ResultCache | None = None, fields: Sequence[str] | None = None,
                chunk_rows: int = 4096) -> Job[Predictions]:
    """Predict every row, in length order, yielding progress; results are row-aligned.

    ``fields`` names the outputs to keep (default: the row-level ones: classes, scores,
    embeddings). With a ``cache``, rows predicted before (by this model, with the same
    inputs) are read instead of run, and each chunk is stored as it completes, so a
    cancelled run resumes where it stopped.
    """
    n = len(dataset)
    batch_size = batch_size or model.max_minibatch_size()
    spec = model.output_spec()
    kept = {name: t for name, t in spec.items()
            if (name in fields if fields is not None else isinstance(t, ROW_LEVEL_TYPES))}
    params = {"fields": sorted(kept)}
    fingerprint = model.fingerprint()
    order = _length_order(model, dataset)
    results: list[dict[str, Any] | None] = [None] * n
    done = 0
    yield Progress(0, n, f"{model.name}: predicting {n:,} rows")
    for start in range(0, n, chunk_rows):
        rows = order[start:start + chunk_rows]
        inputs = model_inputs(model, dataset, rows)
        keys = [result_key("predict", fingerprint, example, params) for example in inputs] \
            if cache is not None else [b""] * len(inputs)
        cached = cache.get_many(keys) if cache is not None else {}
        missing = [i for i, key in enumerate(keys) if key not in cached]
        for i, key in enumerate(keys):
            if key in cached:
                results[rows[i]] = cached[key]
        done += len(rows) - len(missing)
        for batch_start in range(0, len(missing), batch_size):
            batch = missing[batch_start:batch_start + batch_size]
            outputs = predict_rows(model, [inputs[i] for i in batch], batch_size, kept)
            fresh = [{name: output[name] for name in kept} for output in outputs]
            for i, output in zip(batch, fresh):
                results[rows[i]] = output
            if cache is not None:
                cache.put_many((keys[i], output) for i, output in zip(batch, fresh))
            done += len(batch)
            yield Progress(done, n, f"{model.name}: predicting")
        yield Progress(done, n, f"{model.name}: predicting")
    columns = {name: _stack([result[name] for result in results]) for name in kept} \
        if n else {name: np.zeros((0,), dtype=np.float32) for name in kept}
    return Predictions(model.name, dataset.name, columns, kept)
