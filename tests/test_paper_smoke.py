"""benchmarks/paper_smoke.py, the paper-scale smoke script, end to end on the CPU with the sizes cut down (on a GPU
machine: `python benchmarks/paper_smoke.py --device cuda --scale full`), and its refusals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import weights_factory as factory
from talking_head.baselines import registry
from talking_head.baselines.paper_scale import paper_config

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_smoke.py"
STAGES = {model: registry.get_trained(model).stages for model in registry.trained_names()}


def smoke(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # the caches: isolated_caches' variables
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=1200, env=env)


@pytest.mark.usefixtures("isolated_caches")
def test_refuses_missing_weights_and_unusable_devices(tmp_path) -> None:
    missing = smoke("--device", "cpu", "--scale", "cut", "--steps", "2", "--out", tmp_path / "a")
    assert missing.returncode != 0 and "toolkit weights fetch" in missing.stderr, missing.stderr[-2000:]
    assert not (tmp_path / "a").exists()  # before any work
    device = smoke("--device", "tpu", "--out", tmp_path / "b")
    assert device.returncode == 2 and "not one of cpu, cuda" in device.stderr
    steps = smoke("--device", "cpu", "--steps", "1", "--out", tmp_path / "c")
    assert steps.returncode == 2 and "--steps must be at least 2" in steps.stderr


@pytest.mark.slow  # preprocesses the sample twice, trains five stages and generates two clips: ~3 CPU minutes
@pytest.mark.usefixtures("isolated_caches")
def test_cut_down_run_on_cpu_reports_every_stage(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    placed = set()
    for model, stages in STAGES.items():
        for stage in stages:
            placed.update(factory.stage_stand_ins(monkeypatch, paper_config(model, stage, "cut")))
    out = tmp_path / "smoke"
    done = smoke("--device", "cpu", "--scale", "cut", "--steps", "2", "--out", out, "--placed-weights",
                 ",".join(sorted(placed)))
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["device"].startswith("cpu") and report["scale"] == "cut" and report["steps"] == 2
    assert report["memory"] == "peak_rss" and "torch" in report["software"]
    assert sorted(report["stand_in_weights"]) == sorted(placed)
    assert report["models"].keys() == STAGES.keys()

    def positive(value) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value) and value > 0

    for model, stages in STAGES.items():
        entry = report["models"][model]
        assert list(entry["stages"]) == list(stages)
        for stage, row in entry["stages"].items():
            paper = paper_config(model, stage)
            assert row["steps"] == 2 * row["models"], (model, stage)
            assert positive(row["steps_per_second"]) and positive(row["peak_memory_bytes"]), (model, stage, row)
            assert row["mixed_precision"] == paper["training"]["mixed_precision"]  # the paper's, not changed
            assert math.isfinite(row["last_loss"])
        generated = entry["generation"]
        assert positive(generated["seconds_per_video_second"]) and positive(generated["video_seconds"])
        assert positive(generated["peak_memory_bytes"])
        assert entry["dataset"]["size"] == 256 and entry["dataset"]["fps"] == paper_config(model, stages[0]).get("fps", 25)
    lines = done.stdout.splitlines()
    assert any(line.startswith("cpu") and "scale cut" in line for line in lines)
    assert sum(line.split()[1:2] == ["generate"] for line in lines) == len(STAGES)
