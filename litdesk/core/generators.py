"""Counterfactual generators: new datapoints made from existing rows, for review before they
join the dataset.

Each generator runs as a job over chosen rows and returns :class:`Candidate` rows. The text
generators (word replacer, scrambler) need no model; the flip generators (ablation flip,
HotFlip, tabular minimal changes) search for small edits that change a classifier's predicted
class, predicting their proposals in batches and keeping only the real flips. Words are
whitespace-separated tokens. torch is imported inside the functions that use it.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import numbers
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.api.model import GradientTextModel, TokenSwapModel, TokenVocabulary
from litdesk.core.explain import tabular_fields
from litdesk.core.jobs import Job, Progress
from litdesk.core.predict import SpecMismatchError, bind_inputs, predict_rows
from litdesk.core.tokens import is_special_token

Values = dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """A generated datapoint awaiting review."""

    parent: int  # row position (in the dataset) of the datapoint it was made from
    values: dict[str, Any]  # a whole row: every column of dataset.table, the parent's with changes
    origin: str  # how it was made, human readable, e.g. "word replacer: great → terrible"


@dataclass(frozen=True)
class Param:
    """One field of a generator's config form; the default's type (str, bool, int, float) picks
    the widget."""

    name: str
    label: str
    default: Any
    choices: tuple = ()  # non-empty: a dropdown of these values
    help: str = ""  # tooltip
    minimum: float | None = None  # the smallest value allowed (numbers)


@dataclass(frozen=True)
class GeneratorInfo:
    """How a generator is shown, and its config form."""

    label: str
    params: tuple[Param, ...]
    needs_model: bool


def _fields_param(empty: str) -> Param:
    return Param("fields", "Text fields", "", help=f"Comma-separated column names; empty: {empty}")


def _cap(default: int) -> Param:
    return Param("max_per_row", "At most per row", default, minimum=1,
                 help="The most candidates kept for one row")


_BUDGET = Param("budget", "Predictions per row", 1000, minimum=1,
                help="The most edited inputs predicted for one row; the search stops there")

GENERATORS: dict[str, GeneratorInfo] = {
    "word_replacer": GeneratorInfo("Word replacer", (
        Param("substitutions", "Substitutions", "great -> terrible | bad",
              help="Rules separated by commas or new lines: word -> replacement | another"),
        Param("ignore_case", "Ignore case", True,
              help="Match any capitalisation; the replacement takes the original's "
                   "(Great -> Terrible)"),
        _fields_param("every text field"), _cap(10)), needs_model=False),
    "scrambler": GeneratorInfo("Scrambler", (
        _fields_param("every text field"),
        Param("count", "Scrambles per row", 3, minimum=1, help="How many shuffles of each row"),
        Param("seed", "Seed", 0, help="The same seed gives the same shuffles")), False),
    "ablation_flip": GeneratorInfo("Ablation flip", (
        _fields_param("every text field the model reads"),
        Param("max_drop", "Words dropped at most", 2, minimum=1,
              help="Single words are tried first, then pairs, and so on up to this many "
                   "(words are whitespace-separated)"),
        _cap(5), _BUDGET), True),
    "hotflip": GeneratorInfo("HotFlip", (
        Param("max_swaps", "Tokens swapped at most", 2, minimum=1,
              help="Single-token swaps are tried first, then pairs, and so on"),
        _cap(5), _BUDGET), True),
    "tabular_flip": GeneratorInfo("Tabular minimal changes", (
        Param("max_columns", "Columns changed at most", 2, minimum=1,
              help="Changes of up to this many columns, smallest first (numbers: change / "
                   "the column's standard deviation; categories: 1)"),
        _cap(5), _BUDGET), True),
}

#: Candidate values of a number column: its quantiles at these levels.
QUANTILES = np.linspace(0.0, 1.0, 11)
#: Candidate categories of a column without a vocab: its most frequent values, at most this many.
MAX_CATEGORIES = 50
#: HotFlip tries, per token position, at most this many replacements (those estimated best).
SWAPS_PER_POSITION = 3
#: Rows read from the dataset at a time.
CHUNK_ROWS = 1024


# --- Which generators apply ------------------------------------------------------------------


def _text_columns(dataset: Dataset) -> list[str]:
    return types.find_spec_keys(dataset.spec(), types.TextSegment)


def _classifier_output(model: Model) -> tuple[str, tuple[str, ...]] | None:
    """The first MulticlassPreds output and its classes."""
    spec = model.output_spec()
    name = types.first_spec_key(spec, types.MulticlassPreds)
    return None if name is None else (name, tuple(spec[name].vocab))


def _bound_columns(model: Model, dataset: Dataset, fields: Iterable[str]) -> list[str]:
    """The dataset columns that ``fields`` (model inputs) read."""
    binding = bind_inputs(model, dataset)
    return [binding[name] for name in fields if name in binding]


def _read_texts(model: Model, dataset: Dataset) -> list[str]:
    """The dataset's text columns that the model reads."""
    texts = types.find_spec_keys(model.input_spec(), types.TextSegment)
    return [c for c in _bound_columns(model, dataset, texts) if c in _text_columns(dataset)]


