"""Fréchet Video Distance in its published variants (:mod:`metrics.fvd_variants`), streamed over videos.

Usage::

    from talking_head.metrics.fvd import FVD

    metric = FVD(variant="styleganv", device="cuda")     # or videogpt, disco, latentsync
    metric.update(generated_video)                       # one whole video, (T, H, W, 3) uint8 RGB, or
    metric.update(reference_video, real=True)            # feed it in pieces: start_video / push / end_video
    metric.compute()                                     # {"fvd": ..., "variant": ..., "num_clips_generated": ...}

A video is cut into its variant's clips as it streams in (no more than one clip of frames is held), the
clips go through the variant's preparation and network in batches, and each video keeps its (clips, 400)
feature rows: the distance is computed from all rows at ``compute``, and the bootstrap interval resamples
videos from them. Reference-side features are cached on disk by the video file's sha256, the variant and
the network file's digest (:func:`reference_cache_dir`), so a second evaluation against the same reference
set runs no network on the reference side.

Too few clips for a stable estimate is warned about with the figures: the feature covariance is
400 x 400, StyleGAN-V uses 2048 clips a side and the literature asks for at least 256 videos.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from talking_head.metrics.base import GENERATED_FRAMES, PAIRED_FRAMES, Chunk, Metric, VideoInfo
from talking_head.metrics.fvd_variants import (
    DEFAULT_VARIANT, VARIANTS, ClipRejected, ClipSampler, FVDVariant, LatentSyncFaceCrop, frechet_distance,
    prepare_clip,
)
from talking_head.metrics.fvd_variants import variant as variant_spec
from talking_head.metrics.feature_resampling import FrechetResampler
from talking_head.metrics.i3d import NUM_CLASSES, InceptionI3d
from talking_head.metrics.reference_cache import file_sha256
from talking_head.toolkit import weights
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.fp32 import strict_fp32

__all__ = ["FVD", "FVDVideos", "VARIANTS", "DEFAULT_VARIANT", "fvd_from_features", "load_network",
           "reference_cache_dir", "SmallSampleWarning"]

CLIPS_PER_BATCH = {"cpu": 4, "cuda": 32}  # does not change the numbers beyond float round-off
STABLE_CLIPS = 2048  # StyleGAN-V's fvd2048_16f
CACHE_VERSION = 1


class SmallSampleWarning(UserWarning):
    """Fewer videos or clips than a stable FVD needs."""


def fvd_from_features(generated: np.ndarray, reference: np.ndarray, variant_name: str | FVDVariant = DEFAULT_VARIANT
                      ) -> float:
    """The variant's distance between (N, 400) generated and (M, 400) reference clip features."""
    spec = variant_spec(variant_name)
    generated, reference = np.asarray(generated, np.float32), np.asarray(reference, np.float32)
    if len(generated) < 2 or len(reference) < 2:
        raise ValueError(f"FVD needs at least 2 clips a side, got {len(generated)} generated and {len(reference)} "
                         f"reference ({spec.frames}-frame clips; shorter videos give none)")
    return frechet_distance(spec, generated, reference)


class TorchScriptI3D:
    """The TorchScript I3D file (``i3d_torchscript.pt``), called the way a variant calls it."""

    def __init__(self, module: Any, device: torch.device, path: str) -> None:
        self.module, self.device, self.weights_path = module, device, path

    def features(self, clips: np.ndarray, rescale: bool, resize: bool, contiguous: bool) -> np.ndarray:
        """(B, T, H, W, 3) clips, channels last as prepared, to (B, 400) pre-softmax features. The clips are
        permuted to (B, 3, T, H, W); StyleGAN-V makes that copy contiguous, LatentSync hands the view over."""
        x = torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 4, 1, 2, 3)
        x = x.contiguous() if contiguous else x
        with torch.no_grad(), strict_fp32():
            out = self.module(x.to(self.device), rescale=rescale, resize=resize, return_features=True)
        return out.float().cpu().numpy()


