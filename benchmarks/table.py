"""Data-table queries at a million rows: litdesk's table_query beside pandas, in one run.

    .venv/bin/python benchmarks/table.py [--rows 1000000] [--repeats 3]

Prints one JSON line: for each operation the best of ``--repeats`` wall times in
milliseconds for litdesk and for pandas, their ratio, and whether both found the same rows.
"cold" sorts run on a table object never sorted before; "cached" ones reuse the full-table
order that the first sort by that column kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from litdesk.api.types import CategoryLabel, Scalar, TextSegment
from litdesk.core.table_query import RowQuery, filter_rows, sort_rows

WORDS_PER_TEXT = 10
VOCABULARY_SIZE = 2000
SPEC = {"text": TextSegment(), "label": CategoryLabel(("negative", "neutral", "positive")),
        "score": Scalar(), "count": Scalar()}


def make_table(rows: int, seed: int) -> pa.Table:
    """Texts of ten words drawn from a vocabulary, a category, a float (1% null), an int."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, rng.integers(2, 10)))
                  for _ in range(VOCABULARY_SIZE - 4)] + ["great", "Great", "grant", "GREAT"]
    vocabulary = pa.array(vocabulary)
    words = [vocabulary.take(rng.integers(0, VOCABULARY_SIZE, rows))
             for _ in range(WORDS_PER_TEXT)]
    labels = pa.array(["negative", "neutral", "positive"]).take(rng.integers(0, 3, rows))
    return pa.table({
        "text": pc.binary_join_element_wise(*words, " "),
        "label": labels,
        "score": pa.array(rng.random(rows), mask=rng.random(rows) < 0.01),
        "count": pa.array(rng.integers(0, 1000, rows)),
    })


def best_ms(operation: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """The fastest of ``repeats`` runs in milliseconds, and the operation's result."""
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = operation()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest * 1000, np.asarray(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    repeats = args.repeats

    table = make_table(args.rows, args.seed)
    frame = table.to_pandas()
    text, label, score = frame["text"], frame["label"], frame["score"]
    subset = filter_rows(table, SPEC, RowQuery("score>0.8"))

    def cold() -> pa.Table:
        """A new table object over the same buffers (zero-copy), which no sort has seen."""
        return table.select(table.column_names)

    def pandas_rows(mask: pd.Series) -> np.ndarray:
        return np.flatnonzero(mask.to_numpy())

    def pandas_order(values: pd.Series) -> np.ndarray:
        return values.sort_values(kind="stable", na_position="last").index.to_numpy()

    operations = {
        "substring_search": (
            lambda: filter_rows(table, SPEC, RowQuery("great")),
            lambda: pandas_rows(text.str.contains("great", case=False, regex=False)
                                | label.str.contains("great", case=False, regex=False))),
        "regex_search": (
            lambda: filter_rows(table, SPEC, RowQuery("/gr[a-z]+t/")),
            lambda: pandas_rows(text.str.contains("gr[a-z]+t", regex=True)
                                | label.str.contains("gr[a-z]+t", regex=True))),
        "numeric_filter": (
            lambda: filter_rows(table, SPEC, RowQuery("score>0.8")),
            lambda: pandas_rows(score > 0.8)),
        "sort_float_all_cold": (
            lambda: sort_rows(cold(), "score", False, np.arange(args.rows)),
            lambda: pandas_order(score)),
        "sort_float_all_cached": (
            lambda: sort_rows(table, "score", False, np.arange(args.rows)),
            lambda: pandas_order(score)),
        "sort_text_all_cold": (
            lambda: sort_rows(cold(), "text", False, np.arange(args.rows)),
            lambda: pandas_order(text)),
        "sort_text_all_cached": (
            lambda: sort_rows(table, "text", False, np.arange(args.rows)),
            lambda: pandas_order(text)),
        "sort_filtered_subset_by_text_cold": (
            lambda: sort_rows(cold(), "text", False, subset),
            lambda: pandas_order(text.take(subset))),
        "sort_filtered_subset_by_text_cached": (
            lambda: sort_rows(table, "text", False, subset),
            lambda: pandas_order(text.take(subset))),
    }
    report = {}
    for name, (litdesk_operation, pandas_operation) in operations.items():
        litdesk_ms, litdesk_result = best_ms(litdesk_operation, repeats)
        pandas_ms, pandas_result = best_ms(pandas_operation, repeats)
        report[name] = {
            "litdesk_ms": round(litdesk_ms, 1),
            "pandas_ms": round(pandas_ms, 1),
            "pandas_over_litdesk": round(pandas_ms / litdesk_ms, 2),
            "same_result": bool(np.array_equal(litdesk_result, pandas_result)),
            "result_rows": int(litdesk_result.size),
        }
    print(json.dumps({
        "rows": args.rows,
        "repeats": repeats,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "pandas": pd.__version__,
        "pandas_text_dtype": str(text.dtype),
        "operations": report,
    }))


if __name__ == "__main__":
    main()
