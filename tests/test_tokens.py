"""Tokens a person can read: the one display function (litdesk.core.tokens) on real byte-level
BPE, WordPiece and SentencePiece tokens, and every dock that draws tokens using it."""

from __future__ import annotations

import numpy as np
import pytest

from litdesk.api import AttentionHeads, CategoryLabel, Model, TextSegment, Tokens, TokenTopKPreds
from litdesk.core.explain import Attribution, aggregate_words
from litdesk.core.tokens import (merge_attention, readable_text, sum_over_spans, token_labels,
                                 token_spans)
from tests.helpers import click_row

TEXT = "Ça va, the midwives … café\nok"
SENTENCES = ["the midwives came to the village", "the cat sat on the mat", "a cafe in Paris"]


@pytest.fixture(scope="module")
def byte_level():
    """A GPT-2-style byte-level BPE tokenizer trained here on a few sentences (no hub)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(SENTENCES * 5, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


@pytest.fixture(scope="module")
def wordpiece():
    """A BERT-style WordPiece tokenizer trained here."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(SENTENCES * 5, trainers.WordPieceTrainer(
        vocab_size=80, special_tokens=["[UNK]", "[CLS]", "[SEP]"]))
    return tokenizer


def test_byte_level_pieces_read_as_text_and_words(byte_level):
    tokens = byte_level.encode(TEXT).tokens
    assert any(token.startswith("Ġ") for token in tokens) and "Ċ" in tokens  # really raw
    labels = [span.label for span in token_spans(tokens)]
    assert "é" in labels and "Ç" in labels and "…" in labels and "↵" in labels
    assert not any(marker in label for label in labels for marker in "ĠĊÃâ")
    words = token_spans(tokens, words=True)
    assert [span.label for span in words] == ["Ça", "va,", "the", "midwives", "…", "café", "↵",
                                              "ok"]
    # The spans cover every token once, in order, and join back into the text.
    assert [(a.end, b.first) for a, b in zip(words, words[1:])] == \
        [(a.end, a.end) for a in words[:-1]]
    assert "".join(span.text for span in words) == TEXT
    scores = np.arange(len(tokens), dtype=float)
    merged = sum_over_spans(words, scores)
    assert merged.sum() == pytest.approx(scores.sum())
    cafe = next(span for span in words if span.label == "café")
    assert merged[words.index(cafe)] == pytest.approx(scores[cafe.first:cafe.end].sum())
    # One label per token for per-position views: the byte pieces of "é" both read "é".
    per_token = token_labels(tokens)
    assert len(per_token) == len(tokens) and per_token.count("é") == 2
    assert "caf" in readable_text(tokens).replace("·", "")


def test_wordpiece_and_sentencepiece_markers(wordpiece):
    tokens = wordpiece.encode("[CLS] midwivesage").tokens
    assert any(token.startswith("##") for token in tokens)
    words = token_spans(tokens, words=True)
    assert [span.label for span in words] == ["[CLS]", "midwivesage"]
    assert words[0].special
    pieces = ["▁Ça", "▁va", "▁caf", "<0xC3>", "<0xA9>", "</s>"]
    assert [span.label for span in token_spans(pieces)] == ["Ça", "va", "caf", "é", "</s>"]
    assert [span.label for span in token_spans(pieces, words=True)] == ["Ça", "va", "café",
                                                                        "</s>"]


