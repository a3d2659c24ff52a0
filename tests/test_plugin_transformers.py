"""The transformers plugin: dispatch by config, the sequence classifier's outputs and gradients,
and the refusals every kind shares. The other kinds: test_plugin_transformers_kinds.py."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import (
    AttentionHeads,
    CategoryLabel,
    Embeddings,
    LoadOptions,
    ModelLoadError,
    MulticlassPreds,
    TokenGradients,
)
from litdesk.core.model_loading import load_model
from litdesk_transformers import loader
from tests.helpers import copy_of, edit_json
from tests.tiny_bert import HEADS, HIDDEN, LABELS, LAYERS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from litdesk_transformers.classifier import HFSequenceClassifier  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_transformers"
def load(folder: Path) -> HFSequenceClassifier:
    """The model in ``folder``, through plugin discovery and the loader's dispatch."""
    return load_model(folder, LoadOptions(device="cpu"))


@pytest.fixture(scope="module")
def model(model_dir) -> HFSequenceClassifier:
    loaded = load(model_dir)
    assert type(loaded) is HFSequenceClassifier
    return loaded


def test_manifest_names_one_loader_for_every_kind():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    assert manifest["name"] == "transformers"
    (entry,) = manifest["model_loaders"]
    assert entry["callable"] == "litdesk_transformers.loader:load"
    assert entry["patterns"] == ["config.json"]


def test_the_package_imports_without_torch():
    blocked = ("import sys; sys.modules['torch'] = sys.modules['transformers'] = None; "
               "import litdesk_transformers.loader")
    subprocess.run([sys.executable, "-c", blocked], check=True)


@pytest.mark.slow  # a fresh interpreter imports transformers
def test_models_loading_at_once_in_a_fresh_process_all_load():
    """The demo opens its models on parallel threads; the first import of transformers must
    not leave one of them with a half-imported module."""
    script = (
        "import sys; from concurrent.futures import ThreadPoolExecutor\n"
        "from litdesk.api import LoadOptions\n"
        "from litdesk.core import paths\n"
        "from litdesk_transformers import loader\n"
        "folders = [paths.DEMO_MODELS[0], paths.RESOURCES_DIR / 'demo' / 'models' / 'tiny_lm'] * 2\n"
        "with ThreadPoolExecutor(4) as pool:\n"
        "    models = list(pool.map(lambda f: loader.load(f, LoadOptions(device='cpu')), folders))\n"
        "print(len(models))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "4"


@pytest.mark.parametrize("config, kind", [
    ({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "a", "1": "b"}},
     loader.SEQUENCE_CLASSIFIER),
    ({"architectures": ["BertForSequenceClassification"], "num_labels": 3}, loader.SEQUENCE_CLASSIFIER),
    ({"architectures": ["RobertaForSequenceClassification"], "id2label": {"0": "score"}},
     loader.SEQUENCE_REGRESSOR),
    ({"architectures": ["BertForSequenceClassification"], "problem_type": "regression",
      "id2label": {"0": "LABEL_0"}}, loader.SEQUENCE_REGRESSOR),
    ({"architectures": ["BertForSequenceClassification"], "problem_type": "multi_label_classification",
      "id2label": {"0": "a", "1": "b"}}, loader.MULTI_LABEL_CLASSIFIER),
    ({"architectures": ["DistilBertForTokenClassification"]}, loader.TOKEN_CLASSIFIER),
    ({"architectures": ["GPT2LMHeadModel"]}, loader.CAUSAL_LM),
    ({"architectures": ["LlamaForCausalLM"]}, loader.CAUSAL_LM),
    ({"architectures": ["BertForMaskedLM"]}, loader.MASKED_LM),
    ({"architectures": ["BertModel", "BertForMaskedLM"]}, loader.MASKED_LM),
    ({}, loader.SEQUENCE_CLASSIFIER),
])
def test_the_config_names_the_kind(config, kind):
    assert loader.model_kind(config) == kind


