"""A dock that runs one job per model on the primary row: the shared skeleton of per-example
views (salience, model outputs)."""

from __future__ import annotations

import html
from collections.abc import Generator
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from litdesk.api import Dataset, Model
from litdesk.core.cache import ResultCache
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner


class PrimaryRowDock(QWidget):
    """A header and a scrolling content area; when the primary row (or the set of models)
    changes, the previous row's jobs are cancelled and one interactive job per model starts.
    Results for a row that is no longer primary are dropped.

    Subclasses define :meth:`job_for`, :meth:`start_row`, :meth:`show_result` and
    :meth:`clear_view`; :meth:`show_failure` and :meth:`header_note` are optional.
    """

    #: Job titles are "<title>: <model>".
    title = "Per-example work"
    #: The header while no row is primary.
    idle_message = "Select a datapoint."

    def __init__(self, session: Session, runner: JobRunner, cache: Optional[ResultCache] = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.cache = cache
        self.row: Optional[int] = None
        self._workers: dict[str, object] = {}

        self.header = QLabel(self.idle_message)
        self.header.setWordWrap(True)
        self.content = QWidget()
        self.content_layout = QVBoxLayout(self.content)
        self.content_layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(scroll, 1)

        session.selection_changed.connect(self._on_selection)
        session.models_changed.connect(lambda: self._on_selection(None, force=True))
        session.dataset_changed.connect(self._reset)

    # -- what a subclass defines --------------------------------------------------------

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int
                ) -> Optional[Generator]:
        """The job for ``model`` on ``row``, or None to skip the model."""
        raise TypeError(f"{type(self).__name__} defines no job")

    def start_row(self, row: int) -> None:
        """Reset the view for a new primary row (before its jobs start)."""

    def show_result(self, name: str, row: int, result: Any) -> None:
        """Show model ``name``'s result for the current row."""

    def show_failure(self, name: str, failure: JobFailed) -> None:
        """Show that model ``name``'s job failed (the window reports it too)."""

    def clear_view(self) -> None:
        """Empty the view: no row is primary."""

    def header_note(self) -> str:
        """Rich text shown under the row number."""
        return ""

    # -- the skeleton -------------------------------------------------------------------

    def pending(self) -> list[str]:
        """Models whose job for the current row is still running."""
        return list(self._workers)

    def update_header(self) -> None:
        """Row number, models still computing, and the subclass's note."""
        if self.row is None:
            self.header.setText(self.idle_message)
            return
        pending = ", ".join(self._workers)
        note = self.header_note()
        self.header.setText(f"<b>Row {self.row}</b>"
                            + (f" — computing: {html.escape(pending)}" if pending else "")
                            + (f"<br><small>{note}</small>" if note else ""))

    def _cancel_jobs(self) -> None:
        for worker in self._workers.values():
            self.runner.cancel(worker)
        self._workers.clear()

    def _reset(self) -> None:
        self._cancel_jobs()
        self.row = None
        self.clear_view()
        self.update_header()

    def _on_selection(self, _source: object, force: bool = False) -> None:
        row, dataset = self.session.selection.primary, self.session.dataset
        if dataset is None or row is None:
            self._reset()
            return
        if row == self.row and not force:
            return
        self._cancel_jobs()
        self.row = row
        self.start_row(row)
        for name, model in self.session.models.items():
            job = self.job_for(name, model, dataset, row)
            if job is None:
                continue
            self._workers[name] = self.runner.submit(
                job, f"{self.title}: {name}",
                lambda result, name=name, row=row: self._deliver(name, row, result),
                lambda failure, name=name, row=row: self._deliver_failure(name, row, failure),
                interactive=True)
        self.update_header()

    def _deliver(self, name: str, row: int, result: Any) -> None:
        if row != self.row:
            return
        self._workers.pop(name, None)
        self.show_result(name, row, result)
        self.update_header()

    def _deliver_failure(self, name: str, row: int, failure: JobFailed) -> None:
        if row != self.row:
            return
        self._workers.pop(name, None)
        self.show_failure(name, failure)
        self.update_header()
