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
