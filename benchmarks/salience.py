"""Time per example and completeness error of each attribution method on the demo BERT.

Beside litdesk's batched integrated gradients, in the same run: Captum's IntegratedGradients
called directly, one example at a time, and LIT 1.3.1's IntegratedGradients loop (lit-nlp cannot
be installed here, so its algorithm is re-expressed: per example, a zero baseline, ``steps``
points of ``linspace(0, 1, steps + 1)`` without the last, one batched forward and backward
pass, the trapezoid rule). Prints one JSON line.

    python benchmarks/salience.py [--rows 64] [--steps 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "litdesk" / "resources" / "demo"


def completeness(model, embeddings, baseline, args, target, attribution_sum) -> float:
    import torch

    with torch.no_grad():
        change = float(model.logits_from_embeddings(embeddings, *args)[0, target]
                       - model.logits_from_embeddings(baseline, *args)[0, target])
    return abs(attribution_sum - change) / abs(change)


def captum_per_example(model, texts, steps):
    """Captum's IntegratedGradients on one example at a time (its default rule, zero baseline)."""
    import torch
    from captum.attr import IntegratedGradients

    errors = []
    ig = IntegratedGradients(model.logits_from_embeddings)
    for text in texts:
        batch = model.embed_texts([text])
        with torch.no_grad():
            target = int(model.logits_from_embeddings(batch.embeddings, *batch.forward_args)
                         .argmax())
        baseline = torch.zeros_like(batch.embeddings)
        attributions = ig.attribute(batch.embeddings, baselines=baseline, target=target,
                                    additional_forward_args=batch.forward_args, n_steps=steps)
        errors.append(completeness(model, batch.embeddings, baseline, batch.forward_args, target,
                                   float(attributions.sum())))
    return errors


def lit_loop(model, texts, steps):
    """LIT 1.3.1's IntegratedGradients algorithm, one example at a time."""
    import torch

    errors = []
    for text in texts:
        batch = model.embed_texts([text])
        embeddings, args = batch.embeddings[0], batch.forward_args
        with torch.no_grad():
            target = int(model.logits_from_embeddings(batch.embeddings, *args).argmax())
        scales = torch.linspace(0, 1, steps + 1, dtype=embeddings.dtype)[:steps, None, None]
        path = (scales * embeddings).requires_grad_(True)  # zero baseline
        expanded = tuple(arg.expand(steps, *arg.shape[1:]) for arg in args)
        with torch.enable_grad():
            model.logits_from_embeddings(path, *expanded)[:, target].sum().backward()
        gradients = path.grad
        integral = ((gradients[:-1] + gradients[1:]) / 2).mean(dim=0)
        attributions = (integral * embeddings).sum()
        errors.append(completeness(model, batch.embeddings, torch.zeros_like(batch.embeddings),
                                   args, target, float(attributions)))
    return errors


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="demo test rows (default 64)")
    parser.add_argument("--steps", type=int, default=30, help="integration steps (default 30)")
    parser.add_argument("--json", action="store_true", help="print the JSON line only")
    args = parser.parse_args()
    import torch

    from litdesk.core.batch import load_batch_inputs
    from litdesk.core.explain import METHODS, explain_job, methods_for
    from litdesk.core.jobs import run_job

    dataset, (model,) = load_batch_inputs([DEMO / "models" / "bert_tiny"],
                                          DEMO / "sentiment.csv")
    split = dataset.table.column("split").to_pylist()
    rows = [row for row, name in enumerate(split) if name == "test"][:args.rows]
    texts = dataset.table.column("text").take(rows).to_pylist()
    run_job(explain_job(model, dataset, rows[:4], "integrated_gradients"))  # warm up
    report: dict = {"rows": len(rows), "steps": args.steps, "device": model.device,
                    "torch_threads": torch.get_num_threads(), "litdesk": {}}
    for method in methods_for(model):
        params = {"steps": args.steps} if method == "integrated_gradients" else None
        chosen = rows if method in ("grad_l2", "grad_dot_input", "integrated_gradients") \
            else rows[:8]  # perturbation methods: hundreds of predictions per example
        seconds, results = timed(lambda: run_job(explain_job(model, dataset, chosen, method,
                                                             params)))
        entry = {"ms_per_example": round(1000 * seconds / len(chosen), 2), "rows": len(chosen),
                 "label": METHODS[method].label}
        errors = [r.completeness_error for r in results if r.completeness_error is not None]
        if errors:
            entry["completeness_error_median"] = statistics.median(errors)
            entry["completeness_error_max"] = max(errors)
            entry["within_1_percent"] = float(np.mean(np.asarray(errors) <= 0.01))
        report["litdesk"][method] = entry
    for name, function in (("captum_per_example", captum_per_example), ("lit_1_3_1_loop", lit_loop)):
        seconds, errors = timed(lambda: function(model, texts, args.steps))
        report[name] = {"ms_per_example": round(1000 * seconds / len(texts), 2),
                        "completeness_error_median": statistics.median(errors),
                        "within_1_percent": float(np.mean(np.asarray(errors) <= 0.01))}
    ours = report["litdesk"]["integrated_gradients"]["ms_per_example"]
    report["ig_speedup_vs_captum_per_example"] = round(
        report["captum_per_example"]["ms_per_example"] / ours, 2)
    report["ig_speedup_vs_lit_loop"] = round(report["lit_1_3_1_loop"]["ms_per_example"] / ours, 2)
    if not args.json:
        print("integrated gradients, ms per example: litdesk "
              f"{ours}, Captum per example {report['captum_per_example']['ms_per_example']}, "
              f"LIT 1.3.1 loop {report['lit_1_3_1_loop']['ms_per_example']}", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
