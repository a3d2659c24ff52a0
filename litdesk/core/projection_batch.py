"""The ``litdesk project`` batch command's work, Qt-free: load, pick the vectors, project, write.

With ``--engine ray`` (:func:`litdesk.core.ray_engine.project_on_ray`) a projection is fitted
on a sample of the rows on the desk and the other rows are placed on the workers, by the
placements here: :class:`LinearPlacement` (PCA) and :class:`NeighbourPlacement` (UMAP).
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Embeddings, LoadOptions, find_spec_keys
from litdesk.core.batch import BatchError, ProgressBar, load_batch_inputs
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from litdesk.core.projection import (EXACT_KNN_MAX_POINTS, METHODS, ProjectionError,
                                     dataset_vectors, numeric_matrix, projection_job,
                                     smooth_knn_dist)

#: Rows a projection on Ray is fitted on by default (``--fit-sample``): the UMAP of 50,000
#: points takes about half a minute on one machine, and a PCA of that many is as good as
#: the whole dataset's for drawing.
FIT_SAMPLE = 50_000


def _model_vectors(model, dataset, field: str, cache: Optional[ResultCache],
                   bar: Optional[ProgressBar] = None) -> np.ndarray:
    embeddings_field(model, field)
    predictions = run_job(predict_job(model, dataset, cache=cache, fields=[field]),
                          bar.update if bar is not None else None)
    return np.stack(predictions.fields[field]).astype(np.float32)


def project_to_parquet(data_path: Path, field: str, method: str, out: Path, *, dims: int = 2,
                       model_path: Optional[Path] = None, use_cache: bool = True,
                       options: Optional[LoadOptions] = None, quiet: bool = True) -> str:
    """Project a field of the dataset (or a model's Embeddings output) and write x, y (z).

    Without a model, ``field`` is an Embeddings column or comma-separated numeric columns.
    Returns a summary line; raises :class:`BatchError` with a one-line message.
    """
    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    if method not in METHODS:
        raise BatchError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    options = options or LoadOptions()
    dataset, models = load_batch_inputs([model_path] if model_path is not None else [],
                                        data_path, device=options.device, trust=options.trust)
    cache = ResultCache() if use_cache else None
    bar = ProgressBar(quiet=quiet)
    try:
        if models:
            vectors = _model_vectors(models[0], dataset, field, cache, bar)
        else:
            vectors = column_vectors(dataset, field)
        bar.close()
        bar = ProgressBar(unit="steps", quiet=quiet)
        coords = run_job(projection_job(vectors, method, dims, cache=cache), bar.update)
    except (ValueError, ProjectionError) as error:
        raise BatchError(str(error)) from error
    finally:
        bar.close()
    table = coordinates_table(coords)
    out.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(table, out)
    return (f"{out}: {table.num_rows:,} rows, {METHODS[method].label} of {field} "
            f"in {dims} dimensions")


def column_vectors(dataset, field: str) -> np.ndarray:
    """The vectors ``field`` names in the dataset, without a model: an Embeddings column, or
    comma-separated numeric columns (standardised). ValueError names what is wrong."""
    if "," in field or _is_numeric(dataset, field):
        return numeric_matrix(dataset, [name.strip() for name in field.split(",")])
    return dataset_vectors(dataset, field)


def embeddings_field(model, field: str):
    """The model's Embeddings output ``field`` (its type), or a BatchError naming the ones it
    has."""
    embeddings = find_spec_keys(model.output_spec(), Embeddings)
    if field not in embeddings:
        raise BatchError(f"{model.name} has no Embeddings output {field!r} "
                         f"(it has: {', '.join(embeddings) or 'none'})")
    return model.output_spec()[field]


def coordinates_table(coords: np.ndarray) -> pa.Table:
    """What ``litdesk project`` writes of ``coords``: float32 columns x, y (and z)."""
    return pa.table({name: np.ascontiguousarray(coords[:, axis], dtype=np.float32)
                     for axis, name in enumerate("xyz"[:coords.shape[1]])})


def fit_sample_rows(total: int, size: int, seed: int = 0) -> np.ndarray:
    """The rows a projection on Ray is fitted on: every row when ``size`` covers them, else
    ``size`` rows drawn at random (``seed``), in ascending order."""
    if size >= total:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=size, replace=False)).astype(np.int64)


@dataclass
class LinearPlacement:
    """A PCA fitted on a sample, applied to any rows: ``(vectors - mean) @ components``."""

    mean: np.ndarray  # float32, features
    components: np.ndarray  # float32, features × dims (zero columns past the data's rank)

    def place(self, vectors: np.ndarray, rows: Optional[np.ndarray] = None) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components


def fit_pca(sample: np.ndarray, dims: int) -> LinearPlacement:
    """PCA of the ``sample`` to ``dims`` columns (scikit-learn, in float64), with litdesk's
    conventions (:func:`~litdesk.core.projection.pca_projection`): the largest coefficient of
    each component positive, zero columns past the features or the rows."""
    from sklearn.decomposition import PCA

    sample = np.asarray(sample, dtype=np.float64)
    features = sample.shape[1]
    kept = min(dims, features, len(sample))
    components = np.zeros((features, dims), dtype=np.float64)
    mean = sample.mean(axis=0) if len(sample) else np.zeros(features)
    if kept:
        fitted = PCA(n_components=kept, svd_solver="full").fit(sample)
        found = fitted.components_.T
        signs = np.sign(found[np.abs(found).argmax(axis=0), range(kept)])
        components[:, :kept] = found * np.where(signs == 0, 1, signs)
        mean = fitted.mean_
    return LinearPlacement(mean.astype(np.float32), components.astype(np.float32))


@dataclass
class NeighbourPlacement:
    """A UMAP fitted on a sample (the rows ``sample_rows``, laid out at ``sample_coords``),
    placing any other row where umap-learn's ``transform`` starts it (``init_graph_transform``):
    at the mean of the layout of its ``k`` nearest sample points, weighted by their membership
    strength ``exp(-d / sigma)``, sigma chosen per row so that the strengths sum to log2(k)
    (``smooth_knn_dist`` with ``transform``'s local connectivity of 0); a row at distance 0
    from a sample point takes its place. umap-learn then refines the new points by a few
    epochs of SGD against the fixed layout; litdesk stops at this placement, which needs
    neither umap-learn nor numba on the workers.

    The neighbours are found by faiss (exact up to
    :data:`~litdesk.core.projection.EXACT_KNN_MAX_POINTS` sample points, HNSW above) in the
    space the layout was fitted in: the vectors reduced by ``reduce`` (the sample's PCA to
    UMAP's ``pca_dims``, which spans the same subspace as the fit's own, so distances agree)
    or as they are.
    """

    sample_rows: np.ndarray  # int64, ascending
    sample_coords: np.ndarray  # float32, len(sample_rows) × dims
    index: np.ndarray  # faiss.serialize_index of the (reduced) sample vectors
    k: int
    reduce: Optional[LinearPlacement] = None
    _searcher: Any = dataclass_field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_searcher": None}  # shipped without the live index

    def place(self, vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        coords = np.empty((len(rows), self.sample_coords.shape[1]), dtype=np.float32)
        position = np.minimum(np.searchsorted(self.sample_rows, rows),
                              max(len(self.sample_rows) - 1, 0))
        fitted = self.sample_rows[position] == rows
        coords[fitted] = self.sample_coords[position[fitted]]
        rest = np.flatnonzero(~fitted)
        if len(rest):
            query = np.asarray(vectors, dtype=np.float32)[rest]
            if self.reduce is not None:
                query = self.reduce.place(query)
            squared, neighbours = self._search(np.ascontiguousarray(query, dtype=np.float32))
            coords[rest] = self._weighted_mean(np.sqrt(np.maximum(squared, 0.0)), neighbours)
        return coords

    def _search(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self._searcher is None:
            self._searcher = faiss.deserialize_index(self.index)
            if isinstance(self._searcher, faiss.IndexHNSWFlat):
                self._searcher.hnsw.efSearch = max(64, 4 * self.k)
        return self._searcher.search(query, self.k)

    def _weighted_mean(self, distances: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
        distances = np.where(neighbours < 0, np.inf, distances.astype(np.float64))
        sigma = smooth_knn_dist(distances, new_points=True)[0].astype(np.float64)
        weights = np.where(distances > 0, np.exp(-distances / sigma[:, None]), 1.0)
        coords = np.einsum("ij,ijk->ik", weights / weights.sum(axis=1, keepdims=True),
                           self.sample_coords[np.maximum(neighbours, 0)].astype(np.float64))
        twin = distances[:, 0] <= 0  # on a sample point: there
        coords[twin] = self.sample_coords[neighbours[twin, 0]]
        return coords.astype(np.float32)


def fit_umap_placement(sample: np.ndarray, sample_rows: np.ndarray, sample_coords: np.ndarray,
                       params: dict) -> NeighbourPlacement:
    """The :class:`NeighbourPlacement` of a UMAP layout ``sample_coords`` fitted on ``sample``
    (the vectors of ``sample_rows``) with ``params`` (UMAP's, as in
    :data:`~litdesk.core.projection.METHODS`)."""
    import faiss

    reduce = None
    space = np.asarray(sample, dtype=np.float32)
    if params["pca_dims"] and space.shape[1] > params["pca_dims"]:
        reduce = fit_pca(space, int(params["pca_dims"]))
        space = reduce.place(space)
    space = np.ascontiguousarray(space, dtype=np.float32)
    if len(space) <= EXACT_KNN_MAX_POINTS:
        index = faiss.IndexFlatL2(space.shape[1])
    else:
        index = faiss.IndexHNSWFlat(space.shape[1], 16)
        index.hnsw.efConstruction = 64
    index.add(space)
    k = max(1, min(int(params["n_neighbors"]), len(space)))
    return NeighbourPlacement(np.asarray(sample_rows, dtype=np.int64),
                              np.asarray(sample_coords, dtype=np.float32),
                              faiss.serialize_index(index), k, reduce)


def _is_numeric(dataset, name: str) -> bool:
    if name not in dataset.table.column_names:
        return False
    kind = dataset.table.schema.field(name).type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
