"""The Confusion Matrix dock: any two categorical fields against each other; a click selects."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView,
                               QLabel, QTableView, QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core.confusion import (Categories, ConfusionMatrix, column_categories,
                                    confusion_matrix, predicted_categories)
from litdesk.core.session import Session

#: Cell shades at full strength: agreement (the diagonal) and confusion (elsewhere).
DIAGONAL_SHADE = QColor("#2e9e5b")
OFF_DIAGONAL_SHADE = QColor("#d9603b")
CATEGORICAL_TYPES = (types.CategoryLabel, types.Boolean)

#: A field of the matrix: "column:<dataset column>" or "model:<model name>".
FieldKey = str


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


class ConfusionDock(QWidget):
    """Pick the row and column fields (dataset categories, models' predicted labels)."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self._categories: dict[FieldKey, Categories] = {}
        self._defaults: tuple[Optional[FieldKey], Optional[FieldKey]] = (None, None)
        self.row_choice = QComboBox()
        self.row_choice.setToolTip("The field whose values label the rows (e.g. the gold labels)")
        self.column_choice = QComboBox()
        self.column_choice.setToolTip("The field whose values label the columns (e.g. a model)")
        for choice in (self.row_choice, self.column_choice):
            choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            choice.currentIndexChanged.connect(self.refresh)
        self.row_percent = QCheckBox("Row %")
        self.row_percent.setToolTip("Show each cell as a percentage of its row")
        self.row_percent.toggled.connect(self.refresh)
        self.selection_only = QCheckBox("Selection only")
        self.selection_only.setToolTip("Count only the selected rows")
        self.selection_only.toggled.connect(self.refresh)
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

        session.dataset_changed.connect(self._on_fields_changed)
        session.spec_changed.connect(self._on_fields_changed)
        session.rows_added.connect(lambda _rows: self._on_fields_changed())
        session.models_changed.connect(self._fill_choices)
        session.predictions_changed.connect(self._on_predictions_changed)
        session.selection_changed.connect(self._on_selection)
        self._fill_choices()

    # -- fields ---------------------------------------------------------------------------

    def field_options(self) -> list[tuple[str, FieldKey]]:
        """(label, key) of every field that can be an axis: categorical columns, then models."""
        dataset = self.session.dataset
        if dataset is None:
            return []
        options = [(name, f"column:{name}") for name, field_type in dataset.spec().items()
                   if isinstance(field_type, CATEGORICAL_TYPES)]
        options += [(f"{name} (prediction)", f"model:{name}")
                    for name, predictions in self.session.predictions.items()
                    if predictions.first_of(types.MulticlassPreds) is not None]
        return options

    def _default_fields(self, keys: list[FieldKey]
                        ) -> tuple[Optional[FieldKey], Optional[FieldKey]]:
        """The gold column the first model names as its parent, against that model."""
        models = [key for key in keys if key.startswith("model:")]
        columns = [key for key in keys if key.startswith("column:")]
        gold = None
        for key in models:
            predictions = self.session.predictions[key.partition(":")[2]]
            parent = predictions.spec[predictions.first_of(types.MulticlassPreds)].parent
            if f"column:{parent}" in columns:
                gold = f"column:{parent}"
                break
        row = gold or (columns[0] if columns else None)
        column = models[0] if models else next((key for key in columns if key != row), row)
        return row, column

    def _on_fields_changed(self) -> None:
        self._categories.clear()
        self._fill_choices()

    def _on_predictions_changed(self, model_name: str) -> None:
        self._categories.pop(f"model:{model_name}", None)
        self._fill_choices()

    def _fill_choices(self) -> None:
        """List the fields; keep the user's picks where they still exist, else the defaults."""
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
        self.refresh()

    def categories(self, key: FieldKey) -> Categories:
        """The codes of a field for the active dataset (computed once per dataset and field)."""
        if key not in self._categories:
            kind, _colon, name = key.partition(":")
            if kind == "column":
                field_type = self.session.dataset.spec()[name]
                self._categories[key] = column_categories(
                    self.session.dataset.table.column(name), getattr(field_type, "vocab", None))
            else:
                _field, argmax, vocab = self.session.predictions[name].predicted_labels()
                self._categories[key] = predicted_categories(argmax, vocab)
        return self._categories[key]

    # -- the matrix -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Recount for the chosen fields over the dataset or the selection."""
        row_key, column_key = self.row_choice.currentData(), self.column_choice.currentData()
        if self.session.dataset is None or row_key is None or column_key is None:
            self.model.set_matrix(None, False)
            self.summary.setText("Open a dataset with a categorical column or a classifier "
                                 "to see a confusion matrix.")
            return
        rows = self.session.selection.rows if self.selection_only.isChecked() else None
        try:
            matrix = confusion_matrix(self.categories(row_key), self.categories(column_key), rows)
        except ValueError as error:
            self.model.set_matrix(None, False)
            self.summary.setText(f"Cannot show this pair: {error}.")
            return
        self.model.set_matrix(matrix, self.row_percent.isChecked())
        total = int(matrix.counts.sum())
        scope = "selected rows" if rows is not None else "rows"
        parts = [f"<b>{total:,}</b> {scope}: rows are {self.row_choice.currentText()}, "
                 f"columns {self.column_choice.currentText()}"]
        diagonal = int(matrix.counts[matrix.diagonal()].sum())
        if total and matrix.diagonal().any():
            parts.append(f"agreement <b>{diagonal / total:.1%}</b> (bold diagonal)")
        parts.append("click a cell or a header to select its rows")
        self.summary.setText(" · ".join(parts))

    def _on_selection(self, source: object) -> None:
        if source is self:
            return
        self.view.clearSelection()
        if self.selection_only.isChecked():
            self.refresh()

    def _on_cell_clicked(self, index: QModelIndex) -> None:
        self._select(self.model.matrix.cell_rows(index.row(), index.column()))

    def _select(self, rows: np.ndarray) -> None:
        self.session.select(rows, source=self)
