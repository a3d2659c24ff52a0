"""Row-position arrays: the sets of rows that selections, slices and queries pass around."""

from __future__ import annotations

import numpy as np


def sorted_unique(rows) -> np.ndarray:
    """``rows`` as ascending int64 positions without repeats.

    The same as ``np.unique`` for integers, but by sorting: NumPy 2.4's ``np.unique`` hashes
    and is 60× slower on a third of a million rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size < 2 or bool(np.all(rows[1:] > rows[:-1])):
        return rows
    rows = np.sort(rows)
    first = np.ones(rows.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    return rows[first]


def contains(rows: np.ndarray, row: int) -> bool:
    """Whether ``row`` is among ``rows`` (ascending, as :func:`sorted_unique` gives), in
    logarithmic time."""
    position = np.searchsorted(rows, row)
    return bool(position < rows.size and rows[position] == row)


def symmetric_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The rows in exactly one of two ascending, unique row arrays (ascending); by sorting,
    like :func:`sorted_unique`."""
    both = np.sort(np.concatenate([first, second]))
    once = np.ones(both.size, dtype=bool)
    repeated = both[1:] == both[:-1]
    once[1:] &= ~repeated
    once[:-1] &= ~repeated
    return both[once]
