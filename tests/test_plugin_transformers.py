"""The transformers plugin: loading a local save_pretrained folder, outputs, gradients, refusals."""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import LoadOptions, AttentionHeads, Embeddings, ModelLoadError, MulticlassPreds, TokenGradients

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from litdesk_transformers.classifier import HFSequenceClassifier, load  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "litdesk_transformers"
WORDS = ["the", "film", "was", "great", "awful", "plot", "not", "good", "bad", "very", "a", "story"]
LABELS = ["negative", "neutral", "positive"]
HIDDEN, LAYERS, HEADS = 16, 2, 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT classifier and its tokenizer, saved like a user's model."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s"]) + "\n")
    tokenizer = transformers.BertTokenizerFast(str(vocab_file))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=32, max_position_embeddings=64,
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model(model_dir) -> HFSequenceClassifier:
    return load(model_dir, LoadOptions(device="cpu"))


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


def test_manifest_names_the_loader():
    manifest = tomllib.loads((PLUGIN_DIR / "litdesk.toml").read_text())
    assert manifest["name"] == "transformers"
    (loader,) = manifest["model_loaders"]
    assert loader == {"id": "hf_sequence_classifier", "callable": "litdesk_transformers.classifier:load",
                      "patterns": ["config.json"]}


def test_spec_follows_the_config(model, model_dir):
    assert model.name == model_dir.name
    assert model.input_spec()["label"].vocab == tuple(LABELS)
    assert not model.input_spec()["label"].required
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


def test_fingerprint_follows_the_weights(model, model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    assert load(folder, LoadOptions(device="cpu")).fingerprint() == model.fingerprint()
    network = transformers.BertForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        network.classifier.bias += 1.0
    network.save_pretrained(folder)
    assert load(folder, LoadOptions(device="cpu")).fingerprint() != model.fingerprint()


def test_config_file_path_loads_its_folder(model_dir):
    assert load(model_dir / "config.json", LoadOptions(device="cpu")).name == model_dir.name


def test_custom_code_is_refused(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="auto_map") as caught:
        load(folder)
    assert str(folder) in str(caught.value)


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


def test_non_classifier_is_refused(model_dir, tmp_path):
    folder = copy_of(model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertModel"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not a sequence classifier"):
        load(folder)
