"""The workbench drives litdesk without Qt: open, predict, outcomes, datapoints, trust."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from litdesk.core import paths
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import InlineRunner
from litdesk.core.outcomes import compute_outcomes, encode_categories
from litdesk.core.settings import Settings
from litdesk.core.workbench import Workbench
from tests.fakes import KeywordModel

ROWS = [("good film", "positive"), ("bad plot", "negative"), ("great cast", "positive"),
        ("fine, I guess", "negative"), ("awful", "negative"), ("love it", None)]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(
        f'"{text}",{label or ""}' for text, label in ROWS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def workbench():
    return Workbench(InlineRunner())


def test_no_qt_is_imported_by_the_workbench():
    import subprocess

    code = ("import sys\nimport litdesk.core.workbench\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'superqt')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_open_predict_and_read_the_outcomes(workbench, csv_file):
    loaded, outcomes_seen = [], []
    workbench.dataset_loaded.connect(loaded.append)
    workbench.session.outcomes_changed.connect(lambda: outcomes_seen.append(1))
    workbench.open_paths([csv_file])
    assert loaded == ["reviews"] and len(workbench.session.dataset) == len(ROWS)
    assert workbench.session.selection.primary == 0
    workbench.open_objects(models=[KeywordModel()])
    assert set(workbench.session.predictions) == {"keywords"}
    outcomes = workbench.session.outcomes
    assert outcomes is not None and outcomes_seen
    outcome = outcomes.models["keywords"]
    assert outcome.gold_column == "label"
    # The keyword model says "positive" for good, great, fine and love.
    assert list(outcome.predicted_names()) == ["positive", "negative", "positive", "positive",
                                               "negative", "positive"]
    assert list(outcome.correct) == [True, True, True, False, True, False]
    assert list(outcome.has_gold) == [True] * 5 + [False]
    assert outcomes.accuracy("keywords") == pytest.approx(4 / 5)
    assert workbench.errors == []


def test_outcomes_equal_a_straightforward_reference(csv_file, workbench):
    workbench.open_paths([csv_file])
    workbench.open_objects(models=[KeywordModel("a"), KeywordModel("b", bias=-1.5)])
    session = workbench.session
    outcomes = compute_outcomes(session.dataset, session.predictions)
    gold = session.dataset.table.column("label").to_pylist()
    labels = {}
    for name, predictions in session.predictions.items():
        probas = predictions.fields["probas"]
        expected = []
        for row in range(len(gold)):
            best = max(range(2), key=lambda k: probas[row][k])  # first of ties, like argmax
            label = ("negative", "positive")[best]
            expected.append(label)
            outcome = outcomes.models[name]
            assert outcome.confidence[row] == pytest.approx(probas[row][best])
            assert outcome.correct[row] == (gold[row] == label)
        labels[name] = expected
        assert list(outcomes.models[name].predicted_names()) == expected
    assert list(outcomes.disagree) == [a != b for a, b in zip(labels["a"], labels["b"])]
    assert outcomes.disagree.any()


def test_the_category_encoder_orders_known_labels_first_and_marks_missing():
    encoded = encode_categories(["b", None, "z", "a", "b"], labels=["b", "a"])
    assert encoded.labels == ("b", "a", "z")
    assert list(encoded.codes) == [0, -1, 2, 1, 0]
    closed = encode_categories(["b", "z", "a"], labels=["a", "b"], closed=True)
    assert closed.labels == ("a", "b") and list(closed.codes) == [1, -1, 0]
    numbers = encode_categories([3, 1, 3])
    assert numbers.labels == ("1", "3") and list(numbers.codes) == [1, 0, 1]


def test_a_datapoint_is_journaled_predicted_added_and_selected(workbench, csv_file):
    added = []
    workbench.datapoints_added.connect(added.append)
    workbench.open_paths([csv_file])
    workbench.open_objects(models=[KeywordModel()])
    point = NewDatapoint.now({"text": "excellent", "label": "positive"}, 1, "edited")
    assert workbench.add_datapoints([point], compare=True)
    session = workbench.session
    assert len(session.dataset) == len(ROWS) + 1 and list(added[0]) == [len(ROWS)]
    assert session.selection.primary == len(ROWS) and session.selection.pinned == 1
    assert session.predictions["keywords"].predicted_labels()[1][-1] == 1
    assert session.outcomes.num_rows == len(ROWS) + 1

    reopened = Workbench(InlineRunner())  # the journal brings the datapoint back
    reopened.open_paths([csv_file])
    assert len(reopened.session.dataset) == len(ROWS) + 1
    assert reopened.session.dataset.table.column("text")[-1].as_py() == "excellent"


def test_a_value_that_does_not_fit_is_rejected_with_a_message(workbench, csv_file):
    rejected = []
    workbench.datapoint_rejected.connect(rejected.append)
    workbench.open_paths([csv_file])
    assert not workbench.add_datapoints([NewDatapoint.now({"no_such_column": 1}, 0, "edited")])
    assert rejected and "no_such_column" in rejected[0]
    assert len(workbench.session.dataset) == len(ROWS)


def test_a_bad_file_is_one_error_and_the_session_goes_on(workbench, csv_file, tmp_path):
    workbench.open_paths([csv_file])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    workbench.open_paths([broken])
    assert len(workbench.errors) == 1 and "broken.parquet" in workbench.errors[0]
    assert workbench.session.dataset.name == "reviews"


def test_trust_covers_only_the_paths_given(tmp_path):
    pickled = tmp_path / "model.joblib"
    other = tmp_path / "other.joblib"
    for path in (pickled, other):
        path.write_bytes(b"not really a pickle")
    asked = []
    workbench = Workbench(InlineRunner(), trusted_paths=[pickled])
    workbench.trust_required.connect(lambda path, reason: asked.append(path))
    workbench.open_paths([pickled, other])
    assert asked == [other]  # the trusted one was tried (and failed to unpickle), not asked
    assert any("model.joblib" in error for error in workbench.errors)


def test_device_and_precision_are_saved_for_the_next_workbench(tmp_path):
    settings_file = tmp_path / "settings.json"
    first = Workbench(InlineRunner(), settings=Settings(settings_file))
    assert (first.device, first.precision) == ("auto", "fp32")
    first.device, first.precision = "cpu", "bf16"
    second = Workbench(InlineRunner(), settings=Settings(settings_file))
    assert (second.device, second.precision) == ("cpu", "bf16")
    assert Workbench(InlineRunner(), settings=Settings(settings_file), device="cuda").device \
        == "cuda"


def test_a_damaged_settings_file_reads_as_the_defaults(tmp_path):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text("{not json", encoding="utf-8")
    assert Workbench(InlineRunner(), settings=Settings(settings_file)).device == "auto"


def test_the_demo_opens_without_qt(workbench):
    workbench.open_paths([paths.DEMO_DATASET, paths.DEMO_MODELS[1]])  # the linear model
    assert workbench.errors == []
    outcomes = workbench.session.outcomes
    assert outcomes is not None and 0.5 < outcomes.accuracy("bow_linear") <= 1.0
    assert np.count_nonzero(outcomes.models["bow_linear"].has_gold) > 0
