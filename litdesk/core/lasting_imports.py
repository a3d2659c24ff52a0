"""Libraries a model loader needs, imported once and set aside from cycle collection.

At each full collection Python's cycle collector walks every container object it tracks.
torch and transformers bring some 300,000 of them (classes, functions, their dicts) that live
as long as the process: with them, a full collection held the GIL for 150 to 260 ms (the GUI
thread runs it, :mod:`litdesk.ui.garbage`), again and again for the rest of the session.
:func:`import_lasting` imports what a loader declares (its manifest's ``imports``) and then
freezes (:func:`gc.freeze`) what is alive, so that later collections walk only what was made
since: 17 ms instead of 238 ms after loading the demo's BERT.

It runs before the loader builds a model, which may hold reference cycles: a model closed
later is still collected. What else was alive at that moment (the window, an open dataset,
cycles dropped during the import) is never freed if it is or becomes cyclic garbage: the
price, paid when a loader first needs libraries not imported yet (once or twice a process).

A package's shared library is loaded before its first import where :data:`NATIVE_LIBRARIES`
names it (by :func:`import_lasting`, and from any importer once
:func:`load_native_libraries_first` is called): ``import torch`` holds the GIL for 230 ms in
one piece while the dynamic loader runs libtorch's start-up (registering its operators), and
the window waits. Python's own loading (an import, ``ctypes.CDLL``) keeps the GIL through
``dlopen``; libc's ``dlopen`` called through ctypes' foreign-function interface lets it go.
Measured with a thread beating every 2 ms, its longest wait over the whole span: dlopen of
libtorch 187 ms with a 4 ms longest wait, then ``import torch`` a 43 ms one.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

#: Per package, where its main shared library may be (the first that exists is loaded).
NATIVE_LIBRARIES = {"torch": ("lib/libtorch.so", "lib/libtorch.dylib")}

_lock = threading.Lock()  # concurrent loads import once, and freeze once it is done
_under_way = threading.Event()


def under_way() -> bool:
    """Whether lasting imports are running: a collection now would walk the objects they
    make, which are frozen when they end (the GUI thread's collector waits)."""
    return _under_way.is_set()


def import_lasting(modules: Sequence[str]) -> None:
    """Import ``modules``; if any was not imported yet, freeze what is alive afterwards.

    The import and the freeze run on a thread of their own: the frames of the caller's
    thread would be frozen too, and a caller's frame that later holds the model it loads
    (kept as a frame object once a warning has looked up the stack) would keep it for ever."""
    with _lock:
        if all(name in sys.modules for name in modules):
            for name in modules:
                importlib.import_module(name)  # a no-op, or waits for an import under way
            return
        failed: list[BaseException] = []
        thread = threading.Thread(target=_import_and_freeze, args=(modules, failed),
                                  name="litdesk-lasting-imports")
        _under_way.set()
        try:
            thread.start()
            thread.join()
        finally:
            _under_way.clear()
        if failed:
            raise failed[0]


def load_native_libraries(package: str) -> None:
    """Load ``package``'s shared library named in :data:`NATIVE_LIBRARIES`, if the package is
    not imported yet, with the GIL let go; nothing if it has none, or where libc's dlopen cannot
    be called (its import then loads the library as before)."""
    if package in sys.modules or package not in NATIVE_LIBRARIES:
        return
    spec = importlib.machinery.PathFinder.find_spec(package)  # not the finders: no recursion
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations)))
    library = next((folder / name for name in NATIVE_LIBRARIES[package]
                    if (folder / name).is_file()), None)
    dlopen = _libc_dlopen()
    if library is not None and dlopen is not None:
        dlopen(os.fsencode(library), os.RTLD_NOW)  # a failure (NULL) is the import's to report


def _libc_dlopen():
    """libc's dlopen as a ctypes foreign function (called without the GIL), or None."""
    try:
        dlopen = ctypes.CDLL(None).dlopen
    except (AttributeError, OSError, TypeError):  # Windows, or no dlopen in the process
        return None
    dlopen.argtypes, dlopen.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_void_p
    return dlopen


class _NativeLibrariesFirst(importlib.abc.MetaPathFinder):
    """Asked first where a module is, loads the shared library of a package named in
    :data:`NATIVE_LIBRARIES` before its first import, then lets the other finders answer."""

    def find_spec(self, name, path=None, target=None):  # noqa: ARG002 (importlib API)
        if name in NATIVE_LIBRARIES:
            load_native_libraries(name)
        return None


def load_native_libraries_first() -> None:
    """From now on the first import of a package named in :data:`NATIVE_LIBRARIES`, from any
    module (a model loader, captum, the trainer), loads its shared library first with the GIL
    let go (once per process; the window calls it)."""
    if not any(isinstance(finder, _NativeLibrariesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NativeLibrariesFirst())


def _import_and_freeze(modules: Sequence[str], failed: list[BaseException]) -> None:
    try:
        for name in modules:
            load_native_libraries(name.partition(".")[0])
            importlib.import_module(name)
    except BaseException as error:  # raised again on the caller's thread
        failed.append(error)
        return
    gc.freeze()
