"""Outcomes: what every view shows about the models' classifications, computed once.

Per classifier: the predicted label of each row, its confidence, the gold label (as an index
into the model's vocabulary) and whether the prediction is right; across classifiers, the
rows where their predicted labels differ. The workbench computes them on the runner whenever
predictions, the gold column or the rows change, and keeps them on the session; the table,
projector, comparison, scalars, metrics and confusion views read them instead of
recomputing. Categories are encoded by :func:`~litdesk.core.categories.encode_categories`,
the one encoder of litdesk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

from litdesk.api import Dataset
from litdesk.core.categories import MISSING, encode_categories
from litdesk.core.jobs import Job, Progress, run_job
from litdesk.core.metrics import gold_column, positive_index
from litdesk.core.predict import Predictions


@dataclass(frozen=True)
class ModelOutcome:
    """One classifier's outcome on every row of a dataset."""

    field: str  # the MulticlassPreds output it comes from
    labels: tuple[str, ...]  # the model's vocabulary
    predicted: np.ndarray  # per row, the index of the predicted label
    confidence: np.ndarray  # per row, the probability of the predicted label
    gold_column: Optional[str]  # the dataset column of gold labels, None when there is none
    gold: Optional[np.ndarray]  # per row, the gold label's index in ``labels``, -1 if unknown
    #: Gold labels the model cannot predict (not in ``labels``) and their rows, most first;
    #: those rows are left out of its metrics.
    unpredictable: tuple[tuple[str, int], ...] = ()

    @property
    def has_gold(self) -> Optional[np.ndarray]:
        """Per row, whether its gold label is one the model can predict (None: no gold)."""
        return None if self.gold is None else self.gold != MISSING

    @property
    def correct(self) -> Optional[np.ndarray]:
        """Per row, whether the prediction equals the gold label (False where unknown)."""
        return None if self.gold is None else self.gold == self.predicted

    def predicted_names(self) -> np.ndarray:
        """The predicted label of each row, as text."""
        return np.asarray(self.labels, dtype=object)[self.predicted]


@dataclass(frozen=True)
class Outcomes:
    """Every classifier's :class:`ModelOutcome` on one dataset, and where they disagree."""

    dataset_name: str
    num_rows: int
    models: Mapping[str, ModelOutcome]
    disagree: np.ndarray  # per row, whether the classifiers' predicted labels differ

    def accuracy(self, model: str, rows: Optional[np.ndarray] = None) -> Optional[float]:
        """The share of ``rows`` (default: all) with a known gold label that ``model`` gets
        right; None without gold or rows."""
        outcome = self.models.get(model)
        if outcome is None or outcome.gold is None:
            return None
        known = outcome.has_gold if rows is None else rows[outcome.has_gold[rows]]
        right = outcome.correct[known]
        return float(right.mean()) if right.size else None


def model_outcome(dataset: Dataset, predictions: Predictions,
                  threshold: Optional[float] = None) -> Optional[ModelOutcome]:
    """The outcome of one model's predictions, or None when it has no classification output.

    With ``threshold``, a binary classifier predicts its positive class where that class's
    probability is at least the threshold (the rule of the Scalars dock and the metrics)."""
    labelled = predictions.predicted_labels()
    if labelled is None:
        return None
    field, predicted, labels = labelled
    probabilities = predictions.fields[field]
    positive = positive_index(predictions.spec[field])
    if threshold is not None and positive is not None:
        predicted = np.where(probabilities[:, positive] >= threshold, positive, 1 - positive)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    gold_name = gold_column(dataset, predictions.spec)
    gold = None if gold_name is None else encode_categories(
        dataset.table.column(gold_name), labels, closed=True).codes
    unpredictable = () if gold is None else _unpredictable(dataset.table.column(gold_name),
                                                           gold == MISSING)
    return ModelOutcome(field, tuple(str(label) for label in labels), predicted.astype(np.int64),
                        confidence, gold_name, gold, unpredictable)


def _unpredictable(column, unknown: np.ndarray) -> tuple[tuple[str, int], ...]:
    """The gold values of the rows in ``unknown`` (not a label of the model, or missing),
    missing ones left out, with their counts, most first."""
    if not unknown.any():
        return ()
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.drop_null(pc.filter(column, pa.array(unknown)))
    if not len(values):
        return ()
    counts = pc.value_counts(values.cast(pa.string()) if not pa.types.is_string(values.type)
                             else values)
    pairs = [(str(item["values"]), int(item["counts"])) for item in counts.to_pylist()]
    return tuple(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))


def unpredictable_note(model: str, outcome: ModelOutcome) -> Optional[str]:
    """"1,021 rows with gold `neutral`, which bert_tiny cannot predict, are left out", or None
    when every gold label is one the model predicts."""
    if not outcome.unpredictable:
        return None
    shown = outcome.unpredictable[:3]
    (value, count), *others = shown
    parts = [f"{count:,} {'row' if count == 1 else 'rows'} with gold `{value}`"]
    parts += [f"{count:,} with gold `{value}`" for value, count in others]
    rest = sum(count for _value, count in outcome.unpredictable[3:])
    if rest:
        parts.append(f"{rest:,} with other gold labels")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    total = sum(count for _value, count in outcome.unpredictable)
    return f"{listed}, which {model} cannot predict, {'is' if total == 1 else 'are'} left out"


def disagreement(models: Mapping[str, ModelOutcome], num_rows: int) -> np.ndarray:
    """Per row, whether the models' predicted labels differ (compared by name, not index)."""
    disagree = np.zeros(num_rows, dtype=bool)
    outcomes = list(models.values())
    if len(outcomes) < 2:
        return disagree
    names = list(dict.fromkeys(label for outcome in outcomes for label in outcome.labels))
    position = {label: index for index, label in enumerate(names)}
    first = None
    for outcome in outcomes:
        shared = np.asarray([position[label] for label in outcome.labels])[outcome.predicted]
        if first is None:
            first = shared
        else:
            disagree |= shared != first
    return disagree


def compute_outcomes(dataset: Dataset, predictions: Mapping[str, Predictions],
                     thresholds: Optional[Mapping[str, float]] = None) -> Outcomes:
    """The :class:`Outcomes` of ``predictions`` (by model name) on ``dataset``; ``thresholds``
    (by model name) are the binary classifiers' decision thresholds."""
    return run_job(outcomes_job(dataset, predictions, thresholds))


def outcomes_job(dataset: Dataset, predictions: Mapping[str, Predictions],
                 thresholds: Optional[Mapping[str, float]] = None) -> Job[Outcomes]:
    """:func:`compute_outcomes` as a job (a step per model), for the runner."""
    thresholds = thresholds or {}
    models: dict[str, ModelOutcome] = {}
    for done, (name, model_predictions) in enumerate(predictions.items()):
        yield Progress(done, len(predictions), f"Outcomes of {name}")
        if len(model_predictions) != len(dataset):
            continue  # predictions of rows added since, still on their way
        outcome = model_outcome(dataset, model_predictions, thresholds.get(name))
        if outcome is not None:
            models[name] = outcome
    return Outcomes(dataset.name, len(dataset), models, disagreement(models, len(dataset)))
