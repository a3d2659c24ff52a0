"""The workbench: litdesk without its window.

It owns what the application decides and keeps: the session, the result cache, the device
and precision settings, opening files (routing each path to a dataset or model loader, asking
for trust through an event), predicting what is missing, the datapoints the user makes (the
journal first, then predictions, then the dataset), the named slices' persistence, and the
outcomes every view reads. It runs its jobs through a :class:`~litdesk.core.jobs.Runner`
(the window's background runner, or :class:`~litdesk.core.jobs.InlineRunner` in tests and
scripts) and tells its views what happened through psygnal events. The window only lays out
docks, menus and dialogs on top of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from psygnal import Signal

from litdesk.api import Dataset, LoadOptions, Model, TrustRequired
from litdesk.core import paths
from litdesk.core.cache import MAX_BYTES_SETTING, ResultCache
from litdesk.core.datapoints import (NewDatapoint, datapoints_table, generated_rows,
                                     new_predictions_job,
                                     with_datapoints, with_values)
from litdesk.core.jobs import Job, JobFailed, Runner, function_job
from litdesk.core.journal import Journal, ValueFix, journal_for
from litdesk.core.loaders import iter_load_dataset, iter_load_preview, wants_preview
from litdesk.core.deferred import (ModelRecord, _files_signature, deferred_model, read_record,
                                   record_key, write_record)
from litdesk.core.model_loading import load_model, load_model_job, looks_like_model
from litdesk.core.outcomes import outcomes_job
from litdesk.core.predict import (Predictions, SpecMismatchError, bind_inputs, input_mapping,
                                  predict_job, set_input_mapping)
from litdesk.core.results import ResultsModel, is_results, read_results_model
from litdesk.core.save import save_dataset_job
from litdesk.core.session import PartialDataset, Session
from litdesk.core.settings import Settings
from litdesk.core.slice_store import SliceStore

DEVICES = ("auto", "cpu", "cuda", "mps")
#: The setting that keeps the input mappings: {model name: {dataset name: {field: column}}}.
INPUT_MAPPINGS_SETTING = "models/input_mappings"
PRECISIONS = ("fp32", "bf16", "fp16")
#: The setting that keeps each binary classifier's decision threshold: {model name: threshold}.
THRESHOLDS_SETTING = "models/thresholds"


@dataclass
class _PendingDatapoints:
    """Datapoints made and journaled, waiting for their predictions before they join."""

    dataset_name: str
    points: list[NewDatapoint]
    compare: bool
    predictions: Optional[dict] = None


def _resolved(path: "Path | str") -> Path:
    return Path(path).expanduser().resolve()


class Workbench:
    """The application's state and work, without Qt.

    ``trusted_paths`` are the files the user said may run code when loaded (``--trust`` on
    the command line covers the paths given there, nothing opened later).
    """

    #: A dataset joined the session (its name); tests and scripts wait on it.
    dataset_loaded = Signal(str)
    #: A model joined the session (its name).
    model_loaded = Signal(str)
    #: Datapoints the user made joined their dataset (their row positions).
    datapoints_added = Signal(object)
    #: Something failed: a title and a one-line message for the user. The app goes on.
    error_reported = Signal(str, str)
    #: A passing message for the status bar.
    status_message = Signal(str)
    #: Loading ``path`` would run code from it (a pickle, TorchScript): ask the user, then call
    #: :meth:`open_model` with ``trust=True``. Arguments: the path and the loader's reason.
    trust_required = Signal(object, str)
    #: A model's files were opened again (its name): it was reloaded, or was open already.
    model_reopened = Signal(str)
    #: A datapoint could not be added: the value that does not fit, for the editor to show.
    datapoint_rejected = Signal(str)

    def __init__(self, runner: Runner, session: Optional[Session] = None,
                 cache: Optional[ResultCache] = None, settings: Optional[Settings] = None,
                 device: Optional[str] = None, label: Optional[str] = None,
                 trusted_paths: Iterable["Path | str"] = ()) -> None:
        self.runner = runner
        self.session = session or Session()
        self.cache = cache or ResultCache()
        self.settings = settings or Settings()
        self._device_override = device  # --device wins over the saved choice
        self.label = label
        self.trusted_paths = {_resolved(path) for path in trusted_paths}
        self.errors: list[str] = []
        self._predicting: set[tuple[str, str]] = set()  # (dataset, model) being predicted
        self._journals: dict[str, Journal] = {}  # dataset name -> its journal
        self._pending: list[_PendingDatapoints] = []  # made, being predicted, in order
        self._outcomes_generation = 0
        #: Model name -> (resolved path, trusted, files signature) of the models opened from files.
        self.model_sources: dict[str, tuple[Path, bool, object]] = {}
        self._told_unfit: set[tuple[str, str]] = set()  # (dataset, model) said not to fit
        self._bindings: dict[tuple[str, str], dict] = {}  # (dataset, model) -> what it read
        self._previews: dict[Path, Optional[str]] = {}  # loading -> its first rows' name
        self._unattached_results: list[ResultsModel] = []  # read, waiting for their dataset
        self.slice_store = SliceStore(self.session)  # slices persist with their dataset
        self.slice_store.message.connect(self.status_message.emit)
        self.session.dataset_changed.connect(self.predict_missing)
        self.session.spec_changed.connect(self._on_spec_changed)
        self.session.rows_added.connect(lambda _rows: self.predict_missing())
        for signal in (self.session.dataset_changed, self.session.spec_changed,
                       self.session.predictions_changed, self.session.rows_added,
                       self.session.thresholds_changed):
            signal.connect(self.refresh_outcomes)
        self.session.values_changed.connect(self.refresh_outcomes)  # a fixed gold label
        # Each binary classifier's decision threshold comes back on the next launch.
        saved = self.settings.get(THRESHOLDS_SETTING, {})
        self.session.thresholds.update(
            {str(name): float(value) for name, value in (saved or {}).items()
             if isinstance(value, (int, float)) and 0.0 <= value <= 1.0})
        self.session.thresholds_changed.connect(
            lambda _name: self._save_setting(THRESHOLDS_SETTING, dict(self.session.thresholds)))

    # -- settings ----------------------------------------------------------------------------

    @property
    def device(self) -> str:
        """The torch device for models opened from now on: auto, cpu, cuda or mps."""
        return self._device_override or str(self.settings.get("models/device", "auto"))

    @device.setter
    def device(self, value: str) -> None:
        self._device_override = None
        self._save_setting("models/device", value)

    @property
    def precision(self) -> str:
        """fp32, or bf16/fp16 autocast on a GPU, for models opened from now on."""
        return str(self.settings.get("models/precision", "fp32"))

    @precision.setter
    def precision(self, value: str) -> None:
        self._save_setting("models/precision", value)

    @property
    def cache_max_bytes(self) -> int:
        """The result cache's size cap; a lower one evicts in the background."""
        return self.cache.max_bytes

    @cache_max_bytes.setter
    def cache_max_bytes(self, value: int) -> None:
        self.cache.max_bytes = value
        self._save_setting(MAX_BYTES_SETTING, value)
        self.runner.submit(function_job(self.cache.trim, "Trimming the result cache"),
                           "Trim the result cache")

    def _save_setting(self, key: str, value) -> None:
        try:
            self.settings.set(key, value)
        except OSError as error:
            self.report_error("The setting is kept until litdesk closes",
                              f"{self.settings.path}: {error.strerror or error}")

    # -- opening -----------------------------------------------------------------------------

    def open_paths(self, paths_in: Iterable["Path | str"]) -> None:
        """Open datasets and models; each path is routed by what the plugins declare."""
        for path in map(Path, paths_in):
            if is_results(path):
                self.open_results(path)
            elif looks_like_model(path):
                self.open_model(path, trust=_resolved(path) in self.trusted_paths)
            else:
                self.open_dataset(path)

    def open_dataset(self, path: "Path | str") -> None:
        """Load a dataset in the background. A large text file shows its first rows at once
        (a :class:`PartialDataset`) and the whole takes their place when it has loaded."""
        path = Path(path)
        if wants_preview(path, self.cache):
            self._previews[path] = None
            self.runner.submit(iter_load_preview(path), f"Read the first rows of {path.name}",
                               lambda preview: self._on_preview(path, preview),
                               self._report_failure)
        self.runner.submit(iter_load_dataset(path, self.cache), f"Load {path.name}",
                           lambda dataset: self._on_dataset_loaded(dataset, path),
                           lambda failure: self._on_dataset_failed(path, failure))

    def _on_preview(self, path: Path, preview: Optional[Dataset]) -> None:
        if preview is None or path not in self._previews or self._previews[path] is not None:
            return  # nothing readable, or the whole dataset is there already
        partial = PartialDataset(preview.table, preview.spec(), preview.name, preview.path)
        self._previews[path] = self.session.set_dataset(partial)
        self.session.select([0], 0, source=self)
        self.status_message.emit(f"Showing the first {len(partial):,} rows of {path.name} "
                                 "while the rest loads")

    def _on_dataset_failed(self, path: Path, failure: JobFailed) -> None:
        shown = self._previews.pop(path, None)
        if shown is not None:
            self.session.remove_dataset(shown)
        self._report_failure(failure)

    def open_results(self, path: "Path | str") -> None:
        """Open results written by ``litdesk predict`` (a Parquet file, or a folder of shards
        made on Ray) as a model of the dataset they were made from: it answers from the file,
        so every view works without the model and nothing runs. They are matched to the
        active dataset once it has loaded; another dataset is a one-line error."""
        path = Path(path)
        self.runner.submit(function_job(lambda: read_results_model(path),
                                        f"Reading {path.name}"), f"Open results {path.name}",
                           self._on_results_read, self._report_failure)

    def _on_results_read(self, model: ResultsModel) -> None:
        self._unattached_results.append(model)
        self._attach_results()

    def _attach_results(self) -> None:
        """Match the results read so far to the active dataset (on the worker: it hashes the
        input columns), each then joining the session as a model."""
        dataset = self.session.dataset
        if dataset is None or isinstance(dataset, PartialDataset):
            return  # when the dataset has loaded
        for model in self._unattached_results:
            def attach(model: ResultsModel = model) -> ResultsModel:
                model.attach(dataset)
                return model

            self.runner.submit(function_job(attach, f"Matching {model.path.name}"),
                               f"Match {model.path.name} to {dataset.name}",
                               self._on_model_loaded, self._report_failure)
        self._unattached_results.clear()

    def open_model(self, path: "Path | str", trust: bool = False) -> None:
        """Load a model in the background; a file that would run code asks first
        (:attr:`trust_required`).

        A model opened before from the same unchanged files, without needing trust, joins at
        once as a :class:`~litdesk.core.deferred.DeferredModel`: its results come from the
        cache, and it loads only when something it must compute is missing.
        """
        path = Path(path)
        open_already = self.model_named_by(path)
        if open_already is not None:  # no "name (2)": the same files are one model
            if self.model_sources[open_already][2] == _files_signature(_resolved(path)):
                self.status_message.emit(f"{open_already} is open already")
                self.model_reopened.emit(open_already)
            else:
                self.reload_model(open_already, trust=trust)
            return
        options = LoadOptions(device=self.device, trust=trust, label=self.label,
                              precision=self.precision)
        key = None if trust else record_key(path, options)
        record = read_record(self.cache.folder, key) if key is not None else None
        source = (_resolved(path), trust, _files_signature(_resolved(path)))
        if record is not None:
            self._on_model_loaded(deferred_model(record, lambda: load_model(path, options)),
                                  source)
            return
        self.runner.submit(self._load_and_record(path, options, key), f"Load {path.name}",
                           lambda model: self._on_model_loaded(model, source),
                           lambda failure: self._on_model_failed(path, failure))

    def model_named_by(self, path: "Path | str") -> Optional[str]:
        """The open model loaded from ``path``, or None."""
        resolved = _resolved(path)
        return next((name for name, source in self.model_sources.items()
                     if source[0] == resolved), None)

    def reload_model(self, name: str, trust: Optional[bool] = None) -> None:
        """Read model ``name``'s files again (after retraining, say) and predict again with it.

        A model given from Python has no files: it is reported, nothing changes."""
        if name not in self.session.models:
            return
        if name not in self.model_sources:
            self.report_error(f"Cannot reload {name}", f"{name} was given from Python, not "
                              "opened from a file")
            return
        path, trusted, _signature = self.model_sources[name]
        trusted = trusted if trust is None else trust or trusted
        options = LoadOptions(device=self.device, trust=trusted, label=self.label,
                              precision=self.precision)
        key = None if trusted else record_key(path, options)

        def reloaded(model: Model) -> None:
            if name not in self.session.models:
                return  # removed meanwhile
            self.model_sources[name] = (path, trusted, _files_signature(path))
            for dataset_name in list(self.session.datasets):  # the mappings chosen stay
                mapping = input_mapping(self.session.models[name], dataset_name)
                if mapping:
                    set_input_mapping(model, dataset_name, mapping)
            self.session.replace_model(name, model)
            self.status_message.emit(f"Reloaded {name} from {path}")
            self.model_reopened.emit(name)
            self.predict_missing()

        self.runner.submit(self._load_and_record(path, options, key), f"Reload {name}",
                           reloaded, lambda failure: self._on_model_failed(path, failure))

    def remove_model(self, name: str) -> None:
        """Close model ``name``: its predictions leave every view."""
        self.model_sources.pop(name, None)
        self._predicting = {key for key in self._predicting if key[1] != name}
        self._bindings = {key: value for key, value in self._bindings.items() if key[1] != name}
        self._told_unfit = {key for key in self._told_unfit if key[1] != name}
        self.session.remove_model(name)
        self.status_message.emit(f"Closed {name}")

    def set_input_mapping(self, name: str, mapping: dict[str, str]) -> None:
        """Read model ``name``'s input fields from these columns of the active dataset (field
        -> column), remembered for this model and dataset; its predictions are made again."""
        model, dataset = self.session.models.get(name), self.session.dataset
        if model is None or dataset is None:
            return
        set_input_mapping(model, dataset.name, mapping)
        saved = dict(self.settings.get(INPUT_MAPPINGS_SETTING, {}) or {})
        saved[name] = {**saved.get(name, {}), dataset.name: dict(mapping)}
        self._save_setting(INPUT_MAPPINGS_SETTING, saved)
        key = (dataset.name, name)
        self._predicting.discard(key)
        self._bindings.pop(key, None)
        self._told_unfit.discard(key)
        self.session.forget_predictions(name, dataset.name)
        self.session.models_changed.emit()  # what fits may have changed
        self.predict_missing()

    def _load_and_record(self, path: Path, options: LoadOptions, key: Optional[str]
                         ) -> Job[Model]:
        """Load the model, then keep its record under ``key`` for the next open of the same
        files (on the worker: a fingerprint may hash the whole model)."""
        model = yield from load_model_job(path, options)
        if key is not None:
            try:
                write_record(self.cache.folder, key, ModelRecord.of(model))
            except OSError:
                pass  # the model loads again next time; nothing is lost
        return model

    def open_objects(self, models: Sequence[Model] = (), datasets: Sequence[Dataset] = ()
                     ) -> None:
        """Add models and datasets that are already in memory (``litdesk.show``)."""
        for model in models:
            self._on_model_loaded(model)
        for dataset in reversed(list(datasets)):  # the first one given ends up shown
            self._on_dataset_loaded(dataset)

    def open_demo(self) -> None:
        """The built-in sentiment demo: its dataset, two classifiers and a tiny language model."""
        self.open_paths([paths.DEMO_DATASET, *paths.DEMO_MODELS, paths.DEMO_LM])

    def open_tabular_demo(self) -> None:
        """Breast cancer measurements and three scikit-learn models; the pickles open without
        asking because their hashes match the shipped manifest."""
        self.open_paths([paths.DEMO_TABULAR_DATASET, *paths.DEMO_TABULAR_MODELS])

    def _on_model_failed(self, path: Path, failure: JobFailed) -> None:
        if isinstance(failure.error, TrustRequired) and len(self.trust_required):  # someone asks
            self.trust_required.emit(path, str(failure.error))
        else:
            self._report_failure(failure)

    def _on_dataset_loaded(self, dataset: Dataset, path: Optional[Path] = None) -> None:
        journal = journal_for(dataset)
        if journal is not None:
            dataset = self._restore_datapoints(dataset, journal)
            dataset = self._restore_fixes(dataset, journal)
        shown = self._previews.pop(path, None) if path is not None else None
        if shown is not None and shown in self.session.datasets:
            name = shown
            self.session.replace_dataset(name, dataset)
        else:
            name = self.session.set_dataset(dataset)
        if journal is not None:
            self._journals[name] = journal
        if len(dataset) and shown is None:
            self.session.select([0], 0, source=self)
        self.dataset_loaded.emit(name)
        self._attach_results()

    def _on_model_loaded(self, model: Model, source: Optional[tuple] = None) -> None:
        saved = self.settings.get(INPUT_MAPPINGS_SETTING, {}) or {}
        name = model.name if model.name not in self.session.models else None
        for dataset_name, mapping in (saved.get(name, {}) if name else {}).items():
            set_input_mapping(model, dataset_name, mapping)  # remembered from earlier sessions
        name = self.session.add_model(model)
        if source is not None:
            self.model_sources[name] = source
        self.model_loaded.emit(name)
        self.predict_missing()

    # -- predictions -------------------------------------------------------------------------

    def predict_missing(self) -> None:
        """Start predictions for every model that has none for the active dataset."""
        dataset = self.session.dataset
        if dataset is None or isinstance(dataset, PartialDataset):
            return
        unfit = []
        for name, model in self.session.models.items():
            key = (dataset.name, name)
            if name in self.session.predictions or key in self._predicting:
                continue
            try:
                binding = bind_inputs(model, dataset)
            except SpecMismatchError as error:  # not run on this dataset; the menu says why
                if key not in self._told_unfit:
                    self._told_unfit.add(key)
                    unfit.append((name, str(error)))
                continue
            self._predicting.add(key)
            signature = self._bindings[key] = self._binding_signature(binding, dataset)
            self.runner.submit(predict_job(model, dataset, cache=self.cache), f"Predict {name}",
                               lambda predictions, model=model, signature=signature:
                               self._on_predictions(predictions, model, signature),
                               lambda failure, key=key: self._on_predict_failed(key, failure))
        if len(unfit) == 1:
            self.status_message.emit(f"{unfit[0][0]} is not run on {dataset.name}: {unfit[0][1]}")
        elif unfit:
            self.status_message.emit(
                f"Not run on {dataset.name}, whose columns do not fit their inputs (the Models "
                f"menu says why): {', '.join(name for name, _error in unfit)}")

    @staticmethod
    def _binding_signature(binding: dict[str, str], dataset: Dataset) -> dict:
        """What a model reads of ``dataset``: each input's column and that column's type."""
        spec = dataset.spec()
        return {name: (column, spec[column]) for name, column in binding.items()}

    def _on_spec_changed(self) -> None:
        """A column was retyped: models that now read other columns, or columns of another
        type, predict again; models that no longer fit lose their predictions."""
        dataset = self.session.dataset
        if dataset is None:
            return
        changed = False
        for name, model in self.session.models.items():
            key = (dataset.name, name)
            try:
                now = self._binding_signature(bind_inputs(model, dataset), dataset)
            except SpecMismatchError:
                now = None
            if key in self._bindings and now != self._bindings[key]:
                del self._bindings[key]
                self._predicting.discard(key)
                self.session.forget_predictions(name, dataset.name)
                changed = True
            elif key in self._told_unfit and now is not None:
                self._told_unfit.discard(key)
                changed = True
        if changed:
            self.session.models_changed.emit()  # which models fit changed
        self.predict_missing()

    def _on_predict_failed(self, key: tuple[str, str], failure: JobFailed) -> None:
        self._predicting.discard(key)
        self._report_failure(failure)

    def _on_predictions(self, predictions: Predictions, model: Optional[Model] = None,
                        signature: Optional[dict] = None) -> None:
        key = (predictions.dataset_name, predictions.model_name)
        if model is not None and (self.session.models.get(predictions.model_name) is not model
                                  or self._bindings.get(key) is not signature):
            return  # removed, reloaded or remapped since: the old model's, or old inputs
        self._predicting.discard(key)
        self.session.set_predictions(predictions)

    def refresh_outcomes(self, *_args) -> None:
        """Compute the active dataset's outcomes again, on the runner (a newer request wins)."""
        self._outcomes_generation += 1
        generation = self._outcomes_generation
        dataset = self.session.dataset
        if dataset is None:
            return
        predictions = dict(self.session.predictions)

        def deliver(outcomes) -> None:
            if generation == self._outcomes_generation:
                self.session.set_outcomes(outcomes)

        self.runner.submit(outcomes_job(dataset, predictions, dict(self.session.thresholds)),
                           "Outcomes", deliver,
                           self._report_failure, interactive=True)  # every view waits on it

    # -- datapoints the user makes -----------------------------------------------------------

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
        self.status_message.emit(
            f"Restored {len(points):,} datapoint(s) made on {dataset.name} earlier")
        return restored

    def _restore_fixes(self, dataset: Dataset, journal: Journal) -> Dataset:
        """``dataset`` with the values (labels) its journal says the user fixed."""
        fixes = journal.read_fixes()
        for fix in fixes:
            try:
                dataset = with_values(dataset, fix.column, [fix.row], [fix.value])
            except ValueError as error:
                self.report_error("A label fixed earlier could not be restored",
                                  f"{error} (it stays in {journal.path})")
        if fixes:
            self.status_message.emit(
                f"Restored {len(fixes):,} value(s) fixed in {dataset.name} earlier")
        return dataset

    def fix_values(self, column: str, rows: Sequence[int], values: Sequence) -> bool:
        """Set ``column`` to ``values`` at ``rows`` of the active dataset (accepting suggested
        labels): written to the journal first, so reopening the file keeps them. Returns
        False, after telling the user why, when a value does not fit."""
        dataset = self.session.dataset
        if dataset is None or not len(rows):
            return False
        try:
            with_values(dataset, column, rows, list(values))  # every value fits
        except ValueError as error:
            self.report_error("Cannot change the value", str(error))
            return False
        self._journal(dataset, "fixed labels", lambda journal: journal.append_fixes(
            [ValueFix.now(row, column, value) for row, value in zip(rows, values)]))
        self.session.set_values(column, rows, values)
        return True

    def _journal(self, dataset: Dataset, what: str, write) -> None:
        """Call ``write(journal)`` with the dataset's journal; without one (no file), tell the
        user that ``what`` lasts until litdesk closes."""
        journal = self._journals.get(dataset.name)
        if journal is None:
            self.status_message.emit(
                f"{dataset.name} has no file, so its {what} last until litdesk closes; "
                "File ▸ Save Dataset As (Ctrl+S) keeps them")
            return
        try:
            write(journal)
        except OSError as error:
            self.report_error("Could not write the journal of datapoints",
                              f"{journal.path}: {error}")

    def add_datapoints(self, points: list[NewDatapoint], compare: bool = False) -> bool:
        """Keep ``points`` (in the journal first), predict them with every model, then add them
        to the active dataset and select them; ``compare`` pins the first one's parent.

        Returns False, after telling the user why, when a value does not fit its column."""
        dataset = self.session.dataset
        if dataset is None or not points:
            return False
        if isinstance(dataset, PartialDataset):
            message = f"{dataset.name} is still loading: add datapoints once it has loaded"
            self.datapoint_rejected.emit(message)
            self.status_message.emit(message)
            return False
        try:
            datapoints_table(dataset, points)  # every value fits its column
        except ValueError as error:
            self.datapoint_rejected.emit(str(error))
            self.report_error("Cannot add the datapoint", str(error))
            return False
        self._journal(dataset, "new datapoints", lambda journal: journal.append(points))
        pending = _PendingDatapoints(dataset.name, points, compare)
        self._pending.append(pending)
        self.runner.submit(
            new_predictions_job(dict(self.session.models), dataset, points, self.cache),
            f"Predict {len(points):,} new datapoint(s)",
            lambda predictions: self._on_new_predictions(pending, predictions),
            lambda failure: self._on_new_predictions_failed(pending, failure), interactive=True)
        return True

    def _on_new_predictions(self, pending: _PendingDatapoints, predictions: dict) -> None:
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

    def _on_new_predictions_failed(self, pending: _PendingDatapoints, failure: JobFailed
                                   ) -> None:
        self._report_failure(failure)
        self._on_new_predictions(pending, {})  # they join all the same, without predictions

    def delete_datapoints(self, rows) -> int:
        """Delete the datapoints made here among ``rows`` of the active dataset (rows of its
        file stay): journaled first, so reopening the file does not bring them back. Returns
        how many were deleted."""
        dataset = self.session.dataset
        if dataset is None or isinstance(dataset, PartialDataset):
            return 0
        made = generated_rows(dataset)
        doomed = made[np.isin(made, np.asarray(rows, dtype=np.int64))]
        if not doomed.size:
            self.status_message.emit("Only datapoints made here can be deleted")
            return 0
        journal = self._journals.get(dataset.name)
        if journal is not None:
            try:
                journal.append_deletion(doomed.tolist())
            except OSError as error:
                self.report_error("Could not write the journal of datapoints",
                                  f"{journal.path}: {error}")
                return 0
        self.session.remove_datapoints(doomed)
        self.status_message.emit(f"Deleted {doomed.size:,} datapoint(s) made here")
        return int(doomed.size)

    def save_dataset(self, path: Path) -> None:
        """Save the active dataset to ``path`` in the background (CSV, JSONL or Parquet)."""
        if self.session.dataset is None:
            return
        self.runner.submit(save_dataset_job(self.session.dataset, path), f"Save {path.name}",
                           lambda saved: self.status_message.emit(f"Saved {saved}"),
                           self._report_failure)

    # -- errors ------------------------------------------------------------------------------

    def _report_failure(self, failure: JobFailed) -> None:
        self.report_error(f"{failure.title} failed", str(failure.error))

    def report_error(self, title: str, message: str) -> None:
        """Tell the user what failed (:attr:`error_reported`); the app goes on."""
        self.errors.append(f"{title}: {message}")
        self.error_reported.emit(title, message)
