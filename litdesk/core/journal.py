"""The journal: every datapoint the user makes, on disk the moment it is made.

One append-only JSON Lines file per dataset file under ``data_dir()/journals``. The first line
says which file (path, size, modification time, rows) the datapoints belong to; each further
line is one datapoint, or a value fixed in an existing row (an accepted label), written and
flushed to the disk (fsync) before the app goes on, so a crash or a kill at any moment loses
nothing that was made. A line cut short by a kill in the
middle of a write is skipped on reading. A journal kept for an older version of the file is
set aside (renamed, never deleted) and the user is told where it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Optional

from litdesk.api import Dataset
from litdesk.core import paths
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.loaders import display_name

FORMAT = 1
#: The key of a journal line that deletes datapoints made earlier (their rows at that moment).
DELETE = "delete"
#: The key of a journal line that fixes a value in an existing row instead of adding one.
FIX = "fix"


@dataclass(frozen=True)
class ValueFix:
    """A value the user set in a row that already exists (accepting a suggested label)."""

    row: int
    column: str
    value: Any
    created: str

    @classmethod
    def now(cls, row: int, column: str, value: Any) -> "ValueFix":
        """A fix made at this moment."""
        return cls(int(row), column, value,
                   datetime.now(timezone.utc).isoformat(timespec="seconds"))


def journals_folder() -> Path:
    """Where journals live."""
    folder = paths.data_dir() / "journals"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _decode(value: dict[str, Any]) -> Any:
    if value.keys() == {"$bytes"}:
        return base64.b64decode(value["$bytes"])
    if value.keys() == {"$datetime"}:
        return datetime.fromisoformat(value["$datetime"])
    if value.keys() == {"$date"}:
        return date.fromisoformat(value["$date"])
    return value


class Journal:
    """The datapoints made on one dataset file, in the order they were made."""

    def __init__(self, dataset: Dataset) -> None:
        """The journal of ``dataset`` as loaded from its file (before any datapoint is added).

        Raises ValueError for a dataset that does not come from a file."""
        if dataset.path is None:
            raise ValueError(f"dataset {dataset.name} has no file to keep a journal for")
        source = Path(dataset.path).resolve()
        stat = source.stat()
        self.header = {"litdesk_journal": FORMAT, "source": str(source), "size": stat.st_size,
                       "mtime_ns": stat.st_mtime_ns, "rows": len(dataset)}
        # The path's bytes as the file system has them: a name that is not UTF-8 is held as
        # surrogate escapes, which UTF-8 cannot encode.
        digest = hashlib.sha256(os.fsencode(source)).hexdigest()[:32]
        self.path = journals_folder() / f"{digest}.jsonl"

    def _records(self) -> tuple[list[tuple[int, Any]], list[str]]:
        """(line number, record or None when the line is torn) after a matching header."""
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return [], []
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if header != self.header:
            return [], [self._set_aside()]
        records = []
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line, object_hook=_decode)))
            except ValueError:
                records.append((number, None))
        return records, []

    def read(self) -> tuple[list[NewDatapoint], list[str]]:
        """The datapoints kept, and messages for the user (a torn line, a set-aside journal)."""
        records, messages = self._records()
        points = []
        for number, record in records:
            if isinstance(record, dict) and isinstance(record.get(DELETE), list):
                points = _without(points, record[DELETE], int(self.header["rows"]))
                continue
            if isinstance(record, dict) and FIX in record:
                continue  # a value fixed in a row (see read_fixes)
            try:
                points.append(NewDatapoint(record["values"], record["parent"], record["origin"],
                                           record["created"]))
            except (KeyError, TypeError):
                messages.append(f"Skipped line {number} of the journal {self.path} "
                                "(cut short, probably by a crash while it was written)")
        return points, messages

    def read_fixes(self) -> list[ValueFix]:
        """The values the user fixed in existing rows (labels), in the order they were made,
        each at its row's position once the datapoints deleted after it are gone (a fix of a
        deleted datapoint goes with it); read after :meth:`read`, which reports torn lines."""
        records, _ = self._records()
        fixes: list[ValueFix] = []
        for _, record in records:
            if isinstance(record, dict) and isinstance(record.get(DELETE), list):
                fixes = _fixes_after_deletion(fixes, record[DELETE])
            elif isinstance(record, dict) and isinstance(record.get(FIX), dict):
                fix = record[FIX]
                try:
                    fixes.append(ValueFix(int(fix["row"]), str(fix["column"]), fix["value"],
                                          str(fix.get("created", ""))))
                except (KeyError, TypeError, ValueError):
                    continue
        return fixes

    def append_fixes(self, fixes: list[ValueFix]) -> None:
        """Write values fixed in existing rows and wait until the disk has them."""
        self._append_lines([json.dumps({FIX: {"row": fix.row, "column": fix.column,
                                              "value": fix.value, "created": fix.created}},
                                       default=_encode, ensure_ascii=False) for fix in fixes])

    def append_deletion(self, rows: list[int]) -> None:
        """Write that the datapoints made here at ``rows`` (positions now) were deleted, and
        wait until the disk has it: reopening the file does not bring them back."""
        self._append_lines([json.dumps({DELETE: sorted(int(row) for row in rows)})])

    def append(self, points: list[NewDatapoint]) -> None:
        """Write ``points`` and wait until the disk has them."""
        self._append_lines([json.dumps({"values": point.values, "parent": point.parent,
                                        "origin": point.origin, "created": point.created},
                                       default=_encode, ensure_ascii=False)
                            for point in points])

    def _append_lines(self, lines: list[str]) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "ab") as file:
            if new:
                file.write(json.dumps(self.header).encode("utf-8") + b"\n")
            elif not self._ends_with_newline():
                file.write(b"\n")  # after a torn last line, start a fresh one
            file.write("".join(line + "\n" for line in lines).encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"

    def _set_aside(self) -> str:
        kept = self.path.with_name(f"{self.path.stem}-{self.path.stat().st_mtime_ns}.jsonl")
        os.replace(self.path, kept)
        return (f"{display_name(Path(self.header['source']).name)} changed since datapoints "
                f"were made on it; they are kept in {kept}")


def _deleted_rows(rows: list) -> list[int]:
    """The rows a deletion line names, sorted (anything but an int is ignored)."""
    return sorted({int(row) for row in rows if isinstance(row, int)})


def _follow(row: int, gone: list[int]) -> Optional[int]:
    """Where ``row`` is once the rows ``gone`` (sorted) are deleted and later rows move up:
    None when it is one of them."""
    index = bisect_left(gone, row)
    return None if index < len(gone) and gone[index] == row else row - index


def _without(points: list[NewDatapoint], rows: list, base: int) -> list[NewDatapoint]:
    """``points`` (made after the file's ``base`` rows, in order) without those at ``rows``;
    the parents of the others follow the rows that move up (a deleted parent becomes None)."""
    gone = _deleted_rows(rows)
    doomed = {row - base for row in gone}

    def parent(value: Optional[int]) -> Optional[int]:
        return value if value is None or value < base else _follow(value, gone)

    return [NewDatapoint(point.values, parent(point.parent), point.origin, point.created)
            for i, point in enumerate(points) if i not in doomed]


def _fixes_after_deletion(fixes: list[ValueFix], rows: list) -> list[ValueFix]:
    """``fixes`` made before the datapoints at ``rows`` were deleted, at their rows' new
    positions; those of deleted rows are dropped."""
    gone = _deleted_rows(rows)
    followed = []
    for fix in fixes:
        row = _follow(fix.row, gone)
        if row is not None:
            followed.append(replace(fix, row=row))
    return followed


def journal_for(dataset: Dataset) -> Optional[Journal]:
    """The journal of a dataset loaded from a file, else None."""
    try:
        return Journal(dataset)
    except (ValueError, OSError):
        return None
