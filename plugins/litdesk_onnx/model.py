"""ONNX classifiers run with onnxruntime, described by the TorchScript plugin's JSON sidecar.

The sidecar (``<stem>.json`` or ``litdesk.json`` beside the file; format in
:mod:`litdesk_torchscript.sidecar`) names the inputs and the labels. The graph has one float
input (batch × features) and its first output holds the scores. A graph exported with a fixed
batch size is fed batches of that size.

No trust prompt is needed: an ONNX file is a protobuf graph of standard operators, and no
custom-operator library is ever registered, so loading it runs no code from it. Weights kept in
external files must lie inside the model's folder: onnxruntime (1.25 and later) refuses a path
that leads out, by ``..``, an absolute path or a link. The graph runs
on CUDA when onnxruntime has the CUDA provider and ``options.device`` (else $LITDESK_DEVICE) is
unset, ``auto`` or ``cuda[:N]``; otherwise on the CPU. onnxruntime is imported inside the
functions that need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from litdesk.api import LoadOptions, ModelLoadError, single_matching_file
from litdesk.api.device import DEVICE_ENV
from litdesk_torchscript.sidecar import (
    DEFAULT_LABEL,
    Sidecar,
    SidecarClassifier,
    fingerprint,
    read_sidecar,
)

PATTERNS = ("*.onnx",)
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(float16)": np.float16}
_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"


def providers(requested: Optional[str], available: list[str]) -> list[Any]:
    """onnxruntime execution providers for the device ``requested`` (None: $LITDESK_DEVICE, auto)."""
    choice = requested or os.environ.get(DEVICE_ENV) or "auto"
    if (choice == "auto" or choice.startswith("cuda")) and _CUDA in available:
        device_id = int(choice.partition(":")[2] or 0)
        return [(_CUDA, {"device_id": device_id}), _CPU]
    return [_CPU]


def _first_line(error: Exception) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()),
                type(error).__name__)


def load(path: Path, options: LoadOptions = LoadOptions()) -> "OnnxClassifier":
    """Load the ONNX classifier ``path`` (or the one ``*.onnx`` in a folder)."""
    file = single_matching_file(Path(path), PATTERNS)
    sidecar = read_sidecar(file)
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelLoadError(f"{file}: running ONNX models needs onnxruntime, "
                             "which is not installed") from error
    session_options = onnxruntime.SessionOptions()
    session_options.log_severity_level = 3  # errors only; a CUDA fallback is not the user's business
    try:
        session = onnxruntime.InferenceSession(
            str(file), sess_options=session_options,
            providers=providers(options.device, onnxruntime.get_available_providers()))
    except Exception as error:  # onnxruntime raises its own types for bad graphs
        raise ModelLoadError(f"{file}: not a loadable ONNX model ({_first_line(error)})") from error
    try:
        model = OnnxClassifier(session, sidecar, name=file.stem, label=options.label or DEFAULT_LABEL,
                               fingerprint=fingerprint(file, sidecar))
    except ValueError as error:
        raise ModelLoadError(f"{file}: {error}") from error
    model.check_runs(file)
    return model


class OnnxClassifier(SidecarClassifier):
    """An onnxruntime session whose one input takes the sidecar's features.

    Raises ValueError when the graph's input does not fit the sidecar (count, type, width).
    """

    def __init__(self, session: Any, sidecar: Sidecar, name: str, label: str = DEFAULT_LABEL,
                 fingerprint: str | None = None) -> None:
        super().__init__(sidecar, name, label, fingerprint)
        graph_inputs = session.get_inputs()
        if len(graph_inputs) != 1:
            names = ", ".join(graph_input.name for graph_input in graph_inputs)
            raise ValueError(f"the graph has {len(graph_inputs)} inputs ({names}); litdesk feeds "
                             f"one float tensor of shape (batch, {sidecar.width})")
        (graph_input,) = graph_inputs
        if graph_input.type not in _FLOAT_TYPES:
            raise ValueError(f"the graph's input {graph_input.name} is a {graph_input.type}; "
                             "expected a float tensor")
        shape = graph_input.shape
        if len(shape) != 2:
            raise ValueError(f"the graph's input {graph_input.name} has shape {shape}; "
                             "expected (batch, features)")
        if isinstance(shape[1], int) and shape[1] != sidecar.width:
            raise ValueError(f"the graph's input {graph_input.name} takes {shape[1]} features; "
                             f"{sidecar.path.name} describes {sidecar.width}")
        self.session = session
        self.providers = session.get_providers()
        self._input_name = graph_input.name
        self._input_dtype = _FLOAT_TYPES[graph_input.type]
        self._output_name = session.get_outputs()[0].name
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

    def _run(self, features: np.ndarray) -> np.ndarray:
        feed = {self._input_name: features.astype(self._input_dtype, copy=False)}
        return np.asarray(self.session.run([self._output_name], feed)[0])

    def _forward(self, features: np.ndarray) -> np.ndarray:
        if self._fixed_batch is None:
            return self._run(features)
        size, chunks = self._fixed_batch, []
        for start in range(0, len(features), size):
            chunk = features[start:start + size]
            padded = np.zeros((size, features.shape[1]), dtype=features.dtype)
            padded[:len(chunk)] = chunk
            chunks.append(self._run(padded)[:len(chunk)])
        return np.concatenate(chunks)
