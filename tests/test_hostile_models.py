"""Model files written by an attacker (issue 12): nothing in them runs before the user trusts
them, nothing their config describes is allocated before it is checked against the weights,
and each is one clear error naming the file while the app goes on."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import pickle
import resource
import time
from pathlib import Path

import pytest

from litdesk.api import LoadOptions, ModelLoadError, TrustRequired
from litdesk.core import paths, trusted_files
from litdesk.core.model_loading import load_model
from tests.helpers import copy_of, edit_json, run_litdesk

torch = pytest.importorskip("torch")

# torch 2.13 deprecates TorchScript in favour of torch.export; the archives still load.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

CPU = LoadOptions(device="cpu")
SIDECAR = {"inputs": [{"name": "x", "type": "vector", "size": 2}], "labels": ["a", "b"],
           "output": "logits"}


class WritesAFile(torch.nn.Module):
    """A classifier whose forward writes ``marker`` (``torch.from_file`` creates it), as the
    issue's archive wrote a user plugin; the plugin runs forward once at load."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.layer = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.marker, True, 8, dtype=torch.uint8)
        written.fill_(33)
        return self.layer(x) + written[0].float() * 0


class Hostile:
    """Unpickling it creates the folder ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


def hostile_archive(folder: Path, marker: Path) -> Path:
    file = folder / "hostile.pt"
    torch.jit.save(torch.jit.script(WritesAFile(str(marker))), str(file))
    file.with_suffix(".json").write_text(json.dumps(SIDECAR))
    return file


def test_a_torchscript_archive_runs_nothing_until_trusted(tmp_path):
    marker = tmp_path / "written_by_the_archive"
    file = hostile_archive(tmp_path, marker)
    with pytest.raises(TrustRequired, match="a TorchScript archive is a program: loading it "
                                            "runs code from it") as raised:
        load_model(file, CPU)
    assert str(raised.value).startswith(f"{file}: ")
    assert not marker.exists()
    # The control: trusted, the archive does run, and writes its file.
    load_model(file, LoadOptions(device="cpu", trust=True))
    assert marker.exists()


def test_the_command_line_asks_for_trust_before_running_an_archive(tmp_path, litdesk_home):
    marker = tmp_path / "written_by_the_archive"
    file = hostile_archive(tmp_path, marker)
    data = tmp_path / "points.jsonl"
    data.write_text('{"x": [0.5, 1.5]}\n{"x": [1.0, 0.0]}\n', encoding="utf-8")
    out = tmp_path / "predictions.parquet"
    refused = run_litdesk("predict", "--model", file, "--data", data, "--out", out,
                          home=litdesk_home)
    assert refused.returncode == 2 and "--trust" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not marker.exists() and not out.exists()


@pytest.fixture
def fitted_pickle(tmp_path) -> Path:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "label": ["a", "a", "b", "b"]})
    file = tmp_path / "shipped" / "clf.joblib"
    file.parent.mkdir()
    joblib.dump(LogisticRegression().fit(frame[["x"]], frame["label"]), file)
    return file


def test_launch_trust_covers_only_the_launch_files_in_the_window(qtbot, tmp_path, fitted_pickle):
    from PySide6.QtWidgets import QMessageBox

    from litdesk.ui.main_window import MainWindow
    from tests.helpers import drop

    marker = tmp_path / "unpickled"
    dropped_pickle = tmp_path / "dropped.pkl"
    dropped_pickle.write_bytes(pickle.dumps(Hostile(marker)))
    archive_marker = tmp_path / "written_by_the_archive"
    dropped_archive = hostile_archive(tmp_path, archive_marker)
    window = MainWindow(show_dialogs=True, trusted_paths=[fitted_pickle])  # as `--trust clf.joblib`
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_loaded, timeout=30_000):
        window.open_paths([fitted_pickle])
    assert window.trust_prompt is None
    for dropped in (dropped_pickle, dropped_archive):
        drop(window, [dropped])
        qtbot.waitUntil(lambda: window.trust_prompt is not None, timeout=30_000)
        assert str(dropped) in window.trust_prompt.text()
        window.trust_prompt.button(QMessageBox.StandardButton.Cancel).click()
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    assert not marker.exists() and not archive_marker.exists()
    assert list(window.session.models) == ["clf"] and window.errors == []


def test_a_shipped_pickle_is_unpickled_from_the_bytes_that_were_hashed(tmp_path, fitted_pickle,
                                                                       monkeypatch):
    """The attack: a link to a shipped, listed pickle, swapped for a hostile one as soon as the
    shipped file has been opened (to be hashed)."""
    marker = tmp_path / "unpickled"
    hostile = tmp_path / "hostile.joblib"
    hostile.write_bytes(pickle.dumps(Hostile(marker)))
    shipped_bytes = fitted_pickle.read_bytes()
    manifest = fitted_pickle.parent / "models.json"
    manifest.write_text(json.dumps(
        {"files": {fitted_pickle.name: hashlib.sha256(shipped_bytes).hexdigest()}}))
    monkeypatch.setattr(trusted_files, "TRUSTED_MANIFESTS", (manifest,))
    link = tmp_path / "downloads" / "clf.joblib"
    link.parent.mkdir()
    link.symlink_to(fitted_pickle)
    real_open = io.open

    def open_then_swap(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and Path(file) in (link, fitted_pickle) \
                and link.resolve() == fitted_pickle:
            link.unlink()
            link.symlink_to(hostile)
        return handle

    monkeypatch.setattr(builtins, "open", open_then_swap)
    monkeypatch.setattr(io, "open", open_then_swap)
    model = load_model(link)  # no trust given: the manifest vouches for the bytes
    monkeypatch.undo()
    assert link.resolve() == hostile  # the swap did happen
    assert not marker.exists()
    assert model.fingerprint() == hashlib.sha256(shipped_bytes).hexdigest()


LINEAR = {"format": "litdesk-linear-text/1", "labels": ["neg", "pos"],
          "vocabulary": {"good": 0, "bad": 1}, "idf": [1.0, 1.0], "coef": [[1.0, -1.0]],
          "intercept": [0.0], "ngram_range": [1, 1], "lowercase": True,
          "token_pattern": r"(?u)\b\w\w+\b", "sublinear_tf": False, "norm": "l2"}


@pytest.mark.parametrize("change, message", [
    ({"token_pattern": r"(\w+\s?)+$"}, r"repeats a part that has choices of its own"),
    ({"token_pattern": r"\w*\w*\w*\w*\w*\w*!"}, r"has 6 unbounded repeats"),
    ({"ngram_range": [1, 100_000]}, r"'ngram_range' is \[1, 100000\]; .* max_n <= 8"),
])
def test_a_linear_text_model_that_would_hang_or_exhaust_memory_is_refused(tmp_path, change,
                                                                         message):
    file = tmp_path / "linear_text_model.json"
    file.write_text(json.dumps(LINEAR))
    model = load_model(file)  # the control: the same file with sane settings loads and predicts
    assert model.predict([{"text": "good good bad"}])[0]["tokens"] == ["good", "good", "bad"]
    file.write_text(json.dumps({**LINEAR, **change}))
    with pytest.raises(ModelLoadError, match=message) as raised:
        load_model(file)
    assert str(raised.value).startswith(f"{file}: ")


def peak_memory_growth_mb(action) -> float:
    """How far ``action`` raised this process's peak resident memory, in MB (a lower bound of
    what it allocated: 0 when the peak was already higher)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    action()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def test_a_config_larger_than_its_weights_is_refused_before_allocating(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / "config.json", vocab_size=30_000_000)  # 1.9 GB of float32 embeddings

    def load():
        with pytest.raises(ModelLoadError, match=r"model.safetensors holds "
                           r"bert.embeddings.word_embeddings.weight of shape \[18, 16\], but "
                           r"config.json makes it \[30000000, 16\]") as raised:
            load_model(folder, CPU)
        assert str(raised.value).startswith(f"{folder}: ")

    assert peak_memory_growth_mb(load) < 500


