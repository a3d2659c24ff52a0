"""The Embedding Projector dock: PCA, UMAP or t-SNE of any embeddings, at a million points.

Sources are the models' embedding outputs, the dataset's vector columns and its numeric
columns together. Projections run on the worker and are cached on disk; the points are
drawn by :class:`~litdesk.ui.point_cloud.PointCloudItem`, which renders only what is
visible. Colours (a column, or a model's outcome: its label, right or wrong, where the
models disagree, what changed from one model to another), the drawing order and what a lasso
encloses are computed on the worker too, and only while the dock is on screen. Click, box
and lasso select rows (Shift adds, Ctrl toggles); the selection is shared with every dock.
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
                               QToolButton, QToolTip, QVBoxLayout)
from shiboken6 import isValid

from litdesk.api import Dataset, types
from litdesk.core import projection, table_query
from litdesk.core.before_after import CHANGES, default_pair, row_changes
from litdesk.core.cache import ResultCache
from litdesk.core.categories import MISSING, Categories, encode_categories
from litdesk.core.clusters import ClusterInfo, cluster_centres, clusters_job
from litdesk.core.empty_states import empty_state
from litdesk.core.outcomes import Outcomes
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.palette import CATEGORY_COLORS, OTHER_COLOR
from litdesk.ui.widgets.cluster_labels import ClusterLabels
from litdesk.ui.point_cloud import (EMPTY_DRAWING, THUMBNAIL_PIXELS, Drawing, PointCloudItem,
                                    prepare_drawing, rows_in_polygon)

#: Selected rows beyond this many are shown by fading the others, not with rings.
MAX_RINGS = 2_000
HOVER_RADIUS = 6.0
#: Colours of a numeric field: a perceptually even ramp (viridis' end points and middle).
RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                dtype=np.float32)
AS_IS = "as is"
#: What the projector is for, in its empty states.
PURPOSE = "to see a projection"
#: Colour by what changed between every two of at most this many classifiers; with more, only
#: between the likeliest pair (a model trained here and the one it came from).
MOST_PAIRS_OF = 4
#: The colours of kinds of points that depend on the outcomes (the rest depend on the data).
OUTCOME_KINDS = ("prediction", "correct", "disagree", "changed")


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


def palette_codes(categories: Categories, most: int = len(CATEGORY_COLORS)
                  ) -> tuple[np.ndarray, list[str]]:
    """Per row a colour index, and the names: missing values are "(missing)"; the
    ``most - 1`` commonest values keep their own colour when there are more than ``most``,
    the rest share "(other)"."""
    codes, names = categories.codes, list(categories.labels)
    missing = codes == MISSING
    if missing.any():
        codes = np.where(missing, len(names), codes)
        names.append("(missing)")
    if len(names) <= most:
        return codes, names
    counts = np.bincount(codes, minlength=len(names))
    keep = np.argsort(-counts, kind="stable")[:most - 1]
    remap = np.full(len(names), most - 1)
    remap[keep] = np.arange(len(keep))
    return remap[codes], [names[i] for i in keep] + ["(other)"]


def fit_popup(combo: QComboBox) -> None:
    """Let the list of a combo box kept narrow in the dock show its entries whole."""
    metrics = combo.fontMetrics()
    widest = max((metrics.horizontalAdvance(combo.itemText(i)) for i in range(combo.count())),
                 default=0)
    view = combo.view()  # a hidden view's own size hint counts only the rows it has laid out
    view.setMinimumWidth(widest + view.verticalScrollBar().sizeHint().width()
                         + 2 * metrics.averageCharWidth())


def category_legend(names: list[str], palette: np.ndarray) -> str:
    """The legend of categorical colours, as rich text."""
    return "&nbsp;&nbsp;".join(
        f'<span style="color:rgb({r},{g},{b})">●</span>&nbsp;{html.escape(label)}'
        for label, (r, g, b) in zip(names, palette[:len(names)]))


def ramp_legend(name: str, low: float, high: float) -> str:
    """The legend of a numeric field's ramp, as rich text."""
    stops = "".join(f'<span style="color:rgb({int(r)},{int(g)},{int(b)})">█</span>'
                    for r, g, b in RAMP)
    return f"{html.escape(name)}: {low:.3g} {stops} {high:.3g}"


