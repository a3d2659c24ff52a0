"""An unchanged data file reopens from litdesk's memory-mapped copy instead of being parsed."""

from __future__ import annotations

import os

import pytest

from litdesk.api import CategoryLabel, MulticlassPreds, Scalar, TextSegment
from litdesk.api.types import spec_from_json, spec_to_json
from litdesk.core import loaders
from litdesk.core.cache import COLUMNS_FOLDER, ResultCache
from litdesk.core.jobs import InlineRunner, run_job
from litdesk.core.loaders import iter_load_dataset, load_dataset
from litdesk.core.workbench import Workbench

CSV = "text,label,score\n" + "\n".join(
    f"review {i},{'positive' if i % 3 else 'negative'},{i / 10}" for i in range(50)) + "\n"


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def refuse_parsing(monkeypatch):
    """Make parsing a file fail, so that a load that succeeds came from the copy."""
    def parse(path, suffix):
        raise AssertionError(f"{path} was parsed again")

    monkeypatch.setattr(loaders, "_read_file", parse)


def test_the_spec_survives_json():
    spec = {"t": TextSegment(required=False), "c": CategoryLabel(vocab=("a", "b")),
            "s": Scalar(min_val=0.0, max_val=2.5),
            "p": MulticlassPreds(vocab=("x", "y"), parent="c", null_idx=0)}
    assert spec_from_json(spec_to_json(spec)) == spec
    with pytest.raises(ValueError):
        spec_from_json('{"x": {"type": "Popen", "args": "rm"}}')
    with pytest.raises(ValueError):
        spec_from_json('{"x": {"type": "Scalar", "command": "rm"}}')


def test_an_unchanged_file_reopens_without_parsing(data_file, monkeypatch):
    cache = ResultCache()
    first = run_job(iter_load_dataset(data_file, cache))
    refuse_parsing(monkeypatch)
    again = run_job(iter_load_dataset(data_file, cache))
    assert again.table.equals(first.table)
    assert again.spec() == first.spec() and again.name == first.name == "reviews"
    assert again.path == data_file
    assert isinstance(again.spec()["label"], CategoryLabel)


def test_a_changed_file_is_parsed_again(data_file):
    cache = ResultCache()
    run_job(iter_load_dataset(data_file, cache))
    data_file.write_text(CSV.replace("review 1,", "edited 1,"), encoding="utf-8")
    status = data_file.stat()
    os.utime(data_file, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    again = run_job(iter_load_dataset(data_file, cache))
    assert again.table.column("text")[1].as_py() == "edited 1"


def test_a_damaged_copy_is_set_aside_and_the_file_parsed(data_file):
    cache = ResultCache()
    told = []
    cache.message.connect(told.append)
    run_job(iter_load_dataset(data_file, cache))
    (copy,) = (cache.folder / COLUMNS_FOLDER).glob("*.arrow")
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    again = run_job(iter_load_dataset(data_file, cache))
    assert len(again) == 50 and again.table.column("text")[49].as_py() == "review 49"
    assert told and "damaged" in told[0]


def test_without_a_cache_nothing_is_kept(data_file):
    load_dataset(data_file)
    cache = ResultCache()
    assert not (cache.folder / COLUMNS_FOLDER).exists() or \
        not list((cache.folder / COLUMNS_FOLDER).glob("*.arrow"))


def test_the_workbench_reopens_from_the_copy(data_file, monkeypatch):
    Workbench(InlineRunner()).open_paths([data_file])
    refuse_parsing(monkeypatch)
    reopened = Workbench(InlineRunner())
    reopened.open_paths([data_file])
    assert reopened.errors == [] and len(reopened.session.dataset) == 50
