"""The tabular demo: it opens from the File menu without the trust dialog, its models score
what its README says, and only the shipped, intact pickles skip the dialog."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from litdesk.api import LoadOptions, TrustRequired
from litdesk.core import paths, trusted_files
from litdesk.core.model_loading import load_model
from litdesk.ui.main_window import MainWindow

MANIFEST = json.loads(paths.DEMO_TABULAR_MANIFEST.read_text(encoding="utf-8"))
DEMO_README = (paths.DEMO_TABULAR_DATASET.parent / "README.md").read_text(encoding="utf-8")
MODEL_NAMES = ("logistic_regression", "boosted_trees", "mlp")


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


built_with_this_sklearn = pytest.mark.skipif(
    _sklearn_version() != MANIFEST["sklearn_version"],
    reason=f"the demo models are pickled with scikit-learn {MANIFEST['sklearn_version']}")


def test_the_manifest_lists_every_demo_model():
    assert tuple(path.stem for path in paths.DEMO_TABULAR_MODELS) == MODEL_NAMES
    assert set(MANIFEST["files"]) == {path.name for path in paths.DEMO_TABULAR_MODELS}
    assert all(trusted_files.is_shipped_and_intact(path) for path in paths.DEMO_TABULAR_MODELS)


@built_with_this_sklearn
def test_the_tabular_demo_opens_from_the_file_menu_without_asking(qtbot):
    window = MainWindow(show_dialogs=True)  # a pickle needing trust would open the dialog
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    file_menu = window.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if a.text() == "Open the &Tabular Demo")
    assert action.shortcut().toString() == "Ctrl+Shift+T"
    with qtbot.waitSignal(window.dataset_loaded, timeout=20_000):
        action.trigger()
    qtbot.waitUntil(lambda: len(window.session.predictions) == 3, timeout=30_000)
    assert window.trust_prompt is None and window.errors == []

    dataset = window.session.dataset
    assert len(dataset) == 569 and len(dataset.spec()) == 32
    labels = np.asarray(dataset.table.column("label").to_pylist())
    test = np.asarray(dataset.table.column("split").to_pylist()) == "test"
    assert test.sum() == 143
    for name in MODEL_NAMES:
        _field, argmax, vocab = window.session.predictions[name].predicted_labels()
        accuracy = np.mean(np.asarray(vocab)[argmax][test] == labels[test])
        assert accuracy == pytest.approx(MANIFEST["test_accuracy"][name], abs=5e-5)
        assert f"| {accuracy:.1%} |" in DEMO_README  # the figure the README gives
    qtbot.waitUntil(lambda: {"mlp_pred", "mlp_conf", "mlp_correct"}  # once the outcomes are in
                    <= set(window.table_dock.model.table.column_names), timeout=30_000)
    window.runner.cancel_all()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The demo models and manifest copied to a folder that litdesk treats as shipped."""
    folder = tmp_path / "demo_tabular"
    folder.mkdir()
    for path in (*paths.DEMO_TABULAR_MODELS, paths.DEMO_TABULAR_MANIFEST):
        shutil.copy(path, folder / path.name)
    monkeypatch.setattr(trusted_files, "TRUSTED_MANIFESTS", (folder / "models.json",))
    return folder


@built_with_this_sklearn
def test_an_intact_shipped_model_loads_without_trust(shipped_copy):
    model = load_model(shipped_copy / "logistic_regression.joblib")
    assert model.name == "logistic_regression"
    assert len(model.input_spec()) == 30


def test_a_tampered_demo_model_asks_for_trust(shipped_copy):
    tampered = shipped_copy / "mlp.joblib"
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 1
    tampered.write_bytes(bytes(data))
    assert not trusted_files.is_shipped_and_intact(tampered)
    with pytest.raises(TrustRequired, match="runs code"):
        load_model(tampered)


def test_a_demo_model_copied_elsewhere_asks_for_trust(tmp_path):
    copy = tmp_path / "logistic_regression.joblib"
    shutil.copy(paths.DEMO_TABULAR_MODELS[0], copy)
    shutil.copy(paths.DEMO_TABULAR_MANIFEST, tmp_path / "models.json")  # a manifest of its own
    assert not trusted_files.is_shipped_and_intact(copy)
    with pytest.raises(TrustRequired):
        load_model(copy)


def test_an_unlisted_file_beside_the_manifest_asks_for_trust(shipped_copy):
    stranger = shipped_copy / "other.joblib"
    shutil.copy(shipped_copy / "mlp.joblib", stranger)  # the bytes of a listed file, unlisted name
    with pytest.raises(TrustRequired):
        load_model(stranger)


