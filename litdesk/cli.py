"""The ``litdesk`` command: the app (default) and the batch commands (inspect, predict,
compare, project, explain)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


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


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake in the arguments told in one line (exit code 2) instead of the
    usage and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"litdesk: {message} (see {self.prog} --help)\n")


def _path(text: str) -> Path:
    """A path argument, refused at once when its name is not valid UTF-8, which pyarrow could
    not open and the summary line could not print."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        from litdesk.core.messages import printable

        raise argparse.ArgumentTypeError(f"{printable(text)} is not a UTF-8 name") from None
    return Path(text)


def commands() -> dict[str, Callable[[list[str]], int]]:
    """Every command besides the app, by name: this module's ``<name>_command`` functions
    (``install_desktop_command`` is ``install-desktop``). ``main`` dispatches through it and
    ``--help`` lists it, so a command added is both without a list to keep."""
    return {name[:-len("_command")].replace("_", "-"): function
            for name, function in globals().items()
            if name.endswith("_command") and callable(function) and not name.startswith("_")}


def command_summary(function: Callable) -> str:
    """The one-line description of a command: its docstring's first sentence, after the
    ``litdesk NAME ARGS``: of its opening."""
    import re

    text = " ".join((function.__doc__ or "").split("\n\n")[0].split())
    text = re.sub(r"^``[^`]*``:\s*", "", text)
    return text[:1].upper() + text[1:]


def _commands_epilog() -> str:
    listed = commands()
    width = max(map(len, listed), default=0)
    import shutil
    import textwrap

    columns = max(60, min(100, shutil.get_terminal_size().columns)) - 1
    lines = [textwrap.fill(command_summary(function), columns,
                           initial_indent=f"  {name:<{width}}  ",
                           subsequent_indent=" " * (width + 4))
             for name, function in sorted(listed.items())]
    return "commands (litdesk COMMAND --help for each one's options):\n" + "\n".join(lines)


def _app_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="litdesk", usage="litdesk [options] [PATH ...]\n       litdesk COMMAND ...",
        description="Understand and compare ML models, offline. With no paths, opens the "
        "built-in demo.", epilog=_commands_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="datasets and models to open")
    parser.add_argument("--device", help="torch device for models: auto, cpu, cuda, mps")
    parser.add_argument("--trust", action="store_true",
                        help="allow models given here to run code when loaded (pickles)")
    parser.add_argument("--label", help="the dataset column holding gold labels")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="exit once every job started at launch has finished")
    parser.add_argument("--screenshot", type=_path, help="save a PNG of the window when ready")
    parser.add_argument("--reuse-window", action="store_true",
                        help="open the paths in litdesk's window if one is open (as the desktop "
                        "launcher does), else in a new one")
    parser.add_argument("--version", action="version", version=_version_line())
    return parser


