"""scikit-learn classifiers, regressors and pipelines saved with joblib or pickle.

Unpickling runs code from the file, so :func:`load` raises :class:`TrustRequired` unless the
user said they trust the file, before it unpickles a byte of it. Files that ship with litdesk
(the tabular demo's models) open without asking when their SHA-256 is one litdesk vouches for
(``LoadOptions.shipped_files``, from the manifest shipped beside them). The file is read once:
the bytes hashed are the bytes unpickled, so it cannot be swapped between the check and the
load.

The model's inputs come from the fitted estimator. One fitted on a DataFrame reads the columns
of ``feature_names_in_``: numbers (:class:`Scalar`), except the columns that the pipeline's
first step sends to an encoder with text categories (:class:`CategoryLabel`, the encoder's
categories as vocab) or to a text vectorizer (:class:`TextSegment`). A pipeline that starts
with a text vectorizer and has no column names reads one :class:`TextSegment` named ``text``.
Classifiers output :class:`MulticlassPreds` (``predict_proba``, or a one-hot of ``predict``
when there is none); regressors a :class:`RegressionScore`. Either names the gold column
``options.label``, else ``label``.

sklearn, joblib and pandas are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import (
    single_matching_file,
    CategoryLabel,
    FieldType,
    LoadOptions,
    Model,
    ModelLoadError,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    Spec,
    TextSegment,
    TrustRequired,
)

PATTERNS = ("*.joblib", "*.pkl", "*.pickle")
#: The input of a text pipeline fitted without column names.
TEXT_INPUT = "text"
DEFAULT_LABEL = "label"
#: Models load on parallel worker threads, and unpickling imports sklearn's modules; two threads
#: importing sklearn's circularly dependent modules at once can see one half-initialised
#: ("cannot import name 'clone' from partially initialized module 'sklearn.base'").
_IMPORT_LOCK = threading.Lock()


def load(path: Path, options: LoadOptions = LoadOptions()) -> "SklearnModel":
    """Load the estimator pickled in ``path`` (a file, or a folder holding one pickle).

    Raises :class:`TrustRequired` when ``options.trust`` is False, without unpickling the
    file, unless it is a shipped file whose hash matches its manifest.
    """
    file = single_matching_file(Path(path), PATTERNS)
    try:
        real = file.resolve()  # read and checked by the same name: a link swapped now is moot
        data = real.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{file}: cannot be read ({error.strerror or error})") from error
    fingerprint = hashlib.sha256(data).hexdigest()
    if not options.trust and not options.vouches_for(real, fingerprint):
        raise TrustRequired(
            f"{file}: loading a pickle runs code from it; open it only if you trust its source")
    import joblib

    with _IMPORT_LOCK:
        try:
            estimator = joblib.load(io.BytesIO(data))
        except Exception as error:  # a bad pickle raises anything; each becomes one message
            raise ModelLoadError(
                f"{file}: cannot be unpickled ({type(error).__name__}: {error})") from error
        try:
            return SklearnModel(estimator, name=file.stem, label=options.label or DEFAULT_LABEL,
                                fingerprint=fingerprint)
        except ValueError as error:
            raise ModelLoadError(f"{file}: {error}") from error


def _first_step(estimator: Any) -> Any:
    """The step that sees the raw input columns: the first real step of nested pipelines."""
    while hasattr(estimator, "steps"):
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
        if not steps:
            break
        estimator = steps[0]
    return estimator


def _is_text_vectorizer(step: Any) -> bool:
    """CountVectorizer, TfidfVectorizer, HashingVectorizer and look-alikes."""
    return callable(getattr(step, "build_analyzer", None))


def _column_names(columns: Any, names: list[str]) -> list[str]:
    """The names of the columns a ColumnTransformer selected (names, indices, a mask, a slice)."""
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):  # stop is included
            start = 0 if columns.start is None else names.index(columns.start)
            stop = len(names) if columns.stop is None else names.index(columns.stop) + 1
            return names[start:stop]
        return names[columns]
    items = np.atleast_1d(np.asarray(columns))
    if items.dtype == bool:
        return [name for name, selected in zip(names, items) if selected]
    if items.dtype.kind in "iu":
        return [names[index] for index in items]
    return [str(item) for item in items]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _category_field(categories: Any) -> FieldType:
    """CategoryLabel for an encoder's text categories; numeric categories stay numbers."""
    values = [value for value in categories if not _is_missing(value)]
    if values and all(isinstance(value, str) for value in values):
        return CategoryLabel(vocab=tuple(values))
    return Scalar()


def _transformer_fields(transformer: Any, columns: list[str]) -> dict[str, FieldType]:
    """Field types of ``columns`` as ``transformer`` (or the pipeline it is) treats them."""
    steps = [step for _, step in transformer.steps] if hasattr(transformer, "steps") else [transformer]
    for step in steps:
        if _is_text_vectorizer(step):
            return {columns[0]: TextSegment()} if len(columns) == 1 else {}
        categories = getattr(step, "categories_", None)
        if categories is not None and len(categories) == len(columns):
            return {column: _category_field(values) for column, values in zip(columns, categories)}
    return {}


