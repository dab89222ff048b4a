"""The LSE face-track crop pipeline: SyncNet's ``run_pipeline`` on frames decoded once, in memory.

Usage::

    from talking_head.metrics.lse_track import track_video
    from talking_head.metrics.lse import compute_lse

    result = track_video("clip.mp4")                 # face tracks: 224x224 RGB crops + their audio
    tracks = [(t.crops, t.audio) for t in result.tracks]
    compute_lse({"clip": tracks})["lse_d"]           # and ["lse_c"]

How it matches the reference
----------------------------

LSE-C / LSE-D are scored on 224x224 face crops that the reference makes with
``run_pipeline.py`` (joonson/syncnet_python) or its packaged copy ``syncnet_pipeline.py``
(syncnet-python 0.2.3, from MoChaBench): S3FD on every 25 fps frame, PySceneDetect shot cuts, greedy
IoU face tracks per shot, a median-smoothed crop per track. This module reproduces that logic on
RGB frames held in memory - no JPEG dumps, no AVI re-encodes, no ffmpeg calls - and hands the crops
and the matching audio span to the SyncNet scorer (:mod:`metrics.lse`)::

    result = track_video("clip.mp4")                       # or track_faces(frames) / FaceTrackPipeline
    for track in result.tracks:
        track.crops          # (T, 224, 224, 3) RGB uint8, frames track.start_frame .. track.end_frame - 1
        track.audio_span     # (start, end) seconds, the reference's `ffmpeg -ss %.3f -to %.3f` cut
        track.audio          # int16 16 kHz samples of that span (when the pipeline was given audio)
    result.rejected          # every track / shot that was dropped, with the reason
    result.config            # every knob that changes the crops
    lse.update(video_id, [(t.crops, t.audio) for t in result.tracks], reason=result.reason)  # metrics.lse.LSE

Reference behaviour kept on purpose (each one changes the crops):

* **Scene cuts**: PySceneDetect 0.6.x ``ContentDetector()`` with its defaults (threshold 27 on the mean
  HSV difference, 15-frame minimum scene, MERGE flash filter), on frames downscaled the way
  ``SceneManager`` auto-downscales (to >= 256 px on the longer side, ``cv2.INTER_LINEAR``). In 0.6.x
  ``VideoManager.set_downscale_factor()`` - called by upstream, not by the wheel - is a no-op, so both
  see the same auto-downscaled frames. No cut: one scene covering the whole video.
* **Tracking** per scene of at least ``min_track`` frames: greedy chaining of detections with IoU > 0.5
  against the track's last box and at most ``num_failed_det`` frames between detections. The reference
  removes faces from the list it is iterating over, so the face right after a taken one is not looked
  at in that pass; kept. Two variants: ``"upstream"`` (run_pipeline.py: on an IoU miss, try the next
  face of the frame) and ``"syncnet-python"`` (the 0.2.3 wheel / MoChaBench: an IoU miss abandons the
  frame's remaining faces; IoU denominator + 1e-8). They differ only with several faces in a frame.
* A track is kept if it has **more than** ``min_track`` detections (upstream 100, wheel 50) and its mean
  box width or height (after linear interpolation over missed frames) is **more than** ``min_face_size``
  pixels of the original frame.
* **Crop**: half-size s = max(w, h) / 2 and the box centre, each ``scipy.signal.medfilt``-ed with kernel
  13 (zero-padded at the ends, which shrinks s and pulls the centre towards the origin over the first
  and last 6 frames, as in the reference); the frame is padded by ``int(s * (1 + 2 * 0.4))`` with the
  value 110; rows [y - s, y + 1.8 s) and columns [x - 1.4 s, x + 1.4 s) (``int()``-truncated) are
  resized to 224 x 224 with ``cv2.resize`` (INTER_LINEAR). The whole lower-shifted face, not a mouth.
* **Audio**: a track covering frames f0..f1 gets the audio of [f0 / 25, (f1 + 1) / 25) s, cut as
  ``ffmpeg -ss %.3f -to %.3f`` cuts a 16 kHz WAV (sample round(t * 16000), checked against ffmpeg).

What is *not* reproduced by default: the reference's lossy round trips. It detects faces and crops on
JPEG (q2) frames of an MPEG-4 (q2) AVI re-encode, writes the crops with OpenCV's XVID writer and
SyncNet reads them back as default-quality JPEGs. ``reference_exact=True`` (``track_video`` only)
re-runs those encodes with the same tools (the ffmpeg binary of ``imageio_ffmpeg`` and OpenCV), in a
temporary directory because ffmpeg's AVI/JPEG muxers and OpenCV's ``VideoWriter`` need files, and
returns the pixels SyncNet would read; it matches the reference bit for bit when the reference uses
the same ffmpeg and OpenCV builds (see tests), and not otherwise (codecs differ between builds).
``cv2.imencode`` cannot stand in for ffmpeg's q2 JPEG (different quantisation tables and chroma
handling), so there is no file-free exact mode. Measured on the synthetic sample, the default crops
differ from the exact ones by 5-6 grey levels (mean absolute difference) after aligning the frames.

The reference's timing quirks come with the exact mode. With the ffmpeg 9 binary here, dumping the q2
AVI (MPEG-4 + MP3 audio) to JPEGs duplicates the first frames (``dup=2``: JPEG k shows AVI frame k - 2),
so the reference's frame list is 2 frames longer than the video and shifted by 80 ms, while scene cuts
are found on the AVI itself (unshifted). Upstream takes its audio from that AVI, whose MP3 priming
delay (1105 samples, 69 ms) shifts the audio by almost as much; the syncnet-python wheel takes the
audio from the source instead, so its crops lag their audio by 2 frames. The default mode has none of
this: frame k is the source's frame k at 25 fps and the audio starts with it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import cv2
import numpy as np
from scipy import signal
from scipy.interpolate import interp1d

from talking_head.metrics.base import CHUNK, Chunk, VideoInfo
from talking_head.metrics.lse import LSEVideos
from talking_head.toolkit import media
from talking_head.toolkit.frames import as_frames

__all__ = [
    "FRAME_RATE",
    "AUDIO_SAMPLE_RATE",
    "CROP_SIZE",
    "CROP_SCALE",
    "PAD_VALUE",
    "SMOOTHING_KERNEL",
    "IOU_THRESHOLD",
    "NUM_FAILED_DET",
    "MIN_FACE_SIZE",
    "MIN_TRACK_UPSTREAM",
    "MIN_TRACK_SYNCNET_PYTHON",
    "SCENE_THRESHOLD",
    "SCENE_MIN_LENGTH",
    "SCENE_MIN_WIDTH",
    "VARIANTS",
    "PRESETS",
    "TrackConfig",
    "SceneDetector",
    "FaceTrack",
    "Rejection",
    "TrackResult",
    "FaceTrackPipeline",
    "link_detections",
    "interpolate_track",
    "smooth_track",
    "crop_face",
    "audio_sample_range",
    "detect_scenes",
    "track_faces",
    "track_video",
    "crops_from_boxes",
]

# ----------------------------------------------------------------------------- reference constants
# run_pipeline.py argparse defaults (joonson/syncnet_python), identical in the 0.2.3 wheel's PipelineConfig
# except min_track.
FRAME_RATE = 25  # --frame_rate: ffmpeg -r 25 before anything else
AUDIO_SAMPLE_RATE = 16000  # ffmpeg -ar 16000
FACEDET_SCALE = 0.25  # --facedet_scale
CONF_THRESHOLD = 0.9  # DET.detect_faces(..., conf_th=0.9)
NMS_THRESHOLD = 0.1  # nms_(bboxes, 0.1) inside detect_faces
CROP_SCALE = 0.40  # --crop_scale
NUM_FAILED_DET = 25  # --num_failed_det: frames a track may go without a detection
MIN_FACE_SIZE = 100  # --min_face_size, pixels of the original frame
MIN_TRACK_UPSTREAM = 100  # --min_track (run_pipeline.py)
MIN_TRACK_SYNCNET_PYTHON = 50  # PipelineConfig.min_track (syncnet-python 0.2.3, MoChaBench, LatentSync)
IOU_THRESHOLD = 0.5  # track_shot: iouThres
SMOOTHING_KERNEL = 13  # crop_video: signal.medfilt(..., kernel_size=13)
CROP_SIZE = 224  # cv2.resize(face, (224, 224)); SyncNet's lip stream needs exactly 224
PAD_VALUE = 110  # np.pad(..., constant_values=(110, 110)) / cv2.copyMakeBorder(value=(110, 110, 110))
# PySceneDetect 0.6.7 ContentDetector() / SceneManager defaults.
SCENE_THRESHOLD = 27.0  # ContentDetector threshold on the mean |dH|, |dS|, |dV| (weights 1, 1, 1, edges 0)
SCENE_MIN_LENGTH = 15  # ContentDetector min_scene_len (FlashFilter MERGE length)
SCENE_MIN_WIDTH = 256  # scene_manager.DEFAULT_MIN_WIDTH: auto-downscale target for the longer side

VARIANTS = ("upstream", "syncnet-python")
Variant = Literal["upstream", "syncnet-python"]


@dataclass(frozen=True)
class TrackConfig:
    """Every knob of the face-track pipeline that changes the crops (see the module docstring)."""

    variant: Variant = "upstream"
    min_track: int = MIN_TRACK_UPSTREAM
    min_face_size: float = MIN_FACE_SIZE
    num_failed_det: int = NUM_FAILED_DET
    iou_threshold: float = IOU_THRESHOLD
    facedet_scale: float = FACEDET_SCALE
    conf_threshold: float = CONF_THRESHOLD
    nms_threshold: float = NMS_THRESHOLD
    smoothing_kernel: int = SMOOTHING_KERNEL
    crop_scale: float = CROP_SCALE
    crop_size: int = CROP_SIZE
    pad_value: int = PAD_VALUE
    scene_threshold: float = SCENE_THRESHOLD
    scene_min_length: int = SCENE_MIN_LENGTH
    frame_rate: int = FRAME_RATE
    audio_sample_rate: int = AUDIO_SAMPLE_RATE
    reference_exact: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("min_track", "num_failed_det", "scene_min_length"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.smoothing_kernel < 1 or self.smoothing_kernel % 2 == 0:
            raise ValueError(f"smoothing_kernel must be a positive odd number, got {self.smoothing_kernel}")
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {self.iou_threshold}")
        if not self.facedet_scale > 0:
            raise ValueError(f"facedet_scale must be positive, got {self.facedet_scale}")
        if not 0.0 <= self.conf_threshold < 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1), got {self.conf_threshold}")
        if self.crop_scale < 0 or self.crop_size < 1 or self.frame_rate < 1 or self.audio_sample_rate < 1:
            raise ValueError("crop_scale must be >= 0 and crop_size, frame_rate, audio_sample_rate >= 1")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, got {self.pad_value}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Named settings of the tools people run. "upstream": joonson/syncnet_python run_pipeline.py and the
# Wav2Lip real-video scripts on top of it. "syncnet-python": the PyPI wheel 0.2.3 / MoChaBench.
PRESETS: dict[str, TrackConfig] = {
    "upstream": TrackConfig(),
    "syncnet-python": TrackConfig(variant="syncnet-python", min_track=MIN_TRACK_SYNCNET_PYTHON),
}


# ----------------------------------------------------------------------------- scene detection
def downscale_size(width: int, height: int, min_width: int = SCENE_MIN_WIDTH) -> Optional[tuple[int, int]]:
    """SceneManager's auto-downscale target (w, h) for a frame size, or None when frames stay as they are.

    ``compute_downscale_factor(max(frame_size))``: factor = longer side / 256 (no scaling below 256), and
    ``cv2.resize(frame, (max(1, round(w / f)), max(1, round(h / f))), INTER_LINEAR)`` when factor > 1.
    """
    longer = max(width, height)
    factor = 1 if longer < min_width else longer / float(min_width)
    if not factor > 1.0:
        return None
    return max(1, round(width / factor)), max(1, round(height / factor))


class SceneDetector:
    """PySceneDetect 0.6.7 ``ContentDetector()`` behind ``SceneManager`` (auto downscale), streaming.

    ``update(frames)`` takes consecutive RGB uint8 frames (n, H, W, 3); ``scenes()`` returns
    ``[(start, end), ...]`` frame ranges (end exclusive) covering the video, as the reference's scene
    list (``get_scene_list()``, or the whole video when it is empty).
    """

    def __init__(self, threshold: float = SCENE_THRESHOLD, min_scene_len: int = SCENE_MIN_LENGTH,
                 min_width: int = SCENE_MIN_WIDTH) -> None:
        self.threshold = float(threshold)
        self.min_scene_len = int(min_scene_len)
        self.min_width = int(min_width)
        self.reset()

    def reset(self) -> None:
        self.num_frames = 0
        self.cuts: list[int] = []
        self.scores: list[float] = []  # content_val per frame (0.0 for the first), for inspection
        self._frame_size: Optional[tuple[int, int]] = None
        self._last_hsv: Optional[np.ndarray] = None
        # FlashFilter (MERGE mode) state.
        self._last_above: Optional[int] = None
        self._merge_enabled = False
        self._merge_triggered = False
        self._merge_start: Optional[int] = None

    def config(self) -> dict[str, Any]:
        return {"detector": "PySceneDetect 0.6.7 ContentDetector (ported)", "threshold": self.threshold,
                "min_scene_len": self.min_scene_len, "weights_hsv_edges": [1.0, 1.0, 1.0, 0.0],
                "flash_filter": "merge", "auto_downscale_min_width": self.min_width,
                "downscale_interpolation": "INTER_LINEAR"}

    def update(self, frames: np.ndarray, channel_order: Literal["RGB", "BGR"] = "RGB") -> None:
        frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        conversion = cv2.COLOR_RGB2HSV if channel_order == "RGB" else cv2.COLOR_BGR2HSV
        for frame in frames:
            size = (frame.shape[1], frame.shape[0])
            if self._frame_size is None:
                self._frame_size = size
            elif size != self._frame_size:
                raise ValueError(f"frame size changed from {self._frame_size} to {size} at frame {self.num_frames}")
            target = downscale_size(*size, self.min_width)
            if target is not None:
                frame = cv2.resize(frame, target, interpolation=cv2.INTER_LINEAR)
            hsv = cv2.cvtColor(frame, conversion)
            score = 0.0
            if self._last_hsv is not None:
                # ContentDetector._mean_pixel_distance per channel (integer sums, then / pixel count), and
                # the weighted mean with weights (1, 1, 1, 0) in its summation order.
                sums = cv2.absdiff(hsv, self._last_hsv).reshape(-1, 3).sum(0, dtype=np.int64)
                pixels = float(hsv.shape[0] * hsv.shape[1])
                d_hue, d_sat, d_lum = (int(v) / pixels for v in sums)
                score = (d_hue + d_sat + d_lum) / 3.0
            self._last_hsv = hsv
            self.scores.append(score)
            self.cuts += self._flash_filter(self.num_frames, score >= self.threshold)
            self.num_frames += 1

    def _flash_filter(self, frame_num: int, above: bool) -> list[int]:
        """scene_detector.FlashFilter in MERGE mode: cuts closer than min_scene_len are merged."""
        length = self.min_scene_len
        if not length > 0:
            return [frame_num] if above else []
        if self._last_above is None:
            self._last_above = frame_num
        min_length_met = (frame_num - self._last_above) >= length
        if above:
            self._last_above = frame_num
        if self._merge_triggered:
            merged = self._last_above - self._merge_start
            if min_length_met and not above and merged >= length:
                self._merge_triggered = False
                return [self._last_above]
            return []
        if not above:
            return []
        if min_length_met:
            self._merge_enabled = True
            return [frame_num]
        if self._merge_enabled:
            self._merge_triggered = True
            self._merge_start = frame_num
        return []

    def scenes(self) -> list[tuple[int, int]]:
        if self.num_frames == 0:
            return []
        cuts = sorted(set(self.cuts))
        bounds = [0, *cuts, self.num_frames]
        return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def detect_scenes(frames: np.ndarray, threshold: float = SCENE_THRESHOLD,
                  min_scene_len: int = SCENE_MIN_LENGTH) -> list[tuple[int, int]]:
    """One-off twin of :class:`SceneDetector`: scene frame ranges of RGB frames (n, H, W, 3)."""
    detector = SceneDetector(threshold, min_scene_len)
    detector.update(frames)
    return detector.scenes()


# ----------------------------------------------------------------------------- tracking
@dataclass(frozen=True)
class _Face:
    frame: int
    box: tuple[float, float, float, float]
    score: float


def _iou_upstream(a: Sequence[float], b: Sequence[float]) -> float:
    """run_pipeline.py bb_intersection_over_union (a is the new face, b the track's last box)."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union != 0 else 0.0  # the reference raises ZeroDivisionError here


def _iou_syncnet_python(a: Sequence[float], b: Sequence[float]) -> float:
    """syncnet_pipeline.py SyncNetPipeline._iou: the same with + 1e-8 in the denominator."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-8)


def link_detections(scene_faces: Sequence[Sequence[_Face]], variant: Variant = "upstream",
                    num_failed_det: int = NUM_FAILED_DET, iou_threshold: float = IOU_THRESHOLD) -> list[list[_Face]]:
    """Greedy chaining of one scene's per-frame faces into tracks, in the reference's order.

    Each pass walks the frames in order and builds one chain: the first face left starts it, later faces
    join when at most ``num_failed_det`` frames after the chain's last face and IoU > ``iou_threshold``
    with it; joined faces are removed. Passes repeat until no face is left. Returns every chain (the
    length and size filters come after). The input is not modified.
    """
    iou = _iou_upstream if variant == "upstream" else _iou_syncnet_python
    pools = [list(faces) for faces in scene_faces]
    chains: list[list[_Face]] = []
    while True:
        chain: list[_Face] = []
        for pool in pools:
            k = 0
            while k < len(pool):
                face = pool[k]
                if chain:
                    near = face.frame - chain[-1].frame <= num_failed_det
                    if variant == "upstream":
                        if not near:
                            break
                        if not iou(face.box, chain[-1].box) > iou_threshold:
                            k += 1  # upstream tries the frame's next face
                            continue
                    elif not (near and iou(face.box, chain[-1].box) > iou_threshold):
                        break  # the wheel gives up on the frame's remaining faces
                chain.append(face)
                del pool[k]
                # The reference removes the face from the list it is iterating over, so the iterator
                # then steps over the face that followed it: keep that quirk.
                k += 1
        if not chain:
            return chains
        chains.append(chain)


def interpolate_track(chain: Sequence[_Face]) -> tuple[np.ndarray, np.ndarray]:
    """(frames, boxes): every frame from the chain's first to its last, boxes linearly interpolated.

    ``scipy.interpolate.interp1d`` per coordinate, as the reference (float64 pixels).
    """
    frame_numbers = np.array([f.frame for f in chain])
    boxes = np.array([np.array(f.box) for f in chain])
    frames = np.arange(frame_numbers[0], frame_numbers[-1] + 1)
    if len(chain) == 1:
        return frames, boxes.astype(np.float64)
    return frames, np.stack([interp1d(frame_numbers, boxes[:, c])(frames) for c in range(4)], axis=1)


def smooth_track(boxes: np.ndarray, kernel: int = SMOOTHING_KERNEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(half_size, centre_x, centre_y) per frame, each ``scipy.signal.medfilt``-ed with ``kernel``.

    half_size = max(h, w) / 2 of the (T, 4) x0 y0 x1 y1 boxes. medfilt pads with zeros, so the first and
    last kernel // 2 values lean towards 0, exactly as the reference's crops do.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return tuple(signal.medfilt(v, kernel_size=kernel) for v in (half, cx, cy))  # type: ignore[return-value]


def crop_face(frame: np.ndarray, half_size: float, cx: float, cy: float, crop_scale: float = CROP_SCALE,
              size: int = CROP_SIZE, pad_value: int = PAD_VALUE) -> np.ndarray:
    """The reference crop of one frame: (size, size, C) uint8, same channel order as ``frame``.

    Pad by ``int(s * (1 + 2 * crop_scale))`` with ``pad_value``, take rows ``int(y - s)`` ..
    ``int(y + s * (1 + 2 * crop_scale))`` and columns ``int(x - s * (1 + crop_scale))`` ..
    ``int(x + s * (1 + crop_scale))`` (padded coordinates) and ``cv2.resize`` (INTER_LINEAR). Only the
    part of the padded frame that is needed is built; the pixels are the same.
    """
    bs = half_size
    pad = int(bs * (1 + 2 * crop_scale))
    my, mx = cy + pad, cx + pad
    y1, y2 = int(my - bs), int(my + bs * (1 + 2 * crop_scale))
    x1, x2 = int(mx - bs * (1 + crop_scale)), int(mx + bs * (1 + crop_scale))
    height, width = frame.shape[:2]
    if 0 <= y1 < y2 <= height + 2 * pad and 0 <= x1 < x2 <= width + 2 * pad:
        top, bottom, left, right = y1 - pad, y2 - pad, x1 - pad, x2 - pad  # source coordinates
        region = frame[max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
        if region.size == 0:  # entirely in the padding
            region = np.full((y2 - y1, x2 - x1, *frame.shape[2:]), pad_value, dtype=frame.dtype)
        else:
            border = (max(0, -top), max(0, bottom - height), max(0, -left), max(0, right - width))
            if any(border):
                region = cv2.copyMakeBorder(region, *border, cv2.BORDER_CONSTANT,
                                            value=(pad_value,) * max(1, frame.shape[2] if frame.ndim == 3 else 1))
    else:
        # Negative or inverted indices: numpy's slicing rules decide, as in the reference.
        widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (frame.ndim - 2)
        region = np.pad(frame, widths, mode="constant", constant_values=pad_value)[y1:y2, x1:x2]
        if region.size == 0:
            raise ValueError(f"empty crop rows {y1}:{y2} cols {x1}:{x2} "
                             f"(half size {bs:.2f}, centre {cx:.1f}, {cy:.1f})")
    return cv2.resize(region, (size, size))


def audio_sample_range(start_s: float, end_s: float, sample_rate: int = AUDIO_SAMPLE_RATE,
                       num_samples: Optional[int] = None) -> tuple[int, int]:
    """Samples [a, b) that ``ffmpeg -i audio.wav -ss %.3f -to %.3f`` keeps (times printed with 3 decimals)."""
    a = int(round(float(f"{start_s:.3f}") * sample_rate))
    b = int(round(float(f"{end_s:.3f}") * sample_rate))
    if num_samples is not None:
        a, b = min(a, num_samples), min(b, num_samples)
    return a, max(a, b)


# ----------------------------------------------------------------------------- results
@dataclass
class FaceTrack:
    """One face track and its SyncNet input.

    ``frames``: (T,) consecutive frame indices at ``fps``; ``boxes``: (T, 4) x0 y0 x1 y1 pixels
    (detections, linearly interpolated where missed; ``detected`` marks the real ones); ``half_size``,
    ``centre_x``, ``centre_y``: the median-smoothed crop geometry; ``crops``: (T, 224, 224, 3) RGB uint8;
    ``audio``: int16 samples of ``audio_span`` at ``sample_rate`` when the pipeline had the audio.
    """

    frames: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray
    half_size: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    crops: np.ndarray
    scene: tuple[int, int]
    fps: int = FRAME_RATE
    sample_rate: int = AUDIO_SAMPLE_RATE
    audio: Optional[np.ndarray] = None

    @property
    def start_frame(self) -> int:
        return int(self.frames[0])

    @property
    def end_frame(self) -> int:
        """One past the last frame."""
        return int(self.frames[-1]) + 1

    @property
    def audio_span(self) -> tuple[float, float]:
        """(start, end) seconds of the matching audio: [first frame / fps, (last frame + 1) / fps)."""
        return self.start_frame / self.fps, self.end_frame / self.fps

    def audio_range(self, sample_rate: Optional[int] = None, num_samples: Optional[int] = None) -> tuple[int, int]:
        """Samples [a, b) of the span, cut as the reference's ffmpeg command cuts it."""
        return audio_sample_range(*self.audio_span, sample_rate or self.sample_rate, num_samples)

    def cut_audio(self, audio: np.ndarray, sample_rate: Optional[int] = None) -> np.ndarray:
        """The track's part of a whole-video 1-D audio array."""
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"audio must be 1-D mono, got shape {audio.shape}")
        a, b = self.audio_range(sample_rate, len(audio))
        return audio[a:b]

    def summary(self) -> dict[str, Any]:
        return {"start_frame": self.start_frame, "end_frame": self.end_frame, "num_frames": len(self.frames),
                "detections": int(self.detected.sum()), "scene": list(self.scene),
                "audio_span": list(self.audio_span),
                "mean_box_size": float(max(np.mean(self.boxes[:, 2] - self.boxes[:, 0]),
                                           np.mean(self.boxes[:, 3] - self.boxes[:, 1])))}


