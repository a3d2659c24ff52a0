"""The data-quality audit and the projector's clusters at 100,000 and 1,000,000 rows.

    .venv/bin/python benchmarks/audit.py [--rows 100000 1000000] [--json]

A synthetic tabular set (16 numbers, 5 classes in Gaussian blobs, 5 % of the labels flipped,
1 % of the rows near copies of others). For each size it prints the seconds of the audit
given a model's out-of-sample probabilities (confident learning, faiss outliers and
near-duplicates, exact duplicates), of the audit that cross-validates its own baseline
(5 folds; only up to --cv-rows rows, 100,000 by default), and of the clusters of a 2-D layout
(HDBSCAN on a 20,000-point sample, every point assigned by faiss). In the same run, as the
baseline of the clusters, scikit-learn's HDBSCAN on all points of the smallest size (at most
100,000).
Recall and precision of the flipped labels are printed too.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa

from litdesk.api import CategoryLabel, Dataset, MulticlassPreds, Scalar
from litdesk.core.clusters import cluster_job
from litdesk.core.jobs import run_job
from litdesk.core.predict import Predictions
from litdesk.core.quality import audit_job

CLASSES = tuple(f"c{i}" for i in range(5))
FEATURES = 16


def synthetic(rows: int, seed: int = 0):
    """The dataset, a model's probabilities that lean towards the truth, the flipped rows and
    a 2-D layout."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), rows)
    centres = rng.normal(0, 3, (len(CLASSES), FEATURES))
    features = (centres[truth] + rng.normal(0, 1, (rows, FEATURES))).astype(np.float32)
    copies = rng.choice(rows, rows // 100, replace=False)
    features[copies] = features[(copies + 1) % rows] + rng.normal(0, 1e-4, (len(copies),
                                                                           FEATURES))
    truth[copies] = truth[(copies + 1) % rows]
    labels = truth.copy()
    flipped = rng.choice(rows, rows // 20, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, len(CLASSES), len(flipped))) \
        % len(CLASSES)
    table = pa.table({**{f"x{i}": features[:, i] for i in range(FEATURES)},
                      "label": pa.array(np.asarray(CLASSES)[labels])})
    spec = {**{f"x{i}": Scalar() for i in range(FEATURES)},
            "label": CategoryLabel(vocab=list(CLASSES))}
    logits = rng.normal(0, 1, (rows, len(CLASSES)))
    logits[np.arange(rows), truth] += 3.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predictions = {"model": Predictions("model", "bench", {"probas": probabilities.astype(
        np.float32)}, {"probas": MulticlassPreds(vocab=list(CLASSES), parent="label")})}
    layout = features[:, :2] @ rng.normal(0, 1, (2, 2)).astype(np.float32)
    return Dataset(table, spec, "bench"), predictions, np.sort(flipped), layout


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cv-rows", type=int, default=100_000,
                        help="cross-validate the baseline only up to this many rows")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    for rows in args.rows:
        dataset, predictions, flipped, layout = synthetic(rows)
        seconds, audit = timed(lambda: run_job(audit_job(dataset, "label",
                                                         predictions=predictions)))
        found = audit.label_issue_rows()
        hits = np.isin(found, flipped).sum()
        figures[f"audit_with_model_s@{rows}"] = round(seconds, 2)
        figures[f"recall@{rows}"] = round(float(hits / len(flipped)), 3)
        figures[f"precision@{rows}"] = round(float(hits / max(1, len(found))), 3)
        if not args.json:
            print(f"{rows:>9,} rows: audit with a model's probabilities {seconds:6.1f} s "
                  f"(flipped labels: recall {hits / len(flipped):.2f}, precision "
                  f"{hits / max(1, len(found)):.2f}; {audit.summary()})", flush=True)
        if rows <= args.cv_rows:
            seconds, audit = timed(lambda: run_job(audit_job(dataset, "label")))
            found = audit.label_issue_rows()
            hits = np.isin(found, flipped).sum()
            figures[f"audit_cross_validated_s@{rows}"] = round(seconds, 2)
            if not args.json:
                print(f"{rows:>9,} rows: audit cross-validating a baseline {seconds:6.1f} s "
                      f"(recall {hits / len(flipped):.2f}, precision "
                      f"{hits / max(1, len(found)):.2f})", flush=True)
        seconds, clusters = timed(lambda: run_job(cluster_job(layout)))
        figures[f"clusters_s@{rows}"] = round(seconds, 2)
        if not args.json:
            print(f"{rows:>9,} rows: clusters of the layout {seconds:6.1f} s "
                  f"({clusters.max() + 1} clusters)", flush=True)
    smallest = min(min(args.rows), 100_000)  # scikit-learn's HDBSCAN takes hours at 1M
    _, _, _, layout = synthetic(smallest)
    if f"clusters_s@{smallest}" not in figures:
        figures[f"clusters_s@{smallest}"] = round(timed(lambda: run_job(cluster_job(layout)))[0],
                                                  2)
    from sklearn.cluster import HDBSCAN

    minimum = max(8, int(0.01 * smallest))
    seconds, _ = timed(lambda: HDBSCAN(min_cluster_size=minimum, min_samples=10, copy=True)
                       .fit_predict(layout))
    figures[f"sklearn_hdbscan_all_points_s@{smallest}"] = round(seconds, 2)
    figures[f"clusters_speedup@{smallest}"] = round(seconds / figures[f"clusters_s@{smallest}"],
                                                    1)
    if not args.json:
        print(f"{smallest:>9,} rows: scikit-learn HDBSCAN on every point {seconds:6.1f} s "
              f"({figures[f'clusters_speedup@{smallest}']}x the sampled clusters)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
