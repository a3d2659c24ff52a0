"""A point cloud that stays fluid at a million points: each frame is one raster of what is
visible, built with numpy at the screen's resolution.

Level of detail: while many points are visible each is one pixel, and a pixel's opacity
grows with the number of points on it (a density view that still shows every point); once
few enough are visible (:data:`POINT_MODE_LIMIT`), each is a disc with an outline, and image
datasets can show thumbnails. Emphasised points (a selection or search matches) are drawn
last and the others faded. What is drawn, a :class:`Drawing`, is prepared by
:func:`prepare_drawing` in linear time, off the GUI thread for large clouds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QPolygonF

from litdesk.core.priority import lower_thread_priority

#: Up to this many visible points are drawn as discs with outlines, beyond it as pixels.
POINT_MODE_LIMIT = 50_000
#: Up to this many visible points of an image dataset are drawn as thumbnails.
THUMBNAIL_LIMIT = 150
THUMBNAIL_PIXELS = 48
FADED_ALPHA = 0.12


def pack_argb(rgb: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """ARGB32 words (straight alpha, QImage.Format_ARGB32) from uint8 RGB rows and alpha in [0, 1]."""
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float32), rgb.shape[:1])
    a = (alpha * 255 + 0.5).astype(np.uint32)
    rgb = rgb.astype(np.uint32)
    return (a << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def disc_offsets(diameter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel offsets (dx, dy) of a disc of ``diameter`` pixels, outline first, and which of
    them are the outline."""
    radius = (max(diameter, 1) - 1) / 2 + 0.25  # pixel centres within this distance
    span = np.arange(-int(radius), int(radius) + 1)
    dx, dy = np.meshgrid(span, span)
    distance = np.hypot(dx, dy).ravel()
    dx, dy = dx.ravel(), dy.ravel()
    inside = distance <= radius
    outline = inside & (distance > radius - 1.0) if diameter >= 5 else np.zeros_like(inside)
    order = np.concatenate([np.flatnonzero(outline), np.flatnonzero(inside & ~outline)])
    return dx[order], dy[order], outline[order]


@dataclass(frozen=True)
class Frame:
    """The device-pixel grid a frame is drawn on: pixel = data × scale + offset."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def pixels(self, x: np.ndarray, y: np.ndarray
               ) -> tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
        """(indices of the points inside the frame, or None when all are, and their integer
        pixel columns and rows)."""
        px = x * np.float32(self.scale_x)
        px += np.float32(self.offset_x)
        py = y * np.float32(self.scale_y)
        py += np.float32(self.offset_y)
        inside = (px >= 0) & (px < self.width) & (py >= 0) & (py < self.height)
        visible = np.flatnonzero(inside)
        if len(visible) == len(x):
            return None, px.astype(np.int32), py.astype(np.int32)
        return visible, px[visible].astype(np.int32), py[visible].astype(np.int32)


def density_alpha(top: int) -> np.ndarray:
    """Per number of points on a pixel (0…top), the factor (of 256) applied to its opacity:
    from 40% for a lone point to 100% on the densest pixel, on a log scale."""
    counts = np.maximum(np.arange(top + 1), 1)
    if top <= 1:
        return np.full(top + 1, 256, dtype=np.uint16)
    return (256 * (0.4 + 0.6 * np.log(counts) / np.log(top))).astype(np.uint16)


def render(frame: Frame, x: np.ndarray, y: np.ndarray, colors: np.ndarray, outlines: np.ndarray,
           point_size: int, point_limit: int = POINT_MODE_LIMIT
           ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The frame as ARGB32 words (height × width), and the indices drawn (None: all).

    Later points are drawn over earlier ones. ``colors`` and ``outlines`` hold one ARGB word
    per point (fill, and the outline used when points are drawn as discs).
    """
    image = np.zeros(frame.height * frame.width, dtype=np.uint32)
    visible, px, py = frame.pixels(x, y)
    count = len(x) if visible is None else len(visible)
    if count == 0:
        return image.reshape(frame.height, frame.width), visible
    fill = colors if visible is None else colors[visible]
    if count > point_limit:
        pixel = py * frame.width + px
        image[pixel] = fill
        density = np.bincount(pixel, minlength=image.size)
        alpha = image.view(np.uint8)[3::4]  # little-endian words: bytes B, G, R, A
        alpha[:] = (alpha * density_alpha(int(density.max()))[density]) >> 8
        return image.reshape(frame.height, frame.width), visible
    dx, dy, is_outline = disc_offsets(point_size)
    columns = px[:, None] + dx[None, :]
    rows = py[:, None] + dy[None, :]
    valid = (columns >= 0) & (columns < frame.width) & (rows >= 0) & (rows < frame.height)
    edge = outlines if visible is None else outlines[visible]
    words = np.where(is_outline[None, :], edge[:, None], fill[:, None])
    image[(rows * frame.width + columns)[valid]] = words[valid]  # row-major: point by point
    return image.reshape(frame.height, frame.width), visible


