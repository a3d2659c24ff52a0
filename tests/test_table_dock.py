"""The Data Table dock and its neighbours, driven through the window: work happens only for
docks on screen, a stale query never shows, and a scattered selection stays cheap."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from litdesk.api import CategoryLabel, Dataset, Scalar
from litdesk.core import table_query
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from litdesk.ui.docks import comparison, projector, table
from tests.fakes import KeywordModel
from tests.helpers import ROWS, click_table_row, load_with_model, shows_outcomes


def counting(monkeypatch, module, name: str) -> list:
    """Count the calls of ``module.name`` (on any thread)."""
    calls, original = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_hidden_dock_does_no_work_until_it_is_shown(qtbot, window, tmp_path, monkeypatch):
    load_with_model(qtbot, window, tmp_path)
    window.docks["Data Table"].close()
    window.docks["Metrics"].raise_()  # in front of the Model Comparison
    window.docks["Slices"].raise_()  # in front of the Embedding Projector
    qtbot.waitUntil(lambda: not (window.comparison_dock.on_screen
                                 or window.projector_dock.on_screen))
    columns = counting(monkeypatch, table, "prediction_columns")
    listings = counting(monkeypatch, comparison, "comparison_listing")
    colours = counting(monkeypatch, projector, "point_colors")
    window.projector_dock.color_by.setCurrentIndex(
        window.projector_dock.color_by.findText("keywords: prediction"))
    second = KeywordModel("cautious", bias=-2.5)
    window.session.add_model(second)
    window.session.set_predictions(run_job(predict_job(second, window.session.dataset)))
    qtbot.waitUntil(lambda: "cautious" in window.session.outcomes.models, timeout=60_000)
    window.session.select([1, 2, 3])
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    assert (columns, listings, colours) == ([], [], [])
    assert "cautious_pred" not in window.table_dock.model.table.column_names

    window.docks["Data Table"].show()
    shows_outcomes(qtbot, window, "cautious")
    assert window.table_dock.view.selectionModel().isRowSelected(2)
    with qtbot.waitSignal(window.comparison_dock.listed, timeout=60_000):
        window.docks["Model Comparison"].raise_()
    assert window.comparison_dock.model.rowCount() == 3
    with qtbot.waitSignal(window.projector_dock.drawn, timeout=60_000):
        window.docks["Embedding Projector"].raise_()
    assert "positive" in window.projector_dock.legend.text()
    assert len(columns) == len(listings) == len(colours) == 1


def test_select_all_selects_every_row_shown_and_keeps_those_a_search_hides(qtbot, window,
                                                                           tmp_path):
    load_with_model(qtbot, window, tmp_path)
    dock, view, session = window.table_dock, window.table_dock.view, window.session
    click_table_row(qtbot, window, 1)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert session.selection.rows.tolist() == list(range(len(ROWS)))
    assert session.selection.primary == 1
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):  # hides row 1 ("terrible …")
        dock.search.setText("good")
        qtbot.keyClick(dock.search, Qt.Key.Key_Return)
    shown = dock.model.rows.tolist()
    assert 1 not in shown and shown
    session.select([1], 1)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert session.selection.rows.tolist() == sorted({1, *shown})


def test_a_stale_query_never_shows(qtbot, window, tmp_path, monkeypatch):
    load_with_model(qtbot, window, tmp_path)
    dock = window.table_dock
    release, original = threading.Event(), table_query.filter_rows

    def slow_for_positive(table_, spec, query, base=None):
        if "positive" in query.search:
            release.wait(10)
        return original(table_, spec, query, base)

    monkeypatch.setattr(table_query, "filter_rows", slow_for_positive)
    dock.search.setText("label=positive")
    dock.search.returnPressed.emit()  # waits for the release
    with qtbot.waitSignal(dock.rows_shown, timeout=10_000):
        dock.search.setText("label=negative")
        dock.search.returnPressed.emit()
    assert dock.model.rows.tolist() == [1, 3, 5]
    release.set()
    qtbot.waitUntil(lambda: not dock.query_slot.busy and not window.runner.busy, timeout=60_000)
    assert dock.model.rows.tolist() == [1, 3, 5]


def test_a_scattered_selection_is_painted_by_the_model(qtbot, window):
    rows = 5_000
    dataset = Dataset(pa.table({"x": np.arange(rows, dtype=float),
                                "group": [("a", "b")[i % 2] for i in range(rows)]}),
                      {"x": Scalar(), "group": CategoryLabel()}, "scattered")
    window.open_objects(datasets=[dataset])
    dock = window.table_dock
    model, view = dock.model, dock.view
    window.session.select(np.arange(0, rows, 2))  # 2,500 runs of one row: beyond the view's
    np.testing.assert_array_equal(model.selected, np.arange(0, rows, 2))
    assert view.selectionModel().selection().isEmpty()
    highlight = QApplication.palette().color(QPalette.ColorRole.Highlight)
    assert model.data(model.index(4, 0), Qt.ItemDataRole.BackgroundRole) == highlight
    assert model.data(model.index(5, 0), Qt.ItemDataRole.BackgroundRole) is None
    assert "2,500 selected" in dock.status.text()

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,  # Ctrl toggles one row off
                     Qt.KeyboardModifier.ControlModifier, view.visualRect(model.index(4, 0)).center())
    assert window.session.selection.rows.size == 2_499
    assert not np.isin(4, window.session.selection.rows)
    assert model.selected is not None and not np.isin(4, model.selected)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,  # a click replaces it
                     pos=view.visualRect(model.index(7, 0)).center())
    assert window.session.selection.rows.tolist() == [7]
    assert model.selected is None and view.selectionModel().isRowSelected(7)


def test_selection_runs_of_rows_shown_in_dataset_order_come_from_the_selection_alone():
    rng = np.random.default_rng(3)
    for num_rows in (0, 1, 7, 1_000):
        shown = np.arange(num_rows, dtype=np.int64)
        for count in (0, 1, 3, num_rows // 2, num_rows):
            # sorted dataset rows, some past the rows shown (being added)
            selected = np.sort(rng.choice(num_rows + 4, size=count, replace=False))
            general = table.selection_runs(shown, selected, num_rows)
            assert np.array_equal(table.selection_runs(shown, selected, num_rows, True), general)
    assert table.selection_runs(np.arange(10), np.array([2, 3, 4, 7, 9]), 10, True).tolist() \
        == [[2, 4], [7, 7], [9, 9]]
