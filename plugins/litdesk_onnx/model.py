"""ONNX classifiers run with onnxruntime, described by the TorchScript plugin's JSON sidecar.

The sidecar (``<stem>.json`` or ``litdesk.json`` beside the file; format in
:mod:`litdesk_torchscript.sidecar`) names the inputs and the labels. The graph has one float
input (batch × features), or one input per sidecar input of the same name (a category as a
string tensor: how skl2onnx converts a scikit-learn pipeline over a table), and its first
output holds the scores. A graph exported with a fixed batch size is fed batches of that size.

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
_STRING_TYPE = "tensor(string)"
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
    """An onnxruntime session whose one input takes the sidecar's features, or whose inputs
    are the sidecar's, by name.

    Raises ValueError when the graph's inputs do not fit the sidecar (count, type, width).
    """

    def __init__(self, session: Any, sidecar: Sidecar, name: str, label: str = DEFAULT_LABEL,
                 fingerprint: str | None = None) -> None:
        super().__init__(sidecar, name, label, fingerprint)
        graph_inputs = session.get_inputs()
        self.session = session
        self.providers = session.get_providers()
        self._output_name = session.get_outputs()[0].name
        #: Per sidecar input, the graph input that takes it and its dtype (one input per column).
        self._named: Optional[list[tuple[Any, str, Any]]] = None
        if len(graph_inputs) > 1 or any(field.category for field in sidecar.inputs):
            self._named = self._match_inputs(graph_inputs)
            self._fixed_batch = None
            return
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
        self._input_name = graph_input.name
        self._input_dtype = _FLOAT_TYPES[graph_input.type]
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

    def _match_inputs(self, graph_inputs: list) -> list[tuple[Any, str, Any]]:
        """Each sidecar input with the graph input of its name and that input's dtype."""
        by_name = {graph_input.name: graph_input for graph_input in graph_inputs}
        fields = {field.name for field in self.sidecar.inputs}
        unknown = [name for name in by_name if name not in fields]
        missing = [name for name in fields if name not in by_name]
        if unknown or missing:
            raise ValueError(
                f"the graph has {len(by_name)} inputs ({', '.join(by_name)}), not the "
                f"sidecar's ({', '.join(field.name for field in self.sidecar.inputs)}); "
                "litdesk feeds one float tensor of shape (batch, "
                f"{self.sidecar.width}), or each column to the input of its name")
        matched = []
        for field in self.sidecar.inputs:
            graph_input = by_name[field.name]
            expected = "a string" if field.category else "a float"
            if field.category != (graph_input.type == _STRING_TYPE) or \
                    (not field.category and graph_input.type not in _FLOAT_TYPES):
                raise ValueError(f"the graph's input {field.name} is a {graph_input.type}; "
                                 f"expected {expected} tensor")
            shape = graph_input.shape
            if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != field.width):
                raise ValueError(f"the graph's input {field.name} has shape {shape}; "
                                 f"expected (batch, {field.width})")
            matched.append((field, graph_input.name,
                            object if field.category else _FLOAT_TYPES[graph_input.type]))
        return matched

    def _scores(self, inputs) -> np.ndarray:
        if self._named is None:
            return super()._scores(inputs)
        feed = {name: field.values(inputs).astype(dtype, copy=False)
                for field, name, dtype in self._named}
        return np.asarray(self.session.run([self._output_name], feed)[0])

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
