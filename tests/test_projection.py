"""The projection engine: PCA, UMAP and t-SNE jobs, their cache, cancel, and dataset helpers."""

from __future__ import annotations

import signal

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import Dataset, Embeddings, Scalar
from litdesk.core import projection
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.projection import (METHODS, dataset_vectors, nearest_neighbors,
                                     numeric_matrix, pca_job, projection_job)


@pytest.fixture(autouse=True)
def shared_numba_cache(request, monkeypatch):
    """One numba cache for every run of these tests, so only the first run compiles."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(request.config.cache.mkdir("litdesk-numba")))


def blobs(n: int = 300, features: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, (3, features))
    return (centres[rng.integers(0, 3, n)] + rng.normal(0, 1, (n, features))).astype(np.float32)


def test_methods_publish_labels_and_defaults():
    assert set(METHODS) == {"pca", "umap", "tsne"}
    assert METHODS["umap"].label == "UMAP" and METHODS["umap"].defaults["n_neighbors"] == 15


@pytest.mark.parametrize("dims", [2, 3])
def test_pca_matches_scikit_learn(dims):
    from sklearn.decomposition import PCA

    x = blobs()
    ours = run_job(projection_job(x, "pca", dims))
    theirs = PCA(n_components=dims).fit_transform(x.astype(np.float64))
    assert ours.shape == (len(x), dims) and ours.dtype == np.float32
    signs = np.sign((ours * theirs).sum(axis=0))  # components are defined up to sign
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-3 * np.abs(theirs).max())


def test_pca_pads_an_input_with_fewer_features_than_dims():
    coords = run_job(pca_job(np.arange(10, dtype=np.float32).reshape(-1, 1), dims=2))
    assert coords.shape == (10, 2) and not coords[:, 1].any() and coords[:, 0].std() > 0


@pytest.mark.slow
@pytest.mark.parametrize("method,dims", [("umap", 2), ("umap", 3), ("tsne", 2), ("tsne", 3)])
def test_layouts_have_the_right_shape_and_separate_clusters(method, dims):
    x = blobs(200)
    coords = run_job(projection_job(x, method, dims))
    assert coords.shape == (200, dims) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    from sklearn.manifold import trustworthiness

    assert trustworthiness(x, coords, n_neighbors=5) > 0.8


def test_second_call_is_a_cache_hit_without_computing(monkeypatch):
    cache = ResultCache()
    x = blobs()
    first = run_job(projection_job(x, "pca", 2, cache=cache))

    def must_not_run(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(projection, "pca_projection", must_not_run)
    monkeypatch.setattr(projection, "_in_child_process", must_not_run)
    reopened = ResultCache()  # a new session reading the same folder
    np.testing.assert_array_equal(run_job(projection_job(x, "pca", 2, cache=reopened)), first)
    with pytest.raises(AssertionError, match="recomputed"):  # other parameters: a new key
        run_job(projection_job(x, "pca", 3, cache=reopened))


@pytest.mark.slow
def test_cache_hit_on_reopen_for_umap(monkeypatch):
    x = blobs(120)
    first = run_job(projection_job(x, "umap", 2, params={"n_epochs": 50}, cache=ResultCache()))
    monkeypatch.setattr(projection, "_in_child_process", None)  # would fail if called
    again = run_job(projection_job(x, "umap", 2, params={"n_epochs": 50}, cache=ResultCache()))
    np.testing.assert_array_equal(again, first)


def test_cancel_in_the_middle_of_a_umap_kills_the_child_and_caches_nothing(
        monkeypatch, projection_children):
    started = projection_children
    cache = ResultCache()
    job = projection_job(blobs(2000, 64), "umap", 2, cache=cache)
    messages = []
    for progress in job:  # past the PCA pre-reduction, until the child reports
        messages.append(progress.message)
        if progress.message.startswith("UMAP:") and progress.message != "UMAP: starting":
            break
    assert started and started[0].poll() is None, messages
    job.close()
    assert started[0].poll() == -signal.SIGKILL  # killed, not waited for
    assert cache.size_bytes() < 100_000 and not list(cache.path.parent.glob("projection-*"))
    monkeypatch.setattr(projection, "_in_child_process", None)
    with pytest.raises(TypeError):  # nothing cached: the next run must compute
        run_job(projection_job(blobs(2000, 64), "umap", 2, cache=cache))


@pytest.mark.parametrize("method,dims,params,message", [
    ("mds", 2, None, "unknown projection method"),
    ("pca", 4, None, "dims must be 2 or 3"),
    ("umap", 2, {"neighbours": 5}, "no parameter neighbours"),
    ("umap", 2, None, "at least 4 points"),
])
def test_bad_requests_are_one_line_value_errors(method, dims, params, message):
    x = blobs(3) if message == "at least 4 points" else blobs()
    with pytest.raises(ValueError, match=message):
        run_job(projection_job(x, method, dims, params))


def test_tsne_refuses_more_points_than_it_can_lay_out(monkeypatch):
    monkeypatch.setattr(projection, "TSNE_MAX_POINTS", {2: 200, 3: 100})
    with pytest.raises(ValueError, match="t-SNE in 3D is limited to 100 points"):
        run_job(projection_job(blobs(101), "tsne", 3))
    with pytest.raises(ValueError, match="t-SNE in 2D is limited to 200 points"):
        run_job(projection_job(blobs(201), "tsne", 2))


def test_non_finite_vectors_are_refused():
    x = blobs()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_job(projection_job(x, "pca"))


def test_nearest_neighbors_equals_brute_force():
    x = blobs(5000, 32)
    for row in (0, 1234, 4999):
        expected = np.argsort(((x - x[row]) ** 2).sum(axis=1), kind="stable")[:10]
        found = nearest_neighbors(x, row, 10)
        assert found[0] == row
        np.testing.assert_array_equal(found, expected)


def test_nearest_neighbors_rejects_a_row_outside_the_data():
    with pytest.raises(ValueError, match="outside"):
        nearest_neighbors(blobs(10), 10, 3)


def embeddings_dataset(values) -> Dataset:
    return Dataset(pa.table({"emb": values, "score": [1.0, None, 3.0],
                             "text": ["a", "b", "c"]}),
                   {"emb": Embeddings(), "score": Scalar()}, "d")


def test_dataset_vectors_reads_a_list_column():
    vectors = dataset_vectors(embeddings_dataset([[1, 2], [3, 4], [5, 6]]), "emb")
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize("field,values,message", [
    ("emb", [[1.0, 2.0], [3.0], [5.0, 6.0]], "different lengths"),
    ("emb", [["a"], ["b"], ["c"]], "not numbers"),
    ("text", [[1.0], [2.0], [3.0]], "not lists of numbers"),
    ("nope", [[1.0], [2.0], [3.0]], "no column named 'nope'"),
])
def test_dataset_vectors_explains_what_is_wrong(field, values, message):
    with pytest.raises(ValueError, match=message):
        dataset_vectors(embeddings_dataset(values), field)


def test_numeric_matrix_standardises_and_fills_nulls_with_the_mean():
    dataset = embeddings_dataset([[1.0], [2.0], [3.0]])
    matrix = numeric_matrix(dataset, ["score"])
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-6)
    with pytest.raises(ValueError, match="'text' is not numeric"):
        numeric_matrix(dataset, ["score", "text"])
