"""Categories: the one way litdesk encodes a categorical column as integer codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING = -1


@dataclass(frozen=True)
class Categories:
    """A categorical field: ``codes[row]`` indexes ``labels``; :data:`MISSING` (-1) marks a
    missing value or, with ``closed`` labels, a value outside them."""

    codes: np.ndarray
    labels: tuple[str, ...]


def encode_categories(values: "pa.ChunkedArray | pa.Array | Sequence",
                      labels: Optional[Sequence[str]] = None, closed: bool = False
                      ) -> Categories:
    """Encode values as categories, compared as text.

    The labels are ``labels`` first (in their order), then the other values sorted; with
    ``closed`` only ``labels``, and values outside them are :data:`MISSING`. Nulls are
    :data:`MISSING`. Vectorised in Arrow: a million rows take milliseconds.
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    known = [str(label) for label in labels or ()]
    if not closed:
        present = pc.unique(values.drop_null()).to_pylist()
        known += sorted(set(present) - set(known))
    codes = pc.index_in(values, value_set=pa.array(known, pa.string()))
    return Categories(np.asarray(codes.fill_null(MISSING).to_numpy(zero_copy_only=False),
                                 dtype=np.int64), tuple(known))
