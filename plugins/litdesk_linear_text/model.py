"""Bag-of-words linear text classifiers stored as JSON instead of pickle.

A ``linear_text_model.json`` file holds what scikit-learn's ``TfidfVectorizer`` (word analyzer)
and ``LogisticRegression`` need to reproduce ``predict_proba``: the analyzer settings, the
vocabulary, the idf weights, the coefficients and the intercepts. :func:`export_sklearn` writes
one from fitted estimators; :func:`load` reads one back with numpy alone, so loading a model
never executes code from the file.

The file still decides how much work each text costs, so two settings are bounded: the token
pattern (:func:`check_token_pattern`) and the n-gram range (at most :data:`MAX_NGRAM` words).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import reprlib
import unicodedata
from collections.abc import Collection, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import (
    read_json_document,
    LoadOptions,
    CategoryLabel,
    Model,
    ModelLoadError,
    MulticlassPreds,
    Spec,
    TextSegment,
    Tokens,
    TokenSalience,
)

FORMAT = "litdesk-linear-text/1"
MODEL_FILE_NAME = "linear_text_model.json"

#: The longest n-gram a model may use. A text of w words yields about w terms per n in the range,
#: joining w·n(n+1)/2 words in all: linear in the text only while n is bounded (with 1..100000,
#: n grows to w and the cost with w³: one load took 6.3 GB). Word n-grams longer than a few
#: words almost never recur across texts, so they carry no signal; 8 leaves room for any
#: useful model.
MAX_NGRAM = 8
#: The most ways :func:`check_token_pattern` lets a token pattern be tried at one position.
MAX_PATTERN_WAYS = 256

_REQUIRED_KEYS = ("labels", "vocabulary", "idf", "coef", "intercept", "ngram_range",
                  "lowercase", "token_pattern", "sublinear_tf", "norm")


def _strip_accents_unicode(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _strip_accents_ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ASCII", "ignore").decode("ASCII")


_ACCENT_STRIPPERS = {"unicode": _strip_accents_unicode, "ascii": _strip_accents_ascii}


class _WordAnalyzer:
    """scikit-learn's word analyzer: preprocess, tokenize with a regex, drop stop words, n-grams.

    Unlike scikit-learn's, it also reports which word positions each term was built from, so
    that a term's weight can be attributed back to the words of the text.
    """

    def __init__(self, lowercase: bool, strip_accents: str | None, token_pattern: str,
                 stop_words: frozenset[str], ngram_range: tuple[int, int]) -> None:
        self.lowercase = lowercase
        self.strip_accents = _ACCENT_STRIPPERS[strip_accents] if strip_accents else None
        self.pattern = re.compile(token_pattern)
        if self.pattern.groups > 1:
            raise ValueError(f"token_pattern has {self.pattern.groups} capturing groups; at most 1")
        self.stop_words = stop_words
        self.ngram_range = ngram_range

    def words(self, text: str) -> list[str]:
        """The text's word tokens in order (stop words included)."""
        if self.lowercase:
            text = text.lower()
        if self.strip_accents is not None:
            text = self.strip_accents(text)
        return self.pattern.findall(text)

    def terms(self, words: list[str]) -> list[tuple[str, tuple[int, ...]]]:
        """Each term occurrence with the positions (in ``words``) of the words it joins.

        The order is scikit-learn's; only the multiset of terms matters for the features.
        """
        kept = [i for i, word in enumerate(words) if word not in self.stop_words]
        min_n, max_n = self.ngram_range
        occurrences = []
        for n in range(min_n, min(max_n, len(kept)) + 1):
            for start in range(len(kept) - n + 1):
                positions = tuple(kept[start:start + n])
                occurrences.append((" ".join(words[i] for i in positions), positions))
        return occurrences

    def term_strings(self, words: list[str]) -> list[str]:
        """The terms of :meth:`terms` alone, without their positions (the fast path)."""
        kept = words if not self.stop_words else [w for w in words if w not in self.stop_words]
        min_n, max_n = self.ngram_range
        if max_n == 1:
            return kept
        terms = kept[:] if min_n == 1 else []
        for n in range(max(min_n, 2), min(max_n, len(kept)) + 1):
            terms.extend(map(" ".join, zip(*(kept[i:] for i in range(n)))))
        return terms


