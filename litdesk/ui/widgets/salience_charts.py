"""Salience charts: a token heatmap, feature bars, an image with its attribution map laid over
it, and the colour bar that is their legend. Each colours scores with
:func:`litdesk.ui.palette.salience_color` and shows a score on hover."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (QColor, QFontMetricsF, QImage, QLinearGradient, QMouseEvent, QPainter,
                           QPen)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from litdesk.ui.palette import salience_color, text_color_on

#: The most features a bar chart shows (the largest in magnitude).
TOP_FEATURES = 15
#: The longer side of an image attribution, in pixels.
IMAGE_SIDE = 256
#: The opacity of an image attribution map where its score is largest (it fades to clear at 0).
OVERLAY_OPACITY = 0.7


def score_text(score: float) -> str:
    """A score to four significant digits, with its sign."""
    return f"{score:+.4g}"


class TokenHeatmap(QWidget):
    """Tokens flowing like text, each on its salience colour; hovering one shows its score.

    ``word_starts`` (one per token, when known) marks the tokens that begin a word: a wider gap
    comes before them, so the pieces of one word stay close together."""

    PADDING, GAP, WORD_GAP, LINE_GAP = 3.0, 1.0, 6.0, 2.0

    def __init__(self, tokens: Sequence[str], scores: np.ndarray, signed: bool,
                 parent=None, word_starts: Sequence[bool] = ()) -> None:
        super().__init__(parent)
        self.tokens = tuple(tokens)
        self.word_starts = (tuple(word_starts) if len(word_starts) == len(self.tokens)
                            else (True,) * len(self.tokens))
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
        for token, starts_word in zip(self.tokens, self.word_starts):
            token_width = metrics.horizontalAdvance(token) + 2 * self.PADDING
            if x > 0:
                x += self.WORD_GAP if starts_word else self.GAP
            if x > 0 and x + token_width > width:
                x, y = 0.0, y + height + self.LINE_GAP
            rects.append(QRectF(x, y, token_width, height))
            x += token_width
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
