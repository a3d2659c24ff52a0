"""The main window: docks, menus, drag-and-drop, the status bar and the launch work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QToolButton)

from litdesk import __version__
from litdesk.api import Dataset, Model
from litdesk.core import paths
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import function_job
from litdesk.core.lasting_imports import load_native_libraries_first
from litdesk.core.loaders import SUPPORTED_SUFFIXES
from litdesk.core.model_loading import model_file_patterns
from litdesk.core.plugins import discover_plugins, user_plugin_folder
from litdesk.core.save import SAVE_FORMATS
from litdesk.core.session import Session
from litdesk.core.warm_up import start_warm_up
from litdesk.core.workbench import Workbench
from litdesk.ui.docks.attention import AttentionDock
from litdesk.ui.docks.comparison import ComparisonDock
from litdesk.ui.docks.confusion import ConfusionDock
from litdesk.ui.docks.editor import DatapointEditorDock
from litdesk.ui.docks.generators import GeneratorsDock
from litdesk.ui.docks.metrics import MetricsDock
from litdesk.ui.docks.outputs import OutputsDock
from litdesk.ui.docks.partial_dependence import PartialDependenceDock
from litdesk.ui.docks.projector import ProjectorDock
from litdesk.ui.docks.quality import QualityDock
from litdesk.ui.docks.salience import SalienceDock
from litdesk.ui.docks.scalars import ScalarsDock
from litdesk.ui.docks.sequence_salience import SequenceSalienceDock
from litdesk.ui.docks.slices import SlicesDock
from litdesk.ui.docks.table import DataTableDock
from litdesk.ui.widgets.remembered import remember_choice
from litdesk.ui.docks.training import BASELINE_LINEAR, FINE_TUNE, TrainingDock
from litdesk.ui.garbage import collect_on_gui_thread
from litdesk.ui.gil import favour_gui_thread
from litdesk.ui.jobs import JobRunner
from litdesk.ui.models_menu import ModelsSection

APP_ICON = paths.RESOURCES_DIR / "icons" / "litdesk.svg"
DEFAULT_SIZE = QSize(1400, 900)
#: Without a saved geometry, the window fills this share of the screen it opens on.
DEFAULT_SCREEN_SHARE = 0.85
PROGRESS_INTERVAL_MS = 100
#: The choices of Jobs ▸ Cache Size Limit, in GB (2**30 bytes).
CACHE_LIMITS_GB = (1, 2, 4, 8, 16, 32, 64)
LAYOUT_VERSION = 4  # bump when docks are added, so an old saved layout is not applied


class MainWindow(QMainWindow):
    """litdesk's window. ``open_paths`` is how files arrive: drops, menus, the command line."""

    #: Emitted after every dataset load (its name) so that tests and scripts can wait on it.
    dataset_loaded = Signal(str)
    model_loaded = Signal(str)
    #: Emitted with the message of each failure shown to the user.
    error_reported = Signal(str)
    #: Emitted with the row positions of datapoints once they joined their dataset.
    datapoints_added = Signal(object)
    #: A message of the result cache (damage, a full disk), brought to the GUI thread.
    cache_told = Signal(str)

    def __init__(self, session: Optional[Session] = None, device: Optional[str] = None,
                 show_dialogs: bool = True, trusted_paths: Iterable["Path | str"] = (),
                 label: Optional[str] = None) -> None:
        """``trusted_paths``: the files ``--trust`` covers (those named on the command line)."""
        super().__init__()
        start_warm_up()  # run_app started it already; a window made from Python starts it here
        collect_on_gui_thread()
        favour_gui_thread()
        load_native_libraries_first()  # torch, imported on a worker, holds the GIL less
        self.show_dialogs = show_dialogs
        self.trust_prompt: Optional[QMessageBox] = None  # open while a file awaits trust
        self.runner = JobRunner(self)
        self.workbench = Workbench(self.runner, session, device=device, label=label,
                                   trusted_paths=trusted_paths)
        self.session = self.workbench.session
        self.cache = self.workbench.cache
        self.cache.message.connect(self.cache_told.emit)  # told on a worker thread
        self.cache_told.connect(self._show_cache_message)
        self.setWindowTitle("litdesk")
        if APP_ICON.exists():
            self.setWindowIcon(QIcon(str(APP_ICON)))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.resize(DEFAULT_SIZE)  # the docks below are sized within it

        self.table_dock = DataTableDock(self.session, self.runner)
        self.projector_dock = ProjectorDock(self.session, self.runner, self.cache)
        self.salience_dock = SalienceDock(self.session, self.runner, self.cache)
        self.comparison_dock = ComparisonDock(self.session, self.runner)
        self.outputs_dock = OutputsDock(self.session, self.runner, self.cache)
        self.attention_dock = AttentionDock(self.session, self.runner, self.cache)
        self.sequence_salience_dock = SequenceSalienceDock(self.session, self.runner, self.cache)
        self.metrics_dock = MetricsDock(self.session, self.runner)
        self.slices_dock = SlicesDock(self.session, self.runner)
        self.confusion_dock = ConfusionDock(self.session, self.runner)
        self.scalars_dock = ScalarsDock(self.session, self.runner)
        self.partial_dependence_dock = PartialDependenceDock(self.session, self.runner)
        self.editor_dock = DatapointEditorDock(self.session)
        self.generators_dock = GeneratorsDock(self.session, self.runner)
        self.quality_dock = QualityDock(self.session, self.runner, self.cache)
        self.quality_dock.labels_fixed.connect(self.workbench.fix_values)  # journaled
        self.training_dock = TrainingDock(self.workbench, self.runner)
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
        self._add_dock("Data Quality", self.quality_dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Train", self.training_dock, Qt.DockWidgetArea.RightDockWidgetArea)
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
        self.tabifyDockWidget(self.docks["Embedding Projector"], self.docks["Train"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Scalars"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Partial Dependence"])
        self.tabifyDockWidget(self.docks["Model Comparison"], self.docks["Data Quality"])
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

        workbench = self.workbench
        workbench.dataset_loaded.connect(self.dataset_loaded.emit)
        workbench.model_loaded.connect(self.model_loaded.emit)
        workbench.datapoints_added.connect(self.datapoints_added.emit)
        workbench.error_reported.connect(self._show_error)
        workbench.status_message.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        workbench.trust_required.connect(self._ask_trust)
        workbench.datapoint_rejected.connect(self.editor_dock.show_error)
        self.runner.failed.connect(lambda failure: workbench.report_error(
            f"{failure.title} failed", f"{type(failure.error).__name__}: {failure.error}"))
        self.session.models_changed.connect(self._update_title)
        self.session.dataset_changed.connect(self._update_title)
        self.editor_dock.add_requested.connect(
            lambda point, compare: self.add_datapoints([point], compare))
        self.generators_dock.accepted.connect(self.add_datapoints)
        # The docks' choices come back on the next launch (kept in the settings file).
        self.remember_layout = True  # False for headless runs: the user's layout stays theirs
        self._remembered = [
            remember_choice(self.projector_dock.method, workbench.settings, "projector/method"),
            remember_choice(self.projector_dock.color_by, workbench.settings,
                            "projector/color_by"),
            remember_choice(self.metrics_dock.facet_choice, workbench.settings, "metrics/facet")]
        self.salience_dock.remember_methods(workbench.settings)
        self.table_dock.delete_requested.connect(workbench.delete_datapoints)
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
            self.fill_screen()  # again: docks added before the first show may widen it
        state = settings.value("state")
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if not self._layout_restored:
            self._layout_restored = True
            self._restore_layout()
        super().showEvent(event)

    def fill_screen(self) -> None:
        """Take :data:`DEFAULT_SCREEN_SHARE` of the screen the window is on, centred."""
        screen = self.screen()
        if screen is None:
            self.resize(DEFAULT_SIZE)
            return
        available = screen.availableGeometry()
        size = QSize(int(available.width() * DEFAULT_SCREEN_SHARE),
                     int(available.height() * DEFAULT_SCREEN_SHARE))
        self.resize(size)
        self.move(available.center() - self.rect().center())

    def save_layout(self) -> None:
        """Remember window geometry and dock layout for the next launch (not in a headless
        run: :attr:`remember_layout` False)."""
        if not self.remember_layout:
            return
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
        file_menu.addAction("Open &Model Folder…", QKeySequence("Ctrl+Shift+O"),
                            self.open_model_dialog)
        file_menu.addAction("Open Model &File…", QKeySequence("Ctrl+Alt+O"),
                            self.open_model_file_dialog)
        file_menu.addAction("Open &Results…", QKeySequence("Ctrl+Alt+R"), self.open_results_dialog)
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
            models_menu.addMenu("&Device"), "device", self.workbench.device,
            {"auto": "Automatic (CUDA, then MPS, then CPU)", "cpu": "CPU", "cuda": "CUDA GPU",
             "mps": "Apple GPU (MPS)"})
        self.precision_actions = self._choice_menu(
            models_menu.addMenu("&Precision"), "precision", self.workbench.precision,
            {"fp32": "Full (float32)", "bf16": "Mixed bfloat16 (GPU)", "fp16": "Mixed float16 (GPU)"})
        models_menu.addSeparator()
        models_menu.addAction("Applies to models opened from now on").setEnabled(False)
        self.models_section = ModelsSection(models_menu, self.workbench, self)

        jobs_menu = self.menuBar().addMenu("&Jobs")
        self.cancel_action = QAction("&Cancel All", self, shortcut=QKeySequence("Esc"),
                                     triggered=self.runner.cancel_all, enabled=False)
        jobs_menu.addAction(self.cancel_action)
        jobs_menu.addSeparator()
        self.clear_cache_action = jobs_menu.addAction("Clear Cache…", self.clear_cache)
        self.cache_limit_actions = self._choice_menu(
            jobs_menu.addMenu("Cache Size &Limit"), "cache_max_bytes",
            self.workbench.cache_max_bytes,
            {gib * 2 ** 30: f"{gib} GB" for gib in CACHE_LIMITS_GB})
        jobs_menu.aboutToShow.connect(self._update_cache_action)

        train_menu = self.menuBar().addMenu("&Train")
        train_menu.addAction("Quick &Baseline…", QKeySequence("Ctrl+Shift+B"),
                             lambda: self.show_training(BASELINE_LINEAR))
        train_menu.addAction("&Fine-tune…", QKeySequence("Ctrl+Shift+F"),
                             lambda: self.show_training(FINE_TUNE))

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&Plugins", self.show_plugins)
        help_menu.addAction("Open &Log Folder", self.open_log_folder)
        help_menu.addAction("&About litdesk", self.show_about)
        self.about_model_menu = help_menu.addMenu("About &Model")
        self.about_model_menu.aboutToShow.connect(self._fill_about_model_menu)

    def _choice_menu(self, menu, setting: str, current: str, choices: dict[str, str]
                     ) -> dict[str, QAction]:
        """Exclusive, checkable actions that set the workbench's ``setting`` (saved)."""
        group = QActionGroup(menu)
        actions = {}
        for value, label in choices.items():
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(value == current)
            action.triggered.connect(
                lambda _checked=False, v=value: setattr(self.workbench, setting, v))
            group.addAction(action)
            actions[value] = action
        return actions

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
        # Jobs report progress hundreds of times a second, and a progress bar repaints at once
        # on each new value: the latest report is shown at most every PROGRESS_INTERVAL_MS.
        self._latest_progress: Optional[tuple[str, object]] = None
        self._progress_timer = QTimer(self, singleShot=True, interval=PROGRESS_INTERVAL_MS,
                                      timeout=self._show_progress)
        self.runner.progress.connect(self._on_progress)
        self.runner.busy_changed.connect(self._on_busy_changed)

    def _update_cache_action(self) -> None:
        self.clear_cache_action.setText(f"Clear Cache ({self.cache.size_bytes() / 2 ** 20:,.1f} "
                                        f"MB of {self.cache.max_bytes / 2 ** 30:g} GB)…")

    def _show_cache_message(self, text: str) -> None:
        self.workbench.report_error("Result cache", text)

    def clear_cache(self) -> None:
        """Forget stored results (after asking); what is on screen stays."""
        size = self.cache.size_bytes() / 2 ** 20
        if self.show_dialogs and QMessageBox.question(
                self, "Clear cache", f"Forget {size:,.1f} MB of stored predictions? "
                "They are recomputed when needed.") != QMessageBox.StandardButton.Yes:
            return
        # In the background: it waits for an eviction under way, which may take seconds.
        self.runner.submit(function_job(self.cache.clear, "Clearing the cache"), "Clear Cache",
                           lambda _none: self.statusBar().showMessage(
                               f"Cache cleared ({size:,.1f} MB)", 5000))

    def _on_progress(self, title: str, progress) -> None:
        self._latest_progress = title, progress
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _show_progress(self) -> None:
        if self._latest_progress is None or not self.runner.busy:
            return
        title, progress = self._latest_progress
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
            self._latest_progress = None
            self.progress_label.setText("Ready")

    def _update_title(self) -> None:
        parts = [self.session.dataset.name] if self.session.dataset else []
        parts += list(self.session.models)
        self.setWindowTitle(" · ".join(parts + ["litdesk"]) if parts else "litdesk")

    # -- opening files -------------------------------------------------------------------------

    def open_paths(self, paths_in) -> None:
        """Open datasets and models; each path is routed by what the plugins declare."""
        with self.runner.refreshes_later():  # models known from the cache arrive at once
            self.workbench.open_paths(paths_in)

    def open_objects(self, models: Sequence[Model] = (), datasets: Sequence[Dataset] = ()
                     ) -> None:
        """Add models and datasets that are already in memory (``litdesk.show``)."""
        self.workbench.open_objects(models, datasets)

    def _ask_trust(self, path: Path, reason: str) -> None:
        if not self.show_dialogs:
            self.workbench.report_error(f"Load {path.name} failed", reason)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Open a file that runs code?",
                          f"{reason}\n\nOpen {path.name} and run its code?",
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
            self.workbench.open_model(path, trust=True)

    def open_demo(self) -> None:
        """Open the built-in sentiment demo: its dataset, its two classifiers and its tiny
        language model."""
        with self.runner.refreshes_later():
            self.workbench.open_demo()

    def open_tabular_demo(self) -> None:
        """Open the tabular demo: breast cancer measurements and three scikit-learn models."""
        with self.runner.refreshes_later():
            self.workbench.open_tabular_demo()

    def open_dataset_dialog(self) -> None:
        """Ask for a dataset file and open it."""
        patterns = " ".join(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", "",
                                              f"Datasets ({patterns});;All files (*)")
        if path:
            self.open_paths([path])

    def open_model_file_dialog(self) -> None:
        """Ask for a single-file model (a pickle, ONNX, TorchScript, litdesk JSON) and open it."""
        patterns = " ".join(model_file_patterns())
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", "",
                                              f"Models ({patterns});;All files (*)")
        if path:
            self.open_paths([path])

    def open_results_dialog(self) -> None:
        """Ask for a results file of ``litdesk predict`` (or any shard of a folder made on
        Ray) and attach it to the active dataset as a model's predictions."""
        path, _ = QFileDialog.getOpenFileName(self, "Open results", "",
                                              "Results of litdesk predict (*.parquet)")
        if path:
            self.workbench.open_results(path)

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

    # -- datapoints the user makes -------------------------------------------------------------

    def add_datapoints(self, points: list[NewDatapoint], compare: bool = False) -> bool:
        """Add datapoints the user made (see :meth:`Workbench.add_datapoints`)."""
        return self.workbench.add_datapoints(points, compare)

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
        self.workbench.save_dataset(path)

    def predict_missing(self) -> None:
        """Start predictions for every model that has none for the active dataset."""
        self.workbench.predict_missing()

    # -- errors and help ---------------------------------------------------------------------

    @property
    def errors(self) -> list[str]:
        """Every failure reported to the user in this window, as "title: message"."""
        return self.workbench.errors

    def report_error(self, title: str, message: str) -> None:
        """Tell the user what failed, without blocking; the app goes on."""
        self.workbench.report_error(title, message)

    def _show_error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(f"{title}: {message}", 10_000)
        self.error_reported.emit(message)
        if self.show_dialogs:
            # The text names the job and the model (the title alone is easy to miss).
            box = QMessageBox(QMessageBox.Icon.Warning, title, f"{title}:\n{message}",
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

    def show_training(self, mode: str) -> None:
        """Raise the Train dock in ``mode`` (Train ▸ Quick Baseline…, Fine-tune…)."""
        self.training_dock.set_mode(mode)
        self.docks["Train"].show()
        self.docks["Train"].raise_()
        self.training_dock.label_column.setFocus()

    def _fill_about_model_menu(self) -> None:
        self.about_model_menu.clear()
        for name in self.session.models:
            self.about_model_menu.addAction(name, lambda n=name: self.show_about_model(n))
        if not self.session.models:
            self.about_model_menu.addAction("No model is open").setEnabled(False)

    def show_about_model(self, name: str) -> None:
        """Model ``name``'s file and training record (how to reproduce it), selectable."""
        from litdesk.core.training_record import describe_record, find_record

        source = self.workbench.model_sources.get(name)
        path = source[0] if source else None
        record = find_record(path)
        text = describe_record(name, path, record)
        box = QMessageBox(QMessageBox.Icon.NoIcon, f"About {name}", text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if record is not None:
            import json

            box.setDetailedText(json.dumps(record, indent=2))
        box.addButton(QMessageBox.StandardButton.Close)
        self.about_model_box = box
        box.open()

    def show_about(self) -> None:
        """Versions (litdesk, Python, torch, Qt), the device and where litdesk keeps its files,
        selectable and copied with one button for a bug report."""
        import html

        import PySide6
        from PySide6.QtCore import qVersion
        from PySide6.QtGui import QGuiApplication

        from litdesk.core.about import about_facts

        facts = about_facts(self.workbench.device, f"{qVersion()} (PySide6 {PySide6.__version__})")
        rows = "".join(f"<tr><td><b>{html.escape(label)}</b>&nbsp;&nbsp;</td>"
                       f"<td>{html.escape(value)}</td></tr>" for label, value in facts)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About litdesk",
                          f"<b>litdesk {__version__}</b><br>Understand and compare ML models, "
                          f"offline.<br><br><table>{rows}</table>", parent=self)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        copy = box.addButton("&Copy to Clipboard", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(
            "\n".join(f"{label}: {value}" for label, value in facts)))
        box.addButton(QMessageBox.StandardButton.Close)
        self.about_box = box
        box.open()

    def open_log_folder(self) -> None:
        """Show the folder of litdesk's log file in the file manager (to send with a bug
        report)."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        folder = paths.log_dir()
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.statusBar().showMessage(f"The log folder is {folder}", 10_000)