def applicable(name: str, dataset: Dataset, model: Model | None) -> str | None:
    """None when generator ``name`` can run on this dataset (and model); otherwise the reason,
    one sentence for the UI."""
    info = GENERATORS.get(name)
    if info is None:
        raise ValueError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")
    if not info.needs_model:
        return None if _text_columns(dataset) else f"Dataset {dataset.name} has no text fields."
    if model is None:
        return f"{info.label} needs a model."
    if _classifier_output(model) is None:
        return f"{info.label} needs a classifier; model {model.name} has no class output."
    try:
        bind_inputs(model, dataset)
    except SpecMismatchError as error:
        return f"{str(error)[:1].upper()}{str(error)[1:]}."
    if name == "ablation_flip" and not _read_texts(model, dataset):
        return f"Model {model.name} reads no text field of dataset {dataset.name}."
    if name == "tabular_flip" and not _bound_columns(model, dataset, tabular_fields(model)):
        return f"Model {model.name} reads no number or category field of dataset {dataset.name}."
    if name == "hotflip":
        return _hotflip_applicable(model, dataset)
    return None


def _hotflip_applicable(model: Model, dataset: Dataset) -> str | None:
    if not isinstance(model, GradientTextModel) or not model.gradient_targets():
        return f"Model {model.name} does not expose token gradients."
    _, classes = _classifier_output(model)  # type: ignore[misc]
    if not set(classes) <= set(model.gradient_targets()):
        return f"Model {model.name} has no gradient for each of its classes."
    if not isinstance(model, TokenSwapModel) or model.token_vocabulary() is None:
        return f"Model {model.name} does not expose its token embedding table."
    if not _bound_columns(model, dataset, [model.text_field]):
        return f"Dataset {dataset.name} has no text field for model {model.name}."
    return None


# --- Parameters ------------------------------------------------------------------------------


def _settings(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's defaults updated by ``params``, checked; ValueError says what is wrong."""
    info = GENERATORS[name]
    unknown = sorted(set(params) - {p.name for p in info.params})
    if unknown:
        raise ValueError(f"{info.label} has no parameter {', '.join(unknown)} "
                         f"(it takes: {', '.join(p.name for p in info.params)})")
    settings = {}
    for param in info.params:
        value = params.get(param.name, param.default)
        kind = type(param.default)
        number = {int: numbers.Integral, float: numbers.Real}.get(kind)
        if number is not None and isinstance(value, number) and not isinstance(value, bool):
            value = kind(value)
        if type(value) is not kind:
            raise ValueError(f"{param.label} must be {_KIND_NAMES[kind]}, not {value!r}")
        if param.choices and value not in param.choices:
            raise ValueError(f"{param.label} must be one of {', '.join(map(str, param.choices))}, "
                             f"not {value!r}")
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"{param.label} must be at least {param.minimum:g}, not {value!r}")
        settings[param.name] = value
    return settings


