"""The window, driven through its real widgets: drops, clicks, keys, cancel, bad files."""

from __future__ import annotations


import pytest
from PySide6.QtCore import QElapsedTimer, QPointF, Qt, QTimer
from PySide6.QtWidgets import QApplication

from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from litdesk.ui.main_window import MainWindow
from tests.fakes import KeywordModel, SlowModel
from tests.helpers import ROWS, cell, drop, headers, load_with_model, shows_outcomes, write_csv

def test_dropping_a_csv_shows_its_rows(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        event = drop(window, [write_csv(tmp_path / "reviews.csv")])
    assert event.isAccepted()
    table = window.table_dock.model
    assert table.rowCount() == len(ROWS)
    assert table.data(table.index(1, 0)) == "terrible battery, awful"
    assert "reviews" in window.windowTitle()


def test_clicking_a_table_row_moves_every_dock(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    view = window.table_dock.view
    with qtbot.waitSignal(window.runner.idle, timeout=60_000):  # salience of the new primary
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(window.table_dock.model.index(4, 0)).center())
    assert window.session.selection.primary == 4
    assert cell(window.comparison_dock, 0, 0) == "4"
    assert cell(window.comparison_dock, 0, 3) == "positive"
    result = window.salience_dock.results[("keywords", "model_salience", 4)]
    assert result.features == ("excellent", "screen")
    assert window.projector_dock.highlight.points()[0].pos() == QPointF(
        *window.projector_dock.coords[4])


def test_shift_click_selects_a_range_and_ctrl_click_adds(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    view, model = window.table_dock.view, window.table_dock.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(1, 0)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, view.visualRect(model.index(3, 0)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier,
                     view.visualRect(model.index(5, 0)).center())
    assert window.session.selection.rows.tolist() == [1, 2, 3, 5]
    assert window.session.selection.primary == 5
    assert "4 selected" in window.table_dock.status.text()


def test_projector_click_selects_the_row_in_the_table(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    projector = window.projector_dock
    qtbot.waitUntil(lambda: projector.positions is not None, timeout=10_000)
    plot = projector.plot
    target = QPointF(*projector.positions[2])
    view_pos = plot.mapFromScene(plot.getPlotItem().vb.mapViewToScene(target))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert window.session.selection.primary == 2
    assert window.table_dock.view.selectionModel().isRowSelected(2)


def test_search_sorts_and_filters_through_the_worker(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    dock = window.table_dock
    qtbot.keyClicks(dock.search, "label=positive")
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        qtbot.keyClick(dock.search, Qt.Key.Key_Return)
    assert dock.model.rows.tolist() == [0, 2, 4]
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        dock.view.horizontalHeader().sectionClicked.emit(0)  # sort by text
    assert dock.model.rows.tolist() == [0, 4, 2]  # code-point order: "I love" < "excellent"


def test_a_bad_search_is_shown_and_the_view_kept(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    dock = window.table_dock
    qtbot.keyClicks(dock.search, "/[unclosed/")
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        qtbot.keyClick(dock.search, Qt.Key.Key_Return)
    assert "Search error" in dock.status.text()
    assert dock.model.rowCount() == len(ROWS)


def test_cancel_stops_a_running_prediction(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv", ROWS * 40)])
    with qtbot.waitSignal(window.runner.progress, timeout=10_000):
        window.session.add_model(SlowModel(seconds_per_batch=0.05, batch_size=2))
        window.predict_missing()
    assert window.cancel_button.isVisible()
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert "slow" not in window.session.predictions
    assert not window.cancel_button.isVisible()


def test_main_thread_never_stalls_while_a_slow_model_runs(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv", ROWS * 20)])
    gaps, clock = [], QElapsedTimer()
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: (gaps.append(clock.restart())))
    clock.start()
    timer.start()
    with qtbot.waitSignal(window.session.predictions_changed, timeout=20_000):
        window.session.add_model(SlowModel(seconds_per_batch=0.03, batch_size=4))
        window.predict_missing()
    timer.stop()
    assert len(gaps) > 20
    assert max(gaps[1:]) < 50, f"event loop stalled {max(gaps)} ms"


@pytest.mark.parametrize("name, content, expected", [
    ("empty.csv", b"", "empty"),
    ("garbage.csv", bytes(range(256)) * 8, "not a text file"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "line 3"),
    ("quote.csv", b'a,b\n1,"open\n2,3\n', "line 2"),
    ("notes.xyz", b"hello", "unsupported"),
])
def test_bad_files_give_one_message_and_lose_nothing(qtbot, window, tmp_path, name, content,
                                                     expected):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "good.csv")])
    bad = tmp_path / name
    bad.write_bytes(content)
    with qtbot.waitSignal(window.error_reported, timeout=10_000) as blocker:
        drop(window, [bad])
    message = blocker.args[0]
    assert name in message and expected in message.lower()
    assert window.session.dataset.name == "good"
    assert window.table_dock.model.rowCount() == len(ROWS)


def test_a_folder_that_is_neither_dataset_nor_model(qtbot, window, tmp_path):
    folder = tmp_path / "holiday_photos"
    folder.mkdir()
    (folder / "readme.txt").write_text("hi")
    with qtbot.waitSignal(window.error_reported, timeout=10_000) as blocker:
        window.open_paths([folder])
    assert "holiday_photos" in blocker.args[0]


def test_docks_close_come_back_and_the_layout_persists(qtbot, tmp_path):
    first = MainWindow(show_dialogs=False)
    qtbot.addWidget(first)
    first.show()
    default = first.size()
    first.docks["Salience"].close()
    # Another size than the default (most of the screen, at least the docks' minimum).
    first.resize(first.minimumSizeHint().width(), first.height() + 41)
    size = first.size()
    first.close()
    second = MainWindow(show_dialogs=False)
    qtbot.addWidget(second)
    second.show()
    assert not second.docks["Salience"].isVisible()
    assert second.size() == size != default
    view_action = second.docks["Salience"].toggleViewAction()
    view_action.trigger()
    assert second.docks["Salience"].isVisible()


def test_column_type_can_be_corrected(qtbot, window, tmp_path):
    from litdesk.api import CategoryLabel, Scalar, TextSegment

    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    assert isinstance(window.session.dataset.spec()["label"], CategoryLabel)
    window.table_dock.set_column_type("label", TextSegment)  # checked in the background
    qtbot.waitUntil(lambda: isinstance(window.session.dataset.spec()["label"], TextSegment))
    qtbot.waitUntil(lambda: not window.runner.busy)  # what the new type starts, first
    window.table_dock.set_column_type("text", Scalar)
    qtbot.waitUntil(lambda: "Cannot change the type" in window.table_dock.status.text())
    assert isinstance(window.session.dataset.spec()["text"], TextSegment)


def test_pinning_a_row_marks_it_in_every_dock(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.projector_dock.positions is not None, timeout=10_000)
    view, model = window.table_dock.view, window.table_dock.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(3, 0)).center())
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert window.session.selection.pinned == 3
    assert model.headerData(3, Qt.Orientation.Vertical) == "★ 3"
    assert len(window.projector_dock.pinned_marker.points()) == 1
    with qtbot.waitSignal(window.comparison_dock.listed, timeout=60_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(model.index(1, 0)).center())
    assert cell(window.comparison_dock, 0, 0) == "★ 3"
    assert cell(window.comparison_dock, 1, 0) == "1"


def test_copy_and_export_the_current_view(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    dock = window.table_dock
    dock.search.setText("label=negative")
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        dock.search.returnPressed.emit()
    dock.view.selectAll()
    dock.view.setFocus()
    QApplication.clipboard().clear()
    qtbot.keyClick(dock.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.clipboard().text() != "")  # built in the background
    copied = QApplication.clipboard().text().splitlines()
    assert copied[0].split("\t")[:2] == ["text", "label"]
    assert [line.split("\t")[1] for line in copied[1:]] == ["negative"] * 3
    out = tmp_path / "view.csv"
    dock.export_view(str(out))
    qtbot.waitUntil(lambda: "Exported 3 rows" in dock.status.text())
    import csv

    exported = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["text"] for row in exported] == [ROWS[i][0] for i in (1, 3, 5)]
    assert "keywords_pred" in exported[0]


class BrokenModel(KeywordModel):
    def predict(self, inputs):
        raise RuntimeError("CUDA out of memory (simulated)")


def test_a_failing_model_is_reported_by_name_and_cause(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    window.session.add_model(BrokenModel("flaky"))  # its salience fails too, in parallel
    window.predict_missing()
    qtbot.waitUntil(lambda: any(error.startswith("Predict flaky failed")
                                for error in window.errors), timeout=10_000)
    (message,) = [error for error in window.errors if error.startswith("Predict flaky")]
    assert "out of memory" in message
    assert window.table_dock.model.rowCount() == len(ROWS)


@pytest.mark.slow
def test_a_million_rows_sort_search_and_select(qtbot, window):
    import pyarrow.compute as pc

    from benchmarks.table import SPEC, make_table
    from litdesk.api import Dataset

    table = make_table(1_000_000, seed=1)
    window.session.set_dataset(Dataset(table, SPEC, "million"))
    dock = window.table_dock
    assert dock.model.rowCount() == 1_000_000
    dock.view.scrollToBottom()
    last = dock.model.index(999_999, 0)
    assert dock.model.data(last) == table.column("text")[999_999].as_py()
    with qtbot.waitSignal(window.runner.idle, timeout=60_000):
        dock.view.horizontalHeader().sectionClicked.emit(2)  # score, ascending
    assert dock.model.data(dock.model.index(0, 2)) == f"{pc.min(table.column('score')).as_py():.4g}"
    dock.search.setText("score>0.99")
    with qtbot.waitSignal(window.runner.idle, timeout=60_000):
        dock.search.returnPressed.emit()
    assert dock.model.rowCount() == pc.sum(pc.greater(table.column("score"), 0.99)).as_py()
    dock.view.selectAll()
    assert window.session.selection.rows.size == dock.model.rowCount()


class DatasetCountingModel(KeywordModel):
    """Counts the calls that predict the whole dataset (not the docks' per-row calls)."""

    dataset_calls = 0

    def predict(self, inputs):
        inputs = list(inputs)
        if sorted(example["text"] for example in inputs) == sorted(text for text, _ in ROWS):
            self.dataset_calls += 1
        return super().predict(inputs)


def test_a_second_dataset_keeps_the_first_one_and_its_predictions(qtbot, window, tmp_path):
    model = load_with_model(qtbot, window, tmp_path, DatasetCountingModel())
    second = tmp_path / "more.csv"
    with qtbot.waitSignal(window.session.predictions_changed, timeout=10_000):
        drop(window, [write_csv(second, ROWS[:2])])
    assert window.table_dock.model.rowCount() == 2
    choice = window.table_dock.dataset_choice
    assert [choice.itemText(i) for i in range(choice.count())] == ["reviews", "more"]
    calls = model.dataset_calls
    choice.textActivated.emit("reviews")  # as when the user picks it in the combo box
    assert window.table_dock.model.rowCount() == len(ROWS)
    shows_outcomes(qtbot, window, "keywords")
    assert model.dataset_calls == calls  # switching back predicts nothing again
    assert window.windowTitle().startswith("reviews")


def test_reopening_shows_cached_predictions_without_running_the_model(qtbot, tmp_path):
    model = DatasetCountingModel()
    for attempt in range(2):
        main = MainWindow(show_dialogs=False)
        qtbot.addWidget(main)
        with qtbot.waitSignal(main.dataset_loaded, timeout=10_000):
            main.open_paths([write_csv(tmp_path / "reviews.csv")])
        with qtbot.waitSignal(main.session.predictions_changed, timeout=10_000):
            main.session.add_model(model)
            main.predict_missing()
        main.close()
        assert model.dataset_calls == 1


def test_interactive_jobs_go_ahead_of_queued_bulk_work(qtbot, window):
    import threading

    from PySide6.QtCore import QThreadPool

    from litdesk.core.jobs import Progress

    order, running = [], []
    pool = QThreadPool.globalInstance()
    gates = [threading.Event() for _ in range(pool.maxThreadCount())]

    def blocking_job(index):
        running.append(index)
        yield Progress(0, 1)
        gates[index].wait(10)

    def job(name):
        yield Progress(0, 1)
        order.append(name)

    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=10_000)
    for index in range(pool.maxThreadCount()):  # occupy every thread
        window.runner.submit(blocking_job(index), "bulk")
    qtbot.waitUntil(lambda: len(running) == pool.maxThreadCount(), timeout=10_000)
    window.runner.submit(job("bulk"), "bulk")
    window.runner.submit(job("interactive"), "salience", interactive=True)
    gates[0].set()  # one thread frees up: it takes the interactive job, queued last
    qtbot.waitUntil(lambda: bool(order), timeout=10_000)
    assert order[0] == "interactive"
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        for gate in gates:
            gate.set()
    assert order == ["interactive", "bulk"]


def test_a_pickled_model_asks_before_it_runs_any_code(qtbot, tmp_path):
    import joblib
    import pandas as pd
    from PySide6.QtWidgets import QMessageBox
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "label": ["a", "a", "b", "b"]})
    path = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(frame[["x"]], frame["label"]), path)
    main = MainWindow(show_dialogs=True)
    qtbot.addWidget(main)
    for answer in (QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Open):
        drop(main, [path])
        qtbot.waitUntil(lambda: main.trust_prompt is not None, timeout=10_000)
        assert "runs code" in main.trust_prompt.text()
        if answer == QMessageBox.StandardButton.Cancel:
            main.trust_prompt.button(answer).click()
            qtbot.waitUntil(lambda: not main.runner.busy, timeout=30_000)
            assert main.session.models == {} and main.trust_prompt is None
        else:
            with qtbot.waitSignal(main.model_loaded, timeout=10_000):
                main.trust_prompt.button(answer).click()
    assert list(main.session.models) == ["clf"]


