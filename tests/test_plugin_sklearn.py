"""The scikit-learn plugin: trust before unpickling, inputs read from the pipeline, predictions."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import (
    CategoryLabel,
    LoadOptions,
    ModelLoadError,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    TextSegment,
    TrustRequired,
)
from litdesk.core.jobs import run_job
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import find_model_loader, load_model
from litdesk.core.predict import predict_job

pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")
pytest.importorskip("sklearn")

from sklearn.cluster import KMeans  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import GradientBoostingRegressor  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_sklearn"
TRUSTED = LoadOptions(trust=True)
TEXTS = ["a great film", "awful plot", "great acting, good story", "bad and boring",
         "good fun", "boring awful film", "great great great", "bad acting"]
SENTIMENT = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"]


@pytest.fixture(scope="module")
def frame() -> "pd.DataFrame":
    rng = np.random.default_rng(0)
    n = 60
    height, weight = rng.normal(170, 10, n), rng.normal(70, 8, n)
    colour = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({
        "height": height, "weight": weight, "colour": colour,
        "note": rng.choice(TEXTS, n),
        "species": np.where(height + 5 * (colour == "red") > 172, "tall", "short"),
        "target": 0.5 * height - weight + rng.normal(0, 1, n),
    })


def save(estimator, tmp_path: Path, name: str) -> Path:
    file = tmp_path / name
    joblib.dump(estimator, file)
    return file


def records(frame: "pd.DataFrame", columns: list[str]) -> list[dict]:
    return frame[columns].to_dict("records")


def test_manifest_and_cheap_import():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    (loader,) = manifest["model_loaders"]
    assert loader["callable"] == "litdesk_sklearn.model:load"
    assert loader["patterns"] == ["*.joblib", "*.pkl", "*.pickle"]
    script = ("import sys, litdesk_sklearn.model; "
              "print(sorted({'sklearn', 'joblib', 'pandas', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


class Hostile:
    """Unpickling it creates a folder: proof that the file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".pickle"])
def test_without_trust_the_pickle_is_never_unpickled(tmp_path, suffix):
    marker = tmp_path / "unpickled"
    file = tmp_path / f"hostile{suffix}"
    file.write_bytes(pickle.dumps(Hostile(marker)))
    with pytest.raises(TrustRequired, match="loading a pickle runs code from it; open it only if "
                                            "you trust its source") as raised:
        load_model(file)
    assert str(file) in str(raised.value)
    assert not marker.exists()
    # The control: trusted, the same file does run its code (and is then refused).
    with pytest.raises(ModelLoadError, match="holds a NoneType, not a scikit-learn classifier"):
        load_model(file, TRUSTED)
    assert marker.exists()


def test_classifier_fitted_on_a_dataframe(tmp_path, frame):
    classifier = LogisticRegression().fit(frame[["height", "weight"]], frame["species"])
    file = save(classifier, tmp_path, "species.joblib")
    assert find_model_loader(file).id == "sklearn_estimator"
    model = load_model(file, TRUSTED)
    assert model.name == "species"
    assert model.input_spec() == {"height": Scalar(), "weight": Scalar()}
    assert model.output_spec() == {"probas": MulticlassPreds(vocab=("short", "tall"), parent="label")}
    assert model.fingerprint() == hashlib.sha256(file.read_bytes()).hexdigest()
    # Columns in any order in the examples; the DataFrame follows feature_names_in_.
    examples = [{"weight": row["weight"], "height": row["height"]}
                for row in records(frame, ["height", "weight"])]
    probas = np.array([output["probas"] for output in model.predict(examples)])
    np.testing.assert_allclose(probas, classifier.predict_proba(frame[["height", "weight"]]),
                               rtol=1e-12)


def test_regressor_names_the_label_column_it_was_told(tmp_path, frame):
    regressor = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(
        frame[["height", "weight"]], frame["target"])
    model = load_model(save(regressor, tmp_path, "size.pkl"), LoadOptions(trust=True, label="target"))
    assert model.output_spec() == {"score": RegressionScore(parent="target")}
    scores = [output["score"] for output in model.predict(records(frame, ["height", "weight"]))]
    np.testing.assert_allclose(scores, regressor.predict(frame[["height", "weight"]]), rtol=1e-12)


def test_a_multi_output_regressor_fails_to_predict_with_a_reason(tmp_path, frame):
    regressor = LinearRegression().fit(frame[["height"]], frame[["target", "weight"]])
    model = load_model(save(regressor, tmp_path, "two.joblib"), TRUSTED)
    with pytest.raises(ValueError, match="only single-output regressors are supported"):
        model.predict(records(frame, ["height"]))


