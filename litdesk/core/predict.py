"""Running a model over a dataset: input binding, the batched predict job, stored results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litdesk.api import Dataset, Model, types
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


def predict_job(model: Model, dataset: Dataset, batch_size: int | None = None
                ) -> Job[Predictions]:
    """Predict every row, batch by batch in length order, yielding progress per batch."""
    n = len(dataset)
    batch_size = batch_size or model.max_minibatch_size()
    kept = {name: t for name, t in model.output_spec().items() if isinstance(t, ROW_LEVEL_TYPES)}
    order = _length_order(model, dataset)
    columns: dict[str, list[Any]] = {name: [] for name in kept}
    yield Progress(0, n, f"{model.name}: predicting {n:,} rows")
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        outputs = model.predict(model_inputs(model, dataset, rows))
        for name in kept:
            columns[name].extend(output[name] for output in outputs)
        yield Progress(min(start + batch_size, n), n, f"{model.name}: predicting")
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    fields = {name: np.asarray(values, dtype=np.float32)[inverse] if values
              else np.zeros((0,), dtype=np.float32) for name, values in columns.items()}
    return Predictions(model.name, dataset.name, fields, kept)
