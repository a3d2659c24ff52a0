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


def score_color(score: float, maximum: float, signed: bool) -> QColor:
    """A heat colour: blue for positive, red for negative, transparent at zero."""
    strength = 0.0 if maximum <= 0 else min(1.0, abs(score) / maximum)
    base = NEGATIVE if signed and score < 0 else POSITIVE
    color = QColor(base)
    color.setAlphaF(0.85 * strength)
    return color
