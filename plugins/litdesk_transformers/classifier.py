"""Hugging Face sequence classifiers from a local ``save_pretrained`` folder.

Only the folder's own files are read: nothing is downloaded and no code from the folder runs
(``trust_remote_code=False``; a config naming custom code via ``auto_map`` is refused).
torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import (
    LoadOptions,
    AttentionHeads,
    CategoryLabel,
    Embeddings,
    Model,
    ModelLoadError,
    MulticlassPreds,
    Spec,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
)
from litdesk.core.device import best_device

#: Texts are truncated to this many tokens (special tokens included).
MAX_LENGTH = 128

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")

#: Files up to this size are hashed whole for the fingerprint; larger ones by size and mtime.
_HASH_WHOLE_LIMIT = 64 * 2**20
_FINGERPRINTED_SUFFIXES = {".json", ".txt", ".model", ".safetensors", ".bin"}


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _tokenizer_config(folder: Path) -> dict:
    """The folder's tokenizer_config.json, or {} when it is absent or unreadable."""
    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return settings if isinstance(settings, dict) else {}


def _check_folder(folder: Path) -> None:
    """Refuse, with one clear message, folders that cannot hold a loadable local classifier."""
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelLoadError(f"{folder}: config.json cannot be read ({error.strerror or error})") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{folder}: config.json is not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise ModelLoadError(f"{folder}: config.json is not a JSON object")
    for name, settings in (("config.json", config), ("tokenizer_config.json", _tokenizer_config(folder))):
        if "auto_map" in settings:
            raise ModelLoadError(f"{folder}: {name} names custom code (auto_map); "
                                 "litdesk does not run code shipped with a model")
    architectures = config.get("architectures") or []
    if architectures and not any(arch.endswith("ForSequenceClassification") for arch in architectures):
        raise ModelLoadError(f"{folder}: not a sequence classifier "
                             f"(architectures: {', '.join(architectures)})")
    if config.get("problem_type") in ("regression", "multi_label_classification"):
        raise ModelLoadError(f"{folder}: only single-label classifiers are supported "
                             f"(problem_type: {config['problem_type']})")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES[::2])})")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")


