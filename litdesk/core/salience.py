"""Per-example token salience from a model's own outputs (gradients or token scores)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import Job, Progress
from litdesk.core.outputs import predict_example, unlabelled_example


@dataclass(frozen=True)
class TokenScores:
    """Tokens and one score each; ``signed`` scores may be negative."""

    model_name: str
    method: str
    tokens: tuple[str, ...]
    scores: np.ndarray
    signed: bool
    predicted: str = ""


def gradient_norm(gradients: np.ndarray) -> np.ndarray:
    """LIT's GradientNorm: the L2 norm of each token's gradient, normalised to sum 1."""
    norms = np.linalg.norm(np.asarray(gradients, dtype=np.float64), axis=-1)
    total = norms.sum()
    return norms / total if total > 0 else norms


def supports_salience(model: Model) -> bool:
    """Whether the model outputs token gradients or token salience."""
    return any(isinstance(t, (types.TokenGradients, types.TokenSalience))
               for t in model.output_spec().values())


def salience_job(model: Model, dataset: Dataset, row: int,
                 cache: ResultCache | None = None) -> Job[list[TokenScores]]:
    """Token scores for one row: gradient L2 norm and/or the model's own token salience."""
    yield Progress(0, 1, f"{model.name}: salience for row {row}")
    spec = model.output_spec()
    example = unlabelled_example(model, dataset, row)
    used = [name for name, t in spec.items()
            if isinstance(t, (types.MulticlassPreds, types.Tokens, types.TokenGradients,
                              types.TokenSalience))]
    output = predict_example(model, example, used, "salience", cache)
    predicted = ""
    preds_field = next((n for n, t in spec.items() if isinstance(t, types.MulticlassPreds)), None)
    if preds_field is not None:
        vocab = spec[preds_field].vocab  # type: ignore[attr-defined]
        predicted = vocab[int(np.argmax(output[preds_field]))]
    results = []
    for name, field_type in spec.items():
        if isinstance(field_type, types.TokenGradients) and field_type.align:
            results.append(TokenScores(model.name, "Gradient L2", tuple(output[field_type.align]),
                                       gradient_norm(output[name]), False, predicted))
        elif isinstance(field_type, types.TokenSalience) and field_type.align:
            results.append(TokenScores(model.name, "Gradient × input",
                                       tuple(output[field_type.align]),
                                       np.asarray(output[name], dtype=np.float64),
                                       field_type.signed, predicted))
    yield Progress(1, 1)
    return results
