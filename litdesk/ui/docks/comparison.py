"""The Model Comparison dock: each model's prediction side by side, for the selection or the
whole dataset, and the primary row against the pinned reference, field by field.

It reads the session's outcomes; the summary and the rows listed are computed on the worker
(a newer selection cancels the older request), and only while the dock is on screen.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel,
                               QSplitter, QTableView, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from litdesk.api import Dataset, types
from litdesk.core.categories import encode_categories
from litdesk.core.empty_states import empty_state
from litdesk.core.outcomes import Outcomes
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.widgets.arrow_table_model import format_value
from litdesk.ui.widgets.before_after import BeforeAfterPanel

MAX_ROWS_SHOWN = 500
#: Column widths fit the texts of this many rows listed, up to MAX_TEXT_WIDTH pixels.
FIT_ROWS = 100
MAX_TEXT_WIDTH = 380
CELL_PADDING = 16
DISAGREE = QColor("#fde2e1")
CHANGED = QColor("#fff3bf")
CORRECT_COLOR = QColor("#1e8449")
WRONG_COLOR = QColor("#c0392b")
#: The splitter puts the field-by-field comparison beside the table when the dock is this
#: many times wider than tall, else below it.
SIDE_BY_SIDE_ASPECT = 1.8
MIN_TABLE_HEIGHT = 48
ROW_HEIGHT = 22
#: The widest the field column of the field-by-field comparison grows (pixels).
MAX_FIELD_WIDTH = 200
CORRECT_HEADER = "✓"
#: The widest a value column of the field-by-field comparison grows (pixels); long texts elide.
MAX_VALUE_WIDTH = 260
NO_PIN_HINT = ("Pin a reference row (Ctrl+P in the Data Table) to compare the selected row "
               "with it field by field.")




def with_gold(dataset: Dataset, outcomes: Outcomes, gold: Optional[str]) -> Outcomes:
    """``outcomes`` judged against the dataset column ``gold`` (None: no gold) instead of the
    column each model names."""
    models = {}
    for name, outcome in outcomes.models.items():
        if gold != outcome.gold_column:
            codes = None if gold is None else encode_categories(
                dataset.table.column(gold), outcome.labels, closed=True).codes
            outcome = dataclasses.replace(outcome, gold_column=gold, gold=codes)
        models[name] = outcome
    return dataclasses.replace(outcomes, models=models)


@dataclass(frozen=True)
class Column:
    """A column of the comparison table: its header, the header's tooltip, and per row the
    text, a tooltip and whether it is a wrong (False) or right (True) mark."""

    header: str
    tip: str
    texts: list[str]
    tooltips: Optional[list[str]] = None
    right: Optional[list[bool]] = None


@dataclass(frozen=True)
class Listing:
    """What the comparison table shows for a set of rows: the summary and the rows listed."""

    summary: str
    rows: np.ndarray  # the dataset rows listed, in order
    columns: list[Column]
    disagree: list[bool]  # per row listed


def comparison_listing(dataset: Dataset, outcomes: Outcomes, probabilities: dict[str, np.ndarray],
                       gold: Optional[str], selected: Optional[np.ndarray],
                       pinned: Optional[int], only_disagreements: bool,
                       limit: int) -> Listing:
    """The summary of ``selected`` rows (None: every row) and the first ``limit`` of them
    (only those the models disagree on, if asked; the pinned row first), with each model's
    label, its probability and ✓/✗ against ``gold``. ``probabilities``: each model's class
    probabilities, for the tooltips."""
    whole = selected is None
    compared = np.arange(outcomes.num_rows, dtype=np.int64) if whole else selected
    disagree = outcomes.disagree[compared]
    scope = f"all <b>{outcomes.num_rows:,}</b> rows" if whole \
        else f"<b>{compared.size:,}</b> selected"
    parts = [scope + (" + the pinned reference" if pinned is not None and not whole
                      and not np.isin(pinned, compared) else "")]
    if len(outcomes.models) > 1:
        parts.append(f"models disagree on <b>{int(disagree.sum()):,}</b>")
    for name in outcomes.models:
        accuracy = outcomes.accuracy(name, None if whole else compared)
        if accuracy is not None:
            parts.append(f"{name} accuracy <b>{accuracy:.1%}</b>")

    shown = compared[disagree] if only_disagreements else compared
    if pinned is not None:  # the reference row leads, for comparison
        shown = np.concatenate([[pinned], shown[:limit][shown[:limit] != pinned]])
    shown = shown[:limit].astype(np.int64)
    rows = shown.tolist()
    columns = [Column("row", "Dataset row (★: the pinned reference)",
                      [f"★ {row}" if row == pinned else str(row) for row in rows])]
    text_field = next((name for name, t in dataset.spec().items()
                       if isinstance(t, types.TextSegment)), None)
    if text_field:
        texts = dataset.table.column(text_field).take(shown).to_pylist()
        columns.append(Column(text_field, "", [str(text) for text in texts]))
    if gold:
        golds = dataset.table.column(gold).take(shown).to_pylist()
        columns.append(Column(f"gold ({gold})", "The true label", [format_value(g) for g in golds]))
    for name, outcome in outcomes.models.items():
        labels = np.asarray(outcome.labels, dtype=object)
        scores = probabilities[name][shown]
        order = np.argsort(-scores, axis=1, kind="stable")
        tooltips = ["\n".join(f"p({labels[index]}) {row_scores[index]:.3f}" for index in ranking)
                    for row_scores, ranking in zip(scores.tolist(), order.tolist())]
        columns.append(Column(name, f"{name}'s label (hover a cell for every class score)",
                              labels[outcome.predicted[shown]].tolist(), tooltips))
        columns.append(Column("p", f"{name}: the probability of its label",
                              [f"{p:.3f}" for p in outcome.confidence[shown].tolist()]))
        if outcome.gold is not None:
            right = outcome.correct[shown].tolist()
            known = outcome.has_gold[shown].tolist()
            columns.append(Column(CORRECT_HEADER, f"{name}: ✓ right, ✗ wrong against {gold}",
                                  [("✓" if r else "✗") if has else ""
                                   for r, has in zip(right, known)], None, right))
    return Listing(" · ".join(parts), shown, columns, outcomes.disagree[shown].tolist())


class ListingModel(QAbstractTableModel):
    """A :class:`Listing` as a table: nothing is built per cell, so showing 500 rows costs
    nothing on the GUI thread."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.listing: Optional[Listing] = None
        self._disagree = QBrush(DISAGREE)
        self._right, self._wrong = QBrush(CORRECT_COLOR), QBrush(WRONG_COLOR)

    def set_listing(self, listing: Optional[Listing]) -> None:
        """Show ``listing`` (None: nothing)."""
        self.beginResetModel()
        self.listing = listing
        self.endResetModel()

    def row_at(self, view_row: int) -> int:
        """The dataset row listed at ``view_row``."""
        return int(self.listing.rows[view_row])

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() or self.listing is None else len(self.listing.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or self.listing is None else len(self.listing.columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column, row = self.listing.columns[index.column()], index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return column.texts[row]
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltips is not None:
            return column.tooltips[row]
        if role == Qt.ItemDataRole.ForegroundRole and column.right is not None:
            return self._right if column.right[row] else self._wrong
        if role == Qt.ItemDataRole.BackgroundRole and self.listing.disagree[row]:
            return self._disagree
        if role == Qt.ItemDataRole.TextAlignmentRole and column.header == CORRECT_HEADER:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or self.listing is None:
            return None
        column = self.listing.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.header
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tip
        return None


def _same(first: Any, second: Any) -> bool:
    missing = [value is None or (isinstance(value, float) and math.isnan(value))
               for value in (first, second)]
    return all(missing) or (not any(missing) and first == second)


def _difference(first: Any, second: Any) -> str:
    """``second - first`` for two numbers, else nothing."""
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool)
                  and not math.isnan(value) for value in (first, second))
    return f"{second - first:+.4g}" if numbers and first != second else ""


