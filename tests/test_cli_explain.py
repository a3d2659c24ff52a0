"""`litdesk explain`: attributions for every row to Parquet, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from litdesk.cli import main

DEMO = Path(__file__).resolve().parents[1] / "litdesk" / "resources" / "demo"
DATA = DEMO / "sentiment.csv"
BOW = DEMO / "models" / "bow_linear"


@pytest.mark.parametrize("method", ["occlusion", "lime"])
def test_explain_writes_one_row_per_example(tmp_path, capsys, method):
    out = tmp_path / "explained.parquet"
    code = main(["explain", "--model", str(BOW), "--data", str(DATA), "--method", method,
                 "--rows", "2:5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(out)
    assert table.column_names == ["row", "target", "tokens", "scores"]
    assert table.column("row").to_pylist() == [2, 3, 4]
    assert set(table.column("target").to_pylist()) <= {"negative", "positive"}
    for tokens, scores in zip(table.column("tokens").to_pylist(),
                              table.column("scores").to_pylist()):
        assert len(tokens) == len(scores) > 0
    assert "3 rows" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--method", "integrated_gradients"], "does not apply"),
    (["--method", "saliency"], "unknown method"),
    (["--method", "lime", "--steps", "10"], "--steps applies to integrated_gradients only"),
    (["--method", "lime", "--rows", "x"], "--rows 'x' is not a:b"),
    (["--method", "lime", "--target", "neutral"], "target 'neutral'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, extra, message):
    code = main(["explain", "--model", str(BOW), "--data", str(DATA), "--rows", "0:1",
                 "--out", str(tmp_path / "x.parquet"), *extra])  # a later --rows wins
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("litdesk: ")


@pytest.mark.slow
def test_integrated_gradients_on_the_demo_bert_reports_completeness(tmp_path, capsys):
    out = tmp_path / "ig.parquet"
    code = main(["explain", "--model", str(DEMO / "models" / "bert_tiny"), "--data", str(DATA),
                 "--method", "integrated_gradients", "--steps", "30", "--rows", "0:16",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(out)
    errors = table.column("completeness_error").to_pylist()
    assert len(errors) == 16 and max(errors) < 0.01
    assert table.column("tokens").to_pylist()[0][0] == "[CLS]"
