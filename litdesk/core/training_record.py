"""The training record written beside every model litdesk trains, so a result can be
reproduced: base model, data file and content hash, rows used, parameters, seed, metrics per
epoch, litdesk version (``training_record.json``)."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

RECORD_FILE_NAME = "training_record.json"
FORMAT = "litdesk-training-record/1"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def rows_summary(rows: np.ndarray) -> dict[str, Any]:
    """The rows used: their count, a hash of their positions, and the positions themselves
    when few (a contiguous range as ``start:stop``)."""
    rows = np.asarray(rows, dtype=np.int64)
    summary: dict[str, Any] = {"count": int(len(rows)),
                               "sha256": hashlib.sha256(rows.tobytes()).hexdigest()}
    if len(rows) and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        summary["range"] = f"{int(rows[0])}:{int(rows[0]) + len(rows)}"
    elif len(rows) <= 10_000:
        summary["positions"] = rows.tolist()
    return summary


def make_record(*, kind: str, base: Optional[str], data_path: Optional[Path],
                label_column: str, input_columns: list[str], rows: np.ndarray,
                labels: list[str], parameters: dict[str, Any], seed: int,
                epochs: list[dict[str, Any]], result: dict[str, Any],
                data_sha256: Optional[str] = None) -> dict[str, Any]:
    """The record as a JSON-ready dict (``data_sha256`` is computed from ``data_path`` when
    not given)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        litdesk_version = version("litdesk")
    except PackageNotFoundError:  # run from a source tree that was never installed
        litdesk_version = "unknown"
    if data_sha256 is None and data_path is not None and Path(data_path).exists():
        data_sha256 = file_sha256(Path(data_path))
    return {
        "format": FORMAT,
        "kind": kind,
        "base_model": base,
        "data": {"file": str(data_path) if data_path is not None else None,
                 "sha256": data_sha256, "label_column": label_column,
                 "input_columns": list(input_columns), "rows": rows_summary(rows)},
        "labels": list(labels),
        "parameters": parameters,
        "seed": int(seed),
        "epochs": epochs,
        "result": result,
        "litdesk_version": litdesk_version,
        "python": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``training_record.json`` in ``folder``."""
    file = Path(folder) / RECORD_FILE_NAME
    file.write_text(json.dumps(record, indent=2, default=_plain), encoding="utf-8")
    return file


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def find_record(model_path: Optional[Path]) -> Optional[dict[str, Any]]:
    """The training record beside a model file or in its folder, or None."""
    if model_path is None:
        return None
    path = Path(model_path)
    for folder in (path, path.parent) if path.is_dir() else (path.parent,):
        file = folder / RECORD_FILE_NAME
        if file.is_file():
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return document if isinstance(document, dict) else None
    return None


def describe_record(name: str, path: Optional[Path], record: Optional[dict[str, Any]]) -> str:
    """Plain text for Help ▸ About Model: where the model came from and, when it was trained
    here, how (base, data, rows, parameters, seed, metrics per epoch)."""
    lines = [name, f"Loaded from: {path}" if path else "Given from Python (no files)"]
    if record is None:
        lines.append("No training record: it was not trained with litdesk.")
        return "\n".join(lines)
    data = record.get("data") or {}
    rows = data.get("rows") or {}
    lines += [f"Trained: {record.get('kind')} with litdesk {record.get('litdesk_version')} "
              f"on {record.get('created')}",
              f"Base model: {record.get('base_model') or '(none: trained from scratch)'}",
              f"Data: {data.get('file')} (sha256 {str(data.get('sha256'))[:16]}…)",
              f"Label: {data.get('label_column')}; inputs: {', '.join(data.get('input_columns', []))}",
              f"Rows used: {rows.get('count', 0):,}" + (f" ({rows['range']})" if rows.get("range")
                                                        else ""),
              f"Seed: {record.get('seed')}",
              "Parameters: " + ", ".join(f"{key}={value}" for key, value in
                                         (record.get("parameters") or {}).items())]
    for epoch in record.get("epochs") or []:
        lines.append(f"Epoch {epoch.get('epoch')}: " + ", ".join(
            f"{key} {value:.4f}" for key, value in epoch.items()
            if isinstance(value, float)))
    result = record.get("result") or {}
    lines.append("Result: " + ", ".join(f"{key} {value:.4f}" if isinstance(value, float)
                                        else f"{key} {value}" for key, value in result.items()
                                        if key != "validation_positions"))
    return "\n".join(lines)
