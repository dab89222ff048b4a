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

import warnings
from typing import Any, Sequence

import numpy as np
import torch

from talking_head.metrics.base import (
    PAIRED_FRAMES, Chunk, Metric, SharedInput, VideoInfo, batch_size_for, restore, snapshot,
)
from talking_head.metrics.feature_cache import ReferenceRows, video_facts
from talking_head.metrics.fid_protocol import RESIZE_INTERPOLATIONS, VideoProtocol
from talking_head.metrics.frechet import FrechetResult, RunningStatistics, Statistics, frechet_distance
from talking_head.metrics.inception import FEATURE_DIM, FIDInceptionV3

__all__ = [
    "FEATURE_DIM", "DEFAULT_BATCH_SIZE", "BATCH_SIZE", "RESIZE_INTERPOLATIONS", "SmallSampleWarning",
    "FrechetResult", "Statistics", "RunningStatistics", "VideoProtocol", "FID", "frechet_distance",
    "InceptionVideos", "InceptionFeatureMetric", "FIDVideos",
]

# ---------------------------------------------------------------------------------------- constants
DEFAULT_BATCH_SIZE = 50  # pytorch-fid --batch-size default
BATCH_SIZE = {"cpu": DEFAULT_BATCH_SIZE, "cuda": 250}  # frames per Inception pass, by device (FID and KID)


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

    def __init__(self, model: FIDInceptionV3, batch_size: int, keep: bool = False, real: bool = False) -> None:
        self.model = model
        self.real = real  # the side it accumulates (reference: True)
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
        self.add_features(self.model.extract(batch))

    def add_features(self, features: torch.Tensor | np.ndarray) -> None:
        """Rows as the model gives them (float32); also another instance's kept rows (a merge): the running
        sums take them about this side's own shift, as if this instance had run their frames."""
        self.stats.update(features)
        if self.rows is not None:
            self.rows.append(np.asarray(features.float().cpu().numpy() if isinstance(features, torch.Tensor)
                                        else features, dtype=np.float32))

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
    to 299 bilinearly, as pytorch-fid does. Frames are batched internally (``batch_size``: by
    default :data:`BATCH_SIZE` for the device, pytorch-fid's 50 on the CPU) on ``device``; only float64 sums are kept, so memory does not grow
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
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        model: FIDInceptionV3 | None = None,
        keep_features: bool = False,
    ) -> None:
        if batch_size is not None:
            batch_size_for(BATCH_SIZE, "cpu", batch_size)  # a bad size fails before the weights load
        if model is None:
            model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
        elif device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.batch_size = batch_size_for(BATCH_SIZE, self.model.device, batch_size)
        self._sides = {real: _Accumulator(self.model, self.batch_size, keep_features, real) for real in (False, True)}

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

    Frames go through :class:`FID` with ``keep_features=True``: each video's frames, on both sides, in batches
    of ``batch_size`` that start at its first frame (flushed at its end), so a video's rows do not depend on
    its neighbours (a frame's features move with its batch by round-off): a run split over workers and merged
    gives the bits of one run, and reference rows are cached by content
    (:mod:`metrics.feature_cache`): a later run against the same reference reads them back and runs no
    Inception on the reference frames, with the same bits. Each committed video's frame count per side is
    recorded, so the rows of any draw of videos can be found (bootstrap). A video that fails half-way is
    taken back out: both sides' sums, kept rows and waiting frames as before it."""

    _STATE = ("count", "_shift", "_sum", "_outer")

    def __init__(self, device: str = "cpu", model: FIDInceptionV3 | None = None, reference_cache: bool = True) -> None:
        super().__init__()
        self.fid = FID(device=device, model=model, keep_features=True)
        # Rows are cached only under the weights' sha256 (a model built without a file has no identity).
        self.cache = ReferenceRows("fid-inception-reference",
                                   enabled=reference_cache and self.model.weights_sha256 is not None)
        self.videos: list[tuple[int, int]] = []  # committed videos' frames: (generated, reference)
        self._saved: list[tuple[Any, dict[str, Any], Any, dict[str, Any]]] = []
        self._before = (0, 0)
        self._cached: np.ndarray | None = None  # the current reference video's rows, read from the cache
        self._rows_before = 0  # reference row blocks before the current video

    @property
    def model(self) -> FIDInceptionV3:
        return self.fid.model

    def begin(self, video: VideoInfo) -> None:
        self._saved = [(side, snapshot(side, ("pending", "rows")), side.stats, snapshot(side.stats, self._STATE))
                       for side in self.fid._sides.values()]
        self._before = self.fid.counts()
        self._rows_before = len(self.fid._sides[True].rows or [])
        self._cached = None
        if self.cache.enabled:
            facts = video_facts(video, self.fid.device, extractor=self.model.config(),
                                weights=self.model.weights_provenance(), batch_size=self.fid.batch_size,
                                frames_read="every paired frame as decoded")
            found = self.cache.look_up(video, facts, lambda a: a.get("rows", np.zeros(0)).shape
                                       == (video.frames_used, FEATURE_DIM))
            self._cached = None if found is None else found["rows"].astype(np.float32, copy=False)

    def add(self, chunk: Chunk) -> None:
        self.fid.update(chunk.fitted)
        if self._cached is None:
            self.fid.update_reference(chunk.reference)

    def commit(self) -> None:
        reference = self.fid._sides[True]
        if self._cached is not None:
            # In the batches the frames would have gone through, so the float64 sums take the same steps.
            for start in range(0, len(self._cached), self.fid.batch_size):
                reference.add_features(self._cached[start:start + self.fid.batch_size])
        else:
            reference.flush()  # this video's last batch: the next video's batches start at its first frame
            rows = (reference.rows or [])[self._rows_before:]
            if rows:
                self.cache.store({"rows": np.concatenate(rows)})
        self.fid._sides[False].flush()  # the generated side too: its rows are the same in a worker's run
        after = self.fid.counts()
        self.videos.append((after[0] - self._before[0], after[1] - self._before[1]))
        self._saved, self._cached = [], None

    def rollback(self) -> None:
        for side, pending, stats, sums in self._saved:
            restore(side, pending)
            restore(stats, sums)
        self._saved, self._cached = [], None

    def clear(self) -> None:
        self.fid.reset()
        self.videos, self._saved, self._cached = [], [], None

    def state(self) -> dict[str, Any]:
        """The committed videos' feature rows per side (float32, 8 KiB a frame) and frame counts: the running
        sums are rebuilt from the rows on merge, which is smaller than two 2048x2048 float64 sums. Frames
        waiting for a full batch are run first (a worker's last video)."""
        generated, reference = self.video_features()[:2]
        return {"generated": generated, "reference": reference, "videos": [tuple(v) for v in self.videos],
                "cache_hits": self.cache.hits}

    def merge(self, state: dict[str, Any]) -> None:
        for real, side in self.fid._sides.items():
            side.flush()  # this instance's own frames first, in commit order
            side.add_features(state["reference" if real else "generated"])
        self.videos += [tuple(v) for v in state["videos"]]
        self.cache.hits += state.get("cache_hits", 0)

    def video_features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Generated rows, reference rows (every committed video's, in commit order) and the rows per video
        of each side."""
        counts = np.asarray(self.videos, dtype=np.int64).reshape(-1, 2)
        return self.fid.features(False), self.fid.features(True), counts[:, 0], counts[:, 1]

    def cache_config(self) -> dict[str, Any]:
        """Whether reference rows are cached, and how many reference videos were read back (config())."""
        return {"reference_cache": self.cache.enabled, "reference_cache_hits": self.cache.hits,
                "batching": "each video, both sides, in batches from its first frame"}


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

    @property
    def shared(self) -> InceptionVideos:
        return self.features

    def state(self) -> dict[str, Any]:
        return {}  # everything is in the shared Inception pass, merged once per run

    def merge(self, state: dict[str, Any]) -> None:
        pass


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
                                                    "frames as stored in the videos (crops for toolkit datasets)",
                **self.features.cache_config()}

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()


_FROM_FILES = ("video_statistics", "default_cache_dir", "cached_statistics", "fid_from_videos")


def __getattr__(name: str) -> Any:
    """The functions on video files live in :mod:`metrics.fid_files`; reached from here as before."""
    if name in _FROM_FILES:
        from talking_head.metrics import fid_files

        return getattr(fid_files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
