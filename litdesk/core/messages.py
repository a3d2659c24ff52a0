"""What litdesk tells the user about a failure: one printable line, never torch's advice to
unpickle a file."""

from __future__ import annotations

import re
from typing import Optional

#: Said instead of torch's advice to re-run ``torch.load`` with ``weights_only=False``.
PICKLED_MODEL = ("holds pickled Python objects{named} besides tensors, which litdesk never "
                 "loads; save the model as safetensors")
_PICKLE_ADVICE = re.compile(r"weights only load failed|weights_only\W*(=|set to)\W*false",
                            re.IGNORECASE)
_PICKLED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
_ERRNO_PREFIX = re.compile(r"^\[Errno \d+\] ")


def pickled_model(error: BaseException) -> str:
    """:data:`PICKLED_MODEL`, naming the class torch refused to unpickle when it said which."""
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    found = _PICKLED_GLOBAL.search(" ".join(map(str, chain)))
    return PICKLED_MODEL.format(named=f" ({found.group(1)})" if found else "")


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, printable (no terminal codes), without "[Errno
    N]"; its type's name when it has no message. torch's advice to unpickle never shows."""
    text = printable(_TERMINAL_CODES.sub("", str(error)))
    if _PICKLE_ADVICE.search(text):
        return f"a model file {pickled_model(error)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _ERRNO_PREFIX.sub("", lines[0]) if lines else type(error).__name__


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of a file name (surrogate escapes) as ``\\xff``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pickle_advice(error: BaseException) -> Optional[str]:
    """:data:`PICKLED_MODEL` when ``error`` carries torch's advice to unpickle, else None."""
    return pickled_model(error) if _PICKLE_ADVICE.search(str(error)) else None
