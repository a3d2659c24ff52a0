"""The file helpers that model loaders share."""

import pytest

from litdesk.api import ModelLoadError, read_json_document, single_matching_file


def test_json_documents_fail_with_one_error_naming_the_file(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"labels": ["a"]}', encoding="utf-8")
    bad.write_text("{ nope", encoding="utf-8")
    assert read_json_document(good) == {"labels": ["a"]}
    with pytest.raises(ModelLoadError, match="bad.json: not valid JSON"):
        read_json_document(bad)
    with pytest.raises(ModelLoadError, match="missing.json: cannot be read"):
        read_json_document(tmp_path / "missing.json")


def test_a_folder_must_hold_exactly_one_matching_file(tmp_path):
    (tmp_path / "a.onnx").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert single_matching_file(tmp_path, ["*.onnx"]) == tmp_path / "a.onnx"
    assert single_matching_file(tmp_path / "b.onnx", ["*.onnx"]) == tmp_path / "b.onnx"
    (tmp_path / "b.onnx").write_text("")
    with pytest.raises(ModelLoadError, match=r"holds 2 files matching \*.onnx \(a.onnx, b.onnx\)"):
        single_matching_file(tmp_path, ["*.onnx"])
