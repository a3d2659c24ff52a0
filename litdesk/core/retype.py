"""Correcting a column's inferred field type."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from litdesk.api import types


def retype_column(column: pa.ChunkedArray, name: str, field_type: type) -> types.FieldType:
    """The field type ``field_type`` for ``column``, with its vocab or range filled in.

    Raises ValueError when the column's values cannot have that type.
    """
    if field_type is types.CategoryLabel:
        values = pc.unique(column.cast(pa.string())).drop_null().to_pylist()
        if len(values) > 10_000:
            raise ValueError(f"{name} has {len(values):,} distinct values: too many for a category")
        return types.CategoryLabel(vocab=tuple(sorted(values)))
    if field_type is types.Scalar:
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise ValueError(f"{name} holds {column.type} values, not numbers")
        bounds = pc.min_max(column)
        return types.Scalar(min_val=bounds["min"].as_py(), max_val=bounds["max"].as_py())
    if field_type is types.Boolean and not pa.types.is_boolean(column.type):
        raise ValueError(f"{name} holds {column.type} values, not true/false")
    return field_type()
