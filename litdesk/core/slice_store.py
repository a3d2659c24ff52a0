"""Named slices that outlive the session: saved as they change, restored when a dataset reopens.

Each dataset's slices live in one ``.npz`` file under ``data_dir()/slices``, named after the
dataset's source (its file path, else its name). The file also records the source's size,
modification time and row count when the slices were saved; slices saved for another version
of the file are dropped with a message. Row positions are stored as unsigned integers of the
smallest width that fits, so a million-row slice takes 4 MB and loads without parsing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
import numpy as np
from psygnal import Signal

from litdesk.api import Dataset
from litdesk.core import paths
from litdesk.core.session import PartialDataset, Session


@dataclass(frozen=True)
class DatasetIdentity:
    """What a dataset's saved slices are keyed by and checked against."""

    source: str  # the resolved file path, or "name:<dataset name>" for in-memory data
    size: int  # bytes of the file, -1 when not from a file
    mtime_ns: int  # modification time of the file, -1 when not from a file
    num_rows: int

    @classmethod
    def of(cls, dataset: Dataset) -> "DatasetIdentity":
        """The identity of ``dataset``: its file's path, size and time, else its name."""
        if dataset.path is not None:
            path = Path(dataset.path).resolve()
            try:
                stat = path.stat()
            except OSError:
                pass
            else:
                return cls(str(path), stat.st_size, stat.st_mtime_ns, len(dataset))
        return cls(f"name:{dataset.name}", -1, -1, len(dataset))

    def filename(self) -> str:
        """The file, in the slices folder, that holds this source's slices."""
        # fsencode: a file name that is not UTF-8 holds surrogate escapes UTF-8 cannot encode
        return hashlib.sha256(os.fsencode(self.source)).hexdigest()[:32] + ".npz"


def slices_folder() -> Path:
    """Where saved slices live."""
    folder = paths.data_dir() / "slices"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_slices(identity: DatasetIdentity, slices: dict[str, np.ndarray]) -> Path:
    """Write ``slices`` for the dataset ``identity`` names, atomically; return the file."""
    target = slices_folder() / identity.filename()
    if not slices:
        target.unlink(missing_ok=True)
        return target
    dtype = np.uint32 if identity.num_rows <= np.iinfo(np.uint32).max else np.uint64
    arrays = {f"slice_{index}": np.asarray(rows).astype(dtype, copy=False)
              for index, rows in enumerate(slices.values())}
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, names=np.array(list(slices), dtype=str),
                     source=np.array(identity.source),
                     stamp=np.array([identity.size, identity.mtime_ns, identity.num_rows],
                                    dtype=np.int64), **arrays)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load_slices(identity: DatasetIdentity) -> tuple[dict[str, np.ndarray], list[str]]:
    """The slices saved for ``identity`` and a message for each thing that had to be dropped.

    Never raises for a stale, foreign or damaged file: it is reported and ignored.
    """
    path = slices_folder() / identity.filename()
    if not path.exists():
        return {}, []
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = [str(name) for name in stored["names"]]
            source = str(stored["source"])
            size, mtime_ns, num_rows = (int(value) for value in stored["stamp"])
            saved = {name: stored[f"slice_{index}"].astype(np.int64)
                     for index, name in enumerate(names)}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        return {}, [f"Saved slices in {path.name} could not be read ({error}); ignored"]
    if (source, size, mtime_ns, num_rows) != (identity.source, identity.size, identity.mtime_ns,
                                              identity.num_rows):
        listed = ", ".join(names)
        return {}, [f"Dropped {len(names)} saved slice(s) ({listed}): the dataset changed "
                    "since they were saved"]
    slices, messages = {}, []
    for name, rows in saved.items():
        if rows.size and (rows[0] < 0 or rows[-1] >= identity.num_rows
                          or np.any(np.diff(rows) <= 0)):
            messages.append(f"Dropped saved slice {name!r}: its rows do not fit the dataset")
        else:
            slices[name] = rows
    return slices, messages


class SliceStore:
    """Keeps the session's slices on disk: restores a dataset's slices when it becomes active
    for the first time and saves the active dataset's slices whenever they change.

    The session's signals hold the store weakly: keep a reference for as long as it should work.
    """

    #: A saved slice could not be restored or the slices could not be saved (one line).
    message = Signal(str)

    def __init__(self, session: Session) -> None:
        self.session = session
        self._identities: dict[str, DatasetIdentity] = {}  # dataset name -> identity
        self._restoring = False
        session.dataset_changed.connect(self._on_dataset_changed)
        session.slices_changed.connect(self._on_slices_changed)
        session.rows_added.connect(self._on_rows_added)
        self._on_dataset_changed()

    def _on_dataset_changed(self) -> None:
        dataset = self.session.dataset
        if dataset is None or isinstance(dataset, PartialDataset):
            return  # the first rows of a file still loading: its slices wait for the whole
        if dataset.name in self._identities:
            self._count_rows()  # datapoints made here were deleted (the slices follow, saved next)
            return
        made_meanwhile = bool(self.session.slices)  # on its first rows, while it loaded
        identity = DatasetIdentity.of(dataset)
        self._identities[dataset.name] = identity
        slices, messages = load_slices(identity)
        for text in messages:
            self.message.emit(text)
        self._restoring = True
        try:
            for name, rows in slices.items():
                if name not in self.session.slices:
                    self.session.set_slice(name, rows)
        finally:
            self._restoring = False
        if messages or made_meanwhile:  # what is on disk is not all that is kept
            self._on_slices_changed()

    def _on_rows_added(self, _rows: np.ndarray) -> None:
        if self._count_rows():
            self._on_slices_changed()

    def _count_rows(self) -> bool:
        """The datapoints made here come back with the file (from the journal), and so do
        their deletions: count the active dataset's rows as its file's. Whether they changed."""
        dataset = self.session.dataset
        known = self._identities.get(dataset.name) if dataset is not None else None
        if known is None or known.num_rows == len(dataset):
            return False
        self._identities[dataset.name] = replace(known, num_rows=len(dataset))
        return True

    def _on_slices_changed(self) -> None:
        dataset = self.session.dataset
        if self._restoring or dataset is None or dataset.name not in self._identities:
            return
        try:
            save_slices(self._identities[dataset.name], self.session.slices)
        except OSError as error:
            self.message.emit(f"Could not save the slices of {dataset.name}: {error}")
