"""The result cache never breaks the app: damage, a full disk, and its size cap."""

from __future__ import annotations

import sqlite3

import numpy as np
import pyarrow as pa
import pytest

from litdesk.core import cache as cache_module
from litdesk.core import paths
from litdesk.core.cache import CACHE_FILE, DAMAGED_FOLDER, ResultCache, result_key

PAGE = 4096


def results(count: int, width: int = 64, seed: int = 0) -> list[tuple[bytes, dict]]:
    """``count`` distinct keys, each with a vector of ``width`` floats."""
    rng = np.random.default_rng(seed)
    return [(result_key("test", "model", {"row": seed * 1_000_000 + i}),
             {"vector": rng.random(width, dtype=np.float32)}) for i in range(count)]


def listening(cache: ResultCache) -> list[str]:
    """The messages the cache tells, as they come."""
    told: list[str] = []
    cache.message.connect(told.append)
    return told


def filled_cache_file(count: int = 2000) -> tuple[list[tuple[bytes, dict]], bytes]:
    """A closed cache in the home's cache folder holding ``count`` results; its bytes."""
    cache = ResultCache()
    items = results(count)
    cache.put_many(items)
    cache.close()  # checkpoints the write-ahead log into the file
    return items, (paths.cache_dir() / CACHE_FILE).read_bytes()


