"""Plugin discovery by manifest: no plugin code is imported until a contribution is used.

A plugin is an entry point in the ``litdesk.plugins`` group whose value names a package and a
TOML manifest inside it (``package:litdesk.toml``), as npe2 does for napari. A manifest lists
contributions; each names the ``module:function`` that implements it::

    name = "transformers"
    [[model_loaders]]
    id = "hf_transformers"
    callable = "litdesk_transformers.loader:load"
    patterns = ["config.json"]
    imports = ["torch", "transformers.modeling_utils"]  # optional: long-lived libraries

A Python file in the user plugin folder (``<data dir>/plugins``) is a plugin too: its
manifest is a literal dict assigned to ``LITDESK_MANIFEST`` at module level, read without
running the file, with callables named ``<file stem>:<function>``.

A plugin whose manifest cannot be read is recorded with its error and skipped.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import os
import stat
import sys
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

ENTRY_POINT_GROUP = "litdesk.plugins"
MANIFEST_VARIABLE = "LITDESK_MANIFEST"


#: What a manifest may contribute. Model loaders are ``callable(path, LoadOptions) -> Model``
#: and dataset loaders ``callable(path) -> Dataset``, for paths matching their ``patterns``;
#: interpreters, generators and metrics are listed for the docks that use them. Model exporters
#: write fitted scikit-learn estimators in the plugin's format (found by ``id``). Model
#: adapters are ``callable(obj, name) -> Model`` for Python objects (``litdesk.show``) whose
#: class, or a base class, has a qualified name (``module.Class``) matching their ``patterns``.
CONTRIBUTION_KINDS = ("model_loaders", "dataset_loaders", "interpreters", "generators", "metrics",
                      "model_exporters", "model_adapters")


@dataclass(frozen=True)
class Contribution:
    """One thing a plugin provides, implemented by ``callable`` (``module:function``).

    A pattern matches a file by name, or a folder that contains a file of that name.
    """

    kind: str
    plugin: str
    id: str
    callable: str
    patterns: tuple[str, ...] = ()
    description: str = ""
    #: The file of a user plugin (its module is not importable by name).
    source: Optional[Path] = None
    #: Modules the implementation needs that live as long as the process (a model loader's
    #: ``torch``): imported first, apart from what it builds
    #: (:mod:`litdesk.core.lasting_imports`).
    imports: tuple[str, ...] = ()

    def matches(self, path: Path) -> bool:
        """Whether this loader accepts ``path``."""
        for pattern in self.patterns:
            if path.is_dir():
                if any(fnmatch.fnmatch(child.name, pattern) for child in path.iterdir()):
                    return True
            elif fnmatch.fnmatch(path.name, pattern):
                return True
        return False

    @property
    def has_wildcards(self) -> bool:
        """Whether any pattern is a wildcard rather than an exact file name."""
        return any(any(c in pattern for c in "*?[") for pattern in self.patterns)

    def load_callable(self) -> Callable[..., Any]:
        """Import the implementing function (the first time this plugin's code runs)."""
        module_name, _, attribute = self.callable.partition(":")
        if self.source is None:
            return getattr(importlib.import_module(module_name), attribute)
        qualified = f"litdesk_user_plugins.{module_name}"
        module = sys.modules.get(qualified)
        if module is None:
            spec = importlib.util.spec_from_file_location(qualified, self.source)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[qualified] = module
        return getattr(module, attribute)


@dataclass
class PluginRegistry:
    """What discovery found: contributions by kind, and the plugins that failed."""

    contributions: dict[str, list[Contribution]] = field(
        default_factory=lambda: {kind: [] for kind in CONTRIBUTION_KINDS})
    plugins: dict[str, str] = field(default_factory=dict)  # plugin name -> description
    errors: dict[str, str] = field(default_factory=dict)  # entry point name -> error

    @property
    def model_loaders(self) -> list[Contribution]:
        """Declared model loaders, in discovery order."""
        return self.contributions["model_loaders"]

    @property
    def dataset_loaders(self) -> list[Contribution]:
        """Declared dataset loaders, in discovery order."""
        return self.contributions["dataset_loaders"]

    def find(self, kind: str, path: Path) -> Optional[Contribution]:
        """The contribution of ``kind`` whose patterns accept ``path``; exact file names are
        asked before wildcards (a Hugging Face checkpoint folder also holds ``optimizer.pt``)."""
        ordered = sorted(self.contributions[kind], key=lambda item: item.has_wildcards)
        return next((item for item in ordered if item.matches(path)), None)


def _read_manifest(value: str) -> dict[str, Any]:
    package, _, manifest_name = value.partition(":")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package!r} not found")
    manifest_path = Path(next(iter(spec.submodule_search_locations))) / manifest_name
    with open(manifest_path, "rb") as handle:
        return tomllib.load(handle)


def _read_user_manifest(file: Path) -> Optional[dict[str, Any]]:
    """The ``LITDESK_MANIFEST`` literal of a user plugin file, without running the file; None
    when ``file`` is not a regular file (a FIFO, a device, a folder), which is skipped.

    The file is opened without blocking and checked once open: reading a FIFO waits for ever."""
    descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        source = handle.read()
    tree = ast.parse(source, filename=str(file))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name)
                                                and target.id == MANIFEST_VARIABLE
                                                for target in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{file.name} assigns no {MANIFEST_VARIABLE} dict")


def user_plugin_folder() -> Path:
    """Where a user drops single-file plugins."""
    from litdesk.core import paths

    folder = paths.data_dir() / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _register(registry: PluginRegistry, entry_name: str, manifest: dict[str, Any],
              source: Optional[Path] = None) -> None:
    plugin = str(manifest.get("name", entry_name))
    unknown = set(manifest) - set(CONTRIBUTION_KINDS) - {"name", "description"}
    if unknown:
        raise ValueError(f"unknown manifest keys: {', '.join(sorted(unknown))}")
    contributions = {
        kind: [Contribution(kind=kind, plugin=plugin, id=str(item["id"]),
                            callable=str(item["callable"]),
                            patterns=tuple(item.get("patterns", ())),
                            description=str(item.get("description", "")), source=source,
                            imports=tuple(str(name) for name in item.get("imports", ())))
               for item in manifest.get(kind, [])]
        for kind in CONTRIBUTION_KINDS}
    for kind, items in contributions.items():
        registry.contributions[kind].extend(items)
    registry.plugins[plugin] = str(manifest.get("description", ""))


@lru_cache(maxsize=1)
def discover_plugins() -> PluginRegistry:
    """Read every installed plugin's manifest, then the user's plugin files (cached)."""
    registry = PluginRegistry()
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            _register(registry, entry.name, _read_manifest(entry.value))
        except Exception as error:  # a broken plugin must never stop the app
            registry.errors[entry.name] = f"{type(error).__name__}: {error}"
    for file in sorted(user_plugin_folder().glob("*.py")):
        try:
            manifest = _read_user_manifest(file)
            if manifest is not None:
                _register(registry, file.stem, manifest, source=file)
        except Exception as error:
            registry.errors[file.name] = f"{type(error).__name__}: {error}"
    return registry
