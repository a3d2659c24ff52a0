"""Before and after: how a model trained here changed on each row and slice against the model
it came from (or any other), read from the session's outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

from litdesk.core.outcomes import Outcomes

FIXED, BROKEN = "wrong → right", "right → wrong"
ALL_ROWS = "All rows"
#: What happened to each row (:func:`row_changes`), by its code: 0 went wrong → right,
#: 1 right → wrong, 2 stayed right, 3 stayed wrong, 4 has no gold label to judge both by.
CHANGES = (FIXED, BROKEN, "still right", "still wrong", "no gold label")
WENT_RIGHT, WENT_WRONG, STILL_RIGHT, STILL_WRONG, UNJUDGED = range(len(CHANGES))


@dataclass(frozen=True)
class SliceDelta:
    """One slice's accuracy before and after, over its rows with gold labels for both."""

    name: str
    rows: int
    before: Optional[float]
    after: Optional[float]

    @property
    def delta(self) -> Optional[float]:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class BeforeAfter:
    """The rows that went wrong → right (``fixed``) and right → wrong (``broken``), how many
    stayed right or wrong, and accuracy per slice (every row first)."""

    before: str
    after: str
    fixed: np.ndarray
    broken: np.ndarray
    still_right: int
    still_wrong: int
    slices: list[SliceDelta]

    @property
    def summary(self) -> str:
        judged = len(self.fixed) + len(self.broken) + self.still_right + self.still_wrong
        return (f"{self.before} → {self.after} on {judged:,} rows with gold labels: "
                f"{len(self.fixed):,} {FIXED}, {len(self.broken):,} {BROKEN}, "
                f"{self.still_right:,} still right, {self.still_wrong:,} still wrong")


def row_changes(outcomes: Outcomes, before: str, after: str) -> np.ndarray:
    """Per row, the code (an index of :data:`CHANGES`) of what happened to it from model
    ``before`` to model ``after``. ValueError when either has no outcome or no gold column."""
    judged = []
    for name in (before, after):
        outcome = outcomes.models.get(name)
        if outcome is None:
            raise ValueError(f"{name} has no classification outcome")
        if outcome.gold is None:
            raise ValueError(f"{name} has no gold label column to be judged against")
        judged.append(outcome)
    known = judged[0].has_gold & judged[1].has_gold
    right_before, right_after = judged[0].correct & known, judged[1].correct & known
    codes = np.full(outcomes.num_rows, UNJUDGED, dtype=np.int8)
    codes[known] = np.where(right_before, np.where(right_after, STILL_RIGHT, WENT_WRONG),
                            np.where(right_after, WENT_RIGHT, STILL_WRONG))[known]
    return codes


def compare_before_after(outcomes: Outcomes, before: str, after: str,
                         slices: Mapping[str, np.ndarray]) -> BeforeAfter:
    """Compare model ``after`` with ``before`` on every row both judge against a gold label.
    ValueError when either has no outcome or no gold column."""
    codes = row_changes(outcomes, before, after)
    known = codes != UNJUDGED
    right_before = (codes == STILL_RIGHT) | (codes == WENT_WRONG)
    right_after = (codes == STILL_RIGHT) | (codes == WENT_RIGHT)
    fixed = np.flatnonzero(codes == WENT_RIGHT)
    broken = np.flatnonzero(codes == WENT_WRONG)
    deltas = []
    for name, rows in {ALL_ROWS: None, **slices}.items():
        mask = known if rows is None else np.zeros(outcomes.num_rows, dtype=bool)
        if rows is not None:
            inside = np.asarray(rows, dtype=np.int64)
            mask[inside[inside < outcomes.num_rows]] = True
            mask &= known
        count = int(mask.sum())
        deltas.append(SliceDelta(name, count,
                                 float(right_before[mask].mean()) if count else None,
                                 float(right_after[mask].mean()) if count else None))
    return BeforeAfter(before, after, fixed, broken, int((codes == STILL_RIGHT).sum()),
                       int((codes == STILL_WRONG).sum()), deltas)


def default_pair(models: list[str]) -> Optional[tuple[str, str]]:
    """The likeliest before/after pair: the newest model trained here ("… (fine-tuned)",
    "… baseline)") after the model it names, else after the first; None with fewer than two."""
    if len(models) < 2:
        return None
    trained = [name for name in models if name.endswith(("(fine-tuned)", "baseline)"))
               or " (fine-tuned" in name]
    after = trained[-1] if trained else models[-1]
    stem = after.split(" (fine-tuned")[0]
    before = stem if stem in models and stem != after else \
        next(name for name in models if name != after)
    return before, after
