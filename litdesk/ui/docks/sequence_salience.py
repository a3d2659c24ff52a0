"""The Sequence Salience dock: for causal language models, which tokens of the primary row's text
drove a target span (the model's continuation, or the rest of the row's text).

For each causal LM: the text as token chips, the context coloured by salience (per token, word or
sentence; hover for values) and the target outlined. Drag over the target's tokens to explain a
part of it. Under it, the model's top-k predictions at each target position.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QSpinBox, QToolTip, QVBoxLayout, QWidget)

from litdesk.api import Dataset, Model
from litdesk.core.cache import ResultCache
from litdesk.core.outputs import unlabelled_example
from litdesk.core.predict import SpecMismatchError, bind_inputs
from litdesk.core.sequence_salience import (GRANULARITIES, METHODS, SequenceSalience,
                                            continuation_job, segments,
                                            sequence_salience_job,
                                            supports_sequence_salience)
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.palette import salience_color, text_color_on
from litdesk.ui.widgets.primary_row import PrimaryRowView
from litdesk.ui.widgets.top_k_table import top_k_table

_WORD_END = re.compile(r"\S+")
TARGET_PEN = QColor("#333")
REST_TEXT = QColor("#999")
#: What the target may be: the model's continuation of the prompt, or the row's own words after it.
TARGETS = ("the model's continuation", "the rest of the row's text")


@dataclass(frozen=True)
class TokenChip:
    """One token as the flow draws it."""

    text: str
    background: QColor
    tooltip: str
    gap_before: bool
    in_target: bool = False
    selectable: bool = False
    dimmed: bool = False
    #: The tokens the chip shows, first..last (a word's pieces at word granularity).
    first: int = 0
    last: int = 0


class TokenFlow(QWidget):
    """Tokens laid out like text, wrapping at the widget's width, each on its own background.

    Hovering shows a token's tooltip; a press and drag over selectable tokens emits
    ``span_selected(first, last)`` (chip indices, inclusive) on release.
    """

    span_selected = Signal(int, int)
    PADDING = 3
    SPACE = 5
    LINE_GAP = 4

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.chips: list[TokenChip] = []
        self._rects: list[QRect] = []
        self._drag: Optional[tuple[int, int]] = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_chips(self, chips: list[TokenChip]) -> None:
        self.chips = chips
        self._layout(self.width())
        self.updateGeometry()
        self.update()

    def _layout(self, width: int) -> int:
        """Place the chips within ``width``; returns the height they need."""
        metrics = self.fontMetrics()
        line_height = metrics.height() + 2 * self.PADDING
        x, y, rects = 0, 0, []
        for chip in self.chips:
            chip_width = metrics.horizontalAdvance(chip.text) + 2 * self.PADDING
            left = x + (self.SPACE if chip.gap_before and x > 0 else 0)
            if left + chip_width > width and x > 0:
                left, y = 0, y + line_height + self.LINE_GAP
            rects.append(QRect(left, y, chip_width, line_height))
            x = left + chip_width
        self._rects = rects
        return y + line_height if rects else 0

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._layout(width)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(400, self._layout(max(self.width(), 400)))

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._layout(event.size().width())
        super().resizeEvent(event)

    def chip_rect(self, index: int) -> QRect:
        """Where chip ``index`` is drawn."""
        return self._rects[index]

    def chip_at(self, point: QPoint) -> Optional[int]:
        return next((i for i, rect in enumerate(self._rects) if rect.contains(point)), None)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        selected = range(min(self._drag), max(self._drag) + 1) if self._drag else range(0)
        for index, (chip, rect) in enumerate(zip(self.chips, self._rects)):
            painter.fillRect(rect, chip.background)
            if chip.in_target or index in selected:
                painter.setPen(QPen(TARGET_PEN, 2 if index in selected else 1))
                painter.drawRect(rect.adjusted(0, 0, -1, -1))
            painter.setPen(REST_TEXT if chip.dimmed else text_color_on(chip.background))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, chip.text)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.chip_at(event.position().toPoint())
        if index is not None:
            QToolTip.showText(event.globalPosition().toPoint(), self.chips[index].tooltip, self)
        if self._drag and index is not None and self.chips[index].selectable:
            self._drag = (self._drag[0], index)
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.chip_at(event.position().toPoint())
        if index is not None and self.chips[index].selectable:
            self._drag = (index, index)
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag is not None:
            first, last = sorted(self._drag)
            self._drag = None
            self.update()
            self.span_selected.emit(first, last)


class SequenceSalienceSection(QWidget):
    """One causal LM's view of the primary row: the prompt split, Generate, the salience-coloured
    tokens with the target outlined, a legend, and the top-k predictions at the target's tokens.

    ``request`` is emitted with (text, target start, target end) when the salience should be
    computed; ``generate`` with the prompt when a continuation is wanted.
    """

    request = Signal(str, int, int)
    generate = Signal(str)

    def __init__(self, model_name: str, row_text: str, parent=None) -> None:
        super().__init__(parent)
        self.model_name = model_name
        self.row_text = row_text
        self.word_ends = [match.end() for match in _WORD_END.finditer(row_text)]
        # The demo LM ends a whole text with its end token: by default the prompt is the first half.
        words = len(self.word_ends)
        self.prompt = row_text[:self.word_ends[(words - 1) // 2]] if words > 1 else row_text
        self.target = ""
        self.salience: Optional[SequenceSalience] = None
        self.granularity = "word"

        self.split = QSpinBox()
        self.split.setRange(1, max(1, len(self.word_ends)))
        self.split.setValue(max(1, (words + 1) // 2))
        self.split.setPrefix("prompt: first ")
        self.split.setSuffix(f" of {words} words")
        self.split.setToolTip("Where the prompt ends")
        self.target_choice = QComboBox()
        self.target_choice.addItems(TARGETS)
        self.target_choice.setToolTip("What follows the prompt and is explained")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Continue the prompt with the model (greedy) and explain "
                                        "the continuation")
        self.status = QLabel("generating…")
        self.status.setStyleSheet("color:#666")
        self.status.setWordWrap(True)
        self.flow = TokenFlow()
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color:#555")
        self.top_k: Optional[QWidget] = None

        header = QLabel(f"<b>{html.escape(model_name)}</b>")
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        controls = QHBoxLayout()
        controls.addWidget(header)
        controls.addStretch(1)
        controls.addWidget(self.split)
        controls.addWidget(QLabel("target:"))
        controls.addWidget(self.target_choice)
        controls.addWidget(self.generate_button)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 4, 0, 8)
        self.layout_.addLayout(controls)
        self.layout_.addWidget(line)
        self.layout_.addWidget(self.status)
        self.layout_.addWidget(self.flow)
        self.layout_.addWidget(self.legend)

        self.split.valueChanged.connect(self._on_split)
        self.target_choice.currentIndexChanged.connect(self._update_target)
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.flow.span_selected.connect(self._on_span_selected)

    @property
    def text(self) -> str:
        return self.prompt + self.target

    def set_target(self, target: str) -> None:
        """Explain the whole of ``target``, which follows the prompt."""
        self.target = target
        if not target.strip():
            self.show_message("The model continues this prompt with nothing; move the prompt "
                              "split or pick another row.")
            return
        start = len(self.prompt) + len(target) - len(target.lstrip())
        self.show_message("computing salience…")
        self.request.emit(self.text, start, len(self.text))

    def show_message(self, message: str) -> None:
        self.status.setText(message)
        self.status.show()

    def _on_split(self, words: int) -> None:
        self.prompt = self.row_text[:self.word_ends[words - 1]] if self.word_ends else self.row_text
        self._update_target()

    def _update_target(self) -> None:
        """Explain the rest of the row's text, or ask for the model's continuation."""
        rest = self.row_text[len(self.prompt):]
        if self.target_choice.currentText() == TARGETS[1] and rest.strip():
            self.set_target(rest)
        else:
            self.show_message("generating…")
            self.generate.emit(self.prompt)

    def _on_generate_clicked(self) -> None:
        if self.target_choice.currentIndex() == 0:
            self._update_target()
        else:
            self.target_choice.setCurrentIndex(0)  # which generates

    def _on_span_selected(self, first: int, last: int) -> None:
        if self.salience is None:
            return
        first, last = self.flow.chips[first].first, self.flow.chips[last].last
        start, end = self.salience.offsets[first][0], self.salience.offsets[last][1]
        self.show_message("computing salience…")
        self.request.emit(self.text, int(start), int(end))

    def show_salience(self, salience: SequenceSalience) -> None:
        """Colour the context by ``salience`` and list the top-k predictions at the target."""
        self.salience = salience
        self.status.hide()
        self.render_salience()

    def set_granularity(self, granularity: str) -> None:
        self.granularity = granularity
        if self.salience is not None:
            self.render_salience()

    def render_salience(self) -> None:
        salience = self.salience
        assert salience is not None
        grouped = segments(salience, self.granularity)
        maximum = float(abs(grouped.scores).max()) if len(grouped.scores) else 0.0
        label = METHODS[salience.method][0]
        target_first = salience.target_first
        target_text = salience.text[salience.offsets[target_first][0]:
                                    salience.offsets[salience.target_end - 1][1]]
        prompt_end = len(self.prompt)
        # At word or sentence granularity the context reads as words: a word's pieces are one
        # chip ("midwives", not "mid" "w" "i" "ves"); the target stays a chip per token.
        words = (segments(salience, "word").group if self.granularity != "token"
                 else np.full(len(salience.scores), -1))
        chips = []
        index = 0
        while index < len(salience.tokens):
            last = index
            if index < target_first and words[index] >= 0:
                while last + 1 < target_first and words[last + 1] == words[index]:
                    last += 1
            start = int(salience.offsets[index][0])
            gap = index > 0 and start > int(salience.offsets[index - 1][1])
            token = (salience.text[start:int(salience.offsets[last][1])] if last > index
                     else salience.token_text(index))
            selectable = start >= prompt_end
            if index < target_first and grouped.group[index] >= 0:
                group = int(grouped.group[index])
                score = float(grouped.scores[group])
                span = grouped.spans[group]
                chips.append(TokenChip(
                    token, salience_color(score, maximum, salience.signed),
                    f"{html.escape(salience.text[span[0]:span[1]])}: {score:+.4f}\n"
                    f"({label} for “{target_text.strip()}”)", gap, selectable=selectable,
                    first=index, last=last))
            else:
                in_target = target_first <= index < salience.target_end
                chips.append(TokenChip(
                    token, QColor("#f2f2f2") if in_target else QColor("white"),
                    "target token: drag over the continuation to explain another span"
                    if in_target else "after the target", gap, in_target=in_target,
                    selectable=selectable, dimmed=not in_target and index >= target_first,
                    first=index, last=last))
            index = last + 1
        self.flow.set_chips(chips)
        colours = ("blue raised the target's log-probability, red lowered it" if salience.signed
                   else "darker: larger gradient")
        self.legend.setText(f"{label} per {self.granularity} for the outlined target — {colours}; "
                            f"strongest |score| {maximum:.3g}. Hover for values.")
        if self.top_k is not None:
            self.top_k.deleteLater()
        positions = range(target_first, salience.target_end)
        self.top_k = top_k_table([salience.top_k[i - 1] for i in positions],
                                 [salience.tokens[i] for i in positions])
        self.top_k.setToolTip("Each target token and the model's most likely tokens at its "
                              "position (given everything before it)")
        self.layout_.addWidget(self.top_k)


class SequenceSalienceDock(PrimaryRowView):
    """For every causal LM: the continuation of the primary row's text and the salience of the
    text's tokens for it. A model's newest request (a continuation, a salience) replaces the
    one before it, and a new row replaces them all."""

    title = "Sequence salience"
    idle_message = ("Select a datapoint to see which words drove a causal language model's "
                    "continuation of it.")
    #: A section showed salience (model name).
    salience_shown = Signal(str)

    def __init__(self, session: Session, runner: JobRunner, cache: Optional[ResultCache] = None,
                 parent=None) -> None:
        self.sections: dict[str, SequenceSalienceSection] = {}
        #: Per model, the text and target span last explained (explained again by a new method).
        self._spans: dict[str, tuple[str, int, int]] = {}
        super().__init__(session, runner, cache, parent)
        self.method = QComboBox()
        for key, (label, _signed) in METHODS.items():
            self.method.addItem(label, key)
        self.granularity = QComboBox()
        self.granularity.addItems(GRANULARITIES)
        self.granularity.setCurrentText("word")
        pickers = QHBoxLayout()
        pickers.addWidget(QLabel("Method"))
        pickers.addWidget(self.method)
        pickers.addWidget(QLabel("Granularity"))
        pickers.addWidget(self.granularity)
        pickers.addStretch(1)
        self.layout().insertLayout(1, pickers)
        self.method.currentIndexChanged.connect(self._rerun_salience)
        self.granularity.currentTextChanged.connect(
            lambda granularity: [section.set_granularity(granularity)
                                 for section in self.sections.values()])

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int):
        if not supports_sequence_salience(model):
            return None
        try:
            bind_inputs(model, dataset)
        except SpecMismatchError:
            return None
        text = str(unlabelled_example(model, dataset, row).get("text") or "")
        section = SequenceSalienceSection(name, text)
        section.set_granularity(self.granularity.currentText())
        section.request.connect(lambda *span, name=name: self._run_salience(name, *span))
        section.generate.connect(lambda prompt, name=name: self._run_generation(name, prompt))
        self.sections[name] = section
        self.content_layout.addWidget(section)
        return continuation_job(model, section.prompt, self.cache)

    def start_row(self, row: int) -> None:
        self.clear_view()

    def clear_view(self) -> None:
        self._spans.clear()
        for section in self.sections.values():
            section.deleteLater()
        self.sections.clear()

    def header_note(self) -> str:
        if self.sections:
            return "Drag over the outlined target to explain part of it."
        return ("No causal language model is open: open one (the demo's is "
                "litdesk/resources/demo/models/tiny_lm) to see its continuation explained.")

    def show_result(self, name: str, row: int, result: str) -> None:
        self.sections[name].set_target(result)

    def show_failure(self, name: str, failure: JobFailed) -> None:
        self.sections[name].show_message(f"Failed: {failure.error}")

    def _run_generation(self, name: str, prompt: str) -> None:
        model, section = self.session.models.get(name), self.sections.get(name)
        if model is None or section is None:
            return
        self.submit(name, continuation_job(model, prompt, self.cache), section.set_target,
                    "generating")

    def _run_salience(self, name: str, text: str, start: int, end: int) -> None:
        model = self.session.models.get(name)
        if model is None:
            return
        self._spans[name] = (text, start, end)
        self.submit(name, sequence_salience_job(model, text, start, end, self.method.currentData(),
                                                self.cache),
                    lambda salience: self._show_salience(name, salience), "salience")

    def _show_salience(self, name: str, salience: SequenceSalience) -> None:
        self.sections[name].show_salience(salience)
        self.salience_shown.emit(name)

    def _rerun_salience(self) -> None:
        for name, span in list(self._spans.items()):
            self._run_salience(name, *span)
