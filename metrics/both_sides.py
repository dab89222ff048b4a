"""Per-video statistics of the generated videos, with the references' next to them as the anchor.

Pose diversity, blinks and Beat Align are statistics of one video each (no pairing of frames), so the
runner scores both sides: ``pose`` in summary.json holds the generated videos' value and, under
``reference``, the ground truth's. Each keeps a few numbers per frame of the runner's meshes (a
reduction: pose angles, eye ratio), never the meshes, so memory does not grow with length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from talking_head.metrics.base import LANDMARKS, Chunk, Metric, VideoInfo

ANCHOR_FPS = 25.0  # the frame rate a metric's config is described at before any video was read


class BothSides(Metric):
    """Subclasses say how to make the streaming statistic of one side (:meth:`make`), what they keep of
    each chunk of meshes (:meth:`reduce`) and how a video's per-frame values are added (:meth:`add_video`).

    Pairs may come at different frame rates (the runner reads each pair at its reference's): every video
    is reduced at its own rate, ``add_video(..., fps=video.fps)``, which the statistic must honour (it
    takes the rate per video; the rate given to :meth:`make` is only its default). ``config()`` reports
    the rates the run met."""

    consumes = frozenset({LANDMARKS})
    keys: ClassVar[tuple[str, ...]] = ()  # per-video values copied to per_video.csv

    def __init__(self, device: str = "cpu") -> None:
        self.reset()

    def make(self, fps: float) -> Any:
        """The streaming statistic of one side."""
        raise NotImplementedError

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        """Per-frame values of one chunk of meshes, all the statistic needs of them."""
        raise NotImplementedError

    def add_video(self, metric: Any, per_frame: np.ndarray, path: Path, fps: float) -> dict[str, Any]:
        """Add one video's per-frame values to `metric` (`path`: the video, for its audio); its values."""
        raise NotImplementedError

    def start_video(self, video: VideoInfo) -> None:
        self._video = video
        self._parts: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    def update(self, chunk: Chunk) -> None:
        self._parts[0].append(self.reduce(chunk.generated_meshes))
        self._parts[1].append(self.reduce(chunk.reference_meshes))

    def end_video(self) -> dict[str, Any]:
        video = self._video
        assert video is not None
        if self.generated is None:  # the default rate; each video below is reduced at its own
            self._make(video.fps)
        self._rates.add(float(video.fps))
        gen, ref = (self.add_video(metric, np.concatenate(parts) if parts else np.zeros((0, 3)), path, video.fps)
                    for metric, parts, path in ((self.generated, self._parts[0], video.pair.generated),
                                                (self.reference, self._parts[1], video.pair.reference)))
        column = {k: k if k.startswith(self.name) else f"{self.name}_{k}" for k in self.keys}
        self.discard_video()
        return {**{column[k]: gen[k] for k in self.keys}, **{f"reference_{column[k]}": ref[k] for k in self.keys}}

    def discard_video(self) -> None:
        self._parts = ([], [])

    def compute(self) -> dict[str, Any]:
        if self.generated is None:
            return {}
        return {**self.generated.compute(), "reference": self.reference.compute()}

    def config(self) -> dict[str, Any]:
        config = (self.generated or self.make(ANCHOR_FPS)).config()
        if "fps" in config and len(self._rates) > 1:  # mixed rates: each video's own, all of them listed
            config["fps"] = sorted(self._rates)
        return config

    def _make(self, fps: float) -> None:
        self.generated, self.reference, self._default_fps = self.make(fps), self.make(fps), fps

    def state(self) -> dict[str, Any]:
        """Both sides' per-video statistics (:class:`metrics.base.PerVideoRows` states) and the rates met."""
        if self.generated is None:
            return {}
        return {"fps": self._default_fps, "rates": sorted(self._rates),
                "generated": self.generated.state(), "reference": self.reference.state()}

    def merge(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.generated is None:  # made at the first video's rate, as end_video would have
            self._make(state["fps"])
        self.generated.merge(state["generated"])
        self.reference.merge(state["reference"])
        self._rates.update(state["rates"])

    def reset(self) -> None:
        self.generated: Optional[Any] = None
        self.reference: Optional[Any] = None
        self._video: Optional[VideoInfo] = None
        self._parts = ([], [])
        self._rates: set[float] = set()  # the frame rates of the videos added
