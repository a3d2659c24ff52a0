"""The command line: headless runs and `litdesk inspect`, as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from litdesk.core import paths
from tests.helpers import run_litdesk


def test_headless_run_prints_timings_and_saves_a_screenshot(tmp_path, litdesk_home):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    shot = tmp_path / "shot.png"
    result = run_litdesk(data, "--exit-when-ready", "--screenshot", shot, home=litdesk_home)
    assert result.returncode == 0, result.stderr
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < timings["window_shown_s"] <= timings["ready_s"]
    assert shot.stat().st_size > 10_000


def test_headless_run_fails_with_the_error_of_a_failed_job(tmp_path, litdesk_home):
    bad = tmp_path / "broken.csv"
    bad.write_text("a,b\n1,2,3\n", encoding="utf-8")
    result = run_litdesk(bad, "--exit-when-ready", home=litdesk_home)
    assert result.returncode != 0
    assert "broken.csv" in result.stderr and "Traceback" not in result.stderr


def test_inspect_prints_spec_and_rows(tmp_path, litdesk_home):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label,score\nnice,positive,0.5\nugly,negative,0.25\n", encoding="utf-8")
    result = run_litdesk("inspect", data, home=litdesk_home)
    assert result.returncode == 0, result.stderr
    assert "2 rows" in result.stdout and "score: Scalar" in result.stdout


def test_inspect_bad_input_is_one_line_without_traceback(tmp_path, litdesk_home):
    result = run_litdesk("inspect", tmp_path / "missing.csv", home=litdesk_home)
    assert result.returncode != 0
    assert "missing.csv" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


#: Runs litdesk, saying whether torch was imported when the window showed and at the end.
WHEN_TORCH = """
import sys
from litdesk.ui.main_window import MainWindow

show = MainWindow.show
def noting_show(self):
    print("torch when shown:", "torch" in sys.modules, flush=True)
    show(self)
MainWindow.show = noting_show
from litdesk.cli import main
code = main(sys.argv[1:])
print("torch when ready:", "torch" in sys.modules, flush=True)
raise SystemExit(code)
"""


@pytest.mark.slow
@pytest.mark.skipif(not paths.DEMO_DATASET.exists(), reason="demo not built")
def test_demo_runs_headless_with_the_window_before_torch(tmp_path, litdesk_home):
    shot = tmp_path / "demo.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LITDESK_HOME": str(litdesk_home)}
    result = subprocess.run([sys.executable, "-c", WHEN_TORCH, "--exit-when-ready",
                             "--screenshot", str(shot)], capture_output=True, text=True, env=env,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    assert "torch when shown: False" in result.stdout  # the demo's BERT imports it later
    assert "torch when ready: True" in result.stdout
    assert shot.stat().st_size > 50_000


def test_predict_command_bad_inputs_are_one_line(tmp_path, litdesk_home):
    data = tmp_path / "numbers.csv"
    data.write_text("x,y\n1,2\n", encoding="utf-8")
    cases = [
        (["--model", tmp_path / "missing", "--data", data], "missing: no such file"),
        (["--model", paths.DEMO_MODELS[1], "--data", data], "needs text"),
        (["--model", paths.DEMO_MODELS[1], "--data", tmp_path / "nope.csv"], "nope.csv"),
    ]
    for args, expected in cases:
        result = run_litdesk("predict", *args, "--out", tmp_path / "out.parquet",
                             home=litdesk_home)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_predict_needs_trust_for_a_pickle_and_labels_by_flag(tmp_path, litdesk_home):
    import joblib
    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "gold": ["a", "a", "b", "b"]})
    model = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(frame[["x"]], frame["gold"]), model)
    data = tmp_path / "rows.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "out.parquet"
    refused = run_litdesk("predict", "--model", model, "--data", data, "--out", out,
                          home=litdesk_home)
    assert refused.returncode == 2 and "--trust" in refused.stderr and not out.exists()
    done = run_litdesk("predict", "--model", model, "--data", data, "--out", out, "--trust",
                       "--label", "gold", home=litdesk_home)
    assert done.returncode == 0, done.stderr
    assert len(pq.read_table(out).column("probas").to_pylist()) == 4
