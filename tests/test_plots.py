"""What every litdesk plot shares: axes kept as pixmaps."""

from __future__ import annotations

import pyqtgraph as pg

from litdesk.ui.widgets.plots import cache_axes


def _plot(qtbot, cached: bool) -> tuple[pg.PlotWidget, pg.ScatterPlotItem]:
    plot = pg.PlotWidget(background="w")
    qtbot.addWidget(plot)
    plot.setLabel("bottom", "Recall")
    plot.setLabel("left", "Precision")
    plot.showGrid(x=True, y=True, alpha=0.15)
    if cached:
        cache_axes(plot.getPlotItem())
    marker = pg.ScatterPlotItem(size=10)
    plot.addItem(marker)
    plot.setXRange(0, 1)
    plot.setYRange(0, 1)
    plot.resize(500, 350)
    plot.show()
    qtbot.waitExposed(plot)
    return plot, marker


def test_a_change_over_the_points_does_not_draw_the_axes_again(qtbot, monkeypatch):
    painted = []
    paint = pg.AxisItem.paint
    monkeypatch.setattr(pg.AxisItem, "paint",
                        lambda axis, *args: (painted.append(axis), paint(axis, *args))[1])
    for cached in (False, True):
        plot, marker = _plot(qtbot, cached)
        plot.grab()
        painted.clear()
        marker.setData(x=[0.4], y=[0.6])
        plot.grab()
        assert bool(painted) is not cached  # without the pixmaps, the grid is drawn again
        plot.setXRange(0, 2)  # new ticks: drawn again
        plot.grab()
        assert painted


def test_cached_axes_look_the_same(qtbot):
    images = []
    for cached in (False, True):
        plot, marker = _plot(qtbot, cached)
        marker.setData(x=[0.4], y=[0.6])
        images.append(plot.grab().toImage())
    assert images[0] == images[1]
