"""Counterfactual generators: every candidate is a valid row of its dataset, and every flip is
checked by predicting it again; minimality against brute force on tiny models built here."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from litdesk.api import (CategoryLabel, Dataset, LoadOptions, Model, MulticlassPreds, Scalar,
                         TextSegment)
from litdesk.api.model import TokenSwapModel, TokenVocabulary
from litdesk.core.generators import (GENERATORS, Candidate, applicable, generate_job,
                                     parse_substitutions)
from litdesk.core.jobs import run_job
from tests.fakes import KeywordModel
from tests.tiny_text_model import VOCAB, TinyTextModel


def run(name, dataset, rows, params=None, model=None) -> list[Candidate]:
    return run_job(generate_job(name, dataset, rows, params or {}, model))


def assert_valid(dataset: Dataset, candidates: list[Candidate]) -> None:
    """Whole rows that fit the table's schema, each different from its parent."""
    for candidate in candidates:
        assert list(candidate.values) == dataset.table.column_names
        assert candidate.values != dataset.example(candidate.parent)
        assert candidate.origin
    pa.Table.from_pylist([c.values for c in candidates], schema=dataset.table.schema)


def reviews(texts, **columns) -> Dataset:
    table = pa.table({"text": texts, "label": ["positive"] * len(texts), **columns})
    spec = {"text": TextSegment(), "label": CategoryLabel(vocab=("negative", "positive"))}
    spec.update({name: TextSegment() for name in columns})
    return Dataset(table, spec, "reviews")


def predicted(model: Model, values: dict) -> int:
    (output,) = model.predict([values])
    name = next(n for n, t in model.output_spec().items() if isinstance(t, MulticlassPreds))
    return int(np.argmax(output[name]))


# --- Forms and parameters --------------------------------------------------------------------


def test_every_generator_has_a_form_with_defaults_it_accepts():
    assert set(GENERATORS) == {"word_replacer", "scrambler", "ablation_flip", "hotflip",
                               "tabular_flip"}
    dataset = reviews(["the film was great"])
    for name, info in GENERATORS.items():
        assert len({p.name for p in info.params}) == len(info.params)
        for param in info.params:
            assert type(param.default) in (str, bool, int, float) and param.help
    defaults = {name: {p.name: p.default for p in info.params} for name, info in GENERATORS.items()}
    assert len(run("word_replacer", dataset, [0], defaults["word_replacer"])) == 2
    assert len(run("scrambler", dataset, [0], defaults["scrambler"])) == 3
    assert len(run("ablation_flip", dataset, [0], defaults["ablation_flip"], KeywordModel())) == 1


@pytest.mark.parametrize("params, message", [
    ({"colour": 1}, "has no parameter colour"),
    ({"max_per_row": 0}, "at least 1"),
    ({"max_per_row": "3"}, "whole number"),
    ({"ignore_case": 1}, "true or false"),
    ({"substitutions": "great terrible"}, "not: word -> replacement"),
    ({"substitutions": "great -> "}, "not: word -> replacement"),
    ({"substitutions": " , "}, "no substitutions"),
    ({"fields": "text, title"}, "title: not a text field"),
])
def test_bad_params_are_one_line_errors(params, message):
    with pytest.raises(ValueError, match=message) as error:
        generate_job("word_replacer", reviews(["great"]), [0], params)
    assert "\n" not in str(error.value)


def test_applicable_says_why_not():
    texts, tabular = reviews(["great"]), toy_dataset()
    assert applicable("word_replacer", texts, None) is None
    assert "no text fields" in applicable("scrambler", tabular, None)
    assert "needs a model" in applicable("ablation_flip", texts, None)
    assert applicable("ablation_flip", texts, KeywordModel()) is None
    assert "reads no text field" in applicable("ablation_flip", tabular, ToyModel())
    assert "reads no number or category" in applicable("tabular_flip", texts, KeywordModel())
    assert "token gradients" in applicable("hotflip", texts, KeywordModel())
    assert "embedding table" in applicable("hotflip", tiny_texts(), TinyTextModel(linear=True))
    assert applicable("hotflip", tiny_texts(), VocabularyModel()) is None
    with pytest.raises(ValueError, match="needs a model"):
        generate_job("tabular_flip", tabular, [0], {})


def test_progress_comes_once_a_row_and_the_job_stops_when_closed():
    dataset = reviews(["the film was great"] * 5)
    progress = []
    candidates = run_job(generate_job("ablation_flip", dataset, range(5), {}, KeywordModel()),
                         progress.append)
    assert len(candidates) == 5
    assert {p.done for p in progress} >= set(range(6))
    assert progress[-1].done == progress[-1].total == 5
    job = generate_job("scrambler", dataset, range(5), {})
    next(job)
    job.close()  # what cancelling does at a yield
    with pytest.raises(StopIteration):
        next(job)


