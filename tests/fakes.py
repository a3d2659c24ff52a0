"""Small, fast models for tests: deterministic, no torch."""

from __future__ import annotations

import time
import zlib

import numpy as np

import pyarrow as pa

from litdesk.api import (CategoryLabel, Dataset, Embeddings, Model, MulticlassPreds,
                         RegressionScore, Scalar, TextSegment, Tokens, TokenSalience)

LABELS = ("negative", "positive")
POSITIVE_WORDS = {"good", "great", "love", "fine", "excellent"}


class KeywordModel(Model):
    """Predicts 'positive' from positive keywords; embeddings from word hashes."""

    def __init__(self, name: str = "keywords", bias: float = 0.0) -> None:
        self.name = name
        self.bias = bias
        self.calls = 0

    def input_spec(self):
        return {"text": TextSegment(), "label": CategoryLabel(vocab=LABELS, required=False)}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=LABELS, parent="label"),
                "emb": Embeddings(), "tokens": Tokens(parent="text"),
                "token_salience": TokenSalience(align="tokens", signed=True)}

    def predict(self, inputs):
        self.calls += 1
        outputs = []
        for example in inputs:
            words = example["text"].lower().split()
            hits = np.array([1.0 if w.strip(".,!") in POSITIVE_WORDS else -0.2 for w in words])
            logit = float(hits.sum()) + self.bias
            p = 1 / (1 + np.exp(-logit))
            emb = np.zeros(8, dtype=np.float32)
            for word in words:
                emb[zlib.crc32(word.encode()) % 8] += 1
            outputs.append({"probas": np.array([1 - p, p], dtype=np.float32), "emb": emb,
                            "tokens": words, "token_salience": hits})
        return outputs


class SlowModel(KeywordModel):
    """A KeywordModel that sleeps per batch, like a model on a slow device."""

    def __init__(self, seconds_per_batch: float = 0.05, batch_size: int = 4) -> None:
        super().__init__("slow")
        self.seconds_per_batch = seconds_per_batch
        self.batch_size = batch_size

    def max_minibatch_size(self) -> int:
        return self.batch_size

    def predict(self, inputs):
        time.sleep(self.seconds_per_batch)
        return super().predict(inputs)


class LengthModel(Model):
    """A regressor: no classification output."""

    name = "lengths"

    def input_spec(self):
        return {"text": TextSegment()}

    def output_spec(self):
        return {"length": RegressionScore()}

    def predict(self, inputs):
        return [{"length": float(len(example["text"]))} for example in inputs]


WEIGHT_A, WEIGHT_B, BIAS = 1.5, -0.5, 0.25
COLOUR_SHIFT = {"red": 1.0, "blue": -1.0}


def logistic(a, b, colour):
    """What :class:`LogisticTabular` predicts, written out for the expected values."""
    shift = np.vectorize(COLOUR_SHIFT.get)(np.asarray(colour, dtype=object)).astype(float)
    return 1 / (1 + np.exp(-(WEIGHT_A * np.asarray(a) + WEIGHT_B * np.asarray(b) + BIAS + shift)))


class LogisticTabular(Model):
    """P(yes) = sigmoid(1.5 a - 0.5 b + 0.25 ± 1 for the colour); 4 examples a batch."""

    def __init__(self, name: str = "logistic", seconds_per_batch: float = 0.0) -> None:
        self.name = name
        self.seconds_per_batch = seconds_per_batch
        self.calls = 0

    def input_spec(self):
        return {"a": Scalar(), "b": Scalar(), "colour": CategoryLabel(vocab=("red", "blue")),
                "label": CategoryLabel(vocab=("no", "yes"), required=False)}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=("no", "yes"), parent="label")}

    def max_minibatch_size(self) -> int:
        return 4

    def predict(self, inputs):
        self.calls += 1
        time.sleep(self.seconds_per_batch)
        p = logistic([x["a"] for x in inputs], [x["b"] for x in inputs],
                     [x["colour"] for x in inputs])
        return [{"probas": np.array([1 - q, q])} for q in p]


def tabular_dataset(n: int = 30) -> Dataset:
    rng = np.random.default_rng(7)
    a = rng.normal(size=n)
    b = rng.integers(0, 10, size=n)
    colour = np.where(rng.random(n) < 0.5, "red", "blue")
    label = np.where(logistic(a, b, colour) > 0.5, "yes", "no")
    table = pa.table({"a": a, "b": b, "colour": colour, "label": label})
    spec = {"a": Scalar(), "b": Scalar(), "colour": CategoryLabel(vocab=("red", "blue")),
            "label": CategoryLabel(vocab=("no", "yes"))}
    return Dataset(table, spec, "tabular")
