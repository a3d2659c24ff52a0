"""Work that holds the GIL for seconds, run in a child process that a job polls and kills.

numba and Cython kernels (UMAP, t-SNE), scikit-learn's tokenisers and faiss searches hold the
GIL for seconds at a time: run on a worker thread they freeze the window, and a thread cannot
be stopped half-way. A child process can be killed at once. The parent hands it its inputs
as files in a temporary folder; the child reports on stdout, one line per event:

- ``litdesk-progress<TAB>done<TAB>total<TAB>message``: relayed as :class:`Progress`;
- ``litdesk-error<TAB>Type: message``: the one line the parent raises.

:func:`child_job` runs the child from the parent side; :func:`child_main` is the child's side.
The child is this Python running a module's ``_child_main`` (``-c``) or, in a frozen app
(PyInstaller: no interpreter to hand ``-c``), the app itself with a flag that
``litdesk.__main__`` turns into that ``_child_main`` (:func:`child_command`).

A plain subprocess rather than multiprocessing's spawn, which would re-import the caller's
``__main__`` (re-running an unguarded script, or opening a second window).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from litdesk.core.jobs import Job, Progress

#: How often the job yields while the child is quiet (and so how soon a cancel lands).
POLL_SECONDS = 0.2
PROGRESS_MARK, ERROR_MARK = "litdesk-progress\t", "litdesk-error\t"

#: What the child calls to report progress: (done, total, message).
Report = Callable[[int, int, str], None]


def child_command(flag: str, module: str) -> list[str]:
    """How to start ``module``'s ``_child_main``: this Python with ``-c``, or, frozen, the
    app itself with ``flag`` (which ``litdesk.__main__`` maps to that module)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, flag]
    return [sys.executable, "-c", f"from {module} import _child_main; _child_main()"]


def child_job(command: Sequence[str], label: str, output: Path,
              error_type: type[Exception] = RuntimeError,
              starting: Optional[str] = None) -> Job[None]:
    """Run ``command`` (from :func:`child_command`, plus its arguments), yielding its progress
    lines as :class:`Progress` (the last one again while it is quiet; ``starting``, default
    "``label``: starting", before the first); return once it wrote ``output`` and exited.
    Closing the job kills the child at once.

    Raises ``error_type`` with one line: "``label`` failed: <the child's error>", or
    "``label`` stopped unexpectedly (exit code N): <its last line>".
    """
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_root, environment.get("PYTHONPATH")]))
    process = None
    try:
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, env=environment)
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines),
                                  daemon=True, name=f"{label} output")
        reader.start()
        progress = Progress(0, 0, starting or f"{label}: starting")
        error, other = None, []
        while True:
            try:
                line = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                yield progress
                continue
            if line is None:
                break
            if line.startswith(PROGRESS_MARK):
                done, total, message = line[len(PROGRESS_MARK):].split("\t", 2)
                progress = Progress(int(done), int(total), message)
                yield progress
            elif line.startswith(ERROR_MARK):
                error = line[len(ERROR_MARK):]
            elif line.strip():
                other.append(line.strip())
        process.wait()
        if error is not None:
            raise error_type(f"{label} failed: {error}")
        if process.returncode != 0 or not output.exists():
            last = f": {other[-1]}" if other else ""
            raise error_type(
                f"{label} stopped unexpectedly (exit code {process.returncode}){last}")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def _read_lines(stream, lines: "queue.Queue[Optional[str]]") -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    stream.close()
    lines.put(None)


def child_main(work: Callable[[Sequence[str], Report], None]) -> None:
    """The child's side: run ``work(arguments, report)``; a failure is reported to the parent
    as one line and ends the process with exit code 1."""

    def report(done: int, total: int, message: str) -> None:
        print(f"{PROGRESS_MARK}{done}\t{total}\t{message}", flush=True)

    try:
        work(sys.argv[1:], report)
    except Exception as error:  # reported to the parent as one line
        print(f"{ERROR_MARK}{type(error).__name__}: {error}".replace("\n", " "), flush=True)
        raise SystemExit(1) from error
