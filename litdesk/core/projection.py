"""Projections of embeddings to 2-D or 3-D (PCA, UMAP, t-SNE), cached on disk.

:func:`projection_job` is the one entry point. PCA runs here, in row chunks (BLAS releases
the GIL, and a cancel lands between chunks). UMAP and t-SNE run in a child process that the
job polls and kills when it is closed: their numba and Cython kernels hold the GIL for
seconds at a time (which would freeze the window) and cannot be interrupted from a thread,
while a process stops at once. The child pays its start and imports (a few seconds, once
numba's on-disk cache is warm) and gets the data through a temporary ``.npy`` file.

UMAP here is umap-learn's algorithm without importing umap-learn, whose import compiles
pynndescent's numba code (most of umap-learn's cold start): a faiss k-NN graph (exact,
or HNSW above :data:`EXACT_KNN_MAX_POINTS`), umap-learn's fuzzy graph in numpy, and its SGD
epoch as one numba kernel (:mod:`litdesk.core.umap_kernel`, compiled once, then cached under
``paths.cache_dir()/numba``), after a PCA pre-reduction to ``pca_dims``, with a PCA
initialisation instead of the spectral one (the spectral layout of a graph with many
components is slow) and fewer epochs at large n (:func:`_epochs`).

t-SNE is openTSNE's, on the same faiss k-NN graph: FFT-accelerated in 2-D from
:data:`FFT_MIN_POINTS` points (linear in the points), reporting every few iterations; see
:data:`TSNE_MAX_POINTS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from litdesk.core import paths
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.child_process import child_command, child_job, child_main
from litdesk.core.jobs import Job, Progress, run_job

#: Bumped whenever a method's output for the same input and parameters changes...
ALGORITHM_VERSION = 1
#: ...or, for one method, its own version here (t-SNE 2: openTSNE replaced scikit-learn's).
METHOD_VERSIONS: Mapping[str, int] = MappingProxyType({"tsne": 2})
#: Above this many points t-SNE is refused, by output dimensions. 2-D is FFT-accelerated, about
#: linear in the points (benchmarks/tsne.py on 2 cores shared with other work): 96 s at 10,000
#: points (scikit-learn's Barnes-Hut, the cap before: 183 s, the same trustworthiness), 19 min
#: at 100,000 (trustworthiness 0.972); a million, not measured, would take hours here, with
#: progress and Cancel, and several GB for the 90-neighbour graph. 3-D has only Barnes-Hut
#: (openTSNE's FFT is 1-D and 2-D): about 0.4 s per iteration at 10,000 points, minutes.
TSNE_MAX_POINTS: Mapping[int, int] = MappingProxyType({2: 1_000_000, 3: 10_000})
#: From this many points 2-D t-SNE uses FFT-accelerated interpolation instead of Barnes-Hut:
#: its grid costs the same at any size, so below this the tree is faster (openTSNE's rule).
FFT_MIN_POINTS = 10_000
#: Up to this many points the UMAP k-NN graph is exact (faiss brute force), above it HNSW.
EXACT_KNN_MAX_POINTS = 20_000

_HASH_CHUNK_BYTES = 1 << 26


@dataclass(frozen=True)
class ProjectionMethod:
    """A projection method as the UI and the CLI show it: a label and default parameters."""

    label: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


METHODS: Mapping[str, ProjectionMethod] = MappingProxyType({
    "pca": ProjectionMethod("PCA"),
    # n_epochs 0: 500 for small data, down to 125 from 50,000 points (see _epochs).
    "umap": ProjectionMethod("UMAP", MappingProxyType(
        {"n_neighbors": 15, "min_dist": 0.1, "n_epochs": 0, "pca_dims": 50, "seed": 0})),
    # n_iter: gradient steps in all, the first third with early exaggeration (see _tsne_layout).
    "tsne": ProjectionMethod("t-SNE", MappingProxyType(
        {"perplexity": 30.0, "n_iter": 750, "pca_dims": 50, "seed": 0})),
})


class ProjectionError(RuntimeError):
    """A projection could not be computed; the message is one line for the user."""


def configure_numba_cache() -> None:
    """Point numba's on-disk cache into litdesk's cache folder unless the user chose one.

    Must run before numba is first imported (it reads the variable once); child processes
    inherit it.
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(paths.cache_dir() / "numba")


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.dtype.kind not in "fiub":
        raise ValueError(f"expected a 2-D numeric array, got shape {matrix.shape} "
                         f"of {matrix.dtype}")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _rows_per_chunk(features: int) -> int:
    return max(256, (1 << 22) // max(1, features))


def _digest(matrix: np.ndarray) -> Job[str]:
    """blake2b of the array's bytes, in chunks (hashlib releases the GIL on large buffers)."""
    digest = hashlib.blake2b(digest_size=20)
    flat = matrix.reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _HASH_CHUNK_BYTES):
        digest.update(flat[start:start + _HASH_CHUNK_BYTES])
        yield Progress(start, flat.size, "Reading the vectors")
    return digest.hexdigest()


