"""The Dataset contract: an Arrow table plus a spec describing its columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from litdesk.api.types import Spec

#: Up to this many scattered rows of a table in several chunks are read one slice each:
#: Arrow's ``take`` costs time in proportion to the whole table there (14 ms for 64 of a
#: million rows read from a CSV in 84 chunks), a one-row slice does not (0.5 ms for the 64).
SLICED_ROWS = 256


def table_rows(table: pa.Table, positions: "np.ndarray | list[int] | range"
               ) -> list[dict[str, Any]]:
    """The rows of ``table`` at ``positions``, in that order, as dicts."""
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    inside = bool(positions.size) and bool(np.all((positions >= 0)
                                                  & (positions < table.num_rows)))
    if inside and bool(np.all(np.diff(positions) == 1)):  # a run of rows: one slice
        return table.slice(int(positions[0]), positions.size).to_pylist()
    chunked = table.num_columns and table.column(0).num_chunks > 1
    if inside and chunked and positions.size <= SLICED_ROWS:
        return [table.slice(position, 1).to_pylist()[0] for position in positions.tolist()]
    # Built from the buffer: pa.array() would import pandas, seconds on the GUI thread.
    taken = table.take(pa.Array.from_buffers(pa.int64(), len(positions),
                                             [None, pa.py_buffer(positions)]))
    return taken.to_pylist()


class Dataset:
    """Rows of examples held column-wise in a :class:`pyarrow.Table`.

    ``spec()`` (LIT's name) maps each column to a field type. Rows are addressed by their
    position in the table; ``examples(indices)`` materialises only the rows asked for, so a
    million-row dataset never turns into a million dicts.
    """

    def __init__(self, table: pa.Table, spec: Spec, name: str = "dataset",
                 path: Optional[Path] = None) -> None:
        names = set(table.column_names)  # built once: a table can have 20,000 columns
        missing = [key for key in spec if key not in names]
        if missing:
            raise ValueError(f"spec names columns the table lacks: {', '.join(missing)}")
        self.table = table
        self._spec = dict(spec)
        self.name = name
        self.path = path

    def spec(self) -> Spec:
        """Column name -> field type."""
        return dict(self._spec)

    def with_spec(self, spec: Spec) -> "Dataset":
        """The same rows described by another spec (after the user corrects a type)."""
        return Dataset(self.table, spec, self.name, self.path)

    def __len__(self) -> int:
        return self.table.num_rows

    def examples(self, indices: "np.ndarray | list[int] | range") -> list[dict[str, Any]]:
        """The rows at ``indices`` as dicts, in that order."""
        return table_rows(self.table, indices)

    def example(self, index: int) -> dict[str, Any]:
        """One row as a dict."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} of {len(self):,}")
        return self.table.slice(index % len(self), 1).to_pylist()[0]
