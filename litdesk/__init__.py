"""litdesk: a native, offline desktop app to understand and compare ML models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

__version__ = "0.1.0"


def show(models: Optional[dict[str, Any]] = None, datasets: Optional[dict[str, Any]] = None,
         *, exit_when_ready: bool = False, screenshot: Optional[str | Path] = None,
         device: Optional[str] = None) -> int:
    """Open the litdesk window on these models and datasets and return when it closes.

    ``models`` and ``datasets`` map names to litdesk models and datasets, pandas DataFrames
    (datasets), or LIT 1.3.1 ``Model``/``Dataset`` objects. With neither, the built-in demo
    opens. ``exit_when_ready`` closes the window once every model has run (with a
    ``screenshot`` saved first), as the command line's ``--exit-when-ready`` does; the return
    value is the exit status (non-zero if any job failed).
    """
    from litdesk.core.objects import as_dataset, as_model
    from litdesk.ui.app import run_app

    ready_models = [as_model(obj, name) for name, obj in (models or {}).items()]
    ready_datasets = [as_dataset(obj, name) for name, obj in (datasets or {}).items()]
    return run_app([], device=device, exit_when_ready=exit_when_ready,
                   screenshot=Path(screenshot) if screenshot else None,
                   models=ready_models, datasets=ready_datasets)
