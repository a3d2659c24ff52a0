"""A tiny torch text model with gradients, shared by the explanation and generator tests."""

from __future__ import annotations

import numpy as np
import torch

from litdesk.api import Model, MulticlassPreds, TextSegment
from litdesk.api.model import EmbeddedTexts, GradientTextModel

VOCAB = ["<pad>", "the", "film", "was", "great", "dull", "not", "at", "all"]
LABELS = ("negative", "positive")


class TinyTextModel(Model, GradientTextModel):
    """Word embeddings (width 3) summed under the mask into two logits, linearly or through
    tanh; what the gradient methods see of a transformer, small enough to check by hand."""

    def __init__(self, linear: bool, batch_size: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.table = torch.randn(len(VOCAB), 3, generator=generator, dtype=torch.float64)
        self.weights = torch.randn(3, 2, generator=generator, dtype=torch.float64)
        self.linear = linear
        self.batch_size = batch_size
        self.name = "tiny-linear" if linear else "tiny-tanh"
        self.embedded_batches: list[int] = []

    def input_spec(self):
        return {"text": TextSegment()}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=LABELS)}

    def max_minibatch_size(self):
        return self.batch_size

    def gradient_targets(self):
        return LABELS

    def embed_texts(self, texts):
        self.embedded_batches.append(len(texts))
        words = [text.split() for text in texts]
        width = max(len(w) for w in words)
        ids = torch.zeros(len(texts), width, dtype=torch.long)
        for row, row_words in enumerate(words):
            ids[row, :len(row_words)] = torch.tensor([VOCAB.index(w) for w in row_words])
        mask = ids > 0
        embeddings = self.table[ids]
        baseline = torch.where(mask[..., None], self.table[0], embeddings)
        return EmbeddedTexts(embeddings, baseline, (mask,), words,
                             [np.arange(len(w)) for w in words])

    def logits_from_embeddings(self, embeddings, mask):
        projected = embeddings @ self.weights
        if not self.linear:
            projected = torch.tanh(projected)
        return (projected * mask[..., None]).sum(dim=1)

    def predict(self, inputs):
        batch = self.embed_texts([example["text"] for example in inputs])
        with torch.no_grad():
            probas = torch.softmax(self.logits_from_embeddings(batch.embeddings, *batch.forward_args), -1)
        return [{"probas": row.numpy()} for row in probas]