@dataclass(frozen=True)
class Rejection:
    """A scene or a face chain that gave no track, and why (the reference drops these silently)."""

    scene: tuple[int, int]
    reason: str
    first_frame: Optional[int] = None
    last_frame: Optional[int] = None
    detections: int = 0


@dataclass
class TrackResult:
    tracks: list[FaceTrack]
    rejected: list[Rejection]
    scenes: list[tuple[int, int]]
    detections: list[np.ndarray]  # per frame (n, 5) x0 y0 x1 y1 score
    num_frames: int
    frame_size: tuple[int, int]  # (height, width)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> Optional[str]:
        """Why there is no track (None when there is one)."""
        if self.tracks:
            return None
        if self.num_frames == 0:
            return "no frames"
        if not any(len(d) for d in self.detections):
            return "no face detected in any frame"
        return "; ".join(dict.fromkeys(r.reason for r in self.rejected)) or "no track"

    def summary(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "frame_size": list(self.frame_size),
                "scenes": [list(s) for s in self.scenes],
                "frames_with_faces": int(sum(len(d) > 0 for d in self.detections)),
                "tracks": [t.summary() for t in self.tracks],
                "rejected": [asdict(r) for r in self.rejected], "reason": self.reason}


# ----------------------------------------------------------------------------- pipeline
Detector = Callable[[np.ndarray], list[np.ndarray]]


