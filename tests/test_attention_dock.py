"""The Attention dock, driven through the real window: the heads grid, the large view in both
modes, token hover, special tokens, new rows, models without attention, and the demo BERT."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from litdesk.api import AttentionHeads, CategoryLabel, Model, MulticlassPreds, TextSegment, Tokens
from litdesk.ui.widgets.attention import AttentionMaps, HeadView, heat_color, relative
from tests.fakes import KeywordModel
from tests.helpers import ROWS, click_row, hover

LABELS = ("negative", "positive")
LAYERS = ("layer_1/attention", "layer_2/attention", "layer_3/attention")
HEADS = 2
DEMO_BERT = (Path(__file__).resolve().parents[1] / "litdesk" / "resources" / "demo" / "models"
             / "bert_tiny")


def tokens_of(text: str) -> list[str]:
    return ["[CLS]", *text.replace(",", " ,").split(), "[SEP]"]


class HeadsModel(Model):
    """Deterministic attention (rows sum to 1) over "[CLS] words… [SEP]", three layers of two
    heads; records how many examples it was asked for."""

    name = "heads"

    def __init__(self) -> None:
        self.examples = 0

    def input_spec(self):
        return {"text": TextSegment(), "label": CategoryLabel(vocab=LABELS, required=False)}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=LABELS, parent="label"),
                "tokens": Tokens(parent="text"),
                **{layer: AttentionHeads(align_in="tokens", align_out="tokens")
                   for layer in LAYERS}}

    def predict(self, inputs):
        self.examples += len(inputs)
        return [self.outputs_for(example["text"]) for example in inputs]

    @staticmethod
    def outputs_for(text: str) -> dict:
        tokens = tokens_of(text)
        outputs = {"probas": np.array([0.4, 0.6], dtype=np.float32), "tokens": tokens}
        for layer in LAYERS:
            rng = np.random.default_rng(zlib.crc32(f"{layer}:{text}".encode()))
            weights = rng.random((HEADS, len(tokens), len(tokens))) ** 4
            outputs[layer] = (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)
        return outputs


@pytest.fixture
def window(outputs_window):
    """The window of the Model Outputs tests, with the Attention tab in front."""
    outputs_window.docks["Attention"].raise_()
    return outputs_window


def show_row(qtbot, window, row, model=None):
    """Open ``model`` (once) and make ``row`` primary; wait for the dock's job."""
    if model is not None:
        with qtbot.waitSignal(window.runner.idle, timeout=30_000):
            window.open_objects(models=[model])
    if window.session.selection.primary != row:  # a new dataset's first row is primary already
        with qtbot.waitSignal(window.runner.idle, timeout=30_000):
            click_row(qtbot, window, row)
    assert window.session.selection.primary == row
    return window.attention_dock


def pixel(widget, point: QPoint) -> QColor:
    return widget.grab().toImage().pixelColor(point)


def test_clicking_a_thumbnail_shows_that_head_large(qtbot, window):
    dock = show_row(qtbot, window, 2, HeadsModel())
    expected = HeadsModel.outputs_for(ROWS[2][0])
    grid, view = dock.viewer.grid, dock.viewer.view
    assert [len(row) for row in grid.thumbnails] == [HEADS] * len(LAYERS)
    first = grid.thumbnails[0][1]
    assert first.pixelColor(0, 0) == heat_color(relative(expected[LAYERS[0]][1])[0, 0])

    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.cell_rect(2, 1).center())
    assert (dock.viewer.layer_choice.value(), dock.viewer.head_choice.value()) == (3, 1)
    weights = expected[LAYERS[2]][1]
    np.testing.assert_allclose(view.weights, weights)
    assert view.from_tokens == view.to_tokens == tuple(tokens_of(ROWS[2][0]))
    shown = view.grab().toImage()
    for row, column in [(0, 0), (1, 3), (4, 2), (3, 4)]:
        color = shown.pixelColor(view.cell_rect(row, column).center())
        expected_color = heat_color(weights[row, column] / weights.max())
        assert abs(color.blue() - expected_color.blue()) <= 2
        assert abs(color.red() - expected_color.red()) <= 2
    assert "layer_3/attention" in dock.viewer.view_title.text()


