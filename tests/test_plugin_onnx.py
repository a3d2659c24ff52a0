"""The ONNX plugin: a torch module exported to ONNX predicts as the module does; clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import Embeddings, LoadOptions, ModelLoadError, MulticlassPreds, Scalar
from litdesk.core.model_loading import find_model_loader, load_model

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from litdesk_onnx.model import providers  # noqa: E402

# The legacy TorchScript-based exporter (dynamo=False) needs no package beyond torch; the
# default one needs onnxscript.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"
                               ":DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_onnx"
CPU = LoadOptions(device="cpu")
LABELS = ["cat", "dog", "bird"]
SIDECAR = {"inputs": [{"name": "age", "type": "number"},
                      {"name": "features", "type": "vector", "size": 4}],
           "labels": LABELS, "output": "logits"}


def export(folder: Path, dynamic_batch: bool = True, sidecar: dict = SIDECAR
           ) -> tuple[torch.nn.Module, Path]:
    """A small MLP exported to ``folder/animals.onnx``, its sidecar beside it."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    file = folder / "animals.onnx"
    torch.onnx.export(module, (torch.zeros(1, 5),), str(file), input_names=["x"],
                      output_names=["logits"], dynamo=False,
                      dynamic_axes={"x": {0: "batch"}} if dynamic_batch else None)
    file.with_suffix(".json").write_text(json.dumps(sidecar))
    return module, file


def examples(n: int) -> list[dict]:
    rng = np.random.default_rng(2)
    return [{"age": float(rng.normal()), "features": rng.normal(size=4).tolist()} for _ in range(n)]


def expected_probas(module: torch.nn.Module, batch: list[dict]) -> np.ndarray:
    x = torch.tensor([[example["age"], *example["features"]] for example in batch])
    with torch.no_grad():
        return torch.softmax(module(x), dim=-1).numpy()


def probas(model, batch: list[dict]) -> np.ndarray:
    return np.array([output["probas"] for output in model.predict(batch)])


def graph_file(folder: Path, inputs: list, name: str = "graph.onnx") -> Path:
    """A graph whose output is its first input's first three columns, with SIDECAR beside it."""
    node = onnx.helper.make_node("Slice", [inputs[0].name, "starts", "ends", "axes"], ["scores"])
    constants = [onnx.helper.make_tensor(key, onnx.TensorProto.INT64, [1], [value])
                 for key, value in (("starts", 0), ("ends", 3), ("axes", 1))]
    output = onnx.helper.make_tensor_value_info("scores", inputs[0].type.tensor_type.elem_type,
                                                ["batch", 3])
    graph = onnx.helper.make_graph([node], "g", inputs, [output], initializer=constants)
    file = folder / name
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), file)
    file.with_suffix(".json").write_text(json.dumps(SIDECAR))
    return file


def test_manifest_and_cheap_import():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    (loader,) = manifest["model_loaders"]
    assert loader["callable"] == "litdesk_onnx.model:load"
    assert loader["patterns"] == ["*.onnx"]
    script = ("import sys, litdesk_onnx.model; "
              "print(sorted({'onnxruntime', 'onnx', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_probabilities_match_the_exported_module(tmp_path):
    module, file = export(tmp_path)
    assert find_model_loader(file).id == "onnx_classifier"
    model = load_model(file, CPU)
    assert model.name == "animals"
    assert model.providers == ["CPUExecutionProvider"]
    assert model.input_spec() == {"age": Scalar(), "features": Embeddings()}
    assert model.output_spec() == {"probas": MulticlassPreds(vocab=tuple(LABELS), parent="label")}
    batch = examples(7)
    np.testing.assert_allclose(probas(model, batch), expected_probas(module, batch),
                               rtol=1e-5, atol=1e-6)


def test_a_graph_with_a_fixed_batch_size_is_fed_batches_of_that_size(tmp_path):
    module, file = export(tmp_path, dynamic_batch=False)
    batch = examples(5)
    np.testing.assert_allclose(probas(load_model(file, CPU), batch), expected_probas(module, batch),
                               rtol=1e-5, atol=1e-6)


def test_providers_follow_the_requested_device(monkeypatch):
    monkeypatch.delenv("LITDESK_DEVICE", raising=False)
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers(None, with_cuda) == [("CUDAExecutionProvider", {"device_id": 0}),
                                          "CPUExecutionProvider"]
    assert providers("cuda:1", with_cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert providers("cpu", with_cuda) == ["CPUExecutionProvider"]
    assert providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    monkeypatch.setenv("LITDESK_DEVICE", "cpu")
    assert providers(None, with_cuda) == ["CPUExecutionProvider"]


def test_graphs_that_do_not_fit_the_sidecar_are_refused(tmp_path):
    float_input = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 5])
    assert load_model(graph_file(tmp_path, [float_input]), CPU).predict(examples(1))
    cases = {
        "two.onnx": ([float_input, onnx.helper.make_tensor_value_info(
            "mask", onnx.TensorProto.FLOAT, ["batch", 5])], "the graph has 2 inputs"),
        "ints.onnx": ([onnx.helper.make_tensor_value_info("x", onnx.TensorProto.INT64, ["batch", 5])],
                      r"is a tensor\(int64\); expected a float tensor"),
        "narrow.onnx": ([onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])],
                        "takes 3 features; narrow.json describes 5"),
    }
    for name, (inputs, message) in cases.items():
        file = graph_file(tmp_path, inputs, name)
        with pytest.raises(ModelLoadError, match=message) as raised:
            load_model(file, CPU)
        assert str(raised.value).startswith(f"{file}: ")


def test_corrupt_files_and_missing_sidecars_are_one_load_error(tmp_path):
    _, file = export(tmp_path)
    file.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError, match="no sidecar animals.json or litdesk.json"):
        load_model(file, CPU)
    file.with_suffix(".json").write_text(json.dumps(SIDECAR))
    file.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model") as raised:
        load_model(file, CPU)
    assert str(raised.value).startswith(f"{file}: ")
