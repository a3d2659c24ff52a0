"""Image classifiers: ``*ForImageClassification`` models (ViT, ConvNeXt, ResNet…) with their image
processor, reading encoded image bytes.

The outputs are the class probabilities and a mean-pooled embedding of the last hidden state; as
a :class:`~litdesk.api.model.GradientImageModel` the model explains its logits by gradients
with respect to its pixel tensor (the image as the network reads it: resized, maybe cropped,
normalised). torch and PIL are imported inside the methods that need them.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Collection, Sequence
from typing import Any

from litdesk.api import CategoryLabel, Embeddings, ImageBytes, Model, MulticlassPreds, Spec
from litdesk.api.model import GradientImageModel
from litdesk_transformers.base import autocast, check_precision, prepared_network, to_numpy

Example = dict[str, Any]

#: ConvNeXt-style processors (a ``crop_pct``) crop only below this shortest edge.
CROP_PCT_LIMIT = 384
#: Images with more pixels are refused, from their header, before they are decoded: a few
#: kilobytes of PNG can hold 12,000 × 12,000 pixels, 432 MB decoded.
MAX_IMAGE_PIXELS = 100_000_000
#: Larger images are shrunk to fit this many pixels a side as they are decoded (JPEGs decode
#: straight at 1/2, 1/4 or 1/8 the size); the processor resizes them to a few hundred anyway.
DECODED_SIDE = 4096


class ImageTooLargeError(ValueError):
    """An image with more pixels than :data:`MAX_IMAGE_PIXELS`."""


def decode_image(data: Any, mode: str = "RGB") -> Any:
    """Encoded image bytes as a PIL image in ``mode``, at most :data:`DECODED_SIDE` pixels a
    side; ImageTooLargeError for one of more than :data:`MAX_IMAGE_PIXELS`, ValueError for
    bytes that are not an image."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
        raise ValueError(f"expected encoded image bytes, not {type(data).__name__}")
    limit = f"litdesk decodes at most {MAX_IMAGE_PIXELS // 1_000_000:,} megapixels"
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLargeError(f"the image is {width:,} × {height:,} pixels; {limit}")
        image.thumbnail((DECODED_SIDE, DECODED_SIDE))  # does nothing to smaller images
        return image.convert(mode)
    except Image.DecompressionBombError as error:  # Pillow's own limit, at open
        raise ImageTooLargeError(f"the image has too many pixels; {limit}") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"not a readable image ({error})") from error


