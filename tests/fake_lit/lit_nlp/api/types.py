"""LIT's field types (stand-in): frozen keyword-only classes, as lit_nlp.api.types has them.

The class names, bases and attributes follow lit-nlp 1.3.1, including its aliases
``Boolean``, ``String`` and ``URL`` for classes named ``*LitType``.
"""

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

frozen_type = dataclass(frozen=True, kw_only=True)


@frozen_type
class LitType(metaclass=abc.ABCMeta):
    """Base of all LIT types; ``required`` marks model inputs the model cannot do without."""

    required: bool = True
    annotated: bool = False


@frozen_type
class StringLitType(LitType):
    """User-editable text."""


@frozen_type
class TextSegment(StringLitType):
    """Untokenized text."""


@frozen_type
class URLLitType(TextSegment):
    """Text that is a URL."""


@frozen_type
class SearchQuery(TextSegment):
    """Text that is a search query."""


@frozen_type
class GeneratedText(TextSegment):
    """Generated text; ``parent`` names the reference TextSegment."""

    parent: Optional[str] = None


@frozen_type
class CategoryLabel(StringLitType):
    """A class label; ``vocab`` lists the allowed values."""

    vocab: Optional[Sequence[str]] = None


@frozen_type
class ImageBytes(LitType):
    """An image as a base64 ``data:image/...`` URL."""


@frozen_type
class PNGBytes(ImageBytes):
    """A PNG image as a base64 ``data:image/png`` URL."""


@frozen_type
class Scalar(LitType):
    """A number."""

    min_val: float = 0
    max_val: float = 1
    step: float = 0.01


@frozen_type
class Integer(Scalar):
    """A whole number."""

    min_val: int = -32768
    max_val: int = 32767
    step: int = 1


@frozen_type
class RegressionScore(Scalar):
    """A predicted number; ``parent`` names the gold Scalar."""

    parent: Optional[str] = None


@frozen_type
class BooleanLitType(LitType):
    """True or false."""


@frozen_type
class ListLitType(LitType):
    """A list."""


@frozen_type
class Tokens(ListLitType):
    """Token strings; ``parent`` names the TextSegment they came from."""

    parent: Optional[str] = None
    mask_token: Optional[str] = None
    token_prefix: Optional[str] = "##"


@frozen_type
class TokenTopKPreds(ListLitType):
    """Per token, (word, probability) candidates in descending order."""

    align: str = None
    parent: Optional[str] = None


@frozen_type
class SpanLabels(ListLitType):
    """Labelled spans over a Tokens field."""

    align: str
    parent: Optional[str] = None


@frozen_type
class _Tensor(LitType):
    """A list or array of numbers."""


@frozen_type
class MulticlassPreds(_Tensor):
    """Class probabilities, one per ``vocab`` entry."""

    vocab: Sequence[str]
    null_idx: Optional[int] = None
    parent: Optional[str] = None
    autosort: Optional[bool] = False
    threshold: Optional[float] = None


@frozen_type
class Embeddings(_Tensor):
    """A fixed-length vector."""


@frozen_type
class _GradientsBase(_Tensor):
    """What gradient types share."""

    align: Optional[str] = None
    grad_for: Optional[str] = None
    grad_target_field_key: Optional[str] = None


@frozen_type
class TokenGradients(_GradientsBase):
    """Gradients per token, [num_tokens, emb_dim]."""


@frozen_type
class TokenEmbeddings(_Tensor):
    """Embeddings per token, [num_tokens, emb_dim]."""

    align: Optional[str] = None


@frozen_type
class AttentionHeads(_Tensor):
    """Attention weights, [num_heads, num_tokens, num_tokens]."""

    align_in: str
    align_out: str


@frozen_type
class Salience(LitType):
    """Metadata of a salience map."""

    autorun: bool = False
    signed: bool


@frozen_type
class TokenSalience(Salience):
    """Salience over tokens."""


@frozen_type
class FeatureSalience(Salience):
    """Salience over features."""


Boolean = BooleanLitType
String = StringLitType
URL = URLLitType