def _version_line() -> str:
    from litdesk import __version__

    return f"litdesk {__version__}"


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options every batch command that loads a model takes."""
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--trust", action="store_true",
                        help="allow the model file to run code when loaded (pickles)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor store results")


def _run_batch(task: str, work: Callable[[], str]) -> int:
    """Run a batch command's ``work`` and print what it returns.

    Bad input and the machine's limits (see :func:`~litdesk.core.batch.failure_line`) end as
    one line on stderr and exit code 2, ``task`` saying what was being done; a bug in litdesk
    as one line and exit code 1, its traceback in the log; Ctrl+C as exit code 130.
    """
    from litdesk.core.batch import failure_line

    try:
        print(work())
    except KeyboardInterrupt:
        print("litdesk: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        line = failure_line(error, task)
        print(f"litdesk: {line if line is not None else _logged_bug(error, task)}",
              file=sys.stderr)
        return 2 if line is not None else 1
    return 0


def _logged_bug(error: BaseException, task: str) -> str:
    """Append ``error``'s traceback to the log; return what to say instead of it (with the
    traceback on stderr when the log cannot be written)."""
    import traceback

    from litdesk.core.logs import log_bug
    from litdesk.core.messages import first_line

    summary = f"a bug in litdesk, {type(error).__name__}: {first_line(error)} ({task})"
    log = log_bug(error, task)
    if log is None:
        traceback.print_exception(error)
        return summary
    return f"{summary}; details in {log}"


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


def describe_model(model, path: Path) -> str:
    """What ``litdesk inspect`` prints of a model: its kind, inputs, outputs and labels."""
    from litdesk.core.model_summary import model_kind, model_labels

    labels = model_labels(model)
    lines = [f"{model.name}: {model_kind(model)} ({path})", "inputs:"]
    lines += [f"  {name}: {describe_field(field_type)}"
              + ("" if field_type.required else " (optional)")
              for name, field_type in model.input_spec().items()]
    lines.append("outputs:")
    lines += [f"  {name}: {field_type.type_name}"
              for name, field_type in model.output_spec().items()]
    if labels:
        lines.append(f"labels ({len(labels)}): {', '.join(labels)}")
    return "\n".join(lines)


def inspect_command(argv: list[str]) -> int:
    """``litdesk inspect PATH``: describe a dataset (its spec and row count) or a model (its
    kind, inputs, outputs and labels)."""
    parser = _Parser(prog="litdesk inspect", description="Load a dataset and print its spec "
                     "and row count, or a model and print its kind, inputs, outputs and labels.")
    parser.add_argument("path", type=_path)
    parser.add_argument("--device", help="where a model loads: auto, cpu, cuda, mps")
    parser.add_argument("--trust", action="store_true",
                        help="allow the model file to run code when loaded (pickles)")
    args = parser.parse_args(argv)

    def work() -> str:
        from litdesk.core.loaders import load_dataset
        from litdesk.core.model_loading import load_model, looks_like_model

        if looks_like_model(args.path):
            from litdesk.api import LoadOptions, TrustRequired

            try:
                model = load_model(args.path, LoadOptions(device=args.device, trust=args.trust))
            except TrustRequired as error:
                raise TrustRequired(f"{error} (--trust says you do)") from None
            return describe_model(model, args.path)
        dataset = load_dataset(args.path)
        return "\n".join([f"{dataset.name}: {len(dataset):,} rows"] + [
            f"  {name}: {describe_field(field_type)}"
            for name, field_type in dataset.spec().items()])

    return _run_batch(f"reading {args.path}", work)


def _add_bulk_options(parser: argparse.ArgumentParser, fields: bool = True) -> None:
    """The options of the batch commands that write one row per example: the output fields,
    the progress bar, and where to run (this process or a Ray cluster)."""
    if fields:
        parser.add_argument("--fields", help="comma-separated output fields, or all (default: "
                            "predictions and embeddings)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: run on a Ray cluster (--out is then a folder of shards)")
    parser.add_argument("--address", help="the Ray cluster to join (default: start a local "
                        "Ray runtime for this command)")


def predict_command(argv: list[str]) -> int:
    """``litdesk predict``: a model's predictions and embeddings (or the fields asked for)
    for every row of a dataset, to Parquet."""
    parser = _Parser(
        prog="litdesk predict", description="Run a model over a dataset and write its outputs "
        "(one row per example, with its row number; vectors and class probabilities as "
        "fixed-size list columns). Open the result on the desk with: litdesk DATA OUT.")
    parser.add_argument("--model", type=_path, required=True)
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--out", type=_path, required=True,
                        help="a .parquet file (a folder with --engine ray)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--label", help="the dataset column holding gold labels")
    _add_model_options(parser)
    _add_bulk_options(parser)
    args = parser.parse_args(argv)
    if args.engine == "ray":
        from litdesk.core.ray_engine import predict_on_ray

        return _run_batch(f"predicting {args.data} with {args.model} on Ray",
                          lambda: predict_on_ray(
                              args.model, args.data, args.out, batch_size=args.batch_size,
                              device=args.device, trust=args.trust, label=args.label,
                              fields=args.fields, quiet=args.quiet, address=args.address))
    from litdesk.core.batch import predict_to_parquet

    return _run_batch(f"predicting {args.data} with {args.model}", lambda: predict_to_parquet(
        args.model, args.data, args.out, batch_size=args.batch_size, device=args.device,
        trust=args.trust, label=args.label, use_cache=not args.no_cache, fields=args.fields,
        quiet=args.quiet))


def compare_command(argv: list[str]) -> int:
    """``litdesk compare``: every model's metrics on a dataset and their disagreements."""
    parser = _Parser(
        prog="litdesk compare", description="Run models over a dataset and print each one's "
        "metrics against the gold labels, and on how many rows their predicted labels differ.")
    parser.add_argument("--model", type=_path, action="append", required=True,
                        help="a model file or folder (repeat for each model)")
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--label", help="the dataset column holding gold labels")
    _add_model_options(parser)
    parser.add_argument("--json", action="store_true",
                        help='one line: {"models": {name: {metric: value}}, "disagreements": n}')
    args = parser.parse_args(argv)
    import json

    from litdesk.core.compare import compare_models

    def work() -> str:
        comparison = compare_models(args.model, args.data, label=args.label, device=args.device,
                                    trust=args.trust, use_cache=not args.no_cache)
        return json.dumps(comparison.summary()) if args.json else comparison.report()

    return _run_batch(f"comparing {', '.join(map(str, args.model))} on {args.data}", work)


