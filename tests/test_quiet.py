"""Quiet by default (toolkit.quiet): real commands, their stderr counted line by line.

A normal run shows the toolkit's own progress and messages and nothing from MediaPipe's native code
(absl / TensorFlow Lite lines written straight to fd 2) or from Hugging Face's progress bars; ``--verbose``
shows those again, which is what proves the counting below can fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Lines (or tqdm segments) that do not come from the toolkit, as MediaPipe 0.10.21 and datasets print them.
THIRD_PARTY = re.compile(
    r"inference_feedback_manager|landmark_projection_calculator|absl|TensorFlow Lite|XNNPACK"
    r"|^[IWE]\d{4} |Generating \w+ split|Saving the dataset|Loading dataset|^Map|examples/s"
)

TOOLKIT = [str(Path(sys.executable).with_name("toolkit"))]


def third_party_lines(stderr: str) -> list[str]:
    # tqdm redraws with "\r": every segment counts as a line.
    return [line for line in re.split(r"[\r\n]+", stderr) if THIRD_PARTY.search(line)]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (
        "TOOLKIT_VERBOSE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS", "DATASETS_VERBOSITY")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


PREPROCESS = ["preprocess", "--dataset", "sample", "--size", "256", "--sample-speakers", "1", "--sample-clips", "2",
              "--sample-seconds", "2"]


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_preprocess_stderr(tmp_path: Path, verbose: bool) -> None:
    """`toolkit preprocess` of a tiny sample (MediaPipe in fork-server workers, datasets writing the splits)."""
    args = TOOLKIT + (["--verbose"] if verbose else []) + PREPROCESS + ["--out", str(tmp_path / "ds")]
    done = run(args, tmp_path)
    foreign = third_party_lines(done.stderr)
    if verbose:
        # Everything as before the fix: MediaPipe's C++ lines and datasets' bars.
        assert any("inference_feedback_manager" in line for line in foreign), done.stderr
        assert any("Saving the dataset" in line for line in foreign), done.stderr
    else:
        assert foreign == [], "\n".join(foreign)
        # Only the toolkit's own progress line is left on stderr.
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines and all(line.startswith("preprocess ") for line in lines), done.stderr
    # The toolkit's own progress (rate, frames/s) and summary stay in both.
    assert "clips/s" in done.stderr and "frames/s" in done.stderr, done.stderr
    assert "2 clips done, 0 failed" in done.stdout, done.stdout


LIBRARY = """
import sys, time, warnings
import numpy as np
from talking_head.toolkit import face_mesh, face_detector
image = np.zeros((128, 128, 3), np.uint8)
mesh = face_mesh.FaceMeshDetector(video=True)
boxes = face_detector.FaceDetector()
time.sleep(0.5)  # the graphs open on their own threads: their lines would come now
mesh.detect(image); boxes.detect(image)
mesh.close(); boxes.close()
warnings.warn("a Python warning stays visible")
print("library done", file=sys.stderr)
"""


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_library_use_is_quiet(tmp_path: Path, verbose: bool) -> None:
    """Library users (no `toolkit` command) get quiet MediaPipe too; Python warnings are not silenced."""
    env = {k: v for k, v in os.environ.items() if k != "TOOLKIT_VERBOSE"}
    if verbose:
        env["TOOLKIT_VERBOSE"] = "1"
    done = subprocess.run([sys.executable, "-c", LIBRARY], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "a Python warning stays visible" in done.stderr and "library done" in done.stderr
    if verbose:
        assert third_party_lines(done.stderr), done.stderr
    else:
        assert third_party_lines(done.stderr) == [], done.stderr


SCOPE = r"""
import os, sys
from talking_head.toolkit import quiet
with quiet.native_logs():
    os.write(2, b"W0000 00:00:1796629742.496960    8395 inference_feedback_manager.cc:114] native warning\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"E0000 00:00:1796629742.496960    8395 graph.cc:1] a native error is kept\n")
    print("the toolkit's own line is kept", file=sys.stderr)
with quiet.native_logs():
    raise RuntimeError("a traceback from inside the scope is printed")
"""


def test_scope_keeps_own_output_and_tracebacks(tmp_path: Path) -> None:
    """Inside the scope only native info/warning lines go; fd 2 is restored before a traceback is printed."""
    env = {k: v for k, v in os.environ.items() if k != "TOOLKIT_VERBOSE"}
    done = subprocess.run([sys.executable, "-c", SCOPE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "native warning" not in done.stderr and "XNNPACK" not in done.stderr
    assert "a native error is kept" in done.stderr
    assert "the toolkit's own line is kept" in done.stderr
    assert "Traceback" in done.stderr and "a traceback from inside the scope is printed" in done.stderr


def test_filter_native_lines() -> None:
    """What is dropped: absl/glog info and warning lines, TF Lite's notices, also after a live bar's text."""
    from talking_head.toolkit.quiet import filter_native

    native = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
              b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              b"W0000 00:00:1796629742.496960    8395 inference_feedback_manager.cc:114] Feedback manager ...\n"
              b"I1207 08:00:00.123456      77 gl_context.cc:5] info\n")
    assert filter_native(native) == b""
    kept = b"E0000 00:00:1796629742.4 8395 graph.cc:1] error\nWARNING:root:python logging\nUserWarning: x\n"
    assert filter_native(native + kept) == kept
    bar = b"\r\x1b[2Kevaluate 1/2 videos"
    assert filter_native(bar + native) == bar  # the bar's line is left as the bar drew it
    assert filter_native(bar + native.splitlines(keepends=True)[-1] + b"done\n") == bar + b"\ndone\n"


def test_in_process_command_hides_datasets_bars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that imported `datasets` before the command ran (a notebook, CliRunner) gets the same quiet run:
    the switch is set on the module datasets reads, not on its tqdm class of the same name."""
    import datasets
    from typer.testing import CliRunner

    from talking_head.toolkit.cli import app

    for name in ("TOOLKIT_VERBOSE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "DATASETS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)
    switch = sys.modules["datasets.utils.tqdm"]
    monkeypatch.setattr(switch, "_hf_datasets_progress_bars_disabled", False)
    try:
        quiet = CliRunner().invoke(app, [*PREPROCESS, "--out", str(tmp_path / "quiet"), "-q"])
        assert quiet.exit_code == 0, quiet.output
        assert third_party_lines(quiet.output) == [] and switch.are_progress_bars_disabled()
        verbose = CliRunner().invoke(app, ["--verbose", *PREPROCESS, "--out", str(tmp_path / "loud"), "-q"])
        assert verbose.exit_code == 0, verbose.output
        assert any("Saving the dataset" in line for line in third_party_lines(verbose.output))
    finally:
        datasets.logging.set_verbosity_warning()
