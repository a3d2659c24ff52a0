"""Confusion matrices: the counting against scikit-learn, and the dock driven by mouse clicks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import QPoint, Qt

from litdesk.api import CategoryLabel, Dataset, TextSegment
from litdesk.core.confusion import MAX_LABELS, MISSING_LABEL, confusion_matrix
from litdesk.core.categories import Categories, encode_categories
from litdesk.core.predict import Predictions
from litdesk.core.session import Session
from litdesk.core.workbench import Workbench
from litdesk.ui.docks.confusion import ConfusionDock
from litdesk.ui.jobs import JobRunner
from tests.fakes import KeywordModel
from tests.helpers import ROWS, load_with_model, predict

#: With this bias KeywordModel calls rows 1 and 5 positive; their gold label is negative.
BIAS = 0.7


def test_counts_equal_scikit_learns_confusion_matrix():
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    generator = np.random.default_rng(0)
    vocab = ("cat", "dog", "bird")
    gold = generator.choice(["dog", "cat", "bird", "fish"], size=5_000)
    predicted = generator.integers(0, len(vocab), size=5_000)
    matrix = confusion_matrix(encode_categories(pa.array(gold)),
                              Categories(predicted, vocab))
    assert matrix.row_labels == matrix.column_labels == ("bird", "cat", "dog", "fish")
    expected = sklearn_confusion_matrix(gold, np.array(vocab)[predicted],
                                        labels=list(matrix.row_labels))
    np.testing.assert_array_equal(matrix.counts, expected)
    np.testing.assert_array_equal(matrix.cell_rows(1, 2),
                                  np.flatnonzero((gold == "cat") & (predicted == 1)))


def test_only_the_rows_asked_for_are_counted_and_missing_values_get_a_row():
    gold = encode_categories(pa.array(["a", None, "b", "a", "b"]), ("b", "a"))
    predicted = Categories(np.array([0, 0, 1, 1, 0]), ("a", "b"))
    matrix = confusion_matrix(gold, predicted, rows=[0, 1, 3])
    assert matrix.row_labels == ("b", "a", MISSING_LABEL)
    assert matrix.column_labels == ("b", "a")
    np.testing.assert_array_equal(matrix.counts, [[0, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(matrix.row_rows(1), [0, 3])
    np.testing.assert_array_equal(matrix.column_rows(1), [0, 1])
    np.testing.assert_array_equal(matrix.diagonal()[:2], np.eye(2, dtype=bool))


def test_fields_with_no_label_in_common_keep_their_own_axes():
    topic = encode_categories(pa.array(["x", "y", "x"]))
    predicted = Categories(np.array([1, 0, 1]), ("no", "yes"))
    matrix = confusion_matrix(topic, predicted)
    assert (matrix.row_labels, matrix.column_labels) == (("x", "y"), ("no", "yes"))
    np.testing.assert_array_equal(matrix.counts, [[0, 2], [1, 0]])
    assert not matrix.diagonal().any()


def test_a_field_with_too_many_values_is_refused_with_a_message():
    ids = encode_categories(pa.array([f"id{i}" for i in range(MAX_LABELS + 1)]))
    predicted = Categories(np.zeros(MAX_LABELS + 1, dtype=np.int64), ("no", "yes"))
    with pytest.raises(ValueError, match=f"{MAX_LABELS + 1} values on one axis"):
        confusion_matrix(ids, predicted)


def gold_and_predicted(session: Session) -> tuple[np.ndarray, np.ndarray]:
    gold = np.array(session.dataset.table.column("label").to_pylist())
    return gold, session.outcomes.models["keywords"].predicted_names()


def click_cell(qtbot, dock: ConfusionDock, row_label: str, column_label: str) -> None:
    matrix = dock.model.matrix
    index = dock.model.index(matrix.row_labels.index(row_label),
                             matrix.column_labels.index(column_label))
    qtbot.mouseClick(dock.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=dock.view.visualRect(index).center())


def test_a_cell_click_selects_exactly_its_rows_everywhere(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.session.outcomes_changed, timeout=10_000):
        load_with_model(qtbot, window, tmp_path, KeywordModel(bias=BIAS))
    dock = window.confusion_dock
    assert dock.model.matrix is None  # a background tab counts nothing
    with qtbot.waitSignal(dock.counted, timeout=10_000):
        window.docks["Confusion Matrix"].raise_()
    qtbot.waitExposed(dock.view)
    assert (dock.row_choice.currentText(), dock.column_choice.currentText()) == \
        ("label", "keywords (prediction)")
    gold, predicted = gold_and_predicted(window.session)
    for row_label, column_label in (("negative", "positive"), ("positive", "positive")):
        click_cell(qtbot, dock, row_label, column_label)
        expected = np.flatnonzero((gold == row_label) & (predicted == column_label))
        np.testing.assert_array_equal(window.session.selection.rows, expected)
        assert sorted(index.row() for index in window.table_dock.view.selectionModel()
                      .selectedRows()) == expected.tolist()
    np.testing.assert_array_equal(window.session.selection.rows, [0, 2, 4])


@pytest.fixture
def dock(qtbot):
    runner = JobRunner()
    session = Workbench(runner).session
    texts, labels = zip(*ROWS)
    table = pa.table({"text": list(texts), "label": list(labels)})
    session.set_dataset(Dataset(table, {"text": TextSegment(), "label": CategoryLabel()},
                                "reviews"))
    model = KeywordModel(bias=BIAS)
    session.add_model(model)
    predict(qtbot, session, model)
    widget = ConfusionDock(session, runner)
    qtbot.addWidget(widget)
    widget.resize(500, 300)
    with qtbot.waitSignal(widget.counted, timeout=10_000):
        widget.show()
    qtbot.waitExposed(widget)
    yield widget
    runner.shutdown()


def test_header_clicks_select_a_whole_row_or_column(qtbot, dock):
    gold, predicted = gold_and_predicted(dock.session)
    header = dock.view.verticalHeader()
    section = dock.model.matrix.row_labels.index("negative")
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(
        header.width() // 2,
        header.sectionViewportPosition(section) + header.sectionSize(section) // 2))
    np.testing.assert_array_equal(dock.session.selection.rows, np.flatnonzero(gold == "negative"))

    header = dock.view.horizontalHeader()
    section = dock.model.matrix.column_labels.index("positive")
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(
        header.sectionViewportPosition(section) + header.sectionSize(section) // 2,
        header.height() // 2))
    np.testing.assert_array_equal(dock.session.selection.rows,
                                  np.flatnonzero(predicted == "positive"))


def test_row_percentages_and_selection_only(qtbot, dock):
    model = dock.model
    negative = model.matrix.row_labels.index("negative")
    positive = model.matrix.column_labels.index("positive")
    assert model.data(model.index(negative, positive)) == "2"
    qtbot.mouseClick(dock.row_percent, Qt.MouseButton.LeftButton)
    assert model.data(model.index(negative, positive)) == "66.7%"

    with qtbot.waitSignal(dock.counted, timeout=10_000):
        qtbot.mouseClick(dock.selection_only, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dock.counted, timeout=10_000):
        dock.session.select([0, 1, 3])
    assert model.matrix.counts.sum() == 3
    assert model.data(model.index(negative, positive)) == "50.0%"
    assert "3</b> selected rows" in dock.summary.text()


def test_the_predicted_labels_come_from_the_outcomes(qtbot, dock, monkeypatch):
    def recomputed(_predictions):
        raise AssertionError("a dock recomputed the predicted labels")

    monkeypatch.setattr(Predictions, "predicted_labels", recomputed)
    other = dock.column_choice.findData("column:label")
    with qtbot.waitSignal(dock.counted, timeout=10_000):
        dock.column_choice.setCurrentIndex(other)
    with qtbot.waitSignal(dock.counted, timeout=10_000):
        dock.row_choice.setCurrentIndex(dock.row_choice.findData("model:keywords"))
    gold, predicted = gold_and_predicted(dock.session)
    matrix = dock.model.matrix
    assert int(matrix.counts[matrix.row_labels.index("positive"),
                             matrix.column_labels.index("negative")]) == \
        np.count_nonzero((predicted == "positive") & (gold == "negative"))


def test_only_the_newest_count_is_shown(qtbot, dock):
    shown = []
    dock.counted.connect(lambda: shown.append(dock.model.matrix.counts.tolist()))
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        dock.column_choice.setCurrentIndex(dock.column_choice.findData("column:label"))
        dock.row_choice.setCurrentIndex(dock.row_choice.findData("model:keywords"))
    gold, predicted = gold_and_predicted(dock.session)
    expected = [[np.count_nonzero((predicted == p) & (gold == g)) for g in ("negative", "positive")]
                for p in ("negative", "positive")]
    assert shown == [expected] and expected[1][0] > 0  # never gold against gold