def rows_in_polygon(drawing: "Drawing", frame: Frame, polygon: QPolygonF) -> np.ndarray:
    """Rows (sorted) whose points fall inside ``polygon`` (device pixels of ``frame``), as
    drawn on screen. Safe on a worker thread: it paints on a QImage of its own."""
    mask = QImage(frame.width, frame.height, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    painter = QPainter(mask)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(Qt.GlobalColor.white)
    painter.drawPolygon(polygon)
    painter.end()
    inside = np.frombuffer(mask.constBits(), dtype=np.uint8).reshape(
        frame.height, mask.bytesPerLine())[:, :frame.width]
    visible, px, py = frame.pixels(drawing.x, drawing.y)
    hit = np.flatnonzero(inside[py, px])
    chosen = np.zeros(len(drawing), dtype=bool)
    chosen[drawing.order[hit if visible is None else visible[hit]]] = True
    return np.flatnonzero(chosen)


@dataclass(frozen=True)
class Drawing:
    """The points as drawn: in draw order, each point's row, position and ARGB words (fill,
    and outline for discs), with the rectangle holding every finite point."""

    order: np.ndarray
    x: np.ndarray
    y: np.ndarray
    colors: np.ndarray
    outlines: np.ndarray
    bounds: tuple[float, float, float, float]  # x, y, width, height; all 0 when empty

    def __len__(self) -> int:
        return len(self.order)


EMPTY_DRAWING = Drawing(*(np.zeros(0, dtype=dtype) for dtype in
                          (np.int64, np.float32, np.float32, np.uint32, np.uint32)),
                        (0.0, 0.0, 0.0, 0.0))


def prepare_drawing(positions: np.ndarray, rgb: Optional[np.ndarray] = None,
                    emphasis: Optional[np.ndarray] = None, opacity: float = 0.85) -> Drawing:
    """How to draw points at ``positions`` (rows × 2) coloured ``rgb`` (rows × 3 uint8; grey
    when None or of another length): ``emphasis`` rows (None: none) on top of the others,
    which fade."""
    positions = np.asarray(positions[:, :2], dtype=np.float32)
    n = len(positions)
    if rgb is None or len(rgb) != n:
        rgb = np.full((n, 3), 128, dtype=np.uint8)
    alpha = np.full(n, opacity, dtype=np.float32)
    if emphasis is None:
        order = np.arange(n)
    else:
        emphasised = np.zeros(n, dtype=bool)
        emphasised[emphasis[emphasis < n]] = True
        order = np.concatenate([np.flatnonzero(~emphasised), np.flatnonzero(emphasised)])
        alpha[:] = FADED_ALPHA * opacity
        alpha[emphasised] = min(1.0, opacity + 0.1)
    x = np.ascontiguousarray(positions[order, 0])
    y = np.ascontiguousarray(positions[order, 1])
    rgb, alpha = rgb[order], alpha[order]
    finite = np.isfinite(x) & np.isfinite(y)
    bounds = (0.0, 0.0, 0.0, 0.0)
    if finite.any():
        x0, x1 = float(x[finite].min()), float(x[finite].max())
        y0, y1 = float(y[finite].min()), float(y[finite].max())
        bounds = (x0, y0, (x1 - x0) or 1.0, (y1 - y0) or 1.0)
    return Drawing(order, x, y, pack_argb(rgb, alpha),
                   pack_argb((rgb * 0.55).astype(np.uint8), np.minimum(1.0, alpha * 1.15)),
                   bounds)


@dataclass(frozen=True)
class _Raster:
    """A rendered frame: its pixels, the view rectangle it shows and what it was made for."""

    key: tuple
    frame: Frame
    view_rect: QRectF
    pixels: np.ndarray
    visible: Optional[np.ndarray]
    image: QImage


#: Renders frames of large clouds, one at a time, for every point cloud.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litdesk-point-cloud",
                               initializer=lower_thread_priority)


