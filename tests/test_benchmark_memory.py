"""Peak memory of `toolkit evaluate` does not grow with video length.

The criterion: a 5-minute clip costs no more than a 10-second one, within 10%. Each length is
scored in a fresh process (its peak resident set, ``ru_maxrss``, is the number), on the built-in
sample looped to the length at 256x256, 25 fps, the same video as generated and reference.

* ``make test`` (benchmarks disabled): 3 s against 9 s, with the metrics whose per-video state could
  grow with length: LSE (window embeddings), LMD, pose and blink (meshes), PSNR/SSIM (per-frame values).
* ``--benchmark-enable``: 10 s against 300 s with FID, LSE, LMD, pose, blink, PSNR/SSIM and LPIPS
  (weights created by tests/weights_factory.py), the peaks in the benchmark's ``extra_info``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import weights_factory as factory
from talking_head.metrics.lse import CROP_SIZE
from talking_head.toolkit import media

SIZE = 256
QUICK = {"short": 3, "long": 9, "metrics": "psnr,ssim,lmd,pose,blink,lse"}
# CSIM (ArcFace R100) and NIQE keep one number per frame like PSNR, and cost seconds a frame on CPU:
# left out of the 5-minute run.
FULL = {"short": 10, "long": 300, "metrics": "fid,lse,lmd,pose,blink,psnr,ssim,lpips"}
CREATED = ("fid-inception", "syncnet", "lpips-alexnet", "arcface-r100", "niqe-pristine")
GROWTH = 1.10

# Run in a fresh interpreter: unpin the created weights (as weights_factory.place does in-process),
# evaluate, report the peak resident set.
DRIVER = """
import dataclasses, json, resource, sys
from talking_head.toolkit import weights as w
for name in sys.argv[4].split(","):
    entry = dataclasses.replace(w.REGISTRY[name], sha256=None, size=None)
    w.REGISTRY[name] = dataclasses.replace(entry, sha256_prefix=None) if hasattr(entry, "sha256_prefix") else entry
from talking_head.metrics.runner import evaluate
summary = evaluate(sys.argv[1], sys.argv[2], metrics=sys.argv[3].split(","), out=sys.argv[5], show_progress=False)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "frames": summary["frames"], "skipped": summary["skipped"], "seconds": summary["seconds"]}))
"""


@pytest.fixture(scope="module")
def clip(shared_sample):
    sample = shared_sample(speakers=1, clips=1, seconds=4.0, seed=0)[0]  # tests/conftest.py
    frames = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in media.read_video(sample.video)])
    return frames, media.read_audio(sample.audio)


def _looped(folder, frames, audio, seconds):
    """`seconds` of the clip repeated, streamed to the encoder (the long video never sits in memory)."""
    count = int(seconds * 25)
    samples = int(seconds * 16000)
    looped_audio = np.resize(audio, samples)  # repeats the clip's audio
    path = folder / "clip.mp4"
    media.write_video(path, (frames[i % len(frames)] for i in range(count)), fps=25, audio=looped_audio,
                      sample_rate=16000)
    return path


def _peak(tmp_path, frames, audio, seconds, metrics) -> dict:
    root = tmp_path / f"{seconds}s"
    (root / "generated").mkdir(parents=True)
    (root / "reference").mkdir()
    video = _looped(root / "reference", frames, audio, seconds)
    (root / "generated" / "clip.mp4").write_bytes(video.read_bytes())
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root / "generated"), str(root / "reference"), metrics, ",".join(CREATED),
         str(root / "run")],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["frames"] == int(seconds * 25) and result["skipped"] == {}, result
    return result


@pytest.mark.slow  # ~50 CPU s: two evaluations of looped videos in fresh processes
def test_peak_memory_does_not_grow_with_length(benchmark, clip, isolated_caches, monkeypatch, tmp_path):
    frames, audio = clip
    crops = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
    audio16 = np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)
    plan = QUICK if benchmark.disabled else FULL
    wanted = plan["metrics"].split(",")
    factory.place(monkeypatch, "syncnet", factory.syncnet(crops, audio16))
    if "fid" in wanted:
        factory.place(monkeypatch, "fid-inception", factory.fid_inception(frames[::5]))
    if "lpips" in wanted:
        factory.place(monkeypatch, "lpips-alexnet", factory.alexnet())
    if "csim" in wanted:
        factory.place(monkeypatch, "arcface-r100", factory.arcface())
    if "niqe" in wanted:
        factory.place(monkeypatch, "niqe-pristine", arrays=factory.niqe_pristine(frames[::10]))
    peaks = {}

    def run():
        for name in ("short", "long"):
            peaks[name] = _peak(tmp_path / "runs" / f"{len(peaks)}", frames, audio, plan[name], plan["metrics"])

    benchmark.pedantic(run, rounds=1, iterations=1)
    short, long = peaks["short"]["maxrss_kib"], peaks["long"]["maxrss_kib"]
    benchmark.extra_info.update(metrics=plan["metrics"], size=SIZE, short_s=plan["short"], long_s=plan["long"],
                                short_peak_mib=round(short / 1024, 1), long_peak_mib=round(long / 1024, 1),
                                ratio=round(long / short, 4), short_wall_s=peaks["short"]["seconds"],
                                long_wall_s=peaks["long"]["seconds"])
    print(json.dumps(benchmark.extra_info))
    assert long <= GROWTH * short, (
        f"{plan['long']} s peaked at {long / 1024:.0f} MiB, {plan['short']} s at {short / 1024:.0f} MiB "
        f"({long / short:.3f}x, allowed {GROWTH}x)")
