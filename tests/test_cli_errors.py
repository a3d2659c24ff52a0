"""Every batch command ends bad input and the machine's limits with one line on stderr and exit
code 2, a bug in litdesk with one line and exit code 1 (its traceback in the log): run end to
end on small generated files."""

from __future__ import annotations

import errno
import io
import os
import shutil
import sqlite3
import struct
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdesk.cli import main
from litdesk.core import paths, plugins
from tests.helpers import run_litdesk

BOW = paths.DEMO_MODELS[1]


def the_line(stderr: str) -> str:
    """The one line a failed command printed."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("litdesk: "), stderr
    return lines[0]


@pytest.fixture
def reviews(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    """A tiny randomly initialised ViT image classifier and its processor, saved as a user's."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_vit")
    transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=8, patch_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=8, id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1},
    )).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(folder)
    return folder


def png(shade: int) -> bytes:
    """A small grey PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), (shade, shade, shade)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def model_raises(monkeypatch):
    """Makes the demo's linear model raise the exception it is given whenever it predicts."""
    from litdesk_linear_text.model import LinearTextModel

    def make(error: BaseException) -> None:
        def predict(self, inputs, fields=None):
            raise error

        monkeypatch.setattr(LinearTextModel, "predict", predict)
        monkeypatch.setattr(LinearTextModel, "predict_fields", predict)  # its vectorised path

    return make