def load_network(spec: FVDVariant, device: str | torch.device = "cpu") -> Union[TorchScriptI3D, InceptionI3d]:
    device = torch.device(device)
    if spec.network == "torchscript":
        module = weights.load_torchscript(spec.weights, map_location=device).eval()
        return TorchScriptI3D(module, device, str(weights.path(spec.weights)))
    return InceptionI3d.from_pretrained(device=device)


def _clip_features(spec: FVDVariant, network: Any, prepared: list[np.ndarray]) -> np.ndarray:
    batch = np.stack(prepared)
    if spec.name == "styleganv":
        return network.features(batch, rescale=True, resize=True, contiguous=True)
    if spec.name == "latentsync":
        return network.features(batch, rescale=False, resize=False, contiguous=False)
    clips = torch.from_numpy(batch).permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, T, 224, 224)
    with torch.no_grad():
        return network.logits_of(clips).cpu().numpy()


def reference_cache_dir() -> Path:
    """``<toolkit cache>/fvd-features`` (``$TOOLKIT_CACHE_DIR`` or ``~/.cache/talking-head-toolkit``)."""
    return weights.cache_dir() / "fvd-features"


class _Side:
    """One side's per-video features and the video in progress."""

    def __init__(self, spec: FVDVariant) -> None:
        self.sampler = ClipSampler(spec)
        self.videos: list[np.ndarray] = []  # (clips, 400) per committed video
        self.current: list[np.ndarray] = []
        self.pending: list[np.ndarray] = []  # prepared clips waiting for a batch
        self.problem: Optional[str] = None  # why the current video gave no clips (latentsync: no face)

    def start(self) -> None:
        self.sampler.reset()
        self.current, self.pending, self.problem = [], [], None

    def rows(self) -> np.ndarray:
        return np.concatenate(self.videos) if self.videos else np.zeros((0, NUM_CLASSES), np.float32)


