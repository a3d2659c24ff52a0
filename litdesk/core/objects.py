"""Turning Python objects handed to ``litdesk.show`` into litdesk models and datasets."""

from __future__ import annotations

from typing import Any

from litdesk.api import Dataset, Model


def as_dataset(obj: Any, name: str) -> Dataset:
    """A litdesk Dataset from a Dataset, a pandas DataFrame, a pyarrow Table or a LIT dataset."""
    if isinstance(obj, Dataset):
        if obj.name == "dataset":
            obj.name = name
        return obj
    import pyarrow as pa

    from litdesk.core.loaders import conform_table, infer_spec

    if isinstance(obj, pa.Table):
        table = obj
    elif type(obj).__module__.startswith("pandas") and hasattr(obj, "columns"):
        table = pa.Table.from_pandas(obj, preserve_index=False)
    else:
        from litdesk.core.lit_bridge import dataset_from_lit, is_lit_dataset

        if is_lit_dataset(obj):
            return dataset_from_lit(obj, name)
        raise TypeError(f"dataset {name!r}: a {type(obj).__name__} is not a litdesk or LIT "
                        "dataset, a pandas DataFrame or a pyarrow Table")
    spec = infer_spec(table)
    return Dataset(conform_table(table, spec), spec, name)


def as_model(obj: Any, name: str) -> Model:
    """A litdesk Model from a Model or a LIT model."""
    if isinstance(obj, Model):
        obj.name = name
        return obj
    from litdesk.core.lit_bridge import adapt, is_lit_model

    if is_lit_model(obj):
        return adapt(obj, name)
    raise TypeError(f"model {name!r}: a {type(obj).__name__} is neither a litdesk nor a LIT model")
