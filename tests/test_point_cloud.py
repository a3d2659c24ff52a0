"""A large point cloud renders its frames off the GUI thread and shows the newest."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from litdesk.ui.point_cloud import PointCloudItem, prepare_drawing

GRID = 30


@pytest.fixture
def plot(qtbot):
    widget = pg.PlotWidget()
    widget.resize(400, 300)
    qtbot.addWidget(widget)
    cloud = PointCloudItem()
    widget.addItem(cloud)
    x, y = np.meshgrid(np.arange(GRID), np.arange(GRID))
    positions = np.column_stack([x.ravel(), y.ravel()]).astype(np.float32)
    red = np.tile(np.array([[200, 0, 0]], dtype=np.uint8), (len(positions), 1))
    cloud.set_drawing(prepare_drawing(positions, red, opacity=1.0))
    widget.setRange(xRange=(-1, GRID), yRange=(-1, GRID), padding=0)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, cloud


def red_pixels(widget) -> int:
    image = widget.grab().toImage()
    return sum(1 for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)
               if image.pixelColor(x, y).red() > 150 and image.pixelColor(x, y).green() < 100)


def test_a_small_cloud_is_drawn_in_the_frame_itself(plot):
    widget, cloud = plot
    widget.grab()
    assert cloud.last_visible_count == GRID * GRID
    assert red_pixels(widget) > 0


def test_a_large_cloud_is_rendered_in_the_background(plot, qtbot):
    widget, cloud = plot
    cloud.background_limit = 1  # every cloud counts as large
    cloud.set_drawing(cloud.drawing)
    with qtbot.waitSignal(cloud.frame_rendered, timeout=10_000):
        widget.grab()  # asks for the frame; the paint itself does not wait for it
    settle(widget, cloud, qtbot)
    assert cloud.last_visible_count == GRID * GRID
    assert red_pixels(widget) > 0

    widget.setRange(xRange=(0, GRID / 3), yRange=(0, GRID / 3), padding=0)  # zoom in
    settle(widget, cloud, qtbot)
    assert cloud.last_visible_count < GRID * GRID / 4
    assert red_pixels(widget) > 0


def settle(widget, cloud, qtbot) -> None:
    """Paint until the frame shown is the one the view asks for."""
    for _attempt in range(20):
        widget.grab()
        if not cloud.rendering:
            return
        qtbot.waitUntil(lambda: not cloud.rendering, timeout=10_000)
    raise AssertionError("the cloud kept rendering")