def pca_projection(vectors: np.ndarray, dims: int) -> Job[np.ndarray]:
    """Exact PCA of ``vectors`` to ``dims`` columns, in row chunks (mean, covariance, project).

    Components follow scikit-learn's sign convention (largest coefficient positive); an input
    with fewer features than ``dims`` is padded with zero columns.
    """
    matrix = _as_matrix(vectors)
    n, features = matrix.shape
    step = _rows_per_chunk(features)
    starts = range(0, n, step)
    total = 3 * len(starts)
    mean = np.zeros(features, dtype=np.float64)
    for done, start in enumerate(starts):
        mean += matrix[start:start + step].sum(axis=0, dtype=np.float64)
        yield Progress(done, total, "PCA: mean")
    mean /= max(n, 1)
    mean32 = mean.astype(np.float32)
    covariance = np.zeros((features, features), dtype=np.float64)
    for done, start in enumerate(starts, len(starts)):
        centred = matrix[start:start + step] - mean32
        covariance += centred.T @ centred
        yield Progress(done, total, "PCA: covariance")
    _, eigenvectors = np.linalg.eigh(covariance)
    kept = min(dims, features)
    components = eigenvectors[:, ::-1][:, :kept]
    signs = np.sign(components[np.abs(components).argmax(axis=0), range(kept)])
    components = (components * np.where(signs == 0, 1, signs)).astype(np.float32)
    coords = np.zeros((n, dims), dtype=np.float32)
    for done, start in enumerate(starts, 2 * len(starts)):
        coords[start:start + step, :kept] = (matrix[start:start + step] - mean32) @ components
        yield Progress(done, total, "PCA: projecting")
    return coords


def pca_job(vectors: np.ndarray, dims: int = 2) -> Job[np.ndarray]:
    """PCA of ``vectors`` to ``dims`` columns, uncached (see :func:`projection_job`)."""
    return pca_projection(vectors, dims)


def _check(method: str, dims: int, n: int, params: Mapping[str, Any]) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; choose from "
                         f"{', '.join(METHODS)}")
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, not {dims}")
    unknown = set(params) - set(METHODS[method].defaults)
    if unknown:
        raise ValueError(f"{METHODS[method].label} has no parameter "
                         f"{', '.join(sorted(unknown))}")
    if method == "tsne" and "n_iter" in params and int(params["n_iter"]) < 1:
        raise ValueError(f"t-SNE needs n_iter of at least 1, not {params['n_iter']}")
    if method != "pca" and n < 4:
        raise ValueError(f"{METHODS[method].label} needs at least 4 points, got {n}")
    if method == "tsne" and n > TSNE_MAX_POINTS[dims]:
        raise ValueError(f"t-SNE in {dims}D is limited to {TSNE_MAX_POINTS[dims]:,} points "
                         f"(got {n:,}): use UMAP, or a slice")


def projection_job(vectors: np.ndarray, method: str, dims: int = 2,
                   params: Optional[Mapping[str, Any]] = None,
                   cache: Optional[ResultCache] = None) -> Job[np.ndarray]:
    """Project ``vectors`` (rows × features) to ``dims`` (2 or 3) float32 columns.

    ``method`` is a key of :data:`METHODS`; ``params`` override its defaults. With a
    ``cache``, the result is looked up by the vectors' bytes, the method, dims, the full
    parameters and the method's version (:data:`METHOD_VERSIONS`), and stored when computed.
    Closing the job stops it (a UMAP or t-SNE child process is killed) and stores nothing.
    """
    matrix = _as_matrix(vectors)
    merged = {**METHODS[method].defaults, **(params or {})} if method in METHODS else {}
    _check(method, dims, len(matrix), params or {})
    step = _rows_per_chunk(matrix.shape[1])
    if not all(np.isfinite(matrix[start:start + step]).all()
               for start in range(0, len(matrix), step)):
        raise ValueError("the vectors hold NaN or infinite values")
    key = None
    if cache is not None:
        digest = yield from _digest(matrix)
        version = METHOD_VERSIONS.get(method, ALGORITHM_VERSION)
        key = result_key("projection", f"algorithm-{version}",
                         {"vectors": digest, "shape": list(matrix.shape), "dtype": "float32"},
                         {"method": method, "dims": dims, **merged})
        found = cache.get_many([key])
        if key in found:
            yield Progress(1, 1, f"{METHODS[method].label}: from the cache")
            return found[key]["coords"]
    if method == "pca":
        coords = yield from pca_projection(matrix, dims)
    else:
        if merged["pca_dims"] and matrix.shape[1] > merged["pca_dims"]:
            matrix = yield from pca_projection(matrix, int(merged["pca_dims"]))
        coords = yield from _in_child_process(method, matrix, dims, merged)
    if cache is not None:
        cache.put_many([(key, {"coords": coords})])
    return coords


