"""The Model Outputs dock, driven through the real window, and its per-example job."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt

from litdesk.api import (AttentionHeads, CategoryLabel, Dataset, Embeddings, GeneratedText, Model,
                         MulticlassPreds, TextSegment, Tokens, TokenTopKPreds)
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.outputs import example_outputs_job, gold_values
from litdesk.ui.widgets.attention import AttentionViewer, HeadView, heat_color
from tests.helpers import ROWS, click_row, hover, write_csv

LABELS = ("negative", "positive")
LAYERS = ("layer_1/attention", "layer_2/attention")
HEADS = 2


class EveryOutputModel(Model):
    """Deterministic outputs of six types from the words of a text; records what it was given."""

    def __init__(self, name: str = "every_output") -> None:
        self.name = name
        self.seen: list[dict] = []

    def input_spec(self):
        return {"text": TextSegment(), "label": CategoryLabel(vocab=LABELS, required=False)}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=LABELS, parent="label"),
                "tokens": Tokens(parent="text"),
                "next_tokens": TokenTopKPreds(align="tokens"),
                **{layer: AttentionHeads(align_in="tokens", align_out="tokens")
                   for layer in LAYERS},
                "continuation": GeneratedText(),
                "emb": Embeddings()}

    def predict(self, inputs):
        self.seen.extend(inputs)
        return [self.outputs_for(example["text"]) for example in inputs]

    @staticmethod
    def outputs_for(text: str) -> dict:
        words = text.split()
        p = min(0.95, 0.2 + 0.15 * len(words))
        outputs = {"probas": np.array([1 - p, p], dtype=np.float32), "tokens": words,
                   "next_tokens": [[(w.upper(), 0.6), (w[::-1], 0.3), ("<unk>", 0.1)]
                                   for w in words],
                   "continuation": " ".join(reversed(words)),
                   "emb": np.arange(4, dtype=np.float32)}
        for layer in LAYERS:
            rng = np.random.default_rng(zlib.crc32(f"{layer}:{text}".encode()))
            weights = rng.random((HEADS, len(words), len(words))).astype(np.float32)
            outputs[layer] = weights / weights.sum(axis=-1, keepdims=True)
        return outputs


@pytest.fixture
def window(outputs_window):
    """The window of conftest's ``outputs_window``, under the name these tests use."""
    return outputs_window


def test_every_output_type_of_the_primary_row_is_shown(qtbot, window):
    model = EveryOutputModel()
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        window.open_objects(models=[model])
    dock = window.outputs_dock
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        click_row(qtbot, window, 2)
        assert dock.sections["every_output"].status.text() == "computing…"
    assert window.session.selection.primary == 2
    text, label = ROWS[2]
    words, expected = text.split(), EveryOutputModel.outputs_for(text)
    section = dock.sections["every_output"]
    assert dock.header.text() == "<b>Row 2</b>"

    top_k = section.widgets["next_tokens"]
    assert top_k.rowCount() == len(words)
    assert [top_k.horizontalHeaderItem(c).text() for c in range(4)] == ["token", "#1", "#2", "#3"]
    for row, word in enumerate(words):
        assert [top_k.item(row, c).text() for c in range(4)] == [
            word, f"{word.upper()} (0.60)", f"{word[::-1]} (0.30)", "<unk> (0.10)"]

    p = float(expected["probas"][1])
    assert section.widgets["probas"].text() == (
        f"<b>positive {p:.3f}</b> &nbsp;·&nbsp; negative {1 - p:.3f}"
        f" &nbsp;&nbsp; <span style='color:#666'>gold: {label}</span>")
    assert section.widgets["continuation"].text() == " ".join(reversed(words))
    assert section.widgets["tokens"].text() == text
    assert section.widgets["emb"].text() == "vector of 4 values"


