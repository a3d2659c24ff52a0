"""Data quality: what is wrong with the data itself, Qt-free.

- **Label issues** (confident learning, by cleanlab): rows whose given label disagrees with
  out-of-sample class probabilities, each with a label-quality score in [0, 1] (the
  self-confidence: the probability of the given label) and the suggested label (the most
  probable class). The probabilities are a loaded model's predictions, which must come from a
  model that was not trained on these rows, or else a baseline cross-validated here
  (:func:`litdesk.core.baselines.out_of_sample_job`).
- **Ambiguous rows**: the margin between the two most probable classes.
- **Outliers**: the mean Euclidean distance to the :data:`NEIGHBOURS` nearest other rows, in
  an embedding space: a model's ``Embeddings`` output, else the input columns as the
  baseline sees them (tf-idf texts, one-hot categories, standardised numbers), reduced to
  :data:`KNN_FEATURES` dimensions by PCA or truncated SVD. Neighbours come from faiss
  (exact up to 20,000 rows, HNSW above, see :func:`~litdesk.core.projection.knn_job`).
- **Near-duplicates**: a row whose nearest other row lies closer than
  :data:`NEAR_DUPLICATE_RATIO` times the median nearest-neighbour distance, its distance
  checked again in the full space; each row points to its twin.
- **Exact duplicates**: rows whose inputs are equal once texts are normalised (case folded,
  runs of white space made one space, trimmed); each row points to another of its group.

:func:`audit_job` computes all of it as one job; with a cache, the result is found again by
the bytes of the inputs, labels, probabilities and parameters. In the window it runs in a
child process (``in_child_process``, :mod:`litdesk.core.child_process`): tf-idf tokenising,
the feature reduction, faiss and the duplicate search hold the GIL for up to seconds, and
their matrices would stay in the window's memory. The child gets the columns it reads as an
Arrow IPC file and the probabilities and embeddings as ``.npy`` files, and hands the result
back as the cache stores it (:func:`_to_stored`): an Arrow file of its row-aligned arrays
(:func:`litdesk.core.cache.write_columns_file`), memory-mapped when read from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from litdesk.api import Dataset, types
from litdesk.core import paths
from litdesk.core.cache import ResultCache, read_columns_file, result_key, write_columns_file
from litdesk.core.categories import MISSING, encode_categories
from litdesk.core.datapoints import PROVENANCE_COLUMNS, SPLIT_NAMES
from litdesk.core.jobs import Job, Progress
from litdesk.core.predict import Predictions

#: Bumped whenever the audit's output for the same input changes.
AUDIT_VERSION = 2
#: Neighbours averaged in the outlier score.
NEIGHBOURS = 10
#: Embeddings wider than this are reduced (PCA; truncated SVD for sparse inputs) before the
#: neighbour search; near-duplicate distances are checked again in the full space.
KNN_FEATURES = 32
#: A nearest neighbour closer than this share of the median nearest-neighbour distance is a
#: near-duplicate.
NEAR_DUPLICATE_RATIO = 0.05
#: Rows whose top two classes are closer than this are ambiguous.
AMBIGUOUS_MARGIN = 0.1
#: An outlier scores above the upper quartile plus this many interquartile ranges (Tukey's
#: "far out").
OUTLIER_IQRS = 3.0
#: The field types an audit reads as inputs.
INPUT_TYPES = (types.TextSegment, types.CategoryLabel, types.Scalar, types.Boolean)
NO_ROW = -1
#: The first argument that makes a frozen litdesk run :func:`_child_main` (litdesk.__main__).
CHILD_FLAG = "--audit-child"


class AuditError(RuntimeError):
    """The audit's child process failed; the message is one line for the user."""


@dataclass(frozen=True)
class LabelIssues:
    """Confident learning's verdict on each row's given label."""

    classes: tuple[str, ...]
    given: np.ndarray  # int64 per row: the given label's index in classes, MISSING if unknown
    is_issue: np.ndarray  # bool per row: the given label is likely wrong
    quality: np.ndarray  # float32 per row in [0, 1], NaN where the label is unknown
    suggested: np.ndarray  # int64 per row: the most probable class
    margin: np.ndarray  # float32 per row: top class minus the runner-up
    source: str  # where the probabilities came from

    def suggested_names(self) -> np.ndarray:
        """The suggested label of each row, as text."""
        return np.asarray(self.classes, dtype=object)[self.suggested]