class FVD:
    """Streaming FVD of one variant; see the module docstring."""

    name, direction = "fvd", "lower"

    def __init__(self, variant: str | FVDVariant = DEFAULT_VARIANT, device: str | torch.device | None = None, *,
                 batch_size: Optional[int] = None, network: Any = None, cache_dir: Optional[Path] = None,
                 use_cache: bool = True) -> None:
        self.spec = variant_spec(variant)
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.network = network if network is not None else load_network(self.spec, self.device)
        self.batch_size = int(batch_size or CLIPS_PER_BATCH.get(self.device.type, 4))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else reference_cache_dir()
        self.use_cache = use_cache
        self._face_crop: Optional[LatentSyncFaceCrop] = None
        self.cache_hits = 0
        self.reset()

    # ------------------------------------------------------------------------------- streaming
    def reset(self) -> None:
        self._sides = {False: _Side(self.spec), True: _Side(self.spec)}
        self._cached: Optional[np.ndarray] = None  # the reference video's features, read from the cache
        self._cache_file: Optional[Path] = None

    def start_video(self, reference_path: Optional[Path] = None) -> None:
        """A new generated/reference pair begins; `reference_path` lets its features come from the cache."""
        for side in self._sides.values():
            side.start()
        self._cached, self._cache_file = None, None
        if reference_path is not None and self.use_cache:
            self._cache_file = self.cache_dir / f"fvd-{self._cache_key(Path(reference_path))}.npy"
            if self._cache_file.is_file():
                try:
                    self._cached = np.load(self._cache_file, allow_pickle=False)
                    self.cache_hits += 1
                except (OSError, ValueError):
                    self._cached = None  # damaged: recomputed and rewritten

    def push(self, frames: np.ndarray, real: bool = False) -> None:
        """Consecutive (n, H, W, 3) uint8 RGB frames of the current video of one side."""
        if not (real and self._cached is not None):
            self._push(self._sides[bool(real)], frames)

    def _push(self, side: _Side, frames: np.ndarray) -> None:
        if side.problem is not None:
            return
        for clip in side.sampler.push(np.asarray(frames)):
            try:
                side.pending.append(prepare_clip(self.spec, clip, self._crop()))
            except ClipRejected as err:  # latentsync: a frame without a face; the video gives no clip
                side.problem = str(err)
                side.pending = []
                return
            if len(side.pending) >= self.batch_size:
                self._flush(side)

    def end_video(self) -> dict[str, Any]:
        """Commit the current pair; returns its clip counts (and why a side gave none)."""
        row: dict[str, Any] = {}
        for real, side in self._sides.items():
            self._flush(side)
            if real and self._cached is not None:
                features = self._cached
            else:
                features = (np.concatenate(side.current) if side.current
                            else np.zeros((0, NUM_CLASSES), np.float32))
                if real and self._cache_file is not None and side.problem is None:
                    self._write_cache(features)
            side.videos.append(features)
            row["fvd_clips_reference" if real else "fvd_clips_generated"] = len(features)
            if side.problem:
                row["fvd_note"] = f"{'reference' if real else 'generated'}: {side.problem}"
        return row

    def discard_video(self) -> None:
        for side in self._sides.values():
            side.start()

    def update(self, video: np.ndarray, real: bool = False) -> None:
        """One whole video of one side (the library API, no cache): (T, H, W, 3) uint8 RGB."""
        side = self._sides[bool(real)]
        side.start()
        self._push(side, video)
        self._flush(side)
        side.videos.append(np.concatenate(side.current) if side.current else np.zeros((0, NUM_CLASSES), np.float32))

    def _flush(self, side: _Side) -> None:
        if side.pending:
            side.current.append(_clip_features(self.spec, self.network, side.pending).astype(np.float32))
            side.pending = []

    def _crop(self) -> Optional[LatentSyncFaceCrop]:
        if self.spec.name != "latentsync":
            return None
        if self._face_crop is None:
            self._face_crop = LatentSyncFaceCrop()
        return self._face_crop

    # ----------------------------------------------------------------------------------- cache
    def _cache_key(self, path: Path) -> str:
        payload = "|".join([f"v{CACHE_VERSION}", file_sha256(path), repr(sorted(self.spec.as_dict().items())),
                            self._weights_digest() or "unverified"])
        return hashlib.sha256(payload.encode()).hexdigest()

    def _weights_digest(self) -> Optional[str]:
        path = getattr(self.network, "weights_path", None)
        return weights.file_sha256(path) if path else None

    def _write_cache(self, features: np.ndarray) -> None:
        assert self._cache_file is not None
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self._cache_file) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, features, allow_pickle=False)
        except OSError:
            pass  # a read-only cache only costs time

    # --------------------------------------------------------------------------------- results
    def features(self, real: bool = False) -> list[np.ndarray]:
        """Each committed video's (clips, 400) features of one side."""
        return list(self._sides[bool(real)].videos)

    def state(self) -> dict[str, Any]:
        """Each committed video's features per side, and the cache hits (config), for another instance's merge."""
        return {"generated": self.features(), "reference": self.features(real=True), "cache_hits": self.cache_hits}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another instance's committed videos (its :meth:`state`) after these."""
        for real, side in self._sides.items():
            side.videos += list(state["reference" if real else "generated"])
        self.cache_hits += state["cache_hits"]

    def compute(self, indices: Optional[np.ndarray] = None) -> dict[str, Any]:
        """FVD over all committed videos (or the videos at `indices`, repetition allowed)."""
        gen_videos, ref_videos = self._sides[False].videos, self._sides[True].videos
        if indices is not None:
            gen_videos = [gen_videos[i] for i in indices]
            ref_videos = [ref_videos[i] for i in indices]
        gen = np.concatenate(gen_videos) if gen_videos else np.zeros((0, NUM_CLASSES), np.float32)
        ref = np.concatenate(ref_videos) if ref_videos else np.zeros((0, NUM_CLASSES), np.float32)
        value = fvd_from_features(gen, ref, self.spec)
        if indices is not None:
            return {"fvd": value}
        messages = self._sample_warnings(len(gen_videos), len(gen), len(ref))
        for message in messages:
            warnings.warn(message, SmallSampleWarning, stacklevel=2)
        return {"fvd": value, "variant": self.spec.name, "num_videos": len(gen_videos),
                "num_clips_generated": len(gen), "num_clips_reference": len(ref), "warnings": messages}

    def _sample_warnings(self, videos: int, gen: int, ref: int) -> list[str]:
        messages = []
        if videos < self.spec.min_videos:
            messages.append(f"FVD from {videos} videos: the estimate is unstable below {self.spec.min_videos} "
                            "videos and not comparable with FVDs from other set sizes")
        if min(gen, ref) < STABLE_CLIPS:
            messages.append(f"FVD from {gen} generated and {ref} reference clips of {self.spec.frames} frames "
                            f"(StyleGAN-V uses {STABLE_CLIPS} a side; below {NUM_CLASSES} the 400x400 covariance "
                            "is rank-deficient)")
        return messages

    def config(self) -> dict[str, Any]:
        return {"variant": self.spec.name, **{k: v for k, v in self.spec.as_dict().items() if k != "name"},
                "clips_per_batch": self.batch_size, "device": str(self.device), "precision": "fp32 (TF32 off)",
                "reference_cache": str(self.cache_dir) if self.use_cache else None,
                "reference_cache_hits": self.cache_hits}  # reference videos whose features came from the cache

    def weights_provenance(self) -> dict[str, Optional[str]]:
        return {self.spec.weights: self._weights_digest()}


