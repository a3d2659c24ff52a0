"""The attention viewer: every head of one model's attention for one example.

A layers × heads grid of thumbnails (one widget painting one small heatmap image per head)
and a large view of the chosen head, as a token-to-token matrix or as lines from each token
to the tokens it attends to (opacity ∝ weight). Hovering a token highlights its row, column
or lines and lists its strongest weights. The Attention dock and the Model Outputs dock both
show it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetrics, QImage, QKeyEvent, QMouseEvent, QPainter,
                           QPen, QPixmap)
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core.tokens import is_special_token, merge_attention, token_spans

#: Heat colours from white (no weight) to dark blue (the head's largest weight), as 0xffRRGGBB.
HEAT_LOW, HEAT_HIGH = np.array([255, 255, 255]), np.array([8, 69, 148])
HEAT_RGB = np.rint(HEAT_LOW + np.linspace(0, 1, 256)[:, None] * (HEAT_HIGH - HEAT_LOW)
                   ).astype(np.uint32)
HEAT_LUT = (0xFF000000 | HEAT_RGB[:, 0] << 16 | HEAT_RGB[:, 1] << 8 | HEAT_RGB[:, 2]
            ).astype(np.uint32)
HIGHLIGHT = QColor("#ff7f0e")
HIGHLIGHT_FILL = QColor(255, 127, 14, 60)
SPECIAL_COLOR, TEXT_COLOR = QColor("#999"), QColor("#222")
#: How many of a hovered token's strongest weights are listed.
TOP_WEIGHTS = 5


def heat_color(strength: float) -> QColor:
    """The colour of a weight ``strength`` in [0, 1] (a share of the head's largest weight)."""
    return QColor.fromRgb(int(HEAT_LUT[round(255 * min(1.0, max(0.0, strength)))]))


def heat_image(strength: np.ndarray) -> QImage:
    """A 2-D array of strengths in [0, 1] as an image, one pixel per value."""
    index = np.rint(np.clip(strength, 0.0, 1.0) * 255).astype(np.intp)
    pixels = np.ascontiguousarray(HEAT_LUT[index])
    height, width = pixels.shape
    return QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_RGB32).copy()


def relative(weights: np.ndarray) -> np.ndarray:
    """``weights`` as shares of their largest value (zeros stay zeros)."""
    maximum = float(weights.max()) if weights.size else 0.0
    return weights / maximum if maximum > 0 else np.zeros_like(weights)


def token_html(token: str) -> str:
    """A token in bold, escaped."""
    return f"<b>{html.escape(token)}</b>"


def strongest(weights: np.ndarray, tokens: tuple[str, ...]) -> str:
    """The :data:`TOP_WEIGHTS` largest weights of one row or column, as rich text
    ("<b>token</b> 0.42 · …")."""
    order = np.argsort(-weights, kind="stable")[:TOP_WEIGHTS]
    return " · ".join(f"{token_html(tokens[i])} {weights[i]:.2f}" for i in order)


def aligned_tokens(outputs: dict[str, Any], field: Optional[str], count: int) -> tuple[str, ...]:
    """The tokens of the Tokens field ``field`` when it has ``count`` of them, else positions."""
    tokens = outputs.get(field) if field else None
    if tokens is not None and len(tokens) == count:
        return tuple(str(token) for token in tokens)
    return tuple(str(i) for i in range(count))


