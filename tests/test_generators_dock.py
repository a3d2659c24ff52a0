"""The Generators dock, driven through its widgets: the form, Run and Cancel, the review list."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from litdesk.api import CategoryLabel, Dataset, TextSegment
from litdesk.core.datapoints import PROVENANCE_COLUMNS, NewDatapoint
from litdesk.core.generators import GENERATORS, Candidate, applicable
from litdesk.core.jobs import Progress
from litdesk.core.session import Session
from litdesk.ui.docks import generators as generators_dock
from litdesk.ui.docks.generators import CANCEL_TEXT, RUN_TEXT, GeneratorsDock
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import NEGATIVE
from tests.fakes import KeywordModel

TEXTS = ["good phone", "bad phone", "a good good day", "awful", "good fun"]
LABELS = ["positive", "negative", "positive", "negative", "positive"]


def reviews(name: str = "reviews") -> Dataset:
    return Dataset(pa.table({"text": TEXTS, "label": LABELS}),
                   {"text": TextSegment(), "label": CategoryLabel(vocab=("negative", "positive"))},
                   name)


@pytest.fixture
def dock(qtbot):
    session = Session()
    session.set_dataset(reviews())
    # A row the user made earlier: the table has provenance columns, which candidates carry
    # along (a whole row) and accepted datapoints must not.
    session.add_datapoints([NewDatapoint.now({"text": "good day", "label": "positive"}, 2,
                                             "edited")])
    session.add_model(KeywordModel())
    runner = JobRunner()
    widget = GeneratorsDock(session, runner)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)


def choose(dock: GeneratorsDock, name: str) -> None:
    dock.generator_choice.setCurrentIndex(dock.generator_choice.findData(name))
    assert dock.generator() == name


def text_param(dock: GeneratorsDock) -> QLineEdit:
    """The word replacer's substitutions, as its form shows them."""
    edit = dock.param_widget("substitutions")
    assert isinstance(edit, QLineEdit)
    return edit


