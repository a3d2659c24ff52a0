"""Sequence salience: gradients checked against finite differences and autograd, aggregation,
caching, bad input, and the dock driven through real clicks and drags."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from litdesk.api import LoadOptions
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.paths import DEMO_LM as TINY_LM
from litdesk.core.sequence_salience import (SequenceSalience, continuation_job, segments,
                                            sequence_salience_job, supports_sequence_salience)
from tests.fakes import KeywordModel
from tests.helpers import write_csv


TEXT = "The food was cold. The service was slow and rude."


@pytest.fixture(scope="module")
def tiny_lm():
    from litdesk_transformers.loader import load

    return load(TINY_LM, LoadOptions(device="cpu"))


def reference_log_probability(model, embeddings, token_ids, first, end):
    """log p(tokens first..end-1 | the tokens before each), computed here from the network."""
    import torch

    logits = model.network(inputs_embeds=embeddings).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return sum(log_probs[p - 1, token_ids[p]] for p in range(first, end))


def test_gradient_times_input_equals_finite_differences(tiny_lm):
    import torch

    target_start = TEXT.index(" and")
    salience = run_job(sequence_salience_job(tiny_lm, TEXT, target_start, len(TEXT)))
    token_ids = tiny_lm.tokenizer(TEXT)["input_ids"]
    first, end = salience.target_first, salience.target_end
    assert salience.token_text(first) == "and" and end == len(token_ids)
    with torch.no_grad():
        embeddings = tiny_lm.network.get_input_embeddings()(torch.tensor([token_ids])).double()
        tiny_lm.network.double()
        try:
            # d/dt f(embedding_i * (1 + t)) at t = 0 is gradient_i · embedding_i.
            step, expected = 1e-4, []
            for i in range(first):
                scaled = [embeddings.clone(), embeddings.clone()]
                scaled[0][0, i] *= 1 + step
                scaled[1][0, i] *= 1 - step
                up, down = (reference_log_probability(tiny_lm, e, token_ids, first, end)
                            for e in scaled)
                expected.append(float(up - down) / (2 * step))
        finally:
            tiny_lm.network.float()
    assert len(salience.scores) == first
    np.testing.assert_allclose(salience.scores, expected, rtol=2e-3, atol=1e-5)


def test_gradient_l2_equals_autograd(tiny_lm):
    import torch

    target_start = TEXT.index(" The service")
    salience = run_job(sequence_salience_job(tiny_lm, TEXT, target_start, len(TEXT), "grad_l2"))
    token_ids = tiny_lm.tokenizer(TEXT)["input_ids"]
    embeddings = tiny_lm.network.get_input_embeddings()(torch.tensor([token_ids])).detach()
    embeddings.requires_grad_(True)
    with torch.enable_grad():
        score = reference_log_probability(tiny_lm, embeddings, token_ids,
                                          salience.target_first, salience.target_end)
        (gradient,) = torch.autograd.grad(score, embeddings)
    expected = gradient[0, :salience.target_first].norm(dim=-1).numpy()
    assert not salience.signed and (salience.scores >= 0).all()
    np.testing.assert_allclose(salience.scores, expected, rtol=1e-4, atol=1e-7)


def made_up_salience() -> SequenceSalience:
    text = "Great fooood. Bad service here."
    # "Great", "foo", "ood", ".", "Bad", "serv", "ice" | target "here."
    offsets = np.array([[0, 5], [6, 9], [9, 12], [12, 13], [14, 17], [18, 22], [22, 25],
                        [26, 30], [30, 31]])
    scores = np.array([1.0, 2.0, 3.0, 4.0, -5.0, 6.0, 7.0])
    tokens = tuple(text[a:b] for a, b in offsets)
    return SequenceSalience("m", "grad_dot_input", text, tokens, offsets, scores, 7, 9)


def test_words_and_sentences_sum_their_token_scores():
    salience = made_up_salience()
    words = segments(salience, "word")
    assert [salience.text[a:b] for a, b in words.spans] == [
        "Great", "fooood.", "Bad", "service", "here."]
    assert words.group.tolist() == [0, 1, 1, 1, 2, 3, 3]
    np.testing.assert_allclose(words.scores, [1.0, 9.0, -5.0, 13.0, 0.0])
    sentences = segments(salience, "sentence")
    assert [salience.text[a:b] for a, b in sentences.spans] == ["Great fooood.",
                                                                 "Bad service here."]
    np.testing.assert_allclose(sentences.scores, [10.0, 8.0])
    tokens = segments(salience, "token")
    np.testing.assert_allclose(tokens.scores, salience.scores)
    with pytest.raises(ValueError, match="granularity 'line'"):
        segments(salience, "line")


def test_results_come_from_the_cache_the_second_time(tiny_lm, tmp_path, monkeypatch):
    cache = ResultCache(tmp_path)
    start = TEXT.index(" and")
    first = run_job(sequence_salience_job(tiny_lm, TEXT, start, len(TEXT), cache=cache))
    monkeypatch.setattr(type(tiny_lm), "embed_sequence",
                        lambda *_: pytest.fail("computed again instead of read from the cache"))
    again = run_job(sequence_salience_job(tiny_lm, TEXT, start, len(TEXT), cache=cache))
    np.testing.assert_array_equal(again.scores, first.scores)
    assert again.tokens == first.tokens and again.top_k == first.top_k
    assert len(again.top_k) == len(again.tokens)


def test_bad_requests_say_what_is_wrong(tiny_lm):
    with pytest.raises(ValueError, match="method 'lime'"):
        run_job(sequence_salience_job(tiny_lm, TEXT, 5, 10, "lime"))
    with pytest.raises(ValueError, match="after its first character"):
        run_job(sequence_salience_job(tiny_lm, TEXT, 0, 10))
    with pytest.raises(ValueError, match="not a causal language model"):
        run_job(sequence_salience_job(KeywordModel(), TEXT, 5, 10))
    assert not supports_sequence_salience(KeywordModel()) and supports_sequence_salience(tiny_lm)


@pytest.mark.slow
def test_the_dock_explains_the_primary_row_and_a_dragged_span(qtbot, window, tmp_path,
                                                              tiny_lm):
    rows = [("The food was cold and the service was slow.", "negative"),
            ("I loved every minute of this film.", "positive")]
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv", rows)])
    window.session.add_model(tiny_lm)
    window.docks["Sequence Salience"].raise_()
    dock = window.sequence_salience_dock
    view = window.table_dock.view
    with qtbot.waitSignal(dock.salience_shown, timeout=30_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(window.table_dock.model.index(1, 0)).center())
    section = dock.sections[tiny_lm.name]
    salience = section.salience
    assert section.prompt == "I loved every minute"  # the first half of the row's words
    continuation = run_job(continuation_job(tiny_lm, section.prompt))
    assert continuation.strip() and salience.text == section.prompt + continuation
    assert salience.offsets[salience.target_first][0] >= len(section.prompt)
    flow = section.flow
    prompt_chip = flow.chips[0]
    assert prompt_chip.text == "I" and prompt_chip.background.name() != "#ffffff"
    assert "I:" in prompt_chip.tooltip
    target_count = salience.target_end - salience.target_first
    assert section.top_k.rowCount() == target_count

    # Drag over the target's last two tokens: only they are explained now.
    last = salience.target_end - 1
    chip_of = {chip.first: index for index, chip in enumerate(flow.chips)}
    with qtbot.waitSignal(dock.salience_shown, timeout=30_000):
        qtbot.mousePress(flow, Qt.MouseButton.LeftButton,
                         pos=flow.chip_rect(chip_of[last - 1]).center())
        qtbot.mouseMove(flow, flow.chip_rect(chip_of[last]).center())
        qtbot.mouseRelease(flow, Qt.MouseButton.LeftButton,
                           pos=flow.chip_rect(chip_of[last]).center())
    narrowed = section.salience
    assert (narrowed.target_first, narrowed.target_end) == (last - 1, last + 1)
    assert len(narrowed.scores) == last - 1 and section.top_k.rowCount() == 2

    # Sentence granularity colours every context token of a sentence alike.
    dock.granularity.setCurrentText("sentence")
    backgrounds = {chip.background.name() for chip in flow.chips[:4]}
    assert len(backgrounds) == 1

    # The row's own words after a three-word prompt as the target.
    with qtbot.waitSignal(dock.salience_shown, timeout=30_000):
        section.target_choice.setCurrentIndex(1)
    with qtbot.waitSignal(dock.salience_shown, timeout=30_000):
        qtbot.keyClick(section.split, Qt.Key.Key_Down)
    rest = section.salience
    assert rest.text == rows[1][0] and section.prompt == "I loved every"
    assert rest.text[rest.offsets[rest.target_first][0]:] == "minute of this film."
    assert len(rest.scores) == rest.target_first == \
        flow.chips[-section.top_k.rowCount()].first
    # At word granularity each context word is one chip, as the text reads.
    assert [chip.text for chip in flow.chips[:-section.top_k.rowCount()]] == \
        "I loved every".split()
