"""The Generators dock: counterfactual generators run on the selection or the whole dataset, and
a review list of their candidates (edit, tick, accept) before they become datapoints.

The dock never changes the dataset: accepting emits :attr:`GeneratorsDock.accepted` with the
new datapoints, and the window adds, journals and predicts them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox,
                               QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QRadioButton, QScrollArea,
                               QSizePolicy, QSpinBox, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from litdesk.core.datapoints import NewDatapoint, own_columns, uninherited_columns
from litdesk.core.generators import GENERATORS, Candidate, Param, applicable, generate_job
from litdesk.core.jobs import Progress
from litdesk.core.session import Session
from litdesk.ui.jobs import JobFailed, JobRunner
from litdesk.ui.palette import NEGATIVE

RUN_TEXT, CANCEL_TEXT = "Run", "Cancel"
#: The review list's fixed columns; a column per changed field follows them.
FIXED_COLUMNS = ("row", "origin")
EDITED_ROLE = Qt.ItemDataRole.UserRole  # the text an edit of a changed value committed
INT_LIMIT = 1_000_000_000
#: Starts the title of every generator job (the dock shows their failures itself).
TITLE_PREFIX = "Generate: "


def _param_widget(param: Param) -> QWidget:
    """The form widget for ``param``: a dropdown for choices, else by the default's type."""
    default = param.default
    minimum = getattr(param, "minimum", None)
    if param.choices:
        widget = QComboBox()
        for choice in param.choices:
            widget.addItem(str(choice), choice)
        widget.setCurrentIndex(max(0, widget.findData(default)))
    elif isinstance(default, bool):
        widget = QCheckBox()
        widget.setChecked(default)
    elif isinstance(default, int):
        widget = QSpinBox(minimum=-INT_LIMIT if minimum is None else math.ceil(minimum),
                          maximum=INT_LIMIT)
        widget.setValue(default)
    elif isinstance(default, float):
        widget = QDoubleSpinBox(minimum=-1e9 if minimum is None else minimum, maximum=1e9)
        widget.setDecimals(max(2, min(8, _decimals(default))))
        widget.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        widget.setValue(default)
    else:
        widget = QLineEdit("" if default is None else str(default))
        widget.setClearButtonEnabled(True)
    widget.setToolTip(param.help)
    return widget


def _decimals(value: float) -> int:
    text = repr(float(value))
    if "e-" in text:
        mantissa, exponent = text.split("e-")
        return int(exponent) + len(mantissa.partition(".")[2].rstrip("0"))
    return len(text.partition(".")[2].rstrip("0"))


