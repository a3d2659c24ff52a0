"""LIT's model bases (stand-in): ``Model`` and ``BatchedModel`` as lit-nlp 1.3.1 defines them.

As in LIT, the plain ``Model`` has no ``max_minibatch_size``; ``BatchedModel`` has one
(default 1) and implements ``predict`` over ``predict_minibatch``.
"""

import abc
import inspect
from collections.abc import Iterable, Iterator


class Model(metaclass=abc.ABCMeta):
    """A LIT model."""

    def description(self) -> str:
        """A human-readable description; the class docstring unless overridden."""
        return inspect.getdoc(self) or ""

    @abc.abstractmethod
    def input_spec(self) -> dict:
        """Fields the model reads."""

    @abc.abstractmethod
    def output_spec(self) -> dict:
        """Fields the model returns."""

    @abc.abstractmethod
    def predict(self, inputs: Iterable[dict], **kw) -> Iterable[dict]:
        """Outputs for ``inputs``, one per input."""


class BatchedModel(Model):
    """A model that predicts minibatches of at most ``max_minibatch_size()`` examples."""

    def max_minibatch_size(self) -> int:
        """The largest minibatch ``predict_minibatch`` receives."""
        return 1

    @abc.abstractmethod
    def predict_minibatch(self, inputs: list[dict]) -> list[dict]:
        """Outputs for one minibatch."""

    def predict(self, inputs: Iterable[dict], **kw) -> Iterator[dict]:
        """Outputs for ``inputs``, computed lazily minibatch by minibatch."""
        minibatch: list[dict] = []
        for example in inputs:
            minibatch.append(example)
            if len(minibatch) == self.max_minibatch_size():
                yield from self.predict_minibatch(minibatch)
                minibatch = []
        if minibatch:
            yield from self.predict_minibatch(minibatch)
