"""Per-pair frame rates: references at 25 and 30 fps in one run, every video reduced at its own rate.

The runner reads each pair at its reference's frame rate; blink rate (blinks per second), Beat Align
(audio hop = sample_rate / fps, beats in frames) and LipLeak (each frame's audio window) must use that pair's
rate, not the first pair's.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from talking_head.metrics.runner import evaluate
from talking_head.toolkit import media

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py: no weights needed
METRICS = ["blink", "beat_align", "lipleak"]
FRAMES = 200  # the 8 s sample's frames (two blinks); at 30 fps the same frames last 6.67 s
RATES = {"a25": 25, "b30": 30}  # pairs are scored in name order: the 25 fps pair comes first


@pytest.fixture(scope="module")
def folders(shared_sample, tmp_path_factory):
    """gen/ and ref/ each with a25.mp4 (25 fps) and b30.mp4 (30 fps), the same frames; one folder per video
    as well (single/<name>/{gen,ref}) for the single-video runs."""
    clip = shared_sample(speakers=1, clips=1, seconds=8.0, seed=0)[0]
    frames = media.read_video(clip.video)[:FRAMES]
    audio = media.read_audio(clip.audio, sample_rate=16000)
    root = tmp_path_factory.mktemp("mixed_fps")
    for name, fps in RATES.items():
        sound = audio[: int(round(len(frames) / fps * 16000))]  # as long as the video at its rate
        for folder in (root / "gen", root / "ref", root / "single" / name / "gen", root / "single" / name / "ref"):
            folder.mkdir(parents=True, exist_ok=True)
            media.write_video(folder / f"{name}.mp4", frames, fps=fps, audio=sound)
    return root


def _rows(run):
    with open(run / "per_video.csv", newline="") as handle:
        return {row["video_id"]: row for row in csv.DictReader(handle)}


def test_each_pair_is_reduced_at_its_own_frame_rate(folders, tmp_path):
    mixed = evaluate(folders / "gen", folders / "ref", metrics=METRICS, out=tmp_path / "mixed", bootstrap=0,
                     show_progress=False)
    assert mixed["excluded"] == [] or not mixed["excluded"], mixed["excluded"]
    rows = _rows(tmp_path / "mixed")
    assert sorted(rows) == sorted(RATES)
    assert {name: float(rows[name]["fps"]) for name in RATES} == pytest.approx({k: float(v) for k, v in RATES.items()})

    singles = {}
    for name in RATES:
        alone = evaluate(folders / "single" / name / "gen", folders / "single" / name / "ref", metrics=METRICS,
                         out=tmp_path / name, bootstrap=0, show_progress=False)
        singles[name] = (alone["results"], _rows(tmp_path / name)[name])

    blinks, frames = [], []
    for name, fps in RATES.items():
        results, row = singles[name]
        blink = results["blink"]
        assert blink["videos"] == 1 and blink["blinks"] >= 1  # the sample blinks in these frames
        # The pair's per-video values in the mixed run are the single-video run's, on both sides.
        for column in ("blink_rate", "reference_blink_rate", "beat_align", "reference_beat_align",
                       "lipleak_silent_frames", "reference_lipleak_silent_frames"):
            assert float(rows[name][column]) == pytest.approx(float(row[column]), rel=1e-9), (name, column)
        assert float(rows[name]["blink_rate"]) == pytest.approx(blink["blink_rate"], rel=1e-9)
        assert float(rows[name]["blink_rate"]) == pytest.approx(blink["blinks"] * fps / blink["frames_used"])
        blinks.append(blink["blinks"])
        frames.append(blink["frames_used"])

    # Pooled: all blinks over all valid seconds, each video's frames at its own rate.
    seconds = sum(f / fps for f, fps in zip(frames, RATES.values()))
    pooled = mixed["results"]["blink"]
    assert pooled["blinks"] == sum(blinks) and pooled["frames_used"] == sum(frames)
    assert pooled["blink_rate"] == pytest.approx(sum(blinks) / seconds, rel=1e-9)
    assert pooled["reference"]["blink_rate"] == pytest.approx(sum(blinks) / seconds, rel=1e-9)
    means = [singles[name][0]["blink"]["blink_rate"] for name in RATES]
    assert pooled["blink_rate_video_mean"] == pytest.approx(float(np.mean(means)), rel=1e-9)
    durations = [singles[name][0]["blink"]["mean_duration_s"] * singles[name][0]["blink"]["blinks"] for name in RATES]
    assert pooled["mean_duration_s"] == pytest.approx(sum(durations) / sum(blinks), rel=1e-9)
    # Beat Align: the mean over videos of each video's own score, both videos counted.
    beat = mixed["results"]["beat_align"]
    assert beat["videos"] == 2 and beat["reference"]["videos"] == 2
    scores = [singles[name][0]["beat_align"]["beat_align"] for name in RATES]
    assert beat["beat_align"] == pytest.approx(float(np.nanmean(scores)), rel=1e-9)
    # The configuration says the run met both rates.
    assert mixed["config"]["blink"]["fps"] == [25.0, 30.0]
    assert mixed["config"]["beat_align"]["fps"] == [25.0, 30.0]
