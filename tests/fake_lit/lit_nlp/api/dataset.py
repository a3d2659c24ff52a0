"""LIT's dataset base (stand-in): a spec and a list of example dicts, as in lit-nlp 1.3.1."""

import inspect
from typing import Optional


class Dataset:
    """A LIT dataset: ``spec()`` describes the fields of each dict in ``examples``."""

    def __init__(self, spec: Optional[dict] = None, examples: Optional[list[dict]] = None,
                 description: Optional[str] = None) -> None:
        self._spec = spec or {}
        self._examples = examples if examples is not None else []
        self._description = description

    def description(self) -> str:
        """A human-readable description; the class docstring unless one was given."""
        return self._description or inspect.getdoc(self) or ""

    def spec(self) -> dict:
        """Field name -> LIT type."""
        return self._spec

    @property
    def examples(self) -> list[dict]:
        """The examples, as dicts following ``spec()``."""
        return self._examples

    def __len__(self) -> int:
        return len(self._examples)
