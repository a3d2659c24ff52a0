"""`litdesk train`: a baseline or a fine-tune from a data file, one summary line, exit 2 on bad
input."""

from __future__ import annotations

import json

import pytest

from litdesk.cli import main
from tests.helpers import write_toy_sentiment_csv


@pytest.fixture
def data(tmp_path):
    return write_toy_sentiment_csv(tmp_path / "reviews.csv", n=120)


def test_a_text_baseline_on_a_split_reopens_and_says_how_well_it_did(data, tmp_path, capsys):
    from litdesk.core.model_loading import load_model

    out = tmp_path / "reviews baseline"
    code = main(["train", "--data", str(data), "--label", "label", "--baseline", "linear",
                 "--out", str(out), "--split-column", "split", "--train-value", "train"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (line,) = captured.out.strip().splitlines()
    assert line.startswith("linear baseline on 96 rows (text -> label): ")
    assert "cross-validated accuracy" in line and str(out) in line
    model = load_model(out)
    assert model.name == "reviews baseline"
    (output,) = model.predict([{"text": "the film was great"}])
    assert output["probas"][list(model.output_spec()["probas"].vocab).index("positive")] > 0.5
    record = json.loads((out / "training_record.json").read_text())
    assert record["data"]["file"] == str(data) and len(record["data"]["sha256"]) == 64
    assert record["data"]["rows"]["range"] == "0:96"


def test_a_boosted_baseline_reads_the_numbers_of_the_rows_asked(data, tmp_path, capsys):
    out = tmp_path / "boosted"
    assert main(["train", "--data", str(data), "--label", "label", "--baseline", "boosted",
                 "--out", str(out), "--train-rows", ":60", "--seed", "3"]) == 0
    assert "boosted baseline on 60 rows (score -> label)" in capsys.readouterr().out
    assert (out / "boosted.onnx").is_file() and (out / "litdesk.json").is_file()
    assert json.loads((out / "training_record.json").read_text())["seed"] == 3


@pytest.mark.slow
def test_fine_tuning_from_the_command_line(data, tmp_path, model_dir, capsys):
    out = tmp_path / "tuned"
    code = main(["train", "--data", str(data), "--label", "label", "--base", str(model_dir),
                 "--out", str(out), "--epochs", "1", "--batch-size", "32",
                 "--learning-rate", "1e-3", "--seed", "1", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("fine-tuning finished after 1 epoch(s)") and not captured.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["base_model"] == str(model_dir) and record["parameters"]["batch_size"] == 32
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


@pytest.mark.parametrize("arguments, message", [
    (["--label", "nope", "--baseline", "linear"], "no label column 'nope'"),
    (["--label", "label", "--baseline", "linear", "--split-column", "split"],
     "--split-column and --train-value go together"),
    (["--label", "label", "--baseline", "linear", "--split-column", "split",
      "--train-value", "dev"], "no row of reviews has split = 'dev'"),
    (["--label", "label", "--baseline", "linear", "--train-rows", "7"], "should read a:b"),
    (["--label", "label", "--baseline", "linear", "--train-rows", "500:"], "select none"),
    (["--label", "label", "--baseline", "linear", "--base", "x"], "not allowed with"),
    (["--label", "label", "--baseline", "forest"], "invalid choice"),
    (["--label", "label", "--base", "nowhere"], "not a Hugging Face model folder"),
])
def test_bad_input_is_one_line_and_exit_2(data, tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as raised:  # argparse's own refusals exit
        raise SystemExit(main(["train", "--data", str(data), "--out", str(tmp_path / "out"),
                               *arguments]))
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()
