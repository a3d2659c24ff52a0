"""scikit-learn baselines for a dataset's input columns, and their out-of-fold probabilities.

A text column becomes tf-idf features (sparse, float32), a category one-hot columns, a number
itself (missing values imputed). ``linear`` fits a logistic regression on them, ``boosted``
a histogram gradient-boosting classifier on the numbers and each category's code (tabular
inputs only: trees on tf-idf are slow). A fitted baseline is saved without pickle: a text one
as the linear text plugin's JSON, a tabular one as ONNX (the whole pipeline, categories
included, one graph input per column).
:func:`out_of_sample_probabilities` cross-validates such a baseline, stratified and seeded,
so that every row's probabilities come from a model that never saw it (what confident
learning needs). scikit-learn is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Boolean, CategoryLabel, Dataset, Scalar, TextSegment
from litdesk.core.jobs import Job, Progress, run_job

KINDS = ("linear", "boosted")
TEXT, CATEGORY, NUMBER = "text", "category", "number"
#: A string column (without a spec) whose values average more characters than this, or at
#: least this many spaces (three words), is text; else a category.
TEXT_MIN_MEAN_LENGTH = 25
TEXT_MIN_SPACES = 2
#: The most tf-idf terms per text column (keeps a million rows of text in a few GB).
MAX_TERMS = 200_000
#: Rows above which tf-idf drops terms seen only once (they cannot generalise anyway).
MIN_DF_ROWS = 50_000
#: A category column with more distinct values than this share of its rows (and more than
#: :data:`MANY_CATEGORIES`) names rows rather than groups them: no default input.
IDENTIFIER_SHARE = 0.5
MANY_CATEGORIES = 50


class Cancelled(Exception):
    """The caller's ``cancel()`` returned True; no result."""


@dataclass(frozen=True)
class Columns:
    """The input columns by kind, in the order given."""

    text: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    number: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.text + self.category + self.number


def _as_table(data: Any) -> tuple[pa.Table, dict]:
    """An Arrow table and its spec (empty when the data carries none)."""
    if isinstance(data, Dataset):
        return data.table, data.spec()
    if isinstance(data, pa.Table):
        return data, {}
    if hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False), {}
    raise TypeError(f"expected a Dataset, an Arrow table or a DataFrame, got {type(data).__name__}")


def _column_kind(table: pa.Table, name: str, field_type: Any) -> str:
    if isinstance(field_type, TextSegment):
        return TEXT
    if isinstance(field_type, (CategoryLabel, Boolean)):
        return CATEGORY
    if isinstance(field_type, Scalar):
        return NUMBER
    if field_type is not None:
        raise ValueError(f"column {name!r} is a {field_type.type_name}; baselines take text, "
                         "category and number columns")
    arrow_type = table.schema.field(name).type
    if pa.types.is_boolean(arrow_type) or pa.types.is_dictionary(arrow_type):
        return CATEGORY
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return NUMBER
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        import pyarrow.compute as pc

        column = table.column(name)
        mean_length = pc.mean(pc.utf8_length(column)).as_py() or 0
        mean_spaces = pc.mean(pc.count_substring(column, " ")).as_py() or 0
        return TEXT if mean_length > TEXT_MIN_MEAN_LENGTH or mean_spaces >= TEXT_MIN_SPACES \
            else CATEGORY
    raise ValueError(f"column {name!r} holds {arrow_type}; baselines take text, category and "
                     "number columns")


def input_columns_by_kind(data: Any, input_columns: Sequence[str]) -> Columns:
    """Sort ``input_columns`` into text, category and number columns (ValueError when one is
    missing or of a type a baseline cannot use)."""
    table, spec = _as_table(data)
    if not input_columns:
        raise ValueError("no input columns chosen")
    kinds: dict[str, list[str]] = {TEXT: [], CATEGORY: [], NUMBER: []}
    for name in input_columns:
        if name not in table.column_names:
            raise ValueError(f"no column {name!r} in the data")
        kinds[_column_kind(table, name, spec.get(name))].append(name)
    return Columns(tuple(kinds[TEXT]), tuple(kinds[CATEGORY]), tuple(kinds[NUMBER]))


