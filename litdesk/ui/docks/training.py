"""The Train dock: a quick scikit-learn baseline or a fine-tuned Hugging Face classifier from
rows of the active dataset, with a live loss and validation chart, progress and Cancel.

The work runs on the job runner (core.train_runs); torch and transformers are imported on the
training thread only. The trained model joins the session at once, from the folder it was saved
in ("name (fine-tuned)", "dataset (baseline)").
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSpinBox, QStackedWidget,
                               QVBoxLayout, QWidget)

from litdesk.api import types
from litdesk.core import paths
from litdesk.core.jobs import JobFailed, Progress
from litdesk.ui.lazy_refresh import RefreshWhenShown
from litdesk.ui.widgets.plots import grid_axes

BASELINE_LINEAR, BASELINE_BOOSTED, FINE_TUNE = "linear", "boosted", "fine-tune"
MODES = {BASELINE_LINEAR: "Quick baseline: linear (tf-idf, or categories and numbers)",
         BASELINE_BOOSTED: "Quick baseline: boosted trees (categories and numbers)",
         FINE_TUNE: "Fine-tune a loaded Hugging Face classifier"}
ALL, SPLIT, SLICE, SELECTION, SHARE = "all", "split", "slice", "selection", "share"
ROW_CHOICES = {ALL: "All rows", SPLIT: "Rows where a column has a value", SLICE: "A slice",
               SELECTION: "The selected rows", SHARE: "A random share (seeded)"}
LOSS_PEN, VALIDATION_PEN, ACCURACY_PEN = "#2e86c1", "#c0392b", "#1e8449"
SETTING = "training/"


def unique_folder(parent: Path, name: str) -> Path:
    """``parent/name``, or ``parent/name 2``, ``3``… when taken."""
    folder, number = parent / name, 2
    while folder.exists():
        folder, number = parent / f"{name} {number}", number + 1
    return folder


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


class TrainingDock(RefreshWhenShown):
    """Form, chart and buttons of a training run. ``finished`` carries the TrainRun of a run
    that saved a model, ``failed`` the one-line reason a run did not."""

    finished = Signal(object)
    failed = Signal(str)
    #: A progress report reached the dock (tests wait on it).
    progressed = Signal(object)

    def __init__(self, workbench: Any, runner: Any, parent=None) -> None:
        super().__init__(parent)
        self.workbench, self.session, self.runner = workbench, workbench.session, runner
        self._worker = None
        self._cancel: Optional[threading.Event] = None
        self._losses: list[tuple[float, float]] = []
        self._epochs: list[dict] = []

        self.mode = QComboBox()
        for key, text in MODES.items():
            self.mode.addItem(text, key)
        self.base = QComboBox()
        self.base.setToolTip("The model to fine-tune: a model opened from a Hugging Face folder")
        self.label_column = QComboBox()
        self.rows_choice = QComboBox()
        for key, text in ROW_CHOICES.items():
            self.rows_choice.addItem(text, key)
        self.split_column = QComboBox()
        self.split_value = QLineEdit()
        self.split_value.setPlaceholderText("value, e.g. train")
        self.slice_name = QComboBox()
        self.share = QDoubleSpinBox()
        self.share.setRange(0.01, 1.0)
        self.share.setSingleStep(0.05)
        self.share.setValue(0.8)
        row_details = QStackedWidget()
        split_row = QWidget()
        split_layout = QHBoxLayout(split_row)
        split_layout.setContentsMargins(0, 0, 0, 0)
        split_layout.addWidget(self.split_column)
        split_layout.addWidget(QLabel("="))
        split_layout.addWidget(self.split_value, 1)
        self._row_pages = {ALL: QWidget(), SPLIT: split_row, SLICE: self.slice_name,
                           SELECTION: QWidget(), SHARE: self.share}
        for page in self._row_pages.values():
            row_details.addWidget(page)
        self.row_details = row_details

        settings = self.workbench.settings
        self.epochs = self._spin(1, 1000, int(settings.get(SETTING + "epochs", 3)))
        self.batch_size = self._spin(1, 4096, int(settings.get(SETTING + "batch_size", 16)))
        self.learning_rate = QLineEdit(str(settings.get(SETTING + "learning_rate", "5e-5")))
        self.seed = self._spin(0, 2**31 - 1, int(settings.get(SETTING + "seed", 0)))
        self.validation_share = QDoubleSpinBox()
        self.validation_share.setRange(0.0, 0.5)
        self.validation_share.setSingleStep(0.05)
        self.validation_share.setValue(float(settings.get(SETTING + "validation_share", 0.1)))

        form = QFormLayout()
        form.addRow("&Train", self.mode)
        form.addRow("&Base model", self.base)
        form.addRow("&Label column", self.label_column)
        form.addRow("&Rows", self.rows_choice)
        form.addRow("", row_details)
        hyper = QHBoxLayout()
        for text, widget in (("Epochs", self.epochs), ("Batch", self.batch_size),
                             ("LR", self.learning_rate), ("Validation", self.validation_share)):
            hyper.addWidget(QLabel(text))
            hyper.addWidget(widget)
        self.hyper_row = QWidget()
        self.hyper_row.setLayout(hyper)
        hyper.setContentsMargins(0, 0, 0, 0)
        form.addRow("Fine-tuning", self.hyper_row)
        form.addRow("&Seed", self.seed)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Start training (Ctrl+Return)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop; a fine-tune keeps its best checkpoint so far")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Choose what to train, then Train.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)

        self.chart = pg.GraphicsLayoutWidget()
        self.chart.setBackground("w")
        self.chart.setMinimumHeight(160)
        self.loss_plot = self.chart.addPlot(title="Loss", axisItems=grid_axes())
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen(LOSS_PEN, width=2),
                                              name="training")
        self.validation_loss_curve = self.loss_plot.plot(
            [], [], pen=pg.mkPen(VALIDATION_PEN, width=2), symbol="o", symbolSize=7,
            symbolBrush=VALIDATION_PEN, name="validation")
        self.accuracy_plot = self.chart.addPlot(title="Validation accuracy",
                                                axisItems=grid_axes())
        self.accuracy_plot.setLabel("bottom", "epoch")
        self.accuracy_plot.setYRange(0, 1)
        self.accuracy_curve = self.accuracy_plot.plot(
            [], [], pen=pg.mkPen(ACCURACY_PEN, width=2), symbol="o", symbolSize=7,
            symbolBrush=ACCURACY_PEN)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.chart, 1)

        self.mode.currentIndexChanged.connect(self._update_form)
        self.rows_choice.currentIndexChanged.connect(self._update_form)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        QShortcut(QKeySequence("Ctrl+Return"), self, self.train,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        for signal in (self.session.dataset_changed, self.session.spec_changed,
                       self.session.models_changed, self.session.slices_changed):
            signal.connect(self.request_refresh)
        # a model's folder is known once it has loaded, after the session lists it
        workbench.model_loaded.connect(self.request_refresh)

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    # -- the form ----------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """Show the form for ``mode`` (a key of :data:`MODES`)."""
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def _models_with_folders(self) -> dict[str, Path]:
        sources = getattr(self.workbench, "model_sources", {})
        return {name: source[0] for name, source in sources.items()
                if name in self.session.models and _is_hf_folder(Path(source[0]))}

    @staticmethod
    def _refill_combo(combo: QComboBox, items: list[str], preferred: Optional[str] = None) -> None:
        current = combo.currentText() or preferred
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(items)
        if current in items:
            combo.setCurrentText(current)
        combo.blockSignals(False)

    def refresh(self) -> None:
        """Fill the choices from the active dataset, the models and the slices (called when
        on screen: the dock is a background tab until its tab or the Train menu raises it)."""
        dataset = self.session.dataset
        spec = dataset.spec() if dataset is not None else {}
        columns = list(spec)
        labels = [name for name, t in spec.items() if isinstance(t, types.CategoryLabel)]
        preferred = getattr(self.workbench, "label", None) or (labels[0] if labels else None)
        self._refill_combo(self.label_column, labels + [c for c in columns if c not in labels],
                           preferred)
        categories = [name for name, t in spec.items()
                      if isinstance(t, (types.CategoryLabel, types.Boolean))]
        self._refill_combo(self.split_column, categories + [c for c in columns
                                                            if c not in categories],
                           next((c for c in columns if c.lower() in ("split", "subset", "fold")),
                                None))
        self._refill_combo(self.slice_name, list(self.session.slices))
        self._refill_combo(self.base, list(self._models_with_folders()))
        self._update_form()

    def _update_form(self, *_args) -> None:
        fine_tune = self.mode.currentData() == FINE_TUNE
        self.base.setEnabled(fine_tune)
        self.hyper_row.setEnabled(fine_tune)
        self.row_details.setCurrentWidget(self._row_pages[self.rows_choice.currentData()])
        running = self._worker is not None
        self.train_button.setEnabled(not running and self.session.dataset is not None
                                     and (not fine_tune or self.base.count() > 0))
        if fine_tune and self.base.count() == 0 and not running:
            self.status.setText("Open a Hugging Face classifier folder to fine-tune it.")

    def _row_resolver(self) -> Callable[[Any], np.ndarray]:
        """A function of the dataset returning the training rows, run on the worker; what
        the GUI knows (the selection, a slice) is read now."""
        from litdesk.core import train_runs

        choice = self.rows_choice.currentData()
        if choice == SELECTION:
            rows = np.asarray(self.session.selection.rows, dtype=np.int64).copy()
            if not len(rows):
                raise ValueError("no rows are selected")
            return lambda dataset: rows
        if choice == SLICE:
            name = self.slice_name.currentText()
            if name not in self.session.slices:
                raise ValueError("choose a slice (make one in the Slices panel)")
            rows = np.asarray(self.session.slices[name], dtype=np.int64).copy()
            return lambda dataset: rows
        if choice == SPLIT:
            column, value = self.split_column.currentText(), self.split_value.text().strip()
            if not value:
                raise ValueError(f"type the value of {column} that marks the training rows")
            return lambda dataset: train_runs.rows_with_value(dataset, column, value)
        if choice == SHARE:
            share, seed = self.share.value(), self.seed.value()
            return lambda dataset: train_runs.random_share(len(dataset), share, seed)
        return lambda dataset: np.arange(len(dataset), dtype=np.int64)

    def _settings(self) -> Any:
        from litdesk.core.training import FineTuneSettings

        try:
            learning_rate = float(self.learning_rate.text())
        except ValueError:
            raise ValueError(f"learning rate {self.learning_rate.text()!r} is not a number") from None
        settings = FineTuneSettings(epochs=self.epochs.value(), batch_size=self.batch_size.value(),
                                    learning_rate=learning_rate, seed=self.seed.value(),
                                    validation_share=self.validation_share.value(),
                                    device=getattr(self.workbench, "device", None))
        settings.check()
        for key in ("epochs", "batch_size", "learning_rate", "seed", "validation_share"):
            self.workbench.settings.set(SETTING + key, getattr(settings, key))
        return settings

    # -- running -----------------------------------------------------------------------

    def train(self) -> None:
        """Start the run the form describes; a problem with the form shows in the dock."""
        if self._worker is not None or self.session.dataset is None:
            return
        dataset = self.session.dataset
        mode = self.mode.currentData()
        label = self.label_column.currentText()
        from litdesk.core import train_runs

        try:
            resolve = self._row_resolver()
            exclude = (self.split_column.currentText(),) \
                if self.rows_choice.currentData() == SPLIT else ()
            models_folder = paths.data_dir() / "models"
            if mode == FINE_TUNE:
                settings = self._settings()
                base_name = self.base.currentText()
                base = self._models_with_folders()[base_name]
                out = unique_folder(models_folder, f"{base_name} (fine-tuned)")
                self._cancel = threading.Event()
                cancel = self._cancel

                def job():
                    rows = resolve(dataset)
                    return (yield from train_runs.fine_tune_run_job(
                        dataset, label, rows, base, out, settings, cancel=cancel))
            else:
                seed = self.seed.value()
                out = unique_folder(models_folder, f"{dataset.name} ({mode} baseline)")
                self._cancel = None

                def job():
                    rows = resolve(dataset)
                    return (yield from train_runs.baseline_run_job(
                        dataset, label, rows, out, kind=mode, seed=seed, exclude=exclude))
        except (ValueError, KeyError) as error:
            self._fail(str(error).strip("'\""))
            return
        self._losses, self._epochs = [], []
        self._draw()
        self.progress.setRange(0, 0)
        self.status.setText(f"Training into {out}…")
        self._worker = self.runner.submit(job(), f"Train {out.name}", self._done, self._failed,
                                          on_finished=self._ended)
        self._worker.yielded.connect(self._on_progress)
        self.cancel_button.setEnabled(True)
        self._update_form()

    def cancel(self) -> None:
        """Stop the run: a fine-tune ends at its next step, keeping its best checkpoint."""
        if self._worker is None:
            return
        self.status.setText("Cancelling…")
        if self._cancel is not None:
            self._cancel.set()
        else:
            self.runner.cancel(self._worker)

    def _on_progress(self, report: Any) -> None:
        if not isinstance(report, Progress):
            return
        if report.total > 0:
            self.progress.setRange(0, report.total)
            self.progress.setValue(min(report.done, report.total))
        if report.message:
            self.status.setText(report.message)
        loss = getattr(report, "loss", None)
        validation = getattr(report, "validation", None)
        if loss is not None:
            self._losses.append((float(getattr(report, "epoch", 0.0)), float(loss)))
        if validation is not None:
            self._epochs.append(dict(validation))
        if loss is not None or validation is not None:
            self._draw()
        self.progressed.emit(report)

    def _draw(self) -> None:
        losses = np.asarray(self._losses, dtype=float).reshape(-1, 2)
        self.loss_curve.setData(losses[:, 0], losses[:, 1])
        validated = [e for e in self._epochs if e.get("validation_loss") is not None]
        self.validation_loss_curve.setData([e["epoch"] for e in validated],
                                           [e["validation_loss"] for e in validated])
        self.accuracy_curve.setData([e["epoch"] for e in validated],
                                    [e["validation_accuracy"] for e in validated])

    def _done(self, run: Any) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        # a zero-width space after each slash lets a long folder wrap instead of clipping
        self.status.setText(run.summary.replace("/", "/\u200b"))
        self.status.setToolTip(run.summary)
        self.workbench.open_model(run.model_path)  # joins the session under its folder's name
        self.finished.emit(run)

    def _failed(self, failure: JobFailed) -> None:
        from litdesk.core.messages import first_line

        self._fail(first_line(failure.error))

    def _fail(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"<span style='color:#c0392b'>{message}</span>")
        self.failed.emit(message)

    def _ended(self) -> None:
        if self._worker is not None and self.progress.maximum() == 0:  # cancelled: no report
            self.progress.setRange(0, 1)
            self.status.setText("Cancelled.")
        self._worker = None
        self._cancel = None
        self.cancel_button.setEnabled(False)
        self._update_form()
