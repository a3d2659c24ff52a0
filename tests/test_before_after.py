"""Before → after: rows that went wrong → right and right → wrong, accuracy per slice with its
change, in the core and in the Model Comparison dock."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pytest
from PySide6.QtCore import QPoint, Qt

from litdesk.core.before_after import ALL_ROWS, compare_before_after, default_pair
from litdesk.core.outcomes import ModelOutcome, Outcomes
from tests.helpers import write_toy_sentiment_csv


def outcome(predicted, gold):
    return ModelOutcome("probas", ("neg", "pos"), np.asarray(predicted), np.ones(len(predicted)),
                        "label", np.asarray(gold))


def test_rows_that_changed_and_accuracy_per_slice():
    gold = [0, 1, 1, 0, 1, -1]  # the last row has no gold label
    outcomes = Outcomes("data", 6, {"old": outcome([0, 0, 1, 1, 0, 0], gold),
                                    "new": outcome([0, 1, 0, 0, 1, 1], gold)},
                        np.zeros(6, dtype=bool))
    result = compare_before_after(outcomes, "old", "new", {"odd": np.array([1, 3, 5])})
    np.testing.assert_array_equal(result.fixed, [1, 3, 4])
    np.testing.assert_array_equal(result.broken, [2])
    assert (result.still_right, result.still_wrong) == (1, 0)
    everything, odd = result.slices
    assert (everything.name, everything.rows) == (ALL_ROWS, 5)
    assert everything.before == pytest.approx(2 / 5) and everything.after == pytest.approx(4 / 5)
    assert (odd.rows, odd.before, odd.after) == (2, 0.0, 1.0) and odd.delta == 1.0
    assert "3 wrong → right, 1 right → wrong" in result.summary


def test_a_model_without_gold_is_refused():
    outcomes = Outcomes("data", 2, {"a": outcome([0, 1], [0, 1]),
                                    "b": ModelOutcome("p", ("x",), np.zeros(2, int), np.ones(2),
                                                      None, None)}, np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="b has no gold label column"):
        compare_before_after(outcomes, "a", "b", {})


@pytest.mark.parametrize("models, pair", [
    (["bert"], None),
    (["bert", "bow", "bert (fine-tuned)"], ("bert", "bert (fine-tuned)")),
    (["bow", "data (linear baseline)"], ("bow", "data (linear baseline)")),
    (["a", "b"], ("a", "b")),
])
def test_the_trained_model_comes_after_the_model_it_came_from(models, pair):
    assert default_pair(models) == pair


def test_the_comparison_dock_selects_and_keeps_what_changed(window, qtbot, tmp_path):
    from litdesk.core import baselines

    data = write_toy_sentiment_csv(tmp_path / "reviews.csv", n=80)
    table = pyarrow.csv.read_csv(data)
    flipped = table.set_column(1, "label", pa.array(
        ["negative" if v == "positive" else "positive" for v in table.column("label").to_pylist()]))
    for name, rows in (("flipped", flipped), ("right", table)):  # a bad model, then a good one
        baseline = baselines.run_job(baselines.fit_baseline_job(rows, ["text"], "label", folds=2))
        baselines.save_baseline(baseline, tmp_path / name)
    window.docks["Model Comparison"].raise_()
    with qtbot.waitSignal(window.dataset_loaded, timeout=20_000):
        window.open_paths([data])
    panel = window.comparison_dock.before_after
    for name in ("flipped", "right"):
        with qtbot.waitSignal(window.model_loaded, timeout=30_000):
            window.open_paths([tmp_path / name])
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.after == "right",
                    timeout=30_000)
    assert panel.isVisible() and panel.before.currentText() == "flipped"
    assert len(panel.result.fixed) > 60 and panel.select_fixed.isEnabled()
    qtbot.mouseClick(panel.select_fixed, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(window.session.selection.rows, panel.result.fixed)
    assert panel.table.item(0, 0).text() == ALL_ROWS and panel.table.item(0, 4).text().startswith("+")
    qtbot.mouseClick(panel.save_slices, Qt.MouseButton.LeftButton)
    assert "wrong → right (flipped → right)" in window.session.slices
    qtbot.waitUntil(lambda: panel.table.rowCount() >= 2, timeout=10_000)  # the new slice listed
    assert not window.docks["Model Comparison"].grab().isNull()

    # In a short dock the panel scrolls: its choices, summary, buttons and table never overlap.
    window.resize(window.minimumSizeHint())
    def top(part) -> int:
        return part.mapTo(panel, QPoint(0, 0)).y()

    def stacked() -> bool:
        parts = (panel.before, panel.summary, panel.select_fixed, panel.table)
        return panel.height() < 200 and top(panel.save_slices) + panel.save_slices.height() \
            <= top(panel.table) and all(top(part) + part.height() <= top(below)
                                        for part, below in zip(parts, parts[1:]))

    qtbot.waitUntil(stacked, timeout=5_000)