try:
    from re import _parser as _regex_parser  # the parser re.compile uses (Python 3.11+)
except ImportError:  # Python 3.10
    import sre_parse as _regex_parser

_SINGLE_CHARACTER = {"LITERAL", "NOT_LITERAL", "ANY", "IN"}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def _ways(parsed: Any) -> tuple[int, int]:
    """An upper bound c·n^d on the ways a backtracking matcher tries ``parsed`` at one position
    of a text of n characters, as ``(c, d)``.

    A sequence multiplies its items' ways, an alternation adds its branches', a bounded repeat
    ``{m,n}`` of a fixed part offers n-m+1 ways and an unbounded one (``+``, ``*``, ``{m,}``,
    or one wider than :data:`MAX_PATTERN_WAYS`) up to n. A repeat of a part that has choices
    itself (``(a+)+``, ``(a|ab)*``) is what makes backtracking exponential, so it is refused
    (ValueError), as are backreferences.
    """
    coefficient, degree = 1, 0
    for op, argument in parsed:
        name = str(op)
        if name in _SINGLE_CHARACTER or name == "AT":
            continue
        if name == "SUBPATTERN":
            ways = _ways(argument[-1])
        elif name == "ATOMIC_GROUP":
            ways = _ways(argument)
        elif name in ("ASSERT", "ASSERT_NOT"):
            ways = _ways(argument[1])
        elif name == "BRANCH":
            branches = [_ways(branch) for branch in argument[1]]
            ways = (sum(c for c, _ in branches), max(d for _, d in branches))
        elif name in _REPEATS:
            low, high, body = argument
            if _ways(body) != (1, 0):
                raise ValueError("repeats a part that has choices of its own (like (a+)+ or "
                                 "(a|ab)*), which can take exponential time")
            choices = high - low + 1  # at most n + 1 however wide: a wide one counts as unbounded
            ways = (1, 1) if high == _regex_parser.MAXREPEAT or choices > MAX_PATTERN_WAYS \
                else (choices, 0)
        else:  # GROUPREF, GROUPREF_EXISTS: matching with backreferences is NP-hard
            raise ValueError(f"uses a backreference or another construct ({name}) whose "
                             "matching time cannot be bounded")
        coefficient, degree = coefficient * ways[0], degree + ways[1]
    return coefficient, degree


