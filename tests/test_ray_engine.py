"""``litdesk predict --engine ray``: a local Ray runtime with 2 CPUs gives the same rows as the
single-process command, in the dataset's order, and finishes when a worker dies mid-job."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from litdesk.cli import main
from litdesk.core import paths
from litdesk.core.batch import predict_to_parquet
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
def test_ray_gives_the_single_process_rows_in_order(tmp_path, litdesk_home):
    pytest.importorskip("ray")
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
def test_a_worker_killed_mid_job_is_retried_and_the_output_is_complete(tmp_path, litdesk_home):
    pytest.importorskip("ray")
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


def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    data = texts_csv(tmp_path / "texts.csv", 3)
    code = main(["predict", "--model", str(LINEAR), "--data", str(data), "--out",
                 str(tmp_path / "out"), "--engine", "ray"])
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
