"""The session: datasets, models, predictions and the one shared selection, as evented state.

Views subscribe to the psygnal signals here; nothing in this module knows about Qt. Every
mutation goes through a method that emits the matching signal, so all docks stay in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Optional

import numpy as np
from psygnal import Signal

from litdesk.api import Dataset, Model, Spec
from litdesk.core.datapoints import NewDatapoint, with_datapoints, without_rows, with_values
from litdesk.core.outcomes import Outcomes
from litdesk.core.predict import Predictions, SpecMismatchError, bind_inputs
from litdesk.core.rows import contains, sorted_unique, symmetric_difference

_EMPTY_ROWS = np.zeros(0, dtype=np.int64)
#: How :meth:`Session.select` combines rows with the selection.
SELECT_MODES = ("replace", "add", "toggle")
#: The slice that holds the rows the user starred.
STARRED_SLICE = "Starred"
#: A binary classifier's decision threshold until the user moves it: its top class.
DEFAULT_THRESHOLD = 0.5


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


class PartialDataset(Dataset):
    """The first rows of a file that is still loading, shown meanwhile: nothing is predicted,
    journaled or saved for it, and the whole dataset takes its place
    (:meth:`Session.replace_dataset`)."""

    def with_spec(self, spec: Spec) -> "PartialDataset":
        """The same rows described by another spec (still partial)."""
        return PartialDataset(self.table, spec, self.name, self.path)


def _unique_name(name: str, taken) -> str:
    unique, suffix = name, 2
    while unique in taken:
        unique, suffix = f"{name} ({suffix})", suffix + 1
    return unique


class Session:
    """What the user is working with: datasets (one active), models, their predictions.

    Every dataset opened stays in the session with its predictions, so switching back to
    it is instant; the selection belongs to the active dataset.
    """

    datasets_changed = Signal()  # a dataset was added
    dataset_changed = Signal()  # another dataset became the active one
    spec_changed = Signal()
    models_changed = Signal()
    predictions_changed = Signal(str)  # model name
    slices_changed = Signal()  # a named slice of the active dataset was added, changed or removed
    #: Rows were appended to the active dataset (their positions); predictions_changed follows
    #: for each model whose predictions were extended.
    rows_added = Signal(object)
    #: Emitted with the source that changed the selection, so a view can ignore its own echo.
    selection_changed = Signal(object)
    #: The active dataset's outcomes (:attr:`outcomes`) were computed again.
    outcomes_changed = Signal()
    #: Values of existing rows of the active dataset changed (the column's name): a label the
    #: user fixed. The rows and their positions stay.
    values_changed = Signal(str)
    #: The Embedding Projector found other clusters (:attr:`clusters`).
    clusters_changed = Signal()
    #: A binary classifier's decision threshold changed (the model's name).
    thresholds_changed = Signal(str)

    def __init__(self) -> None:
        self.datasets: dict[str, Dataset] = {}
        self.dataset: Optional[Dataset] = None
        self.models: dict[str, Model] = {}
        self._predictions: dict[str, dict[str, Predictions]] = {}
        self._slices: dict[str, dict[str, np.ndarray]] = {}
        self.selection = Selection()
        self._outcomes: Optional[Outcomes] = None
        #: The clusters of the projector's layout of the active dataset: rows by name.
        self.clusters: dict[str, np.ndarray] = {}
        #: Per binary classifier (by name), the positive-class probability from which it calls
        #: a row positive; every view (outcomes, scalars, metrics, confusion) uses it.
        self.thresholds: dict[str, float] = {}

    @property
    def outcomes(self) -> Optional[Outcomes]:
        """Every classifier's outcome on the active dataset (predicted label, confidence,
        gold, correct, disagreement), or None until they are computed for its current rows."""
        current = self._outcomes
        if current is None or self.dataset is None or current.dataset_name != self.dataset.name \
                or current.num_rows != len(self.dataset):
            return None
        return current

    def threshold(self, model: str) -> float:
        """Model ``model``'s decision threshold (0.5 until the user moves it)."""
        return self.thresholds.get(model, DEFAULT_THRESHOLD)

    def set_threshold(self, model: str, value: float) -> None:
        """Set a binary classifier's decision threshold (clamped to [0, 1]) for every view."""
        value = min(1.0, max(0.0, float(value)))
        if self.thresholds.get(model) == value:
            return
        self.thresholds[model] = value
        self.thresholds_changed.emit(model)

    def set_outcomes(self, outcomes: Outcomes) -> None:
        """Keep the outcomes the workbench computed (ignored when the rows changed since)."""
        if self.dataset is None or outcomes.dataset_name != self.dataset.name \
                or outcomes.num_rows != len(self.dataset):
            return
        self._outcomes = outcomes
        self.outcomes_changed.emit()

    @property
    def predictions(self) -> dict[str, Predictions]:
        """The models' predictions for the active dataset, by model name."""
        if self.dataset is None:
            return {}
        return self._predictions.setdefault(self.dataset.name, {})

    @property
    def slices(self) -> dict[str, np.ndarray]:
        """The active dataset's named slices: sorted row positions by slice name."""
        if self.dataset is None:
            return {}
        return self._slices.setdefault(self.dataset.name, {})

    # -- datasets and models ----------------------------------------------------------

    def set_dataset(self, dataset: Dataset) -> str:
        """Add ``dataset`` under a unique name and make it the active one; return the name."""
        dataset.name = _unique_name(dataset.name, self.datasets)
        self.datasets[dataset.name] = dataset
        self.datasets_changed.emit()
        self.activate_dataset(dataset.name)
        return dataset.name

    def replace_dataset(self, name: str, dataset: Dataset) -> None:
        """Put ``dataset`` in place of the dataset called ``name`` (its first rows, shown while
        it loaded), keeping the name, the selection and the slices: the rows they point at are
        the same rows. Predictions and outcomes made for the old rows are dropped."""
        dataset.name = name
        self.datasets[name] = dataset
        self._predictions.pop(name, None)
        if self.dataset is not None and self.dataset.name == name:
            self.dataset = dataset
            self._outcomes = None
            self.dataset_changed.emit()
        self.datasets_changed.emit()

    def remove_dataset(self, name: str) -> None:
        """Forget the dataset called ``name``, its predictions and slices; another one becomes
        the active dataset (or none)."""
        if self.datasets.pop(name, None) is None:
            return
        self._predictions.pop(name, None)
        self._slices.pop(name, None)
        self.datasets_changed.emit()
        if self.dataset is not None and self.dataset.name == name:
            self.dataset = None
            self._outcomes = None
            if self.datasets:
                self.activate_dataset(next(reversed(self.datasets)))
            else:
                self.selection = Selection()
                self.dataset_changed.emit()
                self.selection_changed.emit(None)

    def activate_dataset(self, name: str) -> None:
        """Show the dataset called ``name``; the selection starts empty."""
        if self.dataset is not None and self.dataset.name == name:
            return
        self.dataset = self.datasets[name]
        self.selection = Selection()
        self.clusters = {}
        self.dataset_changed.emit()
        self.selection_changed.emit(None)

    def add_model(self, model: Model) -> str:
        """Add a model under a unique name (its own, suffixed when taken); return the name."""
        model.name = _unique_name(model.name, self.models)
        self.models[model.name] = model
        self.models_changed.emit()
        return model.name

    def model_problem(self, name: str) -> Optional[str]:
        """Why model ``name`` is not run on the active dataset (its inputs find no column, or
        several), or None when it fits. A model that does not fit is left out, not an error."""
        model = self.models.get(name)
        if model is None or self.dataset is None:
            return None
        try:
            bind_inputs(model, self.dataset)
        except SpecMismatchError as error:
            return str(error)
        return None

    def fitting_models(self) -> dict[str, Model]:
        """The models whose inputs fit the active dataset, by name: those the views run."""
        return {name: model for name, model in self.models.items()
                if self.model_problem(name) is None}

    def remove_model(self, name: str) -> None:
        """Close model ``name``: it and its predictions on every dataset are dropped."""
        if self.models.pop(name, None) is None:
            return
        self.forget_predictions(name)
        self.models_changed.emit()

    def replace_model(self, name: str, model: Model) -> None:
        """Put ``model`` (a reloaded one) in the place of model ``name``, under the same name;
        the old one's predictions are dropped, to be predicted again."""
        model.name = name
        self.models[name] = model
        self.forget_predictions(name)
        self.models_changed.emit()

    def forget_predictions(self, name: str, dataset_name: Optional[str] = None) -> None:
        """Drop model ``name``'s predictions on one dataset (default: every dataset)."""
        active = False
        for dataset, predictions in self._predictions.items():
            if dataset_name in (None, dataset) and predictions.pop(name, None) is not None:
                active = active or (self.dataset is not None and dataset == self.dataset.name)
        if active:
            current = self._outcomes  # until they are computed again, without this model
            if current is not None and name in current.models:
                self._outcomes = replace(current, models={
                    model: outcome for model, outcome in current.models.items() if model != name})
            self.predictions_changed.emit(name)

    def update_spec(self, changes: dict) -> None:
        """Replace the field types of some columns of the active dataset (user corrections)."""
        if self.dataset is None:
            return
        self.dataset = self.dataset.with_spec({**self.dataset.spec(), **changes})
        self.datasets[self.dataset.name] = self.dataset
        self.spec_changed.emit()

    def set_predictions(self, predictions: Predictions) -> None:
        """Store a model's predictions for a dataset of the session (ignored if it is gone)."""
        dataset = self.datasets.get(predictions.dataset_name)
        if dataset is None or len(predictions) != len(dataset):
            return
        held = self._predictions.setdefault(dataset.name, {})
        held[predictions.model_name] = predictions
        # In the order the models were opened, whichever finished first: the table's columns,
        # the comparison's lines and the legends keep their places from one launch to the next.
        order = {name: position for position, name in enumerate(self.models)}
        self._predictions[dataset.name] = dict(sorted(
            held.items(), key=lambda item: order.get(item[0], len(order))))
        if dataset is self.dataset:
            self.predictions_changed.emit(predictions.model_name)

    def add_datapoints(self, points: Sequence[NewDatapoint],
                       predictions: Mapping[str, Predictions] = MappingProxyType({}),
                       dataset_name: Optional[str] = None) -> np.ndarray:
        """Append ``points`` to a dataset (the active one by default); return their positions.

        ``predictions`` holds each model's predictions for the new rows alone; a model left
        out loses its predictions for this dataset (to be predicted again). Raises
        ValueError (naming the field) when a value does not fit its column.
        """
        dataset = self.datasets.get(dataset_name) if dataset_name else self.dataset
        if dataset is None:
            raise ValueError(f"no dataset {dataset_name or ''} is open".replace("  ", " "))
        grown = with_datapoints(dataset, points)
        positions = np.arange(len(dataset), len(grown), dtype=np.int64)
        self.datasets[dataset.name] = grown
        old = self._predictions.get(dataset.name, {})
        kept = {name: before.appended(predictions[name]) for name, before in old.items()
                if name in predictions and len(predictions[name]) == len(points)}
        self._predictions[dataset.name] = kept
        if dataset is self.dataset:
            self.dataset = grown
            self.rows_added.emit(positions)
            for name in kept:
                self.predictions_changed.emit(name)
        return positions

    def set_values(self, column: str, rows, values, dataset_name: Optional[str] = None) -> None:
        """Set ``column`` to ``values`` at ``rows`` of a dataset (the active one by default):
        a label the user fixed. Predictions stay (the inputs are unchanged); raises ValueError
        (see :func:`~litdesk.core.datapoints.with_values`)."""
        dataset = self.datasets.get(dataset_name) if dataset_name else self.dataset
        if dataset is None:
            raise ValueError(f"no dataset {dataset_name or ''} is open".replace("  ", " "))
        changed = with_values(dataset, column, rows, list(values))
        self.datasets[dataset.name] = changed
        if dataset is self.dataset:
            self.dataset = changed
            self.values_changed.emit(column)

    def set_clusters(self, clusters: Mapping[str, np.ndarray]) -> None:
        """Keep the clusters the projector found (rows by name; empty: none), for the views
        that group by them (the Metrics dock)."""
        self.clusters = {name: sorted_unique(rows) for name, rows in clusters.items()}
        self.clusters_changed.emit()

    def remove_datapoints(self, rows, dataset_name: Optional[str] = None) -> np.ndarray:
        """Delete the datapoints made here among ``rows`` from a dataset (the active one by
        default; rows of its file stay); return the rows deleted. Later rows move up, and the
        predictions, slices and selection follow them."""
        dataset = self.datasets.get(dataset_name) if dataset_name else self.dataset
        if dataset is None:
            return np.zeros(0, dtype=np.int64)
        shrunk, moved = without_rows(dataset, sorted_unique(rows))
        if shrunk is dataset:
            return np.zeros(0, dtype=np.int64)
        keep = moved >= 0

        def follow(positions: np.ndarray) -> np.ndarray:
            positions = positions[positions < len(moved)]
            return sorted_unique(moved[positions][moved[positions] >= 0])

        self.datasets[dataset.name] = shrunk
        self._predictions[dataset.name] = {
            name: Predictions(before.model_name, before.dataset_name,
                              {key: values[keep] for key, values in before.fields.items()},
                              dict(before.spec))
            for name, before in self._predictions.get(dataset.name, {}).items()
            if len(before) == len(dataset)}
        slices = self._slices.get(dataset.name, {})
        for name in list(slices):
            slices[name] = follow(slices[name])
        if dataset is self.dataset:
            self.dataset = shrunk
            self._outcomes = None
            old = self.selection

            def moved_to(row: Optional[int]) -> Optional[int]:
                return None if row is None or row >= len(moved) or moved[row] < 0 \
                    else int(moved[row])

            self.selection = Selection(follow(old.rows), moved_to(old.primary),
                                       moved_to(old.pinned))
            self.dataset_changed.emit()
            self.slices_changed.emit()
            self.selection_changed.emit(None)
        return np.flatnonzero(~keep)

    # -- slices -------------------------------------------------------------------------

    def add_slice(self, name: str, rows) -> str:
        """Save ``rows`` of the active dataset as a slice under a unique name; return the name."""
        name = _unique_name(name.strip() or "slice", self.slices)
        self.slices[name] = sorted_unique(rows)
        self.slices_changed.emit()
        return name

    def set_slice(self, name: str, rows) -> None:
        """Create or replace the slice called ``name`` (starring rows uses this)."""
        self.slices[name] = sorted_unique(rows)
        self.slices_changed.emit()

    def remove_slice(self, name: str) -> None:
        """Forget a slice (its rows stay in the dataset)."""
        if self.slices.pop(name, None) is not None:
            self.slices_changed.emit()

    # -- selection ----------------------------------------------------------------------

    def select(self, rows, primary: Optional[int] = None, source: object = None,
               mode: str = "replace") -> None:
        """Select ``rows``: instead of the selection (``mode`` "replace"), added to it ("add")
        or toggled in it ("toggle").

        ``primary`` is the row acted on. Replacing, it joins the rows and defaults to the
        first of them; adding or toggling, it stays primary only if it is still selected,
        and without one the primary row stays where it still is selected, else the first.
        """
        if mode not in SELECT_MODES:
            raise ValueError(f"mode must be one of {SELECT_MODES}, not {mode!r}")
        rows = sorted_unique(rows)
        current = self.selection
        if mode == "add":
            rows = sorted_unique(np.concatenate([current.rows, rows]))
        elif mode == "toggle":
            rows = symmetric_difference(current.rows, rows)
        if mode != "replace":
            if primary is not None and not contains(rows, primary):
                primary = None
            if primary is None and current.primary is not None \
                    and contains(rows, current.primary):
                primary = current.primary
        if primary is None and rows.size:
            primary = int(rows[0])
        if primary is not None and not contains(rows, primary):
            rows = sorted_unique(np.append(rows, primary))
        self._set_selection(Selection(rows, primary, current.pinned), source)

    def pin(self, row: Optional[int], source: object = None) -> None:
        """Pin ``row`` as the reference datapoint (None unpins)."""
        current = self.selection
        self._set_selection(Selection(current.rows, current.primary, row), source)

    def toggle_pin(self, source: object = None) -> None:
        """Pin the primary row as the reference, or unpin it if it already is."""
        current = self.selection
        self.pin(None if current.primary == current.pinned else current.primary, source)

    # -- starring -----------------------------------------------------------------------

    @property
    def starred(self) -> np.ndarray:
        """The starred rows of the active dataset (the :data:`STARRED_SLICE`), sorted."""
        return self.slices.get(STARRED_SLICE, _EMPTY_ROWS)

    def star(self, rows) -> None:
        """Add ``rows`` to the starred rows."""
        self.set_slice(STARRED_SLICE, np.concatenate([self.starred, np.asarray(rows, np.int64)]))

    def unstar(self, rows) -> None:
        """Take ``rows`` out of the starred rows; the slice goes once none is left."""
        starred = self.starred
        remaining = starred[~np.isin(starred, rows)]
        if remaining.size:
            self.set_slice(STARRED_SLICE, remaining)
        else:
            self.remove_slice(STARRED_SLICE)

    def toggle_star(self, rows) -> None:
        """Star ``rows``, or unstar them when all of them already are."""
        rows = sorted_unique(rows)
        if rows.size == 0:
            return
        if np.isin(rows, self.starred).all():
            self.unstar(rows)
        else:
            self.star(rows)

    def _set_selection(self, selection: Selection, source: object) -> None:
        if selection == self.selection:
            return
        self.selection = selection
        self.selection_changed.emit(source)