def check_token_pattern(pattern: str) -> None:
    r"""Raise ValueError unless the token pattern runs in linear time at each position of a text.

    The pattern runs on every text, in Python's backtracking matcher, which cannot be stopped:
    a pattern like ``(a+)+$`` takes exponential time on some texts, ``\w*\w*\w*x`` a power of
    the word's length. So the pattern, as Python's own regex parser reads it, may repeat only
    single characters or fixed parts, may hold at most one unbounded repeat per match, and its
    optional parts, bounded repeats and alternatives may give at most :data:`MAX_PATTERN_WAYS`
    ways to try at one position (see :func:`_ways`): linear per position, like scikit-learn's
    default ``(?u)\b\w\w+\b``, which passes, as do the usual ``\b\w+\b``, ``\S+``,
    ``[a-z]{2,}``.
    """
    try:
        parsed = _regex_parser.parse(pattern)
    except re.error as error:
        raise ValueError(f"'token_pattern' is not a valid regular expression ({error})") from None
    except RecursionError:
        raise ValueError("'token_pattern' is nested too deeply") from None
    shown = reprlib.repr(pattern)
    try:
        coefficient, degree = _ways(parsed)
    except ValueError as error:
        raise ValueError(f"'token_pattern' {shown} {error}") from None
    if degree > 1:
        raise ValueError(f"'token_pattern' {shown} has {degree} unbounded repeats (+, *, {{m,}}) "
                         "in one match, so matching can take time growing with a power of the "
                         "text's length; at most 1 (like \\w\\w+)")
    if coefficient > MAX_PATTERN_WAYS:
        raise ValueError(f"'token_pattern' {shown} can be tried {coefficient} ways at each "
                         "position (optional parts, bounded repeats, alternatives); at most "
                         f"{MAX_PATTERN_WAYS}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _float_array(value: Any, key: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"'{key}' is not an array of numbers ({error})") from None
    _require(array.ndim == ndim, f"'{key}' should have {ndim} dimension(s), has {array.ndim}")
    _require(bool(np.isfinite(array).all()), f"'{key}' holds non-finite numbers")
    return array


class LinearTextModel(Model):
    """tf-idf features followed by a linear layer: scikit-learn's TfidfVectorizer + LogisticRegression.

    ``document`` is the parsed JSON of a ``linear_text_model.json`` file; a ValueError says what
    is inconsistent in it. ``token_salience`` is gradient x input of the predicted class's score
    with respect to the tf-idf features (for a binary model, the log-odds of the predicted
    class), each term's share split evenly over its occurrences and over the words of each
    occurrence, so the saliences of a text sum to its score minus the intercept.
    """

    def __init__(self, document: dict[str, Any], name: str = "linear_text") -> None:
        _require(isinstance(document, dict), "not a JSON object")
        _require(document.get("format") == FORMAT,
                 f"format is {document.get('format')!r}, expected {FORMAT!r}")
        missing = [key for key in _REQUIRED_KEYS if key not in document]
        _require(not missing, f"missing key(s): {', '.join(missing)}")
        self.name = name
        self._document = document

        labels = document["labels"]
        _require(isinstance(labels, list) and len(labels) >= 2
                 and all(isinstance(label, str) for label in labels),
                 "'labels' should be a list of at least two strings")
        self.labels = tuple(labels)

        vocabulary = document["vocabulary"]
        _require(isinstance(vocabulary, dict) and all(
            isinstance(column, int) and not isinstance(column, bool) for column in vocabulary.values()),
            "'vocabulary' should map terms to integer columns")
        n_terms = len(vocabulary)
        _require(sorted(vocabulary.values()) == list(range(n_terms)),
                 f"'vocabulary' columns should be 0..{n_terms - 1}, each once")
        self.vocabulary: dict[str, int] = vocabulary

        self.idf = _float_array(document["idf"], "idf", 1)
        _require(self.idf.shape == (n_terms,), f"'idf' has {self.idf.size} entries, expected {n_terms}")
        self.coef = _float_array(document["coef"], "coef", 2)
        n_rows = 1 if len(labels) == 2 else len(labels)
        _require(self.coef.shape == (n_rows, n_terms),
                 f"'coef' has shape {self.coef.shape}, expected {(n_rows, n_terms)}")
        self.intercept = _float_array(document["intercept"], "intercept", 1)
        _require(self.intercept.shape == (n_rows,),
                 f"'intercept' has {self.intercept.size} entries, expected {n_rows}")

        ngram_range = document["ngram_range"]
        _require(isinstance(ngram_range, list) and len(ngram_range) == 2
                 and all(isinstance(n, int) for n in ngram_range)
                 and 1 <= ngram_range[0] <= ngram_range[1] <= MAX_NGRAM,
                 f"'ngram_range' is {reprlib.repr(ngram_range)}; it should be [min_n, max_n] "
                 f"with 1 <= min_n <= max_n <= {MAX_NGRAM}")
        self.norm = document["norm"]
        _require(self.norm in ("l1", "l2", None), f"'norm' is {self.norm!r}; expected 'l1', 'l2' or null")
        self.sublinear_tf = document["sublinear_tf"]
        self.binary = document.get("binary", False)
        for key in ("lowercase", "sublinear_tf", "binary"):
            _require(isinstance(document.get(key, False), bool), f"'{key}' should be true or false")
        strip_accents = document.get("strip_accents")
        _require(strip_accents in (None, *_ACCENT_STRIPPERS),
                 f"'strip_accents' is {strip_accents!r}; expected 'ascii', 'unicode' or null")
        stop_words = document.get("stop_words") or []
        _require(isinstance(stop_words, list) and all(isinstance(word, str) for word in stop_words),
                 "'stop_words' should be a list of strings or null")
        token_pattern = document["token_pattern"]
        _require(isinstance(token_pattern, str), "'token_pattern' should be a string")
        check_token_pattern(token_pattern)
        try:
            self.analyzer = _WordAnalyzer(document["lowercase"], strip_accents, token_pattern,
                                          frozenset(stop_words), (ngram_range[0], ngram_range[1]))
        except re.error as error:
            raise ValueError(f"'token_pattern' is not a valid regular expression ({error})") from None
        self._fingerprint: str | None = None

    def input_spec(self) -> Spec:
        return {"text": TextSegment(), "label": CategoryLabel(vocab=self.labels, required=False)}

    def output_spec(self) -> Spec:
        return {
            "probas": MulticlassPreds(vocab=self.labels, parent="label"),
            "tokens": Tokens(parent="text"),
            "token_salience": TokenSalience(align="tokens", signed=True),
        }

    def max_minibatch_size(self) -> int:
        return 1024

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            canonical = json.dumps(self._document, sort_keys=True).encode()
            self._fingerprint = f"{FORMAT}:{hashlib.sha1(canonical).hexdigest()}"
        return self._fingerprint

    def _features(self, text: str):
        """Words, the term columns present, their tf-idf values, and each column's occurrences."""
        words = self.analyzer.words(text)
        occurrences: dict[int, list[tuple[int, ...]]] = {}
        for term, positions in self.analyzer.terms(words):
            column = self.vocabulary.get(term)
            if column is not None:
                occurrences.setdefault(column, []).append(positions)
        columns = np.fromiter(occurrences, dtype=np.int64, count=len(occurrences))
        counts = np.array([len(places) for places in occurrences.values()], dtype=np.float64)
        if self.binary:
            counts = np.ones_like(counts)
        if self.sublinear_tf:
            counts = np.log(counts) + 1.0
        values = counts * self.idf[columns]
        if self.norm == "l2":
            total = math.sqrt(float(values @ values))
        elif self.norm == "l1":
            total = float(np.abs(values).sum())
        else:
            total = 0.0
        if total > 0.0:
            values = values / total
        return words, columns, values, occurrences

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        if len(self.labels) == 2:
            positive = 1.0 / (1.0 + math.exp(-scores[0]))
            return np.array([1.0 - positive, positive])
        exp = np.exp(scores - scores.max())
        return exp / exp.sum()

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities of many texts at once (texts × labels, float64): the tf-idf
        features of the whole batch as one sparse matrix, times the coefficients."""
        from scipy import sparse

        column_of, terms_of, words_of = self.vocabulary.get, self.analyzer.term_strings, \
            self.analyzer.words
        indices: list[int] = []  # each term's column, -1 outside the vocabulary
        ends = np.zeros(len(texts) + 1, dtype=np.int64)
        for row, text in enumerate(texts):
            indices.extend(map(column_of, terms_of(words_of(text)), repeat(-1)))
            ends[row + 1] = len(indices)
        columns = np.asarray(indices, dtype=np.int64)
        known = columns >= 0
        indptr = np.concatenate([[0], np.cumsum(known)])[ends]
        columns = columns[known]
        features = sparse.csr_matrix((np.ones(len(columns)), columns, indptr),
                                     shape=(len(texts), len(self.idf)))
        features.sum_duplicates()  # counts per (text, term)
        values = features.data
        if self.binary:
            values[:] = 1.0
        if self.sublinear_tf:
            np.log(values, out=values)
            values += 1.0
        values *= self.idf[features.indices]
        if self.norm is not None:
            squared = values * values if self.norm == "l2" else np.abs(values)
            sizes = np.diff(features.indptr)
            text_of = np.repeat(np.arange(len(texts)), sizes)
            totals = np.bincount(text_of, weights=squared, minlength=len(texts))
            if self.norm == "l2":
                totals = np.sqrt(totals)
            values /= np.repeat(np.where(totals > 0.0, totals, 1.0), sizes)
        scores = np.asarray(features @ self.coef.T) + self.intercept
        if len(self.labels) == 2:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def predict_fields(self, inputs: Sequence[dict[str, Any]], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        """Only the class probabilities (no tokens, no saliences): scored all at once."""
        if set(fields) & {"tokens", "token_salience"}:
            return self.predict(inputs)
        probas = self.probabilities([str(example.get("text") or "") for example in inputs]
                                    ).astype(np.float32)
        return [{"probas": row} for row in probas]

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        for example in inputs:
            words, columns, values, occurrences = self._features(str(example.get("text") or ""))
            scores = self.coef[:, columns] @ values + self.intercept
            probas = self._probabilities(scores)
            predicted = int(np.argmax(probas))
            if len(self.labels) == 2:
                weights = self.coef[0] if predicted == 1 else -self.coef[0]
            else:
                weights = self.coef[predicted]
            salience = np.zeros(len(words))
            for column, contribution in zip(columns.tolist(), weights[columns] * values):
                places = occurrences[column]
                for positions in places:
                    share = contribution / (len(places) * len(positions))
                    for position in positions:
                        salience[position] += share
            results.append({
                "probas": probas.astype(np.float32),
                "tokens": words,
                "token_salience": salience.astype(np.float32),
            })
        return results


def _model_file(path: Path) -> Path:
    return path / MODEL_FILE_NAME if path.is_dir() else path


def load(path: Path, options: LoadOptions = LoadOptions()) -> LinearTextModel:
    """Load a ``linear_text_model.json`` file, or a folder holding one (no option applies)."""
    file = _model_file(Path(path))
    document = read_json_document(file)
    name = file.parent.name if file.name == MODEL_FILE_NAME else file.stem
    try:
        return LinearTextModel(document, name=name or file.stem)
    except ValueError as error:
        raise ModelLoadError(f"{file}: {error}") from error


def export_sklearn(vectorizer: Any, classifier: Any, path: Path) -> Path:
    """Write a fitted TfidfVectorizer + LogisticRegression as ``linear_text_model.json``.

    ``path`` is the JSON file to write, or a folder to write ``linear_text_model.json`` into.
    Settings the JSON format cannot express (a custom analyzer, preprocessor or tokenizer,
    one-vs-rest multiclass probabilities) raise ValueError. Returns the file written.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if not isinstance(vectorizer, TfidfVectorizer) or not isinstance(classifier, LogisticRegression):
        raise ValueError("expected a TfidfVectorizer and a LogisticRegression")
    if not hasattr(vectorizer, "vocabulary_") or not hasattr(classifier, "coef_"):
        raise ValueError("fit the vectorizer and the classifier before exporting them")
    if (vectorizer.analyzer != "word" or vectorizer.preprocessor is not None
            or vectorizer.tokenizer is not None):
        raise ValueError("only the built-in word analyzer can be exported")
    if vectorizer.input != "content" or vectorizer.strip_accents not in (None, *_ACCENT_STRIPPERS):
        raise ValueError("only input='content' and strip_accents None/'ascii'/'unicode' can be exported")
    multi_class = getattr(classifier, "multi_class", "multinomial")
    one_vs_rest = multi_class == "ovr" or (multi_class in ("auto", "deprecated")
                                           and classifier.solver == "liblinear")
    if len(classifier.classes_) > 2 and one_vs_rest:
        raise ValueError("one-vs-rest multiclass probabilities cannot be exported; use multinomial")
    n_terms = len(vectorizer.vocabulary_)
    if classifier.coef_.shape[1] != n_terms:
        raise ValueError(f"the classifier has {classifier.coef_.shape[1]} features, "
                         f"the vectorizer {n_terms}")
    stop_words = vectorizer.get_stop_words()
    idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(n_terms)
    document = {
        "format": FORMAT,
        "labels": [str(label) for label in classifier.classes_],
        "vocabulary": {term: int(column) for term, column in sorted(vectorizer.vocabulary_.items(),
                                                                    key=lambda item: item[1])},
        "idf": np.asarray(idf, dtype=np.float64).tolist(),
        "coef": np.asarray(classifier.coef_, dtype=np.float64).tolist(),
        "intercept": np.asarray(classifier.intercept_, dtype=np.float64).tolist(),
        "ngram_range": [int(n) for n in vectorizer.ngram_range],
        "lowercase": bool(vectorizer.lowercase),
        "token_pattern": vectorizer.token_pattern,
        "sublinear_tf": bool(vectorizer.sublinear_tf),
        "norm": vectorizer.norm,
        "binary": bool(vectorizer.binary),
        "strip_accents": vectorizer.strip_accents,
        "stop_words": sorted(stop_words) if stop_words else None,
    }
    LinearTextModel(document)  # raises ValueError for what load would refuse
    file = Path(path)
    if file.suffix != ".json":
        file.mkdir(parents=True, exist_ok=True)
        file = file / MODEL_FILE_NAME
    file.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return file
