"""Turning Python objects handed to ``litdesk.show`` into litdesk models and datasets."""

from __future__ import annotations

import fnmatch
from typing import Any, Optional

from litdesk.api import Dataset, Model
from litdesk.core.plugins import Contribution, PluginRegistry, discover_plugins


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
    adapter = find_model_adapter(obj)
    if adapter is not None:
        try:
            return adapter.load_callable()(obj, name)
        except (TypeError, ValueError) as error:
            raise TypeError(f"model {name!r}: {error}") from error
    raise TypeError(f"model {name!r}: a {type(obj).__name__} is neither a litdesk nor a LIT "
                    "model, nor an object an installed plugin adapts (a scikit-learn estimator)")


def find_model_adapter(obj: Any, registry: Optional[PluginRegistry] = None
                       ) -> Optional[Contribution]:
    """The declared model adapter whose patterns match the qualified name of ``obj``'s class
    or of one of its base classes (``sklearn.pipeline.Pipeline``), or None."""
    names = [f"{cls.__module__}.{cls.__qualname__}" for cls in type(obj).__mro__]
    adapters = (registry or discover_plugins()).contributions.get("model_adapters", [])
    return next((adapter for adapter in adapters
                 if any(fnmatch.fnmatchcase(qualified, pattern) for qualified in names
                        for pattern in adapter.patterns)), None)
