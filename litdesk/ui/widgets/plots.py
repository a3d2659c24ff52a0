"""What every litdesk plot shares."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem


def cache_axes(plot: pg.PlotItem) -> None:
    """Keep each axis of ``plot`` (its ticks, labels and grid) drawn in a pixmap.

    pyqtgraph replays an axis's recorded drawing at every repaint of its plot; with a grid,
    whose lines span the plot, any change over the points (a highlight, a marker) repainted
    every axis: 18-21 ms for a 600 × 400 plot, against 1.3-2.6 ms from the pixmaps. The
    pixmap is drawn again when the axis changes (its range, its size), as before.
    """
    for name in ("left", "bottom", "top", "right"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
