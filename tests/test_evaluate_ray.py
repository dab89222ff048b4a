"""`toolkit evaluate --engine ray` on a local 2-worker Ray cluster gives what a local run gives: the same per-video
rows and pooled results (to 1e-9), the same run folder."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from nested_close import assert_nested_close
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate

# Metrics whose models ship with their packages (a Ray worker is another process: a test's registry patches
# for random stand-in weights do not reach it), covering per-frame means, pooled landmark distances and the
# per-video rows of both-sides metrics.
METRICS = "lmd,pose,blink,psnr,ssim,lipleak"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_eval")
    clips = generate(root / "ref", speakers=2, clips=2, seconds=1.6, seed=3, show_progress=False)
    for k, clip in enumerate(clips):  # blurred copies, one per clip, blurred more each time
        frames = media.read_video(clip.video)
        target = root / "gen" / clip.video.relative_to(root / "ref")
        target.parent.mkdir(parents=True, exist_ok=True)
        media.write_video(target, np.stack([cv2.GaussianBlur(f, (0, 0), 1 + k) for f in frames]), fps=25,
                          audio=media.read_audio(clip.video))
    (root / "gen" / clips[-1].video.relative_to(root / "ref")).write_bytes(b"")  # one pair cannot be scored
    return root


def _run(root, out, *engine):
    result = CliRunner().invoke(app, ["evaluate", "--generated", str(root / "gen"), "--reference", str(root / "ref"),
                                      "--metrics", METRICS, "--out", str(out), "--bootstrap", "50", "-q", *engine])
    assert result.exit_code == 2, result.output  # the empty video is excluded, the others scored
    rows = {row["video_id"]: row for row in csv.DictReader((out / "per_video.csv").open())}
    return json.loads((out / "summary.json").read_text()), rows


@pytest.mark.slow  # starts a Ray cluster (~10 s) and scores 3 pairs twice
def test_ray_engine_gives_the_local_run(pairs, tmp_path):
    local, local_rows = _run(pairs, tmp_path / "local")
    ray_summary, ray_rows = _run(pairs, tmp_path / "ray", "--engine", "ray", "--workers", "2")
    assert ray_summary["engine"] == {"name": "ray", "workers": 2} and local["engine"] == {"name": "local"}
    assert local_rows.keys() == ray_rows.keys() and len(local_rows) == 4
    for video_id, row in local_rows.items():
        other = ray_rows[video_id]
        for key in row.keys() - {"traceback"}:  # the traceback names the process's frames
            assert row[key] == other[key], (video_id, key, row[key], other[key])
    for key in ("results", "intervals", "ground_truth", "ground_truth_normalised", "excluded", "config"):
        assert_nested_close(local[key], ray_summary[key], rel=1e-9, floor=1.0, where=key)
    assert local["videos"] == ray_summary["videos"] == 3 and local["frames"] == ray_summary["frames"]
    # The meshes for the leaderboard page come from the workers, the same as a local run's.
    for video_id in [v for v, r in local_rows.items() if r["status"] == "scored"]:
        with np.load(tmp_path / "local" / "landmarks" / f"{video_id}.npz") as a, \
                np.load(tmp_path / "ray" / "landmarks" / f"{video_id}.npz") as b:
            assert np.array_equal(a["generated"], b["generated"]) and np.array_equal(a["reference"], b["reference"])


def test_unknown_engine_is_refused(pairs, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--generated", str(pairs / "gen"), "--reference", str(pairs / "ref"),
                                      "--metrics", "psnr", "--out", str(tmp_path / "x"), "--engine", "spark", "-q"])
    assert result.exit_code == 1 and "engine must be one of local, ray" in result.output
