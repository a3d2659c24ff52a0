"""The Data Quality dock: what is wrong with the data, found on the worker.

Four sortable lists from :func:`litdesk.core.quality.audit_job`: possible label errors (with
the label quality and the suggested label), outliers, near and exact duplicates (each row
with its twin) and ambiguous rows. Clicking rows selects them everywhere; each list saves as a
slice; "Accept suggested label" asks the window (:attr:`QualityDock.labels_fixed`) to set the
labels, which it journals like any edit. The audit runs only while the dock is on screen and
its result is cached, so opening the dock again costs a lookup. It runs in a child process
(``audit_job(in_child_process=True)``): its stages hold the GIL for seconds and its matrices
are large, neither of which the window should share; Cancel kills the child at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QLabel, QProgressBar, QPushButton,
                               QTableView, QTabWidget, QToolButton, QVBoxLayout)

from litdesk.api import types
from litdesk.api.dataset import table_rows
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import Job, JobFailed, Progress
from litdesk.core.quality import (AMBIGUOUS_MARGIN, NO_ROW, Audit, AuditError, audit_job,
                                  input_columns)
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.widgets.flow_layout import FlowLayout

TITLE = "Data quality audit"
LABEL_TYPES = (types.CategoryLabel, types.Boolean)
PREVIEW_CHARACTERS = 120
NO_LABEL = "(no label: outliers and duplicates only)"
#: What an empty list says.
EMPTY_LISTS = {
    "Label issues": "No likely label errors: every given label agrees with the out-of-sample "
                    "class probabilities.",
    "Outliers": "No outliers: no row lies far from its nearest neighbours.",
    "Duplicates": "No exact or near duplicates.",
    "Ambiguous": "No ambiguous rows: the top two classes are never within "
                 f"{AMBIGUOUS_MARGIN:g} of each other."}


@dataclass(frozen=True)
class Column:
    """A column of a list: its header and, per row shown, its value (shown and sorted)."""

    header: str
    values: Callable[[np.ndarray], np.ndarray]  # rows -> one value per row
    numeric: bool = True


@dataclass(frozen=True)
class Listing:
    """One list of the dock: its tab name, the slice name it saves as, its rows and columns."""

    name: str
    slice_name: str
    rows: np.ndarray
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Found:
    """An audit with its summary and the rows of each list, in order: sorting a million rows
    takes a tenth of a second, so it is done on the worker (:func:`found_job`)."""

    audit: Audit
    summary: str
    rows: dict[str, np.ndarray]  # list name -> dataset rows


def found_job(job: Job[Audit]) -> Job[Found]:
    """``job``'s audit with its summary and lists."""
    audit = yield from job
    yield Progress(0, 0, "Sorting the lists")
    return Found(audit, audit.summary(), {
        "Label issues": audit.label_issue_rows(), "Outliers": audit.outlier_rows(),
        "Duplicates": audit.duplicate_rows(), "Ambiguous": audit.ambiguous_rows()})


#: The rows whose texts size a list's columns (a longer value further down shows in full in
#: its tooltip), and the room beside a cell's text and beside a header's (its sort arrow).
SIZING_ROWS = 50
#: A list's values are read this many rows at a time, as they are shown.
VALUES_BLOCK = 256
CELL_PADDING, HEADER_PADDING = 16, 28


def _fit_columns(view: QTableView) -> None:
    """Size each column but the last (it stretches) to its header and its first rows' texts,
    which the user can then drag. Qt's ResizeToContents asks eight roles of every cell it
    measures, again at each sort: 30 to 50 ms a list on the GUI thread at a million rows."""
    model, header = view.model(), view.horizontalHeader()
    header_metrics, cell_metrics = header.fontMetrics(), view.fontMetrics()
    rows = range(min(SIZING_ROWS, model.rowCount()))
    for column in range(model.columnCount() - 1):
        title = model.headerData(column, Qt.Orientation.Horizontal)
        width = header_metrics.horizontalAdvance(title) + HEADER_PADDING
        for row in rows:
            text = model.data(model.index(row, column)) or ""
            width = max(width, cell_metrics.horizontalAdvance(text) + CELL_PADDING)
        header.resizeSection(column, width)


#: The roles :class:`RowsModel` answers; Qt asks for others of every cell it measures.
_ROLES_ANSWERED = frozenset({Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                             Qt.ItemDataRole.TextAlignmentRole})


