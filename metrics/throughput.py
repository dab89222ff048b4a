"""Where a run's time went: seconds per stage (decoding, the face mesh, each metric) and frames per second.

Every result records its throughput (``summary.json``'s ``throughput``), so a number comes with what it
cost and on which device. A stage's frames per second is the run's scored frames over the seconds spent in
that stage alone; the whole run's is the same frames over the wall-clock seconds, pairing and bootstrap
included. Work two metrics share (FID and KID's one Inception pass) is counted under the metric that
triggers it, the first of them in the run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterator


class Stopwatch:
    """``with stopwatch("decode"): ...`` adds the block's seconds to the stage's total."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - tic


def _rate(frames: int, seconds: float) -> float:
    return round(frames / seconds, 3) if seconds > 0 else float("inf")


def summary(stopwatch: Stopwatch, frames: int, seconds: float, device: str) -> dict[str, Any]:
    """``{"device", "frames", "seconds", "frames_per_second", "stages": {stage: {"seconds", "frames_per_second"}}}``."""
    return {
        "device": device,
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_second": _rate(frames, seconds),
        "stages": {stage: {"seconds": round(spent, 3), "frames_per_second": _rate(frames, spent)}
                   for stage, spent in stopwatch.seconds.items()},
    }
