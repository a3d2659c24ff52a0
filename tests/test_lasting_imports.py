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
import sys
from litdesk.core.lasting_imports import load_native_libraries

load_native_libraries("no_such_package")  # nothing known: nothing done
load_native_libraries("torch")
with open("/proc/self/maps") as maps:
    loaded = "libtorch.so" in maps.read()
print(loaded, "torch" in sys.modules)
import torch  # the import finds its library loaded
print(float(torch.ones(3) @ torch.ones(3)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_torchs_library_is_loaded_before_torch_is_imported():
    result = subprocess.run([sys.executable, "-c", NATIVE_FIRST], capture_output=True,
                            text=True, timeout=300, check=True)
    assert result.stdout.split() == ["True", "False", "3.0"]
