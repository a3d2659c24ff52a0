"""The LIT bridge: models and datasets written for LIT (lit-nlp 1.3.1) used as litdesk's.

Nothing here imports ``lit_nlp``. LIT objects are recognised by the modules their classes
come from and LIT field types by class name, so without lit-nlp installed the bridge is
simply never used. Where the two vocabularies agree on a type but not on its values, the
bridge translates: LIT passes images as base64 ``data:`` URLs where litdesk passes the
encoded bytes, and LIT models may return tensors as lists where litdesk expects arrays.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from litdesk.api import (
    AttentionHeads,
    Boolean,
    CategoryLabel,
    Dataset,
    Embeddings,
    FeatureSalience,
    FieldType,
    GeneratedText,
    ImageBytes,
    Model,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    Spec,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
    TokenSalience,
    TokenTopKPreds,
)
from litdesk.core.loaders import conform_table

_LIT_TYPES_MODULE = "lit_nlp.api.types"

#: LIT type class name -> the litdesk field type it becomes. A LIT type not named here maps
#: through its nearest named base class (URL, SearchQuery -> TextSegment; Integer -> Scalar;
#: PNGBytes -> ImageBytes); one without such a base is left out of the spec.
LIT_TYPE_EQUIVALENTS: dict[str, type[FieldType]] = {
    "TextSegment": TextSegment,
    "StringLitType": TextSegment,
    "CategoryLabel": CategoryLabel,
    "Scalar": Scalar,
    "BooleanLitType": Boolean,
    "ImageBytes": ImageBytes,
    "MulticlassPreds": MulticlassPreds,
    "RegressionScore": RegressionScore,
    "Embeddings": Embeddings,
    "Tokens": Tokens,
    "TokenGradients": TokenGradients,
    "TokenEmbeddings": TokenEmbeddings,
    "AttentionHeads": AttentionHeads,
    "TokenTopKPreds": TokenTopKPreds,
    "GeneratedText": GeneratedText,
    "TokenSalience": TokenSalience,
    "FeatureSalience": FeatureSalience,
}

#: Output types whose values litdesk expects as float32 arrays.
_FLOAT_ARRAY_TYPES = (MulticlassPreds, Embeddings, TokenGradients, TokenEmbeddings,
                      AttentionHeads)

#: Bookkeeping fields LIT adds to examples (ids and metadata of edited datapoints).
_LIT_INTERNAL_FIELDS = ("_id", "_meta")


def _has_lit_base(obj: Any, module: str, name: str) -> bool:
    return any(cls.__module__ == module and cls.__name__ == name for cls in type(obj).__mro__)


def is_lit_model(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a LIT model (``lit_nlp.api.model.Model``)."""
    return _has_lit_base(obj, "lit_nlp.api.model", "Model")