@dataclass(frozen=True)
class AttentionMaps:
    """One model's attention for one example: per layer, heads × from-tokens × to-tokens."""

    layers: tuple[str, ...]              # the AttentionHeads fields, in spec order
    weights: tuple[np.ndarray, ...]      # one float array per layer
    from_tokens: tuple[str, ...]         # the rows: tokens that attend
    to_tokens: tuple[str, ...]           # the columns: tokens attended to

    @classmethod
    def from_outputs(cls, spec: types.Spec, outputs: dict[str, Any]) -> Optional[AttentionMaps]:
        """The AttentionHeads fields of a model's ``outputs``; None when it has none."""
        layers = [name for name, field_type in spec.items()
                  if isinstance(field_type, types.AttentionHeads) and outputs.get(name) is not None]
        if not layers:
            return None
        weights = tuple(np.asarray(outputs[name], dtype=np.float64) for name in layers)
        first = spec[layers[0]]
        _, rows, columns = weights[0].shape
        return cls(tuple(layers), weights, aligned_tokens(outputs, first.align_in, rows),
                   aligned_tokens(outputs, first.align_out, columns))

    @property
    def head_counts(self) -> tuple[int, ...]:
        return tuple(layer.shape[0] for layer in self.weights)

    def without_special_tokens(self) -> AttentionMaps:
        """Special tokens' rows and columns dropped, each row renormalised to sum to 1."""
        keep_rows = [i for i, token in enumerate(self.from_tokens) if not is_special_token(token)]
        keep_columns = [j for j, token in enumerate(self.to_tokens) if not is_special_token(token)]
        weights = []
        for layer in self.weights:
            kept = layer[:, keep_rows][:, :, keep_columns]
            totals = kept.sum(axis=-1, keepdims=True)
            weights.append(np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0))
        return AttentionMaps(self.layers, tuple(weights),
                             tuple(self.from_tokens[i] for i in keep_rows),
                             tuple(self.to_tokens[j] for j in keep_columns))


    def readable(self) -> AttentionMaps:
        """Tokens as a person reads them (:func:`litdesk.core.tokens.token_spans`): the byte
        pieces of one character joined (attention to them summed, from them averaged)."""
        rows, columns = token_spans(self.from_tokens), token_spans(self.to_tokens)
        if len(rows) == len(self.from_tokens) and len(columns) == len(self.to_tokens):
            weights = self.weights
        else:
            weights = tuple(merge_attention(layer, rows, columns) for layer in self.weights)
        return AttentionMaps(self.layers, weights, tuple(span.label for span in rows),
                             tuple(span.label for span in columns))


class HeadGrid(QWidget):
    """Layers (rows, counted from 1) × heads (columns, counted from 0), each head a thumbnail of
    its token-to-token matrix, shaded relative to its own largest weight. Click a thumbnail or
    use the arrow keys to choose a head."""

    #: A head was chosen: layer index (from 0), head.
    chosen = Signal(int, int)

    CELL, GAP, LEFT, TOP = 40, 4, 26, 16

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.thumbnails: list[list[QImage]] = []
        self.layer_names: tuple[str, ...] = ()
        self.current = (0, 0)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_maps(self, maps: Optional[AttentionMaps]) -> None:
        """Draw a thumbnail of every head of ``maps`` (None: nothing)."""
        self.thumbnails = []
        self.layer_names = maps.layers if maps is not None else ()
        for layer in (maps.weights if maps is not None else ()):
            row = []
            for head in layer:
                image = heat_image(relative(head))
                shrinking = max(image.width(), image.height()) > self.CELL
                row.append(image.scaled(self.CELL, self.CELL, Qt.AspectRatioMode.IgnoreAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation if shrinking
                                        else Qt.TransformationMode.FastTransformation))
            self.thumbnails.append(row)
        self.updateGeometry()
        self.update()

    def set_current(self, layer: int, head: int) -> None:
        self.current = (layer, head)
        self.update()

    def cell_rect(self, layer: int, head: int) -> QRect:
        """Where the thumbnail of ``head`` in layer index ``layer`` is drawn."""
        step = self.CELL + self.GAP
        return QRect(self.LEFT + head * step, self.TOP + layer * step, self.CELL, self.CELL)

    def cell_at(self, point: QPoint) -> Optional[tuple[int, int]]:
        """The (layer index, head) under ``point``, if any."""
        step = self.CELL + self.GAP
        layer, head = (point.y() - self.TOP) // step, (point.x() - self.LEFT) // step
        if 0 <= layer < len(self.thumbnails) and 0 <= head < len(self.thumbnails[layer]) \
                and self.cell_rect(layer, head).contains(point):
            return layer, head
        return None

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        step = self.CELL + self.GAP
        heads = max((len(row) for row in self.thumbnails), default=0)
        return QSize(self.LEFT + heads * step + 2, self.TOP + len(self.thumbnails) * step + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.sizeHint()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(SPECIAL_COLOR)
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() - 1))
        painter.setFont(small)
        heads = max((len(row) for row in self.thumbnails), default=0)
        for head in range(heads):
            rect = self.cell_rect(0, head)
            painter.drawText(QRect(rect.left(), 0, rect.width(), self.TOP),
                             Qt.AlignmentFlag.AlignCenter, str(head))
        for layer, row in enumerate(self.thumbnails):
            rect = self.cell_rect(layer, 0)
            painter.drawText(QRect(0, rect.top(), self.LEFT - 4, rect.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             str(layer + 1))
            for head, image in enumerate(row):
                painter.drawImage(self.cell_rect(layer, head), image)
        if self.thumbnails:
            layer, head = self.current
            painter.setPen(QPen(HIGHLIGHT, 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.cell_rect(layer, head).adjusted(-1, -1, 1, 1))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self.cell_at(event.position().toPoint())
        self.setToolTip("" if cell is None else
                        f"{self.layer_names[cell[0]]} · head {cell[1]} (click to show)")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self.cell_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and cell is not None:
            self.chosen.emit(*cell)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        steps = {Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0),
                 Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1)}
        step = steps.get(Qt.Key(event.key()))
        if step is None or not self.thumbnails:
            super().keyPressEvent(event)
            return
        layer = min(max(self.current[0] + step[0], 0), len(self.thumbnails) - 1)
        head = min(max(self.current[1] + step[1], 0), len(self.thumbnails[layer]) - 1)
        self.chosen.emit(layer, head)


