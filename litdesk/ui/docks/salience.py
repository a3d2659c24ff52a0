"""The Salience dock: token heatmaps for the primary datapoint, one row per model and method."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from litdesk.core.cache import ResultCache
from litdesk.core.salience import TokenScores, salience_job, supports_salience
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import score_color

SPECIAL_TOKENS = {"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>"}


def heatmap_html(result: TokenScores) -> str:
    """Tokens as coloured spans whose opacity follows the score."""
    maximum = float(abs(result.scores).max()) if len(result.scores) else 0.0
    spans = []
    for token, score in zip(result.tokens, result.scores):
        if token in SPECIAL_TOKENS:
            spans.append(f'<span style="color:#999">{html.escape(token)}</span>')
            continue
        color = score_color(float(score), maximum, result.signed)
        spans.append(f'<span style="background-color:rgba({color.red()},{color.green()},'
                     f'{color.blue()},{color.alphaF():.2f})">&nbsp;{html.escape(token)}&nbsp;</span>')
    return " ".join(spans)


class SalienceDock(QWidget):
    """Runs the salience of every capable model whenever the primary row changes."""

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.cache = cache
        self.results: dict[str, list[TokenScores]] = {}
        self._workers: dict[str, object] = {}
        self._row = None

        self.header = QLabel("Select a datapoint to see which tokens drove each model.")
        self.header.setWordWrap(True)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.rows_widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(scroll, 1)

        session.selection_changed.connect(self._on_selection)
        session.models_changed.connect(lambda: self._on_selection(None, force=True))
        session.dataset_changed.connect(self._clear)

    def _clear(self) -> None:
        self._row = None
        self.results.clear()
        self._render()

    def _on_selection(self, _source: object, force: bool = False) -> None:
        row, dataset = self.session.selection.primary, self.session.dataset
        if dataset is None or row is None or (row == self._row and not force):
            if row is None:
                self._clear()
            return
        self._row = row
        self.results.clear()
        for worker in self._workers.values():
            self.runner.cancel(worker)
        self._workers.clear()
        for name, model in self.session.models.items():
            if not supports_salience(model):
                continue
            self._workers[name] = self.runner.submit(
                salience_job(model, dataset, row, self.cache), f"Salience: {name}",
                lambda scores, name=name, row=row: self._show(name, row, scores),
                interactive=True)
        self._render()

    def _show(self, model_name: str, row: int, scores: list[TokenScores]) -> None:
        self._workers.pop(model_name, None)
        if row != self._row:
            return
        self.results[model_name] = scores
        self._render()

    def _render(self) -> None:
        while self.rows_layout.count():
            item = self.rows_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        if self._row is None:
            self.header.setText("Select a datapoint to see which tokens drove each model.")
            return
        pending = ", ".join(self._workers)
        self.header.setText(f"<b>Row {self._row}</b>" + (f" — computing: {pending}" if pending else "")
                            + "<br><small>Blue: pushed towards the prediction; red: against it; "
                              "stronger colour, larger share.</small>")
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
                self.rows_layout.addWidget(title)
                self.rows_layout.addWidget(tokens)
