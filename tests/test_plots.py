"""What every litdesk plot shares: axes that draw their grid fast and keep it drawn."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from litdesk.ui.widgets.plots import GridAxis, grid_axes


def _plot(qtbot, ours: bool) -> tuple[pg.PlotWidget, pg.ScatterPlotItem]:
    plot = pg.PlotWidget(background="w", **({"axisItems": grid_axes()} if ours else {}))
    qtbot.addWidget(plot)
    plot.setLabel("bottom", "Recall")
    plot.setLabel("left", "Precision")
    plot.showGrid(x=True, y=True, alpha=0.15)
    marker = pg.ScatterPlotItem(size=10)
    plot.addItem(marker)
    plot.plot([0, 1.1], [0.5, 0.5], pen=pg.mkPen("#ff0000", width=3))  # data across the grid
    plot.setXRange(0, 1.1)
    plot.setYRange(-0.05, 1.02)
    plot.resize(500, 350)
    plot.show()
    qtbot.waitExposed(plot)
    return plot, marker


def _pixels(plot: pg.PlotWidget) -> np.ndarray:
    image = plot.grab().toImage()
    return np.array([[image.pixel(x, y) for x in range(image.width())]
                     for y in range(image.height())], dtype=np.uint32)


def _channels(pixels: np.ndarray) -> np.ndarray:
    return np.stack([(pixels >> shift) & 0xFF for shift in (16, 8, 0)], axis=-1).astype(int)


def test_a_change_over_the_points_does_not_draw_the_axes_again(qtbot, monkeypatch):
    painted = []
    paint = pg.AxisItem.paint
    monkeypatch.setattr(pg.AxisItem, "paint",
                        lambda axis, *args: (painted.append(axis), paint(axis, *args))[1])
    for ours in (False, True):
        plot, marker = _plot(qtbot, ours)
        plot.grab()
        painted.clear()
        marker.setData(x=[0.4], y=[0.6])
        plot.grab()
        assert bool(painted) is not ours  # pyqtgraph's axes draw their grid again
        plot.setXRange(0, 2)  # new ticks: drawn again
        plot.grab()
        assert painted


def test_the_grid_looks_as_pyqtgraphs_but_beneath_the_data(qtbot):
    theirs, ours = (_pixels(_plot(qtbot, ours)[0]) for ours in (False, True))
    assert isinstance(_plot(qtbot, True)[0].getPlotItem().getAxis("left"), GridAxis)
    white, red = np.uint32(0xFFFFFFFF), np.uint32(0xFFFF0000)
    assert (theirs != white).sum() > 2000  # a grid was drawn
    assert (ours != white).sum() == (theirs != white).sum()  # the same lines and labels
    shade = np.abs(_channels(ours) - _channels(theirs)).max(axis=-1)
    assert (shade > 2).mean() < 0.005  # the same shades (to rounding), but where they cross data:
    assert (ours == red).sum() > (theirs == red).sum()  # the line is drawn over the grid