class ComparisonDock(RefreshWhenShown):
    """The models' predictions side by side, and the primary row against the pinned one.

    The table has a row per datapoint (the selection, or the whole dataset with "Whole
    dataset"; at most :data:`MAX_ROWS_SHOWN` shown, the summary counts them all): the gold
    label, then per model the predicted label (every class score in its tooltip), its
    probability ("p") and ✓/✗ against the gold. The pair table lists each dataset field and each
    model output for the pinned reference and the primary row, differences highlighted.
    """

    #: The summary and the table show the session as it is now (tests wait on it).
    listed = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.slot = JobSlot(runner, "Model comparison", self)
        self._judged: tuple = ()  # (outcomes, gold, the outcomes judged against gold), kept
        self._listed_key: tuple = ()  # what the table lists now, so that it is not redone
        self._judged_listed: Optional[Outcomes] = None
        self.summary = QLabel("Select rows to compare the models' predictions.")
        self.summary.setWordWrap(True)
        self.gold_choice = QComboBox()
        self.gold_choice.setToolTip("The column holding the true labels")
        self.gold_choice.currentIndexChanged.connect(self.request_refresh)
        self.whole_dataset = QCheckBox("Whole dataset")
        self.whole_dataset.setToolTip("Compare on every row instead of the selection "
                                      f"(the first {MAX_ROWS_SHOWN} are listed)")
        self.whole_dataset.toggled.connect(self.request_refresh)
        self.only_disagreements = QCheckBox("Disagreements only")
        self.only_disagreements.toggled.connect(self.request_refresh)
        self.model = ListingModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.clicked.connect(self._on_cell_clicked)

        self.pair_hint = QLabel(NO_PIN_HINT)
        self.pair_hint.setWordWrap(True)
        self.pair_table = QTableWidget(0, 4)
        self.pair_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.pair_table.verticalHeader().hide()
        self.pair_table.horizontalHeader().setStretchLastSection(True)
        self.pair_table.hide()
        for table in (self.table, self.pair_table):  # the dock may be short: tables scroll
            table.setMinimumHeight(MIN_TABLE_HEIGHT)
            table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.pair_table)
        self.before_after = BeforeAfterPanel(session, runner, self)  # a trained model vs its base
        self.splitter.addWidget(self.before_after)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setCollapsible(2, False)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Gold:"))
        controls.addWidget(self.gold_choice)
        controls.addWidget(self.whole_dataset)
        controls.addWidget(self.only_disagreements)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.pair_hint)
        session.selection_changed.connect(self._on_selection)
        session.outcomes_changed.connect(self._fill_gold_choice)
        session.dataset_changed.connect(self._fill_gold_choice)
        session.spec_changed.connect(self._fill_gold_choice)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        wide = event.size().width() > SIDE_BY_SIDE_ASPECT * event.size().height()
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.splitter.orientation():
            self.splitter.setOrientation(orientation)
            # rows : pair : before → after as 3 : 2 : 2, scaled to the space there is (a
            # hidden one's share goes to the others)
            self.splitter.setSizes([3000, 2000, 2000])
        super().resizeEvent(event)

    def _on_selection(self, source: object) -> None:
        if source is self:  # a click here only moves the primary row
            self.refresh_pair()
        else:
            self.request_refresh()

    def _fill_gold_choice(self) -> None:
        """Offer the dataset's categorical columns; keep the user's pick, else the column
        the models name."""
        dataset, outcomes = self.session.dataset, self.session.outcomes
        current = self.gold_choice.currentData()
        columns = [name for name, t in dataset.spec().items()
                   if isinstance(t, types.CategoryLabel)] if dataset else []
        guesses = [outcome.gold_column for outcome in outcomes.models.values()] \
            if outcomes is not None else []
        choice = current if current in columns else \
            next((column for column in guesses if column in columns), None)
        self.gold_choice.blockSignals(True)
        self.gold_choice.clear()
        self.gold_choice.addItem("(none)", None)
        for name in columns:
            self.gold_choice.addItem(name, name)
        self.gold_choice.setCurrentIndex(max(0, self.gold_choice.findData(choice)))
        self.gold_choice.blockSignals(False)
        self.request_refresh()

    def judged_outcomes(self) -> Optional[Outcomes]:
        """The session's outcomes judged against the gold column chosen, once computed
        (None before, or without outcomes)."""
        outcomes, gold = self.session.outcomes, self.gold_choice.currentData()
        if outcomes is not None and self._judged and self._judged[0] is outcomes \
                and self._judged[1] == gold:
            return self._judged[2]
        return None

    def refresh(self) -> None:
        """Recompute the summary and the table for the selection, or every row with "Whole
        dataset", in the background; the pair of rows now."""
        self.refresh_pair()
        dataset, outcomes = self.session.dataset, self.session.outcomes
        whole = self.whole_dataset.isChecked()
        selection = self.session.selection
        if dataset is None or outcomes is None or not outcomes.models \
                or (selection.rows.size == 0 and not whole):
            self.slot.cancel()
            self._clear_table()
            self.summary.setText(
                "Select rows to compare the models' predictions."
                if outcomes is not None and outcomes.models
                else empty_state(self.session, "classifier", "to compare its predictions")
                or "Working out the models' outcomes…")
            self.listed.emit()
            return
        gold = self.gold_choice.currentData()
        judged = self.judged_outcomes()
        probabilities = {name: self.session.predictions[name].fields[outcome.field]
                         for name, outcome in outcomes.models.items()}
        selected = None if whole else selection.rows
        pinned, only = selection.pinned, self.only_disagreements.isChecked()

        def listing() -> tuple[Outcomes, Listing]:
            against_gold = judged or with_gold(dataset, outcomes, gold)
            return against_gold, comparison_listing(dataset, against_gold, probabilities, gold,
                                                    selected, pinned, only, MAX_ROWS_SHOWN)

        self.slot.submit(listing, lambda result: self._show(outcomes, gold, *result))

    def _show(self, outcomes: Outcomes, gold: Optional[str], judged: Outcomes,
              listing: Listing) -> None:
        self._judged = (outcomes, gold, judged)
        self.summary.setText(listing.summary)
        key = (listing.rows.tobytes(), self.session.selection.pinned, gold)
        if key != self._listed_key or judged is not self._judged_listed:  # else the same rows
            self._listed_key, self._judged_listed = key, judged  # as listed: "Whole dataset"
            self._fill_table(listing)
        self.listed.emit()

    def _clear_table(self) -> None:
        self.model.set_listing(None)
        self._listed_key = ()

    def _fill_table(self, listing: Listing) -> None:
        self.model.set_listing(listing)
        # Widths from the texts of the first rows, measured here: Qt's resizeColumnsToContents
        # asks the model for every role of every cell (a quarter of a second for 500 rows).
        cells, header = self.table.fontMetrics(), self.table.horizontalHeader().fontMetrics()
        for index, column in enumerate(listing.columns):
            width = max([header.horizontalAdvance(column.header)]
                        + [cells.horizontalAdvance(text) for text in column.texts[:FIT_ROWS]])
            self.table.setColumnWidth(index, min(width + CELL_PADDING, MAX_TEXT_WIDTH))

    def pair_lines(self, pinned: int, primary: int) -> list[tuple[str, Any, Any]]:
        """(name, reference value, primary value) per dataset field and per model output."""
        dataset = self.session.dataset
        first, second = dataset.table.take([pinned, primary]).to_pylist()
        lines = [(name, first[name], second[name]) for name in dataset.table.column_names]
        outcomes = self.session.outcomes
        for name, outcome in outcomes.models.items() if outcomes else ():
            labels, predicted = outcome.labels, outcome.predicted
            lines.append((f"{name} label", labels[predicted[pinned]], labels[predicted[primary]]))
            probabilities = self.session.predictions[name].fields[outcome.field]
            for index in sorted({int(predicted[pinned]), int(predicted[primary])}):
                lines.append((f"{name} p({labels[index]})", float(probabilities[pinned, index]),
                              float(probabilities[primary, index])))
        for name, predictions in self.session.predictions.items():
            for field, field_type in predictions.spec.items():
                if isinstance(field_type, types.RegressionScore):
                    values = predictions.fields[field]
                    lines.append((f"{name} {field}", float(values[pinned]),
                                  float(values[primary])))
        return lines

    def refresh_pair(self) -> None:
        """Compare the primary row with the pinned reference, or say what is missing."""
        selection = self.session.selection
        pinned, primary = selection.pinned, selection.primary
        self.pair_table.setRowCount(0)
        if self.session.dataset is None or pinned is None:
            self.pair_hint.setText(NO_PIN_HINT if self.session.dataset is not None else "")
            self.pair_table.hide()
            return
        if primary is None or primary == pinned:
            self.pair_hint.setText(f"Select another row to compare it with the pinned "
                                   f"reference (row {pinned}).")
            self.pair_table.hide()
            return
        lines = self.pair_lines(pinned, primary)
        changed = [not _same(first, second) for _, first, second in lines]
        self.pair_hint.setText(f"Row {primary} against the pinned reference ★ {pinned}: "
                               f"<b>{sum(changed)}</b> of {len(lines)} values differ.")
        self.pair_table.setHorizontalHeaderLabels(
            ["field", f"★ {pinned}", f"{primary}", "difference"])
        self.pair_table.setRowCount(len(lines))
        bold = QFont(self.pair_table.font())
        bold.setBold(True)
        for out_row, ((name, first, second), differs) in enumerate(zip(lines, changed)):
            cells = [name, format_value(first), format_value(second),
                     _difference(first, second) if differs else ""]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if len(text) > MAX_VALUE_WIDTH // 8:
                    item.setToolTip(text)
                if differs:
                    item.setBackground(QBrush(CHANGED))
                    if column == 2:
                        item.setFont(bold)
                self.pair_table.setItem(out_row, column, item)
        self.pair_table.resizeColumnsToContents()
        for column, widest in ((0, MAX_FIELD_WIDTH), (1, MAX_VALUE_WIDTH), (2, MAX_VALUE_WIDTH)):
            self.pair_table.setColumnWidth(column, min(self.pair_table.columnWidth(column), widest))
        self.pair_table.show()

    def _on_cell_clicked(self, index: QModelIndex) -> None:
        self.session.select(self.session.selection.rows, self.model.row_at(index.row()),
                            source=self)
