"""The linear text plugin: JSON export of scikit-learn models, exact predictions, salience, refusals."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import ModelLoadError, MulticlassPreds, Tokens, TokenSalience

sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
sklearn_linear = pytest.importorskip("sklearn.linear_model")

from litdesk_linear_text.model import (  # noqa: E402
    FORMAT,
    MODEL_FILE_NAME,
    check_token_pattern,
    export_sklearn,
    load,
)

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_linear_text"

SENTENCES = [
    ("The film was great, a wonderful story", "positive", "movies"),
    ("What a great and lovely meal", "positive", "food"),
    ("The battery is excellent and the screen superb", "positive", "tech"),
    ("I loved the soundtrack; great actors!", "positive", "movies"),
    ("Superb pasta, wonderful service", "positive", "food"),
    ("The phone works great, excellent value", "positive", "tech"),
    ("The plot was awful and boring", "negative", "movies"),
    ("Bland soup, terrible waiter", "negative", "food"),
    ("The laptop is broken, awful keyboard", "negative", "tech"),
    ("Boring film, not great at all", "negative", "movies"),
    ("The dessert was terrible and the service slow", "negative", "food"),
    ("Horrible app, the screen is broken", "negative", "tech"),
    ("Café naïve été: déjà vu, the plot was great", "positive", "movies"),
]
UNSEEN = ["a great great great film", "NOT awful", "", "zzz qqq", "Déjà vu: terrible, terrible soup!"]

VECTORIZER_SETTINGS = {
    "bigrams_sublinear": dict(ngram_range=(1, 2), sublinear_tf=True),
    "stop_words_l1_binary_accents": dict(ngram_range=(1, 3), stop_words="english", norm="l1",
                                         binary=True, strip_accents="unicode"),
    "bigrams_only_ascii_no_norm": dict(ngram_range=(2, 2), norm=None, lowercase=False,
                                       strip_accents="ascii", token_pattern=r"(?u)\b\w+\b"),
    "no_idf_one_group_pattern": dict(use_idf=False, token_pattern=r"(?u)\b(\w\w+)\b"),
}


def fit(settings: dict, target: int):
    vectorizer = sklearn_text.TfidfVectorizer(**settings)
    features = vectorizer.fit_transform([sentence[0] for sentence in SENTENCES])
    classifier = sklearn_linear.LogisticRegression(C=10.0, max_iter=1000)
    classifier.fit(features, [sentence[target] for sentence in SENTENCES])
    return vectorizer, classifier


@pytest.fixture(scope="module")
def binary_model_file(tmp_path_factory) -> Path:
    vectorizer, classifier = fit(VECTORIZER_SETTINGS["bigrams_sublinear"], 1)
    return export_sklearn(vectorizer, classifier, tmp_path_factory.mktemp("models") / "bow")


def test_manifest_names_the_loader():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    assert manifest["name"] == "linear_text"
    (loader,) = manifest["model_loaders"]
    assert loader == {"id": "linear_text", "callable": "litdesk_linear_text.model:load",
                      "patterns": [MODEL_FILE_NAME]}


@pytest.mark.parametrize("settings", VECTORIZER_SETTINGS.values(), ids=VECTORIZER_SETTINGS.keys())
@pytest.mark.parametrize("target", [1, 2], ids=["binary", "three_classes"])
def test_probabilities_equal_scikit_learn(tmp_path, settings, target):
    vectorizer, classifier = fit(settings, target)
    model = load(export_sklearn(vectorizer, classifier, tmp_path / "model.json"))
    texts = [sentence[0] for sentence in SENTENCES] + UNSEEN
    expected = classifier.predict_proba(vectorizer.transform(texts))
    actual = np.stack([result["probas"] for result in model.predict([{"text": text} for text in texts])])
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    assert model.labels == tuple(classifier.classes_)


@pytest.mark.parametrize("settings", VECTORIZER_SETTINGS.values(), ids=VECTORIZER_SETTINGS.keys())
@pytest.mark.parametrize("target", [1, 2], ids=["binary", "three_classes"])
def test_salience_sums_to_the_predicted_score(tmp_path, settings, target):
    vectorizer, classifier = fit(settings, target)
    model = load(export_sklearn(vectorizer, classifier, tmp_path))
    texts = [sentence[0] for sentence in SENTENCES] + UNSEEN
    scores = classifier.decision_function(vectorizer.transform(texts))
    for text, score, result in zip(texts, scores, model.predict([{"text": text} for text in texts])):
        predicted = int(np.argmax(result["probas"]))
        if scores.ndim == 1:  # binary: the log-odds of the predicted class
            expected = (score - classifier.intercept_[0]) * (1 if predicted == 1 else -1)
        else:
            expected = score[predicted] - classifier.intercept_[predicted]
        assert len(result["token_salience"]) == len(result["tokens"])
        assert result["token_salience"].sum() == pytest.approx(expected, abs=1e-5)


def test_spec_tokens_and_salience_signs(binary_model_file):
    model = load(binary_model_file)
    assert model.name == "bow"
    assert model.output_spec() == {
        "probas": MulticlassPreds(vocab=("negative", "positive"), parent="label"),
        "tokens": Tokens(parent="text"),
        "token_salience": TokenSalience(align="tokens", signed=True),
    }
    assert model.input_spec()["label"].vocab == ("negative", "positive")
    (result,) = model.predict([{"text": "Great film, but an awful plot"}])
    assert result["tokens"] == ["great", "film", "but", "an", "awful", "plot"]
    positive = int(np.argmax(result["probas"])) == 1
    salience = dict(zip(result["tokens"], result["token_salience"] * (1 if positive else -1)))
    assert salience["great"] > 0 > salience["awful"]


def test_folder_and_file_load_alike(binary_model_file):
    from_folder, from_file = load(binary_model_file.parent), load(binary_model_file)
    assert from_folder.name == from_file.name == "bow"
    assert from_folder.fingerprint() == from_file.fingerprint()


def test_fingerprint_follows_the_coefficients(binary_model_file, tmp_path):
    document = json.loads(binary_model_file.read_text())
    document["coef"][0][0] += 0.5
    changed = tmp_path / MODEL_FILE_NAME
    changed.write_text(json.dumps(document))
    assert load(changed).fingerprint() != load(binary_model_file).fingerprint()


def edited(document: dict, **changes) -> dict:
    return {**document, **changes}


@pytest.mark.parametrize("corrupt, message", [
    (lambda doc: "{ not json", "not valid JSON"),
    (lambda doc: json.dumps([1, 2]), "not a JSON object"),
    (lambda doc: json.dumps(edited(doc, format="litdesk-linear-text/999")), "format"),
    (lambda doc: json.dumps({key: value for key, value in doc.items() if key != "idf"}), "idf"),
    (lambda doc: json.dumps(edited(doc, coef=[row[:-1] for row in doc["coef"]])), "coef"),
    (lambda doc: json.dumps(edited(doc, intercept=["x"])), "intercept"),
    (lambda doc: json.dumps(edited(doc, vocabulary={"a": 0, "b": 0})), "vocabulary"),
    (lambda doc: json.dumps(edited(doc, norm="l3")), "norm"),
    (lambda doc: json.dumps(edited(doc, token_pattern="(unclosed")), "token_pattern"),
    (lambda doc: json.dumps(edited(doc, ngram_range=[2, 1])), "ngram_range"),
])
def test_bad_files_raise_load_error_naming_the_file(binary_model_file, tmp_path, corrupt, message):
    bad = tmp_path / MODEL_FILE_NAME
    bad.write_text(corrupt(json.loads(binary_model_file.read_text())))
    with pytest.raises(ModelLoadError, match=message) as caught:
        load(bad)
    assert str(caught.value).startswith(f"{bad}: ")


def test_missing_file_raises_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match=str(tmp_path / MODEL_FILE_NAME)):
        load(tmp_path)


def test_export_refuses_what_the_format_cannot_express(tmp_path):
    vectorizer = sklearn_text.TfidfVectorizer(analyzer="char")
    features = vectorizer.fit_transform([sentence[0] for sentence in SENTENCES])
    classifier = sklearn_linear.LogisticRegression().fit(features, [s[1] for s in SENTENCES])
    with pytest.raises(ValueError, match="word analyzer"):
        export_sklearn(vectorizer, classifier, tmp_path)
    assert not (tmp_path / MODEL_FILE_NAME).exists()


def test_export_refuses_settings_that_load_would_refuse(tmp_path):
    vectorizer, classifier = fit({"ngram_range": (1, 9)}, 1)
    with pytest.raises(ValueError, match=r"'ngram_range' is \[1, 9\]"):
        export_sklearn(vectorizer, classifier, tmp_path)
    assert not (tmp_path / MODEL_FILE_NAME).exists()


@pytest.mark.parametrize("pattern", [
    r"(?u)\b\w\w+\b", r"(?u)\b(\w\w+)\b", r"\b\w+\b", r"\S+", r"[a-zA-Z]{2,}", r"\w{1,1000}",
    r"(?i)[a-z]+(?:'t)?", r"\d+|\w+", r"(?<!\w)\w+(?=\W)", r"[^\s,;]+",
])
def test_usual_token_patterns_pass(pattern):
    check_token_pattern(pattern)


@pytest.mark.parametrize("pattern, message", [
    (r"(?:a|ab)*c", "repeats a part that has choices of its own"),
    (r"(\w+)*!", "repeats a part that has choices of its own"),
    (r"(\w)\1", "backreference"),
    (r"\w+\s*\w+", "has 3 unbounded repeats"),
    ("a?" * 9 + "a" * 9, "can be tried 512 ways at each position"),
    (r"(?:[ab]|[cd]{1,20}){1,20}", "repeats a part that has choices"),
])
def test_token_patterns_that_can_backtrack_badly_are_refused(pattern, message):
    with pytest.raises(ValueError, match=message):
        check_token_pattern(pattern)


def test_file_holds_the_documented_keys(binary_model_file):
    document = json.loads(binary_model_file.read_text())
    assert document["format"] == FORMAT
    assert {"labels", "vocabulary", "idf", "coef", "intercept", "ngram_range", "lowercase",
            "token_pattern", "sublinear_tf", "norm"} <= document.keys()
    assert len(document["coef"]) == 1 and len(document["coef"][0]) == len(document["vocabulary"])
