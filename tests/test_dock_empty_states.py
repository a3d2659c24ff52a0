"""The Embedding Projector and Partial Dependence docks say what is happening while they have
nothing to show (no dataset, no model, none that fits, predictions on their way), never
"Load a model…" when one is open."""

from __future__ import annotations

import pyarrow as pa
import pytest

from litdesk.api import CategoryLabel, Dataset, TextSegment
from litdesk.core.jobs import run_job
from litdesk.core.predict import predict_job
from litdesk.core.session import Session
from litdesk.ui.docks.partial_dependence import PartialDependenceDock
from litdesk.ui.docks.projector import ProjectorDock
from tests.fakes import KeywordModel, LengthModel, LogisticTabular, tabular_dataset
from tests.helpers import ROWS, shown


def reviews() -> Dataset:
    table = pa.table({"text": [text for text, _ in ROWS], "label": [label for _, label in ROWS]})
    return Dataset(table, {"text": TextSegment(), "label": CategoryLabel()}, "reviews")


@pytest.fixture
def session():
    return Session()


def test_the_projector_says_what_it_waits_for(qtbot, runner, session):
    projector = shown(qtbot, ProjectorDock(session, runner))
    message = projector.message
    assert message.text().startswith("No dataset open")
    session.set_dataset(reviews())  # text and labels: nothing to project without a model
    qtbot.waitUntil(lambda: message.text() == "No model open: open a model that outputs "
                    "embeddings (File ▸ Open Model) to see a projection.", timeout=10_000)
    session.add_model(LogisticTabular())
    qtbot.waitUntil(lambda: message.text().startswith(
        "None of the open models (logistic) fits reviews"), timeout=10_000)
    session.add_model(LengthModel())
    qtbot.waitUntil(lambda: message.text() == "No model that outputs embeddings among the "
                    "open models (lengths).", timeout=10_000)
    model = KeywordModel()
    session.add_model(model)
    qtbot.waitUntil(lambda: message.text() == "predicting keywords…", timeout=10_000)
    assert message.isVisible() and "Load" not in message.text()
    with qtbot.waitSignal(projector.projected, timeout=30_000):
        session.set_predictions(run_job(predict_job(model, session.dataset)))
    assert not message.isVisible() and projector.source.currentText() == "keywords: emb"


def test_partial_dependence_says_why_there_is_no_feature_to_sweep(qtbot, runner, session):
    dock = shown(qtbot, PartialDependenceDock(session, runner))
    note = dock.note
    assert note.text().startswith("No dataset open")
    session.set_dataset(reviews())
    qtbot.waitUntil(lambda: note.text() == "No model open: open a classifier or regressor "
                    "(File ▸ Open Model) to see how its score depends on each feature.",
                    timeout=10_000)
    session.add_model(KeywordModel())  # not predicted: partial dependence runs it itself
    qtbot.waitUntil(lambda: note.text().startswith(
        "The open models (keywords) read no numeric or categorical column of reviews"),
        timeout=10_000)
    assert note.isVisible() and "predicting" not in note.text()

    session.set_dataset(tabular_dataset())
    qtbot.waitUntil(lambda: note.text().startswith(
        "None of the open models (keywords) fits tabular"), timeout=10_000)
    session.add_model(LogisticTabular())
    qtbot.waitUntil(lambda: note.text() == "Sweeping a for logistic…", timeout=10_000)
    qtbot.waitUntil(lambda: "logistic" in dock.results, timeout=30_000)
    assert not note.isVisible()
