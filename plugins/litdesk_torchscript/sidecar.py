"""The JSON sidecar that describes a tensor classifier, and the Model built on it.

The TorchScript and ONNX plugins share both. A model file ``name.pt`` (``name.onnx``…) is
described by ``name.json`` beside it, else by ``litdesk.json`` in the same folder::

    {"inputs": [{"name": "x1", "type": "number"},
                {"name": "features", "type": "vector", "size": 4}],
     "labels": ["negative", "positive"],
     "output": "logits"}

The network takes one float tensor of shape (batch, features): the inputs side by side in the
order listed, a ``number`` (a :class:`Scalar` column) as one feature, a ``vector`` (an
:class:`Embeddings` column of lists) as ``size`` features. It returns one score per label and
example, ``logits`` (softmax is applied) or ``probabilities``; a two-label classifier may
return one column instead, the logit or probability of the second label.

An ONNX graph may instead take one input per column, named as in the sidecar: a ``number`` as a
float (batch, 1), a ``vector`` as a float (batch, size) and a ``category`` (``{"name": "colour",
"type": "category"}``, a :class:`CategoryLabel` column) as a string (batch, 1) tensor, a
missing value as "". litdesk's tabular baselines are saved so (skl2onnx pipelines).
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from litdesk.api import (
    read_json_document,
    CategoryLabel,
    Embeddings,
    FieldType,
    Model,
    ModelLoadError,
    MulticlassPreds,
    Scalar,
    Spec,
)

SHARED_SIDECAR_NAME = "litdesk.json"
OUTPUT_KINDS = ("logits", "probabilities")
INPUT_TYPES = ("number", "vector", "category")
DEFAULT_LABEL = "label"
_EXAMPLE = ('{"inputs": [{"name": "x1", "type": "number"}, '
            '{"name": "features", "type": "vector", "size": 4}], '
            '"labels": ["a", "b"], "output": "logits"}')


@dataclass(frozen=True)
class InputField:
    """One model input: a number, a vector of ``size`` numbers, or a ``category`` (a string,
    fed only to a graph with one input per column)."""

    name: str
    size: Optional[int] = None  # None: a number (or a category)
    category: bool = False

    @property
    def width(self) -> int:
        """How many features it contributes to the network's input."""
        return 1 if self.size is None else self.size

    @property
    def field_type(self) -> FieldType:
        """The dataset column type it binds to."""
        if self.category:
            return CategoryLabel()
        return Scalar() if self.size is None else Embeddings()

    def values(self, examples: Sequence[dict[str, Any]]) -> np.ndarray:
        """Its values in ``examples`` as a (batch, width) array: float32, or for a category
        strings (object; a missing value "").

        Raises ValueError naming the input when a value does not fit."""
        values = [example.get(self.name) for example in examples]
        if self.category:
            return np.array([["" if value is None else str(value)] for value in values],
                            dtype=object).reshape(-1, 1)
        if self.size is None:
            numbers = [math.nan if value is None else value for value in values]
            try:
                return np.asarray(numbers, dtype=np.float32).reshape(-1, 1)
            except (TypeError, ValueError):
                raise ValueError(f"input {self.name}: expected numbers") from None
        try:
            block = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            block = None
        if block is None or block.shape != (len(examples), self.size):
            raise ValueError(f"input {self.name}: expected vectors of {self.size} numbers")
        return block


@dataclass(frozen=True)
class Sidecar:
    """A parsed sidecar: inputs in network order, labels, the output kind, and its own hash."""

    path: Path
    inputs: tuple[InputField, ...]
    labels: tuple[str, ...]
    output: str
    digest: str

    @property
    def width(self) -> int:
        """The number of features the network takes."""
        return sum(field.width for field in self.inputs)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _parse_input(item: Any, index: int) -> InputField:
    _require(isinstance(item, dict), f"inputs[{index}] is not an object")
    name = item.get("name")
    _require(isinstance(name, str) and name != "", f"inputs[{index}] has no 'name'")
    kind = item.get("type")
    _require(kind in INPUT_TYPES, f"input {name!r}: 'type' is {kind!r}; expected "
                                  f"{' or '.join(map(repr, INPUT_TYPES))}")
    if kind in ("number", "category"):
        return InputField(name, category=kind == "category")
    size = item.get("size")
    _require(isinstance(size, int) and not isinstance(size, bool) and size > 0,
             f"input {name!r}: a vector needs a positive integer 'size'")
    return InputField(name, size)


def _parse(document: Any) -> tuple[tuple[InputField, ...], tuple[str, ...], str]:
    _require(isinstance(document, dict), "not a JSON object")
    missing = [key for key in ("inputs", "labels", "output") if key not in document]
    _require(not missing, f"missing {', '.join(map(repr, missing))}; expected e.g. {_EXAMPLE}")
    items = document["inputs"]
    _require(isinstance(items, list) and len(items) > 0, "'inputs' should be a non-empty list")
    inputs = tuple(_parse_input(item, index) for index, item in enumerate(items))
    names = [field.name for field in inputs]
    _require(len(set(names)) == len(names), "input names should be unique")
    labels = document["labels"]
    _require(isinstance(labels, list) and len(labels) >= 2
             and all(isinstance(label, str) for label in labels) and len(set(labels)) == len(labels),
             "'labels' should be a list of at least two distinct strings")
    output = document["output"]
    _require(output in OUTPUT_KINDS,
             f"'output' is {output!r}; expected {' or '.join(map(repr, OUTPUT_KINDS))}")
    return inputs, tuple(labels), output


