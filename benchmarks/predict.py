"""Bulk prediction: litdesk's engine beside a plain transformers loop, same model and data.

    .venv/bin/python benchmarks/predict.py [--rows 20000] [--batch-size 32] [--device cpu]

Builds ``--rows`` texts of varied length from the demo corpus (one to four sentences each),
then times, in the same run, litdesk's ``predict_job`` on the demo transformer (no cache)
and the loop a user would write with transformers (batches in file order, padding to the
longest, ``torch.no_grad``). Prints one JSON line with both times, the speed-up and the
largest difference between their class probabilities.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, LoadOptions, TextSegment
from litdesk.core import paths
from litdesk.core.jobs import run_job
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import load_model
from litdesk.core.predict import predict_job


def varied_texts(rows: int, seed: int = 0) -> list[str]:
    """Texts of one to four demo sentences, so lengths vary as in real data."""
    sentences = load_dataset(paths.DEMO_DATASET).table.column("text").to_pylist()
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.choice((1, 1, 2, 3, 4)))) for _ in range(rows)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    texts = varied_texts(args.rows)
    dataset = Dataset(pa.table({"text": texts}), {"text": TextSegment()}, "varied")
    folder = paths.DEMO_MODELS[0]
    model = load_model(folder, LoadOptions(device=args.device))
    plain_loop(folder, texts[:64], args.batch_size, args.device)  # warm both paths up
    run_job(predict_job(model, Dataset(dataset.table.slice(0, 64), dataset.spec(), "warm")))

    start = time.perf_counter()
    ours = run_job(predict_job(model, dataset, batch_size=args.batch_size)).fields["probas"]
    litdesk_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = plain_loop(folder, texts, args.batch_size, args.device)
    plain_s = time.perf_counter() - start
    print(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "device": args.device,
                      "litdesk_s": round(litdesk_s, 2), "plain_transformers_s": round(plain_s, 2),
                      "speedup": round(plain_s / litdesk_s, 2),
                      "max_probability_difference": float(np.abs(ours - theirs).max())}))


if __name__ == "__main__":
    main()
