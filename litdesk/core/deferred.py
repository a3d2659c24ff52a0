"""Models that load only when something they must compute is missing.

Reopening litdesk on files it has seen, every prediction and explanation it shows is in the
result cache; loading the models (importing torch and transformers, reading weights) would
only delay the window. After a model is loaded once, a small record of it is kept: its name,
specs, fingerprint, the optional contracts it implements and what they report without
computing (gradient targets, the explained field). Opening the same unchanged file with the
same options again gives a :class:`DeferredModel` built from that record: results are found
in the cache by its fingerprint, and the real model is loaded, once, by the first call that
must compute (on the worker thread that makes it).

A record is keyed by the loader's path, the size and modification time of the files there,
and the load options; any change loads the model as before. Models the user had to trust
(pickles, TorchScript) are never deferred: trust is asked again each session.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from litdesk.api import LoadOptions, Model, Spec
from litdesk.api.model import (GradientImageModel, GradientTextModel, SequenceGradientModel,
                               TokenSwapModel)
from litdesk.api.types import spec_from_json, spec_to_json

RECORDS_FOLDER = "models"
#: Optional contracts a deferred model takes on from the real one, by name.
CONTRACTS: dict[str, type] = {"GradientTextModel": GradientTextModel,
                              "TokenSwapModel": TokenSwapModel,
                              "GradientImageModel": GradientImageModel}
#: Plain attributes that the contracts define and views read without computing anything.
RECORDED_ATTRIBUTES = ("text_field", "image_field")
#: The methods of SequenceGradientModel, a protocol told apart by the methods a model has.
_SEQUENCE_METHODS = ("embed_sequence", "span_log_probability")


@dataclass(frozen=True)
class ModelRecord:
    """What litdesk needs to know of a loaded model to show its cached results."""

    name: str
    fingerprint: str
    input_spec: Spec
    output_spec: Spec
    max_minibatch_size: int
    contracts: tuple[str, ...] = ()
    sequence_gradients: bool = False  # implements SequenceGradientModel
    gradient_targets: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Model) -> "ModelRecord":
        """The record of a loaded ``model``."""
        contracts = tuple(name for name, contract in CONTRACTS.items()
                          if isinstance(model, contract))
        targets = tuple(model.gradient_targets()) if contracts and hasattr(
            model, "gradient_targets") else ()
        attributes = {name: getattr(model, name) for name in RECORDED_ATTRIBUTES
                      if isinstance(getattr(model, name, None), str)}
        return cls(model.name, model.fingerprint(), dict(model.input_spec()),
                   dict(model.output_spec()), int(model.max_minibatch_size()), contracts,
                   isinstance(model, SequenceGradientModel), targets, attributes)

    def to_json(self) -> str:
        """The record as JSON (specs through :func:`spec_to_json`)."""
        return json.dumps({
            "name": self.name, "fingerprint": self.fingerprint,
            "input_spec": spec_to_json(self.input_spec),
            "output_spec": spec_to_json(self.output_spec),
            "max_minibatch_size": self.max_minibatch_size, "contracts": list(self.contracts),
            "sequence_gradients": self.sequence_gradients,
            "gradient_targets": list(self.gradient_targets), "attributes": self.attributes})

    @classmethod
    def from_json(cls, text: str) -> "ModelRecord":
        """The record :meth:`to_json` wrote; ValueError (or KeyError, TypeError) otherwise."""
        data = json.loads(text)
        contracts = tuple(data["contracts"])
        if not set(contracts) <= set(CONTRACTS):
            raise ValueError(f"unknown contracts {contracts}")
        attributes = {key: value for key, value in data["attributes"].items()
                      if key in RECORDED_ATTRIBUTES and isinstance(value, str)}
        return cls(str(data["name"]), str(data["fingerprint"]),
                   spec_from_json(data["input_spec"]), spec_from_json(data["output_spec"]),
                   int(data["max_minibatch_size"]), contracts, bool(data["sequence_gradients"]),
                   tuple(map(str, data["gradient_targets"])), attributes)


class DeferredModel(Model):
    """A model known by its :class:`ModelRecord`, loaded by ``load`` on first real use.

    Made by :func:`deferred_model`, which adds the optional contracts the real model had.
    """

    #: A deferred model answers any input, as the real one does (results read from a file do
    #: not); said here so that asking does not load the real model.
    known_inputs_only = False

    def __init__(self, record: ModelRecord, load: Callable[[], Model]) -> None:
        self.record = record
        self.name = record.name
        self._load = load
        self._real: Optional[Model] = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the real model has been loaded."""
        return self._real is not None

    def real(self) -> Model:
        """The real model, loaded now if it was not (on the calling thread, once)."""
        with self._lock:
            if self._real is None:
                self._real = self._load()
                self._real.name = self.name
            return self._real

    def input_spec(self) -> Spec:
        return self.record.input_spec

    def output_spec(self) -> Spec:
        return self.record.output_spec

    def fingerprint(self) -> str:
        return self.record.fingerprint

    def max_minibatch_size(self) -> int:
        return self.record.max_minibatch_size

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.real().predict(inputs)

    def predict_fields(self, inputs: Sequence[dict[str, Any]], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        return self.real().predict_fields(inputs, fields)

    def __getattr__(self, name: str) -> Any:
        """Anything else the real model has (its device, tokenizer, contract methods)."""
        if name.startswith("__") or name in ("record", "_real", "_load", "_lock") \
                or name in _SEQUENCE_METHODS:  # a protocol probe must not load the model
            raise AttributeError(name)
        if name in self.record.attributes:
            return self.record.attributes[name]
        return getattr(self.real(), name)


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: DeferredModel, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.real(), name)(*args, **kwargs)

    method.__name__ = name
    return method


