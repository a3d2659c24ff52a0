"""The Scalars dock: model scores against any field, thresholds, and PR and ROC curves.

Every row is drawn, as a point cloud that stays fluid at a million points. The points, the
thresholds' counts and the curves are computed on the worker from the predictions and the
session's outcomes, only while the dock is on screen; moving a threshold is then a lookup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider,
                               QTableWidget, QTableWidgetItem, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from litdesk.api import Dataset, types
from litdesk.core.confusion import MISSING_LABEL
from litdesk.core.empty_states import empty_state
from litdesk.core.metrics import gold_column
from litdesk.core.categories import MISSING, encode_categories
from litdesk.core.outcomes import Outcomes
from litdesk.core.predict import Predictions
from litdesk.core.scalars import (BinaryCurves, BinaryOutcome, Score, binary_outcome,
                                  binary_score, model_scores, stable_jitter)
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.palette import OTHER_COLOR, category_color
from litdesk.ui.point_cloud import EMPTY_DRAWING, Drawing, PointCloudItem, prepare_drawing
from litdesk.ui.widgets.plots import grid_plot

JITTER_WIDTH = 0.3
SLIDER_STEPS = 1000
METRIC_NAMES = ("accuracy", "precision", "recall", "f1")
CORRECT_COLOR, WRONG_COLOR = "#59a14f", "#e15759"
#: Selected rows beyond this many are shown by fading the others, not with rings.
MAX_RINGS = 2_000
#: How near (pixels) a click must land to a point to select its row.
CLICK_RADIUS = 6.0
#: The most points a PR or ROC curve is drawn with (one per distinct score can be a million).
CURVE_POINTS = 4_000


@dataclass(frozen=True)
class Points:
    """What the scatter draws: a position and a colour per row, and the legend."""

    x: np.ndarray  # NaN: not drawn
    y: np.ndarray
    positions: np.ndarray  # (rows, 2) float32
    codes: np.ndarray  # per row, its colour's index in ``names``
    rgb: np.ndarray  # (rows, 3) uint8
    drawing: Drawing  # every row alike
    names: list[str]  # the legend
    colours: list[str]
    ticks: Optional[list[str]]  # the categories of a categorical X axis


def _categories(column, vocab) -> tuple[np.ndarray, list[str]]:
    """Per row the index of its value, and the values: ``vocab`` first, the rest sorted,
    and "(missing)" last when a value is missing."""
    categories = encode_categories(column, vocab)
    names = list(categories.labels)
    missing = categories.codes == MISSING
    if not missing.any():
        return categories.codes, names
    return np.where(missing, len(names), categories.codes), names + [MISSING_LABEL]


def _thinned(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A curve with at most :data:`CURVE_POINTS` of its points, evenly spread, ends kept."""
    if len(x) <= CURVE_POINTS:
        return x, y
    kept = np.linspace(0, len(x) - 1, CURVE_POINTS).astype(np.int64)
    return x[kept], y[kept]


def scatter_points(dataset: Dataset, predictions: Mapping[str, Predictions],
                   outcomes: Optional[Outcomes], y_score: Score, x_choice: tuple,
                   colour_choice: tuple) -> Points:
    """The scatter of ``y_score`` against ``x_choice`` (("score", Score) or ("field", column)),
    coloured by ``colour_choice`` (("field", column), ("correct", model) or ("none", None)).

    Whole-dataset work: run on the worker.
    """
    y = y_score.values(predictions[y_score.model])
    kind, value = x_choice
    ticks = None
    if kind == "score":
        x = value.values(predictions[value.model])
    elif isinstance(dataset.spec()[value], types.Scalar):
        x = dataset.table.column(value).to_numpy().astype(np.float64)  # nulls become NaN
    else:
        codes, ticks = _categories(dataset.table.column(value),
                                   getattr(dataset.spec()[value], "vocab", None))
        x = codes + stable_jitter(np.arange(len(codes)), JITTER_WIDTH)
    kind, value = colour_choice
    outcome = outcomes.models.get(value) if kind == "correct" and outcomes is not None else None
    if kind == "field":
        codes, names = _categories(dataset.table.column(value),
                                   getattr(dataset.spec().get(value), "vocab", None))
        colours = [category_color(i).name() for i in range(len(names))]
    elif outcome is not None and outcome.gold is not None:
        codes = np.where(outcome.has_gold, (~outcome.correct).astype(np.int64), 2)
        names, colours = ["correct", "wrong", "no gold label"], [CORRECT_COLOR, WRONG_COLOR,
                                                                 OTHER_COLOR]
    else:
        codes, names, colours = np.zeros(len(y), dtype=np.int64), [], [OTHER_COLOR]
    palette = np.array([QColor(colour).getRgb()[:3] for colour in colours], dtype=np.uint8)
    positions = np.column_stack([x, y]).astype(np.float32)
    rgb = palette[codes]
    return Points(x, y, positions, codes, rgb, prepare_drawing(positions, rgb), names, colours,
                  ticks)


class BoxSelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a selection box (in box mode or with Shift held)
    instead of panning; ``box_selected`` carries the box in data coordinates."""

    box_selected = Signal(QRectF)
    #: A left click, in data coordinates.
    clicked = Signal(QPointF)

    def __init__(self) -> None:
        super().__init__()
        self.box_mode = False

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph API)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapSceneToView(ev.scenePos()))
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph API)
        selecting = self.box_mode or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if axis is not None or ev.button() != Qt.MouseButton.LeftButton or not selecting:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isFinish():
            self.rbScaleBox.hide()
            corners = QRectF(ev.buttonDownPos(), ev.pos())
            self.box_selected.emit(self.childGroup.mapRectFromParent(corners).normalized())
        else:
            self.updateScaleBox(ev.buttonDownPos(), ev.pos())  # the rubber band RectMode draws


class ScalarsDock(RefreshWhenShown):
    """A score per row (Y) against a field or another model's score (X), coloured by gold
    label or correctness; thresholds and metrics for binary classifiers; PR and ROC curves.

    Click a point or drag a box (Shift+drag, or the Box select button) to select rows.
    """

    #: Emitted when the scatter shows the current choices.
    plotted = Signal()

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.scores: list[Score] = []
        self.binary: dict[str, BinaryOutcome] = {}
        self.metrics: dict[str, dict[str, float]] = {}  # per binary model, at its threshold
        self.curves: dict[str, BinaryCurves] = {}
        self.points: Optional[Points] = None
        self.x: Optional[np.ndarray] = None  # plotted coordinates per row (NaN: not drawn)
        self.y: Optional[np.ndarray] = None
        self._points_slot = JobSlot(runner, "Scalars: points", self)
        self._binary_slot = JobSlot(runner, "Scalars: thresholds", self)
        self._fade_slot = JobSlot(runner, "Scalars: selection", self)
        self._data_stale = True  # the dataset, predictions or outcomes changed since drawn
        self._binary_source: Optional[Outcomes] = None  # the outcomes self.binary is from
        self._faded = False  # whether the cloud fades the rows outside a large selection
        self._defaults: dict[int, object] = {}  # per combo box, the choice it was given
        # Per model (and its colour's index): its PR and ROC lines, and its threshold's marker
        # on each. Kept while the model is: a change of outcomes only gives them new data.
        self._curve_items: dict[str, tuple[int, tuple[pg.GraphicsObject, ...]]] = {}
        self._curves_drawn = True  # the curves drawn are self.curves (none yet)

        self.y_choice = QComboBox()
        self.y_choice.setToolTip("The score on the vertical axis")
        self.x_choice = QComboBox()
        self.x_choice.setToolTip("A field, or another model's score, on the horizontal axis")
        self.color_choice = QComboBox()
        self.color_choice.setToolTip("Colour points by the gold label or by correctness")
        for combo in (self.y_choice, self.x_choice, self.color_choice):
            combo.currentIndexChanged.connect(self.redraw)
        self.box_button = QToolButton(text="Box select")
        self.box_button.setCheckable(True)
        self.box_button.setToolTip("Drag a box to select the points inside it "
                                   "(Shift+drag does the same without this)")
        # One line above the plot: the colour legend, or what is missing.
        self.legend = QLabel(empty_state(session, "score", "to plot its scores"))
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.view_box = BoxSelectViewBox()
        self.view_box.box_selected.connect(self.select_box)
        self.box_button.toggled.connect(lambda on: setattr(self.view_box, "box_mode", on))
        self.plot = grid_plot(viewBox=self.view_box)
        self.cloud = PointCloudItem()
        self.cloud.set_point_size(6)
        self.cloud.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks: the view box's
        self.plot.addItem(self.cloud)
        self.view_box.clicked.connect(self._on_clicked)
        self.highlight = pg.ScatterPlotItem(size=10, pen=pg.mkPen("k", width=1.2), brush=None)
        self.primary_marker = pg.ScatterPlotItem(size=15, pen=pg.mkPen("k", width=2), brush=None)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#333", width=1.5,
                                                                    style=Qt.PenStyle.DashLine))
        for item in (self.highlight, self.primary_marker, self.threshold_line):
            item.setZValue(10)
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            self.plot.addItem(item)

        self.pr_plot = self._curve_plot("Recall", "Precision")
        self.roc_plot = self._curve_plot("False positive rate", "True positive rate")
        curves_page = QWidget()
        curves_layout = QHBoxLayout(curves_page)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.addWidget(self.pr_plot)
        curves_layout.addWidget(self.roc_plot)
        scatter_page = QWidget()
        scatter_layout = QVBoxLayout(scatter_page)
        scatter_layout.setContentsMargins(0, 0, 0, 0)
        scatter_layout.addWidget(self.legend)
        scatter_layout.addWidget(self.plot, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(scatter_page, "Scores")
        self.curves_page = curves_page
        self.tabs.addTab(curves_page, "PR / ROC")
        self.tabs.currentChanged.connect(lambda _index: self._draw_curves_if_shown())

        self.threshold_box = self._build_threshold_panel()
        controls = QHBoxLayout()
        for label, combo in (("Y:", self.y_choice), ("X:", self.x_choice),
                             ("Colour:", self.color_choice)):
            controls.addWidget(QLabel(label))
            controls.addWidget(combo, 1)
        controls.addWidget(self.box_button)
        body = QHBoxLayout()
        body.addWidget(self.tabs, 1)
        body.addWidget(self.threshold_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addLayout(body, 1)

        for signal in (session.dataset_changed, session.spec_changed, session.rows_added,
                       session.predictions_changed, session.outcomes_changed):
            signal.connect(self._on_data_changed)
        session.selection_changed.connect(self._on_selection)
        session.thresholds_changed.connect(self._on_threshold)

    def _curve_plot(self, x_label: str, y_label: str) -> pg.PlotWidget:
        plot = grid_plot()
        plot.setLabel("bottom", x_label)
        plot.setLabel("left", y_label)
        plot.setXRange(0, 1)
        plot.setYRange(0, 1.02)
        plot.addLegend(offset=(-10, -10) if y_label == "True positive rate" else (10, -10))
        if y_label == "True positive rate":  # chance
            plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bbb", style=Qt.PenStyle.DotLine))
        return plot

    def _build_threshold_panel(self) -> QGroupBox:
        box = QGroupBox("Threshold")
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, SLIDER_STEPS)
        self.threshold_slider.setPageStep(SLIDER_STEPS // 20)
        self.threshold_slider.valueChanged.connect(
            lambda value: self.set_threshold(value / SLIDER_STEPS))
        self.threshold_spin = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0,
                                             singleStep=0.01)
        # A typed threshold applies on Enter (each keystroke would re-run every view).
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_spin.valueChanged.connect(self.set_threshold)
        self.cost_ratio = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=100.0,
                                         singleStep=0.1, value=1.0)
        self.cost_ratio.setToolTip("What a false positive costs, relative to a false negative")
        self.optimal_button = QPushButton("Optimal threshold")
        self.optimal_button.setToolTip("Move the threshold to where the cost of the errors "
                                       "on the gold labels is lowest")
        self.optimal_button.clicked.connect(self.move_to_optimal_threshold)
        self.metrics_table = QTableWidget(0, 1 + len(METRIC_NAMES))
        self.metrics_table.setHorizontalHeaderLabels(["threshold", "acc", "prec", "recall", "F1"])
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setMinimumSize(240, 40)  # the dock stays small when squeezed
        self.metrics_table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.threshold_slider, 1)
        slider_row.addWidget(self.threshold_spin)
        cost_row = QHBoxLayout()
        cost_row.addWidget(QLabel("Cost FP : FN"))
        cost_row.addWidget(self.cost_ratio)
        cost_row.addWidget(self.optimal_button)
        layout = QVBoxLayout(box)
        layout.addLayout(slider_row)
        layout.addLayout(cost_row)
        layout.addWidget(self.metrics_table, 1)
        return box

    # -- choices ----------------------------------------------------------------------------

    def gold_of(self, model: str) -> Optional[str]:
        """The dataset column holding ``model``'s gold labels, or None."""
        predictions = self.session.predictions.get(model)
        if predictions is None or self.session.dataset is None:
            return None
        return gold_column(self.session.dataset, predictions.spec)

    def _on_data_changed(self, *_args) -> None:
        self._data_stale = True
        self.request_refresh()

    def refresh(self) -> None:
        """Bring the view up to date: the choices, points and thresholds after the data
        changed, else the selection."""
        if not self._data_stale:
            self._draw_selection()
            return
        self._data_stale = False
        self._fill_choices()
        self._compute_binary()
        self.redraw()

    def _fill_choices(self) -> None:
        """Offer the scores, fields and colourings there are, keeping the user's picks."""
        dataset = self.session.dataset
        predictions = self.session.predictions
        outcomes = self.session.outcomes
        self.scores = [score for model in predictions.values() for score in model_scores(model)]
        y_default = next((score for name, model in predictions.items()
                          if self.gold_of(name) is not None
                          and (score := binary_score(model)) is not None),
                         self.scores[0] if self.scores else None)
        self._fill(self.y_choice, [(s.label, s) for s in self.scores], y_default)
        golds = [(name, self.gold_of(name)) for name in predictions]
        golds = [(name, gold) for name, gold in golds if gold is not None]
        gold_columns = list(dict.fromkeys(gold for _model, gold in golds))
        fields = [(name, ("field", name)) for name, t in (dataset.spec().items() if dataset else ())
                  if isinstance(t, (types.Scalar, types.CategoryLabel, types.Boolean))]
        self._fill(self.x_choice, fields + [(s.label, ("score", s)) for s in self.scores],
                   ("field", gold_columns[0]) if gold_columns
                   else (fields[0][1] if fields else None))
        colours = [(f"gold: {gold}", ("field", gold)) for gold in gold_columns]
        colours += [(f"correct: {name}", ("correct", name))
                    for name, outcome in (outcomes.models.items() if outcomes else ())
                    if outcome.gold is not None]
        colours += [(name, ("field", name)) for name, t in
                    (dataset.spec().items() if dataset else ())
                    if isinstance(t, (types.CategoryLabel, types.Boolean))
                    and name not in gold_columns]
        self._fill(self.color_choice, colours + [("(none)", ("none", None))],
                   colours[0][1] if colours else None)

    def _fill(self, combo: QComboBox, items: list, default) -> None:
        """Fill ``combo``; a choice the user made is kept while offered, else ``default``."""
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for text, data in items:
            combo.addItem(text, data)
        # Compared with ==, not findData: the items hold fresh (equal, not identical) objects.
        datas = [data for _text, data in items]
        if current is not None and current != self._defaults.get(id(combo)) \
                and current in datas:
            index = datas.index(current)
        else:
            index = datas.index(default) if default in datas else 0
            self._defaults[id(combo)] = datas[index] if datas else None
        combo.setCurrentIndex(index)
        combo.blockSignals(False)

    def _compute_binary(self) -> None:
        """Count each binary classifier's calls at every threshold, and its curves, on the
        worker when the outcomes are new."""
        outcomes = self.session.outcomes
        if outcomes is self._binary_source:
            return
        self._binary_source = outcomes
        if outcomes is None:
            self._binary_slot.cancel()
            self._show_binary({})
            return
        predictions = dict(self.session.predictions)

        def work() -> dict[str, BinaryOutcome]:
            found = {name: binary_outcome(outcome, predictions[name])
                     for name, outcome in outcomes.models.items() if name in predictions}
            return {name: binary for name, binary in found.items() if binary is not None}

        self._binary_slot.submit(work, self._show_binary)

    def _show_binary(self, binary: dict[str, BinaryOutcome]) -> None:
        self.binary = binary
        self.metrics = {}
        self.curves = {name: found.curves for name, found in binary.items()
                       if found.curves is not None}
        self._curves_drawn = False
        self._draw_curves_if_shown()
        self._update_threshold_panel()

    # -- the scatter ---------------------------------------------------------------------------

    def redraw(self) -> None:
        """Compute every row's point for the current choices on the worker, then draw them."""
        y_score = self.y_choice.currentData()
        x_choice = self.x_choice.currentData()
        dataset = self.session.dataset
        predictions = dict(self.session.predictions)
        if dataset is None or y_score is None or x_choice is None \
                or y_score.model not in predictions:
            self._points_slot.cancel()
            self._show_points(None)
            return
        colour = self.color_choice.currentData() or ("none", None)
        outcomes = self.session.outcomes
        self._points_slot.submit(
            lambda: scatter_points(dataset, predictions, outcomes, y_score, x_choice, colour),
            self._show_points)

    def _show_points(self, points: Optional[Points]) -> None:
        self.points = points
        self._fade_slot.cancel()
        self._faded = False
        if points is None:
            self.x = self.y = None
            self.cloud.set_drawing(EMPTY_DRAWING)
            self.legend.setText(empty_state(self.session, "score", "to plot its scores")
                                or "No score to plot for these choices.")
        else:
            self.x, self.y = points.x, points.y
            self.cloud.set_drawing(points.drawing)
            bottom = self.plot.getAxis("bottom")
            bottom.setTicks([list(enumerate(points.ticks))] if points.ticks is not None
                            else None)
            for axis, text in (("bottom", self.x_choice.currentText()),
                               ("left", self.y_choice.currentData().label)):
                if self.plot.getAxis(axis).labelText != text:  # relabelling costs a layout pass
                    self.plot.setLabel(axis, text)
            self.plot.autoRange()
            self.legend.setText("&nbsp;&nbsp;".join(
                f'<span style="color:{colour}">●</span>&nbsp;{html.escape(name)}'
                for name, colour in zip(points.names, points.colours)))
        self._update_threshold_panel()
        self._draw_selection()
        self.plotted.emit()

    # -- selection ----------------------------------------------------------------------------

    def _on_clicked(self, point: QPointF) -> None:
        """Select the row drawn nearest a click, if one is within :data:`CLICK_RADIUS`."""
        if self.x is None or not len(self.x):
            return
        width, height = self.view_box.viewPixelSize()
        dx, dy = (self.x - point.x()) / width, (self.y - point.y()) / height
        near = np.flatnonzero((np.abs(dx) <= CLICK_RADIUS) & (np.abs(dy) <= CLICK_RADIUS))
        distance = np.hypot(dx[near], dy[near])
        if len(near) and distance.min() <= CLICK_RADIUS:
            row = int(near[np.argmin(distance)])
            self.session.select([row], row, source=self)

    def select_box(self, box: QRectF) -> None:
        """Select the plotted rows inside ``box`` (data coordinates)."""
        if self.x is None:
            return
        inside = ((self.x >= box.left()) & (self.x <= box.right())
                  & (self.y >= box.top()) & (self.y <= box.bottom()))
        self.session.select(np.flatnonzero(inside), source=self)

    def _on_selection(self, _source: object) -> None:
        if self.on_screen:
            self._draw_selection()
        else:
            self.request_refresh()  # drawn when shown

    def _draw_selection(self) -> None:
        """Ring the selected rows (fade the others when there are many) and mark the primary."""
        if self.x is None:
            self.highlight.clear()
            self.primary_marker.clear()
            return
        selection = self.session.selection
        rows = selection.rows[selection.rows < len(self.x)]
        ringed = rows if len(rows) <= MAX_RINGS else rows[:0]
        self.highlight.setData(x=self.x[ringed], y=self.y[ringed])
        if selection.primary is None or selection.primary >= len(self.x):
            self.primary_marker.clear()
        else:
            self.primary_marker.setData(x=self.x[[selection.primary]],
                                        y=self.y[[selection.primary]])
        fade = len(rows) > MAX_RINGS
        if fade:
            points = self.points
            self._fade_slot.submit(lambda: prepare_drawing(points.positions, points.rgb, rows),
                                   self.cloud.set_drawing)
        elif self._faded:
            self._fade_slot.cancel()
            self.cloud.set_drawing(self.points.drawing)
        self._faded = fade

    # -- thresholds and metrics ------------------------------------------------------------

    def threshold_model(self) -> Optional[str]:
        """The binary classifier the slider moves: the one on the Y axis, else the first."""
        y_score = self.y_choice.currentData()
        if y_score is not None and y_score.model in self.binary:
            return y_score.model
        return next(iter(self.binary), None)

    def set_threshold(self, value: float) -> None:
        """Set the threshold of the slider's model; metrics, line and curve points follow."""
        model = self.threshold_model()
        if model is None:
            return
        self.session.set_threshold(model, value)  # every view follows (_on_threshold)

    def _on_threshold(self, model: str) -> None:
        """A model's threshold moved (here or anywhere): its metrics, line and points follow."""
        self.metrics.pop(model, None)
        if model in self.binary:
            self._update_threshold_panel()

    def move_to_optimal_threshold(self) -> None:
        """Move the threshold to the lowest expected cost for the chosen cost ratio."""
        model = self.threshold_model()
        if model is None or not len(self.binary[model].counts.scores):
            return
        counts = self.binary[model].counts
        self.set_threshold(min(1.0, counts.optimal(self.cost_ratio.value(), 1.0)))

    def _update_threshold_panel(self) -> None:
        model = self.threshold_model()
        self.threshold_box.setVisible(model is not None)
        if model is None:
            self.threshold_line.hide()
            return
        threshold = self.session.threshold(model)
        for widget, value in ((self.threshold_slider, round(threshold * SLIDER_STEPS)),
                              (self.threshold_spin, threshold)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        score = self.binary[model].score
        self.threshold_box.setTitle(f"Threshold of {model}")
        self.threshold_box.setToolTip(f"{model} calls a row {score.class_name} when its "
                                      f"{score.name} is at least the threshold")
        self.threshold_line.setVisible(self.y_choice.currentData() == score)
        self.threshold_line.setValue(threshold)
        self._update_metrics()
        self._draw_curve_points()

    def _update_metrics(self) -> None:
        """Metrics of each binary classifier at its threshold (only changed ones looked up)."""
        for model, binary in self.binary.items():
            if model not in self.metrics:
                self.metrics[model] = binary.counts.metrics(self.session.threshold(model))
        self.metrics_table.setRowCount(len(self.metrics))
        self.metrics_table.setVerticalHeaderLabels(list(self.metrics))
        for row, (model, values) in enumerate(self.metrics.items()):
            cells = [self.session.threshold(model)] + [values[name] for name in METRIC_NAMES]
            for column, number in enumerate(cells):
                self.metrics_table.setItem(row, column, QTableWidgetItem(f"{number:.3f}"))
        self.metrics_table.resizeColumnsToContents()

    # -- curves ----------------------------------------------------------------------------

    def _draw_curves_if_shown(self) -> None:
        """Draw the curves when their tab is in front (a user on the Scores tab never waits
        for them), once per new set of curves."""
        if not self._curves_drawn and self.tabs.currentWidget() is self.curves_page:
            self._curves_drawn = True
            self._draw_curves()

    def _draw_curves(self) -> None:
        """Draw each model's PR and ROC curves. Lines, markers and legend entries made again
        at each change of outcomes held the GUI thread 18 to 29 ms (1 to 2 ms when kept)."""
        colours = {model: index for index, model in enumerate(self.curves)}
        for model, (index, items) in list(self._curve_items.items()):
            if colours.get(model) != index:
                for plot, item in zip((self.pr_plot, self.roc_plot) * 2, items):
                    plot.removeItem(item)  # and its legend entry
                del self._curve_items[model]
        for model, curves in self.curves.items():
            lines = ((_thinned(curves.recall, curves.precision),
                      f"{model} (AP {curves.average_precision:.3f})"),
                     (_thinned(curves.false_positive_rate, curves.true_positive_rate),
                      f"{model} (AUC {curves.roc_auc:.3f})"))
            if model in self._curve_items:
                for plot, item, ((x, y), name) in zip((self.pr_plot, self.roc_plot),
                                                       self._curve_items[model][1], lines):
                    item.setData(x, y, name=name)
                    label = plot.getPlotItem().legend.getLabel(item)
                    if label.text != name:
                        label.setText(name)
                continue
            colour = category_color(colours[model])
            items = tuple(plot.plot(x, y, pen=pg.mkPen(colour, width=2), name=name)
                          for plot, ((x, y), name) in zip((self.pr_plot, self.roc_plot), lines))
            markers = tuple(pg.ScatterPlotItem(size=11, pen=pg.mkPen("k"),
                                               brush=pg.mkBrush(colour)) for _plot in items)
            self.pr_plot.addItem(markers[0])
            self.roc_plot.addItem(markers[1])
            self._curve_items[model] = (colours[model], items + markers)
        self._draw_curve_points()

    def _draw_curve_points(self) -> None:
        """Mark each model's current threshold on its PR and ROC curves."""
        for model, (_index, (_pr, _roc, pr_marker, roc_marker)) in self._curve_items.items():
            point = self.binary[model].counts.point(self.session.threshold(model))
            pr_marker.setData(x=[point.recall], y=[point.precision])
            roc_marker.setData(x=[point.false_positive_rate], y=[point.recall])