class PointCloudItem(pg.GraphicsObject):
    """Draws many points in a :class:`pyqtgraph.ViewBox` as one raster per frame.

    :meth:`set_drawing` shows a prepared :class:`Drawing`; points are identified by row
    number throughout. A cloud of at least :attr:`background_limit` points is rendered on a
    worker thread (a frame of a million points takes 50–150 ms): meanwhile the last frame is
    drawn stretched to where its view now lies, and the newest wanted frame follows.
    """

    #: A frame was rendered in the background and is shown from now on.
    frame_rendered = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.point_size = 7
        self.point_limit = POINT_MODE_LIMIT
        self.background_limit = 200_000
        self.drawing = EMPTY_DRAWING
        self._raster: Optional[_Raster] = None
        self._wanted: Optional[tuple] = None  # (key, frame, view rect) of the newest frame
        self._rendering = False
        self._generation = 0  # counts changes of what is drawn
        self.last_frame: Optional[Frame] = None
        self.last_visible_count = 0
        #: Called with a row number to get its thumbnail, at most THUMBNAIL_PIXELS wide (None: no
        #: thumbnails).
        self.thumbnail: Optional[Callable[[int], Optional[QImage]]] = None
        self._future = None  # of the frame being rendered in the background
        self._poll = QTimer(self)  # the worker touches no Qt object: the GUI thread looks
        self._poll.setInterval(5)
        self._poll.timeout.connect(self._check_frame)

    # -- data ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.drawing)

    def set_drawing(self, drawing: Drawing) -> None:
        """Draw ``drawing`` from the next frame on."""
        if drawing.bounds != self.drawing.bounds:
            self.prepareGeometryChange()
        self.drawing = drawing
        self._generation += 1
        self.update()

    @property
    def rendering(self) -> bool:
        """Whether a frame is being rendered in the background (the last one is shown)."""
        return self._rendering

    def set_point_size(self, point_size: int) -> None:
        """The diameter of a disc, in pixels."""
        self.point_size = int(point_size)
        self._generation += 1
        self.update()

    # -- hit testing --------------------------------------------------------------------

    def rows_at(self, frame: Frame, pixel: QPointF, radius: float) -> np.ndarray:
        """Rows whose points lie within ``radius`` device pixels of ``pixel``, nearest first,
        the topmost first among equals."""
        drawing = self.drawing
        if not len(drawing):
            return np.zeros(0, dtype=np.int64)
        px = drawing.x * np.float32(frame.scale_x) + np.float32(frame.offset_x)
        py = drawing.y * np.float32(frame.scale_y) + np.float32(frame.offset_y)
        near = np.flatnonzero((np.abs(px - pixel.x()) <= radius) & (np.abs(py - pixel.y()) <= radius))
        distance = np.hypot(px[near] - pixel.x(), py[near] - pixel.y())
        keep = distance <= radius
        near, distance = near[keep], distance[keep]
        ranked = near[np.lexsort((-near, distance))]  # later in draw order = on top
        return drawing.order[ranked]

    # -- drawing ------------------------------------------------------------------------

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self.data_bounds()

    def data_bounds(self) -> QRectF:
        """The rectangle holding every finite point (empty without points)."""
        return QRectF(*self.drawing.bounds)

    def frame_for(self, painter_transform, view_rect: QRectF) -> Frame:
        """The device-pixel frame of ``view_rect`` under a painter's transform."""
        device = painter_transform.mapRect(view_rect)
        return Frame(max(1, int(np.ceil(device.width()))), max(1, int(np.ceil(device.height()))),
                     painter_transform.m11(), painter_transform.m22(),
                     painter_transform.dx() - device.left(), painter_transform.dy() - device.top())

    def paint(self, painter: QPainter, _option, _widget=None) -> None:
        view, drawing = self.getViewBox(), self.drawing
        if view is None or not len(drawing):
            return
        transform = painter.transform()
        view_rect = view.viewRect()
        frame = self.frame_for(transform, view_rect)
        key = (frame, self._generation, self.point_size, self.point_limit)
        if self._raster is None or self._raster.key != key:
            if len(drawing) < self.background_limit:
                self._show(self._render(key, frame, view_rect, drawing))
            else:
                self._want(key, frame, view_rect)
        raster = self._raster
        if raster is None:
            return
        painter.save()
        painter.resetTransform()
        target = transform.mapRect(raster.view_rect)  # where that frame's view lies now
        if raster.key == key:
            painter.drawImage(target.topLeft(), raster.image)
            if self.thumbnail is not None and 0 < self.last_visible_count <= THUMBNAIL_LIMIT:
                self._draw_thumbnails(painter, frame, target.topLeft())
        else:  # the newest frame is being rendered: the last one, stretched, meanwhile
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(target, raster.image)
        painter.restore()

    def _render(self, key: tuple, frame: Frame, view_rect: QRectF, drawing: Drawing) -> _Raster:
        """Render a frame (safe on a worker thread: the image is its own)."""
        pixels, visible = render(frame, drawing.x, drawing.y, drawing.colors, drawing.outlines,
                                 key[2], key[3])
        image = QImage(pixels.data, frame.width, frame.height, frame.width * 4,
                       QImage.Format.Format_ARGB32)  # borrows pixels, kept beside it
        return _Raster(key, frame, view_rect, pixels, visible, image)

    def _show(self, raster: _Raster) -> None:
        self._raster = raster
        self.last_frame = raster.frame
        self.last_visible_count = len(self.drawing) if raster.visible is None \
            else len(raster.visible)

    def _want(self, key: tuple, frame: Frame, view_rect: QRectF) -> None:
        """Render ``key``'s frame in the background, after the one under way if any."""
        self._wanted = (key, frame, view_rect)
        if self._rendering:
            return
        self._rendering = True
        drawing = self.drawing
        self._future = _RENDERER.submit(self._render, key, frame, view_rect, self.drawing)
        self._poll.start()

    def _check_frame(self) -> None:
        if not self._future.done():
            return
        self._poll.stop()
        self._rendering = False
        raster = self._future.result()  # a failure to render is raised here, on the GUI
        self._show(raster)  # shown stretched until the newest frame, if another, is ready
        if self._wanted is not None and self._wanted[0] != raster.key:
            self._want(*self._wanted)
        self.update()
        self.frame_rendered.emit()

    def _draw_thumbnails(self, painter: QPainter, frame: Frame, origin: QPointF) -> None:
        drawing, visible = self.drawing, self._raster.visible
        for index in np.arange(len(drawing)) if visible is None else visible:
            image = self.thumbnail(int(drawing.order[index]))
            if image is None or image.isNull():
                continue
            centre = QPointF(drawing.x[index] * frame.scale_x + frame.offset_x + origin.x(),
                             drawing.y[index] * frame.scale_y + frame.offset_y + origin.y())
            painter.drawImage(centre - QPointF(image.width() / 2, image.height() / 2), image)
