"""Scalars: thresholds, curves and jitter against brute force and scikit-learn; the dock."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from sklearn.metrics import (average_precision_score, precision_recall_curve, roc_auc_score,
                             roc_curve)

from litdesk.api import CategoryLabel, Dataset, Scalar, TextSegment
from litdesk.core.metrics import classification_metrics
from litdesk.core.predict import Predictions
from litdesk.core.scalars import Score, ThresholdCounts, stable_jitter
from litdesk.core.workbench import Workbench
from litdesk.ui.docks.scalars import METRIC_NAMES, ScalarsDock, scatter_points
from litdesk.ui.jobs import JobRunner
from tests.fakes import KeywordModel
from tests.helpers import predict

WORDS = ("good", "great", "fine", "bad", "awful", "meh", "ok", "slow")


def brute_force_cost(gold, scores, threshold, cost_fp, cost_fn):
    called = scores >= threshold
    return cost_fp * np.sum(called & ~gold) + cost_fn * np.sum(~called & gold)


@pytest.mark.parametrize("cost_fp, cost_fn", [(1, 1), (1, 5), (5, 1), (0.3, 1), (1, 0)])
def test_optimal_threshold_is_the_brute_force_minimum(cost_fp, cost_fn):
    rng = np.random.default_rng(3)
    gold = rng.random(400) < 0.4
    scores = np.round(np.clip(0.3 * gold + rng.random(400) * 0.7, 0, 1), 2)  # many ties
    candidates = np.r_[np.inf, np.unique(scores)[::-1]]  # highest first: ties go to it
    costs = [brute_force_cost(gold, scores, t, cost_fp, cost_fn) for t in candidates]
    best = candidates[int(np.argmin(costs))]
    found = ThresholdCounts.of(gold, scores).optimal(cost_fp, cost_fn)
    assert brute_force_cost(gold, scores, found, cost_fp, cost_fn) == min(costs)
    assert found == best or (best == np.inf and found > scores.max())


def test_optimal_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        ThresholdCounts.of([True, False], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="negative"):
        ThresholdCounts.of([True], [0.5]).optimal(cost_false_positive=-1)


def test_metrics_at_a_threshold_equal_classification_metrics():
    rng = np.random.default_rng(8)
    gold = rng.random(500) < 0.3
    scores = np.round(np.clip(0.3 * gold + rng.random(500) * 0.7, 0, 1), 2)  # many ties
    counts = ThresholdCounts.of(gold, scores)
    probabilities = np.column_stack([1 - scores, scores])
    labels = np.where(gold, "yes", "no")
    for threshold in (0.0, 0.2, 0.5, 0.55, 0.71, 0.99, 1.5):
        expected = classification_metrics(labels, probabilities, ("no", "yes"), threshold, "yes")
        assert counts.metrics(threshold) == pytest.approx(
            {name: expected[name] for name in METRIC_NAMES})


@pytest.mark.parametrize("decimals", [3, 1])  # few ties, and long runs of them
def test_curves_equal_scikit_learns_and_the_threshold_point_lies_on_them(decimals):
    rng = np.random.default_rng(5)
    gold = rng.random(300) < 0.5
    scores = np.round(0.4 * gold + 0.6 * rng.random(300), decimals)
    counts = ThresholdCounts.of(gold, scores)
    curves = counts.curves()
    precision, recall, pr_thresholds = precision_recall_curve(gold, scores)
    fpr, tpr, roc_thresholds = roc_curve(gold, scores)
    np.testing.assert_array_equal(curves.precision, precision)
    np.testing.assert_array_equal(curves.recall, recall)
    np.testing.assert_array_equal(curves.pr_thresholds, pr_thresholds)
    np.testing.assert_array_equal(curves.false_positive_rate, fpr)
    np.testing.assert_array_equal(curves.true_positive_rate, tpr)
    np.testing.assert_array_equal(curves.roc_thresholds, roc_thresholds)
    assert curves.roc_auc == roc_auc_score(gold, scores)
    assert curves.average_precision == average_precision_score(gold, scores)
    for index in (1, len(roc_thresholds) // 2, len(roc_thresholds) - 1):
        point = counts.point(roc_thresholds[index])
        assert point.false_positive_rate == pytest.approx(fpr[index])
        assert point.recall == pytest.approx(tpr[index])
        pr_index = int(np.flatnonzero(pr_thresholds == roc_thresholds[index])[0])
        assert point.precision == pytest.approx(precision[pr_index])
    with pytest.raises(ValueError, match="both classes"):
        ThresholdCounts.of([True, True], [0.2, 0.9]).curves()


def test_jitter_is_stable_per_row_and_bounded():
    rows = np.arange(10_000)
    offsets = stable_jitter(rows, width=0.3)
    assert np.all(np.abs(offsets) <= 0.3) and offsets.std() > 0.15
    np.testing.assert_array_equal(stable_jitter([7, 9000]), offsets[[7, 9000]])
    assert not np.array_equal(stable_jitter(rows, seed=1), offsets)


def test_a_categorical_x_follows_the_vocab_with_missing_last():
    table = pa.table({"grade": ["b", None, "a", "c"], "p": [0.1, 0.2, 0.3, 0.4]})
    dataset = Dataset(table, {"grade": CategoryLabel(vocab=("c", "b")), "p": Scalar()}, "d")
    predictions = Predictions("m", "d", {"p": np.array([0.1, 0.2, 0.3, 0.4])}, {"p": Scalar()})
    points = scatter_points(dataset, {"m": predictions}, None, Score("m", "p"),
                            ("field", "grade"), ("field", "grade"))
    assert points.ticks == points.names == ["c", "b", "a", "(missing)"]
    assert np.round(points.x).tolist() == points.codes.tolist() == [1, 3, 2, 0]


# -- the dock ---------------------------------------------------------------------------------


def review_dataset(n: int = 80) -> Dataset:
    rng = np.random.default_rng(11)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 5))) for _ in range(n)]
    positive = np.array([sum(w in {"good", "great", "fine"} for w in t.split()) for t in texts])
    noisy = (positive > 0) ^ (rng.random(n) < 0.2)
    labels = np.where(noisy, "positive", "negative")
    table = pa.table({"text": texts, "label": labels})
    return Dataset(table, {"text": TextSegment(),
                           "label": CategoryLabel(vocab=("negative", "positive"))}, "reviews")


@pytest.fixture
def dock(qtbot):
    runner = JobRunner()
    session = Workbench(runner).session
    widget = ScalarsDock(session, runner)
    qtbot.addWidget(widget)
    widget.resize(1000, 500)
    widget.show()
    qtbot.waitExposed(widget)
    session.set_dataset(review_dataset())
    model = KeywordModel()
    session.add_model(model)
    with qtbot.waitSignal(runner.idle, timeout=30_000):  # outcomes, points, thresholds, curves
        predict(qtbot, session, model)
    yield widget
    runner.shutdown()


def show_curves(qtbot, dock) -> None:
    """Click the PR / ROC tab, as a user does (the curves are drawn when it is in front)."""
    bar = dock.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert dock.tabs.currentWidget() is dock.curves_page


def expected_metrics(dock, threshold):
    predictions = dock.session.predictions["keywords"]
    measured = classification_metrics(dock.session.dataset.table.column("label"),
                                      predictions.fields["probas"], ("negative", "positive"),
                                      threshold=threshold, positive_label="positive")
    return {name: measured[name] for name in METRIC_NAMES}


def shown_metrics(dock):
    return [dock.metrics_table.item(0, column).text() for column in range(5)]


def test_moving_the_threshold_slider_changes_the_metrics(qtbot, dock):
    assert dock.y_choice.currentText() == "keywords: P(positive)"
    assert dock.threshold_box.isVisible() and dock.threshold_line.isVisible()
    before = shown_metrics(dock)
    at_half = expected_metrics(dock, 0.5)
    assert before == [f"{value:.3f}" for value in (0.5, *at_half.values())]
    dock.threshold_slider.setFocus()
    for _ in range(4):
        qtbot.keyClick(dock.threshold_slider, Qt.Key.Key_PageUp)
    assert dock.session.threshold("keywords") == pytest.approx(0.7)
    at_07 = expected_metrics(dock, 0.7)
    assert dock.metrics["keywords"] == pytest.approx(at_07)
    assert dock.metrics["keywords"]["recall"] < at_half["recall"]
    assert shown_metrics(dock) != before
    assert shown_metrics(dock)[4] == f"{at_07['f1']:.3f}"
    assert dock.threshold_spin.value() == pytest.approx(0.7)
    assert dock.threshold_line.value() == pytest.approx(0.7)


def test_the_spin_box_moves_the_slider_and_the_curve_points(qtbot, dock):
    show_curves(qtbot, dock)
    dock.threshold_spin.setValue(0.8)
    assert dock.threshold_slider.value() == 800
    gold = np.asarray(dock.session.dataset.table.column("label").to_pylist()) == "positive"
    p = dock.session.predictions["keywords"].fields["probas"][:, 1]
    point = ThresholdCounts.of(gold, p).point(0.8)
    _pr_line, _roc_line, pr_marker, roc_marker = dock._curve_items["keywords"][1]
    assert pr_marker.points()[0].pos() == QPointF(point.recall, point.precision)
    assert roc_marker.points()[0].pos() == QPointF(point.false_positive_rate, point.recall)


def test_optimal_threshold_button_moves_the_slider_there(qtbot, dock):
    dock.cost_ratio.setValue(3.0)
    qtbot.mouseClick(dock.optimal_button, Qt.MouseButton.LeftButton)
    gold = np.asarray(dock.session.dataset.table.column("label").to_pylist()) == "positive"
    p = dock.session.predictions["keywords"].fields["probas"][:, 1].astype(np.float64)
    expected = ThresholdCounts.of(gold, p).optimal(3.0, 1.0)
    assert dock.session.threshold("keywords") == pytest.approx(min(1.0, expected))
    assert dock.threshold_slider.value() == round(min(1.0, expected) * 1000)
    assert dock.metrics["keywords"] == pytest.approx(expected_metrics(dock, expected))


def test_curves_tab_shows_scikit_learns_curves_with_auc(qtbot, dock):
    assert not dock._curve_items  # nothing drawn while the Scores tab is in front
    show_curves(qtbot, dock)
    gold = np.asarray(dock.session.dataset.table.column("label").to_pylist()) == "positive"
    p = dock.session.predictions["keywords"].fields["probas"][:, 1].astype(np.float64)
    curves = dock.curves["keywords"]
    assert curves.roc_auc == pytest.approx(roc_auc_score(gold, p))
    roc_item = next(item for item in dock.roc_plot.listDataItems() if item.name())
    assert f"AUC {curves.roc_auc:.3f}" in roc_item.name()
    np.testing.assert_allclose(roc_item.getData()[0], roc_curve(gold, p)[0])


def test_new_outcomes_redraw_the_curves_they_have(qtbot, dock):
    # A model's lines, markers and legend entries stay; they get the new curves and figures.
    show_curves(qtbot, dock)
    _colour, items = dock._curve_items["keywords"]
    legend = dock.roc_plot.getPlotItem().legend
    before = legend.getLabel(items[1]).text
    old = dock.session.predictions["keywords"]
    probas = old.fields["probas"][::-1].copy()  # another model's scores, as after training
    with qtbot.waitSignal(dock.runner.idle, timeout=30_000):
        dock.session.set_predictions(Predictions(old.model_name, old.dataset_name,
                                                 {**old.fields, "probas": probas}, old.spec))
    assert dock._curve_items["keywords"][1] == items
    gold = np.asarray(dock.session.dataset.table.column("label").to_pylist()) == "positive"
    auc = roc_auc_score(gold, probas[:, 1].astype(np.float64))
    roc_line = items[1]
    np.testing.assert_allclose(roc_line.getData()[0], roc_curve(gold, probas[:, 1])[0])
    assert legend.getLabel(roc_line).text == f"keywords (AUC {auc:.3f})" != before
    assert len(legend.items) == 1


def send_drag(widget, start: QPointF, end: QPointF, modifiers=Qt.KeyboardModifier.NoModifier):
    """Press, move in steps and release the left button over ``widget``, as a hand would."""
    def send(kind, pos, button, buttons):
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, modifiers)
        QApplication.sendEvent(widget, event)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    rate_limit = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOptions(mouseRateLimit=-1)  # synthetic moves come faster than a hand's
    try:
        send(QEvent.Type.MouseButtonPress, start, left, left)
        for step in np.linspace(0.1, 1.0, 8):
            send(QEvent.Type.MouseMove, start + (end - start) * float(step), none, left)
        send(QEvent.Type.MouseButtonRelease, end, left, none)
    finally:
        pg.setConfigOptions(mouseRateLimit=rate_limit)


def show_unit_square(dock) -> None:
    """Show x in [-0.5, 1.5] (both categories) and y in [0, 1], so drags start inside."""
    dock.plot.setRange(xRange=(-0.5, 1.5), yRange=(0, 1), padding=0)


def to_widget(dock, x: float, y: float) -> QPointF:
    scene = dock.view_box.mapViewToScene(QPointF(x, y))
    return QPointF(dock.plot.mapFromScene(scene))


def test_shift_drag_selects_the_points_inside_the_box(qtbot, dock):
    assert dock.x_choice.currentText() == "label"  # jittered around 0 (negative), 1 (positive)
    show_unit_square(dock)
    with qtbot.waitSignal(dock.view_box.box_selected) as box:
        send_drag(dock.plot.viewport(), to_widget(dock, 0.45, 0.3), to_widget(dock, -0.45, 0.95),
                  Qt.KeyboardModifier.ShiftModifier)
    rect = box.args[0]
    assert rect.left() == pytest.approx(-0.45, abs=0.02)
    assert rect.top() == pytest.approx(0.3, abs=0.02)
    inside = np.flatnonzero((dock.x >= rect.left()) & (dock.x <= rect.right())
                            & (dock.y >= rect.top()) & (dock.y <= rect.bottom()))
    assert 0 < inside.size < len(dock.x)
    assert dock.session.selection.rows.tolist() == inside.tolist()
    labels = np.asarray(dock.session.dataset.table.column("label").to_pylist())
    p = dock.session.predictions["keywords"].fields["probas"][:, 1]
    assert set(labels[inside]) == {"negative"} and np.all(p[inside] >= 0.3)
    assert len(dock.highlight.points()) == inside.size


def test_box_mode_button_selects_without_shift_and_plain_drag_pans(qtbot, dock):
    dock.session.select([0], source=None)
    show_unit_square(dock)
    send_drag(dock.plot.viewport(), to_widget(dock, 0.6, 0.05), to_widget(dock, 1.45, 0.98))
    assert dock.session.selection.rows.tolist() == [0]  # panned, not selected
    assert dock.view_box.viewRange()[0][0] < -0.9
    qtbot.mouseClick(dock.box_button, Qt.MouseButton.LeftButton)
    assert dock.view_box.box_mode
    show_unit_square(dock)
    send_drag(dock.plot.viewport(), to_widget(dock, 0.6, 0.05), to_widget(dock, 1.45, 0.98))
    labels = np.asarray(dock.session.dataset.table.column("label").to_pylist())
    assert set(labels[dock.session.selection.rows]) == {"positive"}
    assert dock.session.selection.rows.size == np.count_nonzero(labels == "positive")


def test_clicking_a_point_selects_its_row(qtbot, dock):
    row = int(np.argmax(dock.y))  # the highest score: no point hides it
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=to_widget(dock, dock.x[row], dock.y[row]).toPoint())
    assert dock.session.selection.primary is not None
    chosen = dock.session.selection.primary
    assert abs(dock.x[chosen] - dock.x[row]) < 0.05 and abs(dock.y[chosen] - dock.y[row]) < 0.02
    assert dock.primary_marker.points()[0].pos() == QPointF(dock.x[chosen], dock.y[chosen])


def test_a_selection_made_elsewhere_is_highlighted(dock):
    dock.session.select([3, 10, 40], primary=10, source="table")
    positions = {(p.pos().x(), p.pos().y()) for p in dock.highlight.points()}
    assert positions == {(dock.x[r], dock.y[r]) for r in (3, 10, 40)}


def test_colour_by_correctness_splits_the_points(qtbot, dock):
    with qtbot.waitSignal(dock.plotted, timeout=10_000):
        dock.color_choice.setCurrentIndex(dock.color_choice.findText("correct: keywords"))
    labels = np.asarray(dock.session.dataset.table.column("label").to_pylist())
    predicted = np.where(dock.session.predictions["keywords"].fields["probas"][:, 1] >= 0.5,
                         "positive", "negative")
    assert np.bincount(dock.points.codes, minlength=2).tolist() == [
        np.count_nonzero(predicted == labels), np.count_nonzero(predicted != labels)]
    assert "wrong" in dock.legend.text()


def add_shifted_model(qtbot, dock) -> None:
    """A second classifier, predicted, with everything the dock computes from it."""
    other = KeywordModel("shifted", bias=1.0)
    dock.session.add_model(other)
    with qtbot.waitSignal(dock.runner.idle, timeout=30_000):
        predict(qtbot, dock.session, other)


def test_another_models_score_on_x(qtbot, dock):
    add_shifted_model(qtbot, dock)
    with qtbot.waitSignal(dock.plotted, timeout=10_000):
        dock.x_choice.setCurrentIndex(dock.x_choice.findText("shifted: P(positive)"))
    np.testing.assert_allclose(dock.x, dock.session.predictions["shifted"].fields["probas"][:, 1])
    assert dock.metrics_table.rowCount() == 2


def test_the_predicted_labels_are_computed_once_per_change_by_the_workbench(qtbot, dock,
                                                                          monkeypatch):
    calls = []
    original = Predictions.predicted_labels

    def counted(predictions):
        calls.append(predictions.model_name)
        return original(predictions)

    monkeypatch.setattr(Predictions, "predicted_labels", counted)
    add_shifted_model(qtbot, dock)
    with qtbot.waitSignal(dock.plotted, timeout=10_000):
        dock.color_choice.setCurrentIndex(dock.color_choice.findText("correct: shifted"))
    assert sorted(calls) == ["keywords", "shifted"]  # the workbench's outcomes, once per model
    assert set(dock.binary) == {"keywords", "shifted"} and "wrong" in dock.legend.text()


def test_the_window_tabs_both_docks_and_draws_them_only_when_shown(qtbot):
    from litdesk.ui.main_window import MainWindow

    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    tabbed = window.tabifiedDockWidgets(window.docks["Model Comparison"])
    assert window.docks["Scalars"] in tabbed and window.docks["Partial Dependence"] in tabbed
    dock = window.scalars_dock
    window.session.set_dataset(review_dataset())
    model = KeywordModel()
    window.session.add_model(model)
    predict(qtbot, window.session, model)
    assert dock.stale and dock.x is None  # a background tab draws nothing
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):  # its curves, once shown
        window.docks["Scalars"].raise_()
    assert not dock.stale and len(dock.x) == 80 and "keywords" in dock.curves
    window.runner.cancel_all()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