_KIND_NAMES = {str: "text", bool: "true or false", int: "a whole number", float: "a number"}


def _chosen_fields(text: str, dataset: Dataset, readable: Sequence[str] | None = None,
                   reader: str = "") -> list[str]:
    """The text columns named in ``text`` (comma-separated), or all of them (that the model
    reads, when ``readable`` lists those) when it is empty."""
    columns = _text_columns(dataset)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        return [c for c in columns if readable is None or c in readable]
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a text field of dataset {dataset.name} "
                         f"(its text fields: {', '.join(columns) or 'none'})")
    unread = [name for name in names if readable is not None and name not in readable]
    if unread:
        raise ValueError(f"model {reader} does not read {', '.join(unread)}")
    return list(dict.fromkeys(names))


def parse_substitutions(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """``great -> terrible | bad, good -> fine`` as [(source, alternatives)]: rules separated by
    commas or new lines; ValueError for a rule without a source, an arrow or a replacement."""
    rules = []
    for rule in re.split(r"[,\n]", text):
        if not rule.strip():
            continue
        source, arrow, targets = rule.partition("->")
        alternatives = tuple(t.strip() for t in targets.split("|") if t.strip())
        if not arrow or not source.strip() or not alternatives:
            raise ValueError(f"substitution {rule.strip()!r} is not: word -> replacement | another")
        rules.append((source.strip(), alternatives))
    if not rules:
        raise ValueError("no substitutions given (write: great -> terrible | bad)")
    return rules


# --- The job ---------------------------------------------------------------------------------


class _RowCandidates:
    """One row's candidates: changes that change nothing, or repeat an earlier one, are
    refused."""

    def __init__(self, parent: int, values: Values) -> None:
        self.parent = parent
        self.values = values
        self._seen: set[tuple] = set()

    def fresh(self, change: Mapping[str, Any]) -> bool:
        """Whether ``change`` (column -> value) is new; it counts as seen from now on."""
        key = tuple(sorted((k, v) for k, v in change.items() if self.values[k] != v))
        if not key or key in self._seen:
            return False
        self._seen.add(key)
        return True

    def make(self, change: Mapping[str, Any], origin: str) -> Candidate:
        return Candidate(self.parent, {**self.values, **change}, origin)


RowJob = Callable[[_RowCandidates, Progress], "list[Candidate] | Job[list[Candidate]]"]


def generate_job(name: str, dataset: Dataset, rows: Sequence[int], params: Mapping[str, Any],
                 model: Model | None = None) -> Job[list[Candidate]]:
    """A job (generator yielding :class:`Progress`, at least once per row) returning the
    candidates made from ``rows``, row by row.

    Raises ValueError with a one-line message on bad params (unknown param, unparsable
    substitutions…) or when the generator does not apply to the dataset and model."""
    reason = applicable(name, dataset, model)
    settings = _settings(name, params)
    if reason is not None:
        raise ValueError(reason)
    make_row = _ROW_JOBS[name](dataset, settings, model)
    return _run_rows(GENERATORS[name].label, dataset, [int(row) for row in rows], make_row)


def _run_rows(label: str, dataset: Dataset, rows: list[int], make_row: RowJob
              ) -> Job[list[Candidate]]:
    n = len(rows)
    found: list[Candidate] = []
    yield Progress(0, n, f"{label}: {n:,} rows")
    for start in range(0, n, CHUNK_ROWS):
        chunk = rows[start:start + CHUNK_ROWS]
        for done, (row, values) in enumerate(zip(chunk, dataset.examples(chunk)), start + 1):
            progress = Progress(done - 1, n, f"{label}: row {row}")
            made = make_row(_RowCandidates(row, values), progress)
            found.extend(made if isinstance(made, list) else (yield from made))
            yield Progress(done, n, f"{label}: {len(found):,} found")
    return found


# --- Word replacer and scrambler -------------------------------------------------------------


def _texts(row: _RowCandidates, fields: Sequence[str]) -> list[str]:
    """The chosen fields that hold text in this row (not missing)."""
    return [f for f in fields if isinstance(row.values[f], str)]


def _matching_case(original: str, replacement: str) -> str:
    """``replacement`` in upper case when ``original`` is (and is longer than a letter), with a
    capital first letter when ``original`` has one, else as written."""
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _word_replacer(dataset: Dataset, settings: Mapping[str, Any], _model: None) -> RowJob:
    """One candidate per (rule, alternative) that changes the row: every whole-word match in
    the chosen fields replaced."""
    fields = _chosen_fields(settings["fields"], dataset)
    ignore_case = settings["ignore_case"]
    flags = re.IGNORECASE if ignore_case else 0
    rules = [(re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, source.split())) + r"(?!\w)",
                         flags), source, alternatives)
             for source, alternatives in parse_substitutions(settings["substitutions"])]

    def make_row(row: _RowCandidates, _progress: Progress) -> list[Candidate]:
        made = []
        for pattern, source, alternatives in rules:
            for alternative in alternatives:
                def replace(match: re.Match, alternative: str = alternative) -> str:
                    return _matching_case(match.group(), alternative) if ignore_case \
                        else alternative

                change = {f: pattern.sub(replace, row.values[f]) for f in _texts(row, fields)}
                if row.fresh(change):
                    made.append(row.make(change, f"word replacer: {source} → {alternative}"))
                    if len(made) == settings["max_per_row"]:
                        return made
        return made

    return make_row


