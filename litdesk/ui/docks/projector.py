"""The Embedding Projector dock: PCA, UMAP or t-SNE of any embeddings, at a million points.

Sources are the models' embedding outputs, the dataset's vector columns and its numeric
columns together. Projections run on the worker and are cached on disk; the points are
drawn by :class:`~litdesk.ui.point_cloud.PointCloudItem`, which renders only what is
visible. Click, box and lasso select rows (Shift adds, Ctrl toggles); the selection is
shared with every dock.
"""

from __future__ import annotations

import html
import math
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import (QAction, QColor, QImage, QKeySequence, QPainter, QPainterPath, QPen,
                           QPolygonF)
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QGraphicsPathItem,
                               QHBoxLayout, QLabel, QLineEdit, QMenu, QSlider, QSpinBox,
                               QToolButton, QToolTip, QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core import projection, table_query
from litdesk.core.cache import ResultCache
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.palette import CATEGORY_COLORS, OTHER_COLOR
from litdesk.ui.point_cloud import THUMBNAIL_PIXELS, PointCloudItem

#: Selected rows beyond this many are shown by fading the others, not with rings.
MAX_RINGS = 2_000
HOVER_RADIUS = 6.0
#: Colours of a numeric field: a perceptually even ramp (viridis' end points and middle).
RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                dtype=np.float32)
AS_IS = "as is"


def _rgb(hex_color: str) -> tuple[int, int, int]:
    color = QColor(hex_color)
    return color.red(), color.green(), color.blue()


CATEGORY_RGB = np.array([_rgb(c) for c in CATEGORY_COLORS] + [_rgb(OTHER_COLOR)], dtype=np.uint8)


