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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from talking_head.metrics.base import PAIRED_FRAMES, Chunk, Metric, VideoInfo, restore, snapshot
from talking_head.metrics.inception import FEATURE_DIM, FIDInceptionV3
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.media import VIDEO_EXTENSIONS

__all__ = [
    "FEATURE_DIM", "DEFAULT_BATCH_SIZE", "RESIZE_INTERPOLATIONS", "SmallSampleWarning",
    "FrechetResult", "Statistics", "RunningStatistics", "VideoProtocol", "FID", "frechet_distance",
    "video_statistics", "cached_statistics", "fid_from_videos", "default_cache_dir",
]

# ---------------------------------------------------------------------------------------- constants
DEFAULT_BATCH_SIZE = 50  # pytorch-fid --batch-size default
# Pre-resize filters (OpenCV on uint8, as a frame dump resized before pytorch-fid would be).
# "bilinear" is cv2.resize's default, what talking-head scripts use when they save face crops.
RESIZE_INTERPOLATIONS = {
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}
CACHE_VERSION = 1  # bump when the cached statistics would change for the same key
_CHUNK = 16  # frames decoded per chunk (toolkit.media's default)
_PREFETCH = 2  # decoded chunks kept ready while the model runs

PathLike = Union[str, "os.PathLike[str]"]
Box = Sequence[float]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive
CropFn = Callable[[str, int, np.ndarray], Optional[Box]]
Crop = Union[None, Box, CropFn, Mapping[PathLike, np.ndarray]]


class SmallSampleWarning(UserWarning):
    """A side has fewer frames than feature dimensions: its covariance is rank-deficient."""