class FVDVideos(Metric):
    """FVD for the runner: each pair's generated video (frames as stored) against its reference video,
    clips pooled over all videos; per-video clip counts in per_video.csv."""

    name, direction = "fvd", "lower"
    consumes = frozenset({GENERATED_FRAMES, PAIRED_FRAMES})

    def __init__(self, device: str = "cpu", variant: str = DEFAULT_VARIANT) -> None:
        self.metric = FVD(variant=variant, device=device)
        self._resampler_key: Optional[tuple[int, str]] = None  # the committed videos the resampler was built on

    def start_video(self, video: VideoInfo) -> None:
        self.metric.start_video(reference_path=video.pair.reference)

    def update(self, chunk: Chunk) -> None:
        self.metric.push(chunk.generated)
        self.metric.push(chunk.reference, real=True)

    def end_video(self) -> dict[str, Any]:
        return self.metric.end_video()

    def discard_video(self) -> None:
        self.metric.discard_video()

    def compute(self) -> dict[str, Any]:
        return self.metric.compute()

    resample_note = ("each resample's FVD is the Frechet distance of the drawn videos' kept clip features, with the "
                     "variant's covariance normalisation, through symmetric eigenvalues instead of the variant's "
                     "scipy sqrtm (equal in exact arithmetic; ~1e-10 relative on the same rows)")

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        gen, ref = self.metric.features(), self.metric.features(real=True)
        key = (len(gen), self.metric.spec.name)
        if self._resampler_key != key:  # built once per set of committed videos
            self._resampler = FrechetResampler(
                np.concatenate(gen), np.concatenate(ref), [len(f) for f in gen], [len(f) for f in ref],
                ddof=0 if self.metric.spec.covariance == "divide_by_n" else 1)
            self._resampler_key = key
        return {"fvd": self._resampler(np.asarray(indices))}  # NaN when the draw has fewer than 2 clips a side

    def state(self) -> dict[str, Any]:
        return self.metric.state()

    def merge(self, state: dict[str, Any]) -> None:
        self.metric.merge(state)

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "protocol": "clips of each generated video (frames as stored) and of its "
                                                    "reference video, pooled over all videos"}

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()

    def reset(self) -> None:
        self.metric.reset()
        self._resampler_key = None
