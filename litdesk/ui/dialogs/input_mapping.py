"""Models ▸ Inputs…: which dataset column each input field of a model reads.

A model's input binds by name, else to the only column of its type; when several columns would
do (two text columns), or the user wants another one, this dialog maps each field to a column.
The choice is remembered per model and dataset (the workbench saves it in the settings) and
the model's predictions are made again with it.
"""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QScrollArea, QVBoxLayout, QWidget)

from litdesk.core.predict import (CHOOSE_INPUTS, SpecMismatchError, bind_inputs, bind_with,
                                  input_candidates, input_mapping, mapping_problem)
from litdesk.core.workbench import Workbench

#: The entry of a field left to the automatic rule (same name, else the only column of its type).
AUTOMATIC = "(automatic)"


class InputMappingDialog(QDialog):
    """Choose, for one model at a time, the column of the active dataset each input reads.

    ``model`` picks the model shown first (default: the first that does not fit, else the
    first). OK hands the mapping to :meth:`Workbench.set_input_mapping`.
    """

    def __init__(self, workbench: Workbench, model: Optional[str] = None, parent=None) -> None:
        super().__init__(parent)
        self.workbench = workbench
        self.session = workbench.session
        dataset = self.session.dataset
        self.setWindowTitle(f"Model inputs on {dataset.name}" if dataset else "Model inputs")
        self.model_choice = QComboBox()
        self.model_choice.setObjectName("model")
        names = list(self.session.models)
        self.model_choice.addItems(names)
        if model is None:
            model = next((name for name in names if self.session.model_problem(name)),
                         names[0] if names else None)
        if model in names:
            self.model_choice.setCurrentIndex(names.index(model))
        #: Input field -> its column chooser, for the model shown.
        self.choosers: dict[str, QComboBox] = {}
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form_host)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow("Model:", self.model_choice)
        layout.addLayout(top)
        intro = QLabel("Each input field of the model reads the column chosen here. "
                       "Only columns of the field's type are offered.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.model_choice.currentTextChanged.connect(lambda _name: self._fill())
        self.resize(520, 380)
        self._fill()

    @property
    def model_name(self) -> str:
        """The model shown."""
        return self.model_choice.currentText()

    def _fill(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.choosers.clear()
        model, dataset = self.session.models.get(self.model_name), self.session.dataset
        if model is None or dataset is None:
            self._check()
            return
        try:
            current = bind_inputs(model, dataset)
        except SpecMismatchError:
            current = {}
        current.update({field: column for field, column in
                        input_mapping(model, dataset.name).items() if field not in current})
        spec = model.input_spec()
        for field, columns in input_candidates(model, dataset).items():
            chooser = QComboBox()
            chooser.setObjectName(f"input:{field}")
            chooser.addItem(AUTOMATIC, None)
            for column in columns:
                chooser.addItem(column, column)
            chosen = chooser.findData(current.get(field))
            chooser.setCurrentIndex(max(0, chosen))
            chooser.currentIndexChanged.connect(lambda _index: self._check())
            optional = "" if spec[field].required else ", optional"
            self.form.addRow(f"{field} ({spec[field].type_name}{optional}):", chooser)
            self.choosers[field] = chooser
        self._check()

    def mapping(self) -> dict[str, str]:
        """Field -> column, for the fields given a column."""
        return {field: chooser.currentData() for field, chooser in self.choosers.items()
                if chooser.currentData() is not None}

    def _check(self) -> None:
        model, dataset = self.session.models.get(self.model_name), self.session.dataset
        problem = None if model is None or dataset is None else \
            mapping_problem(model, dataset, self.mapping())
        if problem:
            problem = problem.replace(CHOOSE_INPUTS, "choose one above")
        self.problem.setText(f"<span style='color:#c0392b'>{html.escape(problem)}</span>"
                             if problem else "The model can read these columns.")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            model is not None and problem is None)

    def accept(self) -> None:
        """Use the mapping (if it changed) and close."""
        model, dataset = self.session.models.get(self.model_name), self.session.dataset
        if model is not None and dataset is not None:
            mapping = self.mapping()
            before = None if self.session.model_problem(self.model_name) else \
                bind_inputs(model, dataset)
            if bind_with(model, dataset, mapping) != before:  # else nothing to predict again
                self.workbench.set_input_mapping(self.model_name, mapping)
        super().accept()
