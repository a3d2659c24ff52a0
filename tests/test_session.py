"""The session's shared state, predictions and input binding, without Qt."""

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import Dataset, TextSegment
from litdesk.core.jobs import Progress, run_job
from litdesk.core.predict import SpecMismatchError, bind_inputs, predict_job
from litdesk.core.projection import pca_job
from litdesk.core.session import Session
from tests.fakes import KeywordModel
from tests.helpers import TEXTS, make_dataset

def test_predictions_are_row_aligned_despite_length_sorting():
    dataset, model = make_dataset(), KeywordModel()
    progress = []
    predictions = run_job(predict_job(model, dataset, batch_size=3), progress.append)
    assert model.calls == 3  # 8 rows in batches of 3
    direct = model.predict([{"text": t} for t in TEXTS])
    np.testing.assert_allclose(predictions.fields["probas"], [d["probas"] for d in direct])
    assert set(predictions.fields) == {"probas", "emb"}  # token-level outputs are not kept
    assert progress[-1] == Progress(len(TEXTS), len(TEXTS), "keywords: predicting")


def test_inputs_bind_by_type_when_names_differ():
    dataset = make_dataset(text_column="sentence")
    assert bind_inputs(KeywordModel(), dataset) == {"text": "sentence", "label": "label"}


def test_missing_required_input_is_a_clear_error():
    table = pa.table({"x": [1.0]})
    dataset = Dataset(table, {}, "numbers")
    with pytest.raises(SpecMismatchError, match="needs text .TextSegment."):
        bind_inputs(KeywordModel(), dataset)


def test_selection_events_and_pinning():
    session = Session()
    session.set_dataset(make_dataset())
    seen = []
    session.selection_changed.connect(seen.append)
    session.select([5, 2, 2], source="table")
    assert session.selection.rows.tolist() == [2, 5]
    assert session.selection.primary == 2
    session.select([1], primary=4, source="projector")
    assert session.selection.rows.tolist() == [1, 4] and session.selection.primary == 4
    session.pin(3)
    assert session.selection.pinned == 3
    session.pin(3)  # no change, no event
    assert seen == ["table", "projector", None]


def test_selection_rules_replace_add_and_toggle():
    session = Session()
    session.set_dataset(make_dataset())
    session.select([1, 3], primary=3)
    session.select([4, 3], primary=4, mode="add")
    assert session.selection.rows.tolist() == [1, 3, 4] and session.selection.primary == 4
    session.select([4, 5], primary=4, mode="toggle")  # 4 goes, 5 comes; the primary moves
    assert session.selection.rows.tolist() == [1, 3, 5] and session.selection.primary == 1
    session.select([3], primary=5, mode="add")  # a primary given stays primary
    assert session.selection.primary == 5
    session.select([1], mode="toggle")  # without one, the primary stays while selected
    assert session.selection.rows.tolist() == [3, 5] and session.selection.primary == 5
    session.select([2])
    assert session.selection.rows.tolist() == [2] and session.selection.primary == 2
    with pytest.raises(ValueError, match="mode"):
        session.select([1], mode="xor")


def test_toggling_a_third_of_a_million_rows():
    session = Session()
    session.set_dataset(make_dataset())
    third = np.arange(0, 1_000_000, 3)
    session.select(np.arange(0, 1_000_000, 2))
    session.select(third, mode="toggle")
    expected = np.setxor1d(np.arange(0, 1_000_000, 2), third)
    np.testing.assert_array_equal(session.selection.rows, expected)


def test_starring_pinning_and_unstarring():
    session = Session()
    session.set_dataset(make_dataset())
    session.select([2, 4], primary=4)
    session.toggle_pin()
    assert session.selection.pinned == 4
    session.toggle_pin()  # the primary is the pinned row: unpinned
    assert session.selection.pinned is None
    session.toggle_star([4, 2])
    assert session.starred.tolist() == [2, 4] and session.slices["Starred"].tolist() == [2, 4]
    session.toggle_star([2, 5])  # not all starred: star them
    assert session.starred.tolist() == [2, 4, 5]
    session.toggle_star([2, 5])  # all starred: unstar them
    assert session.starred.tolist() == [4]
    session.unstar([4])
    assert "Starred" not in session.slices and session.starred.size == 0


def test_pca_of_predicted_embeddings():
    dataset, model = make_dataset(), KeywordModel()
    predictions = run_job(predict_job(model, dataset))
    coords = run_job(pca_job(predictions.fields["emb"]))
    assert coords.shape == (len(TEXTS), 2)


def test_datasets_stay_with_their_own_predictions():
    session, model = Session(), KeywordModel()
    first = session.set_dataset(make_dataset())
    session.set_predictions(run_job(predict_job(model, session.dataset)))
    second = session.set_dataset(make_dataset(TEXTS[:3]))
    assert (first, second) == ("tiny", "tiny (2)")
    assert session.predictions == {}
    session.activate_dataset("tiny")
    assert len(session.predictions["keywords"]) == len(TEXTS)


def test_predictions_keep_the_order_the_models_were_opened_in_whichever_finishes_first():
    session = Session()
    session.set_dataset(make_dataset())
    first, second = KeywordModel("first"), KeywordModel("second", bias=1.0)
    session.add_model(first)
    session.add_model(second)
    session.set_predictions(run_job(predict_job(second, session.dataset)))
    session.set_predictions(run_job(predict_job(first, session.dataset)))
    assert list(session.predictions) == ["first", "second"]


def test_predictions_for_a_background_dataset_are_kept_quietly():
    session, model = Session(), KeywordModel()
    session.set_dataset(make_dataset())
    background = session.dataset
    session.set_dataset(make_dataset(TEXTS[:3]))
    emitted = []
    session.predictions_changed.connect(emitted.append)
    session.set_predictions(run_job(predict_job(model, background)))
    assert emitted == [] and session.predictions == {}
    session.activate_dataset("tiny")
    assert "keywords" in session.predictions


def test_slices_belong_to_their_dataset_and_get_unique_names():
    session = Session()
    session.set_dataset(make_dataset())
    changes = []
    session.slices_changed.connect(lambda: changes.append(1))
    assert session.add_slice("errors", [3, 1, 1]) == "errors"
    assert session.add_slice("errors", [2]) == "errors (2)"
    np.testing.assert_array_equal(session.slices["errors"], [1, 3])
    session.remove_slice("errors (2)")
    assert list(session.slices) == ["errors"] and len(changes) == 3
    other = make_dataset()
    other.name = "other"
    session.set_dataset(other)
    assert session.slices == {}
    session.activate_dataset("tiny")
    assert list(session.slices) == ["errors"]
