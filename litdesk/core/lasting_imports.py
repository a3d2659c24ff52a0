"""Libraries a model loader needs, imported once and set aside from cycle collection.

At each full collection Python's cycle collector walks every container object it tracks.
torch and transformers bring some 300,000 of them (classes, functions, their dicts) that live
as long as the process: with them, a full collection held the GIL for 150 to 260 ms (the GUI
thread runs it, :mod:`litdesk.ui.garbage`), again and again for the rest of the session.
:func:`import_lasting` imports what a loader declares (its manifest's ``imports``) and then
freezes (:func:`gc.freeze`) what is alive, so that later collections walk only what was made
since: 17 ms instead of 238 ms after loading the demo's BERT.

A package's shared libraries are loaded first where :data:`NATIVE_LIBRARIES` names them:
``import torch`` holds the GIL for 230 ms while the dynamic loader runs libtorch's start-up
(registering its operators), and the window with it; ctypes lets the GIL go while it loads the
same library, after which the import's longest hold is 40-50 ms (measured on a thread beating
every 2 ms).

It runs before the loader builds a model, which may hold reference cycles: a model closed
later is still collected. What else was alive at that moment (the window, an open dataset,
cycles dropped during the import) is never freed if it is or becomes cyclic garbage: the
price, paid when a loader first needs libraries not imported yet (once or twice a process).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

#: Per package, where its main shared library may be (the first that exists is loaded).
NATIVE_LIBRARIES = {"torch": ("lib/libtorch.so", "lib/libtorch.dylib", "lib/torch.dll")}

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
    """Load ``package``'s shared library named in :data:`NATIVE_LIBRARIES`, if it is not
    imported yet, with the GIL released; nothing if it has none or the load fails (its import
    then loads it, or says why)."""
    if package in sys.modules or package not in NATIVE_LIBRARIES:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations)))
    library = next((folder / name for name in NATIVE_LIBRARIES[package]
                    if (folder / name).is_file()), None)
    if library is not None:
        try:
            ctypes.CDLL(str(library))
        except OSError:
            pass


def _import_and_freeze(modules: Sequence[str], failed: list[BaseException]) -> None:
    try:
        for name in modules:
            load_native_libraries(name.partition(".")[0])
            importlib.import_module(name)
    except BaseException as error:  # raised again on the caller's thread
        failed.append(error)
        return
    gc.freeze()
