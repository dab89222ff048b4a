"""metrics.bootstrap: percentile intervals over videos, against a plain loop; the fast FID and KID resamples
against frechet_distance and kid_from_features of the resampled features; the runner's intervals on a
small set of real videos (one Inception pass feeding FID and KID, counted on a created weight file); the
printed table, `--bootstrap 0`, and the leaderboard built from the runs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import weights_factory as factory
from talking_head.leaderboards import render
from talking_head.leaderboards.runs import leaderboard_from_runs
from talking_head.metrics import bootstrap as B
from talking_head.metrics import kid as K
from talking_head.metrics import runner
from talking_head.metrics.feature_resampling import FrechetResampler, KernelResampler, video_frames
from talking_head.metrics.frechet import frechet_distance
from talking_head.metrics.inception import FIDInceptionV3
from talking_head.metrics.pairing import pair_videos
from talking_head.metrics.results import lookup, plain
from talking_head.toolkit import media
from talking_head.toolkit.cli import app

VIDEOS, FRAMES, SIZE = 4, 2, 256  # the real-video set: 4 pairs of 2 frames at 256x256 (16 frames through Inception)


def _reference_interval(values, statistic, resamples, seed, level=0.95):
    """The textbook loop: seeded resamples of video indices, the statistic on each, numpy's percentiles."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(resamples):
        indices = rng.integers(0, len(values), size=len(values))
        found.append(statistic(values[indices]))
    return tuple(np.percentile(found, [100 * (1 - level) / 2, 100 * (1 + level) / 2]))


def test_bootstrap_equals_a_plain_loop():
    values = np.random.default_rng(1).gamma(2.0, 1.5, 37)
    draws = B.draw(len(values), 500, seed=11)
    interval = B.bootstrap(B.video_mean(values), draws)
    assert (interval.low, interval.high) == _reference_interval(values, np.mean, 500, 11)
    assert (interval.level, interval.resamples, interval.undefined) == (0.95, 500, 0)
    with_nan = values.copy()
    with_nan[[3, 20]] = np.nan  # videos without a value are left out of each resample's mean
    interval = B.bootstrap(B.video_mean(with_nan), draws, level=0.9)
    assert (interval.low, interval.high) == _reference_interval(with_nan, np.nanmean, 500, 11, level=0.9)
    # the same seed gives the same interval, another seed another
    assert B.bootstrap(B.video_mean(values), B.draw(len(values), 500, seed=11)) == B.bootstrap(B.video_mean(values), draws)
    assert B.bootstrap(B.video_mean(values), B.draw(len(values), 500, seed=12)).low != B.bootstrap(
        B.video_mean(values), draws).low


def test_undefined_resamples_are_counted_and_left_out():
    values = np.array([np.nan, np.nan, 1.0, 2.0])
    interval = B.bootstrap(B.video_mean(values), B.draw(4, 400, seed=0))
    assert 0 < interval.undefined < 400 and 1.0 <= interval.low <= interval.high <= 2.0
    assert B.interval_of([np.nan, 1.0, 3.0]).as_dict(seed=5)["undefined_resamples"] == 1
    means = B.mean_of_video_means([[1.0, 2.0], [3.0, np.nan]])
    assert means(np.array([0, 1])) == pytest.approx((1.5 + 3.0) / 2)


def _features(counts, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(0.2 + shift, 0.5, (sum(counts), dim)), 0).astype(np.float32)


@pytest.mark.parametrize("dim, counts", [(256, [20, 15, 30, 10]), (24, [30, 25, 40, 12])])  # gram, covariance

def test_frechet_resampler_equals_frechet_distance_of_the_resampled_features(dim, counts):
    gen, ref = _features(counts, dim, 1), _features(counts, dim, 2, shift=0.05)
    resampler = FrechetResampler(gen, ref, counts, counts)
    assert resampler.route == ("gram" if dim == 256 else "covariance")  # frames <= dimensions: Gram matrices
    for indices in (np.arange(4), np.array([0, 0, 3, 2]), np.array([1, 1, 1, 2]), np.array([3, 3, 3, 3])):
        rows = video_frames(counts, indices)
        x, y = gen[rows].astype(np.float64), ref[rows].astype(np.float64)
        expected = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)).fid
        assert resampler(indices) == pytest.approx(expected, rel=1e-6)
    assert np.isnan(FrechetResampler(gen[:1], ref[:1], [1], [1])(np.array([0])))  # 1 frame a side: undefined


