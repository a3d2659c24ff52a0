"""Hostile and pathological data files: each is refused with one clear message or read safely;
the process survives and nothing the user made is lost. Whatever could crash the process
(a segmentation fault, SIGBUS) runs in a subprocess, so a regression fails the test instead of
killing pytest."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from litdesk.core import loaders, plugins
from litdesk.core.datapoints import NewDatapoint
from litdesk.core.jobs import InlineRunner, Progress, run_job
from litdesk.core.journal import Journal
from litdesk.core.loaders import iter_load_dataset, load_dataset
from litdesk.core.save import save_dataset_job
from litdesk.core.workbench import Workbench
from tests.helpers import load_error, save_to_disk_like

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this test's litdesk home."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def survived(result: subprocess.CompletedProcess) -> str:
    """The subprocess's output, after asserting that it ended by itself (no signal)."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout


# --- A datasets folder stays inside itself -------------------------------------------------


def outside_and_inside(tmp_path: Path) -> tuple[Path, Path]:
    """A readable Arrow shard outside the dataset folder, and the folder."""
    secret = save_to_disk_like(tmp_path / "secret", pa.table({"pin": ["1234"]}), {})
    folder = save_to_disk_like(tmp_path / "data", pa.table({"text": ["mine"]}), {})
    return secret / "data-00000-of-00001.arrow", folder


def set_data_files(folder: Path, *names: str) -> None:
    state = json.loads((folder / "state.json").read_text())
    state["_data_files"] = [{"filename": name} for name in names]
    (folder / "state.json").write_text(json.dumps(state))


def test_a_state_json_naming_files_outside_the_folder_is_refused(tmp_path):
    secret, folder = outside_and_inside(tmp_path)
    set_data_files(folder, "../secret/data-00000-of-00001.arrow")
    assert str(load_error(folder)) == ("state.json: data file "
                                       "'../secret/data-00000-of-00001.arrow' "
                                       "leads outside the dataset folder")
    set_data_files(folder, str(secret))
    assert str(load_error(folder)) == (f"state.json: data file {str(secret)!r} "
                                       "leads outside the dataset folder")


def test_a_link_out_of_a_datasets_folder_is_refused(tmp_path):
    secret, folder = outside_and_inside(tmp_path)
    shard = folder / "data-00000-of-00001.arrow"
    shard.unlink()
    shard.symlink_to(secret)
    assert "leads outside the dataset folder" in str(load_error(folder))
    (folder / "state.json").unlink()  # found by listing the folder instead
    assert "leads outside the dataset folder" in str(load_error(folder))


def test_a_dataset_dict_naming_a_split_outside_the_folder_is_refused(tmp_path):
    secret, folder = outside_and_inside(tmp_path)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["../secret"]}))
    assert str(load_error(folder)) == ("dataset_dict.json: split '../secret' "
                                       "leads outside the dataset folder")
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": [str(secret.parent)]}))
    assert "leads outside the dataset folder" in str(load_error(folder))


# --- Deep nesting ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [10_000, 30_000])  # killed showing the row / loading it
def test_json_lines_nested_tens_of_thousands_deep_are_refused_naming_the_line(tmp_path, depth):
    tricky = {"text": "[" * 300 + '{ \\" ] [ \\\\', "m": [[1], [2]]}  # brackets in strings
    deep = '{"text": "deep", "n": ' + "[" * depth + "]" * depth + "}"
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(tricky) + "\n" + deep + "\n", encoding="utf-8")
    output = survived(run_python(f"""
        from litdesk.core.loaders import DatasetLoadError, load_dataset
        try:
            dataset = load_dataset({str(path)!r})
            print(dataset.examples(range(len(dataset))))  # what the table and editor do
        except DatasetLoadError as error:
            print(error)
    """))
    assert output.strip() == "deep.jsonl, line 2: nested deeper than litdesk reads (100 levels)"


def test_a_deep_json_document_is_refused_naming_the_line(tmp_path):
    document = tmp_path / "deep.json"
    document.write_text('[\n{"a": 1},\n{"a": ' + "[" * 5000 + "]" * 5000 + "}\n]\n")
    assert str(load_error(document)) == \
        "deep.json, line 3: nested deeper than litdesk reads (100 levels)"