# --- Word replacer and scrambler -------------------------------------------------------------


def test_substitutions_parse_rules_by_comma_or_line():
    assert parse_substitutions("great -> terrible | bad, good->fine\n not good -> poor") == [
        ("great", ("terrible", "bad")), ("good", ("fine",)), ("not good", ("poor",))]


def test_word_replacer_replaces_whole_words_once_per_alternative():
    dataset = reviews(["Great film, great plot", "greatly done", "GREAT", None],
                      title=["great", "fine", "so great", "great"])
    candidates = run(dataset=dataset, rows=range(4), name="word_replacer",
                     params={"substitutions": "great -> terrible | bad", "fields": "text"})
    assert_valid(dataset, candidates)
    texts = [(c.parent, c.values["text"], c.origin) for c in candidates]
    assert texts == [
        (0, "Terrible film, terrible plot", "word replacer: great → terrible"),
        (0, "Bad film, bad plot", "word replacer: great → bad"),
        (2, "TERRIBLE", "word replacer: great → terrible"),
        (2, "BAD", "word replacer: great → bad")]
    assert all(c.values["title"] == dataset.example(c.parent)["title"] for c in candidates)
    exact = run("word_replacer", dataset, range(4),
                {"substitutions": "great -> terrible", "ignore_case": False})
    assert [(c.parent, c.values["text"], c.values["title"]) for c in exact] == [
        (0, "Great film, terrible plot", "terrible"), (2, "GREAT", "so terrible"),
        (3, None, "terrible")]
    capped = run("word_replacer", dataset, [0], {"substitutions": "great -> a | b | c",
                                                 "max_per_row": 2})
    assert len(capped) == 2


def test_scrambler_shuffles_words_deterministically():
    dataset = reviews(["one two three four five", "same same", "alone"],
                      title=["a  b c", "x", ""])
    first = run("scrambler", dataset, range(3), {"count": 4, "seed": 7})
    assert_valid(dataset, first)
    assert first == run("scrambler", dataset, range(3), {"count": 4, "seed": 7})
    assert first != run("scrambler", dataset, range(3), {"count": 4, "seed": 8})
    assert [c.parent for c in first].count(0) == 4
    assert {c.parent for c in first} == {0}  # "same same", "alone" and "x" have no other order
    for candidate in first:
        parent = dataset.example(candidate.parent)
        for field in ("text", "title"):
            assert sorted(candidate.values[field].split()) == sorted(parent[field].split())
            assert re.sub(r"\S+", "w", candidate.values[field]) == \
                re.sub(r"\S+", "w", parent[field])  # the spaces stay where they were
    assert len({tuple(c.values.values()) for c in first}) == 4
    only_title = run("scrambler", dataset, [0], {"fields": "title", "count": 2})
    assert all(c.values["text"] == dataset.example(0)["text"] for c in only_title)
    # The same row shuffles the same whichever rows run with it.
    assert run("scrambler", dataset, [0], {"count": 4, "seed": 7}) == first


# --- Ablation flip ---------------------------------------------------------------------------


def brute_force_drops(model, values, size) -> set[frozenset]:
    words = values["text"].split()
    original = predicted(model, values)
    return {frozenset(d) for d in itertools.combinations(range(len(words)), size)
            if predicted(model, {**values, "text": " ".join(
                w for i, w in enumerate(words) if i not in d)}) != original}


def test_ablation_flip_finds_the_smallest_word_sets_that_flip():
    model = KeywordModel()
    texts = ["the film was great", "great good plot", "a dull end", "good"]
    dataset = reviews(texts)
    candidates = run("ablation_flip", dataset, range(4), {"max_drop": 2, "max_per_row": 50},
                     model)
    assert_valid(dataset, candidates)
    for row, text in enumerate(texts):
        mine = [c for c in candidates if c.parent == row]
        for candidate in mine:
            assert predicted(model, candidate.values) != predicted(model, dataset.example(row))
            assert "ablation flip: dropped" in candidate.origin
        dropped = [len(text.split()) - len(c.values["text"].split()) for c in mine]
        assert dropped == sorted(dropped)  # smallest first
        singles = brute_force_drops(model, dataset.example(row), 1)
        assert sum(d == 1 for d in dropped) == len(singles)
        pairs = brute_force_drops(model, dataset.example(row), 2)
        minimal_pairs = {p for p in pairs if not any(s <= p for s in singles)}
        assert sum(d == 2 for d in dropped) == len(minimal_pairs)
    by_row = {row: [c.values["text"] for c in candidates if c.parent == row] for row in range(4)}
    assert by_row[0] == ["the film was"]
    assert by_row[1] == ["plot"]  # only "great" and "good" together
    assert by_row[2] == [] and by_row[3] == [""]
    assert "(positive → negative)" in candidates[0].origin


