"""The Salience dock: why each model predicted what it did for the primary datapoint.

One row per (model, method): a token heatmap for text (signed or unsigned colour map, the
score of each token on hover, sub-word pieces merged into words on request), the image with
its attribution map laid over it for image models (the score of each pixel on hover), or a bar
chart of feature attributions for tabular models. Integrated gradients shows its completeness error.
With a pinned reference row, its explanations stand beside the primary row's.
"""

from __future__ import annotations

import html
import math
from collections.abc import Generator, Sequence
from typing import Optional, Union

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QFontMetricsF, QImage, QLinearGradient, QMouseEvent, QPainter,
                           QPen)
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QSizePolicy, QToolTip, QVBoxLayout, QWidget)

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.explain import METHODS, Attribution, aggregate_words, explain_job, methods_for
from litdesk.core.session import Session
from litdesk.ui.docks.primary_row import PrimaryRowDock
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import NEGATIVE, salience_color, text_color_on

#: Methods in the order a model runs them: the quick ones first, so a heatmap shows early.
FAST_FIRST = ("grad_l2", "grad_dot_input", "occlusion", "integrated_gradients", "kernel_shap",
              "lime")
#: Integrated gradients' completeness error above this is shown in red.
COMPLETENESS_TOLERANCE = 0.01
#: The most features a bar chart shows (the largest in magnitude).
TOP_FEATURES = 15
COMPUTING = "computing…"
#: The width of the method names' column, the same in every model's section.
METHOD_COLUMN_WIDTH = 140
#: The longer side of an image attribution, in pixels.
IMAGE_SIDE = 256
#: The opacity of an image attribution map where its score is largest (it fades to clear at 0).
OVERLAY_OPACITY = 0.7


def default_methods(applicable: Sequence[str]) -> list[str]:
    """What a model explains with until the user picks: gradient L2 and integrated gradients
    where it has gradients, KernelSHAP for tabular models, LIME for other text models."""
    gradient = [method for method in ("grad_l2", "integrated_gradients") if method in applicable]
    if gradient:
        return gradient
    for method in ("kernel_shap", "lime"):
        if method in applicable:
            return [method]
    return list(applicable[:1])


def score_text(score: float) -> str:
    """A score to four significant digits, with its sign."""
    return f"{score:+.4g}"


class TokenHeatmap(QWidget):
    """Tokens flowing like text, each on its salience colour; hovering one shows its score."""

    PADDING, GAP = 3.0, 2.0

    def __init__(self, tokens: Sequence[str], scores: np.ndarray, signed: bool,
                 parent=None) -> None:
        super().__init__(parent)
        self.tokens = tuple(tokens)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.signed = signed
        self.maximum = float(np.abs(self.scores).max()) if self.scores.size else 0.0
        self.hovered: Optional[int] = None
        self._rects: list[QRectF] = []
        self._laid_out_width = -1
        self.setMouseTracking(True)
        # The height follows the width (tokens wrap); set on each resize, since scroll areas
        # size their content by its minimum size rather than by height-for-width.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self._height(320))

    def _layout(self, width: float) -> tuple[list[QRectF], float]:
        metrics = QFontMetricsF(self.font())
        height = metrics.height() + 2 * self.PADDING
        rects, x, y = [], 0.0, 0.0
        for token in self.tokens:
            token_width = metrics.horizontalAdvance(token) + 2 * self.PADDING
            if x > 0 and x + token_width > width:
                x, y = 0.0, y + height + self.GAP
            rects.append(QRectF(x, y, token_width, height))
            x += token_width + self.GAP
        return rects, (y + height if self.tokens else 0.0)

    def _height(self, width: int) -> int:
        return int(np.ceil(self._layout(width)[1]))

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, self.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(80, self.height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.setFixedHeight(self._height(self.width()))

    def token_rects(self) -> list[QRectF]:
        """Where each token is drawn, in widget coordinates."""
        if self._laid_out_width != self.width():
            self._rects = self._layout(self.width())[0]
            self._laid_out_width = self.width()
        return self._rects

    def token_at(self, pos: QPointF) -> Optional[int]:
        """The index of the token under ``pos``, or None."""
        return next((i for i, rect in enumerate(self.token_rects()) if rect.contains(pos)), None)

    def tooltip_text(self, index: int) -> str:
        """What hovering token ``index`` shows: the token and its score."""
        return f"{self.tokens[index]}: {score_text(float(self.scores[index]))}"

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for index, (token, rect) in enumerate(zip(self.tokens, self.token_rects())):
            background = salience_color(float(self.scores[index]), self.maximum, self.signed)
            painter.setPen(QPen(Qt.GlobalColor.black, 1.5) if index == self.hovered
                           else Qt.PenStyle.NoPen)
            painter.setBrush(background)
            painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), 3, 3)
            painter.setPen(text_color_on(background))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, token)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.token_at(event.position())
        if index != self.hovered:
            self.hovered = index
            self.update()
        if index is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self.tooltip_text(index), self,
                              self.token_rects()[index].toRect())

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered = None
        self.update()
        super().leaveEvent(event)