def test_json_lines_whose_types_change_between_blocks_load_as_text(tmp_path):
    short = '{"t": "short"}\n'
    lines = 2**20 // len(short) - 1  # text up to pyarrow's first block end, a list across it
    path = tmp_path / "mixed.jsonl"
    path.write_text(short * lines + json.dumps({"t": ["a" * 100]}) + "\n", encoding="utf-8")
    output = survived(run_python(f"""
        from litdesk.core.loaders import load_dataset
        dataset = load_dataset({str(path)!r})
        print(len(dataset), dataset.example({lines})["t"][:10])
    """))
    assert output.strip() == f'{lines + 1} ["aaaaaaaa'


# --- A file changed while it is open -------------------------------------------------------


def test_an_arrow_file_rewritten_after_loading_cannot_take_the_process_down(tmp_path):
    path = tmp_path / "reviews.feather"
    rows = 200_000
    feather.write_feather(pa.table({"text": [f"review {i}" for i in range(rows)]}), path,
                          compression="uncompressed")
    output = survived(run_python(f"""
        from pathlib import Path
        from litdesk.core.loaders import load_dataset
        path = Path({str(path)!r})
        dataset = load_dataset(path)
        path.write_bytes(b"rewritten by another program")  # cuts the file short
        print(dataset.example({rows - 1})["text"], len(dataset.table.column("text").to_pylist()))
    """))
    assert output.split() == ["review", str(rows - 1), str(rows)]


# --- Many columns ----------------------------------------------------------------------------


def test_twenty_thousand_columns_load_in_seconds_and_can_be_cancelled(tmp_path):
    columns = 20_000
    path = tmp_path / "wide.csv"
    row = ",".join(str(i % 10) for i in range(columns))
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + f"{row}\n" * 20)
    start = time.perf_counter()
    progress: list[Progress] = []
    dataset = run_job(iter_load_dataset(path), progress.append)
    assert time.perf_counter() - start < 30  # was 252 s for a file like it
    assert dataset.table.num_columns == columns and len(dataset.spec()) == columns
    inferring = [p for p in progress if p.message.startswith("Inferring")]
    assert len(inferring) >= columns // 100 and inferring[-1].done == columns

    job = iter_load_dataset(path)
    for report in job:
        if report.message.startswith("Inferring") and report.done > 0:
            break
    job.close()  # cancelled half-way through the columns
    assert 0 < report.done < columns


# --- A file name that is not UTF-8 ---------------------------------------------------------


def test_a_file_whose_name_is_not_utf8_loads_and_keeps_its_datapoints(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv")
    try:
        with open(raw, "wb") as file:
            file.write(b"text,label\ngood film,positive\n")
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    path = os.fsdecode(raw)
    bench = Workbench(InlineRunner())
    errors: list[tuple[str, str]] = []
    bench.error_reported.connect(lambda title, message: errors.append((title, message)))
    bench.open_paths([path])  # the slice store's signal handler failed on this name
    assert list(bench.session.datasets) == ["caf\ufffd"] and errors == []
    assert bench.add_datapoints([NewDatapoint.now({"text": "bad film", "label": "negative"}, 0,
                                                  "edited")])
    points, messages = Journal(load_dataset(path)).read()  # journaled under the file's bytes
    assert [p.values["text"] for p in points] == ["bad film"] and messages == []
    with open(raw, "wb") as file:
        file.write(b"text,label\n\"never closed\n")
    assert str(load_error(path)).encode("utf-8").startswith(b"caf\xef\xbf\xbd.csv")


# --- Plugin folder -------------------------------------------------------------------------


def test_a_fifo_in_the_plugin_folder_is_skipped(litdesk_home):
    folder = plugins.user_plugin_folder()
    os.mkfifo(folder / "a_pipe.py")
    (folder / "tool.py").write_text("LITDESK_MANIFEST = {'name': 'tool'}\n")
    output = survived(run_python("""
        from litdesk.core.plugins import discover_plugins
        registry = discover_plugins()
        print("tool" in registry.plugins, sorted(registry.errors))
    """, timeout=60))
    assert output.strip() == "True []"


# --- What one cell may cost ----------------------------------------------------------------


def test_a_tiny_parquet_holding_a_huge_list_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"v": pa.array([[0] * 2_000_000], pa.list_(pa.int8()))}), path)
    assert path.stat().st_size < 50_000
    assert str(load_error(path)) == ("bomb.parquet, column 'v.list.element': 2,000,000 values in "
                                     "row 1, more than litdesk reads (1,000,000 in one cell)")


