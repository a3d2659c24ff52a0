"""The wheel on its own: built from the sources, installed into a fresh virtualenv with nothing
else, it runs the demo headless; and the frozen bundle (``make bundle``), when one was built.

The fresh virtualenv takes litdesk's dependencies from a local folder of wheels repacked from
this environment's installed distributions (the versions ``make`` installed under
constraints.txt), with pip's index switched off: no network, a minute or two instead of the
many that downloading them takes, and pip installs only what the wheel's metadata asks for, so
a dependency the wheel forgets to declare fails here.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "dist" / "litdesk"
FIRST_PARTY_PLUGINS = {"transformers", "linear_text", "sklearn", "torchscript", "onnx"}
#: Never repacked: litdesk is the wheel under test, and the fresh venv brings its own pip.
_SKIPPED = {"litdesk", "pip"}


def _wheel_tag(distribution: metadata.Distribution) -> str:
    text = distribution.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip().split("-") for line in text.splitlines()
            if line.startswith("Tag:")]
    if not tags:
        return "py3-none-any"
    return "-".join(".".join(sorted({tag[part] for tag in tags})) for part in range(3))


def repack(distribution: metadata.Distribution, folder: Path) -> Path:
    """Write ``distribution`` (installed) back into a wheel: its files from RECORD, less
    bytecode and what lies outside site-packages (scripts, which pip makes anew)."""
    name = distribution.metadata["Name"].replace("-", "_").replace(".", "_")
    wheel = folder / f"{name}-{distribution.version}-{_wheel_tag(distribution)}.whl"
    base = Path(distribution.locate_file(""))
    info_dir = next(str(file).split("/")[0] for file in distribution.files
                    if str(file).split("/")[0].endswith(".dist-info"))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for file in distribution.files:
            relative = str(file)
            if (relative.startswith("..") or "__pycache__" in relative
                    or relative in (f"{info_dir}/RECORD", f"{info_dir}/INSTALLER",
                                    f"{info_dir}/direct_url.json", f"{info_dir}/REQUESTED")):
                continue
            path = base / relative
            if not path.is_file():
                continue
            data = path.read_bytes()
            archive.writestr(relative, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([relative, f"sha256={digest.decode()}", len(data)])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        archive.writestr(f"{info_dir}/RECORD", record.getvalue())
    return wheel


def _wheelhouse(folder: Path) -> Path:
    folder.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for distribution in metadata.distributions(path=[str(site)]):
        name = (distribution.metadata["Name"] or "").lower()
        if name and name not in _SKIPPED and distribution.files:
            repack(distribution, folder)
    return folder


def _headless_environment(home: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(QT_QPA_PLATFORM="offscreen", LITDESK_HOME=str(home),
                       HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return environment


def _run(command: list, cwd: Path, environment=None, timeout: int = 300
         ) -> subprocess.CompletedProcess:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_the_wheel_alone_runs_the_demo(tmp_path):
    sources = tmp_path / "sources"  # what a source distribution holds, nothing built
    sources.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, sources / name)
    for name in ("litdesk", "plugins"):
        shutil.copytree(ROOT / name, sources / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", tmp_path / "dist", sources], tmp_path)
    wheel = next((tmp_path / "dist").glob("litdesk-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "litdesk/resources/demo/sentiment.csv" in names
    assert "litdesk/resources/demo/models/bert_tiny/model.safetensors" in names
    assert {f"litdesk_{plugin}/litdesk.toml" for plugin in FIRST_PARTY_PLUGINS} <= names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([scripts / "python", "-m", "pip", "install", "--quiet", "--no-compile", "--no-index",
          "--find-links", _wheelhouse(tmp_path / "wheelhouse"),
          "-c", ROOT / "constraints.txt", wheel], tmp_path, timeout=600)

    home = tmp_path / "home"
    environment = _headless_environment(home)
    found = _run([scripts / "python", "-c", "import json, litdesk, litdesk_transformers;"
                  "from litdesk.core.plugins import discover_plugins;"
                  "r = discover_plugins();"
                  "print(json.dumps([litdesk.__file__, sorted(r.plugins), r.errors]))"],
                 tmp_path, environment)
    module_file, plugins, errors = json.loads(found.stdout.strip().splitlines()[-1])
    assert Path(module_file).is_relative_to(venv) and not errors
    assert FIRST_PARTY_PLUGINS <= set(plugins)
    version = _run([scripts / "litdesk", "--version"], tmp_path, environment)
    assert version.stdout.strip() == f"litdesk {metadata.version('litdesk')}"
    ready = _run([scripts / "litdesk", "--exit-when-ready"], tmp_path, environment)
    assert "ready_s" in json.loads(ready.stdout.strip().splitlines()[-1])
    assert not ready.stderr.strip().startswith("litdesk:"), ready.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for the frozen app")
def test_a_frozen_app_runs_the_projection_child_as_itself(frozen_app):
    """A frozen app has no Python to run ``-c``: the child is the app with --projection-child,
    which litdesk.__main__ turns into the child's work (here a script plays the app)."""
    import numpy as np

    import litdesk.__main__
    from litdesk.core import projection
    from litdesk.core.jobs import run_job

    assert litdesk.__main__.PROJECTION_CHILD_FLAG == projection.CHILD_FLAG
    assert projection._child_command() == [str(frozen_app), projection.CHILD_FLAG]
    vectors = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    coords = run_job(projection.projection_job(vectors, "tsne", 2), lambda step: None)
    assert coords.shape == (40, 2) and np.isfinite(coords).all() and coords.std() > 0


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLE / "litdesk").exists(), reason="no bundle: run make bundle")
def test_the_bundle_runs_the_demo_and_a_umap_projection(tmp_path):
    executable = BUNDLE / ("litdesk.exe" if os.name == "nt" else "litdesk")
    environment = _headless_environment(tmp_path / "home")
    version = _run([executable, "--version"], tmp_path, environment)
    assert version.stdout.strip().startswith("litdesk ")
    ready = _run([executable, "--exit-when-ready"], tmp_path, environment)
    assert "ready_s" in json.loads(ready.stdout.strip().splitlines()[-1])
    demo = next((BUNDLE / "_internal").rglob("resources/demo_tabular/breast_cancer.csv"))
    out = tmp_path / "umap.parquet"
    _run([executable, "project", "--data", demo, "--field", "mean_radius,mean_texture,"
          "mean_perimeter,mean_area,mean_smoothness", "--method", "umap", "--out", out],
         tmp_path, environment)
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == 569 and {"x", "y"} <= set(table.column_names)