def test_spin_boxes_and_arrow_keys_choose_the_head(qtbot, window):
    dock = show_row(qtbot, window, 0, HeadsModel())
    expected = HeadsModel.outputs_for(ROWS[0][0])
    dock.viewer.layer_choice.setValue(2)
    np.testing.assert_allclose(dock.viewer.view.weights, expected[LAYERS[1]][0])
    assert dock.viewer.grid.current == (1, 0)
    dock.viewer.grid.setFocus()
    qtbot.keyClick(dock.viewer.grid, Qt.Key.Key_Right)
    qtbot.keyClick(dock.viewer.grid, Qt.Key.Key_Down)
    qtbot.keyClick(dock.viewer.grid, Qt.Key.Key_Down)  # past the last layer: stays there
    assert (dock.viewer.layer_choice.value(), dock.viewer.head_choice.value()) == (3, 1)
    np.testing.assert_allclose(dock.viewer.view.weights, expected[LAYERS[2]][1])


def test_hovering_a_token_or_a_cell_highlights_it_and_shows_its_weights(qtbot, window):
    dock = show_row(qtbot, window, 0, HeadsModel())
    view = dock.viewer.view
    tokens, weights = view.from_tokens, view.weights
    label = view.token_rect("from", 2)
    corner = label.topLeft() + QPoint(1, 1)
    before = pixel(view, corner)
    hover(view, label.center())
    assert view.hovered == ("from", 2, -1)
    strongest = int(np.argmax(weights[2]))
    assert dock.viewer.detail.text().startswith(
        f"<b>{tokens[2]}</b> attends to: <b>{tokens[strongest]}</b> {weights[2, strongest]:.2f}")
    after = pixel(view, corner)
    assert after != before and after.red() > after.blue()  # the orange band
    assert view.toolTip() == dock.viewer.detail.text()

    hover(view, view.token_rect("to", 3).center())
    assert view.hovered == ("to", -1, 3)
    assert dock.viewer.detail.text().startswith(f"<b>{tokens[3]}</b> is attended by: ")

    hover(view, view.cell_rect(1, 4).center())
    assert view.hovered == ("cell", 1, 4)
    assert dock.viewer.detail.text() \
        == f"<b>{tokens[1]}</b> → <b>{tokens[4]}</b>: {weights[1, 4]:.3f}"
    assert pixel(view, label.topLeft() + QPoint(1, 1)) == before  # row 2 no longer highlighted


def test_lines_mode_draws_a_line_per_weight_and_hover_picks_one_tokens_lines(qtbot, window):
    dock = show_row(qtbot, window, 4, HeadsModel())
    view = dock.viewer.view
    qtbot.mouseClick(dock.viewer.lines_button, Qt.MouseButton.LeftButton)
    assert view.mode == HeadView.LINES and not dock.viewer.matrix_button.isChecked()
    weights = view.weights
    row, column = np.unravel_index(np.argmax(weights), weights.shape)
    start, end = view.line_ends(row, column)
    middle = ((start + end) / 2).toPoint()
    hover(view, view.token_rect("to", column).center())
    assert view.hovered == ("to", -1, column)
    assert dock.viewer.detail.text().startswith(
        f"<b>{view.to_tokens[column]}</b> is attended by: "
        f"<b>{view.from_tokens[row]}</b> {weights[row, column]:.2f}")
    strongest_line = pixel(view, middle)
    assert strongest_line.blue() > strongest_line.red() + 60  # a full-strength blue line
    other = next(i for i in range(weights.shape[1]) if i != column)
    hover(view, view.token_rect("to", other).center())
    faded = pixel(view, middle)
    assert faded.blue() - faded.red() < strongest_line.blue() - strongest_line.red()

    qtbot.mouseClick(dock.viewer.matrix_button, Qt.MouseButton.LeftButton)
    assert view.mode == HeadView.MATRIX


