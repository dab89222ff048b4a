"""Fréchet Inception Distance that reproduces pytorch-fid 0.3.0, streamed straight from videos.

One obvious entry point for each job::

    from talking_head.metrics.fid import FID, fid_from_videos, video_statistics, cached_statistics, frechet_distance

    fid_from_videos(generated_videos, reference_videos)      # {"fid": ..., "num_frames_generated": ..., ...}

    metric = FID(device="cuda")                              # streaming, constant memory
    for gen, ref in batches:                                 # (N, H, W, 3) uint8 RGB, numpy or torch
        metric.update(gen)                                   # generated side
        metric.update(ref, real=True)                        # or metric.update_reference(ref)
    metric.compute()                                         # {"fid", "num_frames_generated", ...}

What is reproduced (docs/metrics-reference.md#pytorch-fid): features are pytorch-fid's pool3 activations
(:mod:`metrics.inception`: uint8/255, bilinear 299 resize, 2x-1, FID Inception, fp32 with TF32
off); statistics are the mean and the unbiased covariance (``np.cov``, N-1) in float64; the
distance is ``|mu1-mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2)``.

What differs, on purpose, and why the numbers still agree:

* Frames are decoded in memory (PyAV, RGB24), never dumped: a PNG dump round-trips the same
  uint8 pixels, so the features are those pytorch-fid computes on a lossless dump (a JPEG dump
  would not be: clean-fid documents large FID shifts from JPEG alone).
* Statistics are streamed as float64 running sums of the features and of their outer products
  (shifted by the first batch's mean so the sums do not cancel), so memory is constant in the
  number of frames; pytorch-fid keeps every activation.
* ``tr sqrtm(S1 S2)`` is computed from the symmetric form ``eigvalsh(S1^1/2 S2 S1^1/2)``
  (float64; eigenvalues that are negative or below the rank tolerance ``max * n * eps`` count as
  0), not with ``scipy.linalg.sqrtm``: it is 5-10x faster for 2048-d, needs no SciPy (whose
  ``sqrtm`` is broken in 1.11.2-1.12 and lost ``disp`` in 1.18), and it stays real and finite
  when the covariances are rank-deficient (fewer frames than 2048), where ``sqrtm`` returns
  complex values and pytorch-fid raises "Imaginary component". On well-conditioned input it
  agrees with pytorch-fid to ~1e-12 relative.

The video protocol (docs/metrics-reference.md#fid-from-videos) changes the number and is therefore explicit and
recorded by every ``config()``: full frame or a crop box per frame, an optional pre-resize (the
model always resizes to 299 itself), frame rate, frame step and count, and pooling over all videos
(one FID per method, the Wav2Lip convention) versus one FID per video pair.

Modules: the Fréchet distance and the running statistics are :mod:`metrics.frechet`; the video protocol
(which frames, crop, resize) is :mod:`metrics.fid_protocol`; this module holds the model side, the
statistics cache and the entry points, and re-exports the names above.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from talking_head.metrics.base import PAIRED_FRAMES, Chunk, Metric, SharedInput, VideoInfo, restore, snapshot
from talking_head.metrics.fid_protocol import (
    RESIZE_INTERPOLATIONS, Crop, PathLike, VideoProtocol, as_protocol, prefetch, protocol_frames, video_list,
)
from talking_head.metrics.frechet import FrechetResult, RunningStatistics, Statistics, frechet_distance
from talking_head.metrics.inception import FEATURE_DIM, FIDInceptionV3

__all__ = [
    "FEATURE_DIM", "DEFAULT_BATCH_SIZE", "RESIZE_INTERPOLATIONS", "SmallSampleWarning",
    "FrechetResult", "Statistics", "RunningStatistics", "VideoProtocol", "FID", "frechet_distance",
    "video_statistics", "cached_statistics", "fid_from_videos", "default_cache_dir", "InceptionVideos",
]

# ---------------------------------------------------------------------------------------- constants
DEFAULT_BATCH_SIZE = 50  # pytorch-fid --batch-size default
CACHE_VERSION = 1  # bump when the cached statistics would change for the same key


class SmallSampleWarning(UserWarning):
    """A side has fewer frames than feature dimensions: its covariance is rank-deficient."""

def _sample_warning(side: str, count: int, dim: int = FEATURE_DIM) -> str | None:
    if count >= dim:
        return None
    return (
        f"the {side} set has {count} frames, fewer than the {dim} feature dimensions: its covariance is "
        f"rank-deficient (rank <= {max(count - 1, 0)}), so this FID is biased and not comparable with FIDs "
        f"computed on more frames (pool frames over videos, or use at least {dim})"
    )


def _fid_result(gen: Statistics, ref: Statistics, device: Any, warn: bool = True) -> dict[str, Any]:
    messages = [m for m in (_sample_warning("generated", gen.count), _sample_warning("reference", ref.count)) if m]
    if warn:
        for message in messages:
            warnings.warn(message, SmallSampleWarning, stacklevel=3)
    frechet = frechet_distance(gen.mu, gen.sigma, ref.mu, ref.sigma, device=device)
    return {
        "fid": frechet.fid,
        "num_frames_generated": gen.count,
        "num_frames_reference": ref.count,
        "warnings": messages,
        "frechet": frechet.as_dict(),
    }


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as pytorch-fid's CLI


# ------------------------------------------------------------------------------- feature accumulator
class _Accumulator:
    """Frames -> Inception features in batches of ``batch_size`` -> running statistics (and, with `keep`,
    the feature rows themselves, float32 as the model gives them)."""

    def __init__(self, model: FIDInceptionV3, batch_size: int, keep: bool = False) -> None:
        self.model = model
        self.batch_size = batch_size
        self.pending: list[np.ndarray | torch.Tensor] = []
        self.stats = RunningStatistics(FEATURE_DIM, device=model.device)
        self.rows: list[np.ndarray] | None = [] if keep else None

    def add(self, frames: Sequence[np.ndarray | torch.Tensor]) -> None:
        self.pending.extend(frames)
        while len(self.pending) >= self.batch_size:
            batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
            self._run(batch)
        # Frames left waiting for a full batch are copied: the caller may reuse its buffers.
        fresh = min(len(frames), len(self.pending))
        for k in range(len(self.pending) - fresh, len(self.pending)):
            f = self.pending[k]
            self.pending[k] = f.clone() if isinstance(f, torch.Tensor) else np.array(f, copy=True)

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self._run(batch)

    def _run(self, batch: Sequence[np.ndarray | torch.Tensor]) -> None:
        features = self.model.extract(batch)
        self.stats.update(features)
        if self.rows is not None:
            self.rows.append(features.float().cpu().numpy())

    @property
    def count(self) -> int:
        return self.stats.count + len(self.pending)

    def reset(self) -> None:
        self.pending = []
        self.stats.reset()
        if self.rows is not None:
            self.rows = []


def _split_frames(frames: Any, what: str) -> list[np.ndarray | torch.Tensor]:
    """Validate RGB uint8 frames and return them as a list of (H, W, 3) views.

    Accepts an (N, H, W, 3) numpy array or torch tensor, or a list of (H, W, 3) frames (whose sizes
    may differ, e.g. face crops).
    """
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError(f"{what}: no frames (empty list)")
        out = []
        for k, f in enumerate(frames):
            if not isinstance(f, (np.ndarray, torch.Tensor)):
                raise ValueError(f"{what}: frame {k} is a {type(f).__name__}, expected a numpy array or torch tensor")
            if f.ndim != 3 or f.shape[2] != 3 or f.shape[0] == 0 or f.shape[1] == 0:
                raise ValueError(f"{what}: frame {k} must be (H, W, 3) RGB, got shape {tuple(f.shape)}")
            if f.dtype not in (np.uint8, torch.uint8):
                raise ValueError(f"{what}: frame {k} must be uint8 RGB in [0, 255], got dtype {f.dtype}")
            out.append(f)
        return out
    if not isinstance(frames, (np.ndarray, torch.Tensor)):
        raise ValueError(f"{what}: expected an (N, H, W, 3) uint8 numpy array or torch tensor, got {type(frames).__name__}")
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"{what}: expected (N, H, W, 3) RGB frames (channels last), got shape {shape}")
    if frames.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"{what}: expected uint8 RGB frames in [0, 255], got dtype {frames.dtype}")
    if shape[0] == 0:
        raise ValueError(f"{what}: no frames (shape {shape})")
    if shape[1] == 0 or shape[2] == 0:
        raise ValueError(f"{what}: frames are empty images (shape {shape})")
    return list(frames)


# ------------------------------------------------------------------------------------ streaming FID
class FID:
    """Streaming FID between generated and reference frames, pytorch-fid's numbers.

    ``update(frames, real=False)`` / ``update_reference(frames)``: RGB uint8 ``(N, H, W, 3)`` numpy or
    torch (or a list of ``(H, W, 3)`` frames whose sizes may differ), any size: each frame is resized
    to 299 bilinearly, as pytorch-fid does. Frames are batched internally (``batch_size``,
    pytorch-fid's default 50) on ``device``; only float64 sums are kept, so memory does not grow
    with the number of frames (frames waiting for a full batch are copied, so callers may reuse
    their buffers). ``add_statistics`` merges
    precomputed statistics (e.g. :func:`cached_statistics` of a reference set).

    ``compute()`` -> ``{"fid", "num_frames_generated", "num_frames_reference", "warnings", "frechet"}``.
    A side with fewer than 2048 frames gives a rank-deficient covariance: a :class:`SmallSampleWarning`
    is issued and the message is put in ``"warnings"``.

    ``keep_features=True`` also keeps every frame's feature row (2048 float32, 8 KiB a frame and side):
    :meth:`features` gives them, for KID on the same pass and for bootstrap intervals. The statistics,
    hence the FID, are the same either way.
    """

    def __init__(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | torch.device | None = None,
        model: FIDInceptionV3 | None = None,
        keep_features: bool = False,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if model is None:
            model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
        elif device is not None:
            model = model.to(device)
        self.model = model.eval()
        self._sides = {real: _Accumulator(self.model, self.batch_size, keep=keep_features) for real in (False, True)}

    @property
    def device(self) -> torch.device:
        return self.model.device

    def update(self, frames: Any, real: bool = False) -> None:
        """Add generated frames (``real=False``) or reference frames (``real=True``)."""
        self._sides[bool(real)].add(_split_frames(frames, "reference frames" if real else "generated frames"))

    def update_reference(self, frames: Any) -> None:
        """Add reference (real) frames; same as ``update(frames, real=True)``."""
        self.update(frames, real=True)

    def add_statistics(self, stats: Statistics, real: bool = True) -> None:
        """Merge precomputed statistics into one side (by default the reference side)."""
        self._sides[bool(real)].stats.add_statistics(stats)

    def statistics(self, real: bool = False) -> Statistics:
        """The statistics of one side so far (pending frames are processed first)."""
        side = self._sides[bool(real)]
        side.flush()
        return side.stats.statistics()

    def features(self, real: bool = False) -> np.ndarray:
        """(N, 2048) float32 feature rows of one side so far, in the order the frames were added (pending
        frames are processed first). Needs ``keep_features=True``."""
        side = self._sides[bool(real)]
        if side.rows is None:
            raise ValueError("this FID keeps no feature rows: build it with keep_features=True")
        side.flush()
        return np.concatenate(side.rows) if side.rows else np.zeros((0, FEATURE_DIM), np.float32)

    def counts(self) -> tuple[int, int]:
        """Frames added so far to the generated and the reference side (waiting ones included)."""
        return self._sides[False].count, self._sides[True].count

    def compute(self) -> dict[str, Any]:
        """FID between everything added so far. Raises ValueError if a side has fewer than 2 frames."""
        for real, name in ((False, "generated"), (True, "reference")):
            if self._sides[real].count < 2:
                raise ValueError(f"the {name} side has {self._sides[real].count} frames; FID needs at least 2")
        return _fid_result(self.statistics(False), self.statistics(True), self.device)

    def reset(self) -> None:
        for side in self._sides.values():
            side.reset()

    def config(self) -> dict[str, Any]:
        """Every knob that changes the number (plus the batch size and device, which do not beyond round-off)."""
        return {
            "metric": "fid",
            "reference_implementation": "pytorch-fid 0.3.0",
            "extractor": self.model.config(),
            "statistics": "mean, unbiased covariance (N-1), float64 streaming sums",
            "frechet": FrechetResult.method,
            "batch_size": self.batch_size,
            "device": str(self.device),
        }

    def weights_provenance(self) -> dict[str, str | None]:
        return self.model.weights_provenance()


class InceptionVideos(SharedInput):
    """The runner's Inception pass, shared: the paired frames of every video through FID's Inception once per
    run, whatever number of metrics read the features (FID and KID declare it as ``shared_input``).

    Frames go through :class:`FID` (batches of ``batch_size`` across chunk and video boundaries, as FID has
    always batched them, so its number does not move) with ``keep_features=True``; each committed video's
    frame count per side is recorded, so the rows of any draw of videos can be found (bootstrap). A video
    that fails half-way is taken back out: both sides' sums, kept rows and waiting frames as before it."""

    _STATE = ("count", "_shift", "_sum", "_outer")

    def __init__(self, device: str = "cpu", model: FIDInceptionV3 | None = None) -> None:
        super().__init__()
        self.fid = FID(device=device, model=model, keep_features=True)
        self.videos: list[tuple[int, int]] = []  # committed videos' frames: (generated, reference)
        self._saved: list[tuple[Any, dict[str, Any], Any, dict[str, Any]]] = []
        self._before = (0, 0)

    @property
    def model(self) -> FIDInceptionV3:
        return self.fid.model

    def begin(self, video: VideoInfo) -> None:
        self._saved = [(side, snapshot(side, ("pending", "rows")), side.stats, snapshot(side.stats, self._STATE))
                       for side in self.fid._sides.values()]
        self._before = self.fid.counts()

    def add(self, chunk: Chunk) -> None:
        self.fid.update(chunk.fitted)
        self.fid.update_reference(chunk.reference)

    def commit(self) -> None:
        after = self.fid.counts()
        self.videos.append((after[0] - self._before[0], after[1] - self._before[1]))
        self._saved = []

    def rollback(self) -> None:
        for side, pending, stats, sums in self._saved:
            restore(side, pending)
            restore(stats, sums)
        self._saved = []

    def clear(self) -> None:
        self.fid.reset()
        self.videos, self._saved = [], []

    def video_features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Generated rows, reference rows (every committed video's, in commit order) and the rows per video
        of each side."""
        counts = np.asarray(self.videos, dtype=np.int64).reshape(-1, 2)
        return self.fid.features(False), self.fid.features(True), counts[:, 0], counts[:, 1]


class InceptionFeatureMetric(Metric):
    """A runner metric computed from the run's one Inception pass (:class:`InceptionVideos`, passed as
    ``shared=``; built here when used alone): each video goes to the shared pass, and the metric keeps a
    resampler of the kept features for the bootstrap, rebuilt when more videos were committed."""

    consumes = frozenset({PAIRED_FRAMES})
    shared_input = InceptionVideos

    def __init__(self, device: str = "cpu", shared: InceptionVideos | None = None) -> None:
        self.features = shared if shared is not None else InceptionVideos(device=device)
        self._resampler: tuple[int, Any] | None = None  # (videos when built, resampler)

    def start_video(self, video: VideoInfo) -> None:
        self.features.start_video(video)

    def update(self, chunk: Chunk) -> None:
        self.features.update(chunk)

    def end_video(self) -> dict[str, Any]:
        self.features.end_video()
        return {}

    def discard_video(self) -> None:
        self.features.discard_video()

    def reset(self) -> None:
        self.features.reset()
        self._resampler = None


class FIDVideos(InceptionFeatureMetric):
    """FID for the runner: all paired frames of all videos, pooled (Wav2Lip's protocol), from the run's shared
    Inception pass (:class:`InceptionVideos`, which KID reads too). :meth:`resample` recomputes the FID over a
    draw of videos from their kept features (:class:`metrics.feature_resampling.FrechetResampler`)."""

    name, direction = "fid", "lower"
    resample_note = ("each resample's FID is computed from the drawn videos' kept features (Frechet distance of "
                     "their weighted mean and covariance through the singular values of the centred cross-Gram "
                     "matrix, or a Cholesky factor with more frames than dimensions); it equals frechet_distance "
                     "of the resampled features to ~1e-10 relative; the point estimate comes from the streamed "
                     "float64 sums")

    def __init__(self, device: str = "cpu", shared: InceptionVideos | None = None) -> None:
        super().__init__(device, shared)
        self.metric = self.features.fid

    def compute(self) -> dict[str, Any]:
        return self.metric.compute()

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        from talking_head.metrics.feature_resampling import FrechetResampler

        videos = len(self.features.videos)
        if self._resampler is None or self._resampler[0] != videos:
            self._resampler = (videos, FrechetResampler(*self.features.video_features()))
        return {"fid": self._resampler[1](indices)}

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "protocol": "all paired frames of all videos, pooled (Wav2Lip); "
                                                    "frames as stored in the videos (crops for toolkit datasets)"}

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()


def video_statistics(
    paths: PathLike | Iterable[PathLike],
    fps: float | None = None,
    frame_step: int = 1,
    max_frames: int | None = None,
    crop: Crop = None,
    resize: int | tuple[int, int] | None = None,
    resize_interpolation: str = "bilinear",
    pooled: bool = True,
    *,
    crop_id: str | None = None,
    protocol: VideoProtocol | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    model: FIDInceptionV3 | None = None,
    threads: int | None = None,
) -> Statistics | list[Statistics]:
    """Inception statistics straight from video files (no frame dump), under an explicit protocol.

    ``paths``: a video, a directory of videos, or a list. The knobs are those of
    :class:`VideoProtocol` (or pass ``protocol=`` directly). ``pooled=True`` returns one
    :class:`Statistics` over every selected frame of every video; ``pooled=False`` returns one per
    video, in order. ``meta`` records the videos, frames used and frames skipped by the crop.
    ``threads``: decoder threads per video (None: FFmpeg's choice).
    """
    if protocol is None:
        protocol = VideoProtocol(fps=fps, frame_step=frame_step, max_frames=max_frames, crop=crop, crop_id=crop_id,
                                 resize=resize, resize_interpolation=resize_interpolation, pooled=pooled)
    elif crop is not None or (fps, frame_step, max_frames, crop_id, resize, resize_interpolation, pooled) != (
        None, 1, None, None, None, "bilinear", True
    ):
        raise ValueError("video_statistics: pass either protocol= or the individual protocol knobs, not both")
    videos = video_list(paths, "video_statistics")
    if model is None:
        model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
    elif device is not None:
        model = model.to(device)
    model.eval()
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def run(group: list[str]) -> Statistics:
        acc = _Accumulator(model, int(batch_size))
        per_video = []
        for path in group:
            counts = {"selected": 0, "skipped": 0}
            before = acc.count
            for frames in prefetch(lambda path=path, counts=counts: protocol_frames(path, protocol, threads, counts)):
                acc.add(frames)
            per_video.append({"path": path, "frames": acc.count - before, "skipped": counts["skipped"]})
        acc.flush()
        if acc.stats.count < 2:
            raise ValueError(
                f"only {acc.stats.count} frame(s) from {', '.join(group)} under this protocol; FID needs at least 2"
            )
        meta = {"videos": per_video, "protocol": protocol.config(), "weights": model.weights_provenance()}
        return acc.stats.statistics(meta)

    if protocol.pooled:
        return run(videos)
    return [run([v]) for v in videos]


# ---------------------------------------------------------------------------------- statistics cache
def default_cache_dir() -> Path:
    """``<toolkit cache>/fid-stats`` (``$TOOLKIT_CACHE_DIR`` or ``~/.cache/talking-head-toolkit``)."""
    from talking_head.toolkit import weights

    return weights.cache_dir() / "fid-stats"


def _model_fingerprint(model: FIDInceptionV3) -> str:
    if model.weights_sha256:
        return model.weights_sha256
    digest = hashlib.sha256()  # a model built by hand: fingerprint its tensors
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return "state_dict:" + digest.hexdigest()


def _cache_key(videos: list[str], protocol: VideoProtocol, model: FIDInceptionV3) -> tuple[str, dict[str, Any]]:
    files = []
    for v in videos:
        st = os.stat(v)
        files.append([os.path.realpath(v), st.st_size, st.st_mtime_ns])
    config = protocol.config()
    config.pop("pooled")  # a cache entry is always one pooled set (per-video mode caches each video)
    payload = {
        "cache_version": CACHE_VERSION,
        "files": sorted(files),
        "protocol": config,
        "extractor": model.config(),
        "weights_sha256": _model_fingerprint(model),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest(), payload


def cached_statistics(
    paths: PathLike | Iterable[PathLike],
    cache_dir: PathLike | None = None,
    params: VideoProtocol | Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    model: FIDInceptionV3 | None = None,
    threads: int | None = None,
) -> Statistics | list[Statistics]:
    """:func:`video_statistics` with a disk cache, for reference sets that are scored again and again.

    The cache file ``<cache_dir>/fid-<sha256>.npz`` (default :func:`default_cache_dir`) is keyed by
    the sha256 of: the sorted real paths of the videos with their sizes and mtimes, every protocol
    parameter (``params``: a :class:`VideoProtocol` or a dict of its fields), the extractor config,
    and the Inception weights' sha256. Editing, replacing or touching a video, changing a knob or the
    weights gives a new key. Batch size and device are not in the key (they only move round-off).
    Files are written atomically. ``meta["cache"]`` says ``"hit"`` or ``"miss"`` and names the file.
    With ``pooled=False`` each video is cached on its own and a list is returned.
    A callable crop must carry a ``crop_id`` (its code cannot be fingerprinted).
    """
    protocol = as_protocol(params, {})
    if callable(protocol.crop) and not isinstance(protocol.crop, Mapping) and not protocol.crop_id:
        raise ValueError("cached_statistics: a callable crop needs crop_id (a name for what it does) to be cached")
    videos = video_list(paths, "cached_statistics")
    if model is None:
        model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
    elif device is not None:
        model = model.to(device)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def one(group: list[str]) -> Statistics:
        group = sorted(group, key=os.path.realpath)  # the key ignores order; so does the computation
        key, payload = _cache_key(group, protocol, model)
        file = root / f"fid-{key}.npz"
        if file.is_file():
            try:
                stats = Statistics.load(file)
                if stats.count >= 2 and stats.mu.shape == (FEATURE_DIM,):
                    stats.meta["cache"] = {"status": "hit", "file": str(file), "key": key}
                    return stats
            except (OSError, ValueError, KeyError):
                pass  # damaged entry: recompute and replace it
        stats = video_statistics(group, protocol=dataclasses.replace(protocol, pooled=True), batch_size=batch_size,
                                 model=model, threads=threads)
        assert isinstance(stats, Statistics)
        stats.meta["key_payload"] = payload
        stats.save(file)
        stats.meta["cache"] = {"status": "miss", "file": str(file), "key": key}
        return stats

    if protocol.pooled:
        return one(videos)
    return [one([v]) for v in videos]


# ------------------------------------------------------------------------------------ functional twin
def fid_from_videos(
    generated_paths: PathLike | Iterable[PathLike],
    reference_paths: PathLike | Iterable[PathLike],
    *,
    cache: bool | PathLike = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    model: FIDInceptionV3 | None = None,
    threads: int | None = None,
    **protocol: Any,
) -> dict[str, Any]:
    """FID between generated and reference videos, pytorch-fid's numbers without a frame dump.

    ``protocol``: the :class:`VideoProtocol` fields (``fps``, ``frame_step``, ``max_frames``,
    ``crop``, ``crop_id``, ``resize``, ``resize_interpolation``, ``pooled``). ``cache``: False, True
    (the toolkit cache dir) or a directory, to cache the reference statistics.

    Pooled (default): ``{"fid", "num_frames_generated", "num_frames_reference", "warnings",
    "frechet", "config", "weights"}``. ``pooled=False`` pairs the i-th generated with the i-th
    reference video: ``"fid"`` is the mean of the per-pair FIDs listed in ``"per_video"``.
    """
    proto = as_protocol(None, protocol)
    generated = video_list(generated_paths, "generated videos")
    reference = video_list(reference_paths, "reference videos")
    if not proto.pooled and len(generated) != len(reference):
        raise ValueError(
            f"pooled=False pairs videos one to one, but got {len(generated)} generated and {len(reference)} reference"
        )
    if model is None:
        model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
    elif device is not None:
        model = model.to(device)
    common = dict(batch_size=batch_size, model=model, threads=threads)
    gen_stats = video_statistics(generated, protocol=proto, **common)
    if cache is False or cache is None:
        ref_stats = video_statistics(reference, protocol=proto, **common)
    else:
        ref_stats = cached_statistics(reference, None if cache is True else cache, proto, **common)
    config = {
        "metric": "fid",
        "reference_implementation": "pytorch-fid 0.3.0",
        "protocol": proto.config(),
        "extractor": model.config(),
        "frechet": FrechetResult.method,
        "batch_size": int(batch_size),
        "device": str(model.device),
    }
    if proto.pooled:
        assert isinstance(gen_stats, Statistics) and isinstance(ref_stats, Statistics)
        result = _fid_result(gen_stats, ref_stats, model.device)
        result["num_videos_generated"], result["num_videos_reference"] = len(generated), len(reference)
    else:
        assert isinstance(gen_stats, list) and isinstance(ref_stats, list)
        rows, messages = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)  # raised once below, not per pair
            for g, r, gs, rs in zip(generated, reference, gen_stats, ref_stats):
                row = _fid_result(gs, rs, model.device, warn=False)
                rows.append({"generated": g, "reference": r, **row})
                messages.extend(m for m in row["warnings"] if m not in messages)
        summary = (
            f"{sum(bool(r['warnings']) for r in rows)} of {len(rows)} video pairs have fewer than {FEATURE_DIM} "
            f"frames on a side: per-video FIDs come from rank-deficient covariances and are not comparable "
            f"with pooled FIDs"
        )
        warn_list = [summary] if any(r["warnings"] for r in rows) else []
        for message in warn_list:
            warnings.warn(message, SmallSampleWarning, stacklevel=2)
        result = {
            "fid": float(np.mean([r["fid"] for r in rows])),
            "num_frames_generated": int(sum(r["num_frames_generated"] for r in rows)),
            "num_frames_reference": int(sum(r["num_frames_reference"] for r in rows)),
            "warnings": warn_list,
            "per_video": rows,
        }
    result["config"] = config
    result["weights"] = model.weights_provenance()
    return result
