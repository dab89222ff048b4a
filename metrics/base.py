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

Confidence intervals (:mod:`metrics.bootstrap`; the runner draws one set of video indices per resample and
hands the same draw to every metric). A metric says how its numbers are recomputed on a draw of videos in
one of two ways:

* ``video_means`` (class attribute): summary keys that are means over videos of a per-video value,
  ``{key: column}`` with `column` a key of ``end_video()``'s dict (or a tuple of columns: the mean of
  their means, e.g. a mean over three angles). Videos without a value (NaN) are left out, as every
  built-in metric aggregates. A nested key is dotted (``"reference.lse_d"``). The runner bootstraps
  these from the per-video values; the metric does nothing else.
* ``resample(indices)``: a set-level statistic (FID, KID, FVD, E-FID, frame-pooled means: anything that is
  not a mean of per-video values) recomputes its headline numbers, keys as in its ``compute()`` (e.g.
  ``{"fid": ...}``), over its committed videos taken at `indices`: int positions in commit order,
  repetition allowed (one bootstrap draw). Such a metric keeps what it needs per committed video
  (features, per-frame values) and drops the current video's in ``discard_video()``. A value that the
  draw cannot define (too few frames) is NaN. The default returns None: no set-level statistic.
  ``resample_note`` (class attribute) says, in the results, how a resample's value is computed where
  that differs from ``compute()`` (e.g. another arithmetic route to the same number).

Work several metrics read (FID's and KID's Inception features) is done once per run: a metric that can
share it names a :class:`SharedInput` subclass in ``shared_input``; the runner builds one instance per
run and passes it to each such metric's constructor as ``shared=``. The metrics forward their own
``start_video``/``update``/``end_video``/``discard_video`` calls to it, and it acts on the first call
for each video and chunk only.

Distributed evaluation (``toolkit evaluate --engine ray``): a worker scores pairs on its own instances and
sends each pair's committed videos back as ``state()``, a small picklable dict (numpy arrays, numbers, lists,
dicts; never a model or a CUDA tensor) of everything ``compute()`` and ``resample()`` need. The driver
adds it with ``merge(state)`` after its own committed videos, exactly as if it had scored them itself, so
its results equal a local run's. Both refuse (ValueError) while a video is open. A metric's state
leaves out its :class:`SharedInput`, which has its own ``state``/``merge`` and is merged once per run:
:func:`metrics.merge.export_state` and :func:`metrics.merge.merge_state` do both for a list of metrics.

The library classes fed one whole video per call (``LSE``, ``LandmarkDistance``, ``PoseDiversity``,
``CrossSampleDiversity``, ``BeatAlign``, ``BlinkRate``) keep the same rule through :class:`PerVideoRows`:
``update(...)`` returns nothing, ``per_video()`` gives each video's values, ``compute()`` a dict.

This module imports no torch, so the registry and the command line can read it cheaply.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Union

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
    # Bootstrap intervals (module docstring): summary keys that are means of per-video values, by column.
    video_means: ClassVar[Mapping[str, Union[str, tuple[str, ...]]]] = {}
    resample_note: ClassVar[str] = ""  # how resample() differs from compute() in arithmetic, if it does
    shared_input: ClassVar[Optional[type["SharedInput"]]] = None  # per-run work shared with other metrics

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

    def resample(self, indices: np.ndarray) -> Optional[dict[str, float]]:
        """The set-level headline numbers (keys as in ``compute()``) over the committed videos at `indices`
        (int positions in commit order, repetition allowed); None: this metric has no set-level statistic
        (its intervals, if any, come from ``video_means``)."""
        return None

    @property
    def shared(self) -> Optional["SharedInput"]:
        """The run's shared input this metric forwards to (its state is not in :meth:`state`), or None."""
        return None

    # state()/merge() by default: these attributes, combined by merge_attributes (lists concatenate ...).
    merged_attributes: ClassVar[tuple[str, ...]] = ()

    def state(self) -> dict[str, Any]:
        """The committed videos' state, small and picklable (module docstring: distributed evaluation)."""
        if not self.merged_attributes:
            raise NotImplementedError(f"{type(self).__name__} does not export its state for distributed evaluation")
        return attribute_state(self, self.merged_attributes)

    def merge(self, state: dict[str, Any]) -> None:
        """Add the videos of another instance's :meth:`state` after this instance's committed ones."""
        if not self.merged_attributes:
            raise NotImplementedError(f"{type(self).__name__} cannot merge another instance's state")
        merge_attributes(self, state)

    _video_open = False  # kept by the lifecycle wrappers (__init_subclass__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each class's own lifecycle methods record whether a video is open, so that every merge() refuses
        # one in the middle of a video without each metric keeping track of it.
        super().__init_subclass__(**kwargs)
        _track_open_video(cls)


