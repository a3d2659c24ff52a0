"""Out-of-fold probabilities of a text baseline at scale: litdesk against cross_val_predict.

    .venv/bin/python benchmarks/baselines.py [--rows 1000000] [--folds 5]

Generates review-like texts with a label that follows their words (some noise), then times
``litdesk.core.baselines.out_of_sample_probabilities`` and scikit-learn's
``cross_val_predict(method="predict_proba")`` on the same pipeline and folds, in the same run.
Prints one JSON line: seconds, accuracy of each, and whether their probabilities agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litdesk.core import baselines  # noqa: E402

GOOD = ["great", "lovely", "superb", "good", "fine", "excellent"]
BAD = ["awful", "poor", "boring", "bad", "dull", "terrible"]
FILLER = ["the", "film", "plot", "acting", "was", "really", "quite", "story", "and", "music",
          "ending", "cast", "a", "bit", "very", "overall"]


def reviews(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    noisy = rng.random(rows) < 0.1
    fillers = rng.choice(FILLER, size=(rows, 8))
    opinion = np.where(labels ^ noisy, rng.choice(GOOD, rows), rng.choice(BAD, rows))
    texts = [" ".join(words[:4]) + f" {word} " + " ".join(words[4:])
             for words, word in zip(fillers.tolist(), opinion.tolist())]
    return pa.table({"text": texts, "label": np.where(labels, "pos", "neg").astype(object)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, the best counts")
    args = parser.parse_args()
    table = reviews(args.rows)
    gold = np.asarray(table.column("label").to_pylist(), dtype=object)

    baselines.out_of_sample_probabilities(reviews(200, seed=1), ["text"], "label", folds=2)
    from sklearn.model_selection import StratifiedKFold, cross_val_predict  # both warmed up

    columns = baselines.input_columns_by_kind(table, ["text"])

    def ours():
        return baselines.out_of_sample_probabilities(table, ["text"], "label",
                                                     folds=args.folds, seed=0)[0]

    def theirs():
        frame = baselines.feature_frame(table, columns)
        return cross_val_predict(
            baselines.make_estimator(columns, seed=0, n_rows=args.rows), frame, gold,
            cv=StratifiedKFold(args.folds, shuffle=True, random_state=0), method="predict_proba")

    seconds = {"litdesk": [], "cross_val_predict": []}
    results = {}
    for name, work in [("litdesk", ours), ("cross_val_predict", theirs)] * args.repeats:
        start = time.perf_counter()  # alternated: a busy machine slows neither side alone
        results[name] = work()
        seconds[name].append(time.perf_counter() - start)
    litdesk_s, sklearn_s = min(seconds["litdesk"]), min(seconds["cross_val_predict"])
    ours, theirs = results["litdesk"], results["cross_val_predict"]
    classes = sorted(set(gold.tolist()))
    accuracy = {name: float((np.asarray(classes, dtype=object)[p.argmax(1)] == gold).mean())
                for name, p in (("litdesk", ours), ("cross_val_predict", theirs))}
    print(json.dumps({"rows": args.rows, "folds": args.folds,
                      "litdesk_s": round(litdesk_s, 2), "cross_val_predict_s": round(sklearn_s, 2),
                      "ratio": round(litdesk_s / sklearn_s, 3), "accuracy": accuracy,
                      "max_probability_difference": float(np.abs(ours - theirs).max())}))


if __name__ == "__main__":
    main()