def _param_value(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    return widget.text()


def _format(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)


def _parsed_like(text: str, example: Any) -> Any:
    """``text`` as a value of ``example``'s type (raises ValueError when it is not one)."""
    if isinstance(example, bool):
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{text!r} is not true or false")
        return lowered in ("true", "1", "yes")
    if isinstance(example, (int, np.integer)):
        return int(text)
    if isinstance(example, (float, np.floating)):
        return float(text)
    return text


class _ChangeItem(QTableWidgetItem):
    """A changed field of a candidate: shown as ``old → new``, edited as the new value.

    What the editor commits is kept under EDITED_ROLE (which makes the table emit
    itemChanged); the dock parses it and stores the value in ``new``, or refuses it."""

    def __init__(self, old: Any, new: Any) -> None:
        super().__init__()
        self.old, self.new = old, new
        self.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsEditable)
        self.set_new(new)

    def set_new(self, new: Any) -> None:
        self.new = new
        self.setToolTip(f"{_format(self.old)}\n→\n{_format(new)}")

    def data(self, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{_format(self.old)} → {_format(self.new)}"
        if role == Qt.ItemDataRole.EditRole:
            return "" if self.new is None else str(self.new)
        return super().data(role)

    def setData(self, role: int, value: Any) -> None:  # noqa: N802 (Qt's name)
        super().setData(EDITED_ROLE if role == Qt.ItemDataRole.EditRole else role, value)


class GeneratorsDock(QWidget):
    """Pick a generator, fill its form, run it in the background on the selection or the whole
    dataset; review the candidates (edit a changed value in place, untick the unwanted) and
    accept them, which emits :attr:`accepted`."""

    #: The accepted candidates as :class:`NewDatapoint` objects (the window adds them).
    accepted = Signal(list)
    #: A run ended: ``"done"``, ``"failed"`` or ``"cancelled"``.
    run_finished = Signal(str)

    def __init__(self, session: Session, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        #: The candidates in the review list, in its order (edits included).
        self.candidates: list[Candidate] = []
        self._fields: list[str] = []  # the changed fields, one column each
        self._worker = None
        self._generation = 0
        self._parents: dict[int, dict[str, Any]] = {}  # parent rows' values, by row
        self._reason: Optional[str] = None  # why the generator cannot run, as last checked

        self.generator_choice = QComboBox()
        for name, info in GENERATORS.items():
            self.generator_choice.addItem(info.label, name)
        self.generator_choice.setToolTip("The counterfactual generator to run")
        self.model_label = QLabel("Model:")
        self.model_choice = QComboBox()
        self.model_choice.setToolTip("The model this generator asks for predictions or gradients")

        #: Each generator's form widgets, by generator and parameter name (kept when switching).
        self.param_widgets: dict[str, dict[str, QWidget]] = {}
        self.forms = QStackedWidget()
        for name, info in GENERATORS.items():
            page = QWidget()
            form = QFormLayout(page)
            form.setContentsMargins(0, 0, 0, 0)
            widgets = {}
            for param in info.params:
                widget = widgets[param.name] = _param_widget(param)
                label = QLabel(param.label + ":")
                label.setToolTip(param.help)
                label.setBuddy(widget)
                form.addRow(label, widget)
            self.param_widgets[name] = widgets
            self.forms.addWidget(page)

        self.scope_selection = QRadioButton()
        self.scope_selection.setToolTip("Make candidates from the selected rows")
        self.scope_dataset = QRadioButton()
        self.scope_dataset.setToolTip("Make candidates from every row of the dataset")
        scope_group = QButtonGroup(self)
        scope_group.addButton(self.scope_selection)
        scope_group.addButton(self.scope_dataset)
        self.scope_dataset.setChecked(True)

        self.run_action = QAction(RUN_TEXT, self, shortcut=QKeySequence("Ctrl+Return"),
                                  shortcutContext=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.run_action.triggered.connect(self.run_or_cancel)
        self.addAction(self.run_action)
        self.run_button = QPushButton(RUN_TEXT)
        self.run_button.setToolTip("Run the generator (Ctrl+Return); while it runs, cancel it")
        self.run_button.clicked.connect(self.run_or_cancel)
        self.progress_label = QLabel()
        self.progress_label.setStyleSheet("color:#666")
        #: Why the generator cannot run here (Run is disabled while it shows).
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        #: Bad parameters, failed runs and refused edits, in red.
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {NEGATIVE.name()}")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.review = QTableWidget()
        self.review.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                    | QAbstractItemView.EditTrigger.EditKeyPressed
                                    | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.review.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.review.setWordWrap(False)
        self.review.verticalHeader().hide()
        self.review.setToolTip("Double-click a changed value to edit it; untick the candidates "
                               "you do not want")
        self.review.itemChanged.connect(self._on_item_changed)
        self.accept_checked_button = QPushButton("Accept checked")
        self.accept_checked_button.setToolTip("Add the ticked candidates to the dataset")
        self.accept_checked_button.clicked.connect(self.accept_checked)
        self.accept_all_button = QPushButton("Accept all")
        self.accept_all_button.setToolTip("Add every candidate in the list to the dataset")
        self.accept_all_button.clicked.connect(self.accept_all)
        self.keep_gold = QCheckBox("Keep the parents' labels and split")
        self.keep_gold.setToolTip("Off: the accepted datapoints have no gold label and no split "
                                  "until you set them (a changed input may need another label, "
                                  "and a copied split would silently join the test set)")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Forget the candidates in the list")
        self.discard_button.clicked.connect(self.discard)

        picker = QHBoxLayout()
        picker.addWidget(QLabel("Generator:"))
        picker.addWidget(self.generator_choice, 1)
        picker.addWidget(self.model_label)
        picker.addWidget(self.model_choice, 1)
        scope = QHBoxLayout()
        scope.addWidget(QLabel("Run on:"))
        scope.addWidget(self.scope_selection)
        scope.addWidget(self.scope_dataset)
        scope.addStretch(1)
        run_bar = QHBoxLayout()
        run_bar.addWidget(self.run_button)
        run_bar.addWidget(self.progress_label, 1)
        review_bar = QHBoxLayout()
        review_bar.addWidget(self.accept_checked_button)
        review_bar.addWidget(self.accept_all_button)
        review_bar.addWidget(self.discard_button)
        review_bar.addStretch(1)
        review_bar.addWidget(self.keep_gold)
        content = QWidget()
        scroll = QScrollArea()  # in a short window the dock scrolls instead of growing it
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(picker)
        layout.addWidget(self.forms)
        layout.addLayout(scope)
        layout.addLayout(run_bar)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.review, 1)
        layout.addLayout(review_bar)

        self.generator_choice.currentIndexChanged.connect(self._on_generator_changed)
        self.model_choice.currentIndexChanged.connect(lambda _index: self._check_applicable())
        session.dataset_changed.connect(self._on_dataset_changed)
        session.models_changed.connect(self._fill_models)
        session.spec_changed.connect(self._check_applicable)
        session.selection_changed.connect(lambda _source: self._update_scope())
        session.rows_added.connect(lambda _rows: self._update_scope())
        self._update_scope()
        self._fill_models()
        self._on_generator_changed()
        self._show_candidates([])

    # -- the form ------------------------------------------------------------------------

    def generator(self) -> str:
        """The chosen generator's name (a key of GENERATORS)."""
        return self.generator_choice.currentData()

    def param_widget(self, name: str) -> QWidget:
        """The chosen generator's form widget for parameter ``name``."""
        return self.param_widgets[self.generator()][name]

    def params(self) -> dict[str, Any]:
        """The chosen generator's parameters as the form holds them."""
        return {name: _param_value(widget)
                for name, widget in self.param_widgets[self.generator()].items()}

    def model_name(self) -> Optional[str]:
        """The model the generator will use, or None when it needs none (or none is loaded)."""
        if not GENERATORS[self.generator()].needs_model:
            return None
        return self.model_choice.currentData()

    def _on_generator_changed(self) -> None:
        index = self.generator_choice.currentIndex()
        for page in range(self.forms.count()):  # the stack takes the height of the shown form
            policy = QSizePolicy.Policy.Preferred if page == index else QSizePolicy.Policy.Ignored
            self.forms.widget(page).setSizePolicy(policy, policy)
        self.forms.setCurrentIndex(index)
        needs_model = GENERATORS[self.generator()].needs_model
        self.model_label.setVisible(needs_model)
        self.model_choice.setVisible(needs_model)
        self._show_error("")
        self._check_applicable()

    def _fill_models(self) -> None:
        current = self.model_choice.currentData()
        self.model_choice.blockSignals(True)
        self.model_choice.clear()
        for name in self.session.models:
            self.model_choice.addItem(name, name)
        self.model_choice.setCurrentIndex(max(0, self.model_choice.findData(current)))
        self.model_choice.blockSignals(False)
        self._check_applicable()

    def reason(self) -> Optional[str]:
        """Why the chosen generator cannot run now, or None when it can."""
        dataset = self.session.dataset
        if dataset is None:
            return "Open a dataset first."
        name = self.model_name()
        model = self.session.models.get(name) if name is not None else None
        return applicable(self.generator(), dataset, model)

    def _check_applicable(self) -> None:
        self._reason = self.reason()
        self.reason_label.setText(self._reason or "")
        self.reason_label.setVisible(self._reason is not None)
        self._update_run_button()

    def _update_scope(self) -> None:
        selected = int(self.session.selection.rows.size)
        dataset = self.session.dataset
        total = len(dataset) if dataset is not None else 0
        was_possible = self.scope_selection.isEnabled()
        self.scope_selection.setText(f"the selection ({selected:,} rows)")
        self.scope_dataset.setText(f"the whole dataset ({total:,} rows)")
        self.scope_selection.setEnabled(selected > 0)
        if selected == 0 and self.scope_selection.isChecked():
            self.scope_dataset.setChecked(True)
        elif selected > 0 and not was_possible:
            self.scope_selection.setChecked(True)  # one has just selected what to work on

    def _update_run_button(self) -> None:
        running = self._worker is not None
        text = CANCEL_TEXT if running else RUN_TEXT
        self.run_button.setText(text)
        self.run_action.setText(text)
        enabled = running or self._reason is None
        self.run_button.setEnabled(enabled)
        self.run_action.setEnabled(enabled)

    def rows(self) -> np.ndarray:
        """The rows a run starts from: the selection or every row."""
        if self.scope_selection.isChecked() and self.session.selection.rows.size:
            return np.asarray(self.session.selection.rows, dtype=np.int64)
        return np.arange(len(self.session.dataset), dtype=np.int64)

    # -- running -------------------------------------------------------------------------

    def running(self) -> bool:
        """Whether a run is under way."""
        return self._worker is not None

    def run_or_cancel(self) -> None:
        """Cancel the run under way, or start one."""
        if self._worker is not None:
            self.cancel()
        else:
            self.run()

    def run(self) -> None:
        """Run the chosen generator with the form's parameters; its candidates replace the
        list. Bad parameters are shown in red and nothing runs."""
        if self._worker is not None or self.reason() is not None:
            return
        dataset = self.session.dataset
        name, info = self.generator(), GENERATORS[self.generator()]
        model_name = self.model_name()
        model = self.session.models.get(model_name) if model_name is not None else None
        rows = self.rows().tolist()
        self._show_error("")
        self._show_candidates([])
        try:
            job = generate_job(name, dataset, rows, self.params(), model)
        except ValueError as error:
            self._fail(str(error))
            return
        self._generation += 1
        generation = self._generation
        what = f"{info.label} on {len(rows):,} rows"
        worker = self.runner.submit(
            job, TITLE_PREFIX + what, lambda result: self._on_result(result, generation),
            lambda failure: self._on_failed(failure, generation), interactive=True,
            on_finished=lambda: self._on_run_finished(generation))
        worker.yielded.connect(lambda progress: self._on_progress(progress, generation))
        self._worker = worker
        self.progress_label.setText(f"{what}…")
        self._update_run_button()

    def cancel(self) -> None:
        """Stop the run under way; its candidates never reach the list."""
        if self._worker is None:
            return
        self.runner.cancel(self._worker)
        self._end_run("Cancelled.")
        self.run_finished.emit("cancelled")

    def _end_run(self, message: str) -> None:
        self._generation += 1  # whatever the old run still sends is dropped
        self._worker = None
        self.progress_label.setText(message)
        self._update_run_button()

    def _on_progress(self, progress: Any, generation: int) -> None:
        if generation != self._generation or not isinstance(progress, Progress):
            return
        counted = f"{progress.done:,}/{progress.total:,}" if progress.total > 0 else ""
        self.progress_label.setText(" ".join(part for part in (progress.message, counted) if part)
                                    or "Generating…")

    def _on_result(self, result: list[Candidate], generation: int) -> None:
        if generation != self._generation:
            return  # cancelled, or the dataset changed
        parents = {c.parent for c in result}
        self._end_run(f"{len(result):,} candidates from {len(parents):,} rows."
                      if result else "No candidates: nothing in these rows could be changed.")
        self._show_candidates(list(result))
        self.run_finished.emit("done")

    def _on_failed(self, failure: JobFailed, generation: int) -> None:
        if generation != self._generation:
            return
        error = failure.error
        self._end_run("")
        self._fail(str(error) if isinstance(error, ValueError)
                   else f"{failure.title} failed: {type(error).__name__}: {error}")

    def _fail(self, message: str) -> None:
        self._show_error(message)
        self.run_finished.emit("failed")

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _on_run_finished(self, generation: int) -> None:
        if generation == self._generation:  # it ended with neither a result nor an error
            self._end_run("Stopped.")
            self.run_finished.emit("cancelled")

    def _on_dataset_changed(self) -> None:
        if self._worker is not None:
            self.runner.cancel(self._worker)
            self._end_run("")
            self.run_finished.emit("cancelled")
        self._show_candidates([])  # they were made from rows of another dataset
        self._show_error("")
        self._update_scope()
        self._check_applicable()

    # -- the review list -----------------------------------------------------------------

    def _show_candidates(self, candidates: list[Candidate],
                         ticked: Optional[list[bool]] = None) -> None:
        """Fill the review list: a line per candidate (ticked unless ``ticked`` says not)."""
        self.candidates = candidates
        dataset = self.session.dataset
        self._parents = {}
        if dataset is not None and candidates:
            parents = sorted({c.parent for c in candidates if c.parent is not None})
            picked = dataset.table.take(np.asarray(parents, dtype=np.int64)).to_pylist()
            self._parents = dict(zip(parents, picked))
        fields: list[str] = []
        for candidate in candidates:
            fields += [field for field in self._changed(candidate) if field not in fields]
        self._fields = fields
        table = self.review
        table.blockSignals(True)
        table.clear()
        table.setColumnCount(len(FIXED_COLUMNS) + len(fields))
        table.setHorizontalHeaderLabels([*FIXED_COLUMNS, *fields])
        table.setRowCount(len(candidates))
        fixed = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        for line, candidate in enumerate(candidates):
            first = QTableWidgetItem("" if candidate.parent is None else str(candidate.parent))
            first.setFlags(fixed | Qt.ItemFlag.ItemIsUserCheckable)
            first.setCheckState(Qt.CheckState.Checked if ticked is None or ticked[line]
                                else Qt.CheckState.Unchecked)
            first.setToolTip("The row it was made from; ticked candidates are added by "
                             "“Accept checked”")
            table.setItem(line, 0, first)
            origin = QTableWidgetItem(candidate.origin)
            origin.setFlags(fixed)
            origin.setToolTip(candidate.origin)
            table.setItem(line, 1, origin)
            old, changed = self._parents.get(candidate.parent, {}), self._changed(candidate)
            for column, field in enumerate(fields, start=len(FIXED_COLUMNS)):
                if field in changed:
                    item = _ChangeItem(old[field], candidate.values[field])
                else:
                    item = QTableWidgetItem("")
                    item.setFlags(fixed)
                table.setItem(line, column, item)
        header = table.horizontalHeader()
        for column in range(len(FIXED_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(bool(fields))
        table.blockSignals(False)
        self._update_review_buttons()

    def _changed(self, candidate: Candidate) -> list[str]:
        """The fields where ``candidate`` differs from its parent row."""
        old = self._parents.get(candidate.parent)
        if old is None:
            return []
        return [field for field, value in candidate.values.items()
                if field in old and not _same(old[field], value)]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            self._update_review_buttons()
        elif isinstance(item, _ChangeItem):
            self._on_edited(item, str(item.data(EDITED_ROLE)))

    def _on_edited(self, item: _ChangeItem, text: str) -> None:
        line = item.row()
        field = self._fields[item.column() - len(FIXED_COLUMNS)]
        try:
            value = _parsed_like(text, item.new if item.new is not None else item.old)
        except ValueError:
            self._show_error(f"{text!r} is not a valid value for {field}; "
                             f"it stays {_format(item.new)}.")
            return
        self._show_error("")
        item.set_new(value)
        candidate = self.candidates[line]
        self.candidates[line] = dataclasses.replace(
            candidate, values={**candidate.values, field: value})

    def checked_lines(self) -> list[int]:
        """The review list's ticked lines."""
        return [line for line in range(self.review.rowCount())
                if self.review.item(line, 0).checkState() == Qt.CheckState.Checked]

    def _update_review_buttons(self) -> None:
        has_any = bool(self.candidates)
        self.accept_checked_button.setEnabled(bool(self.checked_lines()))
        self.accept_all_button.setEnabled(has_any)
        self.discard_button.setEnabled(has_any)

    def accept_checked(self) -> None:
        """Emit the ticked candidates as datapoints and take them off the list."""
        self._accept(self.checked_lines())

    def accept_all(self) -> None:
        """Emit every candidate in the list as a datapoint and empty the list."""
        self._accept(list(range(len(self.candidates))))

    def discard(self) -> None:
        """Forget the candidates in the list."""
        self._show_candidates([])
        self.progress_label.clear()

    def _accept(self, lines: list[int]) -> None:
        dataset = self.session.dataset
        if not lines or dataset is None:
            return
        columns = own_columns(dataset)
        cleared = set() if self.keep_gold.isChecked() else \
            set(uninherited_columns(dataset, self.session.models))
        chosen = [self.candidates[line] for line in lines]
        points = [NewDatapoint.now({name: None if name in cleared else c.values.get(name)
                                    for name in columns},
                                   None if c.parent is None else int(c.parent), c.origin)
                  for c in chosen]
        checked, taken = set(self.checked_lines()), set(lines)
        kept = [line for line in range(len(self.candidates)) if line not in taken]
        self._show_candidates([self.candidates[line] for line in kept],
                              [line in checked for line in kept])
        self.progress_label.setText(f"Accepted {len(points):,} candidates.")
        self.accepted.emit(points)
