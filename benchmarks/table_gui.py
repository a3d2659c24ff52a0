"""The Data Table widget at a million rows: main-thread costs of showing, scrolling, sorting.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/table_gui.py [--rows 1000000]

Prints one JSON line of milliseconds: setting the dataset on the window (main thread),
painting the table scrolled to the middle and to the end (main thread), and a sort and a
search from the user's click/Enter until the rows are shown (background worker), with the
longest main-thread stall seen while they ran.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.table import SPEC, make_table  # noqa: E402
from litdesk.api import Dataset  # noqa: E402
from litdesk.ui.main_window import MainWindow  # noqa: E402


def timed_ms(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def until_idle_ms(window: MainWindow, action) -> tuple[float, float]:
    """Run ``action``; wait for the worker to finish. (wall ms, longest event-loop gap ms)."""
    gaps, clock, loop = [0], QElapsedTimer(), QEventLoop()
    ticker = QTimer(interval=5)
    ticker.timeout.connect(lambda: gaps.append(clock.restart()))
    window.runner.idle.connect(loop.quit)
    start = time.perf_counter()
    clock.start()
    ticker.start()
    action()
    loop.exec()
    ticker.stop()
    window.runner.idle.disconnect(loop.quit)
    return (time.perf_counter() - start) * 1000, float(max(gaps[1:] or [0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    window = MainWindow(show_dialogs=False)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    dataset = Dataset(make_table(args.rows, seed=0), SPEC, "million")
    dock = window.table_dock
    figures = {"rows": args.rows}
    figures["set_dataset_ms"] = timed_ms(lambda: window.session.set_dataset(dataset))
    figures["paint_middle_ms"] = timed_ms(lambda: (
        dock.view.scrollTo(dock.model.index(args.rows // 2, 0)), dock.view.viewport().grab()))
    figures["paint_end_ms"] = timed_ms(lambda: (dock.view.scrollToBottom(),
                                                dock.view.viewport().grab()))
    figures["sort_by_score_ms"], figures["sort_max_stall_ms"] = until_idle_ms(
        window, lambda: dock.view.horizontalHeader().sectionClicked.emit(2))
    figures["resort_by_score_ms"], _ = until_idle_ms(
        window, lambda: dock.view.horizontalHeader().sectionClicked.emit(2))

    def search():
        dock.search.setText("great label=positive")
        dock.search.returnPressed.emit()

    figures["search_ms"], figures["search_max_stall_ms"] = until_idle_ms(window, search)
    figures["rows_after_search"] = len(dock.model.rows)
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}))
    window.close()


if __name__ == "__main__":
    main()