def test_attention_heads_are_shown_in_the_viewer_of_the_attention_dock(qtbot, window):
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        window.open_objects(models=[EveryOutputModel()])
    text = ROWS[0][0]
    words, expected = tuple(text.split()), EveryOutputModel.outputs_for(text)
    attention = window.outputs_dock.sections["every_output"].attention
    assert isinstance(attention, AttentionViewer)
    assert isinstance(window.attention_dock.viewer, AttentionViewer)  # one viewer, two docks
    assert attention.isVisible()
    assert (attention.layer_choice.maximum(), attention.head_choice.maximum()) \
        == (len(LAYERS), HEADS - 1)
    view = attention.view
    assert view.from_tokens == view.to_tokens == words
    np.testing.assert_allclose(view.weights, expected[LAYERS[0]][0], rtol=1e-6)

    qtbot.mouseClick(attention.grid, Qt.MouseButton.LeftButton,
                     pos=attention.grid.cell_rect(1, 1).center())
    weights = expected[LAYERS[1]][1]
    np.testing.assert_allclose(view.weights, weights, rtol=1e-6)
    assert LAYERS[1] in attention.view_title.text()
    row, column = np.unravel_index(np.argmax(weights), weights.shape)
    drawn = view.grab().toImage().pixelColor(view.cell_rect(row, column).center())
    assert drawn == heat_color(1.0)  # the head's largest weight, darkest
    hover(view, view.cell_rect(1, 2).center())
    assert attention.detail.text() == f"<b>{words[1]}</b> → <b>{words[2]}</b>: {weights[1, 2]:.3f}"


def test_a_new_primary_row_replaces_the_shown_one_and_keeps_the_attention_choice(qtbot, window):
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        window.open_objects(models=[EveryOutputModel()])
    dock = window.outputs_dock
    attention = dock.sections["every_output"].attention
    attention.layer_choice.setValue(2)
    attention.head_choice.setValue(1)
    qtbot.mouseClick(attention.lines_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        click_row(qtbot, window, 1)
        click_row(qtbot, window, 4)  # the first click's job is cancelled or its result dropped
    text = ROWS[4][0]
    section = dock.sections["every_output"]
    assert section.widgets["tokens"].text() == text
    assert section.attention.choice() == (1, 1, HeadView.LINES, False)
    np.testing.assert_allclose(section.attention.view.weights,
                               EveryOutputModel.outputs_for(text)[LAYERS[1]][1], rtol=1e-6)


def test_another_dataset_clears_the_dock_then_shows_its_first_row(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        window.open_objects(models=[EveryOutputModel()])
    dock, shown_on_change = window.outputs_dock, []
    window.session.dataset_changed.connect(lambda: shown_on_change.append(dict(dock.sections)))
    with qtbot.waitSignal(window.runner.idle, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "numbers.csv", [("one two", "positive")])])
    assert shown_on_change == [{}]
    assert dock.sections["every_output"].widgets["tokens"].text() == "one two"


def test_the_job_withholds_the_gold_label_and_a_second_run_reads_the_cache(tmp_path):
    table = pa.table({"text": ["good film", "bad plot and worse acting"],
                      "label": ["positive", "negative"]})
    dataset = Dataset(table, {"text": TextSegment(), "label": CategoryLabel(vocab=LABELS)})
    model, cache = EveryOutputModel(), ResultCache(tmp_path)
    first = run_job(example_outputs_job(model, dataset, 1, cache))
    assert model.seen == [{"text": "bad plot and worse acting"}]
    again = run_job(example_outputs_job(model, dataset, 1, cache))
    assert len(model.seen) == 1
    expected = EveryOutputModel.outputs_for("bad plot and worse acting")
    assert set(first) == set(again) == set(expected)
    for layer in LAYERS:
        np.testing.assert_array_equal(again[layer], expected[layer])
    assert again["next_tokens"][0] == [["BAD", 0.6], ["dab", 0.3], ["<unk>", 0.1]]
    assert again["continuation"] == "acting worse and plot bad"
    assert gold_values(model, dataset, 1) == {"probas": "negative"}
    cache.close()
