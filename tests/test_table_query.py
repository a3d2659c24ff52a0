"""The data table's query engine: search syntax, column filters, sorting and CSV export."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from litdesk.api.types import CategoryLabel, Embeddings, Scalar, TextSegment
from litdesk.core.table_query import (
    QueryError,
    RowQuery,
    Term,
    export_csv,
    filter_rows,
    parse_column_filter,
    parse_search,
    resolve_column,
    sort_rows,
)

TEXTS = [
    "A great movie",          # 0
    "terrible plot",          # 1
    None,                     # 2
    "great fun, great cast",  # 3
    "Fine",                   # 4
    "not great, not bad",     # 5
]


@pytest.fixture
def table() -> pa.Table:
    return pa.table({
        "text": TEXTS,
        "label": ["positive", "negative", "positive", "Positive", None, "neutral"],
        "score": [0.9, 0.1, 0.5, None, 0.3, float("nan")],
        "count": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "flag": [True, False, None, True, False, True],
        "kind": pa.array(["a", "b", "a", "c", None, "b"]).dictionary_encode(),
        "vector": pa.array([[0.5, 1.0], [0.0, -2.0], None, [], [1e-7, 3.0], [float("nan"), 1.0]],
                           pa.list_(pa.float32())),
    })


SPEC = {
    "text": TextSegment(),
    "label": CategoryLabel(vocab=("negative", "neutral", "positive")),
    "score": Scalar(),
    "vector": Embeddings(),
}


def rows_for(table: pa.Table, search: str = "", **column_filters: str) -> list[int]:
    return filter_rows(table, SPEC, RowQuery(search, column_filters)).tolist()


# --- Search syntax -------------------------------------------------------------------------


@pytest.mark.parametrize("search, expected", [
    ("", [0, 1, 2, 3, 4, 5]),
    ("great", [0, 3, 5]),
    ("GREAT", [0, 3, 5]),
    ("great movie", [0]),                     # every word must match
    ("great positive", [0, 3]),               # ...in any string column, categories included
    ('"great fun"', [3]),
    ('"fun great"', []),
    ('"great fun', [3]),                      # an unclosed quote runs to the end
    ("/gr.at/", [0, 3, 5]),
    ("/^a g/", []),                           # regex is case-sensitive...
    ("/^a g/i", [0]),                         # ...unless /i
    ("/not great|plot/", [1, 5]),
    ("/(ter|fin)/i great", []),
    ("score>0.4", [0, 2]),                    # NaN and null never match
    ("score>=0.5", [0, 2]),
    ("score<0.3", [1]),
    ("score<=0.3", [1, 4]),
    ("score!=0.5", [0, 1, 4]),                # NaN is missing, not different
    ("score=0.2..0.6", [2, 4]),
    ("score:0.2..0.6", [2, 4]),
    ("score:>0.4", [0, 2]),
    ("count=3", [2]),
    ("count==3", [2]),
    ("count:3", [2]),
    ("count=2..4 count!=3", [1, 3]),
    ("count>1.5", [1, 2, 3, 4, 5]),
    ("label=positive", [0, 2, 3]),            # equality, ignoring case
    ("label:POSITIVE", [0, 2, 3]),
    ("label:pos", []),                        # a category matches whole values
    ("label!=positive", [1, 5]),
    ('label="Positive"', [0, 2, 3]),
    ("label=/^neg|^neu/", [1, 5]),
    ("text:FUN", [3]),                        # a text column matches substrings
    ("text:/^not/", [5]),
    ("text=fine", [4]),                       # = on text is whole-value equality
    ('text:"great cast"', [3]),
    ("flag=true", [0, 3, 5]),
    ("flag:no", [1, 4]),
    ("flag!=true", [1, 4]),
    ("kind=A", [0, 2]),                       # dictionary-encoded strings are categories
    ("kind:b", [1, 5]),
    ("len(text)>13", [3, 5]),
    ("len(text)=4..5", [4]),
    ("len(label)<8 great", [5]),
    ("Score>0.4", [0, 2]),                    # column names ignore case when unambiguous
    ("great count>3", [3, 5]),
])
def test_search_syntax(table, search, expected):
    assert rows_for(table, search) == expected


def test_parse_search_terms():
    assert parse_search('great "a phrase" /re/i score>=0.5 label:pos len(text)=2..3') == (
        Term("match", "great", source="great"),
        Term("match", "a phrase", source='"a phrase"'),
        Term("regex", "re", ignore_case=True, source="/re/i"),
        Term("ge", "0.5", "score", source="score>=0.5"),
        Term("match", "pos", "label", source="label:pos"),
        Term("between", ("2", "3"), "text", length=True, source="len(text)=2..3"),
    )


def test_words_that_are_not_column_terms_are_plain_words():
    assert [term.op for term in parse_search("3>2 /usr/bin a/b, len(x)")] == ["match"] * 4


# --- Column filters ------------------------------------------------------------------------


@pytest.mark.parametrize("column, text, expected", [
    ("score", ">0.4", [0, 2]),
    ("score", "> 0.4", [0, 2]),
    ("score", "0.2..0.4", [4]),
    ("score", ">0.2 <0.8", [2, 4]),
    ("score", "0.5", [2]),
    ("count", "!=1", [1, 2, 3, 4, 5]),
    ("text", "great", [0, 3, 5]),
    ("text", "great not", [5]),
    ("text", "/^[A-Z]/", [0, 4]),
    ("text", '"great, great"', []),
    ("text", "a:b", []),                      # no column syntax inside a column filter
    ("label", "negative", [1]),
    ("label", "/ve$/", [0, 1, 2, 3]),
    ("flag", "false", [1, 4]),
    ("text", "", [0, 1, 2, 3, 4, 5]),
])
def test_column_filter(table, column, text, expected):
    assert rows_for(table, **{column: text}) == expected


def test_column_filters_and_search_combine(table):
    assert rows_for(table, "great", score="<0.95", label="positive") == [0]
    assert parse_column_filter("score", ">1 2..3") == (
        Term("gt", "1", "score", source=">1"),
        Term("between", ("2", "3"), "score", source="2..3"),
    )


def test_filter_restricted_to_base(table):
    query = RowQuery("great")
    assert filter_rows(table, SPEC, query, base=np.array([5, 0, 1])).tolist() == [0, 5]
    assert filter_rows(table, SPEC, query, base=np.array([0, 1, 5, 5])).tolist() == [0, 5]
    assert filter_rows(table, SPEC, query, base=np.arange(6)).tolist() == [0, 3, 5]
    # A base under a quarter of the table is taken first, then tested.
    assert filter_rows(table, SPEC, query, base=np.array([3])).tolist() == [3]
    assert filter_rows(table, SPEC, query, base=np.array([4])).tolist() == []
    assert filter_rows(table, SPEC, RowQuery(), base=np.array([4, 1])).tolist() == [1, 4]
    assert filter_rows(table, SPEC, query).dtype == np.int64


def test_filter_on_many_chunks_and_dictionary_chunks():
    chunked = pa.concat_tables([
        pa.table({"kind": pa.array(["x", "y"]).dictionary_encode(), "n": [1, 2]}),
        pa.table({"kind": pa.array(["y", "z", "x"]).dictionary_encode(), "n": [3, 4, 5]}),
    ])
    assert chunked.column("kind").num_chunks == 2
    assert filter_rows(chunked, {}, RowQuery("kind=x n>1")).tolist() == [4]
    assert filter_rows(chunked, {}, RowQuery("y")).tolist() == [1, 2]


# --- Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("search, message", [
    ("/(unclosed/", "invalid regular expression /(unclosed/: missing )"),
    ("text:/[a-/", "invalid regular expression"),
    ("scroe>0.5", "unknown column 'scroe': did you mean score?"),
    ("lable=positive", "did you mean label?"),
    ("zzz:1", "the columns are text, label, score"),
    ("score>high", "'score' holds numbers, and 'high' is not a number"),
    ("score=/0\\.5/", "'score' holds numbers, and a /regex/ needs text"),
    ("label>3", "'label' holds text, and comparisons need numbers"),
    ("text=1..2", "'text' holds text"),
    ("flag>1", "'flag' is true or false"),
    ("flag=maybe", "not 'maybe'"),
    ("len(score)>1", "len(score): 'score' holds double values, not text"),
    ("vector=1", "'vector' holds list<item: float> values, which cannot be filtered"),
    ("score>", "a value is missing after '>'"),
    ("label:", "a value is missing after ':'"),
])
def test_query_errors(table, search, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        filter_rows(table, SPEC, RowQuery(search))


def test_column_filter_on_unknown_column(table):
    with pytest.raises(QueryError, match="unknown column 'scor': did you mean score"):
        filter_rows(table, SPEC, RowQuery(column_filters={"scor": ">1"}))


def test_free_text_needs_a_string_column():
    with pytest.raises(QueryError, match="no text columns"):
        filter_rows(pa.table({"n": [1, 2]}), {}, RowQuery("word"))


def test_resolve_column_prefers_exact_names():
    both = pa.table({"Score": [1], "score": [2]})
    assert resolve_column(both, "score") == "score"
    with pytest.raises(QueryError, match="unknown column 'SCORE'"):
        resolve_column(both, "SCORE")


# --- Sorting -------------------------------------------------------------------------------


def test_sort_numbers_nulls_and_nan_last(table):
    everything = np.arange(6)
    assert sort_rows(table, "score", False, everything).tolist() == [1, 4, 2, 0, 5, 3]
    assert sort_rows(table, "score", True, everything).tolist() == [0, 2, 4, 1, 5, 3]


def test_sort_strings_categories_and_bools(table):
    everything = np.arange(6)
    assert sort_rows(table, "text", False, everything).tolist() == [0, 4, 3, 5, 1, 2]
    assert sort_rows(table, "label", True, everything).tolist() == [0, 2, 5, 1, 3, 4]
    assert sort_rows(table, "kind", False, everything).tolist() == [0, 2, 1, 5, 3, 4]
    assert sort_rows(table, "flag", False, everything).tolist() == [1, 4, 0, 3, 5, 2]


def test_sort_is_stable_in_both_directions():
    ties = pa.table({"key": [2, 1, 2, None, 1, 2]})
    assert sort_rows(ties, "key", False, np.arange(6)).tolist() == [1, 4, 0, 2, 5, 3]
    assert sort_rows(ties, "key", True, np.arange(6)).tolist() == [0, 2, 5, 1, 4, 3]
    # Ties keep the order they were given in, so sorting by one column then another works.
    assert sort_rows(ties, "key", False, np.array([5, 4, 3, 2, 1, 0])).tolist() == \
        [4, 1, 5, 2, 0, 3]
    assert sort_rows(ties, "key", True, np.array([5, 4, 3, 2, 1, 0])).tolist() == \
        [5, 2, 0, 4, 1, 3]


def test_sort_of_a_filtered_subset(table):
    subset = filter_rows(table, SPEC, RowQuery("count>1"))
    assert sort_rows(table, "score", True, subset).tolist() == [2, 4, 1, 5, 3]
    assert sort_rows(table, "count", True, np.array([], dtype=np.int64)).tolist() == []


def test_sort_reuses_the_full_order_for_subsets():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 50, 2000).astype(float)
    values[rng.integers(0, 2000, 100)] = np.nan
    big = pa.table({"x": pa.array(values, mask=np.arange(2000) % 97 == 0)})
    sort_rows(big, "x", False, np.arange(2000))          # computes and keeps the full order
    for descending in (False, True):
        for subset in (np.sort(rng.choice(2000, 300, replace=False)), np.arange(0, 2000, 2)):
            direct = subset[pc.array_sort_indices(
                big.column("x").take(subset), null_placement="at_end",
                order="descending" if descending else "ascending").to_numpy()]
            assert sort_rows(big, "x", descending, subset).tolist() == direct.tolist()


def test_sort_errors(table):
    with pytest.raises(QueryError, match="'vector' holds list<item: float> values, which have "
                                         "no order"):
        sort_rows(table, "vector", False, np.arange(6))
    with pytest.raises(QueryError, match="did you mean score"):
        sort_rows(table, "scores", False, np.arange(6))


# --- Export --------------------------------------------------------------------------------


def test_export_round_trip(table, tmp_path):
    path = tmp_path / "rows.csv"
    export_csv(table, np.array([3, 0, 4]), path, columns=["text", "score", "vector", "label"])
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["text", "score", "vector", "label"]
    assert [row[0] for row in rows[1:]] == ["great fun, great cast", "A great movie", "Fine"]
    assert [row[1] for row in rows[1:]] == ["", "0.9", "0.3"]
    assert [json.loads(row[2]) for row in rows[1:]] == [[], [0.5, 1.0], [1e-7, 3.0]]
    assert [row[3] for row in rows[1:]] == ["Positive", "positive", ""]


def test_export_nested_binary_and_special_numbers(tmp_path):
    path = tmp_path / "nested.csv"
    nested = pa.table({
        "tokens": [["a", "b\"c"], None],
        "vector": pa.array([[float("nan"), float("inf")], [1, 2]], pa.list_(pa.float64())),
        "fixed": pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 3, 4], pa.int8()), 2),
        "image": [b"\x89PNG\xff", None],
        "kind": pa.array(["x", "y"]).dictionary_encode(),
    })
    export_csv(nested, np.array([1, 0]), path)
    with open(path, newline="", encoding="utf-8") as file:
        header, second, first = list(csv.reader(file))
    assert header == ["tokens", "vector", "fixed", "image", "kind"]
    assert json.loads(first[0]) == ["a", 'b"c'] and second[0] == ""
    assert first[1] == "[NaN,Infinity]" and json.loads(second[1]) == [1, 2]
    assert json.loads(first[2]) == [1, 2] and json.loads(second[2]) == [3, 4]
    assert first[3] == "iVBOR/8=" and second[3] == ""
    assert [first[4], second[4]] == ["x", "y"]


def test_export_of_no_rows_writes_the_header(table, tmp_path):
    path = tmp_path / "empty.csv"
    export_csv(table, np.array([], dtype=np.int64), path, columns=["count"])
    assert path.read_text().splitlines() == ['"count"']