def test_ablation_flip_stops_at_its_cap_and_budget():
    model = KeywordModel()
    dataset = reviews(["a b c d e f g h i j k l good great fine"])  # one word less of the
    assert len(run("ablation_flip", dataset, [0], {"max_per_row": 2}, model)) == 2  # last 3 flips
    model.calls = 0
    assert run("ablation_flip", dataset, [0], {"budget": 2}, model) == []  # drops 'a', then 'b'
    assert model.calls == 2  # the original, one batch of two


# --- HotFlip ---------------------------------------------------------------------------------


class VocabularyModel(TinyTextModel, TokenSwapModel):
    """TinyTextModel exposing its embedding table: words swap for words of VOCAB."""

    def __init__(self, linear: bool = True) -> None:
        super().__init__(linear)
        self.name = "tiny-vocab"

    def token_vocabulary(self):
        return TokenVocabulary(self.table, VOCAB, range(1, len(VOCAB)))

    def replace_tokens(self, text, replacements):
        words = text.split()
        for position, token in replacements.items():
            words[position] = VOCAB[token]
        return " ".join(words)


def tiny_texts() -> Dataset:
    texts = ["the film was great", "the film was dull", "not great at all", "dull", "all at"]
    return Dataset(pa.table({"text": texts}), {"text": TextSegment()}, "tiny")


def test_hotflip_swaps_tokens_and_keeps_real_flips_only():
    model, dataset = VocabularyModel(), tiny_texts()
    candidates = run("hotflip", dataset, range(5), {"max_swaps": 2, "max_per_row": 50}, model)
    assert_valid(dataset, candidates)
    assert {c.parent for c in candidates} == {0, 1, 2, 3, 4}
    for candidate in candidates:
        parent = dataset.example(candidate.parent)
        assert predicted(model, candidate.values) != predicted(model, parent)
        words, before = candidate.values["text"].split(), parent["text"].split()
        swapped = sum(a != b for a, b in zip(words, before))
        assert len(words) == len(before) and 1 <= swapped <= 2
        assert re.fullmatch(r"hotflip: .+ \(\w+ → \w+\)", candidate.origin)
    for row in range(5):
        swaps = [sum(a != b for a, b in zip(c.values["text"].split(),
                                            dataset.example(row)["text"].split()))
                 for c in candidates if c.parent == row]
        assert swaps == sorted(swaps)  # single swaps first


def test_hotflip_picks_the_swap_the_gradient_ranks_first():
    """On the linear model the first-order estimate is exact: the first single swap tried is
    the one that lowers the predicted logit most."""
    model, dataset = VocabularyModel(linear=True), tiny_texts()
    (first,) = run("hotflip", dataset, [3], {"max_swaps": 1, "max_per_row": 1, "budget": 1},
                   model)
    original = predicted(model, dataset.example(3))
    logits = {word: float((model.table[VOCAB.index(word)] @ model.weights)[original])
              for word in VOCAB[1:]}
    assert first.values["text"] == min(logits, key=logits.get)


# --- Tabular minimal changes -----------------------------------------------------------------


COLOURS = ("red", "green", "blue")


def toy_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    n = 40
    table = pa.table({"x": rng.normal(0, 2, n), "age": rng.integers(18, 80, n),
                      "colour": [COLOURS[i % 3] for i in range(n)],
                      "note": ["row"] * n})
    spec = {"x": Scalar(), "age": Scalar(), "colour": CategoryLabel(vocab=COLOURS)}
    return Dataset(table, spec, "toy")


class ToyModel(Model):
    """Logistic regression (scikit-learn) on x, age and a one-hot colour."""

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression

        dataset = toy_dataset()
        features = self.features(dataset.examples(range(len(dataset))))
        labels = features[:, 0] + 0.05 * (features[:, 1] - 50) + 1.5 * features[:, 3] > 0
        self.classifier = LogisticRegression().fit(features, labels)
        self.name = "toy"

    @staticmethod
    def features(inputs) -> np.ndarray:
        return np.array([[e["x"], e["age"], *(float(e["colour"] == c) for c in COLOURS)]
                         for e in inputs])

    def input_spec(self):
        return {"x": Scalar(), "age": Scalar(), "colour": CategoryLabel(vocab=COLOURS)}

    def output_spec(self):
        return {"probas": MulticlassPreds(vocab=("no", "yes"))}

    def predict(self, inputs):
        return [{"probas": p} for p in self.classifier.predict_proba(self.features(inputs))]


