"""Starting the Qt application: the window first, then the launch work."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Optional

# Models' files are data: never let Hugging Face libraries reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from litdesk.api import Dataset, Model  # noqa: E402
from litdesk.core import paths  # noqa: E402
from litdesk.core.warm_up import start_warm_up  # noqa: E402
from litdesk.ui.garbage import end_collection_on_gui_thread  # noqa: E402
from litdesk.ui.gil import end_favouring_gui_thread  # noqa: E402


def close_on_terminate(app: QApplication, window) -> None:
    """On SIGTERM (a logout, ``kill``), close the window as its close button does (the layout
    is saved, the jobs stop) instead of dying mid-write. Python runs a signal handler only
    between bytecodes, so a timer gives it that chance while Qt waits for events, and the
    same timer closes and quits from inside the event loop (a quit before it runs is lost)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set on the main thread
    previous = signal.getsignal(signal.SIGTERM)
    terminated = threading.Event()

    def tick() -> None:
        if terminated.is_set():
            if window.isVisible():
                window.close()
            app.quit()

    signal.signal(signal.SIGTERM, lambda _signum, _frame: terminated.set())
    ticker = QTimer(window, interval=200)
    ticker.timeout.connect(tick)
    ticker.start()
    app.aboutToQuit.connect(lambda: signal.signal(signal.SIGTERM, previous))


def run_app(paths_in: list[str], device: Optional[str] = None, exit_when_ready: bool = False,
            screenshot: Optional[Path] = None, started_at: Optional[float] = None,
            trust: bool = False, label: Optional[str] = None,
            models: Sequence[Model] = (), datasets: Sequence[Dataset] = (),
            single_instance: bool = False) -> int:
    """Show the window, open ``paths_in`` and the given objects (the demo when there are
    none) and run the event loop. With ``single_instance``, the window takes the files of
    later ``litdesk --reuse-window`` launches (see :mod:`litdesk.ui.single_instance`)."""
    started_at = started_at or time.time()
    start_warm_up()  # beside the window's own imports and construction
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("litdesk")
    app.setOrganizationName("litdesk")
    app.setDesktopFileName("litdesk")  # the launcher entry of `litdesk install-desktop`
    from litdesk.ui.main_window import MainWindow

    # --trust covers the files named here, not whatever is opened later.
    window = MainWindow(device=device, show_dialogs=not exit_when_ready,
                        trusted_paths=paths_in if trust else (), label=label)
    # A headless run (--exit-when-ready, --screenshot) leaves the user's window size alone.
    window.remember_layout = not exit_when_ready
    close_on_terminate(app, window)
    window.show()
    if single_instance:
        from litdesk.ui.single_instance import serve

        serve(window)
    app.processEvents()
    window_shown_s = time.time() - started_at

    def finish() -> None:
        ready_s = time.time() - started_at
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(screenshot))
        print(json.dumps({"window_shown_s": round(window_shown_s, 3),
                          "ready_s": round(ready_s, 3)}), flush=True)
        for error in window.errors:
            print(f"litdesk: {error}", file=sys.stderr)
        app.exit(1 if window.errors else 0)

    if exit_when_ready:
        window.runner.idle.connect(lambda: QTimer.singleShot(0, _finish_if_idle))

        def _finish_if_idle() -> None:
            if not window.runner.busy:
                finish()

    def launch() -> None:
        if paths_in or models or datasets:
            window.open_objects(models, datasets)
            window.open_paths(paths_in)
        elif paths.DEMO_DATASET.exists():
            window.open_demo()
        if exit_when_ready and not window.runner.busy:
            finish()

    QTimer.singleShot(0, launch)
    code = app.exec()
    end_collection_on_gui_thread()  # Python goes on without the event loop (a notebook)
    end_favouring_gui_thread()
    if window.isVisible():  # --exit-when-ready, or show() returning into a notebook
        # Hidden rather than closed: a close would post the application a quit that a later
        # event loop (the next show()) would obey.
        window.runner.shutdown()
        window.save_layout()
        window.hide()
    return code
