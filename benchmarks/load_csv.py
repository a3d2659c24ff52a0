"""Time litdesk's CSV loading against pandas.read_csv on a generated 1,000,000-row file.

Usage: python benchmarks/load_csv.py [--rows N] [--unquoted]

Writes a CSV with a free-text column (quoted where it holds commas), a three-way label, a
float score and an int into a temporary folder, then times ``load_dataset`` (parse, spec
inference and casts included) and ``pandas.read_csv``, alternating, best of three each.
Prints one JSON line: {"rows", "litdesk_s", "pandas_s", "speedup"}.

``--unquoted`` leaves commas out of the text, so that the file holds no quote at all and
pyarrow may skip its slower quote-aware splitting (the loader checks for quotes first).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

from litdesk.core.loaders import load_dataset

WORDS = ("the a film movie plot acting was is great terrible boring superb , . and of to it "
         "story characters director scenes music ending slow funny moving dull brilliant "
         "not very really too much little best worst ever seen").split()
LABELS = ("negative", "neutral", "positive")
REPEATS = 3


def write_csv(path: Path, rows: int, unquoted: bool = False, seed: int = 0) -> None:
    """Write ``rows`` rows as Python's csv module (and pandas) do: quotes only where needed."""
    rng = random.Random(seed)
    words = [word for word in WORDS if word != ","] if unquoted else WORDS
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label", "score", "count"])
        writer.writerows(
            (" ".join(rng.choices(words, k=rng.randint(5, 30))), rng.choice(LABELS),
             rng.random(), rng.randrange(1000))
            for _ in range(rows))


def seconds_to_load(function, path: Path) -> float:
    start = time.perf_counter()
    result = function(path)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--unquoted", action="store_true", help="text without commas or quotes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reviews.csv"
        write_csv(path, args.rows, unquoted=args.unquoted)
        litdesk_times, pandas_times = [], []
        for _ in range(REPEATS):
            litdesk_times.append(seconds_to_load(load_dataset, path))
            pandas_times.append(seconds_to_load(pd.read_csv, path))
    litdesk_s, pandas_s = min(litdesk_times), min(pandas_times)
    print(json.dumps({"rows": args.rows, "litdesk_s": round(litdesk_s, 3),
                      "pandas_s": round(pandas_s, 3), "speedup": round(pandas_s / litdesk_s, 2)}))


if __name__ == "__main__":
    main()
