"""Search, filter, sort and export the rows of a dataset table, without Qt.

The data table shows ``table.take(view_rows)`` row by row; this module computes
``view_rows`` with vectorised Arrow kernels, never a Python loop over rows, so that it
keeps up with a million rows.

Search syntax (every term must hold for a row to be kept)::

    great movie         both words, case-insensitive, anywhere in any string column
    "great movie"       the phrase
    /gr[ea]+t/          a regular expression (RE2) over the string columns; /.../i ignores case
    score>0.8           comparison on a number column: > >= < <= = !=
    score=0.2..0.4      inclusive range
    label=positive      equality (case-insensitive for strings); label!=positive
    label:positive      the column filter "positive" on that column (see below)
    len(text)>20        the length of a string column, in characters

A column filter uses the same syntax scoped to one column: ``>0.8``, ``0.2..0.4``,
``!=3``, ``/regex/``, ``"a phrase"`` or a bare value. A bare value is a substring on a
text column and equality on a category, number or boolean column. Rows whose value is
missing (null, or NaN) never match a term on that column.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from litdesk.api.types import CategoryLabel, Spec
from litdesk.core.rows import sorted_unique


class QueryError(ValueError):
    """A search, column filter or sort that cannot be carried out; the message says why."""


TermOp = Literal["match", "regex", "eq", "ne", "lt", "le", "gt", "ge", "between"]


@dataclass(frozen=True)
class Term:
    """One condition of a query.

    ``op`` "match" is a bare value: a substring when the column is text (or when
    ``column`` is None, meaning any string column), equality otherwise. ``value`` is the
    text as typed (a ``(low, high)`` pair for "between"); it is converted to the column's
    type when the query runs. ``length`` compares ``len(column)`` instead of the values.
    ``ignore_case`` applies to regular expressions; other string terms always ignore case.
    """

    op: TermOp
    value: Union[str, tuple[str, str]]
    column: Optional[str] = None
    length: bool = False
    ignore_case: bool = True
    source: str = ""


@dataclass(frozen=True)
class RowQuery:
    """What the data table is filtered by: the search box and one filter per column."""

    search: str = ""
    column_filters: Mapping[str, str] = field(default_factory=dict, hash=False)

    def terms(self) -> tuple[Term, ...]:
        """All terms of the search and the column filters (raises :class:`QueryError`)."""
        terms = list(parse_search(self.search))
        for column, text in self.column_filters.items():
            terms.extend(parse_column_filter(column, text))
        return tuple(terms)


# --- Parsing -----------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PHRASE = r'"(?P<phrase>[^"]*)(?:"|$)'
_REGEX = r"/(?P<regex>(?:\\.|[^\\/])+)/(?P<flags>i?)(?=\s|$)"
_COMPARISON = r">=|<=|!=|==|=|>|<"
_FIELD_VALUE = r'"[^"]*(?:"|$)|/(?:\\.|[^\\/])+/i?(?=\s|$)|\S*'

_SEARCH_TOKEN = re.compile(
    rf"""\s*(?:
        (?:len\((?P<length_of>[^()\s]+)\)|(?P<column>[A-Za-z_][\w.]*))
            (?P<op>{_COMPARISON}|:)(?P<value>{_FIELD_VALUE})
      | {_PHRASE}
      | {_REGEX}
      | (?P<word>\S+)
    )""",
    re.VERBOSE,
)

_SCOPED_TOKEN = re.compile(
    rf"""\s*(?:
        (?P<op>{_COMPARISON})\s*(?P<value>{_FIELD_VALUE})
      | (?P<low>{_NUMBER})\.\.(?P<high>{_NUMBER})(?=\s|$)
      | {_PHRASE}
      | {_REGEX}
      | (?P<word>\S+)
    )""",
    re.VERBOSE,
)

_RANGE = re.compile(rf"(?P<low>{_NUMBER})\.\.(?P<high>{_NUMBER})")
_REGEX_VALUE = re.compile(_REGEX)

_OPS: dict[str, TermOp] = {
    "=": "eq", "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge",
}


def parse_search(text: str) -> tuple[Term, ...]:
    """The terms of a search-box query (see the module docstring for the syntax)."""
    terms: list[Term] = []
    for match in _tokens(_SEARCH_TOKEN, text):
        source = match.group(0).strip()
        if match.group("op") is not None:
            column = match.group("column") or match.group("length_of")
            length = match.group("length_of") is not None
            value = match.group("value")
            if match.group("op") == ":":
                if not value:
                    raise QueryError(f"{source}: a value is missing after ':'")
                scoped = _scoped_terms(column, value, length)
            else:
                scoped = (_comparison_term(column, match.group("op"), value, length, source),)
            terms.extend(replace(term, source=source) for term in scoped)
        elif match.group("phrase") is not None:
            if match.group("phrase"):
                terms.append(Term("match", match.group("phrase"), source=source))
        elif match.group("regex") is not None:
            terms.append(_regex_term(match, None, source))
        else:
            terms.append(Term("match", match.group("word"), source=source))
    return tuple(terms)


def parse_column_filter(column: str, text: str) -> tuple[Term, ...]:
    """The terms of the filter typed above ``column`` (the search syntax, scoped to it)."""
    return _scoped_terms(column, text, length=False)


def _scoped_terms(column: str, text: str, length: bool) -> tuple[Term, ...]:
    terms: list[Term] = []
    for match in _tokens(_SCOPED_TOKEN, text):
        source = match.group(0).strip()
        if match.group("op") is not None:
            terms.append(_comparison_term(column, match.group("op"), match.group("value"),
                                          length, source))
        elif match.group("low") is not None:
            terms.append(Term("between", (match.group("low"), match.group("high")), column,
                              length, source=source))
        elif match.group("phrase") is not None:
            if match.group("phrase"):
                terms.append(Term("match", match.group("phrase"), column, length,
                                  source=source))
        elif match.group("regex") is not None:
            terms.append(_regex_term(match, column, source, length))
        else:
            terms.append(Term("match", match.group("word"), column, length, source=source))
    return tuple(terms)


def _comparison_term(column: str, op: str, value: str, length: bool, source: str) -> Term:
    if not value:
        raise QueryError(f"{source}: a value is missing after '{op}'")
    if value.startswith('"'):
        return Term(_OPS[op], value[1:].removesuffix('"'), column, length, source=source)
    if op in ("=", "==") and (bounds := _RANGE.fullmatch(value)):
        return Term("between", (bounds.group("low"), bounds.group("high")), column, length,
                    source=source)
    if op in ("=", "==") and (regex := _REGEX_VALUE.fullmatch(value)):
        return _regex_term(regex, column, source, length)
    return Term(_OPS[op], value, column, length, source=source)


def _regex_term(match: re.Match, column: Optional[str], source: str,
                length: bool = False) -> Term:
    pattern = match.group("regex")
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except pa.ArrowInvalid as error:
        reason = str(error).removeprefix("Invalid regular expression:").strip()
        raise QueryError(f"invalid regular expression /{pattern}/: {reason}") from None
    return Term("regex", pattern, column, length, ignore_case=match.group("flags") == "i",
                source=source)


def _tokens(pattern: re.Pattern, text: str) -> Iterable[re.Match]:
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = pattern.match(text, position)
        yield match
        position = match.end()


# --- Filtering ---------------------------------------------------------------------------

#: Below this fraction of the table, candidate rows are taken before a condition tests them.
_TAKE_FIRST_FRACTION = 0.25


@dataclass(frozen=True)
class _Condition:
    columns: tuple[str, ...]
    mask: Callable[[pa.Table], np.ndarray]
    cost: int


def filter_rows(table: pa.Table, spec: Spec, query: RowQuery,
                base: Optional[np.ndarray] = None) -> np.ndarray:
    """Positions of the rows that satisfy every term of ``query``, ascending (int64).

    ``base`` restricts the answer to those positions (a selection or a slice). Raises
    :class:`QueryError` for a query that cannot be understood, before any work is done.
    Cheap terms run first; once few rows are left, later terms test only those.
    """
    conditions = sorted((_condition(term, table, spec) for term in query.terms()),
                        key=lambda condition: condition.cost)
    rows = None if base is None else sorted_unique(base)
    for condition in conditions:
        rows = _narrow(table, condition, rows)
    return np.arange(table.num_rows, dtype=np.int64) if rows is None else rows


def _narrow(table: pa.Table, condition: _Condition, rows: Optional[np.ndarray]) -> np.ndarray:
    """Those of ``rows`` (all rows when None) that satisfy ``condition``."""
    if rows is None:
        return np.flatnonzero(condition.mask(table)).astype(np.int64, copy=False)
    if len(rows) < _TAKE_FIRST_FRACTION * table.num_rows:
        candidates = table.select(list(condition.columns)).take(pa.array(rows))
        return rows[condition.mask(candidates)]
    return rows[condition.mask(table)[rows]]


def _is_strictly_ascending(rows: np.ndarray) -> bool:
    return rows.size < 2 or bool(np.all(rows[1:] > rows[:-1]))


def _condition(term: Term, table: pa.Table, spec: Spec) -> _Condition:
    if term.column is None:
        columns = tuple(name for name in table.column_names
                        if _is_string(table.schema.field(name).type))
        if not columns:
            raise QueryError(f"{term.source}: this table has no text columns to search")
        predicate = _text_predicate(term)
        return _Condition(columns, lambda t: _any_of(t, columns, predicate), _COSTS["text"])
    column = resolve_column(table, term.column)
    kind = _column_kind(column, table.schema.field(column).type, spec.get(column), term.length)
    predicate = _PREDICATE_BUILDERS[kind](term, column)
    return _Condition((column,), lambda t: _column_mask(t.column(column), predicate),
                      _COSTS[kind])


def _any_of(table: pa.Table, columns: Sequence[str], predicate: Callable) -> np.ndarray:
    keep = np.zeros(table.num_rows, dtype=bool)
    for name in columns:
        keep |= _column_mask(table.column(name), predicate)
    return keep


def _column_mask(values: pa.ChunkedArray, predicate: Callable) -> np.ndarray:
    """``predicate`` per chunk as a numpy mask; on a dictionary chunk, once per distinct value."""
    parts = []
    for chunk in values.chunks:
        if pa.types.is_dictionary(chunk.type):
            result = predicate(chunk.dictionary).take(chunk.indices)
        else:
            result = predicate(chunk)
        parts.append(result.fill_null(False).to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


_ColumnKind = Literal["text", "category", "number", "boolean", "length"]

#: The relative cost of testing a row, by column kind: cheaper conditions run first.
_COSTS: dict[_ColumnKind, int] = {"number": 0, "boolean": 0, "category": 1, "length": 1,
                                  "text": 2}


def _column_kind(column: str, arrow_type: pa.DataType, field_type: object,
                 length: bool) -> _ColumnKind:
    if _is_string(arrow_type):
        if length:
            return "length"
        if isinstance(field_type, CategoryLabel) or pa.types.is_dictionary(arrow_type):
            return "category"
        return "text"
    if length:
        raise QueryError(f"len({column}): '{column}' holds {arrow_type} values, not text")
    value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_integer(value_type) or pa.types.is_floating(value_type) \
            or pa.types.is_decimal(value_type):
        return "number"
    if pa.types.is_boolean(value_type):
        return "boolean"
    raise QueryError(f"column '{column}' holds {arrow_type} values, which cannot be filtered")


def _is_string(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _text_predicate(term: Term) -> Callable[[pa.Array], pa.Array]:
    if term.op == "regex":
        return lambda values: pc.match_substring_regex(values, term.value,
                                                       ignore_case=term.ignore_case)
    return lambda values: pc.match_substring(values, term.value, ignore_case=True)


def _string_predicate(term: Term, column: str, substring: bool) -> Callable:
    if term.op == "regex" or (term.op == "match" and substring):
        return _text_predicate(term)
    if term.op in ("match", "eq", "ne"):
        lowered = str(term.value).lower()
        compare = pc.not_equal if term.op == "ne" else pc.equal
        return lambda values: compare(pc.utf8_lower(values), lowered)
    raise QueryError(f"{term.source}: '{column}' holds text, and comparisons need numbers "
                     f"(len({column}) compares lengths)")


def _text_column_predicate(term: Term, column: str) -> Callable:
    return _string_predicate(term, column, substring=True)


def _category_column_predicate(term: Term, column: str) -> Callable:
    return _string_predicate(term, column, substring=False)


_NUMBER_COMPARISONS = {
    "match": pc.equal, "eq": pc.equal, "lt": pc.less,
    "le": pc.less_equal, "gt": pc.greater, "ge": pc.greater_equal,
}


def _number_column_predicate(term: Term, column: str) -> Callable:
    if term.op == "regex":
        raise QueryError(f"{term.source}: '{column}' holds numbers, and a /regex/ needs text")
    if term.op == "between":
        low, high = (_number(bound, term, column) for bound in term.value)
        return lambda values: pc.and_(pc.greater_equal(values, low),
                                      pc.less_equal(values, high))
    number = _number(term.value, term, column)
    if term.op == "ne":
        # values == values is false for NaN, which counts as missing, like null.
        return lambda values: pc.and_(pc.not_equal(values, number), pc.equal(values, values))
    compare = _NUMBER_COMPARISONS[term.op]
    return lambda values: compare(values, number)


def _length_column_predicate(term: Term, column: str) -> Callable:
    compare = _number_column_predicate(term, f"len({column})")
    return lambda values: compare(pc.utf8_length(values))


_BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _boolean_column_predicate(term: Term, column: str) -> Callable:
    if term.op not in ("match", "eq", "ne"):
        raise QueryError(f"{term.source}: '{column}' is true or false; use {column}=true or "
                         f"{column}=false")
    wanted = _BOOLEAN_WORDS.get(str(term.value).lower())
    if wanted is None:
        raise QueryError(f"{term.source}: '{column}' is true or false, not '{term.value}'")
    compare = pc.not_equal if term.op == "ne" else pc.equal
    return lambda values: compare(values, wanted)


_PREDICATE_BUILDERS: dict[_ColumnKind, Callable[[Term, str], Callable]] = {
    "text": _text_column_predicate,
    "category": _category_column_predicate,
    "number": _number_column_predicate,
    "length": _length_column_predicate,
    "boolean": _boolean_column_predicate,
}


def _number(text: str, term: Term, column: str) -> Union[int, float]:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise QueryError(f"{term.source}: '{column}' holds numbers, and '{text}' is not "
                         f"a number") from None


def resolve_column(table: pa.Table, name: str) -> str:
    """The table's column called ``name`` (or, if unambiguous, its case-insensitive match).

    Raises :class:`QueryError` naming the column and the closest existing names.
    """
    names = table.column_names
    if name in names:
        return name
    folded = [candidate for candidate in names if candidate.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(close) + "?"
    else:
        listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        hint = f"the columns are {listed}"
    raise QueryError(f"unknown column '{name}': {hint} (put text in quotes to search for it "
                     f"literally)")


# --- Sorting -----------------------------------------------------------------------------


class _SortOrderCache:
    """Full-table sort orders kept while their table lives; the least recently used go first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._orders: OrderedDict[tuple[int, str, bool], tuple[weakref.ref, np.ndarray]] = \
            OrderedDict()
        self._lock = threading.RLock()  # a weakref callback may run inside a locked block

    def get(self, table: pa.Table, column: str, descending: bool) -> Optional[np.ndarray]:
        key = (id(table), column, descending)
        with self._lock:
            entry = self._orders.get(key)
            if entry is None or entry[0]() is not table:
                return None
            self._orders.move_to_end(key)
            return entry[1]

    def put(self, table: pa.Table, column: str, descending: bool, order: np.ndarray) -> None:
        key = (id(table), column, descending)
        table_ref = weakref.ref(table, lambda dead: self._forget(key, dead))
        with self._lock:
            self._orders[key] = (table_ref, order)
            self._orders.move_to_end(key)
            while len(self._orders) > self._capacity:
                self._orders.popitem(last=False)

    def _forget(self, key: tuple[int, str, bool], dead: weakref.ref) -> None:
        with self._lock:
            entry = self._orders.get(key)
            if entry is not None and entry[0] is dead:
                del self._orders[key]


