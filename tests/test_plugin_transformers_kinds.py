"""The transformers plugin's other kinds, each a tiny model built from a config, saved with
save_pretrained and loaded through plugin discovery: regressors, multi-label and decoder-based
classifiers, token classifiers, causal and masked language models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from litdesk.api import (
    AttentionHeads,
    Embeddings,
    GeneratedText,
    LoadOptions,
    RegressionScore,
    Scalar,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
    TokenTopKPreds,
)
from litdesk.core.model_loading import load_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from litdesk_transformers.classifier import (  # noqa: E402
    HFMultiLabelClassifier,
    HFSequenceClassifier,
    HFSequenceRegressor,
)
from litdesk_transformers.language_models import HFCausalLM, HFMaskedLM  # noqa: E402
from litdesk_transformers.token_classifier import HFTokenClassifier  # noqa: E402

WORDS = ["the", "film", "was", "great", "awful", "plot", "not", "good", "bad", "very", "a", "story",
         "and", "it", "anna", "paris", "lives", "in"]
CORPUS = ["the film was great and the plot was good", "a very bad story , not good at all",
          "it was awful", "anna lives in paris", "the story was very very good"]
TEXTS = ["the film was great", "anna lives in paris and the plot was not good", "bad"]
HIDDEN, LAYERS, HEADS, POSITIONS = 16, 2, 2, 32
END = "<|endoftext|>"


def bert_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """A WordPiece tokenizer built with the tokenizers library over a tiny vocabulary."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", "##s"]
    tokenizer = tokenizers.BertWordPieceTokenizer({word: i for i, word in enumerate(vocab)})
    return transformers.BertTokenizerFast(tokenizer_object=tokenizer._tokenizer)


def gpt_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer trained on the tiny corpus, with no padding token (as GPT-2)."""
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=300, min_frequency=1, special_tokens=[END])
    return transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=END,
                                          eos_token=END, unk_token=END)


def bert_config(tokenizer, **head) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=32, max_position_embeddings=POSITIONS, **head)


def gpt_config(tokenizer, **head) -> transformers.GPT2Config:
    end = tokenizer.convert_tokens_to_ids(END)
    return transformers.GPT2Config(vocab_size=len(tokenizer), n_embd=HIDDEN, n_layer=LAYERS,
                                   n_head=HEADS, n_positions=POSITIONS, bos_token_id=end,
                                   eos_token_id=end, **head)


def saved(folder: Path, network, tokenizer) -> Path:
    network.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build(tmp_path_factory, name: str, network_class, make_config, make_tokenizer, **head):
    """A randomly initialised ``network_class`` saved with its tokenizer, loaded through discovery."""
    folder = tmp_path_factory.mktemp(name)
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    saved(folder, network_class(make_config(tokenizer, **head)), tokenizer)
    return load_model(folder, LoadOptions(device="cpu"))


def reference_output(model, text: str):
    """The network's own output for ``text`` alone (no padding), to compare the wrapper with."""
    encoded = model.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return model.network(**encoded, output_hidden_states=True)


def score_along(model, text: str, direction: np.ndarray, step: float,
                score: Callable[..., torch.Tensor]) -> float:
    """``score(output, input_ids)`` in float64, the text's input embeddings moved ``step`` along
    ``direction``."""
    network = copy.deepcopy(model.network).double()
    encoded = model.tokenizer([text], return_tensors="pt")
    input_ids = encoded.pop("input_ids")
    embeddings = network.get_input_embeddings()(input_ids)
    moved = embeddings + step * torch.from_numpy(direction).double()[None]
    with torch.no_grad():
        return float(score(network(inputs_embeds=moved, **encoded), input_ids))


def check_gradient(model, text: str, score: Callable[..., torch.Tensor]) -> None:
    """The wrapper's token gradient agrees with a central finite difference of ``score``."""
    (result,) = model.predict([{"text": text}])
    direction = np.random.default_rng(0).normal(size=result["token_embs"].shape)
    direction /= np.linalg.norm(direction)
    step = 1e-3
    numeric = (score_along(model, text, direction, step, score)
               - score_along(model, text, direction, -step, score)) / (2 * step)
    analytic = float((result["token_grad_text"] * direction).sum())
    assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def check_internals(model, result: dict, gradients: bool) -> None:
    """Tokens, per-layer embeddings, attention (and gradients) have the shapes of the text."""
    n = len(result["tokens"])
    spec = model.output_spec()
    assert spec["tokens"] == Tokens(parent="text")
    for layer in range(LAYERS + 1):
        assert spec[f"layer_{layer}/avg_emb"] == Embeddings()
        assert result[f"layer_{layer}/avg_emb"].shape == (HIDDEN,)
    for layer in range(1, LAYERS + 1):
        assert spec[f"layer_{layer}/attention"] == AttentionHeads(align_in="tokens", align_out="tokens")
        attention = result[f"layer_{layer}/attention"]
        assert attention.shape == (HEADS, n, n)
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert (spec.get("token_grad_text") == TokenGradients(align="tokens", grad_for="token_embs")) == gradients
    assert (spec.get("token_embs") == TokenEmbeddings(align="tokens")) == gradients
    if gradients:
        assert result["token_grad_text"].shape == result["token_embs"].shape == (n, HIDDEN)


