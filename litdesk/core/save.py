"""File ▸ Save Dataset: a dataset with the datapoints made on it, as CSV, JSON Lines or Parquet.

The provenance columns (``_parent``, ``_origin``, ``_created``) are always written, so a saved
file says which rows were made and from what. The rows go to a temporary file in the
destination's folder, flushed to the disk, given the old file's mode (a new file gets the one
the umask gives), and renamed over the destination at the end: a failed, cancelled or killed
save leaves any old file whole. A temporary file a killed save left behind (its name says
which process wrote it) is removed by the next save into that folder.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import Dataset
from litdesk.core.datapoints import with_provenance
from litdesk.core.jobs import Job, Progress
from litdesk.core.table_query import export_csv

#: Suffix -> the name shown in the save dialog.
SAVE_FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
_BATCH_ROWS = 50_000


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def save_dataset_job(dataset: Dataset, path: Path) -> Job[Path]:
    """Write every row of ``dataset`` to ``path``, its format chosen by the suffix; a link at
    ``path`` stays a link to the file it names, which is replaced.

    Raises ValueError for a suffix that is not one of :data:`SAVE_FORMATS`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(f"cannot save as {suffix or 'a file without a suffix'}; "
                         f"use {', '.join(SAVE_FORMATS)}")
    table = with_provenance(dataset.table)
    n = table.num_rows
    yield Progress(0, n, f"Saving {n:,} rows to {path.name}")
    target = Path(os.path.realpath(path))
    _remove_stale_temporaries(target.parent)
    temporary = _new_temporary(target)
    try:
        if suffix == ".csv":
            export_csv(table, np.arange(n, dtype=np.int64), temporary)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, temporary)
        else:
            with open(temporary, "w", encoding="utf-8") as file:
                for start in range(0, n, _BATCH_ROWS):
                    for row in table.slice(start, _BATCH_ROWS).to_pylist():
                        file.write(json.dumps(row, default=_json_value, ensure_ascii=False))
                        file.write("\n")
                    yield Progress(min(n, start + _BATCH_ROWS), n, f"Saving to {path.name}")
        _fsync(temporary, os.O_RDWR)
        os.replace(temporary, target)
        if os.name != "nt":  # the rename itself, on the disk (Windows cannot open a folder)
            _fsync(target.parent, os.O_RDONLY)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    yield Progress(n, n, f"Saved {path.name}")
    return path


#: ``.<file name>.litdesk-<writer's process id>-<random>.tmp``
_TEMPORARY = re.compile(r"\..+\.litdesk-(\d+)-[0-9a-f]+\.tmp", re.DOTALL)


def _new_temporary(target: Path) -> Path:
    """A new empty file beside ``target`` with the mode ``target`` has, or else the mode the
    umask gives a new file (mkstemp's 0600 would stick to the saved file)."""
    mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
    temporary = target.with_name(
        f".{target.name}.litdesk-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    if mode is not None:
        os.chmod(temporary, mode)
    return temporary


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files in ``folder`` that saves killed before their end left
    (those of a process still running are kept)."""
    for entry in os.scandir(folder):
        match = _TEMPORARY.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) \
                and not _may_be_writing(int(match.group(1))):
            try:
                os.remove(entry.path)
            except OSError:  # gone already, or (on Windows) still open for writing
                pass


def _may_be_writing(pid: int) -> bool:
    """Whether process ``pid`` may still be writing its temporary file. On Windows, where a
    file open for writing cannot be removed, the removal itself decides."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    return True


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
