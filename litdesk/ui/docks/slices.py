"""The Slices panel: named slices of the active dataset, facets of a field, one click selects.

A facet's groups are found on the worker, only while the panel is on screen.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QSpinBox, QToolButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout)

from litdesk.api import types
from litdesk.core.jobs import JobFailed
from litdesk.core.metrics import facet_groups
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown

FACET_TYPES = (types.CategoryLabel, types.Boolean, types.Scalar)
NAME_ROLE = Qt.ItemDataRole.UserRole  # the slice or facet group an item stands for


def _list_widget() -> QTreeWidget:
    """A two-column list, name and row count, whose items a click selects."""
    tree = QTreeWidget()
    tree.setColumnCount(2)
    tree.setHeaderLabels(["Name", "Rows"])
    tree.setRootIsDecorated(False)
    tree.setUniformRowHeights(True)
    tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    tree.setMinimumHeight(48)  # the window must fit small screens; the lists share the rest
    header = tree.header()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    return tree


def _item(name: str, count: int) -> QTreeWidgetItem:
    item = QTreeWidgetItem([name, f"{count:,}"])
    item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setToolTip(0, name)
    return item


class SlicesDock(RefreshWhenShown):
    """Slices made from the selection (rename by double-click, delete with Del) and the groups
    of a facet field (categories, or quantile bins of a number), which can be kept as slices."""

    #: Emitted when the facet list shows the groups of the current field and bins.
    facets_shown = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self._facet_slot = JobSlot(runner, "Facets", self)
        self._facets_stale = True  # the rows or fields changed since the facets were found
        #: The name prompt of "New slice from selection" while it is open.
        self.name_prompt: Optional[QInputDialog] = None
        self.facets: dict[str, np.ndarray] = {}

        self.new_slice_action = QAction("New from selection…", self,
                                        shortcut=QKeySequence("Ctrl+Shift+S"))
        self.new_slice_action.setToolTip("Save the selected rows as a named slice (Ctrl+Shift+S)")
        self.new_slice_action.triggered.connect(self.new_slice_from_selection)
        self.new_button = QToolButton()
        self.new_button.setDefaultAction(self.new_slice_action)
        self.delete_action = QAction("Delete", self, shortcut=QKeySequence.StandardKey.Delete,
                                     shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        self.delete_action.setToolTip("Forget the chosen slice; its rows stay (Del)")
        self.delete_action.triggered.connect(self.delete_current_slice)
        self.delete_button = QToolButton()
        self.delete_button.setDefaultAction(self.delete_action)

        self.slices_list = _list_widget()
        self.slices_list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                         | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.slices_list.setToolTip("Click a slice to select its rows; double-click to rename")
        self.slices_list.addAction(self.delete_action)
        self.slices_list.itemClicked.connect(self._on_slice_clicked)
        self.slices_list.itemActivated.connect(self._on_slice_clicked)
        self.slices_list.itemChanged.connect(self._on_slice_renamed)

        self.facet_choice = QComboBox()
        self.facet_choice.setToolTip("Group the rows by a category or by quantile bins of a number")
        self.facet_choice.currentIndexChanged.connect(self._refresh_facets)
        self.bins = QSpinBox(minimum=2, maximum=50, value=4)
        self.bins.setToolTip("How many quantile bins a numeric field is cut into")
        self.bins.valueChanged.connect(self._refresh_facets)
        self.facets_list = _list_widget()
        self.facets_list.setToolTip("Click a group to select its rows")
        self.facets_list.itemClicked.connect(self._on_facet_clicked)
        self.facets_list.itemActivated.connect(self._on_facet_clicked)
        self.save_facets_button = QToolButton(text="Save as slices")
        self.save_facets_button.setToolTip("Keep every group of this facet as a slice")
        self.save_facets_button.clicked.connect(self.save_facets)
        self.status = QLabel()
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        facet_bar = QHBoxLayout()
        facet_bar.addWidget(QLabel("Facet by:"))
        facet_bar.addWidget(self.facet_choice, 1)
        facet_bar.addWidget(QLabel("bins"))
        facet_bar.addWidget(self.bins)
        facet_bar.addWidget(self.save_facets_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.slices_list, 2)
        layout.addLayout(facet_bar)
        layout.addWidget(self.facets_list, 2)
        layout.addWidget(self.status)

        session.slices_changed.connect(self.request_refresh)
        for signal in (session.dataset_changed, session.spec_changed, session.rows_added):
            signal.connect(self._on_rows_changed)

    def _on_rows_changed(self, *_args) -> None:
        self._facet_slot.cancel()  # groups of rows that changed
        self._facets_stale = True
        self.request_refresh()

    def refresh(self) -> None:
        """List the slices; list the facet fields and find their groups again if the rows or
        fields changed."""
        self._refresh_slices()
        if self._facets_stale:
            self._facets_stale = False
            self._fill_facet_choice()

    # -- slices ---------------------------------------------------------------------------

    def _refresh_slices(self) -> None:
        self.slices_list.blockSignals(True)
        self.slices_list.clear()
        for name, rows in self.session.slices.items():
            item = _item(name, len(rows))
            item.setData(0, NAME_ROLE, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.slices_list.addTopLevelItem(item)
        self.slices_list.blockSignals(False)
        self.delete_action.setEnabled(bool(self.session.slices))

    def new_slice_from_selection(self) -> None:
        """Ask for a name (a numbered default is offered) and save the selected rows under it."""
        rows = self.session.selection.rows
        if self.session.dataset is None or rows.size == 0:
            self.status.setText("Select rows first (in the table, the projector or a matrix).")
            return
        number = len(self.session.slices) + 1
        while f"slice {number}" in self.session.slices:
            number += 1
        prompt = QInputDialog(self)
        prompt.setWindowTitle("New slice")
        prompt.setLabelText(f"Name for the {rows.size:,} selected rows:")
        prompt.setTextValue(f"slice {number}")
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        prompt.textValueSelected.connect(lambda name: self._create_slice(name, rows))
        prompt.finished.connect(lambda _result: setattr(self, "name_prompt", None))
        self.name_prompt = prompt
        prompt.open()

    def _create_slice(self, name: str, rows: np.ndarray) -> None:
        created = self.session.add_slice(name, rows)
        self.status.setText(f"Slice “{created}”: {rows.size:,} rows.")

    def _on_slice_clicked(self, item: QTreeWidgetItem) -> None:
        rows = self.session.slices.get(item.data(0, NAME_ROLE))
        if rows is not None:
            self.session.select(rows, source=self)

    def _on_slice_renamed(self, item: QTreeWidgetItem, column: int) -> None:
        old, new = item.data(0, NAME_ROLE), item.text(0).strip()
        if column == 0 and new != old:  # the list is rebuilt, so not while the item is in use
            QTimer.singleShot(0, lambda: self._rename_slice(old, new))

    def _rename_slice(self, old: str, new: str) -> None:
        rows = self.session.slices.get(old)
        if not new or rows is None:
            self._refresh_slices()
            return
        self.session.remove_slice(old)
        self.session.add_slice(new, rows)

    def delete_current_slice(self) -> None:
        """Forget the slice chosen in the list; its rows stay in the dataset."""
        item = self.slices_list.currentItem()
        if item is not None:
            self.session.remove_slice(item.data(0, NAME_ROLE))

    # -- facets ---------------------------------------------------------------------------

    def _fill_facet_choice(self) -> None:
        dataset = self.session.dataset
        current = self.facet_choice.currentText()
        names = [name for name, field_type in dataset.spec().items()
                 if isinstance(field_type, FACET_TYPES)] if dataset else []
        self.facet_choice.blockSignals(True)
        self.facet_choice.clear()
        self.facet_choice.addItem("(none)")
        self.facet_choice.addItems(names)
        self.facet_choice.setCurrentText(current if current in names else "(none)")
        self.facet_choice.blockSignals(False)
        self._refresh_facets()

    def facet_field(self) -> Optional[str]:
        """The field the rows are grouped by, or None."""
        return self.facet_choice.currentText() if self.facet_choice.currentIndex() > 0 else None

    def _refresh_facets(self) -> None:
        """Find the groups of the facet field on the worker, instead of the request before."""
        field = self.facet_field()
        dataset = self.session.dataset
        self.bins.setEnabled(field is not None and isinstance(dataset.spec()[field], types.Scalar))
        if field is None:
            self._facet_slot.cancel()
            self._show_facets({})
            return
        bins = self.bins.value()
        self._facet_slot.submit(lambda: facet_groups(dataset, field, bins), self._show_facets,
                                self._on_facets_failed)

    def _show_facets(self, facets: dict[str, np.ndarray]) -> None:
        self.facets = facets
        self.facets_list.clear()
        for label, rows in facets.items():
            item = _item(label, len(rows))
            item.setData(0, NAME_ROLE, label)
            self.facets_list.addTopLevelItem(item)
        self.save_facets_button.setEnabled(bool(facets))
        self.facets_shown.emit()

    def _on_facets_failed(self, failure: JobFailed) -> None:
        self._show_facets({})
        self.status.setText(f"Cannot facet: {failure.error}")

    def _on_facet_clicked(self, item: QTreeWidgetItem) -> None:
        self.session.select(self.facets[item.data(0, NAME_ROLE)], source=self)

    def save_facets(self) -> None:
        """Keep every group of the current facet as a slice named like the group."""
        for label, rows in self.facets.items():
            self.session.add_slice(label, rows)
        if self.facets:
            self.status.setText(f"Saved {len(self.facets)} slices from {self.facet_field()}.")
