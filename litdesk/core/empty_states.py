"""What a view says while it has nothing to show: what is happening, not an order to "load".

Qt-free, from the session alone, so that every dock words its empty state the same way:
no dataset yet, no model yet, models that do not fit the dataset, predictions on their way,
or open models of which none gives what the view needs (a classifier, a score).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from litdesk.api import Model, types
from litdesk.core.session import Session

#: What a view may need of a model: a classifier, or any score (class probability, regression).
NEEDS: dict[str, tuple[str, Callable[[Model], bool]]] = {
    "classifier": ("classifier", lambda model: types.first_spec_key(
        model.output_spec(), types.MulticlassPreds) is not None),
    "score": ("classifier or regressor", lambda model: any(
        isinstance(field, (types.MulticlassPreds, types.RegressionScore, types.Scalar))
        for field in model.output_spec().values())),
    "embeddings": ("model that outputs embeddings", lambda model: any(
        isinstance(field, types.Embeddings) for field in model.output_spec().values())),
}


def _names(names) -> str:
    return ", ".join(sorted(names))


def empty_state(session: Session, need: str, purpose: str,
                predictions: bool = True) -> Optional[str]:
    """Why a view that needs a ``need`` model (a key of :data:`NEEDS`) for ``purpose`` ("to
    see their metrics") shows nothing, or None when it has what it needs; a view that runs
    the models itself (``predictions`` False) does not wait for their predictions."""
    label, fits_need = NEEDS[need]
    dataset = session.dataset
    if dataset is None:
        return f"No dataset open: open one (File ▸ Open Dataset, or drop a file here) {purpose}."
    if not session.models:
        return f"No model open: open a {label} (File ▸ Open Model) {purpose}."
    fitting = session.fitting_models()
    if not fitting:
        return (f"None of the open models ({_names(session.models)}) fits {dataset.name}: "
                "the Models menu says why.")
    suited = {name for name, model in fitting.items() if fits_need(model)}
    if not suited:
        return f"No {label} among the open models ({_names(fitting)})."
    pending = [name for name in suited if predictions and name not in session.predictions]
    if pending:
        return f"predicting {_names(pending)}…"
    return None
