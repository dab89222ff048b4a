"""The installed environment is the one the project promises: packages, one OpenCV, a working CLI."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPENCV_WHEELS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless")


FOLDERS = ("toolkit", "preprocessing", "metrics", "baselines", "leaderboards")


@pytest.mark.parametrize("folder", FOLDERS)
def test_packages_import(folder):
    module = importlib.import_module(f"talking_head.{folder}")
    assert Path(module.__file__).parent == ROOT / folder


def test_declared_packages_are_the_tree():
    """pyproject.toml lists every folder with an __init__.py, each under `talking_head`."""
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"talking_head." + ".".join(p.parent.relative_to(ROOT).parts)
             for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    assert declared == found


def test_code_imports_only_the_namespace():
    """A bare `import metrics` would work from the repository root by accident and load a second copy of
    every module (two registries); all code, tests included, imports through `talking_head`."""
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(FOLDERS)})\b", re.M)
    offenders = [f"{p.relative_to(ROOT)}:{s.count(chr(10), 0, m.start()) + 1}"
                 for folder in (*FOLDERS, "tests") for p in (ROOT / folder).rglob("*.py")
                 for s in [p.read_text()] for m in bare.finditer(s)]
    assert offenders == []


def test_wheel_adds_one_top_level_name(tmp_path):
    """The built wheel installs `talking_head/...` and nothing else at the top level (no `metrics`,
    `baselines`, `leaderboards`), with the package data inside it."""
    import zipfile

    source = tmp_path / "source"  # setuptools builds in the source tree: a copy keeps build/ out of the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "outputs", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel, = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"talking_head"}
    assert "talking_head/__init__.py" not in names  # a namespace package: no folder of its own
    for data in ("talking_head/toolkit/data/canonical_face.csv", "talking_head/leaderboards/templates/index.html",
                 "talking_head/baselines/moda/configs/tiny/renderer.yaml", "talking_head/metrics/protocols/hallo.yaml"):
        assert data in names


def test_exactly_one_opencv_wheel():
    installed = []
    for name in OPENCV_WHEELS:
        try:
            metadata.version(name)
            installed.append(name)
        except metadata.PackageNotFoundError:
            pass
    assert installed == ["opencv-contrib-python-headless"]
    import cv2

    assert hasattr(cv2, "face"), "the contrib modules are part of the one wheel"


def test_torchvision_operators_load():
    # A CPU-only torch paired with the registry's torchvision fails exactly here.
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_pinned_versions_that_matter():
    assert metadata.version("mediapipe") == "0.10.21"
    assert int(metadata.version("numpy").split(".")[0]) < 2
    assert int(metadata.version("pyarrow").split(".")[0]) < 26
    import datasets  # noqa: F401  (fails with pyarrow>=26 under numpy<2)


def test_lock_file_names_no_registry_or_local_path():
    text = (ROOT / "requirements.lock.txt").read_text()
    assert not re.search(r"https?://|--index-url|--extra-index-url|--find-links|file:", text)
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in pins)
    assert any(line.startswith("torch==") for line in pins)
    assert not any(line.startswith(("opencv-python==", "opencv-contrib-python==")) and "never" not in line for line in pins)


def test_console_command_lists_commands():
    exe = shutil.which("toolkit", path=str(Path(sys.executable).parent))
    assert exe, "the `toolkit` console script is installed next to the interpreter"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("sample", "weights", "preprocess"):
        assert command in out
    for sub in (["sample", "--help"], ["preprocess", "--help"], ["weights", "list", "--help"], ["weights", "fetch", "--help"]):
        help_text = subprocess.run([exe, *sub], capture_output=True, text=True, check=True).stdout
        assert "Example" in help_text
