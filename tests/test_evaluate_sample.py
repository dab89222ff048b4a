"""End-to-end check: `toolkit evaluate` on the built-in sample's preprocessed test split,
against itself and against a perturbed copy (blurred frames, audio shifted by 0.2 s).

Every metric runs on real code with weight files created by tests/weights_factory.py (random values,
real shapes). Directions that hold for any weights are asserted: identical videos give the perfect
value; the perturbed copy is worse on every pixel, identity and landmark metric. With random SyncNet
weights LSE cannot tell synced from shifted audio, so for LSE the test asserts that the identical copy
scores exactly like its reference and that the shifted audio changes the scores.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import weights_factory as factory
from golden_files import assert_unchanged, load_json
from talking_head.toolkit import media
from talking_head.toolkit.cli import app

SHIFT_S = 0.2  # 5 frames at 25 fps


@pytest.fixture(scope="module")
def dataset(small_preprocessed_sample):
    return small_preprocessed_sample  # tests/conftest.py: the sample's 2 s clips, preprocessed once per run


@pytest.fixture
def weights(dataset, isolated_caches, monkeypatch, tmp_path):
    from datasets import load_from_disk

    row = load_from_disk(str(dataset))["test"][0]
    video = tmp_path / "row.mp4"
    video.write_bytes(row["video"])
    factory.place_default_metrics(monkeypatch, media.read_video(video), media.read_audio(video, dtype="int16"))


def _perturbed_copy(dataset, folder):
    """Each test clip blurred, with its audio delayed by SHIFT_S, named by clip id."""
    from datasets import load_from_disk

    folder.mkdir()
    for row in load_from_disk(str(dataset))["test"]:
        source = folder / f"{row['clip_id']}.src.mp4"
        source.write_bytes(row["video"])
        frames = media.read_video(source)
        audio = media.read_audio(source)
        shift = int(SHIFT_S * 16000)
        delayed = np.concatenate([np.zeros(shift, np.float32), audio[:-shift]])
        blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.5) for f in frames])
        media.write_video(folder / f"{row['clip_id']}.mp4", blurred, fps=25, audio=delayed)
        source.unlink()


def _evaluate(generated, reference, out):
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(generated), "--reference", str(reference),
                                   "--out", str(out), "-q"])
    assert run.exit_code == 0, run.output
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow  # ~150 CPU s: every metric, twice, on the preprocessed sample
def test_every_metric_moves_the_right_way(dataset, weights, tmp_path):
    same = _evaluate(dataset, dataset, tmp_path / "same")
    _perturbed_copy(dataset, tmp_path / "perturbed")
    worse = _evaluate(tmp_path / "perturbed", dataset, tmp_path / "worse")
    print(json.dumps({"same": same["results"], "perturbed": worse["results"]}, indent=1, default=str))
    for summary in (same, worse):
        assert summary["skipped"] == {}, summary["skipped"]
        assert summary["videos"] >= 1 and set(summary["weights"]) >= {"fid-inception", "syncnet", "lpips-alexnet"}
    s, w = same["results"], worse["results"]

    assert abs(s["fid"]["fid"]) < 1e-6 < w["fid"]["fid"]
    assert s["psnr_ssim"]["ssim"] == pytest.approx(1.0) and w["psnr_ssim"]["ssim"] < 0.98
    assert abs(s["lpips"]["lpips"]) < 1e-7 < w["lpips"]["lpips"]
    assert s["csim"]["csim"] == pytest.approx(1.0, abs=1e-6) and w["csim"]["csim"] < s["csim"]["csim"]
    assert abs(s["lmd"]["mouth_lmd"]) < 1e-9 < w["lmd"]["mouth_lmd"]
    assert w["niqe"]["niqe"] > s["niqe"]["niqe"]  # blur leaves natural-scene statistics
    # Pose and blinks of an identical copy equal the reference's.
    assert s["pose"]["yaw_std"] == pytest.approx(s["pose"]["reference"]["yaw_std"])
    assert s["blink"]["blink_rate"] == pytest.approx(s["blink"]["reference"]["blink_rate"])
    # LSE: identical copy = reference; shifted audio changes the scores (random weights: no direction).
    assert s["lse"]["lse_d"] == pytest.approx(s["lse"]["reference"]["lse_d"])
    assert s["lse"]["lse_c"] == pytest.approx(s["lse"]["reference"]["lse_c"])
    assert w["lse"]["lse_d"] != pytest.approx(s["lse"]["lse_d"], abs=1e-4)
    # And every number is the one the code gave before the refactor (tests/golden_files.py).
    assert_unchanged({"same": s, "perturbed": w}, load_json("evaluate_sample.results.json"), "results", text=False)

