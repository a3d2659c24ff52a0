"""The open models in the Models menu: Inputs…, Reload and Remove, and one entry per model,
greyed out with the reason when the model does not fit the active dataset (it is then simply
not run on it)."""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from litdesk.core.workbench import Workbench
from litdesk.ui.dialogs.input_mapping import InputMappingDialog


class ModelsSection:
    """Adds to ``menu`` what acts on the open models, and keeps it in step with the session."""

    def __init__(self, menu: QMenu, workbench: Workbench, window: QWidget) -> None:
        self.menu = menu
        self.workbench = workbench
        self.session = workbench.session
        self.window = window
        self.dialog: Optional[InputMappingDialog] = None  # open while the user maps inputs
        menu.setToolTipsVisible(True)
        menu.addSeparator()
        self.inputs_action = menu.addAction("&Inputs…", QKeySequence("Ctrl+Shift+I"),
                                            lambda: self.open_inputs())
        self.inputs_action.setStatusTip("Choose the dataset column each input of a model reads")
        self.reload_menu = menu.addMenu("&Reload Model")
        self.remove_menu = menu.addMenu("Remo&ve Model")
        self.models_header = menu.addSection("Open models")
        #: Model name -> its entry (disabled, with the reason, when it does not fit).
        self.model_actions: dict[str, QAction] = {}
        for signal in (self.session.models_changed, self.session.dataset_changed,
                       self.session.spec_changed):
            signal.connect(self.update)
        menu.aboutToShow.connect(self.update)
        self.update()

    def update(self) -> None:
        """Rebuild the model entries from the session."""
        for action in self.model_actions.values():
            self.menu.removeAction(action)
            action.deleteLater()
        self.model_actions.clear()
        self.reload_menu.clear()
        self.remove_menu.clear()
        dataset = self.session.dataset
        for name in self.session.models:
            problem = self.session.model_problem(name)
            action = QAction(name if problem is None else
                             f"{name} — not run on {dataset.name}", self.menu)
            action.setObjectName(f"model:{name}")
            if problem is None:
                action.setToolTip(f"Runs on {dataset.name}; choose its inputs"
                                  if dataset is not None else name)
                action.triggered.connect(lambda _checked=False, n=name: self.open_inputs(n))
            else:
                action.setEnabled(False)
                action.setToolTip(html.escape(problem))
                action.setStatusTip(problem)
            self.menu.addAction(action)
            self.model_actions[name] = action
            reload_action = self.reload_menu.addAction(
                name, lambda n=name: self.workbench.reload_model(n))
            reload_action.setEnabled(name in self.workbench.model_sources)
            reload_action.setToolTip("Read its files again and predict again"
                                     if reload_action.isEnabled() else "Given from Python")
            self.remove_menu.addAction(name, lambda n=name: self.workbench.remove_model(n))
        has_models = bool(self.session.models)
        self.models_header.setVisible(has_models)
        self.reload_menu.setEnabled(has_models)
        self.remove_menu.setEnabled(has_models)
        self.inputs_action.setEnabled(has_models and dataset is not None)

    def open_inputs(self, model: Optional[str] = None) -> InputMappingDialog:
        """Show Models ▸ Inputs… for ``model`` (default: the first that does not fit)."""
        self.dialog = InputMappingDialog(self.workbench, model, self.window)
        self.dialog.finished.connect(lambda _result: setattr(self, "dialog", None))
        self.dialog.open()
        return self.dialog
