"""The Salience dock: why each model predicted what it did for the primary datapoint.

One row per (model, method): a token heatmap for text (signed or unsigned colour map, the
score of each token on hover, sub-word pieces merged into words on request), the image with
its attribution map laid over it for image models (the score of each pixel on hover), or a bar
chart of feature attributions for tabular models. Integrated gradients shows its completeness error.
With a pinned reference row, its explanations stand beside the primary row's.
"""

from __future__ import annotations

import html
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Optional, Union

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QVBoxLayout, QWidget)

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.explain import (METHODS, Attribution, explain_job, methods_for,
                                  readable_attribution)
from litdesk.core.session import Session
from litdesk.core.settings import Settings
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import NEGATIVE
from litdesk.ui.widgets.flow_layout import FlowLayout
from litdesk.ui.widgets.primary_row import PrimaryRowView
from litdesk.ui.widgets.salience_charts import ColorBar, FeatureBars, ImageOverlay, TokenHeatmap

#: Methods in the order a model runs them: the quick ones first, so a heatmap shows early.
FAST_FIRST = ("model_salience", "grad_l2", "grad_dot_input", "occlusion", "integrated_gradients",
              "kernel_shap", "lime")
#: Integrated gradients' completeness error above this is shown in red.
COMPLETENESS_TOLERANCE = 0.01
#: The setting that keeps each model's chosen methods: {model name: [method, …]}.
METHODS_SETTING = "docks/salience/methods"
COMPUTING = "computing…"
#: The width of the method names' column, the same in every model's section.
METHOD_COLUMN_WIDTH = 140


def default_methods(applicable: Sequence[str]) -> list[str]:
    """What a model explains with until the user picks: gradient L2 and integrated gradients
    where it has gradients, else the attribution it outputs itself (exact for a linear model,
    and it needs no torch), KernelSHAP for tabular models, LIME for other text models."""
    gradient = [method for method in ("grad_l2", "integrated_gradients") if method in applicable]
    if gradient:
        return gradient
    for method in ("model_salience", "kernel_shap", "lime"):
        if method in applicable:
            return [method]
    return list(applicable[:1])


def attribution_view(attribution: Attribution, words: bool) -> QWidget:
    """The chart of one attribution with its legend and, for integrated gradients, its
    completeness error."""
    attribution = readable_attribution(attribution, words)
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    chart: Union[ImageOverlay, FeatureBars, TokenHeatmap]
    if attribution.kind == "image":
        chart = ImageOverlay(attribution.image, attribution.scores, attribution.signed,
                             attribution.region)
    elif attribution.kind == "features":
        chart = FeatureBars(attribution.features, attribution.scores, attribution.signed)
    else:
        chart = TokenHeatmap(attribution.features, attribution.scores, attribution.signed,
                             word_starts=attribution.word_starts)
    layout.addWidget(chart)
    footer = QHBoxLayout()
    footer.addWidget(ColorBar(chart.maximum, attribution.signed))
    if attribution.completeness_error is not None:
        error = attribution.completeness_error
        note = QLabel("completeness error undefined: f(x) = f(baseline)" if math.isnan(error)
                      else f"completeness error {100 * error:.2g}%")
        note.setObjectName("completeness")
        note.setToolTip("|sum of attributions − (f(x) − f(baseline))| / |f(x) − f(baseline)|")
        if not error <= COMPLETENESS_TOLERANCE:
            note.setStyleSheet(f"color: {NEGATIVE.name()}")
        footer.addWidget(note)
    footer.addStretch(1)
    layout.addLayout(footer)
    layout.addStretch(1)  # a shorter chart than its neighbour's stays at the top
    return box


#: What a (model, method, row) cell holds: an attribution, or why it failed.
CellResult = Union[Attribution, str]


