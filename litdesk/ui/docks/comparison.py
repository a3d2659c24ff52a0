"""The Model Comparison dock: each model's prediction for the selected rows, side by side."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core.session import Session

MAX_ROWS_SHOWN = 500
DISAGREE = QColor("#fde2e1")
GOLD_NAMES = ("label", "labels", "gold", "target", "y", "class")


class ComparisonDock(QWidget):
    """A row per selected datapoint: gold label, then per model the label and its probability."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.summary = QLabel("Select rows to compare the models' predictions.")
        self.summary.setWordWrap(True)
        self.gold_choice = QComboBox()
        self.gold_choice.setToolTip("The column holding the true labels")
        self.gold_choice.currentIndexChanged.connect(self.refresh)
        self.only_disagreements = QCheckBox("Disagreements only")
        self.only_disagreements.toggled.connect(self.refresh)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.cellClicked.connect(self._on_cell_clicked)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(QLabel("Gold:"))
        top.addWidget(self.gold_choice)
        top.addWidget(self.only_disagreements)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        session.selection_changed.connect(self._on_selection)
        session.predictions_changed.connect(lambda _model: self._fill_gold_choice())
        session.dataset_changed.connect(self._fill_gold_choice)
        session.spec_changed.connect(self._fill_gold_choice)

    def _on_selection(self, source: object) -> None:
        if source is not self:  # a click here only moves the primary row
            self.refresh()

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

    def _guess_gold(self, columns: list[str]) -> str | None:
        """The field the models name as their gold label, else a column named like one."""
        for predictions in self.session.predictions.values():
            name = predictions.first_of(types.MulticlassPreds)
            parent = predictions.spec[name].parent if name else None  # type: ignore[attr-defined]
            if parent in columns:
                return parent
        return next((c for c in columns if c.lower() in GOLD_NAMES), None)

    def refresh(self) -> None:
        """Rebuild the table for the current selection."""
        dataset = self.session.dataset
        labelled = {name: p.predicted_labels() for name, p in self.session.predictions.items()}
        labelled = {name: value for name, value in labelled.items() if value is not None}
        rows = self.session.selection.rows
        pinned = self.session.selection.pinned
        if pinned is not None:  # the reference row leads, for comparison
            rows = np.concatenate([[pinned], rows[rows != pinned]])
        self.table.clear()
        self.table.setRowCount(0)
        if dataset is None or not labelled or rows.size == 0:
            self.summary.setText("Select rows to compare the models' predictions."
                                 if labelled else "Load models to compare their predictions.")
            return
        gold_field = self.gold_choice.currentData()
        gold = (np.asarray(dataset.table.column(gold_field).take(rows).to_pylist(), dtype=object)
                if gold_field else None)
        labels = {name: np.asarray(vocab, dtype=object)[argmax[rows]]
                  for name, (_f, argmax, vocab) in labelled.items()}
        confidence = {name: self.session.predictions[name].fields[field][rows, argmax[rows]]
                      for name, (field, argmax, _v) in labelled.items()}
        stacked = np.vstack(list(labels.values()))
        disagree = np.any(stacked != stacked[0], axis=0)
        parts = [f"<b>{self.session.selection.rows.size:,}</b> selected"
                 + (" + the pinned reference" if pinned is not None
                    and pinned not in self.session.selection.rows else "")]
        if len(labels) > 1:
            parts.append(f"models disagree on <b>{int(disagree.sum()):,}</b>")
        if gold is not None:
            parts += [f"{name} accuracy <b>{np.mean(values == gold):.1%}</b>"
                      for name, values in labels.items()]
        self.summary.setText(" · ".join(parts))

        shown = np.flatnonzero(disagree) if self.only_disagreements.isChecked() \
            else np.arange(rows.size)
        shown = shown[:MAX_ROWS_SHOWN]
        text_field = next((n for n, t in dataset.spec().items()
                           if isinstance(t, types.TextSegment)), None)
        headers = ["row"] + ([text_field] if text_field else []) + \
            ([f"gold ({gold_field})"] if gold is not None else [])
        for name in labels:
            headers += [f"{name}", f"{name} p"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(shown))
        texts = dataset.table.column(text_field).take(rows[shown]).to_pylist() if text_field else []
        for out_row, position in enumerate(shown):
            marker = "★ " if rows[position] == pinned else ""
            cells = [f"{marker}{int(rows[position])}"] + ([str(texts[out_row])] if text_field else []) + \
                ([str(gold[position])] if gold is not None else [])
            for name in labels:
                cells += [str(labels[name][position]), f"{confidence[name][position]:.3f}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if disagree[position]:
                    item.setBackground(QBrush(DISAGREE))
                self.table.setItem(out_row, column, item)
        self.table.resizeColumnsToContents()
        if text_field:
            self.table.setColumnWidth(1, min(self.table.columnWidth(1), 380))

    def _on_cell_clicked(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            target = int(item.text().removeprefix("★ "))
            self.session.select(self.session.selection.rows, target, source=self)
