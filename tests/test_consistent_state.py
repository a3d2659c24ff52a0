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
from tests.fakes import KeywordModel, LengthModel
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
    # The top of the sorted rows.
    qtbot.waitUntil(lambda: view.verticalScrollBar().value() == 0, timeout=5_000)
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


@pytest.mark.slow
def test_dock_choices_and_layout_come_back_on_the_next_launch(qtbot, tmp_path):
    from litdesk.ui.main_window import MainWindow
    from tests.helpers import write_csv

    csv = write_csv(tmp_path / "reviews.csv")

    def launch():
        window = MainWindow(show_dialogs=False)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
            window.open_paths([csv])
        with qtbot.waitSignal(window.session.outcomes_changed, timeout=30_000):
            window.open_objects(models=[KeywordModel()])
        return window

    first = launch()
    screen = first.screen().availableGeometry()
    # No saved geometry: most of the screen (as far as the docks' minimum sizes allow).
    share = int(screen.width() * 0.85)
    assert share <= first.width() <= max(share, first.minimumSizeHint().width())
    projector, metrics, salience = first.projector_dock, first.metrics_dock, \
        first.salience_dock
    for dock, combo in (("Embedding Projector", projector.method),
                        ("Embedding Projector", projector.color_by),
                        ("Metrics", metrics.facet_choice)):
        first.docks[dock].raise_()  # a dock fills its choices once it is on screen
        qtbot.waitUntil(lambda combo=combo: combo.count() > 1, timeout=10_000)
        combo.setFocus()
        qtbot.keyClick(combo, Qt.Key.Key_End)  # the user picks the last one
    picked = (projector.method.currentText(), projector.color_by.currentText(),
              metrics.facet_choice.currentText())
    assert picked[0] == "As is" and picked[1] == "(none)"
    box = salience.method_boxes["occlusion"]
    before = list(salience.chosen["keywords"])
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    chosen = list(salience.chosen["keywords"])
    assert chosen != before
    first.resize(first.width() + 30, first.height() + 20)
    size = (first.width(), first.height())
    first.close()
    first.runner.cancel_all()

    second = launch()
    assert second.height() == size[1]  # the saved size (the width is clamped to the screen)
    second.docks["Embedding Projector"].raise_()
    second.docks["Metrics"].raise_()
    qtbot.waitUntil(lambda: (second.projector_dock.method.currentText(),
                             second.projector_dock.color_by.currentText(),
                             second.metrics_dock.facet_choice.currentText()) == picked,
                    timeout=10_000)
    assert second.salience_dock.chosen["keywords"] == chosen
    second.runner.cancel_all()
    qtbot.waitUntil(lambda: not second.runner.busy, timeout=30_000)


@pytest.mark.slow
def test_sigterm_saves_the_layout_and_a_headless_run_leaves_it_alone(tmp_path, litdesk_home):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    from litdesk.core import paths
    from tests.helpers import run_litdesk, write_csv

    csv = write_csv(tmp_path / "reviews.csv")
    script = textwrap.dedent(f"""
        import sys
        from litdesk.ui import main_window
        shown = main_window.MainWindow.showEvent
        def show(self, event):
            shown(self, event)
            print("shown", flush=True)
        main_window.MainWindow.showEvent = show
        from litdesk.ui.app import run_app
        sys.exit(run_app([{str(csv)!r}]))
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LITDESK_HOME": str(litdesk_home)}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == "shown"
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, errors
    layout = paths.config_dir() / "window.ini"
    assert "geometry" in layout.read_text()  # saved on the way out
    # The user's file as it is (here without a geometry): a headless run must not write it.
    layout.write_text("".join(line for line in layout.read_text().splitlines(keepends=True)
                              if not line.startswith("geometry=")))
    saved = layout.read_bytes()

    shot = tmp_path / "shot.png"
    result = run_litdesk("--exit-when-ready", "--screenshot", shot, csv, home=litdesk_home)
    assert result.returncode == 0, result.stderr
    assert shot.exists() and layout.read_bytes() == saved  # the user's layout, untouched


class GatedModel(KeywordModel):
    """A classifier whose predictions wait until the test opens the gate."""

    def __init__(self, gate) -> None:
        super().__init__("gated")
        self.gate = gate

    def predict(self, inputs):
        self.gate.wait(30)
        return super().predict(inputs)


@pytest.mark.slow
def test_empty_states_say_what_is_happening(qtbot, window, tmp_path):
    import threading

    from tests.helpers import write_csv

    metrics, comparison = window.metrics_dock, window.comparison_dock
    window.docks["Metrics"].raise_()
    assert metrics.summary.text().startswith("No dataset open")
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    qtbot.waitUntil(lambda: metrics.summary.text().startswith("No model open"), timeout=10_000)
    assert "Load" not in metrics.summary.text()

    gate = threading.Event()
    try:
        window.open_objects(models=[GatedModel(gate)])
        qtbot.waitUntil(lambda: metrics.summary.text() == "predicting gated…", timeout=10_000)
        window.docks["Scalars"].raise_()
        qtbot.waitUntil(lambda: window.scalars_dock.legend.text() == "predicting gated…",
                        timeout=10_000)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: "gated" in window.session.predictions, timeout=30_000)
    window.session.remove_model("gated")

    with qtbot.waitSignal(window.session.predictions_changed, timeout=30_000):
        window.open_objects(models=[LengthModel()])
    window.docks["Model Comparison"].raise_()
    qtbot.waitUntil(lambda: comparison.summary.text()
                    == "No classifier among the open models (lengths).", timeout=10_000)
