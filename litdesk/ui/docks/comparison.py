"""The Model Comparison dock: each model's prediction side by side, for the selection or the
whole dataset, and the primary row against the pinned reference, field by field."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from litdesk.api import Dataset, types
from litdesk.core.confusion import column_categories
from litdesk.core.metrics import disagreements, gold_column
from litdesk.core.predict import Predictions
from litdesk.core.session import Session
from litdesk.ui.docks.table import format_value

MAX_ROWS_SHOWN = 500
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


class ModelOutcomes:
    """Every row's predicted label and its probability per model, whether the models
    disagree, and whether each model is right about the gold column.

    Built once per set of predictions and gold column; the summary of any set of rows (a
    selection or all of them, 1M included) is then a few vectorised look-ups.
    """

    def __init__(self, dataset: Dataset, predictions: dict[str, Predictions],
                 gold_field: Optional[str]) -> None:
        self.predicted: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}  # (argmax, vocab)
        self.probs: dict[str, np.ndarray] = {}
        self.right: dict[str, np.ndarray] = {}  # model -> predicted label == gold, per row
        self.has_gold: Optional[np.ndarray] = None  # False where the gold cell is empty
        for name, model_predictions in predictions.items():
            labelled = model_predictions.predicted_labels()
            if labelled is None:
                continue
            field, argmax, vocab = labelled
            self.predicted[name] = (argmax, vocab)
            self.probs[name] = model_predictions.fields[field]
            if gold_field is not None:
                gold = column_categories(dataset.table.column(gold_field), vocab).codes
                self.right[name] = gold == argmax
                self.has_gold = gold >= 0
        self.disagree = np.zeros(len(dataset), dtype=bool)
        self.disagree[disagreements(predictions)] = True

    @property
    def models(self) -> list[str]:
        """The models with a classification output."""
        return list(self.predicted)

    def correct(self, model: str, rows: np.ndarray) -> Optional[np.ndarray]:
        """Whether ``model`` predicts the gold label for each of ``rows`` (None: no gold)."""
        return self.right[model][rows] if model in self.right else None

    def accuracy(self, model: str, rows: Optional[np.ndarray] = None) -> Optional[float]:
        """The share of ``rows`` (default: all) with a gold label that ``model`` gets right."""
        if model not in self.right:
            return None
        right = self.right[model][self.has_gold] if rows is None \
            else self.right[model][rows[self.has_gold[rows]]]
        return float(right.mean()) if right.size else None

    def label(self, model: str, row: int) -> str:
        argmax, vocab = self.predicted[model]
        return vocab[argmax[row]]

    def confidence(self, model: str, row: int) -> float:
        """The probability of the label ``model`` predicts for ``row``."""
        return float(self.probs[model][row, self.predicted[model][0][row]])

    def scores_text(self, model: str, row: int) -> str:
        """Every class score of ``model`` for ``row``, the likeliest first."""
        probs, vocab = self.probs[model][row], self.predicted[model][1]
        order = np.argsort(-probs, kind="stable")
        return "\n".join(f"p({vocab[index]}) {probs[index]:.3f}" for index in order)


def _same(first: Any, second: Any) -> bool:
    missing = [value is None or (isinstance(value, float) and math.isnan(value))
               for value in (first, second)]
    return all(missing) or (not any(missing) and first == second)


def _difference(first: Any, second: Any) -> str:
    """``second - first`` for two numbers, else nothing."""
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool)
                  and not math.isnan(value) for value in (first, second))
    return f"{second - first:+.4g}" if numbers and first != second else ""


class ComparisonDock(QWidget):
    """The models' predictions side by side, and the primary row against the pinned one.

    The table has a row per datapoint (the selection, or the whole dataset with "Whole
    dataset"; at most :data:`MAX_ROWS_SHOWN` shown, the summary counts them all): the gold
    label, then per model the predicted label (every class score in its tooltip), its
    probability ("p") and ✓/✗ against the gold. The pair table lists each dataset field and each
    model output for the pinned reference and the primary row, differences highlighted.
    """

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self._outcomes: Optional[ModelOutcomes] = None
        self._outcomes_key: tuple = ()
        self._listed_key: tuple = ()  # what the table lists now, so that it is not redone
        self._disagree_brush = QBrush(DISAGREE)
        self._right_brush, self._wrong_brush = QBrush(CORRECT_COLOR), QBrush(WRONG_COLOR)
        self.summary = QLabel("Select rows to compare the models' predictions.")
        self.summary.setWordWrap(True)
        self.gold_choice = QComboBox()
        self.gold_choice.setToolTip("The column holding the true labels")
        self.gold_choice.currentIndexChanged.connect(self.refresh)
        self.whole_dataset = QCheckBox("Whole dataset")
        self.whole_dataset.setToolTip("Compare on every row instead of the selection "
                                      f"(the first {MAX_ROWS_SHOWN} are listed)")
        self.whole_dataset.toggled.connect(self.refresh)
        self.only_disagreements = QCheckBox("Disagreements only")
        self.only_disagreements.toggled.connect(self.refresh)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setResizeContentsPrecision(100)  # sizes from 100 rows
        self.table.cellClicked.connect(self._on_cell_clicked)

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
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

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
        session.predictions_changed.connect(lambda _model: self._fill_gold_choice())
        session.dataset_changed.connect(self._fill_gold_choice)
        session.spec_changed.connect(self._fill_gold_choice)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        wide = event.size().width() > SIDE_BY_SIDE_ASPECT * event.size().height()
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.splitter.orientation():
            self.splitter.setOrientation(orientation)
            self.splitter.setSizes([3000, 2000])  # 3:2, scaled to the space there is
        super().resizeEvent(event)

    def _on_selection(self, source: object) -> None:
        if source is not self:  # a click here only moves the primary row
            self.refresh()
        self.refresh_pair()

    def _fill_gold_choice(self) -> None:
        """Offer the dataset's categorical columns; keep the user's pick, else guess."""
        dataset = self.session.dataset
        current = self.gold_choice.currentData()
        columns = [name for name, t in dataset.spec().items()
                   if isinstance(t, types.CategoryLabel)] if dataset else []
        self.gold_choice.blockSignals(True)
        self.gold_choice.clear()
        self.gold_choice.addItem("(none)", None)
        for name in columns:
            self.gold_choice.addItem(name, name)
        choice = current if current in columns else self._guess_gold(columns)
        self.gold_choice.setCurrentIndex(max(0, self.gold_choice.findData(choice)))
        self.gold_choice.blockSignals(False)
        self.refresh()
        self.refresh_pair()

    def _guess_gold(self, columns: list[str]) -> str | None:
        """The first of ``columns`` that a model's metrics take as gold (its output's parent,
        else a column named like a label)."""
        dataset = self.session.dataset
        guesses = (gold_column(dataset, p.spec) for p in self.session.predictions.values())
        return next((column for column in guesses if column in columns), None)

    def outcomes(self) -> Optional[ModelOutcomes]:
        """The models' outcomes on the active dataset (rebuilt when predictions or gold change)."""
        dataset = self.session.dataset
        if dataset is None:
            return None
        predictions, gold = self.session.predictions, self.gold_choice.currentData()
        key = (gold, dataset, *predictions.values())  # the objects themselves, by identity
        if len(key) != len(self._outcomes_key) or key[0] != self._outcomes_key[0] or \
                any(new is not old for new, old in zip(key[1:], self._outcomes_key[1:])):
            self._outcomes = ModelOutcomes(dataset, predictions, gold)
            self._outcomes_key = key
        return self._outcomes

    def refresh(self) -> None:
        """Rebuild the summary and the table for the selection, or every row with "Whole
        dataset"."""
        dataset = self.session.dataset
        outcomes = self.outcomes()
        whole = self.whole_dataset.isChecked()
        selected = self.session.selection.rows
        pinned = self.session.selection.pinned
        if outcomes is None or not outcomes.models or (selected.size == 0 and not whole):
            self.table.clear()
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self._listed_key = ()
            self.summary.setText("Select rows to compare the models' predictions."
                                 if outcomes is not None and outcomes.models
                                 else "Load models to compare their predictions.")
            return
        models = outcomes.models
        gold_field = self.gold_choice.currentData() if outcomes.has_gold is not None else None
        disagree = outcomes.disagree if whole else outcomes.disagree[selected]
        scope = f"all <b>{len(dataset):,}</b> rows" if whole \
            else f"<b>{selected.size:,}</b> selected"
        parts = [scope + (" + the pinned reference" if pinned is not None and not whole
                          and not np.isin(pinned, selected) else "")]
        if len(models) > 1:
            parts.append(f"models disagree on <b>{int(disagree.sum()):,}</b>")
        for name in models:
            accuracy = outcomes.accuracy(name, None if whole else selected)
            if accuracy is not None:
                parts.append(f"{name} accuracy <b>{accuracy:.1%}</b>")
        self.summary.setText(" · ".join(parts))

        compared = np.arange(len(dataset), dtype=np.int64) if whole else selected
        shown = compared[disagree] if self.only_disagreements.isChecked() else compared
        if pinned is not None:  # the reference row leads, for comparison
            shown = np.concatenate([[pinned], shown[shown != pinned]])
        shown = shown[:MAX_ROWS_SHOWN]
        self._fill_table(dataset, outcomes, models, shown, gold_field)

    def _fill_table(self, dataset: Dataset, outcomes: ModelOutcomes, models: list[str],
                    shown: np.ndarray, gold_field: Optional[str]) -> None:
        pinned = self.session.selection.pinned
        key = (shown.tobytes(), pinned, gold_field, outcomes)
        if key == self._listed_key:
            return  # the same rows as listed already (a new selection in "Whole dataset")
        self._listed_key = key
        text_field = next((n for n, t in dataset.spec().items()
                           if isinstance(t, types.TextSegment)), None)
        # per column: (header, its tooltip, cell texts, cell tooltips, cell colours)
        columns: list[tuple[str, str, list[str], Optional[list[str]], Optional[list]]] = [
            ("row", "Dataset row (★: the pinned reference)",
             [f"★ {row}" if row == pinned else str(row) for row in shown.tolist()], None, None)]
        if text_field:
            texts = dataset.table.column(text_field).take(shown).to_pylist()
            columns.append((text_field, "", [str(text) for text in texts], None, None))
        if gold_field:
            golds = dataset.table.column(gold_field).take(shown).to_pylist()
            columns.append((f"gold ({gold_field})", "The true label",
                            [format_value(g) for g in golds], None, None))
        for name in models:
            argmax, vocab = outcomes.predicted[name]
            probs = outcomes.probs[name][shown]
            tooltips = [outcomes.scores_text(name, row) for row in shown.tolist()]
            columns.append((name, f"{name}'s label (hover a cell for every class score)",
                            np.asarray(vocab, dtype=object)[argmax[shown]].tolist(),
                            tooltips, None))
            picked = probs[np.arange(len(shown)), argmax[shown]]
            columns.append(("p", f"{name}: the probability of its label",
                            [f"{p:.3f}" for p in picked.tolist()], None, None))
            if gold_field:
                right = outcomes.correct(name, shown).tolist()
                labelled = outcomes.has_gold[shown].tolist()
                columns.append((CORRECT_HEADER, f"{name}: ✓ right, ✗ wrong against {gold_field}",
                                [("✓" if r else "✗") if has else ""
                                 for r, has in zip(right, labelled)],
                                None, [self._right_brush if r else self._wrong_brush
                                       for r in right]))
        disagree = outcomes.disagree[shown].tolist()
        self.table.setUpdatesEnabled(False)
        self.table.setColumnCount(len(columns))
        for column, (header, header_tip, *_cells) in enumerate(columns):
            item = QTableWidgetItem(header)
            item.setToolTip(header_tip)
            self.table.setHorizontalHeaderItem(column, item)
        self.table.setRowCount(len(shown))
        for column, (header, _tip, texts, tooltips, colours) in enumerate(columns):
            centred = header == CORRECT_HEADER
            for out_row, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if tooltips is not None:
                    item.setToolTip(tooltips[out_row])
                if colours is not None:
                    item.setForeground(colours[out_row])
                if centred:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if disagree[out_row]:
                    item.setBackground(self._disagree_brush)
                self.table.setItem(out_row, column, item)
        self.table.resizeColumnsToContents()
        if text_field:
            self.table.setColumnWidth(1, min(self.table.columnWidth(1), 380))
        self.table.setUpdatesEnabled(True)

    def pair_lines(self, pinned: int, primary: int) -> list[tuple[str, Any, Any]]:
        """(name, reference value, primary value) per dataset field and per model output."""
        dataset = self.session.dataset
        first, second = dataset.table.take([pinned, primary]).to_pylist()
        lines = [(name, first[name], second[name]) for name in dataset.table.column_names]
        outcomes = self.outcomes()
        for name in outcomes.models if outcomes else ():
            lines.append((f"{name} label", outcomes.label(name, pinned),
                          outcomes.label(name, primary)))
            (argmax, vocab), probs = outcomes.predicted[name], outcomes.probs[name]
            for index in sorted({int(argmax[pinned]), int(argmax[primary])}):
                lines.append((f"{name} p({vocab[index]})", float(probs[pinned, index]),
                              float(probs[primary, index])))
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

    def _on_cell_clicked(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            target = int(item.text().removeprefix("★ "))
            self.session.select(self.session.selection.rows, target, source=self)
