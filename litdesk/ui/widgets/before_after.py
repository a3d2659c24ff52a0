"""Before → after: pick two classifiers (a trained model and the one it came from) and see
which rows went wrong → right and right → wrong, select them or keep them as slices, and the
accuracy per slice with its change."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from litdesk.core.before_after import BROKEN, FIXED, BeforeAfter, compare_before_after, default_pair
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.widgets.flow_layout import FlowLayout

BETTER, WORSE = QColor("#1e8449"), QColor("#c0392b")
HEADERS = ["Slice", "Rows", "Before", "After", "Δ"]
TABLE_MIN_HEIGHT = 60


class _ShortTable(QTableWidget):
    """A table that asks for its least height and takes the height left: its default wish
    (192 px) would count as the panel's least and scroll a dock with room for all but it."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(super().sizeHint().width(), TABLE_MIN_HEIGHT)


def _percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1%}"


class BeforeAfterPanel(QWidget):
    """Hidden until two classifiers are open; computed on the worker while on screen."""

    #: The comparison shown is up to date (tests wait on it).
    compared = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.slot = JobSlot(runner, "Before and after", self)
        self.result: Optional[BeforeAfter] = None
        self.before, self.after = QComboBox(), QComboBox()
        for combo in (self.before, self.after):
            combo.setMinimumContentsLength(8)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.currentIndexChanged.connect(lambda _index: self.refresh())
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.select_fixed = QPushButton(f"Select {FIXED}")
        self.select_broken = QPushButton(f"Select {BROKEN}")
        self.save_slices = QPushButton("Save as Slices")
        self.save_slices.setToolTip("Keep both groups as slices of this dataset")
        self.table = _ShortTable(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(TABLE_MIN_HEIGHT)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Before"))
        pick.addWidget(self.before, 1)
        pick.addWidget(QLabel("→ after"))
        pick.addWidget(self.after, 1)
        buttons = FlowLayout()  # on more lines where the dock is narrow, never clipped
        for button in (self.select_fixed, self.select_broken, self.save_slices):
            buttons.addWidget(button)
        self._content = QWidget()
        layout = QVBoxLayout(self._content)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(pick)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        # A splitter gives a panel its minimum height, not the height its wrapped summary and
        # buttons need at its width: in a short dock they scroll instead of overlapping.
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll.setWidget(self._content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._scroll)
        self.select_fixed.clicked.connect(lambda: self._select("fixed"))
        self.select_broken.clicked.connect(lambda: self._select("broken"))
        self.save_slices.clicked.connect(self.keep_as_slices)
        for signal in (session.outcomes_changed, session.slices_changed, session.models_changed,
                       session.dataset_changed):
            signal.connect(self.refill)
        self.refill()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        """As wide as the content needs (the scroll area alone would shrink to its bars)."""
        scroll_bar = self._scroll.verticalScrollBar().sizeHint().width()
        return QSize(self._content.minimumSizeHint().width() + scroll_bar,
                     super().minimumSizeHint().height())

    def _classifiers(self) -> list[str]:
        outcomes = self.session.outcomes
        return [name for name in self.session.models
                if outcomes is not None and name in outcomes.models]

    def refill(self, *_args) -> None:
        """Offer the classifiers with outcomes; a new trained model becomes the "after"."""
        models = self._classifiers()
        self.setVisible(len(models) >= 2)
        pair = default_pair(models)
        known = tuple(self.before.itemText(i) for i in range(self.before.count()))
        for combo, choice in zip((self.before, self.after), pair or ("", "")):
            combo.blockSignals(True)
            current = combo.currentText()
            combo.clear()
            combo.addItems(models)
            # a model new since the last fill takes its default place; else the user's pick stays
            keep = current in models and set(models) <= set(known)
            combo.setCurrentText(current if keep else choice)
            combo.blockSignals(False)
        if pair is not None:
            self.refresh()

    def refresh(self) -> None:
        """Compare the two models chosen, on the worker."""
        outcomes = self.session.outcomes
        before, after = self.before.currentText(), self.after.currentText()
        if outcomes is None or not before or not after or before == after:
            self.slot.cancel()
            self.result = None
            self.summary.setText("Choose two different models." if before and before == after
                                 else "")
            self.table.setRowCount(0)
            self._enable()
            return
        slices = dict(self.session.slices)
        self.slot.submit(lambda: compare_before_after(outcomes, before, after, slices),
                         self._show, self._show_error)

    def _show_error(self, failure) -> None:
        self.result = None
        self.summary.setText(str(failure.error))
        self.table.setRowCount(0)
        self._enable()
        self.compared.emit()

    def _show(self, result: BeforeAfter) -> None:
        self.result = result
        self.summary.setText(result.summary)
        self.select_fixed.setText(f"Select {FIXED} ({len(result.fixed):,})")
        self.select_broken.setText(f"Select {BROKEN} ({len(result.broken):,})")
        self.table.setRowCount(len(result.slices))
        for row, entry in enumerate(result.slices):
            delta = entry.delta
            cells = [entry.name, f"{entry.rows:,}", _percent(entry.before), _percent(entry.after),
                     "–" if delta is None else f"{delta * 100:+.1f} pt"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 4 and delta:
                    item.setForeground(QBrush(BETTER if delta > 0 else WORSE))
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self._enable()
        self.compared.emit()

    def _enable(self) -> None:
        result = self.result
        self.select_fixed.setEnabled(result is not None and len(result.fixed) > 0)
        self.select_broken.setEnabled(result is not None and len(result.broken) > 0)
        self.save_slices.setEnabled(result is not None and
                                    len(result.fixed) + len(result.broken) > 0)

    def _select(self, which: str) -> None:
        if self.result is None:
            return
        rows = getattr(self.result, which)
        self.session.select(rows, int(rows[0]) if len(rows) else None, source=self)

    def keep_as_slices(self) -> list[str]:
        """Keep the rows that went wrong → right and right → wrong as slices; their names."""
        if self.result is None:
            return []
        pair = f"({self.result.before} → {self.result.after})"
        names = []
        for label, rows in ((FIXED, self.result.fixed), (BROKEN, self.result.broken)):
            if len(rows):
                names.append(self.session.add_slice(f"{label} {pair}", rows))
        return names
