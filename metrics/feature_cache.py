"""Network outputs on one reference video, cached by content: FID/KID's Inception rows, E-FID's expression
coefficients, CSIM's ArcFace embeddings (:mod:`metrics.reference_cache` holds the files).

A second evaluation of another model against the same references then runs no network on the reference
side. The key is the reference file's sha256 and every fact that changes the rows: the frames used, the frame
rate they were read at, the metric's extractor settings and weights' sha256, the batch size, the device type
and the torch and PyAV versions (another device or version only moves float round-off, but a miss costs
time where a stale hit would cost exactness). Each metric computes a video's reference rows in batches that
start at the video's first frame, so rows read back are the bits the same run would have computed.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from talking_head.metrics.base import VideoInfo
from talking_head.metrics.reference_cache import ReferenceCache

CACHE_VERSION = 1  # bumped when what is stored changes meaning


def video_facts(video: VideoInfo, device: Any, **facts: Any) -> dict[str, Any]:
    """The facts every reference-side entry is keyed by, plus the metric's own."""
    import av
    import torch

    return {"cache_version": CACHE_VERSION, "frames": video.frames_used, "fps": video.fps,
            "device": torch.device(device).type, "torch": torch.__version__, "av": av.__version__, **facts}


class ReferenceRows:
    """One metric's cache of reference rows: ``look_up`` at the start of a video (the arrays, or None), ``store``
    at its end when they were computed. ``hits`` counts the videos read back (reported in ``config()``)."""

    def __init__(self, name: str, enabled: bool = True) -> None:
        self.cache = ReferenceCache(name, enabled=enabled)
        self._video: Optional[VideoInfo] = None
        self._facts: dict[str, Any] = {}

    @property
    def enabled(self) -> bool:
        return self.cache.enabled

    @property
    def hits(self) -> int:
        return self.cache.hits

    @hits.setter
    def hits(self, value: int) -> None:
        self.cache.hits = value

    def look_up(self, video: VideoInfo, facts: dict[str, Any],
                valid: Callable[[dict[str, np.ndarray]], bool]) -> Optional[dict[str, np.ndarray]]:
        """The current video's stored arrays when present and `valid`; remembers the key for :meth:`store`."""
        self._video, self._facts = video, facts
        arrays = self.cache.get_arrays(video.pair.reference, facts)
        if arrays is not None and not valid(arrays):
            self.cache.hits -= 1  # a malformed entry: computed again and rewritten
            return None
        return arrays

    def store(self, arrays: dict[str, np.ndarray]) -> None:
        """The current video's arrays, computed this run."""
        if self._video is not None:
            self.cache.put_arrays(self._video.pair.reference, self._facts, arrays)
        self._video = None
