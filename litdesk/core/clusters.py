"""Clusters of a projection and what is in each, Qt-free.

:func:`cluster_job` finds clusters in the projected coordinates (2-D or 3-D) in a way that
scales to a million points: scikit-learn's HDBSCAN on a random sample of at most
:data:`SAMPLE_POINTS` points (seconds), then every point takes the cluster of its nearest
sampled point, found by faiss (noise stays noise). HDBSCAN on all points would take minutes
at 100,000 points and far longer at a million.

:func:`describe_clusters` names each cluster: the most distinctive words of its texts (class
TF-IDF, as BERTopic computes it: a word's frequency in the cluster times the log of how rare
it is across clusters), or, without text, the numeric columns that lie furthest from their
overall mean and the categories over-represented in it; with the majority gold label and
each model's accuracy in the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, types
from litdesk.core.categories import MISSING, encode_categories
from litdesk.core.jobs import Job, Progress
from litdesk.core.outcomes import Outcomes

#: HDBSCAN runs on at most this many points; the others join their nearest sampled point.
SAMPLE_POINTS = 20_000
#: The smallest cluster, as a share of the points (and at least MIN_CLUSTER_POINTS).
MIN_CLUSTER_SHARE = 0.01
MIN_CLUSTER_POINTS = 8
#: Rows read per cluster to find its words (a sample keeps a million rows fast).
WORDS_SAMPLE_ROWS = 2_000
TOP_WORDS = 3
NOISE = -1


@dataclass(frozen=True)
class ClusterInfo:
    """One cluster: its rows, what is in it and how the models do on it."""

    cluster: int
    size: int
    title: str  # distinctive words, or dominant values
    words: tuple[str, ...] = ()
    gold: Optional[str] = None  # the majority gold label
    gold_share: float = float("nan")
    accuracy: Mapping[str, float] = field(default_factory=dict)  # per model

    def label(self) -> str:
        """The text drawn at the cluster's centre: its title, then the gold label and the
        models' accuracy."""
        lines = [self.title or f"cluster {self.cluster + 1}"]
        facts = []
        if self.gold is not None:
            facts.append(f"{self.gold} {self.gold_share:.0%}")
        facts += [f"{model} {value:.0%}" for model, value in self.accuracy.items()
                  if np.isfinite(value)]
        if facts:
            lines.append(" · ".join(facts))
        return "\n".join(lines)


def cluster_job(coords: np.ndarray, *, min_share: float = MIN_CLUSTER_SHARE,
                sample: int = SAMPLE_POINTS, seed: int = 0) -> Job[np.ndarray]:
    """Per point its cluster (0, 1, … by decreasing size) or :data:`NOISE`; see the module."""
    from sklearn.cluster import HDBSCAN

    points = np.ascontiguousarray(coords, dtype=np.float32)
    n = len(points)
    if n < 2 * MIN_CLUSTER_POINTS:
        return np.full(n, NOISE, np.int64)
    yield Progress(0, 3, "Clusters: sampling")
    rng = np.random.default_rng(seed)
    sampled = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    minimum = max(MIN_CLUSTER_POINTS, int(round(min_share * len(sampled))))
    yield Progress(1, 3, "Clusters: HDBSCAN")
    sample_labels = HDBSCAN(min_cluster_size=minimum, min_samples=min(minimum, 10),
                            copy=True).fit_predict(points[sampled]).astype(np.int64)
    yield Progress(2, 3, "Clusters: assigning every point")
    if len(sampled) == n:
        labels = sample_labels
    else:
        import faiss

        index = faiss.IndexFlatL2(points.shape[1])
        index.add(points[sampled])
        labels = np.empty(n, dtype=np.int64)
        step = 65_536
        for start in range(0, n, step):
            _, nearest = index.search(points[start:start + step], 1)
            labels[start:start + step] = sample_labels[nearest[:, 0]]
    found = labels[labels != NOISE]
    if not found.size:
        return labels
    counts = np.bincount(found)
    order = np.argsort(-counts, kind="stable")  # the largest cluster first
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return np.where(labels == NOISE, NOISE, rank[np.maximum(labels, 0)])


def _sample_rows(rows: np.ndarray, most: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, most, replace=False)) if len(rows) > most else rows