def deferred_model(record: ModelRecord, load: Callable[[], Model]) -> DeferredModel:
    """A :class:`DeferredModel` that also is every optional contract the real model was, each
    contract method loading the real model when called."""
    bases: list[type] = [DeferredModel]
    bases += [CONTRACTS[name] for name in record.contracts]
    namespace: dict[str, Any] = {}
    for base in bases[1:]:
        for name in getattr(base, "__abstractmethods__", ()):
            if name != "gradient_targets":
                namespace[name] = _delegate(name)
    if record.contracts:  # as the real model reported them when it was recorded
        namespace["gradient_targets"] = lambda self: self.record.gradient_targets
    for name in RECORDED_ATTRIBUTES:  # class defaults of the contracts must not hide __getattr__
        if name in record.attributes:
            namespace[name] = record.attributes[name]
    if record.sequence_gradients:
        namespace.update((name, _delegate(name)) for name in _SEQUENCE_METHODS)
    cls = type(f"Deferred{'_'.join(record.contracts) or 'Model'}", tuple(bases), namespace)
    return cls(record, load)


# -- where records are kept -------------------------------------------------------------------


def _files_signature(path: Path) -> Optional[list[tuple[str, int, int]]]:
    """(name, size, modification time) of ``path``, or of each entry of the folder ``path``."""
    try:
        if not path.is_dir():
            status = path.stat()
            return [(path.name, status.st_size, status.st_mtime_ns)]
        signature = []
        with os.scandir(path) as entries:
            for entry in entries:
                status = entry.stat()
                signature.append((entry.name, status.st_size, status.st_mtime_ns))
        return sorted(signature)
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _litdesk_version() -> str:
    """The installed litdesk's version: a new one may compute results (and fingerprints)
    differently, so its records start afresh. (Read once: the package metadata took 3 ms a
    model on the GUI thread as the demo opened.)"""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litdesk")
    except PackageNotFoundError:
        return "unknown"


def record_key(path: "Path | str", options: LoadOptions) -> Optional[str]:
    """The name of the record of the model at ``path`` as it is now, opened with ``options``;
    None when the path cannot be read."""
    path = Path(path).resolve()
    signature = _files_signature(path)
    if signature is None:
        return None
    identity = json.dumps([_litdesk_version(), os.fsencode(path).hex(), signature, options.device,
                           options.precision, options.label])
    return hashlib.blake2b(identity.encode(), digest_size=20).hexdigest()


def read_record(folder: Path, key: str) -> Optional[ModelRecord]:
    """The record kept under ``key`` in ``folder``, or None (missing or unreadable)."""
    try:
        return ModelRecord.from_json((folder / RECORDS_FOLDER / f"{key}.json")
                                     .read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(folder: Path, key: str, record: ModelRecord) -> None:
    """Keep ``record`` under ``key`` in ``folder`` (atomically; OSError when it cannot)."""
    target = folder / RECORDS_FOLDER / f"{key}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_text(record.to_json(), encoding="utf-8")
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