def crop_region(processor: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of a ``width`` × ``height`` image that ``processor`` keeps, as (left, top, right,
    bottom) fractions: the centre crop after resizing (``crop_size``, or ConvNeXt's
    ``crop_pct``), else the whole image."""
    size = getattr(processor, "size", None) or {}
    shortest = size.get("shortest_edge")
    crop_pct = getattr(processor, "crop_pct", None)
    resize = getattr(processor, "do_resize", True)
    crop_size = getattr(processor, "crop_size", None) or {}
    if resize and crop_pct and shortest and shortest < CROP_PCT_LIMIT:
        scale = int(shortest / crop_pct) / min(width, height)
        resized, crop = (width * scale, height * scale), (shortest, shortest)
    elif getattr(processor, "do_center_crop", False) and crop_size.get("width"):
        if resize and size.get("width") and size.get("height"):
            resized = (size["width"], size["height"])
        elif resize and shortest:
            scale = shortest / min(width, height)
            resized = (width * scale, height * scale)
        else:
            resized = (width, height)
        crop = (crop_size["width"], crop_size["height"])
    else:
        return (0.0, 0.0, 1.0, 1.0)
    kept_x, kept_y = min(1.0, crop[0] / resized[0]), min(1.0, crop[1] / resized[1])
    return ((1 - kept_x) / 2, (1 - kept_y) / 2, (1 + kept_x) / 2, (1 + kept_y) / 2)


class HFImageClassifier(Model, GradientImageModel):
    """A ``*ForImageClassification`` model reading the field ``image`` (encoded bytes).

    ``probas`` holds the class probabilities (gold labels in ``label_field``), ``emb`` the last
    hidden state averaged over patches or positions. Gradient attribution explains the logit of
    a class with respect to the pixel tensor; its baseline is a black image.
    """

    #: The largest batch :meth:`predict` should receive.
    batch_size = 16

    def __init__(self, network: Any, processor: Any, name: str, device: str = "cpu",
                 fingerprint: str | None = None, label_field: str = "label",
                 precision: str = "fp32") -> None:
        config = network.config
        self.labels = tuple(str(config.id2label[i]) for i in range(config.num_labels))
        self.precision = check_precision(precision)
        self.name = name
        self.label_field = label_field
        self.processor = processor
        self.device = device
        self.mode = "L" if getattr(config, "num_channels", 3) == 1 else "RGB"
        self.network = prepared_network(network, device)
        self._folder_fingerprint = fingerprint or name
        self._lock = threading.Lock()  # one forward pass at a time bounds device memory
        self.has_embedding = self._probe()

    def _probe(self) -> bool:
        """Whether the network returns hidden states (for ``emb``); a network that cannot run
        on a black image fails here, at loading."""
        import torch

        with torch.inference_mode():
            out = self.network(pixel_values=self._black, output_hidden_states=True)
        return bool(getattr(out, "hidden_states", None))

    @functools.cached_property
    def _black(self) -> Any:
        """A black image through the processor: one batch row of the pixel tensor."""
        from PIL import Image

        return self._pixels([Image.new(self.mode, (64, 64))])

    # --- The Model contract -----------------------------------------------------------------

    def input_spec(self) -> Spec:
        return {"image": ImageBytes(),
                self.label_field: CategoryLabel(vocab=self.labels, required=False)}

    def output_spec(self) -> Spec:
        spec: Spec = {"probas": MulticlassPreds(vocab=self.labels, parent=self.label_field)}
        if self.has_embedding:
            spec["emb"] = Embeddings()
        return spec

    def max_minibatch_size(self) -> int:
        return self.batch_size

    def fingerprint(self) -> str:
        return f"{type(self).__qualname__}:{self._folder_fingerprint};precision={self.precision}"

    def predict(self, inputs: Sequence[Example]) -> list[dict[str, Any]]:
        return self.predict_fields(inputs, self.output_spec().keys())

    def predict_fields(self, inputs: Sequence[Example], fields: Collection[str]
                       ) -> list[dict[str, Any]]:
        """Predict one batch; the hidden states are kept only when ``emb`` is asked for."""
        import torch

        if not inputs:
            return []
        embedding = self.has_embedding and "emb" in fields
        pixels = self.pixels_from_images([example.get(self.image_field) for example in inputs])
        with self._lock, torch.inference_mode(), autocast(self.precision, self.device):
            out = self.network(pixel_values=pixels, output_hidden_states=embedding)
            probas = to_numpy(torch.softmax(out.logits.float(), dim=-1))
            results: list[dict[str, Any]] = [{"probas": row} for row in probas]
            if embedding:
                last = out.hidden_states[-1]  # batch × patches × width, or batch × width × h × w
                pooled = last.mean(dim=1) if last.dim() == 3 else last.mean(dim=(2, 3))
                for result, row in zip(results, to_numpy(pooled)):
                    result["emb"] = row
        return results

    # --- Gradient attribution (GradientImageModel) -------------------------------------------

    def gradient_targets(self) -> tuple[str, ...]:
        return self.labels

    def _pixels(self, images: Sequence[Any]) -> Any:
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, next(self.network.parameters()).dtype)

    def pixels_from_images(self, images: Sequence[bytes]) -> Any:
        decoded = []
        for data in images:
            try:
                decoded.append(decode_image(data, self.mode))
            except ValueError as error:  # keeps its type: ImageTooLargeError stays one
                raise type(error)(f"model {self.name}: {error}") from None
        return self._pixels(decoded)

    def logits_from_pixels(self, pixels: Any) -> Any:
        import torch

        with self._lock, torch.inference_mode(False), autocast(self.precision, self.device):
            out = self.network(pixel_values=pixels)
        return out.logits.float()

    def baseline_pixels(self, pixels: Any) -> Any:
        """Black after normalisation: each channel's value at the centre of a processed black
        image (a constant image stays constant through resizing and cropping)."""
        black = self._black
        centre = black[0, :, black.shape[2] // 2, black.shape[3] // 2]
        return centre.to(pixels.dtype)[None, :, None, None].expand_as(pixels).clone()

    def pixel_region(self, image: bytes) -> tuple[float, float, float, float]:
        from PIL import Image

        with Image.open(io.BytesIO(image)) as opened:  # reads the header only
            width, height = opened.size
        return crop_region(self.processor, width, height)
