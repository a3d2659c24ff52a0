"""Token-level heads: ``*ForTokenClassification`` models (named entities, part-of-speech tags…)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from litdesk.api import Spec, TokenTopKPreds
from litdesk_transformers.base import Batch, Example, HFLabelledModel, ranked, top_candidates


class HFTokenClassifier(HFLabelledModel):
    """A ``*ForTokenClassification`` model: a label per token.

    ``tag_probas`` is aligned to ``tokens`` (special tokens included): for each token, every label
    with its probability, most likely first, so ``tag_probas[i][0][0]`` is token i's predicted tag.
    """

    def task_spec(self) -> Spec:
        return {"tag_probas": TokenTopKPreds(align="tokens")}

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        probabilities, label_ids = top_candidates(out.logits, len(self.labels))
        return [{"tag_probas": [ranked([self.labels[i] for i in label_ids[row, position]],
                                       probabilities[row, position]) for position in kept]}
                for row, kept in enumerate(batch.kept)]
