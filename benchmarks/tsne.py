"""t-SNE: litdesk (openTSNE, FFT-accelerated in 2-D) beside scikit-learn's Barnes-Hut t-SNE,
which litdesk used up to 10,000 points, on the same data; then litdesk alone on more points.

    .venv/bin/python benchmarks/tsne.py [--points 10000] [--large 100000] [--dims 2] [--json]

The data: benchmarks/umap.py's seeded mixture of 20 Gaussian clusters in 64 dimensions.
Both sides get the same input as litdesk's projection does: the PCA to 50 dimensions, then
perplexity 30, a PCA start, seed 0 (scikit-learn: its defaults otherwise, 1,000 iterations;
litdesk: 750). litdesk's time is the whole ``projection_job`` (child process included).
Trustworthiness (scikit-learn, 5 neighbours) is computed on the same fixed random subsample
of 5,000 points. ``--large 0`` skips the litdesk-only run. Prints one JSON line; without
``--json`` each run's time also goes to stderr as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.umap import mixture  # noqa: E402
from litdesk.core.jobs import run_job  # noqa: E402
from litdesk.core.projection import pca_projection, projection_job  # noqa: E402


def trust(x: np.ndarray, layout: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    sample = np.random.default_rng(1).choice(len(x), min(5000, len(x)), replace=False)
    return round(float(trustworthiness(x[sample], layout[sample], n_neighbors=5)), 4)


def litdesk_run(x: np.ndarray, dims: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    layout = run_job(projection_job(x, "tsne", dims))
    return time.perf_counter() - start, layout


def sklearn_run(x: np.ndarray, dims: int) -> tuple[float, np.ndarray]:
    from sklearn.manifold import TSNE

    start = time.perf_counter()
    reduced = run_job(pca_projection(x, 50)) if x.shape[1] > 50 else x
    layout = TSNE(n_components=dims, perplexity=30.0, init="pca",
                  random_state=0).fit_transform(reduced)
    return time.perf_counter() - start, layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    x = mixture(args.points, 64)
    result = {"points": args.points, "dims": args.dims}
    for name, run in (("litdesk", litdesk_run), ("sklearn", sklearn_run)):
        seconds, layout = run(x, args.dims)
        result[f"{name}_s"] = round(seconds, 1)
        result[f"{name}_trustworthiness"] = trust(x, layout)
        say(f"{name}: {seconds:.1f} s, trustworthiness {result[f'{name}_trustworthiness']}")
    result["speedup"] = round(result["sklearn_s"] / result["litdesk_s"], 2)
    if args.large:
        large = mixture(args.large, 64, seed=2)
        seconds, layout = litdesk_run(large, args.dims)
        result.update({"large_points": args.large, "large_litdesk_s": round(seconds, 1),
                       "large_litdesk_trustworthiness": trust(large, layout)})
        say(f"litdesk at {args.large:,} points: {seconds:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