def folder_fingerprint(folder: Path) -> str:
    """A hash of the folder's config, tokenizer and weight files (contents, or size+mtime if large)."""
    digest = hashlib.sha1(b"hf_sequence_classifier/1")
    for file in sorted(folder.iterdir()):
        if not file.is_file() or file.suffix not in _FINGERPRINTED_SUFFIXES:
            continue
        stat = file.stat()
        digest.update(file.name.encode() + b"\0")
        if stat.st_size <= _HASH_WHOLE_LIMIT:
            digest.update(file.read_bytes())
        else:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load(path: Path, options: LoadOptions = LoadOptions()) -> "HFSequenceClassifier":
    """Load the sequence classifier saved in the folder ``path`` (or the folder of ``path``)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    _check_folder(folder)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the app shows its own progress
    local_only = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **local_only)
        network, loading_info = transformers.AutoModelForSequenceClassification.from_pretrained(
            folder, attn_implementation="eager", output_loading_info=True, **local_only)
    except Exception as error:  # transformers raises many types; each becomes one message
        raise ModelLoadError(f"{folder}: {_first_line(error)}") from error
    if network.config.num_labels < 2:
        raise ModelLoadError(f"{folder}: one output (a regression head); only classifiers are supported")
    if loading_info.get("missing_keys"):
        missing = sorted(loading_info["missing_keys"])
        raise ModelLoadError(f"{folder}: the weights lack {len(missing)} tensor(s), e.g. {missing[0]}")
    try:
        return HFSequenceClassifier(network, tokenizer, name=folder.name,
                                    device=best_device(options.device), fingerprint=folder_fingerprint(folder))
    except Exception as error:  # the probe forward pass failed: the model cannot be used
        raise ModelLoadError(f"{folder}: {_first_line(error)}") from error


class HFSequenceClassifier(Model):
    """A transformers ``*ForSequenceClassification`` model with its tokenizer.

    Besides class probabilities it returns the tokens, the input token embeddings and their
    gradients (of the gold label's logit when the example has a label, else of the predicted
    class's), the [CLS] embedding, the mean-pooled embedding after each layer
    (``layer_0`` is the embedding layer) and each layer's attention, so that LIT-style
    salience, attention and embedding views work on it. One forward and one backward pass
    per batch.
    """

    def __init__(self, network: Any, tokenizer: Any, name: str, device: str = "cpu",
                 fingerprint: str | None = None) -> None:
        config = network.config
        self.name = name
        self.labels = tuple(str(config.id2label[i]) for i in range(config.num_labels))
        self.tokenizer = tokenizer
        self.device = device
        network.eval().requires_grad_(False)
        if device == "cpu":
            network.float()
        self.network = network.to(device)
        self.max_length = min(MAX_LENGTH, tokenizer.model_max_length,
                              getattr(config, "max_position_embeddings", MAX_LENGTH))
        self._fingerprint = fingerprint or f"{type(self).__qualname__}:{name}"
        # One batch at a time: the fast tokenizer's padding/truncation state is shared
        # ("Already borrowed" errors), and it bounds device memory.
        self._lock = threading.Lock()
        self._n_hidden_states, self._n_attentions = self._probe_layers()

    def _probe_layers(self) -> tuple[int, int]:
        """How many hidden states and attention maps the architecture returns."""
        import torch

        encoded = self.tokenizer(["a"], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.network(**encoded, output_hidden_states=True, output_attentions=True)
        if not out.hidden_states:
            raise ValueError("the model does not return hidden states")
        return len(out.hidden_states), len(out.attentions or ())

    def input_spec(self) -> Spec:
        return {"text": TextSegment(), "label": CategoryLabel(vocab=self.labels, required=False)}

    def output_spec(self) -> Spec:
        spec: Spec = {
            "probas": MulticlassPreds(vocab=self.labels, parent="label"),
            "cls_emb": Embeddings(),
            "tokens": Tokens(parent="text"),
            "token_grad_text": TokenGradients(align="tokens", grad_for="token_embs"),
            "token_embs": TokenEmbeddings(align="tokens"),
        }
        for layer in range(self._n_hidden_states):
            spec[f"layer_{layer}/avg_emb"] = Embeddings()
        for layer in range(1, self._n_attentions + 1):
            spec[f"layer_{layer}/attention"] = AttentionHeads(align_in="tokens", align_out="tokens")
        return spec

    def max_minibatch_size(self) -> int:
        return 32

    def fingerprint(self) -> str:
        return self._fingerprint

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not inputs:
            return []
        with self._lock:
            return self._predict(inputs)

    def _predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        texts = [str(example.get("text") or "") for example in inputs]
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
        input_ids = encoded.pop("input_ids")
        # Gradients are needed even if the caller runs under inference_mode or no_grad.
        with torch.inference_mode(False), torch.enable_grad():
            token_embs = self.network.get_input_embeddings()(input_ids).detach().requires_grad_(True)
            out = self.network(inputs_embeds=token_embs, **encoded, output_hidden_states=True,
                               output_attentions=self._n_attentions > 0)
            logits = out.logits
            targets = logits.detach().argmax(dim=-1)
            for row, example in enumerate(inputs):
                if example.get("label") in self.labels:
                    targets[row] = self.labels.index(example["label"])
            logits.gather(1, targets[:, None]).sum().backward()

        mask = encoded["attention_mask"].bool()
        hidden_states = out.hidden_states
        probas = torch.softmax(logits.detach().float(), dim=-1).cpu().numpy()
        grads = token_embs.grad.float().cpu().numpy()
        embs = token_embs.detach().float().cpu().numpy()
        cls_embs = hidden_states[-1].detach().float().cpu().numpy()
        weights = mask.unsqueeze(-1).to(hidden_states[-1].dtype)
        avg_embs = [((state.detach() * weights).sum(1) / weights.sum(1)).float().cpu().numpy()
                    for state in hidden_states]
        attentions = [attention.detach().float().cpu().numpy() for attention in out.attentions or ()]
        kept_positions = [np.flatnonzero(row) for row in mask.cpu().numpy()]
        ids = input_ids.cpu().numpy()

        # Copies, not views: a cached result must not keep its whole batch alive.
        results = []
        for row, kept in enumerate(kept_positions):
            result = {
                "probas": probas[row].copy(),
                "cls_emb": cls_embs[row, kept[0]].copy(),
                "tokens": self.tokenizer.convert_ids_to_tokens(ids[row, kept].tolist()),
                "token_grad_text": grads[row, kept],
                "token_embs": embs[row, kept],
            }
            for layer, avg_emb in enumerate(avg_embs):
                result[f"layer_{layer}/avg_emb"] = avg_emb[row].copy()
            for layer, attention in enumerate(attentions, start=1):
                result[f"layer_{layer}/attention"] = attention[row][:, kept][:, :, kept]
            results.append(result)
        return results
