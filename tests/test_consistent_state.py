"""One consistent state: one decision threshold per binary model for every dock, filters that
leave the selection alone, made datapoints that can be deleted and do not inherit gold or split,
a table that shows the top of a result, and dock settings that come back."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from litdesk.core.metrics import classification_metrics
from litdesk.core.settings import Settings
from litdesk.core.workbench import THRESHOLDS_SETTING, Workbench
from litdesk.ui.jobs import JobRunner
from tests.fakes import KeywordModel
from tests.helpers import load_with_model


def positive_probability(window, model="keywords") -> np.ndarray:
    return window.session.predictions[model].fields["probas"][:, 1]


def test_one_threshold_for_scalars_outcomes_confusion_and_metrics(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path, KeywordModel())
    scalars = window.scalars_dock
    window.docks["Scalars"].raise_()
    qtbot.waitUntil(lambda: scalars.threshold_box.isVisible(), timeout=30_000)
    p = positive_probability(window)
    threshold = float(np.round(np.sort(p)[-2], 3))  # only the top rows are called positive
    assert (p >= threshold).sum() < (p >= 0.5).sum()  # the top class would call more

    # The user types a threshold into the Scalars dock.
    with qtbot.waitSignal(window.session.outcomes_changed, timeout=30_000):
        scalars.threshold_spin.selectAll()
        qtbot.keyClicks(scalars.threshold_spin, f"{threshold:.3f}")
        qtbot.keyClick(scalars.threshold_spin, Qt.Key.Key_Return)
    assert window.session.threshold("keywords") == pytest.approx(threshold)
    outcome = window.session.outcomes.models["keywords"]
    np.testing.assert_array_equal(outcome.predicted, (p >= threshold).astype(int))

    # The Confusion Matrix counts the calls at that threshold.
    confusion = window.confusion_dock
    with qtbot.waitSignal(confusion.counted, timeout=30_000):
        window.docks["Confusion Matrix"].raise_()
    qtbot.waitUntil(lambda: confusion.model.matrix is not None and confusion.model.matrix
                    .counts[:, list(confusion.model.matrix.column_labels).index("positive")]
                    .sum() == (p >= threshold).sum(), timeout=30_000)

    # The Metrics dock measures at that threshold.
    metrics = window.metrics_dock
    window.docks["Metrics"].raise_()
    dataset = window.session.dataset
    expected = classification_metrics(dataset.table.column("label"),
                                      window.session.predictions["keywords"].fields["probas"],
                                      ("negative", "positive"), threshold, "positive")

    def measured():
        table = metrics.table_data
        return table is not None and any(
            entry.model == "keywords" and entry.group == "All data"
            and entry.values["recall"] == pytest.approx(expected["recall"])
            and entry.values["accuracy"] == pytest.approx(expected["accuracy"])
            for entry in table.entries)

    qtbot.waitUntil(measured, timeout=30_000)
    at_half = classification_metrics(dataset.table.column("label"),
                                     window.session.predictions["keywords"].fields["probas"],
                                     ("negative", "positive"), 0.5, "positive")
    assert at_half["recall"] != pytest.approx(expected["recall"])

    # Saved: the next launch starts from it.
    assert Settings().get(THRESHOLDS_SETTING) == {"keywords": pytest.approx(threshold)}
    runner = JobRunner()
    try:
        assert Workbench(runner).session.threshold("keywords") == pytest.approx(threshold)
    finally:
        runner.shutdown()
