"""Bulk prediction: ``litdesk predict`` beside the loop a user would write, in the same run.

    .venv/bin/python benchmarks/predict.py [transformer [--rows 20000] [--batch-size 32]]
    .venv/bin/python benchmarks/predict.py linear [--rows 1000000] [--before OLD_CHECKOUT]
    .venv/bin/python benchmarks/predict.py flat [--rows 100000,1000000]

``transformer``: builds ``--rows`` texts of varied length from the demo corpus (one to four
sentences each) into a CSV, then times, in the same run, the command ``litdesk predict`` on the
demo transformer end to end (reading the CSV, loading the model, writing the predictions and
embeddings to Parquet; no cache) and a plain transformers loop (loading the same model, batches
in file order padded to the longest, ``torch.no_grad``), same batch size. Prints one JSON line
with both times, the speed-up and the largest difference between their class probabilities.

``linear``: ``--rows`` texts through the demo's linear text model: ``litdesk predict`` against
the same weights in scikit-learn's ``TfidfVectorizer`` and a dot product, each in a fresh
process, with its time and peak resident memory.

``flat``: the peak resident memory of ``litdesk predict`` (linear model) at each row count,
each in a fresh process: it should not grow with the rows beyond the dataset itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def varied_texts(rows: int, seed: int = 0) -> list[str]:
    """Texts of one to four demo sentences, so lengths vary as in real data."""
    from litdesk.core import paths
    from litdesk.core.loaders import load_dataset

    sentences = load_dataset(paths.DEMO_DATASET).table.column("text").to_pylist()
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.choice((1, 1, 2, 3, 4)))) for _ in range(rows)]


def write_texts(path: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.csv as csv

    base = varied_texts(min(rows, 50_000))
    texts = (base * (rows // len(base) + 1))[:rows]
    csv.write_csv(pa.table({"text": texts}), path)
    return path


def plain_loop(folder, texts: list[str], batch_size: int, device: str) -> np.ndarray:
    """What a user would write: file order, pad to the batch's longest, no_grad."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    model.to(device).eval()
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                max_length=128, return_tensors="pt").to(device)
            logits = model(**encoded).logits
            probabilities.append(torch.softmax(logits, -1).cpu().numpy())
    return np.concatenate(probabilities)


def litdesk_predict(model: Path, data: Path, out: Path, *extra: str) -> None:
    from litdesk.cli import main

    code = main(["predict", "--model", str(model), "--data", str(data), "--out", str(out),
                 "--quiet", "--no-cache", *extra])
    if code:
        raise SystemExit(f"litdesk predict failed ({code})")


