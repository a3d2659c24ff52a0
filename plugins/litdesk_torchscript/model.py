"""TorchScript classifiers: a ``torch.jit.save`` archive described by a JSON sidecar.

The sidecar (``<stem>.json`` or ``litdesk.json`` beside the file) names the inputs and the
labels; :mod:`litdesk_torchscript.sidecar` describes its format. The module's ``forward`` takes
one float tensor (batch × features) and returns one tensor of scores.

No trust prompt is needed: ``torch.jit.load`` reads the archive's tensors and constants with
TorchScript's restricted unpickler, which builds no Python objects of the file's choosing, and
compiles its code, which can call TorchScript operators only. The archive is still a program,
run on every prediction. ``torch.load`` is never called, so a ``torch.save`` checkpoint (a
pickle) is refused, not unpickled. torch is imported inside the functions that need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from litdesk.api import LoadOptions, ModelLoadError, single_matching_file
from litdesk.core.device import best_device
from litdesk_torchscript.sidecar import (
    DEFAULT_LABEL,
    Sidecar,
    SidecarClassifier,
    fingerprint,
    read_sidecar,
)

PATTERNS = ("*.pt", "*.torchscript")


def _first_sentence(error: Exception) -> str:
    text = next((line.strip() for line in str(error).splitlines() if line.strip()),
                type(error).__name__)
    return text.split(". ")[0]


def load(path: Path, options: LoadOptions = LoadOptions()) -> "TorchScriptClassifier":
    """Load the TorchScript classifier ``path`` (or the one ``*.pt``/``*.torchscript`` in a folder)."""
    file = single_matching_file(Path(path), PATTERNS)
    sidecar = read_sidecar(file)
    device = best_device(options.device)
    import torch

    try:
        module = torch.jit.load(str(file), map_location=device)
    except Exception as error:  # torch raises RuntimeError or ValueError for foreign files
        raise ModelLoadError(f"{file}: not a TorchScript archive ({_first_sentence(error)}); "
                             "save the model with torch.jit.save(torch.jit.script(model), path)"
                             ) from error
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