def _check_detections(dets: Any, frame: int) -> np.ndarray:
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return np.empty((0, 5))
    if dets.ndim != 2 or dets.shape[1] not in (4, 5):
        raise ValueError(f"detections of frame {frame} must be (n, 5) x0 y0 x1 y1 score, got shape {dets.shape}")
    if dets.shape[1] == 4:
        dets = np.concatenate([dets, np.ones((len(dets), 1))], 1)
    return dets


class FaceTrackPipeline:
    """Streaming face-track crop pipeline: ``update(frames)`` chunk by chunk, ``compute()``, ``reset()``.

    ``update`` runs the detector and the scene detector on each chunk of consecutive RGB uint8 frames
    (at the pipeline's 25 fps) and keeps the frames (the crops need them); ``compute`` tracks, smooths
    and crops. ``detector`` is anything mapping (n, H, W, 3) RGB frames to per-frame (k, 5) arrays; by
    default :class:`metrics.s3fd.S3FD` with the registry weights and this config's scale / threshold.
    ``audio`` (int16 mono at ``audio_sample_rate``, the whole video) is cut per track when given.
    """

    def __init__(self, config: Union[TrackConfig, str, None] = None, *, detector: Optional[Detector] = None,
                 device: str = "cpu", **overrides: Any) -> None:
        if isinstance(config, str):
            if config not in PRESETS:
                raise ValueError(f"unknown preset {config!r}; presets: {', '.join(PRESETS)}")
            config = PRESETS[config]
        config = config or TrackConfig()
        self.cfg = replace(config, **overrides) if overrides else config
        self.device = device
        self._detector = detector
        self._detector_info: Optional[dict[str, Any]] = None  # set when boxes come from elsewhere
        self._s3fd = None
        self.reset()

    # ---------------------------------------------------------------- provenance
    def config(self) -> dict[str, Any]:
        out = {"pipeline": "syncnet run_pipeline face tracks (metrics.lse_track)", **self.cfg.as_dict(),
               "scene_detection": self._scenes.config()}
        if self._detector_info is not None:
            out["detector"] = dict(self._detector_info)
        elif self._detector is None:
            out["detector"] = {"name": "s3fd", "scales": [self.cfg.facedet_scale],
                               "conf_threshold": self.cfg.conf_threshold, "nms_threshold": self.cfg.nms_threshold}
        else:
            out["detector"] = {"name": getattr(self._detector, "__name__", type(self._detector).__name__)}
        return out

    def weights_provenance(self) -> dict[str, Optional[str]]:
        if self._detector is not None:
            provenance = getattr(self._detector, "weights_provenance", None)
            return provenance() if callable(provenance) else {}
        return self._s3fd_detector().weights_provenance()

    # ---------------------------------------------------------------- streaming
    def reset(self) -> None:
        self._frames: list[np.ndarray] = []
        self._detections: list[np.ndarray] = []
        self._scenes = SceneDetector(self.cfg.scene_threshold, self.cfg.scene_min_length)
        self._audio: Optional[np.ndarray] = None

    def _s3fd_detector(self):
        if self._s3fd is None:
            from talking_head.metrics.s3fd import S3FD

            self._s3fd = S3FD.from_registry(device=self.device)
        return self._s3fd

    def _detect(self, frames: np.ndarray) -> list[np.ndarray]:
        if self._detector is not None:
            found = self._detector(frames)
        else:
            found = self._s3fd_detector().detect_faces(frames, conf_th=self.cfg.conf_threshold,
                                                       scales=[self.cfg.facedet_scale],
                                                       nms_threshold=self.cfg.nms_threshold)
        if len(found) != len(frames):
            raise ValueError(f"the detector returned {len(found)} results for {len(frames)} frames")
        return [_check_detections(d, len(self._detections) + k) for k, d in enumerate(found)]

    def update(self, frames: np.ndarray, detections: Optional[Sequence[np.ndarray]] = None,
               channel_order: Literal["RGB", "BGR"] = "RGB") -> None:
        """Add consecutive frames (n, H, W, 3) uint8; ``detections`` skips the detector for them.

        ``channel_order="BGR"`` is for frames straight from OpenCV (scene detection only; the detector
        and the crops get RGB).
        """
        frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        if self.cfg.reference_exact:
            raise ValueError("reference_exact re-encodes the video file like the reference: use track_video(path)")
        if self._frames and frames.shape[1:] != self._frames[0].shape[1:]:
            raise ValueError(f"frame size changed from {self._frames[0].shape[1:3]} to {frames.shape[1:3]}")
        self._scenes.update(frames, channel_order)
        if channel_order == "BGR":
            frames = frames[..., ::-1]
        if detections is None:
            found = self._detect(np.ascontiguousarray(frames))
        else:
            if len(detections) != len(frames):
                raise ValueError(f"{len(detections)} detection lists for {len(frames)} frames")
            found = [_check_detections(d, len(self._detections) + k) for k, d in enumerate(detections)]
            self._detector_info = self._detector_info or {"name": "given per-frame detections"}
        self._detections += found
        self._frames.append(frames)

    def set_audio(self, audio: Optional[np.ndarray]) -> None:
        """The whole video's audio (1-D int16 at ``audio_sample_rate``); each track gets its cut."""
        if audio is not None:
            audio = np.asarray(audio)
            if audio.ndim != 1:
                raise ValueError(f"audio must be 1-D mono, got shape {audio.shape}")
            if audio.dtype != np.int16:
                raise ValueError(f"audio must be int16 samples (SyncNet's MFCC needs that scale), got {audio.dtype}")
        self._audio = audio

    def compute(self, scenes: Optional[Sequence[tuple[int, int]]] = None,
                crop_hook: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> TrackResult:
        """Tracks and crops for everything passed to ``update``. ``scenes`` overrides the scene cuts."""
        num_frames = len(self._detections)
        frame_size = tuple(self._frames[0].shape[1:3]) if self._frames else (0, 0)
        scene_list = list(scenes) if scenes is not None else self._scenes.scenes()
        result = TrackResult([], [], [tuple(map(int, s)) for s in scene_list], list(self._detections),
                             num_frames, frame_size, self.config())  # type: ignore[arg-type]
        if num_frames == 0:
            return result
        frames = _ChunkedFrames(self._frames)
        cfg = self.cfg
        for start, end in result.scenes:
            if not 0 <= start <= end <= num_frames:
                raise ValueError(f"scene ({start}, {end}) outside 0..{num_frames}")
            if end - start < cfg.min_track:
                result.rejected.append(Rejection((start, end), f"scene of {end - start} frames is shorter than "
                                                 f"min_track={cfg.min_track}"))
                continue
            faces = [[_Face(f, tuple(float(v) for v in d[:4]), float(d[4])) for d in self._detections[f]]
                     for f in range(start, end)]
            for chain in link_detections(faces, cfg.variant, cfg.num_failed_det, cfg.iou_threshold):
                first, last = chain[0].frame, chain[-1].frame
                if len(chain) <= cfg.min_track:
                    result.rejected.append(Rejection(
                        (start, end), f"track of {len(chain)} detections is not longer than min_track={cfg.min_track}",
                        first, last, len(chain)))
                    continue
                track_frames, boxes = interpolate_track(chain)
                size = max(np.mean(boxes[:, 2] - boxes[:, 0]), np.mean(boxes[:, 3] - boxes[:, 1]))
                if not size > cfg.min_face_size:
                    result.rejected.append(Rejection(
                        (start, end), f"face of {size:.1f} px (mean box side) is not larger than "
                        f"min_face_size={cfg.min_face_size}", first, last, len(chain)))
                    continue
                result.tracks.append(self._make_track(frames, track_frames, boxes, chain, (start, end), crop_hook))
        return result

    def _make_track(self, frames: "_ChunkedFrames", track_frames: np.ndarray, boxes: np.ndarray, chain: list[_Face],
                    scene: tuple[int, int], crop_hook) -> FaceTrack:
        cfg = self.cfg
        half, cx, cy = smooth_track(boxes, cfg.smoothing_kernel)
        crops = np.empty((len(track_frames), cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
        for i, f in enumerate(track_frames):
            crops[i] = crop_face(frames[f], half[i], cx[i], cy[i], cfg.crop_scale, cfg.crop_size, cfg.pad_value)
        if crop_hook is not None:
            crops = crop_hook(crops)
        detected = np.isin(track_frames, [f.frame for f in chain])
        track = FaceTrack(track_frames, boxes, detected, half, cx, cy, crops, scene, cfg.frame_rate,
                          cfg.audio_sample_rate)
        if self._audio is not None:
            track.audio = track.cut_audio(self._audio)
        return track


class _ChunkedFrames:
    """Frame k of a list of (n, H, W, 3) chunks, without concatenating them (a copy of the whole video)."""

    def __init__(self, chunks: list[np.ndarray]) -> None:
        self.chunks = chunks
        self.starts = np.cumsum([0] + [len(c) for c in chunks])

    def __getitem__(self, k: int) -> np.ndarray:
        c = int(np.searchsorted(self.starts, k, side="right")) - 1
        return self.chunks[c][k - self.starts[c]]


# ----------------------------------------------------------------------------- one-off entry points
def track_faces(frames: np.ndarray, config: Union[TrackConfig, str, None] = None, *,
                detector: Optional[Detector] = None, detections: Optional[Sequence[np.ndarray]] = None,
                audio: Optional[np.ndarray] = None, device: str = "cpu", chunk_size: int = 32,
                **overrides: Any) -> TrackResult:
    """Face tracks and crops of RGB uint8 frames (T, H, W, 3) at 25 fps: the functional twin of
    :class:`FaceTrackPipeline`. ``detections`` (per frame (n, 5)) replaces the detector."""
    frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
    if len(frames) == 0:
        raise ValueError("frames are empty (no frame to track)")
    pipeline = FaceTrackPipeline(config, detector=detector, device=device, **overrides)
    pipeline.set_audio(audio)
    for start in range(0, len(frames), chunk_size):
        chunk_dets = None if detections is None else detections[start : start + chunk_size]
        pipeline.update(frames[start : start + chunk_size], chunk_dets)
    return pipeline.compute()


def crops_from_boxes(frames: np.ndarray, boxes: np.ndarray, config: Union[TrackConfig, str, None] = None, *,
                     box_scale: float = 1.0, scenes: Optional[Sequence[tuple[int, int]]] = None,
                     detect_scene_cuts: bool = False, audio: Optional[np.ndarray] = None,
                     **overrides: Any) -> TrackResult:
    """The fast path: SyncNet crops from face boxes we already have, without S3FD.

    ``boxes``: (T, 4) x0 y0 x1 y1 pixels of ``frames`` (the original frames, not the dataset's crops),
    one per frame, NaN rows where there is no face. ``box_scale`` scales each box about its centre
    first: the preprocessing stage stores *crop* boxes (``toolkit.face_box.DEFAULT_CROP_SCALE``
    = 2.5 times the BlazeFace box side), so ``box_scale=1 / 2.5`` brings a dataset row's ``boxes`` back
    to face boxes (BlazeFace boxes, not S3FD's: expect a few % difference in crop size). The boxes then
    go through exactly the same tracking, filters, smoothing and crop as the detector path. The whole
    clip is one scene unless ``scenes`` is given or ``detect_scene_cuts`` is set.
    """
    frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(frames):
        raise ValueError(f"boxes must be (T, 4) with T = {len(frames)} frames, got shape {boxes.shape}")
    if not box_scale > 0:
        raise ValueError(f"box_scale must be positive, got {box_scale}")
    if box_scale != 1.0:
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) / 2 * box_scale
        boxes = np.concatenate([centre - half, centre + half], 1)
    valid = np.isfinite(boxes).all(1)
    detections = [np.concatenate([b, [1.0]])[None] if ok else np.empty((0, 5)) for b, ok in zip(boxes, valid)]
    pipeline = FaceTrackPipeline(config, detector=_no_detector, **overrides)
    pipeline._detector_info = {"name": "given face boxes (fast path, no S3FD)", "box_scale": float(box_scale)}
    pipeline.set_audio(audio)
    if detect_scene_cuts:
        pipeline.update(frames, detections)
        return pipeline.compute(scenes)
    # Skip the scene detector's work when the scenes are known.
    pipeline._frames, pipeline._detections = [frames], [_check_detections(d, k) for k, d in enumerate(detections)]
    return pipeline.compute(scenes if scenes is not None else [(0, len(frames))])


def _no_detector(frames: np.ndarray) -> list[np.ndarray]:
    raise ValueError("crops_from_boxes has no detector: every frame's boxes must be given")


# ----------------------------------------------------------------------------- video files
def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")


def _read_jpegs(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise ValueError(f"ffmpeg wrote no frames to {folder}")
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


def _read_wav_int16(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    _, audio = wavfile.read(str(path))
    if audio.ndim != 1 or audio.dtype != np.int16:
        raise ValueError(f"{path}: expected mono int16 PCM, got {audio.dtype} {audio.shape}")
    return audio


def reference_frames(video: Union[str, os.PathLike], workdir: Union[str, os.PathLike],
                     frame_rate: int = FRAME_RATE) -> tuple[np.ndarray, Path]:
    """The reference's frames: ``ffmpeg -qscale:v 2 -async 1 -r 25`` AVI, then q2 JPEGs, decoded by OpenCV.

    Returns (T, H, W, 3) RGB uint8 and the AVI path (the reference's scene detection and audio use it).
    """
    workdir = Path(workdir)
    avi = workdir / "video.avi"
    _ffmpeg("-i", os.fspath(video), "-qscale:v", "2", "-async", "1", "-r", str(frame_rate), str(avi))
    (workdir / "frames").mkdir(exist_ok=True)
    _ffmpeg("-i", str(avi), "-qscale:v", "2", "-threads", "1", "-f", "image2", str(workdir / "frames" / "%06d.jpg"))
    return _read_jpegs(workdir / "frames"), avi


def reference_crop_roundtrip(crops: np.ndarray, workdir: Union[str, os.PathLike],
                             frame_rate: int = FRAME_RATE) -> np.ndarray:
    """What SyncNet reads of crops the reference wrote: OpenCV XVID AVI -> default-quality JPEGs -> imread.

    ``crops``: (T, S, S, 3) RGB uint8; returns the same shape.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    avi = workdir / "crop.avi"
    size = crops.shape[2], crops.shape[1]
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"XVID"), frame_rate, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write XVID AVI files (built without FFmpeg video I/O?)")
    for crop in crops:
        writer.write(np.ascontiguousarray(crop[..., ::-1]))
    writer.release()
    out = workdir / "crop_frames"
    out.mkdir(exist_ok=True)
    _ffmpeg("-i", str(avi), "-threads", "1", "-f", "image2", str(out / "%06d.jpg"))  # SyncNetInstance.evaluate
    frames = _read_jpegs(out)
    if len(frames) != len(crops):
        raise RuntimeError(f"the XVID round trip returned {len(frames)} frames for {len(crops)} crops")
    return frames


def track_video(path: Union[str, os.PathLike], config: Union[TrackConfig, str, None] = None, *,
                audio_path: Union[str, os.PathLike, None] = None, detector: Optional[Detector] = None,
                device: str = "cpu", chunk_size: int = 32, **overrides: Any) -> TrackResult:
    """Face tracks, crops and audio of a video file, the reference pipeline's job in one call.

    Default: frames decoded once at 25 fps like ``ffmpeg -r 25`` (:class:`toolkit.media.VideoReader`)
    and audio like ``ffmpeg -ac 1 -ar 16000`` (int16), from ``audio_path`` if given, else from the video.
    With ``reference_exact=True`` (config or override) the reference's lossy steps are re-run (see the
    module docstring): frames are the q2 JPEGs of the q2 AVI, scene detection reads the AVI through
    OpenCV, crops are what SyncNet reads back after the XVID + JPEG round trip, and the audio is taken
    from the AVI (upstream) or from ``audio_path`` / the video (syncnet-python variant).
    """
    from talking_head.toolkit import media

    pipeline = FaceTrackPipeline(config, detector=detector, device=device, **overrides)
    cfg = pipeline.cfg
    if not cfg.reference_exact:
        reader = media.VideoReader(path, fps=cfg.frame_rate)
        for chunk in reader.iter_chunks(chunk_size):
            pipeline.update(chunk)
        audio = _try_audio(audio_path or path, cfg.audio_sample_rate)
        pipeline.set_audio(audio)
        return pipeline.compute()

    with tempfile.TemporaryDirectory(prefix="lse_track_") as tmp:
        work = Path(tmp)
        frames, avi = reference_frames(path, work, cfg.frame_rate)
        # Scene detection reads the AVI through OpenCV (VideoManager / open_video), not the JPEGs.
        scenes = SceneDetector(cfg.scene_threshold, cfg.scene_min_length)
        capture = cv2.VideoCapture(str(avi))
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                scenes.update(image[None], "BGR")
        finally:
            capture.release()
        if cfg.variant == "upstream":
            _ffmpeg("-i", str(avi), "-ac", "1", "-vn", "-acodec", "pcm_s16le", "-ar", str(cfg.audio_sample_rate),
                    str(work / "audio.wav"))
            audio = _read_wav_int16(work / "audio.wav")
        else:
            audio = _try_audio(audio_path or path, cfg.audio_sample_rate)
        for start in range(0, len(frames), chunk_size):
            chunk = frames[start : start + chunk_size]
            pipeline._detections += pipeline._detect(chunk)
            pipeline._frames.append(chunk)
        pipeline._scenes = scenes
        pipeline.set_audio(audio)
        # OpenCV and ffmpeg could disagree on the AVI's frame count; the reference slices leniently.
        scene_list = [(min(s, len(frames)), min(e, len(frames))) for s, e in scenes.scenes()] or [(0, len(frames))]
        counter = iter(range(1 << 30))
        return pipeline.compute(
            scene_list,
            crop_hook=lambda crops: reference_crop_roundtrip(crops, work / f"track{next(counter):05d}", cfg.frame_rate),
        )


def _try_audio(path: Union[str, os.PathLike], sample_rate: int) -> Optional[np.ndarray]:
    from talking_head.toolkit import media

    try:
        return media.read_audio(path, sample_rate=sample_rate, dtype="int16")
    except media.NoAudioStreamError:
        return None


# The face tracks each LSE face-track preset (metrics.lse.PRESETS) was computed on.
TRACK_PRESETS = {"wav2lip_real": "upstream", "mocha": "syncnet-python", "latentsync": "syncnet-python"}


class LSETrackVideos(LSEVideos):
    """LSE on SyncNet's face-track crops (S3FD on every 25 fps frame, scene cuts, IoU tracks, smoothed
    224 crops), for full-frame videos, aggregated by the preset (``wav2lip_real``, ``mocha``,
    ``latentsync``; built by ``LSEVideos(preset=...)``). The crops need each track's smoothed boxes,
    so the frames of one video are held until it ends: memory grows with the longest video, unlike
    the default ``wav2lip_lrs`` path."""

    def __init__(self, device: str = "cpu", preset: str = "mocha") -> None:
        super().__init__(device, preset)
        self.pipelines = {side: FaceTrackPipeline(TRACK_PRESETS[preset], device=device) for side in self.SIDES}
        # Load S3FD now (missing weights skip the metric before any video), once for both sides.
        self.pipelines["reference"]._s3fd = self.pipelines["generated"]._s3fd_detector()

    def start_video(self, video: VideoInfo) -> None:
        self._video = video
        self.discard_video()
        self._live = video.fps == FRAME_RATE  # otherwise re-read at 25 fps at the end

    def update(self, chunk: Chunk) -> None:
        if self._live:
            self.pipelines["generated"].update(chunk.generated)
            self.pipelines["reference"].update(chunk.reference)

    def _score(self, side: str, path: Any) -> TrackResult:
        pipeline = self.pipelines[side]
        try:
            if not self._live:
                with media.VideoReader(path, fps=FRAME_RATE) as reader:
                    for frames in reader.iter_chunks(CHUNK):
                        pipeline.update(frames)
            pipeline.set_audio(media.read_audio(path, sample_rate=AUDIO_SAMPLE_RATE, dtype="int16"))
            return pipeline.compute()
        finally:
            pipeline.reset()  # drop the held frames

    def _record(self, side: str, result: TrackResult) -> dict[str, Any]:
        assert self._video is not None
        metric, video_id = self.sides[side], self._video.pair.video_id
        metric.update(video_id, [(t.crops, t.audio) for t in result.tracks], reason=result.reason)
        values: dict[str, Any] = {"lse_tracks": metric.per_video(-1)[0]["num_tracks"]}
        per_video = metric.video_result(video_id, self.preset)  # the preset's per-video rule, kept in LSE
        if per_video is None:
            self._video.warnings.append(f"LSE {side}: {metric.videos[video_id]['reason']}")
        else:
            values.update(lse_d=per_video["lse_d"], lse_c=per_video["lse_c"])
        return values

    def discard_video(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.reset()

    def config(self) -> dict[str, Any]:
        return {**self.sides["generated"].config(), "preset": self.preset, "fps": float(FRAME_RATE),
                "tracks": self.pipelines["generated"].config(), "audio": "the video's own audio track, 16 kHz mono int16"}

    def weights_provenance(self) -> dict[str, Any]:
        found = {**self.model.weights_provenance(), **self.pipelines["generated"].weights_provenance()}
        return {k: v for k, v in found.items() if v}
