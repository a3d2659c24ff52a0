"""What every Hugging Face text model shares: tokenizing and padding a batch, one forward pass
(with a backward pass when the kind explains a score), and the outputs read from the encoder
itself (tokens, token gradients, per-layer embeddings, attention) with padding stripped.

torch is imported inside the methods that need it.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import re
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from litdesk.api import (
    AttentionHeads,
    Embeddings,
    Model,
    Spec,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
)
from litdesk.api.model import EmbeddedTexts, GradientTextModel, TokenSwapModel, TokenVocabulary

#: Texts are truncated to this many tokens (special tokens included).
MAX_LENGTH = 128

Example = dict[str, Any]
ScoredCandidates = list[tuple[str, float]]


#: Vocabulary entries that are placeholders or markers rather than text: [unused7], <0x0A>, <unk>.
PLACEHOLDER_TOKEN = re.compile(r"\[[^\]]*\]|<[^>]*>")

#: LoadOptions.precision -> the torch dtype name autocast runs in (None: full precision).
AUTOCAST_TYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`AUTOCAST_TYPES`, else ValueError."""
    if precision not in AUTOCAST_TYPES:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(AUTOCAST_TYPES)}")
    return precision


def autocast(precision: str, device: str) -> Any:
    """Mixed precision on ``device`` for ``precision`` ("bf16", "fp16"); nothing for "fp32"."""
    import torch

    dtype = AUTOCAST_TYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))


def prepared_network(network: Any, device: str) -> Any:
    """``network`` in evaluation mode without parameter gradients, on ``device`` (in full
    precision on the CPU, where half precision is slow or missing)."""
    network.eval().requires_grad_(False)
    if device == "cpu":
        network.float()
    return network.to(device)


