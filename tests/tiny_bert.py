"""The shape of the tiny BERT classifier that the ``model_dir`` fixture (conftest.py) saves."""

WORDS = ["the", "film", "was", "great", "awful", "plot", "not", "good", "bad", "very", "a", "story"]
LABELS = ["negative", "neutral", "positive"]
HIDDEN, LAYERS, HEADS = 16, 2, 2
