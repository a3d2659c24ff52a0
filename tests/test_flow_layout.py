"""The wrapping row of controls: one line when there is room, more lines when not, a minimum
width of its widest item, hidden widgets taking no room."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton, QWidget

from litdesk.ui.widgets.flow_layout import FlowLayout
from tests.helpers import shown


def row_of_buttons(qtbot, count=6):
    widget = QWidget()
    layout = FlowLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    buttons = [QPushButton(f"Button number {i}" + "!" * i) for i in range(count)]
    for button in buttons:
        layout.addWidget(button)
    return shown(qtbot, widget, layout.sizeHint().width(), 200), layout, buttons


def lines(buttons):
    return sorted({button.geometry().top() for button in buttons if button.isVisible()})


def test_one_line_when_there_is_room_and_wrapped_within_the_width_when_not(qtbot):
    widget, layout, buttons = row_of_buttons(qtbot)
    assert len(lines(buttons)) == 1
    assert [b.geometry().left() for b in buttons] == sorted(b.geometry().left() for b in buttons)
    narrow = layout.sizeHint().width() // 2
    widget.resize(narrow, 200)
    qtbot.waitUntil(lambda: len(lines(buttons)) > 1)
    for button in buttons:
        assert 0 <= button.geometry().left() and button.geometry().right() < narrow
    for first, second in zip(buttons, buttons[1:]):  # in order, never overlapping
        a, b = first.geometry(), second.geometry()
        assert (b.top() == a.top() and b.left() > a.right()) or b.top() > a.bottom()
    assert layout.heightForWidth(narrow) >= buttons[-1].geometry().bottom()
    assert layout.heightForWidth(narrow) > layout.heightForWidth(layout.sizeHint().width())


def test_its_minimum_width_is_its_widest_item_and_hidden_items_take_no_room(qtbot):
    widget, layout, buttons = row_of_buttons(qtbot)
    widest = max(button.minimumSizeHint().width() for button in buttons)
    assert layout.minimumSize().width() == widest
    assert widget.minimumSizeHint().width() < layout.sizeHint().width() // 2
    full = layout.sizeHint().width()
    buttons[2].hide()
    assert layout.sizeHint().width() == full - buttons[2].sizeHint().width() - layout.spacing()
