"""The launch's warm-up thread: pandas and the plugin manifests are ready before the launch
work asks for them, and the thread starts once however many windows are made."""

from __future__ import annotations

import subprocess
import sys

WARM_UP = """
import sys, threading
from litdesk.core import plugins, warm_up
assert "pandas" not in sys.modules
warm_up.start_warm_up()
warm_up.start_warm_up()  # a second window: nothing more starts
threads = [t for t in threading.enumerate() if t.name == "litdesk-warm-up"]
print("threads:", len(threads))
threads[0].join(60)
print("pandas:", "pandas" in sys.modules)
print("plugins read:", plugins.discover_plugins.cache_info().currsize)
"""


def test_the_warm_up_imports_pandas_and_reads_the_plugins_once(litdesk_home):
    result = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True,
                            timeout=120)  # a process of its own: pandas not imported yet
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["threads: 1", "pandas: True", "plugins read: 1"]
