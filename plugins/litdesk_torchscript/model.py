"""TorchScript classifiers: a ``torch.jit.save`` archive described by a JSON sidecar.

The sidecar (``<stem>.json`` or ``litdesk.json`` beside the file) names the inputs and the
labels; :mod:`litdesk_torchscript.sidecar` describes its format. The module's ``forward`` takes
one float tensor (batch × features) and returns one tensor of scores.

A TorchScript archive is a program, so :func:`load` raises :class:`TrustRequired` unless the
user said they trust the file: its ``__setstate__`` runs inside ``torch.jit.load``, its
``forward`` at load (the check that it fits its sidecar) and on every prediction, and
TorchScript operators such as ``torch.from_file`` read and write any file the user can.
Before asking, the archive's zip directory (data, read without running anything) must show a
TorchScript program (a ``code/`` folder), so that a ``torch.save`` checkpoint or another file
is refused without asking. ``torch.load`` is never called: a checkpoint, a pickle, is never
unpickled. torch is imported inside the functions that need it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import LoadOptions, ModelLoadError, TrustRequired, single_matching_file
from litdesk.api.device import best_device
from litdesk_torchscript.sidecar import (
    DEFAULT_LABEL,
    Sidecar,
    SidecarClassifier,
    fingerprint,
    read_sidecar,
)

PATTERNS = ("*.pt", "*.torchscript")
_SAVE_HINT = "save the model with torch.jit.save(torch.jit.script(model), path)"


def _first_sentence(error: Exception) -> str:
    text = next((line.strip() for line in str(error).splitlines() if line.strip()),
                type(error).__name__)
    return text.split(". ")[0]


def _check_is_torchscript(file: Path) -> None:
    """Raise :class:`ModelLoadError` unless the zip directory of ``file`` holds TorchScript code."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        raise ModelLoadError(f"{file}: not a TorchScript archive ({_first_sentence(error)}); "
                             f"{_SAVE_HINT}") from error
    if not any("/code/" in name for name in names):
        raise ModelLoadError(f"{file}: not a TorchScript archive (no code/ folder: a torch.save "
                             f"checkpoint, which litdesk does not unpickle, or another zip); "
                             f"{_SAVE_HINT}")


def load(path: Path, options: LoadOptions = LoadOptions()) -> "TorchScriptClassifier":
    """Load the TorchScript classifier ``path`` (or the one ``*.pt``/``*.torchscript`` in a folder).

    Raises :class:`TrustRequired` when ``options.trust`` is False, before running any of it.
    """
    file = single_matching_file(Path(path), PATTERNS)
    sidecar = read_sidecar(file)
    _check_is_torchscript(file)
    if not options.trust:
        raise TrustRequired(f"{file}: a TorchScript archive is a program: loading it runs code "
                            "from it, which can read and write your files; open it only if you "
                            "trust its source")
    device = best_device(options.device)
    import torch

    try:
        module = torch.jit.load(str(file), map_location=device)
    except Exception as error:  # torch raises RuntimeError or ValueError for foreign files
        raise ModelLoadError(f"{file}: not a TorchScript archive ({_first_sentence(error)}); "
                             f"{_SAVE_HINT}") from error
    model = TorchScriptClassifier(module, sidecar, name=file.stem,
                                  label=options.label or DEFAULT_LABEL, device=device,
                                  fingerprint=fingerprint(file, sidecar))
    model.check_runs(file)
    return model


class TorchScriptClassifier(SidecarClassifier):
    """A TorchScript module on ``device``, in eval mode, run under ``torch.inference_mode``.

    Features are fed in the dtype of the module's floating-point parameters (float32 if none).
    """

    def __init__(self, module: Any, sidecar: Sidecar, name: str, label: str = DEFAULT_LABEL,
                 device: str = "cpu", fingerprint: str | None = None) -> None:
        super().__init__(sidecar, name, label, fingerprint)
        self.module = module.eval()
        self.device = device
        self.dtype = next((parameter.dtype for parameter in module.parameters()
                           if parameter.is_floating_point()), None)

    def _forward(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            output = self.module(torch.from_numpy(features).to(self.device, self.dtype))
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"forward returned a {type(output).__name__}, not a tensor")
        return output.float().cpu().numpy()
