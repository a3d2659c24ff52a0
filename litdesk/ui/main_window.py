"""The main window: docks, menus, drag-and-drop, the status bar and the launch work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QToolButton)

from litdesk import __version__
from litdesk.api import Dataset, LoadOptions, Model, TrustRequired
from litdesk.core import paths
from litdesk.core.loaders import SUPPORTED_SUFFIXES, iter_load_dataset
from litdesk.core.model_loading import load_model_job, looks_like_model
from litdesk.core.plugins import discover_plugins, user_plugin_folder
from litdesk.core.predict import Predictions, SpecMismatchError, bind_inputs, predict_job
from litdesk.core.cache import ResultCache
from litdesk.core.datapoints import (NewDatapoint, datapoints_table, new_predictions_job,
                                     with_datapoints)
from litdesk.core.journal import Journal, journal_for
from litdesk.core.save import SAVE_FORMATS, save_dataset_job
from litdesk.core.session import Session
from litdesk.core.slice_store import SliceStore
from litdesk.ui.docks.attention import AttentionDock
from litdesk.ui.docks.comparison import ComparisonDock
from litdesk.ui.docks.confusion import ConfusionDock
from litdesk.ui.docks.editor import DatapointEditorDock
from litdesk.ui.docks.generators import TITLE_PREFIX as GENERATOR_TITLE_PREFIX
from litdesk.ui.docks.generators import GeneratorsDock
from litdesk.ui.docks.metrics import MetricsDock
from litdesk.ui.docks.outputs import OutputsDock
from litdesk.ui.docks.partial_dependence import PartialDependenceDock
from litdesk.ui.docks.projector import ProjectorDock
from litdesk.ui.docks.salience import SalienceDock
from litdesk.ui.docks.scalars import ScalarsDock
from litdesk.ui.docks.sequence_salience import SequenceSalienceDock
from litdesk.ui.docks.slices import SlicesDock
from litdesk.ui.docks.table import DataTableDock
from litdesk.ui.jobs import JobFailed, JobRunner

APP_ICON = paths.RESOURCES_DIR / "icons" / "litdesk.svg"
DEFAULT_SIZE = QSize(1400, 900)
LAYOUT_VERSION = 4  # bump when docks are added, so an old saved layout is not applied


@dataclass
class _PendingDatapoints:
    """Datapoints made and journaled, waiting for their predictions before they join."""

    dataset_name: str
    points: list[NewDatapoint]
    compare: bool
    predictions: Optional[dict] = None


class MainWindow(QMainWindow):
    """litdesk's window. ``open_paths`` is how files arrive: drops, menus, the command line."""

    #: Emitted after every dataset load (its name) so that tests and scripts can wait on it.
    dataset_loaded = Signal(str)
    model_loaded = Signal(str)
    #: Emitted with the message of each failure shown to the user.
    error_reported = Signal(str)
    #: Emitted with the row positions of datapoints once they joined their dataset.
    datapoints_added = Signal(object)

    def __init__(self, session: Optional[Session] = None, device: Optional[str] = None,
                 show_dialogs: bool = True, trust: bool = False,
                 label: Optional[str] = None) -> None:
        super().__init__()
        self.session = session or Session()
        settings = self._settings()
        # --device wins over the saved choice; both apply to models opened from now on.
        self.device = device or str(settings.value("models/device", "auto"))
        self.precision = str(settings.value("models/precision", "fp32"))
        self.trust = trust  # set by --trust: files opened at launch may be unpickled
        self.label = label
        self.show_dialogs = show_dialogs
        self.errors: list[str] = []
        self.trust_prompt: Optional[QMessageBox] = None  # open while a pickle awaits an answer
        self.runner = JobRunner(self)
        self.cache = ResultCache()
        self._predicting: set[tuple[str, str]] = set()  # (dataset, model) being predicted
        self._journals: dict[str, Journal] = {}  # dataset name -> its journal
        self._pending: list[_PendingDatapoints] = []  # made, being predicted, in order
        self.setWindowTitle("litdesk")
        if APP_ICON.exists():
            self.setWindowIcon(QIcon(str(APP_ICON)))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.resize(DEFAULT_SIZE)  # the docks below are sized within it

        self.table_dock = DataTableDock(self.session, self.runner)
        self.projector_dock = ProjectorDock(self.session, self.runner, self.cache)
        self.salience_dock = SalienceDock(self.session, self.runner, self.cache)
        self.comparison_dock = ComparisonDock(self.session)
        self.outputs_dock = OutputsDock(self.session, self.runner, self.cache)
        self.attention_dock = AttentionDock(self.session, self.runner, self.cache)
        self.sequence_salience_dock = SequenceSalienceDock(self.session, self.runner, self.cache)
        self.metrics_dock = MetricsDock(self.session, self.runner)
        self.slices_dock = SlicesDock(self.session)
        self.confusion_dock = ConfusionDock(self.session)
        self.scalars_dock = ScalarsDock(self.session, self.runner)
        self.partial_dependence_dock = PartialDependenceDock(self.session, self.runner)
        self.editor_dock = DatapointEditorDock(self.session)
        self.generators_dock = GeneratorsDock(self.session, self.runner)
        self.docks: dict[str, QDockWidget] = {}
        self._add_dock("Data Table", self.table_dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Embedding Projector", self.projector_dock,
                       Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Salience", self.salience_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Model Comparison", self.comparison_dock,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Model Outputs", self.outputs_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Attention", self.attention_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Sequence Salience", self.sequence_salience_dock,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Metrics", self.metrics_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Slices", self.slices_dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Confusion Matrix", self.confusion_dock,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Scalars", self.scalars_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Partial Dependence", self.partial_dependence_dock,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Datapoint Editor", self.editor_dock, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Generators", self.generators_dock, Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.docks["Data Table"], self.docks["Embedding Projector"],
                             Qt.Orientation.Horizontal)
        self.splitDockWidget(self.docks["Salience"], self.docks["Model Comparison"],
                             Qt.Orientation.Horizontal)
        self.tabifyDockWidget(self.docks["Salience"], self.docks["Model Outputs"])
        self.tabifyDockWidget(self.docks["Salience"], self.docks["Attention"])
        self.tabifyDockWidget(self.docks["Salience"], self.docks["Sequence Salience"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Metrics"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Confusion Matrix"])
        self.tabifyDockWidget(self.docks["Embedding Projector"], self.docks["Slices"])
        self.tabifyDockWidget(self.docks["Embedding Projector"], self.docks["Datapoint Editor"])
        self.tabifyDockWidget(self.docks["Embedding Projector"], self.docks["Generators"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Scalars"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Partial Dependence"])
        self.resizeDocks([self.docks["Data Table"], self.docks["Embedding Projector"]],
                         [780, 560], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Data Table"], self.docks["Salience"]], [560, 300],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["Salience"], self.docks["Model Comparison"]], [700, 700],
                         Qt.Orientation.Horizontal)
        self.docks["Salience"].raise_()  # the explanation is what a new user should see first
        self.docks["Model Comparison"].raise_()
        self.docks["Embedding Projector"].raise_()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._build_menus()
        self._build_status_bar()
        self.addAction(self.slices_dock.new_slice_action)  # Ctrl+Shift+S even while it is hidden
        self.slice_store = SliceStore(self.session)  # slices persist with their dataset
        self.slice_store.message.connect(lambda text: self.statusBar().showMessage(text, 10_000))

        self.runner.failed.connect(self._on_job_failed)
        self.session.models_changed.connect(self._update_title)
        self.session.dataset_changed.connect(self._update_title)
        self.session.dataset_changed.connect(self.predict_missing)
        self.session.rows_added.connect(lambda _rows: self.predict_missing())
        self.editor_dock.add_requested.connect(
            lambda point, compare: self.add_datapoints([point], compare))
        self.generators_dock.accepted.connect(self.add_datapoints)
        self._layout_restored = False  # on the first show: tabbed docks only shrink the
        # window's minimum size once it is shown, and a restored size must not be clamped to more

    # -- layout -------------------------------------------------------------------------

    def _add_dock(self, title: str, widget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", ""))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _settings(self) -> QSettings:
        return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        settings = self._settings()
        geometry = settings.value("geometry")
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            self.resize(DEFAULT_SIZE)  # again: docks added before the first show may widen it
        state = settings.value("state")
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if not self._layout_restored:
            self._layout_restored = True
            self._restore_layout()
        super().showEvent(event)

    def save_layout(self) -> None:
        """Remember window geometry and dock layout for the next launch."""
        settings = self._settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState(LAYOUT_VERSION))
        settings.sync()

    def reset_layout(self) -> None:
        """Put every dock back where it starts."""
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.runner.shutdown()
        self.save_layout()
        super().closeEvent(event)

    # -- menus and status bar ----------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open &Dataset…", QKeySequence.StandardKey.Open, self.open_dataset_dialog)
        file_menu.addAction("Open &Model…", QKeySequence("Ctrl+Shift+O"), self.open_model_dialog)
        file_menu.addAction("Open the &Demo", QKeySequence("Ctrl+Shift+D"), self.open_demo)
        file_menu.addAction("Open the &Tabular Demo", QKeySequence("Ctrl+Shift+T"),
                            self.open_tabular_demo)
        file_menu.addSeparator()
        file_menu.addAction("&Save Dataset As…", QKeySequence.StandardKey.Save,
                            self.save_dataset_dialog)
        file_menu.addAction("&Export Table View as CSV…", QKeySequence("Ctrl+E"),
                            self.table_dock.export_view_dialog)
        file_menu.addSeparator()
        file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit, self.close)

        view_menu = self.menuBar().addMenu("&View")
        for index, dock in enumerate(self.docks.values(), start=1):
            action = dock.toggleViewAction()
            if index <= 10:  # Alt+1 … Alt+9, then Alt+0
                action.setShortcut(QKeySequence(f"Alt+{index % 10}"))
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction("&Reset Layout", self.reset_layout)

        models_menu = self.menuBar().addMenu("&Models")
        self.device_actions = self._choice_menu(
            models_menu.addMenu("&Device"), "models/device", self.device,
            {"auto": "Automatic (CUDA, then MPS, then CPU)", "cpu": "CPU", "cuda": "CUDA GPU",
             "mps": "Apple GPU (MPS)"})
        self.precision_actions = self._choice_menu(
            models_menu.addMenu("&Precision"), "models/precision", self.precision,
            {"fp32": "Full (float32)", "bf16": "Mixed bfloat16 (GPU)", "fp16": "Mixed float16 (GPU)"})
        models_menu.addSeparator()
        models_menu.addAction("Applies to models opened from now on").setEnabled(False)

        jobs_menu = self.menuBar().addMenu("&Jobs")
        self.cancel_action = QAction("&Cancel All", self, shortcut=QKeySequence("Esc"),
                                     triggered=self.runner.cancel_all, enabled=False)
        jobs_menu.addAction(self.cancel_action)
        jobs_menu.addSeparator()
        self.clear_cache_action = jobs_menu.addAction("Clear Cache…", self.clear_cache)
        jobs_menu.aboutToShow.connect(self._update_cache_action)

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&Plugins", self.show_plugins)
        help_menu.addAction("&About litdesk", self.show_about)

    def _choice_menu(self, menu, key: str, current: str, choices: dict[str, str]
                     ) -> dict[str, QAction]:
        """Exclusive, checkable actions that save the chosen value under ``key``."""
        group = QActionGroup(menu)
        actions = {}
        for value, label in choices.items():
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(value == current)
            action.triggered.connect(lambda _checked=False, v=value: self._set_model_setting(key, v))
            group.addAction(action)
            actions[value] = action
        return actions

    def _set_model_setting(self, key: str, value: str) -> None:
        settings = self._settings()
        settings.setValue(key, value)
        settings.sync()
        if key == "models/device":
            self.device = value
        else:
            self.precision = value

    def _build_status_bar(self) -> None:
        self.progress_label = QLabel("Ready")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(240)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.cancel_button = QToolButton(text="Cancel")
        self.cancel_button.setToolTip("Cancel the running jobs (Esc)")
        self.cancel_button.clicked.connect(self.runner.cancel_all)
        self.cancel_button.hide()
        bar = self.statusBar()
        bar.addWidget(self.progress_label, 1)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cancel_button)
        self.runner.progress.connect(self._on_progress)
        self.runner.busy_changed.connect(self._on_busy_changed)

    def _update_cache_action(self) -> None:
        self.clear_cache_action.setText(
            f"Clear Cache ({self.cache.size_bytes() / 1e6:,.1f} MB)…")

    def clear_cache(self) -> None:
        """Forget stored results (after asking); what is on screen stays."""
        size = self.cache.size_bytes() / 1e6
        if self.show_dialogs and QMessageBox.question(
                self, "Clear cache", f"Forget {size:,.1f} MB of stored predictions? "
                "They are recomputed when needed.") != QMessageBox.StandardButton.Yes:
            return
        self.cache.clear()
        self.statusBar().showMessage(f"Cache cleared ({size:,.1f} MB)", 5000)

    def _on_progress(self, title: str, progress) -> None:
        self.progress_label.setText(progress.message or title)
        if progress.fraction is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(progress.fraction * 1000))

    def _on_busy_changed(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_action.setEnabled(busy)
        if not busy:
            self.progress_label.setText("Ready")

    def _update_title(self) -> None:
        parts = [self.session.dataset.name] if self.session.dataset else []
        parts += list(self.session.models)
        self.setWindowTitle(" · ".join(parts + ["litdesk"]) if parts else "litdesk")

    # -- opening files -------------------------------------------------------------------------

    def open_paths(self, paths_in) -> None:
        """Open datasets and models; each path is routed by what the plugins declare."""
        for path in map(Path, paths_in):
            if looks_like_model(path):
                self.open_model(path, trust=self.trust)
            else:
                self.runner.submit(iter_load_dataset(path), f"Load {path.name}",
                                   self._on_dataset_loaded, self._report_failure)

    def open_objects(self, models=(), datasets=()) -> None:
        """Add models and datasets that are already in memory (``litdesk.show``)."""
        for model in models:
            self._on_model_loaded(model)
        for dataset in reversed(list(datasets)):  # the first one given ends up shown
            self._on_dataset_loaded(dataset)

    def open_model(self, path: Path, trust: bool = False) -> None:
        """Load a model in the background; a pickle asks the user before it is opened."""
        options = LoadOptions(device=self.device, trust=trust, label=self.label,
                              precision=self.precision)
        self.runner.submit(load_model_job(path, options), f"Load {path.name}",
                           self._on_model_loaded,
                           lambda failure: self._on_model_failed(path, failure))

    def _on_model_failed(self, path: Path, failure: JobFailed) -> None:
        if not isinstance(failure.error, TrustRequired) or not self.show_dialogs:
            self._report_failure(failure)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Open a file that runs code?",
                          f"{failure.error}\n\nOpen {path.name} and run its code?",
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                          self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda result: self._on_trust_answer(path, result))
        self.trust_prompt = box
        box.open()

    def _on_trust_answer(self, path: Path, result: int) -> None:
        self.trust_prompt = None
        if result == QMessageBox.StandardButton.Open:
            self.open_model(path, trust=True)

    def open_demo(self) -> None:
        """Open the built-in sentiment demo: its dataset, its two classifiers and its tiny
        language model."""
        self.open_paths([paths.DEMO_DATASET, *paths.DEMO_MODELS, paths.DEMO_LM])

    def open_tabular_demo(self) -> None:
        """Open the tabular demo: breast cancer measurements and three scikit-learn models.

        Its pickles open without the trust dialog because their hashes match the shipped
        manifest (litdesk.core.trusted_files).
        """
        self.open_paths([paths.DEMO_TABULAR_DATASET, *paths.DEMO_TABULAR_MODELS])

    def open_dataset_dialog(self) -> None:
        """Ask for a dataset file and open it."""
        patterns = " ".join(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", "",
                                              f"Datasets ({patterns});;All files (*)")
        if path:
            self.open_paths([path])

    def open_model_dialog(self) -> None:
        """Ask for a model folder and open it."""
        path = QFileDialog.getExistingDirectory(self, "Open model folder")
        if path:
            self.open_paths([path])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        local = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if local:
            event.acceptProposedAction()
            self.open_paths(local)

    def _on_dataset_loaded(self, dataset: Dataset) -> None:
        journal = journal_for(dataset)
        if journal is not None:
            dataset = self._restore_datapoints(dataset, journal)
        name = self.session.set_dataset(dataset)
        if journal is not None:
            self._journals[name] = journal
        if len(dataset):
            self.session.select([0], 0, source=self)
        self.dataset_loaded.emit(name)

    def _on_model_loaded(self, model: Model) -> None:
        name = self.session.add_model(model)
        self.model_loaded.emit(name)
        self.predict_missing()

    # -- datapoints the user makes -------------------------------------------------------------

    def _restore_datapoints(self, dataset: Dataset, journal: Journal) -> Dataset:
        """``dataset`` with the datapoints its journal kept from earlier sessions."""
        points, messages = journal.read()
        for message in messages:
            self.report_error("The journal of datapoints", message)
        if not points:
            return dataset
        try:
            restored = with_datapoints(dataset, points)
        except ValueError as error:
            self.report_error("Datapoints made earlier could not be restored",
                              f"{error} (they stay in {journal.path})")
            return dataset
        self.statusBar().showMessage(
            f"Restored {len(points):,} datapoint(s) made on {dataset.name} earlier", 10_000)
        return restored

    def add_datapoints(self, points: list[NewDatapoint], compare: bool = False) -> bool:
        """Keep ``points`` (in the journal first), predict them with every model, then add them
        to the active dataset and select them; ``compare`` pins the first one's parent.

        Returns False, after telling the user why, when a value does not fit its column."""
        dataset = self.session.dataset
        if dataset is None or not points:
            return False
        try:
            datapoints_table(dataset, points)  # every value fits its column
        except ValueError as error:
            self.editor_dock.show_error(str(error))
            self.report_error("Cannot add the datapoint", str(error))
            return False
        journal = self._journals.get(dataset.name)
        if journal is None:
            self.statusBar().showMessage(
                f"{dataset.name} has no file, so its new datapoints last until litdesk closes; "
                "File ▸ Save Dataset As (Ctrl+S) keeps them", 15_000)
        else:
            try:
                journal.append(points)
            except OSError as error:
                self.report_error("Could not write the journal of datapoints",
                                  f"{journal.path}: {error}")
        pending = _PendingDatapoints(dataset.name, points, compare)
        self._pending.append(pending)
        self.runner.submit(
            new_predictions_job(dict(self.session.models), dataset, points, self.cache),
            f"Predict {len(points):,} new datapoint(s)",
            lambda predictions: self._on_new_predictions(pending, predictions),
            lambda failure: self._on_new_predictions_failed(pending, failure), interactive=True)
        return True

    def _on_new_predictions(self, pending: "_PendingDatapoints", predictions: dict) -> None:
        pending.predictions = predictions
        while self._pending and self._pending[0].predictions is not None:
            done = self._pending.pop(0)  # in the order they were made, as in the journal
            if done.dataset_name not in self.session.datasets:
                continue
            positions = self.session.add_datapoints(done.points, done.predictions,
                                                    done.dataset_name)
            self.datapoints_added.emit(positions)
            if self.session.dataset is not None \
                    and self.session.dataset.name == done.dataset_name:
                self.session.select(positions, int(positions[0]), source=self)
                if done.compare:
                    self.session.pin(done.points[0].parent, source=self)

    def _on_new_predictions_failed(self, pending: "_PendingDatapoints", failure: JobFailed
                                   ) -> None:
        self._report_failure(failure)
        self._on_new_predictions(pending, {})  # they join all the same, without predictions

    def save_dataset_dialog(self) -> None:
        """Ask where to save the active dataset (with the datapoints made) and save it."""
        dataset = self.session.dataset
        if dataset is None:
            return
        filters = ";;".join(f"{label} (*{suffix})" for suffix, label in SAVE_FORMATS.items())
        start = Path(dataset.path).with_name(f"{Path(dataset.path).stem}-edited.csv") \
            if dataset.path else Path(f"{dataset.name}.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Save dataset", str(start), filters)
        if path:
            suffix = next((s for s, label in SAVE_FORMATS.items() if chosen.startswith(label)),
                          ".csv")
            self.save_dataset(Path(path) if Path(path).suffix else Path(path + suffix))

    def save_dataset(self, path: Path) -> None:
        """Save the active dataset to ``path`` in the background (CSV, JSONL or Parquet)."""
        self.runner.submit(save_dataset_job(self.session.dataset, path), f"Save {path.name}",
                           lambda saved: self.statusBar().showMessage(f"Saved {saved}", 10_000))

    # -- predictions --------------------------------------------------------------------------

    def predict_missing(self) -> None:
        """Start predictions for every model that has none for the active dataset."""
        dataset = self.session.dataset
        if dataset is None:
            return
        for name, model in self.session.models.items():
            key = (dataset.name, name)
            if name in self.session.predictions or key in self._predicting:
                continue
            try:
                bind_inputs(model, dataset)
            except SpecMismatchError as error:
                self._report_failure(JobFailed(f"Predict {name}", error))
                continue
            self._predicting.add(key)
            self.runner.submit(predict_job(model, dataset, cache=self.cache), f"Predict {name}",
                               self._on_predictions,
                               lambda failure, key=key: self._on_predict_failed(key, failure))

    def _on_predict_failed(self, key: tuple[str, str], failure: JobFailed) -> None:
        self._predicting.discard(key)
        self._report_failure(failure)

    def _on_predictions(self, predictions: Predictions) -> None:
        self._predicting.discard((predictions.dataset_name, predictions.model_name))
        self.session.set_predictions(predictions)

    # -- errors and help ---------------------------------------------------------------------

    def _report_failure(self, failure: JobFailed) -> None:
        self.report_error(f"{failure.title} failed", str(failure.error))

    def _on_job_failed(self, failure: JobFailed) -> None:
        if failure.title.startswith(("Load ", "Predict ", GENERATOR_TITLE_PREFIX)):
            return  # already reported by the job's own handler (or shown in its dock)
        self.report_error(f"{failure.title} failed", f"{type(failure.error).__name__}: "
                                                     f"{failure.error}")

    def report_error(self, title: str, message: str) -> None:
        """Tell the user what failed, without blocking; the app goes on."""
        self.errors.append(f"{title}: {message}")
        self.statusBar().showMessage(f"{title}: {message}", 10_000)
        self.error_reported.emit(message)
        if self.show_dialogs:
            box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                              QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def show_plugins(self) -> None:
        """List the discovered plugins and any that failed to load."""
        registry = discover_plugins()
        lines = [f"<b>{name}</b>: {description}" for name, description in registry.plugins.items()]
        lines += [f"<b>{name}</b> <span style='color:#c0392b'>failed: {error}</span>"
                  for name, error in registry.errors.items()]
        lines.append(f"<br><small>Single-file plugins: {user_plugin_folder()}</small>")
        QMessageBox.information(self, "Plugins", "<br>".join(lines))

    def show_about(self) -> None:
        """Version and where litdesk keeps its files."""
        QMessageBox.about(self, "About litdesk",
                          f"<b>litdesk {__version__}</b><br>Understand and compare ML models, "
                          f"offline.<br><br>Settings: {paths.config_dir()}<br>"
                          f"Cache: {paths.cache_dir()}")