def truncate(data: bytes) -> bytes:
    return data[:len(data) // 2]


def garbage(data: bytes) -> bytes:
    return np.random.default_rng(1).bytes(len(data))


def bad_page(data: bytes) -> bytes:
    """One page in the middle of the file overwritten with noise, the rest intact."""
    middle = (len(data) // PAGE // 2) * PAGE
    return data[:middle] + np.random.default_rng(2).bytes(PAGE) + data[middle + PAGE:]


@pytest.mark.parametrize("damage", [truncate, garbage, bad_page])
def test_a_damaged_cache_is_set_aside_and_a_new_one_started(damage):
    items, data = filled_cache_file()
    damaged_bytes = damage(data)
    (paths.cache_dir() / CACHE_FILE).write_bytes(damaged_bytes)

    cache = ResultCache()
    told = listening(cache)
    keys = [key for key, _ in items]
    found = cache.get_many(keys)  # reads what it can; raises nothing
    assert len(told) == 1 and "damaged" in told[0] and DAMAGED_FOLDER in told[0]
    for key, value in found.items():  # read before the damage showed: still right
        np.testing.assert_array_equal(value["vector"], dict(items)[key]["vector"])
    aside = paths.cache_dir() / DAMAGED_FOLDER / CACHE_FILE
    assert aside.read_bytes()[100:] == damaged_bytes[100:]  # kept (past SQLite's header)

    cache.put_many(items[:10])  # the new cache works
    assert set(cache.get_many(keys)) >= set(keys[:10])
    assert len(told) == 1


def test_garbage_in_place_of_the_cache_stops_no_write():
    (paths.cache_dir() / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    cache = ResultCache()
    told = listening(cache)
    items = results(5)
    cache.put_many(items)  # the first call finds the damage; its results are kept
    assert set(cache.get_many([key for key, _ in items])) == {key for key, _ in items}
    assert len(told) == 1 and "damaged" in told[0]


def test_clearing_a_damaged_cache_starts_an_empty_one():
    _items, data = filled_cache_file()
    (paths.cache_dir() / CACHE_FILE).write_bytes(truncate(data))
    cache = ResultCache()
    cache.clear()
    assert cache.size_bytes() == 0
    items = results(3, seed=5)
    cache.put_many(items)
    assert len(cache.get_many([key for key, _ in items])) == 3


@pytest.fixture
def full_disk(monkeypatch):
    """Every cache's database stops growing past its size when it is opened (SQLITE_FULL),
    as on a disk with no space left."""
    connect = ResultCache._connect

    def connect_full(self):
        connection = connect(self)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        return connection

    monkeypatch.setattr(ResultCache, "_connect", connect_full)


def test_on_a_full_disk_results_stay_in_memory_and_the_user_is_told_once(full_disk):
    cache = ResultCache()
    told = listening(cache)
    first, second = results(50), results(50, seed=1)
    cache.put_many(first)
    cache.put_many(second)
    assert len(told) == 1 and "database or disk is full" in told[0] and "memory" in told[0]
    found = cache.get_many([key for key, _ in first + second])
    assert len(found) == 100  # nothing lost
    np.testing.assert_array_equal(found[first[7][0]]["vector"], first[7][1]["vector"])


def test_without_a_listener_the_message_goes_to_stderr(full_disk, capsys):
    ResultCache().put_many(results(50))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("litdesk: ") and "full" in lines[0]


def test_past_its_cap_the_least_recently_used_results_go(monkeypatch):
    clock = [1_000_000]
    monkeypatch.setattr(cache_module, "_now", lambda: clock[0])
    cache = ResultCache(max_bytes=800_000)
    read_again, unread, new = results(800, seed=1), results(800, seed=2), results(800, seed=3)
    cache.put_many(read_again)
    clock[0] += 10
    cache.put_many(unread)
    clock[0] += 7200  # later, the first results are read again
    assert len(cache.get_many([key for key, _ in read_again])) == 800
    clock[0] += 10
    cache.put_many(new)  # over the cap now: the least recently used go
    cache.close()  # the write-ahead log into the file
    assert cache.size_bytes() <= 800_000
    assert len(cache.get_many([key for key, _ in read_again + new])) == 1600
    assert len(cache.get_many([key for key, _ in unread])) < 800


def test_lowering_the_cap_shrinks_the_file():
    cache = ResultCache()
    cache.put_many(results(3000))
    assert cache.size_bytes() > 800_000
    cache.max_bytes = 300_000
    cache.trim()
    cache.close()
    assert cache.size_bytes() <= 300_000
    assert cache.get_many([key for key, _ in results(3000)[-100:]])  # the newest stay


def test_a_cache_made_before_the_cap_is_read_and_capped(monkeypatch):
    items = results(3000)
    connection = sqlite3.connect(paths.cache_dir() / CACHE_FILE)
    with connection:  # the layout litdesk used before
        connection.execute("CREATE TABLE results (key BLOB PRIMARY KEY, value BLOB)")
        connection.executemany("INSERT INTO results VALUES (?, ?)",
                               [(key, cache_module.encode_outputs(value)) for key, value in items])
    connection.close()
    cache = ResultCache(max_bytes=400_000)
    assert len(cache.get_many([key for key, _ in items])) == 3000
    cache.put_many(results(10, seed=9))
    cache.close()
    assert cache.size_bytes() <= 400_000


# -- the batch commands and the window go on -----------------------------------------------


def predict_command(tmp_path, capsys) -> tuple[int, list[str], pa.Table]:
    """``litdesk predict`` of the demo's linear model on its dataset: exit code, stderr lines,
    the table written."""
    import pyarrow.parquet as pq

    from litdesk.cli import main

    out = tmp_path / "predictions.parquet"
    code = main(["predict", "--model", str(paths.DEMO_MODELS[1]), "--data",
                 str(paths.DEMO_DATASET), "--out", str(out)])
    return code, capsys.readouterr().err.splitlines(), pq.read_table(out)


@pytest.mark.parametrize("damage", [truncate, garbage, bad_page])
def test_litdesk_predict_goes_on_with_a_damaged_cache(tmp_path, capsys, damage):
    code, err, expected = predict_command(tmp_path, capsys)  # fills the cache
    assert code == 0 and not err
    cache_file = paths.cache_dir() / CACHE_FILE
    connection = sqlite3.connect(cache_file)  # the write-ahead log into the file
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    cache_file.write_bytes(damage(cache_file.read_bytes()))
    code, err, table = predict_command(tmp_path, capsys)
    assert code == 0
    assert len(err) == 1 and "damaged" in err[0]
    assert table.equals(expected)
    code, err, _table = predict_command(tmp_path, capsys)  # the new cache serves the next run
    assert code == 0 and not err


def test_litdesk_predict_goes_on_with_a_full_disk(tmp_path, capsys, full_disk):
    code, err, table = predict_command(tmp_path, capsys)
    assert code == 0 and len(table) > 0
    assert len(err) == 1 and "database or disk is full" in err[0]


def window_predictions(qtbot, tmp_path, models):
    """A new window's predictions of ``models`` on a small CSV, and the window."""
    from litdesk.ui.main_window import MainWindow
    from tests.helpers import write_csv

    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    rows = [(f"review {i}: {'good' if i % 3 else 'awful'}", "positive") for i in range(300)]
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv", rows)])
    for model in models:
        with qtbot.waitSignal(window.session.predictions_changed, timeout=10_000):
            window.workbench.open_objects([model])
    return window


def expected_probas(window, model):
    return np.stack([output["probas"] for output in model.predict(
        [{"text": text} for text in window.session.dataset.table.column("text").to_pylist()])])


@pytest.mark.parametrize("damage", [truncate, garbage, bad_page])
def test_the_window_starts_and_predicts_on_a_damaged_cache(qtbot, tmp_path, damage):
    from tests.fakes import KeywordModel

    _items, data = filled_cache_file()
    (paths.cache_dir() / CACHE_FILE).write_bytes(damage(data))
    model = KeywordModel()
    window = window_predictions(qtbot, tmp_path, [model])
    np.testing.assert_allclose(window.session.predictions[model.name].fields["probas"],
                               expected_probas(window, model))
    # a damage found late (a bad page) may first show on the next read
    window.cache.get_many([key for key, _ in _items])
    qtbot.waitUntil(lambda: any("damaged" in error for error in window.workbench.errors))
    told = [error for error in window.workbench.errors if error.startswith("Result cache")]
    assert len(told) == 1 and "set aside" in told[0]
    assert "damaged" in window.statusBar().currentMessage()


def jobs_menu(window):
    menu = next(action.menu() for action in window.menuBar().actions()
                if action.text() == "&Jobs")
    menu.aboutToShow.emit()
    return {action.text(): action for action in menu.actions()}


def test_on_a_full_disk_the_window_predicts_and_tells_once(qtbot, tmp_path, full_disk):
    from tests.fakes import KeywordModel

    first, second = KeywordModel("first"), KeywordModel("second")
    window = window_predictions(qtbot, tmp_path, [first, second])
    for model in (first, second):
        np.testing.assert_allclose(window.session.predictions[model.name].fields["probas"],
                                   expected_probas(window, model))
    qtbot.waitUntil(lambda: any(e.startswith("Result cache") for e in window.workbench.errors))
    told = [error for error in window.workbench.errors if error.startswith("Result cache")]
    assert len(told) == 1 and "database or disk is full" in told[0]
    actions = jobs_menu(window)
    clear = next(action for text, action in actions.items() if text.startswith("Clear Cache"))
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):  # it clears in the background
        clear.trigger()  # clearing is how the user makes room again
    assert "Cache cleared" in window.statusBar().currentMessage()


def test_clear_cache_in_the_menu_works_on_a_damaged_cache(qtbot, tmp_path):
    from litdesk.ui.main_window import MainWindow

    _items, data = filled_cache_file()
    (paths.cache_dir() / CACHE_FILE).write_bytes(bad_page(data))
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    actions = jobs_menu(window)
    clear = next(action for text, action in actions.items() if text.startswith("Clear Cache"))
    assert "MB of 4 GB" in clear.text()
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        clear.trigger()
    assert "Cache cleared" in window.statusBar().currentMessage()
    assert window.cache.size_bytes() == 0


def test_the_cache_limit_is_chosen_in_the_menu_and_kept_for_every_litdesk(qtbot):
    from litdesk.ui.main_window import MainWindow

    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    limits = next(action.menu() for text, action in jobs_menu(window).items()
                  if text == "Cache Size &Limit")
    assert [a.text() for a in limits.actions() if a.isChecked()] == ["4 GB"]
    one = next(action for action in limits.actions() if action.text() == "1 GB")
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):  # the trim runs in the background
        one.trigger()
    assert window.cache.max_bytes == 2 ** 30
    assert "MB of 1 GB" in next(t for t in jobs_menu(window) if t.startswith("Clear Cache"))
    assert ResultCache().max_bytes == 2 ** 30  # the batch commands' too


# -- whole datasets as columns ------------------------------------------------------------------


def reviews(count: int):
    """A dataset of ``count`` distinct reviews."""
    from litdesk.api import CategoryLabel, Dataset, TextSegment

    texts = [f"review {i}: {('good fun', 'awful plot', 'fine')[i % 3]} {'!' * (i % 7)}"
             for i in range(count)]
    table = pa.table({"text": texts, "label": ["positive", "negative"] * (count // 2)})
    return Dataset(table, {"text": TextSegment(),
                           "label": CategoryLabel(vocab=("negative", "positive"))}, "reviews")


def database_rows() -> int:
    connection = sqlite3.connect(paths.cache_dir() / CACHE_FILE)
    try:
        return connection.execute("SELECT count(*) FROM results").fetchone()[0]
    finally:
        connection.close()


class CountingCache(ResultCache):
    """Counts the lookups."""

    lookups = 0

    def get_many(self, keys):
        self.lookups += len(keys)
        return super().get_many(keys)

    def get_columns(self, key):
        self.lookups += 1
        return super().get_columns(key)


def test_a_whole_dataset_is_found_again_in_one_memory_mapped_lookup():
    from litdesk.core.jobs import run_job
    from litdesk.core.predict import predict_job
    from tests.fakes import KeywordModel

    dataset, model = reviews(30_000), KeywordModel()
    first = run_job(predict_job(model, dataset, cache=ResultCache(), batch_size=512))
    assert database_rows() == 0  # neither a row per example nor the parts of the run remain
    files = list((paths.cache_dir() / cache_module.COLUMNS_FOLDER).glob("*.arrow"))
    assert len(files) == 1

    model.calls, reopened = 0, CountingCache()  # a new session
    again = run_job(predict_job(model, dataset, cache=reopened))
    assert model.calls == 0 and reopened.lookups == 1
    for name in ("probas", "emb"):
        np.testing.assert_array_equal(again.fields[name], first.fields[name])
        assert not again.fields[name].flags.writeable  # a view of the mapped file


def test_changed_content_is_predicted_again_and_rows_made_here_one_by_one():
    from litdesk.api import Dataset
    from litdesk.core.datapoints import NewDatapoint, with_datapoints
    from litdesk.core.jobs import run_job
    from litdesk.core.predict import predict_job
    from tests.fakes import KeywordModel

    dataset, model, cache = reviews(300), KeywordModel(), ResultCache()
    run_job(predict_job(model, dataset, cache=cache))
    texts = dataset.table.column("text").to_pylist()
    texts[150] = "a changed review"
    changed = Dataset(dataset.table.set_column(0, "text", pa.array(texts)), dataset.spec(),
                      "reviews")
    model.calls = 0
    run_job(predict_job(model, changed, cache=cache, batch_size=1000))
    assert model.calls == 1  # every row again: the columns the model reads changed

    grown = with_datapoints(dataset, [NewDatapoint.now({"text": "great fun", "label": None},
                                                       3, "edited")])
    grown = Dataset(grown.table.combine_chunks(), grown.spec(), grown.name)  # chunks differ
    model.calls, predicted, entries = 0, [], database_rows()
    model.predict = lambda inputs, predict=model.predict: predicted.extend(inputs) or \
        predict(inputs)
    result = run_job(predict_job(model, grown, cache=cache))
    assert [example["text"] for example in predicted] == ["great fun"]  # the loaded rows: cached
    expected = KeywordModel().predict([{"text": text} for text in
                                       grown.table.column("text").to_pylist()])
    np.testing.assert_allclose(result.fields["probas"], [e["probas"] for e in expected])
    assert database_rows() == entries + 1  # the datapoint made here, on its own


def test_a_cancelled_whole_dataset_run_resumes_from_its_last_part():
    from litdesk.core.jobs import run_job
    from litdesk.core.predict import predict_job
    from tests.fakes import KeywordModel

    dataset, model, cache = reviews(1000), KeywordModel(), ResultCache()
    job = predict_job(model, dataset, cache=cache, batch_size=100, chunk_rows=400)
    for _ in range(1 + 6):  # the start, then six batches: one part of 400 rows and 200 more
        next(job)
    job.close()  # what cancelling does: the 200 rows after the part are kept too
    assert model.calls == 6
    finished = run_job(predict_job(model, dataset, cache=cache, batch_size=100, chunk_rows=400))
    assert model.calls == 6 + 4  # the last 400 rows
    expected = KeywordModel().predict(dataset.examples(range(len(dataset))))
    np.testing.assert_allclose(finished.fields["probas"], [e["probas"] for e in expected])
    assert database_rows() == 1  # the whole (small: in the database); its parts went


def big_columns(rows: int = 40_000, seed: int = 0) -> dict[str, np.ndarray]:
    """About 1.3 MB of predictions: large enough for a file of their own."""
    rng = np.random.default_rng(seed)
    return {"probas": rng.random((rows, 2), dtype=np.float32),
            "emb": rng.random((rows, 6), dtype=np.float32)}


@pytest.mark.parametrize("damage", [truncate, garbage, bad_page])
def test_a_damaged_column_file_is_set_aside_and_computed_again(damage):
    cache = ResultCache()
    key = result_key("test", "model", {"whole": 1})
    cache.put_columns(key, big_columns())
    path = next((paths.cache_dir() / cache_module.COLUMNS_FOLDER).glob("*.arrow"))
    if damage is bad_page:  # the footer that says where everything is
        path.write_bytes(path.read_bytes()[:-PAGE] + np.random.default_rng(3).bytes(PAGE))
    else:
        path.write_bytes(damage(path.read_bytes()))
    reopened = ResultCache()
    told = listening(reopened)
    assert reopened.get_columns(key) is None
    assert len(told) == 1 and "damaged" in told[0]
    assert (paths.cache_dir() / DAMAGED_FOLDER / path.name).exists()
    reopened.put_columns(key, big_columns())
    np.testing.assert_array_equal(reopened.get_columns(key)["emb"], big_columns()["emb"])


def test_column_files_count_against_the_cap_and_the_least_recently_used_go():
    import os

    cache = ResultCache(max_bytes=3_500_000)
    folder = paths.cache_dir() / cache_module.COLUMNS_FOLDER
    keys = [result_key("test", "model", {"whole": i}) for i in range(3)]
    for age, key in zip((300, 200), keys):
        cache.put_columns(key, big_columns(seed=age))
        path = max(folder.glob("*.arrow"), key=lambda p: p.stat().st_mtime)
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age))  # used long ago
    cache.put_many(results(100))  # a few rows in the database, newer than both files
    cache.put_columns(keys[2], big_columns(seed=2))  # past the cap: the oldest file goes
    assert cache.get_columns(keys[0]) is None
    assert cache.get_columns(keys[1]) is not None and cache.get_columns(keys[2]) is not None
    assert len(cache.get_many([key for key, _ in results(100)])) == 100
    cache.close()
    assert cache.size_bytes() <= 3_500_000


def test_on_a_full_disk_whole_columns_stay_in_memory(monkeypatch):
    import errno

    def no_space(path, table):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_write_arrow_file", no_space)
    cache = ResultCache()
    told = listening(cache)
    keys = [result_key("test", "model", {"whole": i}) for i in range(2)]
    for key in keys:
        cache.put_columns(key, big_columns())
    assert len(told) == 1 and "No space left on device" in told[0]
    np.testing.assert_array_equal(cache.get_columns(keys[1])["probas"],
                                  big_columns()["probas"])
