"""``litdesk predict|explain|project --engine ray``: a local Ray runtime with 2 CPUs gives the
same rows as the single-process command, in the dataset's order, and finishes when a worker dies
mid-job; a projection fitted on a sample places the other rows as the fit would."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdesk.cli import main
from litdesk.core import paths
from litdesk.core.batch import predict_to_parquet
from litdesk.core.explain import explain_to_parquet
from litdesk.core.jobs import run_job
from litdesk.core.projection_batch import fit_sample_rows, project_to_parquet
from litdesk.core.loaders import load_dataset
from litdesk.core.plugins import discover_plugins, user_plugin_folder
from litdesk.core.results import open_results, python_values

LINEAR = paths.DEMO_MODELS[1]

DYING_PLUGIN = '''
LITDESK_MANIFEST = {"name": "dying", "model_loaders": [
    {"id": "dying", "callable": "dying:load", "patterns": ["*.dying"]}]}

import os
from pathlib import Path

import numpy as np

from litdesk.api import Model, MulticlassPreds, TextSegment


class Dying(Model):
    """Scores a text by its length; the first process to predict with it dies (once: a
    marker file says it happened)."""

    def __init__(self, marker):
        self.marker = marker

    def input_spec(self):
        return {"text": TextSegment()}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=("even", "odd"))}

    def predict(self, inputs):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return [{"probas": np.array([1 - len(x["text"]) % 2, len(x["text"]) % 2], np.float32)}
                for x in inputs]


def load(path, options):
    return Dying(Path(path).read_text().strip())
'''


def texts_csv(path, rows: int):
    words = ["great", "awful", "the", "staff", "was", "rude", "lovely", "room", "never", "again"]
    rng = np.random.default_rng(1)
    lines = ["text,label"] + [" ".join(rng.choice(words, size=int(rng.integers(1, 15))))
                              + ",positive" for _ in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ray_options(home) -> dict:
    """A small local runtime; workers see the test's litdesk home (its user plugins)."""
    return {"num_cpus": 2, "runtime_env": {"env_vars": {"LITDESK_HOME": str(home)}}}


@pytest.mark.slow
def test_ray_gives_the_single_process_rows_in_order(tmp_path, litdesk_home, no_ray_runtime):
    from litdesk.core.ray_engine import predict_on_ray

    data = texts_csv(tmp_path / "texts.csv", 300)
    single = tmp_path / "single.parquet"
    predict_to_parquet(LINEAR, data, single, fields="all")
    out = tmp_path / "on_ray"
    summary = predict_on_ray(LINEAR, data, out, fields="all", block_rows=64,
                             ray_init=ray_options(litdesk_home))
    assert summary.startswith(f"{out}: 300 rows × 3 outputs in 5 shards, on Ray with 2 workers")
    shards = sorted(path.name for path in out.iterdir())
    assert shards == [f"part-{row:012d}.parquet" for row in (0, 64, 128, 192, 256)]
    expected, got = pq.read_table(single), pq.read_table(out)
    assert got.schema == expected.schema  # the same columns and metadata
    assert got.equals(expected)
    model = open_results(out, load_dataset(data))  # the desk opens the folder
    answered = model.predict(load_dataset(data).examples([5, 299]))
    np.testing.assert_array_equal(
        np.stack([a["probas"] for a in answered]),
        np.stack(python_values(expected.column("probas").take([5, 299]))))
    import ray

    assert not ray.is_initialized()  # the local runtime was stopped


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_retried_and_the_output_is_complete(tmp_path, litdesk_home,
                                                                       no_ray_runtime):
    from litdesk.core.ray_engine import predict_on_ray

    folder = user_plugin_folder()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dying.py").write_text(DYING_PLUGIN)
    marker = tmp_path / "died"
    model = tmp_path / "model.dying"
    model.write_text(str(marker))
    discover_plugins.cache_clear()  # find the plugin written now (the workers start afresh)
    data = texts_csv(tmp_path / "texts.csv", 200)
    out = tmp_path / "on_ray"
    predict_on_ray(model, data, out, block_rows=50, ray_init=ray_options(litdesk_home))
    assert marker.exists()  # a worker did die
    table = pq.read_table(out)
    assert table.column("row").to_pylist() == list(range(200))
    texts = load_dataset(data).table.column("text").to_pylist()
    odd = np.stack(python_values(table.column("probas")))[:, 1]
    assert odd.tolist() == [len(text) % 2 for text in texts]
    discover_plugins.cache_clear()


@pytest.mark.parametrize("command", [
    ["predict", "--model", str(LINEAR)],
    ["explain", "--model", str(LINEAR), "--method", "occlusion"],
    ["project", "--field", "text_length", "--method", "pca"]])
def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    data = texts_csv(tmp_path / "texts.csv", 3)
    code = main([*command, "--data", str(data), "--out", str(tmp_path / "out"),
                 "--engine", "ray"])
    assert code == 2
    assert capsys.readouterr().err == ("litdesk: Ray is not installed; install it with: "
                                       "pip install 'litdesk[distributed]'\n")


