"""Checking a folder's config against its weights before a byte of the model is allocated.

``from_pretrained`` sizes the model by ``config.json`` and notices missing or mismatching
weights only once it has allocated (and randomly initialised) what the config says: a
vocabulary of 3·10^7 took 7.8 GB, 100,000 layers ran minutes into a MemoryError. So
:func:`check_weights_fit` reads the shape of every tensor from the safetensors headers (JSON at
the start of each file; no tensor is read), builds the model on torch's meta device (shapes,
no memory) and compares. Building on the meta device still costs time per module, so the build
stops as soon as it has registered far more parameters than the files hold tensors.

Weights are read only from safetensors files: ``pytorch_model.bin`` is a pickle, and litdesk
never unpickles a model's files.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from litdesk.api import ModelLoadError, read_json_document

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
#: Weights in a pickle, which litdesk refuses to unpickle.
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: How many parameters the model may register per tensor in the files (plus a few) before its
#: build stops: tied weights are registered once per name, and a checkpoint may store fused
#: tensors that the model splits (q, k and v from one qkv tensor).
_PARAMETERS_PER_TENSOR = 4
_SPARE_PARAMETERS = 64


class _TooManyParameters(Exception):
    """Raised inside the meta build once the model outgrows its weights."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (its type when there is none)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors files: ``model.safetensors``, else the shards its index names.

    Raises :class:`ModelLoadError` for pickled weights only, no weights, or an index naming
    anything but files in the folder.
    """
    if (folder / SAFETENSORS).is_file():
        return [folder / SAFETENSORS]
    if not (folder / SAFETENSORS_INDEX).is_file():
        if any((folder / name).is_file() for name in PICKLED_WEIGHTS):
            raise ModelLoadError(f"{folder}: the weights are in pytorch_model.bin, a pickle, which "
                                 "litdesk does not unpickle; save them as safetensors "
                                 "(model.save_pretrained(folder), the default since "
                                 "transformers 4.35)")
        raise ModelLoadError(f"{folder}: no weights ({SAFETENSORS} or {SAFETENSORS_INDEX})")
    index = read_json_document(folder / SAFETENSORS_INDEX)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
            isinstance(name, str) and Path(name).name == name and not name.startswith(".")
            for name in weight_map.values()):
        raise ModelLoadError(f"{folder}: {SAFETENSORS_INDEX} should map tensor names to file "
                             "names in the same folder ('weight_map')")
    return [folder / name for name in sorted(set(weight_map.values()))]


def read_shapes(folder: Path, files: list[Path]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and the name of the file holding it, from the files' headers."""
    from safetensors import safe_open

    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as weights:
                for name in weights.keys():
                    shapes[name] = (tuple(weights.get_slice(name).get_shape()), file.name)
        except Exception as error:  # safetensors raises its own error types, OSError, ...
            raise ModelLoadError(f"{folder}: {file.name} is not a safetensors file "
                                 f"({first_line(error)})") from error
    return shapes


@contextlib.contextmanager
def _parameter_budget(limit: int) -> Iterator[None]:
    """Raise :class:`_TooManyParameters` once this thread has registered ``limit`` parameters."""
    import torch

    thread, registered = threading.get_ident(), 0

    def count(_module: Any, _name: str, parameter: Any) -> None:
        nonlocal registered
        if parameter is not None and threading.get_ident() == thread:
            registered += 1
            if registered > limit:
                raise _TooManyParameters

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(count)
    try:
        yield
    finally:
        handle.remove()


