"""Videos that cannot be scored are excluded with the reason; the others are scored as if alone."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from typer.testing import CliRunner

from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py: no weights anywhere
METRICS = "psnr,ssim,lmd,pose,blink"  # no weights needed; PSNR/SSIM and LMD pool over frames


def _evaluate(generated, reference, out):
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(generated), "--reference", str(reference),
                                   "--metrics", METRICS, "--out", str(out), "-q"])
    with open(out / "per_video.csv", newline="") as handle:
        rows = {row["video_id"]: row for row in csv.DictReader(handle)}
    return run, json.loads((out / "summary.json").read_text()), rows


def test_empty_and_truncated_videos_are_excluded_and_the_rest_scored_as_alone(tmp_path):
    clips = generate(tmp_path / "ref", speakers=1, clips=4, seconds=1.2, seed=6, show_progress=False)
    good, bad = tmp_path / "good", tmp_path / "with_bad"
    for clip in clips[:2]:
        name = clip.video.relative_to(tmp_path / "ref")
        for folder in (good, bad):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip.video, folder / name)
    empty = bad / clips[2].video.relative_to(tmp_path / "ref")
    empty.write_bytes(b"")
    truncated = bad / clips[3].video.relative_to(tmp_path / "ref")
    data = clips[3].video.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])

    alone, alone_summary, alone_rows = _evaluate(good, tmp_path / "ref", tmp_path / "run_good")
    assert alone.exit_code == 0, alone.output
    assert alone_summary["excluded"] == {} and alone_summary["num_excluded"] == 0 and alone_summary["videos"] == 2

    mixed, summary, rows = _evaluate(bad, tmp_path / "ref", tmp_path / "run_bad")
    assert mixed.exit_code == 2, mixed.output
    ids = [c.video.relative_to(tmp_path / "ref").with_suffix("").as_posix() for c in clips]
    assert set(summary["excluded"]) == {ids[2], ids[3]} and summary["num_excluded"] == 2
    assert "is empty (0 bytes)" in summary["excluded"][ids[2]] and "generated video" in summary["excluded"][ids[2]]
    assert "cut short" in summary["excluded"][ids[3]]
    assert "needs" in rows[ids[3]]["detail"] and "bytes" in rows[ids[3]]["detail"]  # the evidence, apart from the reason
    assert [rows[i]["status"] for i in ids] == ["scored", "scored", "excluded", "excluded"]
    assert rows[ids[2]]["reason"] == summary["excluded"][ids[2]] and rows[ids[0]]["reason"] == ""
    # the media error behind each reason, whole (issue 19: failures keep their traceback)
    assert rows[ids[3]]["traceback"].startswith("Traceback (most recent call last)") and rows[ids[0]]["traceback"] == ""
    assert f"excluded {ids[2]}" in " ".join(mixed.output.split())

    # The good videos: the same per-video values and the same pooled results as when evaluated alone.
    assert summary["videos"] == 2 and summary["frames"] == alone_summary["frames"]
    assert summary["results"] == alone_summary["results"]
    skip = {"generated", "reference", "traceback", "detail"}  # columns only a run with an excluded video has
    for video_id in ids[:2]:
        assert {k: v for k, v in rows[video_id].items() if k not in skip} == \
               {k: v for k, v in alone_rows[video_id].items() if k not in skip}


def test_a_video_without_audio_is_excluded_only_when_a_metric_reads_the_audio(tmp_path):
    from talking_head.metrics.runner import evaluate
    from talking_head.toolkit import media

    clip = generate(tmp_path / "ref", speakers=1, clips=1, seconds=1.0, seed=7, show_progress=False)[0]
    silent = tmp_path / "gen" / clip.video.relative_to(tmp_path / "ref")
    silent.parent.mkdir(parents=True)
    media.write_video(silent, media.read_video(clip.video), fps=25)  # no audio track
    video_id = silent.relative_to(tmp_path / "gen").with_suffix("").as_posix()
    beats = evaluate(tmp_path / "gen", tmp_path / "ref", metrics=["beat_align"], out=tmp_path / "beats",
                     show_progress=False)
    assert list(beats["excluded"]) == [video_id] and "no audio track" in beats["excluded"][video_id]
    assert beats["videos"] == 0 and beats["results"]["beat_align"] == {}  # nothing scored, nothing aggregated
    pixels = evaluate(tmp_path / "gen", tmp_path / "ref", metrics=["psnr"], out=tmp_path / "pixels",
                      show_progress=False)
    assert pixels["excluded"] == {} and pixels["videos"] == 1