def transformer(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq
    import torch  # noqa: F401  (imported before timing either side)

    from litdesk.core import paths

    folder = paths.DEMO_MODELS[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = write_texts(Path(tmp, "texts.csv"), args.rows)
        texts = varied_texts(min(args.rows, 50_000))
        texts = (texts * (args.rows // len(texts) + 1))[:args.rows]
        warm = write_texts(Path(tmp, "warm.csv"), 64)  # warm both paths up
        litdesk_predict(folder, warm, Path(tmp, "warm.parquet"), "--batch-size",
                        str(args.batch_size))
        plain_loop(folder, texts[:64], args.batch_size, args.device)

        out = Path(tmp, "out.parquet")
        start = time.perf_counter()
        litdesk_predict(folder, data, out, "--batch-size", str(args.batch_size), "--device",
                        args.device)
        litdesk_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = plain_loop(folder, texts, args.batch_size, args.device)
        plain_s = time.perf_counter() - start
        table = pq.read_table(out)
        ours = np.stack(table.column("probas").to_numpy(zero_copy_only=False))
        print(json.dumps({
            "rows": args.rows, "batch_size": args.batch_size, "device": args.device,
            "litdesk_predict_s": round(litdesk_s, 2), "plain_transformers_s": round(plain_s, 2),
            "speedup": round(plain_s / litdesk_s, 2), "columns": table.num_columns,
            "output_mb": round(out.stat().st_size / 2**20, 1),
            "max_probability_difference": float(np.abs(ours - theirs).max())}))


_MEASURE = """
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
kind, model, data, out = sys.argv[1:5]
if kind == "litdesk":  # what litdesk predict runs (older versions take fewer options)
    import inspect
    from litdesk.core.batch import predict_to_parquet
    options = {"use_cache": False, "quiet": True}
    taken = inspect.signature(predict_to_parquet).parameters
    predict_to_parquet(Path(model), Path(data), Path(out),
                       **{key: value for key, value in options.items() if key in taken})
else:
    import numpy as np, pyarrow.csv as csv
    from sklearn.feature_extraction.text import TfidfVectorizer
    document = json.loads(Path(model, "linear_text_model.json").read_text())
    vectorizer = TfidfVectorizer(vocabulary=document["vocabulary"],
                                 ngram_range=tuple(document["ngram_range"]),
                                 lowercase=document["lowercase"],
                                 token_pattern=document["token_pattern"],
                                 sublinear_tf=document["sublinear_tf"], norm=document["norm"],
                                 binary=document.get("binary", False))
    vectorizer.idf_ = np.asarray(document["idf"])
    texts = csv.read_csv(data).column("text").to_pylist()
    scores = vectorizer.transform(texts) @ np.asarray(document["coef"]).T
    scores += np.asarray(document["intercept"])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak)}))
"""


def measure(kind: str, model: Path, data: Path, out: Path, code: str | None = None) -> dict:
    """Time and peak memory of one run in a fresh process (with litdesk imported from the
    checkout ``code`` when given: an older version, for a before/after figure)."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = os.pathsep.join([code, str(Path(code, "plugins"))])
    done = subprocess.run([sys.executable, "-c", _MEASURE, kind, str(model), str(data),
                           str(out)], capture_output=True, text=True, check=True, env=env,
                          cwd=out.parent)  # not a source tree: "-c" imports from the cwd first
    return json.loads(done.stdout.strip().splitlines()[-1])


def linear(args: argparse.Namespace) -> None:
    from litdesk.core import paths

    model = paths.DEMO_MODELS[1]
    with tempfile.TemporaryDirectory() as tmp:
        data = write_texts(Path(tmp, "texts.csv"), args.rows)
        ours = measure("litdesk", model, data, Path(tmp, "out.parquet"))
        theirs = measure("sklearn", model, data, Path(tmp, "unused"))
        figures = {"rows": args.rows, "litdesk_predict": ours, "sklearn_tfidf_dot": theirs,
                   "speedup": round(theirs["seconds"] / ours["seconds"], 2)}
        if args.before:
            figures["litdesk_predict_before"] = measure("litdesk", model, data,
                                                        Path(tmp, "before.parquet"), args.before)
        print(json.dumps(figures))


def flat(args: argparse.Namespace) -> None:
    from litdesk.core import paths

    model = paths.DEMO_MODELS[1]
    sizes = [int(rows) for rows in args.rows.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            data = write_texts(Path(tmp, f"texts_{rows}.csv"), rows)
            results[rows] = measure("litdesk", model, data, Path(tmp, f"out_{rows}.parquet"))
            results[rows]["csv_mb"] = round(data.stat().st_size / 2**20)
            data.unlink()
    print(json.dumps({"rows": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("transformer")
    one.add_argument("--rows", type=int, default=20_000)
    one.add_argument("--batch-size", type=int, default=32)
    one.add_argument("--device", default="cpu")
    linear_parser = commands.add_parser("linear")
    linear_parser.add_argument("--rows", type=int, default=1_000_000)
    linear_parser.add_argument("--before", help="also time the litdesk checkout in this folder "
                               "(git worktree add /tmp/before <commit>)")
    commands.add_parser("flat").add_argument("--rows", default="100000,1000000")
    args = parser.parse_args()
    if args.command is None:  # make bench
        args = parser.parse_args(["transformer"])
    {"transformer": transformer, "linear": linear, "flat": flat}[args.command](args)


if __name__ == "__main__":
    main()
