"""Baselines: out-of-fold probabilities, saved models that reopen without a trust prompt."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from litdesk.core import baselines

POSITIVE = ["great film", "loved it", "wonderful story", "very good acting"]
NEGATIVE = ["awful plot", "bad film", "hated it", "very boring acting"]


def toy_table(n: int = 300, seed: int = 0) -> pa.Table:
    """Texts whose label follows their phrase, a number that leans with it, a category."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = [f"the movie was {rng.choice(POSITIVE if label else NEGATIVE)} in part {i % 7}"
             for i, label in enumerate(y)]
    return pa.table({"text": texts, "label": ["pos" if label else "neg" for label in y],
                     "x": rng.normal(size=n) + 2.0 * y, "colour": rng.choice(["red", "blue"], n)})


def accuracy(probabilities: np.ndarray, classes: list[str], table: pa.Table) -> float:
    predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
    return float((predicted == np.asarray(table.column("label").to_pylist())).mean())


def test_column_kinds_follow_the_values():
    columns = baselines.input_columns_by_kind(toy_table(), ["text", "colour", "x"])
    assert columns == baselines.Columns(text=("text",), category=("colour",), number=("x",))


def test_out_of_sample_probabilities_are_out_of_fold_and_seeded():
    table = toy_table()
    reports = []
    probabilities, classes = baselines.out_of_sample_probabilities(
        table, ["text"], "label", folds=4, seed=3, progress=lambda done, total: reports.append(
            (done, total)))
    assert probabilities.shape == (300, 2) and classes == ["neg", "pos"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert accuracy(probabilities, classes, table) > 0.9
    assert reports[-1] == (4, 4) and len(reports) >= 5
    again, _ = baselines.out_of_sample_probabilities(table, ["text"], "label", folds=4, seed=3)
    np.testing.assert_array_equal(probabilities, again)
    other, _ = baselines.out_of_sample_probabilities(table, ["text"], "label", folds=4, seed=4)
    assert not np.array_equal(probabilities, other)


def test_a_row_seen_in_training_is_not_predicted_in_sample():
    """A lone row whose text is unique and whose label contradicts its phrase: a model that had
    seen it would give its label weight; out of fold it gets the phrase's label."""
    table = toy_table(200)
    texts = table.column("text").to_pylist()
    labels = table.column("label").to_pylist()
    texts[0], labels[0] = "the movie was great film zebra zebra", "neg"
    table = table.set_column(0, "text", pa.array(texts)).set_column(1, "label", pa.array(labels))
    probabilities, classes = baselines.out_of_sample_probabilities(table, ["text"], "label")
    assert classes[int(probabilities[0].argmax())] == "pos"


@pytest.mark.parametrize("kind", baselines.KINDS)
def test_tabular_baselines_beat_chance(kind):
    table = toy_table(400)
    probabilities, classes = baselines.out_of_sample_probabilities(
        table, ["x", "colour"], "label", folds=3, kind=kind)
    assert accuracy(probabilities, classes, table) > 0.75


def test_cancel_stops_between_folds():
    with pytest.raises(baselines.Cancelled):
        baselines.out_of_sample_probabilities(toy_table(), ["text"], "label", cancel=lambda: True)


@pytest.mark.parametrize("columns, label, message", [
    (["nope"], "label", "no column 'nope'"),
    (["text"], "nope", "no label column 'nope'"),
    ([], "label", "no input columns"),
])
def test_bad_columns_say_which(columns, label, message):
    with pytest.raises(ValueError, match=message):
        baselines.out_of_sample_probabilities(toy_table(), columns, label)


def reopened_probabilities(folder, table, columns):
    from litdesk.api import LoadOptions
    from litdesk.core.model_loading import load_model

    model = load_model(folder, LoadOptions(label="label"))  # no trust given: none needed
    examples = [{name: row[name] for name in columns} for row in table.to_pylist()]
    return model, np.stack([output["probas"] for output in model.predict(examples)])


@pytest.mark.parametrize("columns, kind, model_class", [
    (["text"], "linear", "LinearTextModel"),
    (["x"], "linear", "OnnxClassifier"),
    (["x"], "boosted", "OnnxClassifier"),
    (["x", "colour"], "linear", "OnnxClassifier"),
    (["colour", "x"], "boosted", "OnnxClassifier"),
])
def test_a_saved_baseline_reopens_without_trust_and_predicts_the_same(tmp_path, columns, kind,
                                                                      model_class):
    table = toy_table(240)
    baseline = baselines.run_job(baselines.fit_baseline_job(
        table, columns, "label", rows=np.arange(200), kind=kind, folds=3, seed=1))
    assert baseline.cv_accuracy > 0.75 and len(baseline.rows) == 200
    file = baselines.save_baseline(baseline, tmp_path / "model", data_path=None)
    assert file.parent == tmp_path / "model"
    model, probabilities = reopened_probabilities(tmp_path / "model", table, columns)
    assert type(model).__name__ == model_class
    tolerance = 1e-6 if model_class == "LinearTextModel" else 1e-5  # ONNX runs in float32
    np.testing.assert_allclose(probabilities, baselines.predict_proba(baseline, table),
                               atol=tolerance)
    record = json.loads((tmp_path / "model" / "training_record.json").read_text())
    assert record["kind"] == f"baseline:{kind}" and record["seed"] == 1
    assert record["data"]["rows"] == {"count": 200, "sha256": record["data"]["rows"]["sha256"],
                                      "range": "0:200"}
    assert record["result"]["cross_validated_accuracy"] == pytest.approx(baseline.cv_accuracy)
    assert record["litdesk_version"]


@pytest.mark.parametrize("kind", baselines.KINDS)
def test_a_saved_baseline_with_categories_reads_unseen_and_missing_values(tmp_path, kind):
    """A category the training rows never had, a missing one and a missing number: the
    reopened ONNX graph answers as the pipeline does (unseen one-hot columns are zeros, an
    unseen code is missing to the trees)."""
    table = toy_table(160).drop(["text"])
    colour = table.column("colour").to_pylist()
    colour[:3] = ["green", None, "red"]
    x = table.column("x").to_pylist()
    x[2] = None
    table = table.set_column(table.column_names.index("colour"), "colour", pa.array(colour))
    table = table.set_column(table.column_names.index("x"), "x", pa.array(x))
    baseline = baselines.run_job(baselines.fit_baseline_job(
        table, ["colour", "x"], "label", rows=np.arange(3, 160), kind=kind, folds=2))
    assert baseline.savable is None
    baselines.save_baseline(baseline, tmp_path / "model")
    sidecar = json.loads((tmp_path / "model" / baselines.SIDECAR_FILE_NAME).read_text())
    assert sidecar["inputs"] == [{"name": "colour", "type": "category"},
                                 {"name": "x", "type": "number"}]
    model, probabilities = reopened_probabilities(tmp_path / "model", table, ["colour", "x"])
    assert type(model.input_spec()["colour"]).__name__ == "CategoryLabel"
    np.testing.assert_allclose(probabilities, baselines.predict_proba(baseline, table),
                               atol=1e-5)


def test_default_inputs_are_the_text_else_the_categories_and_numbers():
    table = toy_table(200)
    assert baselines.default_input_columns(table, "label") == ["text"]
    assert baselines.default_input_columns(table.drop(["text"]), "label") == ["colour", "x"]
    with_ids = table.drop(["text"]).append_column("id", pa.array([f"r{i}" for i in range(200)]))
    with_ids = with_ids.append_column("split", pa.array(["train", "test"] * 100))
    assert baselines.default_input_columns(with_ids, "label") == ["colour", "x"]
