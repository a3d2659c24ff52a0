"""One consistent state: one decision threshold per binary model for every dock, filters that
leave the selection alone, made datapoints that can be deleted and do not inherit gold or split,
a table that shows the top of a result, and dock settings that come back."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

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


def many_rows_window(qtbot, window, tmp_path, rows=300):
    """The window with a CSV of ``rows`` reviews (numbered, with a wide score) open."""
    lines = ["text,label,score"] + [f'"review number {i}",{"positive" if i % 3 else "negative"},'
                                    f"{(i * 7919 % 1000) / 997:.6f}" for i in range(rows)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([path])
    return window.table_dock


def test_clearing_filters_keeps_the_selection(qtbot, window, tmp_path):
    dock = many_rows_window(qtbot, window, tmp_path, rows=30)
    window.session.select(np.array([2, 5, 7]), 5)
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        dock.set_column_filter("label", "negative")
    np.testing.assert_array_equal(window.session.selection.rows, [2, 5, 7])
    assert window.session.selection.primary == 5
    # A row picked in the filtered view (Ctrl: added to the selection).
    view = dock.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier,
                     pos=view.visualRect(dock.model.index(1, 0)).center())
    assert int(dock.model.rows[1]) == 3
    np.testing.assert_array_equal(window.session.selection.rows, [2, 3, 5, 7])
    primary = window.session.selection.primary
    assert dock.clear_filters_button.isEnabled()
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        qtbot.mouseClick(dock.clear_filters_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(window.session.selection.rows, [2, 3, 5, 7])
    assert window.session.selection.primary == primary
    assert len(dock.model.rows) == 30


def test_search_and_sort_show_the_top_and_keep_the_arrow(qtbot, window, tmp_path):
    dock = many_rows_window(qtbot, window, tmp_path)
    view, header = dock.view, dock.view.horizontalHeader()
    window.session.select(np.array([250]), 250)  # scrolls the view down to it
    qtbot.waitUntil(lambda: view.verticalScrollBar().value() > 0, timeout=10_000)
    column = dock.model.table.column_names.index("score")
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                         pos=QPoint(header.sectionViewportPosition(column) + 10, 5))
    assert view.verticalScrollBar().value() == 0  # the top of the sorted rows
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == \
        (column, Qt.SortOrder.AscendingOrder)
    # New columns (a model's) or a search keep the arrow where the sort is.
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        dock.search.setText("review")
        qtbot.keyClick(dock.search, Qt.Key.Key_Return)
    assert header.sortIndicatorSection() == column and view.verticalScrollBar().value() == 0
    with qtbot.waitSignal(dock.columns_shown, timeout=30_000):
        window.open_objects(models=[KeywordModel()])
    assert "keywords_pred" in dock.model.table.column_names
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == \
        (column, Qt.SortOrder.AscendingOrder)
    assert view.verticalScrollBar().value() == 0
    # Descending on a second click; the arrow follows.
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                         pos=QPoint(header.sectionViewportPosition(column) + 10, 5))
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == \
        (column, Qt.SortOrder.DescendingOrder)


def test_numbers_that_do_not_fit_show_an_ellipsis(qtbot, window, tmp_path):
    dock = many_rows_window(qtbot, window, tmp_path, rows=5)
    column = dock.model.table.column_names.index("score")
    dock.view.horizontalHeader().resizeSection(column, 24)
    index = dock.model.index(1, column)
    text = dock.model.data(index)
    assert len(text) > 3
    delegate = dock.view.itemDelegate()
    from PySide6.QtWidgets import QStyleOptionViewItem

    def shown() -> str:
        option = QStyleOptionViewItem()
        option.initFrom(dock.view)
        option.rect = dock.view.visualRect(index)
        delegate.initStyleOption(option, index)
        return option.text

    assert shown() == "…"
    assert dock.model.data(index, Qt.ItemDataRole.ToolTipRole) == text
    dock.view.horizontalHeader().resizeSection(column, 200)
    assert shown() == text
    text_column = dock.model.index(1, dock.model.table.column_names.index("text"))
    dock.view.horizontalHeader().resizeSection(0, 30)
    assert delegate.shown_text  # text cells are elided by Qt, not replaced
    option = QStyleOptionViewItem()
    option.initFrom(dock.view)
    option.rect = dock.view.visualRect(text_column)
    delegate.initStyleOption(option, text_column)
    assert option.text == dock.model.data(text_column)


@pytest.mark.slow
def test_made_datapoints_start_without_gold_and_can_be_deleted_for_good(qtbot, window,
                                                                        tmp_path):
    from PySide6.QtWidgets import QPlainTextEdit

    from litdesk.core.datapoints import ORIGIN, PARENT
    from litdesk.ui.main_window import MainWindow
    from tests.helpers import ROWS, click_table_row

    def type_into(widget, text):
        qtbot.waitUntil(widget.isVisible)
        widget.setFocus()
        if isinstance(widget, QPlainTextEdit):
            widget.selectAll()
            qtbot.keyClick(widget, Qt.Key.Key_Delete)
        qtbot.keyClicks(widget, text)

    def add():
        # Behind the salience of each row shown (LIME, on 2 cores in CI): a generous wait.
        with qtbot.waitSignal(window.datapoints_added, timeout=60_000) as added:
            qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
        return int(added.args[0][0])

    load_with_model(qtbot, window, tmp_path, KeywordModel())
    window.docks["Datapoint Editor"].raise_()
    editor = window.editor_dock
    click_table_row(qtbot, window, 1)
    label = editor.fields["label"].widget
    assert label.currentText() == "" and "negative" in label.lineEdit().placeholderText()
    assert editor.cleared == ["label"] and "label start empty" in editor.header.text()
    type_into(editor.fields["text"].widget, "terrible battery, great screen")
    assert editor.changed_fields() == ["text"]
    first = add()
    click_table_row(qtbot, window, 2)
    type_into(editor.fields["text"].widget, "fine value")
    type_into(editor.fields["label"].widget.lineEdit(), "positive")  # kept on purpose
    second = add()
    table = window.session.dataset.table
    assert (first, second) == (len(ROWS), len(ROWS) + 1)
    assert table.column("label")[first].as_py() is None
    assert table.column("label")[second].as_py() == "positive"

    # A made datapoint of its own (made from the first made one), then delete the first.
    click_table_row(qtbot, window, first)
    type_into(editor.fields["text"].widget, "terrible battery")
    third = add()
    assert window.session.dataset.table.column(PARENT)[third].as_py() == first
    view = window.table_dock.view
    window.session.select([1, first], first)
    assert window.table_dock.made_rows_selected().tolist() == [first]
    view.setFocus()
    with qtbot.waitSignal(window.session.dataset_changed, timeout=10_000):
        qtbot.keyClick(view, Qt.Key.Key_Delete)
    dataset = window.session.dataset
    assert len(dataset) == len(ROWS) + 2  # the file's row 1 stays
    texts = dataset.table.column("text").to_pylist()
    assert texts[len(ROWS):] == ["fine value", "terrible battery"]
    assert dataset.table.column(PARENT).to_pylist()[len(ROWS):] == [2, None]
    assert len(window.session.predictions["keywords"]) == len(dataset)
    np.testing.assert_array_equal(window.session.selection.rows, [1])
    qtbot.waitUntil(lambda: window.table_dock.model.rowCount() == len(ROWS) + 2)

    # Reopening the file does not bring the deleted datapoint back.
    again = MainWindow(show_dialogs=False)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.dataset_loaded, timeout=10_000):
        again.open_paths([tmp_path / "reviews.csv"])
    reopened = again.session.dataset.table
    assert reopened.column("text").to_pylist()[len(ROWS):] == ["fine value", "terrible battery"]
    assert reopened.column(PARENT).to_pylist()[len(ROWS):] == [2, None]
    assert reopened.column(ORIGIN).to_pylist()[len(ROWS)] == "edited: text, label"
    again.runner.cancel_all()
    qtbot.waitUntil(lambda: not again.runner.busy, timeout=30_000)


class BrokenModel(KeywordModel):
    def predict(self, inputs):
        raise RuntimeError("CUDA out of memory (simulated)")


@pytest.mark.slow
def test_a_failure_dialog_names_the_model_and_the_job_in_its_text(qtbot, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from litdesk.ui.main_window import MainWindow
    from tests.helpers import write_csv

    window = MainWindow(show_dialogs=True)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    window.session.add_model(BrokenModel("flaky"))
    window.predict_missing()

    def dialog_texts():
        return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]

    qtbot.waitUntil(lambda: any("Predict flaky" in text for text in dialog_texts()),
                    timeout=30_000)
    text = next(text for text in dialog_texts() if "Predict flaky" in text)
    assert text.startswith("Predict flaky failed:\n") and len(text.splitlines()) > 1
    for box in window.findChildren(QMessageBox):
        box.close()
    window.runner.cancel_all()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
