"""Partial dependence: one tabular feature swept over its range, the model's score per row.

Each chosen row is predicted once per grid value with only that feature replaced, giving
its individual conditional expectation (ICE) curve; their mean is the partial dependence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.core.jobs import Job, Progress
from litdesk.core.predict import bind_inputs, model_inputs, predict_rows
from litdesk.core.scalars import Score, primary_score

#: How many rows get their own curve when the dock picks them.
DEFAULT_ICE_ROWS = 200


@dataclass(frozen=True)
class PartialDependence:
    """A model's score along a feature's grid: one curve per row and their mean."""

    model: str
    feature: str  # the dataset column swept
    score: Score
    grid: np.ndarray  # numbers, or category names (object) when ``categorical``
    categorical: bool
    rows: np.ndarray  # the rows whose curves these are
    curves: np.ndarray  # (len(rows), len(grid))
    mean: np.ndarray  # (len(grid),)


def tabular_features(model: Model, dataset: Dataset) -> dict[str, str]:
    """The dataset columns a model reads as numeric or categorical features, mapped to the
    model's input names; gold-label inputs (named as an output's ``parent``) are left out."""
    try:
        binding = bind_inputs(model, dataset)
    except ValueError:
        return {}
    gold_inputs = {getattr(t, "parent", None) for t in model.output_spec().values()}
    return {column: name for name, column in binding.items()
            if name not in gold_inputs
            and isinstance(model.input_spec()[name], (types.Scalar, types.CategoryLabel))}


def feature_grid(dataset: Dataset, feature: str, grid_points: int = 20
                 ) -> tuple[np.ndarray, bool]:
    """The values to sweep ``feature`` over and whether it is categorical.

    A numeric column gets up to ``grid_points`` distinct quantiles (whole numbers for an
    integer column); a categorical one its vocabulary, else its distinct values.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    field_type = dataset.spec().get(feature)
    column = dataset.table.column(feature).drop_null()
    integer = pa.types.is_integer(column.type)
    if (integer or pa.types.is_floating(column.type)) \
            and not isinstance(field_type, types.CategoryLabel):
        values = column.to_numpy().astype(np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            raise ValueError(f"column {feature} has no numbers to sweep")
        grid = np.unique(np.quantile(values, np.linspace(0.0, 1.0, max(2, grid_points))))
        if integer:
            grid = np.unique(np.round(grid)).astype(np.int64)
        return grid, False
    vocab = getattr(field_type, "vocab", None)
    names = list(vocab) if vocab else sorted(str(v) for v in pc.unique(column).to_pylist())
    if not names:
        raise ValueError(f"column {feature} has no values to sweep")
    return np.asarray(names, dtype=object), True


def ice_rows(num_rows: int, selected=(), primary: Optional[int] = None,
             limit: int = DEFAULT_ICE_ROWS, seed: int = 0) -> np.ndarray:
    """The rows to draw curves for: the selection when it holds several rows, else the whole
    dataset, sampled (seeded) down to ``limit``; the primary row is always among them."""
    pool = np.asarray(selected, dtype=np.int64)
    if pool.size < 2:
        pool = np.arange(num_rows, dtype=np.int64)
    if pool.size > limit:
        pool = np.random.default_rng(seed).choice(pool, limit, replace=False)
    if primary is not None:
        pool = np.union1d(pool, [primary])
    return np.unique(pool)


def partial_dependence_job(model: Model, dataset: Dataset, feature: str, rows,
                           grid_points: int = 20, score: Optional[Score] = None
                           ) -> Job[PartialDependence]:
    """Sweep ``feature`` over its grid for each of ``rows``, predicting in batches.

    ``score`` defaults to the model's headline score (see :func:`primary_score`).
    Raises ValueError when the model does not read ``feature`` or has no score to plot.
    """
    input_name = tabular_features(model, dataset).get(feature)
    if input_name is None:
        raise ValueError(f"model {model.name} does not read {feature} as a tabular feature")
    score = score or primary_score(model.name, model.output_spec())
    if score is None:
        raise ValueError(f"model {model.name} has no class probability or regression output")
    grid, categorical = feature_grid(dataset, feature, grid_points)
    rows = np.asarray(rows, dtype=np.int64)
    examples = model_inputs(model, dataset, rows)
    grid_values = grid.tolist()
    total = len(rows) * len(grid_values)
    batch_size = model.max_minibatch_size()
    scores = np.empty(total, dtype=np.float64)
    yield Progress(0, total, f"{model.name}: partial dependence on {feature}")
    # Position k of the flat sweep is grid value k // len(rows) applied to row k % len(rows).
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        inputs = [{**examples[k % len(rows)], input_name: grid_values[k // len(rows)]}
                  for k in range(start, stop)]
        outputs = predict_rows(model, inputs, batch_size, [score.field])
        scores[start:stop] = [score.of_output(output) for output in outputs]
        yield Progress(stop, total, f"{model.name}: partial dependence on {feature}")
    curves = scores.reshape(len(grid_values), len(rows)).T
    mean = curves.mean(axis=0) if len(rows) else np.full(len(grid_values), np.nan)
    return PartialDependence(model.name, feature, score, grid, categorical, rows, curves, mean)