@dataclass(frozen=True)
class Audit:
    """Everything :func:`audit_job` found, row-aligned."""

    num_rows: int
    space: str  # the space neighbours were measured in
    outlier_score: np.ndarray  # float32: mean distance to the nearest other rows
    nearest: np.ndarray  # int64: the nearest other row (NO_ROW with a single row)
    nearest_distance: np.ndarray  # float32
    near_duplicate_of: np.ndarray  # int64: the near twin, NO_ROW if none
    exact_duplicate_of: np.ndarray  # int64: an equal row, NO_ROW if none
    labels: Optional[LabelIssues] = None

    def twins(self, rows: "np.ndarray | slice") -> np.ndarray:
        """The twin of each of ``rows`` (positions or a slice): an exact duplicate first, else
        a near one, else NO_ROW. Read for the rows asked: a list shows a block at a time."""
        exact = self.exact_duplicate_of[rows]
        return np.where(exact != NO_ROW, exact, self.near_duplicate_of[rows])

    @property
    def outlier_threshold(self) -> float:
        """The score above which a row counts as an outlier."""
        scores = self.outlier_score[np.isfinite(self.outlier_score)]
        if scores.size < 4:
            return float("inf")
        low, high = np.percentile(scores, [25, 75])
        return float(high + OUTLIER_IQRS * (high - low))

    def label_issue_rows(self) -> np.ndarray:
        """Rows with a likely wrong label, the least likely right first."""
        if self.labels is None:
            return np.zeros(0, np.int64)
        rows = np.flatnonzero(self.labels.is_issue)
        return rows[np.argsort(self.labels.quality[rows], kind="stable")]

    def outlier_rows(self) -> np.ndarray:
        """Rows scoring above :attr:`outlier_threshold`, the farthest first."""
        rows = np.flatnonzero(self.outlier_score > self.outlier_threshold)
        return rows[np.argsort(-self.outlier_score[rows], kind="stable")]

    def duplicate_rows(self) -> np.ndarray:
        """Rows with a twin, exact ones first, then by distance to the twin."""
        rows = np.flatnonzero((self.exact_duplicate_of != NO_ROW)
                              | (self.near_duplicate_of != NO_ROW))
        exact = self.exact_duplicate_of[rows] != NO_ROW
        distance = np.where(exact, -1.0, self.nearest_distance[rows])
        return rows[np.lexsort((rows, distance))]

    def ambiguous_rows(self) -> np.ndarray:
        """Rows whose top two classes are within :data:`AMBIGUOUS_MARGIN`, closest first."""
        if self.labels is None:
            return np.zeros(0, np.int64)
        rows = np.flatnonzero(self.labels.margin < AMBIGUOUS_MARGIN)
        return rows[np.argsort(self.labels.margin[rows], kind="stable")]

    def summary(self) -> str:
        """One line: how many rows of each kind were found."""
        parts = []
        if self.labels is not None:
            parts.append(f"{len(self.label_issue_rows()):,} possible label errors "
                         f"({self.labels.source})")
            parts.append(f"{len(self.ambiguous_rows()):,} ambiguous")
        parts.append(f"{len(self.outlier_rows()):,} outliers")
        parts.append(f"{int((self.exact_duplicate_of != NO_ROW).sum()):,} exact and "
                     f"{int(((self.near_duplicate_of != NO_ROW) & (self.exact_duplicate_of == NO_ROW)).sum()):,}"
                     " near duplicates")
        return f"{self.num_rows:,} rows: " + ", ".join(parts)

    def to_table(self) -> pa.Table:
        """One row per data row: label_issue, label_quality, suggested_label, outlier_score,
        near_duplicate_of (the twin's row position, exact or near, or null)."""
        n = self.num_rows
        if self.labels is not None:
            issue = pa.array(self.labels.is_issue)
            quality = pa.array(self.labels.quality, pa.float32(),
                               mask=np.isnan(self.labels.quality))
            suggested = pa.array(self.labels.suggested_names().tolist(), pa.string())
        else:
            issue = pa.nulls(n, pa.bool_())
            quality = pa.nulls(n, pa.float32())
            suggested = pa.nulls(n, pa.string())
        twin = self.twins(slice(None))
        return pa.table({"label_issue": issue, "label_quality": quality,
                         "suggested_label": suggested,
                         "outlier_score": pa.array(self.outlier_score, pa.float32()),
                         "near_duplicate_of": pa.array(twin, pa.int64(), mask=twin == NO_ROW)})


