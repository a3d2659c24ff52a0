"""The Model Comparison dock, driven through the window: the whole-dataset toggle, ✓/✗ marks,
the disagreements filter, and the primary row against the pinned reference."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt

from litdesk.api import Boolean, CategoryLabel, Dataset, MulticlassPreds, Scalar
from litdesk.core.jobs import run_job
from litdesk.core.predict import Predictions, predict_job
from litdesk.core.session import Session
from litdesk.ui.docks import comparison
from litdesk.ui.docks.comparison import CHANGED, DISAGREE, NO_PIN_HINT, ComparisonDock
from tests.fakes import KeywordModel
from tests.test_gui import ROWS, window, write_csv  # noqa: F401 (the window fixture)

#: Always says "negative": right on rows 1, 3 and 5, and disagrees with "keywords" on 0, 2, 4.
CAUTIOUS_BIAS = -2.5


@pytest.fixture
def two_models(qtbot, window, tmp_path):  # noqa: F811 (the fixture imported above)
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    for model in (KeywordModel(), KeywordModel("cautious", bias=CAUTIOUS_BIAS)):
        window.session.add_model(model)
        window.session.set_predictions(run_job(predict_job(model, window.session.dataset)))
    return window


def settle(qtbot, window):
    """Let the per-row jobs the clicks started end while the window still exists."""
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)


def click_table_row(qtbot, window, row):
    view, model = window.table_dock.view, window.table_dock.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(row, 0)).center())
    assert window.session.selection.primary == row


def column_of(table, header):
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    return headers.index(header)


def test_whole_dataset_toggle_counts_every_row(qtbot, two_models):
    dock = two_models.comparison_dock
    click_table_row(qtbot, two_models, 1)
    assert dock.table.rowCount() == 1
    assert "<b>1</b> selected" in dock.summary.text()
    qtbot.mouseClick(dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.whole_dataset.isChecked()
    assert dock.table.rowCount() == len(ROWS)
    summary = dock.summary.text()
    assert "all <b>6</b> rows" in summary and "models disagree on <b>3</b>" in summary
    assert "keywords accuracy <b>100.0%</b>" in summary
    assert "cautious accuracy <b>50.0%</b>" in summary
    qtbot.mouseClick(dock.only_disagreements, Qt.MouseButton.LeftButton)
    shown = [dock.table.item(r, 0).text() for r in range(dock.table.rowCount())]
    assert shown == ["0", "2", "4"]
    assert dock.table.item(0, 0).background().color() == DISAGREE
    qtbot.mouseClick(dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.table.rowCount() == 0  # row 1: the models agree on it
    assert "<b>1</b> selected" in dock.summary.text()
    settle(qtbot, two_models)


def test_at_most_the_cap_is_listed_but_all_rows_are_counted(qtbot, two_models, monkeypatch):
    monkeypatch.setattr(comparison, "MAX_ROWS_SHOWN", 2)
    dock = two_models.comparison_dock
    qtbot.mouseClick(dock.whole_dataset, Qt.MouseButton.LeftButton)
    assert dock.table.rowCount() == 2
    assert "models disagree on <b>3</b>" in dock.summary.text()


def test_each_model_gets_a_correct_mark_against_the_gold(qtbot, two_models):
    dock = two_models.comparison_dock
    qtbot.mouseClick(dock.whole_dataset, Qt.MouseButton.LeftButton)
    table = dock.table
    # per model: its label, "p" and "✓"
    keywords, cautious = column_of(table, "keywords") + 2, column_of(table, "cautious") + 2
    assert table.horizontalHeaderItem(keywords).text() == "✓"
    assert "keywords" in table.horizontalHeaderItem(keywords).toolTip()
    assert [table.item(r, keywords).text() for r in range(6)] == ["✓"] * 6
    assert [table.item(r, cautious).text() for r in range(6)] == ["✗", "✓"] * 3
    assert table.item(0, cautious).foreground().color() == comparison.WRONG_COLOR
    label_cell = table.item(0, column_of(table, "keywords"))
    assert label_cell.text() == "positive"
    assert label_cell.toolTip().splitlines()[0].startswith("p(positive) 0.8")
    assert "p(negative)" in label_cell.toolTip()
    dock.gold_choice.setCurrentIndex(dock.gold_choice.findData(None))  # no gold: no marks
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert "✓" not in headers and headers.count("p") == 2
    assert "accuracy" not in dock.summary.text()


def test_the_data_table_gets_a_correct_column_per_model(two_models):
    table = two_models.table_dock.model.table
    assert table.column("keywords_correct").to_pylist() == [True] * 6
    assert table.column("cautious_correct").to_pylist() == [False, True] * 3
    assert isinstance(two_models.table_dock.display_spec()["cautious_correct"], Boolean)


def test_the_primary_row_is_compared_with_the_pinned_one_field_by_field(qtbot, two_models):
    dock = two_models.comparison_dock
    click_table_row(qtbot, two_models, 3)
    assert dock.pair_hint.text() == NO_PIN_HINT and dock.pair_table.isHidden()
    view = two_models.table_dock.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert "Select another row" in dock.pair_hint.text() and dock.pair_table.isHidden()
    click_table_row(qtbot, two_models, 4)
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
    table = dock.table
    rect = table.visualItemRect(table.item(1, 0))  # row 0 leads with the pinned reference
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert two_models.session.selection.primary == int(table.item(1, 0).text())
    assert dock.pair_table.horizontalHeaderItem(2).text() == table.item(1, 0).text()
    settle(qtbot, two_models)


def test_the_whole_dataset_summary_at_a_million_rows(qtbot):
    rows = 1_000_000
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b", "c"])
    gold = labels[rng.integers(0, 3, rows)]
    dataset = Dataset(pa.table({"x": rng.random(rows), "label": gold}),
                      {"x": Scalar(), "label": CategoryLabel(vocab=tuple(labels))}, "big")
    session = Session()
    session.set_dataset(dataset)
    dock = ComparisonDock(session)
    qtbot.addWidget(dock)
    for name in ("first", "second"):
        probs = rng.random((rows, 3)).astype(np.float32)
        session.set_predictions(Predictions(name, "big", {"probas": probs}, {
            "probas": MulticlassPreds(vocab=tuple(labels), parent="label")}))
    session.select([0])
    start = time.perf_counter()
    dock.whole_dataset.setChecked(True)
    first_seconds = time.perf_counter() - start
    assert dock.table.rowCount() == comparison.MAX_ROWS_SHOWN
    assert "all <b>1,000,000</b> rows" in dock.summary.text()
    predicted = np.argmax(session.predictions["first"].fields["probas"], axis=1)
    accuracy = np.mean(labels[predicted] == gold)
    assert f"first accuracy <b>{accuracy:.1%}</b>" in dock.summary.text()
    start = time.perf_counter()
    session.select([5])  # outcomes are kept: only the summary and the listed rows are redone
    assert time.perf_counter() - start < max(1.0, first_seconds)
