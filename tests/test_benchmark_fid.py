"""Speed of FID from videos, side by side with pytorch-fid 0.3.0 on the same frames.

Run with timings: ``.venv/bin/python -m pytest tests/test_benchmark_fid.py --benchmark-enable``
(also what ``make bench`` runs; ``make test`` leaves them out). Two 1 s clips at 256x256; every
``STEP``-th frame is used, identical on every side. The pipeline is timed in two stages so that
SciPy's 2048-d ``sqrtm`` (tens of seconds on 2 cores) runs once:

* statistics (mean and covariance of both sets, model construction included):
  (a) ours, decoding the videos in memory; (b) pytorch-fid on frames already dumped as PNG;
  (c) dumping the frames to PNG, then pytorch-fid;
* the statistics of every frame, side by side: ours from the videos against the PNG dump plus
  pytorch-fid, back to back in each round, with the ratio of the best times bounded;
* the Fréchet distance on the same well-conditioned statistics: ours (``eigvalsh``) vs
  pytorch-fid's ``calculate_frechet_distance`` (``scipy.linalg.sqrtm``); 2048-d when timed, 256-d
  in the untimed smoke run (a 2048-d ``sqrtm`` alone takes minutes on 2 busy cores).

End to end, ours = (a) + Fréchet(ours); pytorch-fid from a video = (c) + Fréchet(scipy).
``extra_info`` holds the frame count and size (frames/s = frames / mean time).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from talking_head.metrics import fid as fidlib
from talking_head.metrics.inception import FEATURE_DIM, WEIGHTS_NAME, FIDInceptionV3
from test_fid import _calibrated_state_dict  # the same random, BatchNorm-calibrated checkpoint
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

# Timings: `make bench` runs them; the values themselves are checked in tests/test_fid.py.
pytestmark = pytest.mark.bench

SIZE = 256
STEP = 10  # frames 0, 10, 20 of each 1 s clip: small, so a run without timings stays quick
ROUNDS = 3  # timed rounds of the multi-second stages (pytest-benchmark would pick 5)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, shared_sample):
    root = tmp_path_factory.mktemp("fid-bench")
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=3)[0]  # tests/conftest.py
    frames = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in media.read_video(clip.video)])
    fake = np.stack([cv2.GaussianBlur(f, (5, 5), 1.5) for f in frames])
    real_path = media.write_video(root / "real.mp4", frames, fps=25)
    fake_path = media.write_video(root / "fake.mp4", fake, fps=25)
    weights_file = root / "weights.pth"
    torch.save(_calibrated_state_dict(frames[::6]), weights_file)
    used = len(range(0, len(frames), STEP))
    return {"root": root, "real": Path(real_path), "fake": Path(fake_path), "weights": weights_file, "frames": used}


@pytest.fixture
def env(isolated_caches, monkeypatch, clips, tmp_path):
    entry = dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, entry)
    dest = w.destination(entry)  # torch hub's checkpoints dir: where pytorch-fid looks too
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.link(clips["weights"], dest)
    return clips


def _dump_png(video: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(media.read_video(video)[::STEP]):
        Image.fromarray(frame).save(folder / f"{k:05d}.png")
    return str(folder)


def _pytorch_fid_statistics(dirs: list[str]):
    from pytorch_fid.fid_score import compute_statistics_of_path
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]]).to("cpu")
    workers = min(len(os.sched_getaffinity(0)), 8)  # the CLI's default
    return [compute_statistics_of_path(d, model, 50, FEATURE_DIM, "cpu", workers) for d in dirs]


def _info(benchmark, clips):
    benchmark.extra_info.update(frames=2 * clips["frames"], size=f"{SIZE}x{SIZE}", videos=2)


def test_statistics_ours_from_videos(benchmark, env):
    _info(benchmark, env)

    def ours():
        model = FIDInceptionV3.from_pretrained("cpu")
        return [fidlib.video_statistics(v, frame_step=STEP, model=model) for v in (env["fake"], env["real"])]

    stats = benchmark.pedantic(ours, rounds=ROUNDS)
    assert [s.count for s in stats] == [env["frames"]] * 2


def test_statistics_pytorch_fid_on_png(benchmark, env, tmp_path):
    _info(benchmark, env)
    dirs = [_dump_png(env["fake"], tmp_path / "fake"), _dump_png(env["real"], tmp_path / "real")]
    stats = benchmark.pedantic(_pytorch_fid_statistics, args=(dirs,), rounds=ROUNDS)
    assert stats[0][1].shape == (FEATURE_DIM, FEATURE_DIM)


def test_statistics_dump_png_then_pytorch_fid(benchmark, env, tmp_path):
    _info(benchmark, env)
    runs = iter(range(10**6))

    def dump_and_run():
        out = tmp_path / f"run{next(runs)}"
        return _pytorch_fid_statistics([_dump_png(env["fake"], out / "fake"), _dump_png(env["real"], out / "real")])

    stats = benchmark.pedantic(dump_and_run, rounds=ROUNDS)
    assert stats[1][0].shape == (FEATURE_DIM,)


def test_statistics_side_by_side_every_frame(benchmark, env, tmp_path):
    """Every frame of both clips: ours from the videos (the CPU's channels-last Inception) against a PNG dump
    plus pytorch-fid, timed back to back in each round; the ratio is of the best times."""
    import time

    frames = 2 * len(media.read_video(env["real"]))
    benchmark.extra_info.update(frames=frames, size=f"{SIZE}x{SIZE}", videos=2)
    ours, theirs, runs = [], [], iter(range(10**6))
    results = {}

    def setup():
        out = tmp_path / f"run{next(runs)}"
        started = time.perf_counter()
        dirs = []
        for name in ("fake", "real"):
            folder = out / name
            folder.mkdir(parents=True)
            for k, frame in enumerate(media.read_video(env[name])):
                Image.fromarray(frame).save(folder / f"{k:05d}.png")
            dirs.append(str(folder))
        results["theirs"] = _pytorch_fid_statistics(dirs)
        theirs.append(time.perf_counter() - started)
        return (), {}

    def run():
        started = time.perf_counter()
        model = FIDInceptionV3.from_pretrained("cpu")
        results["ours"] = [fidlib.video_statistics(env[name], model=model) for name in ("fake", "real")]
        ours.append(time.perf_counter() - started)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    ratio = min(ours) / min(theirs)
    benchmark.extra_info.update(ours_s=[round(t, 3) for t in ours], pytorch_fid_s=[round(t, 3) for t in theirs],
                                ratio=round(ratio, 3))
    print(f"FID statistics, {frames} frames: best {min(ours):.2f} s, pytorch-fid with the dump best "
          f"{min(theirs):.2f} s, ratio {ratio:.2f}")
    for mine, (mu, sigma) in zip(results["ours"], results["theirs"]):
        assert mine.count == frames // 2
        np.testing.assert_allclose(mine.mu, mu, rtol=0, atol=2e-4 * np.abs(mu).max())  # channels-last round-off
    # Issue 20's target is 1.5x. Measured on 2 cores: 0.56 here (50 frames at 256 px); whole processes on two
    # 10-s 512 px videos a side, the runner against an ffmpeg PNG dump + `python -m pytorch_fid`: 0.50.
    assert ratio <= 0.8, f"ours took {min(ours):.2f} s, pytorch-fid {min(theirs):.2f} s"


def _gaussian_statistics(dims: int):
    """Two well-conditioned covariances (what thousands of frames give) and two means."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((dims, dims)) / np.sqrt(dims)
    b = a + 0.3 * rng.standard_normal((dims, dims)) / np.sqrt(dims)
    return rng.random(dims), a @ a.T + 0.1 * np.eye(dims), rng.random(dims), b @ b.T + 0.1 * np.eye(dims)


def _frechet_dims(benchmark) -> int:
    # SciPy's sqrtm takes 1-2 minutes at 2048-d on 2 busy cores: the untimed smoke run uses 256-d.
    return FEATURE_DIM if benchmark.enabled else 256


def test_frechet_ours(benchmark):
    dims = benchmark.extra_info["dims"] = _frechet_dims(benchmark)
    result = benchmark(fidlib.frechet_distance, *_gaussian_statistics(dims))
    assert np.isfinite(result.fid) and result.rank_sigma1 == dims


def test_frechet_pytorch_fid_scipy_sqrtm(benchmark):
    from pytorch_fid.fid_score import calculate_frechet_distance

    dims = benchmark.extra_info["dims"] = _frechet_dims(benchmark)
    statistics = _gaussian_statistics(dims)

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # SciPy 1.17: `disp` is deprecated
            return calculate_frechet_distance(*statistics)

    value = benchmark.pedantic(theirs, rounds=1)  # one 2048-d sqrtm is enough to see the gap
    # The same number as ours, at the benchmark's dimension.
    assert fidlib.frechet_distance(*statistics).fid == pytest.approx(value, rel=1e-6)