def project_command(argv: list[str]) -> int:
    """``litdesk project``: a 2-D or 3-D projection of one field, to Parquet."""
    from litdesk.core.projection import METHODS

    parser = _Parser(
        prog="litdesk project", description="Project an embeddings field (a dataset column, "
        "comma-separated numeric columns, or a model's Embeddings output with --model) and "
        "write its coordinates: one row per example, float32 columns x, y (and z).")
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--field", required=True)
    parser.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    parser.add_argument("--dims", type=int, default=2, help="2 (default) or 3")
    parser.add_argument("--out", type=_path, required=True,
                        help="a .parquet file (a folder with --engine ray)")
    parser.add_argument("--model", type=_path, help="project this model's Embeddings output")
    parser.add_argument("--fit-sample", type=int, metavar="N",
                        help="with --engine ray: fit on N rows drawn at random and place the "
                        "others on the workers (default 50000)")
    _add_model_options(parser)
    _add_bulk_options(parser, fields=False)
    args = parser.parse_args(argv)
    if args.fit_sample is not None and args.fit_sample < 1:
        parser.error("--fit-sample must be 1 or more")
    from litdesk.api import LoadOptions

    if args.engine == "ray":
        from litdesk.core.ray_engine import project_on_ray

        return _run_batch(f"projecting {args.field} of {args.data} on Ray", lambda: project_on_ray(
            args.data, args.field, args.method, args.out, dims=args.dims, model_path=args.model,
            options=LoadOptions(device=args.device, trust=args.trust),
            use_cache=not args.no_cache, fit_sample=args.fit_sample, quiet=args.quiet,
            address=args.address))
    from litdesk.core.projection_batch import project_to_parquet

    return _run_batch(f"projecting {args.field} of {args.data}", lambda: project_to_parquet(
        args.data, args.field, args.method, args.out, dims=args.dims, model_path=args.model,
        use_cache=not args.no_cache, options=LoadOptions(device=args.device, trust=args.trust),
        quiet=args.quiet))


def explain_command(argv: list[str]) -> int:
    """``litdesk explain``: per-example attributions of one model over a dataset, to Parquet."""
    from litdesk.core.explain import METHODS

    parser = _Parser(
        prog="litdesk explain", description="Explain a model's output for each example and "
        "write one row per example: row, target, tokens (or input fields), scores, and for "
        "integrated gradients completeness_error. For an image model, height and width replace "
        "tokens and scores is the height × width map, row by row.")
    parser.add_argument("--model", type=_path, required=True)
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    parser.add_argument("--out", type=_path, required=True,
                        help="a .parquet file (a folder with --engine ray)")
    parser.add_argument("--steps", type=int, help="integration steps (integrated_gradients)")
    parser.add_argument("--rows", help="a:b, the rows to explain (default: all)")
    parser.add_argument("--target", help="the class to explain (default: the predicted one)")
    _add_model_options(parser)
    _add_bulk_options(parser, fields=False)
    args = parser.parse_args(argv)
    if args.engine == "ray":
        from litdesk.core.ray_engine import explain_on_ray

        return _run_batch(f"explaining {args.model} on {args.data} on Ray", lambda: explain_on_ray(
            args.model, args.data, args.out, args.method, steps=args.steps, rows=args.rows,
            target=args.target, device=args.device, trust=args.trust, quiet=args.quiet,
            address=args.address))
    from litdesk.core.explain import explain_to_parquet

    return _run_batch(f"explaining {args.model} on {args.data}", lambda: explain_to_parquet(
        args.model, args.data, args.out, args.method, steps=args.steps, rows=args.rows,
        target=args.target, device=args.device, trust=args.trust, use_cache=not args.no_cache,
        quiet=args.quiet))


def audit_command(argv: list[str]) -> int:
    """``litdesk audit``: label issues, outliers and duplicates of a dataset, to Parquet."""
    parser = _Parser(
        prog="litdesk audit", description="Find likely wrong labels (confident learning on the "
        "models' predictions, else on a baseline cross-validated here), outliers and near or "
        "exact duplicates; write one row per data row: label_issue, label_quality, "
        "suggested_label, outlier_score, near_duplicate_of.")
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--label", required=True, help="the dataset column holding gold labels")
    parser.add_argument("--model", type=_path, action="append", default=[],
                        help="a classifier not trained on these rows (repeat for each model)")
    parser.add_argument("--out", type=_path, required=True, help="a .parquet file")
    parser.add_argument("--folds", type=int, default=5, help="folds of the baseline (default 5)")
    _add_model_options(parser)
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be 2 or more")
    from litdesk.core.quality import audit_to_parquet

    return _run_batch(f"auditing {args.data}", lambda: audit_to_parquet(
        args.data, args.out, args.label, model_paths=args.model, device=args.device,
        trust=args.trust, use_cache=not args.no_cache, folds=args.folds))


