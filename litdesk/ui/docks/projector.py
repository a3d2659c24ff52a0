"""The Embedding Projector dock: a 2D PCA of a model's embeddings, coloured by a field."""

from __future__ import annotations

import html
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from litdesk.api import types
from litdesk.core.projection import pca_job
from litdesk.core.session import Session
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import OTHER_COLOR, category_color


class ProjectorDock(QWidget):
    """Scatter of projected embeddings; click selects, the selection is highlighted."""

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.coords: Optional[np.ndarray] = None
        self._projected_source: Optional[tuple[str, str]] = None
        self._worker = None

        self.source = QComboBox()
        self.source.setToolTip("Which embeddings to project")
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.color_by = QComboBox()
        self.color_by.setToolTip("Colour points by this field")
        self.color_by.currentIndexChanged.connect(self.recolor)
        self.message = QLabel("Load a model that outputs embeddings to see its projection.")

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(False)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, hoverable=False)
        self.scatter.sigClicked.connect(self._on_clicked)
        self.highlight = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k", width=1.5), brush=None)
        self.pinned_marker = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("k"),
                                                brush=pg.mkBrush("#ffd400"))
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.highlight)
        self.plot.addItem(self.pinned_marker)
        # The legend sits above the plot, so that it never hides (or swallows clicks on) points.
        self.legend = QLabel()
        self.legend.setObjectName("projectorLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Embeddings:"))
        controls.addWidget(self.source, 1)
        controls.addWidget(QLabel("Colour by:"))
        controls.addWidget(self.color_by, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)

        session.dataset_changed.connect(self._on_dataset_changed)
        session.spec_changed.connect(self._fill_color_fields)
        session.predictions_changed.connect(self._on_predictions_changed)
        session.selection_changed.connect(self._on_selection)

    # -- sources and projection ---------------------------------------------------------

    def _embedding_sources(self) -> list[tuple[str, str]]:
        return [(model, name) for model, predictions in self.session.predictions.items()
                for name, t in predictions.spec.items() if isinstance(t, types.Embeddings)]

    def _on_dataset_changed(self) -> None:
        self.coords = None
        self._projected_source = None
        self.scatter.clear()
        self.highlight.clear()
        self.pinned_marker.clear()
        self.legend.clear()
        self.source.clear()
        self.message.show()
        self._on_predictions_changed("")  # a dataset opened before may have predictions

    def _on_predictions_changed(self, _model: str) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        for model, name in self._embedding_sources():
            self.source.addItem(f"{model}: {name}", (model, name))
        index = self.source.findData(current) if current else 0
        self.source.setCurrentIndex(max(0, index))
        self.source.blockSignals(False)
        self._fill_color_fields()
        self._on_source_changed()

    def _on_source_changed(self) -> None:
        source = self.source.currentData()
        if source is None or source == self._projected_source:
            return
        model, name = source
        vectors = self.session.predictions[model].fields[name]
        if self._worker is not None:
            self.runner.cancel(self._worker)
        dataset_name = self.session.dataset.name
        self._worker = self.runner.submit(
            pca_job(vectors), f"PCA of {model}: {name}",
            lambda coords: self.set_coords(coords, source, dataset_name))

    def set_coords(self, coords: np.ndarray, source: tuple[str, str], dataset_name: str) -> None:
        """Show projected coordinates (ignored if the dataset changed meanwhile)."""
        self._worker = None
        dataset = self.session.dataset
        if dataset is None or dataset.name != dataset_name or len(coords) != len(dataset):
            return
        self.coords = coords
        self._projected_source = source
        self.message.hide()
        self.recolor()
        self.plot.autoRange()
        self._on_selection(None)

    # -- colour -------------------------------------------------------------------------

    def _fill_color_fields(self) -> None:
        current = self.color_by.currentData()
        self.color_by.blockSignals(True)
        self.color_by.clear()
        dataset = self.session.dataset
        if dataset is not None:
            for name, t in dataset.spec().items():
                if isinstance(t, (types.CategoryLabel, types.Boolean)):
                    self.color_by.addItem(name, ("column", name))
        for model in self.session.predictions:
            self.color_by.addItem(f"{model}: prediction", ("prediction", model))
        self.color_by.addItem("(none)", ("none", ""))
        index = self.color_by.findData(current) if current else -1
        self.color_by.setCurrentIndex(index if index >= 0 else 0)
        self.color_by.blockSignals(False)
        self.recolor()

    def category_values(self) -> tuple[np.ndarray, list[str]]:
        """Per row, the index of its colour category, and the category names."""
        n = len(self.session.dataset) if self.session.dataset else 0
        kind, name = self.color_by.currentData() or ("none", "")
        if kind == "column":
            column = self.session.dataset.table.column(name).cast("string").fill_null("(missing)")
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
            names, codes = np.unique(values, return_inverse=True)
            return codes, [str(v) for v in names]
        if kind == "prediction" and name in self.session.predictions:
            labelled = self.session.predictions[name].predicted_labels()
            if labelled is not None:
                return labelled[1], list(labelled[2])
        return np.zeros(n, dtype=np.int64), []

    def recolor(self) -> None:
        """Re-colour the points without moving them."""
        if self.coords is None:
            return
        codes, names = self.category_values()
        brushes = [pg.mkBrush(category_color(i) if names else OTHER_COLOR) for i in
                   range(max(1, len(names)))]
        for brush in brushes:
            color = brush.color()
            color.setAlpha(190)
            brush.setColor(color)
        self.scatter.setData(x=self.coords[:, 0], y=self.coords[:, 1],
                             brush=[brushes[c] for c in codes], data=np.arange(len(codes)))
        self.legend.setText("&nbsp;&nbsp;".join(
            f'<span style="color:{brushes[index].color().name()}">●</span>&nbsp;{html.escape(label)}'
            for index, label in enumerate(names)))

    # -- selection ----------------------------------------------------------------------

    def _on_clicked(self, _item, points, _event) -> None:
        if len(points):
            row = int(points[0].data())
            self.session.select([row], row, source=self)

    def _on_selection(self, _source: object) -> None:
        if self.coords is None:
            return
        rows = self.session.selection.rows
        self.highlight.setData(x=self.coords[rows, 0], y=self.coords[rows, 1])
        pinned = self.session.selection.pinned
        if pinned is None:
            self.pinned_marker.clear()
        else:
            self.pinned_marker.setData(x=self.coords[[pinned], 0], y=self.coords[[pinned], 1])
