"""The Model Comparison dock, driven through the window: the whole-dataset toggle, ✓/✗ marks,
the disagreements filter, and the primary row against the pinned reference."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt

from litdesk.api import Boolean, CategoryLabel, Dataset, MulticlassPreds, Scalar
from litdesk.core.jobs import run_job
from litdesk.core.outcomes import compute_outcomes
from litdesk.core.predict import Predictions, predict_job
from litdesk.core.session import Session
from litdesk.ui.docks import comparison
from litdesk.ui.docks.comparison import CHANGED, DISAGREE, NO_PIN_HINT, ComparisonDock
from tests.fakes import KeywordModel
from tests.helpers import ROWS, cell, click_table_row, headers, shows_outcomes, write_csv

#: Always says "negative": right on rows 1, 3 and 5, and disagrees with "keywords" on 0, 2, 4.
CAUTIOUS_BIAS = -2.5


@pytest.fixture
def two_models(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    for model in (KeywordModel(), KeywordModel("cautious", bias=CAUTIOUS_BIAS)):
        window.session.add_model(model)
        window.session.set_predictions(run_job(predict_job(model, window.session.dataset)))
    shows_outcomes(qtbot, window, "keywords", "cautious")
    return window


def settle(qtbot, window):
    """Let the per-row jobs the clicks started end while the window still exists."""
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)


def listed_after(qtbot, dock, action, *args):
    """Do ``action`` and wait until the comparison shows what it computed for it."""
    with qtbot.waitSignal(dock.listed, timeout=60_000):
        action(*args)


def column_of(dock, header):
    return headers(dock).index(header)


def listed(dock) -> list[str]:
    """The rows the comparison table lists (its first column)."""
    return [cell(dock, r, 0) for r in range(dock.model.rowCount())]


def test_whole_dataset_toggle_counts_every_row(qtbot, two_models):
    dock = two_models.comparison_dock
    listed_after(qtbot, dock, click_table_row, qtbot, two_models, 1)
    assert dock.model.rowCount() == 1
    assert "<b>1</b> selected" in dock.summary.text()
    listed_after(qtbot, dock, qtbot.mouseClick, dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.whole_dataset.isChecked()
    assert dock.model.rowCount() == len(ROWS)
    summary = dock.summary.text()
    assert "all <b>6</b> rows" in summary and "models disagree on <b>3</b>" in summary
    assert "keywords accuracy <b>100.0%</b>" in summary
    assert "cautious accuracy <b>50.0%</b>" in summary
    listed_after(qtbot, dock, qtbot.mouseClick, dock.only_disagreements,
                 Qt.MouseButton.LeftButton)
    assert listed(dock) == ["0", "2", "4"]
    assert cell(dock, 0, 0, Qt.ItemDataRole.BackgroundRole).color() == DISAGREE
    listed_after(qtbot, dock, qtbot.mouseClick, dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.model.rowCount() == 0  # row 1: the models agree on it
    assert "<b>1</b> selected" in dock.summary.text()
    settle(qtbot, two_models)


def test_at_most_the_cap_is_listed_but_all_rows_are_counted(qtbot, two_models, monkeypatch):
    monkeypatch.setattr(comparison, "MAX_ROWS_SHOWN", 2)
    dock = two_models.comparison_dock
    listed_after(qtbot, dock, qtbot.mouseClick, dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.model.rowCount() == 2
    assert "models disagree on <b>3</b>" in dock.summary.text()


def test_each_model_gets_a_correct_mark_against_the_gold(qtbot, two_models):
    dock = two_models.comparison_dock
    listed_after(qtbot, dock, qtbot.mouseClick, dock.whole_dataset, Qt.MouseButton.LeftButton)
    # per model: its label, "p" and "✓"
    keywords, cautious = column_of(dock, "keywords") + 2, column_of(dock, "cautious") + 2
    assert headers(dock)[keywords] == "✓"
    assert "keywords" in headers(dock, Qt.ItemDataRole.ToolTipRole)[keywords]
    assert [cell(dock, r, keywords) for r in range(6)] == ["✓"] * 6
    assert [cell(dock, r, cautious) for r in range(6)] == ["✗", "✓"] * 3
    assert cell(dock, 0, cautious, Qt.ItemDataRole.ForegroundRole).color() == \
        comparison.WRONG_COLOR
    label = column_of(dock, "keywords")
    assert cell(dock, 0, label) == "positive"
    tooltip = cell(dock, 0, label, Qt.ItemDataRole.ToolTipRole)
    assert tooltip.splitlines()[0].startswith("p(positive) 0.8") and "p(negative)" in tooltip
    listed_after(qtbot, dock, dock.gold_choice.setCurrentIndex,  # no gold: no marks
                 dock.gold_choice.findData(None))
    assert "✓" not in headers(dock) and headers(dock).count("p") == 2
    assert "accuracy" not in dock.summary.text()


def test_the_data_table_gets_a_correct_column_per_model(two_models):
    table = two_models.table_dock.model.table
    assert table.column("keywords_correct").to_pylist() == [True] * 6
    assert table.column("cautious_correct").to_pylist() == [False, True] * 3
    assert isinstance(two_models.table_dock.display_spec()["cautious_correct"], Boolean)


def test_the_primary_row_is_compared_with_the_pinned_one_field_by_field(qtbot, two_models):
    dock = two_models.comparison_dock
    listed_after(qtbot, dock, click_table_row, qtbot, two_models, 3)
    assert dock.pair_hint.text() == NO_PIN_HINT and dock.pair_table.isHidden()
    view = two_models.table_dock.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert "Select another row" in dock.pair_hint.text() and dock.pair_table.isHidden()
    listed_after(qtbot, dock, click_table_row, qtbot, two_models, 4)
    assert not dock.pair_table.isHidden()
    pair = dock.pair_table
    lines = {pair.item(r, 0).text(): r for r in range(pair.rowCount())}
    assert pair.horizontalHeaderItem(1).text() == "★ 3"
    assert pair.horizontalHeaderItem(2).text() == "4"

    def cells(name):
        return [pair.item(lines[name], c).text() for c in range(4)]

    def highlighted(name):
        return pair.item(lines[name], 1).background().color() == CHANGED

    assert cells("text")[1:3] == ["broke after a day", "excellent screen"]
    assert cells("keywords label")[1:3] == ["negative", "positive"]
    assert highlighted("text") and highlighted("label") and highlighted("keywords label")
    assert cells("cautious label")[1:3] == ["negative", "negative"]
    assert not highlighted("cautious label")
    assert float(cells("keywords p(positive)")[3]) > 0  # the primary's is higher
    assert "of" in dock.pair_hint.text() and "values differ" in dock.pair_hint.text()

    # a click in the comparison table moves the primary; the pair follows
    rect = dock.table.visualRect(dock.model.index(1, 0))  # row 0: the pinned reference
    qtbot.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert two_models.session.selection.primary == int(cell(dock, 1, 0))
    assert dock.pair_table.horizontalHeaderItem(2).text() == cell(dock, 1, 0)
    settle(qtbot, two_models)


def test_the_whole_dataset_summary_at_a_million_rows(qtbot, runner):
    rows = 1_000_000
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b", "c"])
    gold = labels[rng.integers(0, 3, rows)]
    dataset = Dataset(pa.table({"x": rng.random(rows), "label": gold}),
                      {"x": Scalar(), "label": CategoryLabel(vocab=tuple(labels))}, "big")
    session = Session()
    session.set_dataset(dataset)
    dock = ComparisonDock(session, runner)
    qtbot.addWidget(dock)
    dock.show()
    for name in ("first", "second"):
        probs = rng.random((rows, 3)).astype(np.float32)
        session.set_predictions(Predictions(name, "big", {"probas": probs}, {
            "probas": MulticlassPreds(vocab=tuple(labels), parent="label")}))
    listed_after(qtbot, dock, session.set_outcomes,
                 compute_outcomes(dataset, session.predictions))
    listed_after(qtbot, dock, session.select, [0])
    listed_after(qtbot, dock, dock.whole_dataset.setChecked, True)
    assert dock.model.rowCount() == comparison.MAX_ROWS_SHOWN
    assert "all <b>1,000,000</b> rows" in dock.summary.text()
    predicted = np.argmax(session.predictions["first"].fields["probas"], axis=1)
    accuracy = np.mean(labels[predicted] == gold)
    assert f"first accuracy <b>{accuracy:.1%}</b>" in dock.summary.text()
    first_listing = dock.model.listing
    listed_after(qtbot, dock, session.select, [5])
    assert dock.model.listing is first_listing  # the same rows listed: the table is kept


def test_a_stale_listing_never_shows(qtbot, two_models, monkeypatch):
    """The listing for an older selection, finishing after a newer one, is dropped."""
    dock = two_models.comparison_dock
    release, original = threading.Event(), comparison.comparison_listing

    def slow_for_row_1(dataset, outcomes, probabilities, gold, selected, *rest):
        if selected is not None and selected.tolist() == [1]:
            release.wait(10)
        return original(dataset, outcomes, probabilities, gold, selected, *rest)

    monkeypatch.setattr(comparison, "comparison_listing", slow_for_row_1)
    two_models.session.select([1])  # its listing waits
    listed_after(qtbot, dock, two_models.session.select, [4])
    release.set()
    settle(qtbot, two_models)
    assert listed(dock) == ["4"]
    assert "<b>1</b> selected" in dock.summary.text()


def test_the_docks_read_the_outcomes_instead_of_the_predictions(qtbot, two_models,
                                                                 monkeypatch):
    def recomputed(_predictions):
        raise AssertionError("a dock recomputed the predicted labels")

    monkeypatch.setattr(Predictions, "predicted_labels", recomputed)
    window = two_models
    dock = window.comparison_dock
    listed_after(qtbot, dock, click_table_row, qtbot, window, 2)
    assert cell(dock, 0, column_of(dock, "cautious")) == "negative"
    listed_after(qtbot, dock, qtbot.mouseClick, dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert "models disagree on <b>3</b>" in dock.summary.text()
    table = window.table_dock
    section = table.model.table.column_names.index("cautious_pred")
    with qtbot.waitSignal(table.rows_shown, timeout=10_000):
        table.view.horizontalHeader().sectionClicked.emit(section)
    assert table.model.rows.tolist() == [0, 1, 2, 3, 4, 5]  # all "negative": a stable sort
    projector = window.projector_dock
    window.docks["Embedding Projector"].raise_()
    qtbot.waitUntil(lambda: projector.coords is not None, timeout=10_000)
    with qtbot.waitSignal(projector.drawn, timeout=10_000):
        projector.color_by.setCurrentIndex(projector.color_by.findText("models disagree?"))
    assert "disagree" in projector.legend.text()
    assert "keywords: positive" in projector.row_summary(0)
    assert window.errors == []
    settle(qtbot, window)