class SalienceDock(PrimaryRowView):
    """Explains the primary row (and the pinned reference beside it) with the chosen methods
    of every model: one method at a time per model, quick methods first, each shown as soon
    as it is known."""

    title = "Salience"
    idle_message = "Select a datapoint to see which parts of it drove each model."

    def __init__(self, session: Session, runner: JobRunner, cache: ResultCache | None = None,
                 parent=None) -> None:
        #: (model, method, row) -> the attribution shown, or the one-line failure.
        self.results: dict[tuple[str, str, int], CellResult] = {}
        #: The methods each model runs, and the class it explains (None: its prediction).
        self.chosen: dict[str, list[str]] = {}
        self.targets: dict[str, Optional[str]] = {}
        self.pinned: Optional[int] = None
        self._cells: dict[tuple[str, str, int], QVBoxLayout] = {}
        self._pickers: dict[str, QComboBox] = {}
        #: Each model's section, with what it was built for (see :meth:`_build`).
        self._sections: dict[str, _Section] = {}
        self.settings: Optional[Settings] = None  # where the chosen methods are kept
        super().__init__(session, runner, cache, parent)
        self.method_boxes: dict[str, QCheckBox] = {}
        bar = FlowLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Methods:"))
        for method, info in METHODS.items():
            box = QCheckBox(info.label)
            box.setObjectName(f"method:{method}")
            box.setVisible(False)
            box.clicked.connect(lambda _checked, method=method: self.toggle_method(method))
            self.method_boxes[method] = box
            bar.addWidget(box)
        self.words = QCheckBox("Words")
        self.words.setToolTip("Merge sub-word tokens into words (their scores summed)")
        self.words.toggled.connect(lambda _on: self._build())
        bar.addWidget(self.words)
        self.layout().insertLayout(1, bar)
        session.selection_changed.connect(self._on_pin)

    def remember_methods(self, settings: Settings) -> None:
        """Keep each model's chosen methods in ``settings``: they come back on the next launch
        (for a model of the same name)."""
        self.settings = settings
        self._update_method_boxes()

    def _saved_methods(self) -> dict:
        saved = self.settings.get(METHODS_SETTING, {}) if self.settings is not None else {}
        return saved if isinstance(saved, dict) else {}

    # -- what runs ----------------------------------------------------------------------

    def rows(self) -> list[int]:
        """The rows explained: the primary row, then the pinned reference if it differs."""
        if self.row is None:
            return []
        return [self.row] + ([self.pinned] if self.pinned not in (None, self.row) else [])

    def toggle_method(self, method: str) -> None:
        """Run ``method`` for every model it applies to, or, if all of them run it, stop."""
        applicable = [name for name, model in self.session.fitting_models().items()
                      if method in methods_for(model)]
        running = all(method in self.chosen.get(name, ()) for name in applicable)
        for name in applicable:
            chosen = [m for m in self.chosen.get(name, []) if m != method]
            self.chosen[name] = chosen if running else chosen + [method]
        if self.settings is not None:
            try:
                self.settings.set(METHODS_SETTING, {**self._saved_methods(), **{
                    name: self.chosen[name] for name in applicable}})
            except OSError:
                pass  # kept for this session
        self._rerun()

    def set_target(self, model_name: str, target: Optional[str]) -> None:
        """Explain ``target`` (a class label) for one model; None explains its prediction."""
        if self.targets.get(model_name) == target:
            return
        self.targets[model_name] = target
        self.results = {key: value for key, value in self.results.items()
                        if key[0] != model_name}
        self._rerun()

    def _rerun(self) -> None:
        if self.row is None:
            self._update_method_boxes()
        else:
            self.request_refresh()

    def _on_pin(self, _source: object) -> None:
        pinned = self.session.selection.pinned
        if self.row is not None and self.row == self.session.selection.primary \
                and pinned != self.pinned:
            self._rerun()

    def job_for(self, name: str, model: Model, dataset: Dataset, row: int
                ) -> Optional[Generator]:
        """The quickest chosen method that a shown row still lacks; the next one starts when
        its result is shown."""
        rows = self.rows()
        for method in sorted(self.chosen.get(name, ()), key=_speed_rank):
            missing = [r for r in rows if (name, method, r) not in self.results]
            if missing:
                return self._explain(model, dataset, method, missing, self.targets.get(name))
        return None

    def _explain(self, model: Model, dataset: Dataset, method: str, rows: list[int],
                 target: Optional[str]) -> Generator:
        # A failing method is shown in its own line; the model's other methods still run.
        try:
            outcome = yield from explain_job(model, dataset, rows, method, target=target,
                                             cache=self.cache)
        except Exception as error:  # noqa: BLE001
            outcome = error
        return method, rows, outcome

    def show_result(self, name: str, row: int, result: tuple[str, list[int], object]) -> None:
        method, rows, outcome = result
        if isinstance(outcome, BaseException):
            line = f"failed: {type(outcome).__name__}: {outcome}".splitlines()[0]
            outcomes: list[CellResult] = [line] * len(rows)
        else:
            outcomes = list(outcome)  # type: ignore[call-overload]
        for explained, cell_result in zip(rows, outcomes):
            self.results[(name, method, explained)] = cell_result
            self._fill_cell((name, method, explained))
        model, dataset = self.session.models.get(name), self.session.dataset
        work = self.job_for(name, model, dataset, row) if model and dataset else None
        if work is not None:
            self.submit(name, work, lambda later: self.show_result(name, row, later))

    # -- the skeleton's hooks -----------------------------------------------------------

    def start_row(self, row: int) -> None:
        self.pinned = self.session.selection.pinned
        rows = self.rows()
        self._update_method_boxes()
        self.results = {key: value for key, value in self.results.items()
                        if key[2] in rows and key[0] in self.session.models
                        and key[1] in self.chosen[key[0]]}
        self._build()

    def clear_view(self) -> None:
        self.results.clear()
        self.pinned = None
        self._update_method_boxes()  # the models may have changed: the refresh asked for it
        self._build()

    def header_note(self) -> str:
        return ("Blue: pushes towards the class explained; red: against it; purple: "
                "influence without a sign. Hover a token or an image for its score.")

    # -- the view -----------------------------------------------------------------------

    def _update_method_boxes(self) -> None:
        """New models get their default methods; each box shows whether its method runs for
        all (checked), some (partly) or none of the models it applies to."""
        saved = self._saved_methods()
        for name, model in self.session.models.items():
            if name not in self.chosen:
                applicable = methods_for(model)
                kept = [method for method in saved.get(name, ()) if method in applicable]
                self.chosen[name] = kept if name in saved else default_methods(applicable)
        offered = {name: methods_for(model)
                   for name, model in self.session.fitting_models().items()}
        for method, box in self.method_boxes.items():
            applicable = [name for name, methods in offered.items() if method in methods]
            running = sum(method in self.chosen.get(name, ()) for name in applicable)
            box.setVisible(bool(applicable))
            box.setCheckState(Qt.CheckState.Unchecked if running == 0 else
                              Qt.CheckState.Checked if running == len(applicable) else
                              Qt.CheckState.PartiallyChecked)

    def _build(self) -> None:
        """One section per model with chosen methods. A section whose model, methods, number
        of rows, target and word view are unchanged is kept: a model added to the session
        adds its own section only, and another row only refills the cells."""
        rows, words = self.rows(), self.words.isChecked()
        wanted: dict[str, tuple] = {}
        if rows:
            for name, model in self.session.fitting_models().items():
                methods = tuple(method for method in METHODS
                                if method in self.chosen.get(name, ()))
                if methods:
                    wanted[name] = (model, methods, len(rows), self.targets.get(name), words)
        for name in [name for name, section in self._sections.items()
                     if wanted.get(name) != section.shape]:
            self._cells = {key: cell for key, cell in self._cells.items() if key[0] != name}
            self._pickers.pop(name, None)
            _delete(self._sections.pop(name).frame)
        for position, (name, shape) in enumerate(wanted.items()):
            section = self._sections.get(name)
            refill = section is None or section.rows != tuple(rows)
            if section is None:
                section = self._sections[name] = self._model_section(name, shape, rows)
            elif refill:
                self._move_to_rows(name, section, rows)
            if refill:
                for key in [key for key in self._cells if key[0] == name]:
                    self._fill_cell(key)
            if self.content_layout.indexOf(section.frame) != position:
                self.content_layout.removeWidget(section.frame)
                self.content_layout.insertWidget(position, section.frame)

    def _move_to_rows(self, name: str, section: _Section, rows: list[int]) -> None:
        """Point the cells of ``name``'s section at ``rows`` (as many as it shows now)."""
        new_row = dict(zip(section.rows, rows))
        self._cells = {(model, method, new_row[row] if model == name else row): cell
                       for (model, method, row), cell in self._cells.items()}
        section.rows = tuple(rows)
        for label, row, role in zip(section.row_labels, rows, ROW_ROLES):
            label.setText(_row_heading(row, role))
        picker = self._pickers.get(name)
        if picker is not None:
            picker.setItemText(0, PREDICTED_CLASS)  # until the new row's is known

    def _model_section(self, name: str, shape: tuple, rows: list[int]) -> _Section:
        model, methods = shape[0], shape[1]
        section = QFrame()
        section.setObjectName(f"salience:{name}")
        grid = QGridLayout(section)
        grid.setContentsMargins(0, 6, 0, 6)
        grid.setHorizontalSpacing(12)
        title = QHBoxLayout()
        title.addWidget(QLabel(f"<b>{html.escape(name)}</b>"))
        vocab = next((field_type.vocab for field_type in model.output_spec().values()
                      if isinstance(field_type, types.MulticlassPreds) and field_type.vocab), ())
        if vocab:
            title.addSpacing(12)
            title.addWidget(QLabel("explaining"))
            picker = QComboBox()
            picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            picker.setObjectName(f"target:{name}")
            picker.addItem(PREDICTED_CLASS, None)
            for label in vocab:
                picker.addItem(label, label)
            picker.setCurrentIndex(max(0, picker.findData(self.targets.get(name))))
            picker.currentIndexChanged.connect(
                lambda _index, name=name, picker=picker: self.set_target(name, picker.currentData()))
            title.addWidget(picker)
            self._pickers[name] = picker
        title.addStretch(1)
        grid.addLayout(title, 0, 0, 1, 1 + len(rows))
        row_labels = []
        if len(rows) > 1:
            for column, (row, role) in enumerate(zip(rows, ROW_ROLES), 1):
                row_labels.append(QLabel(_row_heading(row, role)))
                grid.addWidget(row_labels[-1], 1, column)
        for line, method in enumerate(methods, 2):
            label = QLabel(METHODS[method].label)
            grid.addWidget(label, line, 0, Qt.AlignmentFlag.AlignTop)
            for column, row in enumerate(rows, 1):
                cell = QVBoxLayout()
                cell.setContentsMargins(0, 0, 0, 0)
                grid.addLayout(cell, line, column)
                self._cells[(name, method, row)] = cell
        grid.setColumnMinimumWidth(0, METHOD_COLUMN_WIDTH)
        for column in range(1, 1 + len(rows)):
            grid.setColumnStretch(column, 1)
        return _Section(shape, section, tuple(rows), row_labels)

    def _fill_cell(self, key: tuple[str, str, int]) -> None:
        cell = self._cells.get(key)
        if cell is None:
            return
        _empty(cell)
        result = self.results.get(key)
        if isinstance(result, Attribution):
            view = attribution_view(result, self.words.isChecked())
        else:
            view = QLabel(COMPUTING if result is None else result)
            view.setWordWrap(True)
            if result is not None:
                view.setStyleSheet(f"color: {NEGATIVE.name()}")
        view.setObjectName(f"cell:{key[0]}:{key[1]}:{key[2]}")
        cell.addWidget(view)
        picker = self._pickers.get(key[0])
        if picker is not None and isinstance(result, Attribution) and key[2] == self.row:
            picker.setItemText(0, f"{PREDICTED_CLASS} ({result.target})"
                               if self.targets.get(key[0]) is None else PREDICTED_CLASS)

    def cell(self, model_name: str, method: str, row: int) -> Optional[QWidget]:
        """The widget shown for one (model, method, row), or None if there is none."""
        cell = self._cells.get((model_name, method, row))
        return cell.itemAt(0).widget() if cell is not None and cell.count() else None


@dataclass
class _Section:
    """A model's part of the view: what it was built for, its frame, the rows its cells show
    and the headings above their columns (when two rows are shown)."""

    shape: tuple
    frame: QFrame
    rows: tuple[int, ...]
    row_labels: list[QLabel]


#: The rows shown, in their columns' order.
ROW_ROLES = ("primary", "pinned reference")
#: The target picker's first choice: explain the class the model predicts.
PREDICTED_CLASS = "the predicted class"


def _row_heading(row: int, role: str) -> str:
    return f"<i>Row {row} ({role})</i>"


def _empty(layout: QVBoxLayout) -> None:
    """Remove and delete the widgets of ``layout`` (at once out of the widget tree)."""
    while layout.count():
        widget = layout.takeAt(0).widget()
        if widget is not None:
            _delete(widget)


def _delete(widget: QWidget) -> None:
    """Take ``widget`` out of the widget tree at once and delete it."""
    # Hidden first: a widget just added to a layout has a show queued, which would otherwise
    # open it as a window of its own once it has no parent.
    widget.hide()
    widget.setParent(None)
    widget.deleteLater()


def _speed_rank(method: str) -> int:
    return FAST_FIRST.index(method) if method in FAST_FIRST else len(FAST_FIRST)
