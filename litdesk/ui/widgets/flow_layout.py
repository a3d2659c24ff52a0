"""A row of controls that wraps onto more lines instead of widening its dock."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget

#: Qt's largest widget extent (QWIDGETSIZE_MAX).
WIDGET_SIZE_MAX = (1 << 24) - 1


class FlowLayout(QLayout):
    """Items side by side in the order added, each line as tall as its tallest item (the
    others centred in it), wrapping to a new line where the width runs out.

    A QHBoxLayout's minimum width is the sum of its items': a dock with a long row of
    checkboxes would force the main window wider than a laptop's screen, and each time a
    dock showed more of them the window grew and repainted whole. This layout's minimum width
    is its widest item's; hidden widgets take no room.

    Not superqt's ``QFlowLayout`` (Qt's example): it keeps a spacing for each hidden widget
    (the Salience dock hides the methods no open model has) and top-aligns a line's items (a
    label sits above the middle of the combo box beside it)."""

    def __init__(self, parent: Optional[QWidget] = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._heights: dict[int, int] = {}  # height for a width, until the layout changes
        self.setSpacing(spacing)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt API)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> Optional[QLayoutItem]:  # noqa: N802 (Qt API)
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> Optional[QLayoutItem]:  # noqa: N802 (Qt API)
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 (Qt API)
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt API)
        # Asked again and again while widgets show and hide (as Qt's own layouts, cached).
        if width not in self._heights:
            self._heights[width] = self._arrange(QRect(0, 0, width, 0), place=False)
        return self._heights[width]

    def invalidate(self) -> None:
        """Forget the heights: an item was added, shown, hidden or resized."""
        self._heights.clear()
        super().invalidate()

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 (Qt API)
        super().setGeometry(rect)
        self._arrange(rect, place=True)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        """Every item on one line."""
        shown = [item.sizeHint() for item in self._items if not item.isEmpty()]
        width = sum(size.width() for size in shown) + self.spacing() * max(0, len(shown) - 1)
        height = max((size.height() for size in shown), default=0)
        return self._with_margins(QSize(width, height))

    def minimumSize(self) -> QSize:  # noqa: N802 (Qt API)
        """One item a line: the widest item's width."""
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        return self._with_margins(size)

    def _with_margins(self, size: QSize) -> QSize:
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, place: bool) -> int:
        """Lay the items out in ``rect`` (moving them when ``place``); return the height used."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        lines: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        x = area.x()
        for item in self._items:
            if item.isEmpty():
                continue
            size = item.sizeHint().boundedTo(QSize(max(area.width(), 0), WIDGET_SIZE_MAX))
            if lines[-1] and x + size.width() > area.x() + area.width():
                lines.append([])
                x = area.x()
            lines[-1].append((item, size))
            x += size.width() + self.spacing()
        y = area.y()
        for line in lines:
            height = max((size.height() for _item, size in line), default=0)
            x = area.x()
            for item, size in line:
                if place:
                    item.setGeometry(QRect(QPoint(x, y + (height - size.height()) // 2), size))
                x += size.width() + self.spacing()
            y += height + self.spacing()
        used = y - self.spacing() - area.y() if any(lines) else 0
        return used + margins.top() + margins.bottom()