def test_one_oversized_cell_among_many_is_refused_naming_its_row(tmp_path, monkeypatch):
    lists = [[1]] * 9 + [[0] * 1_500_000]
    pq.write_table(pa.table({"v": lists}), tmp_path / "one.parquet")
    assert str(load_error(tmp_path / "one.parquet")) == (
        "one.parquet, column 'v': row 10 holds 1,500,000 list items (litdesk reads at most "
        "1,000,000 in one cell)")
    monkeypatch.setattr(loaders, "MAX_CELL_BYTES", 2**20)  # 64 MiB by default
    text = tmp_path / "long.jsonl"
    text.write_text('{"t": "short"}\n' + json.dumps({"t": "x" * (2**20 + 1)}) + "\n")
    assert str(load_error(text)) == ("long.jsonl, column 't': row 2 holds 1 MiB of text or "
                                     "bytes (litdesk reads at most 1 MiB in one cell)")


# --- Images given to a model ----------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header says ``width`` × ``height`` (what a decompression bomb does)."""
    from PIL import Image

    encoded = io.BytesIO()
    Image.new("RGB", (1, 1)).save(encoded, "PNG")
    data = bytearray(encoded.getvalue())
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:33] = header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, at open
def test_images_too_large_to_decode_are_refused_and_large_ones_shrunk():
    from PIL import Image

    from litdesk_transformers.image_classifier import (
        HFImageClassifier,
        ImageTooLargeError,
        decode_image,
    )

    model = SimpleNamespace(mode="RGB", name="vit", _pixels=list)
    with pytest.raises(ImageTooLargeError) as caught:
        HFImageClassifier.pixels_from_images(model, [png_header(12_000, 12_000)])
    assert str(caught.value) == ("model vit: the image is 12,000 × 12,000 pixels; litdesk "
                                 "decodes at most 100 megapixels")
    with pytest.raises(ImageTooLargeError, match="decodes at most 100 megapixels"):
        decode_image(png_header(40_000, 40_000))
    encoded = io.BytesIO()
    Image.new("L", (6000, 3000)).save(encoded, "PNG")
    assert decode_image(encoded.getvalue()).size == (4096, 2048)


# --- Save Dataset As -----------------------------------------------------------------------


def test_a_save_killed_half_way_leaves_the_old_file_whole_and_its_temporary_is_cleaned(
        tmp_path):
    target = tmp_path / "mine.jsonl"
    target.write_text('{"text": "what I had"}\n')
    target.chmod(0o640)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        import pyarrow as pa
        from litdesk.api import Dataset, TextSegment
        from litdesk.core.save import save_dataset_job
        rows = pa.table({{"text": ["new"] * 120_000}})
        job = save_dataset_job(Dataset(rows, {{"text": TextSegment()}}), {str(target)!r})
        for progress in job:
            if 0 < progress.done < progress.total:  # the first batch is written
                print("writing", flush=True)
                sys.stdin.readline()  # killed here
    """)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    (left,) = [p for p in tmp_path.iterdir() if p != target]
    assert left.name.startswith(".mine.jsonl.litdesk-")
    assert target.read_text() == '{"text": "what I had"}\n'  # nothing lost

    dataset = load_dataset(target)
    run_job(save_dataset_job(dataset, target))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # the temporary is gone
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert json.loads(target.read_text().splitlines()[0])["text"] == "what I had"


def test_a_new_saved_file_gets_the_umask_mode_and_a_link_stays_a_link(tmp_path):
    (tmp_path / "in.csv").write_text("text\nhello\n")
    dataset = load_dataset(tmp_path / "in.csv")
    umask = os.umask(0o027)
    try:
        run_job(save_dataset_job(dataset, tmp_path / "new.csv"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "new.csv")
    run_job(save_dataset_job(dataset, link))
    assert link.is_symlink() and "hello" in (tmp_path / "new.csv").read_text()

