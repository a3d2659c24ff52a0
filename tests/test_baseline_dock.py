"""A quick baseline on category and number columns, trained from the Train dock: saved as ONNX
(one graph input per column, no pickle), it joins the session without a trust prompt and
predicts every row, the categories included."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from litdesk.ui.docks.training import BASELINE_BOOSTED, BASELINE_LINEAR


def write_tabular_csv(path, n=120):
    """A label that follows a colour (three of them) and leans on a number."""
    rng = np.random.default_rng(4)
    colours = rng.choice(["red", "green", "blue"], n)
    x = rng.normal(size=n)
    labels = np.where((colours == "red") | (x > 1.2), "yes", "no")
    lines = ["colour,x,label"] + [f"{c},{v:.3f},{y}" for c, v, y in zip(colours, x, labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", [BASELINE_LINEAR, BASELINE_BOOSTED])
def test_a_baseline_on_categories_is_saved_and_joins_without_trust(window, qtbot, tmp_path, mode):
    with qtbot.waitSignal(window.dataset_loaded, timeout=20_000):
        window.open_paths([write_tabular_csv(tmp_path / "shapes.csv")])
    window.show_training(mode)
    dock = window.training_dock
    dock.label_column.setCurrentIndex(dock.label_column.findText("label"))
    assert "categories" in dock.mode.currentText()
    with qtbot.waitSignal(dock.finished, timeout=60_000) as finished:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    run = finished.args[0]
    assert "(colour, x -> label)" in run.summary
    sidecar = json.loads((run.model_path.parent / "litdesk.json").read_text())
    assert [field["type"] for field in sidecar["inputs"]] == ["category", "number"]
    name = f"shapes ({mode} baseline)"
    qtbot.waitUntil(lambda: name in window.session.predictions, timeout=30_000)
    assert not window.workbench.errors  # no trust asked (it would be an error here)
    model = window.session.models[name]
    assert set(model.input_spec()) == {"colour", "x"}
    predictions = window.session.predictions[name]
    labels = np.asarray(predictions.spec["probas"].vocab)[
        predictions.fields["probas"].argmax(axis=1)]
    gold = window.session.dataset.table.column("label").to_numpy(zero_copy_only=False)
    assert (labels == gold).mean() > 0.9  # the colour is what decides: read, not dropped
