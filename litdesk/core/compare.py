"""``litdesk compare``'s work, Qt-free: models' metrics on one dataset and where they disagree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from litdesk.core.batch import BatchError, load_batch_inputs
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.metrics import COUNT_KEYS, MetricsError, MetricsTable, gold_column, metrics_table
from litdesk.core.outcomes import compute_outcomes, unpredictable_note
from litdesk.core.predict import predict_job

WHOLE_DATASET = "dataset"


@dataclass(frozen=True)
class Comparison:
    """Every model's metrics on a whole dataset, and the rows where their labels differ."""

    dataset: str
    rows: int
    gold: dict[str, Optional[str]]  # model -> the gold column its metrics use
    table: MetricsTable
    disagreements: int
    #: Per model whose gold labels include some it cannot predict, how many rows that leaves out.
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """``{"models": {name: {metric: value}}, "disagreements": rows}``, NaN as None (JSON's
        null); a model without a gold column or measurable output has no metrics."""
        models = {name: {metric: int(value) if metric in COUNT_KEYS
                         else None if math.isnan(value) else value
                         for metric, value in self._values(name).items()}
                  for name in self.gold}
        return {"models": models, "disagreements": self.disagreements}

    def _values(self, model: str) -> dict[str, float]:
        entry = next((e for e in self.table.entries if e.model == model), None)
        return entry.values if entry is not None else {}

    def report(self) -> str:
        """A plain-text table of the metrics (the best value per metric starred) and the
        number of disagreements."""
        metrics = self.table.metric_names
        header = ["model", "gold", "count"] + metrics
        lines = [header]
        for name, gold in self.gold.items():
            entry = next((e for e in self.table.entries if e.model == name), None)
            if entry is None:
                lines.append([name, gold or "(none found)", "-"] + ["-"] * len(metrics))
                continue
            cells = [f"{entry.values[m]:.4f}" + ("*" if m in entry.best else "")
                     if m in entry.values else "-" for m in metrics]
            lines.append([name, gold or "", f"{int(entry.values['count']):,}"] + cells)
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = [f"{self.dataset}: {self.rows:,} rows"]
        text += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                 for line in lines]
        if len(self.gold) > 1:
            text.append(f"* best of the models. They disagree on {self.disagreements:,} of "
                        f"{self.rows:,} rows.")
        text += [f"{note}." for note in self.notes]
        return "\n".join(text)


def _names(paths: Sequence[Path]) -> list[str]:
    """Each model's file or folder name, suffixed " (2)", " (3)"… where names repeat."""
    names: list[str] = []
    for path in paths:
        name, suffix = path.name, 2
        while name in names:
            name, suffix = f"{path.name} ({suffix})", suffix + 1
        names.append(name)
    return names


def compare_models(model_paths: Sequence[Path], data_path: Path, *,
                   label: Optional[str] = None, device: Optional[str] = None,
                   trust: bool = False, batch_size: Optional[int] = None,
                   use_cache: bool = True) -> Comparison:
    """Predict every row with every model and measure them on the whole dataset.

    ``label`` names the gold column (and is handed to the models' loaders, as ``litdesk
    predict`` does); by default each model's own (:func:`~litdesk.core.metrics.gold_column`).
    Any failure is a :class:`~litdesk.core.batch.BatchError` with a one-line message.
    """
    dataset, models = load_batch_inputs(model_paths, data_path, device=device, trust=trust,
                                        label=label)
    if label is not None and label not in dataset.table.column_names:
        raise BatchError(f"{data_path}: no column {label!r} (columns: "
                         f"{', '.join(dataset.table.column_names)})")
    cache = ResultCache() if use_cache else None
    predictions = {}
    for name, model in zip(_names(model_paths), models):
        model.name = name
        predictions[name] = run_job(predict_job(model, dataset, batch_size=batch_size,
                                                cache=cache))
    try:
        table = metrics_table(predictions, dataset, {WHOLE_DATASET: None}, gold=label)
    except MetricsError as error:
        raise BatchError(f"{data_path}: {error}") from error
    gold = {name: label or gold_column(dataset, p.spec) for name, p in predictions.items()}
    outcomes = compute_outcomes(dataset, predictions)
    notes = tuple(note for name, outcome in outcomes.models.items()
                  if outcome.gold_column == gold[name]
                  and (note := unpredictable_note(name, outcome)) is not None)
    return Comparison(dataset.name, len(dataset), gold, table, int(outcomes.disagree.sum()),
                      notes)
