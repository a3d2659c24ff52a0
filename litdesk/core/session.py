"""The session: datasets, models, predictions and the one shared selection, as evented state.

Views subscribe to the psygnal signals here; nothing in this module knows about Qt. Every
mutation goes through a method that emits the matching signal, so all docks stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from psygnal import Signal

from litdesk.api import Dataset, Model
from litdesk.core.predict import Predictions

_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Selection:
    """The selected rows (sorted positions), the primary row and the pinned reference row."""

    rows: np.ndarray = field(default_factory=lambda: _EMPTY_ROWS)
    primary: Optional[int] = None
    pinned: Optional[int] = None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Selection) and self.primary == other.primary
                and self.pinned == other.pinned and np.array_equal(self.rows, other.rows))

    __hash__ = None  # type: ignore[assignment]


class Session:
    """What the user is working with. One dataset is active; any number of models."""

    dataset_changed = Signal()
    spec_changed = Signal()
    models_changed = Signal()
    predictions_changed = Signal(str)  # model name
    #: Emitted with the source that changed the selection, so a view can ignore its own echo.
    selection_changed = Signal(object)

    def __init__(self) -> None:
        self.dataset: Optional[Dataset] = None
        self.models: dict[str, Model] = {}
        self.predictions: dict[str, Predictions] = {}
        self.selection = Selection()

    # -- datasets and models ----------------------------------------------------------

    def set_dataset(self, dataset: Dataset) -> None:
        """Make ``dataset`` the active one; predictions and selection of the old one go."""
        self.dataset = dataset
        self.predictions.clear()
        self.selection = Selection()
        self.dataset_changed.emit()
        self.selection_changed.emit(None)

    def add_model(self, model: Model) -> str:
        """Add a model under a unique name (its own, suffixed when taken); return the name."""
        name, suffix = model.name, 2
        while name in self.models:
            name, suffix = f"{model.name} ({suffix})", suffix + 1
        model.name = name
        self.models[name] = model
        self.models_changed.emit()
        return name

    def update_spec(self, changes: dict) -> None:
        """Replace the field types of some columns of the active dataset (user corrections)."""
        if self.dataset is None:
            return
        self.dataset = self.dataset.with_spec({**self.dataset.spec(), **changes})
        self.spec_changed.emit()

    def set_predictions(self, predictions: Predictions) -> None:
        """Store a model's predictions for the active dataset (ignored if it has changed)."""
        if self.dataset is None or predictions.dataset_name != self.dataset.name:
            return
        if len(predictions) != len(self.dataset):
            return
        self.predictions[predictions.model_name] = predictions
        self.predictions_changed.emit(predictions.model_name)

    # -- selection ----------------------------------------------------------------------

    def select(self, rows, primary: Optional[int] = None, source: object = None) -> None:
        """Select ``rows``; ``primary`` defaults to the first of them."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if primary is None and rows.size:
            primary = int(rows[0])
        if primary is not None and not np.isin(primary, rows):
            rows = np.union1d(rows, [primary])
        self._set_selection(Selection(rows, primary, self.selection.pinned), source)

    def pin(self, row: Optional[int], source: object = None) -> None:
        """Pin ``row`` as the reference datapoint (None unpins)."""
        current = self.selection
        self._set_selection(Selection(current.rows, current.primary, row), source)

    def _set_selection(self, selection: Selection, source: object) -> None:
        if selection == self.selection:
            return
        self.selection = selection
        self.selection_changed.emit(source)
