"""Guards against a Qt binding that corrupts the interpreter.

PySide6 6.12.0 on Python 3.11 drops one reference to None on every call of a method that
returns nothing (QLabel.setText, QColor.setAlphaF…); a long session then aborts with
"Fatal Python error: none_dealloc". pyproject.toml excludes that release; this test fails
if an installed binding does the same.
"""

import sys

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel


def test_void_methods_do_not_leak_references_to_none(qapp):
    label, color = QLabel(), QColor("red")
    before = sys.getrefcount(None)
    for _ in range(1000):
        label.setText("a")
        color.setAlphaF(0.5)
    assert before - sys.getrefcount(None) < 100


def test_modules_imported_after_pyside_are_checked_without_keeping_their_source(
        tmp_path, monkeypatch):
    """litdesk.ui answers PySide6's per-module "does it use PySide6?" check from the file's
    bytes: same answers, and no module's lines left in linecache for the session."""
    import linecache

    import litdesk.ui  # noqa: F401

    feature = sys.modules["shibokensupport.feature"]
    (tmp_path / "litdesk_test_plain.py").write_text("VALUE = 1\n")
    (tmp_path / "litdesk_test_qt.py").write_text("import PySide6.QtCore\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("litdesk_test_plain", "litdesk_test_qt"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        __import__(name)  # an import statement: PySide6 hooks __import__
        monkeypatch.delitem(sys.modules, name)
    assert feature.pyside_feature_dict.pop("litdesk_test_plain") == -1  # ignored by PySide6
    assert feature.pyside_feature_dict.pop("litdesk_test_qt") == 0  # a module using PySide6
    assert not any(name.startswith(str(tmp_path)) for name in linecache.cache)