def _scrambler(dataset: Dataset, settings: Mapping[str, Any], _model: None) -> RowJob:
    """Shuffles of the words of the chosen fields (the whitespace between them stays put),
    seeded by the seed and the row, so a row scrambles the same whichever rows run with it."""
    fields = _chosen_fields(settings["fields"], dataset)
    count, attempts = settings["count"], 10 * settings["count"]

    def make_row(row: _RowCandidates, _progress: Progress) -> list[Candidate]:
        rng = random.Random(f"{settings['seed']}/{row.parent}")
        pieces = {f: re.split(r"(\s+)", row.values[f]) for f in _texts(row, fields)}
        made: list[Candidate] = []
        for _ in range(attempts):
            change = {}
            for f, parts in pieces.items():
                words = [part for part in parts[::2] if part]
                rng.shuffle(words)
                shuffled = iter(words)
                change[f] = "".join(part if i % 2 or not part else next(shuffled)
                                    for i, part in enumerate(parts))
            if row.fresh(change):
                changed = [f for f in fields if f in change and change[f] != row.values[f]]
                made.append(row.make(change, f"scrambler: shuffled {', '.join(changed)}"))
                if len(made) == count:
                    break
        return made

    return make_row


# --- Searching for flips ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Proposal:
    """An edit to try: ``parts`` (what it is made of) lets edits containing a flip be skipped."""

    parts: frozenset
    change: Values
    origin: str


def _classes(model: Model, output: str, binding: Mapping[str, str],
             rows: Sequence[Values]) -> list[int]:
    """The class the model predicts for each row (its inputs read through ``binding``)."""
    examples = [{name: values[column] for name, column in binding.items()} for values in rows]
    results = predict_rows(model, examples, model.max_minibatch_size(), [output])
    return [int(np.argmax(np.asarray(result[output], dtype=np.float64))) for result in results]