def to_numpy(tensor: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor, detached and on the CPU."""
    return tensor.detach().float().cpu().numpy()


def top_candidates(logits: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the last axis of ``logits``; the ``k`` largest probabilities, most likely
    first, and their indices (numpy arrays of shape [..., k])."""
    import torch

    probabilities = torch.softmax(logits.detach().float(), dim=-1)
    values, indices = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    return values.cpu().numpy(), indices.cpu().numpy()


def ranked(names: Sequence[str], probabilities: np.ndarray) -> ScoredCandidates:
    """(name, probability) pairs in the given order, probabilities as Python floats."""
    return [(name, float(probability)) for name, probability in zip(names, probabilities)]


@dataclass
class Batch:
    """A tokenized batch, right-padded.

    ``inputs`` holds what the network takes (``input_ids``, ``attention_mask``, …); ``kept`` lists,
    per example, the positions of its real tokens, and ``tokens`` those tokens as strings.
    """

    inputs: dict[str, Any]
    mask: Any  # bool tensor, batch × positions
    kept: list[np.ndarray]
    tokenizer: Any

    @functools.cached_property
    def tokens(self) -> list[list[str]]:
        """Each example's real tokens as strings (made only when asked for)."""
        ids = self.inputs["input_ids"].cpu().numpy()
        return [self.tokenizer.convert_ids_to_tokens(ids[row, positions].tolist())
                for row, positions in enumerate(self.kept)]

    @property
    def input_ids(self) -> Any:
        return self.inputs["input_ids"]


class HFTextModel(Model, GradientTextModel, TokenSwapModel):
    """A transformers model with its tokenizer, reading the field ``text``.

    A kind of model (classifier, language model…) defines :meth:`task_spec` and
    :meth:`task_outputs`; if it sets ``has_gradients`` it also defines :meth:`explained_scores`,
    and its outputs carry the input token embeddings and the gradient of that score with respect
    to them. Every kind outputs the tokens, the mean-pooled embedding after each layer
    (``layer_0`` is the embedding layer) and each layer's attention. Predictions run one batch at a
    time: the fast tokenizer's padding state is shared, and it bounds device memory.
    """

    #: Output ``cls_emb``: the last layer's state at the first token.
    has_cls_embedding = False
    #: Output ``token_embs`` and ``token_grad_text``, the gradient of :meth:`explained_scores`.
    has_gradients = False
    #: The largest batch :meth:`predict` should receive.
    batch_size = 32

    def __init__(self, network: Any, tokenizer: Any, name: str, device: str = "cpu",
                 fingerprint: str | None = None, label_field: str = "label",
                 precision: str = "fp32") -> None:
        self.precision = check_precision(precision)
        self.name = name
        self.label_field = label_field  # the input field holding gold labels, for kinds that read one
        self.tokenizer = tokenizer
        self.device = device
        config = network.config
        if tokenizer.pad_token is None:  # GPT-style tokenizers: any token will do under the mask
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if tokenizer.pad_token is None:
                raise ValueError("the tokenizer has no padding, end or unknown token to pad with")
        if getattr(config, "pad_token_id", None) is None:  # heads that pool the last real token
            config.pad_token_id = tokenizer.pad_token_id
        self.network = prepared_network(network, device)
        self.max_positions: int | None = getattr(config, "max_position_embeddings", None)
        self.max_length = min(MAX_LENGTH, tokenizer.model_max_length, self.max_positions or MAX_LENGTH)
        self._folder_fingerprint = fingerprint or name
        self._lock = threading.Lock()
        self._fast_attention = config._attn_implementation  # what transformers chose (sdpa…)
        self._backends: dict[str, Any] = {}  # padding side -> configured Rust tokenizer
        self._n_hidden_states, self._n_attentions = self._probe_layers()

    def _autocast(self) -> Any:
        """Mixed precision for the forward pass when asked for (``precision``), else nothing."""
        return autocast(self.precision, self.device)

    def _use_attention_implementation(self, implementation: str) -> None:
        if self.network.config._attn_implementation != implementation:
            self.network.set_attn_implementation(implementation)

    def _probe_layers(self) -> tuple[int, int]:
        """How many hidden states and attention maps the architecture returns."""
        import torch

        self._use_attention_implementation("eager")
        with torch.inference_mode():
            out = self.network(**self.encode(["a"]).inputs, output_hidden_states=True,
                               output_attentions=True)
        if not out.hidden_states:
            raise ValueError("the model does not return hidden states")
        return len(out.hidden_states), len(out.attentions or ())

    # --- What a kind defines ----------------------------------------------------------------

    @abc.abstractmethod
    def task_spec(self) -> Spec:
        """The fields of the model's own head (probabilities, scores, predicted tokens…)."""

    @abc.abstractmethod
    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        """One dict of :meth:`task_spec` fields per example, from the network's output ``out``;
        a field missing from ``fields`` may be left out when it costs work of its own."""

    def explained_scores(self, out: Any, batch: Batch, inputs: Sequence[Example]) -> Any:
        """One differentiable score per example (a tensor of shape [batch]) to take gradients of.

        Kinds that set ``has_gradients`` define it; the others are never asked."""
        raise TypeError(f"{type(self).__name__} has no gradients")

    def output_settings(self) -> dict[str, Any]:
        """Attributes a user may change that change the outputs (part of the fingerprint)."""
        return {}

    def gradient_targets(self) -> tuple[str, ...]:
        """The logit columns gradient attribution explains; kinds with a head to explain say
        which, and :meth:`logits_from_embeddings` returns ``out.logits`` for them."""
        return ()

    # --- Gradient attribution (GradientTextModel) ----------------------------------------------

    def embed_texts(self, texts: Sequence[str]) -> EmbeddedTexts:
        import torch

        with self._lock:
            batch = self.encode(texts)
        ids = batch.input_ids
        embedding = self.network.get_input_embeddings()
        special = torch.isin(ids, torch.tensor(self.tokenizer.all_special_ids, device=ids.device))
        replaced = batch.mask & ~special
        with torch.no_grad():  # not inference_mode: attribution takes gradients through these
            embeddings = embedding(ids)
            pad = embedding(torch.full_like(ids[:1, :1], self.tokenizer.pad_token_id))
        baseline = torch.where(replaced[..., None], pad, embeddings)
        forward_args = tuple(batch.inputs[name] for name in ("attention_mask", "token_type_ids")
                             if name in batch.inputs)
        return EmbeddedTexts(embeddings, baseline, forward_args, batch.tokens, batch.kept)

    def logits_from_embeddings(self, embeddings: Any, attention_mask: Any,
                               token_type_ids: Any = None) -> Any:
        import torch

        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        with self._lock:
            self._use_attention_implementation(self._fast_attention)
            with torch.inference_mode(False), self._autocast():
                out = self.network(inputs_embeds=embeddings, attention_mask=attention_mask,
                                   **extra)
        return out.logits.float()

    def token_vocabulary(self) -> TokenVocabulary | None:
        """The input embedding table; None with a slow tokenizer, which has no token offsets for
        :meth:`replace_tokens`."""
        return self._vocabulary if self.tokenizer.is_fast else None

    @functools.cached_property
    def _vocabulary(self) -> TokenVocabulary:
        table = self.network.get_input_embeddings().weight.detach()
        tokens = [token or "" for token in
                  self.tokenizer.convert_ids_to_tokens(list(range(table.shape[0])))]
        special = set(self.tokenizer.all_special_ids)
        swappable = [i for i, token in enumerate(tokens) if token and i not in special
                     and not PLACEHOLDER_TOKEN.fullmatch(token)]
        prefix = getattr(self.tokenizer.backend_tokenizer.model, "continuing_subword_prefix",
                         None)
        continuation = [token.startswith(prefix) for token in tokens] if prefix else []
        return TokenVocabulary(table, tokens, swappable, continuation)

    def replace_tokens(self, text: str, replacements: Mapping[int, int]) -> str:
        """Each replaced token's characters in ``text`` (its offsets) give way to the new token's
        text; the rest of ``text`` is kept as it is."""
        with self._lock:
            offsets = self._backend_tokenizer("right").encode(text).offsets
        prefix = getattr(self.tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None)
        for position in sorted(replacements, reverse=True):
            piece = self.tokenizer.convert_tokens_to_string(
                [self._vocabulary.tokens[replacements[position]]]).strip()
            if prefix and piece.startswith(prefix):
                piece = piece[len(prefix):]
            start, end = offsets[position]
            text = text[:start] + piece + text[end:]
        return text

    # --- The Model contract -----------------------------------------------------------------

    def input_spec(self) -> Spec:
        return {"text": TextSegment()}

    def output_spec(self) -> Spec:
        spec = self.task_spec()
        spec["tokens"] = Tokens(parent="text")
        if self.has_cls_embedding:
            spec["cls_emb"] = Embeddings()
        if self.has_gradients:
            spec["token_grad_text"] = TokenGradients(align="tokens", grad_for="token_embs")
            spec["token_embs"] = TokenEmbeddings(align="tokens")
        for layer in range(self._n_hidden_states):
            spec[f"layer_{layer}/avg_emb"] = Embeddings()
        for layer in range(1, self._n_attentions + 1):
            spec[f"layer_{layer}/attention"] = AttentionHeads(align_in="tokens", align_out="tokens")
        return spec

    def max_minibatch_size(self) -> int:
        return self.batch_size

    def fingerprint(self) -> str:
        settings = "".join(f";{key}={value}" for key, value in
                           {**self.output_settings(), "precision": self.precision}.items())
        return f"{type(self).__qualname__}:{self._folder_fingerprint}{settings}"

    def predict(self, inputs: Sequence[Example]) -> list[dict[str, Any]]:
        return self.predict_fields(inputs, self.output_spec().keys())

    def predict_fields(self, inputs: Sequence[Example], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        """Predict, skipping gradients, attention and generation when ``fields`` lacks them."""
        import torch

        if not inputs:
            return []
        fields = set(fields)
        gradients = self.has_gradients and bool(fields & {"token_grad_text", "token_embs"})
        attention = any(name.endswith("/attention") for name in fields)
        with self._lock:
            batch = self.encode([str(example.get("text") or "") for example in inputs])
            out, token_embs = self._forward(batch, inputs, gradients, attention)
            with torch.inference_mode():
                results = self.task_outputs(out, batch, inputs, fields)
                internals = self._internal_outputs(out, batch, token_embs, fields)
            for result, internal in zip(results, internals):
                result.update(internal)
            return results

    # --- Shared machinery -------------------------------------------------------------------

    def encode(self, texts: Sequence[str], padding_side: str = "right") -> Batch:
        """Tokenize, truncate to ``max_length`` and pad ``texts`` into a batch on the device.

        A text that yields no tokens (an empty text, for a tokenizer that adds no special tokens)
        is read as the tokenizer's start token (else its end, unknown or padding token).
        """
        texts = list(texts)
        encoded = self._tokenize(texts, padding_side)
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        if 0 in lengths:
            tokenizer = self.tokenizer
            stand_in = tokenizer.bos_token or tokenizer.eos_token or tokenizer.unk_token or tokenizer.pad_token
            encoded = self._tokenize([text if length else stand_in
                                      for text, length in zip(texts, lengths)], padding_side)
        mask = encoded["attention_mask"].bool()
        kept = [np.flatnonzero(row) for row in mask.cpu().numpy()]
        return Batch(dict(encoded), mask, kept, self.tokenizer)

    def _tokenize(self, texts: list[str], padding_side: str) -> dict[str, Any]:
        """The network's inputs for ``texts``, padded on ``padding_side``, on the device.

        Fast tokenizers are driven directly (their Rust ``encode_batch``): the same ids as the
        transformers wrapper, without its per-token Python work, which costs as much as the
        forward pass of a small model.
        """
        import torch

        backend = self._backend_tokenizer(padding_side)
        if backend is None:
            self.tokenizer.padding_side = padding_side  # no call argument before transformers 4.45
            return dict(self.tokenizer(texts, padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                        .to(self.device))
        encodings = backend.encode_batch(texts)
        columns = {"input_ids": [e.ids for e in encodings],
                   "attention_mask": [e.attention_mask for e in encodings]}
        if "token_type_ids" in self.tokenizer.model_input_names:
            columns["token_type_ids"] = [e.type_ids for e in encodings]
        return {name: torch.from_numpy(np.asarray(values, dtype=np.int64)).to(self.device)
                for name, values in columns.items()}

    def _backend_tokenizer(self, padding_side: str) -> Any:
        """A copy of the fast tokenizer's Rust tokenizer set to truncate and pad like
        ``tokenizer(..., padding=True, truncation=True)``; None for slow tokenizers."""
        if padding_side not in self._backends:
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is not None:
                from tokenizers import Tokenizer

                backend = Tokenizer.from_str(backend.to_str())
                backend.enable_truncation(self.max_length)
                backend.enable_padding(direction=padding_side, pad_id=self.tokenizer.pad_token_id,
                                       pad_type_id=self.tokenizer.pad_token_type_id,
                                       pad_token=self.tokenizer.pad_token)
            self._backends[padding_side] = backend
        return self._backends[padding_side]

    def _forward(self, batch: Batch, inputs: Sequence[Example], gradients: bool,
                 attention: bool) -> tuple[Any, Any]:
        """The network's output for ``batch``, and the input token embeddings holding the gradient
        of :meth:`explained_scores` (None when ``gradients`` is False)."""
        import torch

        attention = attention and self._n_attentions > 0
        # Fused attention kernels are faster but return no weights: use the plain ("eager")
        # implementation only for the batches whose attention is asked for.
        self._use_attention_implementation("eager" if attention else self._fast_attention)
        options = {"output_hidden_states": True, "output_attentions": attention}
        if not gradients:
            with torch.inference_mode(), self._autocast():
                return self.network(**batch.inputs, **options), None
        # The embedding layer's output is swapped for a leaf tensor, so that the network runs from
        # input ids exactly as usual (position ids, last-token pooling) and the leaf gets the gradient.
        captured = []

        def capture(_module: Any, _args: Any, output: Any) -> Any:
            captured.append(output.detach().requires_grad_(True))
            return captured[-1]

        # Gradients are needed even if the caller runs under inference_mode or no_grad.
        with torch.inference_mode(False), torch.enable_grad():
            hook = self.network.get_input_embeddings().register_forward_hook(capture)
            try:
                with self._autocast():
                    out = self.network(**batch.inputs, **options)
            finally:
                hook.remove()
            self.explained_scores(out, batch, inputs).sum().backward()
        (token_embs,) = captured
        return out, token_embs

    def _internal_outputs(self, out: Any, batch: Batch, token_embs: Any,
                          fields: Collection[str]) -> list[dict[str, Any]]:
        """Per example: tokens, embeddings, gradients and attention, padding stripped."""
        hidden_states = out.hidden_states
        weights = batch.mask.unsqueeze(-1).to(hidden_states[-1].dtype)
        avg_embs = {layer: to_numpy((state * weights).sum(1) / weights.sum(1))
                    for layer, state in enumerate(hidden_states)
                    if f"layer_{layer}/avg_emb" in fields}
        attentions = [to_numpy(attention) for attention in out.attentions or ()]
        last_layer = to_numpy(hidden_states[-1]) \
            if self.has_cls_embedding and "cls_emb" in fields else None
        if token_embs is not None:
            embs, grads = to_numpy(token_embs), to_numpy(token_embs.grad)
        # Copies, not views: a cached result must not keep its whole batch alive.
        results = []
        for row, kept in enumerate(batch.kept):
            result: dict[str, Any] = {"tokens": batch.tokens[row]} if "tokens" in fields else {}
            if last_layer is not None:
                result["cls_emb"] = last_layer[row, kept[0]].copy()
            if token_embs is not None:
                result["token_grad_text"] = grads[row, kept]
                result["token_embs"] = embs[row, kept]
            for layer, avg_emb in avg_embs.items():
                result[f"layer_{layer}/avg_emb"] = avg_emb[row].copy()
            for layer, attention in enumerate(attentions, start=1):
                result[f"layer_{layer}/attention"] = attention[row][:, kept][:, :, kept]
            results.append(result)
        return results


class HFLabelledModel(HFTextModel):
    """A model whose head has one output per label of its config; ``labels`` names them in order."""

    def __init__(self, network: Any, *args: Any, **kwargs: Any) -> None:
        config = network.config
        self.labels = tuple(str(config.id2label[i]) for i in range(config.num_labels))
        super().__init__(network, *args, **kwargs)
