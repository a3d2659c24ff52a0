"""Loading a local Hugging Face ``save_pretrained`` folder as the litdesk model of its kind.

The kind comes from ``config.json``: its ``architectures`` name the head (sequence, token or
image classification, causal or masked language model), and for sequence classification its
``problem_type`` and number of labels tell single-label, multi-label and regression apart.

Only the folder's own files are read: nothing is downloaded and no code from the folder runs
(``trust_remote_code=False``; a config naming custom code via ``auto_map`` is refused; weights
come from safetensors only, never from a pickled ``pytorch_model.bin``). The config is checked
against the weights' shapes before the model is allocated (:mod:`litdesk_transformers.weights`).
Every failure is one :class:`ModelLoadError` "<folder>: <what>". torch and transformers are
imported inside :func:`load`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litdesk.api import LoadOptions, Model, ModelLoadError, read_json_document
from litdesk.api.device import best_device
from litdesk_transformers.base import HFTextModel
from litdesk_transformers.classifier import (
    HFMultiLabelClassifier,
    HFSequenceClassifier,
    HFSequenceRegressor,
)
from litdesk_transformers.image_classifier import HFImageClassifier
from litdesk_transformers.language_models import HFCausalLM, HFMaskedLM
from litdesk_transformers.token_classifier import HFTokenClassifier
from litdesk_transformers.weights import check_weights_fit, first_line, weight_files

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json",)

#: Files up to this size are hashed whole for the fingerprint; larger ones by size and mtime.
_HASH_WHOLE_LIMIT = 64 * 2**20
_FINGERPRINTED_SUFFIXES = {".json", ".txt", ".model", ".safetensors", ".bin"}


@dataclass(frozen=True)
class ModelKind:
    """A kind of model folder: the transformers auto class that loads it, the model that wraps it
    (called with the network, then the tokenizer or, for images, the image processor)."""

    description: str
    auto_class: str
    wrapper: Callable[..., Model]
    images: bool = False  # reads images (an image processor), not text (a tokenizer)


SEQUENCE_CLASSIFIER = ModelKind("sequence classifier", "AutoModelForSequenceClassification",
                                HFSequenceClassifier)
MULTI_LABEL_CLASSIFIER = ModelKind("multi-label classifier", "AutoModelForSequenceClassification",
                                   HFMultiLabelClassifier)
SEQUENCE_REGRESSOR = ModelKind("sequence regressor", "AutoModelForSequenceClassification",
                               HFSequenceRegressor)
TOKEN_CLASSIFIER = ModelKind("token classifier", "AutoModelForTokenClassification", HFTokenClassifier)
CAUSAL_LM = ModelKind("causal language model", "AutoModelForCausalLM", HFCausalLM)
MASKED_LM = ModelKind("masked language model", "AutoModelForMaskedLM", HFMaskedLM)
IMAGE_CLASSIFIER = ModelKind("image classifier", "AutoModelForImageClassification",
                             HFImageClassifier, images=True)

#: The kinds a ``*ForSequenceClassification`` architecture may be.
SEQUENCE_KINDS = (SEQUENCE_CLASSIFIER, MULTI_LABEL_CLASSIFIER, SEQUENCE_REGRESSOR)

#: How an architecture's name ends, and the kind that names (None: one of SEQUENCE_KINDS).
_ARCHITECTURE_ENDINGS: tuple[tuple[str, ModelKind | None], ...] = (
    ("ForSequenceClassification", None),
    ("ForTokenClassification", TOKEN_CLASSIFIER),
    ("ForCausalLM", CAUSAL_LM),
    ("LMHeadModel", CAUSAL_LM),
    ("ForMaskedLM", MASKED_LM),
    ("ForImageClassification", IMAGE_CLASSIFIER),
    ("ForImageClassificationWithTeacher", IMAGE_CLASSIFIER),  # DeiT, distilled
)


def _json_object(file: Path) -> dict:
    """The JSON object in ``file``; {} when the file is absent or unreadable."""
    try:
        settings = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return settings if isinstance(settings, dict) else {}


def read_config(folder: Path) -> dict:
    """The folder's config.json, checked to be a JSON object naming no custom code."""
    config = read_json_document(folder / "config.json")
    if not isinstance(config, dict):
        raise ModelLoadError(f"{folder}: config.json is not a JSON object")
    for name in ("config.json", "tokenizer_config.json", *IMAGE_PROCESSOR_FILES):
        settings = config if name == "config.json" else _json_object(folder / name)
        if "auto_map" in settings:
            raise ModelLoadError(f"{folder}: {name} names custom code (auto_map); "
                                 "litdesk does not run code shipped with a model")
    return config