def test_kernel_resampler_equals_kid_from_features_of_the_resampled_features():
    counts = [20, 15, 30, 10]
    gen, ref = _features(counts, 2048, 3), _features(counts, 2048, 4, shift=0.05)
    kid = dict(subsets=10, subset_size=40, seed=7)
    direct = lambda g, r: K.kid_from_features(g, r, **kid)["kid"]  # noqa: E731
    fast = KernelResampler(gen, ref, counts, counts, kernel=K.polynomial_kernel, fallback=direct, **kid)
    slow = KernelResampler(gen, ref, counts, counts, kernel=K.polynomial_kernel, fallback=direct, max_entries=0, **kid)
    assert fast.precomputed and not slow.precomputed
    scale = K.polynomial_kernel(gen[:5], ref[:5]).mean()  # the kernel's size: float32 round-off is relative to it
    for indices in (np.arange(4), np.array([0, 0, 3, 2]), np.array([2, 2, 2, 1])):
        rows = video_frames(counts, indices)
        expected = direct(gen[rows], ref[rows])
        assert slow(indices) == expected
        assert fast(indices) == pytest.approx(expected, abs=1e-6 * scale)


# ------------------------------------------------------------------------------------- real videos
@pytest.fixture(scope="module")
def pairs(shared_sample, tmp_path_factory):
    """4 pairs of 2-frame videos: frames of the sample, the generated side blurred by 1..4 px."""
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    frames = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in media.read_video(clip.video)])
    root = tmp_path_factory.mktemp("bootstrap")
    for side in ("gen", "ref"):
        (root / side).mkdir()
    for k in range(VIDEOS):
        part = frames[6 * k:6 * k + FRAMES]
        media.write_video(root / "ref" / f"v{k}.mp4", part, fps=25)
        media.write_video(root / "gen" / f"v{k}.mp4", np.stack([cv2.GaussianBlur(f, (0, 0), 1 + k) for f in part]),
                          fps=25)
    return root, frames


@pytest.fixture(scope="module")
def scored(pairs):
    """FID, KID, PSNR/SSIM, LMD, pose and blinks fed the 4 pairs the way the runner feeds them, with a created FID
    Inception weight file; the Inception network's forward calls are counted (frames per call)."""
    root, frames = pairs
    calls: list[int] = []

    def count(module, args, output):
        if isinstance(module, FIDInceptionV3):
            calls.append(len(args[0]))

    with pytest.MonkeyPatch.context() as patch:
        for variable, folder in (("TORCH_HOME", "torch"), ("TOOLKIT_WEIGHTS_DIR", "weights"),
                                 ("TOOLKIT_CACHE_DIR", "cache")):
            patch.setenv(variable, str(root / folder))
        factory.place(patch, "fid-inception", factory.fid_inception(frames[::8]))
        metrics, skipped = runner.build_metrics(["fid", "kid", "psnr", "lmd", "pose", "blink"])
        assert skipped == {}
        hook = torch.nn.modules.module.register_module_forward_hook(count)
        try:
            found, _ = pair_videos(root / "gen", root / "ref")
            rows = [runner.score_pair(pair, metrics) for pair in found]
            with pytest.warns(UserWarning, match="fewer than the 2048"):
                results = {m.name: plain(m.compute()) for m in metrics}
        finally:
            hook.remove()
    return {m.name: m for m in metrics}, rows, results, calls


def test_one_inception_pass_feeds_fid_and_kid(scored):
    metrics, rows, results, calls = scored
    frames = sum(row["frames_used"] for row in rows)
    assert frames == VIDEOS * FRAMES
    assert sum(calls) == 2 * frames  # every generated and reference frame once, not once per metric
    assert metrics["fid"].features is metrics["kid"].features
    fid = metrics["fid"].features.fid
    gen, ref = fid.features(False), fid.features(True)
    assert results["kid"]["kid"] == K.kid_from_features(gen, ref)["kid"]
    stats = fid.statistics(False), fid.statistics(True)
    assert results["fid"]["fid"] == frechet_distance(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma).fid


def test_fid_and_kid_resamples_equal_the_metrics_on_the_drawn_videos(scored):
    metrics, rows, results, _ = scored
    gen, ref, gen_counts, ref_counts = metrics["fid"].features.video_features()
    assert list(gen_counts) == list(ref_counts) == [FRAMES] * VIDEOS
    for indices in (np.arange(VIDEOS), np.array([0, 0, 3, 1])):  # 2048-d: frechet_distance takes a second each
        g = gen[video_frames(gen_counts, indices)].astype(np.float64)
        r = ref[video_frames(ref_counts, indices)].astype(np.float64)
        expected = frechet_distance(g.mean(0), np.cov(g, rowvar=False), r.mean(0), np.cov(r, rowvar=False)).fid
        assert metrics["fid"].resample(indices)["fid"] == pytest.approx(expected, rel=1e-6)
        kid = K.kid_from_features(g.astype(np.float32), r.astype(np.float32))["kid"]
        assert metrics["kid"].resample(indices)["kid"] == pytest.approx(kid, rel=1e-4, abs=1e-6)
    assert metrics["fid"].resample(np.arange(VIDEOS))["fid"] == pytest.approx(results["fid"]["fid"], rel=1e-6)


