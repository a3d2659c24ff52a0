"""A table of a model's most likely tokens at each position (TokenTopKPreds)."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QAbstractScrollArea, QSizePolicy, QTableWidget,
                               QTableWidgetItem)

from litdesk.core.tokens import token_labels, token_spans

#: The most candidates shown per position.
TOP_K_SHOWN = 5
#: Taller tables scroll.
VISIBLE_ROWS = 12
#: What a space that begins a token reads as.
VISIBLE_SPACE = "␣"


def readable_tokens(tokens: list[str]) -> list[str]:
    """One label per raw token (:func:`litdesk.core.tokens.token_labels`), a space that begins
    a token kept visible: GPT-2's "Ġthe" and SentencePiece's "▁the" read "␣the", so that a
    token that starts a word and one that goes on from the text before it ("the") differ."""
    labels = token_labels(tokens)
    for span in token_spans(tokens):
        if not span.special and span.text[:1] == " " and span.text.strip():
            for index in range(span.first, span.end):
                labels[index] = VISIBLE_SPACE + labels[index]
    return labels


def top_k_table(candidates: Any, tokens: Optional[list[str]]) -> QTableWidget:
    """One row per position: its token, then its most likely tokens as "token (p)", every token
    readable (:func:`readable_tokens`; the raw token in its tooltip).

    Read-only, as wide as its columns and as tall as its rows up to :data:`VISIBLE_ROWS`.
    """
    k = min(TOP_K_SHOWN, max((len(position) for position in candidates), default=0))
    table = QTableWidget(len(candidates), 1 + k)
    table.setHorizontalHeaderLabels(["token"] + [f"#{rank}" for rank in range(1, k + 1)])
    table.verticalHeader().hide()
    bold = table.font()
    bold.setBold(True)
    aligned = tokens is not None and len(tokens) == len(candidates)
    labels = readable_tokens([str(token) for token in tokens]) if aligned else []
    for row, position in enumerate(candidates):
        token = QTableWidgetItem(labels[row] if aligned else "")
        if aligned:
            token.setToolTip(str(tokens[row]))
        token.setFont(bold)
        table.setItem(row, 0, token)
        best = sorted(position, key=lambda pair: -float(pair[1]))[:k]
        for column, (name, probability) in enumerate(best, start=1):
            item = QTableWidgetItem(f"{readable_tokens([str(name)])[0]} ({float(probability):.2f})")
            item.setToolTip(str(name))
            table.setItem(row, column, item)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
    table.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    table.resizeColumnsToContents()
    shown = min(len(candidates), VISIBLE_ROWS)
    table.setFixedHeight(table.horizontalHeader().sizeHint().height()
                         + shown * table.verticalHeader().defaultSectionSize()
                         + 2 * table.frameWidth())
    return table
