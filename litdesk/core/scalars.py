"""Scores against fields: the numbers behind the Scalars dock, Qt-free and vectorised.

A binary classifier calls a row positive when its positive-class probability is at least
the threshold (``p >= t``), the rule scikit-learn's curves use, so a threshold picked here
lands exactly on a point of those curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from litdesk.api import types
from litdesk.core.metrics import positive_index as positive_class
from litdesk.core.outcomes import ModelOutcome
from litdesk.core.predict import Predictions


@dataclass(frozen=True)
class Score:
    """One plottable number per row from a model: a class probability or a regression output."""

    model: str
    field: str
    class_index: Optional[int] = None  # the column of a MulticlassPreds field
    class_name: Optional[str] = None

    @property
    def name(self) -> str:
        """What it is, e.g. ``P(positive)`` or the regression field's name."""
        return self.field if self.class_name is None else f"P({self.class_name})"

    @property
    def label(self) -> str:
        """How the UI names it, e.g. ``bow_linear: P(positive)``."""
        return f"{self.model}: {self.name}"

    def values(self, predictions: Predictions) -> np.ndarray:
        """The score of every row, as float64."""
        column = predictions.fields[self.field]
        if self.class_index is not None:
            column = column[:, self.class_index]
        return np.asarray(column, dtype=np.float64).reshape(len(predictions))

    def of_output(self, output: dict) -> float:
        """The score in one prediction (a dict from ``Model.predict``)."""
        value = np.asarray(output[self.field], dtype=np.float64)
        return float(value[self.class_index] if self.class_index is not None else value)


def model_scores(predictions: Predictions) -> list[Score]:
    """Every score a model offers: each class of each classification output, each regression."""
    scores = []
    for name, field_type in predictions.spec.items():
        if isinstance(field_type, types.MulticlassPreds):
            scores += [Score(predictions.model_name, name, index, str(label))
                       for index, label in enumerate(field_type.vocab)]
        elif isinstance(field_type, (types.RegressionScore, types.Scalar)):
            scores.append(Score(predictions.model_name, name))
    return scores


def primary_score(model_name: str, output_spec: types.Spec) -> Optional[Score]:
    """A model's headline score: the first classification output's positive class when it
    is binary (else its first class), or else the first regression output."""
    for name, field_type in output_spec.items():
        if isinstance(field_type, types.MulticlassPreds) and field_type.vocab:
            index = positive_class(field_type)
            index = 0 if index is None else index
            return Score(model_name, name, index, str(field_type.vocab[index]))
    for name, field_type in output_spec.items():
        if isinstance(field_type, types.RegressionScore):
            return Score(model_name, name)
    return None


def binary_score(predictions: Predictions) -> Optional[Score]:
    """The positive-class probability of the model's first classification output, if binary."""
    name = predictions.first_of(types.MulticlassPreds)
    if name is None or positive_class(predictions.spec[name]) is None:
        return None
    return primary_score(predictions.model_name, predictions.spec)


# -- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdPoint:
    """Where one threshold puts a binary classifier on its PR and ROC curves."""

    precision: float
    recall: float
    false_positive_rate: float


@dataclass(frozen=True)
class BinaryCurves:
    """A binary classifier's PR and ROC curves, as scikit-learn computes them, with AUCs."""

    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    roc_thresholds: np.ndarray
    roc_auc: float
    average_precision: float


