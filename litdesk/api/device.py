"""Choosing the torch device. torch is imported inside the functions, never at module import."""

from __future__ import annotations

import os

#: Environment variable that overrides the automatic choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
DEVICE_ENV = "LITDESK_DEVICE"


def best_device(requested: str | None = None) -> str:
    """The device to run models on: ``requested``, else $LITDESK_DEVICE, else CUDA, MPS, CPU."""
    choice = requested or os.environ.get(DEVICE_ENV)
    if choice and choice != "auto":
        return choice
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
