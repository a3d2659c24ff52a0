"""The Partial Dependence dock: each model's score as one tabular feature sweeps its range."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout

from litdesk.core.empty_states import empty_state
from litdesk.core.partial_dependence import (PartialDependence, ice_rows,
                                             partial_dependence_job, tabular_features)
from litdesk.core.session import Session
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.jobs import JobFailed, JobRunner, JobSlot
from litdesk.ui.palette import category_color
from litdesk.ui.widgets.plots import grid_plot

ICE_ALPHA = 45
#: What the dock is for, in its empty states.
PURPOSE = "to see how its score depends on each feature"


def _joined_curves(grid_x: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All curves as one polyline, broken by NaN between rows, so one item draws them all."""
    rows = curves.shape[0]
    x = np.tile(np.r_[grid_x, np.nan], rows)
    y = np.hstack([curves, np.full((rows, 1), np.nan)]).ravel()
    return x, y


class PartialDependenceDock(RefreshWhenShown):
    """Pick a feature; each model's mean curve (thick), per-row curves (thin, faint) and the
    primary row's curve (dark) are computed on the worker, the previous run cancelled."""

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.results: dict[str, PartialDependence] = {}  # by model, for the sampled rows
        self.primary_results: dict[str, PartialDependence] = {}  # the primary row, when apart
        self.primary_curves: dict[str, pg.PlotDataItem] = {}
        self._slots: dict[tuple[str, str], JobSlot] = {}  # ("rows" | "primary", model)
        self._computed_rows: Optional[np.ndarray] = None

        self.feature_choice = QComboBox()
        self.feature_choice.setToolTip("The input feature to sweep over its range")
        self.feature_choice.currentIndexChanged.connect(self.recompute)
        self.note = QLabel(self.empty_text())
        self.note.setWordWrap(True)
        self.plot = grid_plot()
        self.legend = self.plot.addLegend(offset=(10, 10), brush=(255, 255, 255, 210))

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Feature:"))
        controls.addWidget(self.feature_choice, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)

        for signal in (session.dataset_changed, session.spec_changed, session.rows_added,
                       session.models_changed):
            signal.connect(self._on_inputs_changed)
        session.selection_changed.connect(self._on_selection)

    def _on_inputs_changed(self, *_args) -> None:
        self.cancel()  # sweeps of what changed
        self.request_refresh()

    def _models_reading(self, feature: str) -> list:
        dataset = self.session.dataset
        return [model for model in self.session.models.values()
                if feature in tabular_features(model, dataset)]

    def refresh(self) -> None:
        """Offer the tabular inputs of the models that read the active dataset."""
        dataset = self.session.dataset
        features: dict[str, None] = {}
        if dataset is not None:
            for model in self.session.models.values():
                features.update(dict.fromkeys(tabular_features(model, dataset)))
        ordered = [name for name in (dataset.spec() if dataset else ()) if name in features]
        current = self.feature_choice.currentText()
        self.feature_choice.blockSignals(True)
        self.feature_choice.clear()
        self.feature_choice.addItems(ordered)
        self.feature_choice.setCurrentIndex(max(0, self.feature_choice.findText(current)))
        self.feature_choice.blockSignals(False)
        if not ordered:
            self.note.setText(self.empty_text())
        self.recompute()

    def empty_text(self) -> str:
        """Why there is no feature to sweep: no dataset, no model, none that fits or gives a
        score, or none that reads a numeric or categorical column."""
        return empty_state(self.session, "score", PURPOSE, predictions=False) or (
            f"The open models ({', '.join(sorted(self.session.fitting_models()))}) read no "
            f"numeric or categorical column of {self.session.dataset.name} (text-only models): "
            "partial dependence sweeps such a feature.")

    def cancel(self, kind: Optional[str] = None) -> None:
        """Stop the running computations (of one ``kind``, "rows" or "primary"); their
        results are dropped."""
        for key, slot in self._slots.items():
            if kind is None or key[0] == kind:
                slot.cancel()

    def _submit(self, key: tuple[str, str], job, title: str, on_result,
                interactive: bool = False) -> None:
        if key not in self._slots:
            self._slots[key] = JobSlot(self.runner, title, self)
        self._slots[key].submit(job, on_result, lambda failure: self._on_failed(key, failure),
                                interactive=interactive, title=title)

    def recompute(self) -> None:
        """Sweep the chosen feature for every model reading it, on the worker."""
        self.cancel()
        self.results, self.primary_results = {}, {}
        self._computed_rows = None
        self._draw()
        dataset = self.session.dataset
        feature = self.feature_choice.currentText()
        if dataset is None or not feature or not len(dataset):
            self.note.show()
            return
        models = self._models_reading(feature)
        self.note.setText(f"Sweeping {feature} for {', '.join(model.name for model in models)}…")
        self.note.setVisible(bool(models))  # until the first curve is drawn
        self._computed_rows = ice_rows(len(dataset), self.session.selection.rows)
        for model in models:
            self._submit(("rows", model.name),
                         partial_dependence_job(model, dataset, feature, self._computed_rows),
                         f"Partial dependence of {model.name} on {feature}", self._on_result)
        self._update_primary()

    def _on_result(self, result: PartialDependence) -> None:
        self.results[result.model] = result
        self.note.hide()
        self._draw()

    def _on_failed(self, key: tuple[str, str], failure: JobFailed) -> None:
        self.note.setText(f"Partial dependence of {key[1]} failed: {failure.error}")
        self.note.show()

    def _on_selection(self, _source: object) -> None:
        if not self.on_screen:
            self.request_refresh()  # recomputed when shown
            return
        if self._computed_rows is None:
            return
        wanted = ice_rows(len(self.session.dataset), self.session.selection.rows)
        if np.array_equal(wanted, self._computed_rows):
            self._update_primary()
        else:
            self.recompute()

    def _update_primary(self) -> None:
        """Curve the primary row: from the main results when it is among their rows, else
        computed for it alone (interactive priority)."""
        self.cancel("primary")
        self.primary_results = {}
        primary = self.session.selection.primary
        feature = self.feature_choice.currentText()
        if primary is not None and self._computed_rows is not None \
                and primary not in self._computed_rows:
            for model in self._models_reading(feature):
                self._submit(("primary", model.name),
                             partial_dependence_job(model, self.session.dataset, feature,
                                                    [primary]),
                             f"Partial dependence of row {primary}", self._on_primary_result,
                             interactive=True)
        self._draw_primary()

    def _on_primary_result(self, result: PartialDependence) -> None:
        self.primary_results[result.model] = result
        self._draw_primary()

    # -- drawing -------------------------------------------------------------------------------

    def _grid_x(self, result: PartialDependence) -> np.ndarray:
        return np.arange(len(result.grid), dtype=np.float64) if result.categorical \
            else result.grid.astype(np.float64)

    def _draw(self) -> None:
        self.plot.clear()  # also empties the legend
        self.primary_curves = {}
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks(None)
        for index, (model, result) in enumerate(sorted(self.results.items())):
            colour = category_color(index)
            grid_x = self._grid_x(result)
            faint = pg.mkColor(colour)
            faint.setAlpha(ICE_ALPHA)
            x, y = _joined_curves(grid_x, result.curves)
            self.plot.plot(x, y, pen=pg.mkPen(faint, width=1), connect="finite")
            self.plot.plot(grid_x, result.mean, pen=pg.mkPen(colour, width=4),
                           symbol="o" if result.categorical else None, symbolBrush=colour,
                           name=f"{model}: mean {result.score.name}")
            primary = pg.PlotDataItem(pen=pg.mkPen(colour.darker(180), width=2.5))
            primary.setZValue(20)
            self.plot.addItem(primary)
            self.primary_curves[model] = primary
            if result.categorical:
                bottom.setTicks([[(i, str(v)) for i, v in enumerate(result.grid)]])
        if self.results:
            self.plot.setLabel("bottom", self.feature_choice.currentText())
            self.plot.setLabel("left", "score")
        self._draw_primary()

    def primary_curve(self, model: str) -> Optional[np.ndarray]:
        """The primary row's curve for ``model``, once computed."""
        primary = self.session.selection.primary
        for result in (self.results.get(model), self.primary_results.get(model)):
            if result is not None and primary is not None:
                hits = np.flatnonzero(result.rows == primary)
                if len(hits):
                    return result.curves[hits[0]]
        return None

    def _draw_primary(self) -> None:
        for model, item in self.primary_curves.items():
            curve = self.primary_curve(model)
            if curve is None:
                item.setData([], [])
            else:
                item.setData(self._grid_x(self.results[model]), curve)
