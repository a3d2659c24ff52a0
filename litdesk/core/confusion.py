"""Confusion matrices of two categorical fields (gold vs a model, model vs model), vectorised.

A field is :class:`~litdesk.core.outcomes.Categories` (an integer code per dataset row and the
label of each code: a column through :func:`~litdesk.core.categories.encode_categories`, a
model's predicted labels from its outcome); counting is then one ``np.bincount`` over the
rows asked for, and the rows behind any cell, row or column come from comparing codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from litdesk.core.categories import MISSING, Categories
from litdesk.core.rows import sorted_unique

MISSING_LABEL = "(missing)"
#: The most labels an axis may have; beyond that a matrix is unreadable (and its counts huge).
MAX_LABELS = 200


def _relabel(categories: Categories, labels: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """The codes of ``rows`` re-expressed as positions in ``labels`` (missing stays missing)."""
    position = {label: index for index, label in enumerate(labels)}
    lookup = np.array([position[label] for label in categories.labels] + [MISSING],
                      dtype=np.int64)
    return lookup[categories.codes[rows]]


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of each (row label, column label) pair over a set of dataset rows."""

    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    counts: np.ndarray  # (len(row_labels), len(column_labels)) int64
    rows: np.ndarray  # the dataset rows counted, sorted
    row_codes: np.ndarray  # per counted row, its index in row_labels
    column_codes: np.ndarray  # per counted row, its index in column_labels

    def cell_rows(self, row: int, column: int) -> np.ndarray:
        """The dataset rows counted in cell (``row``, ``column``)."""
        return self.rows[(self.row_codes == row) & (self.column_codes == column)]

    def row_rows(self, row: int) -> np.ndarray:
        """The dataset rows counted in a whole row of the matrix."""
        return self.rows[self.row_codes == row]

    def column_rows(self, column: int) -> np.ndarray:
        """The dataset rows counted in a whole column of the matrix."""
        return self.rows[self.column_codes == column]

    def row_fractions(self) -> np.ndarray:
        """Each count divided by its row's total (0 for an empty row)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def diagonal(self) -> np.ndarray:
        """A boolean mask of the cells whose row and column labels are equal."""
        return np.equal.outer(np.array(self.row_labels, dtype=object),
                              np.array(self.column_labels, dtype=object))


def confusion_matrix(row_field: Categories, column_field: Categories,
                     rows: Optional[np.ndarray] = None) -> ConfusionMatrix:
    """Count (row label, column label) pairs over ``rows`` (default: every row).

    When the two fields share a label (gold vs a model), both axes list the union of their
    labels in the same order, so the diagonal holds the agreements. Missing values get a
    ``(missing)`` label of their own, only when there are any. Raises ``ValueError`` for an axis
    with more than :data:`MAX_LABELS` labels.
    """
    if len(row_field.codes) != len(column_field.codes):
        raise ValueError(f"the fields have {len(row_field.codes):,} and "
                         f"{len(column_field.codes):,} rows")
    if rows is None:
        rows = np.arange(len(row_field.codes), dtype=np.int64)
    else:
        rows = sorted_unique(rows)
    if set(row_field.labels) & set(column_field.labels):
        shared = tuple(dict.fromkeys(row_field.labels + column_field.labels))
        row_labels = column_labels = shared
    else:
        row_labels, column_labels = row_field.labels, column_field.labels
    if max(len(row_labels), len(column_labels)) > MAX_LABELS:
        raise ValueError(f"{max(len(row_labels), len(column_labels)):,} values on one axis; "
                         f"a confusion matrix takes fields with at most {MAX_LABELS}")
    row_codes = _relabel(row_field, row_labels, rows)
    column_codes = _relabel(column_field, column_labels, rows)
    if np.any(row_codes < 0):
        row_labels += (MISSING_LABEL,)
        row_codes = np.where(row_codes < 0, len(row_labels) - 1, row_codes)
    if np.any(column_codes < 0):
        column_labels += (MISSING_LABEL,)
        column_codes = np.where(column_codes < 0, len(column_labels) - 1, column_codes)
    width = len(column_labels)
    counts = np.bincount(row_codes * width + column_codes,
                         minlength=len(row_labels) * width).reshape(len(row_labels), width)
    return ConfusionMatrix(row_labels, column_labels, counts, rows, row_codes, column_codes)