def test_weights_missing_from_the_files_are_named_before_allocating(model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = copy_of(model_dir, tmp_path)
    weights = load_file(folder / "model.safetensors")
    del weights["bert.embeddings.word_embeddings.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    edit_json(folder / "config.json", vocab_size=30_000_000)

    def load():
        with pytest.raises(ModelLoadError, match=r"the weights lack 1 tensor\(s\) of a sequence "
                           r"classifier, e.g. bert.embeddings.word_embeddings.weight of shape "
                           r"\[30000000, 16\]"):
            load_model(folder, CPU)

    assert peak_memory_growth_mb(load) < 500


def test_a_hundred_thousand_layers_over_two_layers_of_weights_fail_fast(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / "config.json", num_hidden_layers=100_000)
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="config.json describes a model far larger than its "
                                             "weights: building it passed .* parameter tensors, "
                                             "and the weights hold 41"):
        load_model(folder, CPU)
    assert time.perf_counter() - started < 60  # the load ran 215 s into a MemoryError


def test_pickled_transformers_weights_are_never_unpickled(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    marker = tmp_path / "unpickled"
    (folder / "model.safetensors").unlink()
    torch.save({"bert.embeddings.word_embeddings.weight": Hostile(marker)},
               folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="the weights are in pytorch_model.bin, a pickle, "
                                             "which litdesk does not unpickle") as raised:
        load_model(folder, CPU)
    assert str(raised.value).startswith(f"{folder}: ")
    assert not marker.exists()


def test_the_window_reports_each_hostile_file_and_keeps_what_it_had(qtbot, tmp_path,
                                                                    model_dir):
    from litdesk.ui.main_window import MainWindow
    from tests.helpers import drop

    linear = tmp_path / "hang" / "linear_text_model.json"
    linear.parent.mkdir()
    linear.write_text(json.dumps({**LINEAR, "token_pattern": r"(\w+\s?)+$"}))
    huge = copy_of(model_dir, tmp_path)
    edit_json(huge / "config.json", vocab_size=30_000_000)
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    window.open_paths([paths.DEMO_DATASET, paths.DEMO_MODELS[1]])  # the linear demo model
    qtbot.waitUntil(lambda: not window.runner.busy and "bow_linear" in window.session.models,
                    timeout=60_000)
    drop(window, [linear, huge])
    qtbot.waitUntil(lambda: not window.runner.busy and len(window.errors) == 2, timeout=60_000)
    assert any(str(linear) in error and "token_pattern" in error for error in window.errors)
    assert any(str(huge) in error and "[30000000, 16]" in error for error in window.errors)
    assert list(window.session.models) == ["bow_linear"]
    assert window.session.dataset.name == paths.DEMO_DATASET.stem


@pytest.mark.parametrize("where", ["parent", "absolute", "link"])
def test_onnx_weights_outside_the_model_folder_are_never_read(tmp_path, where):
    """An ONNX file may keep its weights in external files named by path; one that names a file
    outside its folder (../, an absolute path, or a link inside that leads out) is refused."""
    onnx = pytest.importorskip("onnx")
    import numpy as np

    secret = tmp_path / "secret"
    secret.mkdir()
    np.full((2, 2), 7, np.float32).tofile(secret / "weights.bin")
    folder = tmp_path / "model"
    folder.mkdir()
    location = {"parent": "../secret/weights.bin", "absolute": str(secret / "weights.bin"),
                "link": "weights.bin"}[where]
    if where == "link":
        (folder / "weights.bin").symlink_to(secret / "weights.bin")
    weights = onnx.numpy_helper.from_array(np.zeros((2, 2), np.float32), "W")
    weights.ClearField("raw_data")
    weights.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "W"], ["logits"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 2])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 2])],
        [weights])
    file = folder / "m.onnx"
    file.write_bytes(onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 17)]).SerializeToString())
    file.with_suffix(".json").write_text(json.dumps(SIDECAR))
    with pytest.raises(ModelLoadError, match="m.onnx") as raised:
        load_model(file, CPU)
    assert "escapes model directory" in str(raised.value) or "outside" in str(raised.value)
