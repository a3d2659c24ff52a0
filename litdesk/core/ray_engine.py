"""``litdesk predict|explain|project --engine ray``: the same jobs on a Ray cluster, with Ray Data.

The desk loads the dataset (litdesk's loaders decide its spec and binding, as for the
single-process command) and hands Ray the columns the model reads, with their row numbers,
in blocks of contiguous rows. The model's files are put once in Ray's object store; each
worker (a Ray Data actor: one per GPU when the cluster has GPUs, else one per CPU up to the
blocks there are) writes them to a temporary folder and loads them through the same plugins,
once. Each block is worked on as the single-process command works on its rows (predict:
:func:`~litdesk.core.batch.predict_block`, batches of similar length; explain:
:func:`~litdesk.core.explain.explain_job`) and comes back as an Arrow table; the desk writes it
as the shard ``part-<first row>.parquet``, so that reading the folder with pyarrow gives the
rows in the dataset's order, with the same columns and metadata as the single-process file.
Ray retries a block whose worker died (its actor is restarted), so the output is still
complete; the folder appears at ``--out`` only when every row is there.

A projection is fitted on the desk on a sample of the rows (``--fit-sample``; the vectors of a
model's Embeddings output computed on the workers) and the workers place every other row: PCA
by its components, UMAP by its sample neighbours (see
:class:`~litdesk.core.projection_batch.NeighbourPlacement`).

Without ``--address`` a local Ray runtime is started for the command and stopped after it.
Ray is imported here only, when the command runs.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, Embeddings, LoadOptions
from litdesk.api.types import spec_from_json, spec_to_json
from litdesk.core.batch import BatchError, ProgressBar, load_predict_inputs, predict_block
from litdesk.core.results import ROW_COLUMN, metadata

INSTALL_HINT = "Ray is not installed; install it with: pip install 'litdesk[distributed]'"
#: The largest model folder shipped to the workers through the object store.
MAX_SHIPPED_BYTES = 20 * 2**30
#: The column holding the vectors a projection places when they come from the dataset.
VECTORS_COLUMN = "vectors"


def import_ray() -> Any:
    """``ray`` with Ray Data, or a BatchError saying in one line how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BatchError(INSTALL_HINT) from None
    return ray


