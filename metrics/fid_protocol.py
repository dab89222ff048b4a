"""The video protocol of FID on video files: which frames of which videos, cropped and resized how.

Usage::

    from talking_head.metrics.fid_protocol import VideoProtocol, protocol_frames

    protocol = VideoProtocol(fps=25.0, crop=(x0, y0, x1, y1), resize=224)   # every field changes the number
    for frames in protocol_frames(path, protocol, threads=None, counts={}):  # lists of (H, W, 3) uint8 RGB
        ...

The protocol changes the number, so every field is recorded in the result (docs/metrics-reference.md,
"FID from videos"); :func:`metrics.fid.video_statistics` and :func:`metrics.fid.fid_from_videos` take it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import cv2
import numpy as np

from talking_head.toolkit.media import VIDEO_EXTENSIONS

# Pre-resize filters (OpenCV on uint8, as a frame dump resized before pytorch-fid would be).
# "bilinear" is cv2.resize's default, what talking-head scripts use when they save face crops.
RESIZE_INTERPOLATIONS = {
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}
CHUNK = 16  # frames decoded per chunk (toolkit.media's default)

PathLike = Union[str, "os.PathLike[str]"]
Box = Sequence[float]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive
CropFn = Callable[[str, int, np.ndarray], Optional[Box]]
Crop = Union[None, Box, CropFn, Mapping[PathLike, np.ndarray]]


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


def as_protocol(params: VideoProtocol | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> VideoProtocol:
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


def video_list(paths: PathLike | Iterable[PathLike], what: str) -> list[str]:
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


def protocol_frames(path: str, protocol: VideoProtocol, threads: int | None, counts: dict[str, int]) -> Iterator[list[np.ndarray]]:
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
        for chunk in reader.iter_chunks(CHUNK):
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

