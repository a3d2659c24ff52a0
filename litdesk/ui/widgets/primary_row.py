"""The skeleton of a per-example view (salience, model outputs, attention): one background
request per model on the primary row, run only while the view is on screen."""

from __future__ import annotations

import html
from collections.abc import Callable, Generator
from typing import Any, Optional, Union

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from litdesk.api import Dataset, Model
from litdesk.core.cache import ResultCache
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner, JobSlot
from litdesk.ui.lazy_refresh import RefreshWhenShown

#: What a view runs for a model: a job (a generator yielding progress) or a plain function.
Work = Union[Generator, Callable[[], Any]]


class PrimaryRowView(RefreshWhenShown):
    """A header and a scrolling content area; for the primary row, one request per model.

    Each model's requests go through its own :class:`JobSlot`: a new primary row (or set of
    models) replaces the request before it, and a result or failure of a replaced request
    never reaches the view. While the view is off screen (a background tab, a closed dock)
    nothing runs; shown again, it catches up with the primary row.

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
        self._slots: dict[str, JobSlot] = {}

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
        session.models_changed.connect(self.request_refresh)
        session.dataset_changed.connect(self._reset)

    # -- what a subclass defines --------------------------------------------------------

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int) -> Optional[Work]:
        """The work for ``model`` on ``row``, or None to skip the model."""
        raise TypeError(f"{type(self).__name__} defines no job")

    def start_row(self, row: int) -> None:
        """Reset the view for the primary row (before its jobs start)."""

    def show_result(self, name: str, row: int, result: Any) -> None:
        """Show model ``name``'s result for the current row."""

    def show_failure(self, name: str, failure: JobFailed) -> None:
        """Show that model ``name``'s request failed (it is reported nowhere else)."""

    def clear_view(self) -> None:
        """Empty the view: no row is primary."""

    def header_note(self) -> str:
        """Rich text shown under the row number."""
        return ""

    # -- the skeleton -------------------------------------------------------------------

    def submit(self, name: str, work: Work, on_result: Callable[[Any], None],
               what: str = "") -> None:
        """Run ``work`` for model ``name`` instead of the request still running for it.

        ``on_result`` gets its result and :meth:`show_failure` its failure, unless a newer
        request for the model (or a new row) came first. ``what`` names the work in the
        job's title.
        """
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = JobSlot(self.runner, f"{self.title}: {name}", self)
        title = f"{self.title} ({what}): {name}" if what else None
        slot.submit(work, lambda result: self._delivered(on_result, result),
                    lambda failure: self._delivered(lambda f: self.show_failure(name, f),
                                                    failure),
                    title=title)
        self.update_header()

    def pending(self) -> list[str]:
        """Models whose request is still running."""
        return [name for name, slot in self._slots.items() if slot.busy]

    def update_header(self) -> None:
        """Row number, models still computing, and the subclass's note."""
        if self.row is None:
            self.header.setText(self.idle_message)
            return
        pending = ", ".join(self.pending())
        note = self.header_note()
        self.header.setText(f"<b>Row {self.row}</b>"
                            + (f" — computing: {html.escape(pending)}" if pending else "")
                            + (f"<br><small>{note}</small>" if note else ""))

    def refresh(self) -> None:
        """Start the primary row's requests (the view is on screen)."""
        row, dataset = self.session.selection.primary, self.session.dataset
        if dataset is None or row is None:
            self._reset()
            return
        self._cancel_jobs()
        self.row = row
        self.start_row(row)
        for name, model in self.session.fitting_models().items():
            work = self.job_for(name, model, dataset, row)
            if work is not None:
                self.submit(name, work, lambda result, name=name: self.show_result(name, row,
                                                                                    result))
        self.update_header()

    def _delivered(self, handler: Callable[[Any], None], value: Any) -> None:
        handler(value)
        self.update_header()

    def _cancel_jobs(self) -> None:
        for slot in self._slots.values():
            slot.cancel()

    def _reset(self) -> None:
        self._cancel_jobs()
        self.row = None
        self.clear_view()
        self.update_header()

    def _on_selection(self, _source: object) -> None:
        if self.session.selection.primary != self.row:
            self._cancel_jobs()  # the old row's results are of no use, shown now or later
            self.request_refresh()
