"""Partial dependence: the sweep against a hand computation, the dock, cancelling."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import CategoryLabel, Dataset
from litdesk.core.jobs import Progress, run_job
from litdesk.core.partial_dependence import (feature_grid, ice_rows, partial_dependence_job,
                                             tabular_features)
from litdesk.core.session import Session
from litdesk.ui.docks.partial_dependence import PartialDependenceDock
from litdesk.ui.jobs import JobRunner
from tests.fakes import KeywordModel, LogisticTabular, logistic, tabular_dataset


def test_features_are_the_numeric_and_categorical_inputs_but_not_the_gold_label():
    assert tabular_features(LogisticTabular(), tabular_dataset()) == {
        "a": "a", "b": "b", "colour": "colour"}
    text_table = pa.table({"text": ["good"], "label": ["positive"]})
    text = Dataset(text_table, {"text": KeywordModel().input_spec()["text"],
                                "label": CategoryLabel()})
    assert tabular_features(KeywordModel(), text) == {}


def test_grids_follow_the_column_type():
    dataset = tabular_dataset()
    a = dataset.table.column("a").to_numpy()
    grid, categorical = feature_grid(dataset, "a", grid_points=5)
    assert not categorical
    np.testing.assert_allclose(grid, np.quantile(a, [0, 0.25, 0.5, 0.75, 1]))
    grid, _ = feature_grid(dataset, "b", grid_points=50)
    assert grid.dtype == np.int64 and grid.tolist() == sorted(set(dataset.table["b"].to_pylist()))
    grid, categorical = feature_grid(dataset, "colour")
    assert categorical and grid.tolist() == ["red", "blue"]


def test_partial_dependence_equals_the_direct_computation():
    dataset = tabular_dataset()
    rows = np.array([0, 3, 4, 10, 29])
    result = run_job(partial_dependence_job(LogisticTabular(), dataset, "a", rows, grid_points=7))
    b = dataset.table.column("b").to_numpy()[rows]
    colour = np.asarray(dataset.table.column("colour").to_pylist())[rows]
    expected = logistic(result.grid[None, :], b[:, None], np.repeat(colour[:, None], 7, axis=1))
    assert result.curves.shape == (5, 7)
    np.testing.assert_allclose(result.curves, expected, rtol=1e-12)
    np.testing.assert_allclose(result.mean, expected.mean(axis=0), rtol=1e-12)
    assert result.rows.tolist() == rows.tolist() and result.score.class_name == "yes"


def test_a_categorical_feature_sweeps_its_values():
    dataset = tabular_dataset()
    result = run_job(partial_dependence_job(LogisticTabular(), dataset, "colour", [1, 2]))
    a, b = (dataset.table.column(c).to_numpy()[[1, 2]] for c in ("a", "b"))
    assert result.categorical
    np.testing.assert_allclose(result.curves[:, 0], logistic(a, b, ["red", "red"]))
    np.testing.assert_allclose(result.curves[:, 1], logistic(a, b, ["blue", "blue"]))


def test_a_feature_the_model_does_not_read_is_refused():
    with pytest.raises(ValueError, match="does not read label"):
        run_job(partial_dependence_job(LogisticTabular(), tabular_dataset(), "label", [0]))


def test_ice_rows_sample_the_dataset_or_take_the_selection():
    sample = ice_rows(1000, [], limit=50)
    assert sample.size == 50 and sample.tolist() == ice_rows(1000, [], limit=50).tolist()
    outside = int(np.setdiff1d(np.arange(1000), sample)[0])
    with_primary = ice_rows(1000, [outside], primary=outside, limit=50)
    assert with_primary.tolist() == sorted([*sample.tolist(), outside])  # one row: no selection
    assert ice_rows(1000, [4, 9, 700]).tolist() == [4, 9, 700]
    assert ice_rows(1000, [4, 9], primary=999).tolist() == [4, 9, 999]


def test_closing_the_job_midway_stops_predicting():
    model = LogisticTabular()
    job = partial_dependence_job(model, tabular_dataset(), "a", np.arange(20), grid_points=10)
    first = next(job)
    assert first == Progress(0, 200, first.message)
    next(job), next(job)
    job.close()  # what the worker does on cancel, at a yield
    assert model.calls == 2  # of 50 batches


# -- the dock ---------------------------------------------------------------------------------


@pytest.fixture
def dock(qtbot):
    session = Session()
    runner = JobRunner()
    widget = PartialDependenceDock(session, runner)
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    yield widget
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30_000)


def test_dock_plots_each_models_mean_and_the_primary_rows_curve(qtbot, dock):
    session = dock.session
    session.set_dataset(tabular_dataset())
    session.select([2, 5, 8], primary=5)
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        session.add_model(LogisticTabular())
    assert [dock.feature_choice.itemText(i) for i in range(dock.feature_choice.count())] == [
        "a", "b", "colour"]
    result = dock.results["logistic"]
    assert result.rows.tolist() == [2, 5, 8]
    mean_items = [item for item in dock.plot.listDataItems() if item.name()]
    assert len(mean_items) == 1
    np.testing.assert_allclose(mean_items[0].getData()[1], result.mean)
    _x, primary_y = dock.primary_curves["logistic"].getData()
    np.testing.assert_allclose(primary_y, result.curves[1])

    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):  # a primary outside the rows
        session.select([2, 5, 8, 20], primary=20)
    np.testing.assert_allclose(dock.primary_curve("logistic"), dock.results["logistic"].curves[3])


def test_dock_recomputes_for_a_new_primary_row_outside_the_sample(qtbot, dock):
    session = dock.session
    session.set_dataset(tabular_dataset(500))
    with qtbot.waitSignal(dock.runner.idle, timeout=20_000):
        session.add_model(LogisticTabular())
    sampled = dock.results["logistic"].rows
    outside = int(np.setdiff1d(np.arange(500), sampled)[0])
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        session.select([outside])
    assert np.array_equal(dock.results["logistic"].rows, sampled)  # the sample is kept
    a, b, colour = (dataset_column(session, c)[outside] for c in ("a", "b", "colour"))
    grid = dock.results["logistic"].grid
    np.testing.assert_allclose(dock.primary_curve("logistic"),
                               logistic(grid, b, [colour] * len(grid)))


def dataset_column(session, name):
    return np.asarray(session.dataset.table.column(name).to_pylist(), dtype=object)


def test_choosing_another_feature_cancels_the_running_sweep(qtbot, dock):
    session = dock.session
    session.set_dataset(tabular_dataset(60))
    slow = LogisticTabular("slow", seconds_per_batch=0.02)
    with qtbot.waitSignal(dock.runner.progress, timeout=10_000):
        session.add_model(slow)
    assert dock.feature_choice.currentText() == "a"
    with qtbot.waitSignal(dock.runner.idle, timeout=30_000):
        dock.feature_choice.setCurrentIndex(dock.feature_choice.findText("colour"))
    assert dock.results["slow"].feature == "colour"
    full_sweep_of_a = 60 * 20 / 4  # rows × grid points / batch size
    assert slow.calls < full_sweep_of_a  # the sweep of "a" stopped early


def test_text_only_models_get_a_note(qtbot, dock):
    session = dock.session
    table = pa.table({"text": ["good", "bad"], "label": ["positive", "negative"]})
    session.set_dataset(Dataset(table, {"text": KeywordModel().input_spec()["text"],
                                        "label": CategoryLabel()}, "texts"))
    session.add_model(KeywordModel())
    assert dock.feature_choice.count() == 0
    assert dock.note.isVisible() and "text-only" in dock.note.text()
