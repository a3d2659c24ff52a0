"""Finding a million rows of cached predictions again: one columnar entry against one entry
per example, in the same run.

    .venv/bin/python benchmarks/cache.py [--rows 1000000] [--dims 16] [--json]

A fast stand-in model (two class probabilities and a --dims embedding per row) predicts a
dataset of short reviews twice: once as rows loaded from a file (stored as one entry of
columns, memory-mapped when read) and once as rows made in litdesk (stored one by one, the
way every row was before). Then a new cache reads each back, as on restarting: the warm
lookups are the figures that matter. Prints one JSON line of seconds and MB, with the time
to evict 15 % of the per-example cache past its cap.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, Embeddings, Model, MulticlassPreds, TextSegment
from litdesk.core.cache import ResultCache
from litdesk.core.datapoints import ORIGIN
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job

VOCAB = ("negative", "positive")
WORDS = ("good", "bad", "fine", "awful", "great", "plot", "acting", "film", "fun", "boring")


class FastModel(Model):
    """Scores from text lengths, vectorised: the model costs next to nothing."""

    name = "fast"

    def __init__(self, dims: int) -> None:
        self.dims = dims

    def input_spec(self):
        return {"text": TextSegment()}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=VOCAB), "emb": Embeddings()}

    def fingerprint(self) -> str:
        return f"benchmark-fast-model-{self.dims}"

    def max_minibatch_size(self) -> int:
        return 1024

    def predict(self, inputs):
        lengths = np.array([len(example["text"]) for example in inputs], dtype=np.float32)
        positive = (np.sin(lengths) + 1) / 2
        emb = np.outer(lengths, np.arange(1, self.dims + 1, dtype=np.float32)) % 7
        return [{"probas": np.array([1 - p, p], np.float32), "emb": e}
                for p, e in zip(positive, emb)]


def reviews(rows: int) -> pa.Table:
    rng = np.random.default_rng(4)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), (rows, 6))]
    return pa.table({"text": [f"{i} " + " ".join(row) for i, row in enumerate(words)]})


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=16, help="embedding width")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    table = reviews(args.rows)
    spec = {"text": TextSegment()}
    loaded = Dataset(table, spec, "reviews")  # rows from a file: one entry of columns
    made = Dataset(table.append_column(ORIGIN, pa.array(["benchmark"] * args.rows)), spec,
                   "reviews")  # the same rows as if made here: one entry per example
    model = FastModel(args.dims)
    result: dict[str, object] = {"rows": args.rows, "dims": args.dims}
    with tempfile.TemporaryDirectory() as home:
        for name, dataset in (("columnar", loaded), ("per_row", made)):
            folder = Path(home) / name
            caches = [ResultCache(folder, max_bytes=2 ** 40) for _run in range(2)]
            cold, first = timed(lambda: run_job(predict_job(model, dataset, cache=caches[0])))
            caches[0].close()
            warm, again = timed(lambda: run_job(predict_job(model, dataset, cache=caches[1])))
            caches[1].close()
            np.testing.assert_array_equal(first.fields["emb"], again.fields["emb"])
            result[f"{name}_cold_s"] = round(cold, 2)
            result[f"{name}_warm_s"] = round(warm, 3)
            result[f"{name}_cache_mb"] = folder_mb(folder)
        result["warm_speedup"] = round(result["per_row_warm_s"] / result["columnar_warm_s"], 1)
        per_row = ResultCache(Path(home) / "per_row")
        per_row.max_bytes = int(per_row.size_bytes() / 0.9 * 0.85)  # evicts 15 % of it
        result["per_row_evict_15pct_s"] = round(timed(per_row.trim)[0], 2)
    if not args.json:
        print("Warm lookup of a dataset's predictions: one columnar entry vs one per example")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
