"""The evaluation suite in one command: N clip pairs from the built-in sample, every default metric plus FVD.

    python benchmarks/gpu_suite.py --device cuda                 # 100 ten-second pairs on the GPU
    python benchmarks/gpu_suite.py --device cpu --clips 4 --seconds 2

It builds the pairs (a few sample clips, each shifted by a different number of pixels to make distinct
references, so no reference cache can answer for another; the generated side is each reference blurred),
writes random weight files in the real formats for every network the metrics load (nothing can be
downloaded where this runs; tests/weights_factory.py makes them, calibrated like the tests'), runs
``toolkit evaluate`` on them in this process and prints frames/s per stage and the total, then what batching
does to each network's output on the device (benchmarks/batching.py). The numbers are
throughput only: random weights give meaningless scores. Everything goes under ``--work`` (caches included),
which is removed first unless ``--keep`` is given; ``report.json`` there holds the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNIQUE_CLIPS = 8  # sample clips rendered; the others are shifted copies of these


def _pair(args: tuple[str, str, str, int, float]) -> None:
    """One reference (a sample clip shifted by `shift` pixels) and its generated side (the reference blurred)."""
    import cv2
    import numpy as np

    from talking_head.toolkit import media

    source, reference, generated, shift, blur = args
    frames, audio = media.read_video(source), media.read_audio(source)
    shifted = np.roll(frames, shift, axis=2)
    media.write_video(reference, shifted, fps=25, audio=audio, threads=1)
    media.write_video(generated, np.stack([cv2.GaussianBlur(f, (0, 0), blur) for f in shifted]), fps=25, audio=audio,
                      threads=1)


def build_pairs(work: Path, clips: int, seconds: float, jobs: int) -> tuple[Path, Path]:
    from talking_head.toolkit.sample import generate

    samples = generate(work / "sample", speakers=1, clips=min(clips, UNIQUE_CLIPS), seconds=seconds, seed=0,
                       show_progress=False)
    reference, generated = work / "reference", work / "generated"
    reference.mkdir(parents=True, exist_ok=True)
    generated.mkdir(parents=True, exist_ok=True)
    todo = [(str(samples[i % len(samples)].video), str(reference / f"pair{i:03d}.mp4"),
             str(generated / f"pair{i:03d}.mp4"), 2 * (i // len(samples)), 1.0 + 0.1 * (i % 7)) for i in range(clips)]
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_pair, todo))
    return generated, reference


def place_weights(patch, reference: Path) -> None:
    """Random weights in the real formats under every name the default metrics and FVD load."""
    import cv2
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "tests"))
    import weights_factory as factory

    from talking_head.toolkit import media

    video = sorted(reference.glob("*.mp4"))[0]
    frames = media.read_video(video)
    factory.place_default_metrics(patch, frames, media.read_audio(video, dtype="int16"))
    small = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames[:16]])
    clips = torch.from_numpy(small).float().permute(3, 0, 1, 2)[None] / 127.5 - 1
    factory.pin_to_own_digest(patch, "i3d-torchscript",
                              factory.i3d_torchscript(torch.cat([clips, clips.flip(2)]), reference.parent / "i3d.pt"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument("--clips", type=int, default=100, help="clip pairs")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per clip")
    parser.add_argument("--work", type=Path, default=Path("gpu_suite"), help="working folder (caches included)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes writing the pairs")
    parser.add_argument("--keep", action="store_true", help="reuse --work instead of starting from scratch")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    # Every cache the registry and the libraries look at: under --work, so nothing of the user's is read.
    for var, sub in (("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("HF_HUB_CACHE", "hf/hub"),
                     ("TOOLKIT_WEIGHTS_DIR", "weights"), ("TOOLKIT_CACHE_DIR", "toolkit-cache")):
        os.environ[var] = str(work / sub)

    import pytest

    from talking_head.metrics import evaluate, registry

    tic = time.perf_counter()
    generated, reference = build_pairs(work, args.clips, args.seconds, args.jobs)
    built = time.perf_counter() - tic
    metrics = [*registry.default_names(), "fvd"]
    with pytest.MonkeyPatch.context() as patch:
        place_weights(patch, reference)
        tic = time.perf_counter()
        summary = evaluate(generated, reference, metrics=metrics, out=work / "run", device=args.device,
                           show_progress=False, bootstrap=0)
        seconds = time.perf_counter() - tic
    if summary["skipped"] or summary["excluded"]:
        print(f"skipped: {summary['skipped']}; excluded: {summary['excluded']}", file=sys.stderr)
        return 1
    from batching import measure  # this folder's module; tests/ is on sys.path since place_weights

    from talking_head.toolkit import media

    batched = measure(media.read_video(sorted(reference.glob("*.mp4"))[0]), args.device)
    stages = summary["throughput"]["stages"]
    report = {"device": summary["throughput"]["device"], "pairs": args.clips, "seconds_per_clip": args.seconds,
              "frames": summary["frames"], "build_seconds": round(built, 3), "evaluate_seconds": round(seconds, 3),
              "frames_per_second": round(summary["frames"] / seconds, 3), "stages": stages, "metrics": metrics,
              "batched_vs_one_at_a_time": batched}
    (work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['device']}: {args.clips} pairs x {args.seconds:g} s, {summary['frames']} frames per side")
    print(f"{'stage':<14}{'seconds':>10}{'frames/s':>12}")
    for stage, spent in sorted(stages.items(), key=lambda item: -item[1]["seconds"]):
        print(f"{stage:<14}{spent['seconds']:>10.1f}{spent['frames_per_second']:>12.1f}")
    print(f"{'total':<14}{seconds:>10.1f}{report['frames_per_second']:>12.1f}   (pairs built in {built:.1f} s)")
    print("batched vs one at a time (largest difference / largest value):",
          ", ".join(f"{name} {value:.1e}" for name, value in batched.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
