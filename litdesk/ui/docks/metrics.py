"""The Metrics dock: every model's metrics on the dataset, the selection, slices and facets.

The groups and their metrics are computed on the worker, only while the dock is on screen.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from litdesk.api import Dataset, types
from litdesk.core.empty_states import empty_state
from litdesk.core.jobs import Job, JobFailed
from litdesk.core.metrics import (METRIC_DIRECTIONS, MetricsError, MetricsTable, facet_groups,
                                  gold_column, metrics_table_job)
from litdesk.core.outcomes import unpredictable_note
from litdesk.core.predict import Predictions
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown

SELECTION_DELAY_MS = 150
BEST_BACKGROUND = QColor("#d5f5e3")
BEST_FOREGROUND = QColor("#145a32")
WHOLE_DATASET = "All data"
SELECTION = "Selection"
SLICE_PREFIX = "Slice: "
GOLD_TYPES = (types.CategoryLabel, types.Scalar, types.TextSegment)
FACET_TYPES = (types.CategoryLabel, types.Boolean, types.Scalar)
FIXED_COLUMNS = ("group", "model", "rows", "measured")
METRICS_PURPOSE = "to see its metrics"
#: The facet that groups rows by the Embedding Projector's clusters.
CLUSTERS_FACET = "\x00clusters"


def groups_job(predictions: Mapping[str, Predictions], dataset: Dataset,
               groups: dict[str, Optional[np.ndarray]], facet: Optional[str], bins: int,
               gold: Optional[str], reference: Optional[str],
               thresholds: Optional[Mapping[str, float]] = None) -> Job[MetricsTable]:
    """``groups`` and the groups of a ``facet`` field, measured by :func:`metrics_table_job`
    (binary classifiers at their ``thresholds``)."""
    if facet is not None:
        groups = {**groups, **facet_groups(dataset, facet, bins)}
    return (yield from metrics_table_job(predictions, dataset, groups, gold, reference,
                                         thresholds))


class MetricsDock(RefreshWhenShown):
    """A row per (group, model): the model's metrics on the group's rows, the best value per
    group and metric in bold green, and each value's difference to the best model (or to the
    model picked as reference). Clicking a row selects the group's rows everywhere."""

    #: Emitted after the table shows the metrics of the current selection, slices and choices.
    refreshed = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.table_data: Optional[MetricsTable] = None
        self._slot = JobSlot(runner, "Metrics", self)
        self._clicked: Optional[tuple[str, str]] = None  # (group, model) of the clicked row

        self.summary = QLabel(empty_state(session, "score", METRICS_PURPOSE))
        self.summary.setWordWrap(True)
        self.gold_choice = QComboBox()
        self.gold_choice.setToolTip("The column holding the true values; automatic: the one "
                                    "each model names, else a column named like a label")
        self.facet_choice = QComboBox()
        self.facet_choice.setToolTip("Add a group per value of this field (numbers: per "
                                     "quantile bin)")
        self.bins = QSpinBox(minimum=2, maximum=20, value=5, suffix=" bins")
        self.bins.setToolTip("Quantile bins of a numeric facet")
        self.reference_choice = QComboBox()
        self.reference_choice.setToolTip("Differences are to this model, or to the best one")
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.cellClicked.connect(self._on_cell_clicked)
        copy = QAction("Copy table", self.table, shortcut=QKeySequence.StandardKey.Copy,
                       shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(self.copy_table)
        self.table.addAction(copy)

        controls = QHBoxLayout()
        for label, widget in (("Gold:", self.gold_choice), ("Facet:", self.facet_choice),
                              (None, self.bins), ("Δ to:", self.reference_choice)):
            if label:
                controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)

        self._selection_timer = QTimer(self, singleShot=True, interval=SELECTION_DELAY_MS)
        self._selection_timer.timeout.connect(self.request_refresh)
        for combo in (self.gold_choice, self.facet_choice, self.reference_choice):
            combo.currentIndexChanged.connect(self.recompute)
        self.bins.valueChanged.connect(self.recompute)
        session.selection_changed.connect(lambda _source: self._selection_timer.start())
        for signal in (session.predictions_changed, session.dataset_changed,
                       session.spec_changed, session.rows_added, session.slices_changed,
                       session.models_changed):  # a model opened: "predicting …"
            signal.connect(self._on_session_changed)
        session.outcomes_changed.connect(self._update_summary)  # rows left out, per model
        session.clusters_changed.connect(self._on_session_changed)  # the projector's
        session.thresholds_changed.connect(self._on_session_changed)

    def _on_session_changed(self, *_args) -> None:
        self._slot.cancel()  # measured on what is gone
        self.request_refresh()

    def refresh(self) -> None:
        """Offer the current columns and models, and measure."""
        self._fill_choices()
        self.recompute()

    # -- choices ---------------------------------------------------------------------------

    def _fill_choices(self) -> None:
        """Offer the dataset's columns and the models; keep the user's picks where they stay."""
        dataset = self.session.dataset
        spec = dataset.spec() if dataset is not None else {}
        self._refill(self.gold_choice, "(automatic)",
                     [name for name, t in spec.items() if isinstance(t, GOLD_TYPES)])
        facet = self.facet_choice.currentData()
        self._refill(self.facet_choice, "(none)",
                     [name for name, t in spec.items() if isinstance(t, FACET_TYPES)])
        if self.session.clusters:
            self.facet_choice.addItem("projector clusters", CLUSTERS_FACET)
            if facet == CLUSTERS_FACET:
                self.facet_choice.blockSignals(True)
                self.facet_choice.setCurrentIndex(self.facet_choice.count() - 1)
                self.facet_choice.blockSignals(False)
        self._refill(self.reference_choice, "the best model", list(self.session.predictions))

    @staticmethod
    def _refill(combo: QComboBox, automatic: str, names: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(automatic, None)
        for name in names:
            combo.addItem(name, name)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def groups(self) -> dict[str, Optional[np.ndarray]]:
        """The groups measured besides the facet's: all data, the selection, each slice."""
        groups: dict[str, Optional[np.ndarray]] = {WHOLE_DATASET: None}
        if self.session.selection.rows.size:
            groups[SELECTION] = self.session.selection.rows
        groups.update({f"{SLICE_PREFIX}{name}": rows
                       for name, rows in self.session.slices.items()})
        if self.facet_choice.currentData() == CLUSTERS_FACET:
            groups.update(self.session.clusters)
        return groups

    # -- computing ---------------------------------------------------------------------------

    def recompute(self) -> None:
        """Measure every model on every group, on the worker, instead of the request before."""
        self._selection_timer.stop()
        dataset = self.session.dataset
        predictions = dict(self.session.predictions)
        facet = self.facet_choice.currentData()
        facet = None if facet == CLUSTERS_FACET else facet  # groups() holds the clusters
        self.bins.setEnabled(dataset is not None
                             and isinstance(dataset.spec().get(facet), types.Scalar))
        if dataset is None or not predictions:
            self._slot.cancel()
            self._show_message(empty_state(self.session, "score", METRICS_PURPOSE)
                               or "predicting…")
            return
        self._slot.submit(groups_job(predictions, dataset, self.groups(), facet,
                                     self.bins.value(), self.gold_choice.currentData(),
                                     self.reference_choice.currentData(),
                                     dict(self.session.thresholds)),
                          self._show, self._on_failed)

    def _on_failed(self, failure: JobFailed) -> None:
        """Inputs that cannot be measured are the user's choices: said here, not in a dialog."""
        error = failure.error
        self._show_message(str(error) if isinstance(error, MetricsError)
                           else f"Metrics failed: {error}")

    def _show_message(self, message: str) -> None:
        self.table_data = None
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.summary.setText(message)
        self.refreshed.emit()

    # -- the table ---------------------------------------------------------------------------

    def _show(self, table: MetricsTable) -> None:
        self.table_data = table
        metrics = table.metric_names
        self.table.clear()
        self.table.setColumnCount(len(FIXED_COLUMNS) + len(metrics))
        self.table.setHorizontalHeaderLabels([*FIXED_COLUMNS, *metrics])
        self.table.setRowCount(len(table.entries))
        compared = len({entry.model for entry in table.entries}) > 1
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, entry in enumerate(table.entries):
            cells = [entry.group, entry.model, f"{entry.size:,}",
                     f"{int(entry.values['count']):,}"]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
            excluded = int(entry.values["excluded"])
            if excluded:
                self.table.item(row, 3).setToolTip(f"{excluded:,} rows without a usable gold value")
            for column, metric in enumerate(metrics, start=len(FIXED_COLUMNS)):
                value = entry.values.get(metric)
                delta = entry.delta.get(metric)
                text = "" if value is None else "—" if np.isnan(value) else f"{value:.3f}"
                if compared and delta is not None and round(delta, 3) != 0:
                    text += f" ({delta:+.3f})"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if metric in entry.best:
                    item.setFont(bold)
                    item.setForeground(QBrush(BEST_FOREGROUND))
                    item.setBackground(QBrush(BEST_BACKGROUND))
                    item.setToolTip("best of the models on this group")
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        if self._clicked is not None:
            keys = [(entry.group, entry.model) for entry in table.entries]
            if self._clicked in keys:
                self.table.selectRow(keys.index(self._clicked))
        self._update_summary()
        self.refreshed.emit()

    def _update_summary(self) -> None:
        table = self.table_data
        if table is None:
            return
        missing = [name for name in self.session.predictions
                   if name not in {entry.model for entry in table.entries}]
        self.summary.setText(self._summary(table, missing))

    def _summary(self, table: MetricsTable, missing: list[str]) -> str:
        dataset = self.session.dataset
        gold = self.gold_choice.currentData()
        if gold is None and dataset is not None:
            found = {gold_column(dataset, p.spec) for p in self.session.predictions.values()}
            gold = ", ".join(sorted(name for name in found if name)) or None
        parts = [f"{len(table.groups)} groups", f"gold: <b>{gold or 'none found'}</b>"]
        if missing:
            parts.append(f"not measured (no gold column or no scored output): "
                         f"{', '.join(missing)}")
        lower = [m for m in table.metric_names if METRIC_DIRECTIONS[m] < 0]
        parts.append("best in bold" + (f" (lowest {', '.join(lower)})" if lower else ""))
        outcomes = self.session.outcomes
        notes = [] if outcomes is None else [
            unpredictable_note(name, outcome) for name, outcome in outcomes.models.items()
            if self.gold_choice.currentData() in (None, outcome.gold_column)]
        return " · ".join(parts) + "".join(f"<br>{html.escape(note)}" for note in notes if note)

    def _on_cell_clicked(self, row: int, _column: int) -> None:
        if self.table_data is None or not 0 <= row < len(self.table_data.entries):
            return
        entry = self.table_data.entries[row]
        self._clicked = (entry.group, entry.model)
        rows = self.table_data.groups[entry.group]
        if rows is None:
            rows = np.arange(len(self.session.dataset), dtype=np.int64)
        self.session.select(rows, source=self)

    def copy_table(self) -> None:
        """Copy the whole table as tab-separated text with a header: values and, with more
        than one model, a column of differences per metric."""
        table = self.table_data
        if table is None:
            return
        metrics = table.metric_names
        compared = len({entry.model for entry in table.entries}) > 1
        header = [*FIXED_COLUMNS, *metrics] + ([f"Δ {m}" for m in metrics] if compared else [])
        lines = ["\t".join(header)]
        for entry in table.entries:
            cells = [entry.group, entry.model, str(entry.size), str(int(entry.values["count"]))]
            cells += [_number(entry.values.get(m)) for m in metrics]
            if compared:
                cells += [_number(entry.delta.get(m)) for m in metrics]
            lines.append("\t".join(cells))
        QGuiApplication.clipboard().setText("\n".join(lines))


def _number(value: Optional[float]) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.6g}"