@built_with_this_sklearn
def test_another_sklearn_version_warns_and_the_model_still_predicts(monkeypatch):
    from sklearn.exceptions import InconsistentVersionWarning

    monkeypatch.setattr("sklearn.base.__version__", "1.7.2")  # as if run with an older release
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(paths.DEMO_TABULAR_MODELS[0], LoadOptions())
    skew = [w.message for w in caught if isinstance(w.message, InconsistentVersionWarning)]
    assert skew and skew[0].original_sklearn_version == MANIFEST["sklearn_version"]
    example = {name: 1.0 for name in model.input_spec()}
    assert np.isclose(model.predict([example])[0]["probas"].sum(), 1.0)


@pytest.mark.slow
def test_train_py_reproduces_the_shipped_models(tmp_path):
    """Retraining gives the shipped data byte for byte and models that predict the same.

    The pickles themselves differ across CPUs (BLAS kernels round differently), so their
    bytes and hashes are not compared: their class probabilities and test accuracies are.
    """
    if _sklearn_version() != MANIFEST["sklearn_version"]:
        pytest.skip("the shipped pickles load only with the scikit-learn that wrote them")
    import subprocess
    import sys

    import pandas as pd

    script = paths.DEMO_TABULAR_DATASET.parent / "train.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    assert (tmp_path / "breast_cancer.csv").read_bytes() == \
        paths.DEMO_TABULAR_DATASET.read_bytes()
    retrained = json.loads((tmp_path / "models.json").read_text(encoding="utf-8"))
    assert set(retrained["files"]) == set(MANIFEST["files"])
    assert retrained["test_accuracy"] == pytest.approx(MANIFEST["test_accuracy"], abs=0.01)
    rows = pd.read_csv(paths.DEMO_TABULAR_DATASET).to_dict("records")
    for shipped in paths.DEMO_TABULAR_MODELS:
        ours = load_model(shipped).predict(rows)
        theirs = load_model(tmp_path / shipped.name, LoadOptions(trust=True)).predict(rows)
        ours_probas = np.stack([output["probas"] for output in ours])
        theirs_probas = np.stack([output["probas"] for output in theirs])
        assert np.abs(ours_probas - theirs_probas).max() < 0.02, shipped.name
        agreement = np.mean(ours_probas.argmax(1) == theirs_probas.argmax(1))
        assert agreement >= 0.99, shipped.name


def test_the_shortcut_is_not_taken_twice(qtbot):
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    shortcuts = [action.shortcut().toString() for menu_action in window.menuBar().actions()
                 for action in menu_action.menu().actions() if not action.shortcut().isEmpty()]
    assert shortcuts.count("Ctrl+Shift+T") == 1


PARALLEL_LOAD = """
import threading
from litdesk.core import paths
from litdesk.core.model_loading import load_model
errors = []
def load(path):
    try:
        load_model(path)
    except Exception as error:
        errors.append(str(error))
threads = [threading.Thread(target=load, args=(p,)) for p in paths.DEMO_TABULAR_MODELS]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


@pytest.mark.slow
@built_with_this_sklearn
def test_the_demo_models_load_in_parallel_in_a_fresh_interpreter():
    """The window loads them on three worker threads, importing sklearn for the first time."""
    import subprocess
    import sys

    for _attempt in range(3):  # the import race it guards against showed once in four runs
        result = subprocess.run([sys.executable, "-c", PARALLEL_LOAD], check=True,
                                capture_output=True, text=True)
        assert result.stdout.strip() == "[]"


def test_the_plugin_trusts_only_the_digests_litdesk_vouches_for(shipped_copy):
    """The sklearn plugin imports nothing of litdesk's core: the core tells it, through
    LoadOptions.shipped_files, which files and hashes it vouches for."""
    from litdesk_sklearn.model import load

    model_file = shipped_copy / "logistic_regression.joblib"
    with pytest.raises(TrustRequired):
        load(model_file, LoadOptions())
    vouched = trusted_files.shipped_files(model_file)
    assert (str(model_file.resolve()), MANIFEST["files"][model_file.name]) in vouched
    wrong = tuple((path, "0" * 64) for path, _digest in vouched)
    with pytest.raises(TrustRequired):
        load(model_file, LoadOptions(shipped_files=wrong))
    if _sklearn_version() == MANIFEST["sklearn_version"]:
        assert load(model_file, LoadOptions(shipped_files=vouched)).name == "logistic_regression"