_full_sort_orders = _SortOrderCache(capacity=8)


def sort_rows(table: pa.Table, column: str, descending: bool, rows: np.ndarray) -> np.ndarray:
    """``rows`` reordered by ``column``: stable, nulls (and NaN) last in either direction.

    Strings sort by code point; list, vector and struct columns raise :class:`QueryError`.
    A sort over at least half the table computes the whole table's order once and keeps it
    while the table lives; later sorts by that column of any ascending subset (a filter's
    output) just pick their rows out of it, in linear time.
    """
    column = resolve_column(table, column)
    values = table.column(column)
    if _is_nested(values.type):
        raise QueryError(f"column '{column}' holds {values.type} values, which have no order")
    rows = np.asarray(rows, dtype=np.int64)
    if _is_strictly_ascending(rows):
        order = _full_sort_orders.get(table, column, descending)
        if order is None and 2 * rows.size >= table.num_rows:
            order = _sort_order(column, values, descending)
            _full_sort_orders.put(table, column, descending, order)
        if order is not None:
            wanted = np.zeros(table.num_rows, dtype=bool)
            wanted[rows] = True
            return order[wanted[order]]
    return rows[_sort_order(column, values.take(pa.array(rows)), descending)]


def _is_nested(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_nested(arrow_type)


def _sort_order(column: str, values: pa.ChunkedArray, descending: bool) -> np.ndarray:
    if pa.types.is_dictionary(values.type):
        values = values.combine_chunks()
    try:
        order = pc.array_sort_indices(values, null_placement="at_end",
                                      order="descending" if descending else "ascending")
    except pa.ArrowNotImplementedError:
        raise QueryError(f"column '{column}' holds {values.type} values, which cannot be "
                         f"sorted") from None
    return order.to_numpy().astype(np.int64)


# --- Export ------------------------------------------------------------------------------

_EXPORT_BATCH_ROWS = 65_536


def export_csv(table: pa.Table, rows: np.ndarray, path: Union[str, Path],
               columns: Optional[Sequence[str]] = None) -> None:
    """Write the rows at ``rows``, in that order, as CSV with a header line.

    ``columns`` picks and orders the columns (all by default). Lists, vectors and structs
    are written as JSON text, binary values (images) as base64, missing values as empty
    cells. Rows are written in batches, so memory stays bounded for any number of rows.
    """
    names = [resolve_column(table, name)
             for name in (table.column_names if columns is None else columns)]
    chosen = table.select(names)
    rows = np.asarray(rows, dtype=np.int64)
    schema = _csv_ready(chosen.slice(0, 0)).schema
    with pa_csv.CSVWriter(str(path), schema) as writer:
        for start in range(0, rows.size, _EXPORT_BATCH_ROWS):
            batch = chosen.take(pa.array(rows[start:start + _EXPORT_BATCH_ROWS]))
            writer.write_table(_csv_ready(batch))


def _csv_ready(table: pa.Table) -> pa.Table:
    """``table`` with every column turned into something the CSV writer accepts."""
    columns = []
    for values in table.columns:
        value_type = values.type
        if _is_list_of_numbers(value_type):
            columns.append(_numbers_as_json(values))
        elif pa.types.is_nested(value_type):
            columns.append(_python_values_as_text(values, _json_text))
        elif pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type) \
                or pa.types.is_fixed_size_binary(value_type):
            columns.append(_python_values_as_text(values, _base64_text))
        else:
            columns.append(values)
    return pa.table(columns, names=table.column_names)


def _is_list_of_numbers(arrow_type: pa.DataType) -> bool:
    if not (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
            or pa.types.is_fixed_size_list(arrow_type)):
        return False
    item_type = arrow_type.value_type
    return pa.types.is_integer(item_type) or pa.types.is_floating(item_type) \
        or pa.types.is_boolean(item_type)


def _numbers_as_json(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Vectorised JSON for lists of numbers: ``[0.1,2,NaN]`` (Python's JSON dialect)."""
    joined = pc.binary_join(pc.cast(values, pa.list_(pa.string())), ",")
    text = pc.binary_join_element_wise("[", joined, "]", "")
    return pc.replace_substring(pc.replace_substring(text, "nan", "NaN"), "inf", "Infinity")


def _python_values_as_text(values: pa.ChunkedArray, convert: Callable) -> pa.Array:
    return pa.array([None if value is None else convert(value) for value in values.to_pylist()],
                    type=pa.string())


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _base64_text(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