def check_batching(model, keys: tuple[str, ...]) -> None:
    """Padding changes nothing: each text predicted in a batch is predicted as alone."""
    batched = model.predict([{"text": text} for text in TEXTS])
    for text, together in zip(TEXTS, batched):
        (alone,) = model.predict([{"text": text}])
        assert together["tokens"] == alone["tokens"]
        for key in keys:
            if isinstance(alone[key], str):
                assert together[key] == alone[key], key
            elif isinstance(alone[key], list):  # per token, (name, probability) candidates
                assert len(together[key]) == len(alone[key]), key
                for mine, theirs in zip(together[key], alone[key]):
                    assert [name for name, _ in mine] == [name for name, _ in theirs], key
                    np.testing.assert_allclose([p for _, p in mine], [p for _, p in theirs], atol=1e-5)
            else:
                np.testing.assert_allclose(together[key], alone[key], atol=1e-5, err_msg=key)


def check_ranked(candidates: list, probabilities: torch.Tensor, names: Callable[[int], str],
                 k: int) -> None:
    """``candidates`` are the ``k`` most likely of ``probabilities``, most likely first."""
    values, indices = probabilities.topk(k)
    assert len(candidates) == k
    assert [name for name, _ in candidates] == [names(int(i)) for i in indices]
    scores = [p for _, p in candidates]
    assert all(isinstance(p, float) for p in scores)
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, values.numpy(), atol=1e-6)


# --- Sequence regression ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def regressor(tmp_path_factory) -> HFSequenceRegressor:
    return build(tmp_path_factory, "regressor", transformers.BertForSequenceClassification, bert_config,
                 bert_tokenizer, num_labels=1, problem_type="regression")


def test_regressor_outputs_a_score_with_embeddings_and_gradients(regressor):
    assert type(regressor) is HFSequenceRegressor
    assert regressor.input_spec() == {"text": TextSegment()}
    spec = regressor.output_spec()
    assert spec["score"] == RegressionScore(parent="label")
    assert "probas" not in spec and isinstance(spec["cls_emb"], Embeddings)
    results = regressor.predict([{"text": text} for text in TEXTS])
    for text, result in zip(TEXTS, results):
        assert isinstance(result["score"], float)
        assert result["score"] == pytest.approx(float(reference_output(regressor, text).logits[0, 0]),
                                                abs=1e-5)
        assert result["cls_emb"].shape == (HIDDEN,)
        check_internals(regressor, result, gradients=True)
    check_batching(regressor, ("score", "cls_emb", "token_grad_text", "layer_2/avg_emb"))


def test_regressor_gradients_are_those_of_the_score(regressor):
    check_gradient(regressor, "the plot was not good", lambda out, ids: out.logits[0, 0])


# --- Multi-label classification ---------------------------------------------------------------

TOPICS = ["acting", "plot", "music"]


@pytest.fixture(scope="module")
def multi_label(tmp_path_factory) -> HFMultiLabelClassifier:
    return build(tmp_path_factory, "multi_label", transformers.BertForSequenceClassification,
                 bert_config, bert_tokenizer, problem_type="multi_label_classification",
                 id2label=dict(enumerate(TOPICS)), label2id={t: i for i, t in enumerate(TOPICS)})


def test_multi_label_classifier_outputs_a_probability_per_label(multi_label):
    assert type(multi_label) is HFMultiLabelClassifier
    spec = multi_label.output_spec()
    assert {key: spec[key] for key in spec if key.startswith("probas/")} == {
        f"probas/{topic}": Scalar(min_val=0.0, max_val=1.0) for topic in TOPICS}
    for text, result in zip(TEXTS, multi_label.predict([{"text": text} for text in TEXTS])):
        expected = torch.sigmoid(reference_output(multi_label, text).logits[0]).numpy()
        np.testing.assert_allclose([result[f"probas/{topic}"] for topic in TOPICS], expected, atol=1e-6)
        check_internals(multi_label, result, gradients=True)


# --- A decoder-based classifier (the head pools the last real token) --------------------------


