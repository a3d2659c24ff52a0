"""Cluster names drawn over a plot: one label per cluster at its centre, the same size at every
zoom (a pyqtgraph TextItem ignores the view's scale), a click on one picks the cluster."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

#: At most this many labels are drawn (the largest clusters); more would cover the points.
MAX_LABELS = 40


class ClusterLabel(pg.TextItem):
    """A cluster's name at its centre; a left click calls ``on_click(cluster, modifiers)``."""

    def __init__(self, cluster: int, text: str, on_click: Callable[[int, object], None]) -> None:
        title, _, facts = text.partition("\n")
        markup = f"<b>{html.escape(title)}</b>"
        if facts:
            markup += f"<br><span style='color:#555'>{html.escape(facts)}</span>"
        super().__init__(html=f"<div style='text-align:center'>{markup}</div>",
                         anchor=(0.5, 0.5), border=pg.mkPen(QColor(90, 90, 90, 160)),
                         fill=pg.mkBrush(255, 255, 255, 215))
        self.cluster = cluster
        self._on_click = on_click
        self.setZValue(50)  # above the points and the markers
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"Click to select this cluster ({text.replace(chr(10), '; ')})")

    def mouseClickEvent(self, event) -> None:  # noqa: N802 (pyqtgraph)
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self._on_click(self.cluster, event.modifiers())


class ClusterLabels:
    """The labels of a plot's clusters; :meth:`show` replaces them, :meth:`move` follows the
    points when they move (a 3-D rotation)."""

    def __init__(self, plot: pg.PlotWidget, on_click: Callable[[int, object], None]) -> None:
        self.plot = plot
        self.on_click = on_click
        self.items: list[ClusterLabel] = []

    def show(self, texts: Sequence[str], centres: np.ndarray, sizes: Sequence[int]) -> None:
        """One label per cluster (the largest :data:`MAX_LABELS`), at ``centres`` (rows × 2)."""
        self.clear()
        order = np.argsort(-np.asarray(sizes), kind="stable")[:MAX_LABELS]
        for cluster in order.tolist():
            item = ClusterLabel(cluster, texts[cluster], self.on_click)
            self.plot.addItem(item, ignoreBounds=True)
            self.items.append(item)
        self.move(centres)

    def move(self, centres: np.ndarray) -> None:
        """Put each label at its cluster's centre (hidden when the cluster has no point)."""
        for item in self.items:
            x, y = centres[item.cluster] if item.cluster < len(centres) else (np.nan, np.nan)
            item.setVisible(bool(np.isfinite(x) and np.isfinite(y)))
            if item.isVisible():
                item.setPos(float(x), float(y))

    def clear(self) -> None:
        """Remove every label."""
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
