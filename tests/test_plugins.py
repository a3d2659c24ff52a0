"""Plugin discovery by manifest, and model loading routed through it."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from litdesk.api import ModelLoadError
from litdesk.core import plugins
from litdesk.core.model_loading import find_model_loader, load_model, looks_like_model


def test_first_party_plugins_are_discovered_without_importing_their_code():
    plugins.discover_plugins.cache_clear()
    for module in ("litdesk_transformers.classifier", "litdesk_linear_text.model"):
        sys.modules.pop(module, None)
    registry = plugins.discover_plugins()
    assert {"transformers", "linear_text"} <= set(registry.plugins)
    assert {loader.id for loader in registry.model_loaders} >= {"hf_transformers",
                                                                 "linear_text"}
    assert "litdesk_transformers.classifier" not in sys.modules
    assert "litdesk_linear_text.model" not in sys.modules


def test_a_broken_plugin_is_recorded_and_the_others_still_load(monkeypatch):
    real = metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)
    broken = metadata.EntryPoint("broken", "no_such_package:litdesk.toml",
                                 plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins.metadata, "entry_points",
                        lambda group: [*real, broken])
    plugins.discover_plugins.cache_clear()
    try:
        registry = plugins.discover_plugins()
    finally:
        plugins.discover_plugins.cache_clear()
    assert "no_such_package" in registry.errors["broken"]
    assert "transformers" in registry.plugins


def test_paths_route_to_the_loader_that_declares_them(tmp_path):
    hf = tmp_path / "my_bert"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    linear = tmp_path / "linear_text_model.json"
    linear.write_text("{}")
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    assert find_model_loader(hf).id == "hf_transformers"
    assert find_model_loader(linear).id == "linear_text"
    assert not looks_like_model(data)


def test_unknown_and_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(tmp_path / "nothing")
    (tmp_path / "weights.xyz").write_text("?")
    with pytest.raises(ModelLoadError, match="not a model any installed plugin can load"):
        load_model(tmp_path / "weights.xyz")


def test_exact_file_names_win_over_wildcards(tmp_path):
    checkpoint = tmp_path / "checkpoint-500"
    checkpoint.mkdir()
    for name in ("config.json", "model.safetensors", "optimizer.pt", "model.onnx"):
        (checkpoint / name).write_text("{}")
    assert find_model_loader(checkpoint).plugin == "transformers"
    assert find_model_loader(checkpoint / "optimizer.pt").plugin == "torchscript"


def test_a_user_plugin_file_is_discovered_without_running_it(tmp_path, litdesk_home):
    folder = plugins.user_plugin_folder()
    (folder / "echo_models.py").write_text('''
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("ran")
LITDESK_MANIFEST = {"name": "echo", "description": "models that echo",
                    "model_loaders": [{"id": "echo", "callable": "echo_models:load",
                                       "patterns": ["*.echo"]}]}

def load(path, options):
    from tests.fakes import KeywordModel
    return KeywordModel(path.stem)
''')
    (folder / "broken.py").write_text("LITDESK_MANIFEST = {'name': open('x')}\n")
    plugins.discover_plugins.cache_clear()
    try:
        registry = plugins.discover_plugins()
        assert "echo" in registry.plugins and "broken.py" in registry.errors
        assert not (folder / "echo_models.ran").exists()  # discovery ran none of its code
        (tmp_path / "mine.echo").write_text("")
        model = load_model(tmp_path / "mine.echo", registry=registry)
        assert model.name == "mine" and (folder / "echo_models.ran").exists()
    finally:
        plugins.discover_plugins.cache_clear()


def test_a_plugin_dataset_loader_is_asked_before_the_built_in_ones(tmp_path, litdesk_home):
    from litdesk.core.loaders import DatasetLoadError, load_dataset

    (plugins.user_plugin_folder() / "lines_format.py").write_text('''
LITDESK_MANIFEST = {"name": "lines", "dataset_loaders": [
    {"id": "lines", "callable": "lines_format:load", "patterns": ["*.lines"]}]}

def load(path):
    import pyarrow as pa
    lines = path.read_text().splitlines()
    if not lines:
        raise ValueError("no lines")
    return pa.table({"text": lines})
''')
    plugins.discover_plugins.cache_clear()
    try:
        data = tmp_path / "poem.lines"
        data.write_text("roses are red\nviolets are blue\n")
        dataset = load_dataset(data)
        assert dataset.name == "poem"
        assert dataset.table.column("text").to_pylist()[1] == "violets are blue"
        (tmp_path / "empty.lines").write_text("")
        with pytest.raises(DatasetLoadError, match="empty.lines: no lines"):
            load_dataset(tmp_path / "empty.lines")
    finally:
        plugins.discover_plugins.cache_clear()


def test_a_manifest_with_an_unknown_kind_is_reported(litdesk_home):
    (plugins.user_plugin_folder() / "typo.py").write_text(
        "LITDESK_MANIFEST = {'name': 'typo', 'model_loader': []}\n")
    plugins.discover_plugins.cache_clear()
    try:
        assert "model_loader" in plugins.discover_plugins().errors["typo.py"]
    finally:
        plugins.discover_plugins.cache_clear()

