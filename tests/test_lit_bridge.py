"""The LIT bridge: LIT models and datasets used through litdesk's contracts and engine.

The tests run against the installed lit-nlp when there is one, else against the stand-in
package in tests/fake_lit.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api import (
    AttentionHeads,
    Boolean,
    CategoryLabel,
    Dataset,
    Embeddings,
    FeatureSalience,
    GeneratedText,
    ImageBytes,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
    TokenSalience,
    TokenTopKPreds,
)
from litdesk.core.explain import explain_job
from litdesk.core.jobs import run_job
from litdesk.core.lit_bridge import (
    DatasetFromLit,
    LitModelAdapter,
    adapt,
    dataset_from_lit,
    is_lit_dataset,
    is_lit_model,
    spec_from_lit,
)
from litdesk.core.predict import predict_job
from tests.fakes import KeywordModel

FAKE_LIT = Path(__file__).parent / "fake_lit"
LABELS = ("negative", "positive")
POSITIVE_WORDS = {"good", "great", "love"}
REVIEWS = [("a good film", "positive"), ("dull and long", "negative"),
           ("i love it , great cast", "positive"), ("not for me", "negative"),
           ("good", "positive")]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8  # a PNG signature is all the bridge looks at


@pytest.fixture(scope="module")
def lit():
    """lit_nlp.api's types, model and dataset modules: lit-nlp's own, else the stand-in."""
    use_stand_in = importlib.util.find_spec("lit_nlp") is None
    if use_stand_in:
        sys.path.insert(0, str(FAKE_LIT))
    try:
        yield SimpleNamespace(**{part: importlib.import_module(f"lit_nlp.api.{part}")
                                 for part in ("types", "model", "dataset")})
    finally:
        if use_stand_in:
            sys.path.remove(str(FAKE_LIT))
            for module in [m for m in sys.modules if m.split(".")[0] == "lit_nlp"]:
                del sys.modules[module]


@pytest.fixture(scope="module")
def lit_sentiment_model(lit):
    t = lit.types

    class LitSentimentModel(lit.model.BatchedModel):
        """Keyword sentiment, written against LIT's API; returns lists, as many LIT models do."""

        def max_minibatch_size(self):
            return 3

        def input_spec(self):
            return {"sentence": t.TextSegment(),
                    "label": t.CategoryLabel(vocab=list(LABELS), required=False)}

        def output_spec(self):
            return {"probas": t.MulticlassPreds(vocab=list(LABELS), parent="label"),
                    "tokens": t.Tokens(parent="sentence"),
                    "token_grads": t.TokenGradients(align="tokens", grad_for="token_embs"),
                    "token_embs": t.TokenEmbeddings(align="tokens"),
                    "layer_0/attention": t.AttentionHeads(align_in="tokens", align_out="tokens"),
                    "pred_tokens": t.TokenTopKPreds(align="tokens"),
                    "cls_emb": t.Embeddings(),
                    "spans": t.SpanLabels(align="tokens")}

        def predict_minibatch(self, inputs):
            return [self._predict_one(example["sentence"].split()) for example in inputs]

        @staticmethod
        def _predict_one(words):
            hits = [1.0 if word in POSITIVE_WORDS else -0.25 for word in words]
            positive = 1 / (1 + np.exp(-sum(hits)))
            n = len(words)
            return {"probas": [1 - positive, positive], "tokens": words,
                    "token_grads": [[hit, 0.0] for hit in hits],
                    "token_embs": [[float(len(word)), 1.0] for word in words],
                    "layer_0/attention": [[[1 / n] * n] * n],
                    "pred_tokens": [[(word, 1.0)] for word in words],
                    "cls_emb": [sum(hits), float(n)], "spans": []}

    return LitSentimentModel()


@pytest.fixture(scope="module")
def lit_reviews(lit):
    t = lit.types
    spec = {"sentence": t.TextSegment(), "label": t.CategoryLabel(vocab=list(LABELS)),
            "source": t.URL(), "stars": t.Integer(min_val=1, max_val=5)}
    examples = [{"sentence": text, "label": label, "source": f"https://example.org/{i}",
                 "stars": 5 if label == "positive" else 1}
                for i, (text, label) in enumerate(REVIEWS)]
    return lit.dataset.Dataset(spec=spec, examples=examples)