def train_command(argv: list[str]) -> int:
    """``litdesk train``: a scikit-learn baseline, or a fine-tuned Hugging Face classifier,
    trained on a dataset's rows and saved with its training record."""
    parser = _Parser(
        prog="litdesk train", description="Train a model on a dataset and save it where litdesk "
        "opens it without a trust prompt: --baseline fits tf-idf + logistic regression on the "
        "text column, else logistic regression (linear) or gradient boosting (boosted) on the "
        "category and number columns; --base fine-tunes a Hugging Face classifier folder on the "
        "text column. "
        "A training_record.json beside the model says how to reproduce it.")
    parser.add_argument("--data", type=_path, required=True)
    parser.add_argument("--label", required=True, help="the column holding the gold labels")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--base", type=_path, help="a Hugging Face classifier folder to fine-tune")
    what.add_argument("--baseline", choices=("linear", "boosted"))
    parser.add_argument("--out", type=_path, required=True, help="the folder to save the model in")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-share", type=float, default=0.1,
                        help="of the training rows, held out for early stopping (fine-tuning)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1")
    parser.add_argument("--split-column", help="train on the rows whose column reads --train-value")
    parser.add_argument("--train-value")
    parser.add_argument("--train-rows", help="train on rows a:b (Python slice bounds)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    if (args.split_column is None) != (args.train_value is None):
        parser.error("--split-column and --train-value go together")
    if args.split_column is not None and args.train_rows is not None:
        parser.error("choose the rows by --split-column or by --train-rows, not both")

    def work() -> str:
        import numpy as np

        from litdesk.core import train_runs
        from litdesk.core.batch import ProgressBar
        from litdesk.core.jobs import run_job
        from litdesk.core.loaders import load_dataset

        dataset = load_dataset(args.data)
        if args.split_column is not None:
            rows = train_runs.rows_with_value(dataset, args.split_column, args.train_value)
        elif args.train_rows is not None:
            rows = train_runs.rows_in_range(args.train_rows, len(dataset))
        else:
            rows = np.arange(len(dataset), dtype=np.int64)
        if args.baseline is not None:
            bar = ProgressBar("folds", quiet=args.quiet)
            job = train_runs.baseline_run_job(
                dataset, args.label, rows, args.out, kind=args.baseline, seed=args.seed,
                exclude=(args.split_column,) if args.split_column else ())
        else:
            from litdesk.core.training import FineTuneSettings

            settings = FineTuneSettings(epochs=args.epochs, batch_size=args.batch_size,
                                        learning_rate=args.learning_rate, seed=args.seed,
                                        validation_share=args.validation_share,
                                        device=args.device)
            settings.check()
            bar = ProgressBar("steps", quiet=args.quiet)
            job = train_runs.fine_tune_run_job(dataset, args.label, rows, args.base, args.out,
                                               settings)
        shown = [-1]

        def show(progress) -> None:  # several reports share a step (its loss, the epoch's end)
            if progress.total and progress.done != shown[0]:
                shown[0] = progress.done
                bar.update(progress)

        try:
            run = run_job(job, show)
        finally:
            bar.close()
        return run.summary

    return _run_batch(f"training on {args.data}", work)


def install_desktop_command(argv: list[str]) -> int:
    """``litdesk install-desktop [--uninstall]``: the launcher entry, icon and file types."""
    parser = _Parser(
        prog="litdesk install-desktop", description="Add litdesk to the desktop's launcher, "
        "with its icon, and as \"Open with\" for CSV, TSV, JSON Lines, Parquet and Arrow files "
        "(freedesktop: in $XDG_DATA_HOME, by default ~/.local/share).")
    parser.add_argument("--uninstall", action="store_true", help="remove what it installed")
    args = parser.parse_args(argv)
    from litdesk.core.desktop import install_desktop, uninstall_desktop

    if args.uninstall:
        return _run_batch("removing the desktop entry", uninstall_desktop)
    return _run_batch("installing the desktop entry", install_desktop)


def main(argv: list[str] | None = None) -> int:
    """Run the app or a batch command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from litdesk.core.logs import setup_logging

    setup_logging()
    command = commands().get(argv[0]) if argv else None
    if command is not None:
        return command(argv[1:])
    args = _app_parser().parse_args(argv)
    if args.reuse_window and args.paths:
        from litdesk.ui.single_instance import send_to_running

        if send_to_running([Path(path).absolute() for path in args.paths]):
            return 0
    from litdesk.ui.app import run_app

    return run_app(args.paths, device=args.device, exit_when_ready=args.exit_when_ready,
                   screenshot=args.screenshot, started_at=process_start_time(),
                   trust=args.trust, label=args.label,
                   single_instance=not args.exit_when_ready)


if __name__ == "__main__":
    raise SystemExit(main())
