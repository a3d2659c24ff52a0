"""The Qt user interface: the only package that imports PySide6, pyqtgraph or superqt."""

import sys

import PySide6.QtCore  # noqa: F401  (installs the import hook tuned below)


def _answer_pyside_import_checks_from_bytes() -> None:
    """PySide6 asks of every module imported after it whether its source mentions "PySide6"
    (to switch its ``__feature__`` options per module), through ``inspect.getsource``. That
    keeps the lines of every module in ``linecache`` for the whole session (67 MB of text
    once torch, transformers, scikit-learn and pandas are imported) and holds the GIL while
    it splits them, on the workers that import models: those imports took 6.0–8.1 s instead
    of 5.3–5.4 s. The same question is answered here from the file's bytes; modules without
    a source file, and a PySide6 whose internals differ, keep PySide6's own check."""
    feature = sys.modules.get("shibokensupport.feature")
    ask_pyside = getattr(feature, "_mod_uses_pyside", None)
    if ask_pyside is None or getattr(ask_pyside, "reads_bytes", False):
        return

    def mentions_pyside(module) -> bool:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            try:
                with open(path, "rb") as source:
                    return b"PySide6" in source.read()
            except OSError:
                pass
        return ask_pyside(module)

    mentions_pyside.reads_bytes = True
    feature._mod_uses_pyside = mentions_pyside


_answer_pyside_import_checks_from_bytes()