def bomb_png(side: int = 30_000) -> bytes:
    """A PNG whose header claims side × side pixels (beyond PIL's limit), with no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def pictures(tmp_path, odd_one: bytes):
    """A Parquet image dataset whose second image is ``odd_one``."""
    path = tmp_path / "photos.parquet"
    pq.write_table(pa.table({"picture": pa.array([png(0), odd_one, png(200)], pa.binary()),
                             "label": ["cat", "dog", "cat"]}), path)
    return path


@pytest.mark.slow
def test_a_decompression_bomb_in_an_image_dataset(vit_dir, tmp_path, litdesk_home):
    out = tmp_path / "out.parquet"
    result = run_litdesk("predict", "--model", vit_dir, "--data", pictures(tmp_path, bomb_png()),
                         "--out", out, "--device", "cpu", home=litdesk_home)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = the_line(result.stderr)
    assert "image" in line.lower() or "pixels" in line
    assert not out.exists()


@pytest.mark.slow
def test_an_image_that_is_not_one(vit_dir, tmp_path, capsys):
    data = pictures(tmp_path, b"\x89PNG\r\n\x1a\n" + b"not the rest of a PNG")
    assert main(["predict", "--model", str(vit_dir), "--data", str(data), "--out",
                 str(tmp_path / "out.parquet"), "--device", "cpu"]) == 2
    assert "image" in the_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_pytorch_bin_checkpoint_with_pickled_objects(vit_dir, tmp_path, litdesk_home):
    import argparse

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled_vit"
    shutil.copytree(vit_dir, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save({**weights, "training_args": argparse.Namespace(lr=0.1)},
               folder / "pytorch_model.bin")
    result = run_litdesk("predict", "--model", folder, "--data", pictures(tmp_path, png(90)),
                         "--out", tmp_path / "out.parquet", home=litdesk_home)
    assert result.returncode == 2
    line = the_line(result.stderr)
    assert line.startswith(f"litdesk: {folder}: ") and "safetensors" in line
    assert "weights_only" not in line and "trust" not in line


def test_a_plugin_whose_torch_load_refuses_a_pickle(tmp_path, reviews, litdesk_home):
    import argparse

    import torch

    (plugins.user_plugin_folder() / "checkpoints.py").write_text('''
LITDESK_MANIFEST = {"name": "checkpoints", "model_loaders": [
    {"id": "ckpt", "callable": "checkpoints:load", "patterns": ["*.ckpt"]}]}

def load(path, options):
    import torch
    torch.load(path, weights_only=True)
''')
    model = tmp_path / "classifier.ckpt"
    torch.save({"weight": torch.zeros(2), "args": argparse.Namespace(lr=0.1)}, model)
    result = run_litdesk("predict", "--model", model, "--data", reviews, "--out",
                         tmp_path / "out.parquet", home=litdesk_home)
    assert result.returncode == 2
    assert the_line(result.stderr) == (
        f"litdesk: {model}: holds pickled Python objects (argparse.Namespace) besides tensors, "
        "which litdesk never loads; save the model as safetensors")


def test_a_garbage_result_cache_still_predicts_or_says_so_in_one_line(reviews, tmp_path,
                                                                       litdesk_home):
    cache = paths.cache_dir() / "results.sqlite"
    cache.write_bytes(b"this is not a database\n" * 100)
    out = tmp_path / "out.parquet"
    result = run_litdesk("predict", "--model", BOW, "--data", reviews, "--out", out,
                         home=litdesk_home)
    if result.returncode == 0:  # the cache set the garbage aside, and may say so
        assert len(result.stderr.splitlines()) <= 1 and "Traceback" not in result.stderr
    else:
        assert result.returncode == 2 and not out.exists()
        assert the_line(result.stderr).startswith(f"litdesk: {cache}: ")
        assert "--no-cache" in result.stderr
    uncached = run_litdesk("predict", "--model", BOW, "--data", reviews, "--out", out,
                           "--no-cache", home=litdesk_home)
    assert uncached.returncode == 0, uncached.stderr
    assert pq.read_table(out).num_rows == 2


def test_an_out_path_that_is_not_utf8(reviews, tmp_path, litdesk_home):
    out = os.fsdecode(os.fsencode(tmp_path) + b"/r\xe9sultats.parquet")  # Latin-1 é
    result = run_litdesk("predict", "--model", BOW, "--data", reviews, "--out", out,
                         home=litdesk_home)
    assert result.returncode == 2
    line = the_line(result.stderr)
    assert "--out" in line and "r\\xe9sultats.parquet is not a UTF-8 name" in line
    assert sorted(os.listdir(tmp_path)) == ["reviews.csv"]


@pytest.mark.parametrize("error, expected", [
    (MemoryError(), "not enough memory (predicting {data} with {model})"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full (predicting"),
    (sqlite3.DatabaseError("database disk image is malformed"),
     "{cache}: the result cache failed (database disk image is malformed); "
     "run again with --no-cache"),
    (ValueError("no weights for 'xx'\nsecond line"), "no weights for 'xx' (predicting"),
    (UnicodeEncodeError("utf-8", "r\udce9sum\u00e9", 1, 2, "surrogates not allowed"),
     "r\\xe9sum\u00e9 is not valid utf-8 (predicting"),
    (ValueError("\x1b[1mWeights only load failed.\x1b[0m Re-run torch.load with "
                "weights_only=False"), "a model file holds pickled Python objects besides"),
])
def test_failures_of_the_input_or_the_machine(model_raises, reviews, tmp_path, capsys,
                                              litdesk_home, error, expected):
    model_raises(error)
    out = tmp_path / "out.parquet"
    assert main(["predict", "--model", str(BOW), "--data", str(reviews), "--out", str(out)]) == 2
    line = the_line(capsys.readouterr().err)
    cache = litdesk_home / "cache" / "results.sqlite"
    assert expected.format(data=reviews, model=BOW, cache=cache) in line
    assert "weights_only" not in line and "\x1b" not in line and not out.exists()


@pytest.mark.parametrize("name", ["a_file", "a_folder.parquet"])
def test_an_out_path_that_cannot_be_written(reviews, tmp_path, capsys, name):
    (tmp_path / "a_file").write_text("in the way")
    (tmp_path / "a_folder.parquet").mkdir()
    out = tmp_path / name if name.endswith(".parquet") else tmp_path / name / "out.parquet"
    assert main(["predict", "--model", str(BOW), "--data", str(reviews), "--out", str(out)]) == 2
    assert str(tmp_path / name) in the_line(capsys.readouterr().err)


def test_a_bug_is_one_line_with_its_traceback_in_the_log(model_raises, reviews, tmp_path, capsys,
                                                          litdesk_home):
    model_raises(ZeroDivisionError("division by zero"))
    code = main(["predict", "--model", str(BOW), "--data", str(reviews), "--out",
                 str(tmp_path / "out.parquet")])
    log = litdesk_home / "log" / "litdesk.log"
    assert code == 1
    assert the_line(capsys.readouterr().err) == (
        f"litdesk: a bug in litdesk, ZeroDivisionError: division by zero (predicting {reviews} "
        f"with {BOW}); details in {log}")
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_ctrl_c_stops_without_a_traceback(model_raises, reviews, tmp_path, capsys):
    model_raises(KeyboardInterrupt())
    assert main(["predict", "--model", str(BOW), "--data", str(reviews), "--out",
                 str(tmp_path / "out.parquet")]) == 130
    assert the_line(capsys.readouterr().err) == "litdesk: interrupted"


@pytest.mark.parametrize("argv, expected", [
    (["predict", "--model", "m"], "required: --data, --out (see litdesk predict --help)"),
    (["explain", "--model", "m", "--data", "d", "--out", "o", "--method", "lime", "--steps",
      "many"], "argument --steps: invalid int value: 'many'"),
    (["inspect"], "required: path"),
])
def test_a_mistake_in_the_arguments_is_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert expected in the_line(capsys.readouterr().err)


@pytest.mark.parametrize("command, options, task", [
    ("compare", [], "comparing {model} on {data}"),
    ("explain", ["--method", "lime", "--out", "{out}"], "explaining {model} on {data}"),
])
def test_compare_and_explain_say_it_in_one_line_too(model_raises, reviews, tmp_path, capsys,
                                                    command, options, task):
    model_raises(MemoryError())
    out = tmp_path / "out.parquet"
    argv = [command, "--model", str(BOW), "--data", str(reviews),
            *(option.format(out=out) for option in options)]
    assert main(argv) == 2
    expected = f"litdesk: not enough memory ({task.format(model=BOW, data=reviews)})"
    assert the_line(capsys.readouterr().err) == expected


def test_the_window_never_shows_torchs_advice_to_unpickle(monkeypatch, tmp_path):
    """The same message cleaning reaches the app: load_model, not only the batch commands."""
    from litdesk.api import ModelLoadError
    from litdesk.core import model_loading

    class Loader:
        imports = ()

        @staticmethod
        def load_callable():
            def load(path, options):
                raise RuntimeError("Weights only load failed. Re-running `torch.load` with "
                                   "`weights_only` set to `False` will likely succeed\nGLOBAL "
                                   "argparse.Namespace was not an allowed global")
            return load

    monkeypatch.setattr(model_loading, "find_model_loader", lambda path, registry=None: Loader)
    target = tmp_path / "m.ckpt"
    target.write_bytes(b"x")
    with pytest.raises(ModelLoadError) as raised:
        model_loading.load_model(target)
    message = str(raised.value)
    assert "weights_only" not in message and "\n" not in message
    assert "argparse.Namespace" in message and "never loads" in message