def _input_spec(estimator: Any) -> Spec:
    first = _first_step(estimator)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        if _is_text_vectorizer(first):
            return {TEXT_INPUT: TextSegment()}
        raise ValueError("the estimator was fitted without column names (on an array, not a "
                         "DataFrame), so which dataset columns it reads is unknown; fit it on a "
                         "pandas DataFrame")
    names = [str(name) for name in names]
    spec: Spec = {name: Scalar() for name in names}
    if hasattr(first, "transformers_"):  # a ColumnTransformer
        for _, transformer, columns in first.transformers_:
            if transformer not in ("drop", "passthrough"):
                spec.update(_transformer_fields(transformer, _column_names(columns, names)))
    else:
        spec.update(_transformer_fields(first, names))
    return {name: spec[name] for name in names}


def _number(value: Any, column: str) -> float:
    if _is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {column}: {value!r} is not a number") from None


class SklearnModel(Model):
    """A fitted scikit-learn classifier or regressor (or a pipeline ending in one).

    ``predict`` builds a DataFrame with the columns in ``feature_names_in_`` order (missing
    values as NaN, as pandas reads them from a CSV file), or a list of texts for a text
    pipeline, and calls the estimator once per batch. Raises ValueError for objects that are
    not fitted classifiers or regressors, or whose inputs cannot be told.
    """

    def __init__(self, estimator: Any, name: str, label: str = DEFAULT_LABEL,
                 fingerprint: str | None = None) -> None:
        from sklearn.base import is_classifier, is_regressor
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        kind = type(estimator).__name__
        not_a_predictor = f"holds a {kind}, not a scikit-learn classifier or regressor"
        if not callable(getattr(estimator, "predict", None)):
            raise ValueError(not_a_predictor)
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            raise ValueError(f"the {kind} is not fitted") from None
        except TypeError:  # not an estimator at all
            raise ValueError(not_a_predictor) from None
        self.name = name
        self.estimator = estimator
        self._fingerprint = fingerprint or f"{type(self).__qualname__}:{name}"
        if is_classifier(estimator):
            classes = estimator.classes_
            if isinstance(classes, list) or np.ndim(classes) != 1:
                raise ValueError("multi-output classifiers are not supported")
            self.classes = np.asarray(classes)
            self._output: Spec = {"probas": MulticlassPreds(
                vocab=tuple(str(value) for value in self.classes), parent=label)}
        elif is_regressor(estimator):
            self.classes = None
            self._output = {"score": RegressionScore(parent=label)}
        else:
            raise ValueError(not_a_predictor)
        self._input = _input_spec(estimator)
        self._reads_dataframe = hasattr(estimator, "feature_names_in_")
        self._has_proba = hasattr(estimator, "predict_proba")
        if self._reads_dataframe and importlib.util.find_spec("pandas") is None:
            raise ValueError("the estimator was fitted on a DataFrame; install pandas to use it")

    def input_spec(self) -> Spec:
        return dict(self._input)

    def output_spec(self) -> Spec:
        return dict(self._output)

    def max_minibatch_size(self) -> int:
        return 1024

    def fingerprint(self) -> str:
        return self._fingerprint

    def _features(self, inputs: Sequence[dict[str, Any]]) -> Any:
        if not self._reads_dataframe:
            return ["" if _is_missing(example.get(TEXT_INPUT)) else str(example[TEXT_INPUT])
                    for example in inputs]
        import pandas as pd

        columns: dict[str, Any] = {}
        for name, field in self._input.items():
            values = [example.get(name) for example in inputs]
            if isinstance(field, TextSegment):
                columns[name] = ["" if _is_missing(value) else str(value) for value in values]
            elif isinstance(field, CategoryLabel):
                columns[name] = [math.nan if _is_missing(value) else str(value) for value in values]
            else:
                columns[name] = np.array([_number(value, name) for value in values], dtype=np.float64)
        return pd.DataFrame(columns, columns=list(self._input))

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not inputs:
            return []
        features = self._features(inputs)
        if self.classes is None:
            scores = np.asarray(self.estimator.predict(features), dtype=np.float64)
            if scores.size != len(inputs):
                raise ValueError(f"the regressor predicts {scores.shape[1:]} values per example; "
                                 "only single-output regressors are supported")
            return [{"score": float(score)} for score in scores.ravel()]
        if self._has_proba:
            probas = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)
        else:
            predicted = np.asarray(self.estimator.predict(features))
            probas = (predicted[:, None] == self.classes[None, :]).astype(np.float64)
        return [{"probas": row} for row in probas]


def adapt(estimator: Any, name: str) -> "SklearnModel":
    """A fitted estimator or pipeline given from Python (``litdesk.show``), as the same file
    on disk would open. Its fingerprint hashes its pickled bytes, as :func:`load` hashes the
    file's, so its results are cached the same way."""
    import pickle

    try:
        fingerprint = hashlib.sha256(pickle.dumps(estimator, protocol=4)).hexdigest()
    except Exception:  # an estimator holding a lambda cannot be pickled: no result outlives it
        fingerprint = f"{type(estimator).__qualname__}:{name}:{id(estimator)}:{os.getpid()}"
    with _IMPORT_LOCK:
        return SklearnModel(estimator, name=name, label=DEFAULT_LABEL, fingerprint=fingerprint)