def test_decoder_classifier_pools_the_last_real_token_of_each_padded_text(tmp_path_factory):
    model = build(tmp_path_factory, "gpt_classifier", transformers.GPT2ForSequenceClassification,
                  gpt_config, gpt_tokenizer, num_labels=2)
    assert type(model) is HFSequenceClassifier
    for text, result in zip(TEXTS, model.predict([{"text": text} for text in TEXTS])):
        expected = torch.softmax(reference_output(model, text).logits[0], dim=-1).numpy()
        np.testing.assert_allclose(result["probas"], expected, atol=1e-5)
    check_batching(model, ("probas", "token_grad_text"))


# --- Token classification ---------------------------------------------------------------------

TAGS = ["O", "B-PER", "I-PER", "B-LOC"]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> HFTokenClassifier:
    return build(tmp_path_factory, "tagger", transformers.BertForTokenClassification, bert_config,
                 bert_tokenizer, id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)})


def test_token_classifier_ranks_every_tag_at_every_token(tagger):
    assert type(tagger) is HFTokenClassifier
    spec = tagger.output_spec()
    assert spec["tag_probas"] == TokenTopKPreds(align="tokens")
    for text, result in zip(TEXTS, tagger.predict([{"text": text} for text in TEXTS])):
        probabilities = torch.softmax(reference_output(tagger, text).logits[0], dim=-1)
        assert len(result["tag_probas"]) == len(result["tokens"]) == len(probabilities)
        for candidates, expected in zip(result["tag_probas"], probabilities):
            check_ranked(candidates, expected, TAGS.__getitem__, len(TAGS))
            assert sum(p for _, p in candidates) == pytest.approx(1.0, abs=1e-5)
        check_internals(tagger, result, gradients=False)
    check_batching(tagger, ("tag_probas", "layer_1/attention"))


# --- Causal language model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory) -> HFCausalLM:
    return build(tmp_path_factory, "causal_lm", transformers.GPT2LMHeadModel, gpt_config, gpt_tokenizer)


def greedy_continuation(model: HFCausalLM, text: str, max_new_tokens: int) -> str:
    """Greedy decoding written out: append the most likely token until the end token, the limit
    or the end of the context."""
    ids = model.tokenizer(text)["input_ids"]
    end = model.tokenizer.eos_token_id
    new = []
    for _ in range(min(max_new_tokens, POSITIONS - len(ids))):
        with torch.no_grad():
            logits = model.network(torch.tensor([ids + new])).logits[0, -1]
        new.append(int(logits.argmax()))
        if new[-1] == end:
            break
    return model.tokenizer.decode(new, skip_special_tokens=True)


def test_causal_lm_spec(causal_lm):
    assert type(causal_lm) is HFCausalLM
    assert causal_lm.input_spec() == {"text": TextSegment()}
    spec = causal_lm.output_spec()
    assert spec["next_token_preds"] == TokenTopKPreds(align="tokens")
    assert spec["generated_text"] == GeneratedText()
    assert causal_lm.max_minibatch_size() == 8


def test_causal_lm_ranks_the_next_token_at_every_position(causal_lm):
    vocab = causal_lm.tokenizer.convert_ids_to_tokens
    for text, result in zip(TEXTS, causal_lm.predict([{"text": text} for text in TEXTS])):
        assert "".join(result["tokens"]).replace("Ġ", " ") == text
        probabilities = torch.softmax(reference_output(causal_lm, text).logits[0], dim=-1)
        assert len(result["next_token_preds"]) == len(result["tokens"])
        for candidates, expected in zip(result["next_token_preds"], probabilities):
            check_ranked(candidates, expected, vocab, causal_lm.top_k)
        check_internals(causal_lm, result, gradients=True)
    check_batching(causal_lm, ("next_token_preds", "generated_text", "token_grad_text", "layer_2/avg_emb"))


def test_top_k_over_the_whole_vocabulary_sums_to_one(causal_lm):
    model = copy.copy(causal_lm)
    model.top_k = len(model.tokenizer)
    (result,) = model.predict([{"text": "the film"}])
    for candidates in result["next_token_preds"]:
        assert sum(p for _, p in candidates) == pytest.approx(1.0, abs=1e-5)
    assert model.fingerprint() != causal_lm.fingerprint()


def test_generation_is_greedy_and_deterministic(causal_lm):
    results = causal_lm.predict([{"text": text} for text in TEXTS])
    for text, result in zip(TEXTS, results):
        assert result["generated_text"] == greedy_continuation(causal_lm, text, causal_lm.max_new_tokens)
        first = result["next_token_preds"][-1][0][0]
        if first != END:
            assert result["generated_text"].startswith(
                causal_lm.tokenizer.convert_tokens_to_string([first]).strip())
    again = causal_lm.predict([{"text": text} for text in TEXTS])
    assert [r["generated_text"] for r in again] == [r["generated_text"] for r in results]


def test_generation_length_is_an_attribute_and_in_the_fingerprint(causal_lm):
    model = copy.copy(causal_lm)
    model.max_new_tokens = 2
    (result,) = model.predict([{"text": TEXTS[0]}])
    assert result["generated_text"] == greedy_continuation(model, TEXTS[0], 2)
    assert model.fingerprint() != causal_lm.fingerprint()