def _flips(model: Model, binding: Mapping[str, str], row: _RowCandidates,
           proposals: Iterable[_Proposal], settings: Mapping[str, Any], progress: Progress,
           original: int | None = None) -> Job[list[Candidate]]:
    """The proposals (tried in their order, in batches, at most ``settings["budget"]``) that
    change the predicted class (``original``: the row's, predicted when None): at most
    ``settings["max_per_row"]``, none containing another."""
    output, classes = _classifier_output(model)  # type: ignore[misc]
    if original is None:
        (original,) = _classes(model, output, binding, [row.values])
    budget, limit = settings["budget"], settings["max_per_row"]
    flipped: list[frozenset] = []
    found: list[Candidate] = []
    pending = iter(proposals)
    while budget > 0 and len(found) < limit:
        batch = []
        for proposal in pending:
            if not any(parts <= proposal.parts for parts in flipped) and row.fresh(proposal.change):
                batch.append(proposal)
                if len(batch) == min(budget, model.max_minibatch_size()):
                    break
        if not batch:
            break
        budget -= len(batch)
        predicted = _classes(model, output, binding,
                             [{**row.values, **proposal.change} for proposal in batch])
        for proposal, label in zip(batch, predicted):
            if label != original and len(found) < limit and \
                    not any(parts <= proposal.parts for parts in flipped):
                flipped.append(proposal.parts)
                change = f"({classes[original]} → {classes[label]})"
                found.append(row.make(proposal.change, f"{proposal.origin} {change}"))
        yield progress
    return found


def _cheapest_combinations(costs: Sequence[Sequence[float]], sizes: range
                           ) -> Iterator[tuple[tuple[int, int], ...]]:
    """Combinations of one option from each of several groups, cheapest first, lazily.

    ``costs[g]`` lists group ``g``'s option costs, non-negative and in ascending order. Yields
    ((group, option), …) for ``len(sizes)`` groups in ascending group order, in order of total
    cost. Each combination is pushed on the heap by a unique parent that costs no more: the same
    groups with the last raised option one lower, or (all first options) the same without its
    last group."""
    largest = max(sizes)
    heap = [(options[0], (g,), (0,), 0) for g, options in enumerate(costs) if options]
    heapq.heapify(heap)
    while heap:
        cost, groups, picks, last = heapq.heappop(heap)
        if len(groups) in sizes:
            yield tuple(zip(groups, picks))
        for j in range(last, len(groups)):
            if picks[j] + 1 < len(costs[groups[j]]):
                options = costs[groups[j]]
                raised = picks[:j] + (picks[j] + 1,) + picks[j + 1:]
                heapq.heappush(heap, (cost - options[picks[j]] + options[picks[j] + 1], groups,
                                      raised, j))
        if not any(picks) and len(groups) < largest:
            for g in range(groups[-1] + 1, len(costs)):
                if costs[g]:
                    heapq.heappush(heap, (cost + costs[g][0], groups + (g,), picks + (0,), 0))


# --- Ablation flip ---------------------------------------------------------------------------


def _ablation_flip(dataset: Dataset, settings: Mapping[str, Any], model: Model) -> RowJob:
    """Words (whitespace-separated) dropped from the chosen fields: every single word first,
    then every pair, and so on up to ``max_drop`` words."""
    fields = _chosen_fields(settings["fields"], dataset, _read_texts(model, dataset), model.name)
    binding = bind_inputs(model, dataset)

    def proposals(row: _RowCandidates) -> Iterator[_Proposal]:
        words = [(f, i, word) for f in fields
                 for i, word in enumerate(str(row.values[f] or "").split())]
        for size in range(1, settings["max_drop"] + 1):
            for dropped in itertools.combinations(range(len(words)), size):
                gone = {words[k][:2] for k in dropped}
                change = {f: " ".join(word for g, i, word in words if g == f and (g, i) not in gone)
                          for f in {words[k][0] for k in dropped}}
                named = ", ".join(repr(words[k][2]) if len(fields) == 1
                                  else f"{words[k][0]}: {words[k][2]!r}" for k in dropped)
                yield _Proposal(frozenset(dropped), change, f"ablation flip: dropped {named}")

    def make_row(row: _RowCandidates, progress: Progress) -> Job[list[Candidate]]:
        return _flips(model, binding, row, proposals(row), settings, progress)

    return make_row


