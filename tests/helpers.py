"""Helpers and constants shared by several test modules (not a test module itself)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from litdesk.api import CategoryLabel, Dataset, TextSegment
from litdesk.core.jobs import run_job
from litdesk.core.loaders import DatasetLoadError, load_dataset
from litdesk.core.predict import predict_job
from litdesk.core.session import Session
from litdesk.ui.docks.salience import SalienceDock
from tests.fakes import KeywordModel


# --- The main window ------------------------------------------------------------------------

ROWS = [("I love this great phone", "positive"), ("terrible battery, awful", "negative"),
        ("fine, good value", "positive"), ("broke after a day", "negative"),
        ("excellent screen", "positive"), ("not worth it", "negative")]


def write_csv(path, rows=ROWS):
    lines = ["text,label"] + [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cell(dock, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    """What the comparison table of ``dock`` shows at (``row``, ``column``)."""
    model = dock.table.model()
    return model.data(model.index(row, column), role)


def headers(dock, role=Qt.ItemDataRole.DisplayRole) -> list:
    """The comparison table's column headers."""
    model = dock.table.model()
    return [model.headerData(c, Qt.Orientation.Horizontal, role)
            for c in range(model.columnCount())]


def shows_outcomes(qtbot, window, *models):
    """Wait until the outcomes of ``models`` are computed and their columns are in the table."""
    def shown():
        outcomes = window.session.outcomes
        columns = window.table_dock.model.table.column_names
        return outcomes is not None and all(
            name in outcomes.models and f"{name}_pred" in columns for name in models)

    qtbot.waitUntil(shown, timeout=60_000)  # behind any salience of the primary row


def load_with_model(qtbot, window, tmp_path, model=None):
    with qtbot.waitSignal(window.dataset_loaded, timeout=10_000):
        window.open_paths([write_csv(tmp_path / "reviews.csv")])
    model = model or KeywordModel()
    window.session.add_model(model)
    window.session.set_predictions(run_job(predict_job(model, window.session.dataset)))
    shows_outcomes(qtbot, window, model.name)
    return model


def shown(qtbot, widget, width: int = 600, height: int = 400):
    """``widget`` shown at this size, exposed, and closed with the test."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def click_row(qtbot, window, row):
    view = window.table_dock.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(window.table_dock.model.index(row, 0)).center())


def hover(widget, point: QPoint) -> None:
    """Move the mouse over ``point`` of ``widget`` with no button held."""
    position = QPointF(point)
    QApplication.sendEvent(widget, QMouseEvent(
        QEvent.Type.MouseMove, position, widget.mapToGlobal(position), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def drop(widget, paths):
    """Drag files over ``widget`` and drop them, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    # QApplication only routes a Drop inside a live drag session, so deliver it directly.
    widget.event(event)
    return event


def click_table_row(qtbot, window, row):
    view, model = window.table_dock.view, window.table_dock.model
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(model.index(row, 0)).center())
    assert window.session.selection.primary == row


def predict(qtbot, session: Session, model) -> None:
    """Predict every row with ``model`` and wait for the outcomes (a workbench computes them)."""
    with qtbot.waitSignal(session.outcomes_changed, timeout=10_000):
        session.set_predictions(run_job(predict_job(model, session.dataset)))


def finished(dock: SalienceDock) -> bool:
    """Every (model, method, row) of the current view has its result."""
    return not dock.runner.busy and all(key in dock.results for key in dock._cells)


# --- Data and the command line --------------------------------------------------------------

TEXTS = ["good film", "bad plot and terrible acting", "I love it", "meh", "great great fun",
         "not good", "a fine day", "awful"]


def make_dataset(texts=TEXTS, text_column="text"):
    labels = ["positive" if i % 2 == 0 else "negative" for i in range(len(texts))]
    table = pa.table({text_column: texts, "label": labels})
    return Dataset(table, {text_column: TextSegment(),
                           "label": CategoryLabel(vocab=("negative", "positive"))}, "tiny")


def load_error(path: Path) -> DatasetLoadError:
    with pytest.raises(DatasetLoadError) as caught:
        load_dataset(path)
    return caught.value


def save_to_disk_like(folder: Path, table: pa.Table, features: dict, shards: int = 1) -> Path:
    """What ``datasets.Dataset.save_to_disk`` writes: Arrow stream shards plus two JSON files."""
    folder.mkdir(parents=True)
    names = [f"data-{index:05d}-of-{shards:05d}.arrow" for index in range(shards)]
    step = -(-table.num_rows // shards)
    for index, name in enumerate(names):
        with pa.OSFile(str(folder / name), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table.slice(index * step, step))
    (folder / "state.json").write_text(json.dumps({
        "_data_files": [{"filename": name} for name in names], "_fingerprint": "0123abcd",
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({
        "citation": "", "description": "", "features": features, "homepage": "", "license": ""}))
    return folder


def run_litdesk(*args, home, timeout=180):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LITDESK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "litdesk", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


# --- Model folders ---------------------------------------------------------------------------

def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


def edit_json(file: Path, **changes) -> None:
    settings = json.loads(file.read_text())
    settings.update(changes)
    file.write_text(json.dumps(settings))


def toy_sentiment(n: int = 384, seed: int = 0, names=("negative", "positive")):
    """Texts in tests/tiny_bert.py's words whose label follows the word of praise or blame: a
    task a random tiny BERT learns in seconds. Returns (texts, labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = [f"the {rng.choice(['film', 'plot', 'story'])} was "
             f"{'very ' if rng.random() < 0.5 else ''}"
             f"{rng.choice(['great', 'good'] if label else ['awful', 'bad'])}" for label in y]
    return texts, [names[label] for label in y]


def write_toy_sentiment_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """:func:`toy_sentiment` as a CSV with a number leaning with the label and a split column
    (the first 80% "train", the rest "test")."""
    import csv

    texts, labels = toy_sentiment(n, seed)
    rng = np.random.default_rng(seed + 1)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "score", "split"])
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([text, label, round(float(rng.normal(2.0 * (label == "positive"))), 4),
                             "train" if i < 0.8 * n else "test"])
    return path
