"""`litdesk compare`: metrics per model and disagreements, as a table or one JSON line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from litdesk.cli import main
from litdesk.core import paths
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import load_model
from litdesk.core.predict import predict_job
from tests.helpers import run_litdesk

BERT, BOW = paths.DEMO_MODELS
CLASSIFIER_METRICS = {"accuracy", "precision", "recall", "f1", "auc", "aucpr"}
demo = pytest.mark.skipif(not paths.DEMO_DATASET.exists(), reason="demo not built")


def predicted_labels(model_path):
    """The model's label per row of the demo, predicted here (read from the shared cache)."""
    dataset = load_dataset(paths.DEMO_DATASET)
    predictions = run_job(predict_job(load_model(model_path), dataset, cache=ResultCache()))
    field, argmax, vocab = predictions.predicted_labels()
    return np.asarray(vocab, dtype=object)[argmax]


@pytest.mark.slow
@demo
def test_json_on_the_demo_has_the_metrics_and_the_disagreements(litdesk_home):
    result = run_litdesk("compare", "--model", BERT, "--model", BOW, "--data",
                         paths.DEMO_DATASET, "--json", home=litdesk_home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert set(report) == {"models", "disagreements"}
    assert set(report["models"]) == {"bert_tiny", "bow_linear"}
    for values in report["models"].values():
        assert CLASSIFIER_METRICS <= set(values)
        assert values["count"] == 1418 and 0.5 < values["accuracy"] <= 1
    differ = predicted_labels(BERT) != predicted_labels(BOW)
    assert report["disagreements"] == int(differ.sum())
    assert abs(report["disagreements"] - 75) <= 3  # 75 where the demo was built; BLAS may tip a tie


@demo
def test_the_table_stars_the_best_and_counts_disagreements(capsys):
    assert main(["compare", "--model", str(BOW), "--model", str(BOW), "--data",
                 str(paths.DEMO_DATASET)]) == 0
    out = capsys.readouterr().out
    assert "sentiment: 1,418 rows" in out
    assert "bow_linear (2)" in out  # the same folder twice: names stay apart
    assert "They disagree on 0 of 1,418 rows." in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert header.split()[:4] == ["model", "gold", "count", "accuracy"]


@demo
def test_a_single_model_with_an_explicit_gold_column(capsys):
    assert main(["compare", "--model", str(BOW), "--data", str(paths.DEMO_DATASET), "--label",
                 "topic", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)["models"]["bow_linear"]
    assert values["count"] == 0 and values["excluded"] == 1418  # topics are not sentiments
    assert values["accuracy"] is None


@demo
def test_bad_inputs_are_one_line_on_stderr_with_exit_code_2(tmp_path, capsys):
    data = tmp_path / "numbers.csv"
    data.write_text("x,y\n1,2\n", encoding="utf-8")
    cases = [
        (["--model", str(tmp_path / "missing"), "--data", str(paths.DEMO_DATASET)],
         "missing: no such file"),
        (["--model", str(BOW), "--data", str(data)], "needs text"),
        (["--model", str(BOW), "--data", str(tmp_path / "nope.csv")], "nope.csv"),
        (["--model", str(BOW), "--data", str(paths.DEMO_DATASET), "--label", "grade"],
         "no column 'grade'"),
    ]
    for args, expected in cases:
        assert main(["compare", *args]) == 2
        captured = capsys.readouterr()
        assert expected in captured.err and captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1
