"""The Model contract, in LIT's method names so that LIT users recognise it."""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np

from litdesk.api.types import Spec

Example = dict[str, Any]


class ModelLoadError(Exception):
    """A model folder or file could not be loaded; the message says what and where."""


class TrustRequired(ModelLoadError):
    """Loading would run code from the file (a pickle, a TorchScript archive): the user must say
    they trust it.

    Loaders raise it when called with ``trust=False``; the app asks the user, or the command
    line asks for ``--trust``, and the loader is called again with ``trust=True``.
    """


@dataclass(frozen=True)
class LoadOptions:
    """What a model loader is told besides the path.

    A loader is a function ``load(path: Path, options: LoadOptions) -> Model``.
    """

    device: Optional[str] = None  # None: the best available (see litdesk.api.device)
    trust: bool = False  # the user confirmed that this file may run code when loaded
    label: Optional[str] = None  # the dataset column holding gold labels, if the model needs it
    precision: str = "fp32"  # "bf16" or "fp16": run under autocast (for GPUs; faster, less exact)
    #: (resolved path, SHA-256) of the files litdesk ships and vouches for: a loader may run
    #: code from one of them without ``trust`` when the bytes it read have that hash.
    shipped_files: tuple[tuple[str, str], ...] = ()

    def vouches_for(self, file: "Path | str", sha256: str) -> bool:
        """Whether ``file``, whose bytes as read hash to ``sha256``, is a shipped, intact file.

        Hash the very bytes you will load: checking the file and reading it again later would
        let it change in between (a swapped link).
        """
        return (str(Path(file).resolve()), sha256) in self.shipped_files