class FeatureBars(QWidget):
    """Horizontal bars of feature attributions, largest magnitude first (the top 15)."""

    def __init__(self, features: Sequence[str], scores: np.ndarray, signed: bool,
                 parent=None) -> None:
        super().__init__(parent)
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-np.abs(scores), kind="stable")[:TOP_FEATURES]
        self.features = tuple(features[i] for i in order)
        self.scores = scores[order]
        self.signed = signed
        self.maximum = float(np.abs(self.scores).max()) if self.scores.size else 0.0
        self.setMouseTracking(True)
        metrics = QFontMetricsF(self.font())
        self._row_height = metrics.height() + 4
        self._label_width = min(180.0, max((metrics.horizontalAdvance(name)
                                            for name in self.features), default=0.0)) + 8
        self._value_width = metrics.horizontalAdvance("+0.0000e-00") + 8
        self.setMinimumHeight(int(np.ceil(self._row_height * len(self.features))) + 2)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(420, self.minimumHeight())

    def bar_rects(self) -> list[QRectF]:
        """Where each bar is drawn, in widget coordinates (in the order of ``features``)."""
        left = self._label_width
        span = max(1.0, self.width() - left - self._value_width)
        negative = self.signed and bool((self.scores < 0).any())
        zero = left + span / 2 if negative else left
        scale = (span / 2 if negative else span) / self.maximum if self.maximum > 0 else 0.0
        rects = []
        for row, score in enumerate(self.scores):
            top = row * self._row_height + 2
            end = zero + score * scale
            rects.append(QRectF(min(zero, end), top, abs(end - zero), self._row_height - 4))
        return rects

    def row_at(self, pos: QPointF) -> Optional[int]:
        """The feature whose row is under ``pos``, or None."""
        row = int(pos.y() // self._row_height)
        return row if 0 <= row < len(self.features) else None

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        metrics = QFontMetricsF(self.font())
        rects = self.bar_rects()
        for row, (name, score, rect) in enumerate(zip(self.features, self.scores, rects)):
            line = QRectF(0, row * self._row_height, self._label_width - 6, self._row_height)
            painter.setPen(self.palette().text().color())
            painter.drawText(line, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, line.width()))
            painter.fillRect(rect, salience_color(float(score), self.maximum, self.signed))
            value = QRectF(rect.right() + 4 if score >= 0 else rect.left() - self._value_width,
                           line.top(), self._value_width - 8, self._row_height)
            painter.drawText(value, Qt.AlignmentFlag.AlignVCenter | (
                Qt.AlignmentFlag.AlignLeft if score >= 0 else Qt.AlignmentFlag.AlignRight),
                f"{score:.3g}")

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        row = self.row_at(event.position())
        if row is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{self.features[row]}: {score_text(float(self.scores[row]))}", self)