# -- the child process -------------------------------------------------------------------

#: The first argument that makes a frozen litdesk run :func:`_child_main` (litdesk.__main__).
CHILD_FLAG = "--projection-child"


def _in_child_process(method: str, matrix: np.ndarray, dims: int,
                      params: Mapping[str, Any]) -> Job[np.ndarray]:
    """Run the method in a child process (:mod:`litdesk.core.child_process`), relaying its
    progress; kill it when closed."""
    configure_numba_cache()
    label = METHODS[method].label
    folder = Path(tempfile.mkdtemp(prefix="projection-", dir=paths.cache_dir()))
    inputs, outputs = folder / "vectors.npy", folder / "coords.npy"
    try:
        np.save(inputs, matrix)
        yield Progress(0, 0, f"{label}: starting")
        yield from child_job(
            [*_child_command(), method, str(inputs), str(outputs), str(dims),
             json.dumps(dict(params))], label, outputs, ProjectionError)
        return np.load(outputs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child_command() -> list[str]:
    """How the child starts: this Python running :func:`_child_main`, or, in a frozen app,
    the app itself with :data:`CHILD_FLAG`."""
    return child_command(CHILD_FLAG, __name__)


def _child_main() -> None:
    """Entry point of the child process: compute, write the coordinates, report on stdout."""
    child_main(_child_work)


def _child_work(arguments: Sequence[str], report: Callable[[int, int, str], None]) -> None:
    method, inputs, outputs, dims, params = arguments[:5]
    matrix = np.load(inputs)
    compute = _umap_layout if method == "umap" else _tsne_layout
    coords = compute(matrix, int(dims), json.loads(params), report)
    np.save(outputs, np.ascontiguousarray(coords, dtype=np.float32))


def knn_job(matrix: np.ndarray, k: int, what: str = "Nearest neighbours"
            ) -> Job[tuple[np.ndarray, np.ndarray]]:
    """Each row's ``k`` nearest rows (itself first) and their Euclidean distances (faiss:
    exact up to :data:`EXACT_KNN_MAX_POINTS` rows, HNSW above), yielding progress headed
    ``what``. Among exact duplicates, the row itself may come after its twins."""
    import faiss

    n, features = matrix.shape
    if n <= EXACT_KNN_MAX_POINTS:
        index = faiss.IndexFlatL2(features)
    else:
        index = faiss.IndexHNSWFlat(features, 16)
        index.hnsw.efConstruction = 64
    step = 20_000
    for start in range(0, n, step):
        index.add(matrix[start:start + step])
        yield Progress(start, 2 * n, f"{what}: indexing")
    if n > EXACT_KNN_MAX_POINTS:
        index.hnsw.efSearch = max(64, 4 * k)
    indices = np.empty((n, k), dtype=np.int64)
    squared = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, step):
        squared[start:start + step], indices[start:start + step] = index.search(
            matrix[start:start + step], k)
        yield Progress(n + start, 2 * n, what)
    return indices, np.sqrt(np.maximum(squared, 0.0))