# --- HotFlip ---------------------------------------------------------------------------------


def _hotflip(dataset: Dataset, settings: Mapping[str, Any], model: Any) -> RowJob:
    """Token swaps in the model's text field that the gradient of the predicted class's logit
    says lower it most: single swaps first, then pairs (each position's best few swaps, ranked
    by their summed estimates), up to ``max_swaps``; each verified by a prediction."""
    vocabulary: TokenVocabulary = model.token_vocabulary()
    blocked = functools.cache(functools.partial(_unswappable, vocabulary))  # made in the job
    continues = dict(zip(vocabulary.tokens, vocabulary.continuation))
    binding = bind_inputs(model, dataset)
    column = binding[model.text_field]
    output, classes = _classifier_output(model)  # type: ignore[misc]

    def make_row(row: _RowCandidates, progress: Progress) -> Job[list[Candidate]]:
        text = str(row.values[column] or "")
        (original,) = _classes(model, output, binding, [row.values])
        target = model.gradient_targets().index(classes[original])
        positions, tokens, options = _swap_estimates(model, vocabulary, blocked(), text,
                                                     target, continues)
        lowest = min((swaps[0][0] for swaps in options if swaps), default=0.0)
        costs = [[estimate - lowest for estimate, _ in swaps] for swaps in options]

        def proposals() -> Iterator[_Proposal]:
            for size in range(1, settings["max_swaps"] + 1):
                for combination in _cheapest_combinations(costs, range(size, size + 1)):
                    swaps = {positions[g]: options[g][k][1] for g, k in combination}
                    named = ", ".join(f"{tokens[g]} → {vocabulary.tokens[options[g][k][1]]}"
                                      for g, k in combination)
                    yield _Proposal(frozenset(swaps.items()), {
                        column: model.replace_tokens(text, swaps)}, f"hotflip: {named}")

        return _flips(model, binding, row, proposals(), settings, progress, original)

    return make_row


def _swap_estimates(model: Any, vocabulary: TokenVocabulary, blocked: Any, text: str,
                    target: int, continues: Mapping[str, bool]
                    ) -> tuple[list[int], list[str], list[list[tuple[float, int]]]]:
    """The positions of the real (not special) tokens of ``text``, those tokens, and per position
    the swaps estimated to lower logit ``target`` most, to first order ((e_new − e_old) · its
    gradient), as (estimate, token id), lowest first; only swaps estimated to lower it.
    ``continues`` says which token strings continue a word (see TokenVocabulary)."""
    import torch

    batch = model.embed_texts([text])
    embeddings = batch.embeddings.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        model.logits_from_embeddings(embeddings, *batch.forward_args)[0, target].backward()
    real = [(int(p), token) for p, token in zip(batch.kept[0], batch.tokens[0])
            if not is_special_token(token)]
    if not real:
        return [], [], []
    positions, tokens = map(list, zip(*real))
    index = torch.as_tensor(positions, dtype=torch.long, device=embeddings.device)
    table = vocabulary.table.float()
    gradients = embeddings.grad[0, index].float().to(table.device)
    current = (embeddings[0, index].detach().float().to(table.device) * gradients).sum(-1)
    excluded = blocked[:, None]
    if vocabulary.continuation:  # a word's start stays a word's start, a piece a piece
        pieces = torch.as_tensor(vocabulary.continuation, dtype=torch.bool, device=table.device)
        here = torch.as_tensor([bool(continues.get(token)) for token in tokens],
                               dtype=torch.bool, device=table.device)
        excluded = excluded | (pieces[:, None] != here[None, :])
    estimates = (table @ gradients.T - current).masked_fill(excluded, math.inf)
    values, ids = estimates.topk(min(SWAPS_PER_POSITION, len(table)), dim=0, largest=False)
    options = [[(value, token_id) for value, token_id in zip(column_values, column_ids)
                if value < 0]
               for column_values, column_ids in zip(values.T.tolist(), ids.T.tolist())]
    return positions, tokens, options