def _track_open_video(cls: type) -> None:
    for name, opens in (("start_video", True), ("end_video", False), ("discard_video", False), ("reset", False)):
        if name in cls.__dict__:
            setattr(cls, name, _marking(cls.__dict__[name], opens))
    for name in ("state", "merge"):
        if name in cls.__dict__:
            setattr(cls, name, _closed_only(cls.__dict__[name], lambda self: self._video_open))


def _marking(method: Any, opens: bool) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self._video_open = opens  # after the call: a start_video that discards first still ends open
        return result
    return wrapper


def _closed_only(method: Any, is_open: Any) -> Any:
    """`method` (state or merge) refused while a video is open: the state is the committed videos'."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        if is_open(self):
            raise ValueError(f"{type(self).__name__}.{method.__name__}() is refused while a video is open")
        return method(self, *args)
    return wrapper


_track_open_video(Metric)


class SharedInput:
    """Per-run work several metrics read (e.g. Inception features for FID and KID), done once.

    Each metric that declares the subclass in ``Metric.shared_input`` gets the run's one instance as
    ``shared=`` and forwards its lifecycle calls; only the first call for a video or a chunk acts (the
    runner hands every metric the same :class:`VideoInfo` and :class:`Chunk` objects). Subclasses
    implement :meth:`begin`, :meth:`add`, :meth:`commit`, :meth:`rollback` and :meth:`clear`.
    """

    def __init__(self) -> None:
        self._open: Optional[VideoInfo] = None
        self._chunk: Optional[Chunk] = None

    def start_video(self, video: VideoInfo) -> None:
        if self._open is video:
            return
        self._open, self._chunk = video, None
        self.begin(video)

    def update(self, chunk: Chunk) -> None:
        if self._chunk is chunk:
            return
        self._chunk = chunk
        self.add(chunk)

    def end_video(self) -> None:
        if self._open is None:
            return
        self._open, self._chunk = None, None
        self.commit()

    def discard_video(self) -> None:
        if self._open is None:
            return
        self._open, self._chunk = None, None
        self.rollback()

    def reset(self) -> None:
        self._open, self._chunk = None, None
        self.clear()

    def begin(self, video: VideoInfo) -> None:
        """A new pair begins."""

    def add(self, chunk: Chunk) -> None:
        """One chunk of the current pair (called once per chunk, whatever the number of metrics)."""

    def commit(self) -> None:
        """The current pair is done."""

    def rollback(self) -> None:
        """The current pair failed: forget what it added."""

    def clear(self) -> None:
        """Forget every video."""

    def state(self) -> dict[str, Any]:
        """The committed videos' state, small and picklable (as :meth:`Metric.state`)."""
        raise NotImplementedError(f"{type(self).__name__} does not export its state for distributed evaluation")

    def merge(self, state: dict[str, Any]) -> None:
        """Add another instance's committed videos after this one's (as :meth:`Metric.merge`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot merge another instance's state")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("state", "merge"):  # refused while a video is open, as a metric's
            if name in cls.__dict__:
                setattr(cls, name, _closed_only(cls.__dict__[name], lambda self: self._open is not None))


def batch_size_for(table: Mapping[str, int], device: Any, given: Optional[int] = None) -> int:
    """Items per network forward: ``given`` if set, else the metric's entry for the device type ("cpu", "cuda");
    other device types get the CPU's. Batches change results by float round-off only (docs/metrics-reference.md,
    "Batching")."""
    size = int(given if given is not None else table.get(getattr(device, "type", str(device).split(":")[0]), table["cpu"]))
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    return size


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


def combined(mine: Any, theirs: Any) -> Any:
    """`mine` followed by `theirs`, for merging states: lists concatenate, dicts combine by key (a key in
    one only is kept), numbers and arrays add (running sums, counts), sets unite; anything else must be
    equal (a setting)."""
    if isinstance(mine, list):
        return mine + list(theirs)
    if isinstance(mine, dict):
        return {**mine, **{k: combined(mine[k], v) if k in mine else v for k, v in theirs.items()}}
    if isinstance(mine, set):
        return mine | set(theirs)
    if isinstance(mine, (int, float, np.ndarray, np.number)) and not isinstance(mine, bool):
        return mine + theirs
    if mine != theirs:
        raise ValueError(f"cannot merge {mine!r} with {theirs!r}")
    return mine


def attribute_state(obj: Any, attributes: tuple[str, ...]) -> dict[str, Any]:
    """Copies of `obj`'s accumulating attributes (an object with its own ``state()``: that), a state for
    :func:`merge_attributes`."""
    values = {name: getattr(obj, name) for name in attributes}
    return {name: v.state() if hasattr(v, "state") else copy.deepcopy(v) for name, v in values.items()}


def merge_attributes(obj: Any, state: dict[str, Any]) -> None:
    """Each attribute of `state` :func:`combined` after `obj`'s own (an object with ``merge()``: merged)."""
    for name, value in state.items():
        mine = getattr(obj, name)
        if hasattr(mine, "merge"):
            mine.merge(value)
        else:
            setattr(obj, name, combined(mine, copy.deepcopy(value)))


