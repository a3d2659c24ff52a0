"""The Data Table dock: a virtual view over the active dataset and the models' predictions."""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np
import pyarrow as pa
from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QLineEdit, QMenu, QTableView, QToolButton,
                               QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core import table_query
from litdesk.core.confusion import column_categories
from litdesk.core.datapoints import children_of, generated_rows
from litdesk.core.metrics import gold_column
from litdesk.core.retype import retype_column
from litdesk.core.rows import sorted_unique
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner

BLOCK_ROWS = 256
MAX_CACHED_BLOCKS = 64
#: The slice that holds the starred rows, and how a starred row looks.
STARRED_SLICE = "Starred"
STAR_MARK = "⚑"
STARRED_BACKGROUND = "#fff3c4"
#: Types the user may correct a column to, from the header's context menu.
CORRECTABLE_TYPES = {
    "Text": types.TextSegment,
    "Category": types.CategoryLabel,
    "Number": types.Scalar,
    "Boolean": types.Boolean,
    "Image path": types.ImagePath,
}


def format_value(value: Any) -> str:
    """How a cell shows a value: short numbers, vectors by their size."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} values]"
    if isinstance(value, bytes):
        return f"<{len(value):,} bytes>"
    return str(value)


class ArrowTableModel(QAbstractTableModel):
    """Shows ``table.take(rows)`` without materialising it: rows are fetched in blocks."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = pa.table({})
        self.rows = np.zeros(0, dtype=np.int64)
        self.pinned: Optional[int] = None
        self.starred = np.zeros(0, dtype=np.int64)  # sorted dataset rows
        self._blocks: dict[int, list[dict[str, Any]]] = {}

    def set_table(self, table: pa.Table, rows: Optional[np.ndarray] = None) -> None:
        """Show ``table`` (all rows, or ``rows`` in that order)."""
        self.beginResetModel()
        self.table = table
        self.rows = np.arange(table.num_rows, dtype=np.int64) if rows is None else rows
        self._blocks.clear()
        self.endResetModel()

    def set_rows(self, rows: np.ndarray) -> None:
        """Show these table rows, in this order (after a sort or a filter)."""
        self.set_table(self.table, rows)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.table.num_columns

    def is_starred(self, view_row: int) -> bool:
        """Whether the row shown at ``view_row`` is in the Starred slice."""
        position = np.searchsorted(self.starred, self.rows[view_row])
        return position < self.starred.size and self.starred[position] == self.rows[view_row]

    def row_values(self, view_row: int) -> dict[str, Any]:
        """The values of the row shown at ``view_row``."""
        block = view_row // BLOCK_ROWS
        if block not in self._blocks:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.pop(next(iter(self._blocks)))
            positions = self.rows[block * BLOCK_ROWS:(block + 1) * BLOCK_ROWS]
            self._blocks[block] = self.table.take(pa.array(positions)).to_pylist()
        return self._blocks[block][view_row % BLOCK_ROWS]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            name = self.table.column_names[index.column()]
            value = self.row_values(index.row())[name]
            if role == Qt.ItemDataRole.ToolTipRole:
                return str(value) if isinstance(value, str) and len(value) > 40 else None
            return format_value(value)
        if role == Qt.ItemDataRole.BackgroundRole and self.is_starred(index.row()):
            return QColor(STARRED_BACKGROUND)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            field = self.table.schema.field(index.column())
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.table.column_names[section]
        row = int(self.rows[section])
        star = f"{STAR_MARK} " if self.is_starred(section) else ""
        return f"★ {star}{row}" if row == self.pinned else f"{star}{row}"


