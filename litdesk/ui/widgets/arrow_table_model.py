"""A virtual Qt table model over an Arrow table, and how a cell shows a value."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (QApplication, QHeaderView, QStyle, QStyledItemDelegate,
                               QStyleOptionHeader, QStyleOptionViewItem, QWidget)

from litdesk.api.dataset import table_rows
from litdesk.core.rows import contains

BLOCK_ROWS = 64  # rows fetched from Arrow at a time: a screenful, give or take
MAX_CACHED_BLOCKS = 256
#: How a starred row looks.
STAR_MARK = "⚑"
STARRED_BACKGROUND = "#fff3c4"
_RIGHT_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
RIGHT_ALIGNED = int(_RIGHT_ALIGNMENT)
# Roles as the ints Qt passes: comparing with the enum members costs more, per cell.
_DISPLAY, _TOOLTIP, _ALIGNMENT = (int(Qt.ItemDataRole.DisplayRole),
                                  int(Qt.ItemDataRole.ToolTipRole),
                                  int(Qt.ItemDataRole.TextAlignmentRole))
_BACKGROUND, _FOREGROUND = int(Qt.ItemDataRole.BackgroundRole), int(Qt.ItemDataRole.ForegroundRole)
_HAS_DISPLAY = QStyleOptionViewItem.ViewItemFeature.HasDisplay


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
    """Shows ``table.take(rows)`` without materialising it: rows are fetched in blocks.

    Starred rows get a background; :attr:`selected` (sorted dataset rows, or None) is a
    selection the model paints itself, for one too scattered for the view's selection model.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = pa.table({})
        self.rows = np.zeros(0, dtype=np.int64)
        self.in_dataset_order = True
        self.pinned: Optional[int] = None
        self.starred = np.zeros(0, dtype=np.int64)  # sorted dataset rows
        self.selected: Optional[np.ndarray] = None
        self._blocks: dict[int, list[dict[str, Any]]] = {}
        self._names: list[str] = []
        self._numeric: list[bool] = []  # per column: right-aligned

    def set_table(self, table: pa.Table, rows: Optional[np.ndarray] = None) -> None:
        """Show ``table`` (all rows, or ``rows`` in that order)."""
        self.beginResetModel()
        self.table = table
        self.rows = np.arange(table.num_rows, dtype=np.int64) if rows is None else rows
        self.in_dataset_order = rows is None  # view row = table row
        self._blocks.clear()
        self._names = table.column_names
        self._numeric = [pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
                         for field in table.schema]
        self.endResetModel()

    def set_rows(self, rows: np.ndarray) -> None:
        """Show these table rows, in this order (after a sort or a filter)."""
        self.set_table(self.table, rows)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._names)

    def is_starred(self, view_row: int) -> bool:
        """Whether the row shown at ``view_row`` is starred."""
        # The row header asks of each row it sizes itself by, hundreds at every reset.
        return bool(self.starred.size) and contains(self.starred, int(self.rows[view_row]))

    def set_starred(self, rows: np.ndarray) -> None:
        """Mark these dataset rows (sorted) as starred."""
        if not np.array_equal(rows, self.starred):
            self.starred = rows
            self._repaint_rows()

    def set_selected(self, rows: Optional[np.ndarray]) -> None:
        """Paint these dataset rows (sorted) as selected; None leaves it to the view."""
        if rows is None and self.selected is None:
            return
        self.selected = rows
        self._repaint_rows()

    def set_pinned(self, row: Optional[int]) -> None:
        """Mark the pinned reference row in the row header."""
        if row != self.pinned:
            self.pinned = row
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, max(0, len(self.rows) - 1))

    def _repaint_rows(self) -> None:
        last_row, last_column = self.rowCount() - 1, self.columnCount() - 1
        if last_row >= 0:
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, last_row)
            self.dataChanged.emit(self.index(0, 0), self.index(last_row, max(0, last_column)),
                                  [Qt.ItemDataRole.BackgroundRole,
                                   Qt.ItemDataRole.ForegroundRole])

    def row_values(self, view_row: int) -> dict[str, Any]:
        """The values of the row shown at ``view_row``."""
        block = view_row // BLOCK_ROWS
        if block not in self._blocks:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.pop(next(iter(self._blocks)))
            positions = self.rows[block * BLOCK_ROWS:(block + 1) * BLOCK_ROWS]
            self._blocks[block] = table_rows(self.table, positions)
        return self._blocks[block][view_row % BLOCK_ROWS]

    def cell_text(self, view_row: int, column: int) -> str:
        """What the cell shows (before a number too wide for it becomes "…")."""
        return format_value(self.row_values(view_row)[self._names[column]])

    def is_right_aligned(self, column: int) -> bool:
        """Whether ``column`` holds numbers, shown right-aligned."""
        return self._numeric[column]

    def row_colors(self, view_row: int) -> tuple[Optional[QColor], Optional[QColor]]:
        """The background and text colours of the row shown at ``view_row``; None: the view's."""
        if self.selected is None and not self.starred.size:
            return None, None
        row = int(self.rows[view_row])
        if self.selected is not None and contains(self.selected, row):
            palette = QApplication.palette()
            return (palette.color(QPalette.ColorRole.Highlight),
                    palette.color(QPalette.ColorRole.HighlightedText))
        if contains(self.starred, row):
            return QColor(STARRED_BACKGROUND), None
        return None, None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == _DISPLAY:
            return self.cell_text(index.row(), index.column())
        if role == _TOOLTIP:
            value = self.row_values(index.row())[self._names[index.column()]]
            if self._numeric[index.column()] and value is not None:
                return format_value(value)  # in full when the cell shows "…"
            return str(value) if isinstance(value, str) and len(value) > 40 else None
        if role == _BACKGROUND:
            return self.row_colors(index.row())[0]
        if role == _FOREGROUND:
            return self.row_colors(index.row())[1]
        if role == _ALIGNMENT and self._numeric[index.column()]:
            return RIGHT_ALIGNED
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._names[section]
        row = int(self.rows[section])
        return _row_label(row, self.is_starred(section), row == self.pinned)

    def widest_row_label(self) -> str:
        """The widest label a row can have now: the largest row number, with the marks of a
        starred and of the pinned row while there are such rows."""
        if not len(self.rows):
            return ""
        return _row_label(self.table.num_rows - 1, bool(self.starred.size),
                          self.pinned is not None)


