"""The inference engine: the content-addressed cache, resumable runs, out-of-memory fallback."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from litdesk.core import predict as predict_module
from litdesk.core.cache import ResultCache, decode_outputs, encode_outputs, result_key
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from tests.fakes import KeywordModel
from tests.helpers import TEXTS, make_dataset


def test_encoding_round_trips_arrays_and_strings():
    outputs = {"probas": np.array([0.25, 0.75], np.float32), "ids": np.arange(6).reshape(2, 3),
               "tokens": ["a", "b"], "text": "hello", "score": 0.5}
    decoded = decode_outputs(encode_outputs(outputs))
    assert decoded["score"].shape == () and float(decoded["score"]) == 0.5  # a number stays one
    assert decoded["tokens"] == ["a", "b"] and decoded["text"] == "hello"
    np.testing.assert_array_equal(decoded["ids"], outputs["ids"])
    assert decoded["probas"].dtype == np.float32


def test_keys_depend_on_model_content_and_parameters():
    base = result_key("predict", "m1", {"text": "good"}, {"fields": ["p"]})
    assert base == result_key("predict", "m1", {"text": "good"}, {"fields": ["p"]})
    assert base != result_key("predict", "m2", {"text": "good"}, {"fields": ["p"]})
    assert base != result_key("predict", "m1", {"text": "good!"}, {"fields": ["p"]})
    assert base != result_key("predict", "m1", {"text": "good"}, {"fields": ["q"]})


def test_a_second_run_reads_the_cache_and_runs_only_new_rows(tmp_path):
    cache, model = ResultCache(tmp_path), KeywordModel()
    first = run_job(predict_job(model, make_dataset(), cache=cache))
    calls = model.calls
    again = run_job(predict_job(model, make_dataset(), cache=cache))
    assert model.calls == calls  # nothing ran
    np.testing.assert_array_equal(first.fields["probas"], again.fields["probas"])
    changed = make_dataset(TEXTS[:-1] + ["a brand new review"])
    run_job(predict_job(model, changed, cache=cache, batch_size=100))
    assert model.calls == calls + 1  # one batch, holding only the new row


def test_a_cancelled_run_resumes_where_it_stopped(tmp_path):
    cache, model = ResultCache(tmp_path), KeywordModel()
    job = predict_job(model, make_dataset(), cache=cache, batch_size=2)
    next(job), next(job), next(job)  # start, then two batches of two rows
    job.close()  # what cancelling does at a yield
    assert model.calls == 2
    finished = run_job(predict_job(model, make_dataset(), cache=cache, batch_size=2))
    assert model.calls == 2 + 2  # the remaining four rows
    expected = KeywordModel().predict([{"text": t} for t in TEXTS])
    np.testing.assert_allclose(finished.fields["probas"], [e["probas"] for e in expected])


class MemoryHungryModel(KeywordModel):
    """Runs out of (simulated) device memory on batches larger than ``fits``."""

    def __init__(self, fits: int) -> None:
        super().__init__("hungry")
        self.fits = fits
        self.batch_sizes: list[int] = []

    def predict(self, inputs):
        self.batch_sizes.append(len(inputs))
        if len(inputs) > self.fits:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().predict(inputs)


def test_out_of_memory_halves_the_batch_and_remembers(monkeypatch):
    monkeypatch.setattr(predict_module, "_fitted_batch_sizes", {})
    model = MemoryHungryModel(fits=2)
    predictions = run_job(predict_job(model, make_dataset(), batch_size=8))
    assert model.batch_sizes[:3] == [8, 4, 2]
    assert len(predictions) == len(TEXTS)
    model.batch_sizes.clear()
    run_job(predict_job(model, make_dataset(), batch_size=8))
    assert set(model.batch_sizes) == {2}  # the size that fitted is where it starts now


def test_other_errors_are_not_retried(monkeypatch):
    class Broken(KeywordModel):
        def predict(self, inputs):
            raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_job(predict_job(Broken(), make_dataset()))


def test_predict_command_writes_every_output(tmp_path, litdesk_home):
    from litdesk.core import paths
    from litdesk.core.batch import predict_to_parquet

    linear = paths.DEMO_MODELS[1]
    if not linear.exists():
        pytest.skip("demo not built")
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\nwonderful stay,positive\nterrible and rude,negative\n", "utf-8")
    out = tmp_path / "out.parquet"
    summary = predict_to_parquet(linear, data, out, fields="all")
    assert "2 rows" in summary
    table = pq.read_table(out)
    assert set(table.column_names) == {"row", "probas", "tokens", "token_salience"}
    probas = table.column("probas").to_pylist()
    assert probas[0][1] > 0.5 > probas[1][1]
    assert table.column("tokens").to_pylist()[1] == ["terrible", "and", "rude"]


def test_encoding_keeps_bytes_ragged_lists_and_top_k_pairs():
    outputs = {"image": b"\x89PNG\r\n\x1a\n\x00\xff",
               "top_k": [[("the", 0.5), ("a", 0.25)], [("cat", 0.9)]],
               "ragged": [np.array([1.0, 2.0]), np.array([3.0])],
               "nested": {"score": np.float32(0.5)}}
    decoded = decode_outputs(encode_outputs(outputs))
    assert decoded["image"] == outputs["image"]
    assert decoded["top_k"] == [[["the", 0.5], ["a", 0.25]], [["cat", 0.9]]]
    assert decoded["ragged"] == [[1.0, 2.0], [3.0]]
    assert decoded["nested"] == {"score": 0.5}
