"""Dataset loading: every format, odd-but-valid files, bad files, spec inference."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from litdesk.api import (
    Boolean,
    CategoryLabel,
    Embeddings,
    ImageBytes,
    ImagePath,
    Scalar,
    TextSegment,
    Tokens,
)
from litdesk.core import loaders
from litdesk.core.jobs import Progress, run_job
from litdesk.core.loaders import (
    SUPPORTED_SUFFIXES,
    DatasetLoadError,
    conform_table,
    infer_spec,
    iter_load_dataset,
    load_dataset,
)
from tests.helpers import load_error, save_to_disk_like

LABELS = ["negative", "positive", "neutral"]
TEXTS = ["a fine film", "dull, long, and loud", "I loved it", "meh", "great fun", "not good"]


def write(path: Path, content: "str | bytes", encoding: str = "utf-8") -> Path:
    if isinstance(content, str):
        content = content.encode(encoding)
    path.write_bytes(content)
    return path


def review_rows(count: int) -> list[dict]:
    """Rows with free text, a three-way label, a float score and an int."""
    return [{"text": f"{TEXTS[i % len(TEXTS)]} #{i}", "label": LABELS[i % 3],
             "score": i / count, "count": i % 7} for i in range(count)]


def review_csv(rows: list[dict], newline: str = "\n") -> str:
    lines = ["text,label,score,count"]
    lines += [f'"{row["text"]}",{row["label"]},{row["score"]},{row["count"]}' for row in rows]
    return newline.join(lines) + newline


def assert_review_spec(dataset, count: int) -> None:
    spec = dataset.spec()
    assert len(dataset) == count
    assert spec["text"] == TextSegment()
    assert spec["label"] == CategoryLabel(vocab=tuple(sorted(LABELS)))
    assert isinstance(spec["score"], Scalar) and spec["score"].min_val == 0.0
    assert spec["count"] == Scalar(min_val=0.0, max_val=6.0)


# --- Formats -------------------------------------------------------------------------------


def test_csv_loads_with_spec_name_and_path(tmp_path):
    path = write(tmp_path / "reviews.csv", review_csv(review_rows(100)))
    dataset = load_dataset(path)
    assert_review_spec(dataset, 100)
    assert dataset.name == "reviews" and dataset.path == path
    assert dataset.example(1) == {"text": "dull, long, and loud #1", "label": "positive",
                                  "score": 0.01, "count": 1}


@pytest.mark.parametrize("suffix", [".tsv", ".tab"])
def test_tab_separated_loads(tmp_path, suffix):
    rows = review_rows(100)
    lines = ["text\tlabel\tscore\tcount"] + [
        f'{row["text"]}\t{row["label"]}\t{row["score"]}\t{row["count"]}' for row in rows]
    dataset = load_dataset(write(tmp_path / f"reviews{suffix}", "\n".join(lines) + "\n"))
    assert_review_spec(dataset, 100)


def test_tsv_with_stray_quote_characters_loads_them_as_text(tmp_path):
    content = 'text\tn\n"quoted" start\t1\nends with "\t2\n"unbalanced\t3\n'
    dataset = load_dataset(write(tmp_path / "quotes.tsv", content))
    assert dataset.table.column("text").to_pylist() == [
        '"quoted" start', 'ends with "', '"unbalanced']


def test_semicolon_separated_csv_is_recognised(tmp_path):
    dataset = load_dataset(write(tmp_path / "semi.csv", "a;b\n1;x\n2;y\n"))
    assert dataset.table.column_names == ["a", "b"] and len(dataset) == 2


def test_json_array_of_objects_collects_keys_from_every_row(tmp_path):
    records = review_rows(60)
    records[5]["extra"] = "only here"
    dataset = load_dataset(write(tmp_path / "reviews.json", json.dumps(records)))
    assert_review_spec(dataset, 60)
    assert dataset.table.column("extra").null_count == 59


def test_json_object_of_columns(tmp_path):
    rows = review_rows(60)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    assert_review_spec(load_dataset(write(tmp_path / "cols.json", json.dumps(columns))), 60)


def test_json_file_holding_json_lines(tmp_path):
    content = "\n".join(json.dumps(row) for row in review_rows(60))
    assert_review_spec(load_dataset(write(tmp_path / "lines.json", content)), 60)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(tmp_path, suffix):
    rows = review_rows(100)
    for row in rows:
        row["embedding"] = [row["score"], 1.0, 2.0]
    content = "\n".join(json.dumps(row) for row in rows) + "\n"
    dataset = load_dataset(write(tmp_path / f"reviews{suffix}", content))
    assert_review_spec(dataset, 100)
    assert dataset.spec()["embedding"] == Embeddings()


def test_json_lines_with_mixed_value_types_keep_them_as_text(tmp_path):
    content = '{"id": 1, "note": "x"}\n{"id": "two", "note": "y"}\n{"id": [3], "note": "z"}\n'
    dataset = load_dataset(write(tmp_path / "mixed.jsonl", content))
    assert dataset.table.column("id").to_pylist() == ["1", "two", "[3]"]


def test_parquet_reports_progress_per_row_group(tmp_path):
    path = tmp_path / "reviews.parquet"
    pq.write_table(pa.Table.from_pylist(review_rows(300)), path, row_group_size=100)
    progress: list[Progress] = []
    dataset = run_job(iter_load_dataset(path), progress.append)
    assert_review_spec(dataset, 300)
    assert [(p.done, p.total) for p in progress if p.message == "Reading reviews.parquet"][-3:] \
        == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("suffix,writer", [
    (".arrow", "file"), (".feather", "feather"), (".ipc", "stream"), (".arrow", "stream")])
def test_arrow_ipc_files_and_streams(tmp_path, suffix, writer):
    table = pa.Table.from_pylist(review_rows(100))
    path = tmp_path / f"reviews{suffix}"
    if writer == "feather":
        feather.write_feather(table, path)
    else:
        new_writer = pa.ipc.new_file if writer == "file" else pa.ipc.new_stream
        with pa.OSFile(str(path), "wb") as sink, new_writer(sink, table.schema) as ipc:
            ipc.write_table(table, max_chunksize=40)
    assert_review_spec(load_dataset(path), 100)


SST_FEATURES = {
    "sentence": {"dtype": "string", "_type": "Value"},
    "label": {"names": ["negative", "positive"], "_type": "ClassLabel"},
}


def test_datasets_folder_maps_class_labels_to_names(tmp_path):
    table = pa.table({"sentence": [f"s{i}" for i in range(10)],
                      "label": pa.array([0, 1, 1, 0, -1, 1, 0, 0, 1, 1], pa.int64())})
    folder = save_to_disk_like(tmp_path / "sst2", table, SST_FEATURES, shards=2)
    dataset = load_dataset(folder)
    assert len(dataset) == 10 and dataset.name == "sst2" and dataset.path == folder
    assert dataset.spec() == {"sentence": TextSegment(),
                              "label": CategoryLabel(vocab=("negative", "positive"))}
    assert dataset.table.column("label").to_pylist()[:5] == [
        "negative", "positive", "positive", "negative", None]


@pytest.mark.parametrize("splits,chosen", [
    (["train", "validation", "test"], "test"), (["train", "validation"], "validation"),
    (["train", "extra"], "train")])
def test_dataset_dict_folder_loads_test_then_validation_then_first_split(tmp_path, splits, chosen):
    root = tmp_path / "glue"
    for split in splits:
        table = pa.table({"sentence": [split] * 3, "label": pa.array([0, 1, 0], pa.int64())})
        save_to_disk_like(root / split, table, SST_FEATURES)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": splits}))
    dataset = load_dataset(root)
    assert dataset.name == f"glue ({chosen})"
    assert dataset.table.column("sentence").to_pylist() == [chosen] * 3


# --- Odd but valid -------------------------------------------------------------------------


def test_bom_and_crlf(tmp_path):
    content = "\ufeff" + review_csv(review_rows(50), newline="\r\n")
    dataset = load_dataset(write(tmp_path / "windows.csv", content))
    assert_review_spec(dataset, 50)
    assert dataset.table.column_names[0] == "text"


def test_quoted_newlines_inside_fields(tmp_path):
    content = 'id,text\n1,"first line\nsecond line"\n2,"a ""quoted"" word"\n3,plain\n'
    dataset = load_dataset(write(tmp_path / "multiline.csv", content))
    assert dataset.table.column("text").to_pylist() == [
        "first line\nsecond line", 'a "quoted" word', "plain"]


def test_large_file_with_quoted_newlines_is_read_in_the_background(tmp_path):
    rows = "".join(f'{i},"line {i}\nstill {i}, same field"\n' for i in range(20_000))
    path = write(tmp_path / "big.csv", "id,text\n" + rows)
    progress: list[Progress] = []
    dataset = run_job(iter_load_dataset(path), progress.append)
    assert len(dataset) == 20_000
    assert dataset.example(19_999)["text"] == "line 19999\nstill 19999, same field"
    read = [p for p in progress if p.message == "Reading big.csv"]
    assert read[0].done == 0 and read[-1].done == read[-1].total == path.stat().st_size


@pytest.mark.parametrize("encoding,text", [
    ("cp1252", "Crème brûlée — “quoted” café"),
    ("latin-1", "Ça va très bien, Müller"),
    ("shift_jis", "これは日本語のテキストです。東京"),
    ("utf-16", "中文 عربى 😀 Ελληνικά"),
])
def test_legacy_and_utf16_encodings(tmp_path, encoding, text):
    content = f'id,text\n1,"{text}"\n2,plain ascii\n'
    dataset = load_dataset(write(tmp_path / "legacy.csv", content, encoding=encoding))
    assert dataset.table.column("text").to_pylist() == [text, "plain ascii"]


def test_legacy_encoding_first_seen_after_the_sample(tmp_path):
    rows = "".join(f"{i},plain ascii row\n" for i in range(10_000))
    content = "id,text\n" + rows + "10000,Zoë’s café\n"
    path = write(tmp_path / "late.csv", content, encoding="cp1252")
    dataset = load_dataset(path)
    assert dataset.example(10_000)["text"] == "Zoë’s café"


def test_any_script(tmp_path):
    texts = ["中文文本", "مرحبا بالعالم", "emoji 😀👍🏽",
             "עברית", "हिन्दी"]
    content = "text\n" + "".join(f"{text}\n" for text in texts)
    assert load_dataset(write(tmp_path / "scripts.csv", content)).table.column(
        "text").to_pylist() == texts


@pytest.mark.parametrize("content", ["a,b,c\n", "a,b,c"])
def test_header_only_file_is_a_dataset_without_rows(tmp_path, content):
    dataset = load_dataset(write(tmp_path / "header.csv", content))
    assert len(dataset) == 0
    assert dataset.spec() == {"a": TextSegment(), "b": TextSegment(), "c": TextSegment()}
    assert dataset.table.schema.types == [pa.string()] * 3


def test_blank_and_repeated_column_names_are_made_unique(tmp_path):
    dataset = load_dataset(write(tmp_path / "names.csv", "a,a,,a\n1,2,3,4\n"))
    assert dataset.table.column_names == ["a", "a_2", "column_3", "a_3"]


def test_integer_labels_become_strings_matching_the_vocab(tmp_path):
    content = "text,label\n" + "".join(f"t{i},{[2, 10, 1][i % 3]}\n" for i in range(30))
    dataset = load_dataset(write(tmp_path / "ints.csv", content))
    assert dataset.spec()["label"] == CategoryLabel(vocab=("1", "2", "10"))
    assert dataset.table.column("label").to_pylist()[:3] == ["2", "10", "1"]


def test_dates_stay_readable_text(tmp_path):
    dataset = load_dataset(write(tmp_path / "dates.csv", "day,n\n2024-01-31,1\n2024-02-01,2\n"))
    assert dataset.spec()["day"] == TextSegment()
    assert dataset.table.column("day").to_pylist() == ["2024-01-31", "2024-02-01"]


# --- Bad input -----------------------------------------------------------------------------


def test_error_text_is_one_line_with_file_line_and_column():
    error = DatasetLoadError(Path("/data/bad.csv"), "expected 3 fields, found 4", line=7)
    assert str(error) == "bad.csv, line 7: expected 3 fields, found 4"
    assert (error.path, error.line, error.column) == (Path("/data/bad.csv"), 7, None)
    assert str(DatasetLoadError("x.json", "oops", line=2, column=5)) == \
        "x.json, line 2, column 5: oops"
    assert str(DatasetLoadError("x.csv", "not a number", column="age")) == \
        "x.csv, column 'age': not a number"


@pytest.mark.parametrize("name,content,expected", [
    ("empty.csv", b"", "empty.csv: empty file"),
    ("blank.csv", b"\n  \r\n\n", "blank.csv: empty file"),
    ("empty.jsonl", b"", "empty.jsonl: empty file"),
    ("blank.json", b" \n", "blank.json: empty file"),
    ("blank.jsonl", b"\n \n", "blank.jsonl: empty file"),
    ("nul.csv", b"a,b\n1,\x00\x00\x01\x02\n", "nul.csv: not a text file"),
    ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
     "image.csv: not a text file"),
    ("garbage.jsonl", bytes(b | 0x80 for b in range(256)) * 8, "garbage.jsonl: not a text file"),
])
def test_empty_and_binary_files(tmp_path, name, content, expected):
    assert str(load_error(write(tmp_path / name, content))) == expected


def test_text_in_two_encodings(tmp_path):
    rows = "".join(f"{i},café {i}\n" for i in range(10_000)).encode("cp1252")
    path = write(tmp_path / "mixed.csv", b"id,text\n" + rows + b"10000,\x81 undefined in cp1252\n")
    assert str(load_error(path)) == "mixed.csv: cannot decode the text (mixed or unknown encoding)"


def test_ragged_row_reports_its_line(tmp_path):
    content = "a,b,c\n1,2,3\n4,5,6\n7,8,9\n10,11,12\n13,14,15\n16,17,18,19\n20,21,22\n"
    error = load_error(write(tmp_path / "bad.csv", content))
    assert str(error) == "bad.csv, line 7: expected 3 fields, found 4"
    assert error.line == 7


def test_ragged_row_line_counts_physical_lines_of_quoted_fields(tmp_path):
    content = 'a,b\n1,"two\nlines"\n2,"three\nmore\nlines"\n3,4,5\n'
    assert str(load_error(write(tmp_path / "bad.csv", content))) == \
        "bad.csv, line 7: expected 2 fields, found 3"


def test_ragged_row_in_a_large_file(tmp_path):
    rows = [f"{i},row {i}\n" for i in range(20_000)]
    rows[15_000] = "15000,row,extra\n"
    error = load_error(write(tmp_path / "big.csv", "id,text\n" + "".join(rows)))
    assert str(error) == "big.csv, line 15002: expected 2 fields, found 3"


def test_text_after_a_closing_quote_is_accepted_like_pyarrow_and_pandas_do(tmp_path):
    content = 'a,b\n"x"y,1\n2,"two\nlines\n"\n'
    dataset = load_dataset(write(tmp_path / "lenient.csv", content))
    assert dataset.table.column("a").to_pylist() == ["xy", "2"]
    assert str(load_error(write(tmp_path / "bad.csv", content + "3,4,5\n"))) == \
        "bad.csv, line 6: expected 2 fields, found 3"


def test_too_few_fields(tmp_path):
    assert str(load_error(write(tmp_path / "short.tsv", "a\tb\n1\t2\n3\n"))) == \
        "short.tsv, line 3: expected 2 fields, found 1"


@pytest.mark.parametrize("content,line", [
    ('a,b,c\n1,"hello,3\n4,5,6\n7,8,9\n', 2),
    ('a,b,c\n1,2,3\n4,5,"never closed\n7,8,9\n', 3),
    ('a,b,c\n1,2,"one\ntwo"\n4,5,"six\n', 4),
])
def test_unclosed_quote_reports_the_line_it_opened_on(tmp_path, content, line):
    assert str(load_error(write(tmp_path / "quote.csv", content))) == \
        f"quote.csv, line {line}: quote is never closed"


def test_invalid_json_reports_line_and_column(tmp_path):
    content = '[\n  {"a": 1},\n  {"a": 2 "b": 3}\n]\n'
    error = load_error(write(tmp_path / "bad.json", content))
    assert str(error) == "bad.json, line 3, column 11: Expecting ',' delimiter"
    assert (error.line, error.column) == (3, 11)


def test_invalid_json_lines_report_the_line(tmp_path):
    content = '{"a": 1}\n{"a": 2}\n{"a": 3,}\n'
    assert str(load_error(write(tmp_path / "bad.jsonl", content))).startswith(
        "bad.jsonl, line 3, column 9: ")


@pytest.mark.parametrize("name,content,expected", [
    ("numbers.json", "[1, 2]", "numbers.json: item 1 of the array is a int, not an object"),
    ("lines.jsonl", '{"a": 1}\n[2]\n', "lines.jsonl, line 2: expected an object, found a list"),
    ("scalar.json", '{"a": 1, "b": [1]}',
     "scalar.json: expected an array of objects or an object of columns"),
    ("ragged.json", '{"a": [1, 2], "b": [1]}',
     "ragged.json: column 'b' has 1 values, column 'a' has 2"),
    ("nothing.json", "[]", "nothing.json: no columns"),
])
def test_json_of_the_wrong_shape(tmp_path, name, content, expected):
    assert str(load_error(write(tmp_path / name, content))) == expected


@pytest.mark.parametrize("name,expected", [
    ("broken.parquet", "broken.parquet: not a readable Parquet file"),
    ("broken.arrow", "broken.arrow: not a readable Arrow file"),
    ("broken.feather", "broken.feather: not a readable Arrow file"),
])
def test_corrupt_binary_formats(tmp_path, name, expected):
    assert str(load_error(write(tmp_path / name, b"PAR1 this is not really a table PAR1"))) \
        == expected


def test_truncated_parquet(tmp_path):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.Table.from_pylist(review_rows(100)), path)
    path.write_bytes(path.read_bytes()[:-30])
    assert str(load_error(path)) == "cut.parquet: not a readable Parquet file"


def test_missing_file(tmp_path):
    assert str(load_error(tmp_path / "missing.csv")) == "missing.csv: file not found"


def test_unsupported_file_types(tmp_path):
    error = load_error(write(tmp_path / "notes.xyz", "hello"))
    assert str(error) == ("notes.xyz: unsupported file type '.xyz' (supported: "
                          f"{', '.join(SUPPORTED_SUFFIXES)}, or a datasets folder)")
    assert str(load_error(write(tmp_path / "README", "hello"))).startswith(
        "README: unsupported file without an extension (supported: .csv, ")


def test_folder_that_is_not_a_datasets_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    assert str(load_error(folder)) == \
        "photos: not a dataset folder (no dataset_info.json or state.json)"


def test_datasets_folder_with_a_corrupt_shard(tmp_path):
    folder = save_to_disk_like(tmp_path / "sst2", pa.table({"sentence": ["a"]}), {})
    write(folder / "data-00000-of-00001.arrow", b"garbage")
    assert str(load_error(folder)) == "data-00000-of-00001.arrow: not a readable Arrow stream"


def test_unexpected_failures_still_arrive_as_dataset_load_errors(tmp_path, monkeypatch):
    def broken_parquet_reader(path):
        raise KeyError("schema")
        yield  # pragma: no cover - makes this a generator like the real reader

    monkeypatch.setattr(loaders, "_read_parquet", broken_parquet_reader)
    write(tmp_path / "x.parquet", b"PAR1")
    assert str(load_error(tmp_path / "x.parquet")) == "x.parquet: KeyError: 'schema'"


# --- Progress and cancellation -------------------------------------------------------------


def test_progress_at_start_after_reading_and_after_inference(tmp_path):
    path = write(tmp_path / "small.csv", review_csv(review_rows(10)))
    progress: list[Progress] = []
    run_job(iter_load_dataset(path), progress.append)
    messages = [p.message for p in progress]
    assert messages[0] == "Reading small.csv" and progress[0].done == 0
    assert messages[-2:] == ["Inferring column types of 10 rows", "Loaded 10 rows"]


def test_closing_the_job_stops_the_background_read(tmp_path):
    path = write(tmp_path / "slow.bin", b"x" * 1_000_000)
    chunks: list[bytes] = []

    def slow_parse(source):
        while chunk := source.read(10_000):
            chunks.append(chunk)
            time.sleep(0.005)
        return pa.table({"n": [len(chunks)]})

    job = loaders._read_with_progress(path, slow_parse)
    next(job)
    job.close()
    assert 0 < len(chunks) < 100
    assert not [t for t in threading.enumerate() if t.name.startswith("litdesk-read-")]


# --- Spec inference ------------------------------------------------------------------------


def test_infer_spec_for_text_categories_and_numbers():
    rows = 200
    table = pa.table({
        "review": [f"text number {i}" for i in range(rows)],
        "sentiment": [LABELS[i % 3] for i in range(rows)],
        "gold_label": [f"class {i % 50}" for i in range(rows)],
        "y": pa.array([i % 4 for i in range(rows)], pa.int32()),
        "year": pa.array([2000 + i % 4 for i in range(rows)], pa.int64()),
        "prob": [float("nan")] + [i / rows for i in range(1, rows)],
        "flag": [i % 2 == 0 for i in range(rows)],
        "nothing": pa.nulls(rows),
        "blank": [""] * rows,
    })
    spec = infer_spec(table)
    assert spec["review"] == TextSegment()
    assert spec["sentiment"] == CategoryLabel(vocab=("negative", "neutral", "positive"))
    assert spec["gold_label"] == CategoryLabel(vocab=tuple(sorted(f"class {i}" for i in range(50))))
    assert spec["y"] == CategoryLabel(vocab=("0", "1", "2", "3"))
    assert spec["year"] == Scalar(min_val=2000.0, max_val=2003.0)
    assert spec["prob"] == Scalar(min_val=1 / rows, max_val=(rows - 1) / rows)
    assert spec["flag"] == Boolean()
    assert spec["nothing"] == spec["blank"] == TextSegment()


def test_infer_spec_needs_repetition_before_calling_text_a_category():
    few_rows = pa.table({"word": ["a", "b", "a", "b"], "label": ["x", "y", "x", "y"]})
    assert infer_spec(few_rows) == {"word": TextSegment(),
                                    "label": CategoryLabel(vocab=("x", "y"))}


def test_infer_spec_for_images_vectors_and_tokens():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    signatures = [png, b"\xff\xd8\xff\xe0" + b"\x00" * 20, b"GIF89a" + b"\x00" * 20,
                  b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20]
    table = pa.table({
        "image": signatures,
        "file": ["a.png", "b.JPG", "dir/c.jpeg", "d.webp"],
        "utf8_bytes": [b"one", b"two", b"three", b"four"],
        "raw_bytes": [b"\xff\xfe", b"\x00\x81", b"\x90", b"\xc3"],
        "vector": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]],
        "ids": pa.array([[1, 2]] * 4, pa.list_(pa.int64(), 2)),
        "tokens": [["a", "b"], ["c"], [], None],
        "nested": [{"x": 1}] * 4,
    })
    assert infer_spec(table) == {
        "image": ImageBytes(), "file": ImagePath(), "utf8_bytes": TextSegment(),
        "vector": Embeddings(), "ids": Embeddings(), "tokens": Tokens()}


def test_infer_spec_keeps_dictionary_order_and_dates_as_text():
    categories = pa.DictionaryArray.from_arrays(pa.array([2, 0, 1, 0]),
                                                pa.array(["low", "mid", "high"]))
    table = pa.table({"level": categories,
                      "when": pa.array([0, 1, 2, 3], pa.timestamp("s"))})
    spec = infer_spec(table)
    assert spec == {"level": CategoryLabel(vocab=("low", "mid", "high")), "when": TextSegment()}
    conformed = conform_table(table, spec)
    assert conformed.column("level").to_pylist() == ["high", "low", "mid", "low"]
    assert conformed.column("when").type == pa.string()


def test_conform_table_casts_what_the_user_retyped_as_a_category():
    table = pa.table({"stars": [1, 5, 3], "score": [0.5, 0.1, 0.9]})
    spec = {"stars": CategoryLabel(vocab=("1", "3", "5")), "score": Scalar()}
    conformed = conform_table(table, spec)
    assert conformed.column("stars").to_pylist() == ["1", "5", "3"]
    assert conformed.column("score").type == pa.float64()
