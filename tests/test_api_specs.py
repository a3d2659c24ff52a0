"""Spec lookups: one helper in the api instead of a loop in every module."""

from litdesk.api import (CategoryLabel, Embeddings, MulticlassPreds, RegressionScore, Scalar,
                         find_spec_keys, first_spec_key)

SPEC = {"probas": MulticlassPreds(vocab=("a", "b"), parent="label"), "emb": Embeddings(),
        "score": RegressionScore(), "other": MulticlassPreds(vocab=("x",)),
        "age": Scalar(), "kind": CategoryLabel()}


def test_find_spec_keys_keeps_spec_order_and_takes_several_types():
    assert find_spec_keys(SPEC, MulticlassPreds) == ["probas", "other"]
    assert find_spec_keys(SPEC, (Scalar, CategoryLabel)) == ["age", "kind"]
    assert find_spec_keys(SPEC, MulticlassPreds, lambda t: t.parent is not None) == ["probas"]


def test_first_spec_key_is_the_first_or_none():
    assert first_spec_key(SPEC, (RegressionScore, Embeddings)) == "emb"
    assert first_spec_key(SPEC, MulticlassPreds, lambda t: len(t.vocab) == 1) == "other"
    assert first_spec_key({}, Embeddings) is None