CORRECT_PALETTE = np.array([_rgb("#59a14f"), _rgb("#e15759"), _rgb(OTHER_COLOR)], np.uint8)
DISAGREE_PALETTE = np.array([_rgb("#bab0ac"), _rgb("#e15759")], np.uint8)
#: By :data:`~litdesk.core.before_after.CHANGES`: what changed stands out, what stayed is pale.
CHANGED_PALETTE = np.array([_rgb("#1e8449"), _rgb("#d62728"), _rgb("#a9cce3"),
                            _rgb("#f5b7b1"), _rgb("#e0e0e0")], np.uint8)


def point_colors(dataset: Dataset, outcomes: Optional[Outcomes], kind: str, name: Any
                 ) -> tuple[np.ndarray, str]:
    """Per row an RGB colour for a field, and the legend as rich text. ``kind`` is "column"
    (the dataset column ``name``), "prediction" or "correct" (of the model ``name``, from
    the outcomes), "disagree" (whether the models disagree), "changed" (what changed from
    model ``name[0]`` to model ``name[1]``: wrong → right, right → wrong, still right or
    wrong) or "none"."""
    n = len(dataset)
    if kind == "column" and isinstance(dataset.spec()[name], types.Scalar):
        values = pc.cast(dataset.table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        rgb, low, high = ramp_colors(np.asarray(values, dtype=np.float64))
        return rgb, ramp_legend(name, low, high)
    if kind == "column":
        codes, names = palette_codes(encode_categories(dataset.table.column(name)))
    elif kind == "prediction":
        outcome = outcomes.models[name]
        codes, names = palette_codes(Categories(outcome.predicted, outcome.labels))
    elif kind == "correct":
        outcome = outcomes.models[name]
        codes = np.where(outcome.has_gold, np.where(outcome.correct, 0, 1), 2)
        return CORRECT_PALETTE[codes], category_legend(["correct", "wrong", "no gold"],
                                                       CORRECT_PALETTE)
    elif kind == "disagree":
        codes = outcomes.disagree.astype(np.int64)
        return DISAGREE_PALETTE[codes], category_legend(["agree", "disagree"], DISAGREE_PALETTE)
    elif kind == "changed":
        codes = row_changes(outcomes, *name)
        counts = np.bincount(codes, minlength=len(CHANGES))
        seen = np.flatnonzero(counts)  # the legend names only what happened
        return CHANGED_PALETTE[codes], f"{html.escape(name[0])} → {html.escape(name[1])}: " + \
            category_legend([f"{CHANGES[i]} ({counts[i]:,})" for i in seen], CHANGED_PALETTE[seen])
    else:
        return np.tile(CATEGORY_RGB[-1], (n, 1)), ""
    palette = CATEGORY_RGB if names else CATEGORY_RGB[-1:]
    return palette[np.minimum(codes, len(palette) - 1)], category_legend(names, palette)


def source_vectors(dataset: Dataset, source: tuple, method: str,
                   model_vectors: Optional[np.ndarray]) -> np.ndarray:
    """The vectors a source names: a model's embeddings (``model_vectors``), a vector column,
    or the numeric columns (standardised unless shown as they are)."""
    kind = source[0]
    if kind == "model":
        return model_vectors
    if kind == "column":
        return projection.dataset_vectors(dataset, source[1])
    return projection.numeric_matrix(dataset, list(source[1]), standardise=method != AS_IS)


def as_is_job(vectors: np.ndarray, dims: int):
    """The first ``dims`` columns of ``vectors`` as coordinates (zeros past the last)."""
    if vectors.shape[1] < 2:
        raise ValueError("coordinates need at least two columns")
    yield from ()
    columns = vectors[:, :dims]
    if columns.shape[1] < dims:
        columns = np.hstack([columns, np.zeros((len(columns), dims - columns.shape[1]))])
    return np.asarray(columns, dtype=np.float32)


def screen_positions(coords: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """Where projected points go on screen (rows × 2): a 3D cloud seen from the camera."""
    if coords.shape[1] == 3:
        return (coords - np.nanmean(coords, axis=0)) @ rotation(azimuth, elevation)
    return coords


def _index_of(combo: QComboBox, data: Any) -> int:
    """The index of the item holding ``data`` (-1: none). Qt's findData compares Python
    objects by identity, so a tuple made again is not found."""
    return next((index for index in range(combo.count()) if combo.itemData(index) == data), -1)


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


class ProjectorDock(RefreshWhenShown):
    """Projections of embeddings, coloured by any field, linked to the shared selection."""

    #: Emitted when new coordinates are on screen (tests and scripts wait on it).
    projected = Signal()
    #: Emitted when the points are drawn anew (new colours, emphasis, opacity or camera).
    drawn = Signal()
    #: Emitted when the clusters of the layout are named on screen.
    clusters_found = Signal()

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
        self.rgb: Optional[np.ndarray] = None  # the colour of each row
        self.azimuth, self.elevation = 30.0, 20.0
        self._projected_request: Optional[tuple] = None  # on screen
        self._running_request: Optional[tuple] = None  # being computed
        self._colored: Optional[tuple] = None  # what the colours show
        self._emphasis: Optional[np.ndarray] = None  # the rows drawn on top
        self._drawing_state: tuple = ()  # what the cloud draws, or is being prepared
        self._fit_next = False  # zoom to the points once the new coordinates are drawn
        self._thumbnails: dict[int, Optional[QImage]] = {}
        self.projection_slot = JobSlot(runner, "Projection", self)
        self.projection_slot.stopped.connect(self._on_projection_stopped)
        self.color_slot = JobSlot(runner, "Point colours", self)
        self.color_slot.stopped.connect(lambda: setattr(self, "_colored", None))
        self.draw_slot = JobSlot(runner, "Drawing points", self)
        self.draw_slot.stopped.connect(lambda: setattr(self, "_drawing_state", ()))
        self.pick_slot = JobSlot(runner, "Points in the lasso", self)
        self.search_slot = JobSlot(runner, "Projector search", self)
        self.neighbours_slot = JobSlot(runner, "Nearest neighbours", self)
        self.export_slot = JobSlot(runner, "Export coordinates", self)
        self.cluster_slot = JobSlot(runner, "Clusters", self)
        self.clusters: Optional[np.ndarray] = None  # per row its cluster, or NOISE
        self.cluster_infos: list[ClusterInfo] = []
        self._clustered: Optional[tuple] = None  # (coords, outcomes) clustered

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
        self.cluster_labels = ClusterLabels(self.plot, self._on_cluster_clicked)
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
        session.spec_changed.connect(self.request_refresh)
        session.models_changed.connect(self.request_refresh)  # what the empty state says
        session.predictions_changed.connect(lambda _model: self.request_refresh())
        session.outcomes_changed.connect(self.request_refresh)
        session.rows_added.connect(self._on_rows_added)
        session.selection_changed.connect(self._on_selection)
        if session.dataset is not None:
            self._on_dataset_changed()

    def refresh(self) -> None:
        """Catch up with the session: what can be projected and coloured, the projection,
        the colours and the selection."""
        self._fill_sources()
        self._fill_color_fields()
        if self.source.count() == 0 and self.coords is None:
            self.message.setText(self.empty_text())
            self.message.show()
        self.project()
        self.recolor()
        self._show_selection()
        self._redraw()

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
            combo.currentIndexChanged.connect(lambda _index: self.project())
        self.color_by = QComboBox()
        self.color_by.setToolTip("Colour points by this field")
        self.color_by.setMinimumContentsLength(6)
        self.color_by.currentIndexChanged.connect(lambda _index: self.recolor())
        for combo in (self.source, self.color_by):  # long names must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.message = QLabel(self.empty_text())
        self.message.setWordWrap(True)
        self.message.linkActivated.connect(lambda _link: self.project())

        self.point_size = QSpinBox(minimum=2, maximum=20, value=7, suffix=" px")
        self.point_size.setToolTip("Point size")
        self.point_size.valueChanged.connect(lambda size: self.cloud.set_point_size(size))
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=5, maximum=100, value=85)
        self.opacity.setMaximumWidth(80)
        self.opacity.setToolTip("Opacity")
        self.opacity.valueChanged.connect(lambda _value: self._redraw())
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
        self.clusters_button = QToolButton(text="Clusters", checkable=True)
        self.clusters_button.setToolTip(
            "Find clusters in the layout and name them: distinctive words, or the "
            "columns that stand out; the gold label and each model's accuracy. "
            "Click a name to select its cluster (C)")
        self.clusters_button.setShortcut(QKeySequence("C"))
        self.clusters_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        clusters_menu = QMenu(self.clusters_button)
        self.save_clusters_action = clusters_menu.addAction(
            "Save clusters as slices", self.save_clusters_as_slices)
        self.clusters_button.setMenu(clusters_menu)
        self.clusters_button.toggled.connect(lambda _on: self._update_clusters())
        self._style_row.addWidget(self.clusters_button)

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

    def empty_text(self) -> str:
        """Why there is nothing to project: no dataset, no model, none that fits or outputs
        embeddings, their predictions on the way, or nothing to project in the data."""
        dataset = self.session.dataset
        return empty_state(self.session, "embeddings", PURPOSE) or (
            f"Nothing to project in {dataset.name}: no model's embeddings, vector column or "
            "two numeric columns.")

    def _fill_sources(self) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        for label, source in self._sources():
            self.source.addItem(label, source)
        self.source.setCurrentIndex(max(0, _index_of(self.source, current)))
        self.source.blockSignals(False)
        fit_popup(self.source)

    def _on_dataset_changed(self) -> None:
        for slot in (self.projection_slot, self.color_slot, self.draw_slot, self.pick_slot,
                     self.search_slot, self.neighbours_slot):
            slot.cancel()
        self.coords = self.positions = self.vectors = self.matches = self.rgb = None
        self._projected_request = self._colored = self._emphasis = None
        self._drawing_state = ()
        self._thumbnails.clear()
        self.cloud.thumbnail = self._thumbnail if self._image_field() else None
        self.cloud.set_drawing(EMPTY_DRAWING)
        self._forget_clusters()
        for item in (self.highlight, self.primary_marker, self.pinned_marker):
            item.clear()
        self.legend.clear()
        self.message.hide()  # until the refresh says what there is to project, or why nothing
        self.request_refresh()

    def _on_rows_added(self, _rows: np.ndarray) -> None:
        self._projected_request = self._colored = None  # the same request now covers more rows
        self.request_refresh()

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
        if not self.on_screen:
            self.request_refresh()  # when shown
            return
        if self.projection_slot.busy and request == self._running_request:
            return  # already on its way
        source, method, dims = request
        dataset, cache = self.session.dataset, self.cache
        model_vectors = self.session.predictions[source[1]].fields[source[2]] \
            if source[0] == "model" else None
        title = f"{self.method.currentText()} of {self.source.currentText()}"

        def job():
            vectors = source_vectors(dataset, source, method, model_vectors)
            coords = yield from (as_is_job(vectors, dims) if method == AS_IS else
                                 projection.projection_job(vectors, method, dims, cache=cache))
            return coords, vectors

        self.message.setText(f"Computing {title}…")
        self.message.show()
        self._running_request = request
        self.projection_slot.submit(
            job(), lambda result: self.set_coords(result[0], request, dataset.name, result[1]),
            self._on_failed, interactive=False, title=title)

    def _on_projection_stopped(self) -> None:
        self.message.setText('Projection cancelled. <a href="again">Run it again</a>')
        self.message.show()

    def _on_failed(self, failure: JobFailed) -> None:
        self.message.setText(f"{failure.title} failed: {failure.error}")
        self.message.show()

    def set_coords(self, coords: np.ndarray, request: tuple, dataset_name: str,
                   vectors: Optional[np.ndarray] = None) -> None:
        """Show projected coordinates (ignored if the dataset changed meanwhile)."""
        dataset = self.session.dataset
        if dataset is None or dataset.name != dataset_name or len(coords) != len(dataset):
            return
        self.coords = np.asarray(coords, dtype=np.float32)
        self.vectors = vectors
        self._projected_request = request
        self.message.hide()
        self.view_box.rotatable = self.coords.shape[1] == 3
        self._fit_next = True
        self.recolor()
        self._redraw()

    def _redraw(self) -> None:
        """Draw the points again (positions, colours, emphasis, opacity) once the worker has
        prepared them; the markers follow."""
        if self.coords is None:
            return
        if not self.on_screen:
            self.request_refresh()  # when shown
            return
        coords, rgb, emphasis = self.coords, self.rgb, self._emphasis
        azimuth, elevation, opacity = self.azimuth, self.elevation, self.opacity.value() / 100
        state = (coords, rgb, emphasis, (azimuth, elevation, opacity))
        if len(state) == len(self._drawing_state) and state[3] == self._drawing_state[3] and \
                all(new is old for new, old in zip(state[:3], self._drawing_state[:3])):
            return  # drawn, or being drawn, already
        self._drawing_state = state

        def prepare() -> tuple[np.ndarray, Drawing]:
            positions = screen_positions(coords, azimuth, elevation)
            return positions, prepare_drawing(positions, rgb, emphasis, opacity)

        self.draw_slot.submit(prepare, lambda result: self._show_drawing(coords, *result))

    def _show_drawing(self, coords: np.ndarray, positions: np.ndarray, drawing: Drawing) -> None:
        if coords is not self.coords or not isValid(self.cloud):
            return  # drawn for older points, or the plot was cleared as the window closed
        self.positions = positions
        self.cloud.set_drawing(drawing)
        self._place_markers()
        self._update_clusters()
        if self._fit_next:
            self._fit_next = False
            self.fit_view()
            self.projected.emit()
        self.drawn.emit()

    def _on_rotate(self, across: float, up: float) -> None:
        self.azimuth = (self.azimuth + across) % 360
        self.elevation = float(np.clip(self.elevation + up, -89, 89))
        self._redraw()

    def fit_view(self) -> None:
        """Zoom to show every point."""
        bounds = self.cloud.data_bounds()
        if not bounds.isEmpty():
            self.view_box.setRange(rect=bounds, padding=0.04)

    # -- clusters -------------------------------------------------------------------------

    def _update_clusters(self) -> None:
        """Find and name the layout's clusters on the worker (while the Clusters button is
        on), or move their names with the points."""
        if not self.clusters_button.isChecked() or self.coords is None:
            self._forget_clusters()
            return
        outcomes, coords, dataset = self.session.outcomes, self.coords, self.session.dataset
        if self._clustered is not None and self._clustered[0] is coords \
                and self._clustered[1] is outcomes:
            self._place_cluster_labels()
            return
        self._clustered = (coords, outcomes)
        self.cluster_slot.submit(clusters_job(dataset, coords, outcomes),
                                 lambda result: self._show_clusters(coords, *result),
                                 interactive=False)

    def _show_clusters(self, coords: np.ndarray, clusters: np.ndarray,
                       infos: list[ClusterInfo]) -> None:
        if coords is not self.coords:
            return
        self.clusters, self.cluster_infos = clusters, infos
        self.cluster_labels.show([info.label() for info in infos], self._cluster_centres(),
                                 [info.size for info in infos])
        self.session.set_clusters({self._cluster_name(info): self.cluster_rows(info.cluster)
                                   for info in infos})  # the Metrics dock's facet
        self.clusters_found.emit()

    def _cluster_centres(self) -> np.ndarray:
        count = len(self.cluster_infos)
        if self.positions is None or self.clusters is None:
            return np.full((count, 2), np.nan)
        n = min(len(self.positions), len(self.clusters))
        return cluster_centres(self.positions[:n], self.clusters[:n], count)

    def _place_cluster_labels(self) -> None:
        if self.clusters is not None:
            self.cluster_labels.move(self._cluster_centres())

    def cluster_rows(self, cluster: int) -> np.ndarray:
        """The rows of cluster ``cluster``."""
        if self.clusters is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.clusters == cluster).astype(np.int64)

    def _on_cluster_clicked(self, cluster: int, modifiers) -> None:
        self.select_rows(self.cluster_rows(cluster), self._mode(modifiers))

    def save_clusters_as_slices(self) -> list[str]:
        """Keep every cluster as a slice named after it; return the names."""
        return [self.session.add_slice(self._cluster_name(info), self.cluster_rows(info.cluster))
                for info in self.cluster_infos]

    @staticmethod
    def _cluster_name(info: ClusterInfo) -> str:
        return f"Cluster {info.cluster + 1}: {info.title}"[:80]

    def _forget_clusters(self) -> None:
        self.cluster_slot.cancel()
        self.clusters, self.cluster_infos, self._clustered = None, [], None
        self.cluster_labels.clear()
        if self.session.clusters:
            self.session.set_clusters({})

    # -- colour -------------------------------------------------------------------------

    def _fill_color_fields(self) -> None:
        current = self.color_by.currentData()
        self.color_by.blockSignals(True)
        self.color_by.clear()
        dataset, outcomes = self.session.dataset, self.session.outcomes
        if dataset is not None:  # categories first: the likeliest choice (a label) leads
            spec = dataset.spec()
            for wanted in ((types.CategoryLabel, types.Boolean), (types.Scalar,)):
                for name, t in spec.items():
                    if isinstance(t, wanted):
                        self.color_by.addItem(name, ("column", name))
        models = outcomes.models if outcomes is not None else {}
        for model, outcome in models.items():
            self.color_by.addItem(f"{model}: prediction", ("prediction", model))
            if outcome.gold is not None:
                self.color_by.addItem(f"{model}: correct?", ("correct", model))
        if len(models) > 1:
            self.color_by.addItem("models disagree?", ("disagree", ""))
        for before, after in self._changed_pairs():
            self.color_by.addItem(f"what changed: {before} → {after}",
                                  ("changed", (before, after)))
        self.color_by.addItem("(none)", ("none", ""))
        self.color_by.setCurrentIndex(max(0, _index_of(self.color_by, current)))
        self.color_by.blockSignals(False)
        fit_popup(self.color_by)

    def _changed_pairs(self) -> list[tuple[str, str]]:
        """The (before, after) models whose changes can colour the points: the likeliest pair
        first (a model trained here after the one it came from), then, among a few models,
        every earlier-opened one before every later one."""
        outcomes = self.session.outcomes
        judged = [name for name, outcome in (outcomes.models.items() if outcomes else ())
                  if outcome.gold is not None]
        likeliest = default_pair(judged)
        if likeliest is None:
            return []
        pairs = [likeliest]
        if len(judged) <= MOST_PAIRS_OF:
            pairs += [(before, after) for i, before in enumerate(judged)
                      for after in judged[i + 1:] if (before, after) != likeliest]
        return pairs

    def recolor(self) -> None:
        """Colour the points by the field chosen, computed on the worker; positions stay."""
        dataset, outcomes = self.session.dataset, self.session.outcomes
        kind, name = self.color_by.currentData() or ("none", "")
        if self.coords is None or dataset is None:
            return
        if not self.on_screen:
            self.request_refresh()  # when shown
            return
        if kind in OUTCOME_KINDS and outcomes is None:
            return  # the outcomes of new predictions are on their way
        key = (kind, name, dataset, outcomes if kind in OUTCOME_KINDS else None)
        if self._colored is not None and key[:2] == self._colored[:2] \
                and all(new is old for new, old in zip(key[2:], self._colored[2:])):
            return
        self._colored = key
        self.color_slot.submit(lambda: point_colors(dataset, outcomes, kind, name),
                               lambda result: self._show_colors(dataset, *result))

    def _show_colors(self, dataset: Dataset, rgb: np.ndarray, legend: str) -> None:
        if dataset is not self.session.dataset:
            return
        self.rgb = rgb
        self.legend.setText(legend)
        self._redraw()

    # -- selection ----------------------------------------------------------------------

    def _frame(self):
        """The frame the cloud was last drawn on and its origin in viewport pixels."""
        transform = self.cloud.deviceTransform(self.plot.viewportTransform())
        view_rect = self.view_box.viewRect()
        frame = self.cloud.frame_for(transform, view_rect)
        return frame, transform.mapRect(view_rect).topLeft()

    @staticmethod
    def _mode(modifiers) -> str:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return "add"
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return "toggle"
        return "replace"

    def _on_click(self, pixel: QPointF, modifiers) -> None:
        if self.positions is None:
            return
        frame, origin = self._frame()
        hits = self.cloud.rows_at(frame, pixel - origin, HOVER_RADIUS)
        mode = self._mode(modifiers)
        if len(hits) == 0:
            if mode == "replace":
                self.session.select([], source=self)
            return
        row = int(hits[0])
        self.session.select([row], row, source=self, mode=mode)

    def _on_region(self, polygon: QPolygonF, modifiers) -> None:
        if self.positions is None:
            return
        frame, origin = self._frame()
        drawing, polygon, mode = self.cloud.drawing, polygon.translated(-origin), \
            self._mode(modifiers)
        self.pick_slot.submit(lambda: rows_in_polygon(drawing, frame, polygon),
                              lambda rows: self.select_rows(rows, mode))

    def select_rows(self, rows: np.ndarray, mode: str = "replace") -> None:
        """Select ``rows`` (replacing, adding to or toggling in the shared selection); the
        primary row stays if it is still selected."""
        primary = self.session.selection.primary
        if mode == "replace" and primary is not None and not np.isin(primary, rows):
            primary = None
        self.session.select(rows, primary, source=self, mode=mode)

    def _on_selection(self, _source: object) -> None:
        if self.on_screen:
            self._show_selection()
        else:
            self.request_refresh()

    def _show_selection(self) -> None:
        """Rings round the selected rows (a few), the primary and pinned markers, and the
        selection drawn on top."""
        self._place_markers()
        self._update_emphasis()

    def _place_markers(self) -> None:
        if self.positions is None:
            return
        selection = self.session.selection
        rows = self._drawn(selection.rows)
        shown = rows if len(rows) <= MAX_RINGS else np.zeros(0, dtype=np.int64)
        self.highlight.setData(x=self.positions[shown, 0], y=self.positions[shown, 1])
        self._place_marker(self.primary_marker, selection.primary)
        self._place_marker(self.pinned_marker, selection.pinned)

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
        rows = self.session.selection.rows
        emphasis = self.matches if self.matches is not None else rows if len(rows) > 1 else None
        if emphasis is self._emphasis or (emphasis is not None and self._emphasis is not None
                                          and np.array_equal(emphasis, self._emphasis)):
            return
        self._emphasis = emphasis
        self._redraw()

    # -- search and neighbours ----------------------------------------------------------

    def run_search(self) -> None:
        """Highlight the rows matching the search box (the data table's search syntax)."""
        dataset, text = self.session.dataset, self.search.text().strip()
        if dataset is None or not text:
            self.search_slot.cancel()
            self.matches = None
            self.search.setStyleSheet("")
            self._update_emphasis()
            return
        self.search_slot.submit(
            lambda: table_query.filter_rows(dataset.table, dataset.spec(),
                                            table_query.RowQuery(search=text)),
            self._show_matches, self._on_search_failed)

    def _show_matches(self, rows: np.ndarray) -> None:
        self.matches = rows
        self.search.setStyleSheet("")
        self.search.setToolTip(f"{len(rows):,} matching rows")
        self._update_emphasis()

    def _on_search_failed(self, failure: JobFailed) -> None:
        self.search.setStyleSheet("QLineEdit { border: 1px solid #c0392b; }")
        self.search.setToolTip(str(failure.error))

    def select_neighbours(self) -> None:
        """Select the primary row's nearest neighbours in the original embedding space."""
        primary = self.session.selection.primary
        if self.vectors is None or primary is None:
            return
        vectors, k = self.vectors, self.neighbours.value()
        self.neighbours_slot.submit(lambda: projection.nearest_neighbors(vectors, primary, k),
                                    lambda rows: self.session.select(rows, primary, source=self))

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
        """A few fields of ``row`` and each model's label and confidence, as rich text, for
        the hover tooltip."""
        dataset, outcomes = self.session.dataset, self.session.outcomes
        values = dataset.table.slice(row, 1).to_pylist()[0]
        lines = [f"<b>row {row}</b>"]
        for name, t in list(dataset.spec().items())[:6]:
            if isinstance(t, (types.ImageBytes, types.Embeddings)):
                continue
            text = str(values.get(name))
            lines.append(f"{html.escape(name)}: {html.escape(text[:120])}"
                         + ("…" if len(text) > 120 else ""))
        for model, outcome in (outcomes.models.items() if outcomes is not None else ()):
            label = outcome.labels[outcome.predicted[row]]
            lines.append(f"{html.escape(model)}: {html.escape(label)} "
                         f"({outcome.confidence[row]:.2f})")
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
        """Write the view (.png, .svg) or, in the background, the coordinates (.csv,
        .parquet) to ``path``."""
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
            coords = self.coords
            self.export_slot.submit(lambda: write_coordinates(coords, path, suffix),
                                    lambda _done: None, self._on_failed, interactive=False)
        else:
            raise ValueError(f"cannot export to .{suffix}: choose .png, .svg, .csv or .parquet")


def write_coordinates(coords: np.ndarray, path: str, suffix: str) -> None:
    """Write each row's projected coordinates (row, x, y[, z]) as CSV or Parquet."""
    columns: dict[str, Any] = {"row": np.arange(len(coords))}
    columns.update({axis: coords[:, i] for i, axis in enumerate("xyz"[:coords.shape[1]])})
    table = pa.table(columns)
    if suffix == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)
