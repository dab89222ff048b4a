"""benchmarks/gpu_suite.py, the one-command evaluation suite, runs end to end on CPU with 4 short pairs (on a
GPU machine: `python benchmarks/gpu_suite.py --device cuda`, 100 ten-second pairs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


@pytest.mark.slow  # ~3 CPU min: every default metric and FVD on 4 one-second pairs, random weights
def test_suite_runs_on_cpu(tmp_path):
    work = tmp_path / "suite"
    done = subprocess.run([sys.executable, str(SUITE), "--device", "cpu", "--clips", "4", "--seconds", "1",
                           "--work", str(work), "--jobs", "2"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((work / "report.json").read_text())
    assert report["pairs"] == 4 and report["frames"] == 4 * 25 and report["device"].startswith("cpu")
    from talking_head.metrics import registry

    stages = report["stages"]
    for name in [*registry.default_names(), "fvd"]:
        stage = registry.entry(name).name  # psnr and ssim are one metric
        assert stages[stage]["frames_per_second"] > 0, stage
    assert "decode" in stages and "face_mesh" in stages
    batched = report["batched_vs_one_at_a_time"]
    assert {"inception", "syncnet_lip", "arcface"} <= set(batched) and all(0 <= v < 1e-3 for v in batched.values())
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cpu") and lines[-2].startswith("total") and "fvd" in done.stdout
    assert lines[-1].startswith("batched vs one at a time") and "syncnet_lip" in lines[-1]
    # The pairs are distinct videos (no reference cache answers for another), each with its blurred copy.
    references = sorted((work / "reference").glob("*.mp4"))
    assert len(references) == 4 and len({p.read_bytes() for p in references}) == 4
    assert len(list((work / "generated").glob("*.mp4"))) == 4