def _conversions(network: Any) -> tuple[list, list, Callable[..., tuple[str, Any]]] | None:
    """transformers' renamings and converters of checkpoint names for ``network``, and its
    function applying them; None before transformers 5, which renames nothing."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import (
            WeightConverter,
            WeightRenaming,
            rename_source_key,
        )
    except ImportError:
        return None
    mapping = get_model_conversion_mapping(network)
    return ([entry for entry in mapping if isinstance(entry, WeightRenaming)],
            [entry for entry in mapping if isinstance(entry, WeightConverter)], rename_source_key)


def _key_renamer(network: Any, expected: dict) -> Callable[[str], tuple[str, bool]]:
    """checkpoint name -> (the model's name for it, whether a converter reshapes it), renamed
    as ``from_pretrained`` renames (legacy names, the base model's prefix added or dropped)."""
    prefix = network.base_model_prefix
    conversions = _conversions(network)
    if conversions is None:
        def rename_with_prefix(name: str) -> tuple[str, bool]:
            if name not in expected and prefix:
                if name.startswith(f"{prefix}.") and name[len(prefix) + 1:] in expected:
                    return name[len(prefix) + 1:], False
                if f"{prefix}.{name}" in expected:
                    return f"{prefix}.{name}", False
            return name, False
        return rename_with_prefix
    renamings, converters, rename_source_key = conversions

    def rename(name: str) -> tuple[str, bool]:
        renamed, pattern = rename_source_key(name, renamings, converters, prefix, expected)
        if renamed not in expected and name in expected:  # as from_pretrained: keep the name
            renamed, pattern = rename_source_key(name, [], [], prefix, expected)
        return renamed, pattern is not None

    return rename


def _converted_keys(network: Any, expected: dict) -> set[str]:
    """The model's tensors that a converter builds from differently named checkpoint tensors."""
    conversions = _conversions(network)
    if conversions is None or not conversions[1]:
        return set()
    _, converters, rename_source_key = conversions
    return {key for key in expected
            if rename_source_key(key, [], converters, reverse=True)[1] is not None}


def check_weights_fit(folder: Path, auto_class: Any, config: Any, description: str) -> None:
    """Raise :class:`ModelLoadError` unless the folder's safetensors hold every tensor of the
    model ``config`` describes, each of the shape the model has, without allocating it.

    ``auto_class`` is the transformers auto class (``AutoModelForSequenceClassification``…),
    ``description`` the kind of model, for the message.
    """
    import torch

    shapes = read_shapes(folder, weight_files(folder))
    limit = _PARAMETERS_PER_TENSOR * len(shapes) + _SPARE_PARAMETERS
    try:
        with _parameter_budget(limit), torch.device("meta"):
            network = auto_class.from_config(config)
    except _TooManyParameters:
        raise ModelLoadError(f"{folder}: config.json describes a model far larger than its "
                             f"weights: building it passed {limit} parameter tensors, and the "
                             f"weights hold {len(shapes)}") from None
    except Exception as error:  # a config transformers cannot build a model from
        raise ModelLoadError(f"{folder}: {first_line(error)}") from error
    expected = network.state_dict(keep_vars=True)
    rename = _key_renamer(network, expected)
    found: set[str] = set()
    for name, (shape, file) in shapes.items():
        key, converted = rename(name)
        if key not in expected:
            continue  # a tensor the model does not use: from_pretrained ignores it too
        wanted = tuple(expected[key].shape)
        if not converted and shape != wanted:
            raise ModelLoadError(f"{folder}: {file} holds {name} of shape {list(shape)}, but "
                                 f"config.json makes it {list(wanted)}")
        found.add(key)
    # Tied weights share one tensor under several names; one of the names is enough.
    present = {id(expected[key]) for key in found}
    buffers = {name for name, _ in network.named_buffers()}  # computed from the config
    ignored = [re.compile(pattern) for pattern in network._keys_to_ignore_on_load_missing or ()]
    missing = [key for key in expected
               if key not in found and id(expected[key]) not in present and key not in buffers
               and not any(pattern.search(key) for pattern in ignored)]
    missing = sorted(set(missing) - _converted_keys(network, expected))
    if missing:
        raise ModelLoadError(f"{folder}: the weights lack {len(missing)} tensor(s) of a "
                             f"{description}, e.g. {missing[0]} of shape "
                             f"{list(expected[missing[0]].shape)}")
