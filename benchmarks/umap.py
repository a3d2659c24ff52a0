"""UMAP at 50,000 points: litdesk beside LIT 1.3.1's UmapModel configuration, same data.

    .venv/bin/python benchmarks/umap.py [--points 50000] [--dims 64] [--json]

The data: a seeded Gaussian mixture of 20 clusters in ``--dims`` dimensions, ten of them
well separated and ten in five overlapping pairs, with per-cluster spreads from 0.5 to 1.5.
Each contender runs in a fresh Python process twice: cold (an empty NUMBA_CACHE_DIR) and
warm (the same folder, now filled); all cold runs come first, then all warm runs, so that
both sides meet about the same load on a busy machine. The baseline is what LIT's UmapModel
does: ``umap.UMAP(n_components=3).fit_transform(x)`` (LIT's projector asks for 3 components and
leaves every other parameter at umap-learn's default); when lit-nlp is importable its own
``UmapModel`` is timed as well. Trustworthiness (scikit-learn, 5 neighbours) is computed on
the same fixed random subsample of 5,000 points for every layout. Each run's CPU time (the
process and its children) is reported beside its wall time: on a shared machine it varies
less with the others' load. Prints one JSON line; without
``--json`` each run's time also goes to stderr as it finishes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

LITDESK_RUN = """
import sys, numpy as np
from litdesk.core.jobs import run_job
from litdesk.core.projection import projection_job
np.save(sys.argv[2], run_job(projection_job(np.load(sys.argv[1]), "umap", dims=3)))
"""
BASELINE_RUN = """
import sys, numpy as np, umap
np.save(sys.argv[2], umap.UMAP(n_components=3).fit_transform(np.load(sys.argv[1])))
"""
LIT_RUN = """
import sys, numpy as np
from lit_nlp.components.umap import UmapModel
x = np.load(sys.argv[1])
z = [out["z"] for out in UmapModel(n_components=3).fit_transform({"x": row} for row in x)]
np.save(sys.argv[2], np.asarray(z, dtype=np.float32))
"""


def mixture(points: int, dims: int, seed: int = 0) -> np.ndarray:
    """20 Gaussian clusters: ten well separated, ten in five overlapping pairs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 6.0, (20, dims))
    pair_centres = rng.normal(0.0, 6.0, (5, dims))
    centres[10:] = np.repeat(pair_centres, 2, axis=0) + rng.normal(0.0, 0.35, (10, dims))
    labels = rng.integers(0, 20, points)
    spreads = rng.uniform(0.5, 1.5, 20)
    noise = rng.normal(0.0, 1.0, (points, dims)) * spreads[labels, None]
    return (centres[labels] + noise).astype(np.float32)


def timed_run(code: str, data: Path, numba_cache: Path, home: Path
              ) -> tuple[float, float, np.ndarray]:
    """Seconds (wall clock, and CPU time of the process and its children) for one fresh
    process to load the data and write its layout."""
    out = data.with_name(f"layout-{time.monotonic_ns()}.npy")
    env = {"NUMBA_CACHE_DIR": str(numba_cache), "LITDESK_HOME": str(home),
           "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(data), str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, np.load(out)


def lit_importable() -> bool:
    """Whether lit-nlp is installed in this interpreter."""
    return subprocess.run([sys.executable, "-c", "import lit_nlp.components.umap"],
                          capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    from sklearn.manifold import trustworthiness

    x = mixture(args.points, args.dims)
    sample = np.random.default_rng(1).choice(len(x), min(5000, len(x)), replace=False)
    contenders = {"litdesk": LITDESK_RUN, "umap_learn_lit_config": BASELINE_RUN}
    if lit_importable():
        contenders["lit_nlp_UmapModel"] = LIT_RUN
    result = {"points": args.points, "dims": args.dims, "output_dims": 3}
    with tempfile.TemporaryDirectory(prefix="litdesk-umap-bench-") as folder:
        data = Path(folder) / "x.npy"
        np.save(data, x)
        # Every contender's cold run, then every warm run: on 2 shared cores, the same run
        # took 62 s and later 118 s, so the two sides are measured close together in time.
        for state in ("cold", "warm"):
            for name, code in contenders.items():
                # A fresh litdesk home per run, so the warm one recomputes instead of reading
                # the cache; the numba cache is the one the cold run filled.
                seconds, cpu, layout = timed_run(code, data, Path(folder) / f"numba-{name}",
                                                 Path(folder) / f"home-{state}-{name}")
                if not args.json:
                    print(f"{name}: {state} {seconds:.1f} s ({cpu:.1f} s of CPU)",
                          file=sys.stderr, flush=True)
                result[f"{name}_{state}_s"] = round(seconds, 1)
                result[f"{name}_{state}_cpu_s"] = round(cpu, 1)
                if state == "cold":
                    result[f"{name}_trustworthiness"] = round(float(trustworthiness(
                        x[sample], layout[sample], n_neighbors=5)), 4)
    baseline = "umap_learn_lit_config"
    result["speedup_cold"] = round(result[f"{baseline}_cold_s"] / result["litdesk_cold_s"], 2)
    result["speedup_warm"] = round(result[f"{baseline}_warm_s"] / result["litdesk_warm_s"], 2)
    for state in ("cold", "warm"):  # less sensitive to other work on the machine than wall time
        result[f"cpu_ratio_{state}"] = round(
            result[f"{baseline}_{state}_cpu_s"] / result[f"litdesk_{state}_cpu_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
