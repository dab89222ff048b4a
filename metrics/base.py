"""The contract every metric the runner can score follows, and the inputs the runner hands it.

A metric is fed one video pair at a time::

    metric.start_video(video)        # the pair's ids, paths and frame rate
    metric.update(chunk)             # every decoded chunk of the pair; returns nothing
    row = metric.end_video()         # the pair is done: its per-video values (per_video.csv), committed
    ...
    metric.compute()                 # a dict over every committed video (summary.json)

If a pair fails half-way (a damaged stream), ``discard_video()`` drops whatever it had added, so pooled
statistics never hold part of a video. ``config()`` and ``weights_provenance()`` are dicts for the
results' provenance. Class attributes say what a metric is: ``name`` (its registry name and the
summary.json key), ``direction`` ("higher", "lower" or None: a statistic to compare with the ground
truth) and ``consumes`` (which of :data:`INPUTS` the runner must prepare for it).

The library classes fed one whole video per call (``LSE``, ``LandmarkDistance``, ``PoseDiversity``,
``CrossSampleDiversity``, ``BeatAlign``, ``BlinkRate``) keep the same rule through :class:`PerVideoRows`:
``update(...)`` returns nothing, ``per_video()`` gives each video's values, ``compute()`` a dict.

This module imports no torch, so the registry and the command line can read it cheaply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from talking_head.toolkit.video_ids import parse_sample_id

DIRECTIONS = ("higher", "lower", None)
PAIRED_FRAMES = "paired_frames"  # generated frames resized to the reference size, with the reference frames
GENERATED_FRAMES = "generated_frames"  # generated frames as stored
LANDMARKS = "landmarks"  # MediaPipe meshes of both videos, (n, 478, 3) crop pixels, NaN rows without a face
AUDIO = "audio"  # each video's own audio track (read by the metric; the runner checks it exists first)
INPUTS = (PAIRED_FRAMES, GENERATED_FRAMES, LANDMARKS, AUDIO)
CHUNK = 32  # frames decoded and scored at a time: constant memory, batches big enough for the models


@dataclass(frozen=True)
class VideoPair:
    video_id: str
    generated: Path
    reference: Path
    sample: int | None = None  # k of a `<clip_id>.sample<k>` video (toolkit.video_ids), else None

    @property
    def clip_id(self) -> str:
        return parse_sample_id(self.video_id)[0] if self.sample is not None else self.video_id


@dataclass
class VideoInfo:
    """One pair as the runner reads it: both videos at `fps` (the reference's), `frames_used` compared."""

    pair: VideoPair
    fps: float
    frames_used: int
    warnings: list[str] = field(default_factory=list)  # metrics may add theirs (per_video.csv)


@dataclass(frozen=True)
class Chunk:
    """Consecutive frames of the current pair. Meshes are None unless a metric consumes landmarks."""

    generated: np.ndarray  # (n, H, W, 3) uint8 RGB, as stored
    reference: np.ndarray  # (n, H', W', 3)
    fitted: np.ndarray  # the generated frames resized to the reference size
    generated_meshes: Optional[np.ndarray] = None  # (n, 478, 3)
    reference_meshes: Optional[np.ndarray] = None


class Metric:
    """Base of every runner metric; subclasses set the class attributes and override what they use."""

    name: ClassVar[str] = ""
    direction: ClassVar[Optional[str]] = None
    consumes: ClassVar[frozenset[str]] = frozenset()

    def start_video(self, video: VideoInfo) -> None:
        """A new pair begins."""

    def update(self, chunk: Chunk) -> None:
        """One chunk of the current pair."""

    def end_video(self) -> dict[str, Any]:
        """The current pair is done: commit it and return its per-video values."""
        return {}

    def discard_video(self) -> None:
        """The current pair failed: forget what it added."""

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def weights_provenance(self) -> dict[str, Any]:
        return {}

    def reset(self) -> None:
        """Forget every video (a fresh run)."""
        raise NotImplementedError


def finite_mean(values: Any) -> float:
    """Mean of the finite values, NaN when there are none (a video where every frame failed)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if len(finite) else float("nan")


def snapshot(obj: Any, attributes: tuple[str, ...]) -> dict[str, Any]:
    """Copies of the attributes `obj` accumulates into, for :func:`restore` when a video fails half-way."""
    return {name: _copy(getattr(obj, name)) for name in attributes}


def restore(obj: Any, saved: dict[str, Any]) -> None:
    for name, value in saved.items():
        setattr(obj, name, _copy(value))


def _copy(value: Any) -> Any:
    if hasattr(value, "clone"):  # a torch tensor (updated in place)
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):  # items are never changed in place, only appended
        return list(value)
    return value  # numbers, None


class PerVideoRows:
    """Per-video values of a library class that takes one whole video per ``update``: the class appends
    each video's dict to ``_per_video_rows`` (and empties it in ``reset``); ``update`` returns nothing,
    so there is one way to read them."""

    _per_video_rows: list[dict[str, Any]]

    def per_video(self, start: int = 0) -> list[dict[str, Any]]:
        """One dict per video, in update order, from the `start`-th on (negative: counted from the end, as
        a slice, so ``per_video(-1)[0]`` is the last video's without copying the others). Copies: the
        caller may change them without changing the metric."""
        return [copy.deepcopy(row) for row in self._per_video_rows[start:]]


class PerFrameMeans(Metric):
    """A frame-by-frame metric (a library object with ``update``, ``per_frame``, ``compute``): a video's
    values are the means of its frames' finite values. `accumulators` names the library object's
    attributes that grow with every update, so a failed video can be taken back out."""

    consumes = frozenset({PAIRED_FRAMES})
    accumulators: ClassVar[tuple[str, ...]] = ()

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._start = 0  # first frame of the current video in the library object's per-frame values
        self._saved: dict[str, Any] = {}

    def start_video(self, video: VideoInfo) -> None:
        self._saved = snapshot(self.metric, self.accumulators)

    def update(self, chunk: Chunk) -> None:
        self.metric.update(chunk.fitted, chunk.reference)

    def per_frame(self) -> dict[str, Any]:
        """Per-frame values of every frame so far, by column name."""
        return {self.name: self.metric.per_frame()}

    def end_video(self) -> dict[str, Any]:
        values = self.per_frame()
        row = {key: finite_mean(np.asarray(array, dtype=np.float64)[self._start:]) for key, array in values.items()}
        self._start = len(next(iter(values.values())))
        self._saved = {}
        return row

    def discard_video(self) -> None:
        restore(self.metric, self._saved)

    def compute(self) -> dict[str, Any]:
        return self.metric.compute()

    def config(self) -> dict[str, Any]:
        return self.metric.config()

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()

    def reset(self) -> None:
        self.metric.reset()
        self._start = 0
