"""Batch work at scale on one machine: the output fields, Arrow columns straight from numpy,
row groups written as they are computed, the progress bar, the vectorised linear model, every
model kind through the batch commands, and results opened on the desk."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdesk.api import AttentionHeads, LoadOptions, MulticlassPreds, TokenGradients, TokenTopKPreds
from litdesk.cli import main
from litdesk.core import paths
from litdesk.core.batch import ProgressBar, predict_to_parquet
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import load_model
from litdesk.core.results import (ResultsError, arrow_column, chosen_fields, open_results,
                                  python_values, read_results)
from tests.helpers import write_csv

LINEAR = paths.DEMO_MODELS[1]


def the_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- Arrow columns ----------------------------------------------------------------------------


def test_same_shape_vectors_are_fixed_size_float32_lists_without_python_lists():
    values = np.arange(12, dtype=np.float64).reshape(3, 4)
    column = arrow_column(values)
    assert column.type == pa.list_(pa.float32(), 4)
    back = python_values(column)
    assert [v.dtype for v in back] == [np.float32] * 3
    np.testing.assert_array_equal(np.stack(back), values)
    matrices = arrow_column([np.ones((2, 3)), np.zeros((2, 3))])
    assert matrices.type == pa.list_(pa.list_(pa.float32(), 3), 2)


def test_token_level_fields_keep_one_schema_whatever_the_lengths_of_a_block():
    grads = TokenGradients(align="tokens", grad_for="e")
    equal = arrow_column([np.ones((2, 4)), np.ones((2, 4))], grads)
    ragged = arrow_column([np.ones((3, 4)), np.ones((1, 4))], grads)
    assert equal.type == ragged.type == pa.list_(pa.list_(pa.float32(), 4))
    assert [v.shape for v in python_values(ragged)] == [(3, 4), (1, 4)]
    attention = AttentionHeads(align_in="tokens", align_out="tokens")
    maps = [np.random.rand(2, 3, 3).astype(np.float32), np.random.rand(2, 1, 1).astype(np.float32)]
    column = arrow_column(maps, attention)
    assert column.type == arrow_column(maps[:1] * 2, attention).type
    assert column.type == pa.list_(pa.list_(pa.list_(pa.float32())))
    np.testing.assert_allclose(np.asarray(column.to_pylist()[0]), maps[0])


def test_top_k_predictions_are_token_score_structs():
    rows = [[[("a", 0.5), ("b", 0.25)], [("c", 1.0)]], []]
    column = arrow_column(rows, TokenTopKPreds(align="tokens"))
    assert column.to_pylist()[0][0] == [{"token": "a", "score": 0.5}, {"token": "b", "score": 0.25}]
    assert python_values(column) == rows


def test_default_fields_are_predictions_and_embeddings_and_unknown_ones_are_named():
    model = load_model(LINEAR)
    assert list(chosen_fields(model.output_spec(), None, "m")) == ["probas"]
    assert list(chosen_fields(model.output_spec(), "all", "m")) == \
        ["probas", "tokens", "token_salience"]
    with pytest.raises(ResultsError, match="m has no field nope; its fields: probas, tokens"):
        chosen_fields(model.output_spec(), "probas,nope", "m")


# -- predict ----------------------------------------------------------------------------------


def texts_csv(path, rows: int):
    words = ["great", "awful", "the", "staff", "was", "rude", "lovely", "room", "never", "again"]
    rng = np.random.default_rng(0)
    lines = ["text,label"] + [
        " ".join(rng.choice(words, size=int(rng.integers(1, 12)))) + f",{'positive' if i % 2 else 'negative'}"
        for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_predict_writes_row_groups_in_dataset_order_equal_to_the_model(tmp_path):
    data = texts_csv(tmp_path / "texts.csv", 50)
    out = tmp_path / "out.parquet"
    summary = predict_to_parquet(LINEAR, data, out, block_rows=8, fields="all")
    assert summary == f"{out}: 50 rows × 3 outputs of bow_linear"
    file = pq.ParquetFile(out)
    assert file.metadata.num_row_groups == 7
    table = file.read()
    assert table.column_names == ["row", "probas", "tokens", "token_salience"]
    assert table.column("row").to_pylist() == list(range(50))
    model = load_model(LINEAR)
    expected = model.predict(load_dataset(data).examples(range(50)))
    np.testing.assert_allclose(np.stack(python_values(table.column("probas"))),
                               np.stack([e["probas"] for e in expected]), atol=1e-6)
    assert table.column("tokens").to_pylist() == [e["tokens"] for e in expected]
    for got, want in zip(python_values(table.column("token_salience")), expected):
        np.testing.assert_allclose(got, want["token_salience"], atol=1e-6)


def test_predict_command_default_fields_and_bad_fields(tmp_path, capsys):
    data = texts_csv(tmp_path / "texts.csv", 5)
    out = tmp_path / "out.parquet"
    assert main(["predict", "--model", str(LINEAR), "--data", str(data), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["row", "probas"]
    assert table.schema.field("probas").type == pa.list_(pa.float32(), 2)
    info = json.loads(table.schema.metadata[b"litdesk.results"])
    assert info["dataset"]["rows"] == 5 and info["binding"] == {"text": "text", "label": "label"}
    capsys.readouterr()
    assert main(["predict", "--model", str(LINEAR), "--data", str(data), "--out",
                 str(tmp_path / "b.parquet"), "--fields", "probas,attention"]) == 2
    assert "bow_linear has no field attention" in the_line(capsys.readouterr().err)
    assert not (tmp_path / "b.parquet").exists()


def test_a_failed_predict_leaves_no_file(tmp_path, monkeypatch):
    from litdesk_linear_text.model import LinearTextModel

    data = texts_csv(tmp_path / "texts.csv", 40)
    calls = []

    def failing(self, inputs, fields):
        calls.append(len(inputs))
        if len(calls) == 3:
            raise ValueError("the third batch fails")
        return [{"probas": np.array([0.5, 0.5], np.float32)} for _ in inputs]

    monkeypatch.setattr(LinearTextModel, "predict_fields", failing)
    with pytest.raises(ValueError, match="third batch"):
        predict_to_parquet(LINEAR, data, tmp_path / "out.parquet", block_rows=10)
    assert list(tmp_path.iterdir()) == [data]


# -- progress ---------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_says_rows_rate_and_time_left():
    stream = Terminal()
    bar = ProgressBar(stream=stream)
    bar.show(250, 1000)
    bar.show(1000, 1000)
    text = stream.getvalue()
    assert "250/1,000 rows" in text and "rows/s" in text and "left" in text
    assert text.endswith("\n") and "1,000/1,000 rows" in text


def test_progress_bar_is_silent_when_quiet_and_for_a_short_job_in_a_log():
    for bar, stream in [(ProgressBar(quiet=True, stream=Terminal()), None),
                        (ProgressBar(stream=io.StringIO()), None)]:
        bar.show(10, 100)
        bar.show(100, 100)
        assert bar.stream.getvalue() == ""


def test_progress_bar_in_a_log_writes_a_line_every_so_often():
    stream = io.StringIO()
    bar = ProgressBar(stream=stream)
    bar.log_every = 0.0
    bar.show(10, 100)
    bar.show(100, 100)
    assert stream.getvalue().count("\n") == 2 and "\r" not in stream.getvalue()


# -- the linear model, vectorised ---------------------------------------------------------------


def test_vectorised_linear_scores_equal_the_per_text_ones():
    model = load_model(LINEAR)
    texts = load_dataset(paths.DEMO_DATASET).table.column("text").to_pylist()[:300]
    texts += ["", "!!!", "the the the", "great " * 50]
    examples = [{"text": text} for text in texts]
    one_by_one = np.stack([r["probas"] for r in model.predict(examples)])
    together = np.stack([r["probas"] for r in model.predict_fields(examples, ["probas"])])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    assert (together.argmax(1) == one_by_one.argmax(1)).all()


@pytest.mark.parametrize("settings", [
    {"norm": "l1", "stop_words": ["the", "was"], "ngram_range": (1, 3)},
    {"norm": None, "sublinear_tf": True, "binary": True, "ngram_range": (2, 2)},
])
def test_vectorised_linear_scores_equal_scikit_learn(tmp_path, settings):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from litdesk_linear_text.model import export_sklearn

    texts = ["the room was great", "rude staff was rude", "never again the room",
             "lovely lovely stay", "awful noise was loud", "great staff great room"] * 3
    labels = ["pos", "neg", "neg", "pos", "mid", "pos"] * 3
    vectorizer = TfidfVectorizer(**settings).fit(texts)
    classifier = LogisticRegression(max_iter=500).fit(vectorizer.transform(texts), labels)
    model = load_model(export_sklearn(vectorizer, classifier, tmp_path / "m"), LoadOptions())
    queries = texts + ["room room room was", "", "unknown words only"]
    np.testing.assert_allclose(model.probabilities(queries),
                               classifier.predict_proba(vectorizer.transform(queries)), atol=1e-9)


# -- every kind of model through predict, explain and compare -----------------------------------


def tiny_hf(folder, head: str):
    """A tiny BERT of ``head`` kind (regression, token, masked) saved with a WordPiece
    tokenizer."""
    import tokenizers
    import torch
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "great", "awful", "the", "staff",
             "was", "rude", "lovely", "room", "never", "again"]
    tokenizer = transformers.BertTokenizerFast(tokenizer_object=tokenizers.BertWordPieceTokenizer(
        {word: i for i, word in enumerate(vocab)})._tokenizer)
    config = dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    if head == "regression":
        network = transformers.BertForSequenceClassification(transformers.BertConfig(
            num_labels=1, problem_type="regression", **config))
    elif head == "token":
        network = transformers.BertForTokenClassification(transformers.BertConfig(
            num_labels=3, id2label={0: "O", 1: "B", 2: "I"}, label2id={"O": 0, "B": 1, "I": 2},
            **config))
    else:
        network = transformers.BertForMaskedLM(transformers.BertConfig(**config))
    network.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


KINDS = ["linear_text", "classifier", "causal_lm", "regression", "token", "masked", "tabular"]


@pytest.fixture(scope="module")
def kind_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kinds")
    texts = texts_csv(folder / "texts.csv", 12)
    made = {kind: tiny_hf(folder / kind, kind) for kind in ("regression", "token", "masked")}
    text_kinds = {"linear_text": LINEAR, "classifier": paths.DEMO_MODELS[0],
                  "causal_lm": paths.DEMO_LM, **made}
    tabular = paths.DEMO_TABULAR_DATASET
    rows = pq.read_table(tabular) if tabular.suffix == ".parquet" else None
    del rows
    small = folder / "tabular.csv"
    small.write_text("\n".join(tabular.read_text().splitlines()[:13]) + "\n")
    return {kind: (path, texts) for kind, path in text_kinds.items()} | {
        "tabular": (paths.DEMO_TABULAR_MODELS[0], small)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_goes_through_predict_explain_and_compare(kind, kind_paths, tmp_path, capsys):
    from litdesk.core.explain import methods_for

    model_path, data = kind_paths[kind]
    out = tmp_path / "out.parquet"
    assert main(["predict", "--model", str(model_path), "--data", str(data), "--out", str(out),
                 "--fields", "all", "--quiet"]) == 0, capsys.readouterr().err
    table = pq.read_table(out)
    assert table.num_rows == 12 and table.column("row").to_pylist() == list(range(12))
    assert main(["predict", "--model", str(model_path), "--data", str(data), "--out",
                 str(tmp_path / "default.parquet")]) == 0
    model = load_model(model_path)
    methods = [m for m in methods_for(model) if m != "integrated_gradients"][:1]
    for method in methods:
        code = main(["explain", "--model", str(model_path), "--data", str(data), "--method",
                     method, "--out", str(tmp_path / "explained.parquet"), "--rows", "0:2"])
        assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["compare", "--model", str(model_path), "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 0 or (code == 2 and len(captured.err.strip().splitlines()) == 1), captured.err


# -- results on the desk ----------------------------------------------------------------------


def test_results_attach_to_their_dataset_and_refuse_another(tmp_path):
    data = write_csv(tmp_path / "reviews.csv")
    out = tmp_path / "out.parquet"
    predict_to_parquet(LINEAR, data, out, fields="all")
    dataset = load_dataset(data)
    model = open_results(out, dataset)
    assert model.name == "bow_linear (results)"
    assert isinstance(model.output_spec()["probas"], MulticlassPreds)
    real = load_model(LINEAR).predict(dataset.examples(range(len(dataset))))
    answered = model.predict(dataset.examples(range(len(dataset))))
    for got, want in zip(answered, real):
        np.testing.assert_allclose(got["probas"], want["probas"], atol=1e-6)
        assert got["tokens"] == want["tokens"]
    with pytest.raises(ResultsError, match="holds no result for this input"):
        model.predict([{"text": "a text it never saw", "label": "positive"}])
    other = write_csv(tmp_path / "other.csv", [("something else", "negative")])
    with pytest.raises(ResultsError, match=r"made from another dataset \(reviews, \d+ rows\)"):
        open_results(out, load_dataset(other))
    info, table = read_results(out)
    assert info["model"]["name"] == "bow_linear" and table.num_rows == len(dataset)
    from litdesk.core.explain import methods_for

    assert methods_for(load_model(LINEAR)) == ["model_salience", "lime", "occlusion"]
    # LIME would need the model on texts it never saw; its own attribution is asked for
    # without the gold label, an input the file did not see either.
    assert methods_for(model) == []


def test_opening_data_and_results_shows_predictions_without_the_model(qtbot, window, tmp_path,
                                                                       monkeypatch):
    from litdesk.core import workbench

    data = write_csv(tmp_path / "reviews.csv")
    out = tmp_path / "results.parquet"
    predict_to_parquet(LINEAR, data, out)
    monkeypatch.setattr(workbench, "load_model", None)  # nothing may load a model
    monkeypatch.setattr(workbench, "load_model_job", None)
    with qtbot.waitSignal(window.workbench.model_loaded, timeout=20_000):
        window.open_paths([str(data), str(out)])
    qtbot.waitUntil(lambda: "bow_linear (results)" in window.session.predictions, timeout=20_000)
    predictions = window.session.predictions["bow_linear (results)"]
    expected = pq.read_table(out).column("probas")
    np.testing.assert_allclose(predictions.fields["probas"], np.stack(python_values(expected)))
    assert window.errors == []
    action = next(a for a in window.menuBar().actions()[0].menu().actions()
                  if a.text() == "Open &Results…")
    assert action.shortcut().toString() == "Ctrl+Alt+R"


def test_results_of_another_dataset_are_a_one_line_error_in_the_window(qtbot, window, tmp_path):
    data = write_csv(tmp_path / "reviews.csv")
    out = tmp_path / "results.parquet"
    predict_to_parquet(LINEAR, data, out)
    other = write_csv(tmp_path / "other.csv", [("something else", "negative")])
    with qtbot.waitSignal(window.workbench.dataset_loaded, timeout=20_000):
        window.open_paths([str(other)])
    window.workbench.open_results(out)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=20_000)
    assert "made from another dataset" in window.errors[-1]
    assert len(window.errors[-1].splitlines()) == 1


@pytest.mark.parametrize("quiet", [False, True])
def test_explain_and_project_draw_the_bar_unless_quiet(tmp_path, monkeypatch, quiet):
    data = texts_csv(tmp_path / "texts.csv", 6)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    flag = ["--quiet"] if quiet else []
    assert main(["explain", "--model", str(LINEAR), "--data", str(data), "--method",
                 "occlusion", "--out", str(tmp_path / "e.parquet"), *flag]) == 0
    assert ("6/6 rows" in terminal.getvalue()) is not quiet
    terminal.seek(0)
    terminal.truncate(0)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b,c\n" + "".join(f"{i},{i * i % 7},{i % 3}\n" for i in range(20)))
    assert main(["project", "--data", str(numbers), "--field", "a,b,c", "--method", "pca",
                 "--out", str(tmp_path / "p.parquet"), *flag]) == 0
    assert ("steps" in terminal.getvalue()) is not quiet