def type_into(qtbot, edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    assert edit.text() == text


def run(qtbot, dock: GeneratorsDock) -> str:
    with qtbot.waitSignal(dock.run_finished, timeout=10_000) as finished:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    return finished.args[0]


def test_word_replacer_on_the_selection_edit_untick_and_accept_checked(qtbot, dock):
    dock.session.select([0, 1, 2, 4])
    assert dock.scope_selection.isChecked()
    assert "4 rows" in dock.scope_selection.text() and "6 rows" in dock.scope_dataset.text()
    choose(dock, "word_replacer")
    type_into(qtbot, text_param(dock), "good -> bad")
    assert run(qtbot, dock) == "done"

    shown = list(dock.candidates)
    review = dock.review
    # Row 1 ("bad phone") has no "good"; row 5 (made by the user) is not selected.
    assert [(c.parent, c.values["text"]) for c in shown] == \
        [(0, "bad phone"), (2, "a bad bad day"), (4, "bad fun")]
    assert review.rowCount() == 3
    parents = [review.item(line, 0).text() for line in range(review.rowCount())]
    assert parents == [str(c.parent) for c in shown]
    assert all(review.item(line, 0).checkState() == Qt.CheckState.Checked
               for line in range(review.rowCount()))
    text_column = [review.horizontalHeaderItem(c).text()
                   for c in range(review.columnCount())].index("text")
    first = shown[0]
    assert review.item(0, text_column).text() == f"{TEXTS[first.parent]} → {first.values['text']}"
    assert review.item(0, 1).text() == first.origin

    # Edit the first candidate's text in place.
    cell = review.visualItemRect(review.item(0, text_column)).center()
    qtbot.mouseClick(review.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    qtbot.mouseDClick(review.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    editor = review.viewport().findChild(QLineEdit)
    assert editor is not None and editor.text() == first.values["text"]
    editor.selectAll()
    qtbot.keyClicks(editor, "a bad phone indeed")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dock.candidates[0].values["text"] == "a bad phone indeed")
    assert review.item(0, text_column).text() == f"{TEXTS[first.parent]} → a bad phone indeed"

    # Untick the second one (Space on its first cell).
    review.setFocus()
    review.setCurrentCell(1, 0)
    qtbot.keyClick(review, Qt.Key.Key_Space)
    assert review.item(1, 0).checkState() == Qt.CheckState.Unchecked
    assert dock.checked_lines() == [line for line in range(len(shown)) if line != 1]

    with qtbot.waitSignal(dock.accepted, timeout=1_000) as accepted:
        qtbot.mouseClick(dock.accept_checked_button, Qt.MouseButton.LeftButton)
    points = accepted.args[0]
    # The gold label starts empty: a changed input may need another one.
    assert not dock.keep_gold.isChecked()
    expected = [(first.parent, first.origin, {"text": "a bad phone indeed", "label": None})]
    expected += [(c.parent, c.origin, {"text": c.values["text"], "label": None})
                 for c in shown[2:]]
    assert all(isinstance(p, NewDatapoint) and type(p.parent) is int and p.created
               for p in points)
    assert [(p.parent, p.origin, p.values) for p in points] == expected
    assert not set(PROVENANCE_COLUMNS) & {name for p in points for name in p.values}
    # Only the unticked line stays, still unticked; the dataset is the window's to grow.
    assert dock.candidates == [shown[1]]
    assert review.rowCount() == 1 and review.item(0, 0).checkState() == Qt.CheckState.Unchecked
    assert not dock.accept_checked_button.isEnabled() and dock.accept_all_button.isEnabled()
    assert len(dock.session.dataset) == 6

    qtbot.mouseClick(dock.keep_gold, Qt.MouseButton.LeftButton)  # the user keeps it
    with qtbot.waitSignal(dock.accepted, timeout=1_000) as accepted:
        qtbot.mouseClick(dock.accept_all_button, Qt.MouseButton.LeftButton)
    assert [p.parent for p in accepted.args[0]] == [shown[1].parent]
    assert accepted.args[0][0].values["label"] == LABELS[shown[1].parent]
    assert review.rowCount() == 0 and not dock.accept_all_button.isEnabled()


def test_the_whole_dataset_a_new_run_replaces_the_list_and_a_new_dataset_drops_it(qtbot, dock):
    choose(dock, "word_replacer")
    assert dock.scope_dataset.isChecked() and not dock.scope_selection.isEnabled()
    type_into(qtbot, text_param(dock), "phone -> tablet")
    assert run(qtbot, dock) == "done"
    assert [c.parent for c in dock.candidates] == [0, 1]
    type_into(qtbot, text_param(dock), "good -> bad")
    assert run(qtbot, dock) == "done"
    assert {c.parent for c in dock.candidates} == {0, 2, 4, 5}  # row 5 is the user's own
    assert dock.review.rowCount() == len(dock.candidates)

    with qtbot.assertNotEmitted(dock.accepted):
        dock.session.set_dataset(reviews("other"))
    assert dock.candidates == [] and dock.review.rowCount() == 0
    assert not dock.accept_all_button.isEnabled()


def test_unparsable_params_show_the_error_in_red_and_emit_nothing(qtbot, dock):
    choose(dock, "word_replacer")
    type_into(qtbot, text_param(dock), "good bad")
    with qtbot.assertNotEmitted(dock.accepted):
        assert run(qtbot, dock) == "failed"
        qtbot.mouseClick(dock.accept_all_button, Qt.MouseButton.LeftButton)
    assert dock.error_label.isVisible() and "good bad" in dock.error_label.text()
    assert NEGATIVE.name() in dock.error_label.styleSheet()
    assert dock.review.rowCount() == 0 and dock.candidates == []
    assert dock.run_button.text() == RUN_TEXT and dock.run_button.isEnabled()

    type_into(qtbot, text_param(dock), "good -> bad")  # the app goes on
    assert run(qtbot, dock) == "done"
    assert not dock.error_label.isVisible() and dock.review.rowCount() == 4  # rows 0, 2, 4, 5


def test_the_model_picker_shows_only_for_generators_that_need_a_model(qtbot, dock):
    needs = {name: info.needs_model for name, info in GENERATORS.items()}
    assert set(needs.values()) == {True, False}
    for name, needs_model in needs.items():
        choose(dock, name)
        assert dock.model_choice.isVisible() == needs_model, name
        assert dock.model_name() == ("keywords" if needs_model else None)
    assert [dock.model_choice.itemText(i) for i in range(dock.model_choice.count())] == \
        ["keywords"]
    dock.session.add_model(KeywordModel("second"))
    assert dock.model_choice.count() == 2


def test_an_inapplicable_generator_shows_why_and_cannot_run(qtbot, dock):
    session = dock.session
    reason = applicable("tabular_flip", session.dataset, session.models["keywords"])
    assert reason
    choose(dock, "tabular_flip")
    assert dock.reason_label.isVisible() and dock.reason_label.text() == reason
    assert not dock.run_button.isEnabled()
    dock.generator_choice.setFocus()
    with qtbot.assertNotEmitted(dock.run_finished):
        qtbot.keyClick(dock.generator_choice, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier)
    assert not dock.runner.busy

    choose(dock, "word_replacer")
    assert not dock.reason_label.isVisible() and dock.run_button.isEnabled()


def test_cancel_stops_the_run_and_leaves_the_list_empty(qtbot, dock, monkeypatch):
    release = threading.Event()

    def blocking_job(name, dataset, rows, params, model=None):
        yield Progress(0, len(rows), "working")
        release.wait(10)
        yield Progress(1, len(rows), "working")  # a cancelled job stops here
        return [Candidate(0, dataset.table.slice(0, 1).to_pylist()[0], "never shown")]

    monkeypatch.setattr(generators_dock, "generate_job", blocking_job)
    choose(dock, "word_replacer")
    dock.generator_choice.setFocus()
    with qtbot.waitSignal(dock.runner.progress, timeout=10_000):
        qtbot.keyClick(dock.generator_choice, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier)  # Ctrl+Return runs
    assert dock.running() and dock.run_button.text() == CANCEL_TEXT

    with qtbot.waitSignal(dock.run_finished, timeout=1_000) as finished:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"]
    release.set()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=10_000)
    assert dock.review.rowCount() == 0 and dock.candidates == []
    assert not dock.running() and dock.run_button.text() == RUN_TEXT
    assert dock.progress_label.text() == "Cancelled."