@pytest.mark.parametrize("config, message", [
    ({"architectures": ["T5ForConditionalGeneration"]}, "no head litdesk can use"),
    ({"architectures": ["BertForSequenceClassification"], "problem_type": "regression",
      "id2label": {"0": "a", "1": "b", "2": "c"}}, "a regressor with 3 outputs"),
])
def test_unusable_configs_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        loader.model_kind(config)


def test_spec_follows_the_config(model, model_dir):
    assert model.name == model_dir.name
    assert model.input_spec()["label"] == CategoryLabel(vocab=tuple(LABELS), required=False)
    spec = model.output_spec()
    assert spec["probas"] == MulticlassPreds(vocab=tuple(LABELS), parent="label")
    assert spec["token_grad_text"] == TokenGradients(align="tokens", grad_for="token_embs")
    layer_embeddings = [key for key in spec if key.endswith("/avg_emb")]
    assert layer_embeddings == [f"layer_{i}/avg_emb" for i in range(LAYERS + 1)]
    assert all(spec[f"layer_{i}/attention"] == AttentionHeads(align_in="tokens", align_out="tokens")
               for i in range(1, LAYERS + 1))
    assert isinstance(spec["cls_emb"], Embeddings)
    assert model.max_minibatch_size() == 32


def test_predict_shapes_without_padding(model):
    texts = ["the film was great", "a very very bad plot , not good at all", ""]
    results = model.predict([{"text": text} for text in texts])
    assert len(results) == 3
    for text, result in zip(texts, results):
        tokens = result["tokens"]
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "[PAD]" not in tokens
        assert len(tokens) == len(model.tokenizer(text)["input_ids"])
        assert result["probas"].dtype == np.float32
        assert result["probas"].sum() == pytest.approx(1.0, abs=1e-6)
        assert result["cls_emb"].shape == (HIDDEN,)
        assert result["token_embs"].shape == result["token_grad_text"].shape == (len(tokens), HIDDEN)
        for layer in range(LAYERS + 1):
            assert result[f"layer_{layer}/avg_emb"].shape == (HIDDEN,)
        for layer in range(1, LAYERS + 1):
            attention = result[f"layer_{layer}/attention"]
            assert attention.shape == (HEADS, len(tokens), len(tokens))
            np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)


def test_batched_predictions_match_single_ones(model):
    texts = ["the film was great", "a very bad plot , not good"]
    batched = model.predict([{"text": text} for text in texts])
    for text, together in zip(texts, batched):
        (alone,) = model.predict([{"text": text}])
        for key in ("probas", "cls_emb", "token_grad_text", "layer_2/avg_emb", "layer_1/attention"):
            np.testing.assert_allclose(together[key], alone[key], atol=1e-5, err_msg=key)


def logit_along(model: HFSequenceClassifier, text: str, direction: np.ndarray, step: float,
                label: int) -> float:
    """The logit of ``label`` when the text's input embeddings move ``step`` along ``direction``."""
    network = copy.deepcopy(model.network).double()
    encoded = model.tokenizer([text], return_tensors="pt")
    embeddings = network.get_input_embeddings()(encoded.pop("input_ids"))
    moved = embeddings + step * torch.from_numpy(direction).double()[None]
    with torch.no_grad():
        return float(network(inputs_embeds=moved, **encoded).logits[0, label])


@pytest.mark.parametrize("use_gold_label", [False, True])
def test_gradients_match_finite_differences(model, use_gold_label):
    text = "the plot was not good"
    (plain,) = model.predict([{"text": text}])
    predicted = int(np.argmax(plain["probas"]))
    target = (predicted + 1) % len(LABELS) if use_gold_label else predicted
    example = {"text": text, "label": LABELS[target]} if use_gold_label else {"text": text}
    (result,) = model.predict([example])
    direction = np.random.default_rng(0).normal(size=result["token_embs"].shape)
    direction /= np.linalg.norm(direction)
    step = 1e-3
    numeric = (logit_along(model, text, direction, step, target)
               - logit_along(model, text, direction, -step, target)) / (2 * step)
    analytic = float((result["token_grad_text"] * direction).sum())
    assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_gradients_survive_inference_mode(model):
    with torch.inference_mode():
        (result,) = model.predict([{"text": "the film was awful"}])
    assert np.abs(result["token_grad_text"]).sum() > 0


