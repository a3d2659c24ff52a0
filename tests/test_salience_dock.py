"""The Salience dock on the real explanation engine: rows per (model, method), hover, words,
the pinned reference beside the primary row, bar charts for tabular models, cancelling."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QLabel, QToolTip

from litdesk.api import CategoryLabel, Dataset, TextSegment
from litdesk.core import paths
from litdesk.core.explain import Attribution
from litdesk.core.loaders import load_dataset
from litdesk.core.model_loading import load_model
from litdesk.core.session import Session
from litdesk.ui.docks.salience import COMPUTING, SalienceDock, attribution_view, default_methods
from litdesk.ui.jobs import JobRunner
from litdesk.ui.widgets.salience_charts import TOP_FEATURES, FeatureBars, TokenHeatmap
from tests.fakes import KeywordModel, SlowModel
from tests.helpers import ROWS, click_row, finished

#: What a model that outputs its own token salience is explained by until the user picks.
OWN = "model_salience"


@pytest.fixture
def session():
    table = pa.table({"text": [text for text, _ in ROWS], "label": [label for _, label in ROWS]})
    session = Session()
    session.set_dataset(Dataset(table, {"text": TextSegment(),
                                        "label": CategoryLabel(vocab=("negative", "positive"))},
                                "reviews"))
    return session


@pytest.fixture
def dock(qtbot, session):
    runner = JobRunner()
    dock = SalienceDock(session, runner)
    qtbot.addWidget(dock)
    dock.resize(900, 600)
    dock.show()
    qtbot.waitExposed(dock)
    yield dock
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=20_000)


def select(qtbot, dock, row, timeout=20_000):
    dock.session.select([row])
    qtbot.waitUntil(lambda: finished(dock), timeout=timeout)


def test_one_row_per_model_and_method_with_occlusion_added_by_its_checkbox(qtbot, dock):
    dock.session.add_model(KeywordModel("first"))
    dock.session.add_model(KeywordModel("second", bias=1.0))
    select(qtbot, dock, 0)
    # A model that attributes its own predictions is explained by that first.
    assert sorted(dock.results) == [("first", OWN, 0), ("second", OWN, 0)]
    own = dock.results[("first", OWN, 0)]
    (output,) = KeywordModel().predict([{"text": ROWS[0][0]}])
    assert own.features == tuple(output["tokens"])
    np.testing.assert_array_equal(own.scores, output["token_salience"])
    assert own.target == "positive"
    assert dock.cell("first", OWN, 0).findChild(TokenHeatmap).tokens == own.features
    assert not dock.method_boxes["integrated_gradients"].isVisible()  # no gradients here

    occlusion = dock.method_boxes["occlusion"]
    assert not occlusion.isChecked()
    qtbot.mouseClick(occlusion, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: finished(dock), timeout=20_000)
    assert occlusion.isChecked()
    assert sorted(dock.results) == [("first", OWN, 0), ("first", "occlusion", 0),
                                    ("second", OWN, 0), ("second", "occlusion", 0)]
    scores = dict(zip(dock.results[("first", "occlusion", 0)].features,
                      dock.results[("first", "occlusion", 0)].scores))
    assert scores["love"] > 0 > scores["phone"]  # a positive keyword pushes towards "positive"


def test_hovering_a_token_shows_its_score(qtbot, dock):
    dock.session.add_model(KeywordModel())
    select(qtbot, dock, 1)
    heatmap = dock.cell("keywords", OWN, 1).findChild(TokenHeatmap)
    index = heatmap.tokens.index("awful")
    # From elsewhere first: a cursor already on the spot (from an earlier test) moves nowhere.
    qtbot.mouseMove(heatmap, heatmap.rect().bottomRight())
    qtbot.mouseMove(heatmap, heatmap.token_rects()[index].center().toPoint())
    qtbot.waitUntil(QToolTip.isVisible, timeout=5_000)
    score = dock.results[("keywords", OWN, 1)].scores[index]
    assert QToolTip.text() == f"awful: {score:+.4g}"
    assert heatmap.hovered == index


def test_word_view_merges_word_pieces_and_flags_a_large_completeness_error(qtbot):
    pieces = Attribution("m", "integrated_gradients",
                         ("[CLS]", "un", "##believ", "##able", "phone", "[SEP]"),
                         np.array([0.5, 0.1, 0.2, 0.3, -0.4, 0.0]), True, text="unbelievable phone",
                         completeness_error=0.02)
    tokens, words = attribution_view(pieces, words=False), attribution_view(pieces, words=True)
    qtbot.addWidget(tokens)
    qtbot.addWidget(words)
    # Token view: WordPiece's "##" becomes a boundary (a narrow gap), not text.
    by_token = tokens.findChild(TokenHeatmap)
    assert by_token.tokens == ("[CLS]", "un", "believ", "able", "phone", "[SEP]")
    assert by_token.word_starts == (True, True, False, False, True, True)
    heatmap = words.findChild(TokenHeatmap)
    assert heatmap.tokens == ("unbelievable", "phone")
    assert heatmap.scores == pytest.approx([0.6, -0.4])
    error = words.findChild(QLabel, "completeness")
    assert error.text() == "completeness error 2%" and "#d62728" in error.styleSheet()


@pytest.mark.slow
def test_the_demo_bert_explained_by_gradients_with_words_merged(qtbot, dock):
    dock.session.set_dataset(load_dataset(paths.DEMO_DATASET))
    dock.session.add_model(load_model(paths.DEMO_MODELS[0]))
    select(qtbot, dock, 3, timeout=120_000)
    (name,) = dock.session.models
    assert sorted(method for model, method, _ in dock.results) == ["grad_l2",
                                                                    "integrated_gradients"]
    integrated = dock.results[(name, "integrated_gradients", 3)]
    assert integrated.completeness_error <= 0.01
    error = dock.cell(name, "integrated_gradients", 3).findChild(QLabel, "completeness")
    assert error.text().startswith("completeness error ") and error.styleSheet() == ""
    assert any(token.startswith("##") for token in integrated.features)
    qtbot.mouseClick(dock.words, Qt.MouseButton.LeftButton)
    merged = dock.cell(name, "integrated_gradients", 3).findChild(TokenHeatmap).tokens
    assert not any(token.startswith("##") or token == "[CLS]" for token in merged)
    assert merged == tuple(integrated.text.lower().replace(",", " ,").replace(".", " .").split())


def test_a_pinned_row_is_explained_beside_the_primary_row(qtbot, dock):
    dock.session.add_model(KeywordModel())
    select(qtbot, dock, 0)
    assert dock.cell("keywords", OWN, 4) is None
    dock.session.pin(4)
    qtbot.waitUntil(lambda: finished(dock) and ("keywords", OWN, 4) in dock.results,
                    timeout=20_000)
    assert dock.rows() == [0, 4]
    assert dock.results[("keywords", OWN, 4)].features == ("excellent", "screen")
    primary, pinned = (dock.cell("keywords", OWN, row) for row in (0, 4))
    assert primary.mapTo(dock, primary.rect().topLeft()).x() < \
        pinned.mapTo(dock, pinned.rect().topLeft()).x()  # side by side, primary first
    headers = [label.text() for label in dock.content.findChildren(QLabel)]
    assert "<i>Row 0 (primary)</i>" in headers and "<i>Row 4 (pinned reference)</i>" in headers


def test_a_target_class_can_be_chosen(qtbot, dock):
    dock.session.add_model(KeywordModel())
    select(qtbot, dock, 0)
    qtbot.mouseClick(dock.method_boxes["lime"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: finished(dock) and ("keywords", "lime", 0) in dock.results,
                    timeout=20_000)
    picker = dock.content.findChild(QComboBox, "target:keywords")
    assert picker.currentText() == "the predicted class (positive)"
    picker.setCurrentIndex(picker.findData("negative"))
    qtbot.waitUntil(lambda: finished(dock) and ("keywords", "lime", 0) in dock.results,
                    timeout=20_000)
    assert dock.results[("keywords", "lime", 0)].target == "negative"
    assert dock.content.findChild(QComboBox, "target:keywords").currentData() == "negative"
    # The model's own attribution is of the class it chooses: its row says so.
    assert "attribution of the class it chooses" in dock.cell("keywords", OWN, 0).text()


def test_a_tabular_model_shows_its_top_features_as_bars(qtbot, dock):
    dataset = load_dataset(paths.DEMO_TABULAR_DATASET)
    dock.session.set_dataset(dataset)
    model = load_model(paths.DEMO_TABULAR_MODELS[0])
    dock.session.add_model(model)
    assert default_methods(["kernel_shap"]) == ["kernel_shap"]
    select(qtbot, dock, 0, timeout=60_000)
    attribution = dock.results[(model.name, "kernel_shap", 0)]
    assert attribution.kind == "features" and len(attribution.features) == 30
    bars = dock.cell(model.name, "kernel_shap", 0).findChild(FeatureBars)
    assert len(bars.features) == TOP_FEATURES
    magnitudes = np.abs(bars.scores)
    assert np.all(magnitudes[:-1] >= magnitudes[1:])
    assert magnitudes[0] == np.abs(attribution.scores).max()
    widths = [rect.width() for rect in bars.bar_rects()]
    assert widths[0] == max(widths) > 0


def test_a_failing_method_says_so_in_its_row(qtbot, dock):
    class Broken(KeywordModel):
        def predict(self, inputs):
            raise RuntimeError("the model file is damaged")

    dock.session.add_model(Broken("broken"))
    select(qtbot, dock, 0)
    line = dock.cell("broken", OWN, 0)
    assert line.text() == "failed: RuntimeError: the model file is damaged"


def test_a_new_primary_row_cancels_the_previous_request(qtbot, dock, monkeypatch):
    cancelled = []
    cancel = dock.runner.cancel
    monkeypatch.setattr(dock.runner, "cancel", lambda worker: (cancelled.append(worker),
                                                               cancel(worker)))
    model = SlowModel(seconds_per_batch=0.05, batch_size=4)
    dock.session.add_model(model)
    dock.toggle_method(OWN)  # LIME alone: many batches, so the request is cancelled halfway
    dock.toggle_method("lime")
    dock.session.select([1])
    assert isinstance(dock.cell("slow", "lime", 1), QLabel)
    assert dock.cell("slow", "lime", 1).text() == COMPUTING
    assert dock.pending() == ["slow"] and "computing: slow" in dock.header.text()
    qtbot.waitUntil(lambda: model.calls > 0, timeout=10_000)
    select(qtbot, dock, 2, timeout=30_000)
    assert len(cancelled) == 1 and cancelled[0].abort_requested
    assert list(dock.results) == [("slow", "lime", 2)]
    assert dock.cell("slow", "lime", 1) is None


def test_a_result_for_an_earlier_primary_row_never_shows(qtbot, dock):
    dock.session.add_model(KeywordModel())
    dock.session.select([1])
    # Row 1's explanation ends on its thread before the window hears of it…
    assert QThreadPool.globalInstance().waitForDone(20_000)
    # …and row 2 is primary by the time that result is delivered.
    select(qtbot, dock, 2)
    assert list(dock.results) == [("keywords", OWN, 2)]
    assert dock.cell("keywords", OWN, 1) is None
    heatmap = dock.cell("keywords", OWN, 2).findChild(TokenHeatmap)
    assert heatmap.tokens == tuple(ROWS[2][0].split())


def test_a_hidden_dock_explains_nothing_until_it_is_shown(qtbot, outputs_window):
    model = KeywordModel()
    outputs_window.docks["Sequence Salience"].raise_()  # a tab with nothing to do for this model
    with qtbot.waitSignal(outputs_window.runner.idle, timeout=20_000):
        outputs_window.open_objects(models=[model])
    dock, salience = outputs_window.salience_dock, outputs_window.docks["Salience"]
    assert not dock.results
    for closed in (False, True):
        outputs_window.docks["Sequence Salience"].raise_()
        if closed:
            salience.close()
        row = outputs_window.session.selection.primary + 1
        calls = model.calls
        click_row(qtbot, outputs_window, row)
        qtbot.waitUntil(lambda: not outputs_window.runner.busy, timeout=20_000)
        assert model.calls == calls and ("keywords", OWN, row) not in dock.results
        with qtbot.waitSignal(outputs_window.runner.idle, timeout=20_000):
            if closed:
                salience.toggleViewAction().trigger()  # View ▸ Salience
            salience.raise_()
        assert model.calls > calls
        assert list(dock.results) == [("keywords", OWN, row)]
        assert dock.cell("keywords", OWN, row).findChild(TokenHeatmap).tokens \
            == tuple(ROWS[row][0].split())


def test_method_checkboxes_apply_to_every_model_that_has_the_method(qtbot, dock):
    dock.session.add_model(KeywordModel())
    assert isinstance(dock.method_boxes[OWN], QCheckBox)
    assert dock.method_boxes[OWN].isChecked()
    dock.toggle_method(OWN)
    assert dock.chosen["keywords"] == []
    assert not dock.method_boxes[OWN].isChecked()


def test_a_model_added_later_adds_its_section_and_leaves_the_others_as_they_are(qtbot, dock):
    dock.session.add_model(KeywordModel("first"))
    select(qtbot, dock, 0)
    first = dock.content.findChild(QFrame, "salience:first")
    heatmap = dock.cell("first", OWN, 0)
    dock.session.add_model(KeywordModel("second", bias=1.0))
    qtbot.waitUntil(lambda: finished(dock) and ("second", OWN, 0) in dock.results,
                    timeout=20_000)
    assert dock.content.findChild(QFrame, "salience:first") is first
    assert dock.cell("first", OWN, 0) is heatmap  # not built again
    sections = [dock.content_layout.itemAt(i).widget().objectName()
                for i in range(dock.content_layout.count())]
    assert sections == ["salience:first", "salience:second"]
    select(qtbot, dock, 1)  # another row: the same sections, their cells filled anew
    assert dock.content.findChild(QFrame, "salience:first") is first
    assert dock.cell("first", OWN, 0) is None
    assert dock.cell("first", OWN, 1).findChild(TokenHeatmap).tokens \
        == tuple(ROWS[1][0].lower().split())


def test_another_pinned_row_keeps_the_section_and_retitles_its_column(qtbot, dock):
    dock.session.add_model(KeywordModel())
    select(qtbot, dock, 0)
    dock.session.pin(4)
    qtbot.waitUntil(lambda: finished(dock) and ("keywords", OWN, 4) in dock.results,
                    timeout=20_000)
    section = dock.content.findChild(QFrame, "salience:keywords")
    dock.session.pin(2)
    qtbot.waitUntil(lambda: finished(dock) and ("keywords", OWN, 2) in dock.results,
                    timeout=20_000)
    assert dock.content.findChild(QFrame, "salience:keywords") is section
    headers = [label.text() for label in section.findChildren(QLabel)]
    assert "<i>Row 0 (primary)</i>" in headers and "<i>Row 2 (pinned reference)</i>" in headers
    assert not any("Row 4" in header for header in headers)
    assert dock.cell("keywords", OWN, 4) is None
    assert dock.cell("keywords", OWN, 2).findChild(TokenHeatmap).tokens \
        == tuple(ROWS[2][0].lower().split())
