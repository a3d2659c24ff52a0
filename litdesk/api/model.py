"""The Model contract, in LIT's method names so that LIT users recognise it."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from litdesk.api.types import Spec

Example = dict[str, Any]


class ModelLoadError(Exception):
    """A model folder or file could not be loaded; the message says what and where."""


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

    def max_minibatch_size(self) -> int:
        """The largest batch ``predict`` should receive."""
        return 32

    def fingerprint(self) -> str:
        """A string that changes whenever the model's behaviour may change (for caching)."""
        return f"{type(self).__module__}.{type(self).__qualname__}:{self.name}"
