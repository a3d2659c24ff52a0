"""The Scalars dock: model scores against any field, thresholds, and PR and ROC curves."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider,
                               QTableWidget, QTableWidgetItem, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core.metrics import classification_metrics, gold_column
from litdesk.core.scalars import (BinaryCurves, Score, binary_score, category_codes, curves_job,
                                  model_scores, optimal_threshold, stable_jitter,
                                  threshold_point)
from litdesk.core.session import Session
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import OTHER_COLOR, category_color

#: Above this many rows the scatter still draws every point, but slowly; the Embedding
#: Projector is the view built for a million points.
RESPONSIVE_ROWS = 100_000
JITTER_WIDTH = 0.3
SLIDER_STEPS = 1000
METRIC_NAMES = ("accuracy", "precision", "recall", "f1")
CORRECT_COLOR, WRONG_COLOR = "#59a14f", "#e15759"


@dataclass(frozen=True)
class BinaryInputs:
    """A binary classifier's rows that have a gold label among its classes."""

    score: Score  # the positive-class probability
    vocab: tuple[str, ...]
    gold_index: np.ndarray  # the gold label's position in vocab, per labelled row
    probabilities: np.ndarray  # (labelled rows, 2)

    @property
    def gold_is_positive(self) -> np.ndarray:
        return self.gold_index == self.score.class_index

    @property
    def p_positive(self) -> np.ndarray:
        return self.probabilities[:, self.score.class_index]


class BoxSelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a selection box (in box mode or with Shift held)
    instead of panning; ``box_selected`` carries the box in data coordinates."""

    box_selected = Signal(QRectF)

    def __init__(self) -> None:
        super().__init__()
        self.box_mode = False

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

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.scores: list[Score] = []
        self.thresholds: dict[str, float] = {}  # per binary model
        self.binary: dict[str, BinaryInputs] = {}
        self.metrics: dict[str, dict[str, float]] = {}  # per binary model, at its threshold
        self.curves: dict[str, BinaryCurves] = {}
        self.x: Optional[np.ndarray] = None  # plotted coordinates per row (NaN: not drawn)
        self.y: Optional[np.ndarray] = None
        self._curves_worker = None
        self._defaults: dict[int, object] = {}  # per combo box, the choice it was given
        self._curve_points: dict[str, tuple[pg.ScatterPlotItem, pg.ScatterPlotItem]] = {}

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
        self.legend = QLabel("Load a model to plot its scores.")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.view_box = BoxSelectViewBox()
        self.view_box.box_selected.connect(self.select_box)
        self.box_button.toggled.connect(lambda on: setattr(self.view_box, "box_mode", on))
        self.plot = pg.PlotWidget(background="w", viewBox=self.view_box)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.point_items: list[tuple[pg.ScatterPlotItem, np.ndarray]] = []  # item, its rows
        self.highlight = pg.ScatterPlotItem(size=10, pen=pg.mkPen("k", width=1.2), brush=None)
        self.primary_marker = pg.ScatterPlotItem(size=15, pen=pg.mkPen("k", width=2), brush=None)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#333", width=1.5,
                                                                    style=Qt.PenStyle.DashLine))
        for item in (self.highlight, self.primary_marker, self.threshold_line):
            item.setZValue(10)
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
        self.tabs.addTab(curves_page, "PR / ROC")

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

        session.dataset_changed.connect(self.request_refresh)
        session.spec_changed.connect(self.request_refresh)
        session.rows_added.connect(lambda _rows: self.request_refresh())
        session.predictions_changed.connect(lambda _model: self.request_refresh())
        session.selection_changed.connect(self._on_selection)

    def _curve_plot(self, x_label: str, y_label: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", x_label)
        plot.setLabel("left", y_label)
        plot.setXRange(0, 1)
        plot.setYRange(0, 1.02)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.addLegend(offset=(-10, -10) if y_label == "True positive rate" else (10, -10))
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

    def refresh(self) -> None:
        """Rebuild the choices from the dataset and predictions, keeping the user's picks."""
        dataset = self.session.dataset
        self.scores = [score for predictions in self.session.predictions.values()
                       for score in model_scores(predictions)]
        self.binary = {}
        for name in self.session.predictions:
            inputs = self._binary_inputs(name)
            if inputs is not None:
                self.binary[name] = inputs
                self.thresholds.setdefault(name, 0.5)
        self.metrics = {}
        y_default = next((inputs.score for inputs in self.binary.values()),
                         self.scores[0] if self.scores else None)
        self._fill(self.y_choice, [(s.label, s) for s in self.scores], y_default)
        golds = [(name, self.gold_of(name)) for name in self.session.predictions]
        golds = [(name, gold) for name, gold in golds if gold is not None]
        gold_columns = list(dict.fromkeys(gold for _model, gold in golds))
        fields = [(name, ("field", name)) for name, t in (dataset.spec().items() if dataset else ())
                  if isinstance(t, (types.Scalar, types.CategoryLabel, types.Boolean))]
        self._fill(self.x_choice, fields + [(s.label, ("score", s)) for s in self.scores],
                   ("field", gold_columns[0]) if gold_columns
                   else (fields[0][1] if fields else None))
        colours = [(f"gold: {gold}", ("field", gold)) for gold in gold_columns]
        colours += [(f"correct: {name}", ("correct", name)) for name, _gold in golds
                    if self.session.predictions[name].predicted_labels() is not None]
        colours += [(name, ("field", name)) for name, t in
                    (dataset.spec().items() if dataset else ())
                    if isinstance(t, (types.CategoryLabel, types.Boolean))
                    and name not in gold_columns]
        self._fill(self.color_choice, colours + [("(none)", ("none", None))],
                   colours[0][1] if colours else None)
        self._start_curves()
        self.redraw()

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

    def _gold_indices(self, gold: str, vocab) -> np.ndarray:
        """Per row, the position of its gold label in ``vocab``; -1 when missing or outside."""
        column = self.session.dataset.table.column(gold).cast(pa.string())
        indices = pc.index_in(column, value_set=pa.array(list(vocab), pa.string()))
        return np.asarray(indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def _binary_inputs(self, model: str) -> Optional[BinaryInputs]:
        predictions = self.session.predictions[model]
        score = binary_score(predictions)
        gold = self.gold_of(model)
        if score is None or gold is None:
            return None
        vocab = tuple(predictions.spec[score.field].vocab)  # type: ignore[attr-defined]
        gold_index = self._gold_indices(gold, vocab)
        labelled = gold_index >= 0
        return BinaryInputs(score, vocab, gold_index[labelled],
                            predictions.fields[score.field][labelled])

    # -- the scatter ---------------------------------------------------------------------------

    def _axis_values(self, choice) -> tuple[np.ndarray, Optional[list[str]]]:
        """Per row, the X coordinate, and the category names when the axis is categorical."""
        kind, value = choice
        if kind == "score":
            return value.values(self.session.predictions[value.model]), None
        dataset = self.session.dataset
        column = dataset.table.column(value)
        field_type = dataset.spec()[value]
        if isinstance(field_type, types.Scalar):
            return column.to_numpy().astype(np.float64), None  # nulls become NaN
        codes, names = category_codes(column, getattr(field_type, "vocab", None))
        return codes + stable_jitter(np.arange(len(codes)), JITTER_WIDTH), names

    def _colour_codes(self, n: int) -> tuple[np.ndarray, list[str], list[str]]:
        """Per row a colour index, the legend names and their colours."""
        kind, value = self.color_choice.currentData() or ("none", None)
        dataset = self.session.dataset
        if kind == "field":
            codes, names = category_codes(dataset.table.column(value),
                                          getattr(dataset.spec().get(value), "vocab", None))
            return codes, names, [category_color(i).name() for i in range(len(names))]
        if kind == "correct" and value in self.session.predictions:
            _field, argmax, vocab = self.session.predictions[value].predicted_labels()
            gold_index = self._gold_indices(self.gold_of(value), vocab)
            codes = np.where(gold_index < 0, 2, (argmax != gold_index).astype(np.int64))
            return codes, ["correct", "wrong", "no gold label"], \
                [CORRECT_COLOR, WRONG_COLOR, OTHER_COLOR]
        return np.zeros(n, dtype=np.int64), [], [OTHER_COLOR]

    def redraw(self) -> None:
        """Plot every row at (X, Y), one scatter item per colour."""
        self.x = self.y = None
        y_score = self.y_choice.currentData()
        x_choice = self.x_choice.currentData()
        dataset = self.session.dataset
        if dataset is None or y_score is None or x_choice is None \
                or y_score.model not in self.session.predictions:
            self._set_point_items([])
            self.legend.setText("Load a model to plot its scores.")
            self._update_threshold_panel()
            return
        self.y = y_score.values(self.session.predictions[y_score.model])
        self.x, categories = self._axis_values(x_choice)
        codes, names, colours = self._colour_codes(len(self.y))
        drawn = np.isfinite(self.x) & np.isfinite(self.y)
        self._set_point_items([(colour, np.flatnonzero(drawn & (codes == index)))
                               for index, colour in enumerate(colours)])
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks([list(enumerate(categories))] if categories is not None else None)
        for axis, text in (("bottom", self.x_choice.currentText()), ("left", y_score.label)):
            if self.plot.getAxis(axis).labelText != text:  # relabelling costs a layout pass
                self.plot.setLabel(axis, text)
        self.plot.autoRange()
        legend = "&nbsp;&nbsp;".join(
            f'<span style="color:{colour}">●</span>&nbsp;{html.escape(name)}'
            for name, colour in zip(names, colours))
        if len(self.y) > RESPONSIVE_ROWS:
            legend += (f"&nbsp;&nbsp;<i>{len(self.y):,} points: slow to draw above "
                       f"{RESPONSIVE_ROWS:,}; the Embedding Projector is built for a million</i>")
        self.legend.setText(legend)
        self._update_threshold_panel()
        self._on_selection(None)

    def _set_point_items(self, groups: list[tuple[str, np.ndarray]]) -> None:
        """One scatter item per (colour, rows); items are reused, extra ones removed."""
        while len(self.point_items) > len(groups):
            self.plot.removeItem(self.point_items.pop()[0])
        while len(self.point_items) < len(groups):
            item = pg.ScatterPlotItem(size=6, pen=None)
            item.sigClicked.connect(self._on_clicked)
            self.plot.addItem(item)
            self.point_items.append((item, np.zeros(0, dtype=np.int64)))
        for index, (colour, rows) in enumerate(groups):
            item = self.point_items[index][0]
            item.setData(x=self.x[rows], y=self.y[rows],
                         brush=pg.mkBrush(pg.mkColor(colour + "b4")))
            self.point_items[index] = (item, rows)

    # -- selection ----------------------------------------------------------------------------

    def _on_clicked(self, item, points, _event) -> None:
        rows = next((rows for candidate, rows in self.point_items if candidate is item), None)
        if rows is not None and len(points):
            row = int(rows[points[0].index()])
            self.session.select([row], row, source=self)

    def select_box(self, box: QRectF) -> None:
        """Select the plotted rows inside ``box`` (data coordinates)."""
        if self.x is None:
            return
        inside = ((self.x >= box.left()) & (self.x <= box.right())
                  & (self.y >= box.top()) & (self.y <= box.bottom()))
        self.session.select(np.flatnonzero(inside), source=self)

    def _on_selection(self, _source: object) -> None:
        if self.x is None or self.stale:
            self.highlight.clear()
            self.primary_marker.clear()
            return
        rows = self.session.selection.rows
        rows = rows[rows < len(self.x)]
        self.highlight.setData(x=self.x[rows], y=self.y[rows])
        primary = self.session.selection.primary
        if primary is None or primary >= len(self.x):
            self.primary_marker.clear()
        else:
            self.primary_marker.setData(x=self.x[[primary]], y=self.y[[primary]])

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
        self.thresholds[model] = float(value)
        self.metrics.pop(model, None)
        self._update_threshold_panel()

    def move_to_optimal_threshold(self) -> None:
        """Move the threshold to the lowest expected cost for the chosen cost ratio."""
        model = self.threshold_model()
        if model is None or not len(self.binary[model].p_positive):
            return
        inputs = self.binary[model]
        self.set_threshold(min(1.0, optimal_threshold(inputs.gold_is_positive, inputs.p_positive,
                                                      self.cost_ratio.value(), 1.0)))

    def _update_threshold_panel(self) -> None:
        model = self.threshold_model()
        self.threshold_box.setVisible(model is not None)
        if model is None:
            self.threshold_line.hide()
            return
        threshold = self.thresholds[model]
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
        """Metrics of each binary classifier at its threshold (only changed ones recomputed)."""
        for model, inputs in self.binary.items():
            if model not in self.metrics:
                gold = pa.DictionaryArray.from_arrays(
                    pa.array(inputs.gold_index, pa.int32()), pa.array(inputs.vocab, pa.string()))
                self.metrics[model] = classification_metrics(
                    gold, inputs.probabilities, inputs.vocab, threshold=self.thresholds[model],
                    positive_label=inputs.score.class_name)
        self.metrics_table.setRowCount(len(self.metrics))
        self.metrics_table.setVerticalHeaderLabels(list(self.metrics))
        for row, (model, values) in enumerate(self.metrics.items()):
            cells = [self.thresholds[model]] + [values[name] for name in METRIC_NAMES]
            for column, number in enumerate(cells):
                self.metrics_table.setItem(row, column, QTableWidgetItem(f"{number:.3f}"))
        self.metrics_table.resizeColumnsToContents()

    # -- curves ----------------------------------------------------------------------------

    def _start_curves(self) -> None:
        if self._curves_worker is not None:
            self.runner.cancel(self._curves_worker)
            self._curves_worker = None
        self.curves = {}
        self._draw_curves()
        scored = {model: (inputs.gold_is_positive, inputs.p_positive)
                  for model, inputs in self.binary.items()}
        if scored:
            dataset_name = self.session.dataset.name
            self._curves_worker = self.runner.submit(
                curves_job(scored), "PR and ROC curves",
                lambda curves: self._on_curves(curves, dataset_name))

    def _on_curves(self, curves: dict[str, BinaryCurves], dataset_name: str) -> None:
        self._curves_worker = None
        if self.session.dataset is not None and self.session.dataset.name == dataset_name:
            self.curves = curves
            self._draw_curves()

    def _draw_curves(self) -> None:
        for plot in (self.pr_plot, self.roc_plot):
            plot.clear()  # also empties the legend
        self._curve_points = {}
        for index, (model, curves) in enumerate(self.curves.items()):
            pen = pg.mkPen(category_color(index), width=2)
            self.pr_plot.plot(curves.recall, curves.precision, pen=pen,
                              name=f"{model} (AP {curves.average_precision:.3f})")
            self.roc_plot.plot(curves.false_positive_rate, curves.true_positive_rate, pen=pen,
                               name=f"{model} (AUC {curves.roc_auc:.3f})")
            markers = tuple(pg.ScatterPlotItem(size=11, pen=pg.mkPen("k"),
                                               brush=pg.mkBrush(category_color(index)))
                            for _plot in (self.pr_plot, self.roc_plot))
            self.pr_plot.addItem(markers[0])
            self.roc_plot.addItem(markers[1])
            self._curve_points[model] = markers
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bbb", style=Qt.PenStyle.DotLine))
        self._draw_curve_points()

    def _draw_curve_points(self) -> None:
        """Mark each model's current threshold on its PR and ROC curves."""
        for model, (pr_marker, roc_marker) in self._curve_points.items():
            inputs = self.binary[model]
            point = threshold_point(inputs.gold_is_positive, inputs.p_positive,
                                    self.thresholds[model])
            pr_marker.setData(x=[point.recall], y=[point.precision])
            roc_marker.setData(x=[point.false_positive_rate], y=[point.recall])
