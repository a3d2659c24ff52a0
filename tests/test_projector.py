"""The Embedding Projector: level of detail, selection by click, box and lasso, linked docks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QToolTip

from litdesk.api import CategoryLabel, Dataset, Embeddings, Scalar, TextSegment
from litdesk.core.categories import encode_categories
from litdesk.core.session import Session
from litdesk.ui.docks.projector import ProjectorDock, palette_codes, rotation
from litdesk.ui.main_window import MainWindow
from litdesk.ui.point_cloud import Frame, pack_argb, render

GRID = 12  # a GRID × GRID lattice of points


def lattice_dataset(extra_rows: int = 0) -> Dataset:
    """Points on a lattice (x, y columns) with a text and a category, so positions are known."""
    xs, ys = np.meshgrid(np.arange(GRID, dtype=float), np.arange(GRID, dtype=float))
    n = GRID * GRID
    table = pa.table({"x": xs.ravel(), "y": ys.ravel(),
                      "text": [f"point {i} {'odd' if i % 2 else 'even'}" for i in range(n)],
                      "parity": ["odd" if i % 2 else "even" for i in range(n)],
                      "vec": [[float(i), float(i % 7), 1.0] for i in range(n)]})
    return Dataset(table, {"x": Scalar(), "y": Scalar(), "text": TextSegment(),
                           "parity": CategoryLabel(), "vec": Embeddings()}, "lattice")


@pytest.fixture(autouse=True)
def every_mouse_move():
    """pyqtgraph drops mouse moves closer than 1/100 s apart; scripted drags are faster."""
    limit = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", 0)
    yield
    pg.setConfigOption("mouseRateLimit", limit)


@pytest.fixture
def dock(qtbot, runner):
    session = Session()
    projector = ProjectorDock(session, runner)
    qtbot.addWidget(projector)
    projector.resize(700, 600)
    projector.show()
    qtbot.waitExposed(projector)
    with qtbot.waitSignal(projector.projected, timeout=10_000):
        session.set_dataset(lattice_dataset())
        projector.method.setCurrentIndex(projector.method.findData("as is"))
        projector.source.setCurrentIndex(projector.source.findText("numeric columns (2)"))
    # The first colouring may land after the first drawing: let it be drawn too, so that a
    # test's own wait on `drawn` is not answered by it.
    qtbot.waitUntil(lambda: not (projector.color_slot.busy or projector.draw_slot.busy))
    return projector


def viewport_point(projector: ProjectorDock, row: int) -> QPoint:
    """Where ``row``'s point is drawn, in the plot's viewport pixels."""
    plot = projector.plot
    return plot.mapFromScene(projector.view_box.mapViewToScene(QPointF(*projector.positions[row])))


def mouse(widget, kind, pos: QPoint, buttons, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        modifiers)
    QApplication.sendEvent(widget, event)


def drag(widget, points: list[QPoint], modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first point, move through the others with the button held, release."""
    held = Qt.MouseButton.LeftButton
    mouse(widget, QEvent.Type.MouseButtonPress, points[0], held, modifiers)
    for point in points[1:]:
        mouse(widget, QEvent.Type.MouseMove, point, held, modifiers)
    mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton, modifiers)