def overlay_colors(scores: np.ndarray, maximum: float, signed: bool) -> np.ndarray:
    """Height × width × 4 RGBA bytes: each score's salience colour, its opacity growing with
    the score's magnitude from clear (0) to OVERLAY_OPACITY (``maximum``)."""
    levels = 256
    magnitude = np.abs(scores) / maximum if maximum > 0 else np.zeros_like(scores)
    strength = np.rint(np.clip(magnitude, 0, 1) * (levels - 1)).astype(np.intp)
    tables = []
    for sign in ((-1.0, 1.0) if signed else (1.0,)):
        table = np.empty((levels, 4), dtype=np.uint8)
        for level in range(levels):
            color = salience_color(sign * maximum * level / (levels - 1), maximum, signed)
            table[level] = (color.red(), color.green(), color.blue(),
                            round(255 * OVERLAY_OPACITY * level / (levels - 1)))
        tables.append(table)
    if not signed:
        return tables[0][strength]
    return np.where((scores < 0)[..., None], tables[0][strength], tables[1][strength])


class ImageOverlay(QWidget):
    """An image with an attribution map (one score per pixel of the model's input) laid over
    the part of it the model saw; hovering shows the score under the cursor."""

    def __init__(self, image: bytes, scores: np.ndarray, signed: bool,
                 region: Sequence[float] = (0.0, 0.0, 1.0, 1.0), parent=None) -> None:
        super().__init__(parent)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.signed = signed
        self.maximum = float(np.abs(self.scores).max()) if self.scores.size else 0.0
        self.region = tuple(region)
        self.image = QImage.fromData(image) if image else QImage()
        self.hovered: Optional[tuple[int, int]] = None
        rgba = np.ascontiguousarray(overlay_colors(self.scores, self.maximum, signed))
        height, width = self.scores.shape
        self.map = QImage(rgba.data, width, height, 4 * width,
                          QImage.Format.Format_RGBA8888).copy()  # owns its pixels
        shown = self.image.size() if not self.image.isNull() else QSize(width, height)
        scale = IMAGE_SIDE / max(1, shown.width(), shown.height())
        self.setFixedSize(max(1, round(shown.width() * scale)),
                          max(1, round(shown.height() * scale)))
        self.setMouseTracking(True)

    def map_rect(self) -> QRectF:
        """Where the attribution map is drawn, in widget coordinates."""
        left, top, right, bottom = self.region
        width, height = self.width(), self.height()
        return QRectF(left * width, top * height, (right - left) * width, (bottom - top) * height)

    def pixel_at(self, pos: QPointF) -> Optional[tuple[int, int]]:
        """(row, column) of the map's pixel under ``pos``, or None outside the map."""
        rect = self.map_rect()
        if not rect.contains(pos) or rect.isEmpty():
            return None
        rows, columns = self.scores.shape
        row = int((pos.y() - rect.top()) / rect.height() * rows)
        column = int((pos.x() - rect.left()) / rect.width() * columns)
        return min(row, rows - 1), min(column, columns - 1)

    def pixel_center(self, row: int, column: int) -> QPoint:
        """The centre of the map's pixel (row, column), in widget coordinates."""
        rect = self.map_rect()
        rows, columns = self.scores.shape
        return QPointF(rect.left() + (column + 0.5) * rect.width() / columns,
                       rect.top() + (row + 0.5) * rect.height() / rows).toPoint()

    def tooltip_text(self, row: int, column: int) -> str:
        """What hovering pixel (row, column) of the map shows."""
        return f"row {row}, column {column}: {score_text(float(self.scores[row, column]))}"

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        if self.image.isNull():
            painter.fillRect(self.rect(), QColor("#808080"))
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(QRectF(self.rect()), self.image)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(self.map_rect(), self.map)  # one block per score: no blur

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.hovered = self.pixel_at(event.position())
        if self.hovered is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self.tooltip_text(*self.hovered),
                              self)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered = None
        super().leaveEvent(event)


