"""``litdesk project``: a projection of a dataset column or a model output, to Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdesk.cli import main
from litdesk.core import paths


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 1, (40, 6)).astype(np.float32)
    table = pa.table({"emb": list(vectors), "a": rng.normal(0, 1, 40), "b": np.arange(40.0),
                      "text": [f"row {i}" for i in range(40)]})
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    return path, vectors


@pytest.mark.parametrize("dims", [2, 3])
def test_writes_one_row_per_example_with_float_coordinates(data, tmp_path, capsys, dims):
    from sklearn.decomposition import PCA

    path, vectors = data
    out = tmp_path / "coords.parquet"
    assert main(["project", "--data", str(path), "--field", "emb", "--method", "pca",
                 "--dims", str(dims), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["x", "y", "z"][:dims]
    assert all(pa.types.is_float32(column.type) for column in table.columns)
    coords = np.column_stack([column.to_numpy() for column in table.columns])
    expected = PCA(n_components=dims).fit_transform(vectors.astype(np.float64))
    np.testing.assert_allclose(np.abs(coords), np.abs(expected), atol=1e-4)
    assert "40 rows" in capsys.readouterr().out


def test_numeric_columns_are_standardised_and_projected(data, tmp_path):
    path, _ = data
    out = tmp_path / "coords.parquet"
    assert main(["project", "--data", str(path), "--field", "a, b", "--method", "pca",
                 "--out", str(out), "--no-cache"]) == 0
    assert pq.read_table(out).num_rows == 40


@pytest.mark.parametrize("arguments,message", [
    (["--field", "missing", "--method", "pca"], "no column named 'missing'"),
    (["--field", "a,text", "--method", "pca"], "column 'text' is not numeric"),
    (["--field", "emb", "--method", "mds"], "unknown method 'mds'"),
    (["--field", "emb", "--method", "pca", "--dims", "4"], "dims must be 2 or 3"),
])
def test_bad_input_is_one_line_and_exit_code_2(data, tmp_path, capsys, arguments, message):
    path, _ = data
    out = tmp_path / "coords.parquet"
    assert main(["project", "--data", str(path), "--out", str(out), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and error.startswith("litdesk: ")
    assert not out.exists()


@pytest.mark.slow
def test_projects_a_model_embeddings_output(tmp_path, capsys):
    from litdesk.core.model_loading import load_model
    from litdesk.api import Embeddings, LoadOptions

    csv = tmp_path / "few.csv"
    csv.write_text("\n".join(paths.DEMO_DATASET.read_text().splitlines()[:31]) + "\n")
    model = load_model(paths.DEMO_MODELS[0], LoadOptions())
    field = next(name for name, kind in model.output_spec().items()
                 if isinstance(kind, Embeddings))
    out = tmp_path / "coords.parquet"
    assert main(["project", "--data", str(csv), "--model", str(paths.DEMO_MODELS[0]),
                 "--field", field, "--method", "pca", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 30
    assert main(["project", "--data", str(csv), "--model", str(paths.DEMO_MODELS[0]),
                 "--field", "nope", "--method", "pca", "--out", str(out)]) == 2
    assert "has no Embeddings output 'nope'" in capsys.readouterr().err
