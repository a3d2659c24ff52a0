"""The journal: a label fixed in a row follows that row when datapoints made before it are
deleted, so reopening the file puts every fix back on the datapoint it was made on."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import InlineRunner
from litdesk.core.workbench import Workbench

FILE_ROWS = 40


def write_numbers(path):
    """Two well separated classes in two numbers: x > 0 is "a", x < 0 is "b"."""
    rng = np.random.default_rng(0)
    lines = ["x,y,label"]
    for i in range(FILE_ROWS):
        sign = 1 if i % 2 == 0 else -1
        lines.append(f"{sign * 3 + rng.normal(0, 0.3):.3f},{rng.normal(0, 0.3):.3f},"
                     f"{'a' if sign > 0 else 'b'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def point(x: float, label: str) -> NewDatapoint:
    return NewDatapoint.now({"x": x, "y": 0.0, "label": label}, 0, "edited")


def labels(workbench) -> list:
    return workbench.session.dataset.table.column("label").to_pylist()


def test_fixes_follow_their_rows_through_deletions_made_after_them(tmp_path):
    path = write_numbers(tmp_path / "numbers.csv")
    first = Workbench(InlineRunner())
    first.open_paths([path])
    base = FILE_ROWS
    assert first.add_datapoints([point(3.0, "a"), point(3.1, "a"), point(-3.0, "a"),
                                 point(-3.1, "a")])
    # fixed: the file's row 1, the made rows base+2 (then deleted) and base+3
    assert first.fix_values("label", [1, base + 2, base + 3], ["a", "b", "b"])
    assert first.delete_datapoints([base, base + 2]) == 2
    # made after the deletion: a fix at the row's position then
    assert first.fix_values("label", [base], ["c"])
    expected = labels(first)
    assert expected[base:] == ["c", "b"] and expected[1] == "a"

    reopened = Workbench(InlineRunner())
    reopened.open_paths([path])
    assert labels(reopened) == expected
    assert reopened.session.dataset.table.column("x").to_pylist()[base:] == [3.1, -3.1]
    assert not [error for error in reopened.errors if "restored" in error.lower()]


def test_a_label_accepted_in_the_quality_dock_stays_on_its_datapoint_after_a_deletion(
        qtbot, window, tmp_path):
    from litdesk.ui.main_window import MainWindow

    path = write_numbers(tmp_path / "numbers.csv")
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([path])
    base = FILE_ROWS
    with qtbot.waitSignal(window.datapoints_added, timeout=10_000):
        # the last one's label contradicts its numbers: a label issue
        window.workbench.add_datapoints([point(3.0, "a"), point(3.1, "a"), point(-3.0, "a")])
    dock = window.quality_dock
    with qtbot.waitSignal(dock.shown, timeout=60_000,
                          check_params_cb=lambda *_: dock.audit is not None):
        window.docks["Data Quality"].raise_()
    view = dock.views[0]  # the label issues
    listed = view.model().rows().tolist()
    assert base + 2 in listed
    view.setFocus()
    view.selectRow(listed.index(base + 2))
    with qtbot.waitSignal(window.session.values_changed, timeout=10_000):
        qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier
                       | Qt.KeyboardModifier.AltModifier)
    assert labels(window.workbench)[base + 2] == "b"

    # Delete the first made datapoint from the table: the fixed one moves up a row.
    window.session.select([base], base)
    table = window.table_dock.view
    table.setFocus()
    with qtbot.waitSignal(window.session.dataset_changed, timeout=10_000):
        qtbot.keyClick(table, Qt.Key.Key_Delete)
    assert labels(window.workbench)[base:] == ["a", "b"]
    # The audit's lists named the old rows: none is left to accept a label on a moved row.
    assert all(row < base + 2 for listing in dock.listings for row in listing.rows)

    again = MainWindow(show_dialogs=False)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.dataset_loaded, timeout=10_000):
        again.open_paths([path])
    reopened = again.session.dataset.table
    assert reopened.column("x").to_pylist()[base:] == [3.1, -3.0]
    assert reopened.column("label").to_pylist()[base:] == ["a", "b"]
    assert not [error for error in again.workbench.errors if "restored" in error.lower()]
    again.runner.cancel_all()
    qtbot.waitUntil(lambda: not again.runner.busy, timeout=30_000)


def test_slices_follow_their_rows_through_a_deletion_and_come_back(tmp_path):
    path = write_numbers(tmp_path / "numbers.csv")
    first = Workbench(InlineRunner())
    first.open_paths([path])
    base = FILE_ROWS
    assert first.add_datapoints([point(3.0, "a"), point(3.1, "a"), point(-3.0, "a")])
    first.session.add_slice("kept", [1, base + 2])
    assert first.delete_datapoints([base]) == 1
    np.testing.assert_array_equal(first.session.slices["kept"], [1, base + 1])

    reopened = Workbench(InlineRunner())
    reopened.open_paths([path])
    assert not [error for error in reopened.errors if "slice" in error.lower()]
    np.testing.assert_array_equal(reopened.session.slices["kept"], [1, base + 1])
    assert reopened.session.dataset.table.column("x").to_pylist()[base + 1] == -3.0
