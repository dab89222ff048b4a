"""A metric added the way any new one is: this module plus one registry call (see test_metric_registry.py).

Mean brightness of the generated frames: per video the mean pixel value, overall the mean over videos.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talking_head.metrics.base import GENERATED_FRAMES, Chunk, Metric, VideoInfo


class MeanBrightness(Metric):
    name, direction = "mean_brightness", None
    consumes = frozenset({GENERATED_FRAMES})

    def __init__(self, device: str = "cpu", scale: float = 1.0) -> None:
        self.scale = scale
        self.reset()

    def start_video(self, video: VideoInfo) -> None:
        self._sum, self._frames = 0.0, 0

    def update(self, chunk: Chunk) -> None:
        self._sum += float(chunk.generated.astype(np.float64).mean(axis=(1, 2, 3)).sum())
        self._frames += len(chunk.generated)

    def end_video(self) -> dict[str, Any]:
        value = self.scale * self._sum / self._frames
        self._videos.append(value)
        return {"brightness": value}

    def discard_video(self) -> None:
        self._sum, self._frames = 0.0, 0

    def compute(self) -> dict[str, Any]:
        return {"brightness": float(np.mean(self._videos)), "videos": len(self._videos)}

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def reset(self) -> None:
        self._videos: list[float] = []
        self._sum, self._frames = 0.0, 0
