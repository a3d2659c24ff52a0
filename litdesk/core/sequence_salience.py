"""Sequence salience for causal language models: which tokens of a text drove a target span.

The text is a prompt followed by a target (a generated continuation, or the rest of a row's
text); the target span is a range of its characters. The score of each token before the span is
the gradient of the span's log-probability (the sum of log p(token | tokens before it) over the
span's tokens) with respect to that token's input embedding, taken by Captum: dotted with the
embedding (gradient × input, signed) or as its L2 norm (unsigned). Scores are summed into words
or sentences on request. torch and captum are imported inside the functions that need them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from litdesk.api import Model, types
from litdesk.api.model import SequenceGradientModel
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.jobs import Job, Progress
from litdesk.core.outputs import predict_example
from litdesk.core.tokens import token_labels

#: Method key -> (label, signed).
METHODS: Mapping[str, tuple[str, bool]] = {
    "grad_dot_input": ("Gradient × input", True),
    "grad_l2": ("Gradient L2 norm", False),
}
GRANULARITIES = ("token", "word", "sentence")
#: Where one sentence ends and the next begins: end punctuation, then white space.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class SequenceSalience:
    """The salience of each token of ``text`` before the target span for that span.

    ``scores[i]`` belongs to ``tokens[i]`` for i < ``target_first``; the target's tokens are
    ``target_first``..``target_end`` - 1 (``target_end`` may fall short of the target's last
    character when the text was truncated). ``top_k[i]`` lists the model's most likely tokens
    to follow ``tokens[i]``, as (token, probability) pairs.
    """

    model_name: str
    method: str
    text: str
    tokens: tuple[str, ...]
    offsets: np.ndarray
    scores: np.ndarray
    target_first: int
    target_end: int
    top_k: tuple[tuple[tuple[str, float], ...], ...] = ()

    @property
    def signed(self) -> bool:
        return METHODS[self.method][1]

    def token_text(self, index: int) -> str:
        """Token ``index`` as it reads in the text; a token without characters of its own (white
        space the offsets leave out, a special token) by its readable label."""
        start, end = self.offsets[index]
        if end > start:
            return self.text[start:end]
        return token_labels([self.tokens[index]])[0]


@dataclass(frozen=True)
class Segments:
    """Tokens grouped at one granularity: ``group[i]`` is token i's segment (-1: none, for
    special tokens outside words and sentences), ``spans`` each segment's characters and
    ``scores`` the sum of its tokens' scores."""

    group: np.ndarray
    spans: tuple[tuple[int, int], ...]
    scores: np.ndarray


def supports_sequence_salience(model: Model) -> bool:
    """Whether ``model`` is a causal LM that sequence salience can explain."""
    return isinstance(model, SequenceGradientModel) and \
        types.first_spec_key(model.output_spec(), types.GeneratedText) is not None


def _spans(text: str, granularity: str) -> list[tuple[int, int]]:
    if granularity == "word":
        return [match.span() for match in _WORD.finditer(text)]
    starts = [0] + [match.end() for match in _SENTENCE_BREAK.finditer(text)]
    ends = [match.start() for match in _SENTENCE_BREAK.finditer(text)] + [len(text.rstrip())]
    return [(start, end) for start, end in zip(starts, ends) if end > start]


def segments(salience: SequenceSalience, granularity: str) -> Segments:
    """The context tokens' scores summed per token, word (white-space separated) or sentence.

    A token belongs to the word or sentence holding its first character."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    context = salience.offsets[:len(salience.scores)]
    if granularity == "token":
        return Segments(np.arange(len(context)), tuple(map(tuple, context.tolist())),
                        salience.scores.copy())
    spans = _spans(salience.text, granularity)
    ends = np.asarray([end for _, end in spans], dtype=np.int64)
    group = np.searchsorted(ends, context[:, 0], side="right")
    group[(context[:, 1] <= context[:, 0]) | (group >= len(spans))] = -1
    used = group >= 0
    scores = np.bincount(group[used], weights=salience.scores[used], minlength=len(spans))
    return Segments(group, tuple(spans), scores)


def _token_scores(model: SequenceGradientModel, embedded: EmbeddedSequence, first: int,
                  end: int, method: str) -> np.ndarray:
    from captum.attr import InputXGradient, Saliency

    embeddings = embedded.embeddings.detach().requires_grad_()
    forward_args = (embedded.token_ids, first, end)
    if method == "grad_dot_input":
        attributions = InputXGradient(model.span_log_probability).attribute(
            embeddings, additional_forward_args=forward_args).sum(dim=-1)
    else:
        attributions = Saliency(model.span_log_probability).attribute(
            embeddings, additional_forward_args=forward_args, abs=False).norm(dim=-1)
    return attributions[0, :first].detach().double().cpu().numpy()


def _target_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """The first token and one past the last token whose characters lie in [start, end)."""
    inside = np.flatnonzero((offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] >= start)
                            & (offsets[:, 0] < end))
    if len(inside) == 0:
        raise ValueError("the target span holds no token (is the text truncated before it?)")
    return int(inside[0]), int(inside[-1]) + 1


def sequence_salience_job(model: Model, text: str, target_start: int, target_end: int,
                          method: str = "grad_dot_input", cache: ResultCache | None = None
                          ) -> Job[SequenceSalience]:
    """The salience of the tokens of ``text`` before its characters [target_start, target_end)
    for their log-probability, and the model's top-k next tokens at each position. Cached under
    ("sequence_salience", model fingerprint, text, span, method)."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if not supports_sequence_salience(model):
        raise ValueError(f"{model.name} is not a causal language model with gradients")
    if not 0 < target_start < target_end <= len(text):
        raise ValueError("the target must be a non-empty span of the text after its first character")
    yield Progress(0, 2, f"{model.name}: sequence salience")
    key = result_key("sequence_salience", model.fingerprint(), {"text": text},
                     {"target": [target_start, target_end], "method": method})
    cached = cache.get_many([key]).get(key) if cache is not None else None
    if cached is None:
        embedded = model.embed_sequence(text)  # type: ignore[attr-defined]
        first, end = _target_tokens(embedded.offsets, target_start, target_end)
        if first == 0:
            raise ValueError("the target starts at the text's first token: nothing comes before it")
        cached = {"tokens": list(embedded.tokens), "offsets": embedded.offsets,
                  "scores": _token_scores(model, embedded, first, end, method),  # type: ignore[arg-type]
                  "target": np.asarray([first, end])}
        if cache is not None:
            cache.put_many([(key, cached)])
    yield Progress(1, 2)
    preds = types.first_spec_key(model.output_spec(), types.TokenTopKPreds)
    top_k = predict_example(model, {"text": text}, [preds], "outputs", cache)[preds]
    yield Progress(2, 2)
    first, end = (int(value) for value in cached["target"])
    return SequenceSalience(
        model.name, method, text, tuple(cached["tokens"]), np.asarray(cached["offsets"]),
        np.asarray(cached["scores"], dtype=np.float64), first, end,
        tuple(tuple((str(name), float(p)) for name, p in position) for position in top_k))


def continuation_job(model: Model, prompt: str, cache: ResultCache | None = None) -> Job[str]:
    """The model's greedy continuation of ``prompt`` (its ``generated_text`` output), cached."""
    field = types.first_spec_key(model.output_spec(), types.GeneratedText)
    if field is None:
        raise ValueError(f"{model.name} generates no text")
    yield Progress(0, 1, f"{model.name}: generating")
    continuation = predict_example(model, {"text": prompt}, [field], "outputs", cache)[field]
    yield Progress(1, 1)
    return str(continuation)
