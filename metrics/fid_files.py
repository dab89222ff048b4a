"""FID straight from video files: Inception statistics under an explicit protocol, their on-disk cache, and the
one-off ``fid_from_videos``. Re-exported by :mod:`metrics.fid` (``from talking_head.metrics.fid import
fid_from_videos`` keeps working); the streaming metric and the runner's classes live there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from talking_head.metrics.fid import (
    DEFAULT_BATCH_SIZE, SmallSampleWarning, _Accumulator, _default_device, _fid_result,
)
from talking_head.metrics.fid_protocol import (
    Crop, PathLike, VideoProtocol, as_protocol, protocol_frames, video_list,
)
from talking_head.metrics.frechet import FrechetResult, Statistics
from talking_head.metrics.inception import FEATURE_DIM, FIDInceptionV3
from talking_head.toolkit.prefetch import Prefetch

__all__ = ["video_statistics", "default_cache_dir", "cached_statistics", "fid_from_videos"]

CACHE_VERSION = 1  # bump when the cached statistics would change for the same key

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
    model = _inception(model, device)
    model.eval()
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def run(group: list[str]) -> Statistics:
        acc = _Accumulator(model, int(batch_size))
        per_video = []
        for path in group:
            counts = {"selected": 0, "skipped": 0}
            before = acc.count
            with Prefetch(protocol_frames(path, protocol, threads, counts)) as decoded:  # decoding overlaps the model
                for frames in decoded:
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


def _inception(model: FIDInceptionV3 | None, device: str | torch.device | None) -> FIDInceptionV3:
    """The given network (moved to `device` if one is given), or FID's Inception from the registry."""
    if model is None:
        return FIDInceptionV3.from_pretrained(device if device is not None else _default_device())
    return model.to(device) if device is not None else model


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
    model = _inception(model, device)
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
    model = _inception(model, device)
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