class PerVideoRows:
    """Per-video values of a library class that takes one whole video per ``update``: the class appends
    each video's dict to ``_per_video_rows`` (and empties it in ``reset``); ``update`` returns nothing,
    so there is one way to read them. ``state()``/``merge()`` (distributed evaluation) carry the
    attributes named in ``merged_attributes``, combined by :func:`combined`."""

    _per_video_rows: list[dict[str, Any]]
    merged_attributes: ClassVar[tuple[str, ...]] = ("_per_video_rows",)

    def state(self) -> dict[str, Any]:
        return attribute_state(self, self.merged_attributes)

    def merge(self, state: dict[str, Any]) -> None:
        merge_attributes(self, state)

    def per_video(self, start: int = 0) -> list[dict[str, Any]]:
        """One dict per video, in update order, from the `start`-th on (negative: counted from the end, as
        a slice, so ``per_video(-1)[0]`` is the last video's without copying the others). Copies: the
        caller may change them without changing the metric."""
        return [copy.deepcopy(row) for row in self._per_video_rows[start:]]


class PerFrameMeans(Metric):
    """A frame-by-frame metric (a library object with ``update``, ``per_frame``, ``compute``): a video's
    values are the means of its frames' finite values. `accumulators` names the library object's
    attributes that grow with every update, so a failed video can be taken back out.

    Its summary numbers are means over all frames of all videos (not means of the per-video means), so
    :meth:`resample` recomputes them over the frames of the drawn videos: every per-frame value that
    ``compute()`` reports under the same name (``psnr``, ``ssim``, ``lpips``, ``csim``, ``niqe``) is taken
    to be its mean over frames, NaN frames left out; a key whose mean over all committed frames does not
    give ``compute()``'s value back (to 1e-9) gets no interval."""

    consumes = frozenset({PAIRED_FRAMES})
    accumulators: ClassVar[tuple[str, ...]] = ()

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._start = 0  # first frame of the current video in the library object's per-frame values
        self._saved: dict[str, Any] = {}
        self._bounds: list[tuple[int, int]] = []  # each committed video's frames in the per-frame values
        self._pooled: Optional[tuple[int, dict[str, np.ndarray]]] = None  # (videos, pooled per-frame values)

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
        end = len(next(iter(values.values())))
        self._bounds.append((self._start, end))
        self._start = end
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
        self._bounds = []
        self._pooled = None

    def state(self) -> dict[str, Any]:
        return {"values": attribute_state(self.metric, self.accumulators), "bounds": list(self._bounds),
                "frames": self._start}

    def merge(self, state: dict[str, Any]) -> None:
        merge_attributes(self.metric, state["values"])
        self._bounds += [(start + self._start, end + self._start) for start, end in state["bounds"]]
        self._start += state["frames"]

    def _pooled_values(self) -> dict[str, np.ndarray]:
        """The per-frame values whose frame mean ``compute()`` reports under their name (checked once per
        number of committed videos)."""
        if self._pooled is None or self._pooled[0] != len(self._bounds):
            try:
                values, point = self.per_frame(), self.compute()
            except ValueError:  # nothing committed, or a convention without per-frame values
                values, point = {}, {}
            kept = {}
            for key, array in values.items():
                array = np.asarray(array, dtype=np.float64)
                target = point.get(key)
                if isinstance(target, bool) or not isinstance(target, (int, float)) or not len(array):
                    continue
                mean = _nan_mean(array)
                if mean == target or (np.isfinite(mean) and np.isclose(mean, target, rtol=1e-9, atol=0.0)):
                    kept[key] = array
            self._pooled = (len(self._bounds), kept)
        return self._pooled[1]

    def resample(self, indices: np.ndarray) -> Optional[dict[str, float]]:
        values = self._pooled_values()
        if not values:
            return None
        frames = np.concatenate([np.arange(*self._bounds[i]) for i in np.asarray(indices, dtype=np.int64)])
        return {key: _nan_mean(array[frames]) for key, array in values.items()}


def _nan_mean(values: np.ndarray) -> float:
    """Mean with NaN left out (inf kept), NaN when nothing is left; no warning."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else float("nan")