def test_run_intervals_hold_the_point_estimates_and_follow_the_seed(scored):
    metrics, rows, results, _ = scored
    intervals, record = B.run_intervals(metrics.values(), rows, results, seed=3)
    expected = {
        "fid": {"fid"}, "kid": {"kid"}, "psnr_ssim": {"psnr", "ssim"},
        "lmd": {"mouth_lmd", "face_lmd", "mouth_lmd_v", "face_lmd_v", "mouth_lmd_video_mean", "face_lmd_video_mean",
                "mouth_lmd_v_video_mean", "face_lmd_v_video_mean"},
        "pose": {f"{side}{key}" for side in ("", "reference.") for key in ("yaw_std", "pitch_std", "roll_std", "mean_std")},
        "blink": {f"{side}{key}" for side in ("", "reference.") for key in ("blink_rate", "blink_rate_video_mean")},
    }
    assert {m: set(found) for m, found in intervals.items()} == expected
    # Set-level (Metric.resample): FID, KID, the frame-pooled means; the others are means of per-video values.
    set_level = {("fid", "fid"), ("kid", "kid"), ("psnr_ssim", "psnr"), ("psnr_ssim", "ssim"), ("blink", "blink_rate"),
                 ("blink", "reference.blink_rate"), *(("lmd", k) for k in expected["lmd"] if "video" not in k)}
    for metric, found in intervals.items():
        for key, interval in found.items():
            point = lookup(results[metric], key)
            assert interval["low"] <= point <= interval["high"], (metric, key, point, interval)
            resamples = B.SET_LEVEL_RESAMPLES if (metric, key) in set_level else B.RESAMPLES
            assert interval["resamples"] == resamples, (metric, key)
            assert (interval["seed"], interval["level"], interval["method"]) == (3, 0.95, B.METHOD)
    assert intervals["fid"]["fid"]["note"].startswith("each resample's FID")
    assert intervals["psnr_ssim"]["psnr"]["low"] < intervals["psnr_ssim"]["psnr"]["high"]
    assert record["videos"] == VIDEOS and set(record["seconds"]) == set(expected)
    again, _ = B.run_intervals(metrics.values(), rows, results, seed=3)
    other, _ = B.run_intervals(metrics.values(), rows, results, seed=4)
    assert again == intervals
    assert other["fid"]["fid"]["low"] != intervals["fid"]["fid"]["low"]
    assert other["psnr_ssim"]["psnr"]["low"] != intervals["psnr_ssim"]["psnr"]["low"]
    assert B.run_intervals(metrics.values(), rows[:1], results)[0] == {}  # one video: no interval


def test_cli_prints_intervals_and_bootstrap_0_writes_none(pairs, tmp_path):
    root, _ = pairs
    outputs = {}
    for name, extra in (("a", []), ("b", ["--bootstrap-seed", "0"]), ("c", ["--bootstrap-seed", "9"]),
                        ("none", ["--bootstrap", "0"])):
        run = CliRunner().invoke(app, ["evaluate", "--generated", str(root / "gen"), "--reference", str(root / "ref"),
                                       "--out", str(tmp_path / name), "--metrics", "psnr", "-q", *extra])
        assert run.exit_code == 0, run.output
        outputs[name] = (run.output, json.loads((tmp_path / name / "summary.json").read_text()))
    printed, summary = outputs["a"]
    interval = summary["intervals"]["psnr_ssim"]["psnr"]
    assert f"{summary['results']['psnr_ssim']['psnr']:.4g} [{interval['low']:.4g}, {interval['high']:.4g}]" in printed
    assert "[low, high]: 95% percentile bootstrap over videos, 1000 resamples (100 for set-level statistics), seed 0" in \
        " ".join(printed.split())  # rich wraps at the console's width
    assert summary["bootstrap"]["set_level_resamples"] == 100 and interval["resamples"] == 100
    assert outputs["b"][1]["intervals"] == summary["intervals"]
    assert outputs["c"][1]["intervals"] != summary["intervals"]
    printed, summary = outputs["none"]
    assert "intervals" not in summary and summary["bootstrap"]["skipped"] == "bootstrap disabled (0 resamples)"
    assert "[" not in printed.split("per video:")[0]
    with pytest.raises(ValueError, match="bootstrap resamples must be >= 0"):  # before any video is scored
        runner.evaluate(root / "gen", root / "ref", metrics=["psnr"], bootstrap=-1)

    board = leaderboard_from_runs(tmp_path)
    by_run = {row.run_id: row for row in board.rows}
    assert by_run["a"].intervals["psnr"] == (interval["low"], interval["high"]) and by_run["none"].intervals == {}
    assert any("confidence interval" in note and "seed 9" in note for note in board.notes)
    page = render.page(board)
    texts = render.page_data(board)["interval_text"]["psnr"]
    shown = texts[board.rows.index(by_run["a"])]
    assert shown.startswith("[") and shown in page
    assert f"| {render.formatted_values(board)['psnr'][board.rows.index(by_run['a'])]} {shown} |" in \
        render.markdown(board).replace("**", "")
