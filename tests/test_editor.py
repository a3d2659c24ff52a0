"""The Datapoint Editor in the window: an edit becomes a child row with fresh predictions, in
every dock, kept in the journal (even through a SIGKILL) and saved with its provenance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from litdesk.core.datapoints import ORIGIN, PARENT
from litdesk.core.loaders import load_dataset
from litdesk.ui.docks.editor import CHANGED_STYLE
from litdesk.ui.main_window import MainWindow
from tests.helpers import ROWS, click_table_row, load_with_model, write_csv


def type_text(qtbot, editor: QPlainTextEdit, text: str) -> None:
    """Replace the editor's text by typing, as a user would."""
    qtbot.waitUntil(editor.isVisible)  # a field widget just made is shown by a queued event
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def add(qtbot, window, button) -> np.ndarray:
    with qtbot.waitSignal(window.datapoints_added, timeout=10_000) as added:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return added.args[0]


def editor_of(window):
    """The window's Datapoint Editor, its tab in front (as a user opens it)."""
    window.docks["Datapoint Editor"].raise_()
    return window.editor_dock


def test_an_edit_becomes_a_child_with_fresh_predictions_everywhere(qtbot, window, tmp_path):
    model = load_with_model(qtbot, window, tmp_path)
    editor = editor_of(window)
    click_table_row(qtbot, window, 3)
    assert "Row 3" in editor.header.text() and not editor.add_button.isEnabled()
    text = editor.fields["text"].widget
    assert text.toPlainText() == ROWS[3][0]
    type_text(qtbot, text, "great phone, I love it")
    assert editor.changed_fields() == ["text"] and text.styleSheet() == CHANGED_STYLE
    assert editor.fields["label"].widget.styleSheet() == ""
    (row,) = add(qtbot, window, editor.add_button)

    dataset = window.session.dataset
    assert row == len(ROWS) and len(dataset) == len(ROWS) + 1
    assert dataset.table.column("text")[row].as_py() == "great phone, I love it"
    assert dataset.table.column(PARENT)[row].as_py() == 3
    assert dataset.table.column(ORIGIN)[row].as_py() == "edited: text"
    expected = model.predict([{"text": "great phone, I love it"}])[0]["probas"]
    np.testing.assert_allclose(window.session.predictions["keywords"].fields["probas"][row],
                               expected)
    assert window.session.selection.primary == row
    assert window.table_dock.model.rowCount() == len(ROWS) + 1
    qtbot.waitUntil(  # once the outcomes of every row are in
        lambda: window.table_dock.model.table.column("keywords_pred")[row].as_py() == "positive")
    assert "made from <a href='row:3'>row 3</a>" in editor.header.text()
    assert editor.fields["text"].widget.toPlainText() == "great phone, I love it"


