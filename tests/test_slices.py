"""Slices: saved with their dataset, starred rows, and the Slices panel driven by its widgets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLineEdit

from litdesk.api import CategoryLabel, Dataset, Scalar
from litdesk.core.jobs import run_job
from litdesk.core.loaders import iter_load_dataset
from litdesk.core.session import STARRED_SLICE, Session
from litdesk.core.slice_store import DatasetIdentity, SliceStore, load_slices, save_slices
from litdesk.ui.docks.slices import SlicesDock
from litdesk.ui.jobs import JobRunner
from litdesk.ui.main_window import MainWindow
from litdesk.ui.widgets.arrow_table_model import STAR_MARK
from tests.helpers import ROWS, write_csv


def open_file(session: Session, path) -> None:
    session.set_dataset(run_job(iter_load_dataset(path)))


def in_memory(rows: int, name: str = "numbers") -> Dataset:
    table = pa.table({"group": [("a", "b", "c")[i % 3] for i in range(rows)],
                      "score": np.linspace(0, 1, rows)})
    return Dataset(table, {"group": CategoryLabel(), "score": Scalar()}, name)


# -- the store ------------------------------------------------------------------------------


def test_slices_come_back_when_the_same_file_is_opened_in_a_new_session(tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    first = Session()
    first_store = SliceStore(first)  # noqa: F841 (the session holds its store weakly)
    open_file(first, path)
    first.add_slice("errors", [4, 1])
    first.set_slice("Starred", [0])
    first.add_slice("gone", [2])
    first.remove_slice("gone")

    second = Session()
    second_store = SliceStore(second)  # noqa: F841
    open_file(second, path)
    assert list(second.slices) == ["errors", "Starred"]
    np.testing.assert_array_equal(second.slices["errors"], [1, 4])
    np.testing.assert_array_equal(second.slices["Starred"], [0])


def test_slices_of_a_changed_file_are_dropped_with_a_message(tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    first = Session()
    first_store = SliceStore(first)  # noqa: F841 (the session holds its store weakly)
    open_file(first, path)
    first.add_slice("errors", [5])
    write_csv(path, ROWS[:3])  # the file is replaced by a shorter one

    second = Session()
    messages = []
    store = SliceStore(second)
    store.message.connect(messages.append)
    open_file(second, path)
    assert second.slices == {}
    assert len(messages) == 1 and "errors" in messages[0] and "changed" in messages[0]


def test_a_saved_slice_whose_rows_do_not_fit_is_dropped_and_the_rest_kept():
    dataset = in_memory(10)
    save_slices(DatasetIdentity.of(dataset), {"fits": np.array([1, 9]),
                                              "too far": np.array([3, 12])})
    session = Session()
    messages = []
    store = SliceStore(session)
    store.message.connect(messages.append)
    session.set_dataset(dataset)
    assert list(session.slices) == ["fits"]
    assert messages == ["Dropped saved slice 'too far': its rows do not fit the dataset"]
    assert list(load_slices(DatasetIdentity.of(dataset))[0]) == ["fits"]  # the file is cleaned


def test_a_damaged_slices_file_is_reported_not_raised():
    dataset = in_memory(10)
    path = save_slices(DatasetIdentity.of(dataset), {"fits": np.array([1])})
    path.write_bytes(b"not a zip file")
    session = Session()
    messages = []
    store = SliceStore(session)
    store.message.connect(messages.append)
    session.set_dataset(dataset)
    assert session.slices == {} and "could not be read" in messages[0]


def test_a_million_row_slice_is_stored_compactly():
    identity = DatasetIdentity("name:big", -1, -1, 2_000_000)
    rows = np.arange(0, 2_000_000, 2, dtype=np.int64)
    path = save_slices(identity, {"even": rows})
    assert path.stat().st_size < 4.1e6  # 4 bytes a row
    restored, messages = load_slices(identity)
    assert messages == [] and np.array_equal(restored["even"], rows)


# -- the window: persistence, stars, the panel ------------------------------------------


def test_a_slice_made_in_one_window_is_there_in_the_next(qtbot, tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    first = MainWindow(show_dialogs=False)
    qtbot.addWidget(first)
    with qtbot.waitSignal(first.dataset_loaded, timeout=10_000):
        first.open_paths([path])
    first.session.add_slice("mine", [2, 3])
    first.close()

    second = MainWindow(show_dialogs=False)
    qtbot.addWidget(second)
    with qtbot.waitSignal(second.dataset_loaded, timeout=10_000):
        second.open_paths([path])
    np.testing.assert_array_equal(second.session.slices["mine"], [2, 3])
    second.show()
    second.docks["Slices"].raise_()  # a background tab lists nothing until shown
    qtbot.waitExposed(second.slices_dock)
    listed = second.slices_dock.slices_list.topLevelItem(0)
    assert (listed.text(0), listed.text(1)) == ("mine", "2")


def test_ctrl_b_stars_and_unstars_the_selected_rows(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    view, model = window.table_dock.view, window.table_dock.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(1, 0)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier,
                     view.visualRect(model.index(4, 0)).center())
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(window.session.slices[STARRED_SLICE], [1, 4])
    assert model.headerData(4, Qt.Orientation.Vertical) == f"{STAR_MARK} 4"
    assert model.headerData(2, Qt.Orientation.Vertical) == "2"
    assert model.data(model.index(1, 0), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(2, 0), Qt.ItemDataRole.BackgroundRole) is None

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(4, 0)).center())
    qtbot.keyClick(view, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(window.session.slices[STARRED_SLICE], [1])
    assert model.headerData(4, Qt.Orientation.Vertical) == "4"


@pytest.fixture
def panel(qtbot):
    session = Session()
    session.set_dataset(in_memory(12))
    runner = JobRunner()
    dock = SlicesDock(session, runner)
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    yield dock
    runner.shutdown()


def click_item(qtbot, tree, row: int, double: bool = False) -> None:
    item = tree.topLevelItem(row)
    position = tree.visualItemRect(item).center()
    click = qtbot.mouseDClick if double else qtbot.mouseClick
    if double:
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=position)
    click(tree.viewport(), Qt.MouseButton.LeftButton, pos=position)


def test_new_slice_from_the_selection_through_the_button(qtbot, panel):
    panel.session.select([2, 5, 7])
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    prompt = panel.name_prompt
    assert prompt is not None and prompt.textValue() == "slice 1"
    prompt.setTextValue("hard cases")
    qtbot.keyClick(prompt, Qt.Key.Key_Return)
    np.testing.assert_array_equal(panel.session.slices["hard cases"], [2, 5, 7])
    item = panel.slices_list.topLevelItem(0)
    assert (item.text(0), item.text(1)) == ("hard cases", "3")


def test_clicking_a_slice_selects_its_rows_and_del_forgets_it(qtbot, panel):
    session = panel.session
    session.add_slice("first", [0, 1])
    session.add_slice("second", [3, 8, 9])
    click_item(qtbot, panel.slices_list, 1)
    np.testing.assert_array_equal(session.selection.rows, [3, 8, 9])
    qtbot.keyClick(panel.slices_list, Qt.Key.Key_Delete)
    assert list(session.slices) == ["first"]
    np.testing.assert_array_equal(session.selection.rows, [3, 8, 9])  # rows untouched


def test_double_click_renames_a_slice(qtbot, panel):
    panel.session.add_slice("old", [4])
    click_item(qtbot, panel.slices_list, 0, double=True)
    assert panel.slices_list.state() == QAbstractItemView.State.EditingState
    editor = panel.slices_list.viewport().findChild(QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "renamed")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on the next event loop turn
    qtbot.waitUntil(lambda: list(panel.session.slices) == ["renamed"])
    np.testing.assert_array_equal(panel.session.slices["renamed"], [4])


def test_facets_of_a_category_and_of_number_bins_select_and_save(qtbot, panel):
    with qtbot.waitSignal(panel.facets_shown, timeout=10_000):
        panel.facet_choice.setCurrentText("group")
    assert not panel.bins.isEnabled()
    labels = [panel.facets_list.topLevelItem(i).text(0) for i in range(3)]
    assert panel.facets_list.topLevelItemCount() == 3 and labels[1].endswith("b")
    click_item(qtbot, panel.facets_list, 1)
    np.testing.assert_array_equal(panel.session.selection.rows, [1, 4, 7, 10])

    with qtbot.waitSignal(panel.facets_shown, timeout=10_000):
        panel.facet_choice.setCurrentText("score")
    assert panel.bins.isEnabled()
    with qtbot.waitSignal(panel.facets_shown, timeout=10_000):
        panel.bins.setValue(3)
    counts = [panel.facets_list.topLevelItem(i).text(1) for i in range(3)]
    assert panel.facets_list.topLevelItemCount() == 3 and counts == ["4", "4", "4"]
    qtbot.mouseClick(panel.save_facets_button, Qt.MouseButton.LeftButton)
    assert len(panel.session.slices) == 3
    np.testing.assert_array_equal(list(panel.session.slices.values())[0], [0, 1, 2, 3])


def test_facets_follow_new_rows_once_the_hidden_panel_is_shown(qtbot, window):
    panel = window.slices_dock
    window.session.set_dataset(in_memory(12))
    window.docks["Slices"].raise_()
    with qtbot.waitSignal(panel.facets_shown, timeout=10_000):
        panel.facet_choice.setCurrentText("group")
    assert [panel.facets_list.topLevelItem(i).text(1) for i in range(3)] == ["4", "4", "4"]
    window.docks["Embedding Projector"].raise_()
    titles = []
    window.runner.progress.connect(lambda title, _progress: titles.append(title))
    window.session.set_dataset(in_memory(30, "more"))
    assert "Facets" not in titles and panel.stale  # hidden: nothing found yet
    assert [panel.facets_list.topLevelItem(i).text(1) for i in range(3)] == ["4", "4", "4"]
    with qtbot.waitSignal(panel.facets_shown, timeout=10_000):
        window.docks["Slices"].raise_()
    assert [panel.facets_list.topLevelItem(i).text(1) for i in range(3)] == ["10", "10", "10"]
