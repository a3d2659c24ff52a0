"""The TorchScript plugin: the sidecar, predictions equal to the module's, clear refusals.

An archive is a program, so every load here says it is trusted; test_hostile_models.py shows
that nothing of it runs without that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import Embeddings, LoadOptions, ModelLoadError, MulticlassPreds, Scalar
from litdesk.core.jobs import run_job
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import find_model_loader, load_model
from litdesk.core.predict import predict_job

torch = pytest.importorskip("torch")

# torch 2.13 deprecates TorchScript in favour of torch.export; the archives still load.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_torchscript"
CPU = LoadOptions(device="cpu", trust=True)
LABELS = ["cat", "dog", "bird"]
SIDECAR = {"inputs": [{"name": "age", "type": "number"},
                      {"name": "features", "type": "vector", "size": 4}],
           "labels": LABELS, "output": "logits"}


class Classifier(torch.nn.Module):
    """Five features in, one score per label out; ``softmax`` makes it output probabilities."""

    def __init__(self, n_out: int = 3, softmax: bool = False) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(5, n_out)
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.layer(x)
        return torch.softmax(scores, dim=-1) if self.softmax else scores


def save(module: torch.nn.Module, folder: Path, sidecar: dict | None = SIDECAR,
         name: str = "animals.pt") -> Path:
    file = folder / name
    torch.jit.save(torch.jit.script(module), str(file))
    if sidecar is not None:
        file.with_suffix(".json").write_text(json.dumps(sidecar))
    return file


def examples(n: int = 6) -> list[dict]:
    rng = np.random.default_rng(1)
    return [{"age": float(rng.normal()), "features": rng.normal(size=4).tolist()} for _ in range(n)]


def as_matrix(batch: list[dict]) -> torch.Tensor:
    return torch.tensor([[example["age"], *example["features"]] for example in batch])


def probas(model, batch: list[dict]) -> np.ndarray:
    return np.array([output["probas"] for output in model.predict(batch)])


def test_manifest_and_cheap_import():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    (loader,) = manifest["model_loaders"]
    assert loader["callable"] == "litdesk_torchscript.model:load"
    assert loader["patterns"] == ["*.pt", "*.torchscript"]
    script = "import sys, litdesk_torchscript.model; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probabilities_match_the_module(tmp_path, dtype):
    module = Classifier().to(dtype)
    file = save(module, tmp_path)
    assert find_model_loader(file).id == "torchscript_classifier"
    model = load_model(file, CPU)
    assert model.name == "animals"
    assert model.input_spec() == {"age": Scalar(), "features": Embeddings()}
    assert model.output_spec() == {"probas": MulticlassPreds(vocab=tuple(LABELS), parent="label")}
    batch = examples()
    with torch.no_grad():
        expected = torch.softmax(module(as_matrix(batch).to(dtype)), dim=-1).numpy()
    np.testing.assert_allclose(probas(model, batch), expected, rtol=1e-5, atol=1e-6)


def test_probability_outputs_and_the_shared_sidecar(tmp_path):
    module = Classifier(softmax=True)
    file = save(module, tmp_path, sidecar=None, name="animals.torchscript")
    (tmp_path / "litdesk.json").write_text(json.dumps({**SIDECAR, "output": "probabilities"}))
    model = load_model(file, LoadOptions(device="cpu", trust=True, label="species"))
    assert model.output_spec()["probas"].parent == "species"
    batch = examples()
    with torch.no_grad():
        expected = module(as_matrix(batch)).numpy()
    np.testing.assert_allclose(probas(model, batch), expected, rtol=1e-5, atol=1e-6)


def test_a_binary_classifier_may_return_one_logit(tmp_path):
    module = Classifier(n_out=1)
    file = save(module, tmp_path, sidecar={**SIDECAR, "labels": ["no", "yes"]})
    batch = examples()
    with torch.no_grad():
        yes = torch.sigmoid(module(as_matrix(batch)))[:, 0].numpy()
    np.testing.assert_allclose(probas(load_model(file, CPU), batch), np.stack([1 - yes, yes], 1),
                               rtol=1e-5, atol=1e-6)


def test_predictions_over_a_dataset_with_a_vector_column(tmp_path):
    module = Classifier()
    file = save(module, tmp_path)
    batch = examples(10)
    data = tmp_path / "animals.jsonl"
    data.write_text("".join(json.dumps(example) + "\n" for example in batch))
    predictions = run_job(predict_job(load_model(file, CPU), load_dataset(data), batch_size=4))
    with torch.no_grad():
        expected = torch.softmax(module(as_matrix(batch)), dim=-1).numpy()
    np.testing.assert_allclose(predictions.fields["probas"], expected, rtol=1e-5, atol=1e-6)


def test_the_fingerprint_follows_the_file_and_the_sidecar(tmp_path):
    file = save(Classifier(), tmp_path)
    before = load_model(file, CPU).fingerprint()
    assert load_model(file, CPU).fingerprint() == before
    file.with_suffix(".json").write_text(json.dumps({**SIDECAR, "labels": ["a", "b", "c"]}))
    assert load_model(file, CPU).fingerprint() != before


def test_a_missing_sidecar_is_named(tmp_path):
    file = save(Classifier(), tmp_path, sidecar=None)
    with pytest.raises(ModelLoadError, match="no sidecar animals.json or litdesk.json") as raised:
        load_model(file, CPU)
    assert str(raised.value).startswith(f"{file}: ")


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"inputs": [{"name": "x", "type": "number"}], "output": "logits"}), "missing 'labels'"),
    (json.dumps({**SIDECAR, "labels": ["only"]}), "at least two distinct strings"),
    (json.dumps({**SIDECAR, "output": "scores"}), "'output' is 'scores'"),
    (json.dumps({**SIDECAR, "inputs": [{"name": "v", "type": "vector"}]}), "positive integer 'size'"),
    (json.dumps({**SIDECAR, "inputs": [{"name": "v", "type": "text"}]}), "'type' is 'text'"),
    (json.dumps({**SIDECAR, "inputs": [{"name": "a", "type": "number"}] * 2}), "unique"),
])
def test_an_invalid_sidecar_is_named(tmp_path, text, message):
    file = save(Classifier(), tmp_path, sidecar=None)
    sidecar = file.with_suffix(".json")
    sidecar.write_text(text)
    with pytest.raises(ModelLoadError, match=message) as raised:
        load_model(file, CPU)
    assert str(raised.value).startswith(f"{sidecar}: ")


@pytest.mark.parametrize("sidecar, message", [
    ({**SIDECAR, "inputs": [{"name": "features", "type": "vector", "size": 3}]},
     "does not run on the 3 features that animals.json describes"),
    ({**SIDECAR, "labels": ["cat", "dog"]}, r"returned shape \(2, 3\) for 2 examples"),
])
def test_a_sidecar_that_does_not_fit_the_network_fails_at_load(tmp_path, sidecar, message):
    file = save(Classifier(), tmp_path, sidecar=sidecar)
    with pytest.raises(ModelLoadError, match=message):
        load_model(file, CPU)


def test_a_pickled_checkpoint_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"

    class Hostile:
        def __reduce__(self):
            return os.makedirs, (str(marker),)

    file = tmp_path / "checkpoint.pt"
    torch.save({"state": Hostile()}, file)
    file.with_suffix(".json").write_text(json.dumps(SIDECAR))
    for options in (LoadOptions(device="cpu"), CPU):  # refused before any trust question
        with pytest.raises(ModelLoadError, match="not a TorchScript archive .no code/") as raised:
            load_model(file, options)
        assert type(raised.value) is ModelLoadError and str(raised.value).startswith(f"{file}: ")
    assert not marker.exists()
    torch.load(file, weights_only=False)  # the control: unpickling it does run its code
    assert marker.exists()
    file.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="not a TorchScript archive"):
        load_model(file, CPU)
