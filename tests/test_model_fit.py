"""Models that fit the data: a model that does not fit the active dataset is left out and
greyed in the Models menu with the reason; Models ▸ Inputs… maps its inputs to columns;
models are removed and reloaded; single-file models open from the File menu; the gold column
is found by its values; ``litdesk.show`` takes a scikit-learn estimator."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QLabel, QMessageBox

from litdesk.api import CategoryLabel
from litdesk.core import paths
from litdesk.core.settings import Settings
from litdesk.core.workbench import INPUT_MAPPINGS_SETTING
from litdesk.ui.main_window import MainWindow
from tests.fakes import KeywordModel
from tests.helpers import shows_outcomes

LINEAR_MODEL = paths.DEMO_MODELS[1] / "linear_text_model.json"  # the demo's bow_linear


def _menu(window, title: str):
    return next(action.menu() for action in window.menuBar().actions()
                if action.text().replace("&", "") == title)


def _open(qtbot, window, *paths_in, signal="dataset_loaded"):
    with qtbot.waitSignal(getattr(window, signal), timeout=20_000):
        window.open_paths(list(paths_in))


def _linear_model_copy(tmp_path):
    folder = tmp_path / "bow"
    folder.mkdir()
    shutil.copy(LINEAR_MODEL, folder / "linear_text_model.json")
    return folder


def test_a_model_that_does_not_fit_is_greyed_with_its_reason_not_an_error(qtbot, window,
                                                                         tmp_path):
    window.show_dialogs = True  # a failure would open a message box, as for a user
    window.docks["Salience"].raise_()
    _open(qtbot, window, paths.DEMO_DATASET)
    _open(qtbot, window, _linear_model_copy(tmp_path), signal="model_loaded")
    qtbot.waitUntil(lambda: "bow" in window.session.predictions, timeout=20_000)
    with qtbot.waitSignal(window.dataset_loaded, timeout=20_000):
        window.open_tabular_demo()  # three scikit-learn models that read numbers
    qtbot.waitUntil(lambda: len(window.session.models) == 4 and len(
        window.session.predictions) == 3, timeout=30_000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)

    assert window.errors == []
    assert not [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert "bow" not in window.session.predictions and "bow" not in window.session.fitting_models()
    menu = _menu(window, "Models")
    menu.aboutToShow.emit()
    entry = window.models_section.model_actions["bow"]
    assert not entry.isEnabled() and "not run on breast_cancer" in entry.text()
    assert "text (TextSegment)" in entry.toolTip() and "lacks" in entry.toolTip()
    assert window.models_section.model_actions["mlp"].isEnabled()
    salience = window.salience_dock
    texts = " ".join(label.text() for label in salience.findChildren(QLabel))
    assert "SpecMismatchError" not in texts and "bow" not in {key[0] for key in salience.results}
    shot = tmp_path / "models_menu.png"
    menu.popup(window.mapToGlobal(window.rect().center()))
    qtbot.waitUntil(menu.isVisible)
    menu.grab().save(str(shot))
    menu.hide()

    window.session.activate_dataset("sentiment")  # back: the text model runs, the others not
    qtbot.waitUntil(lambda: "bow" in window.session.predictions, timeout=20_000)
    assert window.models_section.model_actions["bow"].isEnabled()
    assert not window.models_section.model_actions["mlp"].isEnabled()
    assert window.errors == []


def _two_text_columns(tmp_path):
    path = tmp_path / "pairs.csv"
    rows = [("awful, bad", "great, I love it"), ("good fun", "terrible"), ("fine", "bad"),
            ("not good", "excellent")]
    path.write_text("premise,hypothesis,label\n" + "".join(
        f'"{a}","{b}",{"positive" if i % 2 else "negative"}\n' for i, (a, b) in enumerate(rows)),
        encoding="utf-8")
    return path


def _positive(window, model="keywords"):
    field, predicted, vocab = window.session.predictions[model].predicted_labels()
    return [vocab[index] == "positive" for index in predicted]


def test_inputs_that_match_several_columns_are_named_and_mapped_in_the_dialog(qtbot, window,
                                                                            tmp_path):
    _open(qtbot, window, _two_text_columns(tmp_path))
    window.open_objects([KeywordModel()])  # reads "text": premise or hypothesis?
    problem = window.session.model_problem("keywords")
    assert "premise" in problem and "hypothesis" in problem and "Inputs" in problem
    assert "keywords" not in window.session.predictions and window.errors == []

    action = window.models_section.inputs_action
    assert action.shortcut().toString() == "Ctrl+Shift+I"
    action.trigger()
    dialog = window.models_section.dialog
    qtbot.waitExposed(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.model_name == "keywords" and not ok.isEnabled()  # nothing chosen yet
    chooser = dialog.choosers["text"]
    assert [chooser.itemText(i) for i in range(chooser.count())][1:] == ["premise", "hypothesis"]
    dialog.grab().save(str(tmp_path / "inputs_dialog.png"))
    chooser.setCurrentIndex(chooser.findText("hypothesis"))
    assert ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "keywords" in window.session.predictions, timeout=10_000)
    assert _positive(window) == [True, False, False, True]  # the hypotheses' words
    saved = Settings().get(INPUT_MAPPINGS_SETTING)
    assert saved["keywords"]["pairs"] == {"text": "hypothesis"}

    dialog = window.models_section.open_inputs("keywords")  # now the premises
    dialog.choosers["text"].setCurrentIndex(dialog.choosers["text"].findText("premise"))
    with qtbot.waitSignal(window.session.predictions_changed, timeout=10_000):
        dialog.accept()
    qtbot.waitUntil(lambda: "keywords" in window.session.predictions, timeout=10_000)
    assert _positive(window) == [False, True, True, True]

    # Retyping the mapped column: the only text column left is read, predicted again.
    window.session.update_spec({"premise": CategoryLabel()})
    qtbot.waitUntil(lambda: "keywords" in window.session.predictions
                    and _positive(window) == [True, False, False, True], timeout=10_000)
    assert window.errors == []


def test_a_mapping_is_remembered_for_the_model_and_dataset(qtbot, tmp_path):
    data = _two_text_columns(tmp_path)
    Settings().set(INPUT_MAPPINGS_SETTING, {"keywords": {"pairs": {"text": "premise"}}})
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    _open(qtbot, window, data)
    window.open_objects([KeywordModel()])
    qtbot.waitUntil(lambda: "keywords" in window.session.predictions, timeout=10_000)
    assert _positive(window) == [False, True, True, True]
    window.runner.cancel_all()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)


def test_remove_reload_and_reopen_a_model(qtbot, window, tmp_path):
    folder = _linear_model_copy(tmp_path)
    _open(qtbot, window, paths.DEMO_DATASET)
    _open(qtbot, window, folder, signal="model_loaded")
    shows_outcomes(qtbot, window, "bow")
    before = window.session.predictions["bow"].fields["probas"].copy()

    with qtbot.waitSignal(window.workbench.model_reopened, timeout=10_000):
        window.open_paths([folder])  # the same files: no "bow (2)"
    assert list(window.session.models) == ["bow"]

    model_file = folder / "linear_text_model.json"  # "retrained": the other way round
    document = json.loads(model_file.read_text(encoding="utf-8"))
    document["coef"] = [[-value for value in row] for row in document["coef"]] \
        if isinstance(document["coef"][0], list) else [-value for value in document["coef"]]
    model_file.write_text(json.dumps(document), encoding="utf-8")
    with qtbot.waitSignal(window.workbench.model_reopened, timeout=20_000):
        window.open_paths([folder])  # changed files: reloaded in place
    qtbot.waitUntil(lambda: "bow" in window.session.predictions, timeout=20_000)
    after = window.session.predictions["bow"].fields["probas"]
    assert list(window.session.models) == ["bow"] and not np.allclose(before, after)

    menu = window.models_section
    menu.update()
    reload_entry = next(a for a in menu.reload_menu.actions() if a.text() == "bow")
    with qtbot.waitSignal(window.workbench.model_reopened, timeout=20_000):
        reload_entry.trigger()
    qtbot.waitUntil(lambda: "bow" in window.session.predictions, timeout=20_000)

    remove_entry = next(a for a in menu.remove_menu.actions() if a.text() == "bow")
    with qtbot.waitSignal(window.session.outcomes_changed, timeout=10_000):
        remove_entry.trigger()
    assert window.session.models == {} and window.session.predictions == {}
    assert "bow" not in window.session.outcomes.models
    qtbot.waitUntil(lambda: "bow_pred" not in window.table_dock.model.table.column_names,
                    timeout=10_000)
    assert "bow" not in menu.model_actions and window.errors == []


def test_single_file_models_can_be_picked_from_the_file_menu(qtbot, window, monkeypatch,
                                                            tmp_path):
    asked = {}

    def pick(parent, caption, folder, filters):
        asked["filters"] = filters
        return str(LINEAR_MODEL), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(pick))
    action = next(a for a in _menu(window, "File").actions() if a.text() == "Open Model &File…")
    with qtbot.waitSignal(window.model_loaded, timeout=20_000):
        action.trigger()
    for pattern in ("*.joblib", "*.pkl", "*.onnx", "*.pt", "linear_text_model.json"):
        assert pattern in asked["filters"]
    assert "linear_text_model" in window.session.models or "bow_linear" in window.session.models


def test_the_gold_column_is_found_by_its_values_and_unpredictable_gold_is_named(qtbot, window,
                                                                              tmp_path):
    path = tmp_path / "moods.csv"
    moods = ["positive", "negative", "neutral", "neutral", "positive", "negative"] * 20
    texts = ["good", "bad", "so so", "okay", "great", "awful"] * 20
    path.write_text("text,sentiment\n" + "".join(f"{t},{m}\n" for t, m in zip(texts, moods)),
                    encoding="utf-8")
    window.docks["Metrics"].raise_()
    _open(qtbot, window, path)
    window.open_objects([KeywordModel()])
    shows_outcomes(qtbot, window, "keywords")
    outcome = window.session.outcomes.models["keywords"]
    assert outcome.gold_column == "sentiment" and outcome.unpredictable == (("neutral", 40),)
    note = "40 rows with gold `neutral`, which keywords cannot predict, are left out"
    qtbot.waitUntil(lambda: note in window.metrics_dock.summary.text(), timeout=10_000)


def test_show_takes_a_scikit_learn_estimator_as_its_file_would_open(qtbot, window, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from litdesk.core.objects import as_model

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3,
                          "label": ["hi" if v > 9 else "lo" for v in range(20)]})
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    pipeline.fit(frame[["a", "b"]], frame["label"])
    model = as_model(pipeline, "sk")
    assert model.name == "sk" and list(model.input_spec()) == ["a", "b"]
    from litdesk.core.objects import as_dataset

    window.open_objects([model], [as_dataset(frame, "frame")])
    shows_outcomes(qtbot, window, "sk")
    outcome = window.session.outcomes.models["sk"]
    assert outcome.gold_column == "label" and outcome.correct.mean() > 0.8
    with pytest.raises(TypeError, match="model 'raw': the Pipeline is not fitted"):
        as_model(make_pipeline(LogisticRegression()), "raw")


def test_help_lists_every_command_with_a_line_of_its_own(capsys):
    from litdesk import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    commands = cli.commands()
    assert {"inspect", "predict", "compare", "project", "explain"} <= set(commands)
    listing = " ".join(shown.split("commands (")[1].split())  # wrapped lines joined
    for name, function in commands.items():
        summary = cli.command_summary(function)
        assert f" {name} {summary}" in listing and len(summary) > 10


def test_inspect_describes_a_model_folder(capsys):
    from litdesk import cli

    assert cli.main(["inspect", str(LINEAR_MODEL.parent)]) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[0].startswith("bow_linear: text classifier")
    assert "inputs:\n  text: TextSegment" in shown
    assert "outputs:\n  probas: MulticlassPreds" in shown
    assert "labels (2): negative, positive" in shown


def test_compare_names_the_rows_whose_gold_label_the_model_cannot_predict(tmp_path, capsys):
    from litdesk import cli

    path = tmp_path / "moods.csv"
    moods = ["positive", "negative", "neutral"] * 40
    path.write_text("text,sentiment\n" + "".join(f"good or bad,{m}\n" for m in moods),
                    encoding="utf-8")
    assert cli.main(["compare", "--model", str(LINEAR_MODEL.parent), "--data", str(path),
                     "--no-cache"]) == 0
    shown = capsys.readouterr().out
    assert "bow_linear  sentiment  80" in shown
    assert "40 rows with gold `neutral`, which bow_linear cannot predict, are left out." in shown