@dataclass(frozen=True)
class ThresholdCounts:
    """A binary classifier's calls at every threshold, from one sort of its scores.

    For each distinct score (descending), the true and false positives of ``p >= score``;
    the counts, metrics and curve points of any threshold are then a binary search away, so
    moving a threshold costs nothing even at a million rows.
    """

    scores: np.ndarray  # distinct scores, descending
    true_positives: np.ndarray  # of p >= scores[i]
    false_positives: np.ndarray
    positives: int
    negatives: int
    negated: np.ndarray  # -scores, ascending: what a binary search needs

    @classmethod
    def of(cls, gold_is_positive, p_positive) -> "ThresholdCounts":
        """Count ``gold_is_positive`` rows against their ``p_positive`` scores."""
        gold = np.asarray(gold_is_positive, dtype=bool)
        scores = np.asarray(p_positive, dtype=np.float64)
        if gold.shape != scores.shape or gold.ndim != 1:
            raise ValueError(f"gold and scores differ in shape: {gold.shape} vs {scores.shape}")
        order = np.argsort(-scores, kind="stable")
        sorted_scores = scores[order]
        true_positives = np.cumsum(gold[order])
        false_positives = np.arange(1, len(scores) + 1) - true_positives
        # The last position of each run of equal scores: every tied row is on the same side.
        last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1] \
            if len(scores) else np.zeros(0, dtype=np.int64)
        positives = int(true_positives[-1]) if len(scores) else 0
        distinct = sorted_scores[last_of_run]
        return cls(distinct, true_positives[last_of_run], false_positives[last_of_run],
                   positives, len(scores) - positives, -distinct)

    def at(self, threshold: float) -> tuple[int, int]:
        """(true positives, false positives) of calling ``p >= threshold`` positive."""
        called = int(np.searchsorted(self.negated, -threshold, side="right"))
        if called == 0:
            return 0, 0
        return int(self.true_positives[called - 1]), int(self.false_positives[called - 1])

    def point(self, threshold: float) -> ThresholdPoint:
        """Precision, recall (the true positive rate) and false positive rate at ``threshold``.

        Precision is 1 when nothing is called positive, as on scikit-learn's PR curve.
        """
        true_positives, false_positives = self.at(threshold)
        called = true_positives + false_positives
        return ThresholdPoint(true_positives / called if called else 1.0,
                              true_positives / self.positives if self.positives else 0.0,
                              false_positives / self.negatives if self.negatives else 0.0)

    def metrics(self, threshold: float) -> dict[str, float]:
        """Accuracy, precision, recall and F1 of the positive class at ``threshold``, as
        :func:`~litdesk.core.metrics.classification_metrics` computes them (0 where a ratio
        is undefined; NaN without rows)."""
        total = self.positives + self.negatives
        if total == 0:
            return dict.fromkeys(("accuracy", "precision", "recall", "f1"), float("nan"))
        true_positives, false_positives = self.at(threshold)
        called = true_positives + false_positives

        def ratio(numerator: int, denominator: int) -> float:
            return numerator / denominator if denominator else 0.0

        return {"accuracy": (true_positives + self.negatives - false_positives) / total,
                "precision": ratio(true_positives, called),
                "recall": ratio(true_positives, self.positives),
                "f1": ratio(2 * true_positives, called + self.positives)}

    def optimal(self, cost_false_positive: float = 1.0,
                cost_false_negative: float = 1.0) -> float:
        """The threshold minimising ``cost_fp * FP + cost_fn * FN`` over the observed scores.

        Candidates are the distinct scores and one just above the highest score (nothing
        positive). Ties go to the highest threshold.
        """
        if cost_false_positive < 0 or cost_false_negative < 0:
            raise ValueError("costs must not be negative")
        if not len(self.scores):
            raise ValueError("no scores to choose a threshold from")
        costs = np.r_[cost_false_negative * self.positives,  # nothing called positive
                      cost_false_positive * self.false_positives
                      + cost_false_negative * (self.positives - self.true_positives)]
        best = int(np.argmin(costs))
        if best == 0:
            return float(np.nextafter(self.scores[0], np.inf))
        return float(self.scores[best - 1])

    def curves(self) -> BinaryCurves:
        """The PR and ROC curves and their areas, as scikit-learn's ``precision_recall_curve``,
        ``roc_curve`` (without the points inside straight runs), ``roc_auc_score`` and
        ``average_precision_score`` compute them, in time linear in the distinct scores.

        Raises ValueError when the gold labels hold only one class (no curve is defined).
        """
        if not self.positives or not self.negatives:
            raise ValueError("curves need gold labels of both classes")
        true_positives = self.true_positives.astype(np.float64)
        false_positives = self.false_positives.astype(np.float64)
        precision = true_positives / (true_positives + false_positives)
        recall = true_positives / self.positives
        pr_precision, pr_recall = np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]
        kept = np.arange(len(self.scores))
        if len(kept) > 2:  # a point between two in line with it adds nothing
            kept = np.flatnonzero(np.r_[True, np.logical_or(np.diff(false_positives, 2),
                                                            np.diff(true_positives, 2)), True])
        fpr = np.r_[0.0, false_positives[kept]] / self.negatives
        tpr = np.r_[0.0, true_positives[kept]] / self.positives
        return BinaryCurves(pr_precision, pr_recall, self.scores[::-1], fpr, tpr,
                            np.r_[np.inf, self.scores[kept]], float(np.trapezoid(tpr, fpr)),
                            float(max(0.0, -np.sum(np.diff(pr_recall) * pr_precision[:-1]))))


@dataclass(frozen=True)
class BinaryOutcome:
    """A binary classifier's calls on the rows with a gold label among its classes: its
    threshold counts and, when both classes are present, its curves."""

    score: Score  # the positive-class probability
    counts: ThresholdCounts
    curves: Optional[BinaryCurves]


def binary_outcome(outcome: ModelOutcome, predictions: Predictions) -> Optional[BinaryOutcome]:
    """The :class:`BinaryOutcome` of a model, or None when it is not a binary classifier with
    gold labels."""
    score = binary_score(predictions)
    if score is None or outcome.gold is None or score.field != outcome.field:
        return None
    labelled = outcome.has_gold
    counts = ThresholdCounts.of(outcome.gold[labelled] == score.class_index,
                                score.values(predictions)[labelled])
    return BinaryOutcome(score, counts,
                         counts.curves() if counts.positives and counts.negatives else None)


# -- axes ------------------------------------------------------------------------------------


def stable_jitter(rows, width: float = 0.3, seed: int = 0) -> np.ndarray:
    """An offset in [-width, width) per row, fixed by the row number and ``seed`` alone.

    Hashing the row number (SplitMix64) instead of drawing from a generator keeps a point
    where it was when other rows are added, removed or redrawn.
    """
    state = np.asarray(rows, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        state = state + np.uint64(0x9E3779B97F4A7C15)
        state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state = state ^ (state >> np.uint64(31))
    unit = (state >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return (unit * 2.0 - 1.0) * width
