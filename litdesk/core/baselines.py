"""scikit-learn baselines for a dataset's input columns, and their out-of-fold probabilities.

A text column becomes tf-idf features (sparse, float32), a category one-hot columns, a number
itself (missing values imputed). ``linear`` fits a logistic regression on them, ``boosted``
a histogram gradient-boosting classifier (tabular inputs only: trees on tf-idf are slow).
:func:`out_of_sample_probabilities` cross-validates such a baseline, stratified and seeded,
so that every row's probabilities come from a model that never saw it (what confident
learning needs). scikit-learn is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Boolean, CategoryLabel, Dataset, Scalar, TextSegment
from litdesk.core.jobs import Job, Progress, run_job

KINDS = ("linear", "boosted")
TEXT, CATEGORY, NUMBER = "text", "category", "number"
#: A string column whose values average more characters than this is text, else a category.
TEXT_MIN_MEAN_LENGTH = 25
#: The most tf-idf terms per text column (keeps a million rows of text in a few GB).
MAX_TERMS = 200_000
#: Rows above which tf-idf drops terms seen only once (they cannot generalise anyway).
MIN_DF_ROWS = 50_000


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

        lengths = pc.utf8_length(table.column(name))
        mean = pc.mean(lengths).as_py() or 0
        return TEXT if mean > TEXT_MIN_MEAN_LENGTH else CATEGORY
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
    """The input columns as a pandas DataFrame: texts as str, categories as str, numbers as
    float (missing ones NaN)."""
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
    return pd.DataFrame(frame)


def make_estimator(columns: Columns, kind: str = "linear", *, seed: int = 0,
                   n_rows: int = 0) -> Any:
    """An unfitted scikit-learn pipeline for ``columns`` (a DataFrame of :func:`feature_frame`).

    ``linear``: tf-idf / one-hot / standardised numbers into a multinomial logistic regression
    (lbfgs, which handles a million sparse rows). ``boosted``: histogram gradient boosting on
    numbers and categories, early stopping on a seeded validation share.
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

        parts = []
        if columns.category:
            parts.append(("category", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                     unknown_value=np.nan,
                                                     encoded_missing_value=np.nan),
                          list(columns.category)))
        if columns.number:
            parts.append(("number", "passthrough", list(columns.number)))
        features = ColumnTransformer(parts)
        categorical = list(range(len(columns.category))) or None
        return Pipeline([("features", features),
                         ("classifier", HistGradientBoostingClassifier(
                             categorical_features=categorical, random_state=seed,
                             early_stopping=n_rows > 10_000))])
    min_df = 2 if n_rows > MIN_DF_ROWS else 1
    parts = [(f"text:{name}", TfidfVectorizer(sublinear_tf=True, max_features=MAX_TERMS,
                                              min_df=min_df, dtype=np.float32), name)
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
        estimator = clone(template).fit(frame.iloc[train], targets[train])
        fitted = estimator.predict_proba(frame.iloc[held_out])
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
