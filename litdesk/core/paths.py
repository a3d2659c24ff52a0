"""Where litdesk keeps its files: platformdirs folders, or $LITDESK_HOME when set (tests)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LITDESK_HOME"

#: Shipped resources: icons, the demo dataset and the demo models.
RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
DEMO_DATASET = RESOURCES_DIR / "demo" / "sentiment.csv"
DEMO_MODELS = (RESOURCES_DIR / "demo" / "models" / "bert_tiny",
               RESOURCES_DIR / "demo" / "models" / "bow_linear")
#: A tiny causal language model trained on the demo corpus (Sequence Salience, top-k tokens).
DEMO_LM = RESOURCES_DIR / "demo" / "models" / "tiny_lm"
#: The tabular demo: breast cancer measurements and three scikit-learn classifiers.
DEMO_TABULAR_DATASET = RESOURCES_DIR / "demo_tabular" / "breast_cancer.csv"
DEMO_TABULAR_MODELS = tuple(RESOURCES_DIR / "demo_tabular" / f"{name}.joblib"
                            for name in ("logistic_regression", "boosted_trees", "mlp"))
#: The SHA-256 of each tabular demo model, so that they open without the trust dialog.
DEMO_TABULAR_MANIFEST = RESOURCES_DIR / "demo_tabular" / "models.json"


def _folder(kind: str) -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        path = Path(override) / kind
    else:
        import platformdirs

        path = Path(getattr(platformdirs, f"user_{kind}_dir")("litdesk", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Settings and window layout."""
    return _folder("config")


def data_dir() -> Path:
    """User data: plugins, journals."""
    return _folder("data")


def cache_dir() -> Path:
    """Recomputable results."""
    return _folder("cache")


def log_dir() -> Path:
    """What went wrong, in detail (the tracebacks of litdesk's own bugs)."""
    return _folder("log")