# -- inputs ------------------------------------------------------------------------------

def input_columns(dataset: Dataset, label_column: Optional[str]) -> list[str]:
    """The dataset's columns an audit reads as inputs: texts, categories, numbers and
    booleans, other than the label, the provenance columns and a split column."""
    return [name for name, field_type in dataset.spec().items()
            if isinstance(field_type, INPUT_TYPES) and name != label_column
            and name not in PROVENANCE_COLUMNS and name.lower() not in SPLIT_NAMES
            and name in dataset.table.column_names]


def model_probabilities(dataset: Dataset, predictions: Mapping[str, Predictions]
                        ) -> Optional[tuple[np.ndarray, tuple[str, ...], str]]:
    """The classifiers' class probabilities on every row, averaged over the models that share
    the first one's classes (by name); None without a classifier. Returns (probabilities,
    classes, a description of the source)."""
    total, classes, names = None, None, []
    for name, model_predictions in sorted(predictions.items()):  # the same sum each time
        labelled = model_predictions.predicted_labels()
        if labelled is None or len(model_predictions) != len(dataset):
            continue
        field, _, vocab = labelled
        probabilities = np.asarray(model_predictions.fields[field], dtype=np.float64)
        if classes is None:
            classes, total = tuple(vocab), probabilities.copy()
        elif set(vocab) == set(classes):
            order = [list(vocab).index(label) for label in classes]
            total += probabilities[:, order]
        else:
            continue
        names.append(name)
    if total is None:
        return None
    source = "predictions of " + ", ".join(names)
    return total / len(names), classes, source


class _HashingSink:
    """A file-like object that only hashes what is written to it."""

    closed = False

    def __init__(self) -> None:
        self.digest = hashlib.blake2b(digest_size=20)

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _column_digest(dataset: Dataset, columns: Sequence[str]) -> str:
    """A digest of the columns' values (their Arrow IPC stream's bytes, hashed as they are
    written rather than held in memory)."""
    hashing = _HashingSink()
    table = dataset.table.select(list(columns))
    with pa.PythonFile(hashing, mode="w") as sink, \
            pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1 << 16):
            writer.write_batch(batch)
    return hashing.digest.hexdigest()


def _array_digest(array: Optional[np.ndarray]) -> Optional[str]:
    if array is None:
        return None
    array = np.ascontiguousarray(array)
    return hashlib.blake2b(array.view(np.uint8).reshape(-1), digest_size=20).hexdigest() \
        + str(array.shape)


# -- label issues ----------------------------------------------------------------------

def find_label_issues(given: np.ndarray, probabilities: np.ndarray,
                      classes: Sequence[str], source: str) -> LabelIssues:
    """Confident learning (cleanlab's ``find_label_issues`` and self-confidence scores) on
    the rows with a known label; ``given`` holds class indices, MISSING where unknown."""
    import warnings

    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    probabilities = np.asarray(probabilities, dtype=np.float64)
    n, k = probabilities.shape
    if len(given) != n:
        raise ValueError(f"{len(given):,} labels for {n:,} rows of probabilities")
    sums = probabilities.sum(axis=1, keepdims=True)
    probabilities = np.where(sums > 0, probabilities / np.where(sums > 0, sums, 1), 1.0 / k)
    known = given != MISSING
    is_issue = np.zeros(n, dtype=bool)
    quality = np.full(n, np.nan, dtype=np.float32)
    labelled = np.flatnonzero(known)
    if labelled.size:
        labels = given[labelled]
        probs = probabilities[labelled]
        quality[labelled] = get_label_quality_scores(labels, probs,
                                                     method="self_confidence")
        present = np.unique(labels)
        if present.size >= 2 and labelled.size > k:
            # cleanlab needs every class among the labels: keep the classes present
            local = np.searchsorted(present, labels)
            sub = probs[:, present]
            sub /= np.maximum(sub.sum(axis=1, keepdims=True), 1e-12)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                is_issue[labelled] = cleanlab_issues(local, sub, n_jobs=1)
    top = np.sort(probabilities, axis=1)
    margin = (top[:, -1] - (top[:, -2] if k > 1 else 0.0)).astype(np.float32)
    return LabelIssues(tuple(str(c) for c in classes), np.asarray(given, np.int64), is_issue,
                       quality, np.argmax(probabilities, axis=1).astype(np.int64), margin,
                       source)


