"""Field types: LIT's vocabulary for describing dataset columns and model inputs/outputs.

A *spec* maps field names to field types. Datasets, models and the UI agree on meaning
through specs alone: the projector looks for :class:`Embeddings`, the salience dock for
:class:`TokenGradients`, the comparison dock for :class:`MulticlassPreds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class FieldType:
    """Base of all field types. ``required`` is False for optional model inputs."""

    required: bool = True

    @property
    def type_name(self) -> str:
        """The class name, as LIT and the UI show it."""
        return type(self).__name__


# --- Input / dataset fields -------------------------------------------------------------


@dataclass(frozen=True)
class TextSegment(FieldType):
    """Free text."""


@dataclass(frozen=True)
class CategoryLabel(FieldType):
    """A categorical value; ``vocab`` lists the categories in display order."""

    vocab: Optional[tuple[str, ...]] = None


@dataclass(frozen=True)
class Scalar(FieldType):
    """A number."""

    min_val: Optional[float] = None
    max_val: Optional[float] = None


@dataclass(frozen=True)
class Boolean(FieldType):
    """True or false."""


@dataclass(frozen=True)
class ImageBytes(FieldType):
    """Encoded image bytes (PNG, JPEG…)."""


@dataclass(frozen=True)
class ImagePath(FieldType):
    """A path to an image file, relative to the dataset's folder or absolute."""


# --- Model output fields ---------------------------------------------------------------


@dataclass(frozen=True)
class MulticlassPreds(FieldType):
    """Class probabilities, one per entry of ``vocab``; ``parent`` names the gold field."""

    vocab: tuple[str, ...] = ()
    parent: Optional[str] = None
    null_idx: Optional[int] = None


@dataclass(frozen=True)
class RegressionScore(FieldType):
    """A predicted number; ``parent`` names the gold field."""

    parent: Optional[str] = None


@dataclass(frozen=True)
class Embeddings(FieldType):
    """A fixed-length vector per example (pooled or per-layer)."""


@dataclass(frozen=True)
class Tokens(FieldType):
    """A list of token strings; ``parent`` names the text field they came from."""

    parent: Optional[str] = None


@dataclass(frozen=True)
class TokenGradients(FieldType):
    """Gradients per token (tokens × hidden); ``align`` names the Tokens field."""

    align: Optional[str] = None
    grad_for: Optional[str] = None
    grad_target_field_key: Optional[str] = None


@dataclass(frozen=True)
class TokenEmbeddings(FieldType):
    """Input embeddings per token (tokens × hidden); ``align`` names the Tokens field."""

    align: Optional[str] = None


@dataclass(frozen=True)
class TokenSalience(FieldType):
    """One attribution score per token; ``align`` names the Tokens field."""

    align: Optional[str] = None
    signed: bool = False


@dataclass(frozen=True)
class FeatureSalience(FieldType):
    """One attribution score per input feature (tabular models)."""

    signed: bool = True


@dataclass(frozen=True)
class AttentionHeads(FieldType):
    """Attention weights of one layer (heads × tokens × tokens)."""

    align_in: Optional[str] = None
    align_out: Optional[str] = None


@dataclass(frozen=True)
class TokenTopKPreds(FieldType):
    """Per position, the k most likely tokens with probabilities; ``align`` names Tokens."""

    align: Optional[str] = None


@dataclass(frozen=True)
class GeneratedText(FieldType):
    """Text a model produced; ``parent`` names the reference text field."""

    parent: Optional[str] = None


Spec = dict[str, FieldType]


def find_spec_keys(spec: Spec, field_types: "type | tuple[type, ...]",
                   where: "Callable[[FieldType], bool] | None" = None) -> list[str]:
    """The names of the fields of ``spec`` that are instances of ``field_types`` (and for which
    ``where`` holds, when given), in spec order. LIT's helper of the same name."""
    return [name for name, field_type in spec.items()
            if isinstance(field_type, field_types) and (where is None or where(field_type))]


def first_spec_key(spec: Spec, field_types: "type | tuple[type, ...]",
                   where: "Callable[[FieldType], bool] | None" = None) -> "str | None":
    """The first name :func:`find_spec_keys` gives, or None."""
    return next(iter(find_spec_keys(spec, field_types, where)), None)


def spec_to_json(spec: Spec) -> str:
    """``spec`` as JSON: each field's type name and its attributes (see :func:`spec_from_json`)."""
    import dataclasses
    import json

    return json.dumps({name: {"type": field_type.type_name, **dataclasses.asdict(field_type)}
                       for name, field_type in spec.items()})


def spec_from_json(text: str) -> Spec:
    """The spec :func:`spec_to_json` wrote. Only this module's field types are made, and only
    from their declared attributes; anything else raises ValueError."""
    import dataclasses
    import json

    known = {cls.__name__: cls for cls in _field_type_classes()}
    spec = {}
    for name, described in json.loads(text).items():
        described = dict(described)
        cls = known.get(described.pop("type", None))
        if cls is None or not isinstance(name, str):
            raise ValueError(f"field {name!r}: not a litdesk field type")
        allowed = {field.name for field in dataclasses.fields(cls)}
        if not set(described) <= allowed:
            raise ValueError(f"field {name!r}: unknown attributes {sorted(set(described) - allowed)}")
        if isinstance(described.get("vocab"), list):
            described["vocab"] = tuple(described["vocab"])
        spec[name] = cls(**described)
    return spec


def _field_type_classes() -> list[type]:
    found, pending = [], [FieldType]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__ == __name__]
