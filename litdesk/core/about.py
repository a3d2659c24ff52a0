"""What Help ▸ About tells, and a bug report needs: versions, the device, where files live.

Nothing here imports torch: its version comes from the installed package's metadata, and the
device is resolved only when torch is already loaded (a model was opened), since importing it
takes seconds and must never happen on the GUI thread.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from litdesk.core import logs, paths


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(name)  # a frozen app may ship a package without its metadata
        return str(getattr(module, "__version__", "not installed"))


def device_line(choice: str) -> str:
    """The device models open on: the choice in Models ▸ Device, resolved when it is "auto"
    and torch is loaded."""
    torch = sys.modules.get("torch")
    if choice != "auto":
        return choice
    if torch is None:
        return "auto (chosen when the first model opens)"
    from litdesk.api.device import best_device

    resolved = best_device("auto")
    if resolved.startswith("cuda"):
        return f"auto: cuda ({torch.cuda.get_device_name(0)})"
    return f"auto: {resolved}"


def about_facts(device_choice: str, qt_line: str) -> list[tuple[str, str]]:
    """(label, value) pairs, in the order shown; ``qt_line`` comes from the UI (core knows no
    Qt)."""
    torch_version = package_version("torch")
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.version, "cuda", None):
        torch_version += f" (CUDA {torch.version.cuda})"
    return [
        ("litdesk", package_version("litdesk")),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()}, "
                   f"{platform.system()} {platform.machine()})"),
        ("torch", torch_version),
        ("Qt", qt_line),
        ("Device", device_line(device_choice)),
        ("Settings", str(paths.config_dir())),
        ("Data", str(paths.data_dir())),
        ("Cache", str(paths.cache_dir())),
        ("Logs", str(logs.log_file())),
    ]