def test_ray_output_is_a_folder(tmp_path, capsys):
    pytest.importorskip("ray")
    data = texts_csv(tmp_path / "texts.csv", 3)
    code = main(["predict", "--model", str(LINEAR), "--data", str(data), "--out",
                 str(tmp_path / "out.parquet"), "--engine", "ray"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"litdesk: {tmp_path / 'out.parquet'}: with --engine ray the output is a folder of "
        "Parquet shards")


# --- explain ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_explain_on_ray_gives_the_single_process_rows(tmp_path, capsys, ray_runtime):
    data = paths.DEMO_DATASET
    single = tmp_path / "single.parquet"
    explain_to_parquet(LINEAR, data, single, "occlusion", rows="3:43", use_cache=False)
    out = tmp_path / "on_ray"
    code = main(["explain", "--model", str(LINEAR), "--data", str(data), "--method", "occlusion",
                 "--rows", "3:43", "--out", str(out), "--engine", "ray", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(
        f"{out}: Occlusion of bow_linear for 40 rows in 8 shards, on Ray with 2 workers")
    # 40 rows over 2 CPUs: blocks of 5, named by their first row
    assert sorted(path.name for path in out.iterdir()) == [
        f"part-{row:012d}.parquet" for row in range(3, 43, 5)]
    expected, got = pq.read_table(single), pq.read_table(out)
    assert got.column_names == ["row", "target", "tokens", "scores"]
    assert got.equals(expected)


@pytest.mark.slow
def test_kernel_shap_on_ray_takes_the_whole_datasets_baseline(tmp_path, ray_runtime):
    """Each worker holds a block of rows; KernelSHAP's absent values are still the means and
    modes of every row (a block's own would explain each row against itself: all zeros). The
    shipped demo pickle opens on the workers without --trust, as it does here."""
    from litdesk.core.ray_engine import explain_on_ray

    model, data = paths.DEMO_TABULAR_MODELS[0], paths.DEMO_TABULAR_DATASET
    single = tmp_path / "single.parquet"
    explain_to_parquet(model, data, single, "kernel_shap", rows="0:6", use_cache=False)
    out = tmp_path / "on_ray"
    explain_on_ray(model, data, out, "kernel_shap", rows="0:6", block_rows=1)
    expected, got = pq.read_table(single), pq.read_table(out)
    assert len(list(out.iterdir())) == 6
    assert got.column("row").to_pylist() == list(range(6))
    assert got.column("tokens").equals(expected.column("tokens"))
    np.testing.assert_allclose(np.concatenate(got.column("scores").to_pylist()),
                               np.concatenate(expected.column("scores").to_pylist()), atol=1e-9)
    assert np.abs(np.concatenate(got.column("scores").to_pylist())).max() > 1e-3


# --- project ----------------------------------------------------------------------------------


def blobs_parquet(path, n: int = 300, features: int = 6):
    """Three well separated blobs in an Embeddings column; returns the vectors and blob ids."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (3, features))
    blob = rng.integers(0, 3, n)
    vectors = (centres[blob] + rng.normal(0, 1, (n, features))).astype(np.float32)
    pq.write_table(pa.table({"emb": list(vectors)}), path)
    return vectors, blob


def coordinates(path) -> np.ndarray:
    return np.column_stack([column.to_numpy() for column in pq.read_table(path).columns])


def assert_pca_of_sample(coords, vectors, sample_rows, dims: int = 2):
    """``coords`` are the PCA fitted on the sample rows (litdesk's own PCA of them, to float
    tolerance) applied to every row: the same affine map of the vectors for all."""
    from litdesk.core.projection import pca_projection

    sample = vectors[sample_rows]
    fitted = run_job(pca_projection(sample, dims))
    np.testing.assert_allclose(coords[sample_rows], fitted, atol=1e-3, rtol=1e-4)
    centred = sample.astype(np.float64) - sample.mean(axis=0, dtype=np.float64)
    components = np.linalg.lstsq(centred, fitted.astype(np.float64), rcond=None)[0]
    placed = (vectors - sample.mean(axis=0, dtype=np.float64)) @ components
    np.testing.assert_allclose(coords, placed, atol=1e-3, rtol=1e-4)


@pytest.mark.slow
def test_pca_on_ray_equals_the_single_process_projection(tmp_path, capsys, ray_runtime):
    vectors, _ = blobs_parquet(tmp_path / "blobs.parquet")
    single = tmp_path / "single.parquet"
    project_to_parquet(tmp_path / "blobs.parquet", "emb", "pca", single, dims=3,
                       use_cache=False)
    out = tmp_path / "every_row"
    assert main(["project", "--data", str(tmp_path / "blobs.parquet"), "--field", "emb",
                 "--method", "pca", "--dims", "3", "--out", str(out), "--engine", "ray",
                 "--quiet", "--no-cache"]) == 0, capsys.readouterr().err
    expected, got = pq.read_table(single), pq.read_table(out)
    assert got.schema == expected.schema  # x, y, z as float32
    np.testing.assert_allclose(coordinates(out), coordinates(single), atol=1e-5)
    # Fitted on a third of the rows, placed on the workers.
    out = tmp_path / "sampled"
    assert main(["project", "--data", str(tmp_path / "blobs.parquet"), "--field", "emb",
                 "--method", "pca", "--out", str(out), "--engine", "ray", "--quiet",
                 "--fit-sample", "100"]) == 0, capsys.readouterr().err
    assert "300 rows, PCA of emb in 2 dimensions fitted on 100 rows" in capsys.readouterr().out
    assert pq.read_table(out).column_names == ["x", "y"]
    assert_pca_of_sample(coordinates(out), vectors, fit_sample_rows(300, 100))


@pytest.mark.slow
def test_pca_of_a_models_embeddings_is_computed_on_the_workers(tmp_path, ray_runtime):
    from litdesk.core.ray_engine import project_on_ray

    bert = paths.DEMO_MODELS[0]
    data = texts_csv(tmp_path / "texts.csv", 80)
    single = tmp_path / "embeddings.parquet"
    predict_to_parquet(bert, data, single, fields="cls_emb", use_cache=False)
    embeddings = np.stack(python_values(pq.read_table(single).column("cls_emb")))
    out = tmp_path / "on_ray"
    summary = project_on_ray(data, "cls_emb", "pca", out, model_path=bert, fit_sample=30,
                             use_cache=False)
    assert "fitted on 30 rows, in" in summary and "on Ray with 2 workers" in summary
    assert_pca_of_sample(coordinates(out), embeddings, fit_sample_rows(80, 30))
    # A sample of every row: the single-process projection (the embeddings, computed in other
    # batches, differ in the 7th digit).
    project_on_ray(data, "cls_emb", "pca", tmp_path / "every_row", model_path=bert,
                   use_cache=False)
    project_to_parquet(data, "cls_emb", "pca", tmp_path / "single_pca.parquet", model_path=bert,
                       use_cache=False)
    np.testing.assert_allclose(coordinates(tmp_path / "every_row"),
                               coordinates(tmp_path / "single_pca.parquet"), atol=1e-4)


@pytest.mark.slow
def test_umap_on_ray_keeps_the_sample_layout_and_places_the_rest_by_its_neighbours(
        tmp_path, request, monkeypatch, ray_runtime):
    from litdesk.core.projection import projection_job
    from litdesk.core.ray_engine import project_on_ray

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(request.config.cache.mkdir("litdesk-numba")))
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # umap-learn's parallel SGD is not repeatable
    vectors, blob = blobs_parquet(tmp_path / "blobs.parquet")
    out = tmp_path / "on_ray"
    project_on_ray(tmp_path / "blobs.parquet", "emb", "umap", out, fit_sample=100,
                   use_cache=False, block_rows=64)
    coords = coordinates(out)
    sample_rows = fit_sample_rows(300, 100)
    fitted = run_job(projection_job(vectors[sample_rows], "umap", 2))
    np.testing.assert_array_equal(coords[sample_rows], fitted)  # the local fit, unchanged
    rest = np.setdiff1d(np.arange(300), sample_rows)
    assert np.isfinite(coords[rest]).all()
    # Each row lands among its 15 nearest sample points' places (a weighted mean of them) ...
    distances = ((vectors[rest, None, :] - vectors[None, sample_rows, :]) ** 2).sum(axis=2)
    neighbours = fitted[np.argsort(distances, axis=1)[:, :15]]
    assert (coords[rest] >= neighbours.min(axis=1) - 1e-4).all()
    assert (coords[rest] <= neighbours.max(axis=1) + 1e-4).all()
    # ... so beside its own blob: the sample point nearest in the layout is of the same blob.
    nearest = ((coords[rest, None, :] - fitted[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    assert (blob[sample_rows][nearest] == blob[rest]).mean() > 0.95


def test_tsne_on_ray_needs_every_row_in_the_sample(tmp_path, capsys):
    pytest.importorskip("ray")
    blobs_parquet(tmp_path / "blobs.parquet", n=20)
    code = main(["project", "--data", str(tmp_path / "blobs.parquet"), "--field", "emb",
                 "--method", "tsne", "--out", str(tmp_path / "out"), "--engine", "ray",
                 "--fit-sample", "10"])
    assert code == 2
    assert capsys.readouterr().err == (
        "litdesk: t-SNE cannot place rows it was not fitted on: with --engine ray give "
        "--fit-sample 20 (every row), or use pca or umap\n")


@pytest.mark.parametrize("extra, message", [
    (["--method", "lime", "--target", "neutral"], "target 'neutral' is not one of"),
    (["--method", "integrated_gradients"], "does not apply to model bow_linear"),
])
def test_explain_on_ray_checks_the_method_and_target_before_sending_anything(
        tmp_path, capsys, extra, message):
    pytest.importorskip("ray")
    code = main(["explain", "--model", str(LINEAR), "--data", str(paths.DEMO_DATASET),
                 "--out", str(tmp_path / "out"), "--engine", "ray", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