def _sequence_kind(config: dict) -> ModelKind:
    id2label = config.get("id2label")
    n_labels = len(id2label) if isinstance(id2label, dict) and id2label else int(config.get("num_labels", 2))
    problem_type = config.get("problem_type")
    if problem_type == "multi_label_classification":
        return MULTI_LABEL_CLASSIFIER
    if problem_type == "regression" or (n_labels == 1 and problem_type is None):
        if n_labels != 1:
            raise ValueError(f"a regressor with {n_labels} outputs; litdesk reads regressors with one")
        return SEQUENCE_REGRESSOR
    return SEQUENCE_CLASSIFIER


def model_kind(config: dict) -> ModelKind:
    """The kind of model a config.json describes. Raises ValueError for a head litdesk cannot use.

    A config without ``architectures`` is read as a sequence classifier (or regressor).
    """
    architectures = [str(name) for name in config.get("architectures") or []]
    for architecture in architectures:
        for ending, kind in _ARCHITECTURE_ENDINGS:
            if architecture.endswith(ending):
                return kind or _sequence_kind(config)
    if architectures:
        raise ValueError(f"no head litdesk can use (architectures: {', '.join(architectures)}); "
                         "it loads sequence, token and image classifiers, regressors, "
                         "causal and masked language models")
    return _sequence_kind(config)


def _check_files(folder: Path, kind: ModelKind) -> None:
    weight_files(folder)  # raises for no weights, or pickled ones
    if kind.images:
        if not any((folder / name).is_file() for name in IMAGE_PROCESSOR_FILES):
            raise ModelLoadError(f"{folder}: no image processor configuration "
                                 f"({', '.join(IMAGE_PROCESSOR_FILES)})")
    elif not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")


def folder_fingerprint(folder: Path) -> str:
    """A hash of the folder's config, tokenizer and weight files (contents, or size+mtime if large)."""
    digest = hashlib.sha1(b"litdesk_transformers/1")
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


_LOADING = threading.Lock()


def load(path: Path, options: LoadOptions = LoadOptions(),
         kinds: Collection[ModelKind] | None = None) -> HFTextModel | HFImageClassifier:
    """Load the model saved in the folder ``path`` (or the folder of ``path``) as its kind.

    ``kinds``, if given, are the only kinds accepted; a folder of another kind is refused.
    """
    path = Path(path)
    folder = path.parent if path.is_file() else path
    config = read_config(folder)
    try:
        kind = model_kind(config)
    except ValueError as error:
        raise ModelLoadError(f"{folder}: {error}") from error
    if kinds is not None and kind not in kinds:
        wanted = " or ".join(accepted.description for accepted in kinds)
        raise ModelLoadError(f"{folder}: a {kind.description}, not a {wanted}")
    _check_files(folder, kind)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    # Hub kernels are code fetched from the Hub, which transformers would use by default.
    os.environ["USE_HUB_KERNELS"] = "NO"
    local_only = {"local_files_only": True, "trust_remote_code": False}
    # One load at a time: transformers resolves its classes lazily, and two threads doing so
    # at once (the demo's models load in parallel) can see a half-imported module.
    with _LOADING:
        import transformers

        transformers.utils.logging.disable_progress_bar()  # the app shows its own progress
        auto_class = getattr(transformers, kind.auto_class)
        try:
            network_config = transformers.AutoConfig.from_pretrained(folder, **local_only)
        except Exception as error:  # transformers raises many types; each becomes one message
            raise ModelLoadError(f"{folder}: {first_line(error)}") from error
        check_weights_fit(folder, auto_class, network_config, kind.description)
        try:
            preprocessor: Any = (
                transformers.AutoImageProcessor if kind.images
                else transformers.AutoTokenizer).from_pretrained(folder, **local_only)
            network, loading_info = auto_class.from_pretrained(
                folder, config=network_config, use_safetensors=True, output_loading_info=True,
                **local_only)
        except Exception as error:  # transformers raises many types; each becomes one message
            raise ModelLoadError(f"{folder}: {first_line(error)}") from error
    if loading_info.get("missing_keys"):
        missing = sorted(loading_info["missing_keys"])
        raise ModelLoadError(f"{folder}: the weights lack {len(missing)} tensor(s) of a "
                             f"{kind.description}, e.g. {missing[0]}")
    try:
        return kind.wrapper(network, preprocessor, name=folder.name, device=best_device(options.device),
                            fingerprint=folder_fingerprint(folder),
                            label_field=options.label or "label", precision=options.precision)
    except Exception as error:  # the probe forward pass failed: the model cannot be used
        raise ModelLoadError(f"{folder}: {first_line(error)}") from error
