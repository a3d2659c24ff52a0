"""``litdesk project --engine ray`` against the single-process command, in the same run: UMAP
fitted on a sample with the other rows placed on the workers, beside the UMAP of every row.

Prints each side's time and trustworthiness (scikit-learn's, 15 neighbours, on the same random
subset of rows; for the Ray side also on the placed rows alone), so that the cost of fitting on
a sample shows as a number. Data: benchmarks/umap.py's mixture of 20 Gaussian clusters. A small
UMAP first compiles numba's kernels for both sides; the Ray runtime's start is timed apart.

    python benchmarks/ray_project.py [--points 20000] [--dims 64] [--fit-sample 5000] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--fit-sample", type=int, default=5_000)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray runtime")
    parser.add_argument("--subset", type=int, default=3_000,
                        help="rows trustworthiness is measured on")
    args = parser.parse_args()
    os.environ.setdefault("LITDESK_HOME", tempfile.mkdtemp(prefix="litdesk-bench-"))
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    from sklearn.manifold import trustworthiness

    from benchmarks.umap import mixture
    from litdesk.core.projection_batch import fit_sample_rows, project_to_parquet
    from litdesk.core.ray_engine import project_on_ray

    folder = Path(tempfile.mkdtemp(prefix="ray-project-"))
    vectors = mixture(args.points, args.dims)
    data = folder / "vectors.parquet"
    pq.write_table(pa.table({"emb": list(vectors)}), data)

    def coordinates(path: Path) -> np.ndarray:
        return np.column_stack([column.to_numpy() for column in pq.read_table(path).columns])

    warm = folder / "warm.parquet"  # both sides find numba's kernels compiled
    pq.write_table(pa.table({"emb": list(vectors[:200])}), warm)
    project_to_parquet(warm, "emb", "umap", folder / "warm_out.parquet", use_cache=False)
    started = time.perf_counter()
    project_to_parquet(data, "emb", "umap", folder / "single.parquet", use_cache=False)
    single_s = time.perf_counter() - started

    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    start_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        summary = project_on_ray(data, "emb", "umap", folder / "on_ray",
                                 fit_sample=args.fit_sample, use_cache=False)
        ray_s = time.perf_counter() - started
    finally:
        ray.shutdown()

    rng = np.random.default_rng(1)
    subset = np.sort(rng.choice(args.points, size=min(args.subset, args.points), replace=False))
    placed = np.setdiff1d(subset, fit_sample_rows(args.points, args.fit_sample))

    def trust(coords: np.ndarray, rows: np.ndarray) -> float:
        return float(trustworthiness(vectors[rows], coords[rows], n_neighbors=15))

    single, on_ray = coordinates(folder / "single.parquet"), coordinates(folder / "on_ray")
    print(summary)
    print(f"{args.points:,} × {args.dims}, UMAP 2-D; Ray fitted on {args.fit_sample:,} rows, "
          f"{args.cpus} CPUs")
    print(f"single process, every row:  {single_s:7.1f} s  trustworthiness "
          f"{trust(single, subset):.4f}")
    print(f"Ray, sample + placement:    {ray_s:7.1f} s  trustworthiness "
          f"{trust(on_ray, subset):.4f} (placed rows alone: {trust(on_ray, placed):.4f}); "
          f"runtime start {start_s:.1f} s besides")
    print(f"time ratio single / Ray: {single_s / ray_s:.2f}x")


if __name__ == "__main__":
    main()
