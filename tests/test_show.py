"""The Python API: litdesk.show on objects in memory."""

from __future__ import annotations

import gc
import sys

import pandas as pd
import pytest

import litdesk
from litdesk.api import CategoryLabel, TextSegment
from litdesk.core.objects import as_dataset, as_model
from litdesk.ui import gil
from tests.fakes import KeywordModel


def test_a_dataframe_becomes_a_dataset_with_an_inferred_spec():
    frame = pd.DataFrame({"text": ["good", "bad", "fine"] * 10,
                          "label": ["positive", "negative", "positive"] * 10})
    dataset = as_dataset(frame, "frame")
    assert dataset.name == "frame" and len(dataset) == 30
    assert isinstance(dataset.spec()["text"], TextSegment)
    assert isinstance(dataset.spec()["label"], CategoryLabel)


def test_objects_that_are_neither_are_refused_by_name():
    with pytest.raises(TypeError, match="model 'x'"):
        as_model(object(), "x")
    with pytest.raises(TypeError, match="dataset 'y'"):
        as_dataset([1, 2], "y")


def test_show_runs_headless_and_returns_when_ready(qapp, tmp_path):
    frame = pd.DataFrame({"text": ["good film", "awful plot", "great fun", "not good"],
                          "label": ["positive", "negative", "positive", "negative"]})
    model = KeywordModel("words")
    shot = tmp_path / "show.png"
    status = litdesk.show(models={"words": model}, datasets={"reviews": frame},
                          exit_when_ready=True, screenshot=shot)
    assert status == 0
    assert model.calls >= 1 and shot.stat().st_size > 10_000
    # the notebook goes on without the event loop: Python collects cycles itself again
    assert gc.isenabled() and gc.collect.__module__ == "gc"
    assert sys.getswitchinterval() > gil.SWITCH_INTERVAL_S  # and shares the GIL as before