def test_every_lit_type_with_a_litdesk_equivalent_maps_with_its_attributes(lit):
    t = lit.types
    lit_spec = {
        "text": t.TextSegment(), "note": t.String(required=False), "url": t.URL(),
        "query": t.SearchQuery(), "label": t.CategoryLabel(vocab=["a", "b"]),
        "score": t.Scalar(min_val=-1, max_val=1), "count": t.Integer(), "flag": t.Boolean(),
        "image": t.ImageBytes(), "png": t.PNGBytes(),
        "probas": t.MulticlassPreds(vocab=["a", "b"], parent="label", null_idx=0),
        "predicted_score": t.RegressionScore(parent="score"), "emb": t.Embeddings(),
        "tokens": t.Tokens(parent="text"),
        "grads": t.TokenGradients(align="tokens", grad_for="token_embs",
                                  grad_target_field_key="label"),
        "token_embs": t.TokenEmbeddings(align="tokens"),
        "attention": t.AttentionHeads(align_in="tokens", align_out="tokens"),
        "top_k": t.TokenTopKPreds(align="tokens"), "generated": t.GeneratedText(parent="text"),
        "token_salience": t.TokenSalience(signed=True),
        "feature_salience": t.FeatureSalience(signed=False),
    }
    mapped = spec_from_lit(lit_spec)
    assert mapped == {
        "text": TextSegment(), "note": TextSegment(required=False), "url": TextSegment(),
        "query": TextSegment(), "label": CategoryLabel(vocab=("a", "b")),
        "score": Scalar(min_val=-1, max_val=1), "count": Scalar(min_val=-32768, max_val=32767),
        "flag": Boolean(), "image": ImageBytes(), "png": ImageBytes(),
        "probas": MulticlassPreds(vocab=("a", "b"), parent="label", null_idx=0),
        "predicted_score": RegressionScore(parent="score"), "emb": Embeddings(),
        "tokens": Tokens(parent="text"),
        "grads": TokenGradients(align="tokens", grad_for="token_embs",
                                grad_target_field_key="label"),
        "token_embs": TokenEmbeddings(align="tokens"),
        "attention": AttentionHeads(align_in="tokens", align_out="tokens"),
        "top_k": TokenTopKPreds(align="tokens"), "generated": GeneratedText(parent="text"),
        "token_salience": TokenSalience(signed=True),
        "feature_salience": FeatureSalience(signed=False),
    }
    assert mapped.dropped == {}


def test_unknown_lit_types_are_dropped_and_named_while_subclasses_map_to_their_base(lit):
    t = lit.types

    class Headline(t.TextSegment):
        """A user's subclass of a LIT type."""

    class Sketch(t.LitType):
        """A user's type that no litdesk type stands for."""

    mapped = spec_from_lit({"headline": Headline(), "spans": t.SpanLabels(align="tokens"),
                            "sketch": Sketch()})
    assert mapped == {"headline": TextSegment()}
    assert mapped.dropped == {"spans": "SpanLabels", "sketch": "Sketch"}


def test_adapted_model_maps_specs_and_returns_arrays(lit_sentiment_model):
    model = adapt(lit_sentiment_model, "sentiment")
    assert isinstance(model, LitModelAdapter) and model.name == "sentiment"
    assert model.input_spec() == {"sentence": TextSegment(),
                                  "label": CategoryLabel(vocab=LABELS, required=False)}
    assert model.output_spec()["probas"] == MulticlassPreds(vocab=LABELS, parent="label")
    assert "spans" not in model.output_spec()
    assert model.dropped_outputs == {"spans": "SpanLabels"} and model.dropped_inputs == {}
    assert model.max_minibatch_size() == 3

    (output,) = model.predict([{"sentence": "a good film"}])
    for name, shape in [("probas", (2,)), ("cls_emb", (2,)), ("token_grads", (3, 2)),
                        ("token_embs", (3, 2)), ("layer_0/attention", (1, 3, 3))]:
        assert isinstance(output[name], np.ndarray) and output[name].dtype == np.float32
        assert output[name].shape == shape
    assert output["tokens"] == ["a", "good", "film"]
    assert output["pred_tokens"][1] == [("good", 1.0)]


def test_fingerprint_is_stable_across_instances_and_differs_by_name(lit_sentiment_model):
    twin = type(lit_sentiment_model)()
    assert (LitModelAdapter(lit_sentiment_model, "a").fingerprint()
            == LitModelAdapter(twin, "a").fingerprint())
    assert (LitModelAdapter(lit_sentiment_model, "a").fingerprint()
            != LitModelAdapter(lit_sentiment_model, "b").fingerprint())
    assert LitModelAdapter(lit_sentiment_model).name == "LitSentimentModel"


def test_adapted_dataset_holds_the_examples_in_arrow(lit_reviews):
    dataset = adapt(lit_reviews, "reviews")
    assert isinstance(dataset, DatasetFromLit) and dataset.name == "reviews"
    assert dataset.spec() == {"sentence": TextSegment(), "label": CategoryLabel(vocab=LABELS),
                              "source": TextSegment(), "stars": Scalar(min_val=1, max_val=5)}
    assert dataset.dropped == {}
    assert dataset.table.column_names == ["sentence", "label", "source", "stars"]
    assert len(dataset) == len(REVIEWS)
    assert dataset.example(1)["sentence"] == "dull and long"