# ---------------------------------------------------------------------------------- Fréchet distance
@dataclass(frozen=True)
class FrechetResult:
    """``fid = mean_term + trace_sigma1 + trace_sigma2 - 2 * trace_covmean``, with diagnostics.

    ``rank_sigma1``: eigenvalues of sigma1 above the rank tolerance (the subspace the product is
    evaluated in). ``eigenvalues_zeroed``: how many of the ``dim`` eigenvalues of ``S1^1/2 S2 S1^1/2``
    were counted as 0 (S1's null space, plus round-off that came out negative or below tolerance);
    ``min_eigenvalue``: the most negative eigenvalue seen (its size shows the round-off level).
    """

    fid: float
    mean_term: float
    trace_sigma1: float
    trace_sigma2: float
    trace_covmean: float
    dim: int
    rank_sigma1: int
    eigenvalues_zeroed: int
    min_eigenvalue: float
    method: str = "eigvalsh(S1^1/2 S2 S1^1/2), float64"

    def __float__(self) -> float:
        return self.fid

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _as_float64(name: str, value: Any, ndim: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def frechet_distance(
    mu1: Any,
    sigma1: Any,
    mu2: Any,
    sigma2: Any,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> FrechetResult:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``tr sqrtm(S1 S2)`` equals the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix ``S1^1/2 S2 S1^1/2`` (similar to ``S1 S2``). ``S1^1/2 = U diag(sqrt l) U^T`` from
    ``eigh(S1)``; the product is formed in S1's eigenbasis, restricted to eigenvalues above
    ``max(l) * d * eps`` (numpy's matrix-rank tolerance), so an exactly rank-deficient S1 contributes
    no round-off from its null space. ``backend="auto"``: NumPy's LAPACK on CPU (faster there than
    torch's), ``torch.linalg`` in float64 on a CUDA ``device``; "numpy" / "torch" force one.
    Raises ValueError on mismatched shapes or non-finite input.
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    m1, m2 = _as_float64("mu1", mu1, 1), _as_float64("mu2", mu2, 1)
    s1, s2 = _as_float64("sigma1", sigma1, 2), _as_float64("sigma2", sigma2, 2)
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shapes do not match: mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    diff = m1 - m2
    mean_term = float(diff @ diff)
    s1 = (s1 + s1.T) / 2  # covariances are symmetric; remove round-off asymmetry
    s2 = (s2 + s2.T) / 2
    on_gpu = device is not None and torch.device(device).type != "cpu"
    use_torch = backend == "torch" or (backend == "auto" and on_gpu)
    device = device if device is not None else "cpu"
    eps = np.finfo(np.float64).eps
    if use_torch:
        t1 = torch.as_tensor(s1, device=device)
        t2 = torch.as_tensor(s2, device=device)
        lam, vec = torch.linalg.eigh(t1)
        lam, vec = lam.cpu().numpy(), vec
    else:
        lam, vec = np.linalg.eigh(s1)
    tol1 = max(float(lam.max()), 0.0) * d * eps
    keep = np.flatnonzero(lam > tol1)
    if keep.size == 0:  # S1 == 0: the product is 0
        ev = np.zeros(0)
    elif use_torch:
        idx = torch.as_tensor(keep, device=vec.device)
        w = vec[:, idx] * torch.sqrt(torch.as_tensor(lam[keep], device=vec.device))
        m = w.T @ t2 @ w
        ev = torch.linalg.eigvalsh((m + m.T) / 2).cpu().numpy()
    else:
        w = vec[:, keep] * np.sqrt(lam[keep])
        m = w.T @ s2 @ w
        ev = np.linalg.eigvalsh((m + m.T) / 2)
    tol2 = (float(np.abs(ev).max()) * ev.size * eps) if ev.size else 0.0
    positive = ev > tol2
    trace_covmean = float(np.sqrt(ev[positive]).sum())
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    return FrechetResult(
        fid=mean_term + tr1 + tr2 - 2.0 * trace_covmean,
        mean_term=mean_term,
        trace_sigma1=tr1,
        trace_sigma2=tr2,
        trace_covmean=trace_covmean,
        dim=d,
        rank_sigma1=int(keep.size),
        eigenvalues_zeroed=int(ev.size - positive.sum()) + int(d - keep.size),
        min_eigenvalue=float(min(ev.min(), 0.0)) if ev.size else 0.0,
    )


# --------------------------------------------------------------------------------------- statistics
@dataclass
class Statistics:
    """Mean (d,) and unbiased covariance (d, d) of ``count`` feature vectors, float64.

    ``save``/``load`` use ``.npz`` with keys ``mu`` and ``sigma`` (pytorch-fid's ``--save-stats``
    layout, so pytorch-fid can read the file) plus ``count`` and a JSON ``meta`` string. ``count`` is
    -1 for a file without one (pytorch-fid's own ``--save-stats`` files).
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: PathLike) -> Path:
        """Write atomically (a reader sees the old file or the complete new one)."""
        dest = Path(path)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mu=self.mu, sigma=self.sigma, count=np.int64(self.count),
                         meta=np.array(json.dumps(self.meta, sort_keys=True, default=str)))
        return dest

    @classmethod
    def load(cls, path: PathLike) -> "Statistics":
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            count = int(data["count"]) if "count" in data.files else -1  # pytorch-fid files carry no count
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
        return cls(mu=mu, sigma=sigma, count=count, meta=meta)


class RunningStatistics:
    """Streaming mean and covariance of feature vectors: float64 sums, constant memory.

    Keeps ``sum(x - c)`` and ``sum((x - c)(x - c)^T)`` with ``c`` the mean of the first batch: the
    same covariance as ``np.cov`` on all rows, without the cancellation of raw second moments.
    Sums live on ``device`` (where the features are produced).
    """

    def __init__(self, dim: int = FEATURE_DIM, device: str | torch.device = "cpu") -> None:
        self.dim = dim
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._shift: torch.Tensor | None = None
        self._sum = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        self._outer = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add an (N, dim) batch of feature vectors."""
        x = torch.as_tensor(features).to(self.device, torch.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x.mean(0)
        x = x - self._shift
        self._sum += x.sum(0)
        self._outer += x.T @ x
        self.count += x.shape[0]

    def add_statistics(self, stats: Statistics) -> None:
        """Merge precomputed statistics (e.g. cached reference statistics) as if their frames were added."""
        if stats.count < 2:
            raise ValueError(f"statistics need a frame count >= 2 to be merged, got {stats.count}")
        mu = torch.as_tensor(stats.mu, dtype=torch.float64, device=self.device)
        sigma = torch.as_tensor(stats.sigma, dtype=torch.float64, device=self.device)
        if mu.shape != (self.dim,) or sigma.shape != (self.dim, self.dim):
            raise ValueError(f"statistics are {tuple(mu.shape)}/{tuple(sigma.shape)}, expected dim {self.dim}")
        if self._shift is None:
            self._shift = mu.clone()
        n, delta = stats.count, mu - self._shift
        self._sum += n * delta
        self._outer += (n - 1) * sigma + n * torch.outer(delta, delta)
        self.count += n

    def statistics(self, meta: dict[str, Any] | None = None) -> Statistics:
        """Mean and unbiased covariance (N-1, as ``np.cov``) of everything added so far."""
        n = self.count
        if n < 2:
            raise ValueError(f"need at least 2 frames for a covariance, got {n}")
        assert self._shift is not None
        mean_shifted = self._sum / n
        sigma = (self._outer - n * torch.outer(mean_shifted, mean_shifted)) / (n - 1)
        sigma = (sigma + sigma.T) / 2
        mu = self._shift + mean_shifted
        return Statistics(mu=mu.cpu().numpy(), sigma=sigma.cpu().numpy(), count=n, meta=dict(meta or {}))


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
    """Frames -> Inception features in batches of ``batch_size`` -> running statistics."""

    def __init__(self, model: FIDInceptionV3, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self.pending: list[np.ndarray | torch.Tensor] = []
        self.stats = RunningStatistics(FEATURE_DIM, device=model.device)

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
        self.stats.update(self.model.extract(batch))

    @property
    def count(self) -> int:
        return self.stats.count + len(self.pending)

    def reset(self) -> None:
        self.pending = []
        self.stats.reset()


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
    """

    def __init__(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | torch.device | None = None,
        model: FIDInceptionV3 | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if model is None:
            model = FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
        elif device is not None:
            model = model.to(device)
        self.model = model.eval()
        self._sides = {False: _Accumulator(self.model, self.batch_size), True: _Accumulator(self.model, self.batch_size)}

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


class FIDVideos(Metric):
    """FID for the runner: all paired frames of all videos, pooled (Wav2Lip's protocol). A video that
    fails half-way is taken back out (both sides' sums and waiting frames as they were before it)."""

    name, direction = "fid", "lower"
    consumes = frozenset({PAIRED_FRAMES})
    _STATE = ("count", "_shift", "_sum", "_outer")

    def __init__(self, device: str = "cpu") -> None:
        self.metric = FID(device=device)
        self._saved: list[tuple[Any, dict[str, Any], Any, dict[str, Any]]] = []

    def start_video(self, video: VideoInfo) -> None:
        self._saved = [(side, snapshot(side, ("pending",)), side.stats, snapshot(side.stats, self._STATE))
                       for side in self.metric._sides.values()]

    def update(self, chunk: Chunk) -> None:
        self.metric.update(chunk.fitted)
        self.metric.update_reference(chunk.reference)

    def end_video(self) -> dict[str, Any]:
        self._saved = []
        return {}

    def discard_video(self) -> None:
        for side, pending, stats, sums in self._saved:
            restore(side, pending)
            restore(stats, sums)

    def compute(self) -> dict[str, Any]:
        return self.metric.compute()

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "protocol": "all paired frames of all videos, pooled (Wav2Lip); "
                                                    "frames as stored in the videos (crops for toolkit datasets)"}

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()

    def reset(self) -> None:
        self.metric.reset()


# ------------------------------------------------------------------------------------ video protocol
def _box_digest(boxes: Mapping[PathLike, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(boxes, key=lambda k: os.fspath(k)):
        arr = np.ascontiguousarray(np.asarray(boxes[key], dtype=np.float64))
        digest.update(os.fspath(key).encode() + b"\0" + str(arr.shape).encode() + arr.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class VideoProtocol:
    """How frames are taken from videos for FID. Every field changes the number.

    * ``fps``: rate the videos are read at (``ffmpeg -r`` semantics, see toolkit.media); None keeps
      every decoded frame.
    * ``frame_step`` / ``max_frames``: use output frames ``0, step, 2*step, ...``, at most
      ``max_frames`` of them per video (None: all).
    * ``crop``: None (full frame); one box ``(x0, y0, x1, y1)`` for every frame (pixels, x1/y1
      exclusive, clipped to the frame); a mapping ``video path -> (T, 4) boxes`` with one row per
      output frame (a NaN row skips that frame, e.g. no face found); or a callable
      ``crop(path, frame_index, frame) -> box or None`` (None skips the frame). A callable cannot
      be fingerprinted: give it a ``crop_id`` naming its behaviour (needed for caching).
    * ``resize``: None (frames go to the model as they are; it resizes to 299 bilinearly), or an
      int / ``(width, height)`` pre-resize done on uint8 with OpenCV's ``resize_interpolation``, as
      if the frames had been saved at that size before running pytorch-fid.
    * ``pooled``: True pools all frames of all videos into one set (one FID per method, as Wav2Lip
      and most papers); False gives one FID per (generated, reference) video pair and their mean.
    """

    fps: float | None = None
    frame_step: int = 1
    max_frames: int | None = None
    crop: Crop = None
    crop_id: str | None = None
    resize: int | tuple[int, int] | None = None
    resize_interpolation: str = "bilinear"
    pooled: bool = True

    def __post_init__(self) -> None:
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise ValueError(f"fps must be a positive number or None, got {self.fps!r}")
        if not isinstance(self.frame_step, int) or self.frame_step < 1:
            raise ValueError(f"frame_step must be an int >= 1, got {self.frame_step!r}")
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 1):
            raise ValueError(f"max_frames must be an int >= 1 or None, got {self.max_frames!r}")
        if self.resize_interpolation not in RESIZE_INTERPOLATIONS:
            raise ValueError(
                f"resize_interpolation must be one of {sorted(RESIZE_INTERPOLATIONS)}, got {self.resize_interpolation!r}"
            )
        if self.resize is not None:
            size = (self.resize, self.resize) if isinstance(self.resize, int) else tuple(self.resize)
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(f"resize must be a positive int or (width, height) of positive ints, got {self.resize!r}")
        crop = self.crop
        if crop is not None and not callable(crop) and not isinstance(crop, Mapping):
            box = np.asarray(crop, dtype=np.float64)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise ValueError(f"crop box must be 4 finite numbers (x0, y0, x1, y1), got {crop!r}")
            if box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"crop box {crop!r} is empty: need x1 > x0 and y1 > y0")

    @property
    def resize_size(self) -> tuple[int, int] | None:
        """(width, height) of the pre-resize, or None."""
        if self.resize is None:
            return None
        return (self.resize, self.resize) if isinstance(self.resize, int) else (int(self.resize[0]), int(self.resize[1]))

    def crop_config(self) -> Any:
        crop = self.crop
        if crop is None:
            return "full_frame"
        if isinstance(crop, Mapping):
            return {"per_frame_boxes_sha256": _box_digest(crop), "videos": len(crop)}
        if callable(crop):
            name = f"{getattr(crop, '__module__', '?')}.{getattr(crop, '__qualname__', type(crop).__name__)}"
            return {"callable": name, "crop_id": self.crop_id}
        return {"box": [float(v) for v in crop]}

    def config(self) -> dict[str, Any]:
        return {
            "fps": "native" if self.fps is None else float(self.fps),
            "frame_step": self.frame_step,
            "max_frames": self.max_frames,
            "crop": self.crop_config(),
            "pre_resize": None if self.resize is None else list(self.resize_size),  # type: ignore[arg-type]
            "pre_resize_interpolation": None if self.resize is None else f"cv2 {self.resize_interpolation}",
            "pooled": self.pooled,
            "frames": "decoded in memory (PyAV, RGB24), lossless, no image dump",
        }


def _protocol(params: VideoProtocol | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> VideoProtocol:
    if params is None:
        base = VideoProtocol()
    elif isinstance(params, VideoProtocol):
        base = params
    elif isinstance(params, Mapping):
        base = VideoProtocol(**params)
    else:
        raise ValueError(f"params must be a VideoProtocol, a dict of its fields or None, got {type(params).__name__}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(VideoProtocol)})
    if unknown:
        raise ValueError(f"unknown protocol parameter(s) {unknown}; known: {[f.name for f in dataclasses.fields(VideoProtocol)]}")
    return dataclasses.replace(base, **overrides) if overrides else base


def _video_list(paths: PathLike | Iterable[PathLike], what: str) -> list[str]:
    """A video file, a directory of videos (sorted), or an iterable of files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
            if not found:
                raise ValueError(f"{what}: directory {p} holds no video files ({', '.join(VIDEO_EXTENSIONS)})")
            out.extend(found)
        else:
            if not os.path.exists(p):
                raise FileNotFoundError(f"{what}: no such file: {p}")
            out.append(p)
    if not out:
        raise ValueError(f"{what}: no videos given")
    return out


def _boxes_for(crop: Mapping[PathLike, np.ndarray], path: str) -> np.ndarray:
    for key in crop:
        if os.fspath(key) == path:
            return np.asarray(crop[key], dtype=np.float64)
    resolved = os.path.realpath(path)
    for key in crop:
        if os.path.realpath(os.fspath(key)) == resolved:
            return np.asarray(crop[key], dtype=np.float64)
    raise ValueError(f"crop: no per-frame boxes for video {path}")


def _apply_crop(frame: np.ndarray, box: Any, path: str, index: int) -> np.ndarray | None:
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,):
        raise ValueError(f"{path}: frame {index}: crop box must be (x0, y0, x1, y1), got {box!r}")
    if not np.isfinite(b).all():
        return None  # no box (e.g. no face detected): skip the frame
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in np.rint(b))
    x0, x1 = max(x0, 0), min(x1, w)
    y0, y1 = max(y0, 0), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{path}: frame {index}: crop box {b.tolist()} lies outside the {w}x{h} frame")
    return frame[y0:y1, x0:x1]


def _protocol_frames(path: str, protocol: VideoProtocol, threads: int | None, counts: dict[str, int]) -> Iterator[list[np.ndarray]]:
    """Yield lists of frames of one video after frame selection, crop and pre-resize."""
    from talking_head.toolkit.media import VideoReader

    reader = VideoReader(path, fps=protocol.fps, threads=threads)
    total = len(reader)
    wanted = len(range(0, total, protocol.frame_step))
    if protocol.max_frames is not None:
        wanted = min(wanted, protocol.max_frames)
    last = (wanted - 1) * protocol.frame_step  # index of the last frame used
    crop, boxes = protocol.crop, None
    if isinstance(crop, Mapping):
        boxes = _boxes_for(crop, path)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != total:
            raise ValueError(
                f"crop: boxes for {path} have shape {boxes.shape}, expected ({total}, 4): one box per frame at "
                f"fps={protocol.fps or 'native'}"
            )
    size = protocol.resize_size
    flag = RESIZE_INTERPOLATIONS[protocol.resize_interpolation]
    k = 0
    try:
        for chunk in reader.iter_chunks(_CHUNK):
            out = []
            for frame in chunk:
                if k > last:
                    break
                if k % protocol.frame_step == 0:
                    counts["selected"] += 1
                    image: np.ndarray | None = frame
                    if boxes is not None:
                        image = _apply_crop(frame, boxes[k], path, k)
                    elif callable(crop):
                        box = crop(path, k, frame)
                        image = None if box is None else _apply_crop(frame, box, path, k)
                    elif crop is not None:
                        image = _apply_crop(frame, crop, path, k)
                    if image is None:
                        counts["skipped"] += 1
                    else:
                        if size is not None and (image.shape[1], image.shape[0]) != size:
                            image = cv2.resize(np.ascontiguousarray(image), size, interpolation=flag)
                        out.append(image)
                k += 1
            if out:
                yield out
            if k > last:
                break
    finally:
        reader.close()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _prefetch(make: Callable[[], Iterator[Any]], depth: int = _PREFETCH) -> Iterator[Any]:
    """Run an iterator in a thread, ``depth`` items ahead, so decoding overlaps the model."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        iterator = None
        try:
            iterator = make()
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, re-raised there
            put(_Raised(err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="fid-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


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
    videos = _video_list(paths, "video_statistics")
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
            for frames in _prefetch(lambda path=path, counts=counts: _protocol_frames(path, protocol, threads, counts)):
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
    protocol = _protocol(params, {})
    if callable(protocol.crop) and not isinstance(protocol.crop, Mapping) and not protocol.crop_id:
        raise ValueError("cached_statistics: a callable crop needs crop_id (a name for what it does) to be cached")
    videos = _video_list(paths, "cached_statistics")
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
    proto = _protocol(None, protocol)
    generated = _video_list(generated_paths, "generated videos")
    reference = _video_list(reference_paths, "reference videos")
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