class Model(abc.ABC):
    """A model that maps batches of input examples to batches of output dicts.

    ``predict`` receives a list of examples (dicts keyed by ``input_spec`` names) and returns
    one dict per example, keyed by ``output_spec`` names; arrays may be numpy arrays or lists.
    """

    #: Display name; loaders set it to the file or folder name.
    name: str = "model"

    @abc.abstractmethod
    def input_spec(self) -> Spec:
        """Fields the model reads from each example."""

    @abc.abstractmethod
    def output_spec(self) -> Spec:
        """Fields each prediction carries."""

    @abc.abstractmethod
    def predict(self, inputs: Sequence[Example]) -> list[dict[str, Any]]:
        """Predict one batch; called off the main thread."""

    def predict_fields(self, inputs: Sequence[Example], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        """Predict one batch when only ``fields`` are wanted.

        A model may leave the other fields out to skip costly work (gradients, attention,
        generation); by default this is :meth:`predict`.
        """
        return self.predict(inputs)

    def max_minibatch_size(self) -> int:
        """The largest batch ``predict`` should receive."""
        return 32

    def fingerprint(self) -> str:
        """A string that changes whenever the model's behaviour may change (for caching)."""
        return f"{type(self).__module__}.{type(self).__qualname__}:{self.name}"


@dataclass
class EmbeddedTexts:
    """Texts as a :class:`GradientTextModel` reads them: padded input token embeddings.

    The tensors (torch, on the model's device) have one row per text: ``embeddings`` is
    batch × positions × width; ``baseline`` is the same with the padding token's embedding at
    each real, non-special position; ``forward_args`` are passed after the embeddings to
    :meth:`GradientTextModel.logits_from_embeddings`. ``kept`` lists, per text, the positions of
    its real tokens and ``tokens`` those tokens as strings.
    """

    embeddings: Any
    baseline: Any
    forward_args: tuple[Any, ...]
    tokens: list[list[str]]
    kept: list[Sequence[int]]


@dataclass
class TokenVocabulary:
    """A :class:`GradientTextModel`'s input token embeddings, for token swaps (HotFlip).

    ``table`` (torch, on the model's device) is vocabulary × width: row ``i`` is what
    :meth:`GradientTextModel.embed_texts` puts at a position holding token ``i``. ``tokens`` names
    each token id; ``swappable`` lists the ids a swap may put into a text (words and word pieces,
    not special tokens or placeholders). ``continuation`` marks, per id, the pieces that continue
    a word ("##s" in WordPiece); when given, a swap keeps a position's kind, so a word's start is
    never replaced by the end of another word. Empty: the tokenizer does not say.
    """

    table: Any
    tokens: Sequence[str]
    swappable: Sequence[int]
    continuation: Sequence[bool] = ()


class GradientTextModel(abc.ABC):
    """Optional for a torch text model: its outputs as differentiable functions of its input
    token embeddings, which gradient attribution (saliency, integrated gradients) needs."""

    #: The input field (a TextSegment) whose tokens are explained.
    text_field: str = "text"

    @abc.abstractmethod
    def gradient_targets(self) -> tuple[str, ...]:
        """The name of each output column of :meth:`logits_from_embeddings` (a class label, or
        "" for a single regression score); empty when the model has none to explain."""

    @abc.abstractmethod
    def embed_texts(self, texts: Sequence[str]) -> EmbeddedTexts:
        """Tokenize and embed ``texts`` into one padded batch."""

    @abc.abstractmethod
    def logits_from_embeddings(self, embeddings: Any, *forward_args: Any) -> Any:
        """A batch × len(gradient_targets()) tensor, differentiable in ``embeddings``; rows of
        ``forward_args`` are aligned with those of ``embeddings``."""



class TokenSwapModel(abc.ABC):
    """Optional for a :class:`GradientTextModel` whose token swaps can be written back as text,
    which HotFlip needs: its input embedding table and a way to put other tokens in a text."""

    @abc.abstractmethod
    def token_vocabulary(self) -> Optional[TokenVocabulary]:
        """The input token embedding table, or None when this instance cannot swap tokens
        (say, a tokenizer without character offsets)."""

    @abc.abstractmethod
    def replace_tokens(self, text: str, replacements: Mapping[int, int]) -> str:
        """``text`` with the token at each position (as in ``embed_texts([text])``) replaced by the
        token id it maps to."""


class GradientImageModel(abc.ABC):
    """Optional for a torch image model: its outputs as differentiable functions of its input
    pixel tensor, which gradient attribution (saliency, integrated gradients) needs.

    The pixel tensor is what the network reads: the images decoded, resized (maybe cropped) and
    normalised, batch × channels × height × width, on the model's device.
    """

    #: The input field (an ImageBytes) whose pixels are explained.
    image_field: str = "image"

    @abc.abstractmethod
    def gradient_targets(self) -> tuple[str, ...]:
        """The name of each output column of :meth:`logits_from_pixels` (a class label); empty
        when the model has none to explain."""

    @abc.abstractmethod
    def pixels_from_images(self, images: Sequence[bytes]) -> Any:
        """Decode and preprocess encoded images (PNG, JPEG…) into one pixel tensor batch."""

    @abc.abstractmethod
    def logits_from_pixels(self, pixels: Any) -> Any:
        """A batch × len(gradient_targets()) tensor, differentiable in ``pixels``."""

    def baseline_pixels(self, pixels: Any) -> Any:
        """An all-black image in the model's pixel space, shaped like ``pixels``: the baseline of
        integrated gradients. By default zeros, right for a model reading unnormalised
        intensities; a model that normalises its pixels returns black after normalisation."""
        return pixels.new_zeros(pixels.shape)

    def pixel_region(self, image: bytes) -> tuple[float, float, float, float]:
        """The part of ``image`` its pixel tensor shows, as (left, top, right, bottom) fractions
        of the image's width and height: where an attribution map lies on the image. By default
        the whole image (it is resized, not cropped)."""
        return (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class EmbeddedSequence:
    """A text as a :class:`SequenceGradientModel` reads it: its tokens, each token's character
    span in the text (``offsets``, tokens × 2; empty for special tokens), and torch tensors of the
    token ids (1 × tokens) and input embeddings (1 × tokens × width)."""

    tokens: tuple[str, ...]
    offsets: np.ndarray
    token_ids: Any
    embeddings: Any


@runtime_checkable
class SequenceGradientModel(Protocol):
    """A causal LM whose span log-probability is a differentiable function of its input
    embeddings (the Hugging Face plugin's HFCausalLM is one)."""

    def embed_sequence(self, text: str) -> EmbeddedSequence:
        """Tokenize and embed ``text``."""

    def span_log_probability(self, embeddings: Any, token_ids: Any, first: int, end: int) -> Any:
        """Per row of ``embeddings``: sum over p in [first, end) of log p(token_ids[0, p] | before)."""
