"""t-SNE beyond 10,000 points (openTSNE in the child process, progress per iteration, cancel),
and UMAP's child without umap-learn (its fuzzy graph in numpy, its epoch as litdesk's kernel)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import Dataset, Embeddings
from litdesk.core import projection
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.projection import METHODS, projection_job
from tests.helpers import shown

#: Above the old cap of 10,000 points, and at least FFT_MIN_POINTS: the FFT path.
POINTS = 12_000


@pytest.fixture(autouse=True)
def shared_numba_cache(request, monkeypatch):
    """One numba cache for every run of these tests, so only the first run compiles."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(request.config.cache.mkdir("litdesk-numba")))


def blobs(n: int, features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six well separated Gaussian clusters, and each point's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (6, features))
    labels = rng.integers(0, 6, n)
    return (centres[labels] + rng.normal(0, 1, (n, features))).astype(np.float32), labels


def neighbours_agree(coords: np.ndarray, labels: np.ndarray, sample: int = 1000) -> float:
    """The share of sampled points whose nearest other point on the layout is in their cluster."""
    rows = np.random.default_rng(1).choice(len(coords), sample, replace=False)
    squared = ((coords[rows, None, :] - coords[None, :, :]) ** 2).sum(axis=2)
    squared[np.arange(sample), rows] = np.inf
    return float((labels[squared.argmin(axis=1)] == labels[rows]).mean())


def test_tsne_lays_out_more_points_than_the_old_cap_reporting_each_iteration(monkeypatch):
    assert projection.TSNE_MAX_POINTS[2] > POINTS >= projection.FFT_MIN_POINTS
    x, labels = blobs(POINTS)
    seen = []
    cache = ResultCache()
    coords = run_job(projection_job(x, "tsne", 2, params={"n_iter": 30}, cache=cache),
                     seen.append)
    assert coords.shape == (POINTS, 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    assert neighbours_agree(coords, labels) > 0.95
    steps = [(step.done, step.total, step.message) for step in seen
             if step.message.startswith(("t-SNE: early exaggeration", "t-SNE: layout"))]
    assert {total for _, total, _ in steps} == {30}
    done = [number for number, _, _ in steps]
    assert done == sorted(done) and done[-1] == 30 and len(set(done)) >= 5, steps
    assert any("KL divergence" in message for _, _, message in steps)
    assert any(step.message.startswith("t-SNE: nearest neighbours") for step in seen)
    monkeypatch.setattr(projection, "_in_child_process", None)  # a cache hit from now on
    np.testing.assert_array_equal(
        run_job(projection_job(x, "tsne", 2, params={"n_iter": 30}, cache=ResultCache())),
        coords)


def test_tsne_in_3d_uses_barnes_hut_and_separates_clusters():
    x, labels = blobs(600)
    coords = run_job(projection_job(x, "tsne", 3, params={"n_iter": 90}))
    assert coords.shape == (600, 3) and np.isfinite(coords).all()
    assert neighbours_agree(coords, labels, 300) > 0.95


def test_cancel_in_the_middle_of_a_tsne_kills_the_child_and_caches_nothing(
        monkeypatch, projection_children):
    started = projection_children
    cache = ResultCache()
    x, _ = blobs(POINTS)
    job = projection_job(x, "tsne", 2, cache=cache)
    messages = []
    for progress in job:  # until the child is optimising: 750 iterations to go
        messages.append(progress.message)
        if progress.message.startswith("t-SNE: early exaggeration"):
            break
    assert started and started[0].poll() is None, messages
    job.close()
    assert started[0].poll() == -signal.SIGKILL
    assert not list(cache.path.parent.glob("projection-*"))
    monkeypatch.setattr(projection, "_in_child_process", None)
    with pytest.raises(TypeError):  # nothing cached: the next run must compute
        run_job(projection_job(x, "tsne", 2, cache=cache))


def test_tsne_results_of_the_old_implementation_are_not_reused(monkeypatch):
    x, _ = blobs(50)
    keys = []

    def child(*args):
        return np.zeros((50, 2), np.float32)
        yield  # a job, as the real one

    monkeypatch.setattr(projection, "result_key",
                        lambda *parts: keys.append(parts) or f"key {len(keys)}")
    monkeypatch.setattr(projection, "_in_child_process", child)
    run_job(projection_job(x, "tsne", 2, cache=ResultCache()))
    run_job(projection_job(x, "umap", 2, cache=ResultCache()))
    assert keys[0][1] == "algorithm-2" and keys[1][1] == f"algorithm-{projection.ALGORITHM_VERSION}"


def test_tsne_needs_at_least_one_iteration():
    x, _ = blobs(50)
    with pytest.raises(ValueError, match="n_iter of at least 1"):
        run_job(projection_job(x, "tsne", 2, params={"n_iter": 0}))


def test_smooth_knn_dist_meets_umaps_target_per_row():
    x, _ = blobs(800, 8)
    indices, distances = projection._knn_graph(x, 15, lambda *args: None)
    sigmas, rhos = projection.smooth_knn_dist(distances.astype(np.float32))
    np.testing.assert_allclose(rhos, distances[:, 1], rtol=1e-6)  # the nearest other point
    strengths = np.exp(-np.maximum(distances[:, 1:] - rhos[:, None], 0) / sigmas[:, None])
    np.testing.assert_allclose(strengths.sum(axis=1), np.log2(15), rtol=1e-3)
    graph = projection._fuzzy_graph(indices, distances).tocsr()
    assert (abs(graph - graph.T) > 1e-6).nnz == 0 and graph.diagonal().max() == 0
    assert graph.max() <= 1.0 and graph.nnz >= 800 * 14


def test_the_umap_child_does_not_import_umap_learn(tmp_path):
    """Importing umap-learn compiles pynndescent (most of a cold start): the child must not."""
    x, labels = blobs(600, 8)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import json, sys, numpy as np\n"
        "from litdesk.core.projection import _umap_layout\n"
        "x = np.load(sys.argv[1])\n"
        "params = {'n_neighbors': 15, 'min_dist': 0.1, 'n_epochs': 100, 'seed': 0}\n"
        "coords = _umap_layout(x, 2, params, lambda *args: None)\n"
        "np.save(sys.argv[2], coords)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('umap', 'pynndescent', 'sklearn'))))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"),
                           str(tmp_path / "coords.npy")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert neighbours_agree(np.load(tmp_path / "coords.npy"), labels, 300) > 0.95


@pytest.mark.slow
def test_fuzzy_graph_and_layout_epoch_equal_umap_learns():
    umap_core = pytest.importorskip("umap.umap_")
    import umap.layouts
    from sklearn.utils import check_random_state

    from litdesk.core.umap_kernel import layout_epoch

    x, _ = blobs(1000, 8)
    indices, distances = projection._knn_graph(x, 15, lambda *args: None)
    theirs, their_sigmas, their_rhos = umap_core.fuzzy_simplicial_set(
        x, 15, check_random_state(0), "euclidean", knn_indices=indices, knn_dists=distances)
    sigmas, rhos = projection.smooth_knn_dist(distances.astype(np.float32))
    np.testing.assert_allclose(sigmas, their_sigmas, rtol=1e-6)
    np.testing.assert_array_equal(rhos, their_rhos)
    ours, theirs = projection._fuzzy_graph(indices, distances).tocsr(), theirs.tocsr()
    assert abs(ours - theirs).max() < 1e-6 and ours.nnz == theirs.nnz
    assert projection._ab_params(0.1) == pytest.approx(umap_core.find_ab_params(1.0, 0.1))
    # The same epochs from the same state, serially (in parallel, updates race).
    their_epoch = umap.layouts._get_optimize_layout_euclidean_single_epoch_fn(parallel=False)
    graph = theirs.tocoo()
    embedding = np.random.default_rng(0).uniform(0, 10, (1000, 2)).astype(np.float32)
    per_sample = graph.data.max() / graph.data.astype(np.float64)
    states = [[embedding.copy(), per_sample.copy(), per_sample / 5, per_sample / 5,
               np.arange(3000, dtype=np.int64).reshape(1000, 3) * 7919] for _ in range(2)]
    unused = np.zeros(1, dtype=np.float32)
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for epoch in range(20):
            alpha = 1.0 - epoch / 20
            mine, other = states
            layout_epoch(mine[0], graph.row, graph.col, per_sample, 1.577, 0.895, mine[4],
                         alpha, mine[2], mine[3], mine[1], epoch)
            their_epoch(other[0], other[0], graph.row, graph.col, 1000, per_sample, 1.577,
                        0.895, other[4], 1.0, 2, True, alpha, other[2], other[3], other[1],
                        epoch, False, unused, unused, 0.0, 0.0, 0.0, 0.0, unused, unused, 0.0)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(states[0][0], states[1][0])


@pytest.mark.slow
def test_the_projector_offers_tsne_above_the_old_cap(qtbot, runner, monkeypatch):
    from litdesk.core.session import Session
    from litdesk.ui.docks.projector import ProjectorDock

    quick = dict(METHODS)  # 30 iterations instead of 750: the point is the size, not quality
    quick["tsne"] = projection.ProjectionMethod(
        "t-SNE", MappingProxyType({**METHODS["tsne"].defaults, "n_iter": 30}))
    monkeypatch.setattr(projection, "METHODS", MappingProxyType(quick))
    x, labels = blobs(POINTS)
    dataset = Dataset(pa.table({"vec": list(x)}), {"vec": Embeddings()}, "many")
    session = Session()
    dock = shown(qtbot, ProjectorDock(session, runner), 700, 600)
    with qtbot.waitSignal(dock.projected, timeout=30_000):  # the PCA of vec
        session.set_dataset(dataset)
        dock.source.setCurrentIndex(dock.source.findText("vec"))
    steps = []
    runner.progress.connect(lambda title, step: steps.append(step.message))
    with qtbot.waitSignal(dock.projected, timeout=180_000):
        dock.method.setCurrentIndex(dock.method.findData("tsne"))
    assert dock.coords.shape == (POINTS, 2) and dock.message.isHidden()
    assert any(message.startswith("t-SNE: layout") for message in steps)
    assert neighbours_agree(dock.coords, labels) > 0.95
