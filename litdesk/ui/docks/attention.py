"""The Attention dock: every attention head of a model for the primary datapoint.

A model picker (when several models output attention) over the attention viewer
(:mod:`litdesk.ui.widgets.attention`). The outputs come from the same cached per-example job
as the Model Outputs dock, and are fetched only while this dock is on screen.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.outputs import example_outputs_job
from litdesk.core.predict import SpecMismatchError, bind_inputs
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.widgets.attention import AttentionMaps, AttentionViewer
from litdesk.ui.widgets.primary_row import PrimaryRowView


class AttentionDock(PrimaryRowView):
    """The attention heads of each model for the primary row: a model picker (when several
    models output attention) and the attention viewer, which keeps its layer, head and mode
    from row to row. Notes say why a model shows nothing."""

    title = "Attention"
    idle_message = "Select a datapoint to see where each model's attention heads look."

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        #: Per model with attention, its maps for the current row.
        self.maps: dict[str, AttentionMaps] = {}
        self._notes: dict[str, str] = {}  # model -> why it shows nothing
        super().__init__(session, runner, cache, parent)
        self.model_choice = QComboBox()
        self.model_choice.setToolTip("The model whose attention is shown")
        self.notes = QLabel()
        self.notes.setStyleSheet("color:#666")
        self.notes.setWordWrap(True)
        self.viewer = AttentionViewer()
        self.viewer.controls.insertWidget(0, self.model_choice)
        self.content_layout.addWidget(self.notes)
        self.content_layout.addWidget(self.viewer, 1)
        self.content_layout.setAlignment(Qt.AlignmentFlag(0))  # the viewer takes the height
        self.model_choice.currentTextChanged.connect(self._show)
        self._update_models()

    @property
    def model_name(self) -> str:
        """The model whose attention is shown ("" when none)."""
        return self.model_choice.currentText()

    def _show(self) -> None:
        maps = self.maps.get(self.model_name)
        self.viewer.setVisible(maps is not None)
        self.viewer.set_maps(maps)

    def _update_models(self) -> None:
        current = self.model_name
        self.model_choice.blockSignals(True)
        self.model_choice.clear()
        self.model_choice.addItems([name for name in self.session.models if name in self.maps])
        if current in self.maps:
            self.model_choice.setCurrentText(current)
        self.model_choice.blockSignals(False)
        self.model_choice.setVisible(self.model_choice.count() > 1)
        self.notes.setText("<br>".join(f"{html.escape(name)}: {html.escape(note)}"
                                       for name, note in self._notes.items()))
        self.notes.setVisible(bool(self._notes))
        self._show()

    # -- PrimaryRowView --------------------------------------------------------------------

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int):
        if not any(isinstance(t, types.AttentionHeads) for t in model.output_spec().values()):
            self._notes[name] = "outputs no attention heads."
            self._update_models()
            return None
        try:
            bind_inputs(model, dataset)
        except SpecMismatchError as error:
            self._notes[name] = f"cannot run on this dataset: {error}"
            self._update_models()
            return None
        return example_outputs_job(model, dataset, row, self.cache)

    def start_row(self, row: int) -> None:
        self.clear_view()

    def clear_view(self) -> None:
        self.maps.clear()
        self._notes.clear()
        self._update_models()

    def show_result(self, name: str, row: int, result: dict[str, Any]) -> None:
        model = self.session.models.get(name)
        maps = AttentionMaps.from_outputs(model.output_spec(), result) if model else None
        if maps is None:
            self._notes[name] = "returned no attention weights for this row."
        else:
            self.maps[name] = maps
        self._update_models()

    def show_failure(self, name: str, failure: JobFailed) -> None:
        self._notes[name] = f"failed: {type(failure.error).__name__}: {failure.error}"
        self._update_models()
