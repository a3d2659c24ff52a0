"""The demo models that ship in litdesk/resources/demo/models load and do better than chance."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import LoadOptions

DEMO_DIR = Path(__file__).resolve().parents[1] / "litdesk" / "resources" / "demo"
MODELS_DIR = DEMO_DIR / "models"
DATA_FILE = DEMO_DIR / "sentiment.csv"

pytestmark = pytest.mark.skipif(not MODELS_DIR.is_dir() or not DATA_FILE.is_file(),
                                reason="the demo models or the demo dataset are absent")


def load_bert():
    from litdesk_transformers.classifier import load

    return load(MODELS_DIR / "bert_tiny", LoadOptions(device="cpu"))


def load_linear():
    from litdesk_linear_text.model import load

    return load(MODELS_DIR / "bow_linear")


@pytest.fixture(scope="module")
def test_rows() -> list[dict]:
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "test"]


@pytest.mark.parametrize("load_model", [
    pytest.param(load_bert, id="bert_tiny", marks=pytest.mark.slow),  # imports transformers
    pytest.param(load_linear, id="bow_linear"),
])
def test_shipped_model_beats_chance_on_the_test_split(load_model, test_rows):
    model = load_model()
    vocab = model.output_spec()["probas"].vocab
    assert set(vocab) == {row["label"] for row in test_rows}
    size = model.max_minibatch_size()
    predictions = []
    for start in range(0, len(test_rows), size):
        batch = [{"text": row["text"]} for row in test_rows[start:start + size]]
        predictions += [vocab[int(np.argmax(result["probas"]))] for result in model.predict(batch)]
    accuracy = np.mean([predicted == row["label"] for predicted, row in zip(predictions, test_rows)])
    assert accuracy > 0.6


def test_shipped_models_are_small():
    total = sum(file.stat().st_size for file in MODELS_DIR.rglob("*") if file.is_file())
    assert total < 20 * 2**20