class ColorBar(QWidget):
    """The legend of one heatmap: its colour map between the extreme scores."""

    BAR_WIDTH = 64

    def __init__(self, maximum: float, signed: bool, parent=None) -> None:
        super().__init__(parent)
        self.maximum, self.signed = maximum, signed
        self.low_text = f"{-maximum:.2g}" if signed else "0"
        self.high_text = f"{maximum:.2g}"
        metrics = QFontMetricsF(self.font())
        self._low_width = metrics.horizontalAdvance(self.low_text) + 4
        self.setFixedSize(int(self._low_width + self.BAR_WIDTH
                              + metrics.horizontalAdvance(self.high_text) + 6),
                          int(metrics.height()) + 2)
        self.setToolTip("Blue: pushes towards the class explained; red: against it."
                        if signed else "Darker: more influence.")

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        bar = QRectF(self._low_width, 2, self.BAR_WIDTH, self.height() - 4)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        low = -self.maximum if self.signed else 0.0
        for stop in np.linspace(0, 1, 5):
            gradient.setColorAt(stop, salience_color(low + stop * (self.maximum - low),
                                                     self.maximum, self.signed))
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().text().color())
        painter.drawText(QRectF(0, 0, self._low_width - 4, self.height()),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.low_text)
        painter.drawText(QRectF(bar.right() + 4, 0, self.width(), self.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.high_text)


def attribution_view(attribution: Attribution, words: bool) -> QWidget:
    """The chart of one attribution with its legend and, for integrated gradients, its
    completeness error."""
    if attribution.kind == "tokens" and words:
        attribution = aggregate_words(attribution)
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    chart: Union[ImageOverlay, FeatureBars, TokenHeatmap]
    if attribution.kind == "image":
        chart = ImageOverlay(attribution.image, attribution.scores, attribution.signed,
                             attribution.region)
    else:
        chart_type = FeatureBars if attribution.kind == "features" else TokenHeatmap
        chart = chart_type(attribution.features, attribution.scores, attribution.signed)
    layout.addWidget(chart)
    footer = QHBoxLayout()
    footer.addWidget(ColorBar(chart.maximum, attribution.signed))
    if attribution.completeness_error is not None:
        error = attribution.completeness_error
        note = QLabel("completeness error undefined: f(x) = f(baseline)" if math.isnan(error)
                      else f"completeness error {100 * error:.2g}%")
        note.setObjectName("completeness")
        note.setToolTip("|sum of attributions − (f(x) − f(baseline))| / |f(x) − f(baseline)|")
        if not error <= COMPLETENESS_TOLERANCE:
            note.setStyleSheet(f"color: {NEGATIVE.name()}")
        footer.addWidget(note)
    footer.addStretch(1)
    layout.addLayout(footer)
    layout.addStretch(1)  # a shorter chart than its neighbour's stays at the top
    return box


#: What a (model, method, row) cell holds: an attribution, or why it failed.
CellResult = Union[Attribution, str]


class SalienceDock(PrimaryRowDock):
    """Explains the primary row (and the pinned reference beside it) with the chosen methods
    of every model, each model's methods in one background job, quick methods first."""

    title = "Salience"
    idle_message = "Select a datapoint to see which parts of it drove each model."
    #: A method of a model finished (on the worker thread): run number, model, method, rows,
    #: and the attributions or the exception.
    method_finished = Signal(int, str, str, object, object)

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        #: (model, method, row) -> the attribution shown, or the one-line failure.
        self.results: dict[tuple[str, str, int], CellResult] = {}
        #: The methods each model runs, and the class it explains (None: its prediction).
        self.chosen: dict[str, list[str]] = {}
        self.targets: dict[str, Optional[str]] = {}
        self.pinned: Optional[int] = None
        self._run = 0
        self._cells: dict[tuple[str, str, int], QVBoxLayout] = {}
        self._pickers: dict[str, QComboBox] = {}
        super().__init__(session, runner, cache, parent)
        self.method_boxes: dict[str, QCheckBox] = {}
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Methods:"))
        for method, info in METHODS.items():
            box = QCheckBox(info.label)
            box.setObjectName(f"method:{method}")
            box.setVisible(False)
            box.clicked.connect(lambda _checked, method=method: self.toggle_method(method))
            self.method_boxes[method] = box
            bar.addWidget(box)
        bar.addStretch(1)
        self.words = QCheckBox("Words")
        self.words.setToolTip("Merge sub-word tokens into words (their scores summed)")
        self.words.toggled.connect(lambda _on: self._build())
        bar.addWidget(self.words)
        self.layout().insertLayout(1, bar)
        self.method_finished.connect(self._on_method_finished)
        session.selection_changed.connect(self._on_pin)
        session.models_changed.connect(self._update_method_boxes)

    # -- what runs ----------------------------------------------------------------------

    def rows(self) -> list[int]:
        """The rows explained: the primary row, then the pinned reference if it differs."""
        if self.row is None:
            return []
        return [self.row] + ([self.pinned] if self.pinned not in (None, self.row) else [])

    def toggle_method(self, method: str) -> None:
        """Run ``method`` for every model it applies to, or, if all of them run it, stop."""
        applicable = [name for name, model in self.session.models.items()
                      if method in methods_for(model)]
        running = all(method in self.chosen.get(name, ()) for name in applicable)
        for name in applicable:
            chosen = [m for m in self.chosen.get(name, []) if m != method]
            self.chosen[name] = chosen if running else chosen + [method]
        self._rerun()

    def set_target(self, model_name: str, target: Optional[str]) -> None:
        """Explain ``target`` (a class label) for one model; None explains its prediction."""
        if self.targets.get(model_name) == target:
            return
        self.targets[model_name] = target
        self.results = {key: value for key, value in self.results.items()
                        if key[0] != model_name}
        self._rerun()

    def _rerun(self) -> None:
        if self.row is None:
            self._update_method_boxes()
        else:
            self._on_selection(None, force=True)

    def _on_pin(self, _source: object) -> None:
        pinned = self.session.selection.pinned
        if self.row is not None and self.row == self.session.selection.primary \
                and pinned != self.pinned:
            self._rerun()

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int
                ) -> Optional[Generator]:
        rows = self.rows()
        todo = [(method, missing) for method in sorted(self.chosen.get(name, ()),
                                                        key=_speed_rank)
                if (missing := [r for r in rows if (name, method, r) not in self.results])]
        if not todo:
            return None
        return self._explain(self._run, name, model, dataset, todo, self.targets.get(name))

    def _explain(self, run: int, name: str, model: Model, dataset: Dataset,
                 todo: list[tuple[str, list[int]]], target: Optional[str]) -> Generator:
        # Runs on a worker thread; each method's outcome reaches the view as soon as it is
        # known, and a failing method leaves the others running.
        for method, rows in todo:
            try:
                outcome = yield from explain_job(model, dataset, rows, method, target=target,
                                                 cache=self.cache)
            except Exception as error:  # noqa: BLE001 (shown in the method's row)
                outcome = error
            self.method_finished.emit(run, name, method, rows, outcome)

    def _on_method_finished(self, run: int, name: str, method: str, rows: list[int],
                            outcome: object) -> None:
        if run != self._run:
            return  # a previous row's, target's or choice's job
        if isinstance(outcome, BaseException):
            line = f"failed: {type(outcome).__name__}: {outcome}".splitlines()[0]
            outcomes: list[CellResult] = [line] * len(rows)
        else:
            outcomes = list(outcome)
        for row, result in zip(rows, outcomes):
            self.results[(name, method, row)] = result
            self._fill_cell((name, method, row))

    # -- the skeleton's hooks -----------------------------------------------------------

    def start_row(self, row: int) -> None:
        self._run += 1
        self.pinned = self.session.selection.pinned
        rows = self.rows()
        self._update_method_boxes()
        self.results = {key: value for key, value in self.results.items()
                        if key[2] in rows and key[0] in self.session.models
                        and key[1] in self.chosen[key[0]]}
        self._build()

    def clear_view(self) -> None:
        self._run += 1
        self.results.clear()
        self.pinned = None
        self._build()

    def header_note(self) -> str:
        return ("Blue: pushes towards the class explained; red: against it; purple: "
                "influence without a sign. Hover a token or an image for its score.")

    # -- the view -----------------------------------------------------------------------

    def _update_method_boxes(self) -> None:
        """New models get their default methods; each box shows whether its method runs for
        all (checked), some (partly) or none of the models it applies to."""
        for name, model in self.session.models.items():
            if name not in self.chosen:
                self.chosen[name] = default_methods(methods_for(model))
        for method, box in self.method_boxes.items():
            applicable = [name for name, model in self.session.models.items()
                          if method in methods_for(model)]
            running = sum(method in self.chosen.get(name, ()) for name in applicable)
            box.setVisible(bool(applicable))
            box.setCheckState(Qt.CheckState.Unchecked if running == 0 else
                              Qt.CheckState.Checked if running == len(applicable) else
                              Qt.CheckState.PartiallyChecked)

    def _build(self) -> None:
        _empty(self.content_layout)
        self._cells.clear()
        self._pickers.clear()
        rows = self.rows()
        if not rows:
            return
        for name, model in self.session.models.items():
            methods = [method for method in METHODS if method in self.chosen.get(name, ())]
            if methods:
                self.content_layout.addWidget(self._model_section(name, model, methods, rows))
        for key in self._cells:
            self._fill_cell(key)

    def _model_section(self, name: str, model: Model, methods: list[str], rows: list[int]
                       ) -> QWidget:
        section = QFrame()
        section.setObjectName(f"salience:{name}")
        grid = QGridLayout(section)
        grid.setContentsMargins(0, 6, 0, 6)
        grid.setHorizontalSpacing(12)
        title = QHBoxLayout()
        title.addWidget(QLabel(f"<b>{html.escape(name)}</b>"))
        vocab = next((field_type.vocab for field_type in model.output_spec().values()
                      if isinstance(field_type, types.MulticlassPreds) and field_type.vocab), ())
        if vocab:
            title.addSpacing(12)
            title.addWidget(QLabel("explaining"))
            picker = QComboBox()
            picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            picker.setObjectName(f"target:{name}")
            picker.addItem("the predicted class", None)
            for label in vocab:
                picker.addItem(label, label)
            picker.setCurrentIndex(max(0, picker.findData(self.targets.get(name))))
            picker.currentIndexChanged.connect(
                lambda _index, name=name, picker=picker: self.set_target(name, picker.currentData()))
            title.addWidget(picker)
            self._pickers[name] = picker
        title.addStretch(1)
        grid.addLayout(title, 0, 0, 1, 1 + len(rows))
        if len(rows) > 1:
            for column, (row, role) in enumerate(zip(rows, ("primary", "pinned reference")), 1):
                grid.addWidget(QLabel(f"<i>Row {row} ({role})</i>"), 1, column)
        for line, method in enumerate(methods, 2):
            label = QLabel(METHODS[method].label)
            grid.addWidget(label, line, 0, Qt.AlignmentFlag.AlignTop)
            for column, row in enumerate(rows, 1):
                cell = QVBoxLayout()
                cell.setContentsMargins(0, 0, 0, 0)
                grid.addLayout(cell, line, column)
                self._cells[(name, method, row)] = cell
        grid.setColumnMinimumWidth(0, METHOD_COLUMN_WIDTH)
        for column in range(1, 1 + len(rows)):
            grid.setColumnStretch(column, 1)
        return section

    def _fill_cell(self, key: tuple[str, str, int]) -> None:
        cell = self._cells.get(key)
        if cell is None:
            return
        _empty(cell)
        result = self.results.get(key)
        if isinstance(result, Attribution):
            view = attribution_view(result, self.words.isChecked())
        else:
            view = QLabel(COMPUTING if result is None else result)
            view.setWordWrap(True)
            if result is not None:
                view.setStyleSheet(f"color: {NEGATIVE.name()}")
        view.setObjectName(f"cell:{key[0]}:{key[1]}:{key[2]}")
        cell.addWidget(view)
        picker = self._pickers.get(key[0])
        if picker is not None and isinstance(result, Attribution) and key[2] == self.row:
            picker.setItemText(0, f"the predicted class ({result.target})"
                               if self.targets.get(key[0]) is None else "the predicted class")

    def cell(self, model_name: str, method: str, row: int) -> Optional[QWidget]:
        """The widget shown for one (model, method, row), or None if there is none."""
        cell = self._cells.get((model_name, method, row))
        return cell.itemAt(0).widget() if cell is not None and cell.count() else None


def _empty(layout: QVBoxLayout) -> None:
    """Remove and delete the widgets of ``layout`` (at once out of the widget tree)."""
    while layout.count():
        widget = layout.takeAt(0).widget()
        if widget is not None:
            # Hidden first: a widget just added to a layout has a show queued, which would
            # otherwise open it as a window of its own once it has no parent.
            widget.hide()
            widget.setParent(None)
            widget.deleteLater()


def _speed_rank(method: str) -> int:
    return FAST_FIRST.index(method) if method in FAST_FIRST else len(FAST_FIRST)