def _unswappable(vocabulary: TokenVocabulary) -> Any:
    """A mask of the vocabulary's ids that no swap may put in (on the table's device)."""
    import torch

    blocked = torch.ones(len(vocabulary.table), dtype=torch.bool, device=vocabulary.table.device)
    blocked[torch.as_tensor(list(vocabulary.swappable), dtype=torch.long,
                            device=blocked.device)] = False
    return blocked


# --- Tabular minimal changes -----------------------------------------------------------------


def _candidate_values(dataset: Dataset, column: str, field_type: types.FieldType
                      ) -> tuple[list[Any], float | None]:
    """The values a change may give ``column``, and the scale a change of a number is measured
    in (its standard deviation; None for categories): numbers' quantiles (QUANTILES), or the
    categories of the column's vocab, else its most frequent values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = dataset.table.column(column).drop_null()
    if isinstance(field_type, types.Scalar):
        present = data.to_numpy(zero_copy_only=False).astype(np.float64)
        present = present[~np.isnan(present)]
        if not len(present):
            return [], None
        levels = np.unique(np.quantile(present, QUANTILES))
        values = sorted({int(round(v)) for v in levels}) if pa.types.is_integer(data.type) \
            else [float(v) for v in levels]
        return values, float(np.std(present)) or 1.0
    vocab = getattr(dataset.spec().get(column), "vocab", None)
    if vocab:
        return list(vocab), None
    counts = pc.value_counts(data).to_pylist()
    counts.sort(key=lambda entry: -entry["counts"])
    return [entry["values"] for entry in counts[:MAX_CATEGORIES]], None


def _change_size(current: Any, value: Any, scale: float | None) -> float:
    """A change's size: |Δ| / scale for numbers, 1 for categories and missing values."""
    if scale is None or current is None or (isinstance(current, float) and math.isnan(current)):
        return 1.0
    return abs(value - current) / scale


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _tabular_flip(dataset: Dataset, settings: Mapping[str, Any], model: Model) -> RowJob:
    """Changes of up to ``max_columns`` of the model's number and category inputs, in order of
    their summed sizes (see :func:`_change_size`), each column taking one of its candidate
    values (:func:`_candidate_values`)."""
    binding = bind_inputs(model, dataset)
    spec = model.input_spec()

    @functools.cache
    def columns() -> dict[str, tuple[list[Any], float | None]]:  # in the job, not the caller
        return {binding[name]: _candidate_values(dataset, binding[name], spec[name])
                for name in tabular_fields(model) if name in binding}

    def make_row(row: _RowCandidates, progress: Progress) -> Job[list[Candidate]]:
        names = list(columns())
        options = [sorted(((_change_size(row.values[c], v, scale), v) for v in values
                           if v != row.values[c]), key=lambda option: option[0])
                   for c, (values, scale) in columns().items()]
        costs = [[size for size, _ in column_options] for column_options in options]

        def proposals() -> Iterator[_Proposal]:
            for combination in _cheapest_combinations(costs, range(1, settings["max_columns"] + 1)):
                change = {names[g]: options[g][k][1] for g, k in combination}
                named = ", ".join(f"{c} {_shown(row.values[c])} → {_shown(v)}"
                                  for c, v in change.items())
                yield _Proposal(frozenset(change.items()), change, f"tabular flip: {named}")

        return _flips(model, binding, row, proposals(), settings, progress)

    return make_row


#: Per generator, what makes its per-row job from (dataset, checked settings, model); it checks
#: what the settings name against the dataset and model.
_ROW_JOBS: dict[str, Callable[[Dataset, Mapping[str, Any], Any], RowJob]] = {
    "word_replacer": _word_replacer, "scrambler": _scrambler, "ablation_flip": _ablation_flip,
    "hotflip": _hotflip, "tabular_flip": _tabular_flip}