def test_text_pipeline_reads_one_text_field(tmp_path):
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(
        TEXTS, SENTIMENT)
    model = load_model(save(pipeline, tmp_path, "sentiment.joblib"), TRUSTED)
    assert model.input_spec() == {"text": TextSegment()}
    assert model.output_spec()["probas"].vocab == ("neg", "pos")
    outputs = model.predict([{"text": text} for text in [*TEXTS, None]])
    expected = pipeline.predict_proba([*TEXTS, ""])
    np.testing.assert_allclose([output["probas"] for output in outputs], expected, rtol=1e-12)


def test_encoders_in_a_column_transformer_decide_the_field_types(tmp_path, frame):
    columns = ["height", "colour", "note"]
    pipeline = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["height"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                           ("txt", TfidfVectorizer(), "note")]),
        LogisticRegression()).fit(frame[columns], frame["species"])
    model = load_model(save(pipeline, tmp_path, "mixed.joblib"), TRUSTED)
    assert model.input_spec() == {"height": Scalar(),
                                  "colour": CategoryLabel(vocab=("blue", "green", "red")),
                                  "note": TextSegment()}
    probas = [output["probas"] for output in model.predict(records(frame, columns))]
    np.testing.assert_allclose(probas, pipeline.predict_proba(frame[columns]), rtol=1e-12)


def test_predictions_over_a_csv_dataset(tmp_path, frame):
    columns = ["height", "weight", "colour"]
    pipeline = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(), ["colour"])], remainder="passthrough"),
        LogisticRegression(max_iter=500)).fit(frame[columns], frame["species"])
    model = load_model(save(pipeline, tmp_path, "tabular.joblib"), TRUSTED)
    csv = tmp_path / "data.csv"
    frame[[*columns, "species"]].to_csv(csv, index=False)
    predictions = run_job(predict_job(model, load_dataset(csv), batch_size=16))
    np.testing.assert_allclose(predictions.fields["probas"], pipeline.predict_proba(frame[columns]),
                               rtol=1e-5)


def test_classifier_without_predict_proba_gives_one_hot_predictions(tmp_path, frame):
    classifier = RidgeClassifier().fit(frame[["height", "weight"]], frame["species"])
    model = load_model(save(classifier, tmp_path, "ridge.joblib"), TRUSTED)
    probas = np.array([output["probas"] for output in model.predict(records(frame, ["height", "weight"]))])
    predicted = classifier.predict(frame[["height", "weight"]])
    assert probas.sum(axis=1).tolist() == [1.0] * len(frame)
    assert (classifier.classes_[probas.argmax(axis=1)] == predicted).all()


def test_a_folder_holding_one_pickle_loads_it(tmp_path, frame):
    folder = tmp_path / "model"
    folder.mkdir()
    save(LogisticRegression().fit(frame[["height"]], frame["species"]), folder, "clf.joblib")
    with pytest.raises(TrustRequired, match="clf.joblib"):
        load_model(folder)
    assert load_model(folder, TRUSTED).input_spec() == {"height": Scalar()}


@pytest.mark.parametrize("content, message", [
    (b"\x80\x05this is not a pickle", "cannot be unpickled"),
    (b"", "cannot be unpickled"),
])
def test_a_corrupt_file_is_one_load_error(tmp_path, content, message):
    file = tmp_path / "broken.joblib"
    file.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as raised:
        load_model(file, TRUSTED)
    assert str(raised.value).startswith(f"{file}: ")


def test_objects_that_cannot_serve_as_models_are_refused(tmp_path, frame):
    cases = {
        "dict.pkl": ({"weights": [1, 2]}, "holds a dict, not a scikit-learn classifier or regressor"),
        "unfitted.joblib": (LogisticRegression(), "not fitted"),
        "array_fitted.joblib": (LogisticRegression().fit(frame[["height"]].to_numpy(), frame["species"]),
                                "fitted without column names"),
        "scaler.joblib": (make_pipeline(StandardScaler()).fit(frame[["height"]]),
                          "holds a Pipeline, not a scikit-learn classifier or regressor"),
        "clusters.joblib": (KMeans(n_clusters=2, n_init=1).fit(frame[["height"]]),
                            "holds a KMeans, not a scikit-learn classifier or regressor"),
    }
    for name, (value, message) in cases.items():
        with pytest.raises(ModelLoadError, match=message) as raised:
            load_model(save(value, tmp_path, name), TRUSTED)
        assert str(raised.value).startswith(f"{tmp_path / name}: ")
