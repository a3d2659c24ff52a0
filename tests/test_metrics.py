"""Metrics equal scikit-learn's, scipy's, sacrebleu's and rouge-score's on fixtures; groups,
ranking and disagreements."""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics as sk
from sklearn.preprocessing import label_binarize

from litdesk.api import (CategoryLabel, Dataset, MulticlassPreds, RegressionScore, Scalar,
                         TextSegment)
from litdesk.core.jobs import run_job
from litdesk.core.metrics import (MetricsError, classification_metrics, facet_groups,
                                  generation_metrics, gold_column, metric_output, metrics_table,
                                  model_metrics, multilabel_fields, multilabel_metrics,
                                  paired_metrics, rank_models, regression_metrics)
from litdesk.core.outcomes import compute_outcomes
from litdesk.core.predict import Predictions, predict_job
from tests.fakes import KeywordModel

VOCAB3 = ("cat", "dog", "bird")


def three_class(n=400, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    probs = rng.dirichlet([1, 1, 1], n)
    probs[np.arange(n), truth] += 0.3  # better than chance, so that the values differ
    probs /= probs.sum(axis=1, keepdims=True)
    return truth, probs.astype(np.float32)


def labels(indices, vocab=VOCAB3):
    return np.asarray(vocab, dtype=object)[indices]


def test_three_classes_equal_scikit_learn():
    truth, probs = three_class()
    result = classification_metrics(labels(truth), probs, VOCAB3)
    predicted = probs.argmax(axis=1)
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    assert result["precision"] == pytest.approx(sk.precision_score(truth, predicted,
                                                                   average="macro"))
    assert result["recall"] == pytest.approx(sk.recall_score(truth, predicted, average="macro"))
    assert result["f1"] == pytest.approx(sk.f1_score(truth, predicted, average="macro"))
    assert result["auc"] == pytest.approx(sk.roc_auc_score(truth, probs, multi_class="ovr"))
    assert result["aucpr"] == pytest.approx(sk.average_precision_score(
        label_binarize(truth, classes=[0, 1, 2]), probs, average="macro"))
    assert (result["count"], result["excluded"]) == (400, 0)


def test_binary_with_a_threshold_equals_scikit_learn():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 500)
    positive = np.clip(truth * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # ties included
    probs = np.column_stack([1 - positive, positive])
    vocab = ("no", "yes")
    for threshold in (0.2, 0.5, 0.8):
        result = classification_metrics(labels(truth, vocab), probs, vocab, threshold=threshold)
        predicted = (positive >= threshold).astype(int)
        assert result["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
        assert result["precision"] == pytest.approx(sk.precision_score(truth, predicted))
        assert result["recall"] == pytest.approx(sk.recall_score(truth, predicted))
        assert result["f1"] == pytest.approx(sk.f1_score(truth, predicted))
        assert result["auc"] == pytest.approx(sk.roc_auc_score(truth, positive))
        assert result["aucpr"] == pytest.approx(sk.average_precision_score(truth, positive))


def test_the_positive_label_picks_the_class_measured():
    truth, probs = three_class(300, seed=2)
    binary_truth = (truth == 0).astype(int)  # "no" is the positive class here
    probs = np.column_stack([probs[:, 0], 1 - probs[:, 0]])
    vocab = ("no", "yes")
    result = classification_metrics(labels(1 - binary_truth, vocab), probs, vocab,
                                    threshold=0.4, positive_label="no")
    predicted = (probs[:, 0] >= 0.4).astype(int)
    assert result["precision"] == pytest.approx(sk.precision_score(binary_truth, predicted))
    assert result["recall"] == pytest.approx(sk.recall_score(binary_truth, predicted))
    assert result["auc"] == pytest.approx(sk.roc_auc_score(binary_truth, probs[:, 0]))


def test_a_class_missing_from_the_rows_is_left_out_of_the_averages():
    truth, probs = three_class(300, seed=3)
    kept = truth != 2  # no "bird" in gold; the model still predicts some
    truth, probs = truth[kept], probs[kept]
    predicted = probs.argmax(axis=1)
    assert (predicted == 2).any()
    result = classification_metrics(labels(truth), probs, VOCAB3)
    assert result["f1"] == pytest.approx(sk.f1_score(truth, predicted, average="macro"))
    assert result["precision"] == pytest.approx(sk.precision_score(truth, predicted,
                                                                   average="macro"))
    onehot = label_binarize(truth, classes=[0, 1, 2])[:, :2]
    assert result["auc"] == pytest.approx(sk.roc_auc_score(onehot, probs[:, :2]))
    assert result["aucpr"] == pytest.approx(sk.average_precision_score(onehot, probs[:, :2]))


def test_one_class_only_gives_nan_areas_not_an_exception():
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    result = classification_metrics(["yes", "yes", "yes"], probs, ("no", "yes"))
    assert np.isnan(result["auc"]) and np.isnan(result["aucpr"])
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_nulls_and_unknown_gold_values_are_excluded_and_counted():
    truth, probs = three_class(200, seed=4)
    gold = labels(truth).astype(object)
    gold[[3, 50, 77]] = None
    gold[[10, 11]] = "dgo"  # a typo
    result = classification_metrics(pa.array(gold), probs, VOCAB3)
    kept = np.ones(200, bool)
    kept[[3, 50, 77, 10, 11]] = False
    assert (result["count"], result["excluded"]) == (195, 5)
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(truth[kept],
                                                                 probs[kept].argmax(axis=1)))
    assert result["auc"] == pytest.approx(sk.roc_auc_score(truth[kept], probs[kept],
                                                           multi_class="ovr"))
    empty = classification_metrics([None, None], probs[:2], VOCAB3)
    assert empty["count"] == 0 and np.isnan(empty["accuracy"])


def test_bad_classification_inputs_are_one_line_errors():
    probs = np.full((2, 3), 1 / 3)
    with pytest.raises(MetricsError, match="threshold applies to two classes"):
        classification_metrics(["cat", "dog"], probs, VOCAB3, threshold=0.5)
    with pytest.raises(MetricsError, match="3 gold values for 2 predictions"):
        classification_metrics(["cat", "dog", "cat"], probs, VOCAB3)
    with pytest.raises(MetricsError, match="positive label 'fish'"):
        classification_metrics(["cat", "dog"], probs[:, :2], ("cat", "dog"),
                               positive_label="fish")


def test_regression_equals_scikit_learn_and_scipy():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=300)
    guess = truth + rng.normal(scale=0.5, size=300)
    gold = truth.astype(object)
    gold[7] = None
    result = regression_metrics(gold, guess)
    kept = np.arange(300) != 7
    assert result["mse"] == pytest.approx(sk.mean_squared_error(truth[kept], guess[kept]))
    assert result["pearsonr"] == pytest.approx(stats.pearsonr(truth[kept], guess[kept])[0])
    assert result["spearmanr"] == pytest.approx(stats.spearmanr(truth[kept], guess[kept])[0])
    assert (result["count"], result["excluded"]) == (299, 1)
    constant = regression_metrics([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert np.isnan(constant["pearsonr"]) and constant["mse"] == pytest.approx(
        sk.mean_squared_error([1, 2, 3], [0.5] * 3))
    with pytest.raises(MetricsError, match="gold values are not numbers"):
        regression_metrics(["high", "low"], [1.0, 2.0])


def test_multilabel_equals_scikit_learn_sample_averages():
    tags = ("sports", "politics", "tech")
    rng = np.random.default_rng(6)
    truth = rng.random((120, 3)) < 0.4
    scores = np.clip(truth * 0.4 + rng.random((120, 3)) * 0.6, 0, 1)
    as_strings = ["|".join(t for t, on in zip(tags, row) if on) for row in truth]
    as_lists = [[t for t, on in zip(tags, row) if on] for row in truth]
    predicted = scores >= 0.5
    for gold in (as_strings, pa.array(as_lists)):
        result = multilabel_metrics(gold, scores, tags)
        assert result["exact_match"] == pytest.approx(sk.accuracy_score(truth, predicted))
        for name, function in (("precision", sk.precision_score), ("recall", sk.recall_score),
                               ("f1", sk.f1_score)):
            assert result[name] == pytest.approx(function(truth, predicted, average="samples",
                                                          zero_division=0))
    gold = list(as_strings)
    gold[0], gold[1] = None, "sports, chess"
    result = multilabel_metrics(gold, scores, tags)
    assert (result["count"], result["excluded"]) == (118, 2)
    assert result["exact_match"] == pytest.approx(sk.accuracy_score(truth[2:], predicted[2:]))


def test_paired_metrics_are_swap_rate_and_scipy_jensen_shannon():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet([1, 1, 1], 50)
    original, pair = np.arange(0, 25), np.arange(25, 50)
    result = paired_metrics(probs[original], probs[pair])
    swaps = probs[original].argmax(axis=1) != probs[pair].argmax(axis=1)
    assert result["swap_rate"] == pytest.approx(swaps.mean())
    assert result["mean_jsd"] == pytest.approx(np.mean(
        [distance.jensenshannon(probs[i], probs[j]) ** 2 for i, j in zip(original, pair)]))
    assert result["count"] == 25


def test_generation_metrics_equal_sacrebleu_and_rouge_score():
    import sacrebleu
    from rouge_score import rouge_scorer

    references = ["the cat sat on the mat", "a quick brown fox", "hello world", None]
    generated = ["the cat sat on a mat", "a quick brown fox", "goodbye world", "unused"]
    result = generation_metrics(references, generated)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(
        generated[:3], [references[:3]], smooth_method="floor", smooth_value=0.1,
        tokenize="none", use_effective_order=True).score)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert result["rouge_l"] == pytest.approx(np.mean(
        [scorer.score(r, g)["rougeL"].fmeasure for r, g in zip(references[:3], generated)]))
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert result["excluded"] == 1


def make_dataset(n=12):
    rng = np.random.default_rng(8)
    table = pa.table({
        "text": [f"text {i}" for i in range(n)],
        "label": ["positive" if i % 3 else "negative" for i in range(n)],
        "topic": [None if i == 5 else ("music", "books")[i % 2] for i in range(n)],
        "score": rng.random(n),
        "stars": [i % 3 for i in range(n)],
    })
    spec = {"text": TextSegment(), "label": CategoryLabel(vocab=("negative", "positive")),
            "topic": CategoryLabel(vocab=("music", "books")), "score": Scalar(),
            "stars": Scalar()}
    return Dataset(table, spec, "reviews")


def test_facets_by_category_and_by_quantile_bins():
    dataset = make_dataset(12)
    topics = facet_groups(dataset, "topic")
    assert list(topics) == ["topic = music", "topic = books", "topic missing"]
    assert topics["topic missing"].tolist() == [5]
    assert topics["topic = music"].tolist() == [0, 2, 4, 6, 8, 10]
    bins = facet_groups(dataset, "score", bins=4)
    assert len(bins) == 4 and sum(len(rows) for rows in bins.values()) == 12
    score = dataset.table.column("score").to_numpy()
    for label, rows in bins.items():
        low, high = (float(v) for v in label.split("[")[1].rstrip(")]").split(", "))
        assert np.all((score[rows] >= low - 1e-4) & (score[rows] <= high + 1e-4))
    assert list(facet_groups(dataset, "stars", bins=5)) == ["stars = 0", "stars = 1",
                                                            "stars = 2"]
    with pytest.raises(MetricsError, match="no column 'nope'"):
        facet_groups(dataset, "nope")


def test_best_and_delta_per_metric():
    values = {"a": {"accuracy": 0.9, "mse": 0.30, "auc": np.nan},
              "b": {"accuracy": 0.8, "mse": 0.20, "auc": 0.7},
              "c": {"accuracy": 0.9, "mse": 0.25, "auc": 0.6}}
    best, delta = rank_models(values)
    assert best["a"] == {"accuracy"} and best["b"] == {"mse", "auc"} and best["c"] == {
        "accuracy"}
    assert delta["b"]["accuracy"] == pytest.approx(-0.1)
    assert delta["a"]["mse"] == pytest.approx(0.1) and delta["b"]["mse"] == 0
    assert "auc" not in delta["a"]
    _best, to_c = rank_models(values, reference="c")
    assert to_c["b"]["accuracy"] == pytest.approx(-0.1) and to_c["c"]["mse"] == 0
    alone, _ = rank_models({"a": values["a"]})
    assert alone["a"] == set()


def keyword_predictions(dataset, name="keywords", bias=0.0):
    return run_job(predict_job(KeywordModel(name, bias), dataset))


def review_dataset():
    texts = ["good phone", "bad phone", "great fun", "awful", "fine fine", "meh", "love it",
             "broken"]
    gold = ["positive", "negative", "positive", "negative", "negative", "positive",
            "positive", None]
    table = pa.table({"text": texts, "label": gold, "stars": [5, 1, 4, 1, 3, 3, 5, 1]})
    spec = {"text": TextSegment(), "label": CategoryLabel(vocab=("negative", "positive")),
            "stars": Scalar()}
    return Dataset(table, spec, "reviews")


def test_model_metrics_and_the_table_over_groups():
    dataset = review_dataset()
    plain, eager = keyword_predictions(dataset), keyword_predictions(dataset, "eager", 3.0)
    assert gold_column(dataset, plain.spec) == "label"
    whole = model_metrics(plain, dataset)
    predicted = np.asarray(["negative", "positive"], object)[plain.fields["probas"].argmax(1)]
    gold = np.asarray(dataset.table.column("label").to_pylist(), object)
    assert whole["accuracy"] == pytest.approx(np.mean(predicted[:7] == gold[:7]))
    assert whole["excluded"] == 1
    rows = np.array([0, 1, 2])
    assert model_metrics(plain, dataset, rows)["accuracy"] == pytest.approx(
        np.mean(predicted[rows] == gold[rows]))
    table = metrics_table({"keywords": plain, "eager": eager}, dataset,
                          {"all": None, "first three": rows})
    assert [(e.group, e.model) for e in table.entries] == [
        ("all", "keywords"), ("all", "eager"), ("first three", "keywords"),
        ("first three", "eager")]
    assert table.entry("first three", "keywords").values == model_metrics(plain, dataset, rows)
    entry = table.entry("all", "keywords")
    other = table.entry("all", "eager")
    assert ("accuracy" in entry.best) == (entry.values["accuracy"] >= other.values["accuracy"])
    assert entry.delta["accuracy"] == pytest.approx(
        entry.values["accuracy"] - max(entry.values["accuracy"], other.values["accuracy"]))
    assert table.metric_names[:4] == ["accuracy", "precision", "recall", "f1"]


def test_gold_column_from_parent_binding_or_name():
    dataset = review_dataset()
    spec = {"probas": MulticlassPreds(vocab=("negative", "positive"), parent="sentiment")}
    assert gold_column(dataset, spec, binding={"sentiment": "label"}) == "label"
    assert gold_column(dataset, spec) == "label"  # no column "sentiment": named like a label
    renamed = dataset.with_spec({**dataset.spec(), "label": TextSegment()})
    assert gold_column(renamed, spec) is None  # a classifier's gold is categorical
    assert gold_column(dataset, {"score": RegressionScore(parent="stars")}) == "stars"
    multi = {"probas/a": Scalar(min_val=0.0, max_val=1.0),
             "probas/b": Scalar(min_val=0.0, max_val=1.0), "other": Scalar()}
    assert multilabel_fields(multi) == {"a": "probas/a", "b": "probas/b"}
    assert metric_output(multi) == ("multilabel", "probas/a")
    assert gold_column(dataset, {"emb": Scalar()}) is None


def test_regression_and_multilabel_models_are_measured_by_their_family():
    dataset = review_dataset()
    stars = dataset.table.column("stars").to_numpy().astype(float)
    regressor = Predictions("reg", "reviews", {"score": stars + 0.5},
                            {"score": RegressionScore(parent="stars")})
    assert model_metrics(regressor, dataset)["mse"] == pytest.approx(0.25)
    tagged = Dataset(dataset.table.append_column("tags", pa.array(
        ["a|b", "a", "", "b", "a", "b", "a|b", None])), {**dataset.spec(),
                                                       "tags": TextSegment()}, "tagged")
    scores = {"probas/a": np.array([.9, .8, .1, .2, .7, .1, .9, .5]),
              "probas/b": np.array([.9, .2, .1, .8, .1, .9, .2, .5])}
    spec = {name: Scalar(min_val=0.0, max_val=1.0) for name in scores}
    result = model_metrics(Predictions("multi", "tagged", scores, spec), tagged, gold="tags")
    assert result["exact_match"] == pytest.approx(6 / 7) and result["excluded"] == 1


def test_disagreements_compare_labels_by_name():
    dataset = review_dataset()
    plain, eager = keyword_predictions(dataset), keyword_predictions(dataset, "eager", 3.0)
    flipped = Predictions("flipped", "reviews", {"probas": plain.fields["probas"][:, ::-1]},
                          {"probas": MulticlassPreds(vocab=("positive", "negative"))})

    def disagreements(predictions):
        return np.flatnonzero(compute_outcomes(dataset, predictions).disagree)

    assert disagreements({"a": plain, "b": flipped}).size == 0
    expected = np.flatnonzero(plain.fields["probas"].argmax(1) != eager.fields["probas"].argmax(1))
    assert expected.size and disagreements({"a": plain, "b": eager}).tolist() == expected.tolist()
    assert disagreements({"a": plain}).size == 0
