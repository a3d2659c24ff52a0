"""Sequence-level heads: single-label classifiers, multi-label classifiers and regressors.

Each outputs, besides its head's fields, the tokens, the [CLS] embedding, per-layer embeddings,
attention, and the input token embeddings with the gradient of the explained score (see
:class:`~litdesk_transformers.base.HFTextModel`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from litdesk.api import (
    CategoryLabel,
    LoadOptions,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    Spec,
)
from litdesk_transformers.base import Batch, Example, HFLabelledModel, HFTextModel, to_numpy


class HFSequenceClassifier(HFLabelledModel):
    """A ``*ForSequenceClassification`` model with one label per text.

    ``probas`` holds the class probabilities. Gradients are those of the gold label's logit when
    the example has one (in ``label_field``), else of the predicted class's.
    """

    has_cls_embedding = True
    has_gradients = True

    def input_spec(self) -> Spec:
        return {**super().input_spec(),
                self.label_field: CategoryLabel(vocab=self.labels, required=False)}

    def task_spec(self) -> Spec:
        return {"probas": MulticlassPreds(vocab=self.labels, parent=self.label_field)}

    def gradient_targets(self) -> tuple[str, ...]:
        return self.labels

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        import torch

        probas = to_numpy(torch.softmax(out.logits.float(), dim=-1))
        return [{"probas": row} for row in probas]

    def explained_scores(self, out: Any, batch: Batch, inputs: Sequence[Example]) -> Any:
        targets = out.logits.detach().argmax(dim=-1)
        for row, example in enumerate(inputs):
            if example.get(self.label_field) in self.labels:
                targets[row] = self.labels.index(example[self.label_field])
        return out.logits.gather(1, targets[:, None])[:, 0]


class HFMultiLabelClassifier(HFLabelledModel):
    """A ``*ForSequenceClassification`` model whose labels are independent (problem type
    ``multi_label_classification``): ``probas/<label>`` is the sigmoid probability of each label.
    Gradients are those of the most probable label's logit.
    """

    has_cls_embedding = True
    has_gradients = True

    def task_spec(self) -> Spec:
        return {f"probas/{label}": Scalar(min_val=0.0, max_val=1.0) for label in self.labels}

    def gradient_targets(self) -> tuple[str, ...]:
        return self.labels

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        probas = to_numpy(out.logits.float().sigmoid())
        return [{f"probas/{label}": float(value) for label, value in zip(self.labels, row)}
                for row in probas]

    def explained_scores(self, out: Any, batch: Batch, inputs: Sequence[Example]) -> Any:
        return out.logits.max(dim=-1).values


class HFSequenceRegressor(HFTextModel):
    """A ``*ForSequenceClassification`` model with one output (problem type ``regression``):
    ``score`` is that output, its gold value in ``label_field``. Gradients are those of the score.
    """

    has_cls_embedding = True
    has_gradients = True

    def task_spec(self) -> Spec:
        return {"score": RegressionScore(parent=self.label_field)}

    def gradient_targets(self) -> tuple[str, ...]:
        return ("",)

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        return [{"score": float(value)} for value in to_numpy(out.logits[:, 0])]

    def explained_scores(self, out: Any, batch: Batch, inputs: Sequence[Example]) -> Any:
        return out.logits[:, 0]


def load(path: Path, options: LoadOptions = LoadOptions()) -> HFTextModel:
    """Load the sequence classifier or regressor saved in the folder ``path`` (or the folder of
    ``path``); a folder holding any other kind of model is refused."""
    from litdesk_transformers import loader

    return loader.load(path, options, kinds=loader.SEQUENCE_KINDS)