def _knn_graph(matrix: np.ndarray, k: int, report: Callable[[int, int, str], None],
               what: str = "UMAP: nearest neighbours") -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest rows (itself first) and their Euclidean distances (faiss)."""
    indices, distances = run_job(knn_job(matrix, k, what),
                                 lambda step: report(step.done, step.total, step.message))
    n = len(matrix)
    rows = np.arange(n)
    missing_self = indices[:, 0] != rows  # HNSW can miss a point's own entry
    indices[missing_self, 1:] = indices[missing_self, :-1]
    distances[missing_self, 1:] = distances[missing_self, :-1]
    indices[missing_self, 0], distances[missing_self, 0] = rows[missing_self], 0.0
    return indices, distances


def _epochs(points: int) -> int:
    """UMAP's default number of epochs: 500 up to 12,500 points, falling to 125 at 50,000.

    umap-learn uses 500 and 200 either side of 10,000 points from a spectral start. From a
    PCA start and an accurate k-NN graph, 125 epochs at 50,000 points matched its
    trustworthiness (benchmarks/umap.py; 100 fell just short), and each epoch costs about
    as much as building the whole graph.
    """
    return max(125, min(500, 6_250_000 // points))


def smooth_knn_dist(distances: np.ndarray, n_iter: int = 64, new_points: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's ``smooth_knn_dist`` (local connectivity 1, bandwidth 1), all rows at once:
    (sigmas, rhos) as float32.

    ``distances`` (rows × k, ascending, the row itself first at 0). Per row, rho is the
    nearest non-zero distance and sigma, found by bisection, makes the sum over the
    neighbours after the first of exp(-(d - rho) / sigma) equal log2(k); sigma is at least
    1e-3 of the row's mean distance (of all rows' where rho is 0). With ``new_points``
    (umap-learn's ``transform``, local connectivity 0) rho is 0 and the floor is 1e-3 of the
    mean finite distance: a neighbour HNSW did not find is at inf.
    """
    n, k = distances.shape
    target = np.log2(k)
    if new_points:
        rhos = np.zeros(n, dtype=np.float32)
    else:
        positive = distances > 0.0
        has_positive = positive.any(axis=1)
        rhos = np.where(has_positive, distances[np.arange(n), positive.argmax(axis=1)],
                        np.float32(0.0)).astype(np.float32)
    shifted = distances[:, 1:] - rhos[:, None]
    low, high, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    active = np.arange(n)
    for _ in range(n_iter):
        if not len(active):
            break
        rest, middle = shifted[active], mid[active]
        total = np.where(rest > 0, np.exp(-(rest / middle[:, None])), 1.0).sum(axis=1)
        going = np.abs(total - target) >= 1e-5  # umap-learn's tolerance: converged rows stop
        active, total, middle = active[going], total[going], middle[going]
        above = total > target
        high[active] = np.where(above, middle, high[active])
        low[active] = np.where(above, low[active], middle)
        mid[active] = np.where(np.isinf(high[active]), middle * 2,
                               (low[active] + high[active]) / 2.0)
    if new_points:
        finite = distances[np.isfinite(distances)]
        floor = np.full(n, 1e-3 * finite.mean() if finite.size else 0.0)
    else:
        floor = 1e-3 * np.where(rhos > 0.0, distances.mean(axis=1), distances.mean())
    return np.maximum(mid.astype(np.float32), floor.astype(np.float32)), rhos


