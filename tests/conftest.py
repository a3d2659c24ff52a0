"""Shared fixtures: offscreen Qt, no network, a private litdesk home per test, and the windows,
job runners and model folders that several test modules use."""

from __future__ import annotations

import gc
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402

pytest.register_assert_rewrite("tests.helpers")

from litdesk.ui.garbage import collect_on_gui_thread  # noqa: E402
from litdesk.ui.jobs import JobRunner  # noqa: E402
from litdesk.ui.main_window import MainWindow  # noqa: E402
from tests.helpers import write_csv  # noqa: E402
from tests.tiny_bert import HEADS, HIDDEN, LABELS, LAYERS, WORDS  # noqa: E402


@pytest.fixture(autouse=True)
def cycles_collected_on_the_gui_thread(qapp):
    """As in the app (litdesk.ui.garbage), before every test: docks tested alone, a Train
    dock among them, make no window that would set it up, and a test of ``run_app`` hands
    collection back to Python when its event loop ends."""
    collect_on_gui_thread()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a Qt test (its widgets closed), collect its garbage at once, so that the next
    test starts without an old window's objects waiting for the collector's timer."""
    yield
    if "qtbot" in getattr(item, "fixturenames", ()):
        gc.collect()


@pytest.fixture(autouse=True)
def litdesk_home(tmp_path_factory, monkeypatch):
    """Settings, cache and data go to a fresh folder, never the user's."""
    home = tmp_path_factory.mktemp("litdesk_home")
    monkeypatch.setenv("LITDESK_HOME", str(home))
    return home


@pytest.fixture
def window(qtbot):
    main = MainWindow(show_dialogs=False)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.runner.cancel_all()
    qtbot.waitUntil(lambda: not main.runner.busy, timeout=30_000)


@pytest.fixture
def outputs_window(qtbot, tmp_path):
    """The window with the reviews open and the Model Outputs tab in front."""
    main = MainWindow(show_dialogs=False)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    main.docks["Model Outputs"].raise_()
    with qtbot.waitSignal(main.dataset_loaded, timeout=10_000):
        main.open_paths([write_csv(tmp_path / "reviews.csv")])
    yield main
    main.runner.cancel_all()
    qtbot.waitUntil(lambda: not main.runner.busy, timeout=30_000)


@pytest.fixture(scope="session")
def session_runner(qapp):
    """One job runner for the standalone docks of every test, alive the whole session: a runner
    deleted while its last jobs report back would lose their reports."""
    job_runner = JobRunner()
    yield job_runner
    job_runner.shutdown()


@pytest.fixture
def runner(qtbot, session_runner):
    """The session's job runner, idle again once the test is over."""
    yield session_runner
    session_runner.cancel_all()
    qtbot.waitUntil(lambda: not session_runner.busy, timeout=30_000)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT classifier and its tokenizer, saved like a user's model."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s"]) + "\n")
    tokenizer = transformers.BertTokenizerFast(str(vocab_file))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=32, max_position_embeddings=64,
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def _ray_session(tmp_path_factory):
    """Ray, and the litdesk home of the shared runtime's workers; the runtime is stopped when
    the tests end."""
    ray = pytest.importorskip("ray")
    yield ray, tmp_path_factory.mktemp("ray_home")
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_runtime(_ray_session):
    """A local Ray runtime with 2 CPUs shared by the tests that use it: started by the first
    (about 10 s) and again only after a test stopped it (see ``no_ray_runtime``)."""
    ray, home = _ray_session
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False,
                 runtime_env={"env_vars": {"LITDESK_HOME": str(home)}})
    return ray


@pytest.fixture
def no_ray_runtime():
    """No Ray runtime in this process: for the tests of a command starting its own."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    return ray


@pytest.fixture
def child_processes(monkeypatch) -> list:
    """The child processes that litdesk.core.child_process starts during the test (a
    projection's, an audit's), in order."""
    import subprocess

    started = []
    original_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(original_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return started


@pytest.fixture
def projection_children(child_processes) -> list:
    """The child processes that litdesk.core.projection starts during the test, in order."""
    return child_processes


@pytest.fixture
def frozen_app(tmp_path, monkeypatch) -> Path:
    """Makes this process look like a frozen (PyInstaller) litdesk: ``sys.frozen`` set and
    ``sys.executable`` a script that runs ``python -m litdesk`` with its arguments, as the
    bundle's executable would. Returns the script's path."""
    import sys

    app = tmp_path / "litdesk"
    app.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m litdesk "$@"\n')
    app.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    return app
