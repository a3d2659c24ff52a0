"""The Train dock driven by clicks: a baseline and a fine-tune join the session, live chart,
Cancel keeps the checkpoint; Help ▸ About Model shows the training record."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from litdesk.ui.docks.training import BASELINE_LINEAR, FINE_TUNE, SPLIT
from tests.helpers import write_toy_sentiment_csv


@pytest.fixture
def train_window(window, qtbot, tmp_path):
    with qtbot.waitSignal(window.dataset_loaded, timeout=20_000):
        window.open_paths([write_toy_sentiment_csv(tmp_path / "reviews.csv", n=120)])
    window.show_training(BASELINE_LINEAR)
    return window


def test_a_quick_baseline_on_the_train_split_joins_the_session(train_window, qtbot):
    dock = train_window.training_dock
    assert train_window.docks["Train"].isVisible()
    assert dock.label_column.currentText() == "label"
    dock.rows_choice.setCurrentIndex(dock.rows_choice.findData(SPLIT))
    assert dock.split_column.currentText() == "split"
    qtbot.keyClicks(dock.split_value, "train")
    with qtbot.waitSignal(dock.finished, timeout=60_000) as finished:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    run = finished.args[0]
    assert "linear baseline on 96 rows" in run.summary == dock.status.toolTip()
    name = "reviews (linear baseline)"
    qtbot.waitUntil(lambda: name in train_window.session.models, timeout=30_000)
    train_window._fill_about_model_menu()  # Help ▸ About Model lists the open models
    (action,) = [a for a in train_window.about_model_menu.actions() if a.text() == name]
    action.trigger()
    box = train_window.about_model_box
    assert "Rows used: 96 (0:96)" in box.text() and "Seed: 0" in box.text()
    assert '"kind": "baseline:linear"' in box.detailedText()
    box.close()


def test_a_form_mistake_stays_in_the_dock(train_window, qtbot):
    dock = train_window.training_dock
    dock.rows_choice.setCurrentIndex(dock.rows_choice.findData(SPLIT))
    dock.split_value.setFocus()
    with qtbot.waitSignal(dock.failed, timeout=5_000) as failed:  # Ctrl+Return trains
        qtbot.keyClick(dock.split_value, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "type the value of split" in failed.args[0]
    dock.split_value.setText("nowhere")
    with qtbot.waitSignal(dock.failed, timeout=30_000) as failed:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    assert "no row of reviews has split = 'nowhere'" in failed.args[0]
    assert dock.train_button.isEnabled()


@pytest.mark.slow
def test_fine_tuning_draws_its_curves_and_cancel_keeps_a_checkpoint(train_window, qtbot,
                                                                    model_dir):
    with qtbot.waitSignal(train_window.model_loaded, timeout=60_000):
        train_window.open_paths([model_dir])
    train_window.show_training(FINE_TUNE)
    dock = train_window.training_dock
    # The model's arrival refreshes the dock on a coming turn of the event loop.
    qtbot.waitUntil(lambda: dock.base.currentText() == model_dir.name)
    assert dock.train_button.isEnabled()
    dock.epochs.setValue(40)
    dock.learning_rate.setText("1e-3")
    dock.batch_size.setValue(32)
    dock.validation_share.setValue(0.25)

    def validated(report) -> bool:
        return getattr(report, "validation", None) is not None

    with qtbot.waitSignal(dock.progressed, timeout=120_000, check_params_cb=validated):
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    assert dock.cancel_button.isEnabled() and not dock.train_button.isEnabled()
    with qtbot.waitSignal(dock.finished, timeout=120_000) as finished:
        qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    run = finished.args[0]
    assert "fine-tuning cancelled" in run.summary and run.record["result"]["best_epoch"] == 1
    x, y = dock.loss_curve.getData()
    assert len(x) >= 1
    assert len(dock.accuracy_curve.getData()[0]) >= 1
    name = f"{model_dir.name} (fine-tuned)"
    qtbot.waitUntil(lambda: name in train_window.session.models, timeout=60_000)
    assert train_window.workbench.settings.get("training/epochs") == 40  # remembered


@pytest.mark.slow
def test_jobs_cancel_stops_the_training_thread(train_window, qtbot, model_dir):
    import threading

    with qtbot.waitSignal(train_window.model_loaded, timeout=60_000):
        train_window.open_paths([model_dir])
    train_window.show_training(FINE_TUNE)
    dock = train_window.training_dock
    qtbot.waitUntil(lambda: dock.base.currentText() == model_dir.name)
    dock.epochs.setValue(200)
    with qtbot.waitSignal(dock.progressed, timeout=120_000,
                          check_params_cb=lambda report: report.total > 0):
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    train_window.runner.cancel_all()  # Jobs ▸ Cancel, not the dock's button
    qtbot.waitUntil(lambda: not any(t.name == "litdesk-fine-tune" for t in threading.enumerate()),
                    timeout=60_000)
    qtbot.waitUntil(lambda: dock.train_button.isEnabled(), timeout=30_000)