def test_device_and_precision_choices_persist_and_apply_to_new_models(qtbot, tmp_path,
                                                                      monkeypatch):
    first = MainWindow(show_dialogs=False)
    qtbot.addWidget(first)
    assert first.device_actions["auto"].isChecked()
    first.device_actions["cpu"].trigger()
    first.precision_actions["bf16"].trigger()
    second = MainWindow(show_dialogs=False)
    qtbot.addWidget(second)
    assert second.device_actions["cpu"].isChecked() and second.precision_actions["bf16"].isChecked()
    import litdesk.core.workbench as workbench_module

    seen, original = [], workbench_module.load_model_job
    monkeypatch.setattr(workbench_module, "load_model_job",
                        lambda path, options: (seen.append(options), original(path, options))[1])
    second.workbench.open_model(tmp_path / "any_model")
    qtbot.waitUntil(lambda: not second.runner.busy, timeout=30_000)
    assert seen[0].device == "cpu" and seen[0].precision == "bf16"


def test_the_gold_column_is_guessed_and_can_be_chosen(qtbot, window, tmp_path):
    path = tmp_path / "graded.csv"
    path.write_text("text,label,grader\n" + "\n".join(
        f'"{text}",{label},{"negative" if i % 2 == 0 else "positive"}'
        for i, (text, label) in enumerate(ROWS)) + "\n", encoding="utf-8")
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([path])
    model = KeywordModel()
    window.session.add_model(model)
    window.session.set_predictions(run_job(predict_job(model, window.session.dataset)))
    shows_outcomes(qtbot, window, "keywords")
    dock = window.comparison_dock
    with qtbot.waitSignal(dock.listed, timeout=60_000):
        window.session.select(range(len(ROWS)))
    assert dock.gold_choice.currentData() == "label"
    assert "keywords accuracy <b>100.0%</b>" in dock.summary.text()
    assert dock.gold_choice.findData("grader") == -1  # six rows: inferred as text
    from litdesk.api import CategoryLabel

    window.table_dock.set_column_type("grader", CategoryLabel)
    qtbot.waitUntil(lambda: dock.gold_choice.findData("grader") >= 0)
    with qtbot.waitSignal(dock.listed, timeout=60_000):
        dock.gold_choice.setCurrentIndex(dock.gold_choice.findData("grader"))
    assert "keywords accuracy <b>0.0%</b>" in dock.summary.text()
    assert headers(dock)[2] == "gold (grader)"


def test_the_salience_tab_is_in_front_by_default(qtbot, window):
    assert not window.docks["Salience"].visibleRegion().isEmpty()
    assert window.docks["Model Outputs"].visibleRegion().isEmpty()


def test_the_docks_leave_the_window_narrow_enough_for_a_small_screen(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path)
    for dock in window.docks.values():  # each in front once: it fills its controls
        dock.raise_()
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    assert window.salience_dock.method_boxes["occlusion"].isVisible()
    # A row of controls wraps instead of widening its dock, and so the window (1,191 pixels
    # here, 1,612 on the demo, when the Salience and Data Quality rows did not wrap).
    assert window.minimumSizeHint().width() <= 1024
