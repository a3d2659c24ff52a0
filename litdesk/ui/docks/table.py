"""The Data Table dock: a virtual view over the active dataset and the models' outcomes.

The dataset's columns show at once; each classifier's predicted label, confidence and
correctness (from the session's outcomes) are built on the worker and join when ready.
Queries, copying, exporting and column types run through job slots; a dock hidden behind
another tab catches up when it is shown.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QLineEdit, QMenu, QTableView, QToolButton,
                               QVBoxLayout)

from litdesk.api import types
from litdesk.core import table_query
from litdesk.core.datapoints import children_of, generated_rows
from litdesk.core.jobs import JobFailed, Progress
from litdesk.core.outcomes import Outcomes
from litdesk.core.retype import retype_column
from litdesk.core.rows import contains, sorted_unique
from litdesk.core.session import PartialDataset, Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.widgets.arrow_table_model import (ArrowTableModel, NumberDelegate, RowHeader,
                                                  format_value)

#: Types the user may correct a column to, from the header's context menu.
CORRECTABLE_TYPES = {
    "Text": types.TextSegment,
    "Category": types.CategoryLabel,
    "Number": types.Scalar,
    "Boolean": types.Boolean,
    "Image path": types.ImagePath,
}
#: A selection made elsewhere that falls into more separate runs of the view than this is
#: painted by the model instead of being handed to the view's selection model (which slows
#: down with every range it holds).
MAX_MIRRORED_RANGES = 1_000
#: Copying stops after this many rows.
MAX_COPIED_ROWS = 100_000


def prediction_columns(outcomes: Outcomes) -> dict[str, pa.Array]:
    """Per classifier, its predicted label, the label's probability and, where the dataset
    has gold labels, whether it is right (empty where the gold is unknown)."""
    columns: dict[str, pa.Array] = {}
    for name, outcome in outcomes.models.items():
        columns[f"{name}_pred"] = pc.take(pa.array(outcome.labels, pa.string()),
                                          pa.array(outcome.predicted))
        columns[f"{name}_conf"] = pa.array(outcome.confidence)
        if outcome.gold is not None:
            columns[f"{name}_correct"] = pa.array(outcome.correct, mask=~outcome.has_gold)
    return columns


def rows_as_text(table: pa.Table, rows: np.ndarray) -> str:
    """``rows`` of ``table``, in that order, as tab-separated text under a header line;
    lists as JSON."""
    names = table.column_names
    lines = ["\t".join(names)]
    for values in table.take(pa.array(rows)).to_pylist():
        lines.append("\t".join(json.dumps(values[n]) if isinstance(values[n], list)
                               else format_value(values[n]).replace("\t", " ") for n in names))
    return "\n".join(lines)


def selection_runs(shown: np.ndarray, selected: np.ndarray, num_rows: int,
                   in_order: bool = False) -> np.ndarray:
    """The runs of consecutive view rows whose dataset rows (``shown``, in view order) are in
    ``selected`` (sorted): an array of (first, last) view rows. ``in_order``: ``shown`` is
    every row in dataset order, and the runs come from ``selected`` alone."""
    if in_order:
        rows = selected[selected < len(shown)]
        breaks = np.flatnonzero(np.diff(rows) != 1)
        return np.stack([np.concatenate([rows[:1], rows[breaks + 1]]),
                         np.concatenate([rows[breaks], rows[-1:]])], axis=1)
    wanted = np.zeros(num_rows, dtype=bool)
    wanted[selected[selected < num_rows]] = True
    inside = np.concatenate([[False], wanted[shown], [False]]).view(np.int8)
    edges = np.flatnonzero(np.diff(inside))
    return edges.reshape(-1, 2) - np.array([0, 1])


class DataTableDock(RefreshWhenShown):
    """Search bar, filters and the table; selection is two-way bound to the session."""

    #: The rows in view changed (a query, a sort, new rows); tests wait on it.
    rows_shown = Signal()
    #: The models' columns joined the table.
    columns_shown = Signal()
    #: The user asked to delete the datapoints made here among these rows.
    delete_requested = Signal(object)

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.column_filters: dict[str, str] = {}
        self.sort_column: Optional[str] = None
        self.sort_descending = False
        self._applying_selection = False
        self._scrolled_to: Optional[int] = None  # the primary row the view last scrolled to
        self._shown_dataset: Optional[str] = None
        self._prediction_columns: dict[str, pa.Array] = {}
        self._columns_from: Optional[Outcomes] = None  # the outcomes they were built from
        self.query_slot = JobSlot(runner, "Table query", self)
        self.columns_slot = JobSlot(runner, "Prediction columns", self)
        self.columns_slot.stopped.connect(lambda: setattr(self, "_columns_from", None))
        self.copy_slot = JobSlot(runner, "Copy rows", self)
        self.export_slot = JobSlot(runner, "Export rows", self)
        self.retype_slot = JobSlot(runner, "Column type", self)

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
        self.view.setVerticalHeader(RowHeader(self.view))
        self.view.setItemDelegate(NumberDelegate(self.view))  # "…", never a cut-off number
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
        # A header asks its selection model whether each column is selected, checking every
        # row (seconds at a million rows): the column headers get a selection of their own.
        header.setSelectionModel(QItemSelectionModel(self.model, header))
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
        self.delete_action = QAction("Delete datapoints made here", self.view,
                                     shortcut=QKeySequence.StandardKey.Delete,
                                     shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        self.delete_action.triggered.connect(self.delete_made_rows)
        self.view.addAction(self.delete_action)
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
        session.rows_added.connect(lambda _rows: self.request_refresh())
        session.outcomes_changed.connect(self.request_refresh)
        session.selection_changed.connect(self._on_session_selection)
        session.slices_changed.connect(self.request_refresh)

    # -- the table shown ----------------------------------------------------------------

    def refresh(self) -> None:
        """Catch up with the session: the dataset and its new rows, the models' columns, the
        starred rows and the selection."""
        dataset = self.session.dataset
        if dataset is None:
            self._update_status()
            return
        if dataset.name != self._shown_dataset or len(dataset) < self.model.table.num_rows:
            # Another dataset, or datapoints made here were deleted (later rows moved up).
            self._shown_dataset = dataset.name
            self._prediction_columns, self._columns_from = {}, None
            self.columns_slot.cancel()
            self.model.set_table(self.display_table())
            self._fit_columns()
            self.rows_shown.emit()
        elif len(dataset) != self.model.table.num_rows:
            added = np.arange(self.model.table.num_rows, len(dataset), dtype=np.int64)
            self.model.set_table(self.display_table(), np.concatenate([self.model.rows, added]))
            self.rows_shown.emit()
            if self._query_active():
                self.refresh_view(to_top=False)  # the new rows stay if they pass the filters
        self._request_columns()
        self.model.set_starred(self.session.starred)
        self._apply_selection()

    def display_table(self) -> pa.Table:
        """The dataset's columns plus, per model, its predicted label and confidence, and
        whether the label is right when the model names its gold column (empty without gold).

        Rows added since the models' columns were built have empty cells there until the
        outcomes of every row arrive."""
        dataset = self.session.dataset
        if dataset is None:
            return pa.table({})
        table = dataset.table
        for name, column in self._prediction_columns.items():
            missing = table.num_rows - len(column)
            if missing > 0:
                column = pa.chunked_array([column, pa.nulls(missing, column.type)])
            table = table.append_column(name, column)
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

    def _request_columns(self) -> None:
        outcomes = self.session.outcomes
        if outcomes is None or outcomes is self._columns_from:
            return
        self._columns_from = outcomes
        self.columns_slot.submit(lambda: prediction_columns(outcomes),
                                 lambda columns: self._show_columns(outcomes, columns))

    def _show_columns(self, outcomes: Outcomes, columns: dict[str, pa.Array]) -> None:
        dataset = self.session.dataset
        if dataset is None or dataset.name != outcomes.dataset_name:
            return
        names = list(self._prediction_columns)
        self._prediction_columns = columns
        self.model.set_table(self.display_table(), self.model.rows)
        if list(columns) != names:
            self._fit_columns()
        self._apply_selection()
        self.columns_shown.emit()
        if self._query_active():
            self.refresh_view(to_top=False)  # a filter or sort may be on a model's column

    def _fill_dataset_choice(self) -> None:
        self.dataset_choice.blockSignals(True)
        self.dataset_choice.clear()
        self.dataset_choice.addItems(list(self.session.datasets))
        self.dataset_choice.blockSignals(False)

    def _on_dataset_changed(self) -> None:
        if self.session.dataset is not None:
            self.dataset_choice.setCurrentText(self.session.dataset.name)
        self.query_slot.cancel()
        self.column_filters.clear()
        self.sort_column = None
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.row_scope.blockSignals(True)
        self.row_scope.setCurrentIndex(0)
        self.row_scope.blockSignals(False)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._update_filters_label()
        self.request_refresh()

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

    def _query_active(self) -> bool:
        return bool(self.search.text().strip() or self.column_filters
                    or self.sort_column is not None or self.row_scope.currentData() is not None)

    def refresh_view(self, to_top: bool = True) -> None:
        """Recompute the visible rows (filter, then sort) on the background worker; with
        ``to_top`` (a new search, filter or sort) the view then shows the top of the result."""
        if self.session.dataset is None:
            return
        table, spec, query = self.model.table, self.display_spec(), self.query()
        column, descending = self.sort_column, self.sort_descending
        scope = self.scope_rows()

        def job():
            yield Progress(0, 2, "Filtering rows")
            rows = table_query.filter_rows(table, spec, query, base=scope)
            yield Progress(1, 2, "Sorting rows")
            if column is not None:
                rows = table_query.sort_rows(table, column, descending, rows)
            return rows

        self.query_slot.submit(job(), lambda rows: self._show_rows(rows, to_top),
                               self._on_query_error)

    def _show_rows(self, rows: np.ndarray, to_top: bool = False) -> None:
        self.search.setStyleSheet("")
        self.search.setToolTip("")
        self.model.set_rows(rows)
        self._apply_selection(scroll=not to_top)
        if to_top:
            self.view.scrollToTop()
            self._scrolled_to = self.session.selection.primary
        self.rows_shown.emit()

    def _on_query_error(self, failure: JobFailed) -> None:
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
        """Correct the inferred type of a dataset column (checked against its values in the
        background)."""
        dataset = self.session.dataset
        values = dataset.table.column(column)
        self.retype_slot.submit(
            lambda: retype_column(values, column, field_type),
            lambda new_type: self.session.update_spec({column: new_type})
            if self.session.dataset is not None and self.session.dataset.name == dataset.name
            else None,
            lambda failure: self.status.setText(f"Cannot change the type: {failure.error}"))

    # -- selection ------------------------------------------------------------------------

    def _view_rows_selected(self) -> np.ndarray:
        """Dataset rows selected in the view, sorted (from its ranges, never per cell)."""
        ranges = [(selected.top(), selected.bottom() + 1)
                  for selected in self.view.selectionModel().selection()]
        if self.model.in_dataset_order and len(ranges) == 1:  # a click, Shift+click or Ctrl+A
            return np.arange(*ranges[0], dtype=np.int64)
        wanted = np.zeros(self.model.table.num_rows, dtype=bool)
        for first, end in ranges:
            wanted[self.model.rows[first:end]] = True
        return np.flatnonzero(wanted)

    def _on_view_selection(self, *_args) -> None:
        if self._applying_selection:
            return
        current = self.view.selectionModel().currentIndex()
        rows = self._view_rows_selected()
        row = int(self.model.rows[current.row()]) if current.isValid() and \
            current.row() < len(self.model.rows) else None
        modifiers = QGuiApplication.keyboardModifiers()
        if self.model.selected is None:  # the view holds the whole selection of its rows
            if modifiers & (Qt.KeyboardModifier.ControlModifier
                            | Qt.KeyboardModifier.ShiftModifier):
                # Selected rows a filter hides stay selected: filters never change the selection.
                # (np.union1d hashes: half a second for Ctrl+A on a million rows)
                hidden = self._hidden_selected_rows()
                if hidden.size:
                    rows = sorted_unique(np.concatenate([rows, hidden]))
            self.session.select(rows, row if row is not None and contains(rows, row) else None,
                                source=self)
            return
        # A selection painted by the model: a click replaces it, Ctrl toggles, Shift adds.
        mode = ("toggle" if modifiers & Qt.KeyboardModifier.ControlModifier else
                "add" if modifiers & Qt.KeyboardModifier.ShiftModifier else "replace")
        self.model.set_selected(None)
        self.session.select(rows, row, source=self, mode=mode)
        if mode != "replace":
            self._apply_selection()

    def _hidden_selected_rows(self) -> np.ndarray:
        """The selected rows that the search, filters or scope hide from the view."""
        selected = self.session.selection.rows
        if not selected.size or len(self.model.rows) == self.model.table.num_rows:
            return selected[:0]
        shown = np.zeros(self.model.table.num_rows, dtype=bool)
        shown[self.model.rows] = True
        selected = selected[selected < len(shown)]
        return selected[~shown[selected]]

    def _on_session_selection(self, source: object) -> None:
        self._update_status()
        if source is not self:
            self.request_refresh()

    def _apply_selection(self, scroll: bool = True) -> None:
        """Show the session's selection, primary row and pinned row in the view (scrolled to
        the primary row unless ``scroll`` is False)."""
        selection = self.session.selection
        self.model.set_pinned(selection.pinned)
        runs = selection_runs(self.model.rows, selection.rows, self.model.table.num_rows,
                              self.model.in_dataset_order)
        self._applying_selection = True
        try:
            selection_model = self.view.selectionModel()
            item_selection = QItemSelection()
            if len(runs) > MAX_MIRRORED_RANGES:
                self.model.set_selected(selection.rows)
            else:
                self.model.set_selected(None)
                last = self.model.columnCount() - 1
                for first, final in runs.tolist():
                    item_selection.select(self.model.index(first, 0), self.model.index(final, last))
            selection_model.select(item_selection,
                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)
            view_row = self._view_row(selection.primary)
            if view_row is not None:
                index = self.model.index(view_row, 0)
                self.view.setAutoScroll(False)  # the view scrolls only where said below
                selection_model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.view.setAutoScroll(True)
                # Scrolled to a primary row once, when it becomes primary: new columns or
                # outcomes do not pull the view back to it.
                if scroll and selection.primary != self._scrolled_to:
                    self.view.scrollTo(index)
            if scroll or view_row is None:
                self._scrolled_to = selection.primary if view_row is not None else None
        finally:
            self._applying_selection = False
        self._update_status()

    def _view_row(self, row: Optional[int]) -> Optional[int]:
        """Where dataset row ``row`` is shown (None: not shown)."""
        if row is None:
            return None
        found = np.flatnonzero(self.model.rows == row)
        return int(found[0]) if found.size else None

    def toggle_pin(self) -> None:
        """Pin the primary row as the reference, or unpin it if it already is."""
        self.session.toggle_pin(source=self)
        self.model.set_pinned(self.session.selection.pinned)

    def toggle_star(self) -> None:
        """Star the selected rows, or unstar them when all of them already are."""
        self.session.toggle_star(self.session.selection.rows)

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
        made = self.made_rows_selected()
        delete = menu.addAction(f"Delete {made.size:,} datapoint(s) made here  (Del)"
                                if made.size else "Delete datapoints made here  (Del)",
                                self.delete_made_rows)
        delete.setEnabled(bool(made.size))
        delete.setToolTip("Rows of the dataset's file cannot be deleted")
        menu.exec(self.view.viewport().mapToGlobal(position))

    def made_rows_selected(self) -> np.ndarray:
        """The selected rows that were made here (edited or generated), which can be deleted."""
        dataset = self.session.dataset
        if dataset is None:
            return np.zeros(0, dtype=np.int64)
        made = generated_rows(dataset)
        return made[np.isin(made, self.session.selection.rows)]

    def delete_made_rows(self) -> None:
        """Ask to delete the selected datapoints made here (journaled, so for good)."""
        made = self.made_rows_selected()
        if made.size:
            self.delete_requested.emit(made)

    # -- copy and export -------------------------------------------------------------------

    def copy_selection(self) -> None:
        """Copy the selected rows shown, in view order, as tab-separated text with a header
        (the first :data:`MAX_COPIED_ROWS`), built in the background."""
        table, shown, selected = self.model.table, self.model.rows, self.session.selection.rows

        def text() -> str:
            wanted = np.zeros(table.num_rows, dtype=bool)
            wanted[selected[selected < table.num_rows]] = True
            return rows_as_text(table, shown[wanted[shown]][:MAX_COPIED_ROWS])

        self.copy_slot.submit(text, QGuiApplication.clipboard().setText,
                              lambda failure: self.status.setText(f"Copy failed: {failure.error}"))

    def export_view(self, path: str) -> None:
        """Write the rows in view (filtered and sorted) as CSV, in the background."""
        table, rows = self.model.table, self.model.rows
        self.export_slot.submit(
            lambda: table_query.export_csv(table, rows, path),
            lambda _done: self.status.setText(f"Exported {len(rows):,} rows to {path}"),
            lambda failure: self.status.setText(f"Export failed: {failure.error}"),
            interactive=False)

    def export_view_dialog(self) -> None:
        """Ask for a file and export the current view there."""
        path, _ = QFileDialog.getSaveFileName(self, "Export view as CSV", "view.csv", "CSV (*.csv)")
        if path:
            self.export_view(path)

    def _update_status(self) -> None:
        dataset = self.session.dataset
        if dataset is None:
            self.status.setText("No dataset: drop a file here or use File ▸ Open Dataset")
            return
        selected = self.session.selection.rows.size
        of_rows = f"the first {len(dataset):,} rows (the rest is loading)" \
            if isinstance(dataset, PartialDataset) else f"{len(dataset):,} rows"
        self.status.setText(f"{dataset.name}: {len(self.model.rows):,} of {of_rows}"
                            f" shown · {selected:,} selected")
