"""``litdesk predict --engine ray``: the same job on a Ray cluster, with Ray Data.

The desk loads the dataset (litdesk's loaders decide its spec and binding, as for the
single-process command) and hands Ray the columns the model reads, with their row numbers,
in blocks of contiguous rows. The model's files are put once in Ray's object store; each
worker (a Ray Data actor: one per GPU when the cluster has GPUs, else one per CPU up to the
blocks there are) writes them to a temporary folder and loads them through the same plugins,
once. Each block is predicted by :func:`~litdesk.core.batch.predict_block` (batches of similar
length) and comes back as an Arrow table; the desk writes it as the shard
``part-<first row>.parquet``, so that reading the folder with pyarrow gives the rows in the
dataset's order, with the same columns and metadata as the single-process file. Ray retries a
block whose worker died (its actor is restarted), so the output is still complete; the folder
appears at ``--out`` only when every row is there.

Without ``--address`` a local Ray runtime is started for the command and stopped after it.
Ray is imported here only, when the command runs.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api import Dataset, LoadOptions
from litdesk.api.types import spec_from_json, spec_to_json
from litdesk.core.batch import BatchError, ProgressBar, load_predict_inputs, predict_block
from litdesk.core.results import ROW_COLUMN, metadata

INSTALL_HINT = "Ray is not installed; install it with: pip install 'litdesk[distributed]'"
#: The largest model folder shipped to the workers through the object store.
MAX_SHIPPED_BYTES = 20 * 2**30


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


class _Predictor:
    """A Ray Data actor: the model loaded once from its shipped files, predicting blocks."""

    def __init__(self, files_ref: Any, name: str, options: LoadOptions, spec_json: str,
                 dataset_name: str, fields: list[str], batch_size: Optional[int]) -> None:
        import ray

        from litdesk.core.model_loading import load_model

        files = ray.get(files_ref) if isinstance(files_ref, ray.ObjectRef) else files_ref
        self._folder = tempfile.mkdtemp(prefix="litdesk-model-")
        for relative, data in files.items():
            target = Path(self._folder, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.model = load_model(Path(self._folder, name), options)
        self.spec = spec_from_json(spec_json)
        self.dataset_name = dataset_name
        output_spec = self.model.output_spec()
        self.fields = {field: output_spec[field] for field in fields}
        self.batch_size = batch_size or self.model.max_minibatch_size()

    def __call__(self, block: pa.Table) -> pa.Table:
        rows = block.column(ROW_COLUMN).to_numpy()
        inputs = block.drop_columns([ROW_COLUMN])
        dataset = Dataset(inputs, {name: self.spec[name] for name in inputs.column_names},
                          self.dataset_name)
        return predict_block(self.model, dataset, self.fields, self.batch_size, rows)


def _quiet_ray_logs(ray: Any) -> None:
    """Keep Ray's own progress and info lines off stderr: the command draws its bar."""
    import logging

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _workers(ray: Any, blocks: int) -> tuple[int, float]:
    """How many actors to start, and the GPUs each takes (one per GPU when there are GPUs)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return max(1, min(gpus, blocks)), 1.0
    return max(1, min(int(resources.get("CPU", 1)), blocks)), 0.0


def predict_on_ray(model_path: Path, data_path: Path, out: Path, *,
                   batch_size: Optional[int] = None, device: Optional[str] = None,
                   trust: bool = False, label: Optional[str] = None,
                   fields: Optional[str] = None, quiet: bool = True,
                   address: Optional[str] = None, block_rows: Optional[int] = None,
                   ray_init: Optional[dict[str, Any]] = None) -> str:
    """Predict every row of the dataset on Ray and write the folder of shards ``out``;
    return a summary line. ``ray_init`` adds arguments to ``ray.init`` (tests: num_cpus)."""
    ray = import_ray()
    if out.suffix.lower() == ".parquet" or (out.exists() and not out.is_dir()):
        raise BatchError(f"{out}: with --engine ray the output is a folder of Parquet shards")
    if out.is_dir() and any(out.iterdir()):
        raise BatchError(f"{out}: the folder is not empty")
    dataset, model, kept, binding = load_predict_inputs(model_path, data_path, fields,
                                                        device=device, trust=trust, label=label)
    schema_metadata = metadata(model, binding, dataset, kept)
    files = model_files(model_path)
    name = Path(model_path).name
    options = LoadOptions(device=device, trust=trust, label=label)
    del model  # the workers load their own
    columns = sorted(set(binding.values()))
    table = dataset.table.select(columns).append_column(
        ROW_COLUMN, pa.array(np.arange(len(dataset), dtype=np.int64)))
    _quiet_ray_logs(ray)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **(ray_init or {}))
    try:
        return _run(ray, table, dataset, out, files, name, options, kept, schema_metadata,
                    batch_size, block_rows, quiet)
    finally:
        if started:
            ray.shutdown()


def _run(ray: Any, table: pa.Table, dataset: Dataset, out: Path, files: dict[str, bytes],
         name: str, options: LoadOptions, kept: dict[str, Any],
         schema_metadata: dict[bytes, bytes], batch_size: Optional[int],
         block_rows: Optional[int], quiet: bool) -> str:
    total = len(dataset)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    rows_per_block = block_rows or max(1, min(8192, math.ceil(total / max(1, 4 * cpus))))
    blocks = [table.slice(start, rows_per_block) for start in range(0, total, rows_per_block)]
    workers, gpus = _workers(ray, len(blocks))
    spec = {column: dataset.spec()[column] for column in table.column_names
            if column != ROW_COLUMN}
    ray_data = ray.data.from_arrow(blocks) if blocks else None
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    bar = ProgressBar(quiet=quiet)
    done, seen = 0, np.zeros(total, dtype=bool)
    schema: Optional[pa.Schema] = None
    try:
        if ray_data is not None:
            files_ref = ray.put(files)  # held here while the actors may restart
            results = ray_data.map_batches(
                _Predictor, batch_size=None, batch_format="pyarrow", zero_copy_batch=True,
                fn_constructor_args=(files_ref, name, options, spec_to_json(spec),
                                     dataset.name, list(kept), batch_size),
                compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=gpus or None)
            for result in results.iter_batches(batch_size=None, batch_format="pyarrow"):
                rows = result.column(ROW_COLUMN).to_numpy()
                if not len(rows):
                    continue
                if seen[rows].any():
                    raise BatchError(f"Ray returned rows {rows[0]}… twice")
                seen[rows] = True
                if schema is None:  # one schema for every shard, as one file has
                    schema = result.schema.with_metadata(schema_metadata)
                shard = result.cast(schema)
                _write_shard(shard, partial / f"part-{rows[0]:012d}.parquet")
                done += len(rows)
                bar.show(done, total)
        if not seen.all():
            missing = int(np.flatnonzero(~seen)[0])
            raise BatchError(f"Ray returned {done:,} of {total:,} rows (row {missing} missing)")
        if not blocks:
            _write_shard(pa.table({ROW_COLUMN: pa.array([], pa.int64())})
                         .replace_schema_metadata(schema_metadata),
                         partial / "part-000000000000.parquet")
        if out.is_dir():
            out.rmdir()  # empty: checked before
        os.replace(partial, out)
    finally:
        bar.close()
        shutil.rmtree(partial, ignore_errors=True)
    return f"{out}: {total:,} rows × {len(kept)} outputs in {len(list(out.glob('*.parquet')))} " \
        f"shards, on Ray with {workers} worker{'s' if workers != 1 else ''}"


def _write_shard(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)