def _row_label(row: int, starred: bool, pinned: bool) -> str:
    star = f"{STAR_MARK} " if starred else ""
    return f"★ {star}{row}" if pinned else f"{star}{row}"


class RowHeader(QHeaderView):
    """The row labels of an :class:`ArrowTableModel`, as wide as the widest one can be.

    Qt sizes a header by the labels of its first and last hundred sections, four roles each:
    about 800 calls into Python at every reset of the table, each waiting for the GIL while a
    job runs Python (106 ms in a cold launch, profiled), and a starred or pinned row further
    in may not fit. This header measures the widest label the rows can have, once.
    """

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setSectionsClickable(True)  # as the header QTableView makes
        self.setHighlightSections(True)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        model = self.model()
        if not isinstance(model, ArrowTableModel):
            return super().sizeHint()
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        font = QFont(self.font())
        font.setBold(True)  # a selected row's label is bold
        option.fontMetrics = QFontMetrics(font)
        option.text = model.widest_row_label()
        size = self.style().sizeFromContents(QStyle.ContentsType.CT_HeaderSection, option,
                                             QSize(), self)
        return QSize(size.width(), self.defaultSectionSize())


class NumberDelegate(QStyledItemDelegate):
    """Draws the cells of an :class:`ArrowTableModel`: a number (a right-aligned cell) whole
    or, when it does not fit its cell, as "…" (its value in the tooltip), since a number cut
    short ("0" for "0.1234") reads as another number. Text is elided as Qt does.

    It reads a cell from the model in one call, not once per role as Qt's delegate does: a
    screenful of the table then paints in about 60% of the time (7.6 against 12.2 ms for
    161 cells, ``/tmp`` micro-benchmark), the same pixels.
    """

    def shown_text(self, option: QStyleOptionViewItem) -> str:
        """What the cell of ``option`` (initialised for its index) shows."""
        style = option.widget.style() if option.widget is not None else QApplication.style()
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None,
                                   option.widget) + 1
        room = option.rect.width() - 2 * margin
        return option.text if option.fontMetrics.horizontalAdvance(option.text) <= room \
            else "…"

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:  # noqa: N802
        # What QStyledItemDelegate.initStyleOption sets, for the roles the model has.
        model: ArrowTableModel = index.model()
        view_row, column = index.row(), index.column()
        option.index = index
        option.styleObject = None
        text = model.cell_text(view_row, column)
        option.features |= _HAS_DISPLAY  # an empty cell too, as for Qt's delegate
        option.text = text
        background, foreground = model.row_colors(view_row)
        if background is not None:
            option.backgroundBrush = QBrush(background)
        if foreground is not None:
            option.palette.setBrush(QPalette.ColorRole.Text, foreground)
        if model.is_right_aligned(column):
            option.displayAlignment = _RIGHT_ALIGNMENT
            if text:
                option.text = self.shown_text(option)