class HeadView(QWidget):
    """One head, large: a matrix (rows attend to columns), coloured by shares of the head's
    largest weight, or token-to-token lines (LIT-style: tokens that attend on the left, tokens
    attended to on the right, each line's opacity its weight). Hovering a token or a cell
    highlights it and emits :attr:`hover_changed` with its weights; special tokens are greyed."""

    MATRIX, LINES = "matrix", "lines"
    #: A description of what is under the mouse ("" when nothing).
    hover_changed = Signal(str)

    MIN_CELL, MAX_CELL, LABEL_WIDTH, LINE_GAP, MARGIN = 4, 28, 120, 150, 4
    #: The side the matrix asks for (when cells as tall as a line of text would be larger).
    HINT_SIDE = 480

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.weights = np.zeros((0, 0))
        self.from_tokens: tuple[str, ...] = ()
        self.to_tokens: tuple[str, ...] = ()
        self.mode = self.MATRIX
        #: What the mouse is over: ("from", row, -1), ("to", -1, column), ("cell", row, column).
        self.hovered: Optional[tuple[str, int, int]] = None
        self._image: Optional[QImage] = None
        self._lines: Optional[QPixmap] = None  # every line, drawn once per head and size
        self._from_width = self._to_width = 0  # the room for the labels, set by _fit
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_head(self, weights: np.ndarray, from_tokens: tuple[str, ...],
                 to_tokens: tuple[str, ...]) -> None:
        """Show ``weights`` (from-tokens × to-tokens)."""
        self.weights = weights
        self.from_tokens, self.to_tokens = from_tokens, to_tokens
        self._image = heat_image(relative(weights)) if weights.size else None
        self._lines = None
        self._set_hovered(None)
        self._fit()

    def set_mode(self, mode: str) -> None:
        """:attr:`MATRIX` or :attr:`LINES`."""
        self.mode = mode
        self._lines = None
        self._set_hovered(None)
        self._fit()

    # -- geometry --------------------------------------------------------------------------

    def _label_width(self, tokens: tuple[str, ...]) -> int:
        """The room for the widest token in bold (as when highlighted), up to LABEL_WIDTH."""
        bold = QFont(self.font())
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        widest = max((metrics.horizontalAdvance(token) for token in tokens), default=0)
        return min(self.LABEL_WIDTH, widest) + 2 * self.MARGIN

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 2

    def _fit(self) -> None:
        """Measure the labels and set the minimum size for the tokens and the mode."""
        self._from_width = self._label_width(self.from_tokens)
        self._to_width = self._label_width(self.to_tokens)
        rows, columns = self.weights.shape
        if self.mode == self.MATRIX:
            self.setMinimumSize(self._from_width + columns * self.MIN_CELL + 1,
                                self._to_width + rows * self.MIN_CELL + 1)
        else:
            self.setMinimumSize(
                self._from_width + self.LINE_GAP
                + self._to_width,
                max(rows, columns) * self._row_height() + 2 * self.MARGIN)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        """A matrix asks for cells as tall as a line of text, up to :attr:`HINT_SIDE` in all:
        what it gets where it is not stretched (in the Model Outputs dock)."""
        rows, columns = self.weights.shape
        if self.mode == self.MATRIX and rows and columns:
            cell = max(self.MIN_CELL, min(self._row_height(), self.HINT_SIDE // max(rows, columns)))
            hint = QSize(self._from_width + columns * cell + 1, self._to_width + rows * cell + 1)
            return hint.expandedTo(QSize(360, 240))
        return self.minimumSize().expandedTo(QSize(360, 240))

    def cell_size(self) -> int:
        """The side of a matrix cell, as large as the widget allows."""
        rows, columns = self.weights.shape
        if not rows or not columns:
            return self.MIN_CELL
        fits = min((self.width() - self._from_width) // columns,
                   (self.height() - self._to_width) // rows)
        return max(self.MIN_CELL, min(self.MAX_CELL, fits))

    def matrix_origin(self) -> QPoint:
        return QPoint(self._from_width, self._to_width)

    def cell_rect(self, row: int, column: int) -> QRect:
        """Where the matrix cell (``row`` attends to ``column``) is drawn."""
        cell, origin = self.cell_size(), self.matrix_origin()
        return QRect(origin.x() + column * cell, origin.y() + row * cell, cell, cell)

    def token_rect(self, side: str, index: int) -> QRect:
        """Where the label of token ``index`` is drawn; ``side`` "from" (rows, the left column)
        or "to" (columns, the right column)."""
        if self.mode == self.MATRIX:
            cell, origin = self.cell_size(), self.matrix_origin()
            if side == "from":
                return QRect(0, origin.y() + index * cell, origin.x(), cell)
            return QRect(origin.x() + index * cell, 0, cell, origin.y())
        height, left = self._row_height(), self._from_width
        top = self.MARGIN + index * height
        if side == "from":
            return QRect(0, top, left, height)
        return QRect(left + self.LINE_GAP, top, self._to_width, height)

    def item_at(self, point: QPoint) -> Optional[tuple[str, int, int]]:
        """The token label or matrix cell under ``point``, as :attr:`hovered` names it."""
        for side, tokens in (("from", self.from_tokens), ("to", self.to_tokens)):
            for index in range(len(tokens)):
                if self.token_rect(side, index).contains(point):
                    return (side, index, -1) if side == "from" else (side, -1, index)
        if self.mode == self.MATRIX and self.weights.size:
            cell, origin = self.cell_size(), self.matrix_origin()
            row, column = (point.y() - origin.y()) // cell, (point.x() - origin.x()) // cell
            if point.x() >= origin.x() and point.y() >= origin.y() \
                    and row < self.weights.shape[0] and column < self.weights.shape[1]:
                return "cell", row, column
        return None

    def describe(self, item: Optional[tuple[str, int, int]]) -> str:
        """What :attr:`hover_changed` says about ``item``, as rich text."""
        if item is None:
            return ""
        kind, row, column = item
        if kind == "cell":
            return (f"{token_html(self.from_tokens[row])} → "
                    f"{token_html(self.to_tokens[column])}: {self.weights[row, column]:.3f}")
        if kind == "from":
            return (f"{token_html(self.from_tokens[row])} attends to: "
                    f"{strongest(self.weights[row], self.to_tokens)}")
        return (f"{token_html(self.to_tokens[column])} is attended by: "
                f"{strongest(self.weights[:, column], self.from_tokens)}")

    # -- events ----------------------------------------------------------------------------

    def _set_hovered(self, item: Optional[tuple[str, int, int]]) -> None:
        if item == self.hovered:
            return
        self.hovered = item
        text = self.describe(item)
        self.setToolTip(text)
        self.hover_changed.emit(text)
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._set_hovered(self.item_at(event.position().toPoint()))

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._set_hovered(None)
        super().leaveEvent(event)

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.FontChange:
            self._lines = None
            self._fit()
        super().changeEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._lines = None
        super().resizeEvent(event)

    # -- painting --------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802
        if not self.weights.size:
            return
        painter = QPainter(self)
        if self.mode == self.MATRIX:
            self._paint_matrix(painter)
        else:
            self._paint_lines(painter)
        self._paint_labels(painter)

    def _highlighted(self, side: str, index: int) -> bool:
        if self.hovered is None:
            return False
        kind, row, column = self.hovered
        return (side == "from" and kind in ("from", "cell") and row == index) or \
            (side == "to" and kind in ("to", "cell") and column == index)

    def _paint_labels(self, painter: QPainter) -> None:
        metrics = self.fontMetrics()
        step = 1
        if self.mode == self.MATRIX:  # labels thinned out when cells are smaller than the text
            step = max(1, math.ceil(metrics.height() / self.cell_size()))
        for side, tokens in (("from", self.from_tokens), ("to", self.to_tokens)):
            right_aligned = side == "from"
            marked = [index for index in range(len(tokens)) if self._highlighted(side, index)]
            for index, token in enumerate(tokens):
                highlighted = index in marked
                crowded = index % step or any(abs(index - other) < step for other in marked)
                if crowded and not highlighted:
                    continue
                rect = self.token_rect(side, index)
                if highlighted:
                    painter.fillRect(rect, HIGHLIGHT_FILL)
                painter.setPen(SPECIAL_COLOR if is_special_token(token) else TEXT_COLOR)
                font = QFont(self.font())
                font.setBold(highlighted)
                painter.setFont(font)
                text = metrics.elidedText(token, Qt.TextElideMode.ElideRight, self.LABEL_WIDTH)
                flags = Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip
                if self.mode == self.MATRIX and side == "to":  # vertical, reading upwards
                    painter.save()
                    painter.translate(rect.center().x() + 0.5, rect.bottom() + 1)
                    painter.rotate(-90)
                    painter.drawText(QRectF(self.MARGIN, -metrics.height() / 2,
                                            rect.height() - 2 * self.MARGIN, metrics.height()),
                                     flags | Qt.AlignmentFlag.AlignLeft, text)
                    painter.restore()
                    continue
                line = QRectF(rect.left() + self.MARGIN,
                              rect.center().y() + 0.5 - metrics.height() / 2,
                              rect.width() - 2 * self.MARGIN, metrics.height())
                painter.drawText(line, flags | (Qt.AlignmentFlag.AlignRight if right_aligned
                                                else Qt.AlignmentFlag.AlignLeft), text)

    def _paint_matrix(self, painter: QPainter) -> None:
        rows, columns = self.weights.shape
        cell, origin = self.cell_size(), self.matrix_origin()
        painter.drawImage(QRect(origin.x(), origin.y(), columns * cell, rows * cell), self._image)
        if self.hovered is None:
            return
        kind, row, column = self.hovered
        painter.setPen(QPen(HIGHLIGHT, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if row >= 0:
            painter.drawRect(QRect(origin.x(), origin.y() + row * cell, columns * cell, cell))
        if column >= 0:
            painter.drawRect(QRect(origin.x() + column * cell, origin.y(), cell, rows * cell))

    def line_ends(self, row: int, column: int) -> tuple[QPointF, QPointF]:
        """Where the line from token ``row`` to token ``column`` starts and ends."""
        start, end = self.token_rect("from", row), self.token_rect("to", column)
        return (QPointF(start.right() + 2, start.center().y() + 0.5),
                QPointF(end.left() - 2, end.center().y() + 0.5))

    def _draw_lines(self, painter: QPainter, pairs: np.ndarray, opacities: np.ndarray,
                    width: float) -> None:
        """A line for each (row, column) of ``pairs``, with the opacity in [0, 1] beside it;
        lines of equal opacity (to 1/255) are drawn together."""
        alphas = np.rint(255 * np.clip(opacities, 0.0, 1.0)).astype(int)
        color = QColor.fromRgb(int(HEAT_LUT[-1]))
        for alpha in np.unique(alphas[alphas > 0]):
            color.setAlpha(int(alpha))
            painter.setPen(QPen(color, width))
            painter.drawLines([QLineF(*self.line_ends(row, column))
                               for row, column in pairs[alphas == alpha]])

    def _paint_lines(self, painter: QPainter) -> None:
        """Every line with its weight as opacity (each token's lines add up to one opaque line,
        as in LIT); a hovered token's lines on top, relative to its strongest."""
        if self._lines is None or self._lines.size() != self.size() * self.devicePixelRatio():
            self._lines = QPixmap(self.size() * self.devicePixelRatio())
            self._lines.setDevicePixelRatio(self.devicePixelRatio())
            self._lines.fill(Qt.GlobalColor.transparent)
            cache = QPainter(self._lines)
            pairs = np.argwhere(self.weights >= 1 / 255)
            self._draw_lines(cache, pairs, self.weights[tuple(pairs.T)], 1)
            cache.end()
        if self.hovered is None:
            painter.drawPixmap(0, 0, self._lines)
            return
        painter.setOpacity(0.25)
        painter.drawPixmap(0, 0, self._lines)
        painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        kind, row, column = self.hovered
        rows, columns = self.weights.shape
        if kind == "from":
            pairs = np.column_stack([np.full(columns, row), np.arange(columns)])
        elif kind == "to":
            pairs = np.column_stack([np.arange(rows), np.full(rows, column)])
        else:
            pairs = np.array([[row, column]])
        self._draw_lines(painter, pairs, relative(self.weights[tuple(pairs.T)]), 2.0)


class AttentionViewer(QWidget):
    """One model's attention for one example: layer and head pickers, matrix or lines, special
    tokens hidden on request, the heads' thumbnails and the chosen head large, with what the
    hovered token or cell attends to. The choice survives new maps (clamped to what exists)."""

    #: The user chose another layer, head, mode, or hid or showed the special tokens.
    choice_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.maps: Optional[AttentionMaps] = None
        self.layer_index, self.head = 0, 0

        self.layer_choice = QSpinBox()
        self.layer_choice.setPrefix("layer ")
        self.layer_choice.setToolTip("The layer, counted from 1 (↑ ↓ in the grid)")
        self.head_choice = QSpinBox()
        self.head_choice.setPrefix("head ")
        self.head_choice.setToolTip("The head, counted from 0 (← → in the grid)")
        self.matrix_button = QPushButton("Matrix")
        self.matrix_button.setToolTip("Rows (tokens that attend) against columns "
                                      "(tokens attended to)")
        self.lines_button = QPushButton("Lines")
        self.lines_button.setToolTip("A line from each token to each token it attends to")
        self.mode_buttons = QButtonGroup(self)
        for button in (self.matrix_button, self.lines_button):
            button.setCheckable(True)
            self.mode_buttons.addButton(button)
        self.matrix_button.setChecked(True)
        self.hide_special = QCheckBox("Hide special tokens")
        self.hide_special.setToolTip("Drop [CLS], [SEP] and the like, and renormalise each row "
                                     "of the remaining weights to sum to 1")
        self.grid = HeadGrid()
        self.view = HeadView()
        self.view_title = QLabel()
        self.view_title.setWordWrap(True)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color:#444")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        #: The pickers' row; a dock may add its own (a model picker) to it.
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        for widget in (self.layer_choice, self.head_choice, self.matrix_button,
                       self.lines_button, self.hide_special):
            self.controls.addWidget(widget)
        self.controls.addStretch(1)
        grid_column = QVBoxLayout()
        grid_column.addWidget(QLabel("<small>layers ↓ · heads →</small>"))
        grid_column.addWidget(self.grid)
        grid_column.addStretch(1)
        view_column = QVBoxLayout()
        view_column.addWidget(self.view_title)
        view_column.addWidget(self.detail)
        view_column.addWidget(self.view, 1)
        body = QHBoxLayout()
        body.addLayout(grid_column)
        body.addLayout(view_column, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.controls)
        layout.addLayout(body, 1)

        self.layer_choice.valueChanged.connect(lambda value: self.choose(value - 1, self.head))
        self.head_choice.valueChanged.connect(lambda value: self.choose(self.layer_index, value))
        self.grid.chosen.connect(self.choose)
        self.mode_buttons.buttonToggled.connect(self._on_mode)
        self.hide_special.toggled.connect(self._show)
        self.hide_special.toggled.connect(self.choice_changed)
        self.view.hover_changed.connect(self._on_hover)
        self._on_hover("")
        self._show()

    def set_maps(self, maps: Optional[AttentionMaps]) -> None:
        """Show ``maps`` (None: nothing) at the chosen layer and head."""
        self.maps = maps
        self._show()

    def shown_maps(self) -> Optional[AttentionMaps]:
        """The maps with readable tokens, without special tokens when they are hidden."""
        if self.maps is None:
            return None
        maps = self.maps.without_special_tokens() if self.hide_special.isChecked() else self.maps
        return maps.readable()

    def choose(self, layer_index: int, head: int) -> None:
        """Show ``head`` of the layer at ``layer_index`` (from 0), clamped to what exists."""
        if self.maps is not None:
            layer_index = min(max(layer_index, 0), len(self.maps.layers) - 1)
            head = min(max(head, 0), self.maps.head_counts[layer_index] - 1)
        if (layer_index, head) == (self.layer_index, self.head):
            return
        self.layer_index, self.head = layer_index, head
        self._show_head(self.shown_maps())
        self.choice_changed.emit()

    def choice(self) -> tuple[int, int, str, bool]:
        """The layer index, head, mode and whether special tokens are hidden."""
        return self.layer_index, self.head, self.view.mode, self.hide_special.isChecked()

    def set_choice(self, choice: tuple[int, int, str, bool]) -> None:
        """Take another viewer's :meth:`choice`."""
        self.layer_index, self.head, mode, hide_special = choice
        (self.lines_button if mode == HeadView.LINES else self.matrix_button).setChecked(True)
        self.hide_special.setChecked(hide_special)
        self._show()

    def _on_mode(self, button: QPushButton, checked: bool) -> None:
        if checked:
            self.view.set_mode(HeadView.LINES if button is self.lines_button else HeadView.MATRIX)
            self.choice_changed.emit()

    def _on_hover(self, text: str) -> None:
        self.detail.setText(text or "Hover a token for its weights.")

    def _show(self) -> None:
        maps = self.shown_maps()
        self.grid.set_maps(maps)
        if maps is not None:
            self.layer_index = min(self.layer_index, len(maps.layers) - 1)
            self.head = min(self.head, maps.head_counts[self.layer_index] - 1)
        self._show_head(maps)

    def _show_head(self, maps: Optional[AttentionMaps]) -> None:
        if maps is None:
            self.view.set_head(np.zeros((0, 0)), (), ())
            self.view_title.clear()
            return
        for spin, value, maximum in ((self.layer_choice, self.layer_index + 1, len(maps.layers)),
                                     (self.head_choice, self.head,
                                      maps.head_counts[self.layer_index] - 1)):
            spin.blockSignals(True)
            spin.setRange(1 if spin is self.layer_choice else 0, maximum)
            spin.setValue(value)
            spin.blockSignals(False)
        self.grid.set_current(self.layer_index, self.head)
        self.view.set_head(maps.weights[self.layer_index][self.head], maps.from_tokens,
                           maps.to_tokens)
        self.view_title.setText(f"<b>{html.escape(maps.layers[self.layer_index])}</b> · head "
                                f"{self.head} — rows attend to columns; darker: a larger share "
                                f"of this head's largest weight "
                                f"({self.view.weights.max(initial=0):.2f})")
