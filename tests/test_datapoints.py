"""Datapoints the user makes: appending with provenance, the session's rows_added, the journal
that keeps them across crashes, and saving a dataset with them."""

from __future__ import annotations

import base64
import json

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import CategoryLabel, Dataset, ImageBytes, Scalar, TextSegment
from litdesk.core.datapoints import (CREATED, MAX_CHUNKS, ORIGIN, PARENT, NewDatapoint,
                                     children_of, generated_rows, new_predictions_job,
                                     with_datapoints)
from litdesk.core.jobs import run_job
from litdesk.core.journal import Journal, journal_for
from litdesk.core.loaders import load_dataset
from litdesk.core.predict import predict_job
from litdesk.core.save import save_dataset_job
from litdesk.core.session import Session
from tests.fakes import KeywordModel

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def reviews(path=None) -> Dataset:
    table = pa.table({"text": ["good film", "bad plot", "great fun"],
                      "label": ["positive", "negative", "positive"], "stars": [5, 1, 4]})
    spec = {"text": TextSegment(), "label": CategoryLabel(vocab=("negative", "positive")),
            "stars": Scalar()}
    return Dataset(table, spec, "reviews", path)


def edit(parent=0, text="terrible film", origin="edited") -> NewDatapoint:
    return NewDatapoint.now({"text": text, "label": "negative", "stars": 1}, parent, origin)


def test_appended_rows_carry_parent_origin_and_time_and_loaded_rows_none():
    grown = with_datapoints(reviews(), [edit(0), edit(2, "great plot", "word replacer")])
    assert len(grown) == 5 and grown.spec() == reviews().spec()
    assert grown.table.column("text").to_pylist()[3:] == ["terrible film", "great plot"]
    assert grown.table.column(PARENT).to_pylist() == [None, None, None, 0, 2]
    assert grown.table.column(ORIGIN).to_pylist() == [None] * 3 + ["edited", "word replacer"]
    assert grown.table.column(CREATED).to_pylist()[3].startswith("20")
    assert generated_rows(grown).tolist() == [3, 4]
    assert children_of(grown, [2]).tolist() == [4] and children_of(reviews(), [0]).size == 0


def test_appending_leaves_the_rows_there_in_place_and_merges_chunks_now_and_then():
    dataset = reviews()
    grown = with_datapoints(dataset, [edit(0)])
    kept = grown.table.column("text").chunk(0).buffers()[-1]
    assert kept.address == dataset.table.column("text").chunk(0).buffers()[-1].address
    for _ in range(MAX_CHUNKS + 1):
        grown = with_datapoints(grown, [edit(0)])
    assert grown.table.column("text").num_chunks <= MAX_CHUNKS
    assert len(grown) == len(dataset) + MAX_CHUNKS + 2


def test_a_value_that_does_not_fit_names_its_field():
    point = NewDatapoint.now({"text": "x", "label": "negative", "stars": "many"}, 0, "edited")
    with pytest.raises(ValueError, match="'many' is not a valid value for stars"):
        with_datapoints(reviews(), [point])
    with pytest.raises(ValueError, match="no column 'colour'"):
        with_datapoints(reviews(), [NewDatapoint.now({"colour": "red"}, 0, "edited")])
    with pytest.raises(ValueError, match="parent row 9"):
        with_datapoints(reviews(), [edit(9)])


def test_the_session_extends_the_predictions_it_is_given_and_drops_the_others():
    session, first, second = Session(), KeywordModel("first"), KeywordModel("second")
    session.set_dataset(reviews())
    for model in (first, second):
        session.add_model(model)
        session.set_predictions(run_job(predict_job(model, session.dataset)))
    points = [edit(1)]
    new = run_job(new_predictions_job({"first": first}, session.dataset, points))
    events = []
    session.rows_added.connect(lambda rows: events.append(("rows", rows.tolist())))
    session.predictions_changed.connect(lambda name: events.append(("predictions", name)))
    assert session.add_datapoints(points, new).tolist() == [3]
    assert events == [("rows", [3]), ("predictions", "first")]
    assert len(session.dataset) == 4 and set(session.predictions) == {"first"}
    whole = run_job(predict_job(first, session.dataset))
    np.testing.assert_allclose(session.predictions["first"].fields["probas"],
                               whole.fields["probas"])


def test_the_journal_gives_back_what_was_made_even_after_a_torn_write(tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("text,label\ngood film,positive\n", encoding="utf-8")
    dataset = load_dataset(source)
    journal = Journal(dataset)
    image = NewDatapoint.now({"text": "with a picture", "label": "negative", "image": PNG}, 0,
                             "edited")
    journal.append([edit(0)])
    journal.append([image])
    with open(journal.path, "ab") as file:  # a kill in the middle of the next write
        file.write(b'{"values": {"text": "half')
    points, messages = Journal(dataset).read()
    assert [p.values["text"] for p in points] == ["terrible film", "with a picture"]
    assert points[1].values["image"] == PNG and points[0].parent == 0
    assert points[0] == journal.read()[0][0]
    assert len(messages) == 1 and "line 4" in messages[0]
    journal.append([edit(0, "after the crash")])  # goes on a fresh line
    assert [p.values["text"] for p in Journal(dataset).read()[0]][-1] == "after the crash"


def test_a_journal_of_an_older_file_is_set_aside_not_lost(tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("text,label\ngood film,positive\n", encoding="utf-8")
    journal = Journal(load_dataset(source))
    journal.append([edit(0)])
    source.write_text("text,label\ngood film,positive\nbad,negative\n", encoding="utf-8")
    points, (message,) = Journal(load_dataset(source)).read()
    assert points == [] and "changed since datapoints were made" in message
    (kept,) = [p for p in journal.path.parent.iterdir() if p != journal.path]
    assert "terrible film" in kept.read_text(encoding="utf-8")
    assert journal_for(reviews()) is None  # no file, no journal


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_saving_writes_every_row_with_provenance_and_reads_back(tmp_path, suffix):
    grown = with_datapoints(reviews(), [edit(2)])
    target = tmp_path / f"out{suffix}"
    assert run_job(save_dataset_job(grown, target)) == target
    table = load_dataset(target).table
    assert table.column("text").to_pylist() == ["good film", "bad plot", "great fun",
                                                "terrible film"]
    assert table.column(ORIGIN).to_pylist()[3] == "edited"
    assert [str(v) for v in table.column(PARENT).to_pylist()][3] in ("2", "2.0")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_saving_images_as_json_lines_writes_base64(tmp_path):
    table = pa.table({"image": pa.array([PNG], pa.binary()), "label": ["a"]})
    dataset = Dataset(table, {"image": ImageBytes(), "label": CategoryLabel()}, "pictures")
    run_job(save_dataset_job(dataset, tmp_path / "p.jsonl"))
    row = json.loads((tmp_path / "p.jsonl").read_text(encoding="utf-8"))
    assert base64.b64decode(row["image"]) == PNG and row[PARENT] is None


def test_an_unknown_format_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="cannot save as .xlsx"):
        run_job(save_dataset_job(reviews(), tmp_path / "out.xlsx"))
    assert list(tmp_path.iterdir()) == []