def test_the_engine_predicts_and_explains_with_the_adapted_pair(lit_sentiment_model, lit_reviews):
    model, dataset = adapt(lit_sentiment_model), adapt(lit_reviews)
    predictions = run_job(predict_job(model, dataset))
    assert predictions.fields["probas"].shape == (len(REVIEWS), 2)
    assert predictions.fields["cls_emb"].dtype == np.float32
    _, predicted, vocab = predictions.predicted_labels()
    assert [vocab[i] for i in predicted] == [label for _, label in REVIEWS]

    (attribution,) = run_job(explain_job(model, dataset, [2], "grad_l2"))  # its own gradients
    assert attribution.features == tuple(REVIEWS[2][0].split())
    assert attribution.target == "positive"
    assert attribution.scores.sum() == pytest.approx(1.0)


def test_values_arrow_cannot_hold_uniformly_stay_as_json_and_leave_the_spec(lit):
    t = lit.types
    lit_dataset = lit.dataset.Dataset(
        spec={"text": t.TextSegment(), "tokens": t.Tokens(), "label": t.CategoryLabel()},
        examples=[{"text": "a b", "tokens": ["a", "b"], "label": 1, "extra": {"k": 1},
                   "_id": "x1"},
                  {"text": "c", "tokens": "c", "label": 0, "extra": "plain", "_id": "x2"}])
    dataset = dataset_from_lit(lit_dataset)
    assert dataset.spec() == {"text": TextSegment(), "label": CategoryLabel()}
    assert dataset.dropped == {"tokens": "Tokens"}
    assert dataset.table.column_names == ["text", "tokens", "label", "extra"]
    assert dataset.table.column("tokens").to_pylist() == ['["a", "b"]', "c"]
    assert dataset.table.column("extra").to_pylist() == ['{"k": 1}', "plain"]
    assert dataset.table.column("label").to_pylist() == ["1", "0"]  # conformed to text


def test_images_are_bytes_in_litdesk_and_data_urls_in_lit(lit):
    t = lit.types
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()

    class LitImageModel(lit.model.Model):
        """Says whether it received a PNG data URL; a plain LIT Model has no batch size."""

        def input_spec(self):
            return {"image": t.ImageBytes()}

        def output_spec(self):
            return {"is_png_url": t.Scalar(), "echo": t.ImageBytes()}

        def predict(self, inputs, **kw):
            return ({"is_png_url": float(example["image"] == data_url), "echo": example["image"]}
                    for example in inputs)

    dataset = dataset_from_lit(lit.dataset.Dataset(spec={"image": t.PNGBytes()},
                                                   examples=[{"image": data_url}]))
    assert dataset.table.column("image").type == pa.binary()
    assert dataset.example(0)["image"] == PNG
    model = LitModelAdapter(LitImageModel())
    assert model.max_minibatch_size() == KeywordModel().max_minibatch_size()
    (output,) = model.predict(dataset.examples([0]))
    assert output == {"is_png_url": 1.0, "echo": PNG}


def test_litdesk_and_plain_objects_are_not_lit_objects(lit_sentiment_model, lit_reviews):
    litdesk_dataset = Dataset(pa.table({"text": ["a"]}), {"text": TextSegment()})
    for obj in (KeywordModel(), litdesk_dataset, object(), "text", type(lit_sentiment_model)):
        assert not is_lit_model(obj) and not is_lit_dataset(obj)
    assert is_lit_model(lit_sentiment_model) and not is_lit_dataset(lit_sentiment_model)
    assert is_lit_dataset(lit_reviews) and not is_lit_model(lit_reviews)

    keyword_model = KeywordModel()
    assert adapt(keyword_model) is keyword_model and adapt(litdesk_dataset) is litdesk_dataset
    with pytest.raises(TypeError, match="neither a litdesk Model or Dataset nor a LIT"):
        adapt(object())


def test_importing_the_bridge_imports_no_lit_module():
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(FAKE_LIT)!r})  # importable, so only the bridge's restraint stops it
        import litdesk.core.lit_bridge
        print([name for name in sys.modules if name.split('.')[0] == 'lit_nlp'])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_show_opens_lit_objects_unchanged(lit_sentiment_model, lit_reviews, qapp, tmp_path):
    import litdesk

    shot = tmp_path / "lit.png"
    status = litdesk.show(models={"lit_sentiment": lit_sentiment_model},
                          datasets={"lit_reviews": lit_reviews}, exit_when_ready=True,
                          screenshot=shot)
    assert status == 0 and shot.stat().st_size > 10_000
