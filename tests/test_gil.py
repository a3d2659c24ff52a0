"""The window takes its turn at the GIL sooner while it runs, and gives the setting back."""

from __future__ import annotations

import sys

from litdesk.ui import gil
from litdesk.ui.main_window import MainWindow


def test_a_window_shortens_the_switch_interval_until_its_event_loop_ends(qtbot):
    gil.end_favouring_gui_thread()  # as after an earlier window's event loop
    before = sys.getswitchinterval()
    assert before > gil.SWITCH_INTERVAL_S
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    assert sys.getswitchinterval() == gil.SWITCH_INTERVAL_S
    gil.favour_gui_thread()  # a second window changes nothing
    gil.end_favouring_gui_thread()
    assert sys.getswitchinterval() == before