def grid(dataset: Dataset) -> dict[str, tuple[list, float | None]]:
    """Per column, the values a change may take and the scale of a change (brute force's)."""
    columns = {}
    for name in ("x", "age"):
        data = dataset.table.column(name).to_numpy()
        levels = np.unique(np.quantile(data.astype(float), np.linspace(0, 1, 11)))
        values = sorted({int(round(v)) for v in levels}) if name == "age" else list(levels)
        columns[name] = (values, float(np.std(data)))
    columns["colour"] = (list(COLOURS), None)
    return columns


def change_size(columns, parent: dict, values: dict) -> float:
    return sum(1.0 if columns[c][1] is None else abs(values[c] - parent[c]) / columns[c][1]
               for c in columns if values[c] != parent[c])


def test_tabular_flip_finds_the_smallest_changes():
    model, dataset = ToyModel(), toy_dataset()
    rows = range(12)
    candidates = run("tabular_flip", dataset, rows, {"max_columns": 2, "max_per_row": 6}, model)
    assert_valid(dataset, candidates)
    columns = grid(dataset)
    assert {c.parent for c in candidates} == set(rows)
    for row in rows:
        parent = dataset.example(row)
        original = predicted(model, parent)
        mine = [c for c in candidates if c.parent == row]
        sizes = [change_size(columns, parent, c.values) for c in mine]
        assert sizes == sorted(sizes)
        changed = []
        for candidate in mine:
            assert predicted(model, candidate.values) != original
            assert candidate.values["note"] == "row"
            diff = {c for c in columns if candidate.values[c] != parent[c]}
            assert 1 <= len(diff) <= 2
            assert not any(earlier < {(c, candidate.values[c]) for c in diff}
                           for earlier in changed)  # none contains a smaller flip found
            changed.append({(c, candidate.values[c]) for c in diff})
        single_flips = [change_size(columns, parent, {**parent, c: v})
                        for c, (values, _) in columns.items() for v in values
                        if v != parent[c] and predicted(model, {**parent, c: v}) != original]
        assert single_flips, "the toy flips every row with one column"
        assert sizes[0] <= min(single_flips) + 1e-12  # no smaller single-column flip missed


def test_tabular_flip_origin_names_the_change():
    model, dataset = ToyModel(), toy_dataset()
    (candidate,) = run("tabular_flip", dataset, [0], {"max_per_row": 1}, model)
    assert re.fullmatch(r"tabular flip: (x|age|colour) \S+ → \S+(, \w+ \S+ → \S+)? "
                        r"\((no|yes) → (no|yes)\)", candidate.origin)


# --- HotFlip on a tiny BERT ------------------------------------------------------------------


@pytest.mark.slow
def test_hotflip_on_a_tiny_bert(tmp_path: Path):
    transformers = pytest.importorskip("transformers")
    from litdesk.core.model_loading import load_model

    words = ["the", "film", "was", "great", "awful", "plot", "not", "good", "bad", "very"]
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", *words, "##s"]))
    tokenizer = transformers.BertTokenizerFast(str(tmp_path / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
        initializer_range=0.5,  # large enough weights for the text to sway the prediction
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(1)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = load_model(tmp_path, LoadOptions(device="cpu"))

    vocabulary = model.token_vocabulary()
    assert [vocabulary.tokens[i] for i in vocabulary.swappable] == [*words, "##s"]
    assert model.replace_tokens("The film was GREAT!", {4: tokenizer.vocab["awful"]}) == \
        "The film was awful!"
    texts = [" ".join(combo) for combo in itertools.permutations(words[:6], 4)][:40]
    dataset = Dataset(pa.table({"text": texts}), {"text": TextSegment()}, "bert-texts")
    assert applicable("hotflip", dataset, model) is None
    candidates = run("hotflip", dataset, range(len(texts)), {"max_swaps": 2}, model)
    assert_valid(dataset, candidates)
    assert candidates, "some swap flips a random tiny BERT"
    for candidate in candidates:
        parent = dataset.example(candidate.parent)
        assert predicted(model, candidate.values) != predicted(model, parent)
        assert "→ ##" not in candidate.origin  # every position here starts a word
    assert vocabulary.continuation[tokenizer.vocab["##s"]] and \
        not vocabulary.continuation[tokenizer.vocab["film"]]