class RowsModel(QAbstractTableModel):
    """A virtual table of a :class:`Listing`: values are read for the rows on screen; sorting
    reorders row positions with numpy."""

    def __init__(self, listing: Listing, preview: Callable[[int], str], parent=None) -> None:
        super().__init__(parent)
        self.listing = listing
        self.preview = preview
        self.order = np.arange(len(listing.rows))
        self._columns: dict[int, np.ndarray] = {}  # whole columns, read to sort
        self._blocks: dict[tuple[int, int], np.ndarray] = {}  # (column, block) -> values

    def rows(self, positions=None) -> np.ndarray:
        """The dataset rows shown at ``positions`` (default: all, in the order shown)."""
        order = self.order if positions is None else self.order[np.asarray(positions, int)]
        return self.listing.rows[order]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt)
        return 0 if parent.isValid() else len(self.listing.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt)
        return 0 if parent.isValid() else len(self.listing.columns) + 1

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        return self.listing.columns[section].header if section < len(self.listing.columns) \
            else "Input"

    def _column(self, section: int) -> np.ndarray:
        if section not in self._columns:
            self._columns[section] = self.listing.columns[section].values(self.listing.rows)
            self._blocks = {key: values for key, values in self._blocks.items()
                            if key[0] != section}
        return self._columns[section]

    def _value(self, section: int, position: int) -> Any:
        """One value of a column, read with its block of the list unless the whole column was
        read to sort: a list of half a million rows shows without reading them all."""
        if section in self._columns:
            return self._columns[section][position]
        block, offset = divmod(position, VALUES_BLOCK)
        values = self._blocks.get((section, block))
        if values is None:
            start = block * VALUES_BLOCK
            values = self.listing.columns[section].values(
                self.listing.rows[start:start + VALUES_BLOCK])
            self._blocks[(section, block)] = values
        return values[offset]

    def forget_values(self) -> None:
        """Read the values again when next shown (the dataset's labels changed)."""
        self._columns.clear()
        self._blocks.clear()
        self.dataChanged.emit(self.index(0, 0),
                              self.index(self.rowCount() - 1, self.columnCount() - 1))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ROLES_ANSWERED or not index.isValid():
            return None
        position = int(self.order[index.row()])
        if index.column() == len(self.listing.columns):
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                text = self.preview(int(self.listing.rows[position]))
                return text if role == Qt.ItemDataRole.ToolTipRole \
                    else text[:PREVIEW_CHARACTERS]
            return None
        column = self.listing.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(index.column(), position)
            if column.numeric and isinstance(value, (float, np.floating)):
                return "" if np.isnan(value) else f"{value:.3g}"
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def sort(self, section: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if section >= len(self.listing.columns):
            return
        if section < 0:  # no sort indicator (Qt's -1): the list's own order, worst first
            self.layoutAboutToBeChanged.emit()
            self.order = np.arange(len(self.listing.rows))
            self.layoutChanged.emit()
            return
        values = self._column(section)
        if not self.listing.columns[section].numeric:
            values = np.asarray([str(v) for v in values], dtype=object)
        self.layoutAboutToBeChanged.emit()
        self.order = np.argsort(values, kind="stable")
        if order == Qt.SortOrder.DescendingOrder:
            self.order = self.order[::-1]
        self.layoutChanged.emit()


class QualityDock(RefreshWhenShown):
    """Label issues, outliers, duplicates and ambiguous rows of the active dataset."""

    #: The window sets these labels, journaled: (column, rows, values).
    labels_fixed = Signal(str, object, object)
    #: An audit was shown (or its empty state); tests wait on it.
    shown = Signal()

    def __init__(self, session: Session, runner: JobRunner,
                 cache: Optional[ResultCache] = None, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.cache = cache
        self.audit: Optional[Audit] = None
        self._summary = ""
        self._slot = JobSlot(runner, TITLE, self)
        self._slot.stopped.connect(lambda: self._show_message(
            "The audit was cancelled. Press Audit to run it again."))
        runner.progress.connect(self._on_progress)

        self.label_choice = QComboBox()
        self.label_choice.setToolTip("The column of given labels to check")
        self.label_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.label_choice.activated.connect(lambda _index: self.recompute())
        self.source_choice = QComboBox()
        self.source_choice.addItem("the classifiers' predictions", True)
        self.source_choice.addItem("a cross-validated baseline", False)
        self.source_choice.setToolTip(
            "Where the class probabilities come from: the loaded classifiers (only right if "
            "they were not trained on these rows), or a baseline cross-validated here")
        self.source_choice.activated.connect(lambda _index: self.recompute())
        self.audit_button = QPushButton("Audit")
        self.audit_button.setToolTip("Find label errors, outliers and duplicates (F5)")
        self.audit_button.setShortcut(QKeySequence("F5"))
        self.audit_button.clicked.connect(lambda: self.on_screen and self.recompute())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(lambda _index: self._update_buttons())
        self.tabs.currentChanged.connect(lambda _index: self._fit_shown_list())
        self.views: list[QTableView] = []
        #: Lists whose columns are not sized yet: each is when its tab is first shown.
        self.unfitted: list[QTableView] = []
        self.listings: list[Listing] = []

        self.save_action = QAction("Save as slice", self, shortcut=QKeySequence("Ctrl+Alt+S"))
        self.save_action.setToolTip("Keep the rows of this list as a named slice (Ctrl+Alt+S)")
        self.save_action.triggered.connect(self.save_slice)
        self.accept_action = QAction("Accept suggested label", self,
                                     shortcut=QKeySequence("Ctrl+Alt+A"))
        self.accept_action.setToolTip("Replace the given label of the chosen rows by the "
                                      "suggested one; journaled, kept on reopening (Ctrl+Alt+A)")
        self.accept_action.triggered.connect(self.accept_suggested)
        for action in (self.save_action, self.accept_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        save_button, accept_button = QToolButton(), QToolButton()
        save_button.setDefaultAction(self.save_action)
        accept_button.setDefaultAction(self.accept_action)

        top = FlowLayout()
        top.addWidget(QLabel("Label:"))
        top.addWidget(self.label_choice)
        top.addWidget(QLabel("Probabilities from"))
        top.addWidget(self.source_choice)
        top.addWidget(self.audit_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(save_button)
        top.addWidget(accept_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

        session.dataset_changed.connect(self._on_rows_changed)
        session.spec_changed.connect(self._on_data_changed)
        session.rows_added.connect(self._on_data_changed)
        session.predictions_changed.connect(self._on_data_changed)
        session.values_changed.connect(self._on_values_changed)
        self._fixed_since = 0
        self._update_buttons()
        self._show_message("Load a dataset to audit it.")

    # -- computing -------------------------------------------------------------------------

    def _on_data_changed(self, *_args) -> None:
        self._slot.cancel()
        self.request_refresh()

    def _on_rows_changed(self) -> None:
        """Datapoints were deleted (later rows moved up) or another dataset is active: the
        lists name rows that now hold other datapoints, so they go at once (a label accepted
        from them would land on the wrong row)."""
        if self.audit is not None:
            self._show_message("The rows changed; auditing them again…")
        self._on_data_changed()

    def refresh(self) -> None:
        """Offer the label columns and audit the active dataset."""
        self._fill_labels()
        self.recompute()

    def _fill_labels(self) -> None:
        dataset = self.session.dataset
        current = self.label_choice.currentData()
        names = [] if dataset is None else [
            name for name, t in dataset.spec().items() if isinstance(t, LABEL_TYPES)]
        outcomes = self.session.outcomes
        gold = next((outcome.gold_column for outcome in outcomes.models.values()
                     if outcome.gold_column), None) if outcomes else None
        self.label_choice.blockSignals(True)
        self.label_choice.clear()
        for name in names:
            self.label_choice.addItem(name, name)
        self.label_choice.addItem(NO_LABEL, None)
        preferred = current if current in names else gold if gold in names else \
            (names[0] if names else None)
        self.label_choice.setCurrentIndex(self.label_choice.findData(preferred))
        self.label_choice.blockSignals(False)

    def recompute(self) -> None:
        """Audit the active dataset on the worker (from the cache when it was done before)."""
        dataset = self.session.dataset
        if dataset is None or not len(dataset):
            self._slot.cancel()
            self._show_message("Load a dataset to audit it.")
            return
        label = self.label_choice.currentData()
        if not input_columns(dataset, label):
            self._slot.cancel()
            self._show_message(f"{dataset.name} has no text, category or number column to "
                               "audit.")
            return
        predictions = dict(self.session.predictions)
        use_models = bool(self.source_choice.currentData())
        classifiers = [name for name, p in predictions.items()
                       if p.first_of(types.MulticlassPreds) is not None] if use_models else []
        source = f"the predictions of {', '.join(classifiers)}" if classifiers else \
            "a baseline cross-validated on the input columns"
        self.status.setText(f"Auditing {len(dataset):,} rows of {dataset.name}"
                            + (f" with {source}" if label else "") + "…")
        self._fixed_since = 0
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self._slot.submit(found_job(audit_job(dataset, label, predictions=predictions,
                                              cache=self.cache, use_models=use_models,
                                              in_child_process=True)),
                          self._show, self._on_failed)

    def cancel(self) -> None:
        """Stop the audit under way."""
        if self._slot.busy:
            self._slot.cancel()
            self._show_message("The audit was cancelled. Press Audit to run it again.")

    def _on_progress(self, title: str, progress: Progress) -> None:
        if title != TITLE or not self._slot.busy:
            return
        fraction = progress.fraction
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        if progress.message:
            self.progress.setToolTip(progress.message)
            self.status.setText(f"Auditing: {progress.message}…")

    def _on_failed(self, failure: JobFailed) -> None:
        error = failure.error  # an AuditError already reads "The audit failed: …"
        self._show_message(str(error) if isinstance(error, AuditError)
                           else f"The audit failed: {error}")

    def _end_progress(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    def _show_message(self, message: str) -> None:
        self._end_progress()
        self.audit = None
        self.listings = []
        self.views = []
        self.unfitted = []
        self.tabs.clear()
        self.status.setText(message)
        self._update_buttons()
        self.shown.emit()

    # -- showing ---------------------------------------------------------------------------

    def _show(self, found: Found) -> None:
        self._end_progress()
        audit = found.audit
        dataset = self.session.dataset
        if dataset is None or len(dataset) != audit.num_rows:
            return
        self.audit, self._summary = audit, found.summary
        self.status.setText(found.summary + f". Neighbours in {audit.space}.")
        current = self.tabs.currentIndex()
        self.tabs.clear()
        self.views, self.listings = [], []
        for listing in self._listings(audit, found.rows):
            view = QTableView()
            view.setModel(RowsModel(listing, self._preview, view))
            view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            view.setSortingEnabled(True)  # after: it sorts by the indicator's column
            view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            view.verticalHeader().hide()
            view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
            view.setWordWrap(False)
            view.horizontalHeader().setStretchLastSection(True)
            view.selectionModel().selectionChanged.connect(
                lambda *_args, view=view: self._on_rows_chosen(view))
            page = view
            if not len(listing.rows):  # say what was looked for instead of an empty table
                page = QLabel(EMPTY_LISTS[listing.name])
                page.setWordWrap(True)
                page.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.tabs.addTab(page, f"{listing.name} ({len(listing.rows):,})")
            view.setToolTip("Click rows to select them everywhere")
            self.views.append(view)
            self.listings.append(listing)
        self.unfitted = list(self.views)
        self.tabs.setCurrentIndex(max(0, current))
        self._fit_shown_list()
        self._update_buttons()
        self.shown.emit()

    def _fit_shown_list(self) -> None:
        # Sizing a list's columns reads and measures its first rows: 6 ms a list at a million
        # rows, for lists the user may never open.
        view = self.tabs.currentWidget()
        if view in self.unfitted:
            self.unfitted.remove(view)
            _fit_columns(view)

    def _preview(self, row: int) -> str:
        dataset = self.session.dataset
        if dataset is None or row >= len(dataset):
            return ""
        label = self.label_choice.currentData()
        names = input_columns(dataset, label)
        texts = [name for name in names if isinstance(dataset.spec()[name], types.TextSegment)]
        shown = texts[:1] or names[:6]
        values = [dataset.table.column(name)[row].as_py() for name in shown]
        if texts:
            return str(values[0])
        return ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                         for name, value in zip(shown, values))

    def _given_names(self, rows: np.ndarray) -> np.ndarray:
        dataset, label = self.session.dataset, self.label_choice.currentData()
        if dataset is None or label is None:
            return np.full(len(rows), "", dtype=object)
        # A block of rows read as slices: take() on a million-row column of many chunks
        # concatenates them first (35 ms on the GUI thread).
        labels = table_rows(dataset.table.select([label]), rows)
        return np.asarray([row[label] for row in labels], dtype=object)

    def _listings(self, audit: Audit, found: dict[str, np.ndarray]) -> list[Listing]:
        row = Column("Row", lambda rows: rows)
        listings = []
        labels = audit.labels
        if labels is not None:
            names = np.asarray(labels.classes, dtype=object)

            def suggested(rows: np.ndarray) -> np.ndarray:
                return names[labels.suggested[rows]]

            listings.append(Listing("Label issues", "Possible label errors",
                                    found["Label issues"], (
                row, Column("Given", self._given_names, numeric=False),
                Column("Suggested", suggested, numeric=False),
                Column("Label quality", lambda rows: labels.quality[rows]))))
        listings.append(Listing("Outliers", "Outliers", found["Outliers"], (
            row, Column("Outlier score", lambda rows: audit.outlier_score[rows]))))
        listings.append(Listing("Duplicates", "Near duplicates", found["Duplicates"], (
            row, Column("Twin", audit.twins),
            Column("Kind", lambda rows: np.where(audit.exact_duplicate_of[rows] != NO_ROW,
                                                 "exact", "near"), numeric=False),
            Column("Distance", lambda rows: audit.nearest_distance[rows]))))
        if labels is not None:
            listings.append(Listing("Ambiguous", "Ambiguous rows", found["Ambiguous"], (
                row, Column("Top class", suggested,
                            numeric=False),
                Column("Margin", lambda rows: labels.margin[rows]))))
        return listings

    # -- acting on the lists ---------------------------------------------------------------

    def current_listing(self) -> Optional[Listing]:
        """The list in front, if any."""
        index = self.tabs.currentIndex()
        return self.listings[index] if 0 <= index < len(self.listings) else None

    def chosen_rows(self) -> np.ndarray:
        """The dataset rows chosen in the list in front, in the order shown."""
        index = self.tabs.currentIndex()
        if not 0 <= index < len(self.views):
            return np.zeros(0, np.int64)
        view = self.views[index]
        positions = sorted({i.row() for i in view.selectionModel().selectedRows()})
        return view.model().rows(positions) if positions else np.zeros(0, np.int64)

    def _on_rows_chosen(self, view: QTableView) -> None:
        rows = self.chosen_rows()
        current = view.currentIndex()
        primary = int(view.model().rows([current.row()])[0]) if current.isValid() else None
        if rows.size:
            self.session.select(rows, primary if primary in set(rows.tolist()) else None,
                                source=self)
        self._update_buttons()

    def save_slice(self) -> Optional[str]:
        """Save the rows of the list in front as a slice; return its name."""
        listing = self.current_listing()
        if listing is None or not len(listing.rows) or self.session.dataset is None:
            return None
        name = self.session.add_slice(listing.slice_name, listing.rows)
        self.status.setText(f"Saved {len(listing.rows):,} rows as the slice {name!r}.")
        return name

    def accept_suggested(self) -> None:
        """Ask the window to set the chosen rows' labels to the suggested ones (journaled)."""
        listing = self.current_listing()
        label = self.label_choice.currentData()
        if listing is None or self.audit is None or self.audit.labels is None or label is None \
                or listing.name != "Label issues":
            return
        rows = self.chosen_rows()
        if not rows.size:
            return
        values = self.audit.labels.suggested_names()[rows].tolist()
        self.labels_fixed.emit(label, rows, values)

    def _on_values_changed(self, column: str) -> None:
        """A label was fixed: show it in the lists; the audit itself is kept until asked."""
        if column != self.label_choice.currentData() or self.audit is None:
            return
        for view in self.views:
            view.model().forget_values()
        self._fixed_since += 1
        self.status.setText(self._summary + ". Labels fixed since: press Audit (F5) to "
                            "audit again.")

    def _update_buttons(self) -> None:
        listing = self.current_listing()
        self.save_action.setEnabled(listing is not None and len(listing.rows) > 0)
        self.accept_action.setEnabled(listing is not None and listing.name == "Label issues"
                                      and self.chosen_rows().size > 0)