def test_concurrent_predictions_are_safe(model):
    texts = [f"the film was {'very ' * n}good" for n in range(8)]
    expected = [result["probas"] for result in model.predict([{"text": text} for text in texts])]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(lambda text: model.predict([{"text": text}])[0]["probas"], texts * 3))
    np.testing.assert_allclose(np.stack(outputs), np.stack(expected * 3), atol=1e-5)


def test_the_gold_label_field_follows_the_load_options(model_dir):
    renamed = load_model(model_dir, LoadOptions(device="cpu", label="sentiment"))
    assert renamed.input_spec()["sentiment"] == CategoryLabel(vocab=tuple(LABELS), required=False)
    assert renamed.output_spec()["probas"].parent == "sentiment"
    text = "the plot was not good"
    (plain,) = renamed.predict([{"text": text}])
    other = LABELS[(int(np.argmax(plain["probas"])) + 1) % len(LABELS)]
    (explained,) = renamed.predict([{"text": text, "sentiment": other}])
    assert not np.allclose(explained["token_grad_text"], plain["token_grad_text"])


def test_fingerprint_follows_the_weights(model, model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    assert load(folder).fingerprint() == model.fingerprint()
    network = transformers.BertForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        network.classifier.bias += 1.0
    network.save_pretrained(folder)
    assert load(folder).fingerprint() != model.fingerprint()


def test_config_file_path_loads_its_folder(model_dir):
    assert loader.load(model_dir / "config.json", LoadOptions(device="cpu")).name == model_dir.name


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
def test_custom_code_is_refused(model_dir, tmp_path, file):
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / file, auto_map={"AutoModelForSequenceClassification": "modeling_evil.EvilModel"})
    with pytest.raises(ModelLoadError, match="auto_map") as caught:
        load(folder)
    assert str(caught.value).startswith(f"{folder}: {file} names custom code")


@pytest.mark.parametrize("missing, message", [
    (["model.safetensors"], "no weights"),
    (["tokenizer.json", "vocab.txt"], "no tokenizer"),
])
def test_incomplete_folder_is_refused(model_dir, tmp_path, missing, message):
    folder = copy_of(model_dir, tmp_path)
    for name in missing:
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match=message) as caught:
        load(folder)
    assert str(caught.value).startswith(f"{folder}: ")


def test_corrupt_weights_become_one_load_error(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError) as caught:
        load(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder}: ") and "\n" not in message


def test_a_model_without_a_usable_head_is_refused(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / "config.json", architectures=["BertModel"])
    with pytest.raises(ModelLoadError, match="no head litdesk can use .architectures: BertModel"):
        load(folder)


def test_weights_of_another_head_are_refused(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / "config.json", architectures=["BertForMaskedLM"])
    with pytest.raises(ModelLoadError, match="the weights lack .* of a masked language model") as caught:
        load(folder)
    assert str(caught.value).startswith(f"{folder}: ")


def test_the_classifier_loader_refuses_other_kinds(model_dir, tmp_path):
    from litdesk_transformers.classifier import load as load_classifier

    assert type(load_classifier(model_dir, LoadOptions(device="cpu"))) is HFSequenceClassifier
    folder = copy_of(model_dir, tmp_path)
    edit_json(folder / "config.json", architectures=["BertForTokenClassification"])
    with pytest.raises(ModelLoadError, match="a token classifier, not a sequence classifier"):
        load_classifier(folder)
