"""`toolkit evaluate` / metrics.runner: pairing, decode-once scoring, mismatches, outputs, skipped metrics."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from talking_head.metrics.base import VideoPair
from talking_head.metrics.pairing import folder_videos, pair_videos
from talking_head.metrics.runner import evaluate, score_pair
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate

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


@pytest.mark.slow  # ~15 CPU s: every metric, twice
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


# ------------------------------------------------------------------ presets, Beat Align, samples
@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """3 s (75 frames): longer than the 50-frame minimum face track of the mocha / latentsync presets."""
    return generate(tmp_path_factory.mktemp("evaluate-long"), speakers=1, clips=1, seconds=3.0, seed=4,
                    show_progress=False)[0]


def _blazeface_boxes(frames):
    """A real offline face detector in the S3FD detector's output format: (k, 5) x1, y1, x2, y2, score."""
    from talking_head.toolkit.face_detector import FaceDetector

    detector = _blazeface_boxes.detector = getattr(_blazeface_boxes, "detector", None) or FaceDetector()
    return [np.array([[*d.box, d.score] for d in detector.detect(f)], np.float64).reshape(-1, 5) for f in frames]


@pytest.mark.slow  # ~110 CPU s: S3FD and SyncNet on full frames
def test_lse_track_presets_score_face_tracks_of_full_frames(long_clip, tmp_path, monkeypatch):
    """--preset mocha / latentsync: S3FD face tracks (weights from the registry) cut from full frames,
    each track scored, aggregated per the preset; a video without a track is excluded with the reason."""
    import weights_factory as factory
    from talking_head.metrics import lse_track
    from talking_head.metrics.runner import build_metrics
    from talking_head.metrics.lse import score_crops
    from talking_head.metrics.syncnet import SyncNet
    from talking_head.toolkit import weights as w

    frames, audio16 = media.read_video(long_clip.video), media.read_audio(long_clip.video, dtype="int16")
    crops = np.stack([cv2.resize(f, (224, 224)) for f in frames])
    factory.place(monkeypatch, "syncnet", factory.syncnet(crops, audio16))
    import torch
    from syncnet_python.detectors.s3fd.nets import S3FDNet  # the reference's network: the file's keys

    torch.manual_seed(0)
    factory.place(monkeypatch, "syncnet-s3fd", S3FDNet(device="cpu").state_dict())

    # Random S3FD weights find no face above 0.9: the video is excluded and says why.
    summary = evaluate(long_clip.video, long_clip.video, metrics=["lse"], out=tmp_path / "run", lse_preset="mocha",
                       show_progress=False)
    assert summary["skipped"] == {}, summary["skipped"]
    lse = summary["results"]["lse"]
    assert lse["num_videos"] == 1 and lse["num_scored"] == 0 and lse["preset"] == "mocha"
    assert "no face" in lse["excluded"][long_clip.video.stem]
    assert summary["config"]["lse"]["tracks"]["min_track"] == 50 and summary["options"]["lse_preset"] == "mocha"
    assert summary["weights"]["syncnet-s3fd"] == w.verify("syncnet-s3fd").actual_sha256

    # With a detector that finds the face, the runner's scores are the track pipeline's, track by track
    # (by default on the reference's re-encodes, --lse-frames ffmpeg_jpeg: track_video's reference_exact).
    assert summary["config"]["lse"]["frames"] == "ffmpeg_jpeg"
    assert summary["config"]["lse"]["tracks"]["reference_exact"] is True
    (adapter,), skipped = build_metrics(["lse"], lse_preset="latentsync")
    assert skipped == {}
    for pipeline in adapter.pipelines.values():
        pipeline._detector = _blazeface_boxes
    row = score_pair(VideoPair("clip", long_clip.video, long_clip.video), [adapter])
    expected = lse_track.track_video(long_clip.video, "syncnet-python", detector=_blazeface_boxes,
                                     reference_exact=True)
    assert len(expected.tracks) == row["lse_tracks"] == row["reference_lse_tracks"] == 1
    track = expected.tracks[0]
    direct = score_crops(track.crops, track.audio, SyncNet.from_pretrained())
    assert row["lse_d"] == pytest.approx(direct["lse_d"], abs=1e-4)
    assert row["lse_c"] == pytest.approx(direct["lse_c"], abs=1e-4)
    assert adapter.compute()["num_scored"] == 1
    with pytest.raises(ValueError, match="unknown LSE preset"):
        build_metrics(["lse"], lse_preset="nope")