def _fuzzy_graph(indices: np.ndarray, distances: np.ndarray):
    """umap-learn's ``fuzzy_simplicial_set`` of a k-NN graph (each row itself first): the
    membership strengths exp(-(d - rho) / sigma), symmetrised by fuzzy union, as scipy COO."""
    import scipy.sparse

    distances = distances.astype(np.float32)
    n, k = indices.shape
    sigmas, rhos = smooth_knn_dist(distances)
    shifted = distances - rhos[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # sigma 0: 1, as at d <= rho
        values = np.exp(-(np.maximum(shifted, 0.0) / sigmas[:, None]))
    values = np.where(sigmas[:, None] == 0.0, np.float32(1.0), values)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    values[indices == np.arange(n)[:, None]] = 0.0  # a point is not its own neighbour
    found = indices.ravel() >= 0  # HNSW may find fewer than k
    graph = scipy.sparse.coo_matrix(
        (values.ravel()[found].astype(np.float32),
         (rows[found], indices.ravel()[found].astype(np.int32))), shape=(n, n))
    graph.eliminate_zeros()
    transpose = graph.transpose()
    graph = graph + transpose - graph.multiply(transpose)
    graph.eliminate_zeros()
    return graph.tocoo()


def _ab_params(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """umap-learn's ``find_ab_params``: a, b of 1 / (1 + a x^2b) fitted to the offset
    exponential decay that ``min_dist`` and ``spread`` describe."""
    from scipy.optimize import curve_fit

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return float(a), float(b)


def _umap_layout(matrix: np.ndarray, dims: int, params: Mapping[str, Any],
                 report: Callable[[int, int, str], None]) -> np.ndarray:
    """UMAP: faiss k-NN, umap-learn's fuzzy graph (numpy here) and its SGD epoch (one numba
    kernel, :mod:`litdesk.core.umap_kernel`), epoch by epoch; umap-learn itself is not
    imported (its import compiles pynndescent)."""
    n = len(matrix)
    k = min(int(params["n_neighbors"]), n - 1)
    indices, distances = _knn_graph(matrix, k, report)
    random_state = np.random.RandomState(int(params["seed"]))
    report(0, 0, "UMAP: fuzzy graph")
    graph = _fuzzy_graph(indices, distances)
    n_epochs = int(params["n_epochs"]) or _epochs(n)
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    initial = run_job(pca_projection(matrix, dims))
    # umap-learn's noisy_scale_coords, then a rescale of each axis to [0, 10].
    embedding = (initial * (10.0 / np.abs(initial).max())).astype(np.float32)
    embedding += random_state.normal(scale=0.0001, size=embedding.shape).astype(np.float32)
    low, high = embedding.min(axis=0), embedding.max(axis=0)
    embedding = (10.0 * (embedding - low) / np.where(high > low, high - low, 1.0)).astype(
        np.float32, order="C")
    a, b = _ab_params(float(params["min_dist"]))
    # umap-learn's make_epochs_per_sample: an edge of weight w is due every max(w) / w epochs.
    epochs_per_sample = (graph.data.max() / graph.data).astype(np.float64)
    epochs_per_negative_sample = epochs_per_sample / 5.0
    next_negative_sample = epochs_per_negative_sample.copy()
    next_sample = epochs_per_sample.copy()
    rng_state = random_state.randint(np.iinfo(np.int32).min, np.iinfo(np.int32).max,
                                     3).astype(np.int64)
    rng_per_point = np.full((n, 3), rng_state, dtype=np.int64) + embedding[:, :1].astype(
        np.float64).view(np.int64)
    report(0, n_epochs, "UMAP: compiling the layout kernel")
    from litdesk.core.umap_kernel import cache_compiled_kernel, layout_epoch

    cache_compiled_kernel()
    head, tail = graph.row, graph.col
    last_report = 0.0
    for number in range(n_epochs):
        layout_epoch(embedding, head, tail, epochs_per_sample, a, b, rng_per_point,
                     1.0 - number / n_epochs, epochs_per_negative_sample,
                     next_negative_sample, next_sample, number)
        if time.monotonic() - last_report > 0.25:
            report(number, n_epochs, "UMAP: layout")
            last_report = time.monotonic()
    return embedding


def _tsne_layout(matrix: np.ndarray, dims: int, params: Mapping[str, Any],
                 report: Callable[[int, int, str], None]) -> np.ndarray:
    """openTSNE: affinities from a faiss k-NN graph (3 × perplexity neighbours), a PCA start,
    then ``n_iter`` gradient steps, the first third with early exaggeration (12), reporting
    each step. The repulsion is FFT-accelerated interpolation in 2-D (linear in the number
    of points); openTSNE has it for 1-D and 2-D only, so 3-D uses its Barnes-Hut tree.
    """
    report(0, 0, "t-SNE: loading openTSNE")
    from openTSNE import TSNE
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.initialization import jitter
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    n = len(matrix)
    perplexity = min(float(params["perplexity"]), (n - 1) / 3.0)
    k = min(n - 1, int(3 * perplexity))
    indices, distances = _knn_graph(matrix, k + 1, report, "t-SNE: nearest neighbours")
    report(0, 0, "t-SNE: affinities")
    threads = os.cpu_count() or 1
    affinities = PerplexityBasedNN(
        knn_index=PrecomputedNeighbors(indices[:, 1:], distances[:, 1:].astype(np.float64)),
        perplexity=perplexity, n_jobs=threads)
    # openTSNE's PCA start: the first axis scaled to a standard deviation of 1e-4, jittered.
    initial = run_job(pca_projection(matrix, dims)).astype(np.float64)
    initial *= 1e-4 / (initial[:, 0].std() or 1.0)
    initial = jitter(initial, random_state=int(params["seed"]))
    total = int(params["n_iter"])
    early = total // 3
    tsne = TSNE(n_components=dims, perplexity=perplexity, n_jobs=threads,
                negative_gradient_method="fft" if dims == 2 and n >= FFT_MIN_POINTS else "bh",
                random_state=int(params["seed"]))
    embedding = tsne.prepare_initial(affinities=affinities, initialization=initial)
    every = max(1, min(10, 100_000 // n))  # a report at least every second or so

    def reporter(offset: int, message: str) -> Callable[[int, float, Any], bool]:
        def callback(iteration: int, error: float, _embedding) -> bool:
            report(offset + iteration, total, f"{message} (KL divergence {error:.3f})")
            return False  # go on
        return callback

    for offset, steps, exaggeration, momentum, message in (
            (0, early, tsne.early_exaggeration, tsne.initial_momentum,
             "t-SNE: early exaggeration"),
            (early, total - early, tsne.exaggeration, tsne.final_momentum, "t-SNE: layout")):
        if steps:
            report(offset, total, message)
            embedding = embedding.optimize(
                n_iter=steps, exaggeration=exaggeration, momentum=momentum, inplace=True,
                callbacks=reporter(offset, message), callbacks_every_iters=every)
            report(offset + steps, total, message)
    return np.asarray(embedding)


# -- dataset helpers ---------------------------------------------------------------------

def dataset_vectors(dataset, field_name: str) -> np.ndarray:
    """A list<float> column (an ``Embeddings`` field) as a float32 (rows × dims) array.

    Raises ValueError for a missing, null, ragged or non-numeric column.
    """
    import pyarrow as pa

    if field_name not in dataset.table.column_names:
        raise ValueError(f"no column named {field_name!r}")
    column = dataset.table.column(field_name).combine_chunks()
    list_type = column.type
    if not (pa.types.is_list(list_type) or pa.types.is_large_list(list_type)
            or pa.types.is_fixed_size_list(list_type)):
        raise ValueError(f"column {field_name!r} holds {list_type}, not lists of numbers")
    value_type = list_type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
        raise ValueError(f"column {field_name!r} holds lists of {value_type}, not numbers")
    if column.null_count:
        raise ValueError(f"column {field_name!r} has {column.null_count:,} empty rows")
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        raise ValueError(f"column {field_name!r} has vectors of different lengths "
                         f"({lengths.min()} to {lengths.max()})")
    values = column.flatten()
    if values.null_count:
        raise ValueError(f"column {field_name!r} has missing numbers inside its vectors")
    width = int(lengths[0]) if len(lengths) else 0
    return values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(column), width)


def numeric_matrix(dataset, columns: Sequence[str], standardise: bool = True) -> np.ndarray:
    """Numeric columns as a float32 matrix, each standardised (unless ``standardise`` is
    False: coordinates shown as they are), nulls set to the column mean.

    Raises ValueError for a missing or non-numeric column.
    """
    import pyarrow as pa

    if not columns:
        raise ValueError("name at least one numeric column")
    matrix = np.empty((len(dataset), len(columns)), dtype=np.float32)
    for position, name in enumerate(columns):
        if name not in dataset.table.column_names:
            raise ValueError(f"no column named {name!r}")
        column = dataset.table.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)):
            raise ValueError(f"column {name!r} is not numeric ({column.type})")
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        present = np.isfinite(values)
        mean = values[present].mean() if present.any() else 0.0
        values = np.where(present, values, mean)
        spread = values.std() if standardise else 1.0
        matrix[:, position] = (values - (mean if standardise else 0.0)) / (spread or 1.0)
    return matrix


def nearest_neighbors(vectors: np.ndarray, row: int, k: int) -> np.ndarray:
    """The ``k`` rows nearest to ``row`` (Euclidean), nearest first; ``row`` itself is
    included (first, at distance 0) and counts towards ``k``.

    Chunked float32 matrix-vector products pick candidates, whose exact distances order them.
    """
    n = len(vectors)
    if not 0 <= row < n:
        raise ValueError(f"row {row} is outside 0..{n - 1}")
    k = min(k, n)
    query = np.asarray(vectors[row], dtype=np.float32)
    step = _rows_per_chunk(vectors.shape[1])
    candidates = []
    for start in range(0, n, step):
        chunk = np.asarray(vectors[start:start + step], dtype=np.float32)
        squared = np.einsum("ij,ij->i", chunk, chunk) - 2.0 * (chunk @ query)
        keep = min(len(chunk), k + 8)  # a margin for rounding in the expanded form
        candidates.append(np.argpartition(squared, keep - 1)[:keep] + start)
    found = np.sort(np.concatenate(candidates))
    offsets = np.asarray(vectors[found], dtype=np.float32) - query
    distances = np.einsum("ij,ij->i", offsets, offsets)
    return found[np.lexsort((found, distances))][:k]
