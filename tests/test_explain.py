"""The attribution engine against independent references on tiny models built here:
finite differences, exact integrals, hand-computed score drops and brute-force Shapley values."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from litdesk.api import (Dataset, Model, RegressionScore, Scalar, TextSegment)
from litdesk.core.cache import ResultCache
from litdesk.core.explain import (METHODS, Attribution, aggregate_words, explain_job,
                                  methods_for)
from litdesk.core.jobs import run_job
from tests.fakes import KeywordModel
from tests.tiny_text_model import LABELS, TinyTextModel

TEXTS = ["the film was great", "the film was dull", "not great at all", "dull"]


def text_dataset(texts=TEXTS) -> Dataset:
    return Dataset(pa.table({"text": texts}), {"text": TextSegment()}, "reviews")


def logit(model: TinyTextModel, embeddings: torch.Tensor, target: int) -> float:
    mask = torch.ones(1, embeddings.shape[0], dtype=torch.bool)
    return float(model.logits_from_embeddings(embeddings[None], mask)[0, target])


def finite_difference_gradient(model, text, target, step=1e-6) -> np.ndarray:
    embeddings = model.embed_texts([text]).embeddings[0]
    gradient = np.zeros(tuple(embeddings.shape))
    for index in itertools.product(*map(range, embeddings.shape)):
        up, down = embeddings.clone(), embeddings.clone()
        up[index] += step
        down[index] -= step
        gradient[index] = (logit(model, up, target) - logit(model, down, target)) / (2 * step)
    return gradient


def test_methods_follow_what_the_model_offers():
    assert methods_for(TinyTextModel(linear=False)) == [
        "grad_l2", "grad_dot_input", "integrated_gradients", "lime", "occlusion"]
    assert methods_for(KeywordModel()) == ["model_salience", "lime", "occlusion"]
    assert methods_for(ThreeFeatureModel()) == ["kernel_shap"]
    assert set(methods_for(TinyTextModel(linear=True))) <= set(METHODS)


def test_gradient_methods_match_finite_differences():
    model = TinyTextModel(linear=False)
    dataset = text_dataset()
    norms = run_job(explain_job(model, dataset, range(len(TEXTS)), "grad_l2"))
    dots = run_job(explain_job(model, dataset, range(len(TEXTS)), "grad_dot_input"))
    for text, norm, dot in zip(TEXTS, norms, dots):
        target = LABELS.index(norm.target)
        assert norm.target == dot.target
        probas = model.predict([{"text": text}])[0]["probas"]
        assert target == int(np.argmax(probas))  # the predicted class by default
        gradient = finite_difference_gradient(model, text, target)
        expected_norm = np.linalg.norm(gradient, axis=-1)
        np.testing.assert_allclose(norm.scores, expected_norm / expected_norm.sum(), rtol=1e-6)
        embeddings = model.embed_texts([text]).embeddings[0].numpy()
        np.testing.assert_allclose(dot.scores, (gradient * embeddings).sum(-1), rtol=1e-6,
                                   atol=1e-9)
        assert norm.features == dot.features == tuple(text.split())
        assert not norm.signed and dot.signed


def test_integrated_gradients_on_a_linear_model_is_exact():
    model = TinyTextModel(linear=True)
    for baseline in ("pad", "zeros"):
        (result,) = run_job(explain_job(model, text_dataset(), [0], "integrated_gradients",
                                        {"baseline": baseline, "steps": 5}, target="positive"))
        batch = model.embed_texts([TEXTS[0]])
        start = batch.baseline[0] if baseline == "pad" else torch.zeros_like(batch.embeddings[0])
        expected = ((batch.embeddings[0] - start) @ model.weights[:, 1]).numpy()
        np.testing.assert_allclose(result.scores, expected, rtol=1e-9, atol=1e-12)
        assert result.target == "positive"
        assert result.completeness_error < 1e-9


def test_integrated_gradients_is_complete_on_a_nonlinear_model():
    model = TinyTextModel(linear=False)
    results = run_job(explain_job(model, text_dataset(), range(len(TEXTS)),
                                  "integrated_gradients"))
    for text, result in zip(TEXTS, results):
        batch = model.embed_texts([text])
        target = LABELS.index(result.target)
        change = (logit(model, batch.embeddings[0], target)
                  - logit(model, batch.baseline[0], target))
        assert abs(result.scores.sum() - change) / abs(change) == pytest.approx(
            result.completeness_error, abs=1e-9)
        assert result.completeness_error < 0.01


class WordWeightModel(Model):
    """A score linear in which words are present: the sum of their weights."""

    WEIGHTS = {"great": 2.0, "fine": 0.5, "dull": -1.5, "the": 0.0, "plot": 0.1}

    def __init__(self) -> None:
        self.name = "word-weights"
        self.calls = 0

    def input_spec(self):
        return {"text": TextSegment()}

    def output_spec(self):
        return {"score": RegressionScore()}

    def predict(self, inputs):
        self.calls += 1
        return [{"score": sum(self.WEIGHTS[w] for w in example["text"].split())}
                for example in inputs]


def test_lime_recovers_the_weights_of_a_linear_text_model():
    text = "the plot great fine dull"
    dataset = text_dataset([text])
    (result,) = run_job(explain_job(WordWeightModel(), dataset, [0], "lime"))
    weights = [WordWeightModel.WEIGHTS[w] for w in text.split()]
    assert result.features == tuple(text.split())
    assert result.target == ""
    assert list(np.argsort(result.scores)) == list(np.argsort(weights))
    np.testing.assert_allclose(result.scores, weights, atol=0.2)
    again = run_job(explain_job(WordWeightModel(), dataset, [0], "lime"))[0]
    np.testing.assert_array_equal(again.scores, result.scores)  # seeded
    other_seed = run_job(explain_job(WordWeightModel(), dataset, [0], "lime", {"seed": 3}))[0]
    assert not np.array_equal(other_seed.scores, result.scores)


def test_occlusion_is_the_score_drop_of_each_word():
    model = KeywordModel()
    text = "good film but awful ending great"
    (result,) = run_job(explain_job(model, text_dataset([text]), [0], "occlusion"))
    words = text.split()
    full = model.predict([{"text": text}])[0]["probas"]
    target = int(np.argmax(full))
    drops = [full[target] - model.predict([{"text": " ".join(words[:i] + words[i + 1:])}])[0]
             ["probas"][target] for i in range(len(words))]
    assert result.target == LABELS[target]
    np.testing.assert_allclose(result.scores, drops, rtol=1e-6)
    (masked,) = run_job(explain_job(model, text_dataset([text]), [0], "occlusion",
                                    {"mask": "meh"}, target="negative"))
    replaced = [model.predict([{"text": " ".join(words[:i] + ["meh"] + words[i + 1:])}])[0]
                ["probas"][0] for i in range(len(words))]
    np.testing.assert_allclose(masked.scores, full[0] - np.array(replaced), rtol=1e-6)


class ThreeFeatureModel(Model):
    """f(a, b, c) = a + 2b + a·c: an interaction, so Shapley values differ from the weights."""

    name = "three"

    def input_spec(self):
        return {"a": Scalar(), "b": Scalar(), "c": Scalar()}

    def output_spec(self):
        return {"y": RegressionScore()}

    @staticmethod
    def f(a, b, c):
        return a + 2 * b + a * c

    def predict(self, inputs):
        return [{"y": self.f(e["a"], e["b"], e["c"])} for e in inputs]


def brute_force_shapley(f, x: dict, baseline: dict) -> list[float]:
    names = list(x)
    m = len(names)
    values = []
    for name in names:
        others = [n for n in names if n != name]
        total = 0.0
        for size in range(m):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                point = {n: x[n] if n in subset else baseline[n] for n in names}
                total += weight * (f(**{**point, name: x[name]}) - f(**point))
        values.append(total)
    return values


def test_kernel_shap_equals_brute_force_shapley_values():
    table = pa.table({"a": [1.0, 3.0, 2.0], "b": [0.0, 1.0, 2.0], "c": [2.0, -1.0, 5.0]})
    dataset = Dataset(table, {name: Scalar() for name in "abc"}, "tabular")
    (result,) = run_job(explain_job(ThreeFeatureModel(), dataset, [2], "kernel_shap",
                                    {"samples": 2000}))
    means = {"a": 2.0, "b": 1.0, "c": 2.0}
    expected = brute_force_shapley(ThreeFeatureModel.f, {"a": 2.0, "b": 2.0, "c": 5.0}, means)
    assert result.kind == "features" and result.features == ("a", "b", "c")
    np.testing.assert_allclose(result.scores, expected, atol=0.05)
    assert result.scores.sum() == pytest.approx(sum(expected), abs=1e-3)


def test_a_models_own_attribution_is_what_it_outputs_for_the_class_it_chooses():
    model, dataset = KeywordModel(), text_dataset(["great film", "dull and boring", "fine"])
    attributions = run_job(explain_job(model, dataset, [0, 1, 2], "model_salience"))
    assert model.calls == 1  # the rows in one batch
    for attribution, result in zip(attributions, model.predict(
            [{"text": text} for text in dataset.table.column("text").to_pylist()])):
        assert attribution.features == tuple(result["tokens"])
        np.testing.assert_array_equal(attribution.scores, result["token_salience"])
        assert attribution.target == LABELS[int(np.argmax(result["probas"]))]
        assert attribution.signed and attribution.kind == "tokens"
    with pytest.raises(ValueError, match="attribution of the class it chooses"):
        run_job(explain_job(model, dataset, [0], "model_salience", target="negative"))


def test_the_linear_demo_model_is_explained_without_importing_torch():
    import subprocess
    import sys

    from litdesk.core import paths

    (linear,) = [path for path in paths.DEMO_MODELS if path.name == "bow_linear"]
    code = (
        "import sys\n"
        "from litdesk.core.explain import explain_job, methods_for\n"
        "from litdesk.core.jobs import run_job\n"
        "from litdesk.core.loaders import load_dataset\n"
        "from litdesk.core.model_loading import load_model\n"
        "from litdesk.ui.docks.salience import default_methods\n"
        f"model = load_model({str(linear)!r})\n"
        "(method,) = default_methods(methods_for(model))\n"
        f"dataset = load_dataset({str(paths.DEMO_DATASET)!r})\n"
        "(attribution,) = run_job(explain_job(model, dataset, [0], method))\n"
        "print(method, len(attribution.features) > 0, "
        "sorted({'torch', 'captum'} & set(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "model_salience True []"


def test_results_come_from_the_cache_the_second_time(tmp_path):
    cache = ResultCache(tmp_path)
    model = WordWeightModel()
    dataset = text_dataset(["the plot great", "dull fine"])
    first = run_job(explain_job(model, dataset, [0, 1], "occlusion", cache=cache))
    calls = model.calls
    again = run_job(explain_job(model, dataset, [1, 0], "occlusion", cache=cache))
    assert model.calls == calls
    assert [a.features for a in again] == [first[1].features, first[0].features]
    np.testing.assert_array_equal(again[0].scores, first[1].scores)
    run_job(explain_job(model, dataset, [0], "occlusion", {"mask": "fine"}, cache=cache))
    assert model.calls > calls  # other parameters, another result


class MemoryHungryTinyModel(TinyTextModel):
    """Runs out of (simulated) device memory on batches larger than ``fits``."""

    def __init__(self, fits: int) -> None:
        super().__init__(linear=False, batch_size=8)
        self.fits = fits

    def embed_texts(self, texts):
        if len(texts) > self.fits:
            self.embedded_batches.append(len(texts))
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().embed_texts(texts)


def test_out_of_memory_halves_the_batch():
    model = MemoryHungryTinyModel(fits=2)
    texts = TEXTS * 2
    results = run_job(explain_job(model, text_dataset(texts), range(len(texts)), "grad_l2"))
    assert model.embedded_batches[:3] == [8, 4, 2]
    assert [r.features for r in results] == [tuple(t.split()) for t in texts]
    reference = run_job(explain_job(TinyTextModel(linear=False), text_dataset(texts),
                                    range(len(texts)), "grad_l2"))
    for result, expected in zip(results, reference):
        np.testing.assert_allclose(result.scores, expected.scores)


def test_bad_requests_are_one_clear_error():
    model, dataset = TinyTextModel(linear=False), text_dataset()
    with pytest.raises(ValueError, match="no parameter samples"):
        run_job(explain_job(model, dataset, [0], "integrated_gradients", {"samples": 3}))
    with pytest.raises(ValueError, match="target 'maybe'"):
        run_job(explain_job(model, dataset, [0], "grad_l2", target="maybe"))
    with pytest.raises(ValueError, match="does not apply"):
        run_job(explain_job(KeywordModel(), dataset, [0], "integrated_gradients"))
    with pytest.raises(ValueError, match="steps must be"):
        run_job(explain_job(model, dataset, [0], "integrated_gradients", {"steps": 0}))


@pytest.mark.parametrize("tokens, words", [
    (["[CLS]", "un", "##believ", "##able", "film", "[SEP]"], ["unbelievable", "film"]),
    (["▁un", "believ", "able", "▁film", "</s>"], ["unbelievable", "film"]),
    (["<|endoftext|>", "un", "believ", "able", "Ġfilm"], ["unbelievable", "film"]),
])
def test_sub_word_tokens_merge_into_words(tokens, words):
    scores = np.arange(1.0, len(tokens) + 1)
    attribution = Attribution("m", "grad_dot_input", tuple(tokens), scores, True)
    merged = aggregate_words(attribution)
    assert list(merged.features) == words
    kept = [s for t, s in zip(tokens, scores) if t not in ("[CLS]", "[SEP]", "</s>", "<|endoftext|>")]
    assert merged.scores.sum() == pytest.approx(sum(kept))
    assert merged.scores[-1] == pytest.approx(kept[-1])


DEMO = Path(__file__).resolve().parents[1] / "litdesk" / "resources" / "demo"


@pytest.fixture(scope="module")
def demo_bert():
    from litdesk.core.batch import load_batch_inputs

    dataset, (model,) = load_batch_inputs([DEMO / "models" / "bert_tiny"], DEMO / "sentiment.csv")
    return model, dataset


@pytest.mark.slow
def test_the_transformers_hook_gives_the_gradients_its_predictions_hold(demo_bert):
    model, dataset = demo_bert
    (result,) = run_job(explain_job(model, dataset, [1], "grad_dot_input"))
    output = model.predict_fields([{"text": dataset.table.column("text")[1].as_py()}],
                                  ["tokens", "token_grad_text", "token_embs"])[0]
    assert list(result.features) == output["tokens"]
    np.testing.assert_allclose(result.scores,
                               (output["token_grad_text"] * output["token_embs"]).sum(-1),
                               rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_integrated_gradients_is_within_one_percent_on_the_demo_bert(demo_bert):
    model, dataset = demo_bert
    split = dataset.table.column("split").to_pylist()
    rows = [row for row, name in enumerate(split) if name == "test"][:64]
    results = run_job(explain_job(model, dataset, rows, "integrated_gradients"))
    errors = np.array([r.completeness_error for r in results])
    assert np.mean(errors <= 0.01) >= 0.95
    assert all(r.features[0] == "[CLS]" and r.scores[0] == 0.0 for r in results)