def model_files(path: Path) -> dict[str, bytes]:
    """The bytes of the model at ``path`` (a file, or each file of a folder), by the path
    relative to the folder holding it."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if sum(file.stat().st_size for file in files) > MAX_SHIPPED_BYTES:
        raise BatchError(f"{path}: larger than {MAX_SHIPPED_BYTES // 2**30} GB to ship to the "
                         "workers")
    return {str(file.relative_to(path.parent)): file.read_bytes() for file in files}


def worker_options(model_path: Path, options: LoadOptions) -> LoadOptions:
    """The load options the workers get, who load a copy of the model's files elsewhere: a
    file litdesk ships and vouches for (the tabular demo's pickles, found intact here) is
    trusted there too, the copy being the bytes checked here."""
    from dataclasses import replace

    from litdesk.core import trusted_files

    if not options.trust and Path(model_path).is_file() \
            and trusted_files.is_shipped_and_intact(Path(model_path)):
        return replace(options, trust=True)
    return options


def _resolved(value: Any) -> Any:
    """An actor's constructor argument, fetched from the object store when it is a reference."""
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class _BlockWorker:
    """A Ray Data actor's base: the model (when there is one) loaded once from its shipped
    files; each block turned back into a litdesk Dataset with its row numbers."""

    def __init__(self, files_ref: Any, name: str, options: LoadOptions, spec_json: str,
                 dataset_name: str) -> None:
        self.model = None
        if files_ref is not None:
            from litdesk.core.model_loading import load_model

            self._folder = tempfile.mkdtemp(prefix="litdesk-model-")
            for relative, data in _resolved(files_ref).items():
                target = Path(self._folder, relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.model = load_model(Path(self._folder, name), options)
        self.spec = spec_from_json(spec_json)
        self.dataset_name = dataset_name

    def block_dataset(self, block: pa.Table) -> tuple[np.ndarray, Dataset]:
        rows = block.column(ROW_COLUMN).to_numpy()
        inputs = block.drop_columns([ROW_COLUMN])
        return rows, Dataset(inputs, {name: self.spec[name] for name in inputs.column_names},
                             self.dataset_name)


class _Predictor(_BlockWorker):
    """Predicts blocks: the row numbers and the ``fields`` of the model's outputs."""

    def __init__(self, files_ref: Any, name: str, options: LoadOptions, spec_json: str,
                 dataset_name: str, fields: list[str], batch_size: Optional[int]) -> None:
        super().__init__(files_ref, name, options, spec_json, dataset_name)
        output_spec = self.model.output_spec()
        self.fields = {field: output_spec[field] for field in fields}
        self.batch_size = batch_size or self.model.max_minibatch_size()

    def __call__(self, block: pa.Table) -> pa.Table:
        rows, dataset = self.block_dataset(block)
        return predict_block(self.model, dataset, self.fields, self.batch_size, rows)


class _Explainer(_BlockWorker):
    """Explains blocks: the rows of :func:`~litdesk.core.explain.attribution_table`."""

    def __init__(self, files_ref: Any, name: str, options: LoadOptions, spec_json: str,
                 dataset_name: str, method: str, params: Optional[dict],
                 target: Optional[str], baseline: Optional[dict]) -> None:
        super().__init__(files_ref, name, options, spec_json, dataset_name)
        self.method, self.params, self.target, self.baseline = method, params, target, baseline

    def __call__(self, block: pa.Table) -> pa.Table:
        from litdesk.core.explain import attribution_table, explain_job
        from litdesk.core.jobs import run_job

        rows, dataset = self.block_dataset(block)
        attributions = run_job(explain_job(self.model, dataset, range(len(dataset)),
                                           self.method, self.params, self.target,
                                           baseline=self.baseline))
        return attribution_table(self.model, self.method, rows, attributions)


class _Placer(_BlockWorker):
    """Places blocks on a projection fitted on the desk: the row numbers and x, y (z). The
    vectors are the block's ``vectors`` column, or the model's ``field`` output for its rows."""

    def __init__(self, files_ref: Any, name: str, options: LoadOptions, spec_json: str,
                 dataset_name: str, field: str, batch_size: Optional[int],
                 placement_ref: Any) -> None:
        super().__init__(files_ref, name, options, spec_json, dataset_name)
        self.placement = _resolved(placement_ref)
        self.field = field
        if self.model is not None:
            self.fields = {field: self.model.output_spec()[field]}
            self.batch_size = batch_size or self.model.max_minibatch_size()

    def __call__(self, block: pa.Table) -> pa.Table:
        from litdesk.core.projection_batch import coordinates_table

        rows, dataset = self.block_dataset(block)
        if self.model is not None:
            outputs = predict_block(self.model, dataset, self.fields, self.batch_size, rows)
            vectors = _vectors(outputs, self.field)
        else:
            vectors = _vectors(dataset.table, VECTORS_COLUMN)
        coords = coordinates_table(self.placement.place(vectors, rows))
        return coords.add_column(0, ROW_COLUMN, pa.array(rows, pa.int64()))


def _vectors(table: pa.Table, column: str) -> np.ndarray:
    """A column of equal-length number lists as a float32 matrix."""
    from litdesk.core.projection import dataset_vectors

    return dataset_vectors(Dataset(table.select([column]), {column: Embeddings()}), column)


def _quiet_ray_logs(ray: Any) -> None:
    """Keep Ray's own progress and info lines off stderr: the command draws its bar."""
    import logging

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It warns only that its bars are off, as asked here.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


@contextmanager
def _runtime(ray: Any, address: Optional[str], ray_init: Optional[dict[str, Any]]
             ) -> Iterator[Any]:
    """Ray, joined at ``address`` (default: a local runtime started here and stopped after);
    one already initialised in this process is used as it is. ``ray_init`` adds arguments to
    ``ray.init`` (tests: num_cpus)."""
    _quiet_ray_logs(ray)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **(ray_init or {}))
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _workers(ray: Any, blocks: int, gpu: bool = True) -> tuple[int, float]:
    """How many actors to start, and the GPUs each takes (one per GPU when there are GPUs and
    the work runs a model)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if gpu else 0
    if gpus:
        return max(1, min(gpus, blocks)), 1.0
    return max(1, min(int(resources.get("CPU", 1)), blocks)), 0.0


def _check_folder_out(out: Path) -> None:
    if out.suffix.lower() == ".parquet" or (out.exists() and not out.is_dir()):
        raise BatchError(f"{out}: with --engine ray the output is a folder of Parquet shards")
    if out.is_dir() and any(out.iterdir()):
        raise BatchError(f"{out}: the folder is not empty")


def _input_table(dataset: Dataset, columns: Iterable[str], rows: Sequence[int]) -> pa.Table:
    """The dataset's ``columns`` at ``rows`` (a range or ascending row numbers), with the row
    numbers."""
    table = dataset.table.select(sorted(set(columns)))
    if isinstance(rows, range) and rows.step == 1:
        table = table.slice(rows.start, len(rows))
    else:
        table = table.take(pa.array(np.asarray(rows, dtype=np.int64)))
    return table.append_column(ROW_COLUMN, pa.array(np.asarray(rows, dtype=np.int64)))


def _spec_json(dataset: Dataset, table: pa.Table) -> str:
    return spec_to_json({column: dataset.spec()[column] for column in table.column_names
                         if column != ROW_COLUMN})


def _map_blocks(ray: Any, table: pa.Table, worker: type, args: tuple,
                block_rows: Optional[int], gpu: bool = True) -> tuple[Iterator[pa.Table], int]:
    """``worker`` (a :class:`_BlockWorker`, constructed with ``args`` once per actor) over
    ``table`` in blocks of contiguous rows on Ray: its results as they come (in no set order),
    and how many actors run it."""
    total = table.num_rows
    cpus = int(ray.cluster_resources().get("CPU", 1))
    rows_per_block = block_rows or max(1, min(8192, math.ceil(total / max(1, 4 * cpus))))
    blocks = [table.slice(start, rows_per_block) for start in range(0, total, rows_per_block)]
    workers, gpus = _workers(ray, len(blocks), gpu)
    if not blocks:
        return iter(()), workers
    mapped = ray.data.from_arrow(blocks).map_batches(
        worker, batch_size=None, batch_format="pyarrow", zero_copy_batch=True,
        fn_constructor_args=args, compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=gpus or None)
    return (result for result in mapped.iter_batches(batch_size=None, batch_format="pyarrow")
            if result.num_rows), workers


def _collect(results: Iterable[pa.Table], rows: np.ndarray, bar: ProgressBar) -> pa.Table:
    """The results of ``rows`` (ascending row numbers) gathered on the desk, in row order."""
    tables, done = [], 0
    for result in results:
        tables.append(result)
        done += result.num_rows
        bar.show(done, len(rows))
    if not tables:
        raise BatchError("Ray returned no rows")
    table = pa.concat_tables(tables)
    table = table.take(pa.array(np.argsort(table.column(ROW_COLUMN).to_numpy(), kind="stable")))
    if not np.array_equal(table.column(ROW_COLUMN).to_numpy(), rows):
        raise BatchError(f"Ray returned {table.num_rows:,} rows for {len(rows):,}")
    return table


def _write_shards(results: Iterable[pa.Table], out: Path, rows: range,
                  schema_metadata: Mapping[bytes, bytes], empty: pa.Table, bar: ProgressBar,
                  keep_row: bool = True) -> int:
    """Write each result of ``rows`` as the shard ``part-<first row>.parquet`` of the folder
    ``out`` (one schema for all, with ``schema_metadata``; without the row column unless
    ``keep_row``), which appears only when every row is there; ``empty`` is the one shard
    of no rows. Returns the number of shards."""
    total = len(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    done, seen, shards = 0, np.zeros(total, dtype=bool), 0
    schema: Optional[pa.Schema] = None
    try:
        for result in results:
            numbers = result.column(ROW_COLUMN).to_numpy()
            positions = numbers - rows.start
            if seen[positions].any():
                raise BatchError(f"Ray returned rows {numbers[0]}… twice")
            seen[positions] = True
            if not keep_row:
                result = result.drop_columns([ROW_COLUMN])
            if schema is None:  # one schema for every shard, as one file has
                schema = result.schema.with_metadata(schema_metadata)
            _write_shard(result.cast(schema), partial / f"part-{numbers[0]:012d}.parquet")
            shards += 1
            done += len(numbers)
            bar.show(done, total)
        if not seen.all():
            missing = rows.start + int(np.flatnonzero(~seen)[0])
            raise BatchError(f"Ray returned {done:,} of {total:,} rows (row {missing} missing)")
        if not total:
            _write_shard(empty.replace_schema_metadata(schema_metadata),
                         partial / f"part-{rows.start:012d}.parquet")
            shards = 1
        if out.is_dir():
            out.rmdir()  # empty: checked before
        os.replace(partial, out)
    finally:
        bar.close()
        shutil.rmtree(partial, ignore_errors=True)
    return shards


def _write_shard(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def _counted(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'s' if number != 1 else ''}"


def _on_workers(workers: int) -> str:
    return f"on Ray with {_counted(workers, 'worker')}"


def predict_on_ray(model_path: Path, data_path: Path, out: Path, *,
                   batch_size: Optional[int] = None, device: Optional[str] = None,
                   trust: bool = False, label: Optional[str] = None,
                   fields: Optional[str] = None, quiet: bool = True,
                   address: Optional[str] = None, block_rows: Optional[int] = None,
                   ray_init: Optional[dict[str, Any]] = None) -> str:
    """Predict every row of the dataset on Ray and write the folder of shards ``out``;
    return a summary line. ``ray_init`` adds arguments to ``ray.init`` (tests: num_cpus)."""
    ray = import_ray()
    _check_folder_out(out)
    dataset, model, kept, binding = load_predict_inputs(model_path, data_path, fields,
                                                        device=device, trust=trust, label=label)
    schema_metadata = metadata(model, binding, dataset, kept)
    files = model_files(model_path)
    name = Path(model_path).name
    options = worker_options(model_path, LoadOptions(device=device, trust=trust, label=label))
    del model  # the workers load their own
    rows = range(len(dataset))
    table = _input_table(dataset, binding.values(), rows)
    empty = pa.table({ROW_COLUMN: pa.array([], pa.int64())})
    with _runtime(ray, address, ray_init):
        files_ref = ray.put(files)  # held here while the actors may restart
        results, workers = _map_blocks(
            ray, table, _Predictor, (files_ref, name, options, _spec_json(dataset, table),
                                     dataset.name, list(kept), batch_size), block_rows)
        shards = _write_shards(results, out, rows, schema_metadata, empty,
                               ProgressBar(quiet=quiet))
    return f"{out}: {len(rows):,} rows × {len(kept)} outputs in {_counted(shards, 'shard')}, " \
        f"{_on_workers(workers)}"


def explain_on_ray(model_path: Path, data_path: Path, out: Path, method: str, *,
                   steps: Optional[int] = None, rows: Optional[str] = None,
                   target: Optional[str] = None, device: Optional[str] = None,
                   trust: bool = False, quiet: bool = True, address: Optional[str] = None,
                   block_rows: Optional[int] = None,
                   ray_init: Optional[dict[str, Any]] = None) -> str:
    """``litdesk explain`` on Ray: the attributions of the rows (``rows``: a:b, default all)
    written as the folder of shards ``out``, with the columns of the single-process file;
    return a summary line. The method, target and parameters are checked here before anything
    is sent; KernelSHAP's baseline is the whole dataset's, computed here."""
    from litdesk.core.explain import (METHODS, attribution_table, explain_inputs, explain_job,
                                      tabular_baseline)
    from litdesk.core.jobs import run_job
    from litdesk.core.predict import bind_inputs

    ray = import_ray()
    _check_folder_out(out)
    dataset, model, chosen, params = explain_inputs(model_path, data_path, method, steps, rows,
                                                    device=device, trust=trust)
    baseline = tabular_baseline(model, dataset) if method == "kernel_shap" else None
    try:  # no rows: only the checks
        run_job(explain_job(model, dataset, [], method, params, target, baseline=baseline))
    except ValueError as error:
        raise BatchError(str(error)) from error
    empty = attribution_table(model, method, [], [])
    binding, model_name = bind_inputs(model, dataset), model.name
    files, name = model_files(model_path), Path(model_path).name
    del model  # the workers load their own
    table = _input_table(dataset, binding.values(), chosen)
    with _runtime(ray, address, ray_init):
        files_ref = ray.put(files)
        results, workers = _map_blocks(
            ray, table, _Explainer,
            (files_ref, name, worker_options(model_path, LoadOptions(device=device, trust=trust)),
             _spec_json(dataset, table), dataset.name, method, params, target, baseline),
            block_rows)
        shards = _write_shards(results, out, chosen, {}, empty, ProgressBar(quiet=quiet))
    return f"{out}: {METHODS[method].label} of {model_name} for {len(chosen):,} rows in " \
        f"{_counted(shards, 'shard')}, {_on_workers(workers)}"


def project_on_ray(data_path: Path, field: str, method: str, out: Path, *, dims: int = 2,
                   model_path: Optional[Path] = None, options: Optional[LoadOptions] = None,
                   use_cache: bool = True, fit_sample: Optional[int] = None,
                   quiet: bool = True, address: Optional[str] = None,
                   block_rows: Optional[int] = None,
                   ray_init: Optional[dict[str, Any]] = None) -> str:
    """``litdesk project`` on Ray: the projection fitted here on ``fit_sample`` rows drawn at
    random (default :data:`~litdesk.core.projection_batch.FIT_SAMPLE`), every other row placed
    on the workers (PCA: its components; UMAP: its sample neighbours; t-SNE, which places no
    new points, only when the sample is every row), written as the folder of shards ``out``
    with the columns of the single-process file (x, y, z). With ``model_path`` the vectors are
    the model's Embeddings output ``field``, computed on the workers. When the sample holds
    every row the projection is the single-process command's. Returns a summary line."""
    from litdesk.core.batch import load_batch_inputs
    from litdesk.core.cache import ResultCache
    from litdesk.core.predict import bind_inputs
    from litdesk.core.projection import METHODS
    from litdesk.core.projection_batch import (FIT_SAMPLE, column_vectors, coordinates_table,
                                               embeddings_field, fit_sample_rows)

    ray = import_ray()
    _check_folder_out(out)
    if method not in METHODS:
        raise BatchError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if dims not in (2, 3):
        raise BatchError(f"dims must be 2 or 3, not {dims}")
    fit_sample = FIT_SAMPLE if fit_sample is None else fit_sample
    if fit_sample < 1:
        raise BatchError(f"--fit-sample must be 1 or more, not {fit_sample}")
    options = options or LoadOptions()
    dataset, models = load_batch_inputs([model_path] if model_path is not None else [],
                                        data_path, device=options.device, trust=options.trust)
    total = len(dataset)
    sample_rows = fit_sample_rows(total, fit_sample, int(METHODS[method].defaults.get("seed", 0)))
    everything = len(sample_rows) == total
    if method == "tsne" and not everything:
        raise BatchError(f"t-SNE cannot place rows it was not fitted on: with --engine ray "
                         f"give --fit-sample {total} (every row), or use pca or umap")
    files = name = vectors = None
    if models:
        model = models[0]
        embeddings_field(model, field)
        binding = bind_inputs(model, dataset)
        files, name = model_files(model_path), Path(model_path).name
        options = worker_options(model_path, options)
        del model, models  # the workers load their own
        columns: Iterable[str] = binding.values()
    else:
        try:
            vectors = column_vectors(dataset, field)
        except ValueError as error:
            raise BatchError(str(error)) from error
        columns = ()
    cache = ResultCache() if use_cache else None
    # Vectors of every row here already: nothing to send, no runtime to start.
    with nullcontext() if everything and vectors is not None else \
            _runtime(ray, address, ray_init):
        files_ref = ray.put(files) if files is not None else None
        workers = 0
        if vectors is None:  # the sample's vectors from the workers
            table = _input_table(dataset, columns, sample_rows)
            results, workers = _map_blocks(
                ray, table, _Predictor, (files_ref, name, options, _spec_json(dataset, table),
                                         dataset.name, [field], None), block_rows)
            bar = ProgressBar(quiet=quiet)
            try:
                sample = _vectors(_collect(results, sample_rows, bar), field)
            finally:
                bar.close()
        else:
            sample = vectors[sample_rows]
        fitted, placement = _fit_projection(sample, sample_rows, method, dims, everything,
                                            cache, quiet)
        rows = range(total)
        empty = coordinates_table(np.zeros((0, dims), np.float32))
        if placement is None:  # every row fitted: the shards from here
            step = block_rows or 8192
            results = (coordinates_table(fitted[start:start + step]).add_column(
                0, ROW_COLUMN, pa.array(np.arange(start, min(start + step, total))))
                for start in range(0, total, step))
        else:
            if vectors is None:
                table = _input_table(dataset, columns, rows)
                spec_json = _spec_json(dataset, table)
            else:
                table = _vectors_table(vectors)
                spec_json = spec_to_json({VECTORS_COLUMN: Embeddings()})
            results, workers = _map_blocks(
                ray, table, _Placer, (files_ref, name, options, spec_json, dataset.name, field,
                                      None, ray.put(placement)),
                block_rows, gpu=vectors is None)
        shards = _write_shards(results, out, rows, {}, empty, ProgressBar(quiet=quiet),
                               keep_row=False)
    where = _on_workers(workers) if workers else "all here (the sample is every row)"
    return (f"{out}: {total:,} rows, {METHODS[method].label} of {field} in {dims} dimensions "
            f"fitted on {len(sample_rows):,} rows, in {_counted(shards, 'shard')}, {where}")


def _fit_projection(sample: np.ndarray, sample_rows: np.ndarray, method: str, dims: int,
                    everything: bool, cache: Any, quiet: bool) -> tuple[Any, Any]:
    """The projection fitted here on the sample: (its coordinates, None) when the sample is
    every row, else (the coordinates or None, the placement the workers apply to the rest)."""
    from litdesk.core.jobs import run_job
    from litdesk.core.projection import METHODS, ProjectionError, projection_job
    from litdesk.core.projection_batch import fit_pca, fit_umap_placement

    bar = ProgressBar(unit="steps", quiet=quiet)
    try:
        if method == "pca" and not everything:
            return None, fit_pca(sample, dims)
        fitted = run_job(projection_job(sample, method, dims, cache=cache), bar.update)
        if everything:
            return fitted, None
        return fitted, fit_umap_placement(sample, sample_rows, fitted,
                                          dict(METHODS[method].defaults))
    except (ValueError, ProjectionError) as error:
        raise BatchError(str(error)) from error
    finally:
        bar.close()


def _vectors_table(vectors: np.ndarray) -> pa.Table:
    """Every row's vector (a fixed-size float32 list) and its row number."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table({VECTORS_COLUMN: pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
                     ROW_COLUMN: pa.array(np.arange(len(vectors), dtype=np.int64))})
