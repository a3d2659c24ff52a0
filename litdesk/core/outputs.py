"""Every output of a model for one example: the per-example job behind the Model Outputs dock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litdesk.api import Dataset, Model, types
from litdesk.api.model import Example
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.jobs import Job, Progress
from litdesk.core.predict import bind_inputs, model_inputs

#: Output types whose ``parent`` names a gold (or reference) field worth showing beside them.
GOLD_TYPES = (types.MulticlassPreds, types.RegressionScore, types.GeneratedText)


def unlabelled_example(model: Model, dataset: Dataset, row: int) -> Example:
    """The model's inputs at ``row`` without the gold labels its classifiers name, so that
    outputs depending on a target (gradients) explain the prediction, not the label."""
    (example,) = model_inputs(model, dataset, [row])
    for field_type in model.output_spec().values():
        if isinstance(field_type, types.MulticlassPreds) and field_type.parent:
            example.pop(field_type.parent, None)
    return example


def predict_example(model: Model, example: Example, fields: Sequence[str], kind: str,
                    cache: ResultCache | None = None) -> dict[str, Any]:
    """``fields`` of the model's output for one example: from ``cache`` when it holds them
    under ``kind``, else predicted and stored there. Fields the model leaves out are absent."""
    key = result_key(kind, model.fingerprint(), example, {"fields": list(fields)})
    output = cache.get_many([key]).get(key) if cache is not None else None
    if output is None:
        (full_output,) = model.predict_fields([example], fields)
        output = {name: full_output[name] for name in fields if name in full_output}
        if cache is not None:
            cache.put_many([(key, output)])
    return output


def example_outputs_job(model: Model, dataset: Dataset, row: int,
                        cache: ResultCache | None = None) -> Job[dict[str, Any]]:
    """All of the model's output fields for one row (gold labels withheld), cached as
    ``"outputs"``."""
    yield Progress(0, 1, f"{model.name}: outputs for row {row}")
    example = unlabelled_example(model, dataset, row)
    outputs = predict_example(model, example, list(model.output_spec()), "outputs", cache)
    yield Progress(1, 1)
    return outputs


def gold_values(model: Model, dataset: Dataset, row: int) -> dict[str, Any]:
    """Per output field of a :data:`GOLD_TYPES` type whose ``parent`` the dataset holds (by the
    model's input binding, else by name): the gold value at ``row``."""
    binding = bind_inputs(model, dataset)
    columns = {name: binding.get(field_type.parent, field_type.parent)
               for name, field_type in model.output_spec().items()
               if isinstance(field_type, GOLD_TYPES) and field_type.parent}
    present = {name: column for name, column in columns.items()
               if column in dataset.table.column_names}
    if not present:
        return {}
    (values,) = dataset.table.select(sorted(set(present.values()))).take([row]).to_pylist()
    return {name: values[column] for name, column in present.items()}
