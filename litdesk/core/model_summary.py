"""What kind of model a model is, told from its specs (for ``litdesk inspect`` and the UI)."""

from __future__ import annotations

from litdesk.api import Model, types
from litdesk.core.metrics import CLASSIFICATION, GENERATION, MULTILABEL, REGRESSION, metric_output

_KINDS = {CLASSIFICATION: "classifier", REGRESSION: "regressor",
          MULTILABEL: "multi-label classifier", GENERATION: "language model (generates text)"}


def model_kind(model: Model) -> str:
    """A few words for what ``model`` does: "text classifier", "tabular regressor", …"""
    outputs, inputs = model.output_spec(), model.input_spec()
    family = metric_output(outputs)
    if family is None:
        if types.first_spec_key(outputs, types.TokenTopKPreds) is not None:
            return "token-level model (predictions per token: a masked language model or a " \
                   "token classifier)"
        if types.first_spec_key(outputs, types.Embeddings) is not None:
            return "embedding model"
        return "model"
    kind = _KINDS[family[0]]
    if family[0] == GENERATION:
        return kind
    if types.first_spec_key(inputs, (types.ImageBytes, types.ImagePath)) is not None:
        return f"image {kind}"
    if types.first_spec_key(inputs, types.TextSegment) is not None:
        return f"text {kind}"
    return f"tabular {kind}"


def model_labels(model: Model) -> tuple[str, ...]:
    """The labels a classifier predicts (its first classification output's vocabulary)."""
    name = types.first_spec_key(model.output_spec(), types.MulticlassPreds)
    return tuple(getattr(model.output_spec()[name], "vocab", None) or ()) if name else ()