def baseline_probabilities_job(dataset: Dataset, columns: Sequence[str], label_column: str,
                               folds: int = 5, seed: int = 0
                               ) -> Job[tuple[np.ndarray, tuple[str, ...], str]]:
    """Out-of-fold probabilities of a baseline cross-validated on the rows with a label; a row
    without one gets the mean of the others. Returns (probabilities for every row, classes,
    a description of the source)."""
    from litdesk.core.baselines import out_of_sample_job

    labels = dataset.table.column(label_column)
    known = pc.is_valid(labels).to_numpy(zero_copy_only=False)
    table = dataset.table.select([*columns, label_column])
    if not known.all():
        table = table.filter(pa.array(known))
    labelled = Dataset(table, {name: dataset.spec()[name] for name in table.column_names
                               if name in dataset.spec()}, dataset.name)
    probabilities, classes = yield from out_of_sample_job(labelled, list(columns),
                                                          label_column, folds=folds, seed=seed)
    full = np.empty((len(dataset), len(classes)), dtype=np.float64)
    full[known] = probabilities
    if not known.all():
        full[~known] = probabilities.mean(axis=0)
    return full, tuple(classes), f"{folds}-fold cross-validated baseline"


# -- neighbours ------------------------------------------------------------------------

def feature_space_job(dataset: Dataset, columns: Sequence[str]
                      ) -> Job[tuple[np.ndarray, str]]:
    """The input columns as a dense float32 matrix for the neighbour search: the baseline's
    features (tf-idf texts, one-hot categories, standardised numbers), reduced to
    :data:`KNN_FEATURES` dimensions by truncated SVD when wider."""
    from litdesk.core.baselines import feature_frame, input_columns_by_kind, make_estimator

    yield Progress(0, 3, "Reading the input columns")
    kinds = input_columns_by_kind(dataset, columns)
    frame = feature_frame(dataset, kinds)
    yield Progress(1, 3, "Featurising the inputs")
    features = make_estimator(kinds, "linear", n_rows=len(frame))[:-1]  # all but the classifier
    matrix = features.fit_transform(frame)
    width = matrix.shape[1]
    yield Progress(2, 3, "Reducing the features")
    if hasattr(matrix, "toarray") and width > KNN_FEATURES:
        from sklearn.decomposition import TruncatedSVD

        dims = min(KNN_FEATURES, width - 1, max(1, len(frame) - 1))
        matrix = TruncatedSVD(dims, random_state=0).fit_transform(matrix)
    elif hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    described = ", ".join(columns) if len(columns) <= 3 else f"{len(columns)} input columns"
    return np.ascontiguousarray(matrix, dtype=np.float32), described


