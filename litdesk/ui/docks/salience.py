"""The Salience dock: token heatmaps for the primary datapoint, one row per model and method."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from litdesk.api import Dataset, Model
from litdesk.core.cache import ResultCache
from litdesk.core.salience import TokenScores, salience_job, supports_salience
from litdesk.core.session import Session
from litdesk.ui.docks.primary_row import PrimaryRowDock
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import salience_color

SPECIAL_TOKENS = {"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>"}


def heatmap_html(result: TokenScores) -> str:
    """Tokens as coloured spans whose opacity follows the score."""
    maximum = float(abs(result.scores).max()) if len(result.scores) else 0.0
    spans = []
    for token, score in zip(result.tokens, result.scores):
        if token in SPECIAL_TOKENS:
            spans.append(f'<span style="color:#999">{html.escape(token)}</span>')
            continue
        color = salience_color(float(score), maximum, result.signed)
        spans.append(f'<span style="background-color:rgba({color.red()},{color.green()},'
                     f'{color.blue()},{color.alphaF():.2f})">&nbsp;{html.escape(token)}&nbsp;</span>')
    return " ".join(spans)


class SalienceDock(PrimaryRowDock):
    """Runs the salience of every capable model whenever the primary row changes."""

    title = "Salience"
    idle_message = "Select a datapoint to see which tokens drove each model."

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        self.results: dict[str, list[TokenScores]] = {}
        super().__init__(session, runner, cache, parent)

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int):
        return salience_job(model, dataset, row, self.cache) if supports_salience(model) else None

    def start_row(self, row: int) -> None:
        self.clear_view()

    def show_result(self, name: str, row: int, result: list[TokenScores]) -> None:
        self.results[name] = result
        self._render()

    def clear_view(self) -> None:
        self.results.clear()
        self._render()

    def header_note(self) -> str:
        return ("Blue: pushed towards the prediction; red: against it; "
                "stronger colour, larger share.")

    def _render(self) -> None:
        while self.content_layout.count():
            item = self.content_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for model_name in sorted(self.results):
            for result in self.results[model_name]:
                title = QLabel(f"<b>{html.escape(model_name)}</b> · {result.method} · "
                               f"predicted <b>{html.escape(result.predicted)}</b>")
                tokens = QLabel(heatmap_html(result))
                tokens.setObjectName(f"salience:{model_name}:{result.method}")
                tokens.setWordWrap(True)
                tokens.setTextFormat(Qt.TextFormat.RichText)
                tokens.setToolTip("  ".join(f"{t}={s:.3f}" for t, s in
                                            zip(result.tokens, result.scores)))
                self.content_layout.addWidget(title)
                self.content_layout.addWidget(tokens)