@pytest.mark.slow  # ~135 CPU s: FAN on every paired frame
def test_lmd_68_point_preset_runs_fan_on_the_paired_frames(sample, tmp_path, monkeypatch):
    """--lmd-preset vico: FAN 68 points (weights from the registry) on both sides, pixels; equal to the
    metric's own update_frames on the same frames."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    import weights_factory as factory
    from talking_head.metrics import lmd as L

    torch.manual_seed(0)
    factory.place(monkeypatch, "fan-2d", FAN(4).state_dict())
    factory.place(monkeypatch, "fan-s3fd", s3fd().state_dict())
    root, clips = sample
    frames = media.read_video(clips[0].video)[:2]
    small = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in frames])
    shifted = np.roll(small, 3, axis=2)
    reference = _write(tmp_path / "ref" / "c.mp4", small, None)
    _write(tmp_path / "gen" / "c.mp4", shifted, None)
    summary = evaluate(tmp_path / "gen", tmp_path / "ref", metrics=["lmd"], out=tmp_path / "run", lmd_preset="vico",
                       show_progress=False)
    got = summary["results"]["lmd"]
    assert summary["config"]["lmd"]["name"] == "vico" and summary["config"]["lmd"]["extractor"]["detector"] == "fan"
    assert set(summary["weights"]) == {"fan-2d", "fan-s3fd"}
    metric = L.LandmarkDistance("vico")
    metric.update_frames(media.read_video(tmp_path / "gen" / "c.mp4"), media.read_video(reference))
    expected = metric.compute()
    assert got["frames_used"] == expected["frames_used"]
    assert got["mouth_lmd"] == pytest.approx(expected["mouth_lmd"], rel=1e-6, nan_ok=True)


def test_beat_align_and_cross_sample_diversity(sample, tmp_path):
    """Two samples for one clip's audio (<clip_id>.sample<k>): each scored against the clip, their head
    poses compared for the cross-sample diversity; Beat Align on every video's own audio."""
    root, clips = sample
    frames, audio = media.read_video(clips[0].video), media.read_audio(clips[0].audio)
    h, w_ = frames.shape[1:3]
    turn = cv2.getRotationMatrix2D((w_ / 2, h / 2), 8.0, 1.0)  # the second sample tilts the head 8 degrees
    tilted = np.stack([cv2.warpAffine(f, turn, (w_, h), borderMode=cv2.BORDER_REFLECT) for f in frames])
    _write(tmp_path / "gen" / "S01" / "S01_000.sample0.mp4", frames, audio)
    _write(tmp_path / "gen" / "S01" / "S01_000.sample1.mp4", tilted, audio)
    pairs, unpaired = pair_videos(tmp_path / "gen", root / "ref", cache=tmp_path / "cache")
    assert [(p.video_id, p.clip_id, p.sample) for p in pairs] == [
        ("S01/S01_000.sample0", "S01/S01_000", 0), ("S01/S01_000.sample1", "S01/S01_000", 1)]
    assert unpaired == {"generated_only": [], "reference_only": ["S01/S01_001"]}

    summary = evaluate(tmp_path / "gen", root / "ref", metrics=["diversity", "beat_align", "pose"],
                       out=tmp_path / "run", show_progress=False)
    diversity = summary["results"]["diversity"]
    assert diversity["audios"] == 1 and diversity["pairs"] == 1
    assert 5.0 < diversity["diversity"] < 11.0  # the roll differs by ~8 degrees on every frame
    assert diversity["per_clip"] == {"S01/S01_000": pytest.approx(diversity["diversity"])}
    beat = summary["results"]["beat_align"]
    assert beat["videos"] == 2 and 0.0 <= beat["beat_align"] <= 1.0
    assert beat["reference"]["videos"] == 2
    with open(tmp_path / "run" / "per_video.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["video_id"] for r in rows] == ["S01/S01_000.sample0", "S01/S01_000.sample1"]
    assert all(r["beat_align"] != "" for r in rows)
    # One video per clip: no diversity, and the summary says why.
    single = evaluate(root / "ref", root / "ref", metrics=["diversity"], out=tmp_path / "run2", show_progress=False)
    assert single["results"]["diversity"]["audios"] == 0 and "sample" in single["results"]["diversity"]["note"]