def neighbours_job(vectors: np.ndarray, k: int = NEIGHBOURS,
                   ratio: float = NEAR_DUPLICATE_RATIO
                   ) -> Job[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per row: the outlier score (mean distance to its ``k`` nearest other rows), its
    nearest other row, the distance to it, and its near twin (NO_ROW if none)."""
    from litdesk.core.projection import EXACT_KNN_MAX_POINTS, knn_job, pca_projection

    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(matrix)
    if n < 2:
        return (np.zeros(n, np.float32), np.full(n, NO_ROW, np.int64),
                np.full(n, np.inf, np.float32), np.full(n, NO_ROW, np.int64))
    if not np.isfinite(matrix).all():
        raise ValueError("the embeddings hold NaN or infinite values")
    searched = matrix
    if matrix.shape[1] > KNN_FEATURES:
        searched = yield from pca_projection(matrix, KNN_FEATURES)
    k = min(k, n - 1)
    indices, distances = yield from knn_job(searched, k + 1, "Nearest neighbours")
    rows = np.arange(n)
    # drop each row's own entry (wherever it landed among equal rows), keep k others
    own = indices == rows[:, None]
    missing = ~own.any(axis=1)
    own[missing, -1] = True  # the search missed the row itself: drop the farthest instead
    keep = ~own
    others = indices[keep].reshape(n, k)
    other_distances = distances[keep].reshape(n, k)
    unfound = others < 0  # HNSW may return fewer than asked
    other_distances = np.where(unfound, np.nan, other_distances)
    score = np.nanmean(other_distances, axis=1).astype(np.float32)
    nearest = others[:, 0]
    if searched is not matrix:  # exact distances in the full space
        nearest_distance = np.linalg.norm(matrix - matrix[np.maximum(nearest, 0)], axis=1)
    else:
        nearest_distance = other_distances[:, 0]
    nearest_distance = nearest_distance.astype(np.float32)
    positive = nearest_distance[nearest_distance > 0]
    median = float(np.median(positive)) if positive.size else 0.0
    near = (nearest >= 0) & (nearest_distance <= ratio * median)
    twin = np.where(near, nearest, NO_ROW).astype(np.int64)
    nearest = nearest.astype(np.int64)
    if n > EXACT_KNN_MAX_POINTS and ratio * median > 0:  # HNSW misses some twins at large n
        yield Progress(0, 0, "Near duplicates: checking a grid")
        _grid_twins(searched, matrix, ratio * median, twin, nearest, nearest_distance)
    return score, nearest, nearest_distance, twin


def _grid_twins(searched: np.ndarray, matrix: np.ndarray, threshold: float, twin: np.ndarray,
                nearest: np.ndarray, nearest_distance: np.ndarray) -> None:
    """Find the near twins an approximate search missed: rows that share a cell of a grid
    (side 5 × ``threshold``, twice, the second shifted by half a cell) are compared exactly;
    a pair closer than ``threshold`` updates ``twin``, ``nearest`` and ``nearest_distance``
    in place. Twins a thousand times closer than the threshold share a cell of one grid or
    the other all but always; a cell rarely holds more than a few rows."""
    n = len(searched)
    cell = 5.0 * threshold
    for shift in (0.0, 0.5):
        keys = np.ascontiguousarray(np.floor(searched / cell + shift).astype(np.int64))
        _, inverse, counts = np.unique(keys.view(np.dtype((np.void, keys.itemsize
                                                           * keys.shape[1]))).reshape(n),
                                       return_inverse=True, return_counts=True)
        inverse = inverse.reshape(n)
        shared = np.flatnonzero(counts[inverse] > 1)
        shared = shared[np.argsort(inverse[shared], kind="stable")]
        groups = np.split(shared, np.flatnonzero(np.diff(inverse[shared])) + 1)
        for group in groups:
            if len(group) < 2 or len(group) > 64:
                continue  # a crowded cell: the neighbour search covers it
            vectors = matrix[group]
            distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=2)
            np.fill_diagonal(distances, np.inf)
            closest = np.argmin(distances, axis=1)
            best = distances[np.arange(len(group)), closest]
            for row, other, distance in zip(group, group[closest], best):
                if distance <= threshold and (twin[row] == NO_ROW
                                              or distance < nearest_distance[row]):
                    twin[row], nearest[row] = other, other
                    nearest_distance[row] = min(distance, nearest_distance[row])


def _normalised_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_lower(column.cast(pa.string()))
    text = pc.replace_substring_regex(text, r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def exact_duplicates(dataset: Dataset, columns: Sequence[str]) -> np.ndarray:
    """Per row, another row with the same inputs (texts compared normalised), else NO_ROW:
    the first row of a group points to the second, the others to the first."""
    n = len(dataset)
    if n < 2 or not columns:
        return np.full(n, NO_ROW, np.int64)
    keys = np.empty((n, len(columns)), dtype=np.float64)
    for position, name in enumerate(columns):
        column = dataset.table.column(name)
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) \
                or pa.types.is_boolean(column.type):
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            keys[:, position] = np.where(np.isnan(values), -np.inf, values)
        else:
            text = _normalised_text(column) if pa.types.is_string(column.type) \
                or pa.types.is_large_string(column.type) else column.cast(pa.string())
            keys[:, position] = encode_categories(text).codes
    _, inverse = np.unique(keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1])))
                           .reshape(n), return_inverse=True)
    inverse = inverse.reshape(n)
    order = np.argsort(inverse, kind="stable")
    grouped = inverse[order]
    starts = np.r_[True, grouped[1:] != grouped[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    first = order[group_start]
    sizes = np.diff(np.r_[np.flatnonzero(starts), n])
    size = np.repeat(sizes, sizes)
    twin = np.where(size > 1, first, NO_ROW)
    is_first = starts & (size > 1)
    twin[is_first] = order[np.flatnonzero(is_first) + 1]
    result = np.empty(n, dtype=np.int64)
    result[order] = twin
    return result


# -- the audit -------------------------------------------------------------------------

def _embeddings(predictions: Mapping[str, Predictions], n: int
                ) -> Optional[tuple[np.ndarray, str]]:
    for name, model_predictions in predictions.items():
        field = model_predictions.first_of(types.Embeddings)
        if field is not None and len(model_predictions) == n:
            return np.asarray(np.stack(model_predictions.fields[field])
                              if model_predictions.fields[field].dtype == object
                              else model_predictions.fields[field], np.float32), \
                f"{name} {field}"
    return None


def audit_job(dataset: Dataset, label_column: Optional[str], *,
              predictions: Mapping[str, Predictions] = {},
              columns: Optional[Sequence[str]] = None, folds: int = 5, seed: int = 0,
              cache: Optional[ResultCache] = None, use_models: bool = True,
              in_child_process: bool = False) -> Job[Audit]:
    """Audit ``dataset``: label issues and ambiguous rows (with a ``label_column``), outliers,
    near and exact duplicates.

    ``predictions`` (by model name) supply out-of-sample class probabilities and embeddings;
    without a classifier, or with ``use_models`` False (models trained on these very rows), a
    baseline is cross-validated on ``columns`` (default: :func:`input_columns`). Raises
    ValueError for a missing label column or no inputs.

    With ``in_child_process`` the work after the cache lookup runs in a child process (a
    cached audit starts none), which closing the job kills; its failure raises
    :class:`AuditError`.
    """
    n = len(dataset)
    if label_column is not None and label_column not in dataset.table.column_names:
        raise ValueError(f"no column named {label_column!r} in {dataset.name}")
    columns = list(columns) if columns is not None else input_columns(dataset, label_column)
    if not columns:
        raise ValueError(f"{dataset.name} has no text, category or number column to audit")
    probabilities = model_probabilities(dataset, predictions) \
        if label_column and use_models else None
    embeddings = _embeddings(predictions, n)
    key = meta_key = None
    if cache is not None:
        yield Progress(0, 0, "Audit: reading the data")
        example = {"columns": _column_digest(dataset, [*columns] + (
            [label_column] if label_column else [])), "names": columns, "label": label_column,
            "probabilities": _array_digest(probabilities[0]) if probabilities else None,
            "classes": list(probabilities[1]) if probabilities else None,
            "embeddings": _array_digest(embeddings[0]) if embeddings else None}
        parameters = {"folds": folds, "seed": seed, "k": NEIGHBOURS,
                      "ratio": NEAR_DUPLICATE_RATIO}
        # the row-aligned arrays are one column entry (memory-mapped when large), the few
        # names beside them a small entry of their own
        key = result_key("audit", f"audit-{AUDIT_VERSION}", example, parameters)
        meta_key = result_key("audit-meta", f"audit-{AUDIT_VERSION}", example, parameters)
        meta = cache.get_many([meta_key]).get(meta_key)
        rows = cache.get_columns(key) if meta is not None else None
        if rows is not None:
            yield Progress(1, 1, "Audit: from the cache")
            return _from_stored(json.loads(meta["meta"]), rows)

    def store(meta: dict[str, Any], rows: dict[str, np.ndarray]) -> Optional[Audit]:
        """Keep the audit in the cache; the kept audit (its arrays memory-mapped from the
        cache's file when large), or None without a cache."""
        if cache is None:
            return None
        cache.put_columns(key, rows)
        cache.put_many([(meta_key, {"meta": json.dumps(meta)})])
        stored = cache.get_columns(key)
        return _from_stored(meta, stored) if stored is not None else None

    if in_child_process:
        return (yield from _audit_in_child_job(dataset, label_column, columns, probabilities,
                                               embeddings, folds, seed, store))
    audit = yield from _audit_here_job(dataset, label_column, columns, probabilities,
                                       embeddings, folds, seed)
    return store(*_to_stored(audit)) or audit


Probabilities = tuple[np.ndarray, tuple[str, ...], str]  # (rows × classes, classes, source)
Embeddings = tuple[np.ndarray, str]  # (rows × dims, the space's description)


def _audit_here_job(dataset: Dataset, label_column: Optional[str], columns: Sequence[str],
                    probabilities: Optional[Probabilities], embeddings: Optional[Embeddings],
                    folds: int, seed: int) -> Job[Audit]:
    """The audit's work, on this thread (see :func:`audit_job`)."""
    labels = None
    if label_column is not None:
        if probabilities is None:
            probabilities = yield from baseline_probabilities_job(dataset, columns,
                                                                  label_column, folds, seed)
        probs, classes, source = probabilities
        yield Progress(0, 0, "Finding label issues")
        given = encode_categories(dataset.table.column(label_column), classes,
                                  closed=True).codes
        labels = find_label_issues(given, probs, classes, source)
    if embeddings is None:
        vectors, space = yield from feature_space_job(dataset, columns)
    else:
        vectors, space = embeddings
    score, nearest, nearest_distance, near = yield from neighbours_job(vectors)
    yield Progress(0, 0, "Finding exact duplicates")
    exact = exact_duplicates(dataset, columns)
    return Audit(len(dataset), space, score, nearest, nearest_distance, near, exact, labels)


def _audit_in_child_job(dataset: Dataset, label_column: Optional[str],
                        columns: Sequence[str], probabilities: Optional[Probabilities],
                        embeddings: Optional[Embeddings], folds: int, seed: int,
                        store: Callable[[dict[str, Any], dict[str, np.ndarray]],
                                        Optional[Audit]]) -> Job[Audit]:
    """:func:`_audit_here_job` in a child process: the inputs go through files in a
    temporary folder, the result comes back as the cache stores it and is handed to
    ``store`` from its memory-mapped file (a million rows' arrays are 57 MB)."""
    from litdesk.api.types import spec_to_json
    from litdesk.core.child_process import child_command, child_job

    folder = Path(tempfile.mkdtemp(prefix="audit-", dir=paths.cache_dir()))
    output = folder / "audit.arrow"
    try:
        yield Progress(0, 0, "Handing the data over")
        names = [*columns] + ([label_column] if label_column else [])
        table = dataset.table.select(names)
        with pa.OSFile(str(folder / "data.arrow"), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=1 << 16):
                writer.write_batch(batch)
        request = {"name": dataset.name, "label": label_column, "columns": list(columns),
                   "folds": folds, "seed": seed,
                   "spec": spec_to_json({name: dataset.spec()[name] for name in names
                                         if name in dataset.spec()})}
        if probabilities is not None:
            np.save(folder / "probabilities.npy", np.asarray(probabilities[0]))
            request.update(classes=list(probabilities[1]), source=probabilities[2])
        if embeddings is not None:
            np.save(folder / "embeddings.npy", np.asarray(embeddings[0]))
            request["space"] = embeddings[1]
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        yield from child_job([*child_command(CHILD_FLAG, __name__), str(folder)], "The audit",
                             output, AuditError, starting="Starting the audit's process")
        meta = json.loads((folder / "audit.json").read_text(encoding="utf-8"))
        rows = read_columns_file(output)
        audit = store(meta, rows)
        if audit is None:  # no cache: copied out of the file, which goes with the folder
            audit = _from_stored(meta, {name: np.array(values) for name, values in rows.items()})
        del rows  # the file's mapping, before the folder goes
        return audit
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child_main() -> None:
    """Entry point of the audit's child process (see :mod:`litdesk.core.child_process`)."""
    from litdesk.core.child_process import child_main

    child_main(_child_work)


def _child_work(arguments: Sequence[str], report: Callable[[int, int, str], None]) -> None:
    """Read the request :func:`_audit_in_child_job` left in the folder, audit, write the
    result there."""
    from litdesk.api.types import spec_from_json
    from litdesk.core.jobs import run_job

    if hasattr(os, "nice"):  # on a busy machine the window's thread gets the cores first
        os.nice(10)
    folder = Path(arguments[0])
    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    table = pa.ipc.open_file(pa.memory_map(str(folder / "data.arrow"))).read_all()
    dataset = Dataset(table, spec_from_json(request["spec"]), request["name"])
    probabilities = embeddings = None
    if "classes" in request:
        probabilities = (np.load(folder / "probabilities.npy"), tuple(request["classes"]),
                         request["source"])
    if "space" in request:
        embeddings = (np.load(folder / "embeddings.npy", mmap_mode="r"), request["space"])
    audit = run_job(_audit_here_job(dataset, request["label"], request["columns"],
                                    probabilities, embeddings, request["folds"],
                                    request["seed"]),
                    lambda step: report(step.done, step.total, step.message))
    meta, rows = _to_stored(audit)
    (folder / "audit.json").write_text(json.dumps(meta), encoding="utf-8")
    write_columns_file(folder / "audit.arrow", rows)  # last: the window waits for this file


def _to_stored(audit: Audit) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The audit as stored: its names (JSON) and its row-aligned arrays."""
    meta: dict[str, Any] = {"num_rows": audit.num_rows, "space": audit.space}
    rows = {"outlier_score": audit.outlier_score, "nearest": audit.nearest,
            "nearest_distance": audit.nearest_distance,
            "near_duplicate_of": audit.near_duplicate_of,
            "exact_duplicate_of": audit.exact_duplicate_of}
    if audit.labels is not None:
        labels = audit.labels
        meta.update(classes=list(labels.classes), source=labels.source)
        rows.update(given=labels.given, is_issue=labels.is_issue, quality=labels.quality,
                    suggested=labels.suggested, margin=labels.margin)
    return meta, rows


def _from_stored(meta: Mapping[str, Any], rows: Mapping[str, np.ndarray]) -> Audit:
    """The inverse of :func:`_to_stored`."""
    labels = None
    if "classes" in meta:
        labels = LabelIssues(tuple(meta["classes"]), rows["given"],
                             np.asarray(rows["is_issue"], bool),
                             np.asarray(rows["quality"], np.float32), rows["suggested"],
                             np.asarray(rows["margin"], np.float32), meta["source"])
    return Audit(meta["num_rows"], meta["space"], rows["outlier_score"], rows["nearest"],
                 rows["nearest_distance"], rows["near_duplicate_of"],
                 rows["exact_duplicate_of"], labels)


def audit_to_parquet(data_path: Path, out: Path, label: str, *,
                     model_paths: Sequence[Path] = (), device: Optional[str] = None,
                     trust: bool = False, use_cache: bool = True, folds: int = 5,
                     seed: int = 0) -> str:
    """``litdesk audit``: audit a data file (with the models' predictions, else a
    cross-validated baseline) and write one row per data row; return the summary line.

    The audit runs in this process: there is no window to keep answering, and a child would
    only add its start and the copies of the inputs."""
    from litdesk.core.batch import BatchError, load_batch_inputs
    from litdesk.core.jobs import run_job
    from litdesk.core.predict import predict_job

    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    dataset, models = load_batch_inputs(list(model_paths), data_path, device=device,
                                        trust=trust, label=label)
    if label not in dataset.table.column_names:
        raise BatchError(f"{data_path}: no column named {label!r} (columns: "
                         f"{', '.join(dataset.table.column_names)})")
    cache = ResultCache() if use_cache else None
    predictions = {model.name: run_job(predict_job(model, dataset, cache=cache))
                   for model in models}
    if models and model_probabilities(dataset, predictions) is None:
        raise BatchError("none of the models classifies; drop --model to cross-validate a "
                         "baseline")
    audit = run_job(audit_job(dataset, label, predictions=predictions, folds=folds, seed=seed,
                              cache=cache))
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(audit.to_table(), out)
    return f"{out}: {audit.summary()}"
