"""The Confusion Matrix dock: any two categorical fields against each other; a click selects.

A model's predicted labels come from the session's outcomes; a column is encoded and the
pairs counted on the worker, only while the dock is on screen.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView,
                               QLabel, QTableView, QVBoxLayout)

from litdesk.api import Dataset, types
from litdesk.core.confusion import ConfusionMatrix, confusion_matrix
from litdesk.core.jobs import JobFailed
from litdesk.core.categories import Categories, encode_categories
from litdesk.core.outcomes import Outcomes
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown

#: Cell shades at full strength: agreement (the diagonal) and confusion (elsewhere).
DIAGONAL_SHADE = QColor("#2e9e5b")
OFF_DIAGONAL_SHADE = QColor("#d9603b")
CATEGORICAL_TYPES = (types.CategoryLabel, types.Boolean)

#: A field of the matrix: "column:<dataset column>" or "model:<model name>".
FieldKey = str


def field_categories(dataset: Dataset, outcomes: Optional[Outcomes], key: FieldKey
                     ) -> Categories:
    """The categories of a field: a dataset column's values, or a model's predicted labels."""
    kind, _colon, name = key.partition(":")
    if kind == "model":
        outcome = outcomes.models[name]
        return Categories(outcome.predicted, outcome.labels)
    return encode_categories(dataset.table.column(name),
                             getattr(dataset.spec()[name], "vocab", None))


def _shade(color: QColor, strength: float) -> QColor:
    """``color`` blended over white; ``strength`` 0 is white, 1 the full colour."""
    strength = 0.08 + 0.82 * strength if strength > 0 else 0.0
    return QColor(round(255 + (color.red() - 255) * strength),
                  round(255 + (color.green() - 255) * strength),
                  round(255 + (color.blue() - 255) * strength))


class ConfusionTableModel(QAbstractTableModel):
    """Shows a :class:`ConfusionMatrix`: counts or row percentages, shaded, diagonal in bold."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.matrix: Optional[ConfusionMatrix] = None
        self.row_percent = False
        self._diagonal = np.zeros((0, 0), dtype=bool)
        self._fractions = np.zeros((0, 0))
        self._strength = np.zeros((0, 0))

    def set_matrix(self, matrix: Optional[ConfusionMatrix], row_percent: bool) -> None:
        """Show ``matrix`` (None: nothing), as counts or as percentages of each row."""
        self.beginResetModel()
        self.matrix, self.row_percent = matrix, row_percent
        if matrix is not None:
            self._diagonal = matrix.diagonal()
            self._fractions = matrix.row_fractions()
            peak = max(1, int(matrix.counts.max(initial=0)))
            self._strength = self._fractions if row_percent else matrix.counts / peak
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() or self.matrix is None else len(self.matrix.row_labels)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or self.matrix is None else len(self.matrix.column_labels)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.matrix is None:
            return None
        row, column = index.row(), index.column()
        count = int(self.matrix.counts[row, column])
        if role == Qt.ItemDataRole.DisplayRole:
            if self.row_percent:
                return f"{self._fractions[row, column]:.1%}"
            return f"{count:,}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{self.matrix.row_labels[row]} → {self.matrix.column_labels[column]}: "
                    f"{count:,} rows (click to select them)")
        if role == Qt.ItemDataRole.BackgroundRole:
            color = DIAGONAL_SHADE if self._diagonal[row, column] else OFF_DIAGONAL_SHADE
            return _shade(color, float(self._strength[row, column]))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("white") if self._strength[row, column] > 0.55 else QColor("black")
        if role == Qt.ItemDataRole.FontRole and self._diagonal[row, column]:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if self.matrix is None:
            return None
        horizontal = orientation == Qt.Orientation.Horizontal
        if role == Qt.ItemDataRole.DisplayRole:
            labels = self.matrix.column_labels if horizontal else self.matrix.row_labels
            return labels[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            total = self.matrix.counts[:, section].sum() if horizontal \
                else self.matrix.counts[section].sum()
            label = (self.matrix.column_labels if horizontal else self.matrix.row_labels)[section]
            return (f"{label}: {total:,} rows (click to select the whole "
                    f"{'column' if horizontal else 'row'})")
        return None


class ConfusionDock(RefreshWhenShown):
    """Pick the row and column fields (dataset categories, models' predicted labels)."""

    #: Emitted when the view shows the matrix (or the message) for the current choices.
    counted = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self._slot = JobSlot(runner, "Confusion matrix", self)
        self._columns: dict[FieldKey, Categories] = {}  # encoded columns of the active dataset
        self._defaults: tuple[Optional[FieldKey], Optional[FieldKey]] = (None, None)
        self.row_choice = QComboBox()
        self.row_choice.setToolTip("The field whose values label the rows (e.g. the gold labels)")
        self.column_choice = QComboBox()
        self.column_choice.setToolTip("The field whose values label the columns (e.g. a model)")
        for choice in (self.row_choice, self.column_choice):
            choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            choice.currentIndexChanged.connect(self.count)
        self.row_percent = QCheckBox("Row %")
        self.row_percent.setToolTip("Show each cell as a percentage of its row")
        self.row_percent.toggled.connect(self._show_percent)
        self.selection_only = QCheckBox("Selection only")
        self.selection_only.setToolTip("Count only the selected rows")
        self.selection_only.toggled.connect(self.count)
        self.summary = QLabel()
        self.summary.setWordWrap(True)

        self.model = ConfusionTableModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for header in (self.view.horizontalHeader(), self.view.verticalHeader()):
            header.setSectionsClickable(True)
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.clicked.connect(self._on_cell_clicked)
        self.view.verticalHeader().sectionClicked.connect(
            lambda row: self._select(self.model.matrix.row_rows(row)))
        self.view.horizontalHeader().sectionClicked.connect(
            lambda column: self._select(self.model.matrix.column_rows(column)))

        fields = QHBoxLayout()
        fields.addWidget(QLabel("Rows:"))
        fields.addWidget(self.row_choice)
        fields.addWidget(QLabel("Columns:"))
        fields.addWidget(self.column_choice)
        fields.addStretch(1)
        fields.addWidget(self.row_percent)
        fields.addWidget(self.selection_only)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(fields)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)

        for signal in (session.dataset_changed, session.spec_changed, session.rows_added):
            signal.connect(self._on_rows_changed)
        session.outcomes_changed.connect(self._on_outcomes_changed)
        session.selection_changed.connect(self._on_selection)

    # -- fields ---------------------------------------------------------------------------

    def field_options(self) -> list[tuple[str, FieldKey]]:
        """(label, key) of every field that can be an axis: categorical columns, then the
        classifiers with outcomes."""
        dataset = self.session.dataset
        if dataset is None:
            return []
        options = [(name, f"column:{name}") for name, field_type in dataset.spec().items()
                   if isinstance(field_type, CATEGORICAL_TYPES)]
        outcomes = self.session.outcomes
        options += [(f"{name} (prediction)", f"model:{name}")
                    for name in (outcomes.models if outcomes is not None else ())]
        return options

    def _default_fields(self, keys: list[FieldKey]
                        ) -> tuple[Optional[FieldKey], Optional[FieldKey]]:
        """The gold column of the first model that has one, against the first model."""
        models = [key for key in keys if key.startswith("model:")]
        columns = [key for key in keys if key.startswith("column:")]
        outcomes = self.session.outcomes
        golds = [f"column:{outcomes.models[key.partition(':')[2]].gold_column}"
                 for key in models]
        gold = next((key for key in golds if key in columns), None)
        row = gold or (columns[0] if columns else None)
        column = models[0] if models else next((key for key in columns if key != row), row)
        return row, column

    def _on_rows_changed(self, *_args) -> None:
        self._slot.cancel()  # a count on the old rows must not fill the cache
        self._columns.clear()
        self.request_refresh()

    def _on_outcomes_changed(self) -> None:
        self._slot.cancel()
        self.request_refresh()

    def refresh(self) -> None:
        """List the fields (keeping the user's picks where they still exist, else the
        defaults) and count."""
        options = self.field_options()
        keys = [key for _label, key in options]
        defaults = self._default_fields(keys)
        for choice, default, old_default in zip((self.row_choice, self.column_choice), defaults,
                                                self._defaults):
            current = choice.currentData()
            current = None if current == old_default else current
            choice.blockSignals(True)
            choice.clear()
            for label, key in options:
                choice.addItem(label, key)
            wanted = current if current in keys else default
            if wanted in keys:
                choice.setCurrentIndex(keys.index(wanted))
            choice.blockSignals(False)
        self._defaults = defaults
        self.count()

    # -- the matrix -----------------------------------------------------------------------

    def count(self) -> None:
        """Count the chosen fields over the dataset or the selection, on the worker."""
        dataset = self.session.dataset
        keys = (self.row_choice.currentData(), self.column_choice.currentData())
        if dataset is None or None in keys:
            self._slot.cancel()
            self._show_message("Open a dataset with a categorical column or a classifier to "
                               "see a confusion matrix.")
            return
        rows = self.session.selection.rows if self.selection_only.isChecked() else None
        outcomes, known = self.session.outcomes, dict(self._columns)

        def work() -> tuple[dict[FieldKey, Categories], ConfusionMatrix]:
            fields = {key: known.get(key) or field_categories(dataset, outcomes, key)
                      for key in keys}
            return fields, confusion_matrix(fields[keys[0]], fields[keys[1]], rows)

        self._slot.submit(work, self._show, self._on_failed)

    def _show(self, result: tuple[dict[FieldKey, Categories], ConfusionMatrix]) -> None:
        fields, matrix = result
        self._columns.update({key: categories for key, categories in fields.items()
                              if key.startswith("column:")})
        self.model.set_matrix(matrix, self.row_percent.isChecked())
        total = int(matrix.counts.sum())
        scope = "selected rows" if self.selection_only.isChecked() else "rows"
        parts = [f"<b>{total:,}</b> {scope}: rows are {self.row_choice.currentText()}, "
                 f"columns {self.column_choice.currentText()}"]
        diagonal = int(matrix.counts[matrix.diagonal()].sum())
        if total and matrix.diagonal().any():
            parts.append(f"agreement <b>{diagonal / total:.1%}</b> (bold diagonal)")
        parts.append("click a cell or a header to select its rows")
        self.summary.setText(" · ".join(parts))
        self.counted.emit()

    def _on_failed(self, failure: JobFailed) -> None:
        if isinstance(failure.error, ValueError):
            self._show_message(f"Cannot show this pair: {failure.error}.")
        else:
            self._show_message(f"Counting failed: {failure.error}")

    def _show_message(self, message: str) -> None:
        self.model.set_matrix(None, False)
        self.summary.setText(message)
        self.counted.emit()

    def _show_percent(self, row_percent: bool) -> None:
        self.model.set_matrix(self.model.matrix, row_percent)

    def _on_selection(self, source: object) -> None:
        if source is self:
            return
        self.view.clearSelection()
        if self.selection_only.isChecked():
            self.request_refresh()

    def _on_cell_clicked(self, index: QModelIndex) -> None:
        self._select(self.model.matrix.cell_rows(index.row(), index.column()))

    def _select(self, rows: np.ndarray) -> None:
        self.session.select(rows, source=self)