def ramp_colors(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """RGB rows for numbers on the ramp, clipped to their 1st–99th percentiles (NaN grey)."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.tile(CATEGORY_RGB[-1], (len(values), 1)), math.nan, math.nan
    low, high = np.percentile(values[finite], [1, 99])
    scaled = np.clip((values - low) / ((high - low) or 1.0), 0, 1) * (len(RAMP) - 1)
    scaled = np.nan_to_num(scaled)
    lower = np.minimum(scaled.astype(np.int64), len(RAMP) - 2)
    weight = (scaled - lower)[:, None].astype(np.float32)
    rgb = RAMP[lower] * (1 - weight) + RAMP[lower + 1] * weight
    rgb[~finite] = CATEGORY_RGB[-1]
    return rgb.astype(np.uint8), float(low), float(high)


def category_codes(values: pa.ChunkedArray | pa.Array, most: int = len(CATEGORY_COLORS)
                   ) -> tuple[np.ndarray, list[str]]:
    """Per row a colour index, and the names: the ``most - 1`` commonest values keep their
    own colour when there are more than ``most``; the rest share "(other)"."""
    encoded = pc.dictionary_encode(pc.fill_null(values.cast(pa.string()), "(missing)"))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    if len(names) <= most:
        return indices, names
    counts = np.bincount(indices, minlength=len(names))
    keep = np.argsort(-counts, kind="stable")[:most - 1]
    remap = np.full(len(names), most - 1)
    remap[keep] = np.arange(len(keep))
    return remap[indices], [names[i] for i in keep] + ["(other)"]


def rotation(azimuth: float, elevation: float) -> np.ndarray:
    """The 3 × 2 matrix projecting 3D points onto the screen for a camera at these angles (degrees)."""
    a, e = np.radians(azimuth), np.radians(elevation)
    right = np.array([np.cos(a), 0.0, -np.sin(a)])
    up = np.array([-np.sin(e) * np.sin(a), np.cos(e), -np.sin(e) * np.cos(a)])
    return np.stack([right, up], axis=1).astype(np.float32)


class SelectionViewBox(pg.ViewBox):
    """A view box whose left button pans, draws a box or a lasso, or rotates a 3D cloud."""

    #: (polygon in viewport pixels, keyboard modifiers) when a box or lasso is finished.
    region_drawn = Signal(object, object)
    #: (viewport pixel, keyboard modifiers) on a left click.
    clicked = Signal(object, object)
    #: (degrees across, degrees up) while dragging a 3D cloud.
    rotated = Signal(float, float)

    def __init__(self) -> None:
        super().__init__()
        self.mode = "pan"  # or "box", "lasso"
        self.rotatable = False
        self._trail: list[QPointF] = []
        self._overlay: Optional[QGraphicsPathItem] = None

    def _viewport_point(self, scene_pos: QPointF) -> QPointF:
        return QPointF(self.scene().views()[0].mapFromScene(scene_pos))

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph API)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self._viewport_point(ev.scenePos()), ev.modifiers())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph API)
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
        elif self.mode in ("box", "lasso"):
            ev.accept()
            self._draw_region(ev)
        elif self.rotatable:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.rotated.emit(delta.x() * 0.4, delta.y() * 0.4)
        else:
            super().mouseDragEvent(ev, axis)

    def _draw_region(self, ev) -> None:
        if ev.isStart():
            self._trail = [ev.buttonDownScenePos()]
            self._overlay = QGraphicsPathItem()
            pen = QPen(QColor("#222222"), 1.2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._overlay.setPen(pen)
            self._overlay.setBrush(QColor(30, 120, 220, 40))
            self.scene().addItem(self._overlay)
        if self.mode == "lasso":
            self._trail.append(ev.scenePos())
            scene_points = self._trail
        else:
            start, end = self._trail[0], ev.scenePos()
            scene_points = [start, QPointF(end.x(), start.y()), end, QPointF(start.x(), end.y())]
        path = QPainterPath()
        path.addPolygon(QPolygonF(scene_points))
        path.closeSubpath()
        if self._overlay is not None:
            self._overlay.setPath(path)
        if ev.isFinish():
            if self._overlay is not None:
                self.scene().removeItem(self._overlay)
                self._overlay = None
            polygon = QPolygonF([self._viewport_point(p) for p in scene_points])
            self.region_drawn.emit(polygon, ev.modifiers())


class ProjectorDock(QWidget):
    """Projections of embeddings, coloured by any field, linked to the shared selection."""

    #: Emitted when new coordinates are on screen (tests and scripts wait on it).
    projected = Signal()

    def __init__(self, session: Session, runner: JobRunner, cache: Optional[ResultCache] = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.cache = cache
        self.coords: Optional[np.ndarray] = None  # projected: rows × 2 or 3
        self.positions: Optional[np.ndarray] = None  # on screen: rows × 2
        self.vectors: Optional[np.ndarray] = None  # the source, for nearest neighbours
        self.matches: Optional[np.ndarray] = None  # rows matching the search
        self.azimuth, self.elevation = 30.0, 20.0
        self._projected_request: Optional[tuple] = None  # on screen
        self._running_request: Optional[tuple] = None  # being computed by _worker
        self._worker = None
        self._search_worker = None
        self._thumbnails: dict[int, Optional[QImage]] = {}

        self._build_controls()
        self.view_box = SelectionViewBox()
        self.plot = pg.PlotWidget(background="w", viewBox=self.view_box)
        self.plot.setMenuEnabled(False)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.hideButtons()
        self.cloud = PointCloudItem()
        self.highlight = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k", width=1.5), brush=None)
        self.primary_marker = pg.ScatterPlotItem(size=15, pen=pg.mkPen("#d62728", width=2.5),
                                                 brush=None)
        self.pinned_marker = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("k"),
                                                brush=pg.mkBrush("#ffd400"))
        for item in (self.cloud, self.highlight, self.primary_marker, self.pinned_marker):
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks and drags: the view's
            self.plot.addItem(item)
        self.view_box.clicked.connect(self._on_click)
        self.view_box.region_drawn.connect(self._on_region)
        self.view_box.rotated.connect(self._on_rotate)
        self._hover = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._on_hover)
        # The legend sits above the plot, so that it never hides (or swallows clicks on) points.
        self.legend = QLabel()
        self.legend.setObjectName("projectorLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(self._source_row)
        layout.addLayout(self._style_row)
        layout.addWidget(self.message)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)

        session.dataset_changed.connect(self._on_dataset_changed)
        session.spec_changed.connect(self._fill_sources)
        session.predictions_changed.connect(self._on_predictions_changed)
        session.rows_added.connect(self._on_rows_added)
        session.selection_changed.connect(self._on_selection)
        if session.dataset is not None:
            self._on_dataset_changed()

    # -- controls -----------------------------------------------------------------------

    def _build_controls(self) -> None:
        self.source = QComboBox()
        self.source.setToolTip("What to project: a model's embeddings, a vector column, or "
                               "the numeric columns together")
        self.source.setMinimumContentsLength(8)
        self.method = QComboBox()
        for name, info in projection.METHODS.items():
            self.method.addItem(info.label, name)
        self.method.addItem("As is", AS_IS)
        self.method.setToolTip("Projection method (PCA is instant; UMAP and t-SNE run in the "
                               "background and are cached)")
        self.dims = QComboBox()
        self.dims.addItem("2D", 2)
        self.dims.addItem("3D", 3)
        self.dims.setToolTip("In 3D, drag to rotate")
        for combo in (self.source, self.method, self.dims):
            combo.currentIndexChanged.connect(self.project)
        self.color_by = QComboBox()
        self.color_by.setToolTip("Colour points by this field")
        self.color_by.setMinimumContentsLength(6)
        self.color_by.currentIndexChanged.connect(self.recolor)
        for combo in (self.source, self.color_by):  # long names must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.message = QLabel("Load a model that outputs embeddings, or a dataset with vector "
                              "or numeric columns, to see a projection.")
        self.message.setWordWrap(True)
        self.message.linkActivated.connect(lambda _link: self.project())

        self.point_size = QSpinBox(minimum=2, maximum=20, value=7, suffix=" px")
        self.point_size.setToolTip("Point size")
        self.point_size.valueChanged.connect(lambda size: self.cloud.set_style(point_size=size))
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=5, maximum=100, value=85)
        self.opacity.setMaximumWidth(80)
        self.opacity.setToolTip("Opacity")
        self.opacity.valueChanged.connect(lambda value: self.cloud.set_style(opacity=value / 100))
        self.search = QLineEdit(placeholderText="Highlight: words, label=x, score>0.5…")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.run_search)
        self.search.textChanged.connect(lambda text: text or self.run_search())
        self.neighbours = QSpinBox(minimum=1, maximum=10_000, value=20)
        self.neighbours.setToolTip("How many nearest neighbours to select")
        neighbours_button = QToolButton(text="kNN")
        neighbours_button.setToolTip("Select the nearest neighbours of the primary row, in "
                                     "the original embedding space (N)")
        neighbours_button.clicked.connect(self.select_neighbours)

        self.mode_buttons = QButtonGroup(self)
        mode_row = QHBoxLayout()
        mode_row.setSpacing(0)
        for mode, label, key, tip in (("pan", "Pan", "H", "Drag pans, wheel zooms (3D: drag rotates)"),
                                      ("box", "Box", "B", "Drag a box to select"),
                                      ("lasso", "Lasso", "L", "Draw around points to select")):
            button = QToolButton(text=label, checkable=True)
            button.setToolTip(f"{tip}; Shift adds, Ctrl toggles ({key})")
            button.setShortcut(QKeySequence(key))
            button.setChecked(mode == "pan")
            button.toggled.connect(lambda on, m=mode: on and self.set_mode(m))
            self.mode_buttons.addButton(button)
            mode_row.addWidget(button)
        fit = QToolButton(text="Fit")
        fit.setToolTip("Show every point (F)")
        fit.setShortcut(QKeySequence("F"))
        fit.clicked.connect(self.fit_view)
        export = QToolButton(text="Export")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.addAction("View as PNG…", lambda: self._export_dialog("png"))
        menu.addAction("View as SVG…", lambda: self._export_dialog("svg"))
        menu.addAction("Coordinates as CSV…", lambda: self._export_dialog("csv"))
        menu.addAction("Coordinates as Parquet…", lambda: self._export_dialog("parquet"))
        export.setMenu(menu)
        neighbours_action = QAction(self, shortcut=QKeySequence("N"),
                                    triggered=self.select_neighbours)
        neighbours_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(neighbours_action)

        self._source_row = QHBoxLayout()
        for widget, stretch in ((QLabel("Project"), 0), (self.source, 2), (self.method, 0),
                                (self.dims, 0), (QLabel("Colour"), 0), (self.color_by, 1)):
            self._source_row.addWidget(widget, stretch)
        self._style_row = QHBoxLayout()
        self._style_row.addLayout(mode_row)
        for widget, stretch in ((fit, 0), (self.search, 2), (self.neighbours, 0),
                                (neighbours_button, 0), (self.point_size, 0), (self.opacity, 0),
                                (export, 0)):
            self._style_row.addWidget(widget, stretch)

    def set_mode(self, mode: str) -> None:
        """What a left-drag does: "pan", "box" or "lasso"."""
        self.view_box.mode = mode
        self.view_box.setMouseEnabled(mode == "pan", mode == "pan")
        for button in self.mode_buttons.buttons():
            button.setChecked(button.text().lower() == mode)

    # -- sources ------------------------------------------------------------------------

    def _sources(self) -> list[tuple[str, tuple]]:
        """(label, source) for everything that can be projected."""
        found = [(f"{model}: {name}", ("model", model, name))
                 for model, predictions in self.session.predictions.items()
                 for name, t in predictions.spec.items() if isinstance(t, types.Embeddings)]
        dataset = self.session.dataset
        if dataset is not None:
            spec = dataset.spec()
            found += [(name, ("column", name)) for name, t in spec.items()
                      if isinstance(t, types.Embeddings)]
            numeric = tuple(name for name, t in spec.items() if isinstance(t, types.Scalar))
            if len(numeric) >= 2:
                found.append((f"numeric columns ({len(numeric)})", ("numeric", numeric)))
        return found

    def _fill_sources(self) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        for label, source in self._sources():
            self.source.addItem(label, source)
        index = self.source.findData(current) if current else -1
        self.source.setCurrentIndex(index if index >= 0 else 0)
        self.source.blockSignals(False)
        self._fill_color_fields()
        self.project()

    def _source_vectors(self, source: tuple, method: str) -> np.ndarray:
        kind = source[0]
        if kind == "model":
            return self.session.predictions[source[1]].fields[source[2]]
        if kind == "column":
            return projection.dataset_vectors(self.session.dataset, source[1])
        return projection.numeric_matrix(self.session.dataset, list(source[1]),
                                         standardise=method != AS_IS)

    def _on_dataset_changed(self) -> None:
        if self._worker is not None:
            self.runner.cancel(self._worker)
            self._worker = None
        self.coords = self.positions = self.vectors = self.matches = None
        self._projected_request = None
        self._thumbnails.clear()
        self.cloud.thumbnail = self._thumbnail if self._image_field() else None
        self.cloud.set_positions(np.zeros((0, 2), dtype=np.float32))
        for item in (self.highlight, self.primary_marker, self.pinned_marker):
            item.clear()
        self.legend.clear()
        self.message.show()
        self._fill_sources()

    def _on_predictions_changed(self, _model: str) -> None:
        self._fill_sources()

    def _on_rows_added(self, _rows: np.ndarray) -> None:
        self._projected_request = None  # the same request now covers more rows
        self._fill_sources()

    # -- projecting ---------------------------------------------------------------------

    def request(self) -> Optional[tuple]:
        """(source, method, dims) chosen in the controls, or None."""
        source = self.source.currentData()
        if source is None or self.session.dataset is None:
            return None
        return source, self.method.currentData(), self.dims.currentData()

    def project(self) -> None:
        """Compute (or fetch from the cache) the chosen projection on the worker."""
        request = self.request()
        if request is None or request == self._projected_request:
            return
        if self._worker is not None and request == self._running_request:
            return  # already on its way
        source, method, dims = request
        try:
            vectors = self._source_vectors(source, method)
        except ValueError as error:
            self.message.setText(f"Cannot project {self.source.currentText()}: {error}")
            self.message.show()
            return
        if self._worker is not None:
            self.runner.cancel(self._worker)
        dataset_name = self.session.dataset.name
        title = f"{self.method.currentText()} of {self.source.currentText()}"
        if method == AS_IS:
            job = self._as_is_job(vectors, dims)
        else:
            job = projection.projection_job(vectors, method, dims, cache=self.cache)
        self.message.setText(f"Computing {title}…")
        self.message.show()
        worker = self.runner.submit(
            job, title, lambda coords: self.set_coords(coords, request, dataset_name, vectors),
            self._on_failed)
        worker.finished.connect(lambda: self._on_projection_finished(worker))
        self._worker, self._running_request = worker, request

    def _on_projection_finished(self, worker) -> None:
        if self._worker is worker:  # it ended with neither a result nor an error: cancelled
            self._worker = None
            self.message.setText('Projection cancelled. <a href="again">Run it again</a>')
            self.message.show()

    @staticmethod
    def _as_is_job(vectors: np.ndarray, dims: int):
        if vectors.shape[1] < 2:
            raise ValueError("coordinates need at least two columns")
        yield from ()
        columns = vectors[:, :dims]
        if columns.shape[1] < dims:
            columns = np.hstack([columns, np.zeros((len(columns), dims - columns.shape[1]))])
        return np.asarray(columns, dtype=np.float32)

    def _on_failed(self, failure: JobFailed) -> None:
        self._worker = None
        self.message.setText(f"{failure.title} failed: {failure.error}")
        self.message.show()

    def set_coords(self, coords: np.ndarray, request: tuple, dataset_name: str,
                   vectors: Optional[np.ndarray] = None) -> None:
        """Show projected coordinates (ignored if the dataset changed meanwhile)."""
        self._worker = None
        dataset = self.session.dataset
        if dataset is None or dataset.name != dataset_name or len(coords) != len(dataset):
            return
        self.coords = np.asarray(coords, dtype=np.float32)
        self.vectors = vectors
        self._projected_request = request
        self.message.hide()
        self.view_box.rotatable = self.coords.shape[1] == 3
        self._place_points()
        self.recolor()
        self.fit_view()
        self._on_selection(None)
        self.projected.emit()

    def _place_points(self) -> None:
        if self.coords is None:
            return
        if self.coords.shape[1] == 3:
            centred = self.coords - np.nanmean(self.coords, axis=0)
            self.positions = centred @ rotation(self.azimuth, self.elevation)
        else:
            self.positions = self.coords
        self.cloud.set_positions(self.positions)

    def _on_rotate(self, across: float, up: float) -> None:
        self.azimuth = (self.azimuth + across) % 360
        self.elevation = float(np.clip(self.elevation + up, -89, 89))
        self._place_points()
        self._on_selection(None)

    def fit_view(self) -> None:
        """Zoom to show every point."""
        bounds = self.cloud.data_bounds()
        if not bounds.isEmpty():
            self.view_box.setRange(rect=bounds, padding=0.04)

    # -- colour -------------------------------------------------------------------------

    def _fill_color_fields(self) -> None:
        current = self.color_by.currentData()
        self.color_by.blockSignals(True)
        self.color_by.clear()
        dataset = self.session.dataset
        if dataset is not None:  # categories first: the likeliest choice (a label) leads
            spec = dataset.spec()
            for wanted in ((types.CategoryLabel, types.Boolean), (types.Scalar,)):
                for name, t in spec.items():
                    if isinstance(t, wanted):
                        self.color_by.addItem(name, ("column", name))
        labelled = [model for model, p in self.session.predictions.items()
                    if p.predicted_labels() is not None]
        for model in labelled:
            self.color_by.addItem(f"{model}: prediction", ("prediction", model))
            if self._gold(model) is not None:
                self.color_by.addItem(f"{model}: correct?", ("correct", model))
        if len(labelled) > 1:
            self.color_by.addItem("models disagree?", ("disagree", ""))
        self.color_by.addItem("(none)", ("none", ""))
        index = self.color_by.findData(current) if current else -1
        self.color_by.setCurrentIndex(index if index >= 0 else 0)
        self.color_by.blockSignals(False)
        self.recolor()

    def _gold(self, model: str) -> Optional[np.ndarray]:
        """The gold label of each row as an index into the model's vocabulary (-1: none)."""
        from litdesk.core.metrics import gold_column

        predictions = self.session.predictions[model]
        column = gold_column(self.session.dataset, predictions.spec)
        labelled = predictions.predicted_labels()
        if column is None or labelled is None:
            return None
        vocab = pa.array(list(labelled[2]), pa.string())
        gold = self.session.dataset.table.column(column).cast(pa.string())
        return pc.fill_null(pc.index_in(gold, value_set=vocab), -1).to_numpy(zero_copy_only=False)

    def point_colors(self) -> tuple[np.ndarray, str]:
        """Per row an RGB colour for the chosen field, and the legend as rich text."""
        dataset = self.session.dataset
        n = len(dataset) if dataset is not None else 0
        kind, name = self.color_by.currentData() or ("none", "")
        codes, names = np.full(n, len(CATEGORY_RGB) - 1), []
        if kind == "column":
            column = dataset.table.column(name)
            if isinstance(dataset.spec()[name], types.Scalar):
                values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
                rgb, low, high = ramp_colors(np.asarray(values, dtype=np.float64))
                return rgb, self._ramp_legend(name, low, high)
            codes, names = category_codes(column)
        elif kind == "prediction":
            _field, argmax, vocab = self.session.predictions[name].predicted_labels()
            codes, names = category_codes(pa.array(np.asarray(vocab, dtype=object)[argmax]))
        elif kind == "correct":
            gold = self._gold(name)
            argmax = self.session.predictions[name].predicted_labels()[1]
            codes = np.where(gold < 0, 2, np.where(argmax == gold, 0, 1))
            names = ["correct", "wrong", "no gold"]
            palette = np.array([_rgb("#59a14f"), _rgb("#e15759"), _rgb(OTHER_COLOR)], np.uint8)
            return palette[codes], self._category_legend(names, palette)
        elif kind == "disagree":
            labels = np.vstack([p.predicted_labels()[1] for p in self.session.predictions.values()
                                if p.predicted_labels() is not None])
            codes = np.any(labels != labels[0], axis=0).astype(np.int64)
            names = ["agree", "disagree"]
            palette = np.array([_rgb("#bab0ac"), _rgb("#e15759")], np.uint8)
            return palette[codes], self._category_legend(names, palette)
        palette = CATEGORY_RGB if names else CATEGORY_RGB[-1:]
        codes = np.minimum(codes, len(palette) - 1)
        return palette[codes], self._category_legend(names, palette)

    @staticmethod
    def _category_legend(names: list[str], palette: np.ndarray) -> str:
        return "&nbsp;&nbsp;".join(
            f'<span style="color:rgb({r},{g},{b})">●</span>&nbsp;{html.escape(label)}'
            for label, (r, g, b) in zip(names, palette[:len(names)]))

    @staticmethod
    def _ramp_legend(name: str, low: float, high: float) -> str:
        stops = "".join(f'<span style="color:rgb({int(r)},{int(g)},{int(b)})">█</span>'
                        for r, g, b in RAMP)
        return f"{html.escape(name)}: {low:.3g} {stops} {high:.3g}"

    def recolor(self) -> None:
        """Re-colour the points without moving them."""
        if self.coords is None:
            return
        rgb, legend = self.point_colors()
        self.cloud.set_colors(rgb)
        self.legend.setText(legend)

    # -- selection ----------------------------------------------------------------------

    def _frame(self):
        """The frame the cloud was last drawn on and its origin in viewport pixels."""
        transform = self.cloud.deviceTransform(self.plot.viewportTransform())
        view_rect = self.view_box.viewRect()
        frame = self.cloud.frame_for(transform, view_rect)
        return frame, transform.mapRect(view_rect).topLeft()

    def _combine(self, rows: np.ndarray, modifiers) -> np.ndarray:
        current = self.session.selection.rows
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return np.union1d(current, rows)
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return np.setxor1d(current, rows)
        return rows

    def _on_click(self, pixel: QPointF, modifiers) -> None:
        if self.positions is None:
            return
        frame, origin = self._frame()
        hits = self.cloud.rows_at(frame, pixel - origin, HOVER_RADIUS)
        if len(hits) == 0:
            if not modifiers & (Qt.KeyboardModifier.ShiftModifier
                                | Qt.KeyboardModifier.ControlModifier):
                self.session.select([], source=self)
            return
        row = int(hits[0])
        rows = self._combine(np.array([row]), modifiers)
        primary = row if row in rows else None
        self.session.select(rows, primary, source=self)

    def _on_region(self, polygon: QPolygonF, modifiers) -> None:
        if self.positions is None:
            return
        frame, origin = self._frame()
        rows = self.cloud.rows_in_polygon(frame, polygon.translated(-origin))
        self.select_rows(self._combine(rows, modifiers))

    def select_rows(self, rows: np.ndarray) -> None:
        """Make ``rows`` the shared selection (the primary row stays if it is among them)."""
        primary = self.session.selection.primary
        self.session.select(rows, primary if primary in rows else None, source=self)

    def _on_selection(self, _source: object) -> None:
        if self.positions is None:
            return
        selection = self.session.selection
        rows = self._drawn(selection.rows)
        shown = rows if len(rows) <= MAX_RINGS else np.zeros(0, dtype=np.int64)
        self.highlight.setData(x=self.positions[shown, 0], y=self.positions[shown, 1])
        self._place_marker(self.primary_marker, selection.primary)
        self._place_marker(self.pinned_marker, selection.pinned)
        self._update_emphasis()

    def _drawn(self, rows: np.ndarray) -> np.ndarray:
        """Those of ``rows`` that have a point (rows just added have none until projected)."""
        return rows[rows < len(self.positions)] if self.positions is not None else rows[:0]

    def _place_marker(self, marker: pg.ScatterPlotItem, row: Optional[int]) -> None:
        if row is None or row >= len(self.positions):
            marker.clear()
        else:
            marker.setData(x=self.positions[[row], 0], y=self.positions[[row], 1])

    def _update_emphasis(self) -> None:
        """Search matches, else a selection of several rows, are drawn on top of the rest."""
        if self.matches is not None:
            self.cloud.set_emphasis(self._drawn(self.matches))
        elif len(self.session.selection.rows) > 1:
            self.cloud.set_emphasis(self._drawn(self.session.selection.rows))
        else:
            self.cloud.set_emphasis(None)

    # -- search and neighbours ----------------------------------------------------------

    def run_search(self) -> None:
        """Highlight the rows matching the search box (the data table's search syntax)."""
        dataset, text = self.session.dataset, self.search.text().strip()
        if self._search_worker is not None:
            self.runner.cancel(self._search_worker)
            self._search_worker = None
        if dataset is None or not text:
            self.matches = None
            self.search.setStyleSheet("")
            self._update_emphasis()
            return

        def job():
            yield from ()
            return table_query.filter_rows(dataset.table, dataset.spec(),
                                           table_query.RowQuery(search=text))

        self._search_worker = self.runner.submit(job(), "Projector search", self._show_matches,
                                                 self._on_search_failed, interactive=True)

    def _show_matches(self, rows: np.ndarray) -> None:
        self._search_worker = None
        self.matches = rows
        self.search.setStyleSheet("")
        self.search.setToolTip(f"{len(rows):,} matching rows")
        self._update_emphasis()

    def _on_search_failed(self, failure: JobFailed) -> None:
        self._search_worker = None
        self.search.setStyleSheet("QLineEdit { border: 1px solid #c0392b; }")
        self.search.setToolTip(str(failure.error))

    def select_neighbours(self) -> None:
        """Select the primary row's nearest neighbours in the original embedding space."""
        primary = self.session.selection.primary
        if self.vectors is None or primary is None:
            return
        vectors, k = self.vectors, self.neighbours.value()

        def job():
            yield from ()
            return projection.nearest_neighbors(vectors, primary, k)

        self.runner.submit(job(), "Nearest neighbours",
                           lambda rows: self.session.select(rows, primary, source=self),
                           interactive=True)

    # -- hover and thumbnails -----------------------------------------------------------

    def _on_hover(self, event: tuple) -> None:
        if self.positions is None or self.session.dataset is None:
            return
        viewport = self.plot.viewport()
        pixel = QPointF(self.plot.mapFromScene(event[0]))
        frame, origin = self._frame()
        hits = self.cloud.rows_at(frame, pixel - origin, HOVER_RADIUS)
        if len(hits) == 0:
            QToolTip.hideText()
            return
        QToolTip.showText(viewport.mapToGlobal(pixel.toPoint()), self.row_summary(int(hits[0])),
                          viewport)

    def row_summary(self, row: int) -> str:
        """A few fields of ``row`` as rich text, for the hover tooltip."""
        dataset = self.session.dataset
        values = dataset.table.slice(row, 1).to_pylist()[0]
        lines = [f"<b>row {row}</b>"]
        for name, t in list(dataset.spec().items())[:6]:
            if isinstance(t, (types.ImageBytes, types.Embeddings)):
                continue
            text = str(values.get(name))
            lines.append(f"{html.escape(name)}: {html.escape(text[:120])}"
                         + ("…" if len(text) > 120 else ""))
        for model, predictions in self.session.predictions.items():
            labelled = predictions.predicted_labels()
            if labelled is not None:
                field, argmax, vocab = labelled
                lines.append(f"{html.escape(model)}: {html.escape(str(vocab[argmax[row]]))} "
                             f"({predictions.fields[field][row, argmax[row]]:.2f})")
        return "<br>".join(lines)

    def _thumbnail(self, row: int) -> Optional[QImage]:
        if row not in self._thumbnails:
            field = self._image_field()
            data = self.session.dataset.table.column(field)[row].as_py() if field else None
            image = QImage.fromData(data) if data else QImage()
            self._thumbnails[row] = None if image.isNull() else image.scaled(
                THUMBNAIL_PIXELS, THUMBNAIL_PIXELS, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
        return self._thumbnails[row]

    def _image_field(self) -> Optional[str]:
        dataset = self.session.dataset
        return next((name for name, t in dataset.spec().items()
                     if isinstance(t, types.ImageBytes)), None) if dataset else None

    # -- export -------------------------------------------------------------------------

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)",
                   "csv": "CSV (*.csv)", "parquet": "Parquet (*.parquet)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"projection.{kind}", filters[kind])
        if path:
            self.export(path)

    def export(self, path: str) -> None:
        """Write the view (.png, .svg) or the coordinates (.csv, .parquet) to ``path``."""
        suffix = path.rsplit(".", 1)[-1].lower()
        if suffix == "png":
            self.plot.grab().save(path)
        elif suffix == "svg":  # the points as an embedded image, the markers as vectors
            from PySide6.QtSvg import QSvgGenerator

            generator = QSvgGenerator()
            generator.setFileName(path)
            generator.setSize(self.plot.size())
            generator.setViewBox(self.plot.rect())
            generator.setTitle("litdesk projection")
            painter = QPainter(generator)
            self.plot.render(painter)
            painter.end()
        elif suffix in ("csv", "parquet"):
            if self.coords is None:
                raise ValueError("there is no projection to export yet")
            columns: dict[str, Any] = {"row": np.arange(len(self.coords))}
            columns.update({axis: self.coords[:, i]
                            for i, axis in enumerate("xyz"[:self.coords.shape[1]])})
            table = pa.table(columns)
            if suffix == "csv":
                import pyarrow.csv as pacsv

                pacsv.write_csv(table, path)
            else:
                import pyarrow.parquet as pq

                pq.write_table(table, path)
        else:
            raise ValueError(f"cannot export to .{suffix}: choose .png, .svg, .csv or .parquet")