def test_attention_to_a_span_is_summed_and_from_it_averaged():
    spans = token_spans(["Ġa", "Ã", "©"])  # "a", "é"
    weights = np.array([[[0.5, 0.25, 0.25], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]])
    merged = merge_attention(weights, spans, spans)
    np.testing.assert_allclose(merged, [[[0.5, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0)


def test_salience_heatmap_shows_words_and_characters(byte_level, qtbot):
    from litdesk.ui.docks.salience import attribution_view
    from litdesk.ui.widgets.salience_charts import TokenHeatmap

    tokens = tuple(byte_level.encode(TEXT).tokens)
    attribution = Attribution("gpt", "grad_l2", tokens, np.ones(len(tokens)), False)
    by_token = attribution_view(attribution, words=False)
    qtbot.addWidget(by_token)
    heatmap = by_token.findChild(TokenHeatmap)
    assert "é" in heatmap.tokens and not any("Ġ" in token or "Ã" in token
                                              for token in heatmap.tokens)
    assert heatmap.scores[heatmap.tokens.index("é")] == 2.0  # both byte pieces' scores
    by_word = attribution_view(attribution, words=True)
    qtbot.addWidget(by_word)
    heatmap = by_word.findChild(TokenHeatmap)
    assert "midwives" in heatmap.tokens and "café" in heatmap.tokens
    assert heatmap.scores.sum() == pytest.approx(len(tokens))
    assert list(aggregate_words(attribution).features) == list(heatmap.tokens)


class ByteLevelModel(Model):
    """Tokens, attention and top-k predictions in GPT-2's byte-level code."""

    name = "gpt"

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def input_spec(self):
        return {"text": TextSegment(), "label": CategoryLabel(vocab=("a", "b"), required=False)}

    def output_spec(self):
        return {"tokens": Tokens(parent="text"),
                "top_k": TokenTopKPreds(align="tokens"),
                "layer_1/attention": AttentionHeads(align_in="tokens", align_out="tokens")}

    def predict(self, inputs):
        outputs = []
        for _ in inputs:
            tokens = self.tokenizer.encode(TEXT).tokens
            n = len(tokens)
            outputs.append({"tokens": tokens,
                            "top_k": [[("Ġthe", 0.6), ("Ã©", 0.3), ("the", 0.1)]
                                      for _ in tokens],
                            "layer_1/attention": np.full((1, n, n), 1.0 / n)})
        return outputs


def test_outputs_and_attention_docks_show_readable_tokens(qtbot, outputs_window, byte_level):
    window = outputs_window
    model = ByteLevelModel(byte_level)
    with qtbot.waitSignal(window.runner.idle, timeout=30_000):
        window.open_objects(models=[model])
    if window.session.selection.primary != 1:
        with qtbot.waitSignal(window.runner.idle, timeout=30_000):
            click_row(qtbot, window, 1)
    section = window.outputs_dock.sections["gpt"]
    qtbot.waitUntil(lambda: "tokens" in section.widgets, timeout=30_000)
    shown = section.widgets["tokens"].text()
    assert "café" in shown.replace("·", "") and "Ça" in shown.replace("·", "")
    assert "Ġ" not in shown and "Ċ" not in shown and "midwives" in shown
    table = section.widgets["top_k"]
    column = [table.item(row, 0).text() for row in range(table.rowCount())]
    assert "é" in column and not any("Ġ" in text or "Ã" in text for text in column)
    # A candidate that begins with a space (a new word) does not read like one without it.
    assert [table.item(0, c).text() for c in (1, 2, 3)] == ["␣the (0.60)", "é (0.30)",
                                                            "the (0.10)"]
    assert table.item(0, 1).toolTip() == "Ġthe"
    # So do the tokens of the text.
    tokens = byte_level.encode(TEXT).tokens
    the = tokens.index("Ġthe")
    assert column[the:the + 2] == ["␣the", "␣midwives"] and column[0] == "Ç"
    view = section.attention.view
    assert "é" in view.from_tokens and "Ġthe" not in view.to_tokens and "the" in view.to_tokens
    assert len(view.from_tokens) == len(token_spans(byte_level.encode(TEXT).tokens))
    # The Attention dock draws the same readable tokens.
    window.docks["Attention"].raise_()
    qtbot.waitUntil(lambda: window.attention_dock.viewer.view.from_tokens == view.from_tokens,
                    timeout=30_000)


def test_sequence_salience_words_are_one_chip(qtbot):
    """At word granularity the context reads as words: one chip per word, coloured by the word's
    summed score; a drag over the target's chips still names its tokens."""
    from litdesk.core.sequence_salience import SequenceSalience
    from litdesk.ui.docks.sequence_salience import SequenceSalienceSection

    text = "the midwives came"
    tokens = ("the", "Ġmid", "w", "i", "ves", "Ġcame")
    offsets = np.array([[0, 3], [4, 7], [7, 8], [8, 9], [9, 12], [13, 17]])
    salience = SequenceSalience("gpt", "grad_l2", text, tokens, offsets,
                                np.array([1.0, 0.5, 0.5, 0.5, 0.5]), 5, 6,
                                tuple(((("Ġthe", 0.5),),) * 6))
    section = SequenceSalienceSection("gpt", text)
    qtbot.addWidget(section)
    section.prompt = "the midwives"
    section.granularity = "word"
    section.show_salience(salience)
    assert [chip.text for chip in section.flow.chips] == ["the", "midwives", "came"]
    assert "midwives: +2" in section.flow.chips[1].tooltip
    section.set_granularity("token")
    assert [chip.text for chip in section.flow.chips] == ["the", "mid", "w", "i", "ves", "came"]
    assert section.top_k.item(0, 1).text() == "␣the (0.50)"

