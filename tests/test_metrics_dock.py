"""The Metrics dock, driven through its widgets: groups, best marks, selection, copy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from litdesk.api import CategoryLabel, Dataset, Scalar, TextSegment
from litdesk.core.jobs import run_job
from litdesk.core.metrics import model_metrics
from litdesk.core.predict import predict_job
from litdesk.core.session import Session
from litdesk.ui.docks.metrics import SELECTION, SLICE_PREFIX, WHOLE_DATASET, MetricsDock
from litdesk.ui.jobs import JobRunner
from tests.fakes import KeywordModel
from tests.helpers import load_with_model

TEXTS = ["good phone", "bad phone", "great fun", "awful", "fine fine", "meh", "love it",
         "broken", "excellent", "not good"]
GOLD = ["positive", "negative", "positive", "negative", "negative", "positive", "positive",
        "negative", "positive", "negative"]


@pytest.fixture
def dock(qtbot):
    session = Session()
    runner = JobRunner()
    widget = MetricsDock(session, runner)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30_000)


def load(qtbot, dock, models=(KeywordModel("keywords"), KeywordModel("eager", bias=3.0))):
    table = pa.table({"text": TEXTS, "label": GOLD, "stars": [5, 1, 4, 1, 3, 3, 5, 1, 5, 2]})
    dataset = Dataset(table, {"text": TextSegment(),
                              "label": CategoryLabel(vocab=("negative", "positive")),
                              "stars": Scalar()}, "reviews")
    session = dock.session
    session.set_dataset(dataset)
    for model in models:
        session.add_model(model)
        with qtbot.waitSignal(dock.refreshed, timeout=10_000):
            session.set_predictions(run_job(predict_job(model, dataset)))
    return session


def table_rows(dock):
    return [(dock.table.item(r, 0).text(), dock.table.item(r, 1).text())
            for r in range(dock.table.rowCount())]


def cell(dock, group, model, metric):
    row = table_rows(dock).index((group, model))
    headers = [dock.table.horizontalHeaderItem(c).text() for c in range(dock.table.columnCount())]
    return dock.table.item(row, headers.index(metric))


def test_the_whole_dataset_with_the_best_model_marked_and_deltas(qtbot, dock):
    session = load(qtbot, dock)
    assert table_rows(dock) == [(WHOLE_DATASET, "keywords"), (WHOLE_DATASET, "eager")]
    assert dock.gold_choice.currentData() is None and "gold: <b>label</b>" in dock.summary.text()
    values = {name: model_metrics(p, session.dataset)["accuracy"]
              for name, p in session.predictions.items()}
    best, worst = sorted(values, key=values.get, reverse=True)
    assert values[best] > values[worst]
    best_cell, worst_cell = (cell(dock, WHOLE_DATASET, m, "accuracy") for m in (best, worst))
    assert best_cell.font().bold() and not worst_cell.font().bold()
    assert best_cell.text() == f"{values[best]:.3f}"
    assert worst_cell.text() == f"{values[worst]:.3f} ({values[worst] - values[best]:+.3f})"
    dock.reference_choice.setCurrentIndex(dock.reference_choice.findData(worst))
    qtbot.waitUntil(lambda: dock.table_data.reference == worst, timeout=10_000)
    assert cell(dock, WHOLE_DATASET, best, "accuracy").text().endswith(
        f"({values[best] - values[worst]:+.3f})")


def test_the_selection_group_follows_the_selection(qtbot, dock):
    session = load(qtbot, dock)
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        session.select([0, 1, 2, 3])
        session.select([1, 3, 5])  # within the debounce: only this one is measured
    assert (SELECTION, "keywords") in table_rows(dock)
    entry = dock.table_data.entry(SELECTION, "keywords")
    assert entry.size == 3
    assert entry.values == model_metrics(session.predictions["keywords"], session.dataset,
                                         np.array([1, 3, 5]))
    assert cell(dock, SELECTION, "keywords", "rows").text() == "3"


def test_slices_and_facets_are_groups_and_a_click_selects_their_rows(qtbot, dock):
    session = load(qtbot, dock)
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        session.add_slice("phones", [0, 1])
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        dock.facet_choice.setCurrentIndex(dock.facet_choice.findData("stars"))
    groups = list(dict.fromkeys(group for group, _model in table_rows(dock)))
    assert groups[:2] == [WHOLE_DATASET, f"{SLICE_PREFIX}phones"]
    assert "stars = 5" in groups and dock.bins.isEnabled()

    row = table_rows(dock).index((f"{SLICE_PREFIX}phones", "eager"))
    rect = dock.table.visualRect(dock.table.model().index(row, 0))
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        qtbot.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert session.selection.rows.tolist() == [0, 1]
    assert dock.table_data.entry(SELECTION, "eager").size == 2
    assert dock.table.currentRow() == table_rows(dock).index((f"{SLICE_PREFIX}phones", "eager"))


def test_a_gold_column_without_usable_values_is_shown_not_raised(qtbot, dock):
    load(qtbot, dock)
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        dock.gold_choice.setCurrentIndex(dock.gold_choice.findData("text"))
    entry = dock.table_data.entry(WHOLE_DATASET, "keywords")
    assert entry.values["count"] == 0 and entry.values["excluded"] == len(TEXTS)
    assert cell(dock, WHOLE_DATASET, "keywords", "accuracy").text() == "—"


def test_ctrl_c_copies_the_table_as_tsv(qtbot, dock):
    load(qtbot, dock)
    dock.table.setFocus()
    qtbot.keyClick(dock.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["group", "model", "rows", "measured"] and "Δ accuracy" in header
    first = dict(zip(header, lines[1].split("\t")))
    assert first["model"] == "keywords" and first["rows"] == "10"
    assert float(first["accuracy"]) == pytest.approx(
        dock.table_data.entry(WHOLE_DATASET, "keywords").values["accuracy"])
    assert len(lines) == 3


def test_the_dock_is_in_the_window_beside_model_comparison(qtbot, window):
    assert window.docks["Metrics"] in window.tabifiedDockWidgets(window.docks["Model Comparison"])
    assert isinstance(window.metrics_dock, MetricsDock)


def test_a_shown_result_is_the_newest_request(qtbot, dock):
    load(qtbot, dock)
    shown = []
    dock.refreshed.connect(lambda: shown.append(dock.reference_choice.currentData()))
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        dock.reference_choice.setCurrentIndex(dock.reference_choice.findData("keywords"))
        dock.reference_choice.setCurrentIndex(dock.reference_choice.findData("eager"))
    assert shown == ["eager"] and dock.table_data.reference == "eager"


def test_hidden_docks_do_no_work_until_shown(qtbot, window, tmp_path):
    titles = []
    window.runner.progress.connect(lambda title, _progress: titles.append(title))
    with qtbot.waitSignal(window.session.outcomes_changed, timeout=10_000):
        load_with_model(qtbot, window, tmp_path)
    window.session.add_slice("first two", [0, 1])
    window.session.select([1, 2])
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    ours = ("Metrics", "Confusion matrix", "Scalars", "PR and ROC", "Facets", "Partial")
    assert not [title for title in titles if title.startswith(ours)]
    metrics, confusion, scalars = (window.metrics_dock, window.confusion_dock,
                                   window.scalars_dock)
    assert metrics.table_data is None and confusion.model.matrix is None and scalars.x is None
    with qtbot.waitSignal(metrics.refreshed, timeout=10_000):
        window.docks["Metrics"].raise_()
    assert list(metrics.table_data.groups) == [WHOLE_DATASET, SELECTION, f"{SLICE_PREFIX}first two"]
    with qtbot.waitSignal(confusion.counted, timeout=10_000):
        window.docks["Confusion Matrix"].raise_()
    assert confusion.model.matrix.counts.sum() == 6
    with qtbot.waitSignal(scalars.plotted, timeout=10_000):
        window.docks["Scalars"].raise_()
    assert len(scalars.x) == 6
    assert {"Metrics", "Confusion matrix", "Scalars: points"} <= set(titles)
    training = window.training_dock  # a background tab until the Train menu raises it
    assert training.stale and training.label_column.count() == 0
    window.show_training("linear")
    assert training.label_column.currentText() == "label" and not training.stale
