"""The Embedding Projector coloured by what changed from one model to another (a trained model
and the one it came from): wrong → right, right → wrong, still right, still wrong."""

from __future__ import annotations

import os

import numpy as np

from litdesk.core.before_after import STILL_RIGHT, WENT_RIGHT, WENT_WRONG
from litdesk.ui.docks.projector import CHANGED_PALETTE
from tests.fakes import KeywordModel
from tests.helpers import load_with_model, shows_outcomes

# KeywordModel on tests.helpers.ROWS: "before" (bias -3) calls every row negative, "after"
# (bias +0.7) gets the positive rows right and calls two negative ones positive.
CHANGES = [WENT_RIGHT, WENT_WRONG, WENT_RIGHT, STILL_RIGHT, WENT_RIGHT, WENT_WRONG]


def test_the_projector_colours_what_changed_between_two_models(qtbot, window, tmp_path):
    load_with_model(qtbot, window, tmp_path, KeywordModel("before", bias=-3.0))
    window.open_objects(models=[KeywordModel("after", bias=0.7)])
    shows_outcomes(qtbot, window, "before", "after")
    projector = window.projector_dock
    window.docks["Embedding Projector"].raise_()
    qtbot.waitUntil(lambda: projector.coords is not None, timeout=30_000)
    combo = projector.color_by
    choice = "what changed: before → after"
    qtbot.waitUntil(lambda: combo.findText(choice) >= 0, timeout=30_000)  # with the outcomes
    choices = [combo.itemText(i) for i in range(combo.count())]
    assert choices.count(choice) == 1
    assert not any(text.startswith("what changed: after") for text in choices)
    # The box is narrow in the dock; its list shows the entry whole.
    assert combo.view().minimumWidth() >= combo.fontMetrics().horizontalAdvance(choice)

    combo.setFocus()
    qtbot.keyClicks(combo, "what")  # the user types to pick it
    assert combo.currentText() == choice
    qtbot.waitUntil(lambda: "wrong → right (3)" in projector.legend.text(), timeout=30_000)
    legend = projector.legend.text()
    assert legend.startswith("before → after:")
    assert "right → wrong (2)" in legend and "still right (1)" in legend
    assert "still wrong" not in legend and "no gold" not in legend  # none of those
    np.testing.assert_array_equal(projector.rgb, CHANGED_PALETTE[CHANGES])
    screenshots = os.environ.get("LITDESK_SCREENSHOTS")
    if screenshots:
        with qtbot.waitSignal(projector.drawn, timeout=10_000):
            projector.point_size.setValue(12)
        projector.grab().save(os.path.join(screenshots, "projector_what_changed.png"))
