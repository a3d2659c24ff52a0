"""A model loader's lasting imports: loaded with the GIL let go where a shared library is
known, then frozen out of the cycle collector's walks, before the model is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

from litdesk.core import paths, plugins


LASTING_IMPORTS = """
import gc, sys, weakref
from litdesk.core.model_loading import load_model
from litdesk.core.paths import DEMO_LM, DEMO_MODELS

gc.disable()  # as in the window, where a GUI-thread timer collects
model = load_model(DEMO_MODELS[0])  # the demo's BERT: imports torch and transformers
frozen = gc.get_freeze_count()
tracked = any(obj is model for obj in gc.get_objects())
alive = weakref.ref(model)
del model
gc.collect()
load_model(DEMO_LM)  # a second model: nothing new to import, nothing frozen
print(frozen, tracked, alive() is None, gc.get_freeze_count() == frozen)
"""


@pytest.mark.slow  # imports torch and transformers in a fresh process
def test_a_loaders_libraries_are_set_aside_from_collection_but_its_model_is_not():
    # The libraries' objects are frozen (later full collections skip them); the model built
    # after is not, so a closed model held in a cycle is still freed.
    assert "torch" in plugins.discover_plugins().find(
        "model_loaders", paths.DEMO_MODELS[0]).imports
    result = subprocess.run([sys.executable, "-c", LASTING_IMPORTS], capture_output=True,
                            text=True, timeout=300, check=True)
    frozen, tracked, freed, frozen_once = result.stdout.split()
    assert int(frozen) > 100_000 and (tracked, freed, frozen_once) == ("True",) * 3


NATIVE_FIRST = """
import sys, threading, time
from litdesk.core import lasting_imports

beats, stop = [], threading.Event()
threading.Thread(target=lambda: [beats.append(time.perf_counter()) or time.sleep(0.002)
                                 for _ in iter(stop.is_set, True)]).start()
seen = []
original = lasting_imports.load_native_libraries

def recorded(package):
    started = time.perf_counter()
    original(package)
    ended = time.perf_counter()
    with open("/proc/self/maps") as maps:
        loaded = "libtorch.so" in maps.read()
    seen.append((package, loaded, package in sys.modules,
                 sum(started < beat < ended for beat in beats)))

lasting_imports.load_native_libraries = recorded
lasting_imports.load_native_libraries_first()
lasting_imports.load_native_libraries_first()  # installed once
import torch.nn  # its first import, as captum's or a trainer's would be
stop.set()
((package, loaded, imported, beats_meanwhile),) = seen
finders = sum(type(f).__name__ == "_NativeLibrariesFirst" for f in sys.meta_path)
print(package, loaded, imported, beats_meanwhile >= 5, finders, float(torch.ones(3) @ torch.ones(3)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_torchs_library_is_loaded_without_the_gil_before_its_first_import():
    # Loaded before torch is imported, by the finder the window installs; another thread
    # beating every 2 ms runs meanwhile (with the GIL held it could not beat at all).
    result = subprocess.run([sys.executable, "-c", NATIVE_FIRST], capture_output=True,
                            text=True, timeout=300, check=True)
    assert result.stdout.split() == ["torch", "True", "False", "True", "1", "3.0"]