def test_special_tokens_can_be_hidden_and_rows_renormalised(qtbot, window):
    dock = show_row(qtbot, window, 1, HeadsModel())
    assert dock.viewer.view.from_tokens[0] == "[CLS]"
    qtbot.mouseClick(dock.viewer.hide_special, Qt.MouseButton.LeftButton,
                     pos=QPoint(5, dock.viewer.hide_special.height() // 2))
    assert dock.viewer.hide_special.isChecked()
    words = tuple(tokens_of(ROWS[1][0])[1:-1])
    assert dock.viewer.view.from_tokens == dock.viewer.view.to_tokens == words
    full = HeadsModel.outputs_for(ROWS[1][0])[LAYERS[0]][0][1:-1, 1:-1]
    np.testing.assert_allclose(dock.viewer.view.weights, full / full.sum(axis=1, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_allclose(dock.viewer.view.weights.sum(axis=1), 1.0)
    assert dock.viewer.grid.thumbnails[0][0].width() == dock.viewer.grid.CELL


def test_a_new_primary_row_updates_the_view_and_keeps_the_chosen_head(qtbot, window):
    dock = show_row(qtbot, window, 0, HeadsModel())
    dock.viewer.choose(1, 1)
    dock.viewer.lines_button.click()
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):
        click_row(qtbot, window, 1)
        click_row(qtbot, window, 3)  # the first click's job is cancelled or its result dropped
    text = ROWS[3][0]
    assert dock.header.text().startswith("<b>Row 3</b>")
    assert dock.viewer.view.from_tokens == tuple(tokens_of(text))
    assert dock.viewer.choice() == (1, 1, HeadView.LINES, False)
    np.testing.assert_allclose(dock.viewer.view.weights, HeadsModel.outputs_for(text)[LAYERS[1]][1])


def test_models_without_attention_get_a_note_and_several_get_a_picker(qtbot, window):
    keywords = KeywordModel()
    dock = show_row(qtbot, window, 0, keywords)
    assert dock.notes.text() == "keywords: outputs no attention heads."
    assert not dock.viewer.isVisible()

    second = HeadsModel()
    second.name = "heads_b"
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):
        window.open_objects(models=[HeadsModel(), second])
    assert dock.viewer.isVisible() and dock.model_choice.isVisible()
    assert [dock.model_choice.itemText(i) for i in range(dock.model_choice.count())] \
        == ["heads", "heads_b"]
    dock.model_choice.setCurrentText("heads_b")
    assert dock.model_name == "heads_b"
    assert dock.viewer.view.from_tokens == tuple(tokens_of(ROWS[0][0]))


def test_the_dock_fetches_nothing_while_hidden_and_catches_up_when_shown(qtbot, window):
    model = HeadsModel()
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):
        window.open_objects(models=[model])
    dock = window.attention_dock
    assert dock.viewer.view.from_tokens == tuple(tokens_of(ROWS[0][0]))
    window.docks["Sequence Salience"].raise_()  # a tab with nothing to do for this model
    asked = model.examples
    click_row(qtbot, window, 5)
    click_row(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    assert model.examples == asked
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):
        window.docks["Attention"].raise_()
    assert model.examples == asked + 1  # row 3 only
    assert list(dock.maps) == ["heads"]
    assert dock.viewer.view.from_tokens == tuple(tokens_of(ROWS[3][0]))


def test_maps_without_special_tokens_keep_rows_that_attended_only_to_them():
    weights = np.array([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.6, 0.2]]])
    maps = AttentionMaps(("a",), (weights,), ("[CLS]", "x", "[SEP]"), ("[CLS]", "x", "[SEP]"))
    hidden = maps.without_special_tokens()
    assert hidden.from_tokens == hidden.to_tokens == ("x",)
    np.testing.assert_array_equal(hidden.weights[0], [[[0.0]]])
    maps = AttentionMaps(("a",), (weights,), ("p", "[CLS]", "q"), ("p", "[SEP]", "q"))
    np.testing.assert_allclose(maps.without_special_tokens().weights[0],
                               [[[1.0, 0.0], [0.5, 0.5]]])


@pytest.mark.slow  # imports transformers
@pytest.mark.skipif(not DEMO_BERT.is_dir(), reason="the demo BERT is absent")
def test_the_demo_bert_shows_every_layer_and_head(qtbot, window):
    from litdesk.api import LoadOptions
    from litdesk.core.model_loading import load_model

    config = json.loads((DEMO_BERT / "config.json").read_text())
    model = load_model(DEMO_BERT, LoadOptions(device="cpu"))
    dock = show_row(qtbot, window, 1, model)
    grid = dock.viewer.grid
    # The runner may fall idle between the prediction and the attention job it starts.
    qtbot.waitUntil(lambda: [len(row) for row in grid.thumbnails]
                    == [config["num_attention_heads"]] * config["num_hidden_layers"],
                    timeout=30_000)
    layer, head = config["num_hidden_layers"] - 1, config["num_attention_heads"] - 1
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.cell_rect(layer, head).center())
    (outputs,) = model.predict([{"text": ROWS[1][0]}])
    np.testing.assert_allclose(dock.viewer.view.weights,
                               outputs[f"layer_{layer + 1}/attention"][head], atol=1e-6)
    assert dock.viewer.view.from_tokens == tuple(outputs["tokens"])
    assert dock.viewer.view.from_tokens[0] == "[CLS]"
