"""A large file shows its first rows while the rest loads; the whole then takes their place."""

from __future__ import annotations

import numpy as np
import pytest

from litdesk.core import loaders
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import JobFailed, run_job
from litdesk.core.session import PartialDataset
from litdesk.core.slice_store import DatasetIdentity, load_slices
from litdesk.core.workbench import Workbench
from tests.fakes import KeywordModel

ROWS = 2000


class QueuedRunner:
    """Keeps each submitted job until the test runs it, so the test picks the order."""

    def __init__(self) -> None:
        self.queue: list[tuple] = []

    def submit(self, job, title, on_result=None, on_error=None, interactive=False):
        self.queue.append((job, title, on_result, on_error))

    def titles(self) -> list[str]:
        return [title for _job, title, _result, _error in self.queue]

    def run(self, title_start: str) -> None:
        entry = next(item for item in self.queue if item[1].startswith(title_start))
        self.queue.remove(entry)
        job, title, on_result, on_error = entry
        try:
            result = run_job(job)
        except Exception as error:
            on_error(JobFailed(title, error))
            return
        on_result(result)


@pytest.fixture
def big_csv(tmp_path, monkeypatch):
    """A CSV counted as large, whose first 4 kB hold about a tenth of its rows."""
    monkeypatch.setattr(loaders, "PREVIEW_MIN_BYTES", 1)
    monkeypatch.setattr(loaders, "_PREVIEW_BYTES", 4096)
    path = tmp_path / "big.csv"
    path.write_text("text,label\n" + "".join(
        f"review {i} {'good' if i % 2 else 'bad'},{'positive' if i % 2 else 'negative'}\n"
        for i in range(ROWS)), encoding="utf-8")
    return path


@pytest.fixture
def queued():
    return QueuedRunner()


@pytest.fixture
def workbench(queued):
    return Workbench(queued)


def test_the_first_rows_show_then_the_whole_takes_their_place(workbench, queued, big_csv):
    workbench.open_objects(models=[KeywordModel()])
    workbench.open_paths([big_csv])
    assert queued.titles() == ["Read the first rows of big.csv", "Load big.csv"]
    queued.run("Read the first rows")
    shown = workbench.session.dataset
    assert isinstance(shown, PartialDataset) and 0 < len(shown) < ROWS // 5
    assert shown.name == "big" and shown.example(3)["text"] == "review 3 good"
    assert workbench.session.selection.primary == 0
    assert not any(title.startswith("Predict") for title in queued.titles())

    # What the user does meanwhile is kept: a selection and a slice on the first rows.
    workbench.session.select([3, 5], 5)
    workbench.session.add_slice("mine", [3, 5])
    assert not workbench.add_datapoints([NewDatapoint.now({"text": "new", "label": "positive"},
                                                          parent=3, origin="edited")])

    loaded = []
    workbench.dataset_loaded.connect(loaded.append)
    queued.run("Load big.csv")
    whole = workbench.session.dataset
    assert loaded == ["big"] and list(workbench.session.datasets) == ["big"]
    assert not isinstance(whole, PartialDataset) and len(whole) == ROWS
    assert list(workbench.session.selection.rows) == [3, 5]
    assert workbench.session.selection.primary == 5
    assert list(workbench.session.slices["mine"]) == [3, 5]
    saved, _messages = load_slices(DatasetIdentity.of(whole))
    assert list(saved["mine"]) == [3, 5]
    assert "Predict keywords" in queued.titles()


def test_first_rows_that_come_after_the_whole_are_ignored(workbench, queued, big_csv):
    workbench.open_paths([big_csv])
    queued.run("Load big.csv")
    queued.run("Read the first rows")
    assert list(workbench.session.datasets) == ["big"]
    assert len(workbench.session.dataset) == ROWS


def test_a_file_that_fails_to_load_takes_its_first_rows_away(workbench, queued, big_csv):
    with open(big_csv, "a", encoding="utf-8") as file:
        file.write('"a quote that never closes,positive\n')
    errors = []
    workbench.error_reported.connect(lambda title, message: errors.append(message))
    workbench.open_paths([big_csv])
    queued.run("Read the first rows")
    assert isinstance(workbench.session.dataset, PartialDataset)
    queued.run("Load big.csv")
    assert workbench.session.dataset is None and not workbench.session.datasets
    assert len(errors) == 1 and "big.csv" in errors[0]


def test_a_quoted_cell_running_past_the_cut_gives_no_first_rows(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('text,label\n"' + "a long\nquoted cell " * 50 + '",x\n', encoding="utf-8")
    assert run_job(loaders.iter_load_preview(path, max_bytes=100)) is None


def test_small_files_and_unchanged_copies_load_at_once(workbench, queued, big_csv, tmp_path,
                                                       monkeypatch):
    monkeypatch.setattr(loaders, "PREVIEW_MIN_BYTES", 1 << 30)
    assert not loaders.wants_preview(big_csv, workbench.cache)
    monkeypatch.setattr(loaders, "PREVIEW_MIN_BYTES", 1)
    assert loaders.wants_preview(big_csv, workbench.cache)
    run_job(loaders.iter_load_dataset(big_csv, workbench.cache))  # keeps a copy
    assert not loaders.wants_preview(big_csv, workbench.cache)
    parquet = tmp_path / "rows.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"x": np.arange(10)}), parquet)
    assert not loaders.wants_preview(parquet, workbench.cache)


def test_the_table_says_the_rest_is_loading(window, qtbot, big_csv):
    whole = loaders.load_dataset(big_csv)
    first = PartialDataset(whole.table.slice(0, 100), whole.spec(), whole.name, whole.path)
    status = window.table_dock.status
    name = window.session.set_dataset(first)
    qtbot.waitUntil(lambda: "of the first 100 rows (the rest is loading)" in status.text())
    window.session.replace_dataset(name, whole)
    qtbot.waitUntil(lambda: f"of {ROWS:,} rows shown" in status.text())
    assert window.table_dock.model.rowCount() == ROWS
