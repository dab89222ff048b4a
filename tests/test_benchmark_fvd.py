"""Speed and memory of FVD from videos (``videogpt`` variant), side by side with cd-fvd on the same videos.

Run with timings: ``.venv/bin/python -m pytest tests/test_benchmark_fvd.py --benchmark-enable -n 0``
(``make bench``). Both sides start from the same mp4 files and the same created ``i3d_pretrained_400.pt``
and score the same clips (every non-overlapping 16-frame clip):

* ours: :class:`metrics.fvd.FVD`, decoding each video in chunks and cutting clips as the frames stream in;
* cd-fvd: the videos decoded into arrays, the clips stacked as the ``(B, T, H, W, C)`` uint8 arrays
  ``cdfvd.compute_fvd`` takes (its documented array API), then ``compute_fvd``.

Memory: ours keeps 400 floats per clip and at most one clip of frames per side; cd-fvd's array API holds every
clip of every video. ``test_memory_is_flat_in_the_number_of_videos`` measures the peak of traced Python/numpy
allocations of ours for 2 and for 6 videos.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import weights_factory as factory
from talking_head.metrics.fvd import FVD
from talking_head.metrics.fvd_variants import VARIANTS, clip_starts
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

pytestmark = pytest.mark.bench

SIZE = 128
FRAMES = 32  # two clips a video
VIDEOS = 4


@pytest.fixture(scope="module")
def bench(tmp_path_factory, shared_sample):
    root = tmp_path_factory.mktemp("fvd-bench")
    clips = shared_sample(speakers=1, clips=2, seconds=1.6, seed=0)  # tests/conftest.py
    base = [np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                      for f in media.read_video(c.video)[:FRAMES]]) for c in clips]
    real, fake = [], []
    for k in range(VIDEOS):
        video = np.roll(base[k % 2], 7 * k, axis=2)
        real.append(media.write_video(root / "real" / f"v{k}.mp4", video, fps=25))
        fake.append(media.write_video(root / "fake" / f"v{k}.mp4",
                                      np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in video]), fps=25))
    calib = torch.from_numpy(base[0][:16]).float().permute(0, 3, 1, 2)
    calib = torch.nn.functional.interpolate(calib, size=(224, 224), mode="bilinear", align_corners=False)
    calib = (calib.permute(1, 0, 2, 3)[None] / 127.5 - 1)
    weights_file = root / "i3d_pretrained_400.pt"
    torch.save(factory.i3d_kinetics400(torch.cat([calib, calib.flip(2)])), weights_file)
    return {"real": [Path(p) for p in real], "fake": [Path(p) for p in fake], "weights": weights_file}


@pytest.fixture
def placed(bench, isolated_caches, monkeypatch):
    entry = dataclasses.replace(w.REGISTRY["i3d-kinetics400"], git_blob_sha1=w.git_blob_sha1(bench["weights"]))
    monkeypatch.setitem(w.REGISTRY, "i3d-kinetics400", entry)
    target = w.destination(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bench["weights"].read_bytes())
    from talking_head.metrics.i3d import InceptionI3d

    with torch.no_grad():  # the first pass of a process sets up oneDNN; neither side should pay for it timed
        InceptionI3d().eval()(torch.zeros(1, 3, 16, 224, 224))
    return bench


def _ours(real: list[Path], fake: list[Path]) -> float:
    metric = FVD(variant="videogpt", device="cpu", use_cache=False)
    for gen, ref in zip(fake, real):
        for side, path in ((False, gen), (True, ref)):
            metric.start_video()
            with media.VideoReader(path) as reader:
                for chunk in reader.iter_chunks(16):
                    metric.push(chunk, real=side)
            metric.end_video()
    return metric.compute()["fvd"]


def _cd_fvd(real: list[Path], fake: list[Path], weights_file: Path) -> float:
    from cdfvd.fvd import cdfvd

    starts = clip_starts(VARIANTS["videogpt"], FRAMES)

    def clips(paths):
        videos = [media.read_video(p) for p in paths]
        return np.stack([v[s:s + 16] for v in videos for s in starts])

    tool = cdfvd("i3d", n_real="full", n_fake="full", ckpt_path=str(weights_file), device="cpu")
    return float(tool.compute_fvd(clips(real), clips(fake)))


def test_fvd_ours_from_videos(benchmark, placed):
    value = benchmark.pedantic(_ours, args=(placed["real"], placed["fake"]), rounds=1, iterations=1)
    benchmark.extra_info.update(videos=VIDEOS, clips_per_side=VIDEOS * FRAMES // 16, fvd=value)


def test_fvd_cd_fvd_from_videos(benchmark, placed):
    value = benchmark.pedantic(_cd_fvd, args=(placed["real"], placed["fake"], placed["weights"]), rounds=1,
                               iterations=1)
    benchmark.extra_info.update(videos=VIDEOS, clips_per_side=VIDEOS * FRAMES // 16, fvd=value)
    assert value == pytest.approx(_ours(placed["real"], placed["fake"]), rel=1e-4)  # the same number


def test_memory_is_flat_in_the_number_of_videos(placed):
    peaks = {}
    for count in (2, 6):
        real = [placed["real"][k % VIDEOS] for k in range(count)]
        fake = [placed["fake"][k % VIDEOS] for k in range(count)]
        tracemalloc.start()
        _ours(real, fake)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    per_clip_features = 2 * 400 * 4  # both sides' float32 rows kept per clip
    growth = peaks[6] - peaks[2]
    assert growth < 4 * 2 * (FRAMES // 16) * per_clip_features + 2_000_000, peaks  # features, not frames
