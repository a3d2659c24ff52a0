"""Training runs from a dataset, shared by ``litdesk train`` and the Train dock: which rows to
train on, and a baseline or a fine-tune from chosen rows to a saved model folder."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, TextSegment
from litdesk.core.jobs import Job, Progress


def rows_with_value(dataset: Dataset, column: str, value: str) -> np.ndarray:
    """Positions of the rows whose ``column`` reads ``value`` (compared as text)."""
    if column not in dataset.table.column_names:
        raise ValueError(f"no column {column!r} in {dataset.name}")
    values = np.asarray([None if v is None else str(v)
                         for v in dataset.table.column(column).to_pylist()], dtype=object)
    rows = np.flatnonzero(values == str(value))
    if not len(rows):
        seen = sorted({v for v in values.tolist() if v is not None})[:8]
        raise ValueError(f"no row of {dataset.name} has {column} = {value!r} (values: "
                         f"{', '.join(seen)})")
    return rows.astype(np.int64)


def rows_in_range(text: str, count: int) -> np.ndarray:
    """The rows ``a:b`` (Python slice bounds, either may be left out or negative) of ``count``."""
    start_text, colon, stop_text = text.partition(":")
    try:
        if not colon:
            raise ValueError
        start = int(start_text) if start_text.strip() else None
        stop = int(stop_text) if stop_text.strip() else None
    except ValueError:
        raise ValueError(f"rows {text!r} should read a:b, e.g. 0:800") from None
    rows = np.arange(count, dtype=np.int64)[slice(start, stop)]
    if not len(rows):
        raise ValueError(f"rows {text} select none of the {count:,} rows")
    return rows


def random_share(count: int, share: float, seed: int) -> np.ndarray:
    """A seeded random ``share`` of ``count`` rows, sorted."""
    if not 0 < share <= 1:
        raise ValueError(f"share is {share}; expected more than 0, at most 1")
    chosen = np.random.default_rng(seed).permutation(count)[:max(1, int(round(count * share)))]
    return np.sort(chosen).astype(np.int64)


def text_column(dataset: Dataset, label_column: str) -> str:
    """The text column a fine-tuned classifier reads: the first TextSegment column."""
    columns = [name for name, field_type in dataset.spec().items()
               if isinstance(field_type, TextSegment) and name != label_column]
    if not columns:
        raise ValueError(f"{dataset.name} has no text column to fine-tune a text classifier on")
    return columns[0]


def labels_at(dataset: Dataset, label_column: str, rows: np.ndarray) -> list[str]:
    """The gold labels of ``rows`` as strings (ValueError naming the first empty one)."""
    if label_column not in dataset.table.column_names:
        raise ValueError(f"no label column {label_column!r} in {dataset.name}")
    values = dataset.table.column(label_column).take(pa.array(rows)).to_pylist()
    empty = next((int(row) for row, value in zip(rows, values) if value is None), None)
    if empty is not None:
        raise ValueError(f"row {empty:,} of {dataset.name} has no {label_column}")
    return [str(value) for value in values]


@dataclass
class TrainRun:
    """What a run made: the model folder or file, the one-line summary, the record."""

    model_path: Path
    summary: str
    record: dict


def baseline_run_job(dataset: Dataset, label_column: str, rows: np.ndarray, out: Path, *,
                     kind: str = "linear", seed: int = 0, folds: int = 5,
                     input_columns: Optional[list[str]] = None,
                     exclude: tuple[str, ...] = ()) -> Job[TrainRun]:
    """Cross-validate and fit a baseline on ``rows``, save it to the folder ``out``."""
    from litdesk.core import baselines

    columns = input_columns or baselines.default_input_columns(
        dataset, label_column, exclude=exclude, kind=kind)
    folds = max(2, min(folds, len(rows)))
    baseline = yield from baselines.fit_baseline_job(dataset, columns, label_column, rows=rows,
                                                     kind=kind, folds=folds, seed=seed)
    yield Progress(0, 0, "Saving the baseline")
    file = baselines.save_baseline(baseline, out, data_path=dataset.path)
    from litdesk.core.training_record import find_record

    summary = (f"{kind} baseline on {len(rows):,} rows ({', '.join(columns)} -> {label_column}): "
               f"{baseline.cv_accuracy:.1%} {folds}-fold cross-validated accuracy; saved to {file}")
    return TrainRun(file, summary, find_record(file) or {})


def fine_tune_run_job(dataset: Dataset, label_column: str, rows: np.ndarray, base: Path,
                      out: Path, settings: Any, *, cancel: Optional[threading.Event] = None,
                      column: Optional[str] = None) -> Job[TrainRun]:
    """Fine-tune the classifier in ``base`` on ``rows``' texts and labels, save it to ``out``."""
    from litdesk.core.training import fine_tune_job

    column = column or text_column(dataset, label_column)
    labels = labels_at(dataset, label_column, rows)
    texts = dataset.table.column(column).take(pa.array(rows)).to_pylist()
    result = yield from fine_tune_job(base, texts, labels, out, settings, cancel=cancel,
                                      data_path=dataset.path, rows=rows, text_column=column,
                                      label_column=label_column)
    if result.folder is None:
        raise ValueError(f"fine-tuning {result.status} before its first epoch ended; "
                         "nothing was saved")
    return TrainRun(result.folder, f"{result.summary} ({len(rows):,} rows of {dataset.name})",
                    result.record)