def select_by_drag(qtbot, projector: ProjectorDock, points: list[QPoint],
                   modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Draw a box or lasso through ``points`` and wait for the rows inside to be selected."""
    with qtbot.waitSignal(projector.session.selection_changed, timeout=10_000):
        drag(projector.plot.viewport(), points, modifiers)


# -- rendering ----------------------------------------------------------------------------


def test_many_points_are_pixels_and_few_are_discs():
    x = np.array([1.0, 5.0, 9.0], dtype=np.float32)
    y = np.array([1.0, 5.0, 9.0], dtype=np.float32)
    colors = pack_argb(np.array([[255, 0, 0]] * 3, dtype=np.uint8), 1.0)
    frame = Frame(20, 20, 2.0, 2.0, 0.0, 0.0)  # pixel = 2 × data
    dense, _ = render(frame, x, y, colors, colors, point_size=7, point_limit=2)
    assert np.count_nonzero(dense) == 3  # one pixel per point beyond the limit
    assert dense[2, 2] != 0 and dense[10, 10] != 0 and dense[18, 18] != 0
    discs, _ = render(frame, x, y, colors, colors, point_size=7, point_limit=10)
    assert np.count_nonzero(discs[6:15, 6:15]) == 37  # a 7-pixel disc round the middle point


def test_density_raises_the_opacity_of_crowded_pixels():
    x = np.array([1.0, 1.0, 1.0, 4.0], dtype=np.float32)
    y = np.array([1.0, 1.0, 1.0, 4.0], dtype=np.float32)
    colors = pack_argb(np.full((4, 3), 200, dtype=np.uint8), 1.0)
    image, _ = render(Frame(6, 6, 1.0, 1.0, 0.0, 0.0), x, y, colors, colors, 7, point_limit=1)
    alpha = image.view(np.uint8).reshape(6, 6, 4)[..., 3]
    assert alpha[1, 1] == 255 and 90 < alpha[4, 4] < 110  # 40% for a lone point


def test_level_of_detail_switches_as_the_view_zooms(qtbot, dock):
    dock.cloud.point_limit = 50  # 144 points: the whole lattice is drawn as pixels
    dock.plot.viewport().repaint()
    assert dock.cloud.last_visible_count == GRID * GRID
    whole = dock.plot.grab().toImage()
    dock.view_box.setRange(xRange=(-0.5, 3.5), yRange=(-0.5, 3.5), padding=0)
    dock.plot.viewport().repaint()
    assert dock.cloud.last_visible_count <= 50  # zoomed in: discs
    zoomed = dock.plot.grab().toImage()
    assert whole != zoomed


def test_recolouring_keeps_positions(qtbot, dock):
    before, colours = dock.cloud.drawing.x.copy(), dock.cloud.drawing.colors.copy()
    with qtbot.waitSignal(dock.drawn, timeout=10_000):
        dock.color_by.setCurrentIndex(dock.color_by.findText("y"))
    np.testing.assert_array_equal(dock.cloud.drawing.x, before)
    assert not np.array_equal(dock.cloud.drawing.colors, colours)
    assert dock.legend.text().startswith("y:")
    with qtbot.waitSignal(dock.drawn, timeout=10_000):
        dock.color_by.setCurrentIndex(dock.color_by.findText("parity"))
    assert "odd" in dock.legend.text() and "even" in dock.legend.text()


def test_palette_codes_keep_the_commonest_values():
    values = pa.array(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None])
    codes, names = palette_codes(encode_categories(values), most=3)
    assert names == ["a", "b", "(other)"]
    assert codes.tolist() == [0] * 5 + [1] * 4 + [2] * 7
    codes, names = palette_codes(encode_categories(values), most=10)
    assert names == ["a", "b", "c", "d", "e", "(missing)"] and codes[-1] == 5


def test_rotation_is_orthonormal():
    matrix = rotation(40, 25)
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(2), atol=1e-6)


# -- selection ----------------------------------------------------------------------------


def test_click_selects_the_nearest_point(qtbot, dock):
    qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=viewport_point(dock, 26))
    assert dock.session.selection.primary == 26
    assert dock.session.selection.rows.tolist() == [26]


def test_box_selects_and_shift_adds_and_ctrl_toggles(qtbot, dock):
    dock.set_mode("box")
    corner_a, corner_b = viewport_point(dock, 0), viewport_point(dock, GRID + 1)
    pad = QPoint(4, -4)  # just beyond the outer points (y grows upwards in the plot)
    select_by_drag(qtbot, dock, [corner_a - pad, corner_a + QPoint(20, -20), corner_b + pad])
    assert dock.session.selection.rows.tolist() == [0, 1, GRID, GRID + 1]
    far = viewport_point(dock, GRID * GRID - 1)
    select_by_drag(qtbot, dock, [far - QPoint(5, 5), far, far + QPoint(5, 5)],
                   Qt.KeyboardModifier.ShiftModifier)
    assert dock.session.selection.rows.tolist() == [0, 1, GRID, GRID + 1, GRID * GRID - 1]
    one = viewport_point(dock, 1)
    select_by_drag(qtbot, dock, [one - QPoint(5, 5), one, one + QPoint(5, 5)],
                   Qt.KeyboardModifier.ControlModifier)
    assert dock.session.selection.rows.tolist() == [0, GRID, GRID + 1, GRID * GRID - 1]


def test_lasso_selects_rows_in_the_table_and_the_reverse(qtbot, tmp_path):
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    window.show()
    projector = window.projector_dock
    floating = window.docks["Embedding Projector"]
    floating.setFloating(True)  # room to draw a lasso on the small offscreen screen
    floating.resize(700, 560)
    qtbot.waitUntil(lambda: projector.on_screen)  # a hidden dock catches up only once shown
    with qtbot.waitSignal(projector.projected, timeout=10_000):
        window.open_objects(datasets=[lattice_dataset()])
        projector.method.setCurrentIndex(projector.method.findData("as is"))
        projector.source.setCurrentIndex(projector.source.findText("numeric columns (2)"))
    projector.set_mode("lasso")
    # A triangle round the points (0,0), (3,0) and (0,3) of the lattice, lasso drawn point by point.
    a, b, c = (viewport_point(projector, r) for r in (0, 3, 3 * GRID))
    a, b, c = a + QPoint(-8, 8), b + QPoint(18, 8), c + QPoint(-8, -18)
    trail = [a + (b - a) * t / 10 for t in range(11)] + [b + (c - b) * t / 10 for t in range(11)] \
        + [c + (a - c) * t / 10 for t in range(11)]
    select_by_drag(qtbot, projector, trail)
    expected = sorted(r * GRID + col for r in range(4) for col in range(4) if r + col <= 3)
    assert window.session.selection.rows.tolist() == expected
    table = window.table_dock
    assert sorted(i.row() for i in table.view.selectionModel().selectedRows()) == expected
    # The reverse: rows selected in the table are emphasised and ringed in the projector.
    view, model = table.view, table.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(7, 0)).center())
    with qtbot.waitSignal(projector.drawn, timeout=10_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier,
                         view.visualRect(model.index(9, 0)).center())
    rings = sorted((p.pos().x(), p.pos().y()) for p in projector.highlight.points())
    assert rings == sorted(tuple(map(float, projector.positions[r])) for r in (7, 9))
    assert set(projector.cloud.drawing.order[-2:].tolist()) == {7, 9}  # drawn on top
    window.runner.cancel_all()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)


def test_nearest_neighbours_of_the_primary_row(qtbot, dock):
    dock.source.setCurrentIndex(dock.source.findText("vec"))
    qtbot.waitUntil(lambda: dock.vectors is not None and dock.vectors.shape[1] == 3,
                    timeout=10_000)
    dock.session.select([20], 20)
    dock.neighbours.setValue(3)
    with qtbot.waitSignal(dock.session.selection_changed, timeout=10_000):
        dock.select_neighbours()
    vectors = dock.vectors
    expected = np.argsort(np.linalg.norm(vectors - vectors[20], axis=1), kind="stable")[:3]
    assert set(dock.session.selection.rows.tolist()) == set(expected.tolist())


def test_search_highlights_matches_without_selecting(qtbot, dock):
    qtbot.keyClicks(dock.search, "odd")
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        qtbot.keyClick(dock.search, Qt.Key.Key_Return)
    assert dock.matches.tolist() == list(range(1, GRID * GRID, 2))
    order = dock.cloud.drawing.order
    assert set(order[-len(dock.matches):].tolist()) == set(dock.matches.tolist())
    assert dock.session.selection.rows.size == 0
    dock.search.clear()
    assert dock.matches is None


def test_hover_shows_the_row(qtbot, dock):
    point = viewport_point(dock, 5)
    dock._on_hover((dock.plot.mapToScene(point),))
    assert "row 5" in QToolTip.text() and "point 5 odd" in QToolTip.text()


def test_three_dimensions_rotate_by_dragging(qtbot, dock):
    with qtbot.waitSignal(dock.projected, timeout=10_000):
        dock.source.setCurrentIndex(dock.source.findText("vec"))
    with qtbot.waitSignal(dock.projected, timeout=10_000):
        dock.dims.setCurrentIndex(dock.dims.findData(3))
    assert dock.coords.shape == (GRID * GRID, 3)
    before = dock.positions.copy()
    centre = dock.plot.viewport().rect().center()
    with qtbot.waitSignal(dock.drawn, timeout=10_000):
        drag(dock.plot.viewport(), [centre, centre + QPoint(20, 0), centre + QPoint(60, 10)])
    assert not np.allclose(before, dock.positions)
    assert dock.azimuth != 30.0


def test_export_view_and_coordinates(qtbot, dock, tmp_path):
    for suffix in ("png", "svg"):
        dock.export(str(tmp_path / f"view.{suffix}"))
    for suffix in ("csv", "parquet"):  # written in the background
        with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
            dock.export(str(tmp_path / f"view.{suffix}"))
    for suffix in ("png", "svg", "csv", "parquet"):
        assert (tmp_path / f"view.{suffix}").stat().st_size > 0
    table = pq.read_table(tmp_path / "view.parquet")
    assert table.column_names == ["row", "x", "y"]
    np.testing.assert_allclose(table.column("x").to_numpy(), dock.coords[:, 0])
    assert "<svg" in (tmp_path / "view.svg").read_text()
    with pytest.raises(ValueError, match=".bmp"):
        dock.export(str(tmp_path / "view.bmp"))


def test_reopening_shows_the_cached_projection_without_computing(qtbot, tmp_path, monkeypatch,
                                                                 runner):
    from litdesk.core import projection
    from litdesk.core.cache import ResultCache

    cache = ResultCache(tmp_path)
    docks = []
    for attempt in range(2):
        session = Session()
        projector = ProjectorDock(session, runner, cache)
        qtbot.addWidget(projector)
        projector.show()
        docks.append(projector)
        with qtbot.waitSignal(projector.projected, timeout=10_000):
            session.set_dataset(lattice_dataset())
            projector.source.setCurrentIndex(projector.source.findText("vec"))
        if attempt == 0:  # from now on, computing a PCA would fail the test
            monkeypatch.setattr(projection, "pca_projection", lambda *a, **k: 1 / 0)
    np.testing.assert_array_equal(docks[0].coords, docks[1].coords)


def test_cancelling_a_umap_keeps_the_points_shown(qtbot, dock):
    before = dock.positions.copy()
    with qtbot.waitSignal(dock.projected, timeout=10_000):  # the PCA of "vec"
        dock.source.setCurrentIndex(dock.source.findText("vec"))
    shown = dock.positions.copy()
    with qtbot.waitSignal(dock.runner.progress, timeout=10_000):
        dock.method.setCurrentIndex(dock.method.findData("umap"))
    with qtbot.waitSignal(dock.runner.idle, timeout=10_000):
        dock.runner.cancel_all()
    assert "cancelled" in dock.message.text() and dock.message.isVisible()
    np.testing.assert_array_equal(dock.positions, shown)
    assert not np.array_equal(before, shown)


def test_image_datasets_show_thumbnails_when_zoomed_in(qtbot, runner):
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QColor, QImage

    from litdesk.api import ImageBytes

    def png(color: str) -> bytes:
        image = QImage(32, 32, QImage.Format.Format_RGB32)
        image.fill(QColor(color))
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        return bytes(data)

    table = pa.table({"x": [0.0, 10.0, 20.0], "y": [0.0, 10.0, 20.0],
                      "image": [png("#ff00ff"), png("#00ff00"), png("#ff00ff")]})
    session = Session()
    session.set_dataset(Dataset(table, {"x": Scalar(), "y": Scalar(), "image": ImageBytes()},
                                "pictures"))
    projector = ProjectorDock(session, runner)
    qtbot.addWidget(projector)
    projector.resize(600, 500)
    projector.show()
    qtbot.waitExposed(projector)
    with qtbot.waitSignal(projector.projected, timeout=10_000):
        projector.method.setCurrentIndex(projector.method.findData("as is"))
    qtbot.waitUntil(lambda: projector.view_box.width() > 100 and projector.view_box.height() > 100)
    projector.fit_view()
    shot = projector.plot.grab().toImage()
    green = sum(shot.pixelColor(x, y) == QColor("#00ff00")  # only the thumbnail is pure green
                for x in range(0, shot.width(), 2) for y in range(0, shot.height(), 2))
    assert green > 100  # a 48-pixel thumbnail, sampled every other pixel: about 576