def is_lit_dataset(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a LIT dataset (``lit_nlp.api.dataset.Dataset``)."""
    return _has_lit_base(obj, "lit_nlp.api.dataset", "Dataset")


class MappedSpec(dict):
    """A litdesk spec made from a LIT spec.

    ``dropped`` maps each LIT field litdesk has no type for to its LIT type name, so that
    the UI can say which fields it cannot show. (``dict(mapped)`` keeps only the spec.)
    """

    def __init__(self, spec: Spec, dropped: dict[str, str]) -> None:
        super().__init__(spec)
        self.dropped = dropped


def spec_from_lit(lit_spec: Mapping[str, Any]) -> MappedSpec:
    """litdesk field types for a LIT spec (field name -> LIT type instance).

    Each LIT type maps by class name as :data:`LIT_TYPE_EQUIVALENTS` says, copying the
    attributes the litdesk type has (``required``, ``vocab``, ``parent``, ``align``…).
    """
    spec: Spec = {}
    dropped: dict[str, str] = {}
    for name, lit_type in lit_spec.items():
        field_type = _field_type_from_lit(lit_type)
        if field_type is None:
            dropped[name] = type(lit_type).__name__
        else:
            spec[name] = field_type
    return MappedSpec(spec, dropped)


def _field_type_from_lit(lit_type: Any) -> Optional[FieldType]:
    for cls in type(lit_type).__mro__:
        if cls.__module__ == _LIT_TYPES_MODULE and cls.__name__ in LIT_TYPE_EQUIVALENTS:
            target = LIT_TYPE_EQUIVALENTS[cls.__name__]
            shared = {field.name: _hashable(getattr(lit_type, field.name))
                      for field in dataclasses.fields(target) if hasattr(lit_type, field.name)}
            return target(**shared)
    return None


def _hashable(value: Any) -> Any:
    """Lists (LIT's vocabularies) as tuples, since litdesk's field types are frozen."""
    return tuple(value) if isinstance(value, list) else value


class LitModelAdapter(Model):
    """A LIT model used as a litdesk :class:`~litdesk.api.Model`.

    Specs come from :func:`spec_from_lit`; the fields left out are listed in
    ``dropped_inputs`` and ``dropped_outputs`` (field -> LIT type name). ``predict`` gives
    LIT the batch as a list and returns LIT's iterable of outputs as a list, each output
    unchanged except: classes, embeddings, gradients and attention become float32 arrays,
    and images travel to LIT as ``data:`` URLs and come back as bytes.
    """

    def __init__(self, lit_model: Any, name: Optional[str] = None) -> None:
        self.lit_model = lit_model
        self.name = name or type(lit_model).__name__
        self._input_spec = spec_from_lit(lit_model.input_spec())
        self._output_spec = spec_from_lit(lit_model.output_spec())
        self.dropped_inputs = self._input_spec.dropped
        self.dropped_outputs = self._output_spec.dropped
        self._image_inputs = _fields_of_type(self._input_spec, ImageBytes)
        self._image_outputs = _fields_of_type(self._output_spec, ImageBytes)
        self._float_array_outputs = _fields_of_type(self._output_spec, _FLOAT_ARRAY_TYPES)

    def input_spec(self) -> Spec:
        """The LIT model's input spec in litdesk's types."""
        return dict(self._input_spec)

    def output_spec(self) -> Spec:
        """The LIT model's output spec in litdesk's types."""
        return dict(self._output_spec)

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the LIT model on one batch."""
        lit_inputs = [{name: _data_url(value) if name in self._image_inputs else value
                       for name, value in example.items()} for example in inputs]
        return [self._litdesk_output(output) for output in self.lit_model.predict(lit_inputs)]

    def _litdesk_output(self, lit_output: Mapping[str, Any]) -> dict[str, Any]:
        output = dict(lit_output)
        for name, value in output.items():
            if value is None:
                continue
            if name in self._float_array_outputs:
                output[name] = np.asarray(value, dtype=np.float32)
            elif name in self._image_outputs:
                output[name] = _image_bytes(value)
        return output

    def max_minibatch_size(self) -> int:
        """The LIT model's ``max_minibatch_size()`` where it has one (LIT's batched models)."""
        lit_size = getattr(self.lit_model, "max_minibatch_size", None)
        return int(lit_size()) if callable(lit_size) else super().max_minibatch_size()

    def fingerprint(self) -> str:
        """The LIT model's class, the name given and a hash of its ``description()``.

        LIT models expose no hash of their weights, so two instances of one class with the
        same name and description share cached results: give differently trained
        instances different names.
        """
        cls = type(self.lit_model)
        describe = getattr(self.lit_model, "description", None)
        description = describe() if callable(describe) else ""
        digest = hashlib.sha256(description.encode()).hexdigest()[:16]
        return f"lit:{cls.__module__}.{cls.__qualname__}:{self.name}:{digest}"


def _fields_of_type(spec: Spec, field_types: Union[type, tuple[type, ...]]) -> frozenset[str]:
    return frozenset(name for name, field_type in spec.items()
                     if isinstance(field_type, field_types))


class DatasetFromLit(Dataset):
    """A :class:`~litdesk.api.Dataset` copied from a LIT dataset by :func:`dataset_from_lit`.

    ``dropped`` maps each LIT field left out of the spec to its LIT type name: types litdesk
    lacks, and fields whose values Arrow cannot hold as one column type (those stay in the
    table as JSON text). :meth:`with_spec` returns a plain Dataset.
    """

    def __init__(self, table: pa.Table, spec: Spec, name: str, dropped: dict[str, str]) -> None:
        super().__init__(table, spec, name)
        self.dropped = dropped


def dataset_from_lit(lit_dataset: Any, name: Optional[str] = None) -> DatasetFromLit:
    """Copy a LIT dataset's ``examples`` into an Arrow table described by its mapped spec.

    Columns follow the LIT spec's order, then any other fields the examples carry (except
    LIT's ``_id`` and ``_meta``). Text-like columns holding other values are cast to text
    by :func:`~litdesk.core.loaders.conform_table`; image ``data:`` URLs become bytes.
    ``name`` defaults to the LIT dataset's class name.
    """
    lit_spec = lit_dataset.spec()
    mapped = spec_from_lit(lit_spec)
    spec, dropped = dict(mapped), dict(mapped.dropped)
    examples = [dict(example) for example in lit_dataset.examples]
    names = dict.fromkeys([*lit_spec, *(key for example in examples for key in example)])
    columns = {}
    for column in names:
        if column in _LIT_INTERNAL_FIELDS:
            continue
        values = [example.get(column) for example in examples]
        if isinstance(spec.get(column), ImageBytes):
            values = [_image_bytes(value) for value in values]
        columns[column], uniform = _arrow_column(values)
        if not uniform and column in spec:
            del spec[column]
            dropped[column] = type(lit_spec[column]).__name__
    table = pa.table(columns)
    for column, field_type in list(spec.items()):
        try:
            table = conform_table(table, {column: field_type})
        except pa.ArrowException:
            del spec[column]
            dropped[column] = type(lit_spec[column]).__name__
    return DatasetFromLit(table, spec, name or type(lit_dataset).__name__, dropped)


def _arrow_column(values: list[Any]) -> tuple[pa.Array, bool]:
    """The values as one Arrow array and True, or as text (JSON for non-strings) and False."""
    plain = [value.tolist() if isinstance(value, np.ndarray) else value for value in values]
    try:
        return pa.array(plain), True
    except (pa.ArrowException, OverflowError):
        text = [value if value is None or isinstance(value, str)
                else json.dumps(value, default=_json_fallback) for value in plain]
        return pa.array(text, pa.string()), False


def _json_fallback(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)


def adapt(obj: Any, name: Optional[str] = None) -> Union[Model, Dataset]:
    """A litdesk Model or Dataset for ``obj``: itself when it is one already, else the bridge's.

    Raises TypeError for anything that is neither litdesk's nor LIT's.
    """
    if isinstance(obj, (Model, Dataset)):
        return obj
    if is_lit_model(obj):
        return LitModelAdapter(obj, name)
    if is_lit_dataset(obj):
        return dataset_from_lit(obj, name)
    raise TypeError(f"{type(obj).__module__}.{type(obj).__qualname__} is neither a litdesk "
                    "Model or Dataset nor a LIT (lit_nlp) Model or Dataset")


# --- Images: LIT's base64 data URLs <-> litdesk's encoded bytes ---------------------------

_BASE64_MARKER = ";base64,"
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                     (b"GIF8", "image/gif"))


def _image_bytes(value: Any) -> Any:
    """The bytes of a base64 ``data:`` URL; any other value as it is."""
    if not (isinstance(value, str) and value.startswith("data:") and _BASE64_MARKER in value):
        return value
    try:
        return base64.b64decode(value.partition(_BASE64_MARKER)[2], validate=True)
    except binascii.Error:
        return value


def _data_url(value: Any) -> Any:
    """Encoded image bytes as a base64 ``data:`` URL; any other value as it is."""
    if not isinstance(value, bytes):
        return value
    return f"data:{_image_mime_type(value)}{_BASE64_MARKER}{base64.b64encode(value).decode()}"


def _image_mime_type(image: bytes) -> str:
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for signature, mime in _IMAGE_SIGNATURES if image.startswith(signature)),
                "application/octet-stream")
