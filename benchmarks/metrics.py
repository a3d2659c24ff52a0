"""Metrics of two binary classifiers on a million rows: litdesk against scikit-learn.

    .venv/bin/python benchmarks/metrics.py [--rows 1000000] [--json]

Prints one JSON line of seconds for the whole-dataset metrics table of two models
(accuracy, precision, recall, F1, AUC, AUC-PR each), for a 100,000-row selection, and for
scikit-learn's own functions computing the same six numbers, in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa

from litdesk.api import CategoryLabel, Dataset, MulticlassPreds
from litdesk.core.metrics import metrics_table
from litdesk.core.predict import Predictions

VOCAB = ("negative", "positive")


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    rng = np.random.default_rng(9)
    gold_positive = rng.random(args.rows) < 0.5
    dataset = Dataset(pa.table({"label": np.where(gold_positive, *VOCAB[::-1])}),
                      {"label": CategoryLabel(vocab=VOCAB)}, "bench")
    spec = {"probas": MulticlassPreds(vocab=VOCAB, parent="label")}
    predictions = {}
    for name in ("a", "b"):  # scores that lean towards the truth, as a trained model's do
        positive = np.clip(0.5 * rng.random(args.rows) + 0.5 * gold_positive
                           + rng.normal(0, 0.2, args.rows), 0, 1).astype(np.float32)
        predictions[name] = Predictions(name, "bench", {"probas": np.column_stack(
            [1 - positive, positive])}, spec)
    selection = np.sort(rng.choice(args.rows, 100_000, replace=False))

    def with_sklearn() -> None:
        from sklearn import metrics

        for prediction in predictions.values():
            score = prediction.fields["probas"][:, 1]
            predicted = score >= 0.5
            metrics.accuracy_score(gold_positive, predicted)
            metrics.precision_recall_fscore_support(gold_positive, predicted, average="binary")
            metrics.roc_auc_score(gold_positive, score)
            metrics.average_precision_score(gold_positive, score)

    result = {
        "rows": args.rows,
        "litdesk_dataset_s": round(best_of(3, lambda: metrics_table(
            predictions, dataset, {"all": None})), 3),
        "litdesk_selection_s": round(best_of(3, lambda: metrics_table(
            predictions, dataset, {"selection": selection})), 3),
        "sklearn_dataset_s": round(best_of(3, with_sklearn), 3),
    }
    result["speedup"] = round(result["sklearn_dataset_s"] / result["litdesk_dataset_s"], 2)
    if not args.json:
        print("Two binary classifiers' metrics: litdesk vs scikit-learn's functions")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
