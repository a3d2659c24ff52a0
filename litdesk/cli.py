"""The ``litdesk`` command: the app (default) and the batch commands (inspect, predict,
compare, project, explain)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def process_start_time() -> float:
    """When this process started, in ``time.time()`` seconds (Linux: from /proc, ±10 ms)."""
    try:
        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def _app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litdesk", description="Understand and compare ML models, offline. With no paths, "
        "opens the built-in demo. Other commands: litdesk inspect PATH.")
    parser.add_argument("paths", nargs="*", help="datasets and models to open")
    parser.add_argument("--device", help="torch device for models: auto, cpu, cuda, mps")
    parser.add_argument("--trust", action="store_true",
                        help="allow models given here to run code when loaded (pickles)")
    parser.add_argument("--label", help="the dataset column holding gold labels")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="exit once every job started at launch has finished")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the window when ready")
    return parser


def _add_model_options(parser: argparse.ArgumentParser, cache: bool = True) -> None:
    """The options every batch command that loads a model takes."""
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--trust", action="store_true",
                        help="allow the model file to run code when loaded (pickles)")
    if cache:
        parser.add_argument("--no-cache", action="store_true",
                            help="neither read nor store results")


def _run_batch(work) -> int:
    """Run a batch command's ``work``, printing what it returns; a BatchError becomes one
    line on stderr and exit code 2."""
    from litdesk.core.batch import BatchError

    try:
        print(work())
    except BatchError as error:
        print(f"litdesk: {error}", file=sys.stderr)
        return 2
    return 0


def describe_field(field_type) -> str:
    """A field type in a few words: its name, and its categories or range."""
    vocab = getattr(field_type, "vocab", None)
    if vocab:
        shown = ", ".join(vocab[:8]) + (", …" if len(vocab) > 8 else "")
        return f"{field_type.type_name} ({len(vocab)} values: {shown})"
    low, high = getattr(field_type, "min_val", None), getattr(field_type, "max_val", None)
    if low is not None and high is not None:
        return f"{field_type.type_name} ({low:g} to {high:g})"
    return field_type.type_name


def inspect_command(argv: list[str]) -> int:
    """``litdesk inspect PATH``: print a dataset's spec and row count."""
    parser = argparse.ArgumentParser(prog="litdesk inspect",
                                     description="Load a dataset and print its spec.")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    from litdesk.core.loaders import DatasetLoadError, load_dataset

    try:
        dataset = load_dataset(args.path)
    except DatasetLoadError as error:
        print(f"litdesk: {error}", file=sys.stderr)
        return 2
    print(f"{dataset.name}: {len(dataset):,} rows")
    for name, field_type in dataset.spec().items():
        print(f"  {name}: {describe_field(field_type)}")
    return 0


def predict_command(argv: list[str]) -> int:
    """``litdesk predict``: every output of a model for every row of a dataset, to Parquet."""
    parser = argparse.ArgumentParser(
        prog="litdesk predict", description="Run a model over a dataset and write its outputs "
        "(one row per example; vectors and class probabilities as list columns).")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a .parquet file")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--label", help="the dataset column holding gold labels")
    _add_model_options(parser)
    args = parser.parse_args(argv)
    from litdesk.core.batch import predict_to_parquet

    return _run_batch(lambda: predict_to_parquet(
        args.model, args.data, args.out, batch_size=args.batch_size, device=args.device,
        trust=args.trust, label=args.label, use_cache=not args.no_cache))


def compare_command(argv: list[str]) -> int:
    """``litdesk compare``: every model's metrics on a dataset and their disagreements."""
    parser = argparse.ArgumentParser(
        prog="litdesk compare", description="Run models over a dataset and print each one's "
        "metrics against the gold labels, and on how many rows their predicted labels differ.")
    parser.add_argument("--model", type=Path, action="append", required=True,
                        help="a model file or folder (repeat for each model)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--label", help="the dataset column holding gold labels")
    _add_model_options(parser, cache=False)
    parser.add_argument("--json", action="store_true",
                        help='one line: {"models": {name: {metric: value}}, "disagreements": n}')
    args = parser.parse_args(argv)
    import json

    from litdesk.core.compare import compare_models

    def work() -> str:
        comparison = compare_models(args.model, args.data, label=args.label, device=args.device,
                                    trust=args.trust)
        return json.dumps(comparison.summary()) if args.json else comparison.report()

    return _run_batch(work)


def project_command(argv: list[str]) -> int:
    """``litdesk project``: a 2-D or 3-D projection of one field, to Parquet."""
    from litdesk.core.projection import METHODS

    parser = argparse.ArgumentParser(
        prog="litdesk project", description="Project an embeddings field (a dataset column, "
        "comma-separated numeric columns, or a model's Embeddings output with --model) and "
        "write its coordinates: one row per example, float32 columns x, y (and z).")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--field", required=True)
    parser.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    parser.add_argument("--dims", type=int, default=2, help="2 (default) or 3")
    parser.add_argument("--out", type=Path, required=True, help="a .parquet file")
    parser.add_argument("--model", type=Path, help="project this model's Embeddings output")
    _add_model_options(parser)
    args = parser.parse_args(argv)
    from litdesk.api import LoadOptions
    from litdesk.core.projection_batch import project_to_parquet

    return _run_batch(lambda: project_to_parquet(
        args.data, args.field, args.method, args.out, dims=args.dims, model_path=args.model,
        use_cache=not args.no_cache, options=LoadOptions(device=args.device, trust=args.trust)))


def explain_command(argv: list[str]) -> int:
    """``litdesk explain``: per-example attributions of one model over a dataset, to Parquet."""
    from litdesk.core.explain import METHODS

    parser = argparse.ArgumentParser(
        prog="litdesk explain", description="Explain a model's output for each example and "
        "write one row per example: row, target, tokens (or input fields), scores, and for "
        "integrated gradients completeness_error. For an image model, height and width replace "
        "tokens and scores is the height × width map, row by row.")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    parser.add_argument("--out", type=Path, required=True, help="a .parquet file")
    parser.add_argument("--steps", type=int, help="integration steps (integrated_gradients)")
    parser.add_argument("--rows", help="a:b, the rows to explain (default: all)")
    parser.add_argument("--target", help="the class to explain (default: the predicted one)")
    _add_model_options(parser)
    args = parser.parse_args(argv)
    from litdesk.core.explain import explain_to_parquet

    return _run_batch(lambda: explain_to_parquet(
        args.model, args.data, args.out, args.method, steps=args.steps, rows=args.rows,
        target=args.target, device=args.device, trust=args.trust, use_cache=not args.no_cache))


def main(argv: list[str] | None = None) -> int:
    """Run the app or a batch command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "inspect":
        return inspect_command(argv[1:])
    if argv and argv[0] == "predict":
        return predict_command(argv[1:])
    if argv and argv[0] == "project":
        return project_command(argv[1:])
    if argv and argv[0] == "compare":
        return compare_command(argv[1:])
    if argv and argv[0] == "explain":
        return explain_command(argv[1:])
    args = _app_parser().parse_args(argv)
    from litdesk.ui.app import run_app

    return run_app(args.paths, device=args.device, exit_when_ready=args.exit_when_ready,
                   screenshot=args.screenshot, started_at=process_start_time(),
                   trust=args.trust, label=args.label)


if __name__ == "__main__":
    raise SystemExit(main())