class DataTableDock(QWidget):
    """Search bar, filters and the table; selection is two-way bound to the session."""

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.column_filters: dict[str, str] = {}
        self.sort_column: Optional[str] = None
        self.sort_descending = False
        self._applying_selection = False
        self._query_worker = None

        self.dataset_choice = QComboBox()
        self.dataset_choice.setToolTip("The dataset shown; every dataset opened stays here")
        self.dataset_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.dataset_choice.textActivated.connect(session.activate_dataset)
        self.search = QLineEdit(placeholderText="Search: words, \"phrase\", /regex/, "
                                                "score>0.8, label=positive  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.refresh_view)
        self.search.textChanged.connect(self._on_search_edited)
        self.status = QLabel()
        self.status.setObjectName("tableStatus")
        self.filters_label = QLabel()
        self.clear_filters_button = QToolButton(text="Clear filters")
        self.clear_filters_button.clicked.connect(self.clear_filters)
        self.export_button = QToolButton(text="Export CSV…")
        self.export_button.clicked.connect(self.export_view_dialog)
        self.row_scope = QComboBox()
        self.row_scope.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.row_scope.setToolTip("Show every row, only the datapoints made here (edited or "
                                  "generated), or those made from the rows selected now")
        for label, scope in (("All rows", None), ("Made here", "made"),
                             ("Children of the selection", "children")):
            self.row_scope.addItem(label, scope)
        self.row_scope.currentIndexChanged.connect(lambda _index: self._on_scope_changed())
        self._scope_parents = np.zeros(0, dtype=np.int64)  # the selection "children" was set on

        self.model = ArrowTableModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.view.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.sectionClicked.connect(self._on_header_clicked)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        header.setStretchLastSection(False)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        self.view.selectionModel().currentRowChanged.connect(self._on_view_selection)

        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._row_menu)
        pin = QAction("Pin as reference", self.view, shortcut=QKeySequence("Ctrl+P"),
                      shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        pin.triggered.connect(self.toggle_pin)
        self.view.addAction(pin)
        star = QAction("Star / unstar selected rows", self.view, shortcut=QKeySequence("Ctrl+B"),
                       shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        star.triggered.connect(self.toggle_star)
        self.view.addAction(star)
        copy = QAction("Copy rows", self.view, shortcut=QKeySequence.StandardKey.Copy,
                       shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(self.copy_selection)
        self.view.addAction(copy)
        find = QAction("Find", self, shortcut=QKeySequence.StandardKey.Find,
                       shortcutContext=Qt.ShortcutContext.WindowShortcut)
        find.triggered.connect(lambda: (self.search.setFocus(), self.search.selectAll()))
        self.addAction(find)

        bar = QHBoxLayout()
        bar.addWidget(self.dataset_choice)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.row_scope)
        bar.addWidget(self.export_button)
        filters = QHBoxLayout()
        filters.addWidget(self.filters_label, 1)
        filters.addWidget(self.clear_filters_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self._update_filters_label()

        session.datasets_changed.connect(self._fill_dataset_choice)
        session.dataset_changed.connect(self._on_dataset_changed)
        session.rows_added.connect(self._on_rows_added)
        session.predictions_changed.connect(self._on_predictions_changed)
        session.selection_changed.connect(self._on_session_selection)
        session.slices_changed.connect(self._on_slices_changed)

    # -- the table shown ----------------------------------------------------------------

    def display_table(self) -> pa.Table:
        """The dataset's columns plus, per model, its predicted label and confidence, and
        whether the label is right when the model names its gold column (empty without gold)."""
        dataset = self.session.dataset
        if dataset is None:
            return pa.table({})
        table = dataset.table
        for name, predictions in self.session.predictions.items():
            labelled = predictions.predicted_labels()
            if labelled is None:
                continue
            field, argmax, vocab = labelled
            probs = predictions.fields[field]
            table = table.append_column(f"{name}_pred", pa.array(np.asarray(vocab)[argmax]))
            table = table.append_column(
                f"{name}_conf", pa.array(probs[np.arange(len(argmax)), argmax]))
            gold = gold_column(dataset, predictions.spec)
            if gold is not None:
                codes = column_categories(dataset.table.column(gold), vocab).codes
                table = table.append_column(
                    f"{name}_correct", pa.array(codes == argmax, mask=codes < 0))
        return table

    def display_spec(self) -> types.Spec:
        """The spec of :meth:`display_table` (prediction columns as categories, numbers and
        booleans)."""
        spec = dict(self.session.dataset.spec()) if self.session.dataset else {}
        for name in self.model.table.column_names:
            if name not in spec:
                spec[name] = (types.Scalar() if name.endswith("_conf")
                              else types.Boolean() if name.endswith("_correct")
                              else types.CategoryLabel())
        return spec

    def _fill_dataset_choice(self) -> None:
        self.dataset_choice.blockSignals(True)
        self.dataset_choice.clear()
        self.dataset_choice.addItems(list(self.session.datasets))
        self.dataset_choice.blockSignals(False)

    def _on_dataset_changed(self) -> None:
        if self.session.dataset is not None:
            self.dataset_choice.setCurrentText(self.session.dataset.name)
        self.column_filters.clear()
        self.sort_column = None
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.row_scope.blockSignals(True)
        self.row_scope.setCurrentIndex(0)
        self.row_scope.blockSignals(False)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.model.set_table(self.display_table())
        self.model.starred = self.starred_rows()
        self._fit_columns()
        self._update_filters_label()
        self._update_status()

    def _on_rows_added(self, rows: np.ndarray) -> None:
        self.model.set_table(self.display_table(), np.concatenate([self.model.rows, rows]))
        self._fit_columns()
        self._update_status()
        if self.search.text().strip() or self.column_filters or self.sort_column is not None \
                or self.row_scope.currentData() is not None:
            self.refresh_view()  # the new rows stay if they pass the filters

    def scope_rows(self) -> Optional[np.ndarray]:
        """The rows the scope picker allows (None: all)."""
        scope, dataset = self.row_scope.currentData(), self.session.dataset
        if scope is None or dataset is None:
            return None
        if scope == "made":
            return generated_rows(dataset)
        return children_of(dataset, self._scope_parents)

    def _on_scope_changed(self) -> None:
        if self.row_scope.currentData() == "children":
            self._scope_parents = self.session.selection.rows.copy()
            count = self._scope_parents.size
            self.row_scope.setItemText(2, f"Children of the {count:,} row(s) selected"
                                       if count else "Children of the selection (none)")
        else:
            self.row_scope.setItemText(2, "Children of the selection")
        self.refresh_view()

    def _on_predictions_changed(self, _model_name: str) -> None:
        self.model.set_table(self.display_table(), self.model.rows)
        self._fit_columns()
        self._on_session_selection(None)

    def _fit_columns(self) -> None:
        header = self.view.horizontalHeader()
        spec = self.display_spec()
        for column, name in enumerate(self.model.table.column_names):
            if isinstance(spec.get(name), types.TextSegment):
                width = 360
            else:
                width = max(80, header.fontMetrics().horizontalAdvance(name) + 28)
            header.resizeSection(column, width)

    # -- search, filters, sort ----------------------------------------------------------

    def _on_search_edited(self, text: str) -> None:
        if not text:
            self.refresh_view()

    def query(self) -> table_query.RowQuery:
        """The search and column filters as the core's query."""
        return table_query.RowQuery(search=self.search.text().strip(),
                                    column_filters=dict(self.column_filters))

    def refresh_view(self) -> None:
        """Recompute the visible rows (filter, then sort) on the background worker."""
        if self.session.dataset is None:
            return
        table, spec, query = self.model.table, self.display_spec(), self.query()
        column, descending = self.sort_column, self.sort_descending
        scope = self.scope_rows()

        def job():
            from litdesk.core.jobs import Progress

            yield Progress(0, 2, "Filtering rows")
            rows = table_query.filter_rows(table, spec, query, base=scope)
            yield Progress(1, 2, "Sorting rows")
            if column is not None:
                rows = table_query.sort_rows(table, column, descending, rows)
            return rows

        if self._query_worker is not None:
            self.runner.cancel(self._query_worker)
        self._query_worker = self.runner.submit(job(), "Table query", self._show_rows,
                                                self._on_query_error, interactive=True)

    def _show_rows(self, rows: np.ndarray) -> None:
        self._query_worker = None
        self.search.setStyleSheet("")
        self.search.setToolTip("")
        self.model.set_rows(rows)
        self._update_status()
        self._on_session_selection(None)

    def _on_query_error(self, failure) -> None:
        self._query_worker = None
        self.search.setStyleSheet("QLineEdit { border: 1px solid #c0392b; }")
        self.search.setToolTip(str(failure.error))
        self.status.setText(f"Search error: {failure.error}")

    def _on_header_clicked(self, section: int) -> None:
        name = self.model.table.column_names[section]
        if self.sort_column == name:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_column, self.sort_descending = name, False
        order = Qt.SortOrder.DescendingOrder if self.sort_descending else Qt.SortOrder.AscendingOrder
        self.view.horizontalHeader().setSortIndicator(section, order)
        self.refresh_view()

    def set_column_filter(self, column: str, text: str) -> None:
        """Filter ``column`` with ``text`` (the search syntax, scoped to the column)."""
        if text.strip():
            self.column_filters[column] = text.strip()
        else:
            self.column_filters.pop(column, None)
        self._update_filters_label()
        self.refresh_view()

    def clear_filters(self) -> None:
        """Drop every column filter and the search."""
        self.column_filters.clear()
        self.search.clear()
        self.row_scope.blockSignals(True)
        self.row_scope.setCurrentIndex(0)
        self.row_scope.blockSignals(False)
        self._update_filters_label()
        self.refresh_view()

    def _update_filters_label(self) -> None:
        active = [f"{column} {text}" for column, text in self.column_filters.items()]
        self.filters_label.setText("Filters: " + "; ".join(active) if active else
                                   "Right-click a column header to filter it or fix its type")
        self.clear_filters_button.setEnabled(bool(active))

    def _header_menu(self, position) -> None:
        section = self.view.horizontalHeader().logicalIndexAt(position)
        if section < 0:
            return
        name = self.model.table.column_names[section]
        menu = QMenu(self)
        menu.addAction(f"Filter “{name}”…", lambda: self._ask_filter(name))
        if name in self.column_filters:
            menu.addAction("Clear this filter", lambda: self.set_column_filter(name, ""))
        dataset = self.session.dataset
        if dataset is not None and name in dataset.spec():
            types_menu = menu.addMenu("Column type")
            current = type(dataset.spec()[name])
            for label, field_type in CORRECTABLE_TYPES.items():
                action = types_menu.addAction(label, lambda t=field_type: self.set_column_type(name, t))
                action.setCheckable(True)
                action.setChecked(current is field_type)
        menu.exec(self.view.horizontalHeader().mapToGlobal(position))

    def _ask_filter(self, column: str) -> None:
        text, accepted = QInputDialog.getText(
            self, "Filter column", f"Rows whose “{column}” matches (e.g. >0.8, 0.2..0.4, word, /regex/):",
            text=self.column_filters.get(column, ""))
        if accepted:
            self.set_column_filter(column, text)

    def set_column_type(self, column: str, field_type: type) -> None:
        """Correct the inferred type of a dataset column."""
        try:
            new_type = retype_column(self.session.dataset.table.column(column), column,
                                     field_type)
        except ValueError as error:
            self.status.setText(f"Cannot change the type: {error}")
            return
        self.session.update_spec({column: new_type})

    # -- selection ------------------------------------------------------------------------

    def selected_rows(self) -> np.ndarray:
        """Dataset row positions selected in the view (from ranges, never per cell)."""
        parts = [self.model.rows[r.top():r.bottom() + 1]
                 for r in self.view.selectionModel().selection()]
        return sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _on_view_selection(self, *_args) -> None:
        if self._applying_selection:
            return
        current = self.view.selectionModel().currentIndex()
        rows = self.selected_rows()
        primary = int(self.model.rows[current.row()]) if current.isValid() and \
            current.row() < len(self.model.rows) and np.isin(self.model.rows[current.row()], rows) \
            else None
        self.session.select(rows, primary, source=self)

    def _on_session_selection(self, source: object) -> None:
        self._update_status()
        if source is self or self.session.dataset is None:
            return
        selection = self.session.selection
        if self.model.pinned != selection.pinned:
            self.model.pinned = selection.pinned
            self.model.headerDataChanged.emit(Qt.Orientation.Vertical, 0,
                                              max(0, len(self.model.rows) - 1))
        positions = np.full(self.model.table.num_rows, -1, dtype=np.int64)
        positions[self.model.rows] = np.arange(len(self.model.rows))
        shown = np.sort(positions[selection.rows][positions[selection.rows] >= 0]) \
            if selection.rows.size else np.zeros(0, dtype=np.int64)
        item_selection = QItemSelection()
        if shown.size:
            breaks = np.flatnonzero(np.diff(shown) != 1) + 1
            last = self.model.columnCount() - 1
            for run in np.split(shown, breaks):
                item_selection.select(self.model.index(int(run[0]), 0),
                                      self.model.index(int(run[-1]), last))
        self._applying_selection = True
        try:
            selection_model = self.view.selectionModel()
            selection_model.select(item_selection,
                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if selection.primary is not None and positions[selection.primary] >= 0:
                index = self.model.index(int(positions[selection.primary]), 0)
                selection_model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.view.scrollTo(index)
        finally:
            self._applying_selection = False
        self._update_status()

    def toggle_pin(self) -> None:
        """Pin the primary row as the reference, or unpin it if it already is."""
        selection = self.session.selection
        target = None if selection.primary == selection.pinned else selection.primary
        self.session.pin(target, source=self)
        self.model.pinned = target
        self.model.headerDataChanged.emit(Qt.Orientation.Vertical, 0, max(0, len(self.model.rows) - 1))

    def starred_rows(self) -> np.ndarray:
        """The rows of the Starred slice (sorted; empty when nothing is starred)."""
        return self.session.slices.get(STARRED_SLICE, np.zeros(0, dtype=np.int64))

    def toggle_star(self) -> None:
        """Star the selected rows, or unstar them when all of them already are."""
        rows = self.session.selection.rows
        if rows.size == 0:
            return
        starred = self.starred_rows()
        if np.isin(rows, starred).all():
            remaining = np.setdiff1d(starred, rows)
            if remaining.size:
                self.session.set_slice(STARRED_SLICE, remaining)
            else:
                self.session.remove_slice(STARRED_SLICE)
        else:
            self.session.set_slice(STARRED_SLICE, np.union1d(starred, rows))

    def _on_slices_changed(self) -> None:
        starred = self.starred_rows()
        if np.array_equal(starred, self.model.starred):
            return
        self.model.starred = starred
        last_row, last_column = self.model.rowCount() - 1, self.model.columnCount() - 1
        if last_row >= 0:
            self.model.headerDataChanged.emit(Qt.Orientation.Vertical, 0, last_row)
            self.model.dataChanged.emit(self.model.index(0, 0),
                                        self.model.index(last_row, max(0, last_column)),
                                        [Qt.ItemDataRole.BackgroundRole])

    def _row_menu(self, position) -> None:
        if not self.view.indexAt(position).isValid():
            return
        pinned = self.session.selection.pinned is not None and \
            self.session.selection.pinned == self.session.selection.primary
        menu = QMenu(self)
        menu.addAction("Unpin reference" if pinned else "Pin as reference  (Ctrl+P)",
                       self.toggle_pin)
        menu.addAction("Star / unstar selected rows  (Ctrl+B)", self.toggle_star)
        menu.addAction("Copy rows  (Ctrl+C)", self.copy_selection)
        menu.exec(self.view.viewport().mapToGlobal(position))

    # -- copy and export -------------------------------------------------------------------

    def copy_selection(self) -> None:
        """Copy the selected rows, in view order, as tab-separated text with a header."""
        view_rows = sorted({index.row() for index in self.view.selectionModel().selectedRows()})
        names = self.model.table.column_names
        lines = ["\t".join(names)]
        for view_row in view_rows[:100_000]:
            values = self.model.row_values(view_row)
            lines.append("\t".join(json.dumps(values[n]) if isinstance(values[n], list)
                                   else format_value(values[n]).replace("\t", " ") for n in names))
        QGuiApplication.clipboard().setText("\n".join(lines))

    def export_view(self, path: str) -> None:
        """Write the rows in view (filtered and sorted) as CSV."""
        table_query.export_csv(self.model.table, self.model.rows, path)

    def export_view_dialog(self) -> None:
        """Ask for a file and export the current view there."""
        path, _ = QFileDialog.getSaveFileName(self, "Export view as CSV", "view.csv", "CSV (*.csv)")
        if path:
            self.export_view(path)
            self.status.setText(f"Exported {len(self.model.rows):,} rows to {path}")

    def _update_status(self) -> None:
        dataset = self.session.dataset
        if dataset is None:
            self.status.setText("No dataset: drop a file here or use File ▸ Open Dataset")
            return
        selected = self.session.selection.rows.size
        self.status.setText(f"{dataset.name}: {len(self.model.rows):,} of {len(dataset):,} rows"
                            f" shown · {selected:,} selected")