def test_a_full_context_generates_nothing(causal_lm):
    text = " ".join(["the film was great"] * POSITIONS)
    (result,) = causal_lm.predict([{"text": text}])
    assert len(result["tokens"]) == POSITIONS
    assert result["generated_text"] == ""


def test_an_empty_text_reads_as_the_start_token(causal_lm):
    (result,) = causal_lm.predict([{"text": ""}])
    assert result["tokens"] == [END]
    assert result["generated_text"] == greedy_continuation(causal_lm, END, causal_lm.max_new_tokens)


def log_likelihood(out, input_ids) -> torch.Tensor:
    log_probs = out.logits[0, :-1].log_softmax(dim=-1)
    return log_probs.gather(-1, input_ids[0, 1:, None]).sum()


def test_causal_lm_gradients_are_those_of_the_log_likelihood(causal_lm):
    check_gradient(causal_lm, "the film was not good", log_likelihood)


# --- Masked language model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def masked_lm(tmp_path_factory) -> HFMaskedLM:
    return build(tmp_path_factory, "masked_lm", transformers.BertForMaskedLM, bert_config, bert_tokenizer)


def test_masked_lm_ranks_the_tokens_at_every_position(masked_lm):
    assert type(masked_lm) is HFMaskedLM
    assert masked_lm.output_spec()["pred_tokens"] == TokenTopKPreds(align="tokens")
    vocab = masked_lm.tokenizer.convert_ids_to_tokens
    texts = ["the film was [MASK]", "anna lives in [MASK] ."]
    for text, result in zip(texts, masked_lm.predict([{"text": text} for text in texts])):
        assert result["tokens"][0] == "[CLS]" and "[MASK]" in result["tokens"]
        probabilities = torch.softmax(reference_output(masked_lm, text).logits[0], dim=-1)
        assert len(result["pred_tokens"]) == len(result["tokens"])
        for candidates, expected in zip(result["pred_tokens"], probabilities):
            check_ranked(candidates, expected, vocab, masked_lm.top_k)
        check_internals(masked_lm, result, gradients=False)
    check_batching(masked_lm, ("pred_tokens", "layer_0/avg_emb"))


def test_asking_for_fewer_fields_skips_gradients_attention_and_generation(causal_lm, regressor):
    from litdesk.core.predict import ROW_LEVEL_TYPES

    example = [{"text": "the cat sat"}]
    row_level = [name for name, t in causal_lm.output_spec().items()
                 if isinstance(t, ROW_LEVEL_TYPES)]
    (lean,) = causal_lm.predict_fields(example, row_level)
    (full,) = causal_lm.predict(example)
    assert {"generated_text", "token_grad_text", "layer_1/attention"} <= set(full)
    assert not {"generated_text", "token_grad_text", "layer_1/attention"} & set(lean)
    np.testing.assert_allclose(lean["layer_1/avg_emb"], full["layer_1/avg_emb"], atol=1e-6)
    (score_only,) = regressor.predict_fields(example, ["score"])
    assert "token_grad_text" not in score_only
    assert score_only["score"] == pytest.approx(regressor.predict(example)[0]["score"], abs=1e-6)


@pytest.mark.parametrize("model_name", ["regressor", "causal_lm"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_direct_tokenization_matches_the_transformers_wrapper(model_name, side, request):
    model = request.getfixturevalue(model_name)
    texts = ["the cat sat", "", "a much longer text about the cat that sat on the mat " * 30,
             "UPPER case, punctuation! and ünïcode"]
    ours = model._tokenize(texts, side)
    model.tokenizer.padding_side = side
    theirs = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_length,
                             return_tensors="pt")
    assert set(ours) == set(theirs.keys())
    for name in ours:
        assert ours[name].tolist() == theirs[name].tolist(), name


def test_bf16_autocast_stays_close_to_full_precision(tmp_path_factory):
    folder, tokenizer = tmp_path_factory.mktemp("mixed"), bert_tokenizer()
    torch.manual_seed(0)
    saved(folder, transformers.BertForSequenceClassification(
        bert_config(tokenizer, num_labels=1, problem_type="regression")), tokenizer)
    full = load_model(folder, LoadOptions(device="cpu"))
    mixed = load_model(folder, LoadOptions(device="cpu", precision="bf16"))
    example = [{"text": "the cat sat on the mat"}]
    assert mixed.fingerprint() != full.fingerprint()
    assert mixed.predict(example)[0]["score"] == pytest.approx(
        full.predict(example)[0]["score"], abs=0.05)
    with pytest.raises(Exception, match="precision 'fp8'"):
        load_model(folder, LoadOptions(device="cpu", precision="fp8"))