def test_the_editor_follows_rows_only_on_screen_and_keeps_its_widgets(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    window.docks["Embedding Projector"].raise_()  # the editor is a tab behind it
    editor = window.editor_dock
    click_table_row(qtbot, window, 1)
    assert editor.row is None and not editor.fields  # nothing built for nobody
    editor = editor_of(window)
    qtbot.waitUntil(lambda: editor.row == 1)
    text = editor.fields["text"].widget
    assert text.toPlainText() == ROWS[1][0]
    type_text(qtbot, text, "a draft")
    click_table_row(qtbot, window, 3)
    assert editor.fields["text"].widget is text  # refilled, not made again
    assert text.toPlainText() == ROWS[3][0] and text.styleSheet() == ""
    assert "Row 3" in editor.header.text() and not editor.add_button.isEnabled()
    click_table_row(qtbot, window, 1)
    assert text.toPlainText() == "a draft" and text.styleSheet() == CHANGED_STYLE


def test_add_and_compare_pins_the_original_and_the_table_can_show_made_rows(qtbot, window,
                                                                            tmp_path):
    load_with_model(qtbot, window, tmp_path)
    editor = editor_of(window)
    click_table_row(qtbot, window, 1)
    type_text(qtbot, editor.fields["text"].widget, "terrible battery")
    with qtbot.waitSignal(window.datapoints_added, timeout=10_000):
        qtbot.keyClick(editor.fields["text"].widget, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    selection = window.session.selection
    assert (selection.primary, selection.pinned) == (len(ROWS), 1)

    table = window.table_dock
    with qtbot.waitSignal(table.model.modelReset, timeout=10_000):
        table.row_scope.setCurrentIndex(table.row_scope.findData("made"))
    assert table.model.rows.tolist() == [len(ROWS)]
    window.session.select([1, 2])
    with qtbot.waitSignal(table.model.modelReset, timeout=10_000):
        table.row_scope.setCurrentIndex(table.row_scope.findData("children"))
    assert table.model.rows.tolist() == [len(ROWS)]
    assert "2 row(s) selected" in table.row_scope.currentText()


def test_unsaved_edits_wait_on_their_row_and_reset_forgets_them(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    editor = editor_of(window)
    click_table_row(qtbot, window, 2)
    type_text(qtbot, editor.fields["text"].widget, "a draft")
    click_table_row(qtbot, window, 4)
    assert editor.fields["text"].widget.toPlainText() == ROWS[4][0]
    click_table_row(qtbot, window, 2)
    assert editor.fields["text"].widget.toPlainText() == "a draft"
    qtbot.mouseClick(editor.reset_button, Qt.MouseButton.LeftButton)
    assert editor.fields["text"].widget.toPlainText() == ROWS[2][0]
    assert not editor.add_button.isEnabled()


def test_the_journal_restores_datapoints_in_the_next_window_and_save_writes_them(
        qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    editor = editor_of(window)
    click_table_row(qtbot, window, 0)
    type_text(qtbot, editor.fields["text"].widget, "I hate this phone")
    add(qtbot, window, editor.add_button)

    second = MainWindow(show_dialogs=False)
    qtbot.addWidget(second)
    with qtbot.waitSignal(second.dataset_loaded, timeout=10_000):
        second.open_paths([tmp_path / "reviews.csv"])
    restored = second.session.dataset.table
    assert restored.num_rows == len(ROWS) + 1
    assert restored.column("text")[len(ROWS)].as_py() == "I hate this phone"
    assert restored.column(PARENT)[len(ROWS)].as_py() == 0

    target = tmp_path / "saved.parquet"
    with qtbot.waitSignal(second.runner.idle, timeout=10_000):
        second.save_dataset(target)
    saved = load_dataset(target).table
    assert saved.column("text").to_pylist() == restored.column("text").to_pylist()
    assert saved.column(ORIGIN)[len(ROWS)].as_py() == "edited: text"


KILLED_APP = textwrap.dedent("""
    import sys
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from litdesk.ui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(show_dialogs=False)
    window.show()

    def edit():
        window.docks["Datapoint Editor"].raise_()
        window.session.select([2], 2)
        window.editor_dock.fields["text"].widget.setPlainText("edited before the kill")
        QTest.mouseClick(window.editor_dock.add_button, Qt.MouseButton.LeftButton)
        print("ADDED", flush=True)

    window.dataset_loaded.connect(lambda _name: QTimer.singleShot(0, edit))  # as a user does
    window.open_paths([sys.argv[1]])
    app.exec()
""")


@pytest.mark.slow  # two app processes
def test_a_kill_right_after_an_edit_loses_nothing(qtbot, tmp_path):
    csv = write_csv(tmp_path / "reviews.csv")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.Popen([sys.executable, "-c", KILLED_APP, str(csv)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert app.stdout.readline().strip() == "ADDED"
        app.send_signal(signal.SIGKILL)
        assert app.wait(timeout=10) == -signal.SIGKILL
    finally:
        app.kill()

    relaunched = MainWindow(show_dialogs=False)
    qtbot.addWidget(relaunched)
    with qtbot.waitSignal(relaunched.dataset_loaded, timeout=10_000):
        relaunched.open_paths([csv])
    table = relaunched.session.dataset.table
    assert table.num_rows == len(ROWS) + 1
    assert table.column("text")[len(ROWS)].as_py() == "edited before the kill"
    assert table.column(PARENT)[len(ROWS)].as_py() == 2


def test_accepted_generator_candidates_join_with_predictions_and_provenance(qtbot, window,
                                                                           tmp_path):
    model = load_with_model(qtbot, window, tmp_path)
    window.docks["Generators"].raise_()
    dock = window.generators_dock
    dock.generator_choice.setCurrentIndex(dock.generator_choice.findData("word_replacer"))
    window.session.select([0])
    rules = dock.param_widgets["word_replacer"]["substitutions"]
    rules.clear()
    qtbot.keyClicks(rules, "great -> awful")
    with qtbot.waitSignal(dock.run_finished, timeout=10_000):
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.datapoints_added, timeout=10_000) as added:
        qtbot.mouseClick(dock.accept_all_button, Qt.MouseButton.LeftButton)
    (row,) = added.args[0]
    table = window.session.dataset.table
    assert table.column("text")[row].as_py() == "I love this awful phone"
    assert table.column(PARENT)[row].as_py() == 0
    assert "great" in table.column(ORIGIN)[row].as_py()
    expected = model.predict([{"text": "I love this awful phone"}])[0]["probas"]
    np.testing.assert_allclose(window.session.predictions["keywords"].fields["probas"][row],
                               expected)
    assert window.session.selection.primary == row


def test_a_dataset_without_a_file_says_its_datapoints_need_saving(qtbot, window):
    import pyarrow as pa

    from litdesk.api import Dataset, TextSegment
    from litdesk.core.datapoints import NewDatapoint

    window.open_objects(datasets=[Dataset(pa.table({"text": ["a", "b"]}),
                                          {"text": TextSegment()}, "notes")])
    with qtbot.waitSignal(window.datapoints_added, timeout=10_000):
        assert window.add_datapoints([NewDatapoint.now({"text": "c"}, 1, "edited")])
    assert "has no file" in window.statusBar().currentMessage()
    assert window.session.dataset.table.column("text").to_pylist() == ["a", "b", "c"]