def distinctive_words(texts: Sequence[str], clusters: np.ndarray, count: int,
                      top: int = TOP_WORDS) -> list[tuple[str, ...]]:
    """For each cluster 0..count-1 its ``top`` words by class TF-IDF (English stop words and
    numbers left out); ``clusters`` gives each text's cluster."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
                                     lowercase=True)
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no words at all
        return [() for _ in range(count)]
    import scipy.sparse as sparse

    membership = sparse.csr_matrix((np.ones(len(clusters)), (clusters, np.arange(len(clusters)))),
                                   shape=(count, len(clusters)))
    per_cluster = (membership @ counts).toarray().astype(np.float64)  # clusters × words
    words_in = per_cluster.sum(axis=1, keepdims=True)
    frequency = per_cluster / np.maximum(words_in, 1)
    average_words = words_in.mean()
    idf = np.log(1 + average_words / np.maximum(per_cluster.sum(axis=0), 1))
    scores = frequency * idf
    vocabulary = vectorizer.get_feature_names_out()
    result = []
    for cluster in range(count):
        best = np.argsort(-scores[cluster], kind="stable")[:top]
        result.append(tuple(str(vocabulary[i]) for i in best if per_cluster[cluster, i] > 0))
    return result


def _tabular_titles(dataset: Dataset, clusters: np.ndarray, count: int,
                    columns: Sequence[str]) -> list[str]:
    """Per cluster, its most unusual columns: numbers far from their overall mean (in
    standard deviations, "x high"/"x low") and categories much commoner than overall."""
    notes: list[list[tuple[float, str]]] = [[] for _ in range(count)]
    inside = clusters != NOISE
    for name in columns:
        column = dataset.table.column(name)
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            present = np.isfinite(values) & inside
            if not present.any():
                continue
            spread = float(np.nanstd(values)) or 1.0
            overall = float(np.nanmean(values))
            sums = np.bincount(clusters[present], values[present], minlength=count)
            sizes = np.bincount(clusters[present], minlength=count)
            for cluster in range(count):
                if sizes[cluster]:
                    mean = sums[cluster] / sizes[cluster]
                    z = (mean - overall) / spread
                    if abs(z) >= 0.5:
                        notes[cluster].append((abs(z), f"{name} {'high' if z > 0 else 'low'}"
                                               f" ({mean:.3g})"))
        else:
            categories = encode_categories(column)
            codes = categories.codes
            known = (codes != MISSING) & inside
            if not known.any() or len(categories.labels) > 1_000:
                continue
            table = np.zeros((count, len(categories.labels)))
            np.add.at(table, (clusters[known], codes[known]), 1)
            overall = table.sum(axis=0) / max(table.sum(), 1)
            for cluster in range(count):
                total = table[cluster].sum()
                if not total:
                    continue
                share = table[cluster] / total
                best = int(np.argmax(share))
                lift = share[best] / max(overall[best], 1e-12)
                if share[best] >= 0.5 and lift >= 1.2:
                    notes[cluster].append((lift, f"{name}={categories.labels[best]} "
                                                 f"({share[best]:.0%})"))
    return [", ".join(text for _, text in sorted(found, reverse=True)[:2]) for found in notes]


def describe_clusters(dataset: Dataset, clusters: np.ndarray,
                      outcomes: Optional[Outcomes] = None, seed: int = 0) -> list[ClusterInfo]:
    """What each cluster holds (see the module): its words or dominant values, its majority
    gold label and each model's accuracy on it."""
    count = int(clusters.max()) + 1 if clusters.size and clusters.max() >= 0 else 0
    if count == 0:
        return []
    spec = dataset.spec()
    texts = [name for name, t in spec.items() if isinstance(t, types.TextSegment)]
    rng = np.random.default_rng(seed)
    sizes = np.bincount(clusters[clusters != NOISE], minlength=count)
    if texts:
        sampled = np.concatenate([_sample_rows(np.flatnonzero(clusters == c), WORDS_SAMPLE_ROWS,
                                               rng) for c in range(count)])
        table = dataset.table.take(pa.array(sampled))
        joined = [" ".join(str(v) for v in values if v is not None) for values in
                  zip(*(table.column(name).to_pylist() for name in texts))]
        words = distinctive_words(joined, clusters[sampled], count)
        titles = [" · ".join(found) for found in words]
    else:
        words = [() for _ in range(count)]
        columns = [name for name, t in spec.items()
                   if isinstance(t, (types.Scalar, types.CategoryLabel, types.Boolean))]
        titles = _tabular_titles(dataset, clusters, count, columns)
    golds: list[tuple[Optional[str], float]] = [(None, float("nan"))] * count
    accuracy: list[dict[str, float]] = [{} for _ in range(count)]
    if outcomes is not None:
        for model, outcome in outcomes.models.items():
            if outcome.gold is None:
                continue
            known = outcome.has_gold & (clusters != NOISE)
            if golds[0][0] is None:
                table = np.zeros((count, len(outcome.labels)))
                np.add.at(table, (clusters[known], outcome.gold[known]), 1)
                totals = table.sum(axis=1)
                golds = [(outcome.labels[int(np.argmax(row))], float(row.max() / total))
                         if total else (None, float("nan")) for row, total in zip(table, totals)]
            right = np.bincount(clusters[known], outcome.correct[known].astype(np.float64),
                                minlength=count)
            seen = np.bincount(clusters[known], minlength=count)
            for cluster in range(count):
                if seen[cluster]:
                    accuracy[cluster][model] = float(right[cluster] / seen[cluster])
    return [ClusterInfo(cluster, int(sizes[cluster]), titles[cluster], words[cluster],
                        golds[cluster][0], golds[cluster][1], accuracy[cluster])
            for cluster in range(count)]


def clusters_job(dataset: Dataset, coords: np.ndarray, outcomes: Optional[Outcomes] = None
                 ) -> Job[tuple[np.ndarray, list[ClusterInfo]]]:
    """:func:`cluster_job` then :func:`describe_clusters`, as one job."""
    clusters = yield from cluster_job(coords)
    yield Progress(3, 4, "Clusters: naming them")
    return clusters, describe_clusters(dataset, clusters, outcomes)


def cluster_centres(positions: np.ndarray, clusters: np.ndarray, count: int) -> np.ndarray:
    """The mean position (rows × 2 on screen) of each cluster's points; NaN for an empty one."""
    inside = clusters != NOISE
    sizes = np.bincount(clusters[inside], minlength=count).astype(np.float64)
    centres = np.stack([np.bincount(clusters[inside], positions[inside, axis], minlength=count)
                        for axis in range(positions.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centres / sizes[:, None]
