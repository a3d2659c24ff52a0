"""The Data Quality dock, driven by its widgets: the audit on the worker, sortable lists whose
rows select everywhere, slices, accepting a suggested label."""

from __future__ import annotations

import os
import signal

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QTableView

from litdesk.api import CategoryLabel, Dataset, Scalar
from litdesk.core.cache import ResultCache
from litdesk.core.session import Session
from litdesk.ui.docks.quality import (SIZING_ROWS, VALUES_BLOCK, Column, Listing, QualityDock,
                                      RowsModel, _fit_columns)
from tests.helpers import shown

CLASSES = ["a", "b"]


def flipped(n=240, flips=12, seed=3):
    """Two separated classes in three numbers, ``flips`` labels flipped, a far row and a copy."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    features = np.where(truth[:, None] == 1, 3.0, -3.0) + rng.normal(0, 1, (n, 3))
    features[n - 1] = 60.0  # a far outlier
    features[n - 2] = features[0] + 1e-5  # a near copy of row 0
    truth[n - 2] = truth[0]
    labels = truth.copy()
    wrong = np.sort(rng.choice(n - 2, flips, replace=False))
    labels[wrong] = 1 - truth[wrong]
    table = pa.table({"x": features[:, 0], "y": features[:, 1], "z": features[:, 2],
                      "label": [CLASSES[c] for c in labels]})
    spec = {"x": Scalar(), "y": Scalar(), "z": Scalar(), "label": CategoryLabel(vocab=CLASSES)}
    return Dataset(table, spec, "numbers"), wrong


@pytest.fixture
def dock(qtbot, runner):
    return shown(qtbot, QualityDock(Session(), runner, ResultCache()), 900, 420)


def audited(qtbot, dock, dataset):
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        dock.session.set_dataset(dataset)


def test_empty_state_says_what_to_do(dock):
    assert "Load a dataset" in dock.status.text()
    assert dock.tabs.count() == 0 and not dock.save_action.isEnabled()


def test_lists_select_rows_everywhere_sort_and_save_as_slices(qtbot, dock, tmp_path):
    dataset, wrong = flipped()
    audited(qtbot, dock, dataset)
    names = [dock.tabs.tabText(i) for i in range(dock.tabs.count())]
    assert [name.split(" (")[0] for name in names] == ["Label issues", "Outliers", "Duplicates",
                                                       "Ambiguous"]
    issues = dock.listings[0].rows
    hits = len(set(issues.tolist()) & set(wrong.tolist()))
    assert hits / len(wrong) >= 0.8 and hits / len(issues) >= 0.7
    assert dock.listings[1].rows[0] == len(dataset) - 1  # the far row first
    for view, listing in zip(dock.views, dock.listings):  # shown in that order, unsorted
        assert np.array_equal(view.model().rows(), listing.rows), listing.name
    assert set(dock.listings[2].rows.tolist()) == {0, len(dataset) - 2}
    assert dock.unfitted == dock.views[1:]  # a list's columns are sized when first shown
    for tab, view in enumerate(dock.views):  # to fit its header and first rows, then draggable
        dock.tabs.setCurrentIndex(tab)
        model, header = view.model(), view.horizontalHeader()
        for column in range(model.columnCount() - 1):
            texts = [model.data(model.index(row, column))
                     for row in range(min(SIZING_ROWS, model.rowCount()))]
            widest = max((view.fontMetrics().horizontalAdvance(text) for text in texts),
                         default=0)
            title = header.fontMetrics().horizontalAdvance(model.headerData(column,
                                                                            Qt.Horizontal))
            assert header.sectionSize(column) > max(widest, title)
            assert header.sectionResizeMode(column) == header.ResizeMode.Interactive

    dock.tabs.setCurrentIndex(0)
    view = dock.views[0]
    rect = view.visualRect(view.model().index(1, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    shown_row = int(view.model().rows([1])[0])
    assert dock.session.selection.rows.tolist() == [shown_row]
    assert dock.session.selection.primary == shown_row

    # sort by label quality, descending, with a click on its header (twice)
    header = view.horizontalHeader()
    quality_column = 3
    x = header.sectionViewportPosition(quality_column) + 5
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, 5))
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, 5))
    labels = dock.audit.labels
    qualities = labels.quality[view.model().rows()]
    assert np.all(np.diff(qualities) <= 0) or np.all(np.diff(qualities) >= 0)
    assert not np.all(np.diff(qualities) == 0)

    dock.tabs.setCurrentIndex(1)
    dock.save_action.trigger()
    assert "Outliers" in dock.session.slices
    assert dock.session.slices["Outliers"].tolist() == sorted(dock.listings[1].rows.tolist())

    dock.tabs.setCurrentIndex(0)
    screenshot = os.environ.get("LITDESK_SCREENSHOTS")
    if screenshot:
        dock.grab().save(os.path.join(screenshot, "quality_dock.png"))


def test_a_list_reads_its_values_a_block_at_a_time_until_it_is_sorted(qtbot):
    reads = []

    def doubled(rows):
        reads.append(len(rows))
        return rows * 2

    rows = np.arange(1_000, dtype=np.int64)[::-1].copy()
    model = RowsModel(Listing("Outliers", "Outliers", rows, (
        Column("Row", lambda rows: rows), Column("Doubled", doubled))), lambda row: f"row {row}")
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    _fit_columns(view)
    assert reads == [VALUES_BLOCK]  # sized by the first rows only
    assert model.data(model.index(700, 1)) == str(2 * rows[700])
    assert reads == [VALUES_BLOCK, VALUES_BLOCK]
    model.sort(1, Qt.SortOrder.AscendingOrder)
    assert reads[-1] == len(rows)
    assert [model.data(model.index(i, 1)) for i in (0, 1, 999)] == ["0", "2", "1998"]
    assert len(reads) == 3


def test_accepting_the_suggested_label_asks_the_window_to_fix_it(qtbot, dock):
    dataset, wrong = flipped()
    audited(qtbot, dock, dataset)
    view = dock.views[0]
    view.selectRow(0)
    row = int(view.model().rows([0])[0])
    assert dock.accept_action.isEnabled()
    with qtbot.waitSignal(dock.labels_fixed) as fixed:
        dock.accept_action.trigger()
    column, rows, values = fixed.args
    assert column == "label" and rows.tolist() == [row]
    assert values == [dock.audit.labels.suggested_names()[row]]
    # the session applies it; the list shows the new given label
    dock.session.set_values(column, rows, values)
    assert dock.session.dataset.table.column("label")[row].as_py() == values[0]
    given = view.model().index(0, 1).data()
    assert given == values[0]
    assert "Labels fixed" in dock.status.text()


def test_without_a_label_it_lists_outliers_and_duplicates(qtbot, dock):
    dataset, _ = flipped(n=120, flips=0)
    audited(qtbot, dock, dataset)
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        dock.label_choice.setCurrentIndex(dock.label_choice.count() - 1)
        dock.label_choice.activated.emit(dock.label_choice.count() - 1)
    assert dock.audit.labels is None
    assert [dock.tabs.tabText(i).split(" (")[0] for i in range(dock.tabs.count())] == [
        "Outliers", "Duplicates"]


def test_probabilities_come_from_the_classifiers_or_a_cross_validated_baseline(qtbot, dock):
    from litdesk.api import MulticlassPreds
    from litdesk.core.predict import Predictions

    dataset, wrong = flipped()
    given = np.array([CLASSES.index(v) for v in dataset.table.column("label").to_pylist()])
    memorised = np.full((len(given), 2), 0.05)
    memorised[np.arange(len(given)), given] = 0.95  # a model trained on these very labels
    audited(qtbot, dock, dataset)
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        dock.session.set_predictions(Predictions("memorised", dataset.name, {"p": memorised},
                                                 {"p": MulticlassPreds(vocab=CLASSES)}))
    assert dock.audit.labels.source == "predictions of memorised"
    assert len(dock.audit.label_issue_rows()) == 0  # it learnt the wrong labels too
    baseline = dock.source_choice.findData(False)
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        dock.source_choice.setCurrentIndex(baseline)
        dock.source_choice.activated.emit(baseline)
    assert "cross-validated" in dock.audit.labels.source
    assert np.isin(wrong, dock.audit.label_issue_rows()).mean() >= 0.8


def test_the_audit_runs_in_a_child_process_with_the_in_process_result(qtbot, dock,
                                                                       child_processes):
    from litdesk.core.jobs import run_job
    from litdesk.core.quality import audit_job

    dataset, _ = flipped()
    audited(qtbot, dock, dataset)
    assert len(child_processes) == 1 and child_processes[0].wait(10) == 0
    shown, here = dock.audit, run_job(audit_job(dataset, "label"))  # on this thread
    assert shown.to_table().equals(here.to_table())  # every row's verdicts and scores
    np.testing.assert_array_equal(shown.labels.margin, here.labels.margin)
    assert (shown.space, shown.labels.source, shown.summary()) == (
        here.space, here.labels.source, here.summary())
    with qtbot.waitSignal(dock.shown, timeout=10_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        qtbot.keyClick(dock, Qt.Key.Key_F5)  # audited again: from the cache, no child
    assert len(child_processes) == 1
    assert not list(dock.cache.path.parent.glob("audit-*"))  # its files are gone


def test_cancel_kills_the_audit_child_at_once(qtbot, dock, child_processes):
    dock.session.set_dataset(flipped()[0])
    qtbot.waitUntil(lambda: len(child_processes) == 1, timeout=30_000)
    child = child_processes[0]
    assert child.poll() is None  # still starting: its imports take a while
    qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=5_000)
    assert child.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # gone, not a zombie
    assert "cancelled" in dock.status.text() and dock.audit is None
    qtbot.waitUntil(lambda: not list(dock.cache.path.parent.glob("audit-*")), timeout=5_000)


def test_a_failure_in_the_child_is_one_line_in_the_dock(qtbot, dock, child_processes):
    table = pa.table({"x": np.arange(40.0), "label": ["a"] * 40})
    dataset = Dataset(table, {"x": Scalar(), "label": CategoryLabel(vocab=CLASSES)}, "one class")
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: "failed" in dock.status.text()):
        dock.session.set_dataset(dataset)
    assert len(child_processes) == 1 and child_processes[0].wait(10) == 1
    assert dock.status.text() == ("The audit failed: ValueError: the label column holds a "
                                  "single class; a classifier needs two or more")
    assert dock.tabs.count() == 0 and not dock.progress.isVisible()
