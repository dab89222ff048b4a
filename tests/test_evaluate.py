"""`toolkit evaluate` / metrics.evaluate: pairing, decode-once scoring, mismatches, outputs, skipped metrics."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from metrics.evaluate import VideoPair, evaluate, folder_videos, pair_videos, score_pair
from toolkit import media
from toolkit.cli import app
from toolkit.sample import generate

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py: no weights anywhere
NO_WEIGHTS = ["psnr", "ssim", "lmd", "pose", "blink"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    clips = generate(root / "ref", speakers=1, clips=2, seconds=1.2, seed=2, show_progress=False)
    return root, clips


def _write(path, frames, audio, fps=25):
    path.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(path, frames, fps=fps, audio=audio)
    return path


def test_identical_videos_score_perfectly_and_blur_moves_every_metric(sample, tmp_path):
    root, clips = sample
    for clip in clips:
        frames, audio = media.read_video(clip.video), media.read_audio(clip.audio)
        name = clip.video.relative_to(root / "ref")
        _write(tmp_path / "same" / name, frames, audio)
        _write(tmp_path / "blur" / name, np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in frames]), audio)

    same = evaluate(tmp_path / "same", root / "ref", metrics=NO_WEIGHTS, out=tmp_path / "run_same", show_progress=False)
    blur = evaluate(tmp_path / "blur", root / "ref", metrics=NO_WEIGHTS, out=tmp_path / "run_blur", show_progress=False)
    assert same["videos"] == blur["videos"] == 2 and same["skipped"] == {}
    # The "same" videos were re-encoded, so they are near, not bit, identical.
    assert same["results"]["psnr_ssim"]["ssim"] > 0.97 > blur["results"]["psnr_ssim"]["ssim"]
    assert same["results"]["psnr_ssim"]["psnr"] > blur["results"]["psnr_ssim"]["psnr"] + 5
    assert same["results"]["lmd"]["mouth_lmd"] < blur["results"]["lmd"]["mouth_lmd"]
    assert same["results"]["lmd"]["mouth_lmd"] < 1.0  # % of the inter-ocular distance

    summary = json.loads((tmp_path / "run_blur" / "summary.json").read_text())
    assert summary["software"]["numpy"] and summary["config"]["lmd"]["name"] == "dense"
    assert set(summary["results"]) == {"psnr_ssim", "lmd", "pose", "blink"}
    with open(tmp_path / "run_blur" / "per_video.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["video_id"] for r in rows] == ["S01/S01_000", "S01/S01_001"]
    assert all(int(r["frames_used"]) == 30 and int(r["faces_generated"]) == 30 for r in rows)
    assert all(float(r["psnr"]) < 40 and r["warnings"] == "" for r in rows)


def test_metrics_without_weights_are_skipped_with_the_reason(sample, tmp_path):
    root, _ = sample
    summary = evaluate(root / "ref", root / "ref", metrics=["fid", "lpips", "psnr"], out=tmp_path, show_progress=False)
    assert set(summary["skipped"]) == {"fid", "lpips"}
    assert "fid-inception" in summary["skipped"]["fid"] and "missing" in summary["skipped"]["fid"]
    assert summary["results"]["psnr_ssim"]["ssim"] == pytest.approx(1.0)  # a video against itself


def test_mismatched_rate_length_and_size_are_handled_and_recorded(sample, tmp_path):
    root, clips = sample
    frames, audio = media.read_video(clips[0].video), media.read_audio(clips[0].audio)
    # 30 fps, 0.2 s shorter, half size: resampled to the reference's 25 fps, truncated, resized.
    at30 = frames[np.round(np.arange(int(1.0 * 30)) * 25 / 30).astype(int)]
    small = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in at30])
    generated = _write(tmp_path / "g.mp4", small, audio[:16000], fps=30)
    row = score_pair(VideoPair("x", generated, clips[0].video), [])
    at25 = len(media.VideoReader(generated, fps=25))  # ffmpeg's -r rule (it repeats the last frame)
    assert row["fps"] == 25 and row["frames_reference"] == 30 and row["frames_generated"] == at25 < 30
    assert row["frames_used"] == at25
    assert "30 fps" in row["warnings"] and "length differs" in row["warnings"] and "size differs" in row["warnings"]


def test_pairing_by_relative_path_and_unpaired_ids(sample, tmp_path):
    root, clips = sample
    (tmp_path / "gen" / "S01").mkdir(parents=True)
    (tmp_path / "gen" / "S01" / "S01_000.mp4").write_bytes(clips[0].video.read_bytes())
    (tmp_path / "gen" / "S01" / "extra.mp4").write_bytes(clips[0].video.read_bytes())
    (tmp_path / "gen" / "notes.txt").write_text("not a video")
    assert sorted(folder_videos(tmp_path / "gen")) == ["S01/S01_000", "S01/extra"]
    pairs, unpaired = pair_videos(tmp_path / "gen", root / "ref", cache=tmp_path / "cache")
    assert [p.video_id for p in pairs] == ["S01/S01_000"]
    assert unpaired == {"generated_only": ["S01/extra"], "reference_only": ["S01/S01_001"]}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "zzz.mp4").write_bytes(clips[0].video.read_bytes())
    with pytest.raises(ValueError, match="no video of"):
        pair_videos(tmp_path / "other", root / "ref", cache=tmp_path / "cache")
    with pytest.raises(FileNotFoundError):
        pair_videos(tmp_path / "missing", root / "ref", cache=tmp_path / "cache")


def test_cli_prints_a_table_and_writes_the_run(sample, tmp_path):
    root, _ = sample
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(root / "ref"), "--reference", str(root / "ref"),
                                   "--metrics", "psnr,pose,fid", "--out", str(tmp_path / "run"), "-q"])
    assert run.exit_code == 0, run.output
    assert "psnr_ssim.ssim" in run.output and "skipped fid" in run.output
    assert (tmp_path / "run" / "per_video.csv").is_file() and (tmp_path / "run" / "summary.json").is_file()
    bad = CliRunner().invoke(app, ["evaluate", "--generated", str(root / "ref"), "--reference", str(root / "ref"),
                                   "--metrics", "psnr,nope", "--out", str(tmp_path / "run2"), "-q"])
    assert bad.exit_code == 1 and "unknown metric" in bad.output