def read_sidecar(file: Path) -> Sidecar:
    """The sidecar of the model file ``file``: ``<stem>.json``, else ``litdesk.json``.

    Raises :class:`ModelLoadError` naming the sidecar when it is missing or invalid.
    """
    own, shared = file.with_suffix(".json"), file.parent / SHARED_SIDECAR_NAME
    path = next((candidate for candidate in (own, shared) if candidate.is_file()), None)
    if path is None:
        raise ModelLoadError(f"{file}: no sidecar {own.name} or {shared.name} beside it naming "
                             f"its inputs and labels, e.g. {_EXAMPLE}")
    document = read_json_document(path)
    try:
        inputs, labels, output = _parse(document)
    except ValueError as error:
        raise ModelLoadError(f"{path}: {error}") from error
    return Sidecar(path, inputs, labels, output, hashlib.sha256(path.read_bytes()).hexdigest())


def fingerprint(file: Path, sidecar: Sidecar) -> str:
    """sha256 of the model file's bytes and its sidecar's (labels and output kind matter too)."""
    with open(file, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    digest.update(sidecar.digest.encode())
    return digest.hexdigest()


class SidecarClassifier(Model):
    """A classifier whose network maps a (batch, features) float matrix to scores per label.

    Subclasses run the network in :meth:`_forward`; this class builds the matrix from the
    examples (missing numbers as NaN) and turns the scores into probabilities.
    """

    def __init__(self, sidecar: Sidecar, name: str, label: str = DEFAULT_LABEL,
                 fingerprint: str | None = None) -> None:
        self.sidecar = sidecar
        self.name = name
        self.label = label
        self._fingerprint = fingerprint or f"{type(self).__qualname__}:{name}"

    def input_spec(self) -> Spec:
        return {field.name: field.field_type for field in self.sidecar.inputs}

    def output_spec(self) -> Spec:
        return {"probas": MulticlassPreds(vocab=self.sidecar.labels, parent=self.label)}

    def max_minibatch_size(self) -> int:
        return 256

    def fingerprint(self) -> str:
        return self._fingerprint

    @abc.abstractmethod
    def _forward(self, features: np.ndarray) -> np.ndarray:
        """The network's scores for a float32 (batch, features) matrix, as a numpy array."""

    def features(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        """The network's input matrix for ``inputs`` (float32, batch × ``sidecar.width``)."""
        categories = [field.name for field in self.sidecar.inputs if field.category]
        if categories:
            raise ValueError(f"input(s) {', '.join(categories)} are categories, which only an "
                             "ONNX graph with one input per column takes")
        return np.concatenate([field.values(inputs) for field in self.sidecar.inputs], axis=1)

    def _scores(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        """The network's scores for ``inputs``."""
        return self._forward(self.features(inputs))

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        n, n_labels = scores.shape[0], len(self.sidecar.labels)
        if scores.shape == (n,):
            scores = scores[:, None]
        accepted = [(n, n_labels)] + ([(n, 1)] if n_labels == 2 else [])
        if scores.shape not in accepted:
            raise ValueError(f"the network returned shape {tuple(scores.shape)} for {n} examples; "
                             f"expected {' or '.join(map(str, accepted))} for "
                             f"{n_labels} labels")
        logits = self.sidecar.output == "logits"
        if scores.shape[1] == 1:
            second = 1.0 / (1.0 + np.exp(-scores[:, 0])) if logits else scores[:, 0]
            return np.stack([1.0 - second, second], axis=1)
        if logits:
            exp = np.exp(scores - scores.max(axis=1, keepdims=True))
            return exp / exp.sum(axis=1, keepdims=True)
        return scores

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not inputs:
            return []
        scores = np.asarray(self._scores(inputs), dtype=np.float64)
        probas = self._probabilities(scores).astype(np.float32)
        return [{"probas": row} for row in probas]

    def check_runs(self, file: Path) -> None:
        """Predict a batch of zeros, so that a network that does not fit its sidecar fails now.

        Raises :class:`ModelLoadError` naming ``file`` and the sidecar.
        """
        zeros = {field.name: "" if field.category else 0.0 if field.size is None
                 else [0.0] * field.size for field in self.sidecar.inputs}
        try:
            self.predict([zeros, zeros])
        except Exception as error:  # whatever the network raises, the user gets one message
            reason = next((line.strip() for line in str(error).splitlines() if line.strip()),
                          type(error).__name__)
            raise ModelLoadError(f"{file}: does not run on the {self.sidecar.width} features "
                                 f"that {self.sidecar.path.name} describes ({reason})") from error
