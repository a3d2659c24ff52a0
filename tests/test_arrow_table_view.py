"""The Data Table's view of an Arrow table: its delegate reads each cell in one call and must
draw what Qt's own delegate draws from the model's roles, in every state a row can be in; its
row header is as wide as its widest label without asking for hundreds of them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QTableView

from litdesk.ui.widgets.arrow_table_model import (STAR_MARK, ArrowTableModel, NumberDelegate,
                                                  RowHeader)

ROWS = 12


@pytest.fixture
def view(qtbot):
    table = pa.table({"text": [f"review {i}" for i in range(ROWS)],
                      "score": np.linspace(0, 1, ROWS),
                      "count": pa.array([i if i % 4 else None for i in range(ROWS)], pa.int64())})
    model = ArrowTableModel()
    model.set_table(table, np.arange(ROWS)[::-1].copy())  # sorted: view row ≠ table row
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(700, 500)
    view.horizontalHeader().setDefaultSectionSize(150)  # every number fits: no "…"
    view.show()
    qtbot.waitExposed(view)
    model.set_starred(np.array([1, 3], dtype=np.int64))
    model.set_selected(np.array([3, 4], dtype=np.int64))  # 3: starred and selected
    view.selectRow(6)  # the view's own selection too
    return view


def _option(view: QTableView, delegate: QStyledItemDelegate, index) -> QStyleOptionViewItem:
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(index)
    delegate.initStyleOption(option, index)
    return option


def test_each_cell_gets_the_options_qts_delegate_makes_from_the_roles(view):
    ours, qts = NumberDelegate(view), QStyledItemDelegate(view)
    model = view.model()
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            index = model.index(row, column)
            mine, reference = _option(view, ours, index), _option(view, qts, index)
            assert (mine.text, mine.features, mine.displayAlignment) == \
                (reference.text, reference.features, reference.displayAlignment), (row, column)
            assert mine.backgroundBrush == reference.backgroundBrush, (row, column)
            assert mine.palette.color(QPalette.ColorRole.Text) == \
                reference.palette.color(QPalette.ColorRole.Text), (row, column)


def test_the_table_looks_as_with_qts_delegate(view):
    view.setItemDelegate(QStyledItemDelegate(view))
    reference = view.viewport().grab().toImage()
    view.setItemDelegate(NumberDelegate(view))
    assert view.viewport().grab().toImage() == reference


def test_the_row_header_fits_its_widest_label_asking_the_model_for_few(qtbot, monkeypatch):
    rows = 5000
    model = ArrowTableModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setVerticalHeader(RowHeader(view))
    view.show()
    qtbot.waitExposed(view)
    asked = []
    header_data = ArrowTableModel.headerData
    monkeypatch.setattr(ArrowTableModel, "headerData",
                        lambda *args: (asked.append(args[1]), header_data(*args))[1])
    model.set_table(pa.table({"text": [f"review {i}" for i in range(rows)]}))
    view.grab()
    assert len(asked) < 200  # the rows shown; Qt's own header asks ~800 at each reset
    header = view.verticalHeader()
    bold = QFont(header.font())
    bold.setBold(True)

    def fits(label: str) -> bool:
        return header.width() > QFontMetrics(bold).horizontalAdvance(label)

    assert fits(str(rows - 1))
    model.set_starred(np.array([2500], dtype=np.int64))
    model.set_pinned(1234)  # a row far from the first and last hundred
    view.grab()
    assert model.headerData(1234, Qt.Orientation.Vertical) == f"★ {1234}"
    assert fits(f"★ {STAR_MARK} {rows - 1}")
