"""Colours shared by the views."""

from __future__ import annotations

from PySide6.QtGui import QColor

#: Distinct category colours (Tableau 10), in order of first use.
CATEGORY_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
OTHER_COLOR = "#7f7f7f"
POSITIVE = QColor("#1f77b4")
NEGATIVE = QColor("#d62728")


def category_color(index: int) -> QColor:
    """The colour of the ``index``-th category (grey past the palette)."""
    return QColor(CATEGORY_COLORS[index] if 0 <= index < len(CATEGORY_COLORS) else OTHER_COLOR)


#: The strong end of the sequential map for unsigned salience (white to purple).
UNSIGNED_HIGH = QColor("#54278f")


def salience_color(score: float, maximum: float, signed: bool) -> QColor:
    """An opaque salience colour, at full strength where ``|score| >= maximum``.

    Signed scores use a diverging map (white to blue for positive, white to red for negative),
    unsigned ones a sequential map (white to purple).
    """
    strength = 0.0 if maximum <= 0 else min(1.0, abs(score) / maximum)
    high = (NEGATIVE if score < 0 else POSITIVE) if signed else UNSIGNED_HIGH
    return QColor.fromRgbF(1 + (high.redF() - 1) * strength, 1 + (high.greenF() - 1) * strength,
                           1 + (high.blueF() - 1) * strength)


def text_color_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background``."""
    return QColor("#1a1a1a") if background.lightnessF() > 0.55 else QColor("white")