def labels_of(data: Any, label_column: str) -> np.ndarray:
    """The label column as strings (ValueError naming the first row without a label)."""
    table, _ = _as_table(data)
    if label_column not in table.column_names:
        raise ValueError(f"no label column {label_column!r} in the data")
    column = table.column(label_column)
    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"label column {label_column!r} has {column.null_count:,} empty "
                         f"value(s), the first at row {first:,}")
    values = np.asarray(column.to_pylist(), dtype=object)
    return np.array([str(value) for value in values], dtype=object)


def feature_frame(data: Any, columns: Columns):
    """The input columns as :func:`make_estimator`'s pipeline takes them: a pandas DataFrame
    (texts and categories as str, numbers as float, missing ones NaN), or for numbers alone a
    float32 matrix."""
    import pandas as pd

    table, _ = _as_table(data)
    frame = {}
    for name in columns.text + columns.category:
        values = table.column(name).to_pylist()
        frame[name] = ["" if value is None else str(value) for value in values]
    for name in columns.number:
        column = table.column(name)
        if pa.types.is_boolean(column.type):
            column = column.cast(pa.float64())
        frame[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
    if not columns.text and not columns.category:
        return np.column_stack([frame[name] for name in columns.number]).astype(np.float32)
    return pd.DataFrame(frame)


def _take(features: Any, rows: np.ndarray) -> Any:
    return features.iloc[rows] if hasattr(features, "iloc") else features[rows]


def make_estimator(columns: Columns, kind: str = "linear", *, seed: int = 0,
                   n_rows: int = 0) -> Any:
    """An unfitted scikit-learn pipeline for ``columns`` (a DataFrame of :func:`feature_frame`).

    ``linear``: tf-idf / one-hot / standardised numbers into a multinomial logistic regression
    (lbfgs, which handles a million sparse rows). ``boosted``: histogram gradient boosting on
    numbers and categories, early stopping on a seeded validation share. A category reaches the
    trees as its code (missing and unseen values as missing), not as a native categorical
    feature: skl2onnx turns native categorical splits into threshold splits, so the saved graph
    would predict otherwise than the model.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if kind not in KINDS:
        raise ValueError(f"baseline kind is {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "boosted":
        if columns.text:
            raise ValueError(f"a boosted baseline takes no text columns ({', '.join(columns.text)});"
                             " use the linear one")
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not columns.category:  # a float matrix, as ONNX takes it
            return HistGradientBoostingClassifier(random_state=seed, early_stopping=n_rows > 10_000)
        parts = [("category", OrdinalEncoder(handle_unknown="use_encoded_value",
                                             unknown_value=np.nan, encoded_missing_value=np.nan),
                  list(columns.category))]
        if columns.number:
            parts.append(("number", "passthrough", list(columns.number)))
        return Pipeline([("features", ColumnTransformer(parts)),
                         ("classifier", HistGradientBoostingClassifier(
                             random_state=seed, early_stopping=n_rows > 10_000))])
    if not columns.text and not columns.category:  # a float matrix, as ONNX takes it
        return make_pipeline(SimpleImputer(), StandardScaler(),
                             LogisticRegression(max_iter=300, random_state=seed))
    large = n_rows > MIN_DF_ROWS
    parts = [(f"text:{name}", TfidfVectorizer(sublinear_tf=True, max_features=MAX_TERMS,
                                              min_df=2 if large else 1,
                                              dtype=np.float32 if large else np.float64), name)
             for name in columns.text]
    if columns.category:
        parts.append(("category", OneHotEncoder(handle_unknown="ignore"),
                      list(columns.category)))
    if columns.number:
        parts.append(("number", make_pipeline(SimpleImputer(), StandardScaler()),
                      list(columns.number)))
    features = ColumnTransformer(parts, sparse_threshold=1.0 if columns.text or columns.category
                                 else 0.0)
    return Pipeline([("features", features),
                     ("classifier", LogisticRegression(C=10.0 if columns.text else 1.0,
                                                       max_iter=300, random_state=seed))])


#: Rows below which a fit runs on one thread: OpenMP's spinning threads cost more than they
#: give on small data, up to 10x on a busy machine.
ONE_THREAD_ROWS = 20_000


def _threads(n_rows: int):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if n_rows < ONE_THREAD_ROWS else None)


def _folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(labels) < folds:
        raise ValueError(f"{len(labels)} row(s) cannot be split into {folds} folds")
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise ValueError("the label column holds a single class; a classifier needs two or more")
    if counts.max() >= folds:  # stratify when some class fills every fold
        import warnings

        with warnings.catch_warnings():  # a class rarer than the folds only warns
            warnings.simplefilter("ignore", UserWarning)
            return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(
                np.zeros(len(labels)), labels))
    return list(KFold(folds, shuffle=True, random_state=seed).split(labels))


def out_of_sample_job(data: Any, input_columns: Sequence[str], label_column: str, *,
                      folds: int = 5, seed: int = 0, kind: str = "linear"
                      ) -> Job[tuple[np.ndarray, list[str]]]:
    """:func:`out_of_sample_probabilities` as a job that yields after every fold."""
    columns = input_columns_by_kind(data, input_columns)
    labels = labels_of(data, label_column)
    classes = sorted(set(labels.tolist()))
    splits = _folds(labels, folds, seed)
    yield Progress(0, len(splits), "Reading the input columns")
    frame = feature_frame(data, columns)
    index = {label: position for position, label in enumerate(classes)}
    targets = np.array([index[label] for label in labels], dtype=np.int64)
    probabilities = np.zeros((len(labels), len(classes)), dtype=np.float64)
    from sklearn.base import clone

    template = make_estimator(columns, kind, seed=seed, n_rows=len(labels))
    for fold, (train, held_out) in enumerate(splits):
        yield Progress(fold, len(splits), f"Cross-validating: fold {fold + 1} of {len(splits)}")
        with _threads(len(labels)):
            estimator = clone(template).fit(_take(frame, train), targets[train])
        fitted = estimator.predict_proba(_take(frame, held_out))
        # a class absent from this fold's training rows keeps probability 0
        probabilities[np.ix_(held_out, estimator.classes_)] = fitted
    yield Progress(len(splits), len(splits), "Cross-validated")
    return probabilities, classes


def out_of_sample_probabilities(data: Any, input_columns: Sequence[str], label_column: str, *,
                                folds: int = 5, seed: int = 0,
                                progress: Optional[Callable[[int, int], Any]] = None,
                                cancel: Optional[Callable[[], bool]] = None,
                                kind: str = "linear") -> tuple[np.ndarray, list[str]]:
    """Out-of-fold class probabilities of a baseline for every row, like ``cross_val_predict``.

    ``data`` is a :class:`Dataset`, an Arrow table or a pandas DataFrame. Folds are stratified
    by the label and shuffled with ``seed``, so the result is the same for the same seed.
    Returns ``(probabilities [n, k], classes)`` with classes the sorted label strings.
    ``progress(done_folds, folds)`` is called before and after each fold; ``cancel()``
    returning True stops between folds with :class:`Cancelled`. Bad input: ValueError.
    """
    def report(step: Progress) -> None:
        if cancel is not None and cancel():
            raise Cancelled("cross-validation cancelled")
        if progress is not None:
            progress(step.done, step.total)

    return run_job(out_of_sample_job(data, input_columns, label_column, folds=folds, seed=seed,
                                     kind=kind), report)


@dataclass
class Baseline:
    """A baseline fitted on chosen rows, with its cross-validated accuracy on them."""

    estimator: Any
    columns: Columns
    classes: list[str]
    kind: str
    label_column: str
    rows: np.ndarray
    seed: int
    folds: int
    cv_accuracy: float

    @property
    def savable(self) -> Optional[str]:
        """Why it cannot be saved without pickle, or None when it can."""
        if self.columns.text and (self.columns.category or self.columns.number
                                  or len(self.columns.text) > 1):
            return ("a text baseline is saved as litdesk's linear text format, which reads "
                    "one text column and nothing else")
        return None


def _subset(data: Any, rows: Optional[np.ndarray]) -> tuple[Any, np.ndarray]:
    table, spec = _as_table(data)
    if rows is None:
        return data, np.arange(table.num_rows, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= table.num_rows):
        raise ValueError(f"training rows reach row {int(rows.max()):,}; the data has "
                         f"{table.num_rows:,}")
    taken = table.take(pa.array(rows))
    return (Dataset(taken, spec, getattr(data, "name", "dataset")) if spec else taken), rows


def fit_baseline_job(data: Any, input_columns: Sequence[str], label_column: str, *,
                     rows: Optional[np.ndarray] = None, kind: str = "linear", folds: int = 5,
                     seed: int = 0) -> Job[Baseline]:
    """Cross-validate a baseline on ``rows`` (all when None), then fit it on all of them."""
    subset, rows = _subset(data, rows)
    cross = out_of_sample_job(subset, input_columns, label_column, folds=folds, seed=seed,
                              kind=kind)
    total = folds + 1
    while True:
        try:
            step = next(cross)
        except StopIteration as stop:
            probabilities, classes = stop.value
            break
        yield Progress(step.done, total, step.message)
    labels = labels_of(subset, label_column)
    cv_accuracy = float((np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
                         == labels).mean())
    yield Progress(folds, total, "Fitting on all training rows")
    columns = input_columns_by_kind(subset, input_columns)
    estimator = make_estimator(columns, kind, seed=seed, n_rows=len(labels))
    with _threads(len(labels)):
        estimator.fit(feature_frame(subset, columns), labels)
    yield Progress(total, total, f"Baseline fitted: {cv_accuracy:.1%} cross-validated accuracy")
    return Baseline(estimator, columns, [str(c) for c in estimator.classes_], kind, label_column,
                    rows, seed, folds, cv_accuracy)


def predict_proba(baseline: Baseline, data: Any) -> np.ndarray:
    """The baseline's class probabilities for every row of ``data``."""
    return baseline.estimator.predict_proba(feature_frame(data, baseline.columns))


SIDECAR_FILE_NAME = "litdesk.json"


def default_input_columns(data: Any, label_column: str, *, savable: bool = True,
                          exclude: Sequence[str] = (), kind: str = "linear") -> list[str]:
    """The columns a baseline reads by default: the text column (all of them when not
    ``savable``; none for ``boosted``), else the category and number columns. Left out: the
    provenance of datapoints made here, a split column ("split", "fold"…) and a category
    column with a value for nearly every row (an identifier)."""
    from litdesk.core.datapoints import PROVENANCE_COLUMNS, SPLIT_NAMES

    table, _ = _as_table(data)
    names = [name for name in table.column_names if name != label_column and name not in exclude
             and name not in PROVENANCE_COLUMNS and name.lower() not in SPLIT_NAMES]
    kinds: dict[str, list[str]] = {TEXT: [], CATEGORY: [], NUMBER: []}
    for name in names:
        try:
            kinds[_kind_of(data, name)].append(name)
        except ValueError:  # a column no baseline reads (embeddings, images)
            continue
    columns = Columns(tuple(kinds[TEXT]) if kind != "boosted" else (), tuple(kinds[CATEGORY]),
                      tuple(kinds[NUMBER]))
    if columns.text:
        return list(columns.text[:1] if savable else columns.text)
    chosen = [name for name in columns.category if not _identifies_rows(table, name)] \
        + list(columns.number)
    if not chosen:
        raise ValueError("the data has no number or category column"
                         f"{'' if kind == 'boosted' else ' or text column'} besides the label")
    return chosen


def _identifies_rows(table: pa.Table, name: str) -> bool:
    import pyarrow.compute as pc

    distinct = pc.count_distinct(table.column(name)).as_py()
    return distinct > MANY_CATEGORIES and distinct > IDENTIFIER_SHARE * table.num_rows


def _kind_of(data: Any, name: str) -> str:
    table, spec = _as_table(data)
    return _column_kind(table, name, spec.get(name))


def save_baseline(baseline: Baseline, folder: Path, *, data_path: Optional[Path] = None,
                  data_sha256: Optional[str] = None) -> Path:
    """Write the baseline into ``folder`` in a format litdesk opens without a trust prompt, with
    its training record, and return the model file: a text baseline as the linear text
    plugin's JSON, a tabular one as ONNX (skl2onnx) with the sidecar the ONNX plugin reads.
    ValueError when it cannot be saved so."""
    problem = baseline.savable
    if problem is not None:
        raise ValueError(problem)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    file = _save_model(baseline, folder)
    from litdesk.core.training_record import make_record, write_record

    classifier = baseline.estimator.steps[-1][1] if hasattr(baseline.estimator, "steps") \
        else baseline.estimator
    write_record(folder, make_record(
        kind=f"baseline:{baseline.kind}", base=None, data_path=data_path, data_sha256=data_sha256,
        label_column=baseline.label_column, input_columns=list(baseline.columns.names),
        rows=baseline.rows, labels=baseline.classes,
        parameters={"estimator": type(classifier).__name__, "folds": baseline.folds,
                    **{key: value for key, value in classifier.get_params().items()
                       if isinstance(value, (int, float, str, bool, type(None)))}},
        seed=baseline.seed, epochs=[],
        result={"cross_validated_accuracy": baseline.cv_accuracy, "model_file": file.name}))
    return file


def _save_model(baseline: Baseline, folder: Path) -> Path:
    if baseline.columns.text:
        from litdesk.core.plugins import discover_plugins

        exporter = next((item for item in discover_plugins().contributions["model_exporters"]
                         if item.id == "linear_text"), None)
        if exporter is None:
            raise ValueError("the linear text plugin, which saves text baselines, is not installed")
        features = baseline.estimator.named_steps["features"]
        vectorizer = features.named_transformers_[f"text:{baseline.columns.text[0]}"]
        classifier = baseline.estimator.named_steps["classifier"]
        return Path(exporter.load_callable()(vectorizer, classifier, folder))
    return _save_onnx(baseline, folder)


def _save_onnx(baseline: Baseline, folder: Path) -> Path:
    import json

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from skl2onnx.common.data_types import StringTensorType

    estimator, columns = baseline.estimator, baseline.columns
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if columns.category:  # the pipeline takes a frame: one graph input per column
        initial_types = [(name, StringTensorType([None, 1])) for name in columns.category] + \
            [(name, FloatTensorType([None, 1])) for name in columns.number]
        inputs = [{"name": name, "type": "category"} for name in columns.category] + \
            [{"name": name, "type": "number"} for name in columns.number]
    else:  # a float matrix
        initial_types = [("features", FloatTensorType([None, len(columns.number)]))]
        inputs = [{"name": name, "type": "number"} for name in columns.number]
    with _leaf_flags_as_ints():
        graph = convert_sklearn(estimator, initial_types=initial_types,
                                options={id(final): {"zipmap": False}})
    # the ONNX plugin reads the graph's first output: keep only the probabilities
    probabilities = [output for output in graph.graph.output if "probab" in output.name]
    del graph.graph.output[:]
    graph.graph.output.extend(probabilities)
    file = folder / f"{folder.name or 'baseline'}.onnx"  # its stem names the model
    file.write_bytes(graph.SerializeToString())
    sidecar = {"inputs": inputs, "labels": baseline.classes, "output": "probabilities"}
    (folder / SIDECAR_FILE_NAME).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
    return file


@contextmanager
def _leaf_flags_as_ints():
    """skl2onnx (1.20) marks the leaves of histogram gradient boosting trees with the bool False
    where onnx (1.17 and later) takes only ints: the conversion fails. Pass it as 0 meanwhile."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args, **kwargs):
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original
