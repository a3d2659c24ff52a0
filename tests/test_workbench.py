"""The workbench drives litdesk without Qt: open, predict, outcomes, datapoints, trust."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from litdesk.core import paths
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import InlineRunner
from litdesk.core.categories import encode_categories
from litdesk.core.outcomes import compute_outcomes
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


def test_a_model_reopened_on_a_warm_cache_is_not_loaded(monkeypatch):
    import litdesk.core.workbench as workbench_module
    from litdesk.core.deferred import DeferredModel
    from litdesk.core.explain import explain_job
    from litdesk.core.jobs import run_job

    first = Workbench(InlineRunner())
    first.open_paths([paths.DEMO_DATASET, paths.DEMO_MODELS[1]])
    expected = first.session.predictions["bow_linear"].fields["probas"]

    loads = []
    original = workbench_module.load_model
    monkeypatch.setattr(workbench_module, "load_model",
                        lambda path, options: (loads.append(path), original(path, options))[1])
    monkeypatch.setattr(workbench_module, "load_model_job", lambda *args: pytest.fail(
        "the model was loaded although its results are cached"))
    reopened = Workbench(InlineRunner())
    reopened.open_paths([paths.DEMO_DATASET, paths.DEMO_MODELS[1]])
    model = reopened.session.models["bow_linear"]
    assert isinstance(model, DeferredModel) and not model.loaded and loads == []
    np.testing.assert_array_equal(reopened.session.predictions["bow_linear"].fields["probas"],
                                  expected)
    assert reopened.session.outcomes.accuracy("bow_linear") == \
        first.session.outcomes.accuracy("bow_linear")
    assert reopened.errors == []

    # Something not in the cache: the real model loads, once, and computes it.
    (attribution,) = run_job(explain_job(model, reopened.session.dataset, [3], "occlusion",
                                         cache=reopened.cache))
    assert model.loaded and len(loads) == 1 and len(attribution.scores) > 0


def test_a_changed_model_file_is_loaded_again(tmp_path):
    import shutil

    from litdesk.core.deferred import DeferredModel

    folder = tmp_path / "bow"
    shutil.copytree(paths.DEMO_MODELS[1], folder)
    Workbench(InlineRunner()).open_paths([paths.DEMO_DATASET, folder])
    (weights,) = folder.glob("*.json")
    weights.write_text(weights.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    reopened = Workbench(InlineRunner())
    reopened.open_paths([folder])
    assert not isinstance(reopened.session.models["bow"], DeferredModel)


@pytest.mark.slow
def test_a_deferred_model_offers_what_the_real_one_does():
    """Salience methods, sequence salience and the gradient contract come from the record."""
    from litdesk.api.model import GradientTextModel
    from litdesk.core.deferred import DeferredModel, ModelRecord, deferred_model
    from litdesk.core.explain import methods_for
    from litdesk.core.model_loading import load_model
    from litdesk.core.sequence_salience import supports_sequence_salience

    for path in (paths.DEMO_MODELS[0], paths.DEMO_LM):
        real = load_model(path)
        record = ModelRecord.from_json(ModelRecord.of(real).to_json())
        deferred = deferred_model(record, lambda real=real: real)
        assert isinstance(deferred, DeferredModel) and not deferred.loaded
        assert methods_for(deferred) == methods_for(real)
        assert supports_sequence_salience(deferred) == supports_sequence_salience(real)
        assert isinstance(deferred, GradientTextModel) == isinstance(real, GradientTextModel)
        assert deferred.fingerprint() == real.fingerprint()
        assert deferred.output_spec() == real.output_spec()
        assert not deferred.loaded
        example = {name: "a fine film" if name == "text" else None
                   for name in real.input_spec()}
        example = {key: value for key, value in example.items() if value is not None}
        assert deferred.predict([example])[0].keys() == real.predict([example])[0].keys()
        assert deferred.loaded
