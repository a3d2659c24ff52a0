"""Small, fast models for tests: deterministic, no torch."""

from __future__ import annotations

import time
import zlib

import numpy as np

from litdesk.api import (CategoryLabel, Embeddings, Model, MulticlassPreds, TextSegment, Tokens,
                         TokenSalience)

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
